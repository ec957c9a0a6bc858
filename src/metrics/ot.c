/* ot.c: exact optimal transport between discrete measures: the API of ot.h around the two exact
 * methods (network simplex, ot_simplex.c; shortest augmenting paths, ot_assignment.c):
 * workspaces, cost matrices, weights, the 1-D orders that steer the search, the optimality
 * certificate, W1 and W2 of point sets, and the documented subsampling of large sets.
 *
 * The cost matrix is float: it halves the memory and the traffic of the full scans (n = m = 5000
 * is 100 MB instead of 200 MB), and since each entry is rounded relatively (2^-24), the optimal
 * plan of the float problem is optimal for the exact costs within a relative 1.2e-7 of W; the
 * reported distance re-evaluates that plan with double-precision distances. Hand-written: no
 * Debian C library computes exact optimal transport.
 */
#include "cm/ot.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/rng.h"
#include "metrics/ot_internal.h"

/* Candidate arcs kept per node (sources + sinks): the seeds take CM_OT_KNN (a list per row and
 * per column), each full scan adds up to 3 (2 per row, 1 per column); when the next scan could
 * overflow, the list is compacted (ot_simplex.c). 24 was never filled at n = 5000 on samples of
 * one law; a far-off law fills it after a few tens of scans. */
#define ARCS_PER_NODE 32
/* Marginals of the given weights must agree to this relative difference. */
#define WEIGHT_SUM_TOLERANCE 1e-9
/* Certificate tolerances. Costs: relative to the largest cost; the solver enforces reduced
 * costs >= -1e-12 max C and potentials carry double rounding over paths of up to n + m arcs,
 * so 1e-9 leaves three orders of magnitude. Mass: relative to the total mass (exact for uniform
 * weights, whose flows are integers; a few ulps for general weights). */
#define CHECK_COST_TOLERANCE 1e-9
#define CHECK_MASS_TOLERANCE 1e-9
/* Cost matrices of points of this dimension and more take their inner products from BLAS
 * (dgemm), GEMM_ROWS rows at a time; below it the direct loop is as fast. */
#define GEMM_MIN_DIM 8
#define GEMM_ROWS 64
/* |x|^2 + |y|^2 - 2 x.y carries an absolute error of about (d + 2) 1.1e-16 (|x|^2 + |y|^2); where
 * the result is below (d + 2) 1e-8 (|x|^2 + |y|^2) that error could exceed 1.1e-8 of the entry,
 * so those entries are recomputed from the differences (the float entry keeps 6e-8). */
#define CANCELLATION_GUARD 1e-8
/* Power iterations for the principal axis that orders the initial plan (an ordering only:
 * any direction is correct, a good one saves pivots). */
#define AXIS_ITERATIONS 30
/* Seed of the extra directions whose sorted matchings seed the candidates (any value works). */
#define ORDER_SEED 0x6f74u
/* Which exact method and orders cm_ot_distance uses, from measurements at n = m = 5000
 * (docs/metrics.md): up to this dimension the network simplex with CM_OT_ORDERS orders (the
 * sorted matchings along random directions halve the time on far-apart laws, cost 25% on
 * identical ones); above it, with uniform weights and n = m, the assignment method with the
 * orders (2x faster than the simplex there), otherwise the simplex with the principal axis only
 * (random 1-D orders in high dimension add pivots, not information). */
#define ORDERS_MAX_SIMPLEX_DIM 3

static void workspace_release(cm_ot_workspace *w) {
    cm_free(w->costs);
    cm_free(w->parent);
    cm_free(w->flow);
    cm_free(w->position);
    cm_free(w->key);
    cm_free(w->arc_i);
    cm_free(w->arc_cost);
    cm_free(w->column_best);
    cm_free(w->knn_cost);
    cm_free(w->plan);
    cm_free(w->u);
    cm_free(w->guard);
    cm_free(w->csr_cost);
    cm_free(w);
}

