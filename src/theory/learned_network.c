/* learned_network.c: the error terms of [LHW] Theorem 1 measured on a trained [LHW] network
 * (docs/theory.md): W1 of its one-step samples against the law of X_1 (exact OT, with the
 * noise floor), the Lipschitz constant of its noise-to-data map, and the per-step consistency
 * gap E||f(U_t, t) - f(U_{t-1}, t-1)||. Units: see learned.h. The network is evaluated in double
 * (an evaluator in double, on a double copy of the weights) so that central differences are not
 * drowned by float rounding.
 */
#include <math.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/consistency.h"
#include "cm/evaluator.h"
#include "cm/learned.h"
#include "cm/model.h"
#include "cm/metrics.h"
#include "cm/ot.h"
#include "cm/sampler.h"
#include "cm/theory.h"

#define NETWORK_CHUNK 1024
#define NETWORK_MAX_POINTS 10000

/* The model evaluated in double (central differences), 1024 rows a call, unpadded. */
typedef struct {
    const cm_model *model;
    cm_evaluator *evaluator;
    size_t t;
} network;

static void network_free(network *w) {
    cm_evaluator_free(w->evaluator);
    w->evaluator = NULL;
}

static cm_status network_alloc(network *w, const cm_model *model) {
    *w = (network){.model = model};
    cm_evaluator_options options = {.chunk = NETWORK_CHUNK, .blocks = CM_EVALUATOR_BLOCKS,
                                    .pad = 0, .f64 = 1};
    return cm_evaluator_alloc(&w->evaluator, model, &options);
}

/* out[n x D] = f(x, t) in standardised units. */
static void network_apply(network *w, size_t t, const double *x, size_t n, double *out) {
    cm_coefficients c = cm_consistency_lhw(&w->model->schedule, t, w->model->config.method.sigma_data);
    cm_evaluator_apply_f64(w->evaluator, out, x, n, c);
}

static cm_status network_map(void *context, const double *x, size_t n, double *out) {
    network *w = context;
    network_apply(w, w->t, x, n, out);
    return CM_OK;
}

/* points[n x D] of X_1 of the standardised law, mapped back to data units. */
static void target_sample(double *out, const cm_law *law_s, const cm_model *model, cm_rng *data,
                          cm_rng *noise, size_t n) {
    size_t D = model->config.network.dim;
    const cm_lhw_schedule *s = &model->schedule;
    double ra = exp(0.5 * s->log_abar[1]), rs = sqrt(s->one_minus_abar[1]);
    cm_law_sample(law_s, data, n, out);
    for (size_t k = 0; k < n * D; k++) out[k] = ra * out[k] + rs * cm_rng_normal(noise);
    cm_transform_invert(&model->transform, out, n);
}

static double mean_distance(const double *a, const double *b, size_t n, size_t D) {
    double sum = 0.0;
    for (size_t r = 0; r < n; r++) {
        double q = 0.0;
        for (size_t i = 0; i < D; i++) {
            double e = a[r * D + i] - b[r * D + i];
            q += e * e;
        }
        sum += sqrt(q);
    }
    return sum / (double)n;
}

/* gap[t] and gap_exact[t] for t = 2..T over n same-noise pairs (standardised units). */
static cm_status consistency_gap(double *gap, double *gap_exact, network *w, const cm_law *law_s,
                                 cm_rng *data, cm_rng *noise, size_t n, double *buffer) {
    const cm_model *model = w->model;
    const cm_lhw_schedule *s = &model->schedule;
    size_t D = model->config.network.dim, T = model->config.method.chain_T;
    double *x0 = buffer, *z = x0 + n * D, *u = z + n * D, *v = u + n * D, *fu = v + n * D,
           *fv = fu + n * D;
    double lambda_1 = cm_lhw_schedule_log_snr(s, 1);
    gap[0] = gap[1] = gap_exact[0] = gap_exact[1] = 0.0;
    for (size_t t = 2; t <= T; t++) {
        cm_law_sample(law_s, data, n, x0);
        cm_rng_normal_fill_f64(noise, z, n * D);
        double a1 = exp(0.5 * s->log_abar[t]), s1 = sqrt(s->one_minus_abar[t]);
        double a0 = exp(0.5 * s->log_abar[t - 1]), s0 = sqrt(s->one_minus_abar[t - 1]);
        for (size_t k = 0; k < n * D; k++) {
            u[k] = a1 * x0[k] + s1 * z[k];
            v[k] = a0 * x0[k] + s0 * z[k];
        }
        network_apply(w, t, u, n, fu);
        network_apply(w, t - 1, v, n, fv);
        gap[t] = mean_distance(fu, fv, n, D);
        if (!isfinite(gap[t]))
            return cm_error_set(CM_ERR_NONFINITE, "network diagnostics: gap at t = %zu", t);
        CM_TRY(cm_law_flow(law_s, cm_lhw_schedule_log_snr(s, t), lambda_1, u, n, fu, NULL, NULL));
        if (t - 1 > 1)
            CM_TRY(cm_law_flow(law_s, cm_lhw_schedule_log_snr(s, t - 1), lambda_1, v, n, fv, NULL,
                               NULL));
        else
            memcpy(fv, v, n * D * sizeof(double)); /* f(x, 1) = x */
        gap_exact[t] = mean_distance(fu, fv, n, D);
    }
    return CM_OK;
}

