/* metrics.h: distances between empirical distributions (first set: 1-D and sliced W1).
 *
 * W1 in 1-D is exact: the integral of |F_a^{-1}(u) - F_b^{-1}(u)| du over the quantile functions,
 * which handles n != m. Sliced W1 averages the 1-D W1 of the projections onto `projections`
 * directions drawn uniformly on the sphere from `seed` (the same seed gives the same
 * directions, so two sliced distances with one seed are comparable). Exact optimal transport
 * in d > 1 comes with its own module.
 */
#ifndef CM_METRICS_H
#define CM_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "cm/status.h"

/* Exact W1 between the empirical laws of a[0..n) and b[0..m) (1-D). Allocates a workspace. */
cm_status cm_metrics_w1_1d(double *out, const double *a, size_t n, const double *b, size_t m);
/* The same on already sorted inputs (no allocation). */
double cm_metrics_w1_1d_sorted(const double *a_sorted, size_t n, const double *b_sorted,
                               size_t m);
/* Sliced W1 between a (n x d) and b (m x d). */
cm_status cm_metrics_sliced_w1(double *out, const double *a, size_t n, const double *b, size_t m,
                               size_t d, size_t projections, uint64_t seed);

#endif
