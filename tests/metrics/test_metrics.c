/* test_metrics.c: 1-D W_p, sliced W1/W2, max-sliced W1, MMD^2, energy (suite `metrics`).
 *
 * Known answers worked out by hand on the quantile functions and on two-point sets, exact
 * identities (a shifted sample is at W1 = |shift| from itself; max-sliced W1 of a shifted set
 * is |shift|), orderings (sliced <= max-sliced <= exact W1), and statistical checks with
 * tolerances derived from the sample size or the number of projections (seed printed;
 * CM_TEST_SEED replays another), among them the unbiasedness of MMD^2.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/data.h"
#include "cm/evaluate.h"
#include "cm/metrics.h"
#include "cm/ot.h"
#include "cm/rng.h"
#include "test.h"

#define SIGMAS 5.0
#define PI 3.14159265358979323846

static double w1(const double *a, size_t n, const double *b, size_t m) {
    double out = NAN;
    CM_CHECK_OK(cm_metrics_w1_1d(&out, a, n, b, m));
    return out;
}

static void test_w1_known_answers(void) {
    const double a1[] = {0.0, 1.0}, b1[] = {0.5};
    CM_CHECK_CLOSE(w1(a1, 2, b1, 1), 0.5, 1e-15, "{0,1} vs {0.5}");
    const double a2[] = {1.0, 0.0}; /* unsorted input */
    CM_CHECK_CLOSE(w1(a2, 2, b1, 1), 0.5, 1e-15, "{1,0} vs {0.5}");
    /* F_a^-1 = 0, 1, 2 on thirds; F_b^-1 = 0, 2 on halves: |1 - 0| on (1/3, 1/2) and
     * |1 - 2| on (1/2, 2/3): 1/6 + 1/6 */
    const double a3[] = {2.0, 0.0, 1.0}, b3[] = {0.0, 2.0};
    CM_CHECK_CLOSE(w1(a3, 3, b3, 2), 1.0 / 3.0, 1e-15, "{0,1,2} vs {0,2}");
    CM_CHECK_CLOSE(w1(b3, 2, a3, 3), 1.0 / 3.0, 1e-15, "symmetry");
    /* {0, 10} vs {1, 2, 3}: 1 (0,1/3) + 2 (1/3,1/2) + 8 (1/2,2/3) + 7 (2/3,1) = 13/3 */
    const double a4[] = {10.0, 0.0}, b4[] = {3.0, 1.0, 2.0};
    CM_CHECK_CLOSE(w1(a4, 2, b4, 3), 13.0 / 3.0, 1e-14, "{0,10} vs {1,2,3}");
    const double a5[] = {0.0}, b5[] = {1.0, 2.0, 3.0, 4.0};
    CM_CHECK_CLOSE(w1(a5, 1, b5, 4), 2.5, 1e-15, "point mass vs four points");
    CM_CHECK_CLOSE(cm_metrics_w1_1d_sorted(b5, 4, b5, 4), 0.0, 0.0, "sorted, self");

    /* a sample against itself shifted by c: exactly c, for n = m and for a repeated copy */
    uint64_t seed = cm_test_seed(21);
    cm_rng rng;
    cm_rng_init(&rng, seed);
    const size_t n = 997;
    const double c = 3.25;
    double *a = malloc(n * sizeof(double)), *b = malloc(2 * n * sizeof(double));
    for (size_t i = 0; i < n; i++) a[i] = cm_rng_normal(&rng);
    for (size_t i = 0; i < n; i++) b[i] = b[n + i] = a[i] + c;
    CM_CHECK_CLOSE(w1(a, n, b, n), c, 1e-12, "shift n = m");
    CM_CHECK_CLOSE(w1(a, n, b, 2 * n), c, 1e-12, "shift, m = 2n (each point twice)");
    CM_CHECK_CLOSE(w1(a, n, a, n), 0.0, 0.0, "self");
    free(a);
    free(b);
}

static int compare_doubles(const void *left, const void *right) {
    double a = *(const double *)left, b = *(const double *)right;
    return (a > b) - (a < b);
}

/* The library sorts with a radix sort; qsort is the reference: W1 computed from qsorted copies
 * must agree bit for bit, on values of mixed signs, magnitudes, ties and signed zeros. */
