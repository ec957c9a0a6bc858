/* test_theory.c: exact ideal consistency training (suite `theory`): the Gaussian gain recursion
 * against an independent long-double product of the DDIM form g_t = a_t + b_t sqrt(abar_t) l / v_t,
 * a T = 2 value computed by hand from the [LHW] schedule (docs/math.md), the exact map's W2 -> 0
 * as abar_T -> 0 at
 * its first-order rate, the 1-D grid recursion against the Gaussian closed form, against nested
 * Monte Carlo (T = 3, seed printed) and under refinement, far-apart modes, and Lipschitz
 * constants against closed forms and the 1-D formula p_t(x) / p_k(Phi(x)).
 */
#include <math.h>
#include <stdlib.h>

#include "cm/gaussian.h"
#include "cm/law.h"
#include "cm/schedule.h"
#include "cm/theory.h"
#include "test.h"

#define SIGMAS 5.0
#define PI 3.14159265358979323846

/* prod_{t=2..T} (a_t + b_t sqrt(abar_t) l / v_t(l)) with a_t, b_t by their defining formulas, in
 * long double: E[f_{t-1}(a x + b X_0) | U_t = x] for linear f_{t-1} ([LHW]; docs/math.md). */
static long double independent_gain(const cm_lhw_schedule *s, double l) {
    long double product = 1.0L;
    for (size_t t = 2; t <= s->T; t++) {
        long double ab = expl((long double)s->log_abar[t]),
                    ab_prev = expl((long double)s->log_abar[t - 1]);
        long double om = s->one_minus_abar[t], om_prev = s->one_minus_abar[t - 1];
        long double a = sqrtl(om_prev / om), b = sqrtl(ab_prev) - a * sqrtl(ab);
        product *= a + b * sqrtl(ab) * l / (ab * l + om);
    }
    return product;
}

static void test_gaussian_gain_recursion(void) {
    size_t Ts[4] = {2, 10, 100, 2000};
    double ls[5] = {0.0, 0.01, 1.0, 3.0, 100.0};
    for (int i = 0; i < 4; i++) {
        cm_lhw_schedule s;
        CM_CHECK_OK(cm_lhw_schedule_init(&s, Ts[i], 2.0, 4.0));
        for (int j = 0; j < 5; j++) {
            double mine = exp(cm_theory_gaussian_log_gain(&s, ls[j]));
            double other = (double)independent_gain(&s, ls[j]);
            CM_CHECK(fabs(mine - other) <= 1e-12 * other, "T %zu l %g: gain %.17g vs %.17g",
                     Ts[i], ls[j], mine, other);
            if (i == 1 && j == 1) { /* b_t of the library against the subtraction form */
                double a, b;
                cm_theory_ddim_coefficients(&s, 5, &a, &b);
                double b2 = exp(0.5 * s.log_abar[4]) - a * exp(0.5 * s.log_abar[5]);
                CM_CHECK_CLOSE(b, b2, 1e-13, "b_t");
            }
        }
        cm_lhw_schedule_free(&s);
    }
}

/* T = 2 by hand: beta_1 = 2^-c0, beta_2 = (c1 log 2 / 2) min(beta_1 (1 + c1 log 2 / 2), 1);
 * abar_1 = 1 - beta_1, abar_2 = abar_1 (1 - beta_2); the gain is g_2 of docs/theory.md and the
 * output N(0, g^2 l... ) vs X_1 ~ N(0, v_1): W2 = |g - sqrt(v_1)|, W1 = W2 sqrt(2 / pi). */
