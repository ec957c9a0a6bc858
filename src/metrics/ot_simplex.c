/* ot_simplex.c: the primal network simplex of the exact transport solver (see ot.h, ot_internal.h).
 *
 * Bipartite uncapacitated transportation problem, strongly feasible spanning trees (Cunningham
 * 1976: every zero-flow tree arc points towards the root, and the leaving arc is the last
 * blocking arc of the cycle met from its apex), which makes the method finite despite the heavy
 * degeneracy of assignment problems. The start is the north-west-corner plan of two 1-D orders
 * (a strongly feasible staircase tree rooted at the first source); the entering arc comes from
 * block search over a candidate list (nearest neighbours of every point and the sorted
 * matchings of the 1-D orders), and when no candidate has a negative reduced cost a full scan
 * of the cost matrix adds the most violated arcs of every row and column. A full scan that
 * finds none proves optimality over all n m arcs. Hand-written: no Debian C
 * library offers exact optimal transport (LEMON is C++ and not in Debian's C stack here).
 */
#include <math.h>
#include <string.h>

#include "cm/alloc.h"
#include "metrics/ot_internal.h"

#define NIL (-1)
/* Violated arcs of every row that a full scan adds (plus the most violated of every column). */
/* Entering-arc tolerance, relative to the largest cost: an arc enters only if its reduced cost
 * is below -PIVOT_TOLERANCE * max C. Costs are floats (relative precision 6e-8) and potentials
 * doubles recomputed from the tree every round (error ~1e-16 |pot|), so 1e-12 is far above the
 * rounding of a reduced cost and far below any difference that moves the optimal value. */
#define PIVOT_TOLERANCE 1e-12
/* Block search (LEMON's default rule): blocks of sqrt(arcs) candidates, at least this many. */
#define MIN_BLOCK 64
/* Guard against an endless loop through rounding (never observed): pivots per node. */
#define MAX_PIVOTS_PER_NODE 100000

static inline double arc_cost(const cm_ot_workspace *w, int32_t i, int32_t j) {
    return (double)w->cost[(size_t)i * w->m + (size_t)j];
}

/* Cost of the tree arc joining u to its parent (source -> sink in either case). */
static double tree_arc_cost(const cm_ot_workspace *w, int32_t u) {
    int32_t q = w->parent[u], n = (int32_t)w->n;
    return u < n ? arc_cost(w, u, q - n) : arc_cost(w, q, u - n);
}

/* Potentials from the tree: pot[root] = 0 and c(s, t) + pot[s] - pot[t] = 0 on tree arcs,
 * in preorder so that a parent is always done before its children. */
static void recompute_potentials(cm_ot_workspace *w) {
    int32_t n = (int32_t)w->n, root = w->root;
    w->pot[root] = 0.0;
    for (int32_t u = w->thread[root]; u != root; u = w->thread[u]) {
        double c = tree_arc_cost(w, u);
        w->pot[u] = u < n ? w->pot[w->parent[u]] - c : w->pot[w->parent[u]] + c;
    }
}

static int is_tree_arc(const cm_ot_workspace *w, int32_t s, int32_t t) {
    return w->parent[s] == t || w->parent[t] == s;
}

/* Stable bottom-up merge sort of index[0..count) by key[index]. */
void cm_ot_sort_by_key(int32_t *index, int32_t *scratch, const double *key, size_t count) {
    for (size_t width = 1; width < count; width *= 2) {
        for (size_t lo = 0; lo < count; lo += 2 * width) {
            size_t mid = lo + width < count ? lo + width : count;
            size_t hi = lo + 2 * width < count ? lo + 2 * width : count;
            size_t a = lo, b = mid, out = lo;
            while (a < mid && b < hi)
                scratch[out++] = key[index[b]] < key[index[a]] ? index[b++] : index[a++];
            while (a < mid) scratch[out++] = index[a++];
            while (b < hi) scratch[out++] = index[b++];
        }
        memcpy(index, scratch, count * sizeof(int32_t));
    }
}

/* The north-west-corner plan of sources and sinks taken in key order, as a tree rooted at the
 * first source (a staircase: a sink with several sources above it has them all as children).
 * Strongly feasible: a sink enters below a source (an arc pointing away from the root) only
 * while that source has supply left, so with positive flow; ties (a source and a sink exhausted
 * together) step to the next source, whose arc points to the root and may carry zero flow. The
 * last row and column absorb the rounding of unequal floating-point sums. */
