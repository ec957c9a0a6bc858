/* conv_template.h: the reference convolution loops of conv.h, written once and compiled twice
 * by conv.c (REAL = float, suffix ""; REAL = double, suffix "_f64"). Expects REAL and FN(name).
 * Plain loops in the clearest order, no blocking: the definition that oneDNN is tested against
 * and the double path of the U-Net's gradient checks; they are not the training path.
 */

void FN(cm_conv2d_forward)(REAL *out, const REAL *inp, const REAL *weight, const REAL *bias,
                           int B, int H, int W, int C, int OC, int K, int stride) {
    int P = K / 2, OH = cm_conv2d_out_size(H, K, stride), OW = cm_conv2d_out_size(W, K, stride);
    size_t KK = (size_t)K * K;
    for (int b = 0; b < B; b++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                REAL *o = out + (((size_t)b * OH + oy) * OW + ox) * OC;
                for (int oc = 0; oc < OC; oc++) o[oc] = bias ? bias[oc] : (REAL)0;
                for (int ky = 0; ky < K; ky++) {
                    int iy = oy * stride - P + ky;
                    if (iy < 0 || iy >= H) continue; /* zero padding */
                    for (int kx = 0; kx < K; kx++) {
                        int ix = ox * stride - P + kx;
                        if (ix < 0 || ix >= W) continue;
                        const REAL *x = inp + (((size_t)b * H + iy) * W + ix) * C;
                        for (int oc = 0; oc < OC; oc++) {
                            const REAL *w = weight + (size_t)oc * C * KK + (size_t)ky * K + kx;
                            REAL sum = 0;
                            for (int c = 0; c < C; c++) sum += x[c] * w[c * KK];
                            o[oc] += sum;
                        }
                    }
                }
            }
}

void FN(cm_conv2d_backward)(REAL *dinp, REAL *dweight, REAL *dbias, const REAL *dout,
                            const REAL *inp, const REAL *weight, int B, int H, int W, int C,
                            int OC, int K, int stride) {
    int P = K / 2, OH = cm_conv2d_out_size(H, K, stride), OW = cm_conv2d_out_size(W, K, stride);
    size_t KK = (size_t)K * K;
    for (int b = 0; b < B; b++)
        for (int oy = 0; oy < OH; oy++)
            for (int ox = 0; ox < OW; ox++) {
                const REAL *g = dout + (((size_t)b * OH + oy) * OW + ox) * OC;
                if (dbias)
                    for (int oc = 0; oc < OC; oc++) dbias[oc] += g[oc];
                for (int ky = 0; ky < K; ky++) {
                    int iy = oy * stride - P + ky;
                    if (iy < 0 || iy >= H) continue;
                    for (int kx = 0; kx < K; kx++) {
                        int ix = ox * stride - P + kx;
                        if (ix < 0 || ix >= W) continue;
                        size_t at = (((size_t)b * H + iy) * W + ix) * C;
                        for (int oc = 0; oc < OC; oc++) {
                            size_t w_at = (size_t)oc * C * KK + (size_t)ky * K + kx;
                            REAL go = g[oc];
                            if (dinp)
                                for (int c = 0; c < C; c++) dinp[at + c] += go * weight[w_at + c * KK];
                            if (dweight)
                                for (int c = 0; c < C; c++) dweight[w_at + c * KK] += go * inp[at + c];
                        }
                    }
                }
            }
}
