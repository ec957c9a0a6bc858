/* classifier.c: the image classifier of classifier.h: configuration, layout (named tensors, the
 * four conv stages, each row's activation frame), PyTorch's initialisation, model files, the
 * softmax cross-entropy, evaluation of many images on the pool, and the network of
 * classifier_template.h instantiated twice: float with the U-Net's kernels (oneDNN
 * convolutions through a conv set, fused GroupNorm + SiLU, oneDNN products) and double with the
 * reference loops for gradient checks. No dropout, no data augmentation, no batch statistics.
 */
#include "cm/classifier.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/io.h"
#include "cm/parallel.h"
#include "nn/conv.h"
#include "nn/gemm.h"
#include "nn/layers.h"
#include "nn/unet_layers.h"

#define CM_CLASSIFIER_STAGES 4
#define CM_CLASSIFIER_MAX_SIDE 4096
#define CM_CLASSIFIER_MAX_WIDTH 1024 /* channels of a stage, and F */
#define CM_CLASSIFIER_MAX_CLASSES 4096
#define CM_CLASSIFIER_MAX_PARAMS (1 << 28) /* 1 GiB of weights */
#define CM_CLASSIFIER_FORMAT "cm-classifier-1"
#define FRAME_ALIGN 16 /* values: 64 bytes of floats */

/* A conv stage: conv 3x3 (stride 1 or 2), GroupNorm, SiLU; parameter and frame offsets. */
typedef struct {
    int height, width, in_channels, out_channels, stride, out_height, out_width;
    size_t weight, bias, norm_weight, norm_bias;    /* parameters */
    size_t frame_in, frame_out, frame_stats, frame_act; /* the row's frame */
} classifier_stage;

struct cm_classifier {
    cm_classifier_config config;
    size_t dim;  /* C H W */
    size_t flat; /* H/4 W/4 w2: the first Linear's input */
    classifier_stage stages[CM_CLASSIFIER_STAGES];
    size_t linear1_weight, linear1_bias, linear2_weight, linear2_bias;
    size_t frame_input, frame_hidden, frame_features, frame_size;
    size_t largest_stage; /* the largest stage output, OH OW OC */
    size_t param_count, tensor_count;
    cm_classifier_tensor tensors[CM_CLASSIFIER_TENSORS];
    char names[CM_CLASSIFIER_TENSORS][48];
    size_t fan_in[CM_CLASSIFIER_TENSORS]; /* 0: a GroupNorm tensor (weight 1, bias 0) */
    float *params;
    cm_safetensors *file; /* the file loaded from (its metadata), or NULL */
};

cm_classifier_config cm_classifier_config_default(size_t channels, size_t height, size_t width,
                                                  size_t classes) {
    return (cm_classifier_config){.channels = channels, .height = height, .width = width,
                                  .classes = classes, .width1 = 32, .width2 = 64,
                                  .features = 128, .groups = 8};
}

static cm_status check_config(const cm_classifier_config *c) {
    if (c->channels < 1 || c->channels > 64 || c->height < 4 || c->width < 4 ||
        c->height > CM_CLASSIFIER_MAX_SIDE || c->width > CM_CLASSIFIER_MAX_SIDE ||
        c->height % 4 || c->width % 4)
        return cm_error_set(CM_ERR_INVALID, "classifier: images %zu x %zu x %zu (need 1..64 "
                            "channels, sides divisible by 4 up to %d)", c->channels, c->height,
                            c->width, CM_CLASSIFIER_MAX_SIDE);
    if (c->classes < 2 || c->classes > CM_CLASSIFIER_MAX_CLASSES)
        return cm_error_set(CM_ERR_INVALID, "classifier: %zu classes (need 2..%d)", c->classes,
                            CM_CLASSIFIER_MAX_CLASSES);
    if (c->width1 < 1 || c->width2 < 1 || c->features < 1 || c->width1 > CM_CLASSIFIER_MAX_WIDTH ||
        c->width2 > CM_CLASSIFIER_MAX_WIDTH || c->features > CM_CLASSIFIER_MAX_WIDTH)
        return cm_error_set(CM_ERR_INVALID, "classifier: widths %zu, %zu, features %zu (need "
                            "1..%d)", c->width1, c->width2, c->features, CM_CLASSIFIER_MAX_WIDTH);
    if (c->groups < 1 || c->width1 % c->groups || c->width2 % c->groups)
        return cm_error_set(CM_ERR_INVALID, "classifier: %zu groups do not divide widths %zu and "
                            "%zu", c->groups, c->width1, c->width2);
    return CM_OK;
}

