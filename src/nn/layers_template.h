/* layers_template.h: the layer kernels of layers.h, written once and compiled twice by layers.c:
 * with REAL = float (suffix "") for training and REAL = double (suffix "_f64") for gradient
 * checks. Expects REAL, FN(name) (appends the suffix), EXP_NEG_ABS(x) (= exp(-|x|), see
 * layers.c), EXP_NEG_ABS_PARTS(x, &scale) (the same as m with exp(-|x|) = m * scale),
 * IF_NEGATIVE(x, a, b) (a if x's sign bit is set, else b) and CBLAS_GEMM to be defined, and the
 * helpers of layers.c (VECTOR_CLONES, cm_sincos_fast) above.
 * Layout of one linear layer: out[B,OC] = inp[B,C] @ weight[OC,C]^T + bias[OC].
 * The element-wise kernels are plain loops over restrict pointers that the compiler vectorises
 * (VECTOR_CLONES adds AVX-512 and AVX2 copies chosen at run time; no FMA contraction, so all
 * copies round identically).
 */

/* ---- layer kernels (the public ones keep their plain, reference form) */

void FN(cm_linear_forward)(REAL *out, const REAL *inp, const REAL *weight, const REAL *bias,
                           int B, int C, int OC) {
    for (int b = 0; b < B; b++)
        for (int o = 0; o < OC; o++) out[(size_t)b * OC + o] = bias ? bias[o] : (REAL)0;
    CBLAS_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, B, OC, C, (REAL)1, inp, C, weight, C,
               (REAL)1, out, OC);
}

void FN(cm_linear_backward)(REAL *dinp, REAL *dweight, REAL *dbias, const REAL *dout,
                            const REAL *inp, const REAL *weight, int B, int C, int OC) {
    /* dinp[B,C] += dout[B,OC] @ weight[OC,C] */
    if (dinp)
        CBLAS_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, B, C, OC, (REAL)1, dout, OC, weight,
                   C, (REAL)1, dinp, C);
    /* dweight[OC,C] += dout^T[OC,B] @ inp[B,C] */
    CBLAS_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, B, (REAL)1, dout, OC, inp, C,
               (REAL)1, dweight, C);
    if (dbias)
        for (int b = 0; b < B; b++)
            for (int o = 0; o < OC; o++) dbias[o] += dout[(size_t)b * OC + o];
}

/* silu(x) = x / (1 + exp(-x)), written with e = exp(-|x|) <= 1 so that exp never overflows:
 * x >= 0: x / (1 + e);  x < 0: x e / (1 + e), with x e rounded once (EXP_NEG_ABS_PARTS: e = m
 * scale, x e = (x m) scale) so that it stays accurate where e is subnormal. Both arms are computed and one selected (a
 * branch-free loop the compiler can vectorise; it will not speculate a multiply itself). */
VECTOR_CLONES
void FN(cm_silu_forward)(REAL *restrict out, const REAL *restrict inp, int N) {
    for (int i = 0; i < N; i++) {
        REAL x = inp[i], scale, m = EXP_NEG_ABS_PARTS(x, &scale), e = m * scale;
        REAL xe = x * m * scale;
        out[i] = IF_NEGATIVE(x, xe, x) / ((REAL)1 + e);
    }
}

/* silu'(x) = s (1 + x (1 - s)), s = sigmoid(x): with e = exp(-|x|) and q = 1 / (1 + e),
 * x >= 0: s = q, 1 - s = e q;  x < 0: s = e q, 1 - s = q. */
VECTOR_CLONES
void FN(cm_silu_backward)(REAL *restrict dinp, const REAL *restrict dout,
                          const REAL *restrict inp, int N) {
    for (int i = 0; i < N; i++) {
        REAL x = inp[i], e = EXP_NEG_ABS(x), q = (REAL)1 / ((REAL)1 + e);
        REAL eq = e * q, s = IF_NEGATIVE(x, eq, q), one_minus_s = IF_NEGATIVE(x, q, eq);
        dinp[i] += dout[i] * s * ((REAL)1 + x * one_minus_s);
    }
}

/* Fused: pre[B,W] += bias, act = silu(pre). */
VECTOR_CLONES
void FN(cm_bias_silu_forward)(REAL *restrict act, REAL *restrict pre,
                                  const REAL *restrict bias, int B, int W) {
    for (int b = 0; b < B; b++) {
        REAL *restrict p = pre + (size_t)b * W, *restrict a = act + (size_t)b * W;
        for (int o = 0; o < W; o++) {
            REAL x = p[o] + bias[o], scale, m = EXP_NEG_ABS_PARTS(x, &scale), e = m * scale;
            REAL xe = x * m * scale;
            p[o] = x;
            a[o] = IF_NEGATIVE(x, xe, x) / ((REAL)1 + e);
        }
    }
}

