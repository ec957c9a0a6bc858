/* sampler.c: one-step and multistep consistency sampling, [CM] Algorithm 1 in VE form and its
 * [LHW] VP form (docs/sampling.md). See sampler.h. */
#include "cm/sampler.h"

#include <math.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/evaluator.h"

static size_t chain_index(const cm_model *model, double sigma) {
    return cm_lhw_schedule_nearest(&model->schedule, sigma);
}

cm_status cm_sampler_levels(double *used, size_t *out_count, const cm_model *model,
                            const double *levels, size_t count) {
    const cm_method_config *c = &model->config.method;
    int is_lhw = c->kind == CM_METHOD_LHW;
    if (c->kind == CM_METHOD_DSM)
        return cm_error_set(CM_ERR_INVALID, "a dsm model is a denoiser, not a consistency function: "
                            "sample it with a diffusion sampler (diffusion.h)");
    if (count == 0) {
        used[0] = is_lhw ? model->schedule.sigma[c->chain_T] : c->sigma_max;
        *out_count = 1;
        return CM_OK;
    }
    if (count > CM_SAMPLER_MAX_LEVELS)
        return cm_error_set(CM_ERR_INVALID, "%zu noise levels: at most %d", count,
                            CM_SAMPLER_MAX_LEVELS);
    double floor_level = is_lhw ? 0.0 : c->sigma_min;
    size_t previous_t = 0;
    for (size_t i = 0; i < count; i++) {
        double level = levels[i];
        if (!isfinite(level) || !(level > floor_level))
            return cm_error_set(CM_ERR_INVALID, "noise level %g must be finite and > %g", level,
                                floor_level);
        if (i > 0 && !(level < levels[i - 1]))
            return cm_error_set(CM_ERR_INVALID, "noise levels must decrease (%g then %g)",
                                levels[i - 1], level);
        if (is_lhw) {
            size_t t = chain_index(model, level);
            if (i > 0 && t >= previous_t)
                return cm_error_set(CM_ERR_INVALID,
                                    "noise levels %g and %g map to chain indices %zu and %zu: they "
                                    "must decrease (T = %zu)",
                                    levels[i - 1], level, previous_t, t, c->chain_T);
            if (i > 0 && t < 2)
                return cm_error_set(CM_ERR_INVALID,
                                    "noise level %g maps to t = 1, where f is the identity", level);
            previous_t = t;
            used[i] = model->schedule.sigma[t];
        } else {
            used[i] = level;
        }
    }
    *out_count = count;
    return CM_OK;
}

/* Fill rows [first, first + rows) of the stage's noise into z (one child stream per point). */
static void stage_noise(float *z, const cm_rng *stage_rng, size_t first, size_t rows, size_t D) {
    for (size_t r = 0; r < rows; r++) {
        cm_rng point;
        cm_rng_fork(&point, stage_rng, first + r);
        cm_rng_normal_fill_f32(&point, z + r * D, D);
    }
}

cm_status cm_sample(double *out, const cm_model *model, const double *levels, size_t level_count,
                    size_t n, uint64_t seed) {
    return cm_sample_with_progress(out, model, levels, level_count, n, seed, NULL);
}

cm_status cm_sample_with_progress(double *out, const cm_model *model, const double *levels,
                                  size_t level_count, size_t n, uint64_t seed,
                                  const cm_sample_progress *progress) {
    const cm_method_config *c = &model->config.method;
    size_t D = model->config.network.dim;
    double used[CM_SAMPLER_MAX_LEVELS];
    size_t count;
    if (n == 0) return cm_error_set(CM_ERR_INVALID, "number of samples must be >= 1");
    CM_TRY(cm_sampler_levels(used, &count, model, levels, level_count));
    int is_lhw = c->kind == CM_METHOD_LHW;
    size_t t_index[CM_SAMPLER_MAX_LEVELS];
    for (size_t s = 0; s < count; s++) t_index[s] = is_lhw ? chain_index(model, used[s]) : 0;
    /* Every network call has the full chunk shape (the evaluator pads a short last chunk with
     * zero rows, unless the network's rows are exact alone): a sample must not depend on how
     * many others are drawn with it. */
    cm_evaluator_options options = cm_evaluator_options_for(model);
    size_t R = options.chunk;
    cm_evaluator *evaluator;
    CM_TRY(cm_evaluator_alloc(&evaluator, model, &options));
    float *x = cm_malloc(2 * R * D, sizeof(float)), *noisy = x ? x + R * D : NULL;
    if (!x) {
        cm_evaluator_free(evaluator);
        return cm_error_set(CM_ERR_NOMEM, "sampler buffers");
    }
    cm_rng root, sample_stream, stage_rng[CM_SAMPLER_MAX_LEVELS];
    cm_rng_init(&root, seed);
    cm_rng_fork(&sample_stream, &root, CM_STREAM_SAMPLE);
    for (size_t s = 0; s < count; s++) cm_rng_fork(&stage_rng[s], &sample_stream, s);

    for (size_t first = 0; first < n; first += R) {
        size_t rows = n - first < R ? n - first : R;
        for (size_t s = 0; s < count; s++) {
            double level = is_lhw ? (double)t_index[s] : used[s];
            /* noise scale for the first stage (pure noise) and the re-noising of later ones */
            double keep, add;
            if (s == 0) {
                keep = 0.0;
                add = is_lhw ? 1.0 : used[0];
            } else if (is_lhw) {
                double log_ratio = model->schedule.log_abar[t_index[s]] - model->schedule.log_abar[1];
                keep = exp(0.5 * log_ratio);
                add = sqrt(-expm1(log_ratio));
            } else {
                keep = 1.0;
                add = sqrt(used[s] * used[s] - c->sigma_min * c->sigma_min);
            }
            stage_noise(noisy, &stage_rng[s], first, rows, D);
            if (s == 0) /* pure noise: x is not read (it holds the previous chunk) */
                for (size_t k = 0; k < rows * D; k++) noisy[k] = (float)(add * noisy[k]);
            else
                for (size_t k = 0; k < rows * D; k++)
                    noisy[k] = (float)(keep * x[k] + add * noisy[k]);
            cm_evaluator_apply(evaluator, x, noisy, rows, cm_model_coefficients(model, level));
        }
        for (size_t k = 0; k < rows * D; k++) out[first * D + k] = x[k];
        cm_transform_invert(&model->transform, out + first * D, rows);
        if (progress && progress->report) progress->report(progress->context, first + rows, n);
    }
    cm_free(x);
    cm_evaluator_free(evaluator);
    return CM_OK;
}