static void test_gaussian_T2_by_hand(void) {
    double vars[2] = {1.0, 4.0};
    for (int i = 0; i < 2; i++) {
        double l = vars[i], c0 = 2.0, c1 = 4.0, step = c1 * log(2.0) / 2.0;
        double beta1 = pow(2.0, -c0), beta2 = step * fmin(beta1 * (1.0 + step), 1.0);
        double ab1 = 1.0 - beta1, ab2 = ab1 * (1.0 - beta2);
        double g = (sqrt(ab1 * ab2) * l + sqrt(beta1 * (1.0 - ab2))) / (ab2 * l + 1.0 - ab2);
        double v1 = ab1 * l + beta1;
        cm_theory_gaussian_result r;
        CM_CHECK_OK(cm_theory_gaussian(&r, 1, &l, 2, c0, c1));
        CM_CHECK_CLOSE(r.w2_ideal, fabs(g - sqrt(v1)), 1e-14, "T = 2: W2");
        CM_CHECK_CLOSE(r.w1_ideal, fabs(g - sqrt(v1)) * sqrt(2.0 / PI), 1e-14, "T = 2: W1");
        double exact = sqrt(v1 / (ab2 * l + 1.0 - ab2));
        CM_CHECK_CLOSE(r.w2_exact_map, fabs(exact - sqrt(v1)), 1e-14, "T = 2: exact map W2");
    }
    /* l = 1 in hand-evaluated digits: g = sqrt(0.75 * 0.12973) + sqrt(0.25 * 0.87027) */
    double one = 1.0;
    cm_theory_gaussian_result r;
    CM_CHECK_OK(cm_theory_gaussian(&r, 1, &one, 2, 2.0, 4.0));
    CM_CHECK_CLOSE(r.w2_ideal, 0.221633, 1e-6, "T = 2, l = 1: W2 to 6 digits");
}

/* Isotropic W1 = |a - s| E||Z|| with E||Z|| = sqrt(pi / 2) in d = 2, W2 = |a - s| sqrt(2);
 * anisotropic: W1 not closed, lower <= upper = W2; the exact map's W2 ~ sqrt(sum v_1 (l-1)^2)
 * abar_T / 2 as abar_T -> 0 (1 / sqrt(v_T) - 1 = -(l - 1) abar_T / 2 + O(abar_T^2)). */
static void test_gaussian_distances(void) {
    double var2[2] = {2.0, 2.0};
    cm_theory_gaussian_result r;
    CM_CHECK_OK(cm_theory_gaussian(&r, 2, var2, 50, 2.0, 4.0));
    CM_CHECK_CLOSE(r.w1_ideal, r.w2_ideal / sqrt(2.0) * sqrt(PI / 2.0), 1e-15, "d = 2 W1");
    double spectrum[3] = {0.01, 1.0, 100.0};
    CM_CHECK_OK(cm_theory_gaussian(&r, 3, spectrum, 50, 2.0, 4.0));
    CM_CHECK(isnan(r.w1_ideal) && r.w1_ideal_lower > 0.0 && r.w1_ideal_lower <= r.w1_ideal_upper &&
                 r.w1_ideal_upper == r.w2_ideal,
             "anisotropic bounds %g <= %g", r.w1_ideal_lower, r.w1_ideal_upper);
    double previous = INFINITY;
    double c1s[3] = {4.0, 6.0, 8.0};
    for (int i = 0; i < 3; i++) {
        CM_CHECK_OK(cm_theory_gaussian(&r, 3, spectrum, 100, 2.0, c1s[i]));
        cm_lhw_schedule s;
        CM_CHECK_OK(cm_lhw_schedule_init(&s, 100, 2.0, c1s[i]));
        double ab1 = exp(s.log_abar[1]), predicted = 0.0;
        for (int k = 0; k < 3; k++)
            predicted += (ab1 * spectrum[k] + 1.0 - ab1) * (spectrum[k] - 1.0) * (spectrum[k] - 1.0);
        predicted = sqrt(predicted) * r.abar_T / 2.0;
        CM_CHECK(r.w2_exact_map < previous, "exact map W2 %g does not fall with abar_T %g",
                 r.w2_exact_map, r.abar_T);
        CM_CHECK(fabs(r.w2_exact_map / predicted - 1.0) < 0.05 + 200.0 * r.abar_T,
                 "exact map W2 %g vs first order %g (abar_T %g)", r.w2_exact_map, predicted,
                 r.abar_T);
        previous = r.w2_exact_map;
        cm_lhw_schedule_free(&s);
    }
    CM_CHECK(previous < 1e-8, "exact map W2 at c1 = 8 is %g", previous);
    double bad = -1.0;
    CM_CHECK(cm_theory_gaussian(&r, 1, &bad, 10, 2.0, 4.0) == CM_ERR_INVALID, "negative variance");
    CM_CHECK(cm_theory_gaussian(&r, 1, var2, 1, 2.0, 4.0) == CM_ERR_INVALID, "T = 1");
}