cm_status cm_ot_workspace_alloc(cm_ot_workspace **out, size_t n_max, size_t m_max) {
    if (!out) return cm_error_set(CM_ERR_INVALID, "optimal transport: out is NULL");
    *out = NULL;
    if (n_max == 0 || m_max == 0)
        return cm_error_set(CM_ERR_INVALID, "optimal transport: empty problem (%zu x %zu)", n_max,
                            m_max);
    if (n_max + m_max >= (size_t)INT32_MAX / ARCS_PER_NODE || n_max > SIZE_MAX / m_max)
        return cm_error_set(CM_ERR_INVALID, "optimal transport: %zu x %zu points is too large",
                            n_max, m_max);
    size_t nodes = n_max + m_max;
    cm_ot_workspace *w = cm_calloc(1, sizeof *w);
    if (!w) return cm_error_set(CM_ERR_NOMEM, "optimal transport workspace");
    w->n_max = n_max;
    w->m_max = m_max;
    w->arc_capacity = ARCS_PER_NODE * nodes;
    w->costs = cm_malloc(n_max * m_max, sizeof(float));
    w->parent = cm_malloc(4 * nodes, sizeof(int32_t));
    w->flow = cm_malloc(3 * nodes, sizeof(double));
    w->position = cm_malloc(5 * nodes, sizeof(int32_t));
    w->key = cm_malloc(CM_OT_ORDERS * nodes, sizeof(double));
    w->arc_i = cm_malloc(2 * w->arc_capacity, sizeof(int32_t));
    w->arc_cost = cm_malloc(w->arc_capacity, sizeof(double));
    w->column_best = cm_malloc(m_max, sizeof(double) + sizeof(int32_t));
    w->knn_cost = cm_malloc(m_max * CM_OT_KNN, sizeof(float) + sizeof(int32_t));
    w->plan = cm_malloc(nodes, sizeof(cm_ot_entry));
    w->u = cm_malloc(nodes, sizeof(double));
    w->guard = cm_malloc(2 * n_max + 1 + w->arc_capacity + n_max, sizeof(int32_t));
    w->csr_cost = cm_malloc(w->arc_capacity + n_max, sizeof(double));
    if (!w->costs || !w->parent || !w->flow || !w->position || !w->key || !w->arc_i ||
        !w->arc_cost || !w->column_best || !w->knn_cost || !w->plan || !w->u || !w->guard ||
        !w->csr_cost) {
        workspace_release(w);
        return cm_error_set(CM_ERR_NOMEM, "optimal transport workspace for %zu x %zu points "
                            "(%.3g GB cost matrix)", n_max, m_max,
                            4e-9 * (double)n_max * (double)m_max);
    }
    w->thread = w->parent + nodes;
    w->rev_thread = w->parent + 2 * nodes;
    w->succ = w->parent + 3 * nodes;
    w->pot = w->flow + nodes;
    w->supply = w->flow + 2 * nodes;
    w->block = w->position + nodes;
    w->reorder = w->position + 2 * nodes;
    w->stem = w->position + 3 * nodes;
    w->stem_succ = w->position + 4 * nodes;
    w->arc_j = w->arc_i + w->arc_capacity;
    w->column_arg = (int32_t *)(w->column_best + m_max);
    w->knn_arg = (int32_t *)(w->knn_cost + m_max * CM_OT_KNN);
    w->v = w->u + n_max;
    w->csr_start = w->guard + n_max;
    w->csr_j = w->csr_start + n_max + 1;
    *out = w;
    return CM_OK;
}

void cm_ot_workspace_free(cm_ot_workspace *workspace) {
    if (workspace) workspace_release(workspace);
}

float *cm_ot_workspace_costs(cm_ot_workspace *workspace) {
    return workspace ? workspace->costs : NULL;
}

