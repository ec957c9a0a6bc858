/* test_ot.c: exact optimal transport (suite `ot`).
 *
 * Every solution is checked by its certificate (cm_ot_check) and against an independent answer:
 * brute force over all permutations (n = m <= 8, both exact methods), the other exact method, brute force over all vertices of the
 * transport polytope (spanning trees of K_{n,m}) for n != m and general weights, the 1-D
 * quantile formula (cm_metrics_wp_1d, exact for any n, m), the 1-D CDF formula for weighted
 * measures, and the closed-form W2 between Gaussians approached by samples. Bad input must
 * return an error and leak nothing (cm_alloc_live_count), also when allocations fail.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/metrics.h"
#include "cm/ot.h"
#include "cm/rng.h"
#include "test.h"

/* The float cost matrix moves W by a relative 2^-24 per entry at most (docs/metrics.md), and
 * the plan is re-evaluated in double: 1e-6 relative is a safe bound for agreement with a
 * reference computed in double. */
#define RELATIVE_TOLERANCE 1e-6

static void fill_normal(double *x, size_t count, cm_rng *rng) {
    for (size_t k = 0; k < count; k++) x[k] = cm_rng_normal(rng);
}

/* Solve, then check the certificate; returns the result (workspace-owned). */
static cm_ot_result solve_checked(cm_ot_workspace *w, const float *cost, size_t n, size_t m,
                                  const double *wa, const double *wb) {
    cm_ot_result r = {0};
    CM_CHECK_OK(cm_ot_solve(&r, w, cost, n, m, wa, wb));
    cm_ot_certificate c;
    CM_CHECK_OK(cm_ot_check(&c, cost, n, m, wa, wb, &r));
    return r;
}

/* Minimum over all permutations of (1/n) sum_i C[i][perm(i)], in double on the float matrix. */
static double brute_force_assignment(const float *cost, size_t n) {
    size_t perm[8], count[8] = {0};
    for (size_t i = 0; i < n; i++) perm[i] = i;
    double best = INFINITY;
    /* Heap's algorithm */
    for (;;) {
        double total = 0.0;
        for (size_t i = 0; i < n; i++) total += cost[i * n + perm[i]];
        if (total < best) best = total;
        size_t i = 1;
        while (i < n && count[i] >= i) count[i++] = 0;
        if (i >= n) break;
        size_t j = i % 2 ? count[i] : 0;
        size_t swap = perm[i];
        perm[i] = perm[j];
        perm[j] = swap;
        count[i]++;
    }
    return best / (double)n;
}

static void test_brute_force_permutations(void) {
    uint64_t seed = cm_test_seed(31);
    cm_rng rng;
    cm_rng_init(&rng, seed);
    cm_ot_workspace *w;
    CM_CHECK_OK(cm_ot_workspace_alloc(&w, 8, 8));
    float *cost = cm_ot_workspace_costs(w);
    double x[8 * 3], y[8 * 3];
    for (size_t n = 1; n <= 8; n++)
        for (size_t d = 1; d <= 3; d++)
            for (int power = 1; power <= 2; power++)
                for (int repeat = 0; repeat < 4; repeat++) {
                    fill_normal(x, n * d, &rng);
                    fill_normal(y, n * d, &rng);
                    if (repeat == 3) /* ties: points on a coarse grid */
                        for (size_t k = 0; k < n * d; k++) x[k] = round(x[k]), y[k] = round(y[k]);
                    CM_CHECK_OK(cm_ot_cost_matrix(cost, x, n, y, n, d, (cm_ot_power)power));
                    cm_ot_result r = solve_checked(w, cost, n, n, NULL, NULL);
                    double brute = brute_force_assignment(cost, n);
                    CM_CHECK_CLOSE(r.cost, brute, 1e-12 * (1.0 + brute), "simplex vs permutations");
                    CM_CHECK(r.plan_count <= 2 * n - 1, "plan of %zu entries", r.plan_count);
                    cm_ot_certificate c;
                    CM_CHECK_OK(cm_ot_solve_assignment(&r, w, cost, n));
                    CM_CHECK_OK(cm_ot_check(&c, cost, n, n, NULL, NULL, &r));
                    CM_CHECK_CLOSE(r.cost, brute, 1e-12 * (1.0 + brute),
                                   "assignment vs permutations");
                    CM_CHECK(r.plan_count == n, "assignment plan of %zu entries", r.plan_count);
                }
    cm_ot_workspace_free(w);
}