/* A single component: the grid recursion is exact for affine f, so it must reproduce the
 * closed form (also with a mean); the exact map's slope is sqrt(v_1 / v_T). */
static void test_mixture1d_gaussian_case(void) {
    double w = 1.0, mean = 0.7, std = 0.8, var = std * std;
    cm_law *law = NULL;
    CM_CHECK_OK(cm_law_mixture_isotropic(&law, 1, 1, &w, &mean, &std));
    if (!law) return;
    cm_theory_grid_options o = cm_theory_grid_options_default();
    o.grid_points = 256;
    o.refine = 0;
    size_t Ts[2] = {10, 200};
    for (int i = 0; i < 2; i++) {
        cm_theory_mixture1d_result m;
        cm_theory_gaussian_result g;
        CM_CHECK_OK(cm_theory_mixture1d(&m, law, Ts[i], 2.0, 4.0, &o));
        CM_CHECK_OK(cm_theory_gaussian_mean(&g, 1, &mean, &var, Ts[i], 2.0, 4.0));
        CM_CHECK(fabs(m.w1_ideal - g.w1_ideal) <= 1e-6 * g.w1_ideal, "T %zu: w1_ideal %.12g vs "
                 "closed form %.12g", Ts[i], m.w1_ideal, g.w1_ideal);
        CM_CHECK(fabs(m.w1_ddim - g.w1_ideal) <= 1e-6 * g.w1_ideal, "T %zu: for a Gaussian DDIM "
                 "is ideal CT: %.12g vs %.12g", Ts[i], m.w1_ddim, g.w1_ideal);
        CM_CHECK_CLOSE(m.w1_exact_map, g.w1_exact_map, 1e-9, "exact map W1");
        cm_lhw_schedule s;
        CM_CHECK_OK(cm_lhw_schedule_init(&s, Ts[i], 2.0, 4.0));
        double v1 = exp(s.log_abar[1]) * var + s.one_minus_abar[1];
        double vT = exp(s.log_abar[Ts[i]]) * var + s.one_minus_abar[Ts[i]];
        CM_CHECK_CLOSE(m.lipschitz, sqrt(v1 / vT), 1e-9, "Gaussian slope");
        CM_CHECK(m.monotone && m.lipschitz_resolved, "affine f_T is monotone");
        cm_lhw_schedule_free(&s);
    }
    cm_law_free(law);
}

/* f_3(x) = E[ f_2(a_3 x + b_3 X_0) | U_3 = x ] with f_2(y) = a_2 y + b_2 D_2(y), by Monte Carlo
 * over the exact posterior, against the grid recursion. */
static void test_mixture1d_nested_monte_carlo(void) {
    uint64_t seed = cm_test_seed(55);
    double w[2] = {1, 2}, means[2] = {-1.5, 1.0}, stds[2] = {0.4, 0.6};
    cm_law *law = NULL;
    CM_CHECK_OK(cm_law_mixture_isotropic(&law, 1, 2, w, means, stds));
    if (!law) return;
    cm_lhw_schedule s;
    CM_CHECK_OK(cm_lhw_schedule_init(&s, 3, 1.0, 2.0));
    double a2, b2, a3, b3, x[3] = {-1.0, 0.2, 1.3}, grid[3];
    cm_theory_ddim_coefficients(&s, 2, &a2, &b2);
    cm_theory_ddim_coefficients(&s, 3, &a3, &b3);
    CM_CHECK_OK(cm_theory_mixture1d_ideal_map(grid, law, 3, 1.0, 2.0, NULL, x, 3));
    size_t n = 20000;
    double *x0 = malloc(2 * n * sizeof(double)), *y = x0 + n;
    for (int c = 0; c < 3; c++) {
        cm_rng rng;
        cm_rng_init(&rng, seed + (uint64_t)c);
        CM_CHECK_OK(cm_law_posterior_sample(law, cm_lhw_schedule_log_snr(&s, 3), &x[c], &rng, n,
                                            x0));
        for (size_t i = 0; i < n; i++) x0[i] = a3 * x[c] + b3 * x0[i];
        CM_CHECK_OK(cm_law_denoise(law, cm_lhw_schedule_log_snr(&s, 2), x0, n, y));
        double sum = 0.0, sum2 = 0.0;
        for (size_t i = 0; i < n; i++) {
            double f = a2 * x0[i] + b2 * y[i];
            sum += f;
            sum2 += f * f;
        }
        double mean = sum / (double)n, var = sum2 / (double)n - mean * mean;
        CM_CHECK_CLOSE(grid[c], mean, SIGMAS * sqrt(var / (double)n) + 1e-9, "f_3 grid vs MC");
    }
    free(x0);
    cm_lhw_schedule_free(&s);
    cm_law_free(law);
}

