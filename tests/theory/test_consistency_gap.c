/* test_consistency_gap.c: cm_consistency_gap_ve (learned.h). A zero-weight VE model is
 * f(x, sigma) = skip(sigma) x exactly (F = 0: the MLP's zero weights, the U-Net's zero output
 * conv), so the gap between levels a < b on the documented draws (x0 from the EVAL stream,
 * standardised; z from the NOISE stream) is the mean of ||(k_b - k_a) x0 + (k_b b - k_a a) z||,
 * computed here from the same streams: checked to float rounding for ict and cd2 MLPs on a
 * Gaussian and an ict U-Net on 8 x 8 shapes; its expectation sd sqrt(2 / pi) in 1-D within 5
 * standard errors; the exact consistency function of N(m, v) in VE units,
 * m + sqrt((v + smin^2) / (v + s^2)) (x - m), against gap_exact; NaN without a law; refusals. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cm/data.h"
#include "cm/law.h"
#include "cm/learned.h"
#include "cm/model.h"
#include "cm/schedule.h"
#include "test.h"

#define LEVELS 6
#define PI 3.14159265358979323846

/* The draws the gap uses: x0 (standardised) and z, n x D each. */
static void same_draws(double *x0, double *z, const cm_model *model, const cm_data *data,
                       size_t n, uint64_t seed) {
    cm_rng root, draws, noise;
    cm_rng_init(&root, seed);
    cm_rng_fork(&draws, &root, CM_STREAM_EVAL);
    cm_rng_fork(&noise, &root, CM_STREAM_NOISE);
    cm_data_sample(data, &draws, n, x0);
    cm_transform_apply(&model->transform, x0, n);
    cm_rng_normal_fill_f64(&noise, z, n * model->config.network.dim);
}

/* The mean over rows of ||kx x0 + kz z||. */
static double mean_norm(const double *x0, const double *z, double kx, double kz, size_t n,
                        size_t D) {
    double sum = 0.0;
    for (size_t r = 0; r < n; r++) {
        double q = 0.0;
        for (size_t i = 0; i < D; i++) {
            double e = kx * x0[r * D + i] + kz * z[r * D + i];
            q += e * e;
        }
        sum += sqrt(q);
    }
    return sum / (double)n;
}

/* A zero-weight model of `method` on `source`: every gap against the same draws. */
static void check_zero_model(cm_method method, const char *type_name, const char *source,
                             size_t n, uint64_t seed) {
    cm_data *data = NULL;
    CM_CHECK_OK(cm_data_open(&data, source));
    if (!data) return;
    size_t D = cm_data_dim(data);
    cm_train_config config =
        cm_train_config_default_network(method, cm_network_type_find(type_name), D);
    cm_data_image_shape(data, &config.network.image_channels, &config.network.image_height,
                        &config.network.image_width);
    if (config.network.image_channels) {
        CM_CHECK_OK(cm_network_config_set(&config.network, "base_channels", 8));
        CM_CHECK_OK(cm_network_config_set(&config.network, "groups", 2));
        CM_CHECK_OK(cm_network_config_set(&config.network, "res_blocks", 1));
    }
    cm_model model;
    CM_CHECK_OK(cm_model_init(&model, &config));
    cm_transform_free(&model.transform);
    if (cm_data_has_fixed_transform(data)) CM_CHECK_OK(cm_data_fixed_transform(&model.transform, data));
    else {
        CM_CHECK_OK(cm_transform_identity(&model.transform, D));
        for (size_t i = 0; i < D; i++) model.transform.shift[i] = 3.0, model.transform.scale[i] = 4.0;
    }
    double levels[LEVELS], gap[LEVELS - 1], se[LEVELS - 1], exact[LEVELS - 1];
    CM_CHECK_OK(cm_karras_grid(levels, LEVELS, config.method.sigma_min, config.method.sigma_max,
                               config.method.rho));
    CM_CHECK_OK(cm_consistency_gap_ve(gap, se, exact, &model, data, NULL, levels, LEVELS, n, seed));
    double *x0 = malloc(2 * n * D * sizeof(double)), *z = x0 ? x0 + n * D : NULL;
    if (x0) same_draws(x0, z, &model, data, n, seed);
    for (size_t i = 0; x0 && i + 1 < LEVELS; i++) {
        double a = levels[i], b = levels[i + 1];
        double ka = cm_model_coefficients(&model, a).skip, kb = cm_model_coefficients(&model, b).skip;
        double expected = mean_norm(x0, z, kb - ka, kb * b - ka * a, n, D);
        CM_CHECK_CLOSE(gap[i], expected, 1e-6 * expected, "gap of the zero model");
        CM_CHECK(se[i] > 0 && se[i] < gap[i], "standard error %g of %g", se[i], gap[i]);
        CM_CHECK(isnan(exact[i]), "no law: the exact gap is NaN (%g)", exact[i]);
    }
    printf("    %s %s on %s: gap %.4g .. %.4g\n", cm_method_name(method), type_name, source,
           gap[0], gap[LEVELS - 2]);
    free(x0);
    cm_model_free(&model);
    cm_data_free(data);
}

static void test_zero_models(void) {
    uint64_t seed = cm_test_seed(21);
    check_zero_model(CM_METHOD_ICT, "mlp", "gauss:d=3,mean=3,std=2", 300, seed);
    check_zero_model(CM_METHOD_CD2, "mlp", "gauss:d=3,mean=3,std=2", 300, seed);
    check_zero_model(CM_METHOD_ICT, "unet", "shapes:size=8", 40, seed);
}