/* The two exact methods (network simplex, shortest augmenting paths) agree on larger problems
 * whose optimum no brute force reaches, near and far laws, ties included. */
static void test_two_methods_agree(void) {
    uint64_t seed = cm_test_seed(38);
    cm_rng rng;
    cm_rng_init(&rng, seed);
    enum { N = 300 };
    cm_ot_workspace *w;
    CM_CHECK_OK(cm_ot_workspace_alloc(&w, N, N));
    float *cost = cm_ot_workspace_costs(w);
    double *x = cm_malloc(2 * N * 5, sizeof(double)), *y = x + N * 5;
    const size_t dims[] = {2, 5, 2};
    const double shifts[] = {0.0, 1.0, 3.0};
    for (size_t t = 0; t < 3; t++) {
        size_t d = dims[t];
        fill_normal(x, N * d, &rng);
        fill_normal(y, N * d, &rng);
        for (size_t k = 0; k < N * d; k++) y[k] += k % d == 0 ? shifts[t] : 0.0;
        if (t == 2)
            for (size_t k = 0; k < N * d; k++) x[k] = round(2 * x[k]), y[k] = round(2 * y[k]);
        for (int power = 1; power <= 2; power++) {
            CM_CHECK_OK(cm_ot_cost_matrix(cost, x, N, y, N, d, (cm_ot_power)power));
            cm_ot_result r = solve_checked(w, cost, N, N, NULL, NULL);
            double simplex = r.cost;
            cm_ot_certificate c;
            CM_CHECK_OK(cm_ot_solve_assignment(&r, w, cost, N));
            CM_CHECK_OK(cm_ot_check(&c, cost, N, N, NULL, NULL, &r));
            CM_CHECK_CLOSE(r.cost, simplex, 1e-11 * simplex, "assignment vs simplex");
        }
    }
    cm_free(x);
    cm_ot_workspace_free(w);
}

/* Vertices of the transport polytope are the plans supported on spanning trees of K_{n,m}:
 * enumerate every set of n + m - 1 arcs, solve its flows by peeling leaves, keep the feasible
 * ones, return the least cost. */
static double brute_force_vertices(const float *cost, size_t n, size_t m, const double *a,
                                   const double *b) {
    size_t arcs = n * m, tree = n + m - 1;
    double best = INFINITY;
    for (uint32_t subset = 0; subset < (1u << arcs); subset++) {
        size_t bits = 0;
        for (uint32_t rest_bits = subset; rest_bits; rest_bits &= rest_bits - 1) bits++;
        if (bits != tree) continue;
        double rest[16];
        int used[16] = {0};
        for (size_t i = 0; i < n; i++) rest[i] = a[i];
        for (size_t j = 0; j < m; j++) rest[n + j] = b[j];
        double total = 0.0;
        int feasible = 1;
        for (size_t step = 0; step < tree && feasible; step++) {
            /* a node with exactly one unused arc of the subset left */
            size_t leaf = SIZE_MAX, arc = 0;
            for (size_t v = 0; v < n + m && leaf == SIZE_MAX; v++) {
                size_t degree = 0, last = 0;
                for (size_t e = 0; e < arcs; e++) {
                    if (!(subset >> e & 1) || used[e]) continue;
                    if ((v < n && e / m == v) || (v >= n && e % m == v - n)) degree++, last = e;
                }
                if (degree == 1) leaf = v, arc = last;
            }
            if (leaf == SIZE_MAX) {
                feasible = 0;
                break;
            }
            double flow = rest[leaf];
            size_t i = arc / m, j = arc % m;
            if (flow < -1e-12) feasible = 0;
            rest[i] -= flow;
            rest[n + j] -= flow;
            used[arc] = 1;
            total += flow * cost[arc];
        }
        for (size_t v = 0; v < n + m && feasible; v++)
            if (fabs(rest[v]) > 1e-12) feasible = 0;
        if (feasible && total < best) best = total;
    }
    return best;
}

