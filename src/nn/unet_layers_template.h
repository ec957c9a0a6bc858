/* unet_layers_template.h: the kernels of unet_layers.h, written once and compiled twice by
 * unet_layers.c (REAL = float, suffix ""; REAL = double, suffix "_f64"). Expects REAL,
 * FN(name) and SiLU's EXP_NEG_ABS, EXP_NEG_ABS_PARTS and IF_NEGATIVE (layers_template.h's).
 * Sums over pixels are kept per channel (the innermost loop runs over channels, so the compiler
 * vectorises it without reordering any sum) and then added per group in channel order: the
 * result does not depend on the instruction set (VECTOR_CLONES, core/vectorize.h).
 *
 * The kernels that do little but sum (channel_sums, channel_square_sums and
 * groupnorm_input_gradient_sums) run over blocks of channels (32, then 16, then 1 at the end),
 * pixels inside a block: a block's sums then stay in vector registers from pixel to pixel.
 * Looping over all channels inside each pixel instead stores every sum and loads it back at the
 * next pixel (a chain through memory) and repeats the loop set-up per pixel: at 32 channels the
 * blocked sums run 3x faster (docs/images.md, section 1). A channel's sum still adds its pixels
 * in order, so the bits are the pixel-by-pixel loop's (tested against plain loops; a U-Net
 * trains to the same bits as before the change). The kernels with more work per value (SiLU's)
 * keep one pass over the pixels: blocked, they read the row once per block and measured slower.
 */

/* Runs `call` with c0 and width (a constant after inlining) over the channel blocks of [0, C). */
#ifndef CM_FOR_CHANNEL_BLOCKS
#define CM_CHANNEL_BLOCK 32
#define CM_FOR_CHANNEL_BLOCKS(C, call)                                             \
    do {                                                                           \
        int c0 = 0;                                                                \
        for (; c0 + CM_CHANNEL_BLOCK <= (C); c0 += CM_CHANNEL_BLOCK) {             \
            const int width = CM_CHANNEL_BLOCK;                                    \
            call;                                                                  \
        }                                                                          \
        for (; c0 + CM_CHANNEL_BLOCK / 2 <= (C); c0 += CM_CHANNEL_BLOCK / 2) {     \
            const int width = CM_CHANNEL_BLOCK / 2;                                \
            call;                                                                  \
        }                                                                          \
        for (; c0 < (C); c0++) {                                                   \
            const int width = 1;                                                   \
            call;                                                                  \
        }                                                                          \
    } while (0)
#endif

/* sum[c0, c0 + width) += the sum over pixels of inp[HW, C] in those channels. */
static inline ALWAYS_INLINE void FN(sums_block)(REAL *restrict sum, const REAL *restrict inp,
                                                int HW, int C, int c0, int width) {
    REAL acc[CM_CHANNEL_BLOCK];
    for (int j = 0; j < width; j++) acc[j] = sum[c0 + j];
    for (int p = 0; p < HW; p++)
        for (int j = 0; j < width; j++) acc[j] += inp[(size_t)p * C + c0 + j];
    for (int j = 0; j < width; j++) sum[c0 + j] = acc[j];
}

/* sum[C] += the sum over pixels of inp[HW, C] (one row). */
VECTOR_CLONES
static void FN(channel_sums)(REAL *restrict sum, const REAL *restrict inp, int HW, int C) {
    CM_FOR_CHANNEL_BLOCKS(C, FN(sums_block)(sum, inp, HW, C, c0, width));
}

static inline ALWAYS_INLINE void FN(square_sums_block)(REAL *restrict sum,
                                                       const REAL *restrict inp,
                                                       const REAL *restrict center, int HW, int C,
                                                       int c0, int width) {
    REAL acc[CM_CHANNEL_BLOCK], mid[CM_CHANNEL_BLOCK];
    for (int j = 0; j < width; j++) acc[j] = sum[c0 + j], mid[j] = center[c0 + j];
    for (int p = 0; p < HW; p++)
        for (int j = 0; j < width; j++) {
            REAL d = inp[(size_t)p * C + c0 + j] - mid[j];
            acc[j] += d * d;
        }
    for (int j = 0; j < width; j++) sum[c0 + j] = acc[j];
}