static size_t align_up(size_t n) { return (n + FRAME_ALIGN - 1) / FRAME_ALIGN * FRAME_ALIGN; }

static size_t add_tensor(cm_classifier *clf, const char *name, size_t fan_in, size_t rank,
                         size_t d0, size_t d1, size_t d2, size_t d3) {
    size_t t = clf->tensor_count++, shape[4] = {d0, d1, d2, d3};
    cm_classifier_tensor *tensor = &clf->tensors[t];
    snprintf(clf->names[t], sizeof clf->names[t], "classifier.%s", name);
    *tensor = (cm_classifier_tensor){.name = clf->names[t], .offset = clf->param_count,
                                     .count = 1, .rank = rank};
    for (size_t i = 0; i < rank; i++) tensor->shape[i] = shape[i], tensor->count *= shape[i];
    clf->fan_in[t] = fan_in;
    clf->param_count += tensor->count;
    return tensor->offset;
}

static size_t add_frame(cm_classifier *clf, size_t count) {
    size_t offset = clf->frame_size;
    clf->frame_size += align_up(count);
    return offset;
}

/* Stage s: conv 3x3 (stride) from the frame array `in` of H x W x C to OC channels. */
static void add_stage(cm_classifier *clf, int s, int H, int W, int C, int OC, int stride,
                      size_t in) {
    classifier_stage *st = &clf->stages[s];
    char name[32];
    size_t fan_in = (size_t)9 * C;
    *st = (classifier_stage){.height = H, .width = W, .in_channels = C, .out_channels = OC,
                             .stride = stride, .out_height = cm_conv2d_out_size(H, 3, stride),
                             .out_width = cm_conv2d_out_size(W, 3, stride), .frame_in = in};
    snprintf(name, sizeof name, "conv%d.weight", s + 1);
    st->weight = add_tensor(clf, name, fan_in, 4, OC, C, 3, 3);
    snprintf(name, sizeof name, "conv%d.bias", s + 1);
    st->bias = add_tensor(clf, name, fan_in, 1, OC, 1, 1, 1);
    snprintf(name, sizeof name, "norm%d.weight", s + 1);
    st->norm_weight = add_tensor(clf, name, 0, 1, OC, 1, 1, 1);
    snprintf(name, sizeof name, "norm%d.bias", s + 1);
    st->norm_bias = add_tensor(clf, name, 0, 1, OC, 1, 1, 1);
    size_t out = (size_t)st->out_height * st->out_width * OC;
    st->frame_out = add_frame(clf, out);
    st->frame_stats = add_frame(clf, 2 * clf->config.groups);
    st->frame_act = add_frame(clf, out);
    if (out > clf->largest_stage) clf->largest_stage = out;
}

