/* gaussian.h: closed forms between Gaussian laws, the exact answers that sampled distances are
 * checked against (docs/theory.md: the output law of ideal consistency training on Gaussian data
 * is Gaussian).
 *
 *   W2^2(N(m1, S1), N(m2, S2)) = |m1 - m2|^2 + tr S1 + tr S2 - 2 tr (S1^{1/2} S2 S1^{1/2})^{1/2}
 *                                (Dowson and Landau 1982; Givens and Shortt 1984)
 *   KL(N1 || N2) = ( tr(S2^-1 S1) + (m2 - m1)' S2^-1 (m2 - m1) - d + log det S2 - log det S1 ) / 2
 *   W1 in 1-D    = E|dm + ds Z| = |ds| sqrt(2/pi) exp(-dm^2 / (2 ds^2)) + dm erf(dm / (sqrt2 |ds|)),
 *                  dm = m1 - m2, ds = s1 - s2 (the monotone coupling pairs the u-quantiles
 *                  m_k + s_k Phi^{-1}(u), so W1 = int_0^1 |dm + ds Phi^{-1}(u)| du, a folded normal)
 *
 * Matrix square roots and eigenvalues come from LAPACK's symmetric eigensolver (dsyevd), log
 * determinants and solves from its Cholesky factorisation (dpotrf, dtrtrs), through LAPACKE.
 * Covariances are d x d, symmetric (checked), and stored in either order.
 */
#ifndef CM_GAUSSIAN_H
#define CM_GAUSSIAN_H

#include <stddef.h>

#include "cm/status.h"

/* W2 between N(mean1, cov1) and N(mean2, cov2); covariances symmetric positive semidefinite. */
cm_status cm_gaussian_w2(double *out, const double *mean1, const double *cov1,
                         const double *mean2, const double *cov2, size_t d);

/* KL(N(mean1, cov1) || N(mean2, cov2)); covariances symmetric positive definite. */
cm_status cm_gaussian_kl(double *out, const double *mean1, const double *cov1,
                         const double *mean2, const double *cov2, size_t d);

/* W1 between the 1-D laws N(mean1, std1^2) and N(mean2, std2^2), std >= 0. */
cm_status cm_gaussian_w1_1d(double *out, double mean1, double std1, double mean2, double std2);

/* The symmetric square root U diag(sqrt l) U' of a symmetric positive semidefinite d x d
 * matrix (eigenvalues within rounding below 0 count as 0). */
cm_status cm_gaussian_sqrtm(double *out, const double *matrix, size_t d);

/* Sample mean (d) and covariance (d x d, divisor n - 1) of n x d points, n >= 2. */
cm_status cm_gaussian_fit(double *mean, double *cov, const double *x, size_t n, size_t d);

#endif
