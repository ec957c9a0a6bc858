/* conv_thin.c: 3x3 stride-1 convolutions with one input or one output channel (the U-Net's
 * conv_in, 1 -> 32, and its output conv, 32 -> 1), written here because oneDNN runs these shapes
 * at 10-40 GFLOP/s (its kernels block over channels, and one side has a single channel), about
 * a tenth of its rate at the other shapes. Channels-last rows as in conv.h; the weights in tap
 * order taps[ky 3 + kx][N], N = C OC (the one channel count that is not 1). The loops run over
 * the N channels innermost, element-wise, so the compiler vectorises them (VECTOR_CLONES); the
 * two sums over channels (the forward of C -> 1, the backward-data of 1 -> OC) keep 16 partial
 * sums, lane l summing channels l, l + 16, ..., and add the lanes in order at the end: the same
 * order whatever instruction set runs, so every clone gives the same bits.
 */
#include <string.h>

#include "core/vectorize.h"
#include "nn/conv.h"

#define LANES 16

/* lanes[l] += the products a[c] b[c] of the channels c = l mod 16 (c < N), in channel order. */
static inline ALWAYS_INLINE void lane_products(float *restrict lanes, const float *restrict a,
                                               const float *restrict b, int N) {
    int c = 0;
    for (; c + LANES <= N; c += LANES)
        for (int l = 0; l < LANES; l++) lanes[l] += a[c + l] * b[c + l];
    for (int l = 0; c + l < N; l++) lanes[l] += a[c + l] * b[c + l];
}

static inline ALWAYS_INLINE float lane_total(const float *lanes, float start) {
    float sum = start;
    for (int l = 0; l < LANES; l++) sum += lanes[l];
    return sum;
}

/* C -> 1: out[y, x] = bias + sum over taps and channels of inp[y + ky - 1, x + kx - 1, c]
 * taps[ky 3 + kx][c]. */
VECTOR_CLONES
static void forward_to_one(float *restrict out, const float *restrict inp,
                           const float *restrict taps, float bias, int H, int W, int C) {
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            float lanes[LANES] = {0};
            for (int ky = 0; ky < 3; ky++) {
                int iy = y + ky - 1;
                if (iy < 0 || iy >= H) continue;
                for (int kx = 0; kx < 3; kx++) {
                    int ix = x + kx - 1;
                    if (ix < 0 || ix >= W) continue;
                    lane_products(lanes, inp + ((size_t)iy * W + ix) * C,
                                  taps + (size_t)(ky * 3 + kx) * C, C);
                }
            }
            out[(size_t)y * W + x] = lane_total(lanes, bias);
        }
}

/* 1 -> OC: out[y, x, oc] = bias[oc] + sum over taps of inp[y + ky - 1, x + kx - 1]
 * taps[ky 3 + kx][oc], taps in order (the reference loop's order). */
VECTOR_CLONES
static void forward_from_one(float *restrict out, const float *restrict inp,
                             const float *restrict taps, const float *restrict bias, int H, int W,
                             int OC) {
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            float *restrict o = out + ((size_t)y * W + x) * OC;
            for (int oc = 0; oc < OC; oc++) o[oc] = bias[oc];
            for (int ky = 0; ky < 3; ky++) {
                int iy = y + ky - 1;
                if (iy < 0 || iy >= H) continue;
                for (int kx = 0; kx < 3; kx++) {
                    int ix = x + kx - 1;
                    if (ix < 0 || ix >= W) continue;
                    float v = inp[(size_t)iy * W + ix];
                    const float *restrict t = taps + (size_t)(ky * 3 + kx) * OC;
                    for (int oc = 0; oc < OC; oc++) o[oc] += v * t[oc];
                }
            }
        }
}

void cm_conv3x3_thin_forward(float *out, const float *inp, const float *taps, const float *bias,
                             int H, int W, int C, int OC) {
    if (OC == 1)
        forward_to_one(out, inp, taps, bias[0], H, W, C);
    else
        forward_from_one(out, inp, taps, bias, H, W, OC);
}