static void layout(cm_classifier *clf) {
    const cm_classifier_config *c = &clf->config;
    int H = (int)c->height, W = (int)c->width, C = (int)c->channels;
    int w1 = (int)c->width1, w2 = (int)c->width2;
    clf->dim = c->channels * c->height * c->width;
    clf->frame_input = add_frame(clf, clf->dim);
    add_stage(clf, 0, H, W, C, w1, 1, clf->frame_input);
    add_stage(clf, 1, H, W, w1, w1, 2, clf->stages[0].frame_act);
    add_stage(clf, 2, H / 2, W / 2, w1, w2, 1, clf->stages[1].frame_act);
    add_stage(clf, 3, H / 2, W / 2, w2, w2, 2, clf->stages[2].frame_act);
    clf->flat = (size_t)(H / 4) * (size_t)(W / 4) * (size_t)w2;
    clf->linear1_weight = add_tensor(clf, "linear1.weight", clf->flat, 2, c->features, clf->flat, 1, 1);
    clf->linear1_bias = add_tensor(clf, "linear1.bias", clf->flat, 1, c->features, 1, 1, 1);
    clf->linear2_weight = add_tensor(clf, "linear2.weight", c->features, 2, c->classes, c->features, 1, 1);
    clf->linear2_bias = add_tensor(clf, "linear2.bias", c->features, 1, c->classes, 1, 1, 1);
    clf->frame_hidden = add_frame(clf, c->features);
    clf->frame_features = add_frame(clf, c->features);
}

cm_status cm_classifier_create(cm_classifier **out, const cm_classifier_config *config) {
    *out = NULL;
    CM_TRY(check_config(config));
    cm_classifier *clf = cm_calloc(1, sizeof *clf);
    if (!clf) return cm_error_set(CM_ERR_NOMEM, "classifier");
    clf->config = *config;
    layout(clf);
    if (clf->param_count > CM_CLASSIFIER_MAX_PARAMS) {
        size_t count = clf->param_count;
        cm_free(clf);
        return cm_error_set(CM_ERR_INVALID, "classifier: %zu parameters (at most %d)", count,
                            CM_CLASSIFIER_MAX_PARAMS);
    }
    if (!(clf->params = cm_calloc(clf->param_count, sizeof(float)))) {
        size_t count = clf->param_count;
        cm_free(clf);
        return cm_error_set(CM_ERR_NOMEM, "classifier: %zu parameters", count);
    }
    *out = clf;
    return CM_OK;
}

void cm_classifier_free(cm_classifier *clf) {
    if (!clf) return;
    cm_safetensors_free(clf->file);
    cm_free(clf->params);
    cm_free(clf);
}

const cm_classifier_config *cm_classifier_config_of(const cm_classifier *clf) {
    return &clf->config;
}
size_t cm_classifier_param_count(const cm_classifier *clf) { return clf->param_count; }
float *cm_classifier_params(cm_classifier *clf) { return clf->params; }
const float *cm_classifier_params_const(const cm_classifier *clf) { return clf->params; }

cm_classifier_tensor cm_classifier_tensor_at(const cm_classifier *clf, size_t index) {
    return clf->tensors[index];
}

void cm_classifier_init(cm_classifier *clf, cm_rng *rng) {
    for (size_t t = 0; t < clf->tensor_count; t++) {
        const cm_classifier_tensor *tensor = &clf->tensors[t];
        float *p = clf->params + tensor->offset;
        int norm_weight = clf->fan_in[t] == 0 && strstr(tensor->name, ".weight") != NULL;
        double bound = clf->fan_in[t] ? 1.0 / sqrt((double)clf->fan_in[t]) : 0.0;
        for (size_t i = 0; i < tensor->count; i++)
            p[i] = clf->fan_in[t] ? (float)(bound * (2.0 * cm_rng_uniform(rng) - 1.0))
                                  : (norm_weight ? 1.0f : 0.0f);
    }
}

/* ---- model files */

static const char *const config_keys[] = {"channels", "height", "width", "classes",
                                          "width1", "width2", "features", "groups"};
#define CONFIG_KEYS (sizeof config_keys / sizeof config_keys[0])

static size_t *config_field(cm_classifier_config *c, size_t i) {
    size_t *fields[CONFIG_KEYS] = {&c->channels, &c->height, &c->width, &c->classes,
                                   &c->width1, &c->width2, &c->features, &c->groups};
    return fields[i];
}

