/* unet_template.h: the U-Net of unet.h, written once and compiled twice by unet.c: REAL = float
 * (suffix "") with oneDNN convolutions, REAL = double (suffix "_f64") with the reference loops.
 * Expects REAL, FN(name), WORKSPACE (the workspace type's tag) and CONVS (the tag of the
 * convolution state: oneDNN plans, or nothing) with, defined before the include:
 *   FN(convs_create)(&convs, layout), FN(convs_free)(convs),
 *   FN(conv_load)(convs, layout, params): weights into the convolutions (once per forward);
 *   FN(conv_forward)(convs, layout, i, out, inp, params): one row;
 *   FN(conv_backward)(convs, layout, i, dinp, dparams, dout, inp, params, first): one row;
 *     dinp (may be NULL) OVERWRITTEN, the weight gradient summed over rows from `first`;
 *   FN(conv_finish)(convs, layout, dparams): the summed weight gradients into dparams;
 * and the SCRATCH_* indices of the per-row scratch arrays.
 *
 * Rows go through the whole network one at a time (forward_row, backward_row). A row keeps in
 * its frame only what the backward cannot cheaply recompute: the input, every op's output, each
 * block's h and GroupNorm statistics, the embedding. GroupNorm outputs, SiLUs, concatenations
 * and upsampled maps are recomputed in the backward from those (a few flops per value against
 * hundreds per value in the convolutions), which halves the memory per row (docs/unet.md).
 */

struct WORKSPACE {
    size_t capacity;
    REAL *frames;                 /* [capacity, frame_size] */
    REAL *grad;                   /* [frame_size]: one row's gradients, same offsets */
    REAL *scratch[SCRATCH_COUNT]; /* [scratch_size] each */
    REAL *shift, *dshift;         /* [max channels] a block's projected embedding */
    void *block;                  /* owns every array above */
    struct CONVS *convs;
};

static const REAL FN(inv_sqrt2) = (REAL)0.70710678118654752440; /* the residual scale */

cm_status FN(cm_unet_workspace_alloc)(struct WORKSPACE **out, const cm_unet_layout *layout,
                                      size_t capacity) {
    *out = NULL;
    if (capacity == 0 || capacity > ((size_t)1 << 24))
        return cm_error_set(CM_ERR_INVALID, "U-Net workspace: capacity %zu out of [1, 2^24]",
                            capacity);
    size_t frame = layout->frame_size, scratch = layout->scratch_size;
    size_t small = CM_GROUPNORM_MAX_CHANNELS, align = 64 / sizeof(REAL);
    if (frame > SIZE_MAX / sizeof(REAL) / (capacity + 1) / 2)
        return cm_error_set(CM_ERR_NOMEM, "U-Net workspace for %zu rows: too large", capacity);
    size_t total = (capacity + 1) * frame + SCRATCH_COUNT * scratch + 2 * small + align;
    struct WORKSPACE *ws = cm_calloc(1, sizeof *ws);
    if (!ws) return cm_error_set(CM_ERR_NOMEM, "U-Net workspace");
    ws->block = cm_malloc(total, sizeof(REAL));
    if (!ws->block) {
        cm_free(ws);
        return cm_error_set(CM_ERR_NOMEM, "U-Net workspace for %zu rows (%zu MB)", capacity,
                            total * sizeof(REAL) >> 20);
    }
    REAL *p = (REAL *)(((uintptr_t)ws->block + 63) / 64 * 64); /* frames are 16-value aligned */
    ws->capacity = capacity;
    ws->frames = p, p += capacity * frame;
    ws->grad = p, p += frame;
    for (int i = 0; i < SCRATCH_COUNT; i++) ws->scratch[i] = p, p += scratch;
    ws->shift = p, p += small;
    ws->dshift = p;
    cm_status status = FN(convs_create)(&ws->convs, layout);
    if (status != CM_OK) {
        cm_free(ws->block);
        cm_free(ws);
        return status;
    }
    *out = ws;
    return CM_OK;
}

