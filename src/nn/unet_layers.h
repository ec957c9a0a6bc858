/* unet_layers.h (private to src/nn): the layers of the U-Net besides convolution (conv.h) and
 * the MLP kernels it reuses (nn.h: SiLU, Linear, Fourier features), llm.c style: forward and
 * backward side by side, outputs first, then inputs, then weights, then dimensions; backward
 * ADDS into every gradient. Float and double from one source (unet_layers_template.h).
 *
 * Activations are channels-last per row, as in conv.h: x[B, HW, C] with pixel p = y W + x.
 * GroupNorm statistics are per row (rows stay independent: never BatchNorm).
 */
#ifndef CM_NN_UNET_LAYERS_H
#define CM_NN_UNET_LAYERS_H

/* Channels a normalised tensor may have (the kernels keep per-channel sums on the stack). */
#define CM_GROUPNORM_MAX_CHANNELS 2048
/* Added to the variance before the square root: PyTorch's GroupNorm default. */
#define CM_GROUPNORM_EPSILON 1e-5

/* GroupNorm, G groups of C / G consecutive channels (C % G == 0, C <= the maximum above):
 * out[B,HW,C] = (inp - mean) * rstd * weight[c] + bias[c], with mean and rstd = 1 / sqrt(var +
 * eps) (biased variance) over the HW * C / G values of each row's group, saved in
 * mean[B,G] and rstd[B,G] for the backward. */
void cm_groupnorm_forward(float *out, float *mean, float *rstd, const float *inp,
                          const float *weight, const float *bias, int B, int HW, int C, int G);
/* dinp[B,HW,C] += ..., dweight[C] += ..., dbias[C] += ... from dout[B,HW,C] and the forward's
 * inp, mean, rstd. */
void cm_groupnorm_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                           const float *inp, const float *mean, const float *rstd,
                           const float *weight, int B, int HW, int C, int G);

/* Nearest upsampling x2: out[B, 2H, 2W, C], out(2y + a, 2x + b) = inp(y, x) for a, b in {0, 1}. */
void cm_upsample_forward(float *out, const float *inp, int B, int H, int W, int C);
/* dinp[B,H,W,C] += the sum of dout over each pixel's four copies. */
void cm_upsample_backward(float *dinp, const float *dout, int B, int H, int W, int C);

/* Channel concatenation (the U-Net's skip): out[B,HW,C1+C2] = [a[B,HW,C1], b[B,HW,C2]]. */
void cm_concat_forward(float *out, const float *a, const float *b, int B, int HW, int C1, int C2);
/* da += dout's first C1 channels, db += its last C2. */
void cm_concat_backward(float *da, float *db, const float *dout, int B, int HW, int C1, int C2);

/* Per-channel shift (the projected noise embedding): out[B,HW,C] += shift[B,C]. */
void cm_channel_add_forward(float *out, const float *shift, int B, int HW, int C);
/* dshift[B,C] += the sum of dout[B,HW,C] over pixels. */
void cm_channel_add_backward(float *dshift, const float *dout, int B, int HW, int C);

void cm_groupnorm_forward_f64(double *out, double *mean, double *rstd, const double *inp,
                              const double *weight, const double *bias, int B, int HW, int C,
                              int G);
void cm_groupnorm_backward_f64(double *dinp, double *dweight, double *dbias, const double *dout,
                               const double *inp, const double *mean, const double *rstd,
                               const double *weight, int B, int HW, int C, int G);
void cm_upsample_forward_f64(double *out, const double *inp, int B, int H, int W, int C);
void cm_upsample_backward_f64(double *dinp, const double *dout, int B, int H, int W, int C);
void cm_concat_forward_f64(double *out, const double *a, const double *b, int B, int HW, int C1,
                           int C2);
void cm_concat_backward_f64(double *da, double *db, const double *dout, int B, int HW, int C1,
                            int C2);
void cm_channel_add_forward_f64(double *out, const double *shift, int B, int HW, int C);
void cm_channel_add_backward_f64(double *dshift, const double *dout, int B, int HW, int C);

/* The two halves of cm_groupnorm_forward, for callers that recompute the normalised values in
 * the backward from saved statistics instead of storing them (the U-Net). One row. */
void cm_groupnorm_statistics(float *mean, float *rstd, const float *inp, int HW, int C, int G);
void cm_groupnorm_apply(float *out, const float *inp, const float *mean, const float *rstd,
                        const float *weight, const float *bias, int HW, int C, int G);
void cm_groupnorm_statistics_f64(double *mean, double *rstd, const double *inp, int HW, int C,
                                 int G);
void cm_groupnorm_apply_f64(double *out, const double *inp, const double *mean,
                            const double *rstd, const double *weight, const double *bias, int HW,
                            int C, int G);

/* ---- fused kernels of the U-Net's pre-activations (one row; bit for bit the plain kernels'
 * composition, in fewer passes over memory) */

/* inp[HW, C] += shift[C] (the projected noise embedding, cm_channel_add_forward), then the
 * GroupNorm statistics of the result (cm_groupnorm_statistics). */
void cm_groupnorm_statistics_shifted(float *mean, float *rstd, float *inp, const float *shift,
                                     int HW, int C, int G);
/* act[HW, C] = SiLU(GroupNorm(inp)) from saved statistics: cm_groupnorm_apply then
 * cm_silu_forward, without storing the normalised values. */
void cm_groupnorm_silu_forward(float *act, const float *inp, const float *mean, const float *rstd,
                               const float *weight, const float *bias, int HW, int C, int G);
/* Its backward from d_act[HW, C]: the normalised values recomputed from inp and the statistics;
 * d_norm[HW, C] is scratch (receives d act/d norm * d_act); dweight[C], dbias[C] +=; dinp[HW, C]
 * += the input gradient, or = it when `overwrite` (then dinp_sums[C], if not NULL, += its sums
 * over pixels: the per-channel shift's gradient). */
void cm_groupnorm_silu_backward(float *dinp, float *dweight, float *dbias, float *d_norm,
                                float *dinp_sums, const float *d_act, const float *inp,
                                const float *mean, const float *rstd, const float *weight,
                                const float *bias, int HW, int C, int G, int overwrite);
void cm_groupnorm_statistics_shifted_f64(double *mean, double *rstd, double *inp,
                                         const double *shift, int HW, int C, int G);
void cm_groupnorm_silu_forward_f64(double *act, const double *inp, const double *mean,
                                   const double *rstd, const double *weight, const double *bias,
                                   int HW, int C, int G);
void cm_groupnorm_silu_backward_f64(double *dinp, double *dweight, double *dbias, double *d_norm,
                                    double *dinp_sums, const double *d_act, const double *inp,
                                    const double *mean, const double *rstd, const double *weight,
                                    const double *bias, int HW, int C, int G, int overwrite);

#endif