cm_status cm_classifier_save(const cm_classifier *clf, const char *path, const char *const *keys,
                             const char *const *values, size_t count) {
    if (count > 64) return cm_error_set(CM_ERR_INVALID, "classifier file: %zu metadata pairs", count);
    cm_tensor_view views[CM_CLASSIFIER_TENSORS];
    for (size_t t = 0; t < clf->tensor_count; t++) {
        const cm_classifier_tensor *tensor = &clf->tensors[t];
        views[t] = (cm_tensor_view){.name = tensor->name, .ndim = tensor->rank,
                                    .data = clf->params + tensor->offset};
        for (size_t i = 0; i < tensor->rank; i++) views[t].shape[i] = tensor->shape[i];
    }
    const char *all_keys[CONFIG_KEYS + 1 + 64], *all_values[CONFIG_KEYS + 1 + 64];
    char numbers[CONFIG_KEYS][32];
    cm_classifier_config config = clf->config;
    all_keys[0] = "format", all_values[0] = CM_CLASSIFIER_FORMAT;
    for (size_t i = 0; i < CONFIG_KEYS; i++) {
        snprintf(numbers[i], sizeof numbers[i], "%zu", *config_field(&config, i));
        all_keys[1 + i] = config_keys[i], all_values[1 + i] = numbers[i];
    }
    for (size_t i = 0; i < count; i++) {
        for (size_t j = 0; j < CONFIG_KEYS + 1; j++)
            if (strcmp(keys[i], all_keys[j]) == 0)
                return cm_error_set(CM_ERR_INVALID, "classifier file: metadata key '%s' is "
                                    "reserved", keys[i]);
        all_keys[CONFIG_KEYS + 1 + i] = keys[i], all_values[CONFIG_KEYS + 1 + i] = values[i];
    }
    return cm_safetensors_write(path, views, clf->tensor_count, all_keys, all_values,
                                CONFIG_KEYS + 1 + count);
}

/* The configuration of a classifier file's metadata. */
static cm_status read_config(cm_classifier_config *out, const cm_safetensors *file,
                             const char *path) {
    const char *format = cm_safetensors_metadata(file, "format");
    if (!format || strcmp(format, CM_CLASSIFIER_FORMAT) != 0)
        return cm_error_set(CM_ERR_FORMAT, "%s: not a cm classifier file (format '%s', expected "
                            "'%s')", path, format ? format : "(none)", CM_CLASSIFIER_FORMAT);
    for (size_t i = 0; i < CONFIG_KEYS; i++) {
        const char *text = cm_safetensors_metadata(file, config_keys[i]);
        char *end = NULL;
        unsigned long long value = text ? strtoull(text, &end, 10) : 0;
        if (!text || end == text || *end != '\0' || text[0] == '-' || value > 1000000)
            return cm_error_set(CM_ERR_FORMAT, "%s: classifier metadata '%s' is '%s'", path,
                                config_keys[i], text ? text : "(missing)");
        *config_field(out, i) = (size_t)value;
    }
    return CM_OK;
}

/* The tensors of `file` into clf's params, each of the layout's name and shape. */
static cm_status read_tensors(cm_classifier *clf, const cm_safetensors *file, const char *path) {
    for (size_t t = 0; t < clf->tensor_count; t++) {
        const cm_classifier_tensor *tensor = &clf->tensors[t];
        cm_tensor_view view;
        CM_TRY(cm_safetensors_get(&view, file, tensor->name));
        int same = view.ndim == tensor->rank;
        for (size_t i = 0; same && i < tensor->rank; i++) same = view.shape[i] == tensor->shape[i];
        if (!same)
            return cm_error_set(CM_ERR_FORMAT, "%s: tensor %s has another shape than the "
                                "configuration gives", path, tensor->name);
        for (size_t i = 0; i < tensor->count; i++)
            if (!isfinite(view.data[i]))
                return cm_error_set(CM_ERR_FORMAT, "%s: tensor %s holds a non-finite value",
                                    path, tensor->name);
        memcpy(clf->params + tensor->offset, view.data, tensor->count * sizeof(float));
    }
    return CM_OK;
}

