/* test_train.c: curricula by hand, the stop-gradient of the teacher, reproducibility to the
 * bit, the non-finite guard, the sequential stages, and an end-to-end quality bound (slow; not
 * run when CM_FAST=1). */
#include "cm/train.h"
#include "train/testing.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/evaluate.h"
#include "cm/io.h"
#include "cm/sampler.h"
#include "test.h"

/* Bounds of the end-to-end test, as multiples of the noise floor: measured 6.0 (one step) and
 * 4.3 (two steps) with seed 1 at sigma_max 10 (seed 2: 6.0 and 4.2), plus a margin for other
 * BLAS kernels. An untrained network measures 62, a collapsed one (every sample at the mean) 63. */
#define E2E_ONE_STEP_BOUND 10
#define E2E_TWO_STEP_BOUND 5.5

static void test_curricula_by_hand(void) {
    CM_CHECK(cm_ct_levels(0, 1000, 2, 150) == 2, "CT N(0) = %zu", cm_ct_levels(0, 1000, 2, 150));
    CM_CHECK(cm_ct_levels(1000, 1000, 2, 150) == 151, "CT N(K) = %zu", cm_ct_levels(1000, 1000, 2, 150));
    /* k = K/2: ceil(sqrt(0.5 (151^2 - 4) + 4) - 1) + 1 = ceil(106.79 - 1) + 1 = 107 */
    CM_CHECK(cm_ct_levels(500, 1000, 2, 150) == 107, "CT N(K/2) = %zu", cm_ct_levels(500, 1000, 2, 150));
    CM_CHECK_CLOSE(cm_ct_target_decay(2, 2, 0.9), 0.9, 1e-15, "mu at N = 2");
    CM_CHECK_CLOSE(cm_ct_target_decay(150, 2, 0.9), exp(2 * log(0.9) / 150), 1e-15, "mu at N = 150");
    /* iCT, K = 8000: K' = floor(8000 / (log2(128) + 1)) = 1000 */
    CM_CHECK(cm_ict_levels(0, 8000, 10, 1280) == 11, "iCT N(0)");
    CM_CHECK(cm_ict_levels(999, 8000, 10, 1280) == 11, "iCT N(999)");
    CM_CHECK(cm_ict_levels(1000, 8000, 10, 1280) == 21, "iCT N(1000)");
    CM_CHECK(cm_ict_levels(6999, 8000, 10, 1280) == 641, "iCT N(6999)");
    CM_CHECK(cm_ict_levels(7000, 8000, 10, 1280) == 1281, "iCT N(7000)");
    CM_CHECK(cm_ict_levels(1000000, 8000, 10, 1280) == 1281, "iCT N capped at s1 + 1");
}

static void test_lognormal_probabilities(void) {
    double sigma[4] = {0.01, 0.1, 1.0, 10.0}, p[3];
    cm_ict_level_probabilities(p, sigma, 4, -1.1, 2.0);
    double z[4], total = 0;
    for (int i = 0; i < 4; i++) z[i] = erf((log(sigma[i]) + 1.1) / (2.0 * sqrt(2.0)));
    for (int i = 0; i < 3; i++) total += z[i + 1] - z[i];
    for (int i = 0; i < 3; i++)
        CM_CHECK_CLOSE(p[i], (z[i + 1] - z[i]) / total, 1e-15, "interval probability");
    CM_CHECK(p[1] > p[0] && p[1] > p[2], "mode not in the interval containing exp(-1.1)");
}

static cm_train_config small_config(cm_method method) {
    cm_train_config c = cm_train_config_default(method, 2);
    CM_TEST_MLP(c)->width = 32;
    CM_TEST_MLP(c)->depth = 2;
    c.batch = 64;
    c.steps = 40;
    c.method.chain_T = 20;
    c.seed = 5;
    return c;
}

/* The gradient treats the teacher's output as a constant: it matches finite differences of the
 * loss with the teacher's weights frozen, and not those of the loss with the teacher moving
 * with the student (which is what a missing stop-gradient would compute). */
