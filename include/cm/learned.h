/* learned.h: [LHW]'s sequential consistency learning with a function class fitted in closed form
 * per step, and the error terms of Theorem 1 measured on a law known exactly ([LHW];
 * docs/theory.md).
 *
 *   f_1 = id;  for t = 2..T:  f_t = argmin_{f in F} (1/n) sum_i || f(U_t^i) - f_{t-1}(U_{t-1}^i) ||^2
 *   with n fresh pairs per step, U_t = sqrt(abar_t) X_0 + sqrt(1 - abar_t) Z and U_{t-1} the same
 *   with the same (X_0, Z). Output f_T(Y), Y ~ N(0, I_d), compared with X_1.
 *
 * Function classes (coefficients W of size P x d, f(x) = W' phi(x)):
 *   affine  phi(x) = (1, x): P = 1 + d.
 *   rff     phi(x) = (1, x, sqrt(2/m) cos(omega_k . x + b_k), k = 1..m): random Fourier features
 *           (Rahimi and Recht 2007) of a Gaussian kernel of length scale ell, drawn once from the
 *           seed (omega_k ~ N(0, I / ell^2), b_k ~ U[0, 2 pi)), the same features at every t,
 *           with the affine part kept so that f_1 = id is in the class exactly. Ridge penalty
 *           ridge * n on the cosine coefficients only. ell = bandwidth * s, s = sqrt(max(1,
 *           tr Cov(X_0) / d)), the scale of every X_t (between the data's and the noise's).
 * Fits solve the normal equations by Cholesky (LAPACK dposv), accumulated over chunks of rows.
 *
 * Error terms per step t ([LHW]'s Assumption 2, our reading), over n_eval fresh X_t:
 *   eps_t   = E || f_t(X_t) - f^F_t(X_t) ||,  f^F_t the best-in-class fit of the SAME target
 *             f_{t-1} (learned): for affine the population least-squares solution from the exact
 *             moments of the law; for rff a fit on best_factor * n samples.
 *   eps_F_t = E || f^F_t(X_t) - f*_t(X_t) ||,  f*_t(x) = E[ f_{t-1}(a_t x + b_t X_0) | U_t = x ]:
 *             for affine f_{t-1} exactly f_{t-1}(a_t x + b_t D_t(x)) (linearity; D the exact
 *             denoiser); for rff a Monte Carlo mean over n_posterior draws of the exact posterior.
 * Both in the L1 form above and the RMS form sqrt(E ||.||^2); the totals are sums over t = 2..T.
 * The Monte Carlo mean of f*_t inflates ||f^F_t - f*_t||: the RMS form subtracts the estimated
 * variance of the mean (unbiased), the L1 form does not, and eps_f_mc_noise bounds its bias.
 *
 * Why W1(learned) <= W1(ideal) + eps + eps_F (on X_T): with Delta_t = E||f_t - f^ideal_t||(X_t),
 * f*_t - f^ideal_t = E[(f_{t-1} - f^ideal_{t-1})(U_{t-1}) | U_t] and U_{t-1} ~ X_{t-1}, so
 * Delta_t <= E||f_t - f*_t||(X_t) + Delta_{t-1} <= eps_t + eps_F_t + Delta_{t-1}. The theorem
 * feeds Y ~ N(0, I) instead of X_T (abar_T ~ T^-(c1 - c0) makes them close).
 *
 * Ownership: a cm_learned chain is opaque; it borrows the law (which must outlive it) and holds
 * every buffer the run needs, allocated once in cm_learned_alloc: the fits and evaluations of a
 * step allocate nothing. The exact terms f*_t for a non-affine class go through law.h's
 * cm_law_posterior and (d > 1) cm_law_posterior_draw into the chain's own buffers, so they
 * allocate nothing either.
 */
#ifndef CM_LEARNED_H
#define CM_LEARNED_H

#include <stddef.h>
#include <stdint.h>

#include "cm/law.h"
#include "cm/model.h"
#include "cm/status.h"

typedef enum { CM_LEARNED_AFFINE, CM_LEARNED_RFF, CM_LEARNED_CLASS_COUNT } cm_learned_class;

const char *cm_learned_class_name(cm_learned_class function_class);
cm_status cm_learned_class_parse(cm_learned_class *out, const char *text);