cm_status cm_classifier_load(cm_classifier **out, const char *path) {
    *out = NULL;
    cm_safetensors *file = NULL;
    CM_TRY(cm_safetensors_read(&file, path));
    cm_classifier_config config;
    cm_classifier *clf = NULL;
    cm_status status = read_config(&config, file, path);
    if (status == CM_OK) status = cm_classifier_create(&clf, &config);
    if (status == CM_OK) status = read_tensors(clf, file, path);
    if (status != CM_OK) {
        cm_classifier_free(clf);
        cm_safetensors_free(file);
        return status;
    }
    clf->file = file;
    *out = clf;
    return CM_OK;
}

const char *cm_classifier_metadata(const cm_classifier *clf, const char *key) {
    return clf->file ? cm_safetensors_metadata(clf->file, key) : NULL;
}

/* ---- softmax cross-entropy (in double; each row on its own) */

double cm_classifier_cross_entropy(float *dlogits, float *probabilities, const float *logits,
                                   const size_t *labels, size_t rows, size_t classes,
                                   double scale) {
    double total = 0.0;
    for (size_t r = 0; r < rows; r++) {
        const float *z = logits + r * classes;
        double largest = z[0], sum = 0.0;
        for (size_t k = 1; k < classes; k++) largest = fmax(largest, z[k]);
        for (size_t k = 0; k < classes; k++) sum += exp(z[k] - largest);
        double log_sum = largest + log(sum);
        total += labels[r] < classes ? log_sum - z[labels[r]] : NAN;
        for (size_t k = 0; k < classes; k++) {
            double p = exp(z[k] - log_sum);
            if (probabilities) probabilities[r * classes + k] = (float)p;
            if (dlogits) dlogits[r * classes + k] = (float)(scale * (p - (k == labels[r])));
        }
    }
    return total;
}

/* ---- float convolutions: the four stages' convs as one conv set (conv.h) */

struct classifier_convs {
    cm_conv_set *set;
};

static void convs_free(struct classifier_convs *convs) {
    if (!convs) return;
    cm_conv_set_free(convs->set);
    cm_free(convs);
}

static cm_status convs_create(struct classifier_convs **out, const cm_classifier *clf) {
    *out = NULL;
    cm_conv_shape shapes[CM_CLASSIFIER_STAGES];
    for (int s = 0; s < CM_CLASSIFIER_STAGES; s++) {
        const classifier_stage *st = &clf->stages[s];
        shapes[s] = (cm_conv_shape){st->height, st->width, st->in_channels, st->out_channels, 3,
                                    st->stride};
    }
    struct classifier_convs *convs = cm_calloc(1, sizeof *convs);
    if (!convs) return cm_error_set(CM_ERR_NOMEM, "classifier convolutions");
    cm_status status = cm_conv_set_create(&convs->set, shapes, CM_CLASSIFIER_STAGES);
    if (status != CM_OK) {
        cm_free(convs);
        return status;
    }
    *out = convs;
    return CM_OK;
}

static cm_status conv_load(struct classifier_convs *convs, const cm_classifier *clf,
                           const float *params) {
    for (int s = 0; s < CM_CLASSIFIER_STAGES; s++)
        CM_TRY(cm_conv_set_load_weights(convs->set, (size_t)s, params + clf->stages[s].weight));
    return CM_OK;
}

static cm_status conv_forward(struct classifier_convs *convs, const cm_classifier *clf, int s,
                              float *out, const float *inp, const float *params) {
    return cm_conv_plan_forward(cm_conv_set_plan(convs->set, (size_t)s), out, inp,
                                params + clf->stages[s].bias);
}

static cm_status conv_backward(struct classifier_convs *convs, const cm_classifier *clf, int s,
                               float *dinp, float *dparams, const float *dout, const float *inp,
                               const float *params, int first) {
    cm_conv_plan *plan = cm_conv_set_plan(convs->set, (size_t)s);
    if (dinp) CM_TRY(cm_conv_plan_backward_data(plan, dinp, dout));
    return cm_conv_plan_backward_weights(plan, dparams + clf->stages[s].bias, dout, inp, first);
}

