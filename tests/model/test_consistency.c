/* test_consistency.c: the boundary conditions of the [CM] and [LHW] parameterisations (to the
 * bit), their coefficients against the formulas of docs/math.md computed here
 * independently, and the [LHW] VP form as sqrt(abar_1) g(x / sqrt(abar_t), sigma_t). */
#include "cm/consistency.h"

#include <math.h>
#include <string.h>

#include "cm/alloc.h"
#include "nn/mlp.h"
#include "test.h"

enum { B = 16, D = 3 };

typedef struct {
    cm_network *network;
    cm_network_workspace *workspace;
    float *params;
} net;

/* An MLP through the network interface, with large weights. */
static void net_init(net *n, uint64_t seed) {
    cm_network_config config = cm_network_config_default(cm_network_type_default(), D, 1);
    cm_mlp_options *mlp = cm_network_options(&config);
    mlp->width = 16, mlp->depth = 2, mlp->embed = 8, mlp->embed_max_frequency = 100;
    *n = (net){0};
    CM_CHECK_OK(cm_network_create(&n->network, &config));
    if (!n->network) return;
    CM_CHECK_OK(cm_network_workspace_alloc(&n->workspace, n->network, B));
    size_t P = cm_network_param_count(n->network);
    n->params = cm_malloc(P, sizeof(float));
    cm_rng rng;
    cm_rng_init(&rng, seed);
    cm_network_init(n->network, n->params, &rng);
    /* large weights so that F is far from zero: a boundary that holds only because F is small
     * would be caught */
    for (size_t i = 0; i < P; i++) n->params[i] *= 5.0f;
}

static void net_free(net *n) {
    cm_network_workspace_free(n->workspace);
    cm_network_free(n->network);
    cm_free(n->params);
}

static void test_ve_boundary_is_identity_to_the_bit(void) {
    net n;
    net_init(&n, 11);
    float x[B * D], out[B * D], x_in[B * D], F_out[B * D], coef[4 * B];
    cm_rng rng;
    cm_rng_init(&rng, 12);
    for (int i = 0; i < B * D; i++) x[i] = (float)(10 * cm_rng_normal(&rng));
    for (int b = 0; b < B; b++) cm_coefficient_rows_store(cm_coefficient_rows_view(coef, B, 1), (size_t)b, cm_consistency_ve(0.002, 0.5, 0.002));
    cm_consistency_forward(out, x_in, F_out, n.network, n.params, n.workspace, x,
                           cm_coefficient_rows_view(coef, B, 1), B);
    CM_CHECK(memcmp(out, x, sizeof x) == 0, "f(x, sigma_min) != x bitwise");
    int F_nonzero = 0;
    for (int i = 0; i < B * D; i++) F_nonzero += F_out[i] != 0;
    CM_CHECK(F_nonzero > 0, "F is zero: the test would not detect a leak of F");
    net_free(&n);
}

static void test_lhw_boundary_is_identity_to_the_bit(void) {
    net n;
    net_init(&n, 13);
    const size_t Ts[] = {2, 50, 1000};
    for (int k = 0; k < 3; k++) {
        cm_lhw_schedule s;
        CM_CHECK_OK(cm_lhw_schedule_init(&s, Ts[k], 2, 4));
        cm_coefficients c = cm_consistency_lhw(&s, 1, 0.5);
        CM_CHECK(c.skip == 1.0 && c.out == 0.0, "T=%zu: skip %.17g out %.17g at t = 1", Ts[k], c.skip, c.out);
        float x[B * D], out[B * D], x_in[B * D], F_out[B * D], coef[4 * B];
        cm_rng rng;
        cm_rng_init(&rng, 14 + k);
        for (int i = 0; i < B * D; i++) x[i] = (float)(3 * cm_rng_normal(&rng));
        for (int b = 0; b < B; b++) cm_coefficient_rows_store(cm_coefficient_rows_view(coef, B, 1), (size_t)b, c);
        cm_consistency_forward(out, x_in, F_out, n.network, n.params, n.workspace, x,
                           cm_coefficient_rows_view(coef, B, 1), B);
        CM_CHECK(memcmp(out, x, sizeof x) == 0, "T=%zu: f(x, 1) != x bitwise", Ts[k]);
        cm_lhw_schedule_free(&s);
    }
    net_free(&n);
}

static void test_ve_coefficients_by_formula(void) {
    const double sd = 0.5, smin = 0.002, sigmas[] = {0.002, 0.01, 0.5, 1, 80};
    for (int i = 0; i < 5; i++) {
        double s = sigmas[i];
        cm_coefficients c = cm_consistency_ve(s, sd, smin);
        CM_CHECK_CLOSE(c.skip, 0.25 / ((s - smin) * (s - smin) + 0.25), 1e-15, "c_skip");
        CM_CHECK_CLOSE(c.out, 0.5 * (s - smin) / sqrt(0.25 + s * s), 1e-15, "c_out");
        CM_CHECK_CLOSE(c.in, 1 / sqrt(s * s + 0.25), 1e-15, "c_in");
        CM_CHECK_CLOSE(c.c_noise, 0.25 * log(s), 1e-15, "c_noise");
    }
}

static void test_lhw_form_is_scaled_ve_form(void) {
    /* f(x, t) = sqrt(abar_1) g(x / sqrt(abar_t), sigma_t), g with sigma_min = sigma_1 */
    cm_lhw_schedule s;
    CM_CHECK_OK(cm_lhw_schedule_init(&s, 100, 2, 4));
    const size_t ts[] = {2, 10, 57, 100};
    for (int k = 0; k < 4; k++) {
        size_t t = ts[k];
        double abar1 = exp(s.log_abar[1]), abart = exp(s.log_abar[t]);
        cm_coefficients ve = cm_consistency_ve(s.sigma[t], 0.5, s.sigma[1]);
        cm_coefficients vp = cm_consistency_lhw(&s, t, 0.5);
        /* for x and F: sqrt(abar1) (ve.skip x / sqrt(abart) + ve.out F(ve.in x / sqrt(abart))) */
        CM_CHECK_CLOSE(vp.skip, sqrt(abar1) * ve.skip / sqrt(abart), 1e-12 * vp.skip, "skip");
        CM_CHECK_CLOSE(vp.out, sqrt(abar1) * ve.out, 1e-15, "out");
        CM_CHECK_CLOSE(vp.in, ve.in / sqrt(abart), 1e-12 * vp.in, "in");
        CM_CHECK(vp.c_noise == ve.c_noise, "c_noise");
    }
    cm_lhw_schedule_free(&s);
}

const cm_test_case cm_tests_consistency[] = {
    {"ve_boundary_is_identity_to_the_bit", test_ve_boundary_is_identity_to_the_bit},
    {"lhw_boundary_is_identity_to_the_bit", test_lhw_boundary_is_identity_to_the_bit},
    {"ve_coefficients_by_formula", test_ve_coefficients_by_formula},
    {"lhw_form_is_scaled_ve_form", test_lhw_form_is_scaled_ve_form},
    {NULL, NULL},
};