/* Doubling grid, nodes and quadrature changes w1_ideal less and less, and little. */
static void test_mixture1d_refinement(void) {
    double w[2] = {1, 1}, means[2] = {-2, 2}, stds[2] = {0.5, 0.5};
    cm_law *law = NULL;
    CM_CHECK_OK(cm_law_mixture_isotropic(&law, 1, 2, w, means, stds));
    if (!law) return;
    cm_theory_grid_options o = cm_theory_grid_options_default();
    o.refine = 0;
    double value[3];
    size_t points[3] = {128, 256, 512};
    for (int i = 0; i < 3; i++) {
        cm_theory_mixture1d_result r;
        o.grid_points = points[i];
        o.hermite_nodes = 8 << i;
        CM_CHECK_OK(cm_theory_mixture1d(&r, law, 30, 2.0, 4.0, &o));
        value[i] = r.w1_ideal;
        CM_CHECK(isfinite(r.w1_ideal) && r.w1_ideal > r.w1_exact_map, "w1 %g", r.w1_ideal);
    }
    double first = fabs(value[1] - value[0]), second = fabs(value[2] - value[1]);
    CM_CHECK(second < first && second < 1e-4 * value[2],
             "refinement: changes %.3g then %.3g (w1 %.6g)", first, second, value[2]);
    o = cm_theory_grid_options_default();
    cm_theory_mixture1d_result r;
    CM_CHECK_OK(cm_theory_mixture1d(&r, law, 30, 2.0, 4.0, &o));
    CM_CHECK(r.refinement_change < 1e-5 * r.w1_ideal, "default refinement change %.3g of %.6g",
             r.refinement_change, r.w1_ideal);
    cm_law_free(law);
}

/* Modes 200 standard deviations apart: everything finite; the slope of the exact map peaks at
 * x = 0 = Phi(0) with log Phi'(0) = log p_T(0) - log p_1(0), about 5000 (p_1(0) = e^-5000 / ...):
 * log_lipschitz must find it to within the data grid's offset from 0 (log p_1 has slope about
 * 4 * 50 there and the nearest of 512 nodes on [-55, 55] is up to 0.11 away: 22); with abar_T
 * tiny (c1 = 8) the exact map from N(0, 1) lands on X_1. */
static void test_mixture1d_far_modes(void) {
    double w[2] = {1, 1}, means[2] = {-50, 50}, stds[2] = {0.5, 0.5};
    cm_law *law = NULL;
    CM_CHECK_OK(cm_law_mixture_isotropic(&law, 1, 2, w, means, stds));
    if (!law) return;
    cm_theory_grid_options o = cm_theory_grid_options_default();
    o.grid_points = 512;
    o.refine = 0;
    cm_theory_mixture1d_result r;
    CM_CHECK_OK(cm_theory_mixture1d(&r, law, 50, 2.0, 8.0, &o));
    CM_CHECK(isfinite(r.w1_ideal) && isfinite(r.w1_ddim) && isfinite(r.w1_exact_map) &&
                 isfinite(r.log_lipschitz),
             "far modes: w1 %g ddim %g exact %g log L %g", r.w1_ideal, r.w1_ddim, r.w1_exact_map,
             r.log_lipschitz);
    cm_lhw_schedule s;
    CM_CHECK_OK(cm_lhw_schedule_init(&s, 50, 2.0, 8.0));
    double x = 0.0, lp_T, lp_1;
    CM_CHECK_OK(cm_law_log_density(law, cm_lhw_schedule_log_snr(&s, 50), &x, 1, &lp_T));
    CM_CHECK_OK(cm_law_log_density(law, cm_lhw_schedule_log_snr(&s, 1), &x, 1, &lp_1));
    CM_CHECK(r.log_lipschitz <= lp_T - lp_1 + 1e-6 && r.log_lipschitz > lp_T - lp_1 - 25.0 &&
                 lp_T - lp_1 > 4990.0,
             "far modes: log L %.6g vs log Phi'(0) %.6g", r.log_lipschitz, lp_T - lp_1);
    CM_CHECK(r.w1_exact_map < 1e-2, "exact map W1 %g (abar_T %g)", r.w1_exact_map, r.abar_T);
    CM_CHECK(r.w1_ideal > r.w1_ddim && r.w1_ddim > r.w1_exact_map, "ordering %g %g %g",
             r.w1_ideal, r.w1_ddim, r.w1_exact_map);
    cm_lhw_schedule_free(&s);
    cm_law_free(law);
}

