/* bound.c: the terms of Theorem 1 of [LHW] and the T its corollary asks for (docs/theory.md;
 * see bound.h). C_1 is a caller's parameter: the paper leaves it unspecified. */
#include "cm/bound.h"

#include <math.h>

/* Bisection steps in log T: the bracket [log 148, log 1e300] shrinks below 1e-12 relative. */
#define BISECTION_STEPS 200
#define REQUIRED_T_MAX 1e300

double cm_bound_rate_shape(double T) {
    double l = log(T);
    return l * l * l * l * l / T;
}

static cm_status check_inputs(double d, double lipschitz, double C1) {
    if (!isfinite(d) || !(d >= 1.0))
        return cm_error_set(CM_ERR_INVALID, "bound: dimension %g must be finite and >= 1", d);
    if (!isfinite(lipschitz) || !(lipschitz > 0.0))
        return cm_error_set(CM_ERR_INVALID, "bound: L_f %g must be finite and > 0", lipschitz);
    if (!isfinite(C1) || !(C1 > 0.0))
        return cm_error_set(CM_ERR_INVALID, "bound: C_1 %g must be finite and > 0", C1);
    return CM_OK;
}

static double prefactor(double d, double lipschitz, double C1) {
    return C1 * lipschitz * lipschitz * lipschitz * pow(d, 2.5);
}

cm_status cm_bound_compute(cm_bound_terms *out, double T, double d, double lipschitz, double eps,
                           double eps_F, double C1) {
    CM_TRY(check_inputs(d, lipschitz, C1));
    if (!isfinite(T) || !(T >= 2.0))
        return cm_error_set(CM_ERR_INVALID, "bound: T %g must be finite and >= 2", T);
    if (!isfinite(eps) || !(eps >= 0.0) || !isfinite(eps_F) || !(eps_F >= 0.0))
        return cm_error_set(CM_ERR_INVALID, "bound: eps %g and eps_F %g must be finite and >= 0",
                            eps, eps_F);
    out->T = T;
    out->d = d;
    out->lipschitz = lipschitz;
    out->eps = eps;
    out->eps_F = eps_F;
    out->C1 = C1;
    out->rate = prefactor(d, lipschitz, C1) * cm_bound_rate_shape(T);
    out->total = out->rate + eps + eps_F;
    if (!isfinite(out->rate))
        return cm_error_set(CM_ERR_NONFINITE, "bound: the rate term overflows (L_f %g, d %g)",
                            lipschitz, d);
    return CM_OK;
}

cm_status cm_bound_required_T(double *out, double target, double d, double lipschitz, double C1) {
    CM_TRY(check_inputs(d, lipschitz, C1));
    if (!isfinite(target) || !(target > 0.0))
        return cm_error_set(CM_ERR_INVALID, "bound: target %g must be finite and > 0", target);
    /* rate(T) <= target  <=>  log(prefactor) + 5 log log T - log T <= log(target), in logs so
     * that huge prefactors do not overflow. */
    double log_k = log(C1) + 3.0 * log(lipschitz) + 2.5 * log(d), log_target = log(target);
    double peak = log(CM_BOUND_RATE_PEAK_T);
#define LOG_RATE(s) (log_k + 5.0 * log(s) - (s))
    if (LOG_RATE(peak) <= log_target) {
        *out = 2.0;
        return CM_OK;
    }
    double high = log(REQUIRED_T_MAX);
    if (LOG_RATE(high) > log_target)
        return cm_error_set(CM_ERR_INVALID, "bound: the required T exceeds %g (target %g, L_f %g, "
                            "d %g, C_1 %g)", REQUIRED_T_MAX, target, lipschitz, d, C1);
    double low = peak; /* on [peak, high] the log rate falls: LOG_RATE(low) > target >= high */
    for (int k = 0; k < BISECTION_STEPS && high - low > 1e-13 * high; k++) {
        double mid = 0.5 * (low + high);
        if (LOG_RATE(mid) > log_target) low = mid;
        else high = mid;
    }
#undef LOG_RATE
    *out = exp(high);
    return CM_OK;
}
