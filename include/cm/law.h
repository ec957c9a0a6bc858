/* law.h: exact data laws and everything the forward process makes of them ([LHW]; docs/theory.md):
 * density, score, denoiser, posterior of X_0 given X_t, and the exact probability-flow map.
 *
 * A law is a finite Gaussian mixture sum_j pi_j N(m_j, S_j) in R^d. Each covariance is kept as
 * its eigendecomposition S_j = U_j diag(l_j) U_j' (U_j = identity for isotropic and diagonal
 * components, so those cost O(d) per point, not O(d^2)). A single Gaussian is K = 1.
 *
 * Time is the variance-preserving forward process X_t = sqrt(abar) X_0 + sqrt(1 - abar) Z,
 * indexed by its log-SNR lambda = log(abar / (1 - abar)): abar = 1 / (1 + e^-lambda) and
 * 1 - abar = 1 / (1 + e^lambda) are both formed without cancellation (never 1 - abar by
 * subtraction). lambda = +inf is the data itself. The [LHW] chain's lambda_t is
 * cm_lhw_schedule_log_snr(schedule, t); the VE noise level is sigma = exp(-lambda / 2) and a VE
 * point is x_ve = x / sqrt(abar).
 *
 * Given X_t = x, component j has posterior weight w_j(x) proportional to
 * pi_j N(x; sqrt(abar) m_j, U_j diag(v_j) U_j'), v_j = abar l_j + 1 - abar, computed by
 * log-sum-exp (modes 100 standard deviations apart do not underflow), and
 *     X_0 | X_t = x, j  ~  N( m_j + U_j diag(sqrt(abar) l_j / v_j) U_j' (x - sqrt(abar) m_j),
 *                            U_j diag(l_j (1 - abar) / v_j) U_j' ).
 * The denoiser D(x) = E[X_0 | X_t = x] = sum_j w_j(x) (posterior mean j); the score is
 * grad log p_t(x) = (sqrt(abar) D(x) - x) / (1 - abar) (Tweedie).
 *
 * The flow map Phi_{lambda_from -> lambda_to} integrates the probability-flow ODE of docs/math.md
 *     dx/dlambda = ( sqrt(abar) D(x; lambda) - abar x ) / 2
 * with an adaptive, error-controlled Runge-Kutta method; for K = 1 it is also available in
 * closed form: Phi(x) = sqrt(abar_to) m + U diag(sqrt(v_to / v_from)) U' (x - sqrt(abar_from) m).
 *
 * Ownership: a cm_law is opaque and owned by the caller (cm_law_free). Functions on points work
 * on batches x[n x d] (row-major), write into caller arrays, and allocate at most one workspace
 * per call (never per point); the *_point functions take caller scratch and allocate nothing.
 * All in double.
 */
#ifndef CM_LAW_H
#define CM_LAW_H

#include <stddef.h>

#include "cm/data.h"
#include "cm/rng.h"
#include "cm/status.h"

typedef struct cm_law cm_law; /* opaque */

/* N(mean, cov), cov a symmetric positive semidefinite d x d matrix (eigendecomposed by LAPACK
 * dsyevd). mean NULL means 0. */
cm_status cm_law_gaussian(cm_law **out, size_t d, const double *mean, const double *cov);
/* N(mean, diag(variances)), variances >= 0. mean NULL means 0. */
cm_status cm_law_gaussian_diagonal(cm_law **out, size_t d, const double *mean,
                                   const double *variances);
/* sum_j weights_j N(means_j, stds_j^2 I): weights > 0 (normalised here), means k x d, stds >= 0. */
cm_status cm_law_mixture_isotropic(cm_law **out, size_t d, size_t k, const double *weights,
                                   const double *means, const double *stds);
/* sum_j weights_j N(means_j, diag(variances_j)): variances k x d, >= 0. */
cm_status cm_law_mixture_diagonal(cm_law **out, size_t d, size_t k, const double *weights,
                                  const double *means, const double *variances);
/* The law of (X - shift) / scale (per coordinate, scale > 0) for X ~ law: what a model trained
 * on standardised data sees (cm_transform, data.h). Components stay diagonal when they were;
 * full covariances are re-eigendecomposed. *out is a new law owned by the caller. */