/* Defaults (our choices, not the papers'; docs/theory.md gives the reasons). */
#define CM_LEARNED_N_DEFAULT 1000          /* pairs per step */
#define CM_LEARNED_BEST_FACTOR_DEFAULT 50  /* f^F_t fit on 50 n pairs (rff) */
#define CM_LEARNED_EVAL_DEFAULT 2000       /* X_t points of the eps terms, per step */
#define CM_LEARNED_POSTERIOR_DEFAULT 64    /* posterior draws per point for f*_t (rff) */
#define CM_LEARNED_FEATURES_DEFAULT 64     /* m random Fourier features */
#define CM_LEARNED_BANDWIDTH_DEFAULT 0.1   /* ell / s (measured: docs/theory.md) */
#define CM_LEARNED_RIDGE_DEFAULT 1e-6      /* ridge per sample on the cosine coefficients */
#define CM_LEARNED_W1_POINTS_DEFAULT 2000  /* points of f_T(Y) and of X_1 in the exact-OT W1 */
#define CM_LEARNED_LIPSCHITZ_POINTS_DEFAULT 64
#define CM_LEARNED_GRID_POINTS 4001
#define CM_LEARNED_GRID_HALFWIDTH 6.0
/* Central-difference step of the Jacobians, relative to 1 + |x|: error O(h^2) against rounding
 * O(eps / h), balanced near eps^(1/3) ~ 6e-6. */
#define CM_LEARNED_FD_STEP 1e-5
/* Largest dimension: that of cm_theory_lipschitz. */
#define CM_LEARNED_MAX_DIM 1024

typedef struct {
    size_t T;
    double c0, c1;
    cm_learned_class function_class;
    size_t n;                /* pairs per step; 0 = population fit (affine only: exact moments) */
    size_t best_factor;      /* rff: f^F_t from best_factor * n pairs */
    size_t n_eval;           /* X_t points per step for eps, eps_F (>= 2) */
    size_t n_posterior;      /* rff: posterior draws per point for f*_t (>= 2) */
    size_t features;         /* rff: m */
    double bandwidth;        /* rff: ell / s */
    double ridge;            /* rff: ridge per sample */
    size_t w1_points;        /* 0 = skip the exact-OT W1 */
    size_t lipschitz_points; /* 0 = skip both Lipschitz estimates */
    uint64_t seed;
    int monte_carlo_target;  /* affine: f*_t by Monte Carlo too (to test it against the exact
                                form); rff always uses Monte Carlo */
} cm_learned_options;

cm_learned_options cm_learned_options_default(void);

typedef struct {
    size_t t;
    double eps_l1, eps_rms, eps_f_l1, eps_f_rms;
    double eps_f_mc_noise; /* sqrt(E tr Var / n_posterior): bound on the L1 form's MC bias; 0 exact */
} cm_learned_step;

typedef struct {
    size_t T, d, P;          /* P: parameters per output coordinate */
    double eps_l1, eps_rms, eps_f_l1, eps_f_rms;   /* sums over t = 2..T */
    double eps_l1_se, eps_f_l1_se;                 /* Monte Carlo standard errors of the L1 sums */
    double eps_f_mc_noise;                         /* summed */
    double w1_learned;       /* exact OT W1 between w1_points of f_T(Y) and of X_1 (NaN: skipped) */
    double w1_floor;         /* the same between two independent samples of X_1 */
    double w2_learned_closed;/* law Gaussian and class affine: W2(N(c, A A'), law of X_1), else NaN */
    double w1_learned_closed;/* the same in W1 when d = 1, else NaN */
    double lipschitz_learned;/* sup over points of ||J f_T|| (NaN: skipped): lipschitz_points
                                draws of N(0, I), in 1-D a grid of CM_LEARNED_GRID_POINTS
                                over [-6, 6] (a noise-to-data map of separated modes is
                                steep only near one point, which random draws miss) */
    double lipschitz_exact;  /* the same for the exact flow map Phi_{T -> 1} (1-D: p_T / p_1(Phi)) */
} cm_learned_result;

typedef struct cm_learned cm_learned;

/* Check options, build the schedule and the features, allocate every buffer. */
cm_status cm_learned_alloc(cm_learned **out, const cm_law *law, const cm_learned_options *options);
void cm_learned_free(cm_learned *chain);

/* Run the recursion t = 2..T and measure everything. steps (may be NULL) receives entries for
 * t = 2..T at steps[t - 2] (T - 1 entries). A chain can be run once. */
cm_status cm_learned_run(cm_learned *chain, cm_learned_result *out, cm_learned_step *steps);

/* The coefficients W (P x d, row-major) of the current f (f_T after a run; identity before),
 * f(x) = W' phi(x): for affine, row 0 is the offset c and W[1 + i][j] = A[j][i]. Borrowed. */
const double *cm_learned_coefficients(const cm_learned *chain, size_t *P);

/* out[n x d] = f_T(x[n x d]) (the current f); no allocation. */
cm_status cm_learned_apply(cm_learned *chain, const double *x, size_t n, double *out);

/* Exact W1 between two uniform empirical measures of n points in R^d: in 1-D by sorting
 * (cm_metrics_w1_1d), otherwise by optimal transport (cm_ot_wasserstein). Allocates. */