static void test_w1_sort_reference(void) {
    uint64_t seed = cm_test_seed(24);
    cm_rng rng;
    cm_rng_init(&rng, seed);
    const size_t n = 3001, m = 1234;
    double *a = malloc(n * sizeof(double)), *b = malloc(m * sizeof(double));
    double *sa = malloc(n * sizeof(double)), *sb = malloc(m * sizeof(double));
    for (size_t i = 0; i < n; i++) {
        double z = cm_rng_normal(&rng);
        switch (i % 6) {
        case 0: a[i] = z; break;
        case 1: a[i] = z * 1e300; break;
        case 2: a[i] = z * 1e-300; break;
        case 3: a[i] = (double)(long)(4.0 * z); break; /* ties */
        case 4: a[i] = i % 12 == 4 ? -0.0 : 0.0; break;
        default: a[i] = -fabs(z) * 1e5; break;
        }
    }
    for (size_t j = 0; j < m; j++) b[j] = a[(j * 7) % n] * 0.5 + (j % 2 ? 1.0 : -1e-310);
    memcpy(sa, a, n * sizeof(double));
    memcpy(sb, b, m * sizeof(double));
    qsort(sa, n, sizeof(double), compare_doubles);
    qsort(sb, m, sizeof(double), compare_doubles);
    double reference = cm_metrics_w1_1d_sorted(sa, n, sb, m);
    CM_CHECK(w1(a, n, b, m) == reference, "W1 %.17g, with qsort %.17g", w1(a, n, b, m),
             reference);
    /* the shift identity with b in reverse order: only a correct sort pairs the points */
    for (size_t i = 0; i < n; i++) sa[n - 1 - i] = fmod(a[i], 1000.0) + 0.125;
    for (size_t i = 0; i < n; i++) a[i] = fmod(a[i], 1000.0);
    CM_CHECK_CLOSE(w1(a, n, sa, n), 0.125, 1e-9, "reversed shifted copy");
    free(a);
    free(b);
    free(sa);
    free(sb);
}

static void test_w1_gaussian_samples(void) {
    uint64_t seed = cm_test_seed(22);
    const size_t n = 20000, m = 15000;
    double *a = malloc(n * sizeof(double)), *b = malloc(m * sizeof(double));
    cm_rng rng;
    cm_rng_init(&rng, seed);
    const double shifts[] = {0.0, 0.3, -1.7};
    for (size_t s = 0; s < 3; s++) {
        for (size_t i = 0; i < n; i++) a[i] = cm_rng_normal(&rng);
        for (size_t j = 0; j < m; j++) b[j] = shifts[s] + cm_rng_normal(&rng);
        /* W1(N(0,1), N(mu,1)) = |mu|; by the triangle inequality the empirical value is off
         * by at most W1(empirical_n, N(0,1)) + W1(empirical_m, N(mu,1)), whose expectations are
         * E int |F_n - F| = sqrt(2/pi) int sqrt(Phi (1 - Phi)) dx / sqrt(n) = 1.29 / sqrt(n)
         * (to first order); these errors concentrate, so SIGMAS times that is a safe bound. */
        const double empirical_w1 = 1.29;
        double tolerance =
            SIGMAS * empirical_w1 * (1.0 / sqrt((double)n) + 1.0 / sqrt((double)m));
        CM_CHECK_CLOSE(w1(a, n, b, m), fabs(shifts[s]), tolerance, "N(0,1) vs N(mu,1)");
    }
    free(a);
    free(b);
}

static double sliced(const double *a, size_t n, const double *b, size_t m, size_t d,
                     size_t projections, uint64_t seed) {
    double out = NAN;
    CM_CHECK_OK(cm_metrics_sliced_w1(&out, a, n, b, m, d, projections, seed));
    return out;
}

