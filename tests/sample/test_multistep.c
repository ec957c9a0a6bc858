/* test_multistep.c: the [JHMZ] sampler, [LFC]'s Langevin correction and [CM] Algorithm 1 over
 * two-time maps: the closed-form Gaussian propagation against Monte Carlo runs of the generic
 * sampler, its KL against gaussian.h's full-matrix KL and against the invariance of KL under the
 * exact (bijective) flow, the exact flow map of law.h against the closed form, our two-time
 * construction from a consistency model, and the level search on a model with zero weights. */
#include "cm/multistep.h"

#include <math.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/gaussian.h"
#include "cm/metrics.h"
#include "cm/sampler.h"
#include "cm/schedule.h"
#include "test.h"

enum { N_MC = 40000 };

static void column_moments(const double *x, size_t n, size_t d, size_t j, double *mean, double *var) {
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) s += x[i * d + j];
    *mean = s / (double)n;
    for (size_t i = 0; i < n; i++) s2 += (x[i * d + j] - *mean) * (x[i * d + j] - *mean);
    *var = s2 / (double)(n - 1);
}

/* The Gaussian score for the Langevin steps, as a denoiser: D = m + l / (l + s^2) (x - m). */
typedef struct {
    const double *mean, *var;
    size_t dim;
} gauss_ctx;
static cm_status gauss_denoise(void *context, const double *x, const double *sigma, size_t n,
                               double *out) {
    const gauss_ctx *g = context;
    for (size_t r = 0; r < n; r++)
        for (size_t i = 0; i < g->dim; i++) {
            double l = g->var[i], s = sigma[r];
            out[r * g->dim + i] = g->mean[i] + l / (l + s * s) * (x[r * g->dim + i] - g->mean[i]);
        }
    return CM_OK;
}

/* Monte Carlo of cm_jhmz_sample with an erroneous Gaussian map and a Langevin correction agrees
 * with the closed form: means within 5 standard errors, variances within 5 sqrt(2/n) relative. */
static void test_gaussian_closed_form_matches_monte_carlo(void) {
    double mean[3] = {1.0, -2.0, 0.0}, var[3] = {0.04, 1.0, 3.0};
    cm_gaussian_map g = {3, mean, var, 0.05, 0.1, 0};
    cm_two_time_map map;
    CM_CHECK_OK(cm_two_time_gaussian(&map, &g));
    gauss_ctx ctx = {mean, var, 3};
    cm_denoiser score = {gauss_denoise, &ctx, NULL, 3};
    const double deltas[3] = {0.0, 0.3, -1.0};
    double *x = cm_malloc(N_MC * 3, sizeof(double));
    uint64_t seed = cm_test_seed(21);
    for (int c = 0; c < 3; c++) {
        cm_jhmz_options o = cm_jhmz_options_default();
        o.steps = 5, o.eta = 0.4, o.delta = deltas[c], o.sigma_end = 0.05;
        o.langevin_steps = c == 1 ? 3 : 0, o.langevin_step = 1e-3;
        g.profile_scale = c == 2 ? 3.0 : 0.0;
        CM_CHECK_OK(cm_jhmz_sample(x, &map, &score, &o, N_MC, seed));
        double m[3], v[3];
        CM_CHECK_OK(cm_jhmz_gaussian(m, v, &g, &o));
        for (size_t j = 0; j < 3; j++) {
            double sm, sv;
            column_moments(x, N_MC, 3, j, &sm, &sv);
            CM_CHECK_CLOSE(sm, m[j], 5 * sqrt(v[j] / N_MC), "mean vs closed form");
            CM_CHECK_CLOSE(sv, v[j], 5 * v[j] * sqrt(2.0 / N_MC), "variance vs closed form");
        }
    }
    cm_free(x);
}