cm_status cm_learned_w1(double *out, const double *x, const double *y, size_t n, size_t d);

/* ---- Lipschitz constants (docs/theory.md). Jacobian spectral norms of maps R^d -> R^d come
 * from cm_theory_lipschitz (theory.h): central differences and power iteration on J'J. */

/* The Lipschitz constant of the exact noise-to-data map Phi_{T -> 1} of `law` over points:
 * in 1-D the exact formula p_T(x) / p_1(Phi(x)) at the points and, through the inverse flow, on
 * a 4001-point grid of y = Phi(x) over the range they reach (which resolves the narrow peak of
 * Phi' between separated modes); otherwise cm_theory_lipschitz_flow. */
cm_status cm_learned_lipschitz_exact(double *out, const cm_law *law, double lambda_T,
                                     double lambda_1, const double *points, size_t n);

/* ---- Diagnostics of a network trained by `cm train --method lhw` on a gauss: or gmm: source.
 *
 * Units: the model works in standardised units x_s = (x - shift) / scale (the transform stored in
 * the model), where its chain is the VP chain of the standardised law L_s (cm_law_standardise)
 * and f(x, 1) = x. Its one-step output f(Y, T), Y ~ N(0, I), therefore targets X_1 of L_s,
 * sqrt(abar_1) X_s + sqrt(1 - abar_1) Z; the sampler maps it back, shift + scale f(Y, T), so the
 * matching target in data units is shift + scale X_1(L_s) (NOT X_1 of the original law: the
 * noise of X_1 is added in standardised units). W1 is measured in data units between those two.
 * The Lipschitz constants and the consistency gap are in standardised units (the chain's own). */
typedef struct {
    size_t T, n;
    double w1, w1_floor;          /* exact-OT W1 (data units): samples vs target; target vs target */
    double lipschitz_learned;     /* sup over points of ||J_x f(x, T)|| (standardised units) */
    double lipschitz_exact;       /* the same for Phi_{T->1} of the standardised law */
    double gap_total;             /* sum over t of the consistency gap */
    double gap_exact_total;       /* the same for the exact consistency function Phi_{t->1} */
} cm_network_diagnostics;

/* model: an [LHW] model; law: the exact law of its training source in data units (borrowed).
 * gap (may be NULL) receives T + 1 entries: gap[t] = E||f(U_t, t) - f(U_{t-1}, t-1)|| over n
 * same-noise pairs (t = 2..T; gap[0] = gap[1] = 0); gap_exact (may be NULL) the same for the
 * exact consistency function f(x, t) = Phi_{t->1}(x) of the standardised law on the same pairs:
 * the gap a perfect model shows (same-noise pairs are not on one flow trajectory). n points in
 * W1 (<= 10000). */
cm_status cm_learned_network(cm_network_diagnostics *out, double *gap, double *gap_exact,
                             const cm_model *model, const cm_law *law, size_t n,
                             size_t lipschitz_points, uint64_t seed);

/* ---- The consistency gap of a trained VE consistency model (ct, ict, cd: its f(x, sigma); cd2:
 * f(x, sigma) = g(x, sigma, sigma_min), cm_model_coefficients) on any data source, images too
 * (src/theory/consistency_gap.c).
 *
 * For increasing levels sigma_0 < ... < sigma_{L-1}, sigma_0 >= the model's sigma_min (e.g. its
 * Karras grid, cm_karras_grid), and n pairs (x0, z) -- x0 drawn from `data` (child i of the EVAL
 * stream of `seed`) and standardised with the model's transform, z ~ N(0, I) (the NOISE stream) --
 * the same pairs at every level:
 *     gap[i] = E || f(x0 + sigma_{i+1} z, sigma_{i+1}) - f(x0 + sigma_i z, sigma_i) ||,  i = 0..L-2,
 * in model units (images: pixels 2 x - 1), gap_se[i] its standard error (sample standard
 * deviation / sqrt(n)). With law, the exact law of the data source in data units (borrowed;
 * NULL when there is none), gap_exact[i] is the same for the exact consistency function
 * f*(x, sigma) = Phi_{sigma -> sigma_min}(x) of the standardised law on the same pairs: the gap a
 * perfect model shows (same-noise pairs are not on one flow trajectory); without a law
 * gap_exact (may be NULL) receives NaN. The network runs in float (the evaluator's default for
 * the model), so a row's value does not depend on n or the thread count. n in [2, 100000]. */
cm_status cm_consistency_gap_ve(double *gap, double *gap_se, double *gap_exact,
                                const cm_model *model, const cm_data *data, const cm_law *law,
                                const double *levels, size_t count, size_t n, uint64_t seed);

#endif
