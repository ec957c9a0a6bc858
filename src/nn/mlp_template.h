/* mlp_template.h: the MLP of mlp.h over one row block, written once and compiled twice by mlp.c
 * (REAL = float, FN(name) = name; REAL = double, FN(name) = name##_f64, with CBLAS_GEMM the
 * matching GEMM and WORKSPACE the matching struct). Shapes: R rows of the block, D data, E
 * embedding features per level, L levels, W width, C0 = D + L E the input width.
 */

/* Activations of one row block: the concatenated input [R, C0] = [x_in, embed(c_noise_1), ..],
 * for every hidden layer its pre-activation and its SiLU output [R, W], and two gradient
 * buffers [R, max(W, C0)] for the backward pass. One allocation. */
struct WORKSPACE {
    size_t rows; /* capacity */
    REAL *block; /* owns every array below */
    REAL *input;
    REAL *pre[CM_MLP_MAX_DEPTH];
    REAL *act[CM_MLP_MAX_DEPTH];
    REAL *grad_a, *grad_b;
};

cm_status FN(cm_mlp_workspace_alloc)(struct WORKSPACE **out, const cm_mlp_layout *layout,
                                     size_t rows) {
    *out = NULL;
    size_t in0 = layout->in[0], W = layout->width, wide = W > in0 ? W : in0;
    if (rows == 0) return cm_error_set(CM_ERR_INVALID, "MLP workspace for 0 rows");
    struct WORKSPACE *ws = cm_calloc(1, sizeof *ws);
    if (!ws) return cm_error_set(CM_ERR_NOMEM, "MLP workspace");
    ws->block = cm_malloc(rows, (in0 + 2 * layout->depth * W + 2 * wide) * sizeof(REAL));
    if (!ws->block) {
        cm_free(ws);
        return cm_error_set(CM_ERR_NOMEM, "MLP workspace for %zu rows", rows);
    }
    ws->rows = rows;
    REAL *p = ws->block;
    ws->input = p, p += rows * in0;
    for (size_t l = 0; l < layout->depth; l++) {
        ws->pre[l] = p, p += rows * W;
        ws->act[l] = p, p += rows * W;
    }
    ws->grad_a = p, p += rows * wide;
    ws->grad_b = p;
    *out = ws;
    return CM_OK;
}

void FN(cm_mlp_workspace_free)(struct WORKSPACE *workspace) {
    if (!workspace) return;
    cm_free(workspace->block);
    cm_free(workspace);
}

void FN(cm_mlp_forward)(REAL *out, const REAL *params, const cm_mlp_layout *layout,
                        struct WORKSPACE *ws, const REAL *x_in, const REAL *c_noise, int R) {
    int D = (int)layout->dim, E = (int)layout->embed, W = (int)layout->width;
    size_t in0 = layout->in[0], levels = layout->noise_levels;
    /* input = [x_in, embedding(c_noise[r, 0]), .., embedding(c_noise[r, L - 1])] per row */
    for (int r = 0; r < R; r++)
        memcpy(ws->input + r * in0, x_in + (size_t)r * D, (size_t)D * sizeof(REAL));
    for (size_t j = 0; j < levels; j++)
        FN(cm_embed_rows)(ws->input + D + j * (size_t)E, in0, c_noise + j, levels, R, E,
                          layout->embed_max_frequency);
    const REAL *layer_in = ws->input;
    for (size_t l = 0; l < layout->depth; l++) {
        int C = (int)layout->in[l];
        CBLAS_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, R, W, C, (REAL)1, layer_in, C,
                   params + layout->weight_offset[l], C, (REAL)0, ws->pre[l], W);
        FN(cm_bias_silu_forward)(ws->act[l], ws->pre[l], params + layout->bias_offset[l], R, W);
        layer_in = ws->act[l];
    }
    size_t last = layout->depth;
    CBLAS_GEMM(CblasRowMajor, CblasNoTrans, CblasTrans, R, D, W, (REAL)1, layer_in, W,
               params + layout->weight_offset[last], W, (REAL)0, out, D);
    FN(cm_add_bias)(out, params + layout->bias_offset[last], R, D);
}

void FN(cm_mlp_backward)(REAL *dparams, REAL *dx_in, const REAL *params,
                         const cm_mlp_layout *layout, struct WORKSPACE *ws, const REAL *dout,
                         int R) {
    int D = (int)layout->dim, W = (int)layout->width;
    size_t in0 = layout->in[0], last = layout->depth;
    REAL *d_act = ws->grad_a, *d_pre = ws->grad_b;
    /* output layer: d_act[R,W] = dout @ weight; dweight = dout^T @ act[L-1]; dbias */
    CBLAS_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, R, W, D, (REAL)1, dout, D,
               params + layout->weight_offset[last], W, (REAL)0, d_act, W);
    CBLAS_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, D, W, R, (REAL)1, dout, D,
               ws->act[last - 1], W, (REAL)0, dparams + layout->weight_offset[last], W);
    FN(cm_bias_gradient)(dparams + layout->bias_offset[last], dout, R, D, 0);
    for (size_t l = last; l-- > 0;) {
        FN(cm_silu_backward_bias)(d_pre, dparams + layout->bias_offset[l], d_act, ws->pre[l], R, W,
                                  0);
        const REAL *layer_in = l > 0 ? ws->act[l - 1] : ws->input;
        int C = (int)layout->in[l];
        if (l > 0 || dx_in)
            CBLAS_GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, R, C, W, (REAL)1, d_pre, W,
                       params + layout->weight_offset[l], C, (REAL)0, d_act, C);
        CBLAS_GEMM(CblasRowMajor, CblasTrans, CblasNoTrans, W, C, R, (REAL)1, d_pre, W, layer_in,
                   C, (REAL)0, dparams + layout->weight_offset[l], C);
    }
    if (dx_in)
        for (int r = 0; r < R; r++)
            memcpy(dx_in + (size_t)r * D, d_act + (size_t)r * in0, (size_t)D * sizeof(REAL));
}