static void test_sliced_w1(void) {
    uint64_t seed = cm_test_seed(23);
    cm_rng rng;
    cm_rng_init(&rng, seed);
    const size_t n = 500, d = 2, projections = 2000;
    double *a = malloc(n * d * sizeof(double)), *b = malloc(n * d * sizeof(double));
    for (size_t k = 0; k < n * d; k++) a[k] = cm_rng_normal(&rng);
    CM_CHECK_CLOSE(sliced(a, n, a, n, d, 16, seed), 0.0, 0.0, "self");
    /* b = a + s: every projection gives |<s, theta>| exactly, whose mean over theta uniform on
     * the circle is |s| E|cos| = |s| 2/pi, with sd |s| sqrt(1/2 - 4/pi^2) per projection */
    const double s[2] = {1.2, -0.5};
    double norm = hypot(s[0], s[1]);
    for (size_t r = 0; r < n; r++) {
        b[r * d] = a[r * d] + s[0];
        b[r * d + 1] = a[r * d + 1] + s[1];
    }
    double value = sliced(a, n, b, n, d, projections, seed);
    double sd = norm * sqrt(0.5 - 4.0 / (PI * PI)) / sqrt((double)projections);
    CM_CHECK_CLOSE(value, norm * 2.0 / PI, SIGMAS * sd, "shifted set");
    /* one seed, one set of directions: the same call twice is bit-identical; another seed
     * gives other directions */
    CM_CHECK(sliced(a, n, b, n, d, 64, seed) == sliced(a, n, b, n, d, 64, seed), "determinism");
    CM_CHECK(sliced(a, n, b, n, d, 64, seed) != sliced(a, n, b, n, d, 64, seed + 1),
             "seed ignored");
    /* directions are drawn per projection index, so P = 2 averages the P = 1 direction and
     * one more; each projection of the shifted set gives |<s, theta>| <= |s| */
    double one = sliced(a, n, b, n, d, 1, seed), two = sliced(a, n, b, n, d, 2, seed);
    double second = 2.0 * two - one;
    CM_CHECK(one >= 0.0 && one <= norm + 1e-12, "first projection %g, |s| %g", one, norm);
    CM_CHECK(second >= -1e-12 && second <= norm + 1e-12, "second projection %g", second);
    /* d = 1: the direction is +-1, so sliced W1 is the 1-D W1 */
    double ws = sliced(a, n, b, n, 1, 3, seed), w = w1(a, n, b, n);
    CM_CHECK_CLOSE(ws, w, 1e-12, "d = 1");
    free(a);
    free(b);
}

static void test_errors(void) {
    const double a[] = {0.0, 1.0, 2.0, 3.0}, bad[] = {0.0, NAN, 1.0, INFINITY};
    double out = 0.0;
    CM_CHECK(cm_metrics_w1_1d(&out, a, 0, a, 4) == CM_ERR_INVALID, "n = 0");
    CM_CHECK(cm_metrics_w1_1d(&out, a, 4, a, 0) == CM_ERR_INVALID, "m = 0");
    CM_CHECK(cm_metrics_w1_1d(&out, bad, 4, a, 4) == CM_ERR_NONFINITE, "NaN in a");
    CM_CHECK(strstr(cm_error_detail(), "a[1]") != NULL, "detail names a[1]: %s",
             cm_error_detail());
    CM_CHECK(cm_metrics_w1_1d(&out, a, 4, bad, 4) == CM_ERR_NONFINITE, "NaN in b");
    CM_CHECK(cm_metrics_w1_1d(NULL, a, 4, a, 4) == CM_ERR_INVALID, "NULL out");
    CM_CHECK(cm_metrics_w1_1d(&out, NULL, 4, a, 4) == CM_ERR_INVALID, "NULL a");
    CM_CHECK(cm_metrics_sliced_w1(&out, a, 2, a, 2, 0, 8, 1) == CM_ERR_INVALID, "d = 0");
    CM_CHECK(cm_metrics_sliced_w1(&out, a, 0, a, 2, 2, 8, 1) == CM_ERR_INVALID, "n = 0");
    CM_CHECK(cm_metrics_sliced_w1(&out, a, 2, a, 0, 2, 8, 1) == CM_ERR_INVALID, "m = 0");
    CM_CHECK(cm_metrics_sliced_w1(&out, a, 2, a, 2, 2, 0, 1) == CM_ERR_INVALID, "0 projections");
    CM_CHECK(cm_metrics_sliced_w1(&out, a, 2, bad, 2, 2, 8, 1) == CM_ERR_NONFINITE, "NaN in b");
    CM_CHECK(cm_metrics_sliced_w1(&out, bad, 2, a, 2, 2, 8, 1) == CM_ERR_NONFINITE, "inf in a");
}

static void test_out_of_memory(void) {
    const double a[] = {0.0, 1.0, 2.0, 3.0};
    double out = 0.0;
    long live = cm_alloc_live_count();
    cm_alloc_fail_after(0);
    cm_status s1 = cm_metrics_w1_1d(&out, a, 4, a, 4);
    cm_status s2 = cm_metrics_sliced_w1(&out, a, 2, a, 2, 2, 4, 1);
    cm_alloc_fail_after(-1);
    CM_CHECK(s1 == CM_ERR_NOMEM && s2 == CM_ERR_NOMEM, "NOMEM expected: %s, %s",
             cm_status_name(s1), cm_status_name(s2));
    CM_CHECK(cm_alloc_live_count() == live, "leak");
    CM_CHECK_OK(cm_metrics_w1_1d(&out, a, 4, a, 4));
    CM_CHECK(cm_alloc_live_count() == live, "leak after success");
}

