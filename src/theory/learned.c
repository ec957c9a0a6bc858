/* learned.c: [LHW]'s sequential consistency learning (docs/math.md) with affine maps or random
 * Fourier features fitted in closed form per step, and the error terms eps, eps_F of Theorem 1
 * ([LHW]'s Assumption 2 as we read it) measured against the exact law (docs/theory.md).
 * See learned.h for the definitions. Normal equations are accumulated over row chunks
 * (cblas_dsyrk / dgemm) and solved by Cholesky (LAPACKE_dposv_work); every buffer is allocated
 * once in cm_learned_alloc. The Lipschitz estimates are in learned_lipschitz.c.
 */
#include "cm/learned.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/gaussian.h"
#include "cm/metrics.h"
#include "cm/ot.h"
#include "cm/quadrature.h"
#include "cm/rng.h"
#include "cm/schedule.h"
#include "cm/theory.h"

#define CHUNK 2048          /* rows per normal-equation update and per evaluation batch */
#define TWO_PI 6.283185307179586
/* Jitter on the diagonal of a Gram matrix, relative to its mean diagonal entry: keeps Cholesky
 * defined when a class has a direction the data never excite (it moves fits by ~1e-12). */
#define GRAM_JITTER 1e-12
#define MAX_DIM CM_LEARNED_MAX_DIM
#define MAX_FEATURES 4096
#define MAX_T 100000
/* Gauss-Hermite nodes of f*_t in 1-D: the integrand f_{t-1}(a x + b (m + tau u)) is smooth
 * (affine plus cosines of frequency |omega| b tau, small since b_t = O(log T / T)), so 40 nodes
 * integrate it to rounding. */
#define HERMITE_NODES 40

/* Child ids of a step's streams: fit, best-in-class fit, evaluation points, posterior draws. */
enum { ID_FIT = 0, ID_BEST, ID_EVAL, ID_POSTERIOR, ID_COUNT };

struct cm_learned {
    const cm_law *law;
    cm_learned_options o;
    cm_lhw_schedule schedule;
    size_t d, P, m;
    int ran;
    double *mean, *cov;               /* moments of X_0 (d, d x d) */
    double *omega, *phase;            /* rff features: m x d, m */
    double *coef_prev, *coef, *coef_best; /* P x d each: f_{t-1}, f_t, f^F_t */
    double *gram, *rhs;               /* P x P, P x d */
    double *x0, *z, *u, *u_prev, *target, *phi; /* CHUNK rows */
    double *xe, *fe, *fbe, *fstar, *var; /* n_eval rows (var: n_eval) */
    double *post, *post_f, *post_in;  /* n_posterior x d */
    double *law_scratch;
    double *post_log_w, *post_mean, *post_var; /* K, K x d, K x d: posterior of one point */
    double hermite_u[HERMITE_NODES], hermite_w[HERMITE_NODES];
    cm_rng data_stream, noise_stream, eval_stream, posterior_stream, feature_stream;
};

const char *cm_learned_class_name(cm_learned_class function_class) {
    switch (function_class) {
    case CM_LEARNED_AFFINE: return "affine";
    case CM_LEARNED_RFF: return "rff";
    default: return "unknown";
    }
}

cm_status cm_learned_class_parse(cm_learned_class *out, const char *text) {
    for (int k = 0; k < CM_LEARNED_CLASS_COUNT; k++)
        if (text && strcmp(text, cm_learned_class_name((cm_learned_class)k)) == 0) {
            *out = (cm_learned_class)k;
            return CM_OK;
        }
    return cm_error_set(CM_ERR_INVALID, "unknown function class '%.100s' (affine, rff)",
                        text ? text : "(null)");
}

cm_learned_options cm_learned_options_default(void) {
    cm_learned_options o;
    o.T = 100;
    o.c0 = 2.0; /* the [LHW] schedule's defaults (docs/math.md) */
    o.c1 = 4.0;
    o.function_class = CM_LEARNED_AFFINE;
    o.n = CM_LEARNED_N_DEFAULT;
    o.best_factor = CM_LEARNED_BEST_FACTOR_DEFAULT;
    o.n_eval = CM_LEARNED_EVAL_DEFAULT;
    o.n_posterior = CM_LEARNED_POSTERIOR_DEFAULT;
    o.features = CM_LEARNED_FEATURES_DEFAULT;
    o.bandwidth = CM_LEARNED_BANDWIDTH_DEFAULT;
    o.ridge = CM_LEARNED_RIDGE_DEFAULT;
    o.w1_points = CM_LEARNED_W1_POINTS_DEFAULT;
    o.lipschitz_points = CM_LEARNED_LIPSCHITZ_POINTS_DEFAULT;
    o.seed = 1;
    o.monte_carlo_target = 0;
    return o;
}

