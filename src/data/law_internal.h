/* law_internal.h: the representation of a cm_law, shared by law.c, law_flow.c and the theory
 * modules (not installed; include/cm/law.h is the public interface).
 *
 * A law is sum_j weights_j N(means_j, U diag(eigenvalues_j) U'). basis is NULL (U = I: isotropic
 * and diagonal components) or, for a single full-covariance Gaussian (K = 1), the d x d matrix
 * whose row c is eigenvector c. All arrays are owned by the law.
 */
#ifndef CM_LAW_INTERNAL_H
#define CM_LAW_INTERNAL_H

#include <stddef.h>

#include "cm/law.h"

struct cm_law {
    size_t d, k;
    double *log_weights; /* K, normalised; the same allocation holds weights */
    double *weights;     /* K, normalised, = exp(log_weights) */
    double *means;       /* K x d */
    double *eigenvalues; /* K x d, >= 0 */
    double *basis;       /* d x d or NULL */
    int equal_weights;   /* 1: components are drawn uniformly (as data.c's cm_rng_below) */
};

/* |lambda| above which 1 / (1 + e^|lambda|) underflows toward the subnormals (e^-700 = 1e-304):
 * a point mass (variance 0) would then have v = 0. */
#define CM_LAW_MAX_ABS_LAMBDA 700.0

/* abar and 1 - abar at log-SNR lambda, each without cancellation. */
void cm_law_abar(double lambda, double *abar, double *one_minus_abar);
/* y = U' r (copy when basis is NULL); y and r distinct. */
void cm_law_to_eigen(const cm_law *law, const double *r, double *y);
/* out += U y. */
void cm_law_from_eigen_add(const cm_law *law, const double *y, double *out);
/* Component of one draw: uniform by cm_rng_below when log_weights is NULL and the law's weights
 * are equal, else inversion of the given (or the law's) weights with one uniform. */
size_t cm_law_draw_component(const cm_law *law, const double *log_weights, cm_rng *rng);

#endif