static void test_wp_known_answers(void) {
    double out = NAN;
    const double a1[] = {0.0, 1.0}, b1[] = {0.5};
    CM_CHECK_OK(cm_metrics_wp_1d(&out, a1, 2, b1, 1, 2.0));
    CM_CHECK_CLOSE(out, 0.5, 1e-15, "W2 {0,1} vs {0.5}");
    /* F_a^-1 = 0, 1, 2 on thirds; F_b^-1 = 0, 2 on halves: |diff|^2 = 1 on (1/3, 2/3): 1/3 */
    const double a3[] = {2.0, 0.0, 1.0}, b3[] = {0.0, 2.0};
    CM_CHECK_OK(cm_metrics_wp_1d(&out, a3, 3, b3, 2, 2.0));
    CM_CHECK_CLOSE(out, sqrt(1.0 / 3.0), 1e-15, "W2 {0,1,2} vs {0,2}");
    CM_CHECK_OK(cm_metrics_wp_1d(&out, a3, 3, b3, 2, 3.0));
    CM_CHECK_CLOSE(out, cbrt(1.0 / 3.0), 1e-15, "W3 {0,1,2} vs {0,2}");
    CM_CHECK_OK(cm_metrics_wp_1d(&out, a3, 3, b3, 2, 1.0));
    CM_CHECK_CLOSE(out, 1.0 / 3.0, 1e-15, "W_p at p = 1 is W1");
    CM_CHECK_CLOSE(cm_metrics_wp_1d_sorted(b3 + 0, 1, b3 + 1, 1, 2.0), 4.0, 0.0, "W2^2 sorted");
    CM_CHECK(cm_metrics_wp_1d(&out, a3, 3, b3, 2, 0.5) == CM_ERR_INVALID, "p < 1");
}

static void test_sliced_w2(void) {
    uint64_t seed = cm_test_seed(25);
    cm_rng rng;
    cm_rng_init(&rng, seed);
    const size_t n = 300, d = 2, projections = 4000;
    double *a = malloc(n * d * sizeof(double)), *b = malloc(n * d * sizeof(double));
    for (size_t k = 0; k < n * d; k++) a[k] = cm_rng_normal(&rng);
    /* b = a + s: every projection has W2^2 = <s, theta>^2, whose mean over the circle is
     * |s|^2 / 2 with sd |s|^2 sqrt(1/8) per projection */
    const double s[2] = {0.6, 0.8};
    for (size_t r = 0; r < n; r++) b[r * d] = a[r * d] + s[0], b[r * d + 1] = a[r * d + 1] + s[1];
    double out;
    CM_CHECK_OK(cm_metrics_sliced_w2(&out, a, n, b, n, d, projections, seed));
    double sd_of_square = sqrt(1.0 / 8.0) / sqrt((double)projections);
    CM_CHECK_CLOSE(out * out, 0.5, SIGMAS * sd_of_square, "SW2^2 of a shifted set");
    double sw1;
    CM_CHECK_OK(cm_metrics_sliced_w1(&sw1, a, n, b, n, d, projections, seed));
    CM_CHECK(sw1 <= out + 1e-12, "SW1 %g > SW2 %g", sw1, out);
    free(a);
    free(b);
}