void cm_learned_free(cm_learned *c) {
    if (!c) return;
    cm_lhw_schedule_free(&c->schedule);
    cm_free(c->mean);
    cm_free(c->cov);
    cm_free(c->omega);
    cm_free(c->phase);
    cm_free(c->coef_prev);
    cm_free(c->coef);
    cm_free(c->coef_best);
    cm_free(c->gram);
    cm_free(c->rhs);
    cm_free(c->x0);
    cm_free(c->z);
    cm_free(c->u);
    cm_free(c->u_prev);
    cm_free(c->target);
    cm_free(c->phi);
    cm_free(c->xe);
    cm_free(c->fe);
    cm_free(c->fbe);
    cm_free(c->fstar);
    cm_free(c->var);
    cm_free(c->post);
    cm_free(c->post_f);
    cm_free(c->post_in);
    cm_free(c->law_scratch);
    cm_free(c->post_log_w);
    cm_free(c->post_mean);
    cm_free(c->post_var);
    cm_free(c);
}

static cm_status check_options(const cm_learned_options *o, size_t d) {
    if (o->T < 2 || o->T > MAX_T)
        return cm_error_set(CM_ERR_INVALID, "learned: T %zu must be in [2, %d]", o->T, MAX_T);
    if (!(o->c0 > 0.0) || !(o->c1 > 0.0) || !isfinite(o->c0) || !isfinite(o->c1))
        return cm_error_set(CM_ERR_INVALID, "learned: c0 %g and c1 %g must be finite and > 0",
                            o->c0, o->c1);
    if ((unsigned)o->function_class >= CM_LEARNED_CLASS_COUNT)
        return cm_error_set(CM_ERR_INVALID, "learned: unknown function class");
    if (d == 0 || d > MAX_DIM)
        return cm_error_set(CM_ERR_INVALID, "learned: dimension %zu must be in [1, %d]", d,
                            MAX_DIM);
    if (o->n == 0 && o->function_class != CM_LEARNED_AFFINE)
        return cm_error_set(CM_ERR_INVALID, "learned: n = 0 (population fit) needs the affine class");
    if (o->n > ((size_t)1 << 30) || o->n_eval < 2 || o->n_eval > ((size_t)1 << 24))
        return cm_error_set(CM_ERR_INVALID, "learned: n %zu or n_eval %zu out of range", o->n,
                            o->n_eval);
    if (o->function_class == CM_LEARNED_RFF) {
        if (o->features == 0 || o->features > MAX_FEATURES)
            return cm_error_set(CM_ERR_INVALID, "learned: features %zu must be in [1, %d]",
                                o->features, MAX_FEATURES);
        if (!(o->bandwidth > 0.0) || !isfinite(o->bandwidth))
            return cm_error_set(CM_ERR_INVALID, "learned: bandwidth %g must be finite and > 0",
                                o->bandwidth);
        if (!(o->ridge >= 0.0) || !isfinite(o->ridge))
            return cm_error_set(CM_ERR_INVALID, "learned: ridge %g must be finite and >= 0",
                                o->ridge);
        if (o->best_factor < 1 || o->best_factor > 10000)
            return cm_error_set(CM_ERR_INVALID, "learned: best_factor %zu out of [1, 10000]",
                                o->best_factor);
        if (o->n * o->best_factor > ((size_t)1 << 32))
            return cm_error_set(CM_ERR_INVALID, "learned: best_factor * n too large");
    }
    if (o->n_posterior < 2 || o->n_posterior > 100000)
        return cm_error_set(CM_ERR_INVALID, "learned: n_posterior %zu out of [2, 100000]",
                            o->n_posterior);
    if (o->w1_points > 100000 || o->lipschitz_points > 100000)
        return cm_error_set(CM_ERR_INVALID, "learned: w1_points or lipschitz_points above 100000");
    return CM_OK;
}

/* phi(x) for `rows` points into c->phi (rows x P). */
static void features(cm_learned *c, const double *x, size_t rows) {
    size_t d = c->d, P = c->P, m = c->m;
    double scale = m ? sqrt(2.0 / (double)m) : 0.0;
    for (size_t r = 0; r < rows; r++) {
        double *p = c->phi + r * P;
        const double *xr = x + r * d;
        p[0] = 1.0;
        memcpy(p + 1, xr, d * sizeof(double));
        for (size_t k = 0; k < m; k++) {
            const double *w = c->omega + k * d;
            double s = c->phase[k];
            for (size_t i = 0; i < d; i++) s += w[i] * xr[i];
            p[1 + d + k] = scale * cos(s);
        }
    }
}