void FN(cm_unet_workspace_free)(struct WORKSPACE *workspace) {
    if (!workspace) return;
    FN(convs_free)(workspace->convs);
    cm_free(workspace->block);
    cm_free(workspace);
}

/* NCHW row [C, HW] <-> channels-last [HW, C] (a copy when C = 1). */
static void FN(to_channels_last)(REAL *out, const REAL *inp, size_t HW, size_t C) {
    for (size_t p = 0; p < HW; p++)
        for (size_t c = 0; c < C; c++) out[p * C + c] = inp[c * HW + p];
}

static void FN(to_channels_first)(REAL *out, const REAL *inp, size_t HW, size_t C) {
    for (size_t c = 0; c < C; c++)
        for (size_t p = 0; p < HW; p++) out[c * HW + p] = inp[p * C + c];
}

/* a[n] += b[n] */
VECTOR_CLONES
static void FN(add_to)(REAL *restrict a, const REAL *restrict b, size_t n) {
    for (size_t i = 0; i < n; i++) a[i] += b[i];
}

/* out[n] = (out[n] + skip[n]) / sqrt(2): the residual sum */
VECTOR_CLONES
static void FN(residual_add)(REAL *restrict out, const REAL *restrict skip, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = (out[i] + skip[i]) * FN(inv_sqrt2);
}

/* out[n] = a[n] / sqrt(2) */
VECTOR_CLONES
static void FN(residual_scale)(REAL *restrict out, const REAL *restrict a, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = a[i] * FN(inv_sqrt2);
}

/* ---- the noise embedding of one row: frame's Fourier [E L], embed1 = Linear1(Fourier),
 * embed1_act = SiLU(embed1), embed2 = Linear2(embed1_act), embed_act = SiLU(embed2) [4ch] */

static void FN(embedding_forward)(REAL *frame, const REAL *params, const cm_unet_layout *L,
                                  const REAL *c_noise) {
    const cm_unet_config *c = &L->config;
    int E = (int)c->embed, E4 = (int)L->embed_width, times = c->two_time ? 2 : 1;
    REAL *fourier = frame + L->frame_fourier;
    for (int j = 0; j < times; j++)
        FN(cm_fourier_embedding)(fourier + j * E, c_noise + j, 1, E, c->embed_max_frequency);
    FN(cm_linear_forward)(frame + L->frame_embed1, fourier, params + L->embed1_weight,
                          params + L->embed1_bias, 1, E * times, E4);
    FN(cm_silu_forward)(frame + L->frame_embed1_act, frame + L->frame_embed1, E4);
    FN(cm_linear_forward)(frame + L->frame_embed2, frame + L->frame_embed1_act,
                          params + L->embed2_weight, params + L->embed2_bias, 1, E4, E4);
    FN(cm_silu_forward)(frame + L->frame_embed_act, frame + L->frame_embed2, E4);
}

/* From grad's d(embed_act) (the blocks' sum); grad's other embedding entries are zero on entry
 * and used as scratch. Adds into dparams. */
static void FN(embedding_backward)(REAL *dparams, REAL *grad, const REAL *frame,
                                   const REAL *params, const cm_unet_layout *L) {
    const cm_unet_config *c = &L->config;
    int E4 = (int)L->embed_width, EL = (int)c->embed * (c->two_time ? 2 : 1);
    FN(cm_silu_backward)(grad + L->frame_embed2, grad + L->frame_embed_act,
                         frame + L->frame_embed2, E4);
    FN(cm_linear_backward)(grad + L->frame_embed1_act, dparams + L->embed2_weight,
                           dparams + L->embed2_bias, grad + L->frame_embed2,
                           frame + L->frame_embed1_act, params + L->embed2_weight, 1, E4, E4);
    FN(cm_silu_backward)(grad + L->frame_embed1, grad + L->frame_embed1_act,
                         frame + L->frame_embed1, E4);
    FN(cm_linear_backward)(NULL, dparams + L->embed1_weight, dparams + L->embed1_bias,
                           grad + L->frame_embed1, frame + L->frame_fourier,
                           params + L->embed1_weight, 1, EL, E4);
}