static void test_teacher_receives_no_gradient(void) {
    const cm_method methods[] = {CM_METHOD_ICT, CM_METHOD_LHW};
    for (int m = 0; m < 2; m++) {
        cm_data *data;
        CM_CHECK_OK(cm_data_open(&data, "moons"));
        cm_train_config config = small_config(methods[m]);
        cm_trainer *trainer;
        CM_CHECK_OK(cm_trainer_init(&trainer, &config, data));
        size_t P = cm_model_param_count(cm_trainer_model(trainer)), k = 3;
        float *grad = cm_malloc(P, sizeof(float)), *student = cm_malloc(P, sizeof(float));
        float *frozen = cm_malloc(P, sizeof(float));
        double loss;
        CM_CHECK_OK(cm_trainer_batch_gradient(trainer, k, &loss, grad));
        memcpy(frozen, cm_trainer_params(trainer), P * sizeof(float));
        /* the 8 largest gradient entries */
        size_t picked[8] = {0};
        for (int j = 0; j < 8; j++) {
            double best = -1;
            for (size_t i = 0; i < P; i++) {
                int taken = 0;
                for (int q = 0; q < j; q++) taken |= picked[q] == i;
                if (!taken && fabs(grad[i]) > best) best = fabs(grad[i]), picked[j] = i;
            }
        }
        int differs_from_full = 0;
        for (int j = 0; j < 8; j++) {
            size_t i = picked[j];
            double h = 1e-3 * fmax(1.0, fabs(frozen[i]));
            memcpy(student, frozen, P * sizeof(float));
            float plus = (float)(frozen[i] + h), minus = (float)(frozen[i] - h);
            double lp, lm, mp, mm;
            student[i] = plus;
            cm_trainer_batch_loss(trainer, k, student, frozen, &lp);
            cm_trainer_batch_loss(trainer, k, student, student, &mp);
            student[i] = minus;
            cm_trainer_batch_loss(trainer, k, student, frozen, &lm);
            cm_trainer_batch_loss(trainer, k, student, student, &mm);
            double width = (double)plus - (double)minus;
            double numeric_fixed = (lp - lm) / width, numeric_moving = (mp - mm) / width;
            CM_CHECK(fabs(grad[i] - numeric_fixed) <= 0.02 * fabs(grad[i]) + 1e-6,
                     "%s param %zu: gradient %.6g vs FD with frozen teacher %.6g",
                     cm_method_name(methods[m]), i, grad[i], numeric_fixed);
            if (fabs(grad[i] - numeric_moving) > 0.1 * fabs(grad[i])) differs_from_full++;
        }
        CM_CHECK(differs_from_full >= 4,
                 "%s: the gradient also matches the loss with a moving teacher (%d of 8 differ): "
                 "the test cannot tell a stop-gradient",
                 cm_method_name(methods[m]), differs_from_full);
        cm_free(grad);
        cm_free(student);
        cm_free(frozen);
        cm_trainer_free(trainer);
        cm_data_free(data);
    }
}

static void run_steps(cm_trainer *trainer, size_t steps) {
    for (size_t k = 0; k < steps; k++) CM_CHECK_OK(cm_trainer_step(trainer, NULL));
}

static void test_same_seed_bit_identical(void) {
    const cm_method methods[] = {CM_METHOD_ICT, CM_METHOD_CT, CM_METHOD_LHW};
    for (int m = 0; m < 3; m++) {
        cm_data *data;
        CM_CHECK_OK(cm_data_open(&data, "8gaussians"));
        cm_train_config config = small_config(methods[m]);
        cm_trainer *a, *b;
        CM_CHECK_OK(cm_trainer_init(&a, &config, data));
        CM_CHECK_OK(cm_trainer_init(&b, &config, data));
        run_steps(a, 25);
        run_steps(b, 25);
        size_t P = cm_model_param_count(cm_trainer_model(a));
        CM_CHECK(memcmp(cm_trainer_params(a), cm_trainer_params(b), P * sizeof(float)) == 0,
                 "%s: same seed, different weights", cm_method_name(methods[m]));
        CM_CHECK(memcmp(cm_trainer_model(a)->params, cm_trainer_model(b)->params, P * sizeof(float)) == 0,
                 "%s: same seed, different EMA", cm_method_name(methods[m]));
        /* a different seed gives different weights */
        config.seed = 6;
        cm_trainer *c;
        CM_CHECK_OK(cm_trainer_init(&c, &config, data));
        run_steps(c, 25);
        CM_CHECK(memcmp(cm_trainer_params(a), cm_trainer_params(c), P * sizeof(float)) != 0,
                 "%s: seed ignored", cm_method_name(methods[m]));
        cm_trainer_free(a);
        cm_trainer_free(b);
        cm_trainer_free(c);
        cm_data_free(data);
    }
}