static void initial_tree(cm_ot_workspace *w) {
    int32_t n = (int32_t)w->n, m = (int32_t)w->m, count = n + m;
    int32_t *oa = w->block, *ob = w->reorder, *sequence = w->stem;
    for (int32_t i = 0; i < n; i++) oa[i] = i;
    for (int32_t j = 0; j < m; j++) ob[j] = n + j;
    cm_ot_sort_by_key(oa, w->position, w->key, (size_t)n);
    cm_ot_sort_by_key(ob, w->position, w->key, (size_t)m);
    int32_t i = 0, j = 0, length = 0;
    double ra = w->supply[oa[0]], rb = w->supply[ob[0]];
    w->root = oa[0];
    w->parent[oa[0]] = NIL;
    w->flow[oa[0]] = 0.0;
    sequence[length++] = oa[0];
    int first = 1;
    while (first || i + 1 < n || j + 1 < m) {
        int32_t node;
        double f;
        if (!first && i + 1 < n && (j + 1 == m || ra <= 0.0)) {
            node = oa[++i];
            ra = w->supply[node];
            w->parent[node] = ob[j];
            f = j + 1 == m ? ra : i + 1 == n ? rb : (ra < rb ? ra : rb);
        } else {
            if (!first) rb = w->supply[ob[++j]];
            node = ob[j];
            w->parent[node] = oa[i];
            f = i + 1 == n ? rb : j + 1 == m ? ra : (ra < rb ? ra : rb);
            first = 0;
        }
        if (f < 0.0) f = 0.0;
        w->flow[node] = f;
        ra -= f;
        rb -= f;
        sequence[length++] = node;
    }
    /* each node hangs below the last node of the other side, which is the previous node or
     * its parent: the insertion order is a preorder */
    for (int32_t k = 0; k < count; k++) {
        int32_t next = sequence[(k + 1) % count];
        w->thread[sequence[k]] = next;
        w->rev_thread[next] = sequence[k];
        w->succ[sequence[k]] = 1;
    }
    for (int32_t k = count - 1; k > 0; k--) w->succ[w->parent[sequence[k]]] += w->succ[sequence[k]];
}

void cm_ot_add_order_arcs(cm_ot_workspace *w) {
    int32_t n = (int32_t)w->n, m = (int32_t)w->m, *oa = w->block, *ob = w->reorder;
    for (size_t order = 0; order < w->orders; order++) {
        const double *key = w->key + order * (size_t)(n + m);
        for (int32_t i = 0; i < n; i++) oa[i] = i;
        for (int32_t j = 0; j < m; j++) ob[j] = n + j;
        cm_ot_sort_by_key(oa, w->position, key, (size_t)n);
        cm_ot_sort_by_key(ob, w->position, key, (size_t)m);
        int32_t i = 0, j = 0;
        double ra = w->supply[oa[0]], rb = w->supply[ob[0]];
        for (;;) {
            cm_ot_add_arc(w, oa[i], ob[j] - n);
            double f = ra < rb ? ra : rb;
            ra -= f;
            rb -= f;
            if (i + 1 == n && j + 1 == m) break;
            if (i + 1 < n && (j + 1 == m || ra <= 0.0)) ra = w->supply[oa[++i]];
            else rb = w->supply[ob[++j]];
        }
    }
}

void cm_ot_add_arc(cm_ot_workspace *w, int32_t i, int32_t j) {
    w->arc_i[w->arc_count] = i;
    w->arc_j[w->arc_count] = j;
    w->arc_cost[w->arc_count] = arc_cost(w, i, j);
    w->arc_count++;
}

/* Insert (value, index) into the ascending list of the `count` smallest. */
static void keep_smallest(float *values, int32_t *indices, int count, float value, int32_t index) {
    int k = count - 1;
    while (k > 0 && values[k - 1] > value) {
        values[k] = values[k - 1];
        indices[k] = indices[k - 1];
        k--;
    }
    values[k] = value;
    indices[k] = index;
}

/* First pass over the matrix: its largest entry, and the CM_OT_KNN cheapest arcs of every row and
 * every column as the first candidates (duplicates are harmless: once one copy enters the
 * tree the other is skipped as a tree arc). */
