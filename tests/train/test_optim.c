/* test_optim.c: Adam's first steps computed by hand, warm-up, clipping, weight decay, EMA. */
#include "cm/optim.h"

#include <math.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

#include "test.h"

static void test_adam_first_steps_by_hand(void) {
    cm_adam_config config = cm_adam_config_default();
    config.learning_rate = 0.1;
    cm_adam adam;
    CM_CHECK_OK(cm_adam_init(&adam, &config, 2));
    float params[2] = {1.0f, -2.0f}, grad[2] = {0.5f, -3.0f};
    cm_adam_step(&adam, params, grad, cm_gradient_norm(grad, adam.count));
    /* step 1: m_hat = g, v_hat = g^2, update = lr g / (|g| + eps) = lr sign(g) (eps negligible) */
    CM_CHECK_CLOSE(params[0], 1.0 - 0.1 * 0.5 / (0.5 + 1e-8), 1e-6, "param 0 after step 1");
    CM_CHECK_CLOSE(params[1], -2.0 + 0.1 * 3 / (3 + 1e-8), 1e-6, "param 1 after step 1");
    /* step 2 with gradient 1.0 on param 0: m = 0.9*0.05 + 0.1 = 0.145 -> m_hat = 0.145/0.19;
     * v = 0.999*0.00025 + 0.001 = 0.00124975 -> v_hat = v / (1 - 0.999^2) */
    float g2[2] = {1.0f, 0.0f};
    double before = params[0];
    cm_adam_step(&adam, params, g2, cm_gradient_norm(g2, adam.count));
    double m_hat = 0.145 / (1 - 0.81), v_hat = 0.00124975 / (1 - 0.998001);
    CM_CHECK_CLOSE(params[0], before - 0.1 * m_hat / (sqrt(v_hat) + 1e-8), 2e-6, "param 0 after step 2");
    cm_adam_free(&adam);
}

static void test_warmup_and_clipping(void) {
    cm_adam_config config = cm_adam_config_default();
    config.learning_rate = 1.0;
    config.warmup_steps = 4;
    config.clip_norm = 1.0;
    cm_adam adam;
    CM_CHECK_OK(cm_adam_init(&adam, &config, 2));
    CM_CHECK_CLOSE(cm_adam_current_rate(&adam), 0.25, 0, "rate at step 1 of 4");
    float params[2] = {0, 0}, grad[2] = {3, 4};
    double norm = cm_gradient_norm(grad, 2);
    CM_CHECK_CLOSE(norm, 5.0, 1e-12, "gradient norm");
    cm_adam_step(&adam, params, grad, norm);
    CM_CHECK_CLOSE(grad[0], 0.6, 1e-6, "clipped gradient");
    CM_CHECK_CLOSE(cm_adam_current_rate(&adam), 0.5, 0, "rate at step 2 of 4");
    for (int i = 0; i < 5; i++) cm_adam_step(&adam, params, grad, cm_gradient_norm(grad, 2));
    CM_CHECK_CLOSE(cm_adam_current_rate(&adam), 1.0, 0, "rate after warm-up");
    cm_adam_free(&adam);
}

static void test_weight_decay_shrinks_with_zero_gradient(void) {
    cm_adam_config config = cm_adam_config_default();
    config.learning_rate = 0.1;
    config.weight_decay = 0.5;
    cm_adam adam;
    CM_CHECK_OK(cm_adam_init(&adam, &config, 1));
    float p[1] = {2.0f}, g[1] = {0.0f};
    cm_adam_step(&adam, p, g, cm_gradient_norm(g, adam.count));
    CM_CHECK_CLOSE(p[0], 2.0 - 0.1 * 0.5 * 2.0, 1e-6, "decoupled decay");
    cm_adam_free(&adam);
}

static void test_config_checks(void) {
    cm_adam_config c = cm_adam_config_default();
    c.beta1 = 1.0;
    CM_CHECK(cm_adam_config_check(&c) == CM_ERR_INVALID, "beta1 = 1 accepted");
    c = cm_adam_config_default();
    c.learning_rate = NAN;
    CM_CHECK(cm_adam_config_check(&c) == CM_ERR_INVALID, "NaN rate accepted");
}

static void test_cosine_decay(void) {
    cm_adam_config config = cm_adam_config_default();
    config.learning_rate = 1.0;
    config.decay_steps = 4;
    config.final_fraction = 0.1;
    cm_adam adam;
    CM_CHECK_OK(cm_adam_init(&adam, &config, 1));
    float p[1] = {0}, g[1] = {1};
    double expected[6] = {1.0, 0.1 + 0.9 * 0.5 * (1 + cos(M_PI / 4)), 0.55,
                          0.1 + 0.9 * 0.5 * (1 + cos(3 * M_PI / 4)), 0.1, 0.1};
    for (int k = 0; k < 6; k++) {
        CM_CHECK_CLOSE(cm_adam_current_rate(&adam), expected[k], 1e-12, "cosine rate");
        cm_adam_step(&adam, p, g, cm_gradient_norm(g, adam.count));
    }
    cm_adam_free(&adam);
}

static void test_ema(void) {
    float ema[2] = {0, 10}, params[2] = {1, 0};
    cm_ema_update(ema, params, 2, 0.9);
    CM_CHECK_CLOSE(ema[0], 0.1, 1e-7, "ema 0");
    CM_CHECK_CLOSE(ema[1], 9.0, 1e-6, "ema 1");
}

const cm_test_case cm_tests_optim[] = {
    {"adam_first_steps_by_hand", test_adam_first_steps_by_hand},
    {"warmup_and_clipping", test_warmup_and_clipping},
    {"weight_decay_shrinks_with_zero_gradient", test_weight_decay_shrinks_with_zero_gradient},
    {"config_checks", test_config_checks},
    {"cosine_decay", test_cosine_decay},
    {"ema", test_ema},
    {NULL, NULL},
};