/* out[rows x d] = W' phi(x), rows <= CHUNK (uses c->phi). */
static void apply_rows(cm_learned *c, const double *W, const double *x, size_t rows, double *out) {
    features(c, x, rows);
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, (int)c->d, (int)c->P, 1.0,
                c->phi, (int)c->P, W, (int)c->d, 0.0, out, (int)c->d);
}

static void apply_all(cm_learned *c, const double *W, const double *x, size_t n, double *out) {
    for (size_t first = 0; first < n; first += CHUNK) {
        size_t rows = n - first < CHUNK ? n - first : CHUNK;
        apply_rows(c, W, x + first * c->d, rows, out + first * c->d);
    }
}

static void set_identity(double *W, size_t P, size_t d) {
    memset(W, 0, P * d * sizeof(double));
    for (size_t i = 0; i < d; i++) W[(1 + i) * d + i] = 1.0;
}

/* The HERMITE_NODES-node Gauss-Hermite rule (quadrature.h) into the chain. */
static cm_status hermite_rule(double *u, double *w) {
    double work[HERMITE_NODES * HERMITE_NODES + 3 * HERMITE_NODES];
    return cm_quadrature_gauss_hermite(u, w, HERMITE_NODES, work);
}

cm_status cm_learned_alloc(cm_learned **out, const cm_law *law, const cm_learned_options *options) {
    *out = NULL;
    if (!law || !options) return cm_error_set(CM_ERR_INVALID, "learned: NULL law or options");
    size_t d = cm_law_dim(law);
    CM_TRY(check_options(options, d));
    cm_learned *c = cm_calloc(1, sizeof *c);
    if (!c) return cm_error_set(CM_ERR_NOMEM, "learned: chain");
    c->law = law;
    c->o = *options;
    c->d = d;
    c->m = options->function_class == CM_LEARNED_RFF ? options->features : 0;
    c->P = 1 + d + c->m;
    size_t P = c->P, ne = options->n_eval, np = options->n_posterior;
    cm_status status = cm_lhw_schedule_init(&c->schedule, options->T, options->c0, options->c1);
    if (status != CM_OK) {
        cm_free(c);
        return status;
    }
    c->mean = cm_malloc(d, sizeof(double));
    c->cov = cm_malloc(d * d, sizeof(double));
    c->omega = cm_malloc(c->m * d + 1, sizeof(double));
    c->phase = cm_malloc(c->m + 1, sizeof(double));
    c->coef_prev = cm_malloc(P * d, sizeof(double));
    c->coef = cm_malloc(P * d, sizeof(double));
    c->coef_best = cm_malloc(P * d, sizeof(double));
    c->gram = cm_malloc(P * P, sizeof(double));
    c->rhs = cm_malloc(P * d, sizeof(double));
    c->x0 = cm_malloc(CHUNK * d, sizeof(double));
    c->z = cm_malloc(CHUNK * d, sizeof(double));
    c->u = cm_malloc(CHUNK * d, sizeof(double));
    c->u_prev = cm_malloc(CHUNK * d, sizeof(double));
    c->target = cm_malloc(CHUNK * d, sizeof(double));
    c->phi = cm_malloc((CHUNK > P ? CHUNK : P) * P, sizeof(double)); /* also P x P scratch */
    c->xe = cm_malloc(ne * d, sizeof(double));
    c->fe = cm_malloc(ne * d, sizeof(double));
    c->fbe = cm_malloc(ne * d, sizeof(double));
    c->fstar = cm_malloc(ne * d, sizeof(double));
    c->var = cm_malloc(ne, sizeof(double));
    c->post = cm_malloc(np * d, sizeof(double));
    c->post_f = cm_malloc(np * d, sizeof(double));
    c->post_in = cm_malloc(np * d, sizeof(double));
    c->law_scratch = cm_malloc(cm_law_scratch_size(law) + 1, sizeof(double));
    size_t K = cm_law_components(law);
    c->post_log_w = cm_malloc(K, sizeof(double));
    c->post_mean = cm_malloc(K * d, sizeof(double));
    c->post_var = cm_malloc(K * d, sizeof(double));
    if (!c->mean || !c->cov || !c->omega || !c->phase || !c->coef_prev || !c->coef ||
        !c->coef_best || !c->gram || !c->rhs || !c->x0 || !c->z || !c->u || !c->u_prev ||
        !c->target || !c->phi || !c->xe || !c->fe || !c->fbe || !c->fstar || !c->var ||
        !c->post || !c->post_f || !c->post_in || !c->law_scratch || !c->post_log_w ||
        !c->post_mean || !c->post_var) {
        cm_learned_free(c);
        return cm_error_set(CM_ERR_NOMEM, "learned: buffers (P %zu, d %zu)", P, d);
    }
    cm_law_moments(law, c->mean, c->cov);
    status = hermite_rule(c->hermite_u, c->hermite_w);
    if (status != CM_OK) {
        cm_learned_free(c);
        return status;
    }
    cm_rng root;
    cm_rng_init(&root, options->seed);
    cm_rng_fork(&c->data_stream, &root, CM_STREAM_DATA);
    cm_rng_fork(&c->noise_stream, &root, CM_STREAM_NOISE);
    cm_rng_fork(&c->eval_stream, &root, CM_STREAM_EVAL);
    cm_rng_fork(&c->posterior_stream, &root, CM_STREAM_SAMPLE);
    cm_rng_fork(&c->feature_stream, &root, CM_STREAM_INIT);
    if (c->m) {
        double trace = 0.0;
        for (size_t i = 0; i < d; i++) trace += c->cov[i * d + i];
        double s = sqrt(fmax(1.0, trace / (double)d)), ell = options->bandwidth * s;
        cm_rng_normal_fill_f64(&c->feature_stream, c->omega, c->m * d);
        for (size_t k = 0; k < c->m * d; k++) c->omega[k] /= ell;
        for (size_t k = 0; k < c->m; k++) c->phase[k] = TWO_PI * cm_rng_uniform(&c->feature_stream);
    }
    set_identity(c->coef, P, d);
    *out = c;
    return CM_OK;
}

