/* learned_lipschitz.c: the Lipschitz constant of the exact noise-to-data flow map of a law
 * (docs/theory.md): in 1-D the exact formula Phi'(x) = p_T(x) / p_1(Phi(x)) (the flow map pushes
 * p_T to p_1 monotonically) on a noise-side and a data-side grid; in d > 1 the Jacobian spectral
 * norm of cm_theory_lipschitz_flow. The sup over a finite set of points is a lower estimate of
 * the sup over R^d; see docs/theory.md.
 */
#include "cm/learned.h"

#include <math.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/theory.h"

#define DATA_GRID 4001 /* data-side grid of the 1-D exact slope */

cm_status cm_learned_lipschitz_exact(double *out, const cm_law *law, double lambda_T,
                                     double lambda_1, const double *points, size_t n) {
    size_t d = cm_law_dim(law);
    if (d != 1) return cm_theory_lipschitz_flow(out, law, lambda_T, lambda_1, points, n);
    if (n == 0) return cm_error_set(CM_ERR_INVALID, "Lipschitz: no points");
    /* Phi' on the noise side at the given points, and on the data side on a uniform grid of
     * DATA_GRID points over the range of Phi(points): between separated modes the map crosses
     * the valley of p_1 over a tiny interval of x (width ~ gap / L_f), which a grid in x can
     * miss, while in y the valley is wide: Phi'(Phi^-1(y)) = p_T(Phi^-1(y)) / p_1(y). */
    size_t m = DATA_GRID;
    double *work = cm_malloc(n + 2 * m + cm_law_scratch_size(law) + 1, sizeof(double));
    if (!work) return cm_error_set(CM_ERR_NOMEM, "Lipschitz: scratch");
    double *mapped = work, *ys = work + n, *xs = ys + m, *scratch = xs + m;
    cm_status status = cm_law_flow(law, lambda_T, lambda_1, points, n, mapped, NULL, NULL);
    double best = 0.0, low = INFINITY, high = -INFINITY;
    for (size_t p = 0; p < n && status == CM_OK; p++) {
        double slope = exp(cm_law_log_density_point(law, lambda_T, points + p, scratch) -
                           cm_law_log_density_point(law, lambda_1, mapped + p, scratch));
        if (slope > best) best = slope;
        low = fmin(low, mapped[p]);
        high = fmax(high, mapped[p]);
    }
    if (status == CM_OK && high > low) {
        for (size_t k = 0; k < m; k++) ys[k] = low + (high - low) * (double)k / (double)(m - 1);
        status = cm_law_flow(law, lambda_1, lambda_T, ys, m, xs, NULL, NULL);
        for (size_t k = 0; k < m && status == CM_OK; k++) {
            double slope = exp(cm_law_log_density_point(law, lambda_T, xs + k, scratch) -
                               cm_law_log_density_point(law, lambda_1, ys + k, scratch));
            if (slope > best) best = slope;
        }
    }
    cm_free(work);
    if (status == CM_OK) *out = best;
    return status;
}
