/* consistency.c: [CM] and [LHW] parameterisations (docs/math.md), the two-time
 * parameterisation of cd2 models (consistency.h) and the kernels of consistency_template.h in
 * float and double. See consistency.h. */
#include "cm/consistency.h"

#include <math.h>

#define REAL float
#define FN(name) name
#define ROWS cm_coefficient_rows
#include "model/consistency_template.h"
#undef REAL
#undef FN
#undef ROWS

#define REAL double
#define FN(name) name##_f64
#define ROWS cm_coefficient_rows_f64
#include "model/consistency_template.h"
#undef REAL
#undef FN
#undef ROWS

cm_coefficients cm_consistency_ve(double sigma, double sigma_data, double sigma_min) {
    double sd2 = sigma_data * sigma_data, gap = sigma - sigma_min;
    cm_coefficients c = {0};
    c.skip = sd2 / (gap * gap + sd2);
    c.out = sigma_data * gap / sqrt(sd2 + sigma * sigma);
    c.in = 1.0 / sqrt(sigma * sigma + sd2);
    c.c_noise = 0.25 * log(sigma);
    return c;
}

cm_coefficients cm_consistency_lhw(const cm_lhw_schedule *schedule, size_t t, double sigma_data) {
    double sigma = schedule->sigma[t], sigma_min = schedule->sigma[1];
    cm_coefficients ve = cm_consistency_ve(sigma, sigma_data, sigma_min);
    double log_abar_1 = schedule->log_abar[1], log_abar_t = schedule->log_abar[t];
    cm_coefficients c = {0};
    /* exp(0) = 1 exactly at t = 1, and ve.skip = 1, ve.out = 0 there: f(x, 1) = x. */
    c.skip = ve.skip * exp(0.5 * (log_abar_1 - log_abar_t));
    c.out = exp(0.5 * log_abar_1) * ve.out;
    c.in = ve.in * exp(-0.5 * log_abar_t);
    c.c_noise = ve.c_noise;
    return c;
}

cm_coefficients cm_consistency_two_time(double sigma, double sigma_target, double sigma_data) {
    cm_coefficients denoiser = cm_consistency_ve(sigma, sigma_data, 0.0), c = {0};
    /* g = r x + (1 - r) D with r = s / t: at s = t, r = 1 exactly, so skip = 1 and out = 0. */
    double r = sigma_target / sigma;
    c.skip = r + (1.0 - r) * denoiser.skip;
    c.out = (1.0 - r) * denoiser.out;
    c.in = denoiser.in;
    c.c_noise = denoiser.c_noise;
    c.c_noise_target = 0.25 * log(sigma_target);
    c.two_time = 1;
    return c;
}

void cm_loss_rows(double *row_loss, float *dout, const float *out, const float *target,
                  const float *weight, cm_loss loss, double c, size_t R, size_t D, size_t batch) {
    for (size_t b = 0; b < R; b++)
        row_loss[b] = loss_row(dout ? dout + b * D : NULL, out + b * D, target + b * D,
                               weight ? (double)weight[b] : 1.0, loss, c, D, batch);
}
