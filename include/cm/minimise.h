/* minimise.h: minimisation of a function of one variable that may have more than one basin:
 * a grid over the interval, then golden-section search (Kiefer 1953) in the two grid cells
 * around the best grid point; the best point evaluated wins. Used by the level search of
 * [CM] Algorithm 1 (multistep.h) and by `cm nfe --gaussian`'s two-step [LFC] table.
 *
 * Golden section alone assumes one basin and can settle in the worse of two (a trained model's
 * distance against its second level has minima near 2.8 and 0.02, docs/sampling.md); the grid
 * finds the basin, the section refines inside it. Not done here: derivatives, several
 * variables, or a stopping tolerance (the caller states the number of evaluations).
 */
#ifndef CM_MINIMISE_H
#define CM_MINIMISE_H

#include <stddef.h>

#include "cm/status.h"

/* *out = f(x); a status other than CM_OK stops the search and is returned. NaN never wins. */
typedef cm_status (*cm_minimise_fn)(double *out, void *context, double x);

/* Minimise f over [lo, hi] (finite, lo <= hi) with grid + golden evaluations:
 *  - `grid` >= 1 points lo, lo + h, ..., hi, h = (hi - lo) / (grid - 1) (one point: the middle);
 *  - then, if grid >= 2 and golden >= 2, golden-section search with `golden` evaluations in
 *    [max(lo, x* - h), min(hi, x* + h)] around the best grid point x*.
 * *out_x: the best point evaluated; *out_value (may be NULL): its value. When no value is below
 * HUGE_VAL (every point refused), the middle of [lo, hi] stands in for x* and is returned.
 * Allocates nothing. */
cm_status cm_minimise_grid_golden(double *out_x, double *out_value, cm_minimise_fn f,
                                  void *context, double lo, double hi, size_t grid, size_t golden);

#endif