static void test_brute_force_vertices(void) {
    uint64_t seed = cm_test_seed(32);
    cm_rng rng;
    cm_rng_init(&rng, seed);
    cm_ot_workspace *w;
    CM_CHECK_OK(cm_ot_workspace_alloc(&w, 4, 5));
    float *cost = cm_ot_workspace_costs(w);
    const size_t shapes[][2] = {{1, 3}, {2, 3}, {3, 2}, {2, 5}, {3, 4}, {4, 3}, {4, 4}};
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t n = shapes[s][0], m = shapes[s][1];
        for (int repeat = 0; repeat < 3; repeat++) {
            double x[8], y[10], a[4], b[5], sa = 0.0, sb = 0.0;
            fill_normal(x, 2 * n, &rng);
            fill_normal(y, 2 * m, &rng);
            for (size_t i = 0; i < n; i++) sa += a[i] = 0.1 + cm_rng_uniform(&rng);
            for (size_t j = 0; j < m; j++) sb += b[j] = 0.1 + cm_rng_uniform(&rng);
            for (size_t j = 0; j < m; j++) b[j] *= sa / sb; /* equal total masses */
            CM_CHECK_OK(cm_ot_cost_matrix(cost, x, n, y, m, 2, CM_OT_W1));
            cm_ot_result r = solve_checked(w, cost, n, m, a, b);
            double brute = brute_force_vertices(cost, n, m, a, b);
            CM_CHECK_CLOSE(r.cost, brute, 1e-12 * (1.0 + brute), "weighted, vertices");
            /* uniform weights, n != m */
            double ua[4], ub[5];
            for (size_t i = 0; i < n; i++) ua[i] = 1.0 / (double)n;
            for (size_t j = 0; j < m; j++) ub[j] = 1.0 / (double)m;
            r = solve_checked(w, cost, n, m, NULL, NULL);
            CM_CHECK_CLOSE(r.cost, brute_force_vertices(cost, n, m, ua, ub), 1e-12,
                           "uniform, vertices");
        }
    }
    /* by hand: a = {0, 1} with masses 1/2, b = {0, 0.5, 1} with masses 1/4, 1/4, 1/2: the
     * monotone plan moves 1/4 from 0 to 0.5 (cost 1/8) and leaves the rest: W1 = 1/8 */
    const double x[] = {0.0, 1.0}, y[] = {0.0, 0.5, 1.0}, b[] = {0.25, 0.25, 0.5};
    CM_CHECK_OK(cm_ot_cost_matrix(cost, x, 2, y, 3, 1, CM_OT_W1));
    cm_ot_result r = solve_checked(w, cost, 2, 3, NULL, b);
    CM_CHECK_CLOSE(r.cost, 0.125, 1e-15, "hand-solved 2 x 3");
    cm_ot_workspace_free(w);
}

static void test_one_dimension(void) {
    uint64_t seed = cm_test_seed(33);
    cm_rng rng;
    cm_rng_init(&rng, seed);
    const size_t sizes[][2] = {{50, 50}, {37, 23}, {200, 131}, {1, 17}, {300, 300}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t n = sizes[s][0], m = sizes[s][1];
        double *x = cm_malloc(n + m, sizeof(double)), *y = x + n;
        fill_normal(x, n, &rng);
        fill_normal(y, m, &rng);
        for (size_t j = 0; j < m; j++) y[j] = 0.5 + 2.0 * y[j];
        for (int power = 1; power <= 2; power++) {
            double exact, quantile;
            CM_CHECK_OK(cm_ot_wasserstein(&exact, x, n, y, m, 1, (cm_ot_power)power));
            CM_CHECK_OK(cm_metrics_wp_1d(&quantile, x, n, y, m, (double)power));
            CM_CHECK_CLOSE(exact, quantile, RELATIVE_TOLERANCE * quantile, "OT vs quantiles (1-D)");
        }
        cm_free(x);
    }
}

