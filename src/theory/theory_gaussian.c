/* theory_gaussian.c: exact ideal consistency training on Gaussian data (docs/theory.md): for
 * X_0 ~ N(mu, diag(l)), [LHW]'s recursion keeps f_t affine,
 *     f_t(x) = sqrt(abar_1) mu + A_t (x - sqrt(abar_t) mu),  A_t = A_{t-1} diag(g_t(l_i)),
 * so f_T(Y), Y ~ N(0, I), is N(sqrt(abar_1) mu - sqrt(abar_T) A_T mu, diag(A_T^2)) and its
 * distances to X_1 ~ N(sqrt(abar_1) mu, diag(v_1)) are closed form; the exact flow map has gain
 * sqrt(v_1 / v_T) in place of A_T. Also the DDIM coefficients a_t, b_t of [LHW] (docs/math.md).
 * Gains are accumulated in log space from log1p(g_t - 1), each g_t - 1 formed without
 * cancellation (never 1 - abar by subtraction: docs/math.md).
 */
#include "cm/theory.h"

#include <math.h>

#include "cm/alloc.h"
#include "cm/gaussian.h"

void cm_theory_ddim_coefficients(const cm_lhw_schedule *s, size_t t, double *a, double *b) {
    double om = s->one_minus_abar[t], om_prev = s->one_minus_abar[t - 1];
    double root_alpha = exp(0.5 * s->log_alpha[t]);
    *a = sqrt(om_prev / om);
    *b = exp(0.5 * s->log_abar[t - 1]) * s->beta[t] / (om * (1.0 + *a * root_alpha));
}

/* g_t(l) - 1 = ( l sqrt(abar_t) (sqrt(abar_{t-1}) - sqrt(abar_t))
 *              + sqrt(1 - abar_t) (sqrt(1 - abar_{t-1}) - sqrt(1 - abar_t)) ) / v_t(l), with
 * sqrt(abar_{t-1}) - sqrt(abar_t) = -sqrt(abar_{t-1}) expm1(log(alpha_t) / 2) and
 * sqrt(1 - abar_{t-1}) - sqrt(1 - abar_t) = -abar_{t-1} beta_t / (sqrt(1 - abar_{t-1}) +
 * sqrt(1 - abar_t)). */
static double gain_minus_one(const cm_lhw_schedule *s, size_t t, double l) {
    double ab = exp(s->log_abar[t]), ab_prev = exp(s->log_abar[t - 1]);
    double om = s->one_minus_abar[t], om_prev = s->one_minus_abar[t - 1];
    double signal = -sqrt(ab_prev) * expm1(0.5 * s->log_alpha[t]);
    double noise = -ab_prev * s->beta[t] / (sqrt(om_prev) + sqrt(om));
    return (l * sqrt(ab) * signal + sqrt(om) * noise) / (ab * l + om);
}

double cm_theory_gaussian_log_gain(const cm_lhw_schedule *s, double l) {
    double sum = 0.0;
    for (size_t t = 2; t <= s->T; t++) sum += log1p(gain_minus_one(s, t, l));
    return sum;
}

/* E||Z||, Z ~ N(0, I_d): sqrt(2) Gamma((d+1)/2) / Gamma(d/2), through lgamma. */
static double expected_norm(size_t d) {
    return sqrt(2.0) * exp(lgamma(0.5 * ((double)d + 1.0)) - lgamma(0.5 * (double)d));
}

static cm_status check_arguments(size_t d, const double *mean, const double *variances, size_t T,
                                 double c0, double c1) {
    if (d == 0 || !variances) return cm_error_set(CM_ERR_INVALID, "theory: d = %zu, variances %p",
                                                  d, (const void *)variances);
    if (T < 2) return cm_error_set(CM_ERR_INVALID, "theory: T = %zu must be >= 2", T);
    if (!(c0 > 0.0) || !(c1 > 0.0) || !isfinite(c0) || !isfinite(c1))
        return cm_error_set(CM_ERR_INVALID, "theory: c0 = %g, c1 = %g must be finite and > 0", c0,
                            c1);
    for (size_t i = 0; i < d; i++) {
        if (!isfinite(variances[i]) || variances[i] < 0.0)
            return cm_error_set(CM_ERR_INVALID, "theory: variance %zu is %g", i, variances[i]);
        if (mean && !isfinite(mean[i]))
            return cm_error_set(CM_ERR_NONFINITE, "theory: mean %zu is %g", i, mean[i]);
    }
    return CM_OK;
}