/* sum[C] += the sum over pixels of (inp - center[c])^2 (one row). */
VECTOR_CLONES
static void FN(channel_square_sums)(REAL *restrict sum, const REAL *restrict inp,
                                    const REAL *restrict center, int HW, int C) {
    CM_FOR_CHANNEL_BLOCKS(C, FN(square_sums_block)(sum, inp, center, HW, C, c0, width));
}

/* mean[G], rstd[G] from the per-channel sums sum[C] of inp[HW, C] (overwritten as scratch). */
static void FN(groupnorm_finish_statistics)(REAL *mean, REAL *rstd, REAL *sum, const REAL *inp,
                                            int HW, int C, int G) {
    REAL channel_mean[CM_GROUPNORM_MAX_CHANNELS];
    int per_group = C / G;
    double count = (double)HW * per_group;
    if (C < 1) return; /* never; tells GCC that channel_mean is written before it is read */
    for (int g = 0; g < G; g++) {
        REAL s = 0;
        for (int c = g * per_group; c < (g + 1) * per_group; c++) s += sum[c];
        mean[g] = (REAL)(s / count);
    }
    for (int c = 0; c < C; c++) channel_mean[c] = mean[c / per_group];
    /* two passes: the variance of centred values (no cancellation of E[x^2] - E[x]^2) */
    for (int c = 0; c < C; c++) sum[c] = 0;
    FN(channel_square_sums)(sum, inp, channel_mean, HW, C);
    for (int g = 0; g < G; g++) {
        REAL s = 0;
        for (int c = g * per_group; c < (g + 1) * per_group; c++) s += sum[c];
        rstd[g] = (REAL)(1.0 / sqrt((double)s / count + CM_GROUPNORM_EPSILON));
    }
}

void FN(cm_groupnorm_statistics)(REAL *mean, REAL *rstd, const REAL *inp, int HW, int C, int G) {
    REAL sum[CM_GROUPNORM_MAX_CHANNELS] = {0};
    FN(channel_sums)(sum, inp, HW, C);
    FN(groupnorm_finish_statistics)(mean, rstd, sum, inp, HW, C, G);
}

/* inp[p, c] += shift[c], summed per channel into sum[c] on the way (one row). */
VECTOR_CLONES
static void FN(channel_add_sums)(REAL *restrict sum, REAL *restrict inp,
                                 const REAL *restrict shift, int HW, int C) {
    for (int p = 0; p < HW; p++)
        for (int c = 0; c < C; c++) {
            size_t i = (size_t)p * C + c;
            inp[i] += shift[c];
            sum[c] += inp[i];
        }
}

void FN(cm_groupnorm_statistics_shifted)(REAL *mean, REAL *rstd, REAL *inp, const REAL *shift,
                                         int HW, int C, int G) {
    REAL sum[CM_GROUPNORM_MAX_CHANNELS] = {0};
    FN(channel_add_sums)(sum, inp, shift, HW, C);
    FN(groupnorm_finish_statistics)(mean, rstd, sum, inp, HW, C, G);
}

/* out[p, c] = (inp[p, c] - center[c]) * scale[c] + shift[c] (one row). */
VECTOR_CLONES
static void FN(channel_affine)(REAL *restrict out, const REAL *restrict inp,
                               const REAL *restrict center, const REAL *restrict scale,
                               const REAL *restrict shift, int HW, int C) {
    for (int p = 0; p < HW; p++)
        for (int c = 0; c < C; c++) {
            size_t i = (size_t)p * C + c;
            out[i] = (inp[i] - center[c]) * scale[c] + shift[c];
        }
}

