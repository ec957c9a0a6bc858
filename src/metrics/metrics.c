/* metrics.c: distances between empirical laws without a transport solver (see metrics.h):
 * 1-D W_p, sliced W1 and W2, max-sliced W1, MMD^2 and the energy distance.
 *
 * W_p in 1-D is the integral over u in (0, 1) of |F_a^{-1}(u) - F_b^{-1}(u)|^p; both quantile
 * functions are step functions with breakpoints i/n and j/m, so one merge over the union of
 * breakpoints computes it exactly for any n, m. Sliced W (Rabin, Peyre, Delon, Bernot 2011)
 * averages that over projections on random directions; max-sliced W1 (Deshpande et al., CVPR
 * 2019) maximises it over directions. MMD (Gretton et al., JMLR 2012) and the energy distance
 * (Szekely and Rizzo 2013) are the unbiased U-statistics, computed pair by pair without a
 * kernel matrix. Hand-written: a merge, an LSD radix sort of doubles (qsort is the reference it
 * is tested against) and double loops. Exact optimal transport in d > 1 is in ot.c.
 */
#include "cm/metrics.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/rng.h"

/* Beyond this many points a breakpoint comparison (i+1) m <=> (j+1) n could overflow 64 bits,
 * so it falls back to comparing the rounded doubles (i+1)/n and (j+1)/m. */
#define EXACT_COMPARE_MAX ((size_t)UINT32_MAX)
/* LSD radix sort: 8 passes of 8-bit digits over 64-bit keys. */
#define RADIX_BITS 8
#define RADIX_BUCKETS (1 << RADIX_BITS)
/* Max-sliced W1: first rotation angle of the gradient ascent (radians; about 29 degrees, a
 * large move that the halving rule shrinks), and the angle below which it stops (1e-6 rad
 * changes W1 by a relative 1e-6 at most). */
#define MAX_SLICED_ANGLE 0.5
#define MAX_SLICED_MIN_ANGLE 1e-6

/* Order-preserving map from a double to an unsigned key (IEEE 754): flip every bit of a
 * negative number, only the sign bit of a positive one. */
static uint64_t sort_key(double value) {
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits >> 63 ? ~bits : bits | ((uint64_t)1 << 63);
}

