/* diffusion_law.c: an exact law (law.h) as a denoiser of diffusion.h, in VE units: the VP point
 * of log-SNR lambda = -2 log sigma is x / sqrt(1 + sigma^2) and has the same posterior mean.
 * Kept apart from diffusion.c so that the samplers do not pull in the law module. */
#include <math.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/diffusion.h"

/* ---- an exact law as a denoiser */

typedef struct {
    const cm_law *law; /* borrowed */
    double *point, *scratch;
} law_denoiser;

static void law_denoiser_release(void *context) {
    law_denoiser *l = context;
    if (!l) return;
    cm_free(l->point);
    cm_free(l->scratch);
    cm_free(l);
}

/* E[X_0 | X_0 + sigma Z = x] = E[X_0 | X_lambda = x / sqrt(1 + sigma^2)], lambda = -2 log sigma
 * (law.h: abar = 1 / (1 + sigma^2) at that lambda). */
static cm_status law_denoise(void *context, const double *x, const double *sigma, size_t n,
                             double *out) {
    law_denoiser *l = context;
    size_t D = cm_law_dim(l->law);
    for (size_t r = 0; r < n; r++) {
        const double *xr = x + r * D;
        double s = sigma[r];
        if (!(s > 0)) {
            memcpy(out + r * D, xr, D * sizeof(double));
            continue;
        }
        double shrink = 1.0 / sqrt(1.0 + s * s);
        for (size_t i = 0; i < D; i++) l->point[i] = shrink * xr[i];
        cm_law_denoise_point(l->law, -2.0 * log(s), l->point, out + r * D, NULL, l->scratch);
    }
    return CM_OK;
}

cm_status cm_denoiser_from_law(cm_denoiser *out, const cm_law *law) {
    *out = (cm_denoiser){0};
    law_denoiser *l = cm_calloc(1, sizeof *l);
    if (!l) return cm_error_set(CM_ERR_NOMEM, "denoiser");
    l->law = law;
    l->point = cm_malloc(cm_law_dim(law), sizeof(double));
    l->scratch = cm_malloc(cm_law_scratch_size(law), sizeof(double));
    if (!l->point || !l->scratch) {
        law_denoiser_release(l);
        return cm_error_set(CM_ERR_NOMEM, "denoiser scratch");
    }
    *out = (cm_denoiser){.denoise = law_denoise, .context = l, .release = law_denoiser_release,
                         .dim = cm_law_dim(law)};
    return CM_OK;
}