void FN(cm_groupnorm_apply)(REAL *out, const REAL *inp, const REAL *mean, const REAL *rstd,
                            const REAL *weight, const REAL *bias, int HW, int C, int G) {
    REAL center[CM_GROUPNORM_MAX_CHANNELS], scale[CM_GROUPNORM_MAX_CHANNELS];
    int per_group = C / G;
    for (int c = 0; c < C; c++) {
        center[c] = mean[c / per_group];
        scale[c] = rstd[c / per_group] * weight[c];
    }
    FN(channel_affine)(out, inp, center, scale, bias, HW, C);
}

void FN(cm_groupnorm_forward)(REAL *out, REAL *mean, REAL *rstd, const REAL *inp,
                              const REAL *weight, const REAL *bias, int B, int HW, int C, int G) {
    for (int b = 0; b < B; b++) {
        size_t at = (size_t)b * HW * C;
        FN(cm_groupnorm_statistics)(mean + (size_t)b * G, rstd + (size_t)b * G, inp + at, HW, C, G);
        FN(cm_groupnorm_apply)(out + at, inp + at, mean + (size_t)b * G, rstd + (size_t)b * G,
                               weight, bias, HW, C, G);
    }
}

/* Per channel over pixels: s0[c] += sum dout, s1[c] += sum dout (inp - center[c]) (one row). */
VECTOR_CLONES
static void FN(groupnorm_gradient_sums)(REAL *restrict s0, REAL *restrict s1,
                                        const REAL *restrict dout, const REAL *restrict inp,
                                        const REAL *restrict center, int HW, int C) {
    for (int p = 0; p < HW; p++)
        for (int c = 0; c < C; c++) {
            size_t i = (size_t)p * C + c;
            s0[c] += dout[i];
            s1[c] += dout[i] * (inp[i] - center[c]);
        }
}

/* dinp[p, c] += dout k1[c] - k2[c] - (inp - center[c]) k3[c] (one row). */
VECTOR_CLONES
static void FN(groupnorm_input_gradient)(REAL *restrict dinp, const REAL *restrict dout,
                                         const REAL *restrict inp, const REAL *restrict center,
                                         const REAL *restrict k1, const REAL *restrict k2,
                                         const REAL *restrict k3, int HW, int C) {
    for (int p = 0; p < HW; p++)
        for (int c = 0; c < C; c++) {
            size_t i = (size_t)p * C + c;
            dinp[i] += dout[i] * k1[c] - k2[c] - (inp[i] - center[c]) * k3[c];
        }
}

/* With xhat = (x - mean) rstd and dxhat = dout weight, per group of n = HW C / G values:
 * dx = rstd (dxhat - mean(dxhat) - xhat mean(dxhat xhat)); dweight = sum dout xhat;
 * dbias = sum dout. From the per-channel sums s0 = sum dout, s1 = sum dout (x - mean): dweight,
 * dbias, and the per-channel coefficients of dx = dout k1 - k2 - (x - mean) k3. */
static void FN(groupnorm_gradient_coefficients)(REAL *dweight, REAL *dbias, REAL *k1, REAL *k2,
                                                REAL *k3, const REAL *s0, const REAL *s1,
                                                const REAL *rstd, const REAL *weight, int HW,
                                                int C, int G) {
    int per_group = C / G;
    REAL count = (REAL)((double)HW * per_group);
    for (int g = 0; g < G; g++) {
        REAL r = rstd[g], mean_dxhat = 0, mean_dxhat_xhat = 0;
        for (int c = g * per_group; c < (g + 1) * per_group; c++) {
            dweight[c] += s1[c] * r;
            dbias[c] += s0[c];
            mean_dxhat += weight[c] * s0[c];
            mean_dxhat_xhat += weight[c] * s1[c] * r;
        }
        mean_dxhat /= count;
        mean_dxhat_xhat /= count;
        for (int c = g * per_group; c < (g + 1) * per_group; c++) {
            k1[c] = r * weight[c];
            k2[c] = r * mean_dxhat;
            k3[c] = r * r * mean_dxhat_xhat;
        }
    }
}