static cm_status check_points(const double *x, size_t count, size_t d, const char *name) {
    if (!x) return cm_error_set(CM_ERR_INVALID, "optimal transport: %s is NULL", name);
    for (size_t k = 0; k < count * d; k++)
        if (!isfinite(x[k]))
            return cm_error_set(CM_ERR_NONFINITE, "optimal transport: %s point %zu, coordinate "
                                "%zu is %g", name, k / d, k % d, x[k]);
    return CM_OK;
}

static double squared_distance(const double *x, const double *y, size_t d) {
    double sum = 0.0;
    for (size_t k = 0; k < d; k++) sum += (x[k] - y[k]) * (x[k] - y[k]);
    return sum;
}

cm_status cm_ot_cost_matrix(float *cost, const double *a, size_t n, const double *b, size_t m,
                            size_t d, cm_ot_power power) {
    if (!cost) return cm_error_set(CM_ERR_INVALID, "optimal transport: cost matrix is NULL");
    if (n == 0 || m == 0 || d == 0)
        return cm_error_set(CM_ERR_INVALID, "optimal transport: empty input (n=%zu, m=%zu, d=%zu)",
                            n, m, d);
    if (power != CM_OT_W1 && power != CM_OT_W2)
        return cm_error_set(CM_ERR_INVALID, "optimal transport: power %d is not 1 or 2", (int)power);
    if (n > SIZE_MAX / d || m > SIZE_MAX / d)
        return cm_error_set(CM_ERR_INVALID, "optimal transport: %zu x %zu points overflow", n, m);
    CM_TRY(check_points(a, n, d, "first set"));
    CM_TRY(check_points(b, m, d, "second set"));
    if (d < GEMM_MIN_DIM) {
        for (size_t i = 0; i < n; i++)
            for (size_t j = 0; j < m; j++) {
                double sum = squared_distance(a + i * d, b + j * d, d);
                cost[i * m + j] = (float)(power == CM_OT_W1 ? sqrt(sum) : sum);
            }
        return CM_OK;
    }
    /* |x|^2 + |y|^2 - 2 x.y with the products from BLAS, GEMM_ROWS rows at a time; where that
     * cancels (a small distance between long vectors) the entry is recomputed directly */
    size_t rows = n < GEMM_ROWS ? n : GEMM_ROWS;
    double *norm_a = cm_malloc(n + m + rows * m, sizeof(double));
    if (!norm_a) return cm_error_set(CM_ERR_NOMEM, "cost matrix scratch (%zu x %zu)", rows, m);
    double *norm_b = norm_a + n, *dot = norm_b + m;
    for (size_t i = 0; i < n; i++) norm_a[i] = cblas_ddot((int)d, a + i * d, 1, a + i * d, 1);
    for (size_t j = 0; j < m; j++) norm_b[j] = cblas_ddot((int)d, b + j * d, 1, b + j * d, 1);
    double guard = CANCELLATION_GUARD * (double)(d + 2);
    for (size_t i0 = 0; i0 < n; i0 += rows) {
        size_t count = n - i0 < rows ? n - i0 : rows;
        cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)count, (int)m, (int)d, -2.0,
                    a + i0 * d, (int)d, b, (int)d, 0.0, dot, (int)m);
        for (size_t r = 0; r < count; r++) {
            size_t i = i0 + r;
            float *row = cost + i * m;
            const double *products = dot + r * m;
            for (size_t j = 0; j < m; j++) {
                double scale = norm_a[i] + norm_b[j], sum = scale + products[j];
                if (sum < guard * scale) sum = squared_distance(a + i * d, b + j * d, d);
                row[j] = (float)(power == CM_OT_W1 ? sqrt(sum) : sum);
            }
        }
    }
    cm_free(norm_a);
    return CM_OK;
}

/* Supplies of the simplex: integers m/g and n/g (g = gcd) for uniform weights, so that flows
 * stay exact integers; otherwise the normalised weights. Returns the factor that turns supply
 * units back into the caller's mass units. */
