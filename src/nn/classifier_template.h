/* classifier_template.h: the classifier of classifier.h, written once and compiled twice by
 * classifier.c: REAL = float (suffix "") with oneDNN convolutions and products, REAL = double
 * (suffix "_f64") with the reference loops and CBLAS. Expects REAL, FN(name), WORKSPACE (the
 * workspace tag), CONVS (the convolution state's tag) and, defined before the include:
 *   FN(convs_create)(&convs, classifier), FN(convs_free)(convs),
 *   FN(conv_load)(convs, classifier, params): the weights into the convolutions (per forward);
 *   FN(conv_forward)(convs, classifier, s, out, inp, params): stage s's conv on one row;
 *   FN(conv_backward)(convs, classifier, s, dinp, dparams, dout, inp, params, first): one row, dinp
 *     (may be NULL) OVERWRITTEN, the weight gradient summed over rows from `first`;
 *   FN(conv_finish)(convs, classifier, dparams): the summed weight gradients into dparams;
 *   GEMM(trans_a, trans_b, M, N, K, A, lda, B, ldb, beta, C, ldc): C = op(A) op(B) + beta C.
 *
 * Images go through the conv stages one row at a time, then through each Linear as one product
 * over the call's rows (M = rows; a row's values depend on the number of rows of the call, not
 * on the other rows' values: cm_classifier_apply calls with one row). The backward runs the
 * Linears as products over the rows first, then the stages one row at a time.
 */

struct WORKSPACE {
    size_t capacity;
    REAL *frames;   /* [capacity, frame_size]: each row's activations */
    REAL *grad;     /* [frame_size]: one row's gradients at the same offsets */
    REAL *d_norm;   /* [largest stage output]: GroupNorm + SiLU backward scratch */
    REAL *dhidden;  /* [capacity, F]: each row's gradient of the hidden layer (before SiLU) */
    REAL *dfeature; /* [capacity, F]: ... of the features */
    REAL *d_act4;   /* [capacity, flat]: ... of the last stage's output */
    void *block;    /* owns every array above */
    struct CONVS *convs;
};

cm_status FN(cm_classifier_workspace_alloc)(struct WORKSPACE **out, const cm_classifier *clf,
                                            size_t capacity) {
    *out = NULL;
    if (capacity == 0 || capacity > ((size_t)1 << 24))
        return cm_error_set(CM_ERR_INVALID, "classifier workspace: capacity %zu out of [1, 2^24]",
                            capacity);
    size_t frame = clf->frame_size, F = clf->config.features, align = 64 / sizeof(REAL);
    if (frame > SIZE_MAX / sizeof(REAL) / (capacity + 2) / 2)
        return cm_error_set(CM_ERR_NOMEM, "classifier workspace for %zu rows: too large",
                            capacity);
    size_t total = (capacity + 1) * frame + clf->largest_stage + capacity * (2 * F + clf->flat) +
                   align;
    struct WORKSPACE *ws = cm_calloc(1, sizeof *ws);
    if (!ws) return cm_error_set(CM_ERR_NOMEM, "classifier workspace");
    ws->block = cm_malloc(total, sizeof(REAL));
    if (!ws->block) {
        cm_free(ws);
        return cm_error_set(CM_ERR_NOMEM, "classifier workspace for %zu rows (%zu MB)", capacity,
                            total * sizeof(REAL) >> 20);
    }
    REAL *p = (REAL *)(((uintptr_t)ws->block + 63) / 64 * 64); /* frames are 16-value aligned */
    ws->capacity = capacity;
    ws->frames = p, p += capacity * frame;
    ws->grad = p, p += frame;
    ws->d_norm = p, p += clf->largest_stage;
    ws->dhidden = p, p += capacity * F;
    ws->dfeature = p, p += capacity * F;
    ws->d_act4 = p;
    cm_status status = FN(convs_create)(&ws->convs, clf);
    if (status != CM_OK) {
        cm_free(ws->block);
        cm_free(ws);
        return status;
    }
    *out = ws;
    return CM_OK;
}

