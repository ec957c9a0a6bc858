/* consistency_gap.c: the consistency gap of a trained VE consistency model (ct, ict, cd, cd2;
 * learned.h) by noise level: how far its consistency function moves between adjacent levels of a
 * grid on the same data point and noise, E||f(x0 + s' z, s') - f(x0 + s z, s)||, the quantity
 * [CM]'s consistency training drives to zero between adjacent Karras levels. Beside it, when the
 * data source is an exact law (gauss:, gmm:), the same for the exact consistency function
 * Phi_{s -> sigma_min} of the standardised law (multistep.h's exact flow map): what a perfect
 * model shows on the same pairs. Any data, images included; the network runs in float through
 * the evaluator (no central differences here). Not here: the W1 and Lipschitz terms of the [LHW]
 * diagnostics, which need an exact law and the VP chain (learned_network.c).
 */
#include <math.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/evaluator.h"
#include "cm/learned.h"
#include "cm/multistep.h"

#define GAP_MAX_POINTS 100000

/* The mean over n rows of D of ||a_r - b_r||; *se its standard error. */
static double mean_row_distance(double *se, const double *a, const double *b, size_t n, size_t D) {
    double sum = 0.0, sum2 = 0.0;
    for (size_t r = 0; r < n; r++) {
        double q = 0.0;
        for (size_t i = 0; i < D; i++) {
            double e = a[r * D + i] - b[r * D + i];
            q += e * e;
        }
        sum += sqrt(q);
        sum2 += q;
    }
    double mean = sum / (double)n, variance = (sum2 - (double)n * mean * mean) / (double)(n - 1);
    *se = sqrt(fmax(variance, 0.0) / (double)n);
    return mean;
}

static cm_status check_gap(const cm_model *model, const cm_data *data, const cm_law *law,
                           const double *levels, size_t count, size_t n) {
    const cm_method_config *m = &model->config.method;
    size_t D = model->config.network.dim;
    if (!cm_method_is_ve_consistency(m->kind))
        return cm_error_set(CM_ERR_INVALID, "consistency gap: a %s model is not a VE consistency "
                            "model (ct, ict, cd, cd2)", cm_method_name(m->kind));
    if (cm_data_dim(data) != D || (law && cm_law_dim(law) != D))
        return cm_error_set(CM_ERR_DIMENSION, "consistency gap: data of dimension %zu, law %zu, "
                            "model %zu", cm_data_dim(data), law ? cm_law_dim(law) : D, D);
    if (n < 2 || n > GAP_MAX_POINTS || count < 2)
        return cm_error_set(CM_ERR_INVALID, "consistency gap: %zu points (2..%d), %zu levels (>= "
                            "2)", n, GAP_MAX_POINTS, count);
    for (size_t i = 0; i < count; i++)
        if (!(levels[i] >= m->sigma_min) || (i && !(levels[i] > levels[i - 1])))
            return cm_error_set(CM_ERR_INVALID, "consistency gap: levels must increase from at "
                                "least sigma_min = %g (level %zu is %g)", m->sigma_min, i,
                                levels[i]);
    return CM_OK;
}

/* The model's and (with exact) the exact map's value at every level in turn, each level's gap to
 * the one before. Buffers: x0, z, x, f[2], and for the exact map e[2]. */
static cm_status gap_levels(double *gap, double *gap_se, double *gap_exact, cm_evaluator *ev,
                            const cm_two_time_map *exact, const double *levels, size_t count,
                            size_t n, size_t D, double *buffer) {
    const cm_model *model = cm_evaluator_model(ev);
    double sigma_min = model->config.method.sigma_min;
    double *x0 = buffer, *z = x0 + n * D, *x = z + n * D, *f[2] = {x + n * D, x + 2 * n * D};
    double *e[2] = {x + 3 * n * D, x + 4 * n * D}, se_exact;
    for (size_t i = 0; i < count; i++) {
        double *now = f[i % 2], *before = f[(i + 1) % 2];
        for (size_t k = 0; k < n * D; k++) x[k] = x0[k] + levels[i] * z[k];
        cm_evaluator_apply_f64(ev, now, x, n, cm_model_coefficients(model, levels[i]));
        if (exact) CM_TRY(exact->map(exact->context, x, n, levels[i], sigma_min, e[i % 2]));
        if (i == 0) continue;
        gap[i - 1] = mean_row_distance(&gap_se[i - 1], now, before, n, D);
        if (!isfinite(gap[i - 1]))
            return cm_error_set(CM_ERR_NONFINITE, "consistency gap: not finite between levels %g "
                                "and %g", levels[i - 1], levels[i]);
        if (exact) gap_exact[i - 1] = mean_row_distance(&se_exact, e[i % 2], e[(i + 1) % 2], n, D);
    }
    return CM_OK;
}

cm_status cm_consistency_gap_ve(double *gap, double *gap_se, double *gap_exact,
                                const cm_model *model, const cm_data *data, const cm_law *law,
                                const double *levels, size_t count, size_t n, uint64_t seed) {
    CM_TRY(check_gap(model, data, law, levels, count, n));
    size_t D = model->config.network.dim;
    cm_law *law_s = NULL;
    cm_two_time_map exact = {0};
    if (law) {
        CM_TRY(cm_law_standardise(&law_s, law, model->transform.shift, model->transform.scale));
        cm_two_time_from_law(&exact, law_s);
    }
    cm_evaluator *ev = NULL;
    cm_evaluator_options options = cm_evaluator_options_for(model);
    cm_status status = cm_evaluator_alloc(&ev, model, &options);
    double *buffer = status == CM_OK ? cm_malloc(7 * n * D, sizeof(double)) : NULL;
    if (status == CM_OK && !buffer)
        status = cm_error_set(CM_ERR_NOMEM, "consistency gap: %zu points of dimension %zu", n, D);
    if (status == CM_OK) {
        cm_rng root, draws, noise;
        cm_rng_init(&root, seed);
        cm_rng_fork(&draws, &root, CM_STREAM_EVAL);
        cm_rng_fork(&noise, &root, CM_STREAM_NOISE);
        cm_data_sample(data, &draws, n, buffer);
        cm_transform_apply(&model->transform, buffer, n);
        cm_rng_normal_fill_f64(&noise, buffer + n * D, n * D);
        status = gap_levels(gap, gap_se, law ? gap_exact : NULL, ev, law ? &exact : NULL, levels,
                            count, n, D, buffer);
    }
    if (status == CM_OK && !law && gap_exact)
        for (size_t i = 0; i + 1 < count; i++) gap_exact[i] = NAN;
    cm_free(buffer);
    cm_evaluator_free(ev);
    cm_two_time_free(&exact);
    cm_law_free(law_s);
    return status;
}