const double *cm_learned_coefficients(const cm_learned *chain, size_t *P) {
    if (P) *P = chain->P;
    return chain->coef;
}

cm_status cm_learned_apply(cm_learned *chain, const double *x, size_t n, double *out) {
    apply_all(chain, chain->coef, x, n, out);
    return CM_OK;
}

static double abar(const cm_lhw_schedule *s, size_t t) { return exp(s->log_abar[t]); }

/* Solve gram W = rhs (Cholesky; gram is destroyed) into W. */
static cm_status solve(cm_learned *c, double *W, int jitter) {
    size_t P = c->P, d = c->d;
    double mean_diagonal = 0.0;
    for (size_t p = 0; p < P; p++) mean_diagonal += c->gram[p * P + p];
    mean_diagonal /= (double)P;
    if (jitter)
        for (size_t p = 0; p < P; p++) c->gram[p * P + p] += GRAM_JITTER * mean_diagonal;
    lapack_int info = LAPACKE_dposv_work(LAPACK_ROW_MAJOR, 'L', (lapack_int)P, (lapack_int)d,
                                         c->gram, (lapack_int)P, c->rhs, (lapack_int)d);
    if (info != 0)
        return cm_error_set(CM_ERR_INVALID, "learned: normal equations not positive definite "
                            "(dposv info %d; P %zu)", (int)info, P);
    memcpy(W, c->rhs, P * d * sizeof(double));
    return CM_OK;
}

/* Draw `rows` pairs (U_t, U_{t-1}) into c->u, c->u_prev from the data and noise generators. */
static void draw_pairs(cm_learned *c, size_t t, size_t rows, cm_rng *data, cm_rng *noise) {
    const cm_lhw_schedule *s = &c->schedule;
    size_t d = c->d;
    cm_law_sample(c->law, data, rows, c->x0);
    cm_rng_normal_fill_f64(noise, c->z, rows * d);
    double a1 = sqrt(abar(s, t)), s1 = sqrt(s->one_minus_abar[t]);
    double a0 = sqrt(abar(s, t - 1)), s0 = sqrt(s->one_minus_abar[t - 1]);
    for (size_t k = 0; k < rows * d; k++) {
        c->u[k] = a1 * c->x0[k] + s1 * c->z[k];
        c->u_prev[k] = a0 * c->x0[k] + s0 * c->z[k];
    }
}