double cm_ot_seed_candidates(cm_ot_workspace *w) {
    size_t n = w->n, m = w->m;
    int kr = m < CM_OT_KNN ? (int)m : CM_OT_KNN, kc = n < CM_OT_KNN ? (int)n : CM_OT_KNN;
    for (size_t q = 0; q < m * CM_OT_KNN; q++) {
        w->knn_cost[q] = INFINITY;
        w->knn_arg[q] = NIL;
    }
    double largest = 0.0;
    for (size_t i = 0; i < n; i++) {
        const float *row = w->cost + i * m;
        float best[CM_OT_KNN];
        int32_t arg[CM_OT_KNN];
        for (int k = 0; k < CM_OT_KNN; k++) best[k] = INFINITY, arg[k] = NIL;
        float row_max = 0.0f;
        for (size_t j = 0; j < m; j++) {
            float c = row[j];
            if (c > row_max) row_max = c;
            if (c < best[kr - 1]) keep_smallest(best, arg, kr, c, (int32_t)j);
            float *column = w->knn_cost + j * CM_OT_KNN;
            if (c < column[kc - 1])
                keep_smallest(column, w->knn_arg + j * CM_OT_KNN, kc, c, (int32_t)i);
        }
        if (row_max > largest) largest = row_max;
        for (int k = 0; k < kr; k++) cm_ot_add_arc(w, (int32_t)i, arg[k]);
    }
    for (size_t j = 0; j < m; j++)
        for (int k = 0; k < kc; k++) cm_ot_add_arc(w, w->knn_arg[j * CM_OT_KNN + k], (int32_t)j);
    return largest;
}

/* Drop candidates whose reduced cost is above a threshold, halving it from the largest cost
 * until at most half the capacity stays (called before a scan would overflow the list). */
void cm_ot_compact_candidates(cm_ot_workspace *w, double largest) {
    int32_t n = (int32_t)w->n;
    double threshold = largest;
    for (int halvings = 0; halvings < 64; halvings++, threshold *= 0.5) {
        size_t kept = 0;
        for (size_t k = 0; k < w->arc_count; k++)
            if (w->arc_cost[k] + w->pot[w->arc_i[k]] - w->pot[n + w->arc_j[k]] <= threshold) kept++;
        if (kept <= w->arc_capacity / 2) break;
    }
    size_t kept = 0;
    for (size_t k = 0; k < w->arc_count; k++) {
        if (w->arc_cost[k] + w->pot[w->arc_i[k]] - w->pot[n + w->arc_j[k]] > threshold) continue;
        w->arc_i[kept] = w->arc_i[k];
        w->arc_j[kept] = w->arc_j[k];
        w->arc_cost[kept] = w->arc_cost[k];
        kept++;
    }
    w->arc_count = kept;
    w->arc_next = 0;
}

/* Full scan: the CM_OT_ROW_ARCS most violated arcs of every row (reduced cost below -tolerance) and
 * the most violated arc of every column join the candidates. Returns how many joined; 0 proves
 * optimality over all n m arcs. */
static size_t scan_all_arcs(cm_ot_workspace *w, double tolerance, double largest) {
    size_t n = w->n, m = w->m;
    const double *sink_pot = w->pot + n;
    if (w->arc_count + (CM_OT_ROW_ARCS + 1) * (n + m) > w->arc_capacity) cm_ot_compact_candidates(w, largest);
    for (size_t j = 0; j < m; j++) {
        w->column_best[j] = -tolerance;
        w->column_arg[j] = NIL;
    }
    int32_t *row_arg = w->position;
    size_t added = 0;
    for (size_t i = 0; i < n; i++) {
        const float *row = w->cost + i * m;
        double source_pot = w->pot[i];
        double best[CM_OT_ROW_ARCS];
        int32_t arg[CM_OT_ROW_ARCS];
        for (int k = 0; k < CM_OT_ROW_ARCS; k++) best[k] = -tolerance, arg[k] = NIL;
        for (size_t j = 0; j < m; j++) {
            double reduced = (double)row[j] + source_pot - sink_pot[j];
            cm_ot_keep_most_violated(best, arg, reduced, (int32_t)j);
            if (reduced < w->column_best[j]) {
                w->column_best[j] = reduced;
                w->column_arg[j] = (int32_t)i;
            }
        }
        row_arg[i] = arg[0];
        for (int k = 0; k < CM_OT_ROW_ARCS && arg[k] != NIL; k++) {
            if (is_tree_arc(w, (int32_t)i, (int32_t)n + arg[k])) continue;
            cm_ot_add_arc(w, (int32_t)i, arg[k]);
            added++;
        }
    }
    for (size_t j = 0; j < m; j++) {
        int32_t i = w->column_arg[j];
        if (i == NIL || row_arg[i] == (int32_t)j || is_tree_arc(w, i, (int32_t)(n + j))) continue;
        cm_ot_add_arc(w, i, (int32_t)j);
        added++;
    }
    return added;
}