static cm_status set_supplies(double *out_factor, cm_ot_workspace *w, const double *wa,
                              const double *wb) {
    size_t n = w->n, m = w->m;
    double sum_a = 0.0, sum_b = 0.0;
    for (size_t i = 0; wa && i < n; i++) {
        if (!isfinite(wa[i]) || !(wa[i] > 0.0))
            return cm_error_set(isfinite(wa[i]) ? CM_ERR_INVALID : CM_ERR_NONFINITE,
                                "optimal transport: weight a[%zu] = %g is not positive and finite",
                                i, wa[i]);
        sum_a += wa[i];
    }
    for (size_t j = 0; wb && j < m; j++) {
        if (!isfinite(wb[j]) || !(wb[j] > 0.0))
            return cm_error_set(isfinite(wb[j]) ? CM_ERR_INVALID : CM_ERR_NONFINITE,
                                "optimal transport: weight b[%zu] = %g is not positive and finite",
                                j, wb[j]);
        sum_b += wb[j];
    }
    if (!isfinite(sum_a) || !isfinite(sum_b))
        return cm_error_set(CM_ERR_NONFINITE, "optimal transport: the weights overflow");
    if (!wa) sum_a = wb ? sum_b : 1.0;
    if (!wb) sum_b = sum_a;
    if (fabs(sum_a - sum_b) > WEIGHT_SUM_TOLERANCE * sum_a)
        return cm_error_set(CM_ERR_INVALID, "optimal transport: the weights sum to %.17g and "
                            "%.17g", sum_a, sum_b);
    if (!wa && !wb) {
        size_t x = n, y = m;
        while (y) {
            size_t r = x % y;
            x = y;
            y = r;
        }
        for (size_t i = 0; i < n; i++) w->supply[i] = (double)(m / x);
        for (size_t j = 0; j < m; j++) w->supply[n + j] = (double)(n / x);
        *out_factor = 1.0 / ((double)(m / x) * (double)n);
        return CM_OK;
    }
    for (size_t i = 0; i < n; i++) w->supply[i] = wa ? wa[i] / sum_a : 1.0 / (double)n;
    for (size_t j = 0; j < m; j++) w->supply[n + j] = wb ? wb[j] / sum_b : 1.0 / (double)m;
    *out_factor = sum_a;
    return CM_OK;
}

/* Solve with the orders already in w->key, by the network simplex or (n = m, uniform weights
 * only) the assignment method. */
static cm_status solve_keyed(cm_ot_result *out, cm_ot_workspace *w, const float *cost, size_t n,
                             size_t m, const double *wa, const double *wb, int assignment) {
    double factor = 1.0;
    w->n = n;
    w->m = m;
    w->cost = cost;
    CM_TRY(set_supplies(&factor, w, wa, wb));
    for (size_t k = 0; k < n * m; k++)
        if (!isfinite(cost[k]))
            return cm_error_set(CM_ERR_NONFINITE, "optimal transport: cost[%zu][%zu] is %g",
                                k / m, k % m, (double)cost[k]);
    if (assignment) CM_TRY(cm_ot_assignment_run(out, w));
    else CM_TRY(cm_ot_simplex_run(out, w));
    for (size_t k = 0; k < out->plan_count; k++) w->plan[k].mass *= factor;
    out->cost *= factor;
    return CM_OK;
}

static cm_status check_problem(const cm_ot_workspace *w, const float *cost, size_t n, size_t m) {
    if (!w || !cost) return cm_error_set(CM_ERR_INVALID, "optimal transport: NULL argument");
    if (n == 0 || m == 0)
        return cm_error_set(CM_ERR_INVALID, "optimal transport: empty problem (%zu x %zu)", n, m);
    if (n > w->n_max || m > w->m_max)
        return cm_error_set(CM_ERR_INVALID, "optimal transport: %zu x %zu exceeds the workspace "
                            "(%zu x %zu)", n, m, w->n_max, w->m_max);
    return CM_OK;
}