static void test_max_sliced_w1(void) {
    uint64_t seed = cm_test_seed(26);
    cm_rng rng;
    cm_rng_init(&rng, seed);
    const size_t n = 400, m = 300, d = 5;
    double *a = malloc(n * d * sizeof(double)), *b = malloc(n * d * sizeof(double));
    for (size_t k = 0; k < n * d; k++) a[k] = cm_rng_normal(&rng);
    /* a shifted copy: W1 along theta is |<s, theta>|, largest (= |s|) along s itself; the
     * random directions alone find much less in 5-D, the ascent must reach |s| */
    const double s[5] = {0.3, -0.4, 0.2, 0.5, -0.1};
    double norm = 0.0, direction[5], out;
    for (size_t k = 0; k < d; k++) norm += s[k] * s[k];
    norm = sqrt(norm);
    for (size_t r = 0; r < n; r++)
        for (size_t k = 0; k < d; k++) b[r * d + k] = a[r * d + k] + s[k];
    CM_CHECK_OK(cm_metrics_max_sliced_w1(&out, direction, a, n, b, n, d, 16, 0, seed));
    double random_only = out;
    CM_CHECK_OK(cm_metrics_max_sliced_w1(&out, direction, a, n, b, n, d, 16,
                                         CM_METRICS_MAX_SLICED_STEPS, seed));
    CM_CHECK(out >= random_only, "ascent lost ground: %g < %g", out, random_only);
    CM_CHECK_CLOSE(out, norm, 1e-6 * norm, "max-sliced W1 of a shifted set");
    double cosine = 0.0;
    for (size_t k = 0; k < d; k++) cosine += direction[k] * s[k] / norm;
    CM_CHECK(fabs(cosine) > 0.999, "direction off s: cosine %g", cosine);
    /* different sets, n != m: sliced <= max-sliced <= exact W1 */
    for (size_t k = 0; k < m * d; k++) b[k] = 0.5 * cm_rng_normal(&rng) + (k % d == 0 ? 1.0 : 0.0);
    double sliced_value, exact;
    CM_CHECK_OK(cm_metrics_sliced_w1(&sliced_value, a, n, b, m, d, 64, seed));
    CM_CHECK_OK(cm_metrics_max_sliced_w1(&out, NULL, a, n, b, m, d, 64,
                                         CM_METRICS_MAX_SLICED_STEPS, seed));
    CM_CHECK_OK(cm_ot_wasserstein(&exact, a, n, b, m, d, CM_OT_W1));
    CM_CHECK(sliced_value <= out && out <= exact * (1.0 + 1e-6), "order: SW1 %g, max %g, W1 %g",
             sliced_value, out, exact);
    free(a);
    free(b);
}

static void test_kernel_known_answers(void) {
    /* a = {0, 1}, b = {0, 2} in 1-D, h = 1: k(x, y) = exp(-(x - y)^2 / 2) */
    const double a[] = {0.0, 1.0}, b[] = {0.0, 2.0};
    double out, e05 = exp(-0.5), e2 = exp(-2.0);
    CM_CHECK_OK(cm_metrics_mmd2(&out, a, 2, b, 2, 1, 1.0));
    CM_CHECK_CLOSE(out, e05 + e2 - (1.0 + e2 + 2.0 * e05) / 2.0, 1e-15, "MMD^2 by hand");
    /* energy: 2 mean|x - y| - mean|x - x'| - mean|y - y'| = 2 (0 + 2 + 1 + 1)/4 - 1 - 2 = -1 */
    CM_CHECK_OK(cm_metrics_energy(&out, a, 2, b, 2, 1));
    CM_CHECK_CLOSE(out, -1.0, 1e-15, "energy by hand");
    /* median of the 6 pairwise distances of {0, 1, 0, 2}: 0, 1, 2, 1, 2, 1 -> sorted 0 1 1 1 2 2,
     * the upper median (index 3) is 1 */
    CM_CHECK_OK(cm_metrics_median_distance(&out, a, 2, b, 2, 1));
    CM_CHECK_CLOSE(out, 1.0, 0.0, "median distance");
}

/* Unbiasedness: for equal laws the mean of MMD^2 over independent repeats is 0 within
 * SIGMAS standard errors (estimated from the repeats themselves); for different laws it is
 * clearly positive, and so is the energy distance. */
static void test_mmd_unbiased(void) {
    uint64_t seed = cm_test_seed(27);
    cm_rng rng;
    cm_rng_init(&rng, seed);
    enum { N = 100, D = 2, REPEATS = 40 };
    double a[N * D], b[N * D], sum = 0.0, sum2 = 0.0, out;
    for (int r = 0; r < REPEATS; r++) {
        for (size_t k = 0; k < N * D; k++) a[k] = cm_rng_normal(&rng), b[k] = cm_rng_normal(&rng);
        CM_CHECK_OK(cm_metrics_mmd2(&out, a, N, b, N, D, 1.0));
        sum += out;
        sum2 += out * out;
    }
    double mean = sum / REPEATS, sd = sqrt((sum2 - REPEATS * mean * mean) / (REPEATS - 1));
    CM_CHECK(fabs(mean) < SIGMAS * sd / sqrt((double)REPEATS), "mean MMD^2 %g, sd %g", mean, sd);
    for (size_t k = 0; k < N * D; k++) b[k] += k % D == 0 ? 1.0 : 0.0;
    CM_CHECK_OK(cm_metrics_mmd2(&out, a, N, b, N, D, 1.0));
    CM_CHECK(out > SIGMAS * sd, "shifted law: MMD^2 %g vs null sd %g", out, sd);
    CM_CHECK_OK(cm_metrics_energy(&out, a, N, b, N, D));
    CM_CHECK(out > 0.1, "shifted law: energy %g", out);
}