/* Least squares of f_{t-1} = W'_prev phi(U_{t-1}) on phi(U_t) over `count` fresh pairs. */
static cm_status fit_sampled(cm_learned *c, size_t t, size_t count, int id, double *W) {
    size_t P = c->P, d = c->d;
    cm_rng data, noise;
    cm_rng_fork(&data, &c->data_stream, (uint64_t)t * ID_COUNT + id);
    cm_rng_fork(&noise, &c->noise_stream, (uint64_t)t * ID_COUNT + id);
    memset(c->gram, 0, P * P * sizeof(double));
    memset(c->rhs, 0, P * d * sizeof(double));
    for (size_t first = 0; first < count; first += CHUNK) {
        size_t rows = count - first < CHUNK ? count - first : CHUNK;
        draw_pairs(c, t, rows, &data, &noise);
        apply_rows(c, c->coef_prev, c->u_prev, rows, c->target);
        features(c, c->u, rows);
        cblas_dsyrk(CblasRowMajor, CblasLower, CblasTrans, (int)P, (int)rows, 1.0, c->phi,
                    (int)P, 1.0, c->gram, (int)P);
        cblas_dgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)P, (int)d, (int)rows, 1.0,
                    c->phi, (int)P, c->target, (int)d, 1.0, c->rhs, (int)d);
    }
    double ridge = c->o.ridge * (double)count;
    for (size_t p = 1 + d; p < P; p++) c->gram[p * P + p] += ridge;
    return solve(c, W, 1);
}

/* Population least squares of the affine class (exact moments of the law): with
 * m_t = sqrt(abar_t) mu, C_t = abar_t S + (1 - abar_t) I and the cross-covariance
 * K = sqrt(abar_t abar_{t-1}) S + sqrt((1 - abar_t)(1 - abar_{t-1})) I,
 * E[phi(U_t) phi(U_t)'] = [[1, m_t'], [m_t, C_t + m_t m_t']] and
 * E[phi(U_t) phi(U_{t-1})'] = [[1, m_{t-1}'], [m_t, K + m_t m_{t-1}']]; the target's moments are
 * the latter times W_prev. */
static cm_status fit_population(cm_learned *c, size_t t, double *W) {
    const cm_lhw_schedule *s = &c->schedule;
    size_t d = c->d, P = c->P;
    double at = abar(s, t), ap = abar(s, t - 1);
    double ra = sqrt(at), rp = sqrt(ap), cross = sqrt(at * ap);
    double noise_cross = sqrt(s->one_minus_abar[t] * s->one_minus_abar[t - 1]);
    double *cross_moment = c->phi; /* P x P scratch (phi has max(CHUNK, P) rows) */
    for (size_t p = 0; p < P; p++)
        for (size_t q = 0; q < P; q++) {
            double g, k;
            if (p == 0 && q == 0) g = k = 1.0;
            else if (p == 0) g = ra * c->mean[q - 1], k = rp * c->mean[q - 1];
            else if (q == 0) g = ra * c->mean[p - 1], k = ra * c->mean[p - 1];
            else {
                size_t i = p - 1, j = q - 1;
                double S = c->cov[i * d + j], mm = c->mean[i] * c->mean[j];
                g = at * S + (i == j ? s->one_minus_abar[t] : 0.0) + at * mm;
                k = cross * S + (i == j ? noise_cross : 0.0) + cross * mm;
            }
            c->gram[p * P + q] = g;
            cross_moment[p * P + q] = k;
        }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)P, (int)d, (int)P, 1.0,
                cross_moment, (int)P, c->coef_prev, (int)d, 0.0, c->rhs, (int)d);
    return solve(c, W, 0); /* exact moments: no jitter, the Gram matrix is positive definite */
}

/* 1-D: f*_t(x) = sum_j w_j(x) E_u[f_{t-1}(a x + b (m_j(x) + tau_j(x) u))] by Gauss-Hermite
 * (docs/theory.md's grid recursion, at the evaluation points). Exact to quadrature: var = 0. */
static cm_status hermite_target(cm_learned *c, double a, double b, double lambda) {
    size_t ne = c->o.n_eval, K = cm_law_components(c->law);
    double in[HERMITE_NODES], out[HERMITE_NODES];
    for (size_t r = 0; r < ne; r++) {
        double x = c->xe[r];
        CM_TRY(cm_law_posterior(c->law, lambda, &x, c->post_log_w, c->post_mean, c->post_var));
        double total = 0.0;
        for (size_t j = 0; j < K; j++) {
            double w = exp(c->post_log_w[j]);
            if (w < 1e-300) continue;
            double tau = sqrt(c->post_var[j]);
            for (int q = 0; q < HERMITE_NODES; q++)
                in[q] = a * x + b * (c->post_mean[j] + tau * c->hermite_u[q]);
            apply_rows(c, c->coef_prev, in, HERMITE_NODES, out);
            double e = 0.0;
            for (int q = 0; q < HERMITE_NODES; q++) e += c->hermite_w[q] * out[q];
            total += w * e;
        }
        c->fstar[r] = total;
        c->var[r] = 0.0;
    }
    return CM_OK;
}