/* Orders for a solve without points: sources by their cost to sink 0, sinks by their cost to
 * the source nearest sink 0 (a radial order around one place, shared by both sides). */
static void matrix_orders(cm_ot_workspace *w, const float *cost, size_t n, size_t m) {
    size_t nearest = 0;
    for (size_t i = 0; i < n; i++) {
        w->key[i] = cost[i * m];
        if (cost[i * m] < cost[nearest * m]) nearest = i;
    }
    for (size_t j = 0; j < m; j++) w->key[n + j] = cost[nearest * m + j];
    w->orders = 1;
}

cm_status cm_ot_solve(cm_ot_result *out, cm_ot_workspace *w, const float *cost, size_t n,
                      size_t m, const double *weights_a, const double *weights_b) {
    if (!out) return cm_error_set(CM_ERR_INVALID, "optimal transport: out is NULL");
    CM_TRY(check_problem(w, cost, n, m));
    matrix_orders(w, cost, n, m);
    return solve_keyed(out, w, cost, n, m, weights_a, weights_b, 0);
}

cm_status cm_ot_solve_assignment(cm_ot_result *out, cm_ot_workspace *w, const float *cost,
                                 size_t n) {
    if (!out) return cm_error_set(CM_ERR_INVALID, "optimal transport: out is NULL");
    CM_TRY(check_problem(w, cost, n, n));
    matrix_orders(w, cost, n, n);
    return solve_keyed(out, w, cost, n, n, NULL, NULL, 1);
}

cm_status cm_ot_check(cm_ot_certificate *out, const float *cost, size_t n, size_t m,
                      const double *weights_a, const double *weights_b,
                      const cm_ot_result *result) {
    if (!out || !cost || !result)
        return cm_error_set(CM_ERR_INVALID, "certificate: NULL argument");
    if (result->n != n || result->m != m || n == 0 || m == 0)
        return cm_error_set(CM_ERR_INVALID, "certificate: solution of %zu x %zu for a problem "
                            "of %zu x %zu", result->n, result->m, n, m);
    double *sums = cm_calloc(n + m, sizeof(double));
    if (!sums) return cm_error_set(CM_ERR_NOMEM, "certificate of %zu x %zu", n, m);
    double total_a = 0.0, total_b = 0.0, largest = 0.0;
    for (size_t i = 0; i < n; i++) total_a += weights_a ? weights_a[i] : 1.0 / (double)n;
    for (size_t j = 0; j < m; j++) total_b += weights_b ? weights_b[j] : 1.0 / (double)m;
    if (!weights_a && weights_b) total_a = total_b;
    if (weights_a && !weights_b) total_b = total_a;
    cm_ot_certificate c = {.primal = 0.0, .dual = 0.0, .min_reduced_cost = INFINITY,
                           .max_mass_error = 0.0, .min_mass = INFINITY};
    cm_status status = CM_OK;
    for (size_t k = 0; k < result->plan_count; k++) {
        const cm_ot_entry *e = &result->plan[k];
        if (e->i >= n || e->j >= m) {
            status = cm_error_set(CM_ERR_INVALID, "certificate: plan entry %zu at (%zu, %zu) is "
                                  "outside %zu x %zu", k, e->i, e->j, n, m);
            break;
        }
        sums[e->i] += e->mass;
        sums[n + e->j] += e->mass;
        c.primal += e->mass * (double)cost[e->i * m + e->j];
        if (e->mass < c.min_mass) c.min_mass = e->mass;
    }
    for (size_t i = 0; i < n; i++) {
        double weight = weights_a ? weights_a[i] : total_a / (double)n;
        double error = fabs(sums[i] - weight);
        if (error > c.max_mass_error) c.max_mass_error = error;
        c.dual += weight * result->u[i];
    }
    for (size_t j = 0; j < m; j++) {
        double weight = weights_b ? weights_b[j] : total_b / (double)m;
        double error = fabs(sums[n + j] - weight);
        if (error > c.max_mass_error) c.max_mass_error = error;
        c.dual += weight * result->v[j];
    }
    size_t worst_i = 0, worst_j = 0;
    for (size_t i = 0; i < n; i++) {
        const float *row = cost + i * m;
        double ui = result->u[i];
        for (size_t j = 0; j < m; j++) {
            double reduced = (double)row[j] - ui - result->v[j];
            if (reduced < c.min_reduced_cost) {
                c.min_reduced_cost = reduced;
                worst_i = i;
                worst_j = j;
            }
            if (row[j] > largest) largest = row[j];
        }
    }
    cm_free(sums);
    c.tolerance_cost = CHECK_COST_TOLERANCE * (largest > 0.0 ? largest : 1.0);
    c.tolerance_mass = CHECK_MASS_TOLERANCE * total_a;
    *out = c;
    if (status != CM_OK) return status;
    if (!(c.min_mass >= 0.0) && result->plan_count > 0)
        return cm_error_set(CM_ERR_INVALID, "certificate: negative plan entry %g", c.min_mass);
    if (!(c.max_mass_error <= c.tolerance_mass))
        return cm_error_set(CM_ERR_INVALID, "certificate: marginals off by %g (tolerance %g)",
                            c.max_mass_error, c.tolerance_mass);
    if (!(c.min_reduced_cost >= -c.tolerance_cost))
        return cm_error_set(CM_ERR_INVALID, "certificate: dual infeasible at (%zu, %zu): "
                            "C - u - v = %g (tolerance %g)", worst_i, worst_j,
                            c.min_reduced_cost, c.tolerance_cost);
    if (!(fabs(c.primal - c.dual) <= c.tolerance_cost * total_a))
        return cm_error_set(CM_ERR_INVALID, "certificate: primal %.17g and dual %.17g differ by "
                            "%g (tolerance %g)", c.primal, c.dual, fabs(c.primal - c.dual),
                            c.tolerance_cost * total_a);
    return CM_OK;
}

