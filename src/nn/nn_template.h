/* nn_template.h: the MLP kernels of nn.h, written once and compiled twice by nn.c: with
 * REAL = float (suffix "") for training and REAL = double (suffix "_f64") for gradient checks.
 * Expects REAL, FN(name) (appends the suffix), EXP_NEG_ABS(x) (= exp(-|x|), see nn.c) and
 * EXP_NEG_ABS_PARTS(x, &scale) (the same as m with exp(-|x|) = m * scale),
 * IF_NEGATIVE(x, a, b) (a if x's sign bit is set, else b),
 * CBLAS_GEMM, WORKSPACE and SHARD to be defined, and the helpers of nn.c (VECTOR_CLONES,
 * cm_sincos_fast) above.
 * Layout of one layer: out[B,OC] = inp[B,C] @ weight[OC,C]^T + bias[OC].
 *
 * The MLP runs a batch as CM_MLP_SHARDS fixed row blocks (cm_parallel_for, one task per block,
 * each with its own activations): a block's arithmetic does not depend on the thread count, and
 * the per-block weight gradients are added in block order afterwards (docs/performance.md).
 * The element-wise kernels are plain loops over restrict pointers that the compiler vectorises
 * (VECTOR_CLONES adds an AVX2 copy chosen at run time; no FMA contraction, so both copies
 * round identically).
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
static void FN(bias_silu_forward)(REAL *restrict act, REAL *restrict pre,
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
static void FN(silu_backward_bias)(REAL *restrict d_pre, REAL *restrict dbias,
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
static void FN(add_bias)(REAL *restrict out, const REAL *restrict bias, int B, int OC) {
    for (int b = 0; b < B; b++)
        for (int o = 0; o < OC; o++) out[(size_t)b * OC + o] += bias[o];
}

/* dbias[OC] (+)= column sums of dout[B,OC], over b in order. */
static void FN(bias_gradient)(REAL *restrict dbias, const REAL *restrict dout, int B, int OC,
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
static void FN(embed_rows)(REAL *out, size_t stride, const REAL *c_noise, size_t c_stride,
                           int B, int E, double max_frequency) {
    int half = E / 2; /* <= 2048 (cm_mlp_layout_init) */
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
    FN(embed_rows)(out, (size_t)E, c_noise, 1, B, E, max_frequency);
}

/* ---- the MLP */

/* Activations of one row block: the concatenated input [R, C0] (C0 = D + E, or D + 2E for a
 * two-time network: [x, embed(c_noise), embed(c_noise_target)]), and for every hidden layer its
 * pre-activation and its SiLU output [R, W]; two gradient buffers; for blocks after the first,
 * their own weight gradient [P] (block 0 adds straight into the caller's). */
struct SHARD {
    REAL *input;                 /* [R, C0] */
    REAL *pre[CM_MLP_MAX_DEPTH]; /* [R, W] before SiLU (bias included) */
    REAL *act[CM_MLP_MAX_DEPTH]; /* [R, W] after SiLU */
    REAL *grad_a, *grad_b;       /* [R, max(W, C0)] scratch for backward */
    REAL *dparams;               /* [P], NULL for block 0 */
};

struct WORKSPACE {
    size_t batch_capacity;
    REAL *block; /* owns every array below */
    struct SHARD shard[CM_MLP_SHARDS];
    /* arguments of the current forward / backward, read by the block tasks */
    const cm_mlp_layout *layout;
    const REAL *params, *x_in, *c_noise, *dout;
    REAL *out, *dparams, *dx_in;
    int B;
};

cm_status FN(cm_mlp_workspace_alloc)(struct WORKSPACE **out, const cm_mlp_layout *layout,
                                     size_t batch_capacity) {
    *out = NULL;
    const cm_mlp_config *c = &layout->config;
    size_t in0 = layout->in[0], wide = c->width > in0 ? c->width : in0;
    if (batch_capacity == 0) return cm_error_set(CM_ERR_INVALID, "workspace: batch 0");
    size_t rows = (batch_capacity + CM_MLP_SHARDS - 1) / CM_MLP_SHARDS;
    size_t per_shard = rows * (in0 + 2 * c->depth * c->width + 2 * wide);
    size_t total = CM_MLP_SHARDS * per_shard + (CM_MLP_SHARDS - 1) * layout->param_count;
    struct WORKSPACE *ws = cm_calloc(1, sizeof *ws);
    if (!ws) return cm_error_set(CM_ERR_NOMEM, "MLP workspace");
    ws->block = cm_malloc(total, sizeof(REAL));
    if (!ws->block) {
        cm_free(ws);
        return cm_error_set(CM_ERR_NOMEM, "MLP workspace for batch %zu", batch_capacity);
    }
    ws->batch_capacity = batch_capacity;
    REAL *p = ws->block;
    for (size_t s = 0; s < CM_MLP_SHARDS; s++) {
        struct SHARD *sh = &ws->shard[s];
        sh->input = p, p += rows * in0;
        for (size_t l = 0; l < c->depth; l++) {
            sh->pre[l] = p, p += rows * c->width;
            sh->act[l] = p, p += rows * c->width;
        }
        sh->grad_a = p, p += rows * wide;
        sh->grad_b = p, p += rows * wide;
    }
    for (size_t s = 1; s < CM_MLP_SHARDS; s++) ws->shard[s].dparams = p, p += layout->param_count;
    *out = ws;
    return CM_OK;
}

void FN(cm_mlp_workspace_free)(struct WORKSPACE *workspace) {
    if (!workspace) return;
    cm_free(workspace->block);
    cm_free(workspace);
}

/* Forward of row block s alone: rows [first, end) of out from the same rows of x_in and c_noise,
 * activations into block s's buffers. Blocks touch disjoint rows and buffers, so different
 * blocks may run at the same time (one pool job running several networks' blocks). */
void FN(cm_mlp_forward_block)(REAL *out_all, const REAL *params, const cm_mlp_layout *layout,
                              struct WORKSPACE *ws, const REAL *x_in, const REAL *c_noise, int B,
                              size_t s) {
    const cm_mlp_config *c = &layout->config;
    size_t first, end;
    cm_parallel_range(&first, &end, (size_t)B, s, CM_MLP_SHARDS);
    if (end == first) return;
    struct SHARD *sh = &ws->shard[s];
    int R = (int)(end - first), D = (int)c->dim, E = (int)c->embed, W = (int)c->width;
    size_t in0 = layout->in[0], times = c->two_time ? 2 : 1;
    /* input = [x_in, embedding(c_noise[b, 0]), (two-time) embedding(c_noise[b, 1])] per row */
    for (int r = 0; r < R; r++)
        memcpy(sh->input + r * in0, x_in + (first + r) * D, (size_t)D * sizeof(REAL));
    for (size_t j = 0; j < times; j++)
        FN(embed_rows)(sh->input + D + j * (size_t)E, in0, c_noise + first * times + j, times, R,
                       E, c->embed_max_frequency);
    const REAL *layer_in = sh->input;
    for (size_t l = 0; l < c->depth; l++) {
        int C = (int)layout->in[l];
        CBLAS_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, R, W, C, (REAL)1, layer_in, C,
                   params + layout->weight_offset[l], C, (REAL)0, sh->pre[l], W);
        FN(bias_silu_forward)(sh->act[l], sh->pre[l], params + layout->bias_offset[l], R, W);
        layer_in = sh->act[l];
    }
    size_t last = c->depth;
    REAL *out = out_all + first * D;
    CBLAS_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, R, D, W, (REAL)1, layer_in, W,
               params + layout->weight_offset[last], W, (REAL)0, out, D);
    FN(add_bias)(out, params + layout->bias_offset[last], R, D);
}