/* The slope of the exact map between modes 8 stds apart peaks in a tiny interval of x; the
 * data-side grid must find it: log Phi'(0) = log p_T(0) - log p_1(0) for a symmetric law (to
 * 1e-2: log p_1 is flat at its minimum 0, and the nearest node is 0.007 away). */
static void test_mixture1d_lipschitz_peak(void) {
    double w[2] = {1, 1}, means[2] = {-2, 2}, stds[2] = {0.5, 0.5}, x = 0.0, lp_T, lp_1;
    cm_law *law = NULL;
    CM_CHECK_OK(cm_law_mixture_isotropic(&law, 1, 2, w, means, stds));
    if (!law) return;
    cm_theory_grid_options o = cm_theory_grid_options_default();
    o.refine = 0;
    cm_theory_mixture1d_result r;
    CM_CHECK_OK(cm_theory_mixture1d(&r, law, 100, 2.0, 4.0, &o));
    cm_lhw_schedule s;
    CM_CHECK_OK(cm_lhw_schedule_init(&s, 100, 2.0, 4.0));
    CM_CHECK_OK(cm_law_log_density(law, cm_lhw_schedule_log_snr(&s, 100), &x, 1, &lp_T));
    CM_CHECK_OK(cm_law_log_density(law, cm_lhw_schedule_log_snr(&s, 1), &x, 1, &lp_1));
    CM_CHECK(fabs(r.log_lipschitz - (lp_T - lp_1)) < 1e-2 && r.lipschitz_resolved,
             "log L %.8g vs log Phi'(0) %.8g (resolved %d)", r.log_lipschitz, lp_T - lp_1,
             r.lipschitz_resolved);
    cm_lhw_schedule_free(&s);
    cm_law_free(law);
}

/* Flow-map Lipschitz constants: a Gaussian's map is U diag(sqrt(v_k / v_t)) U' (norm = largest
 * gain); a 1-D mixture's slope is p_t(x) / p_k(Phi(x)). */
static void test_lipschitz(void) {
    double variances[3] = {0.1, 1.0, 5.0}, points[6] = {0, 0, 0, 1, -1, 2};
    cm_law *law = NULL;
    CM_CHECK_OK(cm_law_gaussian_diagonal(&law, 3, NULL, variances));
    double lt = -2.0, lk = 3.0, at = 1.0 / (1.0 + exp(-lt)), ak = 1.0 / (1.0 + exp(-lk)), L;
    double want = 0.0;
    for (int i = 0; i < 3; i++)
        want = fmax(want, sqrt((ak * variances[i] + 1 - ak) / (at * variances[i] + 1 - at)));
    if (law) {
        CM_CHECK_OK(cm_theory_lipschitz_flow(&L, law, lt, lk, points, 2));
        CM_CHECK_CLOSE(L, want, 1e-8, "Gaussian flow Lipschitz");
    }
    cm_law_free(law);
    double w[2] = {1, 1}, means[2] = {-2, 2}, stds[2] = {0.3, 0.3}, x[3] = {-1.0, 0.05, 0.7};
    CM_CHECK_OK(cm_law_mixture_isotropic(&law, 1, 2, w, means, stds));
    if (!law) return;
    for (int c = 0; c < 3; c++) {
        double phi, lp_t, lp_k;
        CM_CHECK_OK(cm_theory_lipschitz_flow(&L, law, lt, lk, &x[c], 1));
        CM_CHECK_OK(cm_law_flow(law, lt, lk, &x[c], 1, &phi, NULL, NULL));
        CM_CHECK_OK(cm_law_log_density(law, lt, &x[c], 1, &lp_t));
        CM_CHECK_OK(cm_law_log_density(law, lk, &phi, 1, &lp_k));
        double slope = exp(lp_t - lp_k);
        CM_CHECK(fabs(L - slope) <= 1e-5 * slope, "x %g: Jacobian %.10g vs p_t / p_k %.10g", x[c],
                 L, slope);
    }
    cm_law_free(law);
}