/* Projections of x and y on `axis` into key. */
static void project_keys(double *key, const double *axis, const double *x, size_t n,
                         const double *y, size_t m, size_t d) {
    for (size_t r = 0; r < n + m; r++) {
        const double *p = r < n ? x + r * d : y + (r - n) * d;
        double dot = 0.0;
        for (size_t k = 0; k < d; k++) dot += p[k] * axis[k];
        key[r] = dot;
    }
}

/* The orders of a solve: first the projections of both sets on the principal axis of the
 * pooled points (power iteration on the scatter matrix, applied without forming it), which
 * orders the initial plan; then on CM_OT_ORDERS - 1 fixed pseudo-random directions (seeded by
 * ORDER_SEED), whose sorted matchings join the candidates. Orders only steer the search: any
 * directions give the same exact answer. */
static cm_status solve_orders(cm_ot_workspace *w, const double *x, size_t n, const double *y,
                              size_t m, size_t d, int assignment) {
    double *mean = cm_calloc(3 * d, sizeof(double));
    if (!mean) return cm_error_set(CM_ERR_NOMEM, "optimal transport: %zu-D axis", d);
    double *axis = mean + d, *next = mean + 2 * d;
    for (size_t k = 0; k < n * d; k++) mean[k % d] += x[k] / (double)(n + m);
    for (size_t k = 0; k < m * d; k++) mean[k % d] += y[k] / (double)(n + m);
    for (size_t k = 0; k < d; k++) axis[k] = 1.0 / sqrt((double)d) * (k % 2 ? 0.5 : 1.0);
    for (int iteration = 0; iteration < AXIS_ITERATIONS; iteration++) {
        memset(next, 0, d * sizeof(double));
        for (size_t r = 0; r < n + m; r++) {
            const double *p = r < n ? x + r * d : y + (r - n) * d;
            double dot = 0.0;
            for (size_t k = 0; k < d; k++) dot += (p[k] - mean[k]) * axis[k];
            for (size_t k = 0; k < d; k++) next[k] += dot * (p[k] - mean[k]);
        }
        double norm = 0.0;
        for (size_t k = 0; k < d; k++) norm += next[k] * next[k];
        if (!(norm > 0.0)) break; /* all points equal: any order will do */
        for (size_t k = 0; k < d; k++) axis[k] = next[k] / sqrt(norm);
    }
    project_keys(w->key, axis, x, n, y, m, d);
    cm_rng root, child;
    cm_rng_init(&root, ORDER_SEED);
    w->orders = d > 1 && (d <= ORDERS_MAX_SIMPLEX_DIM || assignment) ? CM_OT_ORDERS : 1;
    for (size_t order = 1; order < w->orders; order++) {
        cm_rng_fork(&child, &root, order);
        double norm = 0.0;
        for (size_t k = 0; k < d; k++) {
            axis[k] = cm_rng_normal(&child);
            norm += axis[k] * axis[k];
        }
        for (size_t k = 0; k < d; k++) axis[k] /= sqrt(norm);
        project_keys(w->key + order * (n + m), axis, x, n, y, m, d);
    }
    cm_free(mean);
    return CM_OK;
}