/* Forward of row block s of the current call (the arguments in ws). */
static void FN(forward_shard)(void *context, size_t s) {
    struct WORKSPACE *ws = context;
    FN(cm_mlp_forward_block)(ws->out, ws->params, ws->layout, ws, ws->x_in, ws->c_noise, ws->B, s);
}

void FN(cm_mlp_forward)(REAL *out, const REAL *params, const cm_mlp_layout *layout,
                        struct WORKSPACE *ws, const REAL *x_in, const REAL *c_noise, int B) {
    ws->layout = layout;
    ws->params = params;
    ws->x_in = x_in;
    ws->c_noise = c_noise;
    ws->out = out;
    ws->B = B;
    cm_parallel_for(FN(forward_shard), ws, CM_MLP_SHARDS);
}

/* Backward of row block s alone (after its cm_mlp_forward_block): block 0 adds into dparams,
 * block s > 0 overwrites its own gradient in the workspace (GEMM beta 0), which
 * cm_mlp_reduce_blocks then adds to dparams. */
void FN(cm_mlp_backward_block)(REAL *dparams_all, REAL *dx_in, const REAL *params,
                               const cm_mlp_layout *layout, struct WORKSPACE *ws,
                               const REAL *dout_all, int B, size_t s) {
    const cm_mlp_config *c = &layout->config;
    size_t first, end;
    cm_parallel_range(&first, &end, (size_t)B, s, CM_MLP_SHARDS);
    if (end == first) return;
    struct SHARD *sh = &ws->shard[s];
    int R = (int)(end - first), D = (int)c->dim, W = (int)c->width;
    size_t in0 = layout->in[0];
    int accumulate = s == 0;
    REAL beta = accumulate ? (REAL)1 : (REAL)0;
    REAL *dparams = accumulate ? dparams_all : sh->dparams;
    const REAL *dout = dout_all + first * D;
    size_t last = c->depth;
    REAL *d_act = sh->grad_a, *d_pre = sh->grad_b;
    /* output layer: d_act[R,W] = dout @ weight; dweight (+)= dout^T @ act[L-1]; dbias */
    CBLAS_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, R, W, D, (REAL)1, dout, D,
               params + layout->weight_offset[last], W, (REAL)0, d_act, W);
    CBLAS_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, D, W, R, (REAL)1, dout, D,
               sh->act[last - 1], W, beta, dparams + layout->weight_offset[last], W);
    FN(bias_gradient)(dparams + layout->bias_offset[last], dout, R, D, accumulate);
    for (size_t l = last; l-- > 0;) {
        FN(silu_backward_bias)(d_pre, dparams + layout->bias_offset[l], d_act, sh->pre[l], R, W,
                               accumulate);
        const REAL *layer_in = l > 0 ? sh->act[l - 1] : sh->input;
        int C = (int)layout->in[l];
        if (l > 0 || dx_in)
            CBLAS_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, R, C, W, (REAL)1, d_pre, W,
                       params + layout->weight_offset[l], C, (REAL)0, d_act, C);
        CBLAS_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, W, C, R, (REAL)1, d_pre, W, layer_in,
                   C, beta, dparams + layout->weight_offset[l], C);
    }
    if (dx_in)
        for (int r = 0; r < R; r++)
            memcpy(dx_in + (first + r) * D, d_act + (size_t)r * in0,
                   (size_t)D * sizeof(REAL));
}