static void test_nonfinite_loss_stops_without_update(void) {
    cm_data *data;
    CM_CHECK_OK(cm_data_open(&data, "moons"));
    cm_train_config config = small_config(CM_METHOD_ICT);
    config.optimizer.learning_rate = 1e30; /* drives the weights to overflow within a few steps */
    config.steps = 100;
    cm_trainer *trainer;
    CM_CHECK_OK(cm_trainer_init(&trainer, &config, data));
    size_t P = cm_model_param_count(cm_trainer_model(trainer));
    float *before = cm_malloc(P, sizeof(float));
    cm_status status = CM_OK;
    size_t k;
    for (k = 0; k < 100 && status == CM_OK; k++) {
        memcpy(before, cm_trainer_params(trainer), P * sizeof(float));
        status = cm_trainer_step(trainer, NULL);
    }
    CM_CHECK(status == CM_ERR_NONFINITE, "status %s after %zu steps", cm_status_name(status), k);
    CM_CHECK(strstr(cm_error_detail(), "step ") != NULL, "detail does not name the step: %s",
             cm_error_detail());
    CM_CHECK(memcmp(before, cm_trainer_params(trainer), P * sizeof(float)) == 0,
             "weights changed by the failing step");
    CM_CHECK(cm_trainer_steps_done(trainer) == k - 1, "step counter advanced on failure");
    cm_free(before);
    cm_trainer_free(trainer);
    cm_data_free(data);
}

static void test_sequential_stages_in_order(void) {
    cm_data *data;
    CM_CHECK_OK(cm_data_open(&data, "moons"));
    cm_train_config config = small_config(CM_METHOD_LHW);
    config.method.teacher = CM_TEACHER_SEQUENTIAL;
    config.method.chain_T = 11;
    config.steps = 30; /* 10 stages of 3 steps */
    cm_trainer *trainer;
    CM_CHECK_OK(cm_trainer_init(&trainer, &config, data));
    size_t expected = 2;
    for (size_t k = 0; k < 30; k++) {
        cm_train_report report;
        CM_CHECK_OK(cm_trainer_step(trainer, &report));
        expected = 2 + k * 10 / 30;
        CM_CHECK(report.levels == expected, "step %zu: stage %zu, expected %zu", k, report.levels, expected);
    }
    CM_CHECK(expected == 11, "last stage %zu is not T", expected);
    cm_trainer_free(trainer);
    cm_data_free(data);
}

/* A training step allocates nothing through the library's wrapper: with every allocation made
 * to fail, steps still succeed. */
static void test_step_allocates_nothing(void) {
    const cm_method methods[] = {CM_METHOD_ICT, CM_METHOD_CT, CM_METHOD_LHW};
    for (int m = 0; m < 3; m++) {
        cm_data *data;
        CM_CHECK_OK(cm_data_open(&data, "moons"));
        cm_train_config config = small_config(methods[m]);
        cm_trainer *trainer;
        CM_CHECK_OK(cm_trainer_init(&trainer, &config, data));
        long live = cm_alloc_live_count();
        cm_alloc_fail_after(0);
        for (int k = 0; k < 5; k++) CM_CHECK_OK(cm_trainer_step(trainer, NULL));
        cm_alloc_fail_after(-1);
        CM_CHECK(cm_alloc_live_count() == live, "%s: steps changed the live allocation count",
                 cm_method_name(methods[m]));
        cm_trainer_free(trainer);
        cm_data_free(data);
    }
}

static void test_dimension_mismatch_rejected(void) {
    cm_data *data;
    CM_CHECK_OK(cm_data_open(&data, "gauss:d=3"));
    cm_train_config config = small_config(CM_METHOD_ICT); /* dim 2 */
    cm_trainer *trainer;
    CM_CHECK(cm_trainer_init(&trainer, &config, data) == CM_ERR_DIMENSION, "dimension mismatch accepted");
    cm_data_free(data);
}

/* End to end with the shipped defaults except the step count: train [iCT] on 8gaussians,
 * sample in one and two steps, and bound the sliced W1 by a multiple of the noise floor. The
 * bounds come from measurements (docs/training.md) with a margin. */
static void test_end_to_end_quality(void) {
    if (getenv("CM_FAST")) return;
    cm_data *data;
    CM_CHECK_OK(cm_data_open(&data, "8gaussians"));
    cm_train_config config = cm_train_config_default(CM_METHOD_ICT, 2);
    config.steps = 4000;
    config.seed = cm_test_seed(1);
    cm_trainer *trainer;
    CM_CHECK_OK(cm_trainer_init(&trainer, &config, data));
    run_steps(trainer, config.steps);
    const cm_model *model = cm_trainer_model(trainer);
    enum { N = 5000 };
    double *x = cm_malloc(N * 2, sizeof(double));
    cm_evaluation one, two;
    CM_CHECK_OK(cm_sample(x, model, NULL, 0, N, 2));
    CM_CHECK_OK(cm_evaluate(&one, x, N, 2, data, 256, 3));
    double levels[2] = {config.method.sigma_max, 0.8};
    CM_CHECK_OK(cm_sample(x, model, levels, 2, N, 2));
    CM_CHECK_OK(cm_evaluate(&two, x, N, 2, data, 256, 3));
    printf("    8gaussians iCT 4000 steps: one-step SW1 %.4g, two-step %.4g, floor %.4g\n",
           one.sliced_w1, two.sliced_w1, one.sliced_w1_floor);
    CM_CHECK(one.sliced_w1 < E2E_ONE_STEP_BOUND * one.sliced_w1_floor, "one-step SW1 %g > %g x floor %g",
             one.sliced_w1, (double)E2E_ONE_STEP_BOUND, one.sliced_w1_floor);
    CM_CHECK(two.sliced_w1 < E2E_TWO_STEP_BOUND * two.sliced_w1_floor, "two-step SW1 %g > %g x floor %g",
             two.sliced_w1, (double)E2E_TWO_STEP_BOUND, two.sliced_w1_floor);
    CM_CHECK(two.sliced_w1 < one.sliced_w1, "two steps (%g) are not better than one (%g)",
             two.sliced_w1, one.sliced_w1);
    cm_free(x);
    cm_trainer_free(trainer);
    cm_data_free(data);
}

