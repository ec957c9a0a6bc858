/* conv.h (private to src/nn): 2-D convolution of the U-Net (docs/unet.md), llm.c style.
 *
 * Activations are channels-last per row ("NHWC": inp[B, H, W, C], element (b, y, x, c) at
 * ((b H + y) W + x) C + c); weights are PyTorch's [OC, C, K, K] ("OIHW"), the order of the
 * parameter vector and of model files. Square kernels K (3 or 1), zero padding P = K / 2,
 * stride 1 or 2: OH = (H + 2P - K) / stride + 1.
 *
 * Two implementations of one contract. The reference loops (float and double, conv_template.h)
 * are the definition and the double path of gradient checks. The float training path is a
 * cm_conv_plan: oneDNN primitives (forward, backward-data, backward-weights) for ONE row
 * (N = 1), created once, run on the calling thread alone (onednn.h). One row per call because
 * oneDNN's per-row speed equals its batched speed here (docs/unet.md) and a row's output then
 * never depends on how many rows share a call. Channels-last because oneDNN 2.6 has fast
 * kernels only for blocked or channels-last activations (NCHW falls back to im2col + GEMM at
 * about 40 % of the speed); the weights go through a reorder into the primitive's own format.
 * A plan of a 3x3 stride-1 conv with one output channel (and C a multiple of 16) runs
 * conv_thin.c's loops instead (oneDNN: about 11 GFLOP/s there).
 */
#ifndef CM_NN_CONV_H
#define CM_NN_CONV_H

#include <stddef.h>

#include "cm/status.h"
#include "nn/onednn.h"

static inline int cm_conv2d_out_size(int size, int K, int stride) {
    return (size + 2 * (K / 2) - K) / stride + 1;
}

/* ---- reference loops (float and double) */

/* out[B,OH,OW,OC] = bias[OC] + sum_{c,ky,kx} inp[B,OH*s-P+ky,OW*s-P+kx,C] weight[OC,C,ky,kx]
 * (bias may be NULL: zero). */
void cm_conv2d_forward(float *out, const float *inp, const float *weight, const float *bias,
                       int B, int H, int W, int C, int OC, int K, int stride);
/* dinp[B,H,W,C] += d/dinp, dweight[OC,C,K,K] += d/dweight, dbias[OC] += sum over B,OH,OW of
 * dout[B,OH,OW,OC]; any of dinp, dweight, dbias may be NULL (not wanted). */
void cm_conv2d_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, int B, int H, int W, int C,
                        int OC, int K, int stride);
void cm_conv2d_forward_f64(double *out, const double *inp, const double *weight,
                           const double *bias, int B, int H, int W, int C, int OC, int K,
                           int stride);
void cm_conv2d_backward_f64(double *dinp, double *dweight, double *dbias, const double *dout,
                            const double *inp, const double *weight, int B, int H, int W, int C,
                            int OC, int K, int stride);

/* ---- 3x3 stride-1 convolutions with one output channel and C a multiple of CM_CONV_THIN_LANES
 * (conv_thin.c), one row, float: the weights in tap order taps[ky 3 + kx][C]. The plan below
 * uses them for that shape, where oneDNN is slow. */
#define CM_CONV_THIN_LANES 16
void cm_conv3x3_thin_forward(float *out, const float *inp, const float *taps, const float *bias,
                             int H, int W, int C);
/* dinp OVERWRITTEN. */
void cm_conv3x3_thin_backward_data(float *dinp, const float *dout, const float *taps, int H, int W,
                                   int C);
/* dtaps[9][C] and dbias[1] ADDED to. */
void cm_conv3x3_thin_backward_weights(float *dtaps, float *dbias, const float *dout,
                                      const float *inp, int H, int W, int C);

/* ---- oneDNN plan: one row, float */

typedef struct cm_conv_plan cm_conv_plan;

/* Primitives for a row of shape [H, W, C] -> [OH, OW, OC] on `onednn` (borrowed: it must
 * outlive the plan; every call on the plan runs on its stream). The plan owns its weight
 * buffers in oneDNN's formats; the scratchpad is the caller's (cm_conv_plan_bind_scratchpad
 * before the first run). CM_ERR_INVALID for shapes out of range, CM_ERR_UNSUPPORTED or
 * CM_ERR_NOMEM when oneDNN refuses. */
cm_status cm_conv_plan_create(cm_conv_plan **out, cm_onednn *onednn, int H, int W, int C, int OC,
                              int K, int stride);
void cm_conv_plan_free(cm_conv_plan *plan);
/* Bytes of scratchpad the plan's largest primitive needs (at least 1). */
size_t cm_conv_plan_scratchpad_bytes(const cm_conv_plan *plan);
/* Use `buffer` (borrowed, >= the bytes above, 64-byte aligned preferred) as scratchpad; plans
 * that never run at the same time may share one buffer. */
cm_status cm_conv_plan_bind_scratchpad(cm_conv_plan *plan, void *buffer);

/* Copy weight[OC,C,K,K] into the primitives' formats. Call whenever the weights change: the
 * forward and backward-data calls below use the copy. */
cm_status cm_conv_plan_load_weights(cm_conv_plan *plan, const float *weight);
/* One row: out[OH,OW,OC] = conv(inp[H,W,C]) + bias (overwritten; bias not NULL). */
cm_status cm_conv_plan_forward(cm_conv_plan *plan, float *out, const float *inp,
                               const float *bias);
/* One row: dinp[H,W,C] = d/dinp of sum dout * out (OVERWRITTEN, unlike the reference). */
cm_status cm_conv_plan_backward_data(cm_conv_plan *plan, float *dinp, const float *dout);
/* One row: the weight gradient of (dout, inp) is added to the plan's running sum (first != 0
 * starts a new sum), and dbias[OC] += sum of dout over pixels. */
cm_status cm_conv_plan_backward_weights(cm_conv_plan *plan, float *dbias, const float *dout,
                                        const float *inp, int first);
/* dweight[OC,C,K,K] = the running sum (overwritten). */
cm_status cm_conv_plan_store_weight_gradient(cm_conv_plan *plan, float *dweight);

/* The implementation oneDNN chose for the forward primitive ("brgconv:avx512_core", ...). */
const char *cm_conv_plan_implementation(const cm_conv_plan *plan);

/* ---- the convolutions of one network (conv_set.c): one engine and stream, a plan per
 * convolution, one shared scratchpad (the plans run one at a time on the calling thread), and
 * the weights each plan holds, reordered again only when they change */

typedef struct {
    int height, width, channels, out_channels, kernel, stride; /* cm_conv_plan_create's */
} cm_conv_shape;

typedef struct cm_conv_set cm_conv_set;

/* count >= 1 plans of the given shapes (errors as cm_conv_plan_create; nothing left behind). */
cm_status cm_conv_set_create(cm_conv_set **out, const cm_conv_shape *shapes, size_t count);
void cm_conv_set_free(cm_conv_set *set);
/* Plan `index` (owned by the set). */
cm_conv_plan *cm_conv_set_plan(cm_conv_set *set, size_t index);
/* cm_conv_plan_load_weights of plan `index`, skipped when weight[OC,C,K,K] equals, bit for bit,
 * the weights the plan was last loaded from. */
cm_status cm_conv_set_load_weights(cm_conv_set *set, size_t index, const float *weight);

#endif