static void FN(groupnorm_backward_row)(REAL *dinp, REAL *dweight, REAL *dbias, const REAL *dout,
                                       const REAL *inp, const REAL *mean, const REAL *rstd,
                                       const REAL *weight, int HW, int C, int G) {
    REAL s0[CM_GROUPNORM_MAX_CHANNELS] = {0}, s1[CM_GROUPNORM_MAX_CHANNELS] = {0};
    REAL center[CM_GROUPNORM_MAX_CHANNELS], k1[CM_GROUPNORM_MAX_CHANNELS];
    REAL k2[CM_GROUPNORM_MAX_CHANNELS], k3[CM_GROUPNORM_MAX_CHANNELS];
    int per_group = C / G;
    for (int c = 0; c < C; c++) center[c] = mean[c / per_group];
    FN(groupnorm_gradient_sums)(s0, s1, dout, inp, center, HW, C);
    FN(groupnorm_gradient_coefficients)(dweight, dbias, k1, k2, k3, s0, s1, rstd, weight, HW, C, G);
    FN(groupnorm_input_gradient)(dinp, dout, inp, center, k1, k2, k3, HW, C);
}

void FN(cm_groupnorm_backward)(REAL *dinp, REAL *dweight, REAL *dbias, const REAL *dout,
                               const REAL *inp, const REAL *mean, const REAL *rstd,
                               const REAL *weight, int B, int HW, int C, int G) {
    for (int b = 0; b < B; b++) {
        size_t at = (size_t)b * HW * C;
        FN(groupnorm_backward_row)(dinp + at, dweight, dbias, dout + at, inp + at,
                                   mean + (size_t)b * G, rstd + (size_t)b * G, weight, HW, C, G);
    }
}

void FN(cm_upsample_forward)(REAL *out, const REAL *inp, int B, int H, int W, int C) {
    size_t row = (size_t)C * sizeof(REAL);
    for (int b = 0; b < B; b++)
        for (int y = 0; y < 2 * H; y++)
            for (int x = 0; x < 2 * W; x++)
                memcpy(out + (((size_t)b * 2 * H + y) * 2 * W + x) * C,
                       inp + (((size_t)b * H + y / 2) * W + x / 2) * C, row);
}

void FN(cm_upsample_backward)(REAL *dinp, const REAL *dout, int B, int H, int W, int C) {
    for (int b = 0; b < B; b++)
        for (int y = 0; y < 2 * H; y++)
            for (int x = 0; x < 2 * W; x++) {
                REAL *d = dinp + (((size_t)b * H + y / 2) * W + x / 2) * C;
                const REAL *g = dout + (((size_t)b * 2 * H + y) * 2 * W + x) * C;
                for (int c = 0; c < C; c++) d[c] += g[c];
            }
}

void FN(cm_concat_forward)(REAL *out, const REAL *a, const REAL *b, int B, int HW, int C1,
                           int C2) {
    size_t pixels = (size_t)B * HW, C = (size_t)C1 + C2;
    for (size_t p = 0; p < pixels; p++) {
        memcpy(out + p * C, a + p * C1, (size_t)C1 * sizeof(REAL));
        memcpy(out + p * C + C1, b + p * C2, (size_t)C2 * sizeof(REAL));
    }
}

VECTOR_CLONES
static void FN(concat_backward_pixels)(REAL *restrict da, REAL *restrict db,
                                       const REAL *restrict dout, size_t pixels, int C1, int C2) {
    size_t C = (size_t)C1 + C2;
    for (size_t p = 0; p < pixels; p++) {
        for (int c = 0; c < C1; c++) da[p * C1 + c] += dout[p * C + c];
        for (int c = 0; c < C2; c++) db[p * C2 + c] += dout[p * C + C1 + c];
    }
}