/* ---- a residual block on one row (cm_unet_block): x [HW, cin] -> out [HW, cout] */

static cm_status FN(resblock_forward)(REAL *out, REAL *frame, struct WORKSPACE *ws,
                                      const REAL *x, const REAL *emb_act, const REAL *params,
                                      const cm_unet_layout *L, size_t index) {
    const cm_unet_block *b = &L->blocks[index];
    int HW = (int)(b->height * b->width), cin = (int)b->in_channels, cout = (int)b->out_channels;
    int G = (int)L->config.groups;
    REAL *act = ws->scratch[SCRATCH_ACT], *skip = ws->scratch[SCRATCH_OUT], *h = frame + b->h;
    REAL *stats1 = frame + b->stats1, *stats2 = frame + b->stats2;
    /* h = conv1(SiLU(GN1(x))) + Linear(SiLU(emb)) per channel */
    FN(cm_groupnorm_statistics)(stats1, stats1 + G, x, HW, cin, G);
    FN(cm_groupnorm_silu_forward)(act, x, stats1, stats1 + G, params + b->norm1_weight,
                                  params + b->norm1_bias, HW, cin, G);
    CM_TRY(FN(conv_forward)(ws->convs, L, b->conv1, h, act, params));
    FN(cm_linear_forward)(ws->shift, emb_act, params + b->embed_weight, params + b->embed_bias, 1,
                          (int)L->embed_width, cout);
    FN(cm_groupnorm_statistics_shifted)(stats2, stats2 + G, h, ws->shift, HW, cout, G);
    /* out = (conv2(SiLU(GN2(h))) + skip(x)) / sqrt(2) */
    FN(cm_groupnorm_silu_forward)(act, h, stats2, stats2 + G, params + b->norm2_weight,
                                  params + b->norm2_bias, HW, cout, G);
    CM_TRY(FN(conv_forward)(ws->convs, L, b->conv2, out, act, params));
    if (b->skip >= 0) CM_TRY(FN(conv_forward)(ws->convs, L, b->skip, skip, x, params));
    FN(residual_add)(out, b->skip >= 0 ? skip : x, (size_t)HW * cout);
    return CM_OK;
}

/* dx [HW, cin] += d/dx, d_emb_act [4ch] += d/d(SiLU(emb)), the block's parameter gradients into
 * dparams (convolutions through conv_backward), from dout [HW, cout]. */