/* A linear map has ||J|| = its largest singular value: M = [[1, 2], [0, 3]] gives
 * sqrt((14 + sqrt(160)) / 2); a map with J = diag(2 x_0, 1) peaks at the point of largest |x_0|. */
static cm_status linear_map(void *context, const double *x, size_t n, double *out) {
    (void)context;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = x[2 * i] + 2.0 * x[2 * i + 1];
        out[2 * i + 1] = 3.0 * x[2 * i + 1];
    }
    return CM_OK;
}

static cm_status square_map(void *context, const double *x, size_t n, double *out) {
    (void)context;
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = x[2 * i] * x[2 * i];
        out[2 * i + 1] = x[2 * i + 1];
    }
    return CM_OK;
}

static void test_lipschitz_maps(void) {
    double points[6] = {0.5, -1.0, -3.0, 2.0, 1.0, 0.0}, L;
    size_t argmax = 99;
    CM_CHECK_OK(cm_theory_lipschitz(&L, &argmax, linear_map, NULL, 2, points, 3, 0.0));
    CM_CHECK_CLOSE(L, sqrt((14.0 + sqrt(160.0)) / 2.0), 1e-9, "linear map norm");
    CM_CHECK_OK(cm_theory_lipschitz(&L, &argmax, square_map, NULL, 2, points, 3, 0.0));
    CM_CHECK_CLOSE(L, 6.0, 1e-8, "square map norm at x_0 = -3");
    CM_CHECK(argmax == 1, "argmax %zu", argmax);
    CM_CHECK(cm_theory_lipschitz(&L, NULL, square_map, NULL, 2, points, 0, 0.0) == CM_ERR_INVALID,
             "no points");
}

/* The 1-D grid recursion refuses laws of dimension 2 (a mixture, a full-covariance Gaussian). */
static void test_mixture1d_refuses_other_laws(void) {
    const double weights[2] = {1, 1}, means[4] = {-1, 0, 1, 0}, stds[2] = {0.5, 0.5};
    const double cov[4] = {1.0, 0.3, 0.3, 2.0};
    cm_law *law = NULL;
    cm_theory_mixture1d_result r;
    double y = 0.0, out;
    CM_CHECK_OK(cm_law_mixture_isotropic(&law, 2, 2, weights, means, stds));
    CM_CHECK(cm_theory_mixture1d(&r, law, 10, 2, 4, NULL) == CM_ERR_DIMENSION, "d = 2 accepted");
    CM_CHECK(cm_theory_mixture1d_ideal_map(&out, law, 10, 2, 4, NULL, &y, 1) == CM_ERR_DIMENSION,
             "d = 2 accepted by the map");
    cm_law_free(law);
    CM_CHECK_OK(cm_law_gaussian(&law, 2, NULL, cov));
    CM_CHECK(cm_theory_mixture1d(&r, law, 10, 2, 4, NULL) == CM_ERR_DIMENSION, "full covariance");
    cm_law_free(law);
}

const cm_test_case cm_tests_theory[] = {
    {"gaussian_gain_recursion", test_gaussian_gain_recursion},
    {"gaussian_T2_by_hand", test_gaussian_T2_by_hand},
    {"gaussian_distances", test_gaussian_distances},
    {"mixture1d_gaussian_case", test_mixture1d_gaussian_case},
    {"mixture1d_nested_monte_carlo", test_mixture1d_nested_monte_carlo},
    {"mixture1d_refinement", test_mixture1d_refinement},
    {"mixture1d_far_modes", test_mixture1d_far_modes},
    {"mixture1d_lipschitz_peak", test_mixture1d_lipschitz_peak},
    {"mixture1d_refuses_other_laws", test_mixture1d_refuses_other_laws},
    {"lipschitz", test_lipschitz},
    {"lipschitz_maps", test_lipschitz_maps},
    {NULL, NULL},
};
