/* test_metrics.c: 1-D and sliced W1 (suite `metrics`).
 *
 * Known answers worked out by hand on the quantile functions, exact identities (a shifted
 * sample is at W1 = |shift| from itself), and statistical checks with tolerances derived from
 * the sample size or the number of projections (seed printed; CM_TEST_SEED replays another).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/metrics.h"
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

const cm_test_case cm_tests_metrics[] = {
    {"w1_known_answers", test_w1_known_answers},
    {"w1_sort_reference", test_w1_sort_reference},
    {"w1_gaussian_samples", test_w1_gaussian_samples},
    {"sliced_w1", test_sliced_w1},
    {"errors", test_errors},
    {"out_of_memory", test_out_of_memory},
    {NULL, NULL},
};