/* Weighted 1-D measures: W1 = integral |F_a - F_b| dx, summed between consecutive points. */
static double weighted_w1_1d(const double *x, const double *a, size_t n, const double *y,
                             const double *b, size_t m) {
    double *points = malloc((n + m) * sizeof(double));
    memcpy(points, x, n * sizeof(double));
    memcpy(points + n, y, m * sizeof(double));
    for (size_t i = 1; i < n + m; i++) /* insertion sort: small inputs */
        for (size_t k = i; k > 0 && points[k - 1] > points[k]; k--) {
            double swap = points[k];
            points[k] = points[k - 1];
            points[k - 1] = swap;
        }
    double total = 0.0;
    for (size_t k = 0; k + 1 < n + m; k++) {
        double fa = 0.0, fb = 0.0;
        for (size_t i = 0; i < n; i++) fa += x[i] <= points[k] ? a[i] : 0.0;
        for (size_t j = 0; j < m; j++) fb += y[j] <= points[k] ? b[j] : 0.0;
        total += fabs(fa - fb) * (points[k + 1] - points[k]);
    }
    free(points);
    return total;
}

static void test_weights(void) {
    uint64_t seed = cm_test_seed(34);
    cm_rng rng;
    cm_rng_init(&rng, seed);
    enum { N = 40, M = 25 };
    double x[N], y[M], a[N], b[M], sa = 0.0, sb = 0.0;
    fill_normal(x, N, &rng);
    fill_normal(y, M, &rng);
    for (size_t i = 0; i < N; i++) sa += a[i] = cm_rng_uniform(&rng);
    for (size_t j = 0; j < M; j++) sb += b[j] = cm_rng_uniform(&rng);
    for (size_t i = 0; i < N; i++) a[i] /= sa;
    for (size_t j = 0; j < M; j++) b[j] /= sb;
    cm_ot_workspace *w;
    CM_CHECK_OK(cm_ot_workspace_alloc(&w, N, M));
    double value;
    cm_ot_result r;
    CM_CHECK_OK(cm_ot_distance(&value, &r, w, x, N, y, M, 1, CM_OT_W1, a, b));
    double reference = weighted_w1_1d(x, a, N, y, b, M);
    CM_CHECK_CLOSE(value, reference, RELATIVE_TOLERANCE * reference, "weighted 1-D W1");
    /* weights in other units (total 3) give the same distance and a plan in those units */
    double a3[N], b3[M], mass = 0.0;
    for (size_t i = 0; i < N; i++) a3[i] = 3.0 * a[i];
    for (size_t j = 0; j < M; j++) b3[j] = 3.0 * b[j];
    CM_CHECK_OK(cm_ot_distance(&value, &r, w, x, N, y, M, 1, CM_OT_W1, a3, b3));
    for (size_t k = 0; k < r.plan_count; k++) mass += r.plan[k].mass;
    CM_CHECK_CLOSE(value, reference, RELATIVE_TOLERANCE * reference, "weights of total 3");
    CM_CHECK_CLOSE(mass, 3.0, 1e-12, "plan mass in the weights' units");
    cm_ot_workspace_free(w);
}

