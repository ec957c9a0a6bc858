/* ot_assignment.c: exact transport between two uniform measures of the same size n (an
 * assignment problem), by successive shortest augmenting paths (Jonker and Volgenant 1987;
 * the dual update of Crouse 2016) on a sparse candidate graph, checked against the full matrix.
 *
 * Candidates: the CM_OT_KNN nearest neighbours of every row and column and the sorted matchings
 * of the 1-D orders; the matching of the first order is kept as a guard through compactions (it
 * guarantees a perfect matching in the sparse graph, so every free row has an augmenting path). Duals (u, v) keep C_ij - u_i - v_j >= 0 on every
 * candidate and = 0 on matched pairs; each augmentation is Dijkstra on those reduced costs. A
 * full scan of the matrix then adds the most violated arcs of every row and column and frees
 * their rows (lowering u_i until the row is feasible again); when a scan finds nothing, the
 * duals are feasible on all n^2 arcs and the matching is optimal (LP duality), as for the
 * network simplex (ot_simplex.c), which handles n != m and general weights. Hand-written: no
 * Debian C library solves assignment problems exactly.
 */
#include <math.h>
#include <string.h>

#include "cm/alloc.h"
#include "metrics/ot_internal.h"

#define NIL (-1)
#define UNSEEN (-1)
#define FINAL (-2)
/* Violated arcs of every row that a full scan adds (plus the most violated of every column). */
/* Same tolerance as the network simplex: a full scan counts an arc as violated when
 * C_ij - u_i - v_j < -TOLERANCE max C (far above the rounding of double duals, far below
 * anything that moves the optimal value; see ot_simplex.c). */
#define TOLERANCE 1e-12
/* Guard against an endless loop through rounding (never observed). */
#define MAX_ROUNDS 100000
/* Augmenting row reduction (Jonker and Volgenant 1987): passes over the free rows, and a bound
 * on its steps per pass (steps per row), after which the shortest paths take over. JV use 2. */
#define REDUCTION_PASSES 2
#define REDUCTION_STEPS_PER_ROW 8

/* Indexed binary min-heap of columns keyed by dist; where[j] is j's position, or UNSEEN or
 * FINAL. */
typedef struct {
    int32_t *item, *where, size;
    const double *key;
} column_heap;

static void heap_swap(column_heap *h, int32_t a, int32_t b) {
    int32_t x = h->item[a], y = h->item[b];
    h->item[a] = y;
    h->item[b] = x;
    h->where[y] = a;
    h->where[x] = b;
}

static void heap_up(column_heap *h, int32_t k) {
    while (k > 0) {
        int32_t parent = (k - 1) / 2;
        if (!(h->key[h->item[k]] < h->key[h->item[parent]])) break;
        heap_swap(h, k, parent);
        k = parent;
    }
}

static void heap_push(column_heap *h, int32_t j) {
    h->item[h->size] = j;
    h->where[j] = h->size;
    heap_up(h, h->size++);
}

static int32_t heap_pop(column_heap *h) {
    int32_t top = h->item[0];
    h->size--;
    if (h->size > 0) {
        h->item[0] = h->item[h->size];
        h->where[h->item[0]] = 0;
        int32_t k = 0;
        for (;;) {
            int32_t left = 2 * k + 1, right = left + 1, least = k;
            if (left < h->size && h->key[h->item[left]] < h->key[h->item[least]]) least = left;
            if (right < h->size && h->key[h->item[right]] < h->key[h->item[least]]) least = right;
            if (least == k) break;
            heap_swap(h, k, least);
            k = least;
        }
    }
    h->where[top] = FINAL;
    return top;
}