cm_status cm_theory_gaussian_mean(cm_theory_gaussian_result *out, size_t d, const double *mean,
                                  const double *variances, size_t T, double c0, double c1) {
    if (!out) return cm_error_set(CM_ERR_INVALID, "theory: out is NULL");
    CM_TRY(check_arguments(d, mean, variances, T, c0, c1));
    cm_lhw_schedule s;
    CM_TRY(cm_lhw_schedule_init(&s, T, c0, c1));
    double ab1 = exp(s.log_abar[1]), om1 = s.one_minus_abar[1];
    double abT = exp(s.log_abar[T]), omT = s.one_minus_abar[T];
    double ideal2 = 0.0, exact2 = 0.0, lower = 0.0, exact_lower = 0.0;
    double gain_min = INFINITY, gain_max = -INFINITY;
    int isotropic = 1, zero_mean = 1;
    double last_l = NAN, last_gain = NAN; /* O(T) per distinct variance, not per coordinate */
    cm_status status = CM_OK;
    for (size_t i = 0; i < d && status == CM_OK; i++) {
        double l = variances[i], mu = mean ? mean[i] : 0.0;
        double target = sqrt(ab1 * l + om1); /* std of X_1 */
        if (l != last_l) {
            last_l = l;
            last_gain = exp(cm_theory_gaussian_log_gain(&s, l));
        }
        double ideal = last_gain; /* A_T(l) */
        double exact = sqrt((ab1 * l + om1) / (abT * l + omT)); /* Phi_{T->1} gain */
        double ideal_shift = ideal * sqrt(abT) * mu, exact_shift = exact * sqrt(abT) * mu;
        ideal2 += (ideal - target) * (ideal - target) + ideal_shift * ideal_shift;
        exact2 += (exact - target) * (exact - target) + exact_shift * exact_shift;
        gain_min = fmin(gain_min, ideal / target);
        gain_max = fmax(gain_max, ideal / target);
        if (l != variances[0]) isotropic = 0;
        if (mu != 0.0) zero_mean = 0;
        double w1i, w1e; /* coordinate marginals: a lower bound on W1 */
        status = cm_gaussian_w1_1d(&w1i, -ideal_shift, ideal, 0.0, target);
        if (status == CM_OK) status = cm_gaussian_w1_1d(&w1e, -exact_shift, exact, 0.0, target);
        if (status == CM_OK) {
            lower = fmax(lower, w1i);
            exact_lower = fmax(exact_lower, w1e);
        }
    }
    if (status == CM_OK) {
        out->w2_ideal = sqrt(ideal2);
        out->w2_exact_map = sqrt(exact2);
        out->abar_T = abT;
        out->gain_min = gain_min;
        out->gain_max = gain_max;
        out->w1_ideal = out->w1_exact_map = NAN;
        if (d == 1) {
            out->w1_ideal = lower;
            out->w1_exact_map = exact_lower;
        } else if (isotropic && zero_mean) {
            /* W1 >= |E||X|| - E||Y||| (the norm is 1-Lipschitz) and the coupling a Z, s Z
             * attains it: W1 = |a - s| E||Z||. */
            double l = variances[0], target = sqrt(ab1 * l + om1);
            double ideal = exp(cm_theory_gaussian_log_gain(&s, l));
            double exact = sqrt((ab1 * l + om1) / (abT * l + omT));
            out->w1_ideal = fabs(ideal - target) * expected_norm(d);
            out->w1_exact_map = fabs(exact - target) * expected_norm(d);
        }
        out->w1_ideal_lower = isnan(out->w1_ideal) ? lower : out->w1_ideal;
        out->w1_ideal_upper = isnan(out->w1_ideal) ? out->w2_ideal : out->w1_ideal;
    }
    cm_lhw_schedule_free(&s);
    return status;
}

cm_status cm_theory_gaussian(cm_theory_gaussian_result *out, size_t d, const double *variances,
                             size_t T, double c0, double c1) {
    return cm_theory_gaussian_mean(out, d, NULL, variances, T, c0, c1);
}