/* The certificate must catch a wrong solution. */
static void test_certificate_rejects(void) {
    uint64_t seed = cm_test_seed(35);
    cm_rng rng;
    cm_rng_init(&rng, seed);
    enum { N = 30 };
    double x[2 * N], y[2 * N];
    fill_normal(x, 2 * N, &rng);
    fill_normal(y, 2 * N, &rng);
    cm_ot_workspace *w;
    CM_CHECK_OK(cm_ot_workspace_alloc(&w, N, N));
    float *cost = cm_ot_workspace_costs(w);
    CM_CHECK_OK(cm_ot_cost_matrix(cost, x, N, y, N, 2, CM_OT_W2));
    cm_ot_result r = solve_checked(w, cost, N, N, NULL, NULL);
    cm_ot_certificate c;
    double u[N], v[N];
    cm_ot_entry plan[2 * N];
    memcpy(u, r.u, sizeof u);
    memcpy(v, r.v, sizeof v);
    memcpy(plan, r.plan, r.plan_count * sizeof(cm_ot_entry));
    cm_ot_result bad = r;
    bad.u = u;
    bad.v = v;
    bad.plan = plan;
    u[3] += 0.1; /* dual infeasible somewhere, and the dual value changes */
    CM_CHECK(cm_ot_check(&c, cost, N, N, NULL, NULL, &bad) == CM_ERR_INVALID, "raised u accepted");
    u[3] -= 0.1;
    CM_CHECK_OK(cm_ot_check(&c, cost, N, N, NULL, NULL, &bad));
    plan[0].mass *= 0.5; /* marginals broken */
    CM_CHECK(cm_ot_check(&c, cost, N, N, NULL, NULL, &bad) == CM_ERR_INVALID, "half mass accepted");
    CM_CHECK(strstr(cm_error_detail(), "marginals") != NULL, "detail: %s", cm_error_detail());
    plan[0].mass *= 2.0;
    size_t j0 = plan[0].j, j1 = plan[1].j; /* a feasible but suboptimal plan: swap partners */
    plan[0].j = j1;
    plan[1].j = j0;
    if (plan[0].i != plan[1].i && j0 != j1)
        CM_CHECK(cm_ot_check(&c, cost, N, N, NULL, NULL, &bad) == CM_ERR_INVALID,
                 "suboptimal plan accepted");
    cm_ot_workspace_free(w);
}

/* Samples of N(0, I) and N(mu, diag(s^2)) in 2-D: the empirical W2 approaches the closed form
 * sqrt(|mu|^2 + sum (1 - s_k)^2); by the triangle inequality the error is at most
 * W2(emp_n, law) + W2(emp'_n, law'), of order sqrt(log n / n) in 2-D (Fournier and Guillin
 * 2015); 3 sqrt(log n / n) + 1/n covers both terms with margin at these n. */
static void test_gaussian_samples(void) {
    uint64_t seed = cm_test_seed(36);
    cm_rng rng;
    cm_rng_init(&rng, seed);
    const double mu[2] = {1.0, -0.5}, s[2] = {1.5, 0.7};
    double exact = sqrt(mu[0] * mu[0] + mu[1] * mu[1] + (1 - s[0]) * (1 - s[0]) +
                        (1 - s[1]) * (1 - s[1]));
    const size_t sizes[] = {100, 400, 1200};
    double previous = INFINITY;
    for (size_t t = 0; t < 3; t++) {
        size_t n = sizes[t];
        double *x = cm_malloc(4 * n, sizeof(double)), *y = x + 2 * n, value;
        fill_normal(x, 2 * n, &rng);
        for (size_t i = 0; i < n; i++)
            for (size_t k = 0; k < 2; k++) y[i * 2 + k] = mu[k] + s[k] * cm_rng_normal(&rng);
        CM_CHECK_OK(cm_ot_wasserstein(&value, x, n, y, n, 2, CM_OT_W2));
        double tolerance = 3.0 * sqrt(log((double)n) / (double)n) + 1.0 / (double)n;
        CM_CHECK_CLOSE(value, exact, tolerance, "empirical W2 vs closed form");
        if (t == 2) CM_CHECK(fabs(value - exact) < previous + tolerance, "no convergence");
        previous = fabs(value - exact);
        cm_free(x);
    }
}