/* 1-D: N(3, 2^2) standardised by shift 3, scale 4 is N(0, v = 1/4); the zero ict model's gap
 * between a and b is E|N(0, (k_b - k_a)^2 v + (k_b b - k_a a)^2)|, and the exact consistency
 * function r(s) x, r(s) = sqrt((v + smin^2) / (v + s^2)), gives |(r_b - r_a) x0 + (r_b b - r_a a) z|
 * on the same draws (computed here) with the law's flow map. */
static void test_exact_gaussian(void) {
    uint64_t seed = cm_test_seed(22);
    const size_t n = 4000;
    const double mean = 3.0, variance = 4.0, v = 0.25;
    cm_law *law = NULL;
    cm_data *data = NULL;
    CM_CHECK_OK(cm_law_gaussian_diagonal(&law, 1, &mean, &variance));
    CM_CHECK_OK(cm_data_open(&data, "gauss:d=1,mean=3,std=2"));
    cm_train_config config = cm_train_config_default(CM_METHOD_ICT, 1);
    cm_model model;
    CM_CHECK_OK(cm_model_init(&model, &config));
    if (!law || !data || !model.params) return;
    model.transform.shift[0] = 3.0, model.transform.scale[0] = 4.0;
    double levels[LEVELS], gap[LEVELS - 1], se[LEVELS - 1], exact[LEVELS - 1];
    double smin = config.method.sigma_min;
    CM_CHECK_OK(cm_karras_grid(levels, LEVELS, smin, config.method.sigma_max, config.method.rho));
    CM_CHECK_OK(cm_consistency_gap_ve(gap, se, exact, &model, data, law, levels, LEVELS, n, seed));
    double *x0 = malloc(2 * n * sizeof(double)), *z = x0 ? x0 + n : NULL;
    if (x0) same_draws(x0, z, &model, data, n, seed);
    for (size_t i = 0; x0 && i + 1 < LEVELS; i++) {
        double a = levels[i], b = levels[i + 1];
        double ka = cm_model_coefficients(&model, a).skip, kb = cm_model_coefficients(&model, b).skip;
        double sd = sqrt((kb - ka) * (kb - ka) * v + (kb * b - ka * a) * (kb * b - ka * a));
        double sd_mean = sd * sqrt(1.0 - 2.0 / PI) / sqrt((double)n);
        CM_CHECK_CLOSE(gap[i], sd * sqrt(2.0 / PI), 5.0 * sd_mean, "E|gap| of the zero model");
        CM_CHECK_CLOSE(se[i], sd_mean, 0.1 * sd_mean, "its standard error");
        double ra = sqrt((v + smin * smin) / (v + a * a)), rb = sqrt((v + smin * smin) / (v + b * b));
        double expected = mean_norm(x0, z, rb - ra, rb * b - ra * a, n, 1);
        CM_CHECK_CLOSE(exact[i], expected, 1e-6 * expected, "gap of the exact consistency function");
    }
    printf("    exact gap %.4g .. %.4g, zero model %.4g .. %.4g\n", exact[0], exact[LEVELS - 2],
           gap[0], gap[LEVELS - 2]);
    free(x0);
    cm_model_free(&model);
    cm_data_free(data);
    cm_law_free(law);
}

static void test_refusals(void) {
    cm_data *data = NULL;
    CM_CHECK_OK(cm_data_open(&data, "gauss:d=2"));
    double levels[3] = {0.002, 1, 10}, gap[2], se[2];
    cm_method refused[] = {CM_METHOD_LHW, CM_METHOD_DSM};
    for (size_t k = 0; data && k < 2; k++) {
        cm_train_config config = cm_train_config_default(refused[k], 2);
        cm_model model;
        CM_CHECK_OK(cm_model_init(&model, &config));
        CM_CHECK(cm_consistency_gap_ve(gap, se, NULL, &model, data, NULL, levels, 3, 10, 1) ==
                     CM_ERR_INVALID, "%s refused", cm_method_name(refused[k]));
        cm_model_free(&model);
    }
    cm_train_config config = cm_train_config_default(CM_METHOD_CT, 2);
    cm_model model;
    CM_CHECK_OK(cm_model_init(&model, &config));
    double unsorted[3] = {0.002, 10, 1}, below[3] = {0.001, 1, 10};
    if (data) {
        CM_CHECK(cm_consistency_gap_ve(gap, se, NULL, &model, data, NULL, unsorted, 3, 10, 1) ==
                     CM_ERR_INVALID, "levels not increasing");
        CM_CHECK(cm_consistency_gap_ve(gap, se, NULL, &model, data, NULL, below, 3, 10, 1) ==
                     CM_ERR_INVALID, "a level below sigma_min");
        CM_CHECK(cm_consistency_gap_ve(gap, se, NULL, &model, data, NULL, levels, 1, 10, 1) ==
                     CM_ERR_INVALID, "one level");
        CM_CHECK(cm_consistency_gap_ve(gap, se, NULL, &model, data, NULL, levels, 3, 1, 1) ==
                     CM_ERR_INVALID, "one point");
        CM_CHECK_OK(cm_consistency_gap_ve(gap, se, NULL, &model, data, NULL, levels, 3, 10, 1));
    }
    cm_data *other = NULL;
    CM_CHECK_OK(cm_data_open(&other, "gauss:d=3"));
    if (other)
        CM_CHECK(cm_consistency_gap_ve(gap, se, NULL, &model, other, NULL, levels, 3, 10, 1) ==
                     CM_ERR_DIMENSION, "data of another dimension");
    cm_model_free(&model);
    cm_data_free(other);
    cm_data_free(data);
}

const cm_test_case cm_tests_consistency_gap[] = {
    {"zero_models", test_zero_models},
    {"exact_gaussian", test_exact_gaussian},
    {"refusals", test_refusals},
    {NULL, NULL},
};
