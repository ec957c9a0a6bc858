/* test_bound.c: the terms of [LHW] Theorem 1 and the T of its corollary (suite `bound`).
 * Known answers computed by hand (python3 -c with math.log): rate = C1 L^3 d^2.5 log^5 T / T;
 * the required T solved independently by bisection of 5 log s - s = log(target / (C1 L^3 d^2.5))
 * with s = log T on s >= 5. */
#include <math.h>

#include "cm/bound.h"
#include "test.h"

static void test_terms(void) {
    cm_bound_terms b;
    CM_CHECK_OK(cm_bound_compute(&b, 100, 1, 1, 0, 0, 1));
    CM_CHECK_CLOSE(b.rate, 20.712304481110337, 1e-12 * 20.7, "T 100, d 1, L 1");
    CM_CHECK_OK(cm_bound_compute(&b, 1000, 4, 2, 0.25, 0.5, 1));
    CM_CHECK_CLOSE(b.rate, 4026.4719911278466, 1e-12 * 4026.5, "T 1000, d 4, L 2");
    CM_CHECK_CLOSE(b.total, 4026.4719911278466 + 0.75, 1e-12 * 4027.3, "total adds eps + eps_F");
    CM_CHECK_OK(cm_bound_compute(&b, 50, 16, 1.5, 0, 0, 0.5));
    CM_CHECK_CLOSE(b.rate, 0.5 * 63330.18108780578, 1e-12 * 31665.1, "C1 scales the rate");
    CM_CHECK_CLOSE(cm_bound_rate_shape(CM_BOUND_RATE_PEAK_T), 3125.0 * exp(-5.0), 1e-12,
                   "peak of log^5 T / T is 5^5 e^-5");
}

static void test_required_T(void) {
    double T = 0.0;
    CM_CHECK_OK(cm_bound_required_T(&T, 1.0, 1, 1, 1));
    CM_CHECK_CLOSE(T, 332105.10823636345, 1e-9 * 332105.1, "target 1");
    CM_CHECK(cm_bound_rate_shape(T) <= 1.0 * (1 + 1e-12), "rate at the required T %.17g", T);
    CM_CHECK(cm_bound_rate_shape(T * (1 - 1e-9)) > 1.0, "just below the required T");
    CM_CHECK_OK(cm_bound_required_T(&T, 0.01, 4, 2, 1));
    CM_CHECK_CLOSE(T, 337371761239.0009, 1e-9 * 3.4e11, "target 0.01, d 4, L 2");
    /* above the peak 5^5 e^-5 = 21.056 every T qualifies; just below it, T is past the peak */
    CM_CHECK_OK(cm_bound_required_T(&T, 21.1, 1, 1, 1));
    CM_CHECK(T == 2.0, "target above the peak: %g", T);
    CM_CHECK_OK(cm_bound_required_T(&T, 21.0, 1, 1, 1));
    CM_CHECK(T > CM_BOUND_RATE_PEAK_T && T < 300, "target just below the peak: %g", T);
}

static void test_errors(void) {
    cm_bound_terms b;
    double T;
    CM_CHECK(cm_bound_compute(&b, 1, 1, 1, 0, 0, 1) == CM_ERR_INVALID, "T 1");
    CM_CHECK(cm_bound_compute(&b, NAN, 1, 1, 0, 0, 1) == CM_ERR_INVALID, "T NaN");
    CM_CHECK(cm_bound_compute(&b, 10, 0.5, 1, 0, 0, 1) == CM_ERR_INVALID, "d < 1");
    CM_CHECK(cm_bound_compute(&b, 10, 1, -1, 0, 0, 1) == CM_ERR_INVALID, "L < 0");
    CM_CHECK(cm_bound_compute(&b, 10, 1, 1, -1, 0, 1) == CM_ERR_INVALID, "eps < 0");
    CM_CHECK(cm_bound_compute(&b, 10, 1, 1, 0, INFINITY, 1) == CM_ERR_INVALID, "eps_F inf");
    CM_CHECK(cm_bound_compute(&b, 10, 1, 1, 0, 0, 0) == CM_ERR_INVALID, "C1 0");
    CM_CHECK(cm_bound_compute(&b, 10, 1, 1e200, 0, 0, 1) == CM_ERR_NONFINITE, "overflow");
    CM_CHECK(cm_bound_required_T(&T, 0, 1, 1, 1) == CM_ERR_INVALID, "target 0");
    CM_CHECK(cm_bound_required_T(&T, 1e-300, 1, 1e100, 1) == CM_ERR_INVALID, "beyond 1e300");
}

const cm_test_case cm_tests_bound[] = {
    {"terms", test_terms},
    {"required_T", test_required_T},
    {"errors", test_errors},
    {NULL, NULL},
};
