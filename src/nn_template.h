/* nn_template.h: the MLP kernels of nn.h, written once and compiled twice by nn.c: with
 * REAL = float (suffix "") for training and REAL = double (suffix "_f64") for gradient checks.
 * Expects REAL, FN(name) (appends the suffix), EXP, CBLAS_GEMM and WORKSPACE to be defined.
 * Layout of one layer: out[B,OC] = inp[B,C] @ weight[OC,C]^T + bias[OC].
 */

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

void FN(cm_silu_forward)(REAL *out, const REAL *inp, int N) {
    for (int i = 0; i < N; i++) {
        REAL x = inp[i];
        out[i] = x / ((REAL)1 + EXP(-x));
    }
}

void FN(cm_silu_backward)(REAL *dinp, const REAL *dout, const REAL *inp, int N) {
    /* silu'(x) = s (1 + x (1 - s)), s = sigmoid(x) */
    for (int i = 0; i < N; i++) {
        REAL x = inp[i];
        REAL s = (REAL)1 / ((REAL)1 + EXP(-x));
        dinp[i] += dout[i] * s * ((REAL)1 + x * ((REAL)1 - s));
    }
}

void FN(cm_fourier_embedding)(REAL *out, const REAL *c_noise, int B, int E,
                              double max_frequency) {
    int half = E / 2; /* <= 2048 (cm_mlp_layout_init) */
    double log_step = half > 1 ? log(max_frequency) / (double)(half - 1) : 0.0;
    double frequency[2048];
    for (int k = 0; k < half; k++) frequency[k] = exp(log_step * k);
    for (int b = 0; b < B; b++) {
        for (int k = 0; k < half; k++) {
            double phase = frequency[k] * (double)c_noise[b];
            out[(size_t)b * E + k] = (REAL)sin(phase);
            out[(size_t)b * E + half + k] = (REAL)cos(phase);
        }
    }
}

/* Activations of one batch, one flat block: the concatenated input [B, D+E], and for every
 * hidden layer its pre-activation and its SiLU output [B, W]; plus two gradient buffers. */
struct WORKSPACE {
    size_t batch_capacity;
    REAL *block;
    REAL *input;                        /* [B, D+E] */
    REAL *pre[CM_MLP_MAX_DEPTH];        /* [B, W] before SiLU */
    REAL *act[CM_MLP_MAX_DEPTH];        /* [B, W] after SiLU */
    REAL *grad_a, *grad_b;              /* [B, max(W, D+E)] scratch for backward */
    REAL *c_noise_copy;                 /* [B] */
};

cm_status FN(cm_mlp_workspace_alloc)(struct WORKSPACE **out, const cm_mlp_layout *layout,
                                     size_t batch_capacity) {
    *out = NULL;
    const cm_mlp_config *c = &layout->config;
    size_t in0 = c->dim + c->embed, wide = c->width > in0 ? c->width : in0;
    if (batch_capacity == 0) return cm_error_set(CM_ERR_INVALID, "workspace: batch 0");
    size_t per_row = in0 + 2 * c->depth * c->width + 2 * wide + 1;
    struct WORKSPACE *ws = cm_calloc(1, sizeof *ws);
    if (!ws) return cm_error_set(CM_ERR_NOMEM, "MLP workspace");
    ws->block = cm_malloc(per_row, batch_capacity * sizeof(REAL));
    if (!ws->block) {
        cm_free(ws);
        return cm_error_set(CM_ERR_NOMEM, "MLP workspace for batch %zu", batch_capacity);
    }
    ws->batch_capacity = batch_capacity;
    REAL *p = ws->block;
    ws->input = p, p += batch_capacity * in0;
    for (size_t l = 0; l < c->depth; l++) {
        ws->pre[l] = p, p += batch_capacity * c->width;
        ws->act[l] = p, p += batch_capacity * c->width;
    }
    ws->grad_a = p, p += batch_capacity * wide;
    ws->grad_b = p, p += batch_capacity * wide;
    ws->c_noise_copy = p;
    *out = ws;
    return CM_OK;
}

void FN(cm_mlp_workspace_free)(struct WORKSPACE *workspace) {
    if (!workspace) return;
    cm_free(workspace->block);
    cm_free(workspace);
}

void FN(cm_mlp_forward)(REAL *out, const REAL *params, const cm_mlp_layout *layout,
                        struct WORKSPACE *ws, const REAL *x_in, const REAL *c_noise, int B) {
    const cm_mlp_config *c = &layout->config;
    int D = (int)c->dim, E = (int)c->embed, W = (int)c->width, in0 = D + E;
    /* input = [x_in, embedding(c_noise)] per row */
    REAL *embedding = ws->grad_a; /* scratch, [B, E] */
    FN(cm_fourier_embedding)(embedding, c_noise, B, E, c->embed_max_frequency);
    for (int b = 0; b < B; b++) {
        memcpy(ws->input + (size_t)b * in0, x_in + (size_t)b * D, (size_t)D * sizeof(REAL));
        memcpy(ws->input + (size_t)b * in0 + D, embedding + (size_t)b * E, (size_t)E * sizeof(REAL));
    }
    const REAL *layer_in = ws->input;
    for (size_t l = 0; l < c->depth; l++) {
        FN(cm_linear_forward)(ws->pre[l], layer_in, params + layout->weight_offset[l],
                              params + layout->bias_offset[l], B, (int)layout->in[l], W);
        FN(cm_silu_forward)(ws->act[l], ws->pre[l], B * W);
        layer_in = ws->act[l];
    }
    size_t last = c->depth;
    FN(cm_linear_forward)(out, layer_in, params + layout->weight_offset[last],
                          params + layout->bias_offset[last], B, W, D);
}

void FN(cm_mlp_backward)(REAL *dparams, REAL *dx_in, const REAL *params,
                         const cm_mlp_layout *layout, struct WORKSPACE *ws, const REAL *dout,
                         int B) {
    const cm_mlp_config *c = &layout->config;
    int D = (int)c->dim, E = (int)c->embed, W = (int)c->width, in0 = D + E;
    size_t last = c->depth;
    /* output layer: grad_a = d(act[L-1]) */
    REAL *d_act = ws->grad_a, *d_pre = ws->grad_b;
    memset(d_act, 0, (size_t)B * W * sizeof(REAL));
    FN(cm_linear_backward)(d_act, dparams + layout->weight_offset[last],
                           dparams + layout->bias_offset[last], dout, ws->act[last - 1],
                           params + layout->weight_offset[last], B, W, D);
    for (size_t l = last; l-- > 0;) {
        memset(d_pre, 0, (size_t)B * W * sizeof(REAL));
        FN(cm_silu_backward)(d_pre, d_act, ws->pre[l], B * W);
        const REAL *layer_in = l > 0 ? ws->act[l - 1] : ws->input;
        int C = (int)layout->in[l];
        int need_input_grad = l > 0 || dx_in != NULL;
        if (need_input_grad) memset(d_act, 0, (size_t)B * C * sizeof(REAL));
        FN(cm_linear_backward)(need_input_grad ? d_act : NULL, dparams + layout->weight_offset[l],
                               dparams + layout->bias_offset[l], d_pre, layer_in,
                               params + layout->weight_offset[l], B, C, W);
    }
    if (dx_in)
        for (int b = 0; b < B; b++)
            memcpy(dx_in + (size_t)b * D, d_act + (size_t)b * in0, (size_t)D * sizeof(REAL));
}
