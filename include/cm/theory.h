/* theory.h: exact ideal consistency training (eps = eps_F = 0) on laws known exactly
 * (docs/theory.md), the exact flow map as its reference, and Lipschitz constants of maps
 * (docs/theory.md).
 *
 * Ideal CT is [LHW]'s recursion f_1 = id, f_t(x) = E[ f_{t-1}(a_t x + b_t X_0) | U_t = x ] with
 * a_t = sqrt((1 - abar_{t-1}) / (1 - abar_t)), b_t = sqrt(abar_{t-1}) - a_t sqrt(abar_t), on the
 * [LHW] schedule (docs/math.md; cm_lhw_schedule). The sample is f_T(Y), Y ~ N(0, I), and the
 * target is the law of X_1 (not X_0), as in Theorem 1.
 *   - Gaussian data, any d: f_t is affine with per-eigendirection gain A_t(l) = prod_{s<=t} g_s(l)
 *     (docs/theory.md), so every distance is closed form.
 *   - 1-D mixtures: f_t on a grid (Gauss-Hermite over the posterior, natural cubic spline of
 *     f_{t-1}), W1 by quantiles.
 * Everything is in double; nothing here prints.
 */
#ifndef CM_THEORY_H
#define CM_THEORY_H

#include <stddef.h>

#include "cm/law.h"
#include "cm/schedule.h"
#include "cm/status.h"

/* The DDIM coefficients of step t (2 <= t <= T): a_t as above and b_t in the cancellation-free
 * form b_t = sqrt(abar_{t-1}) beta_t / ((1 - abar_t) (1 + a_t sqrt(alpha_t))). */
void cm_theory_ddim_coefficients(const cm_lhw_schedule *schedule, size_t t, double *a, double *b);

/* log A_T(l) = sum_{t=2..T} log g_t(l) for an eigenvalue l >= 0 of Cov X_0, with
 * g_t(l) = (sqrt(abar_{t-1} abar_t) l + sqrt((1 - abar_{t-1})(1 - abar_t))) / v_t(l) summed as
 * log1p(g_t - 1), g_t - 1 formed without cancellation. */
double cm_theory_gaussian_log_gain(const cm_lhw_schedule *schedule, double l);

typedef struct {
    double w2_ideal;       /* W2(f_T(Y), X_1), Y ~ N(0, I): closed form */
    double w1_ideal;       /* W1 of the same pair where closed (d = 1, or isotropic with zero
                            * mean: |a - sqrt(v_1)| E||Z||), else NAN */
    double w2_exact_map;   /* W2(Phi_{T->1}(Y), X_1) */
    double w1_exact_map;   /* W1 of the same pair where closed, else NAN */
    /* Bounds on w1_ideal, always set (equal to it where closed): the largest 1-D W1 of the
     * coordinate marginals (projections are 1-Lipschitz) below, W2 above (Jensen). */
    double w1_ideal_lower, w1_ideal_upper;
    double abar_T;         /* of the schedule: how far X_T is from N(0, I) */
    double gain_min, gain_max; /* range over directions of A_T(l) / sqrt(v_1(l)) */
} cm_theory_gaussian_result;

/* X_0 ~ N(0, diag(variances)) (the eigenbasis: any rotation gives the same distances), T >= 2,
 * c0, c1 > 0 ([LHW], docs/math.md). */
cm_status cm_theory_gaussian(cm_theory_gaussian_result *out, size_t d, const double *variances,
                             size_t T, double c0, double c1);
/* The same with X_0 ~ N(mean, diag(variances)) (mean NULL = 0). */
cm_status cm_theory_gaussian_mean(cm_theory_gaussian_result *out, size_t d, const double *mean,
                                  const double *variances, size_t T, double c0, double c1);

/* Discretisation of the 1-D grid recursion. */
typedef struct {
    size_t grid_points;    /* uniform grid over the support of X_t, per t */
    size_t hermite_nodes;  /* Gauss-Hermite nodes for the posterior expectation */
    double halfwidth_stds; /* grid reaches this many component stds beyond the outer means */
    size_t quantile_points;/* midpoints of the Y-quadrature for W1 by quantiles; 0 = 16 x grid */
    int refine;            /* 1: also run at twice grid, nodes and quantile points */
} cm_theory_grid_options;
cm_theory_grid_options cm_theory_grid_options_default(void);

typedef struct {
    double w1_ideal;          /* W1(f_T(Y), X_1) by quantiles */
    double w1_ddim;           /* W1 of the exact-denoiser DDIM chain from Y ~ N(0,1) down to
                               * t = 1, vs X_1 */
    double w1_exact_map;      /* W1(Phi_{T->1}(Y), X_1) */
    double lipschitz;         /* sup of the exact map's slope Phi_{T->1}'(x) =
                               * p_T(x) / p_1(Phi_{T->1}(x)) over a grid of X_T and one of X_1
                               * (x = Phi^-1(z)), and the secant slopes; +inf beyond double range */
    double log_lipschitz;     /* its natural log, finite even when lipschitz overflows */
    int lipschitz_resolved;   /* 0: a secant slope exceeded every point value by 10%: the peak
                               * is narrower than the grids and lipschitz is a lower bound */
    double refinement_change; /* |w1_ideal(grid) - w1_ideal(2x grid, nodes, quantile points)|;
                               * NAN when options->refine is 0 */
    int monotone;             /* 1: f_T was increasing on the quadrature (W1 from f_T(Phi^-1(u)));
                               * 0: the law of f_T(Y) was sorted numerically */
    double abar_T;
} cm_theory_mixture1d_result;

/* law: a 1-D mixture (cm_law_mixture_isotropic with d = 1, or a 1-D Gaussian); options NULL =
 * defaults. Beyond its grid f_{t-1} is extrapolated linearly with the spline's end slope. */
cm_status cm_theory_mixture1d(cm_theory_mixture1d_result *out, const cm_law *law, size_t T,
                              double c0, double c1, const cm_theory_grid_options *options);

/* f_T(x) of the grid recursion at n points x (the grid's spline; linear beyond the grid). */
cm_status cm_theory_mixture1d_ideal_map(double *out, const cm_law *law, size_t T, double c0,
                                        double c1, const cm_theory_grid_options *options,
                                        const double *x, size_t n);

/* ---- Lipschitz constants (docs/theory.md): the largest singular value of the Jacobian of a map
 * R^d -> R^d, maximised over sample points. The Jacobian at a point is formed by central
 * differences (2 d map evaluations, one batched call), then its spectral norm by power
 * iteration on J'J to relative change 1e-12. */
typedef cm_status (*cm_theory_map)(void *context, const double *x, size_t n, double *out);
/* out: max over the n points (n x d, d <= 1024) of ||J(x)||_2; step: finite-difference step
 * (relative to 1 + |x_i|; 0 = 1e-5); argmax (may be NULL): index of the maximising point. The map
 * is called with 2 d points at a time; one workspace of 4 d^2 doubles per call. */
cm_status cm_theory_lipschitz(double *out, size_t *argmax, cm_theory_map map, void *context,
                              size_t d, const double *points, size_t n, double step);
/* The same for the exact flow map Phi_{lambda_from -> lambda_to} of a law (cm_law_flow). */
cm_status cm_theory_lipschitz_flow(double *out, const cm_law *law, double lambda_from,
                                   double lambda_to, const double *points, size_t n);

#endif