static void test_new_errors(void) {
    const double a[] = {0.0, 1.0, 2.0, 3.0}, bad[] = {0.0, NAN, 1.0, INFINITY};
    double out = 0.0;
    long live = cm_alloc_live_count();
    CM_CHECK(cm_metrics_mmd2(&out, a, 1, a, 4, 1, 1.0) == CM_ERR_INVALID, "MMD n = 1");
    CM_CHECK(cm_metrics_mmd2(&out, a, 4, a, 4, 1, 0.0) == CM_ERR_INVALID, "bandwidth 0");
    CM_CHECK(cm_metrics_mmd2(&out, a, 4, bad, 4, 1, 1.0) == CM_ERR_NONFINITE, "MMD NaN");
    CM_CHECK(cm_metrics_energy(&out, bad, 4, a, 4, 1) == CM_ERR_NONFINITE, "energy NaN");
    CM_CHECK(cm_metrics_energy(&out, a, 2, a, 0, 2) == CM_ERR_INVALID, "energy empty");
    CM_CHECK(cm_metrics_sliced_w2(&out, a, 2, a, 2, 2, 0, 1) == CM_ERR_INVALID, "0 projections");
    CM_CHECK(cm_metrics_max_sliced_w1(&out, NULL, a, 2, bad, 2, 2, 8, 4, 1) == CM_ERR_NONFINITE,
             "max-sliced NaN");
    CM_CHECK(cm_metrics_max_sliced_w1(&out, NULL, a, 0, a, 2, 2, 8, 4, 1) == CM_ERR_INVALID,
             "max-sliced empty");
    CM_CHECK(cm_metrics_median_distance(&out, a, 0, a, 0, 1) == CM_ERR_INVALID, "median empty");
    CM_CHECK(cm_metrics_wp_1d(&out, bad, 4, a, 4, 2.0) == CM_ERR_NONFINITE, "W_p NaN");
    for (long k = 0; k < 3; k++) {
        cm_alloc_fail_after(k);
        cm_status s1 = cm_metrics_max_sliced_w1(&out, NULL, a, 2, a, 2, 2, 4, 4, 1);
        cm_status s2 = cm_metrics_median_distance(&out, a, 2, a, 2, 2);
        cm_status s3 = cm_metrics_sliced_w2(&out, a, 2, a, 2, 2, 4, 1);
        cm_alloc_fail_after(-1);
        CM_CHECK(s1 == CM_OK || s1 == CM_ERR_NOMEM, "max-sliced, failure %ld", k);
        CM_CHECK(s2 == CM_OK || s2 == CM_ERR_NOMEM, "median, failure %ld", k);
        CM_CHECK(s3 == CM_OK || s3 == CM_ERR_NOMEM, "sliced W2, failure %ld", k);
    }
    CM_CHECK(cm_alloc_live_count() == live, "leak");
}

/* cm_evaluate_report on a gauss: law: every metric with its floor, the closed-form W2 of the
 * fitted Gaussian (small for samples of the law itself: the fit error is O(1/sqrt(n))), a
 * bootstrap interval, reproducibility, and errors without leaks. */
