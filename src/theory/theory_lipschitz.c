/* theory_lipschitz.c: Lipschitz constants of maps R^d -> R^d over sample points (docs/theory.md:
 * "estimate the largest singular value of the Jacobian (power iteration with finite
 * differences)"), for the exact flow maps of Assumption 1 of [LHW] and for learned maps.
 *
 * At each point the Jacobian is built column by column from central differences (all 2 d
 * perturbed points in one batched call of the map), and ||J||_2 comes from power iteration on
 * J'J. Central differences have error O(step^2 |f'''|); the default step 1e-5 (relative to
 * 1 + |x_i|) balances that against rounding of the map values (about 1e-16 / 1e-5).
 * This is a sampled lower estimate of sup_x ||J(x)||: the sup over all x is not computable.
 */
#include <math.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/theory.h"

#define LIPSCHITZ_DEFAULT_STEP 1e-5
#define POWER_TOLERANCE 1e-12 /* relative change of the estimate that stops power iteration */
#define POWER_MAX_ITERATIONS 1000
/* The Jacobian and the 2 d probes take 4 d^2 doubles: 32 MB at d = 1024. */
#define LIPSCHITZ_MAX_DIM 1024

/* ||J||_2 of the d x d row-major J by power iteration on J'J (v: d scratch, w: d scratch). */
static double spectral_norm(const double *J, size_t d, double *v, double *w) {
    for (size_t i = 0; i < d; i++) v[i] = 1.0 / sqrt((double)d) * (1.0 + 0.01 * (double)i);
    double estimate = 0.0;
    for (int iteration = 0; iteration < POWER_MAX_ITERATIONS; iteration++) {
        for (size_t r = 0; r < d; r++) { /* w = J v */
            double s = 0.0;
            for (size_t c = 0; c < d; c++) s += J[r * d + c] * v[c];
            w[r] = s;
        }
        for (size_t c = 0; c < d; c++) { /* v = J' w */
            double s = 0.0;
            for (size_t r = 0; r < d; r++) s += J[r * d + c] * w[r];
            v[c] = s;
        }
        double norm = 0.0;
        for (size_t c = 0; c < d; c++) norm += v[c] * v[c];
        norm = sqrt(norm);
        if (norm == 0.0) return 0.0;
        for (size_t c = 0; c < d; c++) v[c] /= norm;
        double next = sqrt(norm); /* ||J'J v|| -> sigma_max^2 */
        if (fabs(next - estimate) <= POWER_TOLERANCE * next) return next;
        estimate = next;
    }
    return estimate;
}

cm_status cm_theory_lipschitz(double *out, size_t *argmax, cm_theory_map map, void *context,
                              size_t d, const double *points, size_t n, double step) {
    if (!out || !map || !points || d == 0 || n == 0)
        return cm_error_set(CM_ERR_INVALID, "lipschitz: NULL argument or empty (d %zu, n %zu)", d,
                            n);
    if (!(step >= 0.0) || !isfinite(step))
        return cm_error_set(CM_ERR_INVALID, "lipschitz: step %g", step);
    if (d > LIPSCHITZ_MAX_DIM)
        return cm_error_set(CM_ERR_INVALID, "lipschitz: d = %zu > %d", d, LIPSCHITZ_MAX_DIM);
    if (step == 0.0) step = LIPSCHITZ_DEFAULT_STEP;
    double *probe = cm_malloc(4 * d * d + 2 * d, sizeof(double));
    if (!probe) return cm_error_set(CM_ERR_NOMEM, "lipschitz: workspace for d = %zu", d);
    double *values = probe + 2 * d * d, *J = values, *v = values + 2 * d * d, *w = v + d;
    cm_status status = CM_OK;
    double best = 0.0;
    size_t best_index = 0;
    for (size_t p = 0; p < n && status == CM_OK; p++) {
        const double *x = points + p * d;
        for (size_t c = 0; c < d; c++) {
            double h = step * (1.0 + fabs(x[c]));
            memcpy(probe + (2 * c) * d, x, d * sizeof(double));
            memcpy(probe + (2 * c + 1) * d, x, d * sizeof(double));
            probe[(2 * c) * d + c] += h;
            probe[(2 * c + 1) * d + c] -= h;
        }
        status = map(context, probe, 2 * d, values);
        if (status != CM_OK) break;
        /* J[r][c] = (f_r(x + h e_c) - f_r(x - h e_c)) / 2h, built in the probe buffer (no
         * longer needed) and then moved over the map values. */
        for (size_t c = 0; c < d; c++) {
            double h = step * (1.0 + fabs(x[c]));
            double hp = (x[c] + h) - x[c], hm = x[c] - (x[c] - h); /* the steps as represented */
            for (size_t r = 0; r < d; r++)
                probe[r * d + c] = (values[(2 * c) * d + r] - values[(2 * c + 1) * d + r]) /
                                   (hp + hm);
        }
        memcpy(J, probe, d * d * sizeof(double));
        for (size_t i = 0; i < d * d; i++)
            if (!isfinite(J[i])) {
                status = cm_error_set(CM_ERR_NONFINITE, "lipschitz: Jacobian at point %zu", p);
                break;
            }
        if (status != CM_OK) break;
        double norm = spectral_norm(J, d, v, w);
        if (norm > best || p == 0) {
            best = norm;
            best_index = p;
        }
    }
    cm_free(probe);
    if (status == CM_OK) {
        *out = best;
        if (argmax) *argmax = best_index;
    }
    return status;
}

typedef struct {
    const cm_law *law;
    double from, to;
} flow_context;

static cm_status flow_map(void *context, const double *x, size_t n, double *out) {
    const flow_context *c = context;
    return cm_law_flow(c->law, c->from, c->to, x, n, out, NULL, NULL);
}

cm_status cm_theory_lipschitz_flow(double *out, const cm_law *law, double lambda_from,
                                   double lambda_to, const double *points, size_t n) {
    if (!law) return cm_error_set(CM_ERR_INVALID, "lipschitz: law is NULL");
    flow_context c = {law, lambda_from, lambda_to};
    return cm_theory_lipschitz(out, NULL, flow_map, &c, cm_law_dim(law), points, n, 0.0);
}