/* Candidates (and the guard matching) by row, in compressed sparse row form. */
static void build_rows(cm_ot_workspace *w) {
    int32_t n = (int32_t)w->n, *start = w->csr_start, *cursor = w->succ;
    memset(start, 0, (size_t)(n + 1) * sizeof(int32_t));
    for (size_t k = 0; k < w->arc_count; k++) start[w->arc_i[k] + 1]++;
    for (int32_t i = 0; i < n; i++) start[i + 1] += start[i] + 1; /* + the guard arc */
    for (int32_t i = 0; i < n; i++) {
        cursor[i] = start[i] + 1;
        w->csr_j[start[i]] = w->guard[i];
        w->csr_cost[start[i]] = (double)w->cost[(size_t)i * w->m + (size_t)w->guard[i]];
    }
    for (size_t k = 0; k < w->arc_count; k++) {
        int32_t q = cursor[w->arc_i[k]]++;
        w->csr_j[q] = w->arc_j[k];
        w->csr_cost[q] = w->arc_cost[k];
    }
}

/* u_i = min over the arcs of row i of C_ij - v_j: every arc of the row becomes feasible. */
static void lower_row(cm_ot_workspace *w, int32_t i) {
    double best = INFINITY;
    for (int32_t q = w->csr_start[i]; q < w->csr_start[i + 1]; q++) {
        double slack = w->csr_cost[q] - w->v[w->csr_j[q]];
        if (slack < best) best = slack;
    }
    w->u[i] = best;
}

/* Augmenting row reduction: a free row takes the column of its smallest C_ij - v_j, lowering
 * that column's v to the second smallest value so the row is indifferent between them; the
 * previous holder becomes free and is served next when the price moved, else later. Every
 * matched row keeps a column of minimal C_ij - v_j (v only decreases), so u_i = that minimum
 * leaves all candidates feasible and the matching tight. Returns the rows still free. */
static int32_t reduce_rows(cm_ot_workspace *w, int32_t *free_rows, int32_t count) {
    int32_t n = (int32_t)w->n, *col_of = w->thread, *row_of = w->thread + n;
    for (int pass = 0; pass < REDUCTION_PASSES && count > 0; pass++) {
        int32_t k = 0, left = 0, steps = 0, limit = REDUCTION_STEPS_PER_ROW * count;
        while (k < count) {
            int32_t i = free_rows[k++], j1 = NIL, j2 = NIL;
            double u1 = INFINITY, u2 = INFINITY;
            for (int32_t q = w->csr_start[i]; q < w->csr_start[i + 1]; q++) {
                int32_t j = w->csr_j[q];
                double slack = w->csr_cost[q] - w->v[j];
                if (slack < u1) {
                    if (j != j1) u2 = u1, j2 = j1;
                    u1 = slack;
                    j1 = j;
                } else if (slack < u2 && j != j1) {
                    u2 = slack;
                    j2 = j;
                }
            }
            if (j2 == NIL) u2 = u1, j2 = j1;
            int32_t holder = row_of[j1];
            if (u1 < u2 && ++steps <= limit) {
                w->v[j1] -= u2 - u1;
            } else if (holder != NIL) {
                j1 = j2;
                holder = row_of[j2];
            }
            if (holder != NIL) col_of[holder] = NIL;
            row_of[j1] = i;
            col_of[i] = j1;
            if (holder == NIL) continue;
            if (u1 < u2 && steps <= limit) free_rows[--k] = holder;
            else free_rows[left++] = holder;
        }
        count = left;
    }
    for (int32_t i = 0; i < n; i++) {
        if (col_of[i] != NIL) w->u[i] = (double)w->cost[(size_t)i * (size_t)n + (size_t)col_of[i]] -
                                        w->v[col_of[i]];
    }
    for (int32_t k = 0; k < count; k++) lower_row(w, free_rows[k]);
    return count;
}

/* One shortest augmenting path from the free row r0 (Dijkstra on reduced costs), the dual
 * update that keeps every candidate feasible and the path tight, and the augmentation.
 * Returns 0 if no free column is reachable (impossible with the guard matching). */