static void test_evaluate_report(void) {
    long live = cm_alloc_live_count();
    cm_data *law;
    CM_CHECK_OK(cm_data_open(&law, "gauss:d=2,mean=1,std=0.5"));
    enum { N = 300, D = 2 };
    double *x = cm_malloc(N * D, sizeof(double));
    cm_rng rng;
    cm_rng_init(&rng, cm_test_seed(28));
    cm_data_sample(law, &rng, N, x);
    cm_evaluate_options o = cm_evaluate_options_default();
    o.metrics = CM_METRIC_BIT(CM_METRIC_COUNT) - 1u; /* all */
    o.projections = 64;
    o.bootstrap = 10;
    o.seed = 5;
    cm_evaluation_report r, again;
    CM_CHECK_OK(cm_evaluate_report(&r, x, N, D, law, &o));
    for (int k = 0; k < CM_METRIC_COUNT; k++) {
        const cm_metric_value *v = &r.metric[k];
        CM_CHECK(v->computed && isfinite(v->value) && isfinite(v->floor), "%s not computed",
                 cm_metric_name((cm_metric)k));
        CM_CHECK(v->ci_low <= v->ci_high, "%s interval [%g, %g]", cm_metric_name((cm_metric)k),
                 v->ci_low, v->ci_high);
    }
    /* samples of the law itself: every distance is near its floor (generous: a factor 3) */
    for (int k = CM_METRIC_W1; k <= CM_METRIC_MSW1; k++)
        CM_CHECK(r.metric[k].value < 3.0 * r.metric[k].floor, "%s %g vs floor %g",
                 cm_metric_name((cm_metric)k), r.metric[k].value, r.metric[k].floor);
    CM_CHECK(r.metric[CM_METRIC_SW1].value <= r.metric[CM_METRIC_MSW1].value &&
                 r.metric[CM_METRIC_MSW1].value <= r.metric[CM_METRIC_W1].value * (1 + 1e-6),
             "SW1 <= max-sliced W1 <= W1 violated");
    CM_CHECK(r.gaussian && r.gaussian_fit_w2 < 10.0 / sqrt((double)N), "fitted W2 %g",
             r.gaussian_fit_w2);
    CM_CHECK(isnan(r.gaussian_fit_w1), "W1 of the fit is 1-D only");
    CM_CHECK(r.bandwidth > 0.0, "bandwidth %g", r.bandwidth);
    CM_CHECK_OK(cm_evaluate_report(&again, x, N, D, law, &o));
    CM_CHECK(again.metric[CM_METRIC_W2].value == r.metric[CM_METRIC_W2].value &&
                 again.metric[CM_METRIC_MMD].ci_high == r.metric[CM_METRIC_MMD].ci_high,
             "not reproducible");
    /* subsampled exact OT is reported as such */
    o.metrics = CM_METRIC_BIT(CM_METRIC_W1);
    o.bootstrap = 0;
    o.ot_max_points = 100;
    o.ot_repeats = 3;
    CM_CHECK_OK(cm_evaluate_report(&r, x, N, D, law, &o));
    CM_CHECK(r.metric[CM_METRIC_W1].subsampled && r.metric[CM_METRIC_W1].repeats == 3 &&
                 r.metric[CM_METRIC_W1].value_low < r.metric[CM_METRIC_W1].value_high,
             "subsampling not reported");
    o.n = N + 1;
    CM_CHECK(cm_evaluate_report(&r, x, N, D, law, &o) == CM_ERR_INVALID, "n above the samples");
    o.n = 0;
    CM_CHECK(cm_evaluate_report(&r, x, N, 1, law, &o) == CM_ERR_DIMENSION, "dimension mismatch");
    x[7] = NAN;
    CM_CHECK(cm_evaluate_report(&r, x, N, D, law, &o) == CM_ERR_NONFINITE, "NaN sample");
    cm_free(x);
    cm_data_free(law);
    CM_CHECK(cm_alloc_live_count() == live, "leak");
}

/* A reference FILE: the value is the distance of the inputs as given (exact W1 of all points,
 * equal to cm_ot_wasserstein of the two sets; 0 for a file against itself), the floor a
 * separate estimate over K splits at stated sizes (median within its range; matched samples at
 * the same sizes; no ratio for MMD^2 and energy). A law with K = 1 keeps the first version's
 * draws: value = metric(samples, A_0), floor = metric(B_0, A_0), children 0 and 1. */
