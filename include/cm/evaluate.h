/* evaluate.h: how good are samples? Distances to a reference source, each beside its noise
 * floor: the same distance between two independent reference samples of the same size
 * (SPEC section 7: an empirical distance is biased by sampling noise, so a number means little
 * without its floor).
 *
 * Reference laws (built-in sets, gauss:, gmm:) give two fresh independent draws A and B of n
 * points each (children 0 and 1 of the seed's EVAL stream). A reference file of m rows is
 * shuffled (seeded) and split into disjoint A and B of n' = min(n, floor(m / 2)) rows each; the
 * samples are then cut to their first n' rows, and n' is reported.
 */
#ifndef CM_EVALUATE_H
#define CM_EVALUATE_H

#include <stddef.h>
#include <stdint.h>

#include "cm/data.h"
#include "cm/status.h"

#define CM_EVALUATE_PROJECTIONS_DEFAULT 512

typedef struct {
    size_t n;              /* points used from the samples and from each reference draw */
    size_t dim;
    size_t projections;
    double sliced_w1;      /* SW1(samples, A) */
    double sliced_w1_floor;/* SW1(A, B) */
    double w1;             /* exact W1(samples, A) when dim == 1, else NaN */
    double w1_floor;       /* exact W1(A, B) when dim == 1, else NaN */
} cm_evaluation;

/* samples: n x dim, finite. Allocates its own workspace. */
cm_status cm_evaluate(cm_evaluation *out, const double *samples, size_t n, size_t dim,
                      const cm_data *reference, size_t projections, uint64_t seed);

#endif