cm_status cm_ot_distance(double *out, cm_ot_result *result, cm_ot_workspace *w, const double *x,
                         size_t n, const double *y, size_t m, size_t d, cm_ot_power power,
                         const double *weights_a, const double *weights_b) {
    if (!out) return cm_error_set(CM_ERR_INVALID, "optimal transport: out is NULL");
    if (!w) return cm_error_set(CM_ERR_INVALID, "optimal transport: workspace is NULL");
    CM_TRY(check_problem(w, w->costs, n, m));
    CM_TRY(cm_ot_cost_matrix(w->costs, x, n, y, m, d, power));
    int assignment = n == m && !weights_a && !weights_b && d > ORDERS_MAX_SIMPLEX_DIM;
    CM_TRY(solve_orders(w, x, n, y, m, d, assignment));
    cm_ot_result r;
    CM_TRY(solve_keyed(&r, w, w->costs, n, m, weights_a, weights_b, assignment));
    cm_ot_certificate certificate;
    CM_TRY(cm_ot_check(&certificate, w->costs, n, m, weights_a, weights_b, &r));
    double total = 0.0, mass = 0.0;
    for (size_t k = 0; k < r.plan_count; k++) {
        const double *p = x + r.plan[k].i * d, *q = y + r.plan[k].j * d;
        double sum = 0.0;
        for (size_t c = 0; c < d; c++) sum += (p[c] - q[c]) * (p[c] - q[c]);
        total += r.plan[k].mass * (power == CM_OT_W1 ? sqrt(sum) : sum);
        mass += r.plan[k].mass;
    }
    total /= mass; /* the distance between the normalised measures */
    *out = power == CM_OT_W1 ? total : sqrt(total);
    if (result) *result = r;
    return CM_OK;
}

cm_status cm_ot_wasserstein(double *out, const double *x, size_t n, const double *y, size_t m,
                            size_t d, cm_ot_power power) {
    if (!out) return cm_error_set(CM_ERR_INVALID, "optimal transport: out is NULL");
    cm_ot_workspace *w;
    CM_TRY(cm_ot_workspace_alloc(&w, n, m));
    cm_status status = cm_ot_distance(out, NULL, w, x, n, y, m, d, power, NULL, NULL);
    cm_ot_workspace_free(w);
    return status;
}

/* Two-sided 97.5% quantile of Student's t with `dof` degrees of freedom: table to 30, then
 * the Cornish-Fisher expansion z + (z^3 + z) / (4 dof) (error < 1e-3 beyond 30). */
