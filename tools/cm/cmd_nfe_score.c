/* cmd_nfe_score.c: the score that drives [LFC]'s Langevin correction in `cm nfe` (nfe.h): a dsm
 * model given by --score-model (its denoiser, by Tweedie), or the exact law of a gauss:/gmm:
 * source. Either is used in the units of the corrected model: the dsm model only if it
 * standardises the data exactly as that model does, the law standardised with its transform.
 */
#include <math.h>

#include "cli.h"
#include "cm/law.h"
#include "nfe.h"

void nfe_score_source_free(nfe_score_source *source) {
    if (source->has_dsm) {
        cm_denoiser_free(&source->dsm_denoiser);
        cm_model_free(&source->dsm);
    }
    cm_law_free(source->law);
    *source = (nfe_score_source){0};
}

cm_status nfe_score_for_model(cm_denoiser *out, cm_law **law_out, const nfe_score_source *source,
                              const cm_model *model, const char *model_path,
                              const char *score_path) {
    *law_out = NULL;
    const cm_transform *a = &model->transform;
    if (source->has_dsm) {
        const cm_transform *b = &source->dsm.transform;
        if (b->dim != a->dim)
            return cm_error_set(CM_ERR_DIMENSION, "--score-model %s: dimension %zu, %s %zu",
                                score_path, b->dim, model_path, a->dim);
        for (size_t i = 0; i < a->dim; i++) {
            double unit = fmax(fabs(a->scale[i]), fabs(b->scale[i]));
            if (fabs(a->shift[i] - b->shift[i]) > NFE_TRANSFORM_TOLERANCE * unit ||
                fabs(a->scale[i] - b->scale[i]) > NFE_TRANSFORM_TOLERANCE * unit)
                return cm_error_set(CM_ERR_INVALID,
                                    "--score-model %s standardises the data differently from %s "
                                    "(coordinate %zu: shift %.9g vs %.9g, scale %.9g vs %.9g): "
                                    "train both on the same data with the same seed",
                                    score_path, model_path, i, b->shift[i], a->shift[i],
                                    b->scale[i], a->scale[i]);
        }
        *out = source->dsm_denoiser;
        out->release = NULL; /* borrowed from the source */
        return CM_OK;
    }
    CM_TRY(cm_law_standardise(law_out, source->law, a->shift, a->scale));
    return cm_denoiser_from_law(out, *law_out);
}

/* A dsm model as the score: loaded, checked to be a dsm model, its denoiser made. */
static int open_score_model(nfe_score_source *out, const char *score_path) {
    const char *command = "nfe";
    cm_status status = cli_model_load(&out->dsm, score_path);
    if (status != CM_OK) return cli_fail(command, status);
    out->has_dsm = 1;
    if (out->dsm.config.method.kind != CM_METHOD_DSM) {
        const char *method = cm_method_name(out->dsm.config.method.kind);
        int code = cli_usage_error(command, "--score-model %s is a %s model, not a dsm denoiser",
                                   score_path, method);
        nfe_score_source_free(out);
        return code;
    }
    status = cm_denoiser_from_model(&out->dsm_denoiser, &out->dsm);
    if (status != CM_OK) {
        cm_model_free(&out->dsm);
        *out = (nfe_score_source){0};
        return cli_fail(command, status);
    }
    return CLI_OK;
}

int nfe_score_source_open(nfe_score_source *out, const char *score_path, const cm_data *data) {
    *out = (nfe_score_source){0};
    if (score_path) return open_score_model(out, score_path);
    if (cm_law_from_data(&out->law, data) != CM_OK) {
        cm_error_clear();
        return cli_usage_error("nfe", "--langevin needs a score: --score-model DSM (a dsm model "
                               "trained on this data with the same seed), or a gauss:/gmm: "
                               "source (exact score)");
    }
    return CLI_OK;
}