/* dinp[iy, ix, :] = the sum over the taps of dout at the output pixel that tap reaches
 * (y = iy - ky + 1, x = ix - kx + 1) times taps[ky 3 + kx][:] (C -> 1: element-wise over C). */
VECTOR_CLONES
static void backward_data_to_one(float *restrict dinp, const float *restrict dout,
                                 const float *restrict taps, int H, int W, int C) {
    for (int iy = 0; iy < H; iy++)
        for (int ix = 0; ix < W; ix++) {
            float *restrict d = dinp + ((size_t)iy * W + ix) * C;
            for (int c = 0; c < C; c++) d[c] = 0;
            for (int ky = 0; ky < 3; ky++) {
                int y = iy - ky + 1;
                if (y < 0 || y >= H) continue;
                for (int kx = 0; kx < 3; kx++) {
                    int x = ix - kx + 1;
                    if (x < 0 || x >= W) continue;
                    float g = dout[(size_t)y * W + x];
                    const float *restrict t = taps + (size_t)(ky * 3 + kx) * C;
                    for (int c = 0; c < C; c++) d[c] += g * t[c];
                }
            }
        }
}

/* 1 -> OC: dinp[iy, ix] = sum over taps and output channels of dout[y, x, oc] taps[tap][oc]. */
VECTOR_CLONES
static void backward_data_from_one(float *restrict dinp, const float *restrict dout,
                                   const float *restrict taps, int H, int W, int OC) {
    for (int iy = 0; iy < H; iy++)
        for (int ix = 0; ix < W; ix++) {
            float lanes[LANES] = {0};
            for (int ky = 0; ky < 3; ky++) {
                int y = iy - ky + 1;
                if (y < 0 || y >= H) continue;
                for (int kx = 0; kx < 3; kx++) {
                    int x = ix - kx + 1;
                    if (x < 0 || x >= W) continue;
                    lane_products(lanes, dout + ((size_t)y * W + x) * OC,
                                  taps + (size_t)(ky * 3 + kx) * OC, OC);
                }
            }
            dinp[(size_t)iy * W + ix] = lane_total(lanes, 0.0f);
        }
}

void cm_conv3x3_thin_backward_data(float *dinp, const float *dout, const float *taps, int H, int W,
                                   int C, int OC) {
    if (OC == 1)
        backward_data_to_one(dinp, dout, taps, H, W, C);
    else
        backward_data_from_one(dinp, dout, taps, H, W, OC);
}

/* dtaps[tap][n] += sum over output pixels of the output gradient times the input value that tap
 * reads, element-wise over the N channels (C -> 1: dout[y, x] inp[.., n]; 1 -> OC: dout[y, x, n]
 * inp[..]); dbias[n] (OC of them) += the sum of dout over pixels. Pixels in order. */
VECTOR_CLONES
static void backward_weights_thin(float *restrict dtaps, float *restrict dbias,
                                  const float *restrict dout, const float *restrict inp, int H,
                                  int W, int C, int OC) {
    int N = C * OC;
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            const float *restrict g = dout + ((size_t)y * W + x) * OC;
            for (int oc = 0; oc < OC; oc++) dbias[oc] += g[oc];
            for (int ky = 0; ky < 3; ky++) {
                int iy = y + ky - 1;
                if (iy < 0 || iy >= H) continue;
                for (int kx = 0; kx < 3; kx++) {
                    int ix = x + kx - 1;
                    if (ix < 0 || ix >= W) continue;
                    const float *restrict v = inp + ((size_t)iy * W + ix) * C;
                    float *restrict d = dtaps + (size_t)(ky * 3 + kx) * N;
                    if (OC == 1)
                        for (int n = 0; n < N; n++) d[n] += g[0] * v[n];
                    else
                        for (int n = 0; n < N; n++) d[n] += g[n] * v[0];
                }
            }
        }
}

void cm_conv3x3_thin_backward_weights(float *dtaps, float *dbias, const float *dout,
                                      const float *inp, int H, int W, int C, int OC) {
    backward_weights_thin(dtaps, dbias, dout, inp, H, W, C, OC);
}
