/* test_quadrature.c: the Gauss-Hermite rule (quadrature.h) against known answers: the moments of
 * N(0, 1), E U^(2j) = (2j - 1)!!, exact up to degree 2n - 1 and wrong at degree 2n (the rule
 * has exactly the precision it claims); E cos(a U) = exp(-a^2 / 2) to rounding with 40 nodes;
 * symmetric nodes, weights summing to 1; the one-node rule; sizes out of range refused. */
#include "cm/quadrature.h"

#include <math.h>

#include "cm/alloc.h"
#include "test.h"

/* E U^p for U ~ N(0, 1): 0 for odd p, (p - 1)!! for even p. */
static double normal_moment(int p) {
    if (p % 2) return 0.0;
    double m = 1.0;
    for (int k = p - 1; k > 1; k -= 2) m *= k;
    return m;
}

static double rule_moment(const double *u, const double *w, size_t n, int p) {
    double sum = 0.0;
    for (size_t i = 0; i < n; i++) sum += w[i] * pow(u[i], p);
    return sum;
}

static void test_moments_exact_to_degree(void) {
    const size_t sizes[] = {1, 2, 5, 12};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s];
        double u[12], w[12], work[12 * 12 + 3 * 12];
        CM_CHECK(cm_quadrature_gauss_hermite_work(n) <= sizeof work / sizeof work[0], "work");
        CM_CHECK_OK(cm_quadrature_gauss_hermite(u, w, n, work));
        for (int p = 0; p <= 2 * (int)n - 1; p++) {
            /* rounding: each term w_i u_i^p is at most E U^p-sized, n terms of relative 1e-15 */
            double exact = normal_moment(p), tol = 1e-13 * (1.0 + normal_moment(p + p % 2));
            double got = rule_moment(u, w, n, p);
            CM_CHECK(fabs(got - exact) <= tol, "n = %zu, degree %d: %.17g vs %.17g", n, p, got, exact);
        }
        /* degree 2n: the rule gives E U^2n - n! (the norm of the n-th monic Hermite polynomial) */
        double got = rule_moment(u, w, n, 2 * (int)n), exact = normal_moment(2 * (int)n);
        double factorial = 1.0;
        for (size_t k = 2; k <= n; k++) factorial *= (double)k;
        CM_CHECK_CLOSE(got, exact - factorial, 1e-12 * exact, "degree 2n: E U^2n - n!");
        for (size_t i = 0; i < n; i++) {
            CM_CHECK_CLOSE(u[i], -u[n - 1 - i], 1e-13 * (1.0 + fabs(u[i])), "symmetric nodes");
            CM_CHECK(i == 0 || u[i] > u[i - 1], "ascending nodes at %zu", i);
            CM_CHECK(w[i] > 0, "positive weight at %zu", i);
        }
    }
}

static void test_cosine_to_rounding(void) {
    enum { N = 40 };
    double u[N], w[N], *work = cm_malloc(cm_quadrature_gauss_hermite_work(N), sizeof(double));
    CM_CHECK(work != NULL, "work");
    if (!work) return;
    CM_CHECK_OK(cm_quadrature_gauss_hermite(u, w, N, work));
    for (double a = 0.5; a <= 4.0; a *= 2) {
        double sum = 0.0;
        for (int i = 0; i < N; i++) sum += w[i] * cos(a * u[i]);
        CM_CHECK_CLOSE(sum, exp(-0.5 * a * a), 1e-14, "E cos(a U)");
    }
    cm_free(work);
}

static void test_one_node_and_refusals(void) {
    double u[1] = {7}, w[1] = {7}, work[4];
    CM_CHECK_OK(cm_quadrature_gauss_hermite(u, w, 1, work));
    CM_CHECK(u[0] == 0.0 && w[0] == 1.0, "one node: %g, weight %g", u[0], w[0]);
    CM_CHECK(cm_quadrature_gauss_hermite(u, w, 0, work) == CM_ERR_INVALID, "0 nodes");
    CM_CHECK(cm_quadrature_gauss_hermite(u, w, CM_QUADRATURE_MAX_NODES + 1, work) == CM_ERR_INVALID,
             "too many nodes");
}

const cm_test_case cm_tests_quadrature[] = {
    {"moments_exact_to_degree", test_moments_exact_to_degree},
    {"cosine_to_rounding", test_cosine_to_rounding},
    {"one_node_and_refusals", test_one_node_and_refusals},
    {NULL, NULL},
};
