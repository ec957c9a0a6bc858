/* ot_internal.h: the workspace of the exact transport solver, shared by src/ot.c (API, cost
 * matrices, certificate, subsampling) and src/ot_simplex.c (the network simplex itself).
 *
 * Nodes: sources 0..n-1 (the first measure), sinks n..n+m-1 (the second). Every arc goes from
 * a source to a sink, so the tree arc joining node u to its parent is determined by the pair:
 * it points up (u -> parent) when u is a source and down (parent -> u) when u is a sink, and
 * flow[u] is its flow. Spanning tree in the "parent, thread, succ_num" form of the network
 * simplex literature (Kelly and O'Neill 1991; LEMON's NetworkSimplex): thread is the preorder
 * as a cyclic list, rev_thread its inverse, succ the subtree sizes.
 */
#ifndef CM_OT_INTERNAL_H
#define CM_OT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "cm/ot.h"

/* Nearest neighbours per row and per column that seed the candidate list: the optimal plan of
 * two samples of one law mostly pairs near neighbours; 4 beat 2 and 8 at n = 5000. */
#define CM_OT_KNN 4
/* Most 1-D orders (key sets) a solve can be given: the first orders the initial plan, and the
 * north-west-corner plan of every order adds its n + m - 1 arcs to the candidates (the sorted
 * matchings along a few directions approximate the transport map when the laws are far apart,
 * where nearest neighbours say nothing). */
#define CM_OT_ORDERS 9

struct cm_ot_workspace {
    size_t n_max, m_max;
    float *costs;            /* n_max x m_max, the matrix cm_ot_distance fills */

    /* the problem being solved */
    size_t n, m;
    const float *cost;       /* n x m */
    int32_t root;

    /* spanning tree, N = n + m nodes */
    int32_t *parent, *thread, *rev_thread, *succ;
    double *flow, *pot;      /* flow on the arc to the parent; node potential */
    double *supply;          /* a_i (sources) then b_j (sinks), scaled as solved */

    /* scratch of one pivot and of the initial orderings (N each) */
    int32_t *position, *block, *reorder, *stem, *stem_succ;
    double *key;             /* orders x N 1-D keys (sources then sinks); the first orders the
                                initial plan */
    size_t orders;           /* key sets present, 1..CM_OT_ORDERS */

    /* candidate arcs priced by the simplex */
    size_t arc_capacity, arc_count, arc_next;
    int32_t *arc_i, *arc_j;
    double *arc_cost;

    /* full scans: best arc per column (m), nearest neighbours per column (m x CM_OT_KNN) */
    double *column_best;
    int32_t *column_arg;
    float *knn_cost;
    int32_t *knn_arg;

    /* the assignment method (n = m, uniform): guard matching, candidates by row (CSR) */
    int32_t *guard, *csr_start, *csr_j; /* n_max, n_max + 1, arc_capacity + n_max */
    double *csr_cost;                    /* arc_capacity + n_max */

    /* the result */
    cm_ot_entry *plan;       /* N */
    double *u, *v;           /* n, m */
    size_t pivots, rounds;
};

/* Helpers shared by the two solvers (ot_simplex.c). */
/* Stable sort of index[0..count) by key[index] (scratch: count entries). */
void cm_ot_sort_by_key(int32_t *index, int32_t *scratch, const double *key, size_t count);
/* Append arc (i, j) with its cost to the candidates (the caller checks the capacity). */
void cm_ot_add_arc(cm_ot_workspace *w, int32_t i, int32_t j);
/* Reset the candidates to the CM_OT_KNN cheapest arcs of every row and column; returns the
 * largest cost of the matrix. */
double cm_ot_seed_candidates(cm_ot_workspace *w);
/* Add the arcs of the north-west-corner plan of every key set (ordered as in w->key). */
void cm_ot_add_order_arcs(cm_ot_workspace *w);
/* Drop the candidates of largest reduced cost c + pot_i - pot_{n+j} until half the capacity
 * is free. */
void cm_ot_compact_candidates(cm_ot_workspace *w, double largest);

/* Point *out at the workspace's plan and potentials, with the solve's statistics. */
static inline void cm_ot_fill_result(cm_ot_result *out, const cm_ot_workspace *w, size_t n,
                                     size_t m, double cost, size_t plan_count) {
    out->n = n;
    out->m = m;
    out->cost = cost;
    out->plan = w->plan;
    out->plan_count = plan_count;
    out->u = w->u;
    out->v = w->v;
    out->pivots = w->pivots;
    out->rounds = w->rounds;
    out->arcs = w->arc_count;
}

/* Full scans keep, per row, the CM_OT_ROW_ARCS arcs of most negative reduced cost. */
#define CM_OT_ROW_ARCS 2

/* Insert (reduced, j) into the ascending list best[CM_OT_ROW_ARCS] / arg[] if it is smaller
 * than the last entry (the caller initialises best[] to -tolerance, arg[] to -1). */
static inline void cm_ot_keep_most_violated(double *best, int32_t *arg, double reduced, int32_t j) {
    if (!(reduced < best[CM_OT_ROW_ARCS - 1])) return;
    int k = CM_OT_ROW_ARCS - 1;
    while (k > 0 && best[k - 1] > reduced) {
        best[k] = best[k - 1];
        arg[k] = arg[k - 1];
        k--;
    }
    best[k] = reduced;
    arg[k] = j;
}

/* Solve the assignment problem set in w (n = m, uniform weights, cost) by shortest augmenting
 * paths from the orders of w->key (ot_assignment.c); plan masses are 1 (the caller rescales). */
cm_status cm_ot_assignment_run(cm_ot_result *out, cm_ot_workspace *w);

/* Solve the problem set in w (n, m, cost) with supplies w->supply (positive, equal sums),
 * starting from the north-west-corner plan of the orders of w->key; fills w->plan, w->u, w->v
 * and *out. Returns CM_ERR_INVALID if the pivot limit is reached (never observed; a guard). */
cm_status cm_ot_simplex_run(cm_ot_result *out, cm_ot_workspace *w);

#endif