cm_status cm_law_standardise(cm_law **out, const cm_law *law, const double *shift,
                             const double *scale);
/* The exact law of a gauss: or gmm: data source; CM_ERR_INVALID for other sources. */
cm_status cm_law_from_data(cm_law **out, const cm_data *data);
void cm_law_free(cm_law *law);

size_t cm_law_dim(const cm_law *law);
size_t cm_law_components(const cm_law *law);
/* Mean (d) and covariance (d x d) of X_0. */
void cm_law_moments(const cm_law *law, double *mean, double *cov);
/* The components of a law whose covariances are diagonal (every law but a full-covariance
 * Gaussian), borrowed from the law: normalised log weights[K], means[K x d] and variances[K x d].
 * CM_ERR_UNSUPPORTED for a full covariance (its variances are in an eigenbasis). */
cm_status cm_law_diagonal_components(const cm_law *law, const double **log_weights,
                                     const double **means, const double **variances);

/* Draw n points of X_0 (n x d); point i uses only cm_rng_fork(rng, rng->position + i), as
 * cm_data_sample does, and the rng advances by n. No allocation. */
void cm_law_sample(const cm_law *law, cm_rng *rng, size_t n, double *out);

/* Scratch doubles the *_point functions need: 2 K + 2 d. */
size_t cm_law_scratch_size(const cm_law *law);

/* log p_t(x) of X_t at log-SNR lambda (finite lambda; no allocation). */
double cm_law_log_density_point(const cm_law *law, double lambda, const double *x,
                                double *scratch);
/* Denoiser D(x) into out[d], and optionally (log_weights not NULL) the K normalised log
 * posterior component weights. */
void cm_law_denoise_point(const cm_law *law, double lambda, const double *x, double *out,
                          double *log_weights, double *scratch);

/* Batch forms over x[n x d] into out[n x d] (log density: out[n]). */
cm_status cm_law_log_density(const cm_law *law, double lambda, const double *x, size_t n,
                             double *out);
cm_status cm_law_denoise(const cm_law *law, double lambda, const double *x, size_t n, double *out);
cm_status cm_law_score(const cm_law *law, double lambda, const double *x, size_t n, double *out);

/* Posterior of X_0 given X_t = x (one point): normalised log weights[K], means[K x d], and the
 * per-eigendirection variances[K x d] (in component j's eigenbasis U_j). No allocation. */
cm_status cm_law_posterior(const cm_law *law, double lambda, const double *x, double *log_weights,
                           double *means, double *variances);
/* Draw n points of X_0 | X_t = x (one conditioning point x, n draws into out[n x d]); draw i uses
 * only cm_rng_fork(rng, rng->position + i). */
cm_status cm_law_posterior_sample(const cm_law *law, double lambda, const double *x, cm_rng *rng,
                                  size_t n, double *out);
/* The same draws from a posterior already computed by cm_law_posterior (its three outputs), with
 * no allocation: for callers that condition on many points in a loop. */
void cm_law_posterior_draw(const cm_law *law, const double *log_weights, const double *means,
                           const double *variances, cm_rng *rng, size_t n, double *out);

/* Options and counters of the flow-map integrator. */
typedef struct {
    double relative_tolerance; /* per-step local error control; default 1e-10 */
    double absolute_tolerance; /* default 1e-12 */
    size_t max_steps;          /* per point; default 100000 */
    int force_ode;             /* 1: integrate even when a closed form exists (for tests) */
} cm_law_flow_options;
typedef struct {
    size_t steps, rejected;    /* summed over the batch */
    size_t denoiser_calls;
} cm_law_flow_stats;
cm_law_flow_options cm_law_flow_options_default(void);

/* Exact probability-flow map: out[i] = Phi_{lambda_from -> lambda_to}(x[i]) for n points
 * (either direction; lambdas finite). options NULL = defaults; stats may be NULL.
 * CM_ERR_NONFINITE if a point leaves the finite range, CM_ERR_INVALID if max_steps is hit. */
cm_status cm_law_flow(const cm_law *law, double lambda_from, double lambda_to, const double *x,
                      size_t n, double *out, const cm_law_flow_options *options,
                      cm_law_flow_stats *stats);

#endif