/* Block search over the candidates: the most negative reduced cost of the first block (taken
 * cyclically from where the last search stopped) that has one below -tolerance. */
static long find_entering(cm_ot_workspace *w, double tolerance, double *out_reduced) {
    size_t count = w->arc_count;
    if (count == 0) return -1;
    size_t block = (size_t)sqrt((double)count);
    if (block < MIN_BLOCK) block = MIN_BLOCK;
    const double *sink_pot = w->pot + w->n;
    double best = -tolerance;
    long found = -1;
    size_t k = w->arc_next, in_block = 0;
    for (size_t scanned = 0; scanned < count; scanned++) {
        double reduced = w->arc_cost[k] + w->pot[w->arc_i[k]] - sink_pot[w->arc_j[k]];
        if (reduced < best && !is_tree_arc(w, w->arc_i[k], (int32_t)w->n + w->arc_j[k])) {
            best = reduced;
            found = (long)k;
        }
        if (++k == count) k = 0;
        if (++in_block == block) {
            if (found >= 0) break;
            in_block = 0;
        }
    }
    w->arc_next = k;
    *out_reduced = best;
    return found;
}

/* Hang the subtree S of u_out (which contains u_in) below v_in through the entering arc:
 * reverse the stem u_in = x0, x1, ..., xk = u_out, rebuild S's preorder as block(x0) followed,
 * for t = 1..k, by block(x_t) without block(x_{t-1}), splice it in after v_in, and update the
 * subtree sizes on the two paths to the apex. O(|S| + cycle length). */
static void update_tree(cm_ot_workspace *w, int32_t u_in, int32_t v_in, int32_t u_out,
                        int32_t join, double delta, double shift) {
    int32_t *parent = w->parent, *thread = w->thread, *rev = w->rev_thread, *succ = w->succ;
    int32_t *stem = w->stem, *stem_succ = w->stem_succ, *block = w->block, *reorder = w->reorder;
    int32_t size = succ[u_out], k = 0;
    for (int32_t x = u_in;; x = parent[x]) {
        stem[k] = x;
        stem_succ[k] = succ[x];
        k++;
        if (x == u_out) break;
    }
    int32_t old_parent = parent[u_out];
    /* cut S out of the thread */
    int32_t x = u_out;
    for (int32_t q = 0; q < size; q++, x = thread[x]) {
        block[q] = x;
        w->position[x] = q;
    }
    int32_t before = rev[u_out], after = x;
    thread[before] = after;
    rev[after] = before;
    /* S's preorder rooted at u_in */
    int32_t out = 0;
    for (int32_t q = w->position[stem[0]]; q < w->position[stem[0]] + stem_succ[0]; q++)
        reorder[out++] = block[q];
    for (int32_t t = 1; t < k; t++) {
        int32_t start = w->position[stem[t]], end = start + stem_succ[t];
        int32_t hole = w->position[stem[t - 1]], hole_end = hole + stem_succ[t - 1];
        for (int32_t q = start; q < hole; q++) reorder[out++] = block[q];
        for (int32_t q = hole_end; q < end; q++) reorder[out++] = block[q];
    }
    /* splice it in after v_in, as its first child */
    int32_t next = thread[v_in], previous = v_in;
    for (int32_t q = 0; q < size; q++) {
        thread[previous] = reorder[q];
        rev[reorder[q]] = previous;
        previous = reorder[q];
    }
    thread[previous] = next;
    rev[next] = previous;
    /* reverse the stem: parents and the flows of its arcs move one node down */
    for (int32_t t = k - 2; t >= 0; t--) {
        parent[stem[t + 1]] = stem[t];
        w->flow[stem[t + 1]] = w->flow[stem[t]];
    }
    parent[u_in] = v_in;
    w->flow[u_in] = delta;
    for (int32_t t = k - 1; t >= 1; t--) succ[stem[t]] = size - stem_succ[t - 1];
    succ[stem[0]] = size;
    for (int32_t y = old_parent; y != join; y = parent[y]) succ[y] -= size;
    for (int32_t y = v_in; y != join; y = parent[y]) succ[y] += size;
    for (int32_t q = 0; q < size; q++) w->pot[block[q]] += shift;
}

