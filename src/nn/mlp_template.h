/* mlp_template.h: the MLP of mlp.h over one row block, written once and compiled twice by mlp.c
 * (REAL = float, FN(name) = name; REAL = double, FN(name) = name##_f64). Expects WORKSPACE (the
 * struct's name), PRODUCTS (the type holding what the precision's products need) with
 * FN(mlp_products_create), FN(mlp_products_destroy) and FN(mlp_product) (one product of layer l
 * of the kinds MLP_FORWARD, MLP_INPUT_GRADIENT, MLP_WEIGHT_GRADIENT), and PAD_ROWS: 1 when the
 * products are made for one row count (float: oneDNN primitives for the workspace's capacity),
 * so that a block of fewer rows runs padded with zero rows to the capacity; 0 when they take any
 * row count (double: cblas_dgemm). Shapes: R rows of the block, M >= R rows the products run on
 * (the capacity when padding, else R), D data, E embedding features per level, L levels,
 * W width, C0 = D + L E the input width.
 */

/* Activations of one row block: the concatenated input [M, C0] = [x_in, embed(c_noise_1), ..],
 * for every hidden layer its pre-activation and its SiLU output [M, W], two gradient buffers
 * [M, max(W, C0)] for the backward pass, and (when padding) the output and its gradient of the
 * padded rows [M, D]. One allocation, zeroed: padding rows stay exact zeros. */
struct WORKSPACE {
    size_t rows; /* capacity */
    REAL *block; /* owns every array below */
    REAL *input;
    REAL *pre[CM_MLP_MAX_DEPTH];
    REAL *act[CM_MLP_MAX_DEPTH];
    REAL *grad_a, *grad_b;
    REAL *out_rows, *dout_rows; /* PAD_ROWS only */
    PRODUCTS products;
};

void FN(cm_mlp_workspace_free)(struct WORKSPACE *workspace) {
    if (!workspace) return;
    FN(mlp_products_destroy)(&workspace->products);
    cm_free(workspace->block);
    cm_free(workspace);
}

cm_status FN(cm_mlp_workspace_alloc)(struct WORKSPACE **out, const cm_mlp_layout *layout,
                                     size_t rows) {
    *out = NULL;
    size_t in0 = layout->in[0], W = layout->width, wide = W > in0 ? W : in0, D = layout->dim;
    if (rows == 0) return cm_error_set(CM_ERR_INVALID, "MLP workspace for 0 rows");
    struct WORKSPACE *ws = cm_calloc(1, sizeof *ws);
    if (!ws) return cm_error_set(CM_ERR_NOMEM, "MLP workspace");
    ws->block = cm_calloc(rows, (in0 + 2 * layout->depth * W + 2 * wide + (PAD_ROWS ? 2 * D : 0)) *
                                    sizeof(REAL));
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
    ws->grad_b = p, p += rows * wide;
    if (PAD_ROWS) ws->out_rows = p, ws->dout_rows = p + rows * D;
    cm_status status = FN(mlp_products_create)(&ws->products, layout, rows);
    if (status != CM_OK) {
        FN(cm_mlp_workspace_free)(ws);
        return status;
    }
    *out = ws;
    return CM_OK;
}

/* Rows [R, M) of x[M, C] set to zero (the padding rows of a product's operand). */
static void FN(mlp_zero_rows)(REAL *x, int R, int M, size_t C) {
    if (M > R) memset(x + (size_t)R * C, 0, (size_t)(M - R) * C * sizeof(REAL));
}