void FN(cm_classifier_workspace_free)(struct WORKSPACE *workspace) {
    if (!workspace) return;
    FN(convs_free)(workspace->convs);
    cm_free(workspace->block);
    cm_free(workspace);
}

/* One row through the conv stages: frame's x = 2 pixels - 1 (NCHW -> channels-last), then each
 * stage's conv output, GroupNorm statistics and SiLU(GroupNorm) in the frame. */
static cm_status FN(stages_forward)(const REAL *params, const cm_classifier *clf,
                                    struct WORKSPACE *ws, const REAL *image, REAL *frame) {
    const cm_classifier_config *c = &clf->config;
    size_t HW = c->height * c->width;
    int G = (int)c->groups;
    REAL *x = frame + clf->frame_input;
    for (size_t p = 0; p < HW; p++)
        for (size_t ch = 0; ch < c->channels; ch++)
            x[p * c->channels + ch] = (REAL)2 * image[ch * HW + p] - (REAL)1;
    for (int s = 0; s < CM_CLASSIFIER_STAGES; s++) {
        const classifier_stage *st = &clf->stages[s];
        int out_HW = st->out_height * st->out_width, OC = st->out_channels;
        REAL *y = frame + st->frame_out, *stats = frame + st->frame_stats;
        CM_TRY(FN(conv_forward)(ws->convs, clf, s, y, frame + st->frame_in, params));
        FN(cm_groupnorm_statistics)(stats, stats + G, y, out_HW, OC, G);
        FN(cm_groupnorm_silu_forward)(frame + st->frame_act, y, stats, stats + G,
                                      params + st->norm_weight, params + st->norm_bias, out_HW,
                                      OC, G);
    }
    return CM_OK;
}

/* The rows' stages one row at a time, then each Linear as one product over the rows (M = rows:
 * a row's values depend on the number of rows of the call, not on the other rows' values). */
static cm_status FN(forward_rows)(REAL *logits, REAL *features, const REAL *params,
                                  const cm_classifier *clf, struct WORKSPACE *ws,
                                  const REAL *images, size_t rows) {
    if (rows < 1 || rows > ws->capacity)
        return cm_error_set(CM_ERR_INVALID, "classifier forward: %zu rows, workspace holds 1..%zu",
                            rows, ws->capacity);
    size_t D = clf->dim, F = clf->config.features, K = clf->config.classes;
    size_t frame = clf->frame_size;
    CM_TRY(FN(conv_load)(ws->convs, clf, params));
    for (size_t r = 0; r < rows; r++)
        CM_TRY(FN(stages_forward)(params, clf, ws, images + r * D, ws->frames + r * frame));
    /* hidden = act4 W1^T + b1, features = SiLU(hidden), logits = features W2^T + b2 */
    REAL *hidden = ws->frames + clf->frame_hidden, *feature = ws->frames + clf->frame_features;
    for (size_t r = 0; r < rows; r++)
        memcpy(hidden + r * frame, params + clf->linear1_bias, F * sizeof(REAL));
    GEMM(0, 1, rows, F, clf->flat, ws->frames + clf->stages[CM_CLASSIFIER_STAGES - 1].frame_act,
         frame, params + clf->linear1_weight, clf->flat, (REAL)1, hidden, frame);
    for (size_t r = 0; r < rows; r++) {
        FN(cm_silu_forward)(feature + r * frame, hidden + r * frame, (int)F);
        if (features) memcpy(features + r * F, feature + r * frame, F * sizeof(REAL));
        if (logits) memcpy(logits + r * K, params + clf->linear2_bias, K * sizeof(REAL));
    }
    if (logits)
        GEMM(0, 1, rows, K, F, feature, frame, params + clf->linear2_weight, F, (REAL)1, logits, K);
    return CM_OK;
}

/* One row's stages backward from d_act4 (the gradient of the last stage's output): the stages'
 * parameter gradients into dparams (convolutions through conv_backward). */
