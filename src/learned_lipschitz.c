/* learned_lipschitz.c: Lipschitz constants of maps R^d -> R^d (SPEC section 4): the largest
 * singular value of the Jacobian at sample points, from central differences and power iteration
 * on J'J; and for the exact noise-to-data flow map of a law, in 1-D the exact formula
 * Phi'(x) = p_T(x) / p_1(Phi(x)) (the flow map pushes p_T to p_1 monotonically). The sup over a
 * finite set of points is a lower estimate of the sup over R^d; see docs/theory.md.
 */
#include "cm/learned.h"

#include <math.h>
#include <string.h>

#include "cm/alloc.h"

#define POWER_ITERATIONS 1000
#define POWER_TOLERANCE 1e-12
#define DATA_GRID 4001 /* data-side grid of the 1-D exact slope */

/* Largest singular value of the d x d matrix J (row-major) by power iteration on J'J; v, w are
 * d scratch. */
static double spectral_norm(const double *J, size_t d, double *v, double *w) {
    if (d == 1) return fabs(J[0]);
    for (size_t i = 0; i < d; i++) v[i] = 1.0 + 0.01 * (double)i / (double)d; /* not orthogonal
                                                                    to a generic top vector */
    double norm = 0.0, previous = -1.0;
    for (int iteration = 0; iteration < POWER_ITERATIONS; iteration++) {
        double vv = 0.0;
        for (size_t i = 0; i < d; i++) vv += v[i] * v[i];
        vv = sqrt(vv);
        if (!(vv > 0.0)) return 0.0;
        for (size_t i = 0; i < d; i++) v[i] /= vv;
        for (size_t r = 0; r < d; r++) { /* w = J v */
            double s = 0.0;
            for (size_t i = 0; i < d; i++) s += J[r * d + i] * v[i];
            w[r] = s;
        }
        double ww = 0.0;
        for (size_t r = 0; r < d; r++) ww += w[r] * w[r];
        norm = sqrt(ww);
        for (size_t i = 0; i < d; i++) { /* v = J' w */
            double s = 0.0;
            for (size_t r = 0; r < d; r++) s += J[r * d + i] * w[r];
            v[i] = s;
        }
        if (fabs(norm - previous) <= POWER_TOLERANCE * norm) break;
        previous = norm;
    }
    return norm;
}

cm_status cm_learned_lipschitz(double *out, cm_map_fn map, void *context, const double *points,
                               size_t n, size_t d) {
    if (n == 0 || d == 0) return cm_error_set(CM_ERR_INVALID, "Lipschitz: no points");
    double *work = cm_malloc(4 * d * d + d * d + 2 * d + 2 * d, sizeof(double));
    if (!work) return cm_error_set(CM_ERR_NOMEM, "Lipschitz: scratch (d %zu)", d);
    double *in = work, *fx = in + 2 * d * d, *J = fx + 2 * d * d, *v = J + d * d, *w = v + 2 * d;
    double best = 0.0;
    cm_status status = CM_OK;
    for (size_t p = 0; p < n && status == CM_OK; p++) {
        const double *x = points + p * d;
        for (size_t i = 0; i < d; i++) {
            double h = CM_LEARNED_FD_STEP * (1.0 + fabs(x[i]));
            memcpy(in + (2 * i) * d, x, d * sizeof(double));
            memcpy(in + (2 * i + 1) * d, x, d * sizeof(double));
            in[(2 * i) * d + i] += h;
            in[(2 * i + 1) * d + i] -= h;
        }
        status = map(context, in, 2 * d, fx);
        if (status != CM_OK) break;
        for (size_t i = 0; i < d; i++) {
            /* the step actually taken (x + h and x - h rounded) */
            double step = in[(2 * i) * d + i] - in[(2 * i + 1) * d + i];
            for (size_t r = 0; r < d; r++)
                J[r * d + i] = (fx[(2 * i) * d + r] - fx[(2 * i + 1) * d + r]) / step;
        }
        double s = spectral_norm(J, d, v, w);
        if (!isfinite(s)) {
            status = cm_error_set(CM_ERR_NONFINITE, "Lipschitz: Jacobian at point %zu is not "
                                  "finite", p);
            break;
        }
        if (s > best) best = s;
    }
    cm_free(work);
    if (status == CM_OK) *out = best;
    return status;
}

typedef struct {
    const cm_law *law;
    double from, to;
} flow_context;

static cm_status flow_map(void *context, const double *x, size_t n, double *out) {
    const flow_context *f = context;
    return cm_law_flow(f->law, f->from, f->to, x, n, out, NULL, NULL);
}

cm_status cm_learned_lipschitz_exact(double *out, const cm_law *law, double lambda_T,
                                     double lambda_1, const double *points, size_t n) {
    size_t d = cm_law_dim(law);
    flow_context context = {law, lambda_T, lambda_1};
    if (d != 1) return cm_learned_lipschitz(out, flow_map, &context, points, n, d);
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