/* f*_t at the evaluation points into c->fstar (and the per-point variance of its Monte Carlo
 * mean into c->var; 0 when exact). */
static cm_status exact_target(cm_learned *c, size_t t, cm_rng *posterior) {
    const cm_lhw_schedule *s = &c->schedule;
    size_t d = c->d, ne = c->o.n_eval, np = c->o.n_posterior;
    double lambda = cm_lhw_schedule_log_snr(s, t);
    double a = sqrt(s->one_minus_abar[t - 1] / s->one_minus_abar[t]);
    double b = sqrt(abar(s, t - 1)) - a * sqrt(abar(s, t));
    if (c->o.function_class == CM_LEARNED_AFFINE && !c->o.monte_carlo_target) {
        /* f_{t-1} affine: E[f_{t-1}(a x + b X_0) | x] = f_{t-1}(a x + b D_t(x)) */
        for (size_t r = 0; r < ne; r++) {
            double *in = c->fstar + r * d; /* staging: overwritten below by the batch apply */
            cm_law_denoise_point(c->law, lambda, c->xe + r * d, in, NULL, c->law_scratch);
            for (size_t i = 0; i < d; i++) in[i] = a * c->xe[r * d + i] + b * in[i];
            c->var[r] = 0.0;
        }
        for (size_t first = 0; first < ne; first += CHUNK) {
            size_t rows = ne - first < CHUNK ? ne - first : CHUNK;
            memcpy(c->target, c->fstar + first * d, rows * d * sizeof(double));
            apply_rows(c, c->coef_prev, c->target, rows, c->fstar + first * d);
        }
        return CM_OK;
    }
    if (d == 1 && !c->o.monte_carlo_target) return hermite_target(c, a, b, lambda);
    for (size_t r = 0; r < ne; r++) {
        const double *x = c->xe + r * d;
        CM_TRY(cm_law_posterior(c->law, lambda, x, c->post_log_w, c->post_mean, c->post_var));
        cm_law_posterior_draw(c->law, c->post_log_w, c->post_mean, c->post_var, posterior, np,
                              c->post);
        for (size_t k = 0; k < np; k++)
            for (size_t i = 0; i < d; i++) c->post_in[k * d + i] = a * x[i] + b * c->post[k * d + i];
        for (size_t first = 0; first < np; first += CHUNK) {
            size_t rows = np - first < CHUNK ? np - first : CHUNK;
            apply_rows(c, c->coef_prev, c->post_in + first * d, rows, c->post_f + first * d);
        }
        double total_var = 0.0;
        for (size_t i = 0; i < d; i++) {
            double mean = 0.0, sq = 0.0;
            for (size_t k = 0; k < np; k++) mean += c->post_f[k * d + i];
            mean /= (double)np;
            for (size_t k = 0; k < np; k++) {
                double e = c->post_f[k * d + i] - mean;
                sq += e * e;
            }
            c->fstar[r * d + i] = mean;
            total_var += sq / (double)(np - 1);
        }
        c->var[r] = total_var / (double)np; /* variance of the mean, summed over coordinates */
    }
    return CM_OK;
}

/* Mean norm, its standard error, and the mean squared norm of a - b over n rows; squared norms
 * reduced by var[r] when var is given (unbiased for a Monte Carlo b). */
static void norms(double *l1, double *se, double *ms, const double *a, const double *b,
                  const double *var, size_t n, size_t d) {
    double sum = 0.0, sum_sq = 0.0, sum_ms = 0.0;
    for (size_t r = 0; r < n; r++) {
        double q = 0.0;
        for (size_t i = 0; i < d; i++) {
            double e = a[r * d + i] - b[r * d + i];
            q += e * e;
        }
        double norm = sqrt(q);
        sum += norm;
        sum_sq += q;
        sum_ms += var ? q - var[r] : q;
    }
    double mean = sum / (double)n;
    *l1 = mean;
    *se = sqrt(fmax(0.0, sum_sq / (double)n - mean * mean) / (double)(n - 1));
    *ms = fmax(0.0, sum_ms / (double)n);
}

