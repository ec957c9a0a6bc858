/* consistency.h: boundary-respecting consistency functions and the consistency losses.
 *
 * [CM] VE form ([CM], [iCT], docs/math.md), sd = sigma_data:
 *     f(x, sigma) = c_skip(sigma) x + c_out(sigma) F(c_in(sigma) x, c_noise(sigma))
 *     c_skip = sd^2 / ((sigma - smin)^2 + sd^2),  c_out = sd (sigma - smin) / sqrt(sd^2 + sigma^2)
 *     c_in = 1 / sqrt(sigma^2 + sd^2),            c_noise = 0.25 log(sigma)
 * so f(x, smin) = x. [LHW] VP form ([LHW], docs/math.md): f(x, t) = sqrt(abar_1) g(x / sqrt(abar_t),
 * sigma_t) with g the VE form at smin = sigma_1, which expands to the same shape with
 *     skip = c_skip(sigma_t) sqrt(abar_1 / abar_t),  out = sqrt(abar_1) c_out(sigma_t),
 *     in = c_in(sigma_t) / sqrt(abar_t),
 * computed in log space so that at t = 1 skip is exactly 1 and out exactly 0: f(x, 1) = x to
 * the bit. A batch carries one coefficient row per point, so one batch may mix noise levels.
 *
 * Two-time consistency model (cd2; the two-time map g(x, t, s) ~ Phi_{t -> s}(x) of [JHMZ]
 * (docs/sampling.md), parameterised as the consistency trajectory models of Kim et al., "Consistency Trajectory
 * Models", ICLR 2024): with r = s / t and D the EDM denoiser form (the VE coefficients at
 * sigma_min = 0) whose network also sees s,
 *     g(x, t, s) = r x + (1 - r) D(x, t, s),  D = c_skip(t) x + c_out(t) F(c_in(t) x, c_noise(t), c_noise(s))
 * so g(x, t, t) = x to the bit (r = 1), the two-time boundary condition. It has the same shape,
 * skip = r + (1 - r) c_skip, out = (1 - r) c_out, in = c_in, plus c_noise_target = log(s) / 4.
 *
 * A batch carries one coefficient row per point (so one batch may mix noise levels), stored as
 * arrays skip[B], out[B], in[B] and c_noise[B, L] (L = 1, or 2 for two-time networks: the
 * level and the target level of each row) in one block of CM_COEFFICIENT_COUNT(B, L) values;
 * cm_coefficient_rows views it, and a row block is the view offset by its first row.
 *
 * The forward and backward passes here run one row block on the calling thread through the
 * network interface (network.h); the evaluator (evaluator.h) and the trainer run blocks on the
 * pool. The losses are written per row so that a batch split into blocks (or processes) sums
 * its rows in row order and gets the bits of the whole batch.
 */
#ifndef CM_CONSISTENCY_H
#define CM_CONSISTENCY_H

#include <stddef.h>

#include "cm/config.h"
#include "cm/network.h"
#include "cm/schedule.h"

/* sigma_data = 0.5 [CM], the standard deviation the data are standardised to. */
#define CM_SIGMA_DATA_DEFAULT 0.5

typedef struct {
    double skip, out, in, c_noise;
    double c_noise_target; /* two-time models only */
    int two_time;          /* 1: c_noise_target is the row's second noise level */
} cm_coefficients;

/* Values of a coefficient block of B rows with L noise levels: skip, out, in, c_noise[B, L]. */
#define CM_COEFFICIENT_COUNT(B, levels) ((size_t)(B) * (3u + (size_t)(levels)))

/* Views of a coefficient block (pointers into it, borrowed). */
typedef struct {
    float *skip, *out, *in, *c_noise; /* [B], [B], [B], [B, levels] */
    size_t levels;
} cm_coefficient_rows;
typedef struct {
    double *skip, *out, *in, *c_noise;
    size_t levels;
} cm_coefficient_rows_f64;

