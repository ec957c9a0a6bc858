/* test_schedule.c: the [LHW] schedule's properties (docs/math.md), the Karras grid's ends
 * and monotonicity, VP <-> VE conversion, computed independently here. */
#include "cm/schedule.h"

#include <math.h>

#include "cm/status.h"
#include "test.h"

static void test_lhw_first_betas_by_hand(void) {
    cm_lhw_schedule s;
    CM_CHECK_OK(cm_lhw_schedule_init(&s, 100, 2.0, 4.0));
    /* beta_1 = 100^-2; beta_2 = (4 log 100 / 100) * 1e-4 * (1 + 4 log 100 / 100) */
    double rate = 4.0 * log(100.0) / 100.0;
    CM_CHECK_CLOSE(s.beta[1], 1e-4, 1e-18, "beta_1");
    CM_CHECK_CLOSE(s.beta[2], rate * 1e-4 * (1 + rate), 1e-18, "beta_2");
    CM_CHECK_CLOSE(s.beta[100], rate, 1e-15, "beta_T saturates at c1 log T / T");
    /* abar by direct product */
    double abar = 1.0;
    for (size_t t = 1; t <= 100; t++) abar *= 1.0 - s.beta[t];
    CM_CHECK(fabs(exp(s.log_abar[100]) / abar - 1.0) < 1e-12, "abar_T %g vs product %g",
             exp(s.log_abar[100]), abar);
    cm_lhw_schedule_free(&s);
}

static void test_lhw_properties(void) {
    const size_t Ts[] = {10, 100, 1000, 10000};
    for (size_t i = 0; i < 4; i++) {
        size_t T = Ts[i];
        double c0 = 2, c1 = 4;
        cm_lhw_schedule s;
        CM_CHECK_OK(cm_lhw_schedule_init(&s, T, c0, c1));
        double bound = c1 * log((double)T) / (double)T;
        for (size_t t = 2; t <= T; t++) {
            CM_CHECK(s.beta[t] <= bound * (1 + 1e-12), "T=%zu beta_%zu = %g > c1 log T / T = %g", T,
                     t, s.beta[t], bound);
            /* (1 - alpha_t) / (1 - abar_{t-1}) <= 4 c1 log T / T */
            double ratio = s.beta[t] / s.one_minus_abar[t - 1];
            CM_CHECK(ratio <= 4 * bound, "T=%zu t=%zu ratio %g > 4 c1 log T / T = %g", T, t, ratio,
                     4 * bound);
            CM_CHECK(s.sigma[t] > s.sigma[t - 1], "sigma not increasing at t=%zu", t);
        }
        /* abar_T of order T^-(c1 - c0): log abar_T / log T within a constant band of -(c1 - c0) */
        double order = s.log_abar[T] / log((double)T);
        CM_CHECK(order < -(c1 - c0) + 1.0 && order > -(c1 - c0) - 3.0,
                 "T=%zu: log abar_T / log T = %g, expected near %g", T, order, -(c1 - c0));
        /* 1 - abar_1 = beta_1 exactly in log space, no cancellation */
        CM_CHECK(fabs(s.one_minus_abar[1] / s.beta[1] - 1) < 1e-14, "1 - abar_1 lost digits: %g vs %g",
                 s.one_minus_abar[1], s.beta[1]);
        cm_lhw_schedule_free(&s);
    }
}

static void test_lhw_rejects_bad_arguments(void) {
    cm_lhw_schedule s;
    CM_CHECK(cm_lhw_schedule_init(&s, 1, 2, 4) == CM_ERR_INVALID, "T = 1 accepted");
    CM_CHECK(cm_lhw_schedule_init(&s, 100, 0, 4) == CM_ERR_INVALID, "c0 = 0 accepted");
    CM_CHECK(cm_lhw_schedule_init(&s, 100, 2, NAN) == CM_ERR_INVALID, "c1 = NaN accepted");
    /* c1 log T / T >= 1 makes alpha_t <= 0 */
    CM_CHECK(cm_lhw_schedule_init(&s, 3, 2, 40) == CM_ERR_INVALID, "beta >= 1 accepted");
}

static void test_karras_grid(void) {
    double grid[18];
    CM_CHECK_OK(cm_karras_grid(grid, 18, 0.002, 80, 7));
    CM_CHECK(grid[0] == 0.002 && grid[17] == 80.0, "ends %g %g", grid[0], grid[17]);
    for (int i = 1; i < 18; i++) CM_CHECK(grid[i] > grid[i - 1], "not increasing at %d", i);
    /* a middle value by hand: i = 1, N = 2 with rho = 1 is the linear interpolation */
    double two[3];
    CM_CHECK_OK(cm_karras_grid(two, 3, 1.0, 3.0, 1.0));
    CM_CHECK_CLOSE(two[1], 2.0, 1e-15, "rho = 1 midpoint");
    /* rho = 7, N = 3: ((0.002^(1/7) + 80^(1/7)) / 2)^7 */
    double mid = pow((pow(0.002, 1.0 / 7) + pow(80.0, 1.0 / 7)) / 2, 7);
    CM_CHECK_OK(cm_karras_grid(two, 3, 0.002, 80, 7));
    CM_CHECK_CLOSE(two[1], mid, 1e-13 * mid, "rho = 7 midpoint");
    CM_CHECK(cm_karras_grid(two, 1, 0.002, 80, 7) == CM_ERR_INVALID, "N = 1 accepted");
    CM_CHECK(cm_karras_grid(two, 3, 80, 0.002, 7) == CM_ERR_INVALID, "min > max accepted");
}

static void test_ddpm_linear(void) {
    double betas[11];
    CM_CHECK_OK(cm_ddpm_linear_betas(betas, 10, 1e-4, 0.02));
    CM_CHECK_CLOSE(betas[1], 1e-4, 1e-18, "first");
    CM_CHECK_CLOSE(betas[10], 0.02, 1e-16, "last");
    CM_CHECK_CLOSE(betas[5], 1e-4 + 4.0 / 9 * (0.02 - 1e-4), 1e-16, "fifth");
}

static void test_vp_ve_conversion(void) {
    const double sigmas[] = {1e-6, 0.002, 0.5, 1, 80, 1e4};
    for (int i = 0; i < 6; i++) {
        double log_abar = cm_ve_to_vp_log_abar(sigmas[i]);
        CM_CHECK_CLOSE(exp(log_abar), 1.0 / (1 + sigmas[i] * sigmas[i]), 1e-15, "abar");
        double back = cm_vp_to_ve_sigma(log_abar);
        CM_CHECK(fabs(back / sigmas[i] - 1) < 1e-9, "sigma %g -> %g", sigmas[i], back);
    }
}

const cm_test_case cm_tests_schedule[] = {
    {"lhw_first_betas_by_hand", test_lhw_first_betas_by_hand},
    {"lhw_properties", test_lhw_properties},
    {"lhw_rejects_bad_arguments", test_lhw_rejects_bad_arguments},
    {"karras_grid", test_karras_grid},
    {"ddpm_linear", test_ddpm_linear},
    {"vp_ve_conversion", test_vp_ve_conversion},
    {NULL, NULL},
};