static cm_status FN(resblock_backward)(REAL *dx, REAL *d_emb_act, REAL *dparams, const REAL *dout,
                                       const REAL *frame, struct WORKSPACE *ws, const REAL *x,
                                       const REAL *emb_act, const REAL *params,
                                       const cm_unet_layout *L, size_t index, int first) {
    const cm_unet_block *b = &L->blocks[index];
    int HW = (int)(b->height * b->width), cin = (int)b->in_channels, cout = (int)b->out_channels;
    int G = (int)L->config.groups, E4 = (int)L->embed_width;
    REAL *d_norm = ws->scratch[SCRATCH_NORM], *act = ws->scratch[SCRATCH_ACT];
    REAL *g = ws->scratch[SCRATCH_OUT], *dh = ws->scratch[SCRATCH_GRAD_H];
    REAL *d_act = ws->scratch[SCRATCH_GRAD_ACT];
    const REAL *h = frame + b->h, *stats1 = frame + b->stats1, *stats2 = frame + b->stats2;
    size_t n_out = (size_t)HW * cout, n_in = (size_t)HW * cin;
    FN(residual_scale)(g, dout, n_out);
    /* the skip path */
    if (b->skip >= 0) {
        CM_TRY(FN(conv_backward)(ws->convs, L, b->skip, d_act, dparams, g, x, params, first));
        FN(add_to)(dx, d_act, n_in);
    } else {
        FN(add_to)(dx, g, n_out);
    }
    /* conv2 and GN2 (its input recomputed from h); dh overwritten, its channel sums are the
     * gradient of the projected embedding */
    FN(cm_groupnorm_silu_forward)(act, h, stats2, stats2 + G, params + b->norm2_weight,
                                  params + b->norm2_bias, HW, cout, G);
    CM_TRY(FN(conv_backward)(ws->convs, L, b->conv2, d_act, dparams, g, act, params, first));
    memset(ws->dshift, 0, (size_t)cout * sizeof(REAL));
    FN(cm_groupnorm_silu_backward)(dh, dparams + b->norm2_weight, dparams + b->norm2_bias, d_norm,
                                   ws->dshift, d_act, h, stats2, stats2 + G,
                                   params + b->norm2_weight, params + b->norm2_bias, HW, cout, G,
                                   1);
    FN(cm_linear_backward)(d_emb_act, dparams + b->embed_weight, dparams + b->embed_bias,
                           ws->dshift, emb_act, params + b->embed_weight, 1, E4, cout);
    /* conv1 and GN1 */
    FN(cm_groupnorm_silu_forward)(act, x, stats1, stats1 + G, params + b->norm1_weight,
                                  params + b->norm1_bias, HW, cin, G);
    CM_TRY(FN(conv_backward)(ws->convs, L, b->conv1, d_act, dparams, dh, act, params, first));
    FN(cm_groupnorm_silu_backward)(dx, dparams + b->norm1_weight, dparams + b->norm1_bias, d_norm,
                                   NULL, d_act, x, stats1, stats1 + G, params + b->norm1_weight,
                                   params + b->norm1_bias, HW, cin, G, 0);
    return CM_OK;
}

/* ---- the network, one row at a time */

static cm_status FN(forward_row)(REAL *out_row, const REAL *params, const cm_unet_layout *L,
                                 struct WORKSPACE *ws, const REAL *x_row, const REAL *c_row,
                                 size_t row) {
    const cm_unet_config *c = &L->config;
    int G = (int)c->groups;
    size_t HW = c->height * c->width;
    REAL *frame = ws->frames + row * L->frame_size;
    FN(to_channels_last)(frame + L->activations[0].offset, x_row, HW, c->channels);
    FN(embedding_forward)(frame, params, L, c_row);
    const REAL *emb_act = frame + L->frame_embed_act;
    for (size_t k = 0; k < L->op_count; k++) {
        const cm_unet_op *op = &L->ops[k];
        const cm_unet_activation *in = &L->activations[op->input];
        const REAL *x = frame + in->offset;
        REAL *y = op->output >= 0 ? frame + L->activations[op->output].offset : NULL;
        int in_HW = (int)(in->height * in->width), C = (int)in->channels;
        switch (op->kind) {
        case CM_UNET_OP_CONV_IN:
        case CM_UNET_OP_DOWNSAMPLE:
            CM_TRY(FN(conv_forward)(ws->convs, L, op->conv, y, x, params));
            break;
        case CM_UNET_OP_UPSAMPLE:
            FN(cm_upsample_forward)(ws->scratch[SCRATCH_CAT], x, 1, (int)in->height,
                                    (int)in->width, C);
            CM_TRY(FN(conv_forward)(ws->convs, L, op->conv, y, ws->scratch[SCRATCH_CAT], params));
            break;
        case CM_UNET_OP_RESBLOCK:
            if (op->skip >= 0) {
                FN(cm_concat_forward)(ws->scratch[SCRATCH_CAT], x,
                                      frame + L->activations[op->skip].offset, 1, in_HW, C,
                                      (int)L->activations[op->skip].channels);
                x = ws->scratch[SCRATCH_CAT];
            }
            CM_TRY(FN(resblock_forward)(y, frame, ws, x, emb_act, params, L, (size_t)op->block));
            break;
        case CM_UNET_OP_OUTPUT: {
            REAL *stats = frame + L->frame_out_stats, *result = ws->scratch[SCRATCH_OUT];
            FN(cm_groupnorm_statistics)(stats, stats + G, x, in_HW, C, G);
            FN(cm_groupnorm_silu_forward)(ws->scratch[SCRATCH_ACT], x, stats, stats + G,
                                          params + L->out_norm_weight, params + L->out_norm_bias,
                                          in_HW, C, G);
            CM_TRY(FN(conv_forward)(ws->convs, L, op->conv, result, ws->scratch[SCRATCH_ACT], params));
            FN(to_channels_first)(out_row, result, HW, c->channels);
            break;
        }
        }
    }
    return CM_OK;
}