static void test_degenerate(void) {
    /* identical sets, repeated points, a single point */
    const double x[] = {1, 1, 1, 1, 2, 2, 1, 1}, one[] = {0.0, 0.0};
    double value;
    CM_CHECK_OK(cm_ot_wasserstein(&value, x, 4, x, 4, 2, CM_OT_W1));
    CM_CHECK_CLOSE(value, 0.0, 1e-15, "same set");
    CM_CHECK_OK(cm_ot_wasserstein(&value, one, 1, x, 4, 2, CM_OT_W2));
    CM_CHECK_CLOSE(value, sqrt((2 + 2 + 8 + 2) / 4.0), 1e-12, "point mass, W2");
    CM_CHECK_OK(cm_ot_wasserstein(&value, one, 1, one, 1, 2, CM_OT_W1));
    CM_CHECK_CLOSE(value, 0.0, 0.0, "1 x 1");
}

static void test_subsampling(void) {
    uint64_t seed = cm_test_seed(37);
    cm_rng rng;
    cm_rng_init(&rng, seed);
    enum { N = 400, D = 2 };
    double *x = cm_malloc(2 * N * D, sizeof(double)), *y = x + N * D;
    fill_normal(x, 2 * N * D, &rng);
    for (size_t k = 0; k < N * D; k++) y[k] += 2.0;
    cm_ot_estimate e, again, exact;
    CM_CHECK_OK(cm_ot_estimate_wp(&e, x, N, y, N, D, CM_OT_W1, 100, 4, 7));
    CM_CHECK(e.subsampled && e.repeats == 4 && e.points_x == 100 && e.points_y == 100,
             "subsampling not reported");
    CM_CHECK(e.ci_low < e.value && e.value < e.ci_high, "interval [%g, %g] around %g", e.ci_low,
             e.ci_high, e.value);
    CM_CHECK_OK(cm_ot_estimate_wp(&again, x, N, y, N, D, CM_OT_W1, 100, 4, 7));
    CM_CHECK(again.value == e.value, "same seed, different estimate");
    CM_CHECK_OK(cm_ot_estimate_wp(&exact, x, N, y, N, D, CM_OT_W1, N, 4, 7));
    CM_CHECK(!exact.subsampled && exact.repeats == 1 && exact.ci_low == exact.value,
             "exact below the limit");
    /* W1 of the shifted law is about |shift| = 2 sqrt(2); the subsample mean is near it */
    CM_CHECK(fabs(e.value - exact.value) < 0.3, "subsample mean %g vs exact %g", e.value,
             exact.value);
    cm_free(x);
}