/* The summed 1-D KL and W2 equal gaussian.h's full-matrix forms on diagonal covariances. */
static void test_gaussian_error_matches_full_matrix_forms(void) {
    double mean[3] = {0.5, -1.0, 2.0}, var[3] = {0.01, 0.5, 4.0};
    cm_gaussian_map g = {3, mean, var, -0.1, 0.2, 0.0};
    cm_jhmz_options o = cm_jhmz_options_default();
    o.steps = 3, o.eta = 0.7, o.delta = 0.2, o.sigma_end = 0.01;
    double kl, w2, m[3], v[3], cov_out[9] = {0}, cov_target[9] = {0}, kl_full, w2_full;
    CM_CHECK_OK(cm_jhmz_gaussian_error(&kl, &w2, &g, &o));
    CM_CHECK_OK(cm_jhmz_gaussian(m, v, &g, &o));
    for (int i = 0; i < 3; i++) {
        cov_out[4 * i] = v[i];
        cov_target[4 * i] = var[i] + o.sigma_end * o.sigma_end;
    }
    CM_CHECK_OK(cm_gaussian_kl(&kl_full, m, cov_out, mean, cov_target, 3));
    CM_CHECK_OK(cm_gaussian_w2(&w2_full, m, cov_out, mean, cov_target, 3));
    CM_CHECK_CLOSE(kl, kl_full, 1e-10 * (1 + kl_full), "KL");
    CM_CHECK_CLOSE(w2, w2_full, 1e-8 * (1 + w2_full), "W2");
    CM_CHECK(kl > 0 && w2 > 0, "errors of an erroneous map are positive");
}

/* With the exact map and delta = 0 the sampler is the exact flow, a bijection: the output KL is
 * the KL of the prior N(0, (1 + sigma_T^2) I) to the law at sigma_T, N(m, l + sigma_T^2). It
 * falls as the steps (and so the horizon T = K eta) grow. */
static void test_exact_chaining_kl_is_prior_kl(void) {
    double mean[2] = {0.5, -0.5}, var[2] = {0.25, 2.0};
    cm_gaussian_map g = {2, mean, var, 0.0, 0.0, 0.0};
    double previous = INFINITY;
    for (size_t K = 1; K <= 16; K *= 2) {
        cm_jhmz_options o = cm_jhmz_options_default();
        o.steps = K, o.eta = 0.25, o.delta = 0.0, o.sigma_end = 0.002;
        double kl, w2;
        CM_CHECK_OK(cm_jhmz_gaussian_error(&kl, &w2, &g, &o));
        double T = cm_ou_time(o.sigma_end) + (double)K * o.eta, s2 = expm1(2 * T), want = 0;
        for (int i = 0; i < 2; i++) {
            double p = 1 + s2, q = var[i] + s2;
            want += 0.5 * (p / q + mean[i] * mean[i] / q - 1 + log(q / p));
        }
        CM_CHECK_CLOSE(kl, want, 1e-9 * want + 1e-15, "chaining KL = prior KL");
        CM_CHECK(kl < previous, "KL does not fall with K = %zu (%g after %g)", K, kl, previous);
        previous = kl;
    }
}

/* law.h's flow map (cm_law_flow, closed form for one Gaussian) seen through the VE conversion
 * equals the closed-form map, and so does the forced ODE integration up to its tolerance. */
static void test_law_flow_map_matches_closed_form(void) {
    double mean[2] = {1.0, -0.5}, var[2] = {0.25, 2.0};
    cm_law *law;
    CM_CHECK_OK(cm_law_gaussian_diagonal(&law, 2, mean, var));
    if (!law) return;
    cm_two_time_map exact, closed;
    cm_gaussian_map g = {2, mean, var, 0.0, 0.0, 0.0};
    CM_CHECK_OK(cm_two_time_from_law(&exact, law));
    CM_CHECK_OK(cm_two_time_gaussian(&closed, &g));
    double x[6] = {3.0, -1.0, 0.0, 10.0, -4.0, 2.0}, a[6], b[6];
    const double levels[3][2] = {{10.0, 0.002}, {3.0, 0.5}, {0.5, 3.0}};
    for (int l = 0; l < 3; l++) {
        CM_CHECK_OK(exact.map(exact.context, x, 3, levels[l][0], levels[l][1], a));
        CM_CHECK_OK(closed.map(closed.context, x, 3, levels[l][0], levels[l][1], b));
        for (int k = 0; k < 6; k++) CM_CHECK_CLOSE(a[k], b[k], 1e-9 * (1 + fabs(b[k])), "law flow");
    }
    cm_law_free(law);
}

/* Our two-time construction from a consistency model: with zero weights f(x, s) = c_skip(s) x,
 * so g(x, a, b) = c x + (b / a)(1 - c) x with c = c_skip(a) (model units). */