static cm_status FN(stages_backward)(REAL *dparams, const REAL *params, const cm_classifier *clf,
                                     struct WORKSPACE *ws, const REAL *frame, const REAL *d_act4,
                                     int first) {
    int G = (int)clf->config.groups;
    REAL *grad = ws->grad;
    for (int s = CM_CLASSIFIER_STAGES - 1; s >= 0; s--) {
        const classifier_stage *st = &clf->stages[s];
        int out_HW = st->out_height * st->out_width, OC = st->out_channels;
        const REAL *stats = frame + st->frame_stats;
        const REAL *d_act = s == CM_CLASSIFIER_STAGES - 1 ? d_act4 : grad + st->frame_act;
        FN(cm_groupnorm_silu_backward)(grad + st->frame_out, dparams + st->norm_weight,
                                       dparams + st->norm_bias, ws->d_norm, NULL, d_act,
                                       frame + st->frame_out, stats, stats + G,
                                       params + st->norm_weight, params + st->norm_bias, out_HW,
                                       OC, G, 1);
        /* the input gradient of the first conv is not wanted (the images are data) */
        REAL *dinp = s > 0 ? grad + clf->stages[s - 1].frame_act : NULL;
        CM_TRY(FN(conv_backward)(ws->convs, clf, s, dinp, dparams, grad + st->frame_out,
                                 frame + st->frame_in, params, first));
    }
    return CM_OK;
}

/* The Linears' backward as products over the rows: dfeature = dlogits W2, dhidden = dfeature
 * SiLU'(hidden), d act4 = dhidden W1 (into ws->d_act4), and their weight and bias gradients. */
static void FN(linears_backward)(REAL *dparams, const REAL *params, const cm_classifier *clf,
                                 struct WORKSPACE *ws, const REAL *dlogits, size_t rows) {
    size_t F = clf->config.features, K = clf->config.classes, frame = clf->frame_size;
    REAL *dhidden = ws->dhidden, *dfeature = ws->dfeature;
    GEMM(0, 0, rows, F, K, dlogits, K, params + clf->linear2_weight, F, (REAL)0, dfeature, F);
    memset(dhidden, 0, rows * F * sizeof(REAL));
    for (size_t r = 0; r < rows; r++)
        FN(cm_silu_backward)(dhidden + r * F, dfeature + r * F,
                             ws->frames + r * frame + clf->frame_hidden, (int)F);
    GEMM(0, 0, rows, clf->flat, F, dhidden, F, params + clf->linear1_weight, clf->flat, (REAL)0,
         ws->d_act4, clf->flat);
    const REAL *act4 = ws->frames + clf->stages[CM_CLASSIFIER_STAGES - 1].frame_act;
    GEMM(1, 0, F, clf->flat, rows, dhidden, F, act4, frame, (REAL)0,
         dparams + clf->linear1_weight, clf->flat);
    GEMM(1, 0, K, F, rows, dlogits, K, ws->frames + clf->frame_features, frame, (REAL)0,
         dparams + clf->linear2_weight, F);
    for (size_t r = 0; r < rows; r++) {
        for (size_t o = 0; o < F; o++) dparams[clf->linear1_bias + o] += dhidden[r * F + o];
        for (size_t o = 0; o < K; o++) dparams[clf->linear2_bias + o] += dlogits[r * K + o];
    }
}

static cm_status FN(backward_rows)(REAL *dparams, const REAL *params, const cm_classifier *clf,
                                   struct WORKSPACE *ws, const REAL *dlogits, size_t rows) {
    if (rows < 1 || rows > ws->capacity)
        return cm_error_set(CM_ERR_INVALID, "classifier backward: %zu rows, workspace holds "
                            "1..%zu", rows, ws->capacity);
    memset(dparams, 0, clf->param_count * sizeof(REAL));
    FN(linears_backward)(dparams, params, clf, ws, dlogits, rows);
    for (size_t r = 0; r < rows; r++)
        CM_TRY(FN(stages_backward)(dparams, params, clf, ws, ws->frames + r * clf->frame_size,
                                   ws->d_act4 + r * clf->flat, r == 0));
    return FN(conv_finish)(ws->convs, clf, dparams);
}
