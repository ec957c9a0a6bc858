/* consistency.h: boundary-respecting consistency functions and the consistency losses.
 *
 * [CM] VE form (SPEC section 5), sd = sigma_data:
 *     f(x, sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x, c_noise(sigma))
 *     c_skip = sd^2 / ((sigma - smin)^2 + sd^2),  c_out = sd (sigma - smin) / sqrt(sd^2 + sigma^2)
 *     c_in = 1 / sqrt(sigma^2 + sd^2),            c_noise = 0.25 log(sigma)
 * so f(x, smin) = x. [LHW] VP form (SPEC section 2): f(x, t) = sqrt(abar_1) g(x / sqrt(abar_t),
 * sigma_t) with g the VE form at smin = sigma_1, which expands to the same shape with
 *     skip = c_skip(sigma_t) sqrt(abar_1 / abar_t),  out = sqrt(abar_1) c_out(sigma_t),
 *     in = c_in(sigma_t) / sqrt(abar_t),
 * computed in log space so that at t = 1 skip is exactly 1 and out exactly 0: f(x, 1) = x to
 * the bit. A batch carries one coefficient row per point, so one batch may mix noise levels.
 *
 * Two-time consistency model (cd2; the two-time map g(x, t, s) ~ Phi_{t -> s}(x) of SPEC section
 * 6, parameterised as the consistency trajectory models of Kim et al., "Consistency Trajectory
 * Models", ICLR 2024): with r = s / t and D the EDM denoiser form (the VE coefficients at
 * sigma_min = 0) whose network also sees s,
 *     g(x, t, s) = r x + (1 - r) D(x, t, s),  D = c_skip(t) x + c_out(t) F(c_in(t) x, c_noise(t), c_noise(s))
 * so g(x, t, t) = x to the bit (r = 1), the two-time boundary condition. It has the same shape,
 * skip = r + (1 - r) c_skip, out = (1 - r) c_out, in = c_in, plus c_noise_target = log(s) / 4.
 *
 * Coefficient arrays are laid out coef[4 * B] = skip[B], out[B], in[B], c_noise[B]; for a
 * two-time network coef[5 * B] = skip[B], out[B], in[B], then c_noise as [B, 2] (level, target
 * level per row), the MLP's two-time c_noise layout (nn.h).
 */
#ifndef CM_CONSISTENCY_H
#define CM_CONSISTENCY_H

#include <stddef.h>

#include "cm/nn.h"
#include "cm/schedule.h"

/* sigma_data = 0.5 [CM], the standard deviation the data are standardised to. */
#define CM_SIGMA_DATA_DEFAULT 0.5

typedef struct {
    double skip, out, in, c_noise;
    double c_noise_target; /* two-time models only */
    int two_time;          /* 1: store in the two-time layout (5 B) */
} cm_coefficients;

/* Floats (or doubles) of a coefficient array of B rows for a network (4 B, or 5 B two-time). */
#define CM_COEFFICIENT_COUNT(B, two_time) ((size_t)(B) * ((two_time) ? 5u : 4u))

/* [CM] VE coefficients at noise level sigma >= sigma_min. */
cm_coefficients cm_consistency_ve(double sigma, double sigma_data, double sigma_min);
/* [LHW] VP coefficients at chain index t in 1..T. */
cm_coefficients cm_consistency_lhw(const cm_lhw_schedule *schedule, size_t t, double sigma_data);
/* Two-time coefficients of g(x, sigma, sigma_target), 0 < sigma_target <= sigma. */
cm_coefficients cm_consistency_two_time(double sigma, double sigma_target, double sigma_data);
/* Store c as row b of a coefficient array of a batch of B rows (in the two-time layout when
 * c.two_time). */
void cm_coefficients_store(float *coef, int B, int b, cm_coefficients c);
void cm_coefficients_store_f64(double *coef, int B, int b, cm_coefficients c);

/* out[B,D] = skip_b x_b + out_b F(in_b x_b, c_noise_b). x_in and F_out are caller scratch
 * [B,D] that must be kept, with the workspace, for the backward pass. */
void cm_consistency_forward(float *out, float *x_in, float *F_out, const float *params,
                            const cm_mlp_layout *layout, cm_mlp_workspace *workspace,
                            const float *x, const float *coef, int B);
/* dparams += gradient of sum(out * dout) for the last forward; dF is caller scratch [B,D]. */
void cm_consistency_backward(float *dparams, float *dF, const float *params,
                             const cm_mlp_layout *layout, cm_mlp_workspace *workspace,
                             const float *dout, const float *coef, int B);
void cm_consistency_forward_f64(double *out, double *x_in, double *F_out, const double *params,
                                const cm_mlp_layout *layout, cm_mlp_workspace_f64 *workspace,
                                const double *x, const double *coef, int B);
void cm_consistency_backward_f64(double *dparams, double *dF, const double *params,
                                 const cm_mlp_layout *layout, cm_mlp_workspace_f64 *workspace,
                                 const double *dout, const double *coef, int B);

/* Losses over a batch, each row weighted by weight[b] (NULL: all 1), averaged over B:
 *   squared l2 ([LHW], [CM]):   (1/B) sum_b w_b ||out_b - target_b||^2
 *   pseudo-Huber ([iCT]):        (1/B) sum_b w_b (sqrt(||out_b - target_b||^2 + c^2) - c)
 * Return the loss (accumulated in double); if dout is not NULL it receives (overwritten) the
 * gradient with respect to out. The target receives no gradient: it is a constant here, which
 * is how the stop-gradient of [CM]/[iCT]/[LHW] targets is realised. */
double cm_loss_l2(float *dout, const float *out, const float *target, const float *weight, int B,
                  int D);
double cm_loss_pseudo_huber(float *dout, const float *out, const float *target,
                            const float *weight, double c, int B, int D);
double cm_loss_l2_f64(double *dout, const double *out, const double *target,
                      const double *weight, int B, int D);
double cm_loss_pseudo_huber_f64(double *dout, const double *out, const double *target,
                                const double *weight, double c, int B, int D);

#endif
