/* ot.h: exact optimal transport between two discrete measures: W1 and W2 in any dimension.
 *
 * The transport problem   min sum_ij P_ij C_ij   s.t.  sum_j P_ij = a_i,  sum_i P_ij = b_j,
 * P >= 0   is solved exactly (to the rounding of its float cost matrix) by a primal network
 * simplex on the bipartite graph with strongly feasible spanning trees, priced on a sparse
 * candidate list (nearest neighbours, sorted matchings of 1-D orders, then the violated arcs of
 * full scans of the cost matrix) until a full scan finds no arc with a negative reduced cost:
 * the stopping test is LP optimality on all n m arcs. Assignment problems (n = m, uniform) can
 * also go to a second exact method, shortest augmenting paths on the same candidate scheme.
 * A solution comes with its sparse plan and the dual potentials (u, v), and cm_ot_check
 * verifies the certificate (plan feasible, C_ij - u_i - v_j >= -tol, primal = dual).
 * docs/metrics.md: algorithms, exactness argument, costs, memory. Letters: n, m the sizes of
 * the two measures, d the dimension of the points.
 */
#ifndef CM_OT_H
#define CM_OT_H

#include <stddef.h>
#include <stdint.h>

#include "cm/status.h"

/* Above this many points on a side, cm_ot_estimate subsamples (the float cost matrix of
 * 10000 x 10000 points is 400 MB; the solve takes about 4 s on one core). */
#define CM_OT_MAX_POINTS_DEFAULT 10000
/* Number of independent subsamples cm_ot_estimate averages when it subsamples. */
#define CM_OT_REPEATS_DEFAULT 5

/* Ground cost |x - y|^p: W1 (p = 1, Euclidean) or W2 (p = 2, squared Euclidean). */
typedef enum { CM_OT_W1 = 1, CM_OT_W2 = 2 } cm_ot_power;

typedef struct cm_ot_workspace cm_ot_workspace; /* opaque */

/* One nonzero of a transport plan: mass moved from point i of the first measure to point j
 * of the second. */
typedef struct {
    size_t i, j;
    double mass;
} cm_ot_entry;

/* A solution. Arrays are owned by the workspace that produced them and are valid until its
 * next solve or its release. */
typedef struct {
    size_t n, m;
    double cost;             /* sum_k mass_k C[i_k, j_k] (float entries summed in double) */
    const cm_ot_entry *plan; /* the nonzeros, at most n + m - 1 of them */
    size_t plan_count;
    const double *u, *v;     /* dual potentials (n and m): cost = sum a_i u_i + sum b_j v_j */
    size_t pivots;           /* simplex pivots, or augmenting paths of the assignment method */
    size_t rounds;           /* full scans of the cost matrix (the last one found nothing) */
    size_t arcs;             /* candidate arcs priced when the solve ended */
} cm_ot_result;

/* What cm_ot_check measured. */
typedef struct {
    double primal;           /* sum_k mass_k C[i_k, j_k] */
    double dual;             /* sum_i a_i u_i + sum_j b_j v_j */
    double min_reduced_cost; /* min over all i, j of C_ij - u_i - v_j (>= -tolerance_cost) */
    double max_mass_error;   /* max over rows and columns of |plan sum - weight| */
    double min_mass;         /* smallest plan entry (>= 0) */
    double tolerance_cost;   /* the tolerances the check applied */
    double tolerance_mass;
} cm_ot_certificate;

/* A workspace for problems of up to n_max x m_max, with a float cost matrix of that size
 * (4 n_max m_max bytes) and O(n_max + m_max) arrays; nothing is allocated by the solves. */
cm_status cm_ot_workspace_alloc(cm_ot_workspace **out, size_t n_max, size_t m_max);
void cm_ot_workspace_free(cm_ot_workspace *workspace);
/* The workspace's cost matrix (n_max x m_max floats), for callers that fill it themselves:
 * a problem of size n x m uses its first n m entries, row-major. */
float *cm_ot_workspace_costs(cm_ot_workspace *workspace);

/* Fill cost (n x m, row-major) with |a_i - b_j|^p for points a (n x d) and b (m x d). Each
 * entry is computed in double from the coordinate differences (no cancellation) and rounded
 * to float once. */
