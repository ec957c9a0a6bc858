/* metrics.c: 1-D and sliced Wasserstein-1 distances between empirical laws (see metrics.h).
 *
 * W1 in 1-D is the integral over u in (0, 1) of |F_a^{-1}(u) - F_b^{-1}(u)|; both quantile
 * functions are step functions with breakpoints i/n and j/m, so one merge over the union of
 * breakpoints computes it exactly for any n, m. Sliced W1 (Rabin, Peyre, Delon, Bernot 2011)
 * averages that over projections on random directions. Hand-written: a merge and an LSD radix
 * sort of doubles (qsort is the reference it is tested against). Exact optimal transport in
 * d > 1 is not here.
 */
#include "cm/metrics.h"

#include <math.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/rng.h"

/* Beyond this many points a breakpoint comparison (i+1) m <=> (j+1) n could overflow 64 bits,
 * so it falls back to comparing the rounded doubles (i+1)/n and (j+1)/m. */
#define EXACT_COMPARE_MAX ((size_t)UINT32_MAX)
/* LSD radix sort: 8 passes of 8-bit digits over 64-bit keys. */
#define RADIX_BITS 8
#define RADIX_BUCKETS (1 << RADIX_BITS)

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

double cm_metrics_w1_1d_sorted(const double *a_sorted, size_t n, const double *b_sorted,
                               size_t m) {
    if (n == 0 || m == 0) return 0.0;
    double total = 0.0, u = 0.0; /* u: left end of the current quantile interval */
    size_t i = 0, j = 0;
    while (i < n && j < m) {
        int order = compare_breakpoints(i, n, j, m);
        double next = order <= 0 ? (double)(i + 1) / (double)n : (double)(j + 1) / (double)m;
        total += (next - u) * fabs(a_sorted[i] - b_sorted[j]);
        u = next;
        if (order <= 0) i++;
        if (order >= 0) j++;
    }
    return total;
}

static cm_status check_points(const double *x, size_t count, const char *name) {
    if (!x) return cm_error_set(CM_ERR_INVALID, "W1: %s is NULL", name);
    for (size_t k = 0; k < count; k++)
        if (!isfinite(x[k]))
            return cm_error_set(CM_ERR_NONFINITE, "W1: %s[%zu] is %g", name, k, x[k]);
    return CM_OK;
}

cm_status cm_metrics_w1_1d(double *out, const double *a, size_t n, const double *b, size_t m) {
    if (!out) return cm_error_set(CM_ERR_INVALID, "W1: out is NULL");
    if (n == 0 || m == 0)
        return cm_error_set(CM_ERR_INVALID, "W1: empty sample (n=%zu, m=%zu)", n, m);
    CM_TRY(check_points(a, n, "a"));
    CM_TRY(check_points(b, m, "b"));
    size_t larger = n > m ? n : m;
    double *work = cm_malloc(n + m, sizeof(double));
    uint64_t *keys = cm_malloc(larger, 2 * sizeof(uint64_t));
    if (!work || !keys) {
        cm_free(work);
        cm_free(keys);
        return cm_error_set(CM_ERR_NOMEM, "W1: no memory for %zu + %zu points", n, m);
    }
    memcpy(work, a, n * sizeof(double));
    memcpy(work + n, b, m * sizeof(double));
    sort_doubles(work, n, keys, keys + larger);
    sort_doubles(work + n, m, keys, keys + larger);
    *out = cm_metrics_w1_1d_sorted(work, n, work + n, m);
    cm_free(work);
    cm_free(keys);
    return CM_OK;
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

cm_status cm_metrics_sliced_w1(double *out, const double *a, size_t n, const double *b, size_t m,
                               size_t d, size_t projections, uint64_t seed) {
    if (!out) return cm_error_set(CM_ERR_INVALID, "sliced W1: out is NULL");
    if (n == 0 || m == 0 || d == 0)
        return cm_error_set(CM_ERR_INVALID, "sliced W1: empty input (n=%zu, m=%zu, d=%zu)", n, m,
                            d);
    if (projections == 0) return cm_error_set(CM_ERR_INVALID, "sliced W1: 0 projections");
    if (n > SIZE_MAX / d || m > SIZE_MAX / d)
        return cm_error_set(CM_ERR_INVALID, "sliced W1: %zu or %zu points of dimension %zu "
                            "overflow", n, m, d);
    CM_TRY(check_points(a, n * d, "a"));
    CM_TRY(check_points(b, m * d, "b"));
    size_t larger = n > m ? n : m;
    double *work = cm_malloc(n + m + d, sizeof(double)); /* no overflow: a and b exist */
    uint64_t *keys = cm_malloc(larger, 2 * sizeof(uint64_t));
    if (!work || !keys) {
        cm_free(work);
        cm_free(keys);
        return cm_error_set(CM_ERR_NOMEM, "sliced W1: no memory for %zu + %zu points", n, m);
    }
    double *pa = work, *pb = work + n, *direction = work + n + m;
    cm_rng base, child;
    cm_rng_init(&base, seed);
    double total = 0.0;
    for (size_t p = 0; p < projections; p++) {
        cm_rng_fork(&child, &base, p);
        random_direction(direction, d, &child);
        project(pa, a, n, d, direction);
        project(pb, b, m, d, direction);
        sort_doubles(pa, n, keys, keys + larger);
        sort_doubles(pb, m, keys, keys + larger);
        total += cm_metrics_w1_1d_sorted(pa, n, pb, m);
    }
    *out = total / (double)projections;
    cm_free(work);
    cm_free(keys);
    return CM_OK;
}