/* Every row's draws are addressed by its global index: the batch of a step (inputs and levels)
 * is the same whatever the block count; the loss and gradient differ only by the order of the
 * sums (tree over blocks), to float rounding; and a process that owns only some blocks draws
 * exactly those rows of the whole batch (a communicator that says so). */
static void test_rows_do_not_depend_on_blocks(void) {
    const cm_method methods[] = {CM_METHOD_ICT, CM_METHOD_CT, CM_METHOD_DSM, CM_METHOD_LHW};
    enum { B = 60, D = 2 };
    static float inputs[2][2][B * D];
    static double sigma[2][2][B];
    for (int m = 0; m < 4; m++) {
        cm_data *data;
        CM_CHECK_OK(cm_data_open(&data, "moons"));
        double loss[2];
        float *grad[2] = {NULL, NULL};
        for (int v = 0; v < 2; v++) {
            cm_train_config config = small_config(methods[m]);
            config.batch = B;
            config.blocks = v ? 7 : 1;
            cm_trainer *trainer = NULL;
            CM_CHECK_OK(cm_trainer_init(&trainer, &config, data));
            if (!trainer) continue;
            size_t P = cm_model_param_count(cm_trainer_model(trainer));
            grad[v] = cm_malloc(P, sizeof(float));
            CM_CHECK_OK(cm_trainer_batch_inputs(trainer, 5, inputs[v][0], inputs[v][1],
                                                sigma[v][0], sigma[v][1], NULL));
            CM_CHECK_OK(cm_trainer_batch_gradient(trainer, 5, &loss[v], grad[v]));
            if (v && grad[0] && grad[1]) {
                double worst = 0, scale = 0;
                for (size_t i = 0; i < P; i++) scale = fmax(scale, fabs(grad[0][i]));
                for (size_t i = 0; i < P; i++) worst = fmax(worst, fabs(grad[0][i] - grad[1][i]));
                CM_CHECK(worst <= 1e-5 * scale, "%s: gradients of 1 and 7 blocks differ by %g of %g",
                         cm_method_name(methods[m]), worst, scale);
            }
            cm_trainer_free(trainer);
        }
        CM_CHECK(memcmp(inputs[0][0], inputs[1][0], sizeof inputs[0][0]) == 0 &&
                     memcmp(sigma[0][0], sigma[1][0], sizeof sigma[0][0]) == 0,
                 "%s: the student rows depend on the block count", cm_method_name(methods[m]));
        if (methods[m] != CM_METHOD_DSM)
            CM_CHECK(memcmp(inputs[0][1], inputs[1][1], sizeof inputs[0][1]) == 0 &&
                         memcmp(sigma[0][1], sigma[1][1], sizeof sigma[0][1]) == 0,
                     "%s: the teacher rows depend on the block count", cm_method_name(methods[m]));
        CM_CHECK(fabs(loss[0] - loss[1]) <= 1e-6 * fabs(loss[0]), "%s: loss %.9g vs %.9g",
                 cm_method_name(methods[m]), loss[0], loss[1]);
        cm_free(grad[0]);
        cm_free(grad[1]);
        cm_data_free(data);
    }
}

const cm_test_case cm_tests_train[] = {
    {"rows_do_not_depend_on_blocks", test_rows_do_not_depend_on_blocks},
    {"curricula_by_hand", test_curricula_by_hand},
    {"lognormal_probabilities", test_lognormal_probabilities},
    {"teacher_receives_no_gradient", test_teacher_receives_no_gradient},
    {"same_seed_bit_identical", test_same_seed_bit_identical},
    {"nonfinite_loss_stops_without_update", test_nonfinite_loss_stops_without_update},
    {"sequential_stages_in_order", test_sequential_stages_in_order},
    {"step_allocates_nothing", test_step_allocates_nothing},
    {"dimension_mismatch_rejected", test_dimension_mismatch_rejected},
    {"end_to_end_quality", test_end_to_end_quality},
    {NULL, NULL},
};