/* One op's backward on one row: from grad at the op's output, add into grad at its inputs. */
static cm_status FN(backward_op)(REAL *dparams, const REAL *dout_row, const REAL *params,
                                 const cm_unet_layout *L, struct WORKSPACE *ws, const REAL *frame,
                                 const cm_unet_op *op, int first) {
    const cm_unet_config *c = &L->config;
    int G = (int)c->groups;
    const cm_unet_activation *in = &L->activations[op->input];
    const REAL *x = frame + in->offset;
    REAL *grad = ws->grad, *dx = grad + in->offset, *d_act = ws->scratch[SCRATCH_GRAD_ACT];
    const REAL *dy = op->output >= 0 ? grad + L->activations[op->output].offset : NULL;
    int in_HW = (int)(in->height * in->width), C = (int)in->channels;
    size_t n_in = (size_t)in_HW * C;
    switch (op->kind) {
    case CM_UNET_OP_CONV_IN: /* dx (the input's gradient) only when someone reads it */
        return FN(conv_backward)(ws->convs, L, op->conv, dx, dparams, dy, x, params, first);
    case CM_UNET_OP_DOWNSAMPLE:
        CM_TRY(FN(conv_backward)(ws->convs, L, op->conv, d_act, dparams, dy, x, params, first));
        FN(add_to)(dx, d_act, n_in);
        return CM_OK;
    case CM_UNET_OP_UPSAMPLE: {
        REAL *up = ws->scratch[SCRATCH_CAT];
        FN(cm_upsample_forward)(up, x, 1, (int)in->height, (int)in->width, C);
        CM_TRY(FN(conv_backward)(ws->convs, L, op->conv, d_act, dparams, dy, up, params, first));
        FN(cm_upsample_backward)(dx, d_act, 1, (int)in->height, (int)in->width, C);
        return CM_OK;
    }
    case CM_UNET_OP_RESBLOCK: {
        const REAL *emb_act = frame + L->frame_embed_act;
        REAL *d_emb_act = grad + L->frame_embed_act;
        if (op->skip < 0)
            return FN(resblock_backward)(dx, d_emb_act, dparams, dy, frame, ws, x, emb_act,
                                         params, L, (size_t)op->block, first);
        const cm_unet_activation *skip = &L->activations[op->skip];
        REAL *cat = ws->scratch[SCRATCH_CAT], *d_cat = ws->scratch[SCRATCH_GRAD_CAT];
        int C2 = (int)skip->channels;
        FN(cm_concat_forward)(cat, x, frame + skip->offset, 1, in_HW, C, C2);
        memset(d_cat, 0, (size_t)in_HW * (C + C2) * sizeof(REAL));
        CM_TRY(FN(resblock_backward)(d_cat, d_emb_act, dparams, dy, frame, ws, cat, emb_act,
                                     params, L, (size_t)op->block, first));
        FN(cm_concat_backward)(dx, grad + skip->offset, d_cat, 1, in_HW, C, C2);
        return CM_OK;
    }
    case CM_UNET_OP_OUTPUT: {
        size_t HW = c->height * c->width;
        const REAL *stats = frame + L->frame_out_stats;
        REAL *d_norm = ws->scratch[SCRATCH_NORM], *act = ws->scratch[SCRATCH_ACT];
        REAL *d_result = ws->scratch[SCRATCH_OUT];
        FN(to_channels_last)(d_result, dout_row, HW, c->channels);
        FN(cm_groupnorm_silu_forward)(act, x, stats, stats + G, params + L->out_norm_weight,
                                      params + L->out_norm_bias, in_HW, C, G);
        CM_TRY(FN(conv_backward)(ws->convs, L, op->conv, d_act, dparams, d_result, act, params,
                                 first));
        FN(cm_groupnorm_silu_backward)(dx, dparams + L->out_norm_weight, dparams + L->out_norm_bias,
                                       d_norm, NULL, d_act, x, stats, stats + G,
                                       params + L->out_norm_weight, params + L->out_norm_bias,
                                       in_HW, C, G, 0);
        return CM_OK;
    }
    }
    return CM_OK;
}