static cm_status conv_finish(struct classifier_convs *convs, const cm_classifier *clf,
                             float *dparams) {
    for (int s = 0; s < CM_CLASSIFIER_STAGES; s++)
        CM_TRY(cm_conv_plan_store_weight_gradient(cm_conv_set_plan(convs->set, (size_t)s),
                                                  dparams + clf->stages[s].weight));
    return CM_OK;
}

/* ---- double convolutions: the reference loops straight into dparams (zeroed by the caller) */

struct classifier_convs_f64 {
    char unused;
};

static cm_status convs_create_f64(struct classifier_convs_f64 **out, const cm_classifier *clf) {
    *out = NULL;
    return CM_OK;
}

static void convs_free_f64(struct classifier_convs_f64 *convs) {}

static cm_status conv_load_f64(struct classifier_convs_f64 *convs, const cm_classifier *clf,
                               const double *params) {
    return CM_OK;
}

static cm_status conv_forward_f64(struct classifier_convs_f64 *convs, const cm_classifier *clf,
                                  int s, double *out, const double *inp, const double *params) {
    const classifier_stage *st = &clf->stages[s];
    cm_conv2d_forward_f64(out, inp, params + st->weight, params + st->bias, 1, st->height,
                          st->width, st->in_channels, st->out_channels, 3, st->stride);
    return CM_OK;
}

static cm_status conv_backward_f64(struct classifier_convs_f64 *convs, const cm_classifier *clf,
                                   int s, double *dinp, double *dparams, const double *dout,
                                   const double *inp, const double *params, int first) {
    const classifier_stage *st = &clf->stages[s];
    if (dinp) memset(dinp, 0, (size_t)st->height * st->width * st->in_channels * sizeof(double));
    cm_conv2d_backward_f64(dinp, dparams + st->weight, dparams + st->bias, dout, inp,
                           params + st->weight, 1, st->height, st->width, st->in_channels,
                           st->out_channels, 3, st->stride);
    return CM_OK;
}

static cm_status conv_finish_f64(struct classifier_convs_f64 *convs, const cm_classifier *clf,
                                 double *dparams) {
    return CM_OK;
}

/* C[M,N] = op(A) op(B) + beta C (row-major) */
#define GEMM_FLOAT(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc) \
    cm_gemm_f32(ta, tb, M, N, K, 1.0f, A, lda, B, ldb, beta, C, ldc)
#define GEMM_DOUBLE(ta, tb, M, N, K, A, lda, B, ldb, beta, C, ldc)                            \
    cblas_dgemm(CblasRowMajor, (ta) ? CblasTrans : CblasNoTrans, (tb) ? CblasTrans : CblasNoTrans, \
                (int)(M), (int)(N), (int)(K), 1.0, A, (int)(lda), B, (int)(ldb), beta, C,       \
                (int)(ldc))

#define REAL float
#define FN(name) name
#define WORKSPACE cm_classifier_workspace
#define CONVS classifier_convs
#define GEMM GEMM_FLOAT
#include "nn/classifier_template.h"
#undef REAL
#undef FN
#undef WORKSPACE
#undef CONVS
#undef GEMM

#define REAL double
#define FN(name) name##_f64
#define WORKSPACE cm_classifier_workspace_f64
#define CONVS classifier_convs_f64
#define GEMM GEMM_DOUBLE
#include "nn/classifier_template.h"
#undef REAL
#undef FN
#undef WORKSPACE
#undef CONVS
#undef GEMM

cm_status cm_classifier_forward(float *logits, float *features, const cm_classifier *clf,
                                cm_classifier_workspace *ws, const float *images, size_t rows) {
    return forward_rows(logits, features, clf->params, clf, ws, images, rows);
}

cm_status cm_classifier_backward(float *dparams, const cm_classifier *clf,
                                 cm_classifier_workspace *ws, const float *dlogits, size_t rows) {
    return backward_rows(dparams, clf->params, clf, ws, dlogits, rows);
}

