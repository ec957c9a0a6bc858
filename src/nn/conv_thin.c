/* conv_thin.c: 3x3 stride-1 convolutions with one output channel (the U-Net's output conv,
 * 32 -> 1), written here because oneDNN runs that shape at about 11 GFLOP/s forward and
 * backward-weights (its kernels block over output channels), a twentieth of its rate at the
 * other shapes; these loops run it at about 30 and 20 (docs/unet.md). (For one input channel,
 * the U-Net's conv_in, oneDNN's forward is as fast as such loops: it stays with oneDNN.)
 * Channels-last rows as in conv.h; the weights in tap order taps[ky 3 + kx][C], C a multiple of
 * 16 (the plan sends other counts to oneDNN). Each loop keeps 16 channels' sums in a local array
 * of 16 (vector registers) across the nine taps (or the pixels) and stores them once:
 * accumulating in memory instead chains every tap through a store and a load. The forward's sum
 * over channels keeps 16 partial sums, lane l summing the channels l, l + 16, ..., and adds the
 * lanes in order at the end: the same order whatever instruction set runs (VECTOR_CLONES), so
 * every clone gives the same bits.
 */
#include "core/vectorize.h"
#include "nn/conv.h"

#define LANES CM_CONV_THIN_LANES

/* lanes[l] += a[l] b[l], l < 16 */
static inline ALWAYS_INLINE void lane_products(float *restrict lanes, const float *restrict a,
                                               const float *restrict b) {
    for (int l = 0; l < LANES; l++) lanes[l] += a[l] * b[l];
}

static inline ALWAYS_INLINE float lane_total(const float *lanes, float start) {
    float sum = start;
    for (int l = 0; l < LANES; l++) sum += lanes[l];
    return sum;
}

/* One pixel: bias + sum over taps and channels of inp[y + ky - 1, x + kx - 1, c]
 * taps[ky 3 + kx][c], taps outside the image skipped. */
static inline ALWAYS_INLINE float pixel_to_one(const float *restrict inp,
                                               const float *restrict taps, float bias, int H,
                                               int W, int C, int y, int x) {
    float lanes[LANES] = {0};
    for (int ky = 0; ky < 3; ky++) {
        int iy = y + ky - 1;
        if (iy < 0 || iy >= H) continue;
        for (int kx = 0; kx < 3; kx++) {
            int ix = x + kx - 1;
            if (ix < 0 || ix >= W) continue;
            const float *v = inp + ((size_t)iy * W + ix) * C;
            const float *t = taps + (size_t)(ky * 3 + kx) * C;
            for (int c = 0; c < C; c += LANES) lane_products(lanes, v + c, t + c);
        }
    }
    return lane_total(lanes, bias);
}

VECTOR_CLONES
static void forward_to_one(float *restrict out, const float *restrict inp,
                           const float *restrict taps, float bias, int H, int W, int C) {
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            out[(size_t)y * W + x] = pixel_to_one(inp, taps, bias, H, W, C, y, x);
}

void cm_conv3x3_thin_forward(float *out, const float *inp, const float *taps, const float *bias,
                             int H, int W, int C) {
    forward_to_one(out, inp, taps, bias[0], H, W, C);
}

/* dinp[iy, ix, c] = the sum over the taps of dout at the output pixel the tap reaches
 * (y = iy - ky + 1, x = ix - kx + 1) times taps[ky 3 + kx][c], 16 channels at a time. */
VECTOR_CLONES
static void backward_data_to_one(float *restrict dinp, const float *restrict dout,
                                 const float *restrict taps, int H, int W, int C) {
    for (int iy = 0; iy < H; iy++)
        for (int ix = 0; ix < W; ix++)
            for (int c0 = 0; c0 < C; c0 += LANES) {
                float acc[LANES] = {0};
                for (int ky = 0; ky < 3; ky++) {
                    int y = iy - ky + 1;
                    if (y < 0 || y >= H) continue;
                    for (int kx = 0; kx < 3; kx++) {
                        int x = ix - kx + 1;
                        if (x < 0 || x >= W) continue;
                        float g = dout[(size_t)y * W + x];
                        const float *t = taps + (size_t)(ky * 3 + kx) * C + c0;
                        for (int l = 0; l < LANES; l++) acc[l] += g * t[l];
                    }
                }
                float *d = dinp + ((size_t)iy * W + ix) * C + c0;
                for (int l = 0; l < LANES; l++) d[l] = acc[l];
            }
}

void cm_conv3x3_thin_backward_data(float *dinp, const float *dout, const float *taps, int H, int W,
                                   int C) {
    backward_data_to_one(dinp, dout, taps, H, W, C);
}

/* Channels c0 .. c0 + 15 of dtaps[tap][c] += the sum over output pixels (in order) of
 * dout[y, x] inp[y + ky - 1, x + kx - 1, c]; the nine taps' 16 sums stay in acc (nine independent
 * sums per pixel). */
static inline ALWAYS_INLINE void weights_chunk(float *restrict dtaps, const float *restrict dout,
                                               const float *restrict inp, int H, int W, int C,
                                               int c0) {
    float acc[9][LANES] = {{0}};
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            float g = dout[(size_t)y * W + x];
            for (int ky = 0; ky < 3; ky++) {
                int iy = y + ky - 1;
                if (iy < 0 || iy >= H) continue;
                for (int kx = 0; kx < 3; kx++) {
                    int ix = x + kx - 1;
                    if (ix < 0 || ix >= W) continue;
                    const float *v = inp + ((size_t)iy * W + ix) * C + c0;
                    float *a = acc[ky * 3 + kx];
                    for (int l = 0; l < LANES; l++) a[l] += g * v[l];
                }
            }
        }
    for (int tap = 0; tap < 9; tap++)
        for (int l = 0; l < LANES; l++) dtaps[(size_t)tap * C + c0 + l] += acc[tap][l];
}

/* dtaps[9][C] += the weight gradient, dbias[0] += the sum of dout over pixels (in order). */
VECTOR_CLONES
static void backward_weights_to_one(float *restrict dtaps, float *restrict dbias,
                                    const float *restrict dout, const float *restrict inp, int H,
                                    int W, int C) {
    for (int c0 = 0; c0 < C; c0 += LANES) weights_chunk(dtaps, dout, inp, H, W, C, c0);
    for (int p = 0; p < H * W; p++) dbias[0] += dout[p];
}

void cm_conv3x3_thin_backward_weights(float *dtaps, float *dbias, const float *dout,
                                      const float *inp, int H, int W, int C) {
    backward_weights_to_one(dtaps, dbias, dout, inp, H, W, C);
}