void FN(cm_concat_backward)(REAL *da, REAL *db, const REAL *dout, int B, int HW, int C1, int C2) {
    FN(concat_backward_pixels)(da, db, dout, (size_t)B * HW, C1, C2);
}

void FN(cm_channel_add_forward)(REAL *out, const REAL *shift, int B, int HW, int C) {
    for (int b = 0; b < B; b++)
        for (int p = 0; p < HW; p++) {
            REAL *o = out + ((size_t)b * HW + p) * C;
            for (int c = 0; c < C; c++) o[c] += shift[(size_t)b * C + c];
        }
}

void FN(cm_channel_add_backward)(REAL *dshift, const REAL *dout, int B, int HW, int C) {
    for (int b = 0; b < B; b++) FN(channel_sums)(dshift + (size_t)b * C, dout + (size_t)b * HW * C, HW, C);
}

/* ---- GroupNorm + SiLU fused (the U-Net's pre-activation), one row. Each is the composition of
 * the plain kernels above and cm_silu_forward / cm_silu_backward (layers.h) with the same
 * arithmetic in the same order, so the bits are theirs (tested); fusing saves the passes that
 * write and read the normalised values. */

/* act[p, c] = SiLU((inp[p, c] - center[c]) * scale[c] + shift[c]) (one row). */
VECTOR_CLONES
static void FN(channel_affine_silu)(REAL *restrict act, const REAL *restrict inp,
                                    const REAL *restrict center, const REAL *restrict scale,
                                    const REAL *restrict shift, int HW, int C) {
    for (int p = 0; p < HW; p++)
        for (int c = 0; c < C; c++) {
            size_t i = (size_t)p * C + c;
            REAL x = (inp[i] - center[c]) * scale[c] + shift[c], e_scale;
            REAL m = EXP_NEG_ABS_PARTS(x, &e_scale), e = m * e_scale, xe = x * m * e_scale;
            act[i] = IF_NEGATIVE(x, xe, x) / ((REAL)1 + e);
        }
}

/* center[c] = mean of c's group, scale[c] = its rstd * weight[c]: GroupNorm as an affine map per
 * channel. */
static void FN(groupnorm_channel_affine)(REAL *center, REAL *scale, const REAL *mean,
                                         const REAL *rstd, const REAL *weight, int C, int G) {
    int per_group = C / G;
    for (int c = 0; c < C; c++) {
        center[c] = mean[c / per_group];
        scale[c] = rstd[c / per_group] * weight[c];
    }
}

void FN(cm_groupnorm_silu_forward)(REAL *act, const REAL *inp, const REAL *mean, const REAL *rstd,
                                   const REAL *weight, const REAL *bias, int HW, int C, int G) {
    REAL center[CM_GROUPNORM_MAX_CHANNELS], scale[CM_GROUPNORM_MAX_CHANNELS];
    FN(groupnorm_channel_affine)(center, scale, mean, rstd, weight, C, G);
    FN(channel_affine_silu)(act, inp, center, scale, bias, HW, C);
}

/* d_norm[p, c] = d_act * SiLU'(n) with n = (inp - center[c]) scale[c] + shift[c], and per
 * channel s0[c] += sum of d_norm, s1[c] += sum of d_norm (inp - center[c]) (one row). */
VECTOR_CLONES
static void FN(silu_gradient_sums)(REAL *restrict d_norm, REAL *restrict s0, REAL *restrict s1,
                                   const REAL *restrict d_act, const REAL *restrict inp,
                                   const REAL *restrict center, const REAL *restrict scale,
                                   const REAL *restrict shift, int HW, int C) {
    for (int p = 0; p < HW; p++)
        for (int c = 0; c < C; c++) {
            size_t i = (size_t)p * C + c;
            REAL x = (inp[i] - center[c]) * scale[c] + shift[c];
            REAL e = EXP_NEG_ABS(x), q = (REAL)1 / ((REAL)1 + e);
            REAL eq = e * q, s = IF_NEGATIVE(x, eq, q), one_minus_s = IF_NEGATIVE(x, q, eq);
            REAL d = d_act[i] * s * ((REAL)1 + x * one_minus_s);
            d_norm[i] = d;
            s0[c] += d;
            s1[c] += d * (inp[i] - center[c]);
        }
}

