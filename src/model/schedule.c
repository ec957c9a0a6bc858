/* schedule.c: the [LHW] discrete schedule ([LHW], docs/math.md), the Karras grid [CM] and the linear
 * DDPM betas, in double and in log space. */
#include "cm/schedule.h"

#include <math.h>

#include "cm/alloc.h"

cm_status cm_lhw_schedule_init(cm_lhw_schedule *out, size_t T, double c0, double c1) {
    *out = (cm_lhw_schedule){0};
    if (T < 2 || T > 100000000)
        return cm_error_set(CM_ERR_INVALID, "[LHW] schedule: T = %zu must be in [2, 1e8]", T);
    if (!(c0 > 0) || !(c1 > 0) || !isfinite(c0) || !isfinite(c1))
        return cm_error_set(CM_ERR_INVALID, "[LHW] schedule: c0 = %g and c1 = %g must be > 0", c0,
                            c1);
    out->T = T;
    out->c0 = c0;
    out->c1 = c1;
    double *block = cm_malloc(5 * (T + 1), sizeof(double));
    if (!block) return cm_error_set(CM_ERR_NOMEM, "[LHW] schedule: T = %zu", T);
    out->beta = block;
    out->log_alpha = block + (T + 1);
    out->log_abar = block + 2 * (T + 1);
    out->one_minus_abar = block + 3 * (T + 1);
    out->sigma = block + 4 * (T + 1);

    /* beta_1 = T^-c0;  beta_{t+1} = (c1 log T / T) min(beta_1 (1 + c1 log T / T)^t, 1). The
     * power is taken in log space so that it cannot overflow for large t. */
    double log_T = log((double)T);
    double rate = c1 * log_T / (double)T;
    double log_beta1 = -c0 * log_T;
    double log_growth = log1p(rate);
    out->beta[0] = 0.0;
    out->log_alpha[0] = 0.0;
    out->log_abar[0] = 0.0;
    out->one_minus_abar[0] = 0.0;
    out->sigma[0] = 0.0;
    double log_abar = 0.0;
    for (size_t t = 1; t <= T; t++) {
        double beta;
        if (t == 1) {
            beta = exp(log_beta1);
        } else {
            double log_power = log_beta1 + (double)(t - 1) * log_growth;
            beta = rate * (log_power < 0.0 ? exp(log_power) : 1.0);
        }
        if (!(beta < 1.0)) {
            cm_free(block);
            *out = (cm_lhw_schedule){0};
            return cm_error_set(CM_ERR_INVALID,
                                "[LHW] schedule: beta_%zu = %g >= 1 (c1 log T / T too large)", t,
                                beta);
        }
        out->beta[t] = beta;
        out->log_alpha[t] = log1p(-beta);
        log_abar += out->log_alpha[t];
        out->log_abar[t] = log_abar;
        out->one_minus_abar[t] = -expm1(log_abar);
        out->sigma[t] = cm_vp_to_ve_sigma(log_abar);
    }
    return CM_OK;
}

void cm_lhw_schedule_free(cm_lhw_schedule *schedule) {
    if (!schedule) return;
    cm_free(schedule->beta);
    *schedule = (cm_lhw_schedule){0};
}

double cm_lhw_schedule_log_snr(const cm_lhw_schedule *schedule, size_t t) {
    return schedule->log_abar[t] - log(schedule->one_minus_abar[t]);
}

size_t cm_lhw_schedule_nearest(const cm_lhw_schedule *schedule, double sigma) {
    double target = log(sigma);
    size_t best = 1;
    double best_distance = INFINITY;
    for (size_t t = 1; t <= schedule->T; t++) {
        double distance = fabs(log(schedule->sigma[t]) - target);
        if (distance < best_distance) {
            best_distance = distance;
            best = t;
        }
    }
    return best;
}

cm_status cm_karras_grid(double *out, size_t N, double sigma_min, double sigma_max, double rho) {
    if (N < 2) return cm_error_set(CM_ERR_INVALID, "Karras grid: N = %zu must be >= 2", N);
    if (!(sigma_min > 0) || !(sigma_max > sigma_min) || !(rho > 0) || !isfinite(sigma_max))
        return cm_error_set(CM_ERR_INVALID,
                            "Karras grid: need 0 < sigma_min (%g) < sigma_max (%g), rho (%g) > 0",
                            sigma_min, sigma_max, rho);
    double low = pow(sigma_min, 1.0 / rho), high = pow(sigma_max, 1.0 / rho);
    for (size_t i = 0; i < N; i++) {
        double u = (double)i / (double)(N - 1);
        out[i] = pow(low + u * (high - low), rho);
    }
    out[0] = sigma_min; /* exact ends, free of pow rounding */
    out[N - 1] = sigma_max;
    return CM_OK;
}

cm_status cm_ddpm_linear_betas(double *out, size_t T, double beta_start, double beta_end) {
    if (T < 2) return cm_error_set(CM_ERR_INVALID, "DDPM betas: T = %zu must be >= 2", T);
    if (!(beta_start > 0) || !(beta_end < 1) || !(beta_start <= beta_end))
        return cm_error_set(CM_ERR_INVALID, "DDPM betas: need 0 < %g <= %g < 1", beta_start,
                            beta_end);
    out[0] = 0.0;
    for (size_t t = 1; t <= T; t++)
        out[t] = beta_start + (double)(t - 1) / (double)(T - 1) * (beta_end - beta_start);
    return CM_OK;
}

double cm_vp_to_ve_sigma(double log_abar) {
    /* sigma^2 = (1 - abar) / abar = expm1(-log abar), exact near abar = 1. */
    return sqrt(expm1(-log_abar));
}

double cm_ve_to_vp_log_abar(double sigma) {
    /* abar = 1 / (1 + sigma^2). */
    return -log1p(sigma * sigma);
}