static double student_t975(size_t dof) {
    static const double table[31] = {
        NAN,   12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
        2.201, 2.179,  2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080,
        2.074, 2.069,  2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
    if (dof <= 30) return table[dof];
    const double z = 1.959963984540054;
    return z + (z * z * z + z) / (4.0 * (double)dof);
}

/* The first `count` entries of a uniform random permutation of 0..total-1 (Fisher-Yates). */
static void choose_rows(size_t *index, size_t total, size_t count, cm_rng *rng) {
    for (size_t i = 0; i < total; i++) index[i] = i;
    for (size_t i = 0; i < count; i++) {
        size_t j = i + (size_t)cm_rng_below(rng, total - i);
        size_t swap = index[i];
        index[i] = index[j];
        index[j] = swap;
    }
}

cm_status cm_ot_estimate_wp(cm_ot_estimate *out, const double *x, size_t n, const double *y,
                            size_t m, size_t d, cm_ot_power power, size_t max_points,
                            size_t repeats, uint64_t seed) {
    if (!out) return cm_error_set(CM_ERR_INVALID, "optimal transport: out is NULL");
    if (max_points < 2 || repeats == 0)
        return cm_error_set(CM_ERR_INVALID, "optimal transport: max_points %zu (>= 2) and "
                            "repeats %zu (>= 1)", max_points, repeats);
    if (n <= max_points && m <= max_points) {
        double value;
        CM_TRY(cm_ot_wasserstein(&value, x, n, y, m, d, power));
        *out = (cm_ot_estimate){.value = value, .ci_low = value, .ci_high = value,
                                .points_x = n, .points_y = m, .repeats = 1, .subsampled = 0};
        return CM_OK;
    }
    if (d == 0 || n == 0 || m == 0)
        return cm_error_set(CM_ERR_INVALID, "optimal transport: empty input (n=%zu, m=%zu, d=%zu)",
                            n, m, d);
    CM_TRY(check_points(x, n, d, "first set"));
    CM_TRY(check_points(y, m, d, "second set"));
    size_t nx = n < max_points ? n : max_points, ny = m < max_points ? m : max_points;
    cm_ot_workspace *w = NULL;
    CM_TRY(cm_ot_workspace_alloc(&w, nx, ny));
    double *sx = cm_malloc((nx + ny) * d, sizeof(double));
    size_t *index = cm_malloc(n > m ? n : m, sizeof(size_t));
    if (!sx || !index) {
        cm_free(sx);
        cm_free(index);
        cm_ot_workspace_free(w);
        return cm_error_set(CM_ERR_NOMEM, "optimal transport subsamples of %zu and %zu", nx, ny);
    }
    double *sy = sx + nx * d, sum = 0.0, sum2 = 0.0;
    cm_rng root, child;
    cm_rng_init(&root, seed);
    cm_status status = CM_OK;
    for (size_t r = 0; r < repeats && status == CM_OK; r++) {
        cm_rng_fork(&child, &root, r);
        choose_rows(index, n, nx, &child);
        for (size_t i = 0; i < nx; i++) memcpy(sx + i * d, x + index[i] * d, d * sizeof(double));
        choose_rows(index, m, ny, &child);
        for (size_t j = 0; j < ny; j++) memcpy(sy + j * d, y + index[j] * d, d * sizeof(double));
        double value;
        status = cm_ot_distance(&value, NULL, w, sx, nx, sy, ny, d, power, NULL, NULL);
        sum += value;
        sum2 += value * value;
    }
    cm_free(sx);
    cm_free(index);
    cm_ot_workspace_free(w);
    if (status != CM_OK) return status;
    double mean = sum / (double)repeats, half = NAN;
    if (repeats > 1) {
        double variance = (sum2 - (double)repeats * mean * mean) / (double)(repeats - 1);
        half = student_t975(repeats - 1) * sqrt(variance > 0.0 ? variance : 0.0) /
               sqrt((double)repeats);
    }
    *out = (cm_ot_estimate){.value = mean, .ci_low = mean - half, .ci_high = mean + half,
                            .points_x = nx, .points_y = ny, .repeats = repeats, .subsampled = 1};
    return CM_OK;
}