/* The view of storage[CM_COEFFICIENT_COUNT(B, levels)] for B rows. */
cm_coefficient_rows cm_coefficient_rows_view(float *storage, size_t B, size_t levels);
cm_coefficient_rows_f64 cm_coefficient_rows_view_f64(double *storage, size_t B, size_t levels);
/* The rows from `first` on (a row block). */
cm_coefficient_rows cm_coefficient_rows_offset(cm_coefficient_rows rows, size_t first);
cm_coefficient_rows_f64 cm_coefficient_rows_offset_f64(cm_coefficient_rows_f64 rows, size_t first);
/* Store c as row b (its target level too when the view has 2 levels). */
void cm_coefficient_rows_store(cm_coefficient_rows rows, size_t b, cm_coefficients c);
void cm_coefficient_rows_store_f64(cm_coefficient_rows_f64 rows, size_t b, cm_coefficients c);

/* [CM] VE coefficients at noise level sigma >= sigma_min. */
cm_coefficients cm_consistency_ve(double sigma, double sigma_data, double sigma_min);
/* [LHW] VP coefficients at chain index t in 1..T. */
cm_coefficients cm_consistency_lhw(const cm_lhw_schedule *schedule, size_t t, double sigma_data);
/* Two-time coefficients of g(x, sigma, sigma_target), 0 < sigma_target <= sigma. */
cm_coefficients cm_consistency_two_time(double sigma, double sigma_target, double sigma_data);

/* One row block: out[R,D] = skip_r x_r + out_r F(in_r x_r, c_noise_r). x_in and F_out are caller
 * scratch [R,D] that must be kept, with the workspace, for the backward pass. */
void cm_consistency_forward(float *out, float *x_in, float *F_out, const cm_network *network,
                            const float *params, cm_network_workspace *workspace, const float *x,
                            cm_coefficient_rows coef, size_t R);
/* dparams (overwritten) = the gradient of sum(out * dout) of the block's last forward; dF is
 * caller scratch [R,D]. */
void cm_consistency_backward(float *dparams, float *dF, const cm_network *network,
                             const float *params, cm_network_workspace *workspace,
                             const float *dout, cm_coefficient_rows coef, size_t R);
void cm_consistency_forward_f64(double *out, double *x_in, double *F_out,
                                const cm_network *network, const double *params,
                                cm_network_workspace *workspace, const double *x,
                                cm_coefficient_rows_f64 coef, size_t R);
void cm_consistency_backward_f64(double *dparams, double *dF, const cm_network *network,
                                 const double *params, cm_network_workspace *workspace,
                                 const double *dout, cm_coefficient_rows_f64 coef, size_t R);

/* Losses, each row weighted by weight[b] (NULL: all 1), over a batch of `batch` rows:
 *   squared l2 ([LHW], [CM]):   (1/B) sum_b w_b ||out_b - target_b||^2
 *   pseudo-Huber ([iCT]):        (1/B) sum_b w_b (sqrt(||out_b - target_b||^2 + c^2) - c)
 * cm_loss_rows writes R rows' terms w_b (...) into row_loss[R] and, when dout is not NULL, their
 * gradient of the batch loss (with its 1/batch) into dout[R,D] (overwritten); the batch loss is
 * sum(row_loss) / batch added in row order, which is what cm_loss_l2 / cm_loss_pseudo_huber
 * return for a whole batch (B = batch) from the same arithmetic. The target receives no
 * gradient: it is a constant here, which is how the stop-gradient of [CM]/[iCT]/[LHW] targets is
 * realised. */
void cm_loss_rows(double *row_loss, float *dout, const float *out, const float *target,
                  const float *weight, cm_loss loss, double c, size_t R, size_t D, size_t batch);
double cm_loss_l2(float *dout, const float *out, const float *target, const float *weight, int B,
                  int D);
double cm_loss_pseudo_huber(float *dout, const float *out, const float *target,
                            const float *weight, double c, int B, int D);
double cm_loss_l2_f64(double *dout, const double *out, const double *target,
                      const double *weight, int B, int D);
double cm_loss_pseudo_huber_f64(double *dout, const double *out, const double *target,
                                const double *weight, double c, int B, int D);

#endif