static int augment(cm_ot_workspace *w, int32_t r0, column_heap *heap) {
    int32_t n = (int32_t)w->n, *col_of = w->thread, *row_of = w->thread + n;
    int32_t *pred = w->rev_thread, *touched = w->stem, count = 0, sink = NIL;
    double *dist = w->flow, *u = w->u, *v = w->v, here = 0.0;
    int32_t i = r0;
    for (;;) {
        for (int32_t q = w->csr_start[i]; q < w->csr_start[i + 1]; q++) {
            int32_t j = w->csr_j[q];
            if (heap->where[j] == FINAL) continue;
            double candidate = here + (w->csr_cost[q] - u[i] - v[j]);
            if (heap->where[j] == UNSEEN) {
                dist[j] = candidate;
                pred[j] = i;
                touched[count++] = j;
                heap_push(heap, j);
            } else if (candidate < dist[j]) {
                dist[j] = candidate;
                pred[j] = i;
                heap_up(heap, heap->where[j]);
            }
        }
        if (heap->size == 0) break;
        int32_t j = heap_pop(heap);
        if (row_of[j] == NIL) {
            sink = j;
            break;
        }
        i = row_of[j];
        here = dist[j];
    }
    if (sink != NIL) {
        double length = dist[sink];
        u[r0] += length;
        for (int32_t t = 0; t < count; t++) {
            int32_t j = touched[t];
            if (heap->where[j] != FINAL || j == sink) continue;
            double shift = length - dist[j];
            v[j] -= shift;
            u[row_of[j]] += shift;
        }
        for (int32_t j = sink;;) {
            int32_t row = pred[j], previous = col_of[row];
            row_of[j] = row;
            col_of[row] = j;
            if (row == r0) break;
            j = previous;
        }
    }
    for (int32_t t = 0; t < count; t++) heap->where[touched[t]] = UNSEEN;
    heap->size = 0;
    return sink != NIL;
}

/* Full scan: for every row its CM_OT_ROW_ARCS most violated arcs, for every column its most violated
 * arc, join the candidates; the rows of all of them are freed (listed in free_rows). Returns
 * the number of rows freed; 0 proves optimality over all n^2 arcs. */
static int32_t scan_all_arcs(cm_ot_workspace *w, double tolerance, double largest,
                             int32_t *free_rows) {
    int32_t n = (int32_t)w->n, *col_of = w->thread, *row_of = w->thread + n;
    int32_t *flagged = w->stem_succ, count = 0;
    if (w->arc_count + (CM_OT_ROW_ARCS + 1) * (size_t)(2 * n) > w->arc_capacity) {
        for (int32_t i = 0; i < n; i++) w->pot[i] = -w->u[i]; /* compaction's convention */
        for (int32_t j = 0; j < n; j++) w->pot[n + j] = w->v[j];
        cm_ot_compact_candidates(w, largest);
    }
    for (int32_t j = 0; j < n; j++) {
        w->column_best[j] = -tolerance;
        w->column_arg[j] = NIL;
    }
    for (int32_t i = 0; i < n; i++) {
        const float *row = w->cost + (size_t)i * (size_t)n;
        double ui = w->u[i], best[CM_OT_ROW_ARCS];
        int32_t arg[CM_OT_ROW_ARCS];
        for (int k = 0; k < CM_OT_ROW_ARCS; k++) best[k] = -tolerance, arg[k] = NIL;
        for (int32_t j = 0; j < n; j++) {
            double reduced = (double)row[j] - ui - w->v[j];
            cm_ot_keep_most_violated(best, arg, reduced, j);
            if (reduced < w->column_best[j]) {
                w->column_best[j] = reduced;
                w->column_arg[j] = i;
            }
        }
        flagged[i] = arg[0] != NIL;
        for (int k = 0; k < CM_OT_ROW_ARCS && arg[k] != NIL; k++) cm_ot_add_arc(w, i, arg[k]);
    }
    for (int32_t j = 0; j < n; j++) {
        int32_t i = w->column_arg[j];
        if (i == NIL) continue;
        cm_ot_add_arc(w, i, j);
        flagged[i] = 1;
    }
    for (int32_t i = 0; i < n; i++) {
        if (!flagged[i]) continue;
        if (col_of[i] != NIL) row_of[col_of[i]] = NIL;
        col_of[i] = NIL;
        free_rows[count++] = i;
    }
    return count;
}