/* Fused: d_pre[B,W] = d_act * silu'(pre) (overwritten), dbias[W] (+)= column sums of d_pre
 * (added when accumulate, else overwritten), summed over b in order. */
VECTOR_CLONES
void FN(cm_silu_backward_bias)(REAL *restrict d_pre, REAL *restrict dbias,
                                   const REAL *restrict d_act, const REAL *restrict pre, int B,
                                   int W, int accumulate) {
    if (!accumulate)
        for (int o = 0; o < W; o++) dbias[o] = 0;
    for (int b = 0; b < B; b++) {
        const REAL *restrict x_row = pre + (size_t)b * W, *restrict g_row = d_act + (size_t)b * W;
        REAL *restrict d_row = d_pre + (size_t)b * W;
        for (int o = 0; o < W; o++) {
            REAL x = x_row[o], e = EXP_NEG_ABS(x), q = (REAL)1 / ((REAL)1 + e);
            REAL eq = e * q, s = IF_NEGATIVE(x, eq, q), one_minus_s = IF_NEGATIVE(x, q, eq);
            REAL d = g_row[o] * s * ((REAL)1 + x * one_minus_s);
            d_row[o] = d;
            dbias[o] += d;
        }
    }
}

/* out[B,OC] += bias (the output layer, after its GEMM). */
void FN(cm_add_bias)(REAL *restrict out, const REAL *restrict bias, int B, int OC) {
    for (int b = 0; b < B; b++)
        for (int o = 0; o < OC; o++) out[(size_t)b * OC + o] += bias[o];
}

/* dbias[OC] (+)= column sums of dout[B,OC], over b in order. */
void FN(cm_bias_gradient)(REAL *restrict dbias, const REAL *restrict dout, int B, int OC,
                              int accumulate) {
    if (!accumulate)
        for (int o = 0; o < OC; o++) dbias[o] = 0;
    for (int b = 0; b < B; b++)
        for (int o = 0; o < OC; o++) dbias[o] += dout[(size_t)b * OC + o];
}

/* Embedding rows: out[b * stride + k] = sin(f_k c_b), out[b * stride + half + k] = cos(f_k c_b).
 * Phases in double; a row whose largest phase is within CM_SINCOS_FAST_LIMIT goes through the
 * vectorised cm_sincos_fast (see nn.c), others through libm. Row b embeds c_noise[b c_stride]. A
 * row with the same c_noise as the previous row is copied (a sampler chunk has one level). */
void FN(cm_embed_rows)(REAL *out, size_t stride, const REAL *c_noise, size_t c_stride,
                           int B, int E, double max_frequency) {
    int half = E / 2; /* <= CM_EMBED_MAX_FEATURES / 2 */
    double log_step = half > 1 ? log(max_frequency) / (double)(half - 1) : 0.0;
    double frequency[2048], phase[2048], sine[2048], cosine[2048];
    for (int k = 0; k < half; k++) frequency[k] = exp(log_step * k);
    for (int b = 0; b < B; b++) {
        REAL *row = out + (size_t)b * stride;
        if (b > 0 && c_noise[b * c_stride] == c_noise[(b - 1) * c_stride]) {
            memcpy(row, row - stride, (size_t)E * sizeof(REAL));
            continue;
        }
        double c = (double)c_noise[b * c_stride];
        for (int k = 0; k < half; k++) phase[k] = frequency[k] * c;
        if (fabs(c) * frequency[half - 1] <= CM_SINCOS_FAST_LIMIT) {
            cm_sincos_fast(sine, cosine, phase, half);
        } else {
            for (int k = 0; k < half; k++) sine[k] = sin(phase[k]), cosine[k] = cos(phase[k]);
        }
        for (int k = 0; k < half; k++) {
            row[k] = (REAL)sine[k];
            row[half + k] = (REAL)cosine[k];
        }
    }
}

void FN(cm_fourier_embedding)(REAL *out, const REAL *c_noise, int B, int E,
                              double max_frequency) {
    FN(cm_embed_rows)(out, (size_t)E, c_noise, 1, B, E, max_frequency);
}