cm_status cm_ot_cost_matrix(float *cost, const double *a, size_t n, const double *b, size_t m,
                            size_t d, cm_ot_power power);

/* Solve the transport problem of cost (n x m, row-major, finite, may be the workspace's own
 * matrix) between weights a (n) and b (m), positive and of equal sums (relative difference at
 * most 1e-9); NULL means uniform 1/n (1/m). The network simplex; it stops only when a full
 * scan of the matrix finds no arc with a negative reduced cost. */
cm_status cm_ot_solve(cm_ot_result *out, cm_ot_workspace *workspace, const float *cost,
                      size_t n, size_t m, const double *weights_a, const double *weights_b);

/* The same for n = m and uniform weights (an assignment problem) by a second, independent
 * exact method: shortest augmenting paths with Jonker-Volgenant row reduction on the same
 * candidate scheme (src/ot_assignment.c). Faster than the simplex on near-identical laws in
 * higher dimension, slower when the laws are far apart in 2-D (docs/metrics.md); the tests and
 * bench/ot.c use it to cross-check the simplex. */
cm_status cm_ot_solve_assignment(cm_ot_result *out, cm_ot_workspace *workspace,
                                 const float *cost, size_t n);

/* The certificate of optimality of `result` for the problem (cost, weights): the plan is
 * nonnegative with the right marginals, the duals are feasible on every arc, and the primal
 * and dual values agree, each up to a tolerance relative to the largest cost and the total
 * mass (the values are in *out). CM_OK when it holds; CM_ERR_INVALID with a detail naming the
 * first violation otherwise. Reads the whole cost matrix once; allocates n + m doubles. */
cm_status cm_ot_check(cm_ot_certificate *out, const float *cost, size_t n, size_t m,
                      const double *weights_a, const double *weights_b,
                      const cm_ot_result *result);

/* Exact W_p between the measures sum_i a_i delta(x_i) and sum_j b_j delta(y_j), points x (n x d)
 * and y (m x d), weights as in cm_ot_solve: builds the cost matrix in the workspace, solves
 * (the network simplex; for n = m, uniform weights and d > 3 the assignment method, faster
 * there), starting from the 1-D optimal plan of the projections on the principal axis (and in
 * d <= 3, or with the assignment method, the sorted matchings along 8 more fixed directions join
 * the candidates), checks the certificate, and returns W_p = (sum_k mass_k |x_i - y_j|^p)^(1/p) with the distances of the
 * plan recomputed in double. `result` (may be NULL) receives the solution. */
cm_status cm_ot_distance(double *out, cm_ot_result *result, cm_ot_workspace *workspace,
                         const double *x, size_t n, const double *y, size_t m, size_t d,
                         cm_ot_power power, const double *weights_a, const double *weights_b);

/* The same with uniform weights and a workspace of its own (allocated and released here). */
cm_status cm_ot_wasserstein(double *out, const double *x, size_t n, const double *y, size_t m,
                            size_t d, cm_ot_power power);

/* W_p of two uniform empirical measures, exact when n, m <= max_points; otherwise the mean
 * over `repeats` independent pairs of subsamples (without replacement, each side cut to
 * max_points points, seeded) with a 95% Student-t interval for the mean. The subsampled value
 * estimates the expected distance between subsamples of that size, which is larger than the
 * distance between the full samples (the empirical bias shrinks with the size; see
 * docs/metrics.md); it is never a silent cut: `subsampled` says so. */
typedef struct {
    double value;               /* exact W_p, or the mean over the repeats */
    double ci_low, ci_high;     /* 95% interval of the mean; = value when exact; NaN if 1 repeat */
    size_t points_x, points_y;  /* points per side in each solve */
    size_t repeats;             /* 1 when exact */
    int subsampled;
} cm_ot_estimate;

cm_status cm_ot_estimate_wp(cm_ot_estimate *out, const double *x, size_t n, const double *y,
                            size_t m, size_t d, cm_ot_power power, size_t max_points,
                            size_t repeats, uint64_t seed);

#endif