/* Backward of row block s of the current call (the arguments in ws). */
static void FN(backward_shard)(void *context, size_t s) {
    struct WORKSPACE *ws = context;
    FN(cm_mlp_backward_block)(ws->dparams, ws->dx_in, ws->params, ws->layout, ws, ws->dout, ws->B,
                              s);
}

/* dparams += the gradients of blocks 1.., in block order; element ranges split over threads. */
static void FN(reduce_shards)(void *context, size_t part) {
    struct WORKSPACE *ws = context;
    size_t first, end;
    cm_parallel_range(&first, &end, ws->layout->param_count, part, CM_MLP_SHARDS);
    for (size_t s = 1; s < CM_MLP_SHARDS; s++) {
        size_t shard_first, shard_end;
        cm_parallel_range(&shard_first, &shard_end, (size_t)ws->B, s, CM_MLP_SHARDS);
        if (shard_end == shard_first) continue;
        REAL *restrict to = ws->dparams;
        const REAL *restrict from = ws->shard[s].dparams;
        for (size_t i = first; i < end; i++) to[i] += from[i];
    }
}

void FN(cm_mlp_reduce_blocks)(REAL *dparams, const cm_mlp_layout *layout, struct WORKSPACE *ws,
                              int B) {
    ws->layout = layout;
    ws->dparams = dparams;
    ws->B = B;
    cm_parallel_for_sized(FN(reduce_shards), ws, CM_MLP_SHARDS, layout->param_count);
}

void FN(cm_mlp_backward)(REAL *dparams, REAL *dx_in, const REAL *params,
                         const cm_mlp_layout *layout, struct WORKSPACE *ws, const REAL *dout,
                         int B) {
    ws->layout = layout;
    ws->params = params;
    ws->dout = dout;
    ws->dparams = dparams;
    ws->dx_in = dx_in;
    ws->B = B;
    cm_parallel_for(FN(backward_shard), ws, CM_MLP_SHARDS);
    FN(cm_mlp_reduce_blocks)(dparams, layout, ws, B);
}