cm_status cm_learned_network(cm_network_diagnostics *out, double *gap, double *gap_exact,
                             const cm_model *model, const cm_law *law, size_t n,
                             size_t lipschitz_points, uint64_t seed) {
    if (model->config.method.kind != CM_METHOD_LHW)
        return cm_error_set(CM_ERR_INVALID, "network diagnostics: the model is not an [LHW] model");
    size_t D = model->config.network.dim, T = model->config.method.chain_T;
    if (cm_law_dim(law) != D)
        return cm_error_set(CM_ERR_DIMENSION, "network diagnostics: law dimension %zu, model %zu",
                            cm_law_dim(law), D);
    if (n < 2 || n > NETWORK_MAX_POINTS)
        return cm_error_set(CM_ERR_INVALID, "network diagnostics: n %zu must be in [2, %d]", n,
                            NETWORK_MAX_POINTS);
    memset(out, 0, sizeof *out);
    out->T = T;
    out->n = n;
    cm_law *law_s = NULL;
    CM_TRY(cm_law_standardise(&law_s, law, model->transform.shift, model->transform.scale));
    network w;
    cm_status status = network_alloc(&w, model);
    size_t lp = lipschitz_points ? lipschitz_points : 1;
    double *buffer = cm_malloc(6 * n * D + lp * D + 2 * (T + 1), sizeof(double));
    if (status == CM_OK && !buffer) status = cm_error_set(CM_ERR_NOMEM, "network diagnostics");
    double *own_gap = buffer ? buffer + 6 * n * D + lp * D : NULL;
    double *own_exact = own_gap ? own_gap + T + 1 : NULL;
    if (!gap) gap = own_gap;
    if (!gap_exact) gap_exact = own_exact;
    cm_rng root, data, noise;
    cm_rng_init(&root, seed);
    cm_rng_fork(&data, &root, CM_STREAM_EVAL);
    cm_rng_fork(&noise, &root, CM_STREAM_NOISE);
    if (status == CM_OK) status = cm_sample(buffer, model, NULL, 0, n, seed);
    if (status == CM_OK) {
        double *target = buffer + n * D, *target2 = target + n * D;
        target_sample(target, law_s, model, &data, &noise, n);
        target_sample(target2, law_s, model, &data, &noise, n);
        status = cm_learned_w1(&out->w1, buffer, target, n, D);
        if (status == CM_OK) status = cm_learned_w1(&out->w1_floor, target2, target, n, D);
    }
    out->lipschitz_learned = out->lipschitz_exact = NAN;
    if (status == CM_OK && lipschitz_points) {
        double *points = buffer + 6 * n * D;
        cm_rng points_rng;
        cm_rng_fork(&points_rng, &root, CM_STREAM_LEVEL);
        cm_rng_normal_fill_f64(&points_rng, points, lp * D);
        w.t = T;
        status = cm_theory_lipschitz(&out->lipschitz_learned, NULL, network_map, &w, D, points, lp,
                                     CM_LEARNED_FD_STEP);
        if (status == CM_OK)
            status = cm_learned_lipschitz_exact(&out->lipschitz_exact, law_s,
                                                cm_lhw_schedule_log_snr(&model->schedule, T),
                                                cm_lhw_schedule_log_snr(&model->schedule, 1),
                                                points, lp);
    }
    if (status == CM_OK)
        status = consistency_gap(gap, gap_exact, &w, law_s, &data, &noise, n, buffer);
    for (size_t t = 2; status == CM_OK && t <= T; t++) {
        out->gap_total += gap[t];
        out->gap_exact_total += gap_exact[t];
    }
    cm_free(buffer);
    network_free(&w);
    cm_law_free(law_s);
    return status;
}
