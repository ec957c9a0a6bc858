/* metrics.h: distances between empirical distributions that need no transport solver.
 *
 * W_p in 1-D is exact: (integral of |F_a^{-1}(u) - F_b^{-1}(u)|^p du)^(1/p) over the quantile
 * functions, which handles n != m. Sliced W1 averages the 1-D W1 of the projections onto
 * `projections` directions drawn uniformly on the sphere from `seed` (the same seed gives the
 * same directions, so two sliced distances with one seed are comparable); sliced W2 is
 * (mean of W2^2 over the directions)^(1/2). Max-sliced W1 is a lower bound of
 * max_theta W1(theta_# a, theta_# b): the best of the seeded directions, refined by projected
 * gradient ascent on the sphere. MMD^2 (Gaussian kernel) and the energy distance are the
 * unbiased U-statistics. Exact optimal transport in d > 1 is in ot.h; docs/metrics.md has the
 * formulas, costs and the meaning of each number.
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

/* Exact W_p (p >= 1) between the empirical laws of a[0..n) and b[0..m) (1-D). Allocates. */
cm_status cm_metrics_wp_1d(double *out, const double *a, size_t n, const double *b, size_t m,
                           double p);
/* integral of |F_a^{-1} - F_b^{-1}|^p = W_p^p on already sorted inputs (no allocation). */
double cm_metrics_wp_1d_sorted(const double *a_sorted, size_t n, const double *b_sorted,
                               size_t m, double p);
/* Sliced W2 = (mean over directions of W2^2)^(1/2), directions as for sliced W1. */
cm_status cm_metrics_sliced_w2(double *out, const double *a, size_t n, const double *b, size_t m,
                               size_t d, size_t projections, uint64_t seed);

/* Max-sliced W1: the largest 1-D W1 over the `projections` seeded directions of sliced W1, then
 * up to `steps` steps of projected gradient ascent on the sphere from the best one (a step is
 * kept only if it increases W1). A lower bound of the true maximum, which itself lies between
 * sliced W1 and W1. direction (d values, may be NULL) receives the direction found. */
#define CM_METRICS_MAX_SLICED_STEPS 20
cm_status cm_metrics_max_sliced_w1(double *out, double *direction, const double *a, size_t n,
                                   const double *b, size_t m, size_t d, size_t projections,
                                   size_t steps, uint64_t seed);

/* Median of the pairwise distances |z - z'| within the pooled points of a and b, over an evenly
 * spaced subset of at most CM_METRICS_MEDIAN_POINTS of them (deterministic): the median
 * heuristic bandwidth of the Gaussian kernel (Gretton et al., JMLR 2012). */
#define CM_METRICS_MEDIAN_POINTS 1000
cm_status cm_metrics_median_distance(double *out, const double *a, size_t n, const double *b,
                                     size_t m, size_t d);

/* Unbiased MMD^2 with the Gaussian kernel k(x, y) = exp(-|x - y|^2 / (2 h^2)), h = bandwidth > 0
 * (Gretton et al. 2012, eq. 3): can be slightly negative when the laws are equal. n, m >= 2.
 * O((n + m)^2 d) time, no allocation. */
cm_status cm_metrics_mmd2(double *out, const double *a, size_t n, const double *b, size_t m,
                          size_t d, double bandwidth);

/* Energy distance 2 E|X - Y| - E|X - X'| - E|Y - Y'| (Szekely and Rizzo 2013), unbiased
 * (U-statistics within each sample, so it can be slightly negative). n, m >= 2. */
cm_status cm_metrics_energy(double *out, const double *a, size_t n, const double *b, size_t m,
                            size_t d);

#endif