static void test_two_time_from_zero_model(void) {
    cm_train_config config = cm_train_config_default(CM_METHOD_ICT, 2);
    CM_TEST_MLP(config)->width = 8, CM_TEST_MLP(config)->depth = 1;
    cm_model model;
    CM_CHECK_OK(cm_model_init(&model, &config));
    cm_two_time_map map;
    CM_CHECK_OK(cm_two_time_from_model(&map, &model));
    double x[4] = {1.0, -2.0, 0.5, 3.0}, out[4];
    CM_CHECK_OK(map.map(map.context, x, 2, 2.0, 0.5, out));
    double c = cm_consistency_ve(2.0, 0.5, config.method.sigma_min).skip;
    for (int k = 0; k < 4; k++)
        CM_CHECK_CLOSE(out[k], c * x[k] + 0.25 * (1 - c) * x[k], 1e-6 * (1 + fabs(x[k])), "g");
    cm_two_time_free(&map);
    cm_model_free(&model);
    config = cm_train_config_default(CM_METHOD_DSM, 2);
    CM_CHECK_OK(cm_model_init(&model, &config));
    CM_CHECK(cm_two_time_from_model(&map, &model) == CM_ERR_INVALID, "dsm model accepted");
    cm_model_free(&model);
}

/* [CM] Algorithm 1 closed form: with the exact map, x = Phi_{s0 -> end}(s0 Z) has variance
 * (l + e^2) / (l + s0^2) s0^2 about m (1 - sqrt((l + e^2)/(l + s0^2))); a second step at tau
 * re-noises to variance v1 + tau^2 - e^2 and maps again. */
static void test_cm_gaussian_by_hand(void) {
    double mean[1] = {0.3}, var[1] = {0.5}, m, v, e = 0.01, s0 = 5.0, tau = 0.7;
    cm_gaussian_map g = {1, mean, var, 0.0, 0.0, 0.0};
    CM_CHECK_OK(cm_cm_gaussian(&m, &v, &g, &s0, 1, e));
    double r0 = sqrt((0.5 + e * e) / (0.5 + s0 * s0));
    CM_CHECK_CLOSE(m, 0.3 * (1 - r0), 1e-14, "one-step mean");
    CM_CHECK_CLOSE(v, r0 * r0 * s0 * s0, 1e-14, "one-step variance");
    double levels[2] = {s0, tau};
    CM_CHECK_OK(cm_cm_gaussian(&m, &v, &g, levels, 2, e));
    double r1 = sqrt((0.5 + e * e) / (0.5 + tau * tau)), v1 = r0 * r0 * s0 * s0 + tau * tau - e * e;
    CM_CHECK_CLOSE(m, 0.3 + r1 * (0.3 * (1 - r0) - 0.3), 1e-14, "two-step mean");
    CM_CHECK_CLOSE(v, r1 * r1 * v1, 1e-14, "two-step variance");
    CM_CHECK(cm_cm_gaussian(&m, &v, &g, levels, 2, 1.0) == CM_ERR_INVALID, "level below the end");
    /* its error against N(0.3, 0.5 + e^2), from the 1-D forms: KL = (x - log1p x + dm^2 / w) / 2
     * with x = v / w - 1, W2^2 = dm^2 + (sqrt v - sqrt w)^2 */
    double kl, w2, w = 0.5 + e * e, dm = m - 0.3, x = v / w - 1;
    CM_CHECK_OK(cm_cm_gaussian_error(&kl, &w2, &g, levels, 2, e));
    CM_CHECK_CLOSE(kl, 0.5 * (x - log1p(x) + dm * dm / w), 1e-15, "two-step KL");
    CM_CHECK_CLOSE(w2, sqrt(dm * dm + (sqrt(v) - sqrt(w)) * (sqrt(v) - sqrt(w))), 1e-15,
                   "two-step W2");
    CM_CHECK(cm_cm_gaussian_error(&kl, &w2, &g, levels, 2, 1.0) == CM_ERR_INVALID,
             "error: level below the end");
}

/* The level search on a zero-weight model returns admissible, decreasing levels, and its
 * distance is the distance of cm_sample at those levels. */