static cm_status measure_step(cm_learned *c, size_t t, cm_learned_step *step, double *se_eps,
                              double *se_eps_f) {
    const cm_lhw_schedule *s = &c->schedule;
    size_t d = c->d, ne = c->o.n_eval;
    cm_rng data, noise, posterior;
    cm_rng_fork(&data, &c->eval_stream, (uint64_t)t * ID_COUNT + ID_EVAL);
    cm_rng_fork(&noise, &c->eval_stream, (uint64_t)t * ID_COUNT + ID_EVAL + 1);
    cm_rng_fork(&posterior, &c->posterior_stream, (uint64_t)t);
    double ra = sqrt(abar(s, t)), rs = sqrt(s->one_minus_abar[t]);
    for (size_t first = 0; first < ne; first += CHUNK) {
        size_t rows = ne - first < CHUNK ? ne - first : CHUNK;
        cm_law_sample(c->law, &data, rows, c->x0);
        cm_rng_normal_fill_f64(&noise, c->z, rows * d);
        for (size_t k = 0; k < rows * d; k++)
            c->xe[first * d + k] = ra * c->x0[k] + rs * c->z[k];
    }
    apply_all(c, c->coef, c->xe, ne, c->fe);
    apply_all(c, c->coef_best, c->xe, ne, c->fbe);
    CM_TRY(exact_target(c, t, &posterior));
    double ms, noise_sum = 0.0;
    step->t = t;
    norms(&step->eps_l1, se_eps, &ms, c->fe, c->fbe, NULL, ne, d);
    step->eps_rms = sqrt(ms);
    norms(&step->eps_f_l1, se_eps_f, &ms, c->fbe, c->fstar, c->var, ne, d);
    step->eps_f_rms = sqrt(ms);
    for (size_t r = 0; r < ne; r++) noise_sum += c->var[r];
    step->eps_f_mc_noise = sqrt(noise_sum / (double)ne);
    return CM_OK;
}

/* The closed forms when the law is one Gaussian and f_T is affine: f_T(Y) ~ N(c, A A'). */
static cm_status closed_forms(cm_learned *c, cm_learned_result *out) {
    out->w2_learned_closed = out->w1_learned_closed = NAN;
    if (c->o.function_class != CM_LEARNED_AFFINE || cm_law_components(c->law) != 1) return CM_OK;
    size_t d = c->d;
    const cm_lhw_schedule *s = &c->schedule;
    double *work = cm_malloc(4 * d * d + 2 * d, sizeof(double));
    if (!work) return cm_error_set(CM_ERR_NOMEM, "learned: closed forms");
    double *A = work, *cov_out = A + d * d, *cov_1 = cov_out + d * d, *mean_1 = cov_1 + d * d;
    double *mean_out = mean_1 + d;
    for (size_t j = 0; j < d; j++) {
        mean_out[j] = c->coef[j];
        for (size_t i = 0; i < d; i++) A[j * d + i] = c->coef[(1 + i) * d + j];
    }
    cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)d, (int)d, (int)d, 1.0, A, (int)d,
                A, (int)d, 0.0, cov_out, (int)d);
    double a1 = abar(s, 1);
    for (size_t i = 0; i < d; i++) {
        mean_1[i] = sqrt(a1) * c->mean[i];
        for (size_t j = 0; j < d; j++)
            cov_1[i * d + j] = a1 * c->cov[i * d + j] + (i == j ? s->one_minus_abar[1] : 0.0);
    }
    cm_status status = cm_gaussian_w2(&out->w2_learned_closed, mean_out, cov_out, mean_1, cov_1, d);
    if (status == CM_OK && d == 1)
        status = cm_gaussian_w1_1d(&out->w1_learned_closed, mean_out[0], fabs(A[0]), mean_1[0],
                                   sqrt(cov_1[0]));
    cm_free(work);
    return status;
}

/* Exact-OT W1 between f_T(Y) and X_1, and between two samples of X_1 (the floor). */
static cm_status output_w1(cm_learned *c, cm_learned_result *out) {
    size_t n = c->o.w1_points, d = c->d;
    out->w1_learned = out->w1_floor = NAN;
    if (n == 0) return CM_OK;
    const cm_lhw_schedule *s = &c->schedule;
    double *buffer = cm_malloc(4 * n * d, sizeof(double));
    if (!buffer) return cm_error_set(CM_ERR_NOMEM, "learned: W1 samples");
    double *y = buffer, *fy = y + n * d, *x1a = fy + n * d, *x1b = x1a + n * d;
    cm_rng root, sample, data, noise;
    cm_rng_init(&root, c->o.seed);
    cm_rng_fork(&sample, &root, CM_STREAM_SAMPLE);
    cm_rng_fork(&data, &c->eval_stream, 0);
    cm_rng_fork(&noise, &c->eval_stream, 1);
    cm_rng child;
    cm_rng_fork(&child, &sample, (uint64_t)-1);
    cm_rng_normal_fill_f64(&child, y, n * d);
    apply_all(c, c->coef, y, n, fy);
    double ra = sqrt(abar(s, 1)), rs = sqrt(s->one_minus_abar[1]);
    cm_law_sample(c->law, &data, n, x1a);
    cm_law_sample(c->law, &data, n, x1b);
    for (size_t k = 0; k < 2 * n * d; k++) x1a[k] = ra * x1a[k] + rs * cm_rng_normal(&noise);
    cm_status status = cm_learned_w1(&out->w1_learned, fy, x1a, n, d);
    if (status == CM_OK) status = cm_learned_w1(&out->w1_floor, x1b, x1a, n, d);
    cm_free(buffer);
    return status;
}