static void test_errors(void) {
    long live = cm_alloc_live_count();
    const double x[] = {0, 0, 1, 1, 2, 2}, bad[] = {0, 0, NAN, 1, 2, 2};
    double value = 0.0;
    CM_CHECK(cm_ot_wasserstein(&value, x, 0, x, 3, 2, CM_OT_W1) == CM_ERR_INVALID, "n = 0");
    CM_CHECK(cm_ot_wasserstein(&value, x, 3, x, 3, 0, CM_OT_W1) == CM_ERR_INVALID, "d = 0");
    CM_CHECK(cm_ot_wasserstein(&value, bad, 3, x, 3, 2, CM_OT_W1) == CM_ERR_NONFINITE, "NaN");
    CM_CHECK(strstr(cm_error_detail(), "point 1") != NULL, "detail: %s", cm_error_detail());
    CM_CHECK(cm_ot_wasserstein(&value, x, 3, bad, 3, 2, CM_OT_W2) == CM_ERR_NONFINITE, "NaN in y");
    CM_CHECK(cm_ot_wasserstein(&value, x, 3, x, 3, 2, (cm_ot_power)3) == CM_ERR_INVALID, "p = 3");
    CM_CHECK(cm_ot_wasserstein(NULL, x, 3, x, 3, 2, CM_OT_W1) == CM_ERR_INVALID, "NULL out");
    cm_ot_workspace *w;
    CM_CHECK_OK(cm_ot_workspace_alloc(&w, 3, 3));
    cm_ot_result r;
    const double weights[] = {0.5, 0.5, 0.0}, unequal[] = {0.5, 0.5, 0.5};
    const double half[] = {0.25, 0.5, 0.25}, nan_weight[] = {0.5, NAN, 0.5};
    CM_CHECK(cm_ot_distance(&value, &r, w, x, 4, x, 3, 2, CM_OT_W1, NULL, NULL) == CM_ERR_INVALID,
             "larger than the workspace");
    CM_CHECK(cm_ot_distance(&value, &r, w, x, 3, x, 3, 2, CM_OT_W1, weights, NULL) == CM_ERR_INVALID,
             "zero weight");
    CM_CHECK(cm_ot_distance(&value, &r, w, x, 3, x, 3, 2, CM_OT_W1, unequal, weights + 0) ==
                 CM_ERR_INVALID, "unequal masses");
    CM_CHECK(cm_ot_distance(&value, &r, w, x, 3, x, 3, 2, CM_OT_W1, unequal, half) ==
                 CM_ERR_INVALID, "unequal masses 1.5 and 1");
    CM_CHECK(strstr(cm_error_detail(), "sum to") != NULL, "detail: %s", cm_error_detail());
    CM_CHECK(cm_ot_distance(&value, &r, w, x, 3, x, 3, 2, CM_OT_W1, nan_weight, NULL) ==
                 CM_ERR_NONFINITE, "NaN weight");
    float *cost = cm_ot_workspace_costs(w);
    for (int k = 0; k < 9; k++) cost[k] = 1.0f;
    cost[4] = INFINITY;
    CM_CHECK(cm_ot_solve(&r, w, cost, 3, 3, NULL, NULL) == CM_ERR_NONFINITE, "infinite cost");
    cm_ot_workspace_free(w);
    cm_ot_estimate e;
    CM_CHECK(cm_ot_estimate_wp(&e, x, 3, x, 3, 2, CM_OT_W1, 1, 3, 0) == CM_ERR_INVALID, "limit 1");
    CM_CHECK(cm_ot_estimate_wp(&e, x, 3, bad, 3, 2, CM_OT_W1, 2, 3, 0) == CM_ERR_NONFINITE,
             "NaN when subsampling");
    CM_CHECK(cm_alloc_live_count() == live, "leak: %ld live allocations, %ld before",
             cm_alloc_live_count(), live);
}

/* Every allocation failing in turn: NOMEM (or success once enough succeed), never a leak. */
static void test_out_of_memory(void) {
    const double x[] = {0, 0, 1, 1, 2, 2, 3, 0}, y[] = {1, 0, 0, 2, 2, 1, 3, 3};
    long live = cm_alloc_live_count();
    int succeeded = 0;
    for (long k = 0; k < 40 && !succeeded; k++) {
        double value;
        cm_ot_estimate e;
        cm_alloc_fail_after(k);
        cm_status s1 = cm_ot_wasserstein(&value, x, 4, y, 4, 2, CM_OT_W1);
        cm_alloc_fail_after(k);
        cm_status s2 = cm_ot_estimate_wp(&e, x, 4, y, 4, 2, CM_OT_W2, 2, 2, 1);
        cm_alloc_fail_after(-1);
        CM_CHECK(s1 == CM_OK || s1 == CM_ERR_NOMEM, "k = %ld: %s", k, cm_status_name(s1));
        CM_CHECK(s2 == CM_OK || s2 == CM_ERR_NOMEM, "k = %ld: %s", k, cm_status_name(s2));
        CM_CHECK(cm_alloc_live_count() == live, "leak after failure %ld", k);
        succeeded = s1 == CM_OK && s2 == CM_OK;
    }
    CM_CHECK(succeeded, "never succeeded");
}

const cm_test_case cm_tests_ot[] = {
    {"brute_force_permutations", test_brute_force_permutations},
    {"brute_force_vertices", test_brute_force_vertices},
    {"two_methods_agree", test_two_methods_agree},
    {"one_dimension", test_one_dimension},
    {"weights", test_weights},
    {"certificate_rejects", test_certificate_rejects},
    {"gaussian_samples", test_gaussian_samples},
    {"degenerate", test_degenerate},
    {"subsampling", test_subsampling},
    {"errors", test_errors},
    {"out_of_memory", test_out_of_memory},
    {NULL, NULL},
};
