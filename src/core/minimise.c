/* minimise.c: a grid, then golden-section search around its best point (minimise.h). Written
 * here rather than taken from GSL's gsl_min_fminimizer_goldensection: that needs a bracket
 * with f(middle) below both ends, which is what the grid is for, and one loop of ours is
 * smaller than the dependency. The section keeps the two interior points a = b_end - g L and
 * b = a_end + g L (g = (sqrt 5 - 1) / 2), drops the side beyond the worse one and reuses the
 * better one, so each evaluation after the first two shrinks the bracket by g.
 */
#include "cm/minimise.h"

#include <math.h>

/* Golden-section search on [a_end, b_end] with `evaluations` (>= 2) values of f; the best of
 * them into *best / *best_at when below *best. */
static cm_status golden_section(double *best, double *best_at, cm_minimise_fn f, void *context,
                                double a_end, double b_end, size_t evaluations) {
    const double golden = 0.5 * (sqrt(5.0) - 1.0);
    double a = b_end - golden * (b_end - a_end), b = a_end + golden * (b_end - a_end), fa, fb;
    CM_TRY(f(&fa, context, a));
    CM_TRY(f(&fb, context, b));
    for (size_t it = 2; it < evaluations; it++) {
        if (fa < fb) { /* minimum in [a_end, b] */
            b_end = b, b = a, fb = fa;
            a = b_end - golden * (b_end - a_end);
            CM_TRY(f(&fa, context, a));
        } else {
            a_end = a, a = b, fa = fb;
            b = a_end + golden * (b_end - a_end);
            CM_TRY(f(&fb, context, b));
        }
    } /* golden section only drops the worse interior point: its best is min(fa, fb) */
    if (fmin(fa, fb) < *best) *best = fmin(fa, fb), *best_at = fa < fb ? a : b;
    return CM_OK;
}

cm_status cm_minimise_grid_golden(double *out_x, double *out_value, cm_minimise_fn f,
                                  void *context, double lo, double hi, size_t grid, size_t golden) {
    if (grid < 1 || !isfinite(lo) || !isfinite(hi) || !(lo <= hi))
        return cm_error_set(CM_ERR_INVALID, "minimise: interval [%g, %g] with %zu grid points",
                            lo, hi, grid);
    double best = HUGE_VAL, best_at = 0.5 * (lo + hi);
    double step = grid > 1 ? (hi - lo) / (double)(grid - 1) : 0;
    for (size_t j = 0; j < grid; j++) {
        double at = grid > 1 ? lo + step * (double)j : best_at, value;
        CM_TRY(f(&value, context, at));
        if (value < best) best = value, best_at = at;
    }
    if (golden >= 2 && grid > 1)
        CM_TRY(golden_section(&best, &best_at, f, context, fmax(lo, best_at - step),
                              fmin(hi, best_at + step), golden));
    *out_x = best_at;
    if (out_value) *out_value = best;
    return CM_OK;
}