static void test_level_search_admissible(void) {
    cm_train_config config = cm_train_config_default(CM_METHOD_ICT, 2);
    CM_TEST_MLP(config)->width = 8, CM_TEST_MLP(config)->depth = 1;
    cm_model model;
    CM_CHECK_OK(cm_model_init(&model, &config));
    enum { M = 300 };
    double reference[M * 2], levels[3], distance;
    cm_rng rng;
    cm_rng_init(&rng, 4);
    for (int i = 0; i < M * 2; i++) reference[i] = 0.3 * cm_rng_normal(&rng);
    CM_CHECK_OK(cm_multistep_search_levels(levels, &distance, &model, 3, reference, M, 300, 32, 8, 1));
    CM_CHECK(levels[0] == config.method.sigma_max && levels[1] < levels[0] && levels[2] < levels[1] &&
             levels[2] > config.method.sigma_min, "levels %g %g %g", levels[0], levels[1], levels[2]);
    CM_CHECK(isfinite(distance) && distance > 0, "distance %g", distance);
    /* two levels: the distance returned is that of cm_sample at the levels returned, and no
     * larger than at any point of the first-pass grid (5 points from just above sigma_min to
     * just below sigma_max in log sigma): the search keeps the best level it evaluated */
    enum { N = 300, PROJECTIONS = 32 };
    double *samples = cm_malloc(N * 2, sizeof(double)), check;
    CM_CHECK_OK(cm_multistep_search_levels(levels, &distance, &model, 2, reference, M, N,
                                           PROJECTIONS, 9, 1));
    CM_CHECK_OK(cm_sample(samples, &model, levels, 2, N, 1));
    CM_CHECK_OK(cm_metrics_sliced_w1(&check, samples, N, reference, M, 2, PROJECTIONS, 2));
    CM_CHECK(check == distance, "search distance %.17g, recomputed %.17g", distance, check);
    double lo = log(config.method.sigma_min) + 1e-3, hi = log(config.method.sigma_max) - 1e-3;
    for (int j = 0; j < 5; j++) {
        double grid_levels[2] = {config.method.sigma_max, exp(lo + (hi - lo) * j / 4.0)}, at;
        CM_CHECK_OK(cm_sample(samples, &model, grid_levels, 2, N, 1));
        CM_CHECK_OK(cm_metrics_sliced_w1(&at, samples, N, reference, M, 2, PROJECTIONS, 2));
        CM_CHECK(distance <= at, "search %.6g worse than grid level %g (%.6g)", distance,
                 grid_levels[1], at);
    }
    cm_free(samples);
    cm_model_free(&model);
    /* a distilled model (cd) is searched on the grid it was trained on: every level returned is
     * one of its Karras levels, in decreasing order, above sigma_min */
    config = cm_train_config_default(CM_METHOD_CD, 2);
    CM_TEST_MLP(config)->width = 8, CM_TEST_MLP(config)->depth = 1, config.method.cd_levels = 7;
    CM_CHECK_OK(cm_model_init(&model, &config));
    double grid[7], cd_levels[4];
    CM_CHECK_OK(cm_karras_grid(grid, 7, config.method.sigma_min, config.method.sigma_max, config.method.rho));
    CM_CHECK_OK(cm_multistep_search_levels(cd_levels, &distance, &model, 4, reference, M, 200, 16,
                                           3, 1));
    for (int k = 1; k < 4; k++) {
        int on_grid = 0;
        for (int j = 1; j < 7; j++) on_grid |= cd_levels[k] == grid[j];
        CM_CHECK(on_grid && cd_levels[k] < cd_levels[k - 1], "cd level %d = %.17g: not a grid level "
                 "below %.17g", k, cd_levels[k], cd_levels[k - 1]);
    }
    CM_CHECK(cm_multistep_search_levels(cd_levels, &distance, &model, 8, reference, M, 200, 16, 3,
                                        1) == CM_ERR_INVALID, "8 levels from a 7-level grid");
    cm_model_free(&model);
}

/* cm_langevin_correct with the exact score of N(m, diag l) at level s (w = l + s^2): each step is
 * x <- m + c (x - m) + sqrt(2h) Z with c = 1 - h / w, so from the point x = 3 the law after L
 * steps is N(m + c^L (3 - m), 2h (1 - c^2L) / (1 - c^2)): the discrete-time stationary variance
 * 2h / (1 - c^2), not w (h is chosen so that the two differ by far more than the tolerance).
 * Means within 5 standard errors, variances within 5 sqrt(2 / n) relative. */