static double key_value(uint64_t key) {
    uint64_t bits = key >> 63 ? key & ~((uint64_t)1 << 63) : ~key;
    double value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

/* Sort finite x[0..n) ascending; keys and scratch hold n values each. Same result as qsort
 * with a < comparison (kept in tests/test_metrics.c as the reference), about 10x faster on
 * the 10^5-point projections of sliced W1. */
static void sort_doubles(double *x, size_t n, uint64_t *keys, uint64_t *scratch) {
    for (size_t i = 0; i < n; i++) keys[i] = sort_key(x[i]);
    for (int shift = 0; shift < 64; shift += RADIX_BITS) {
        size_t start[RADIX_BUCKETS] = {0};
        for (size_t i = 0; i < n; i++) start[(keys[i] >> shift) & (RADIX_BUCKETS - 1)]++;
        if (n == 0 || start[(keys[0] >> shift) & (RADIX_BUCKETS - 1)] == n) continue;
        size_t offset = 0;
        for (int b = 0; b < RADIX_BUCKETS; b++) {
            size_t count = start[b];
            start[b] = offset;
            offset += count;
        }
        for (size_t i = 0; i < n; i++)
            scratch[start[(keys[i] >> shift) & (RADIX_BUCKETS - 1)]++] = keys[i];
        uint64_t *swap = keys;
        keys = scratch;
        scratch = swap;
    }
    for (size_t i = 0; i < n; i++) x[i] = key_value(keys[i]);
}

/* Sign of (i+1)/n - (j+1)/m: which quantile step ends first. */
static int compare_breakpoints(size_t i, size_t n, size_t j, size_t m) {
    if (n <= EXACT_COMPARE_MAX && m <= EXACT_COMPARE_MAX) {
        uint64_t left = (uint64_t)(i + 1) * m, right = (uint64_t)(j + 1) * n;
        return (left > right) - (left < right);
    }
    double left = (double)(i + 1) / (double)n, right = (double)(j + 1) / (double)m;
    return (left > right) - (left < right);
}

/* |difference|^p, with the common powers exact. */
static double power_of(double difference, double p) {
    double magnitude = fabs(difference);
    if (p == 1.0) return magnitude;
    if (p == 2.0) return magnitude * magnitude;
    return pow(magnitude, p);
}

double cm_metrics_wp_1d_sorted(const double *a_sorted, size_t n, const double *b_sorted,
                               size_t m, double p) {
    if (n == 0 || m == 0) return 0.0;
    double total = 0.0, u = 0.0; /* u: left end of the current quantile interval */
    size_t i = 0, j = 0;
    while (i < n && j < m) {
        int order = compare_breakpoints(i, n, j, m);
        double next = order <= 0 ? (double)(i + 1) / (double)n : (double)(j + 1) / (double)m;
        total += (next - u) * power_of(a_sorted[i] - b_sorted[j], p);
        u = next;
        if (order <= 0) i++;
        if (order >= 0) j++;
    }
    return total;
}

double cm_metrics_w1_1d_sorted(const double *a_sorted, size_t n, const double *b_sorted,
                               size_t m) {
    return cm_metrics_wp_1d_sorted(a_sorted, n, b_sorted, m, 1.0);
}

static cm_status check_points(const double *x, size_t count, const char *what, const char *name) {
    if (!x) return cm_error_set(CM_ERR_INVALID, "%s: %s is NULL", what, name);
    for (size_t k = 0; k < count; k++)
        if (!isfinite(x[k]))
            return cm_error_set(CM_ERR_NONFINITE, "%s: %s[%zu] is %g", what, name, k, x[k]);
    return CM_OK;
}

/* Arguments shared by every distance between a (n x d) and b (m x d). */
static cm_status check_pair(const double *a, size_t n, const double *b, size_t m, size_t d,
                            size_t minimum, const char *what) {
    if (n < minimum || m < minimum || d == 0)
        return cm_error_set(CM_ERR_INVALID, "%s: %s input (n=%zu, m=%zu, d=%zu; at least %zu "
                            "points each)", what, n == 0 || m == 0 || d == 0 ? "empty" : "too small",
                            n, m, d, minimum);
    if (n > SIZE_MAX / d || m > SIZE_MAX / d)
        return cm_error_set(CM_ERR_INVALID, "%s: %zu or %zu points of dimension %zu overflow",
                            what, n, m, d);
    CM_TRY(check_points(a, n * d, what, "a"));
    CM_TRY(check_points(b, m * d, what, "b"));
    return CM_OK;
}

static cm_status wp_1d(double *out, const double *a, size_t n, const double *b, size_t m,
                       double p, const char *what) {
    if (!out) return cm_error_set(CM_ERR_INVALID, "%s: out is NULL", what);
    if (!(p >= 1.0) || !isfinite(p))
        return cm_error_set(CM_ERR_INVALID, "%s: p = %g is not a finite number >= 1", what, p);
    if (n == 0 || m == 0)
        return cm_error_set(CM_ERR_INVALID, "%s: empty sample (n=%zu, m=%zu)", what, n, m);
    CM_TRY(check_points(a, n, what, "a"));
    CM_TRY(check_points(b, m, what, "b"));
    size_t larger = n > m ? n : m;
    double *work = cm_malloc(n + m, sizeof(double));
    uint64_t *keys = cm_malloc(larger, 2 * sizeof(uint64_t));
    if (!work || !keys) {
        cm_free(work);
        cm_free(keys);
        return cm_error_set(CM_ERR_NOMEM, "%s: no memory for %zu + %zu points", what, n, m);
    }
    memcpy(work, a, n * sizeof(double));
    memcpy(work + n, b, m * sizeof(double));
    sort_doubles(work, n, keys, keys + larger);
    sort_doubles(work + n, m, keys, keys + larger);
    double cost = cm_metrics_wp_1d_sorted(work, n, work + n, m, p);
    *out = p == 1.0 ? cost : pow(cost, 1.0 / p);
    cm_free(work);
    cm_free(keys);
    return CM_OK;
}

cm_status cm_metrics_w1_1d(double *out, const double *a, size_t n, const double *b, size_t m) {
    return wp_1d(out, a, n, b, m, 1.0, "W1");
}

cm_status cm_metrics_wp_1d(double *out, const double *a, size_t n, const double *b, size_t m,
                           double p) {
    return wp_1d(out, a, n, b, m, p, "W_p");
}

/* A uniform direction on the unit sphere: d normals, normalised (redrawn if all are zero). */
static void random_direction(double *direction, size_t d, cm_rng *rng) {
    double norm = 0.0;
    while (norm == 0.0) {
        for (size_t k = 0; k < d; k++) {
            direction[k] = cm_rng_normal(rng);
            norm += direction[k] * direction[k];
        }
        norm = sqrt(norm);
    }
    for (size_t k = 0; k < d; k++) direction[k] /= norm;
}

static void project(double *out, const double *x, size_t count, size_t d,
                    const double *direction) {
    for (size_t r = 0; r < count; r++) {
        double dot = 0.0;
        for (size_t k = 0; k < d; k++) dot += x[r * d + k] * direction[k];
        out[r] = dot;
    }
}

/* Workspace of the sliced distances: projections of a and b, four d-vectors (the direction
 * and the best, trial and gradient directions of max-sliced W1), sort keys. */
typedef struct {
    double *pa, *pb, *direction;
    uint64_t *keys, *scratch;
} slicer;

static cm_status slicer_alloc(slicer *s, size_t n, size_t m, size_t d, const char *what) {
    size_t larger = n > m ? n : m;
    s->pa = cm_malloc(n + m + 4 * d, sizeof(double)); /* no overflow: a and b exist */
    s->keys = cm_malloc(larger, 2 * sizeof(uint64_t));
    if (!s->pa || !s->keys) {
        cm_free(s->pa);
        cm_free(s->keys);
        return cm_error_set(CM_ERR_NOMEM, "%s: no memory for %zu + %zu points", what, n, m);
    }
    s->pb = s->pa + n;
    s->direction = s->pb + m;
    s->scratch = s->keys + larger;
    return CM_OK;
}

static void slicer_free(slicer *s) {
    cm_free(s->pa);
    cm_free(s->keys);
}

/* W_p^p of the projections of a and b on s->direction. */
static double sliced_cost(slicer *s, const double *a, size_t n, const double *b, size_t m,
                          size_t d, double p) {
    project(s->pa, a, n, d, s->direction);
    project(s->pb, b, m, d, s->direction);
    sort_doubles(s->pa, n, s->keys, s->scratch);
    sort_doubles(s->pb, m, s->keys, s->scratch);
    return cm_metrics_wp_1d_sorted(s->pa, n, s->pb, m, p);
}

/* Mean over the seeded directions of W_p^p of the projections. */
static cm_status sliced_mean(double *out, const double *a, size_t n, const double *b, size_t m,
                             size_t d, size_t projections, uint64_t seed, double p,
                             const char *what) {
    if (!out) return cm_error_set(CM_ERR_INVALID, "%s: out is NULL", what);
    CM_TRY(check_pair(a, n, b, m, d, 1, what));
    if (projections == 0) return cm_error_set(CM_ERR_INVALID, "%s: 0 projections", what);
    slicer s;
    CM_TRY(slicer_alloc(&s, n, m, d, what));
    cm_rng base, child;
    cm_rng_init(&base, seed);
    double total = 0.0;
    for (size_t k = 0; k < projections; k++) {
        cm_rng_fork(&child, &base, k);
        random_direction(s.direction, d, &child);
        total += sliced_cost(&s, a, n, b, m, d, p);
    }
    *out = total / (double)projections;
    slicer_free(&s);
    return CM_OK;
}

cm_status cm_metrics_sliced_w1(double *out, const double *a, size_t n, const double *b, size_t m,
                               size_t d, size_t projections, uint64_t seed) {
    return sliced_mean(out, a, n, b, m, d, projections, seed, 1.0, "sliced W1");
}

cm_status cm_metrics_sliced_w2(double *out, const double *a, size_t n, const double *b, size_t m,
                               size_t d, size_t projections, uint64_t seed) {
    CM_TRY(sliced_mean(out, a, n, b, m, d, projections, seed, 2.0, "sliced W2"));
    *out = sqrt(*out);
    return CM_OK;
}

/* A projected value with the index of its point, for the matching behind a gradient. */
typedef struct {
    double value;
    size_t index;
} ranked;

static int compare_ranked(const void *left, const void *right) {
    const ranked *a = left, *b = right;
    return (a->value > b->value) - (a->value < b->value);
}

/* W1 of the projections on `direction` and its gradient with respect to the direction:
 * W1(theta) = sum_k w_k |theta . (a_{i_k} - b_{j_k})| over the pieces (i_k, j_k, w_k) of the
 * quantile merge, so the gradient is sum_k w_k sign(.) (a_{i_k} - b_{j_k}) (a.e.). */
static double w1_and_gradient(double *gradient, const double *direction, const double *a,
                              size_t n, const double *b, size_t m, size_t d, ranked *ra,
                              ranked *rb) {
    for (size_t i = 0; i < n; i++) {
        double dot = 0.0;
        for (size_t k = 0; k < d; k++) dot += a[i * d + k] * direction[k];
        ra[i] = (ranked){dot, i};
    }
    for (size_t j = 0; j < m; j++) {
        double dot = 0.0;
        for (size_t k = 0; k < d; k++) dot += b[j * d + k] * direction[k];
        rb[j] = (ranked){dot, j};
    }
    qsort(ra, n, sizeof(ranked), compare_ranked);
    qsort(rb, m, sizeof(ranked), compare_ranked);
    memset(gradient, 0, d * sizeof(double));
    double total = 0.0, u = 0.0;
    size_t i = 0, j = 0;
    while (i < n && j < m) {
        int order = compare_breakpoints(i, n, j, m);
        double next = order <= 0 ? (double)(i + 1) / (double)n : (double)(j + 1) / (double)m;
        double weight = next - u, difference = ra[i].value - rb[j].value;
        total += weight * fabs(difference);
        double sign = (difference > 0.0) - (difference < 0.0);
        const double *x = a + ra[i].index * d, *y = b + rb[j].index * d;
        for (size_t k = 0; k < d; k++) gradient[k] += weight * sign * (x[k] - y[k]);
        u = next;
        if (order <= 0) i++;
        if (order >= 0) j++;
    }
    return total;
}

cm_status cm_metrics_max_sliced_w1(double *out, double *direction, const double *a, size_t n,
                                   const double *b, size_t m, size_t d, size_t projections,
                                   size_t steps, uint64_t seed) {
    const char *what = "max-sliced W1";
    if (!out) return cm_error_set(CM_ERR_INVALID, "%s: out is NULL", what);
    CM_TRY(check_pair(a, n, b, m, d, 1, what));
    if (projections == 0) return cm_error_set(CM_ERR_INVALID, "%s: 0 projections", what);
    slicer s;
    CM_TRY(slicer_alloc(&s, n, m, d, what));
    ranked *rank = cm_malloc(n + m, sizeof(ranked));
    if (!rank) {
        slicer_free(&s);
        return cm_error_set(CM_ERR_NOMEM, "%s: no memory for %zu + %zu points", what, n, m);
    }
    double *best = s.direction + d, *trial = s.direction + 2 * d;
    cm_rng base, child;
    cm_rng_init(&base, seed);
    double value = -1.0;
    for (size_t k = 0; k < projections; k++) {
        cm_rng_fork(&child, &base, k);
        random_direction(s.direction, d, &child);
        double w1 = sliced_cost(&s, a, n, b, m, d, 1.0);
        if (w1 > value) {
            value = w1;
            memcpy(best, s.direction, d * sizeof(double));
        }
    }
    /* projected gradient ascent on the sphere: rotate towards the tangent part g of the
     * gradient by an angle that starts at MAX_SLICED_ANGLE and halves after every refused
     * step (a step is taken only if it increases W1) */
    double *gradient = s.direction + 3 * d, angle = MAX_SLICED_ANGLE;
    for (size_t step = 0; step < steps && d > 1 && angle > MAX_SLICED_MIN_ANGLE; step++) {
        w1_and_gradient(gradient, best, a, n, b, m, d, rank, rank + n);
        double along = 0.0, norm = 0.0;
        for (size_t k = 0; k < d; k++) along += gradient[k] * best[k];
        for (size_t k = 0; k < d; k++) gradient[k] -= along * best[k];
        for (size_t k = 0; k < d; k++) norm += gradient[k] * gradient[k];
        norm = sqrt(norm);
        if (!(norm > 0.0)) break;
        for (;;) {
            double length = 0.0;
            for (size_t k = 0; k < d; k++) {
                trial[k] = cos(angle) * best[k] + sin(angle) * gradient[k] / norm;
                length += trial[k] * trial[k];
            }
            for (size_t k = 0; k < d; k++) trial[k] /= sqrt(length);
            memcpy(s.direction, trial, d * sizeof(double));
            double w1 = sliced_cost(&s, a, n, b, m, d, 1.0);
            if (w1 > value) {
                value = w1;
                memcpy(best, trial, d * sizeof(double));
                break;
            }
            angle *= 0.5;
            if (angle <= MAX_SLICED_MIN_ANGLE) break;
        }
    }
    *out = value;
    if (direction) memcpy(direction, best, d * sizeof(double));
    cm_free(rank);
    slicer_free(&s);
    return CM_OK;
}

/* Quickselect: the k-th smallest of x[0..count) (x is reordered). */
static double select_kth(double *x, size_t count, size_t k) {
    size_t lo = 0, hi = count - 1;
    while (lo < hi) {
        double pivot = x[lo + (hi - lo) / 2];
        size_t i = lo, j = hi;
        while (i <= j) {
            while (x[i] < pivot) i++;
            while (x[j] > pivot) j--;
            if (i <= j) {
                double swap = x[i];
                x[i] = x[j];
                x[j] = swap;
                i++;
                if (j == 0) break;
                j--;
            }
        }
        if (k <= j) hi = j;
        else if (k >= i) lo = i;
        else break;
    }
    return x[k];
}

static const double *pooled_point(const double *a, size_t n, const double *b, size_t d,
                                  size_t r) {
    return r < n ? a + r * d : b + (r - n) * d;
}

static double distance_squared(const double *x, const double *y, size_t d) {
    double sum = 0.0;
    for (size_t k = 0; k < d; k++) sum += (x[k] - y[k]) * (x[k] - y[k]);
    return sum;
}

cm_status cm_metrics_median_distance(double *out, const double *a, size_t n, const double *b,
                                     size_t m, size_t d) {
    const char *what = "median distance";
    if (!out) return cm_error_set(CM_ERR_INVALID, "%s: out is NULL", what);
    CM_TRY(check_pair(a, n, b, m, d, 1, what));
    size_t total = n + m, count = total < CM_METRICS_MEDIAN_POINTS ? total : CM_METRICS_MEDIAN_POINTS;
    size_t pairs = count * (count - 1) / 2;
    double *distances = cm_malloc(pairs, sizeof(double));
    if (!distances) return cm_error_set(CM_ERR_NOMEM, "%s: %zu pairs", what, pairs);
    size_t q = 0;
    for (size_t r = 0; r < count; r++) {
        const double *x = pooled_point(a, n, b, d, r * total / count);
        for (size_t t = r + 1; t < count; t++)
            distances[q++] = sqrt(distance_squared(x, pooled_point(a, n, b, d, t * total / count), d));
    }
    *out = select_kth(distances, pairs, pairs / 2);
    cm_free(distances);
    return CM_OK;
}

/* Sum over i < i' (within = 1, x = y) or over all i, j of f(|x_i - y_j|^2). */
typedef double (*pair_function)(double squared, double parameter);

static double pair_sum(const double *x, size_t n, const double *y, size_t m, size_t d,
                       int within, pair_function f, double parameter) {
    double total = 0.0;
    for (size_t i = 0; i < n; i++) {
        double row = 0.0; /* one partial sum per row keeps the rounding small */
        for (size_t j = within ? i + 1 : 0; j < m; j++)
            row += f(distance_squared(x + i * d, y + j * d, d), parameter);
        total += row;
    }
    return total;
}

static double gaussian_kernel(double squared, double inverse_two_h2) {
    return exp(-squared * inverse_two_h2);
}

static double euclidean(double squared, double unused) {
    (void)unused;
    return sqrt(squared);
}

/* The U-statistic mean_{i != i'} f(x, x') + mean_{j != j'} f(y, y') - 2 mean_{i, j} f(x, y),
 * with sign -1 on the within terms for the energy distance. */
static double u_statistic(const double *a, size_t n, const double *b, size_t m, size_t d,
                          pair_function f, double parameter, double within_sign) {
    double xx = 2.0 * pair_sum(a, n, a, n, d, 1, f, parameter) / ((double)n * (double)(n - 1));
    double yy = 2.0 * pair_sum(b, m, b, m, d, 1, f, parameter) / ((double)m * (double)(m - 1));
    double xy = pair_sum(a, n, b, m, d, 0, f, parameter) / ((double)n * (double)m);
    return within_sign * (xx + yy) - within_sign * 2.0 * xy;
}

cm_status cm_metrics_mmd2(double *out, const double *a, size_t n, const double *b, size_t m,
                          size_t d, double bandwidth) {
    const char *what = "MMD";
    if (!out) return cm_error_set(CM_ERR_INVALID, "%s: out is NULL", what);
    if (!(bandwidth > 0.0) || !isfinite(bandwidth))
        return cm_error_set(CM_ERR_INVALID, "%s: bandwidth %g is not positive and finite", what,
                            bandwidth);
    CM_TRY(check_pair(a, n, b, m, d, 2, what));
    *out = u_statistic(a, n, b, m, d, gaussian_kernel, 1.0 / (2.0 * bandwidth * bandwidth), 1.0);
    return CM_OK;
}

cm_status cm_metrics_energy(double *out, const double *a, size_t n, const double *b, size_t m,
                            size_t d) {
    const char *what = "energy distance";
    if (!out) return cm_error_set(CM_ERR_INVALID, "%s: out is NULL", what);
    CM_TRY(check_pair(a, n, b, m, d, 2, what));
    *out = u_statistic(a, n, b, m, d, euclidean, 0.0, -1.0);
    return CM_OK;
}