cm_status cm_ot_assignment_run(cm_ot_result *out, cm_ot_workspace *w) {
    int32_t n = (int32_t)w->n, *col_of = w->thread, *row_of = w->thread + n;
    int32_t *free_rows = w->position;
    /* the guard matching: k-th source in key order with the k-th sink */
    int32_t *oa = w->block, *ob = w->reorder;
    for (int32_t k = 0; k < n; k++) oa[k] = k, ob[k] = n + k;
    cm_ot_sort_by_key(oa, w->stem, w->key, (size_t)n);
    cm_ot_sort_by_key(ob, w->stem, w->key, (size_t)n);
    for (int32_t k = 0; k < n; k++) w->guard[oa[k]] = ob[k] - n;
    w->arc_count = 0;
    w->pivots = 0;
    w->rounds = 0;
    double largest = cm_ot_seed_candidates(w), tolerance = TOLERANCE * largest;
    cm_ot_add_order_arcs(w);
    build_rows(w);
    /* start: column reduction v_j = min_i C_ij over the candidates, row reduction u_i, and the
     * greedy matching of every row to a free column where its reduced cost is 0 */
    for (int32_t j = 0; j < n; j++) w->v[j] = INFINITY;
    for (int32_t i = 0; i < n; i++)
        for (int32_t q = w->csr_start[i]; q < w->csr_start[i + 1]; q++)
            if (w->csr_cost[q] < w->v[w->csr_j[q]]) w->v[w->csr_j[q]] = w->csr_cost[q];
    for (int32_t j = 0; j < n; j++) row_of[j] = NIL;
    int32_t free_count = 0;
    for (int32_t i = 0; i < n; i++) {
        lower_row(w, i);
        col_of[i] = NIL;
        for (int32_t q = w->csr_start[i]; q < w->csr_start[i + 1]; q++) {
            int32_t j = w->csr_j[q];
            if (row_of[j] == NIL && w->csr_cost[q] - w->v[j] == w->u[i]) {
                row_of[j] = i;
                col_of[i] = j;
                break;
            }
        }
        if (col_of[i] == NIL) free_rows[free_count++] = i;
    }
    column_heap heap = {.item = w->block, .where = w->reorder, .size = 0, .key = w->flow};
    for (int32_t j = 0; j < n; j++) heap.where[j] = UNSEEN;
    for (;;) {
        free_count = reduce_rows(w, free_rows, free_count);
        for (int32_t k = 0; k < free_count; k++) {
            if (!augment(w, free_rows[k], &heap))
                return cm_error_set(CM_ERR_INVALID, "optimal transport: no augmenting path from "
                                    "row %d (%d x %d)", (int)free_rows[k], (int)n, (int)n);
            w->pivots++;
        }
        for (int32_t i = 0; i < n; i++) /* matched pairs exactly tight */
            w->u[i] = (double)w->cost[(size_t)i * (size_t)n + (size_t)col_of[i]] - w->v[col_of[i]];
        if (++w->rounds > MAX_ROUNDS)
            return cm_error_set(CM_ERR_INVALID, "optimal transport: no convergence after %zu "
                                "scans (%d x %d)", w->rounds, (int)n, (int)n);
        free_count = scan_all_arcs(w, tolerance, largest, free_rows);
        if (free_count == 0) break;
        build_rows(w);
        for (int32_t k = 0; k < free_count; k++) lower_row(w, free_rows[k]);
    }
    double total = 0.0, u_mean = 0.0, v_mean = 0.0;
    for (int32_t i = 0; i < n; i++) {
        w->plan[i] = (cm_ot_entry){.i = (size_t)i, .j = (size_t)col_of[i], .mass = 1.0};
        total += (double)w->cost[(size_t)i * (size_t)n + (size_t)col_of[i]];
        u_mean += w->u[i] / (double)n;
        v_mean += w->v[i] / (double)n;
    }
    double centre = 0.5 * (u_mean - v_mean);
    for (int32_t i = 0; i < n; i++) {
        w->u[i] -= centre;
        w->v[i] += centre;
    }
    cm_ot_fill_result(out, w, (size_t)n, (size_t)n, total, (size_t)n);
    return CM_OK;
}
