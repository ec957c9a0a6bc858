/* unet_layers_template.h: the kernels of unet_layers.h, written once and compiled twice by
 * unet_layers.c (REAL = float, suffix ""; REAL = double, suffix "_f64"). Expects REAL and
 * FN(name). Sums over pixels are kept per channel (the inner loop runs over channels, so the
 * compiler vectorises it without reordering any sum) and then added per group in channel order:
 * the result does not depend on the instruction set (VECTOR_CLONES, core/vectorize.h).
 */

/* sum[C] += the sum over pixels of inp[HW, C] (one row). */
VECTOR_CLONES
static void FN(channel_sums)(REAL *restrict sum, const REAL *restrict inp, int HW, int C) {
    for (int p = 0; p < HW; p++)
        for (int c = 0; c < C; c++) sum[c] += inp[(size_t)p * C + c];
}

/* sum[C] += the sum over pixels of (inp - center[c])^2 (one row). */
VECTOR_CLONES
static void FN(channel_square_sums)(REAL *restrict sum, const REAL *restrict inp,
                                    const REAL *restrict center, int HW, int C) {
    for (int p = 0; p < HW; p++)
        for (int c = 0; c < C; c++) {
            REAL d = inp[(size_t)p * C + c] - center[c];
            sum[c] += d * d;
        }
}

void FN(cm_groupnorm_statistics)(REAL *mean, REAL *rstd, const REAL *inp, int HW, int C, int G) {
    REAL sum[CM_GROUPNORM_MAX_CHANNELS] = {0}, channel_mean[CM_GROUPNORM_MAX_CHANNELS];
    int per_group = C / G;
    double count = (double)HW * per_group;
    FN(channel_sums)(sum, inp, HW, C);
    for (int g = 0; g < G; g++) {
        REAL s = 0;
        for (int c = g * per_group; c < (g + 1) * per_group; c++) s += sum[c];
        mean[g] = (REAL)(s / count);
        for (int c = g * per_group; c < (g + 1) * per_group; c++) channel_mean[c] = mean[g];
    }
    /* two passes: the variance of centred values (no cancellation of E[x^2] - E[x]^2) */
    for (int c = 0; c < C; c++) sum[c] = 0;
    FN(channel_square_sums)(sum, inp, channel_mean, HW, C);
    for (int g = 0; g < G; g++) {
        REAL s = 0;
        for (int c = g * per_group; c < (g + 1) * per_group; c++) s += sum[c];
        rstd[g] = (REAL)(1.0 / sqrt((double)s / count + CM_GROUPNORM_EPSILON));
    }
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
 * dbias = sum dout. */
static void FN(groupnorm_backward_row)(REAL *dinp, REAL *dweight, REAL *dbias, const REAL *dout,
                                       const REAL *inp, const REAL *mean, const REAL *rstd,
                                       const REAL *weight, int HW, int C, int G) {
    REAL s0[CM_GROUPNORM_MAX_CHANNELS] = {0}, s1[CM_GROUPNORM_MAX_CHANNELS] = {0};
    REAL center[CM_GROUPNORM_MAX_CHANNELS], k1[CM_GROUPNORM_MAX_CHANNELS];
    REAL k2[CM_GROUPNORM_MAX_CHANNELS], k3[CM_GROUPNORM_MAX_CHANNELS];
    int per_group = C / G;
    REAL count = (REAL)((double)HW * per_group);
    for (int c = 0; c < C; c++) center[c] = mean[c / per_group];
    FN(groupnorm_gradient_sums)(s0, s1, dout, inp, center, HW, C);
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

void FN(cm_concat_backward)(REAL *da, REAL *db, const REAL *dout, int B, int HW, int C1, int C2) {
    size_t pixels = (size_t)B * HW, C = (size_t)C1 + C2;
    for (size_t p = 0; p < pixels; p++) {
        for (int c = 0; c < C1; c++) da[p * C1 + c] += dout[p * C + c];
        for (int c = 0; c < C2; c++) db[p * C2 + c] += dout[p * C + C1 + c];
    }
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