cm_status cm_learned_w1(double *out, const double *x, const double *y, size_t n, size_t d) {
    if (d == 1) return cm_metrics_w1_1d(out, x, n, y, n);
    return cm_ot_wasserstein(out, x, n, y, n, d, CM_OT_W1);
}

static cm_status apply_map(void *context, const double *x, size_t n, double *out) {
    return cm_learned_apply(context, x, n, out);
}

static cm_status lipschitz(cm_learned *c, cm_learned_result *out) {
    size_t n = c->o.lipschitz_points, d = c->d;
    out->lipschitz_learned = out->lipschitz_exact = NAN;
    if (n == 0) return CM_OK;
    if (d == 1) n = CM_LEARNED_GRID_POINTS;
    double *points = cm_malloc(n * d, sizeof(double));
    if (!points) return cm_error_set(CM_ERR_NOMEM, "learned: Lipschitz points");
    if (d == 1) {
        for (size_t k = 0; k < n; k++)
            points[k] = CM_LEARNED_GRID_HALFWIDTH * (2.0 * (double)k / (double)(n - 1) - 1.0);
    } else {
        cm_rng root, stream;
        cm_rng_init(&root, c->o.seed);
        cm_rng_fork(&stream, &root, CM_STREAM_LEVEL);
        cm_rng_normal_fill_f64(&stream, points, n * d);
    }
    cm_status status = cm_theory_lipschitz(&out->lipschitz_learned, NULL, apply_map, c, d, points,
                                           n, CM_LEARNED_FD_STEP);
    if (status == CM_OK)
        status = cm_learned_lipschitz_exact(&out->lipschitz_exact, c->law,
                                            cm_lhw_schedule_log_snr(&c->schedule, c->o.T),
                                            cm_lhw_schedule_log_snr(&c->schedule, 1), points, n);
    cm_free(points);
    return status;
}

cm_status cm_learned_run(cm_learned *c, cm_learned_result *out, cm_learned_step *steps) {
    if (c->ran) return cm_error_set(CM_ERR_INVALID, "learned: a chain runs once");
    c->ran = 1;
    memset(out, 0, sizeof *out);
    size_t T = c->o.T, d = c->d, P = c->P;
    out->T = T;
    out->d = d;
    out->P = P;
    double var_eps = 0.0, var_eps_f = 0.0;
    for (size_t t = 2; t <= T; t++) {
        memcpy(c->coef_prev, c->coef, P * d * sizeof(double));
        if (c->o.n == 0) CM_TRY(fit_population(c, t, c->coef));
        else CM_TRY(fit_sampled(c, t, c->o.n, ID_FIT, c->coef));
        if (c->o.function_class == CM_LEARNED_AFFINE) CM_TRY(fit_population(c, t, c->coef_best));
        else CM_TRY(fit_sampled(c, t, c->o.n * c->o.best_factor, ID_BEST, c->coef_best));
        cm_learned_step step, *st = steps ? &steps[t - 2] : &step;
        double se_eps, se_eps_f;
        CM_TRY(measure_step(c, t, st, &se_eps, &se_eps_f));
        out->eps_l1 += st->eps_l1;
        out->eps_rms += st->eps_rms;
        out->eps_f_l1 += st->eps_f_l1;
        out->eps_f_rms += st->eps_f_rms;
        out->eps_f_mc_noise += st->eps_f_mc_noise;
        var_eps += se_eps * se_eps;
        var_eps_f += se_eps_f * se_eps_f;
    }
    out->eps_l1_se = sqrt(var_eps);
    out->eps_f_l1_se = sqrt(var_eps_f);
    for (size_t k = 0; k < P * d; k++)
        if (!isfinite(c->coef[k]))
            return cm_error_set(CM_ERR_NONFINITE, "learned: fitted coefficient %zu is %g", k,
                                c->coef[k]);
    CM_TRY(closed_forms(c, out));
    CM_TRY(output_w1(c, out));
    CM_TRY(lipschitz(c, out));
    return CM_OK;
}