static inline ALWAYS_INLINE void FN(input_gradient_sums_block)(
    REAL *restrict dinp, REAL *restrict sums, const REAL *restrict d_norm,
    const REAL *restrict inp, const REAL *restrict center, const REAL *restrict k1,
    const REAL *restrict k2, const REAL *restrict k3, int HW, int C, int c0, int width) {
    REAL acc[CM_CHANNEL_BLOCK], mid[CM_CHANNEL_BLOCK];
    REAL a1[CM_CHANNEL_BLOCK], a2[CM_CHANNEL_BLOCK], a3[CM_CHANNEL_BLOCK];
    for (int j = 0; j < width; j++) {
        acc[j] = sums[c0 + j], mid[j] = center[c0 + j];
        a1[j] = k1[c0 + j], a2[j] = k2[c0 + j], a3[j] = k3[c0 + j];
    }
    for (int p = 0; p < HW; p++)
        for (int j = 0; j < width; j++) {
            size_t i = (size_t)p * C + c0 + j;
            REAL d = d_norm[i] * a1[j] - a2[j] - (inp[i] - mid[j]) * a3[j];
            dinp[i] = d;
            acc[j] += d;
        }
    for (int j = 0; j < width; j++) sums[c0 + j] = acc[j];
}

/* dinp[p, c] = d_norm k1[c] - k2[c] - (inp - center[c]) k3[c] (overwritten), and sums[c] += its
 * sum over pixels (one row). */
VECTOR_CLONES
static void FN(groupnorm_input_gradient_sums)(REAL *restrict dinp, REAL *restrict sums,
                                              const REAL *restrict d_norm,
                                              const REAL *restrict inp,
                                              const REAL *restrict center,
                                              const REAL *restrict k1, const REAL *restrict k2,
                                              const REAL *restrict k3, int HW, int C) {
    CM_FOR_CHANNEL_BLOCKS(C, FN(input_gradient_sums_block)(dinp, sums, d_norm, inp, center, k1,
                                                           k2, k3, HW, C, c0, width));
}

void FN(cm_groupnorm_silu_backward)(REAL *dinp, REAL *dweight, REAL *dbias, REAL *d_norm,
                                    REAL *dinp_sums, const REAL *d_act, const REAL *inp,
                                    const REAL *mean, const REAL *rstd, const REAL *weight,
                                    const REAL *bias, int HW, int C, int G, int overwrite) {
    REAL center[CM_GROUPNORM_MAX_CHANNELS], scale[CM_GROUPNORM_MAX_CHANNELS];
    REAL s0[CM_GROUPNORM_MAX_CHANNELS] = {0}, s1[CM_GROUPNORM_MAX_CHANNELS] = {0};
    REAL k1[CM_GROUPNORM_MAX_CHANNELS], k2[CM_GROUPNORM_MAX_CHANNELS];
    REAL k3[CM_GROUPNORM_MAX_CHANNELS], unused[CM_GROUPNORM_MAX_CHANNELS];
    FN(groupnorm_channel_affine)(center, scale, mean, rstd, weight, C, G);
    FN(silu_gradient_sums)(d_norm, s0, s1, d_act, inp, center, scale, bias, HW, C);
    FN(groupnorm_gradient_coefficients)(dweight, dbias, k1, k2, k3, s0, s1, rstd, weight, HW, C, G);
    if (overwrite)
        FN(groupnorm_input_gradient_sums)(dinp, dinp_sums ? dinp_sums : unused, d_norm, inp,
                                          center, k1, k2, k3, HW, C);
    else
        FN(groupnorm_input_gradient)(dinp, d_norm, inp, center, k1, k2, k3, HW, C);
}