static void test_langevin_reaches_discrete_stationary_law(void) {
    enum { N = 20000, L = 10 };
    double mean[2] = {0.5, -1.0}, var[2] = {0.25, 0.5}, s = 0.05, h = 0.2;
    gauss_ctx ctx = {mean, var, 2};
    cm_denoiser score = {gauss_denoise, &ctx, NULL, 2};
    double *x = cm_malloc(N * 2, sizeof(double));
    for (size_t k = 0; k < N * 2; k++) x[k] = 3.0;
    uint64_t seed = cm_test_seed(31);
    CM_CHECK_OK(cm_langevin_correct(x, N, &score, s, L, h, seed, 0));
    for (size_t j = 0; j < 2; j++) {
        double w = var[j] + s * s, c = 1.0 - h / w, cL = pow(c, L);
        double want_m = mean[j] + cL * (3.0 - mean[j]);
        double want_v = 2.0 * h * (1.0 - cL * cL) / (1.0 - c * c), sm, sv;
        column_moments(x, N, 2, j, &sm, &sv);
        CM_CHECK_CLOSE(sm, want_m, 5 * sqrt(want_v / N), "Langevin mean");
        CM_CHECK_CLOSE(sv, want_v, 5 * want_v * sqrt(2.0 / N), "Langevin variance");
        CM_CHECK(fabs(want_v - w) > 10 * want_v * sqrt(2.0 / N), "h too small to tell the laws apart");
        CM_CHECK(fabs(want_m - mean[j]) > 3 * sqrt(want_v / N) || j == 0, "L too large to see the start");
    }
    CM_CHECK(cm_langevin_correct(x, N, NULL, s, 1, h, seed, 0) == CM_ERR_INVALID, "no score");
    CM_CHECK(cm_langevin_correct(x, N, &score, s, 1, NAN, seed, 0) == CM_ERR_INVALID, "NaN step");
    cm_free(x);
}

/* The noise convention: cm_jhmz_sample with L Langevin steps equals cm_jhmz_sample without them
 * followed by cm_langevin_correct(first_stage = K + 1), bit for bit. */
static void test_langevin_stages_match_jhmz(void) {
    double mean[2] = {1.0, 0.0}, var[2] = {0.3, 2.0};
    cm_gaussian_map g = {2, mean, var, 0.05, 0.1, 0};
    cm_two_time_map map;
    CM_CHECK_OK(cm_two_time_gaussian(&map, &g));
    gauss_ctx ctx = {mean, var, 2};
    cm_denoiser score = {gauss_denoise, &ctx, NULL, 2};
    cm_jhmz_options o = cm_jhmz_options_default();
    o.steps = 3, o.langevin_steps = 4, o.langevin_step = 0.01;
    enum { N = 100 };
    double a[N * 2], b[N * 2];
    CM_CHECK_OK(cm_jhmz_sample(a, &map, &score, &o, N, 5));
    o.langevin_steps = 0;
    CM_CHECK_OK(cm_jhmz_sample(b, &map, NULL, &o, N, 5));
    CM_CHECK_OK(cm_langevin_correct(b, N, &score, o.sigma_end, 4, 0.01, 5, o.steps + 1));
    CM_CHECK(memcmp(a, b, sizeof a) == 0, "Langevin stages differ from cm_jhmz_sample's");
}

const cm_test_case cm_tests_multistep[] = {
    {"gaussian_closed_form_matches_monte_carlo", test_gaussian_closed_form_matches_monte_carlo},
    {"gaussian_error_matches_full_matrix_forms", test_gaussian_error_matches_full_matrix_forms},
    {"exact_chaining_kl_is_prior_kl", test_exact_chaining_kl_is_prior_kl},
    {"law_flow_map_matches_closed_form", test_law_flow_map_matches_closed_form},
    {"two_time_from_zero_model", test_two_time_from_zero_model},
    {"cm_gaussian_by_hand", test_cm_gaussian_by_hand},
    {"level_search_admissible", test_level_search_admissible},
    {"langevin_reaches_discrete_stationary_law", test_langevin_reaches_discrete_stationary_law},
    {"langevin_stages_match_jhmz", test_langevin_stages_match_jhmz},
    {NULL, NULL},
};