/* One pivot on the entering arc s -> t (source s, sink node t) of reduced cost `reduced` < 0. */
static void pivot(cm_ot_workspace *w, int32_t s, int32_t t, double reduced) {
    int32_t *parent = w->parent, *succ = w->succ, n = (int32_t)w->n;
    int32_t a = s, b = t;
    while (a != b) {
        if (succ[a] < succ[b]) a = parent[a];
        else b = parent[b];
    }
    int32_t join = a, u_out = NIL;
    int side = 0;
    double delta = INFINITY;
    /* flow runs join -> s -> t -> join: down the s side, up the t side; the arcs whose flow
     * decreases are the source arcs on the s side and the sink arcs on the t side */
    for (int32_t u = s; u != join; u = parent[u])
        if (u < n && w->flow[u] < delta) {
            delta = w->flow[u];
            u_out = u;
            side = 1;
        }
    for (int32_t u = t; u != join; u = parent[u])
        if (u >= n && w->flow[u] <= delta) {
            delta = w->flow[u];
            u_out = u;
            side = 2;
        }
    if (delta > 0.0) {
        for (int32_t u = s; u != join; u = parent[u]) w->flow[u] += u < n ? -delta : delta;
        for (int32_t u = t; u != join; u = parent[u]) w->flow[u] += u < n ? delta : -delta;
    }
    if (side == 1) update_tree(w, s, t, u_out, join, delta, -reduced);
    else update_tree(w, t, s, u_out, join, delta, reduced);
}

cm_status cm_ot_simplex_run(cm_ot_result *out, cm_ot_workspace *w) {
    size_t n = w->n, m = w->m, nodes = n + m;
    w->arc_count = 0;
    w->arc_next = 0;
    w->pivots = 0;
    w->rounds = 0;
    initial_tree(w);
    recompute_potentials(w);
    double largest = cm_ot_seed_candidates(w);
    cm_ot_add_order_arcs(w);
    double tolerance = PIVOT_TOLERANCE * largest;
    size_t max_pivots = MAX_PIVOTS_PER_NODE * nodes;
    for (;;) {
        double reduced;
        long k;
        while ((k = find_entering(w, tolerance, &reduced)) >= 0) {
            pivot(w, w->arc_i[k], (int32_t)n + w->arc_j[k], reduced);
            if (++w->pivots > max_pivots)
                return cm_error_set(CM_ERR_INVALID, "optimal transport: no convergence after %zu "
                                    "pivots (%zu x %zu)", w->pivots, n, m);
        }
        recompute_potentials(w);
        w->rounds++;
        if (scan_all_arcs(w, tolerance, largest) == 0) break;
    }
    /* plan: the tree arcs with flow (in supply units; the caller rescales); duals u_i = -pot_i,
     * v_j = pot_j, centred */
    double u_mean = 0.0, v_mean = 0.0, total = 0.0;
    size_t count = 0;
    for (size_t u = 0; u < nodes; u++) {
        if ((int32_t)u == w->root || !(w->flow[u] > 0.0)) continue;
        size_t q = (size_t)w->parent[u];
        cm_ot_entry *e = &w->plan[count++];
        e->i = u < n ? u : q;
        e->j = (u < n ? q : u) - n;
        e->mass = w->flow[u];
        total += e->mass * arc_cost(w, (int32_t)e->i, (int32_t)e->j);
    }
    for (size_t i = 0; i < n; i++) u_mean += -w->pot[i] / (double)n;
    for (size_t j = 0; j < m; j++) v_mean += w->pot[n + j] / (double)m;
    double centre = 0.5 * (u_mean - v_mean);
    for (size_t i = 0; i < n; i++) w->u[i] = -w->pot[i] - centre;
    for (size_t j = 0; j < m; j++) w->v[j] = w->pot[n + j] + centre;
    cm_ot_fill_result(out, w, n, m, total, count);
    return CM_OK;
}