cm_status cm_classifier_forward_f64(double *logits, double *features, const double *params,
                                    const cm_classifier *clf, cm_classifier_workspace_f64 *ws,
                                    const double *images, size_t rows) {
    return forward_rows_f64(logits, features, params, clf, ws, images, rows);
}

cm_status cm_classifier_backward_f64(double *dparams, const double *params,
                                     const cm_classifier *clf, cm_classifier_workspace_f64 *ws,
                                     const double *dlogits, size_t rows) {
    return backward_rows_f64(dparams, params, clf, ws, dlogits, rows);
}

/* ---- many images on the pool: chunks of APPLY_CHUNK images, APPLY_BLOCKS row blocks each,
 * one image per forward call */

#define APPLY_CHUNK 64
#define APPLY_BLOCKS 2

typedef struct {
    const cm_classifier *clf;
    cm_classifier_workspace *ws[APPLY_BLOCKS];
    float *images, *logits, *features; /* [APPLY_CHUNK, ...] each */
    const double *source;              /* the chunk's first image */
    double *probabilities, *features_out; /* the chunk's first row of each (may be NULL) */
    size_t rows;                       /* of this chunk */
    cm_status status[APPLY_BLOCKS];
} apply_job;

static void apply_block(void *context, size_t block) {
    apply_job *j = context;
    size_t first, end, D = j->clf->dim, F = j->clf->config.features, K = j->clf->config.classes;
    cm_parallel_range(&first, &end, j->rows, block, APPLY_BLOCKS);
    j->status[block] = CM_OK;
    if (end == first) return;
    for (size_t i = first * D; i < end * D; i++) j->images[i] = (float)j->source[i];
    for (size_t r = first; r < end; r++) { /* one row per call: values of the image alone */
        j->status[block] = cm_classifier_forward(j->logits + r * K, j->features + r * F, j->clf,
                                                 j->ws[block], j->images + r * D, 1);
        if (j->status[block] != CM_OK) return;
    }
    if (j->features_out)
        for (size_t i = first * F; i < end * F; i++) j->features_out[i] = j->features[i];
    for (size_t r = first; j->probabilities && r < end; r++) {
        const float *z = j->logits + r * K;
        double largest = z[0], sum = 0.0;
        for (size_t k = 1; k < K; k++) largest = fmax(largest, z[k]);
        for (size_t k = 0; k < K; k++) sum += exp(z[k] - largest);
        for (size_t k = 0; k < K; k++) j->probabilities[r * K + k] = exp(z[k] - largest) / sum;
    }
}

cm_status cm_classifier_apply(double *probabilities, double *features, const cm_classifier *clf,
                              const double *images, size_t n) {
    size_t D = clf->dim, F = clf->config.features, K = clf->config.classes;
    apply_job job = {.clf = clf};
    float *block = cm_malloc(APPLY_CHUNK * (D + F + K), sizeof(float));
    cm_status status = block ? CM_OK : cm_error_set(CM_ERR_NOMEM, "classifier: chunk buffers");
    for (int b = 0; status == CM_OK && b < APPLY_BLOCKS; b++)
        status = cm_classifier_workspace_alloc(&job.ws[b], clf, 1);
    if (status == CM_OK)
        job.images = block, job.logits = block + APPLY_CHUNK * D,
        job.features = job.logits + APPLY_CHUNK * K;
    for (size_t first = 0; status == CM_OK && first < n; first += APPLY_CHUNK) {
        job.rows = n - first < APPLY_CHUNK ? n - first : APPLY_CHUNK;
        job.source = images + first * D;
        job.probabilities = probabilities ? probabilities + first * K : NULL;
        job.features_out = features ? features + first * F : NULL;
        cm_parallel_for(apply_block, &job, APPLY_BLOCKS);
        for (int b = 0; b < APPLY_BLOCKS; b++)
            if (status == CM_OK) status = job.status[b];
    }
    for (int b = 0; b < APPLY_BLOCKS; b++) cm_classifier_workspace_free(job.ws[b]);
    cm_free(block);
    return status;
}