void FN(cm_mlp_forward)(REAL *out, const REAL *params, const cm_mlp_layout *layout,
                        struct WORKSPACE *ws, const REAL *x_in, const REAL *c_noise, int R) {
    int D = (int)layout->dim, E = (int)layout->embed, W = (int)layout->width;
    int M = PAD_ROWS ? (int)ws->rows : R;
    size_t in0 = layout->in[0], levels = layout->noise_levels;
    /* input = [x_in, embedding(c_noise[r, 0]), .., embedding(c_noise[r, L - 1])] per row */
    for (int r = 0; r < R; r++)
        memcpy(ws->input + r * in0, x_in + (size_t)r * D, (size_t)D * sizeof(REAL));
    for (size_t j = 0; j < levels; j++)
        FN(cm_embed_rows)(ws->input + D + j * (size_t)E, in0, c_noise + j, levels, R, E,
                          layout->embed_max_frequency);
    FN(mlp_zero_rows)(ws->input, R, M, in0);
    const REAL *layer_in = ws->input;
    for (size_t l = 0; l < layout->depth; l++) {
        /* pre[M,W] = layer_in[M,C] @ weight[W,C]^T; act = silu(pre + bias) */
        FN(mlp_product)(&ws->products, MLP_FORWARD, l, ws->pre[l], layer_in,
                        params + layout->weight_offset[l], M, W, (int)layout->in[l]);
        FN(cm_bias_silu_forward)(ws->act[l], ws->pre[l], params + layout->bias_offset[l], R, W);
        FN(mlp_zero_rows)(ws->act[l], R, M, (size_t)W);
        layer_in = ws->act[l];
    }
    size_t last = layout->depth;
    REAL *result = M > R ? ws->out_rows : out;
    FN(mlp_product)(&ws->products, MLP_FORWARD, last, result, layer_in,
                    params + layout->weight_offset[last], M, D, W);
    FN(cm_add_bias)(result, params + layout->bias_offset[last], R, D);
    if (result != out) memcpy(out, result, (size_t)R * D * sizeof(REAL));
}

void FN(cm_mlp_backward)(REAL *dparams, REAL *dx_in, const REAL *params,
                         const cm_mlp_layout *layout, struct WORKSPACE *ws, const REAL *dout,
                         int R) {
    int D = (int)layout->dim, W = (int)layout->width, M = PAD_ROWS ? (int)ws->rows : R;
    size_t in0 = layout->in[0], last = layout->depth;
    REAL *d_act = ws->grad_a, *d_pre = ws->grad_b;
    if (M > R) { /* dout of the padding rows: zero */
        memcpy(ws->dout_rows, dout, (size_t)R * D * sizeof(REAL));
        FN(mlp_zero_rows)(ws->dout_rows, R, M, (size_t)D);
        dout = ws->dout_rows;
    }
    /* output layer: d_act[M,W] = dout @ weight; dweight = dout^T @ act[L-1]; dbias */
    FN(mlp_product)(&ws->products, MLP_INPUT_GRADIENT, last, d_act, dout,
                    params + layout->weight_offset[last], M, W, D);
    FN(mlp_product)(&ws->products, MLP_WEIGHT_GRADIENT, last, dparams + layout->weight_offset[last],
                    dout, ws->act[last - 1], D, W, M);
    FN(cm_bias_gradient)(dparams + layout->bias_offset[last], dout, R, D, 0);
    for (size_t l = last; l-- > 0;) {
        /* d_pre = d_act * silu'(pre) (zero on padding rows), dbias; d_act = d_pre @ weight;
         * dweight = d_pre^T @ layer_in */
        FN(cm_silu_backward_bias)(d_pre, dparams + layout->bias_offset[l], d_act, ws->pre[l], R, W,
                                  0);
        FN(mlp_zero_rows)(d_pre, R, M, (size_t)W);
        const REAL *layer_in = l > 0 ? ws->act[l - 1] : ws->input;
        int C = (int)layout->in[l];
        if (l > 0 || dx_in)
            FN(mlp_product)(&ws->products, MLP_INPUT_GRADIENT, l, d_act, d_pre,
                            params + layout->weight_offset[l], M, C, W);
        FN(mlp_product)(&ws->products, MLP_WEIGHT_GRADIENT, l, dparams + layout->weight_offset[l],
                        d_pre, layer_in, W, C, M);
    }
    if (dx_in)
        for (int r = 0; r < R; r++)
            memcpy(dx_in + (size_t)r * D, d_act + (size_t)r * in0, (size_t)D * sizeof(REAL));
}
