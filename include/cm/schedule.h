/* schedule.h: noise schedules: the [LHW] discrete VP schedule, the Karras grid [CM], the linear
 * DDPM betas, and VP <-> VE conversion ([LHW], docs/math.md).
 *
 * All in double. The [LHW] chain is kept in log space: log alpha_t = log1p(-beta_t),
 * log abar_t = sum of log alpha, and 1 - abar_t = -expm1(log abar_t), so nothing near 1 is
 * formed by subtraction. Indices follow the paper: t = 1..T (arrays are 1-based: entry 0 unused).
 */
#ifndef CM_SCHEDULE_H
#define CM_SCHEDULE_H

#include <stddef.h>

#include "cm/status.h"

/* The [LHW] schedule (docs/math.md), with its derived quantities. */
typedef struct {
    size_t T;
    double c0, c1;
    double *beta;          /* [T + 1], beta[t] = 1 - alpha_t */
    double *log_alpha;     /* [T + 1] */
    double *log_abar;      /* [T + 1], log prod_{k<=t} alpha_k */
    double *one_minus_abar;/* [T + 1], 1 - abar_t via expm1 */
    double *sigma;         /* [T + 1], VE level sqrt((1 - abar_t) / abar_t) = exp(-lambda_t / 2) */
} cm_lhw_schedule;

/* Defaults c0 = 2, c1 = 4 ([LHW], docs/math.md: the paper needs "large" constants). */
#define CM_LHW_C0_DEFAULT 2.0
#define CM_LHW_C1_DEFAULT 4.0

/* Build the schedule for T >= 2 and c0, c1 > 0. Allocates; free with cm_lhw_schedule_free. */
cm_status cm_lhw_schedule_init(cm_lhw_schedule *out, size_t T, double c0, double c1);
void cm_lhw_schedule_free(cm_lhw_schedule *schedule);
/* log-SNR lambda_t = log(abar_t / (1 - abar_t)). */
double cm_lhw_schedule_log_snr(const cm_lhw_schedule *schedule, size_t t);
/* The t in 1..T whose sigma_t is nearest to `sigma` in log scale. */
size_t cm_lhw_schedule_nearest(const cm_lhw_schedule *schedule, double sigma);

/* Karras/EDM grid [CM]: out[i] = (smin^(1/rho) + i/(N-1) (smax^(1/rho) - smin^(1/rho)))^rho,
 * i = 0..N-1, increasing from smin to smax (N >= 2). */
#define CM_KARRAS_SIGMA_MIN 0.002
#define CM_KARRAS_SIGMA_MAX 80.0
#define CM_KARRAS_RHO 7.0
cm_status cm_karras_grid(double *out, size_t N, double sigma_min, double sigma_max, double rho);

/* Linear DDPM betas (Ho et al. 2020): beta_t = beta_start + (t-1)/(T-1) (beta_end - beta_start),
 * written to out[1..T]. */
cm_status cm_ddpm_linear_betas(double *out, size_t T, double beta_start, double beta_end);

/* VP <-> VE: x_ve = x_vp / sqrt(abar); sigma = sqrt((1 - abar) / abar). */
double cm_vp_to_ve_sigma(double log_abar);
double cm_ve_to_vp_log_abar(double sigma);

#endif