static void test_evaluate_file_reference(void) {
    long live = cm_alloc_live_count();
    enum { N = 240, M = 300, D = 3 };
    cm_data *law;
    CM_CHECK_OK(cm_data_open(&law, "gmm:d=3,k=2,sep=3,std=0.5"));
    double *x = cm_malloc((N + M) * D, sizeof(double)), *y = x + N * D;
    cm_rng rng;
    cm_rng_init(&rng, cm_test_seed(29));
    cm_data_sample(law, &rng, N + M, x);
    cm_data *file;
    CM_CHECK_OK(cm_data_from_values(&file, y, M, D, "reference.npy"));
    cm_evaluate_options o = cm_evaluate_options_default();
    o.metrics = CM_METRIC_BIT(CM_METRIC_W1) | CM_METRIC_BIT(CM_METRIC_SW1) |
                CM_METRIC_BIT(CM_METRIC_MMD);
    o.projections = 32;
    o.floor_splits = 7;
    cm_evaluation_report r;
    CM_CHECK_OK(cm_evaluate_report(&r, x, N, D, file, &o));
    double exact;
    CM_CHECK_OK(cm_ot_wasserstein(&exact, x, N, y, M, D, CM_OT_W1));
    CM_CHECK(r.metric[CM_METRIC_W1].value == exact, "value %.17g, W1 of the sets %.17g",
             r.metric[CM_METRIC_W1].value, exact);
    CM_CHECK(r.reference_is_file && r.n == N && r.reference_points == M && r.floor_splits == 7 &&
                 r.floor_points_a == M / 2 && r.floor_points_b == M - M / 2, "sizes");
    for (int k = CM_METRIC_W1; k < CM_METRIC_COUNT; k++) {
        const cm_metric_value *v = &r.metric[k];
        if (!v->computed) continue;
        CM_CHECK(v->floor_low <= v->floor && v->floor <= v->floor_high &&
                     v->floor_low < v->floor_high && v->matched_low <= v->matched &&
                     v->matched <= v->matched_high, "%s: ranges", cm_metric_name((cm_metric)k));
    }
    CM_CHECK(isnan(r.metric[CM_METRIC_MMD].ratio), "MMD^2 has a ratio");
    CM_CHECK(r.metric[CM_METRIC_W1].ratio == r.metric[CM_METRIC_W1].matched /
                                                 r.metric[CM_METRIC_W1].floor, "ratio");
    /* samples of the same law: like with like, matched within a factor 2 of the floor */
    CM_CHECK(r.metric[CM_METRIC_W1].ratio > 0.5 && r.metric[CM_METRIC_W1].ratio < 2.0,
             "ratio %g", r.metric[CM_METRIC_W1].ratio);
    CM_CHECK_OK(cm_evaluate_report(&r, y, M, D, file, &o));
    CM_CHECK(r.metric[CM_METRIC_W1].value == 0.0 && r.metric[CM_METRIC_SW1].value == 0.0,
             "a file against itself: W1 %g", r.metric[CM_METRIC_W1].value);
    /* a law with one repetition: the first version's value and floor */
    o.floor_splits = 1;
    o.metrics = CM_METRIC_BIT(CM_METRIC_W1);
    CM_CHECK_OK(cm_evaluate_report(&r, x, N, D, law, &o));
    double *a = cm_malloc(2 * N * D, sizeof(double)), *b = a + N * D;
    cm_rng root, stream, draw;
    cm_rng_init(&root, o.seed);
    cm_rng_fork(&stream, &root, CM_STREAM_EVAL);
    cm_rng_fork(&draw, &stream, 0);
    cm_data_sample(law, &draw, N, a);
    cm_rng_fork(&draw, &stream, 1);
    cm_data_sample(law, &draw, N, b);
    double value, floor_value;
    CM_CHECK_OK(cm_ot_wasserstein(&value, x, N, a, N, D, CM_OT_W1));
    CM_CHECK_OK(cm_ot_wasserstein(&floor_value, b, N, a, N, D, CM_OT_W1));
    CM_CHECK(r.metric[CM_METRIC_W1].value == value && r.metric[CM_METRIC_W1].floor == floor_value &&
                 !r.reference_is_file && isnan(r.metric[CM_METRIC_W1].matched),
             "law: value %g (%g), floor %g (%g)", r.metric[CM_METRIC_W1].value, value,
             r.metric[CM_METRIC_W1].floor, floor_value);
    o.floor_splits = 0;
    CM_CHECK(cm_evaluate_report(&r, x, N, D, law, &o) == CM_ERR_INVALID, "0 repetitions");
    cm_free(a);
    cm_free(x);
    cm_data_free(file);
    cm_data_free(law);
    CM_CHECK(cm_alloc_live_count() == live, "leak");
}

const cm_test_case cm_tests_metrics[] = {
    {"w1_known_answers", test_w1_known_answers},
    {"w1_sort_reference", test_w1_sort_reference},
    {"w1_gaussian_samples", test_w1_gaussian_samples},
    {"sliced_w1", test_sliced_w1},
    {"errors", test_errors},
    {"out_of_memory", test_out_of_memory},
    {"wp_known_answers", test_wp_known_answers},
    {"sliced_w2", test_sliced_w2},
    {"max_sliced_w1", test_max_sliced_w1},
    {"kernel_known_answers", test_kernel_known_answers},
    {"mmd_unbiased", test_mmd_unbiased},
    {"new_errors", test_new_errors},
    {"evaluate_report", test_evaluate_report},
    {"evaluate_file_reference", test_evaluate_file_reference},
    {NULL, NULL},
};