static cm_status FN(backward_row)(REAL *dparams, REAL *dx_row, const REAL *params,
                                  const cm_unet_layout *L, struct WORKSPACE *ws,
                                  const REAL *dout_row, size_t row, int first) {
    const REAL *frame = ws->frames + row * L->frame_size;
    memset(ws->grad, 0, L->frame_size * sizeof(REAL));
    for (size_t k = L->op_count; k-- > 0;) {
        const cm_unet_op *op = &L->ops[k];
        /* conv_in's input gradient is wanted only for dx_in */
        if (op->kind == CM_UNET_OP_CONV_IN && !dx_row) {
            CM_TRY(FN(conv_backward)(ws->convs, L, op->conv, NULL, dparams,
                                     ws->grad + L->activations[op->output].offset,
                                     frame + L->activations[op->input].offset, params, first));
            continue;
        }
        CM_TRY(FN(backward_op)(dparams, dout_row, params, L, ws, frame, op, first));
    }
    FN(embedding_backward)(dparams, ws->grad, frame, params, L);
    if (dx_row)
        FN(to_channels_first)(dx_row, ws->grad + L->activations[0].offset,
                              L->config.height * L->config.width, L->config.channels);
    return CM_OK;
}

cm_status FN(cm_unet_forward)(REAL *out, const REAL *params, const cm_unet_layout *layout,
                              struct WORKSPACE *ws, const REAL *x_in, const REAL *c_noise,
                              size_t rows) {
    if (rows < 1 || rows > ws->capacity)
        return cm_error_set(CM_ERR_INVALID, "U-Net forward: %zu rows, workspace holds 1..%zu",
                            rows, ws->capacity);
    const cm_unet_config *c = &layout->config;
    size_t D = c->channels * c->height * c->width, times = c->two_time ? 2 : 1;
    CM_TRY(FN(conv_load)(ws->convs, layout, params));
    for (size_t r = 0; r < rows; r++)
        CM_TRY(FN(forward_row)(out + r * D, params, layout, ws, x_in + r * D, c_noise + r * times, r));
    return CM_OK;
}

cm_status FN(cm_unet_backward)(REAL *dparams, REAL *dx_in, const REAL *params,
                               const cm_unet_layout *layout, struct WORKSPACE *ws,
                               const REAL *dout, size_t rows) {
    if (rows < 1 || rows > ws->capacity)
        return cm_error_set(CM_ERR_INVALID, "U-Net backward: %zu rows, workspace holds 1..%zu",
                            rows, ws->capacity);
    const cm_unet_config *c = &layout->config;
    size_t D = c->channels * c->height * c->width;
    memset(dparams, 0, layout->param_count * sizeof(REAL));
    for (size_t r = 0; r < rows; r++)
        CM_TRY(FN(backward_row)(dparams, dx_in ? dx_in + r * D : NULL, params, layout, ws,
                                dout + r * D, r, r == 0));
    return FN(conv_finish)(ws->convs, layout, dparams);
}
