/* unet.c: the U-Net of unet.h: configuration defaults, the layout (named parameter tensors,
 * convolutions, residual blocks, the op list and each row's activation frame), PyTorch's
 * initialisation, the FLOP count, and the network of unet_template.h instantiated twice: float
 * with oneDNN convolutions (conv.h) and double with the reference loops. The architecture is
 * docs/unet.md's (the attention-free U-Net that consistency and diffusion models use on
 * MNIST-like data); it has no attention, no dropout and no class conditioning.
 */
#include "nn/unet.h"

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cm/alloc.h"
#include "nn/layers.h"
#include "nn/conv.h"
#include "core/vectorize.h"
#include "nn/unet_layers.h"

cm_unet_config cm_unet_config_default(size_t channels, size_t height, size_t width) {
    return (cm_unet_config){.channels = channels, .height = height, .width = width,
                            .base_channels = 32, .levels = 2, .channel_multipliers = {1, 2},
                            .blocks_per_level = 2, .groups = 8,
                            .embed = 64,                  /* the MLP's (src/model/config.c) */
                            .embed_max_frequency = 1000.0, /* the MLP's */
                            .two_time = 0};
}

/* ---- layout */

#define CM_UNET_MAX_SIZE 1024 /* image height and width */
#define CM_UNET_MAX_IMAGE_CHANNELS 64
#define FRAME_ALIGN 16 /* values: 64 bytes of floats */

static size_t align_up(size_t n) { return (n + FRAME_ALIGN - 1) / FRAME_ALIGN * FRAME_ALIGN; }

/* Append a parameter tensor named by `format`; returns its offset. */
static size_t add_tensor(cm_unet_layout *L, cm_unet_init init, size_t fan_in, size_t rank,
                         const size_t *shape, const char *format, ...) {
    cm_unet_tensor *t = &L->tensors[L->tensor_count++];
    va_list args;
    va_start(args, format);
    vsnprintf(t->name, sizeof t->name, format, args);
    va_end(args);
    t->offset = L->param_count;
    t->rank = rank;
    t->count = 1;
    for (size_t i = 0; i < rank; i++) t->count *= shape[i], t->shape[i] = shape[i];
    t->init = init;
    t->fan_in = fan_in;
    L->param_count += t->count;
    return t->offset;
}

/* A convolution "prefix.weight" [OC, C, K, K] and "prefix.bias" [OC] reading H x W x C. */
static int add_conv(cm_unet_layout *L, size_t H, size_t W, size_t C, size_t OC, size_t K,
                    size_t stride, int zero, const char *prefix) {
    cm_unet_conv *conv = &L->convs[L->conv_count];
    size_t fan_in = C * K * K, weight_shape[4] = {OC, C, K, K}, bias_shape[1] = {OC};
    cm_unet_init init = zero ? CM_UNET_INIT_ZEROS : CM_UNET_INIT_UNIFORM;
    *conv = (cm_unet_conv){.height = H, .width = W, .in_channels = C, .out_channels = OC,
                           .kernel = K, .stride = stride};
    conv->weight = add_tensor(L, init, fan_in, 4, weight_shape, "%s.weight", prefix);
    conv->bias = add_tensor(L, init, fan_in, 1, bias_shape, "%s.bias", prefix);
    return (int)L->conv_count++;
}

/* Reserve `count` values of each row's frame; returns the offset. */
static size_t add_frame(cm_unet_layout *L, size_t count) {
    size_t offset = L->frame_size;
    L->frame_size += align_up(count);
    return offset;
}

static int add_activation(cm_unet_layout *L, size_t H, size_t W, size_t C) {
    cm_unet_activation *a = &L->activations[L->activation_count];
    *a = (cm_unet_activation){.height = H, .width = W, .channels = C};
    a->offset = add_frame(L, H * W * C);
    if (H * W * C > L->scratch_size) L->scratch_size = H * W * C;
    return (int)L->activation_count++;
}

static void add_op(cm_unet_layout *L, cm_unet_op_kind kind, int input, int skip, int output,
                   int conv, int block) {
    L->ops[L->op_count++] = (cm_unet_op){.kind = kind, .input = input, .skip = skip,
                                         .output = output, .conv = conv, .block = block};
}

/* A residual block cin -> cout at H x W named "prefix.*"; returns its index. */
static int add_block(cm_unet_layout *L, size_t H, size_t W, size_t cin, size_t cout,
                     const char *prefix) {
    cm_unet_block *b = &L->blocks[L->block_count];
    size_t G = L->config.groups, E4 = L->embed_width, in_shape[1] = {cin},
           out_shape[1] = {cout}, embed_shape[2] = {cout, E4};
    char name[CM_UNET_NAME_MAX];
    *b = (cm_unet_block){.in_channels = cin, .out_channels = cout, .height = H, .width = W};
    b->norm1_weight = add_tensor(L, CM_UNET_INIT_ONES, 0, 1, in_shape, "%s.norm1.weight", prefix);
    b->norm1_bias = add_tensor(L, CM_UNET_INIT_ZEROS, 0, 1, in_shape, "%s.norm1.bias", prefix);
    snprintf(name, sizeof name, "%s.conv1", prefix);
    b->conv1 = add_conv(L, H, W, cin, cout, 3, 1, 0, name);
    b->embed_weight = add_tensor(L, CM_UNET_INIT_UNIFORM, E4, 2, embed_shape, "%s.embed.weight",
                                 prefix);
    b->embed_bias = add_tensor(L, CM_UNET_INIT_UNIFORM, E4, 1, out_shape, "%s.embed.bias", prefix);
    b->norm2_weight = add_tensor(L, CM_UNET_INIT_ONES, 0, 1, out_shape, "%s.norm2.weight", prefix);
    b->norm2_bias = add_tensor(L, CM_UNET_INIT_ZEROS, 0, 1, out_shape, "%s.norm2.bias", prefix);
    snprintf(name, sizeof name, "%s.conv2", prefix);
    b->conv2 = add_conv(L, H, W, cout, cout, 3, 1, 0, name);
    snprintf(name, sizeof name, "%s.skip", prefix);
    b->skip = cin != cout ? add_conv(L, H, W, cin, cout, 1, 1, 0, name) : -1;
    b->h = add_frame(L, H * W * cout);
    b->stats1 = add_frame(L, 2 * G);
    b->stats2 = add_frame(L, 2 * G);
    if (H * W * cin > L->scratch_size) L->scratch_size = H * W * cin; /* the concatenation */
    return (int)L->block_count++;
}

static cm_status validate_config(const cm_unet_config *c) {
    if (c->channels < 1 || c->channels > CM_UNET_MAX_IMAGE_CHANNELS || c->height < 1 ||
        c->width < 1 || c->height > CM_UNET_MAX_SIZE || c->width > CM_UNET_MAX_SIZE)
        return cm_error_set(CM_ERR_INVALID, "U-Net: image %zux%zux%zu out of range (channels "
                            "1..%d, height and width 1..%d)", c->channels, c->height, c->width,
                            CM_UNET_MAX_IMAGE_CHANNELS, CM_UNET_MAX_SIZE);
    if (c->levels < 1 || c->levels > CM_UNET_MAX_LEVELS)
        return cm_error_set(CM_ERR_INVALID, "U-Net: %zu levels out of [1, %d]", c->levels,
                            CM_UNET_MAX_LEVELS);
    if (c->blocks_per_level < 1 || c->blocks_per_level > CM_UNET_MAX_BLOCKS_PER_LEVEL)
        return cm_error_set(CM_ERR_INVALID, "U-Net: %zu blocks per level out of [1, %d]",
                            c->blocks_per_level, CM_UNET_MAX_BLOCKS_PER_LEVEL);
    size_t scale = (size_t)1 << (c->levels - 1);
    if (c->height % scale || c->width % scale)
        return cm_error_set(CM_ERR_INVALID, "U-Net: image %zux%zu not divisible by 2^(levels-1) "
                            "= %zu", c->height, c->width, scale);
    if (c->groups < 1 || c->base_channels < 1 || c->base_channels % c->groups)
        return cm_error_set(CM_ERR_INVALID, "U-Net: %zu base channels not a positive multiple "
                            "of %zu groups", c->base_channels, c->groups);
    for (size_t l = 0; l < c->levels; l++) {
        size_t m = c->channel_multipliers[l], width = c->base_channels * m;
        if (m < 1 || m > 64 || width > CM_GROUPNORM_MAX_CHANNELS / 2 || width % c->groups)
            return cm_error_set(CM_ERR_INVALID, "U-Net: level %zu: multiplier %zu gives %zu "
                                "channels (want 1..%d, a multiple of %zu groups)", l, m, width,
                                CM_GROUPNORM_MAX_CHANNELS / 2, c->groups);
    }
    if (c->embed < 2 || c->embed % 2 || c->embed > 4096)
        return cm_error_set(CM_ERR_INVALID, "U-Net: embedding features %zu must be even, in "
                            "[2, 4096]", c->embed);
    if (!(c->embed_max_frequency >= 1.0) || !isfinite(c->embed_max_frequency))
        return cm_error_set(CM_ERR_INVALID, "U-Net: embedding max frequency %g must be >= 1",
                            c->embed_max_frequency);
    if (c->two_time != 0 && c->two_time != 1)
        return cm_error_set(CM_ERR_INVALID, "U-Net: two_time %d must be 0 or 1", c->two_time);
    return CM_OK;
}

/* Where the layout walk stands: the current activation, its width and size, the skips. */
typedef struct {
    int h;
    size_t width, H, W;
    int skips[CM_UNET_MAX_LEVELS * CM_UNET_MAX_BLOCKS_PER_LEVEL];
    size_t skip_count;
} walk;

/* Per level its blocks (outputs kept as skips), then a stride-2 conv but at the last level. */
static void add_encoder(cm_unet_layout *L, walk *w) {
    const cm_unet_config *c = &L->config;
    char name[CM_UNET_NAME_MAX];
    for (size_t l = 0; l < c->levels; l++) {
        for (size_t i = 0; i < c->blocks_per_level; i++) {
            size_t cout = c->base_channels * c->channel_multipliers[l];
            snprintf(name, sizeof name, "unet.down.%zu.res.%zu", l, i);
            int block = add_block(L, w->H, w->W, w->width, cout, name);
            int next = add_activation(L, w->H, w->W, cout);
            add_op(L, CM_UNET_OP_RESBLOCK, w->h, -1, next, -1, block);
            w->h = w->skips[w->skip_count++] = next, w->width = cout;
        }
        if (l + 1 < c->levels) {
            snprintf(name, sizeof name, "unet.down.%zu.downsample", l);
            int conv = add_conv(L, w->H, w->W, w->width, w->width, 3, 2, 0, name);
            w->H /= 2, w->W /= 2;
            int next = add_activation(L, w->H, w->W, w->width);
            add_op(L, CM_UNET_OP_DOWNSAMPLE, w->h, -1, next, conv, -1);
            w->h = next;
        }
    }
}

/* Per level, deepest first: its blocks on concat(h, skip), then nearest x2 + a 3x3 conv but at
 * the top level. */
static void add_decoder(cm_unet_layout *L, walk *w) {
    const cm_unet_config *c = &L->config;
    char name[CM_UNET_NAME_MAX];
    for (size_t l = c->levels; l-- > 0;) {
        for (size_t i = 0; i < c->blocks_per_level; i++) {
            int skip = w->skips[--w->skip_count];
            size_t cin = w->width + L->activations[skip].channels;
            size_t cout = c->base_channels * c->channel_multipliers[l];
            snprintf(name, sizeof name, "unet.up.%zu.res.%zu", l, i);
            int block = add_block(L, w->H, w->W, cin, cout, name);
            int next = add_activation(L, w->H, w->W, cout);
            add_op(L, CM_UNET_OP_RESBLOCK, w->h, skip, next, -1, block);
            w->h = next, w->width = cout;
        }
        if (l > 0) {
            snprintf(name, sizeof name, "unet.up.%zu.upsample", l);
            w->H *= 2, w->W *= 2;
            int conv = add_conv(L, w->H, w->W, w->width, w->width, 3, 1, 0, name);
            int next = add_activation(L, w->H, w->W, w->width);
            add_op(L, CM_UNET_OP_UPSAMPLE, w->h, -1, next, conv, -1);
            w->h = next;
        }
    }
}

cm_status cm_unet_layout_init(cm_unet_layout *out, const cm_unet_config *config) {
    memset(out, 0, sizeof *out);
    CM_TRY(validate_config(config));
    cm_unet_layout *L = out;
    const cm_unet_config *c = config;
    L->config = *c;
    size_t ch = c->base_channels, E4 = 4 * ch, EL = c->embed * (c->two_time ? 2 : 1);
    L->embed_width = E4;
    int input = add_activation(L, c->height, c->width, c->channels);
    /* noise embedding: Fourier(c_noise) -> Linear(E L, 4ch) -> SiLU -> Linear(4ch, 4ch) */
    size_t shape1[2] = {E4, EL}, shape2[2] = {E4, E4}, bias_shape[1] = {E4};
    L->embed1_weight = add_tensor(L, CM_UNET_INIT_UNIFORM, EL, 2, shape1, "unet.embed.linear1.weight");
    L->embed1_bias = add_tensor(L, CM_UNET_INIT_UNIFORM, EL, 1, bias_shape, "unet.embed.linear1.bias");
    L->embed2_weight = add_tensor(L, CM_UNET_INIT_UNIFORM, E4, 2, shape2, "unet.embed.linear2.weight");
    L->embed2_bias = add_tensor(L, CM_UNET_INIT_UNIFORM, E4, 1, bias_shape, "unet.embed.linear2.bias");
    L->frame_fourier = add_frame(L, EL);
    L->frame_embed1 = add_frame(L, E4);
    L->frame_embed1_act = add_frame(L, E4);
    L->frame_embed2 = add_frame(L, E4);
    L->frame_embed_act = add_frame(L, E4);
    /* conv_in, encoder, middle block, decoder */
    walk w = {.width = ch, .H = c->height, .W = c->width};
    w.h = add_activation(L, w.H, w.W, ch);
    add_op(L, CM_UNET_OP_CONV_IN, input, -1, w.h,
           add_conv(L, w.H, w.W, c->channels, ch, 3, 1, 0, "unet.conv_in"), -1);
    add_encoder(L, &w);
    int middle = add_block(L, w.H, w.W, w.width, w.width, "unet.mid.res.0");
    int next = add_activation(L, w.H, w.W, w.width);
    add_op(L, CM_UNET_OP_RESBLOCK, w.h, -1, next, -1, middle);
    w.h = next;
    add_decoder(L, &w);
    /* output: GroupNorm, SiLU, a zero-initialised 3x3 conv back to C channels */
    size_t norm_shape[1] = {w.width};
    L->out_norm_weight = add_tensor(L, CM_UNET_INIT_ONES, 0, 1, norm_shape, "unet.out.norm.weight");
    L->out_norm_bias = add_tensor(L, CM_UNET_INIT_ZEROS, 0, 1, norm_shape, "unet.out.norm.bias");
    L->frame_out_stats = add_frame(L, 2 * c->groups);
    int conv = add_conv(L, w.H, w.W, w.width, c->channels, 3, 1, 1, "unet.out.conv");
    add_op(L, CM_UNET_OP_OUTPUT, w.h, -1, -1, conv, -1);
    return CM_OK;
}

void cm_unet_init_params(float *params, const cm_unet_layout *layout, cm_rng *rng) {
    for (size_t t = 0; t < layout->tensor_count; t++) {
        const cm_unet_tensor *tensor = &layout->tensors[t];
        float *p = params + tensor->offset;
        double bound = tensor->fan_in ? 1.0 / sqrt((double)tensor->fan_in) : 0.0;
        for (size_t i = 0; i < tensor->count; i++)
            p[i] = tensor->init == CM_UNET_INIT_ONES    ? 1.0f
                   : tensor->init == CM_UNET_INIT_ZEROS ? 0.0f
                        : (float)(bound * (2.0 * cm_rng_uniform(rng) - 1.0));
    }
}

double cm_unet_forward_flops(const cm_unet_layout *layout, size_t rows) {
    double per_row = 0.0;
    for (size_t i = 0; i < layout->conv_count; i++) {
        const cm_unet_conv *c = &layout->convs[i];
        double OH = cm_conv2d_out_size((int)c->height, (int)c->kernel, (int)c->stride);
        double OW = cm_conv2d_out_size((int)c->width, (int)c->kernel, (int)c->stride);
        per_row += 2.0 * OH * OW * (double)c->out_channels * (double)c->in_channels *
                   (double)(c->kernel * c->kernel);
    }
    double E4 = (double)layout->embed_width;
    double EL = (double)layout->config.embed * (layout->config.two_time ? 2 : 1);
    per_row += 2.0 * (EL * E4 + E4 * E4);
    for (size_t b = 0; b < layout->block_count; b++)
        per_row += 2.0 * E4 * (double)layout->blocks[b].out_channels;
    return per_row * (double)rows;
}

/* ---- float convolutions: the layout's convs as one conv set (conv.h: oneDNN plans, a shared
 * scratchpad, weights reordered only when they change) */

struct unet_convs {
    cm_conv_set *set;
};

static void convs_free(struct unet_convs *convs) {
    if (!convs) return;
    cm_conv_set_free(convs->set);
    cm_free(convs);
}

static cm_status convs_create(struct unet_convs **out, const cm_unet_layout *L) {
    *out = NULL;
    cm_conv_shape shapes[CM_UNET_MAX_CONVS];
    for (size_t i = 0; i < L->conv_count; i++) {
        const cm_unet_conv *c = &L->convs[i];
        shapes[i] = (cm_conv_shape){(int)c->height, (int)c->width, (int)c->in_channels,
                                    (int)c->out_channels, (int)c->kernel, (int)c->stride};
    }
    struct unet_convs *convs = cm_calloc(1, sizeof *convs);
    if (!convs) return cm_error_set(CM_ERR_NOMEM, "U-Net convolutions");
    cm_status status = cm_conv_set_create(&convs->set, shapes, L->conv_count);
    if (status != CM_OK) {
        cm_free(convs);
        return status;
    }
    *out = convs;
    return CM_OK;
}

static cm_status conv_load(struct unet_convs *convs, const cm_unet_layout *L, const float *params) {
    for (size_t i = 0; i < L->conv_count; i++)
        CM_TRY(cm_conv_set_load_weights(convs->set, i, params + L->convs[i].weight));
    return CM_OK;
}

static cm_status conv_forward(struct unet_convs *convs, const cm_unet_layout *L, int i, float *out,
                              const float *inp, const float *params) {
    cm_conv_plan *plan = cm_conv_set_plan(convs->set, (size_t)i);
    return cm_conv_plan_forward(plan, out, inp, params + L->convs[i].bias);
}

static cm_status conv_backward(struct unet_convs *convs, const cm_unet_layout *L, int i,
                               float *dinp, float *dparams, const float *dout, const float *inp,
                               const float *params, int first) {
    cm_conv_plan *plan = cm_conv_set_plan(convs->set, (size_t)i);
    if (dinp) CM_TRY(cm_conv_plan_backward_data(plan, dinp, dout));
    return cm_conv_plan_backward_weights(plan, dparams + L->convs[i].bias, dout, inp, first);
}

static cm_status conv_finish(struct unet_convs *convs, const cm_unet_layout *L, float *dparams) {
    for (size_t i = 0; i < L->conv_count; i++)
        CM_TRY(cm_conv_plan_store_weight_gradient(cm_conv_set_plan(convs->set, i),
                                                  dparams + L->convs[i].weight));
    return CM_OK;
}

/* ---- double convolutions: the reference loops straight into dparams (zeroed by the caller) */

struct unet_convs_f64 {
    char unused;
};

static cm_status convs_create_f64(struct unet_convs_f64 **out, const cm_unet_layout *L) {
    *out = NULL;
    return CM_OK;
}

static void convs_free_f64(struct unet_convs_f64 *convs) {}

static cm_status conv_load_f64(struct unet_convs_f64 *convs, const cm_unet_layout *L,
                               const double *params) {
    return CM_OK;
}

static cm_status conv_forward_f64(struct unet_convs_f64 *convs, const cm_unet_layout *L, int i,
                                  double *out, const double *inp, const double *params) {
    const cm_unet_conv *c = &L->convs[i];
    cm_conv2d_forward_f64(out, inp, params + c->weight, params + c->bias, 1, (int)c->height,
                          (int)c->width, (int)c->in_channels, (int)c->out_channels,
                          (int)c->kernel, (int)c->stride);
    return CM_OK;
}

static cm_status conv_backward_f64(struct unet_convs_f64 *convs, const cm_unet_layout *L, int i,
                                   double *dinp, double *dparams, const double *dout,
                                   const double *inp, const double *params, int first) {
    const cm_unet_conv *c = &L->convs[i];
    if (dinp) memset(dinp, 0, c->height * c->width * c->in_channels * sizeof(double));
    cm_conv2d_backward_f64(dinp, dparams + c->weight, dparams + c->bias, dout, inp,
                           params + c->weight, 1, (int)c->height, (int)c->width,
                           (int)c->in_channels, (int)c->out_channels, (int)c->kernel,
                           (int)c->stride);
    return CM_OK;
}

static cm_status conv_finish_f64(struct unet_convs_f64 *convs, const cm_unet_layout *L,
                                 double *dparams) {
    return CM_OK;
}

/* Per-row scratch arrays of the network (unet_template.h), each layout->scratch_size values. */
enum { SCRATCH_NORM, SCRATCH_ACT, SCRATCH_OUT, SCRATCH_CAT, SCRATCH_GRAD_H, SCRATCH_GRAD_ACT,
       SCRATCH_GRAD_CAT, SCRATCH_COUNT };

#define REAL float
#define FN(name) name
#define WORKSPACE cm_unet_workspace
#define CONVS unet_convs
#include "nn/unet_template.h"
#undef REAL
#undef FN
#undef WORKSPACE
#undef CONVS

#define REAL double
#define FN(name) name##_f64
#define WORKSPACE cm_unet_workspace_f64
#define CONVS unet_convs_f64
#include "nn/unet_template.h"
#undef REAL
#undef FN
#undef WORKSPACE
#undef CONVS

/* ---- the double network's parts, for the tests' gradient checks */

static cm_status check_part(const cm_unet_layout *layout, const cm_unet_workspace_f64 *ws,
                            size_t block, size_t row) {
    if (block >= layout->block_count || row >= ws->capacity)
        return cm_error_set(CM_ERR_INVALID, "U-Net: block %zu of %zu, row %zu of %zu", block,
                            layout->block_count, row, ws->capacity);
    return CM_OK;
}

cm_status cm_unet_resblock_forward_f64(double *out, const double *x, const double *emb_act,
                                       const double *params, const cm_unet_layout *layout,
                                       cm_unet_workspace_f64 *ws, size_t block, size_t row) {
    CM_TRY(check_part(layout, ws, block, row));
    return resblock_forward_f64(out, ws->frames + row * layout->frame_size, ws, x, emb_act, params,
                                layout, block);
}

cm_status cm_unet_resblock_backward_f64(double *dx, double *d_emb_act, double *dparams,
                                        const double *dout, const double *x,
                                        const double *emb_act, const double *params,
                                        const cm_unet_layout *layout, cm_unet_workspace_f64 *ws,
                                        size_t block, size_t row) {
    CM_TRY(check_part(layout, ws, block, row));
    return resblock_backward_f64(dx, d_emb_act, dparams, dout, ws->frames + row * layout->frame_size,
                                 ws, x, emb_act, params, layout, block, 1);
}

void cm_unet_embedding_forward_f64(double *emb_act, const double *params,
                                   const cm_unet_layout *layout, cm_unet_workspace_f64 *ws,
                                   const double *c_noise, size_t row) {
    double *frame = ws->frames + row * layout->frame_size;
    embedding_forward_f64(frame, params, layout, c_noise);
    memcpy(emb_act, frame + layout->frame_embed_act, layout->embed_width * sizeof(double));
}

void cm_unet_embedding_backward_f64(double *dparams, const double *d_emb_act,
                                    const double *params, const cm_unet_layout *layout,
                                    cm_unet_workspace_f64 *ws, size_t row) {
    memset(ws->grad, 0, layout->frame_size * sizeof(double));
    memcpy(ws->grad + layout->frame_embed_act, d_emb_act, layout->embed_width * sizeof(double));
    embedding_backward_f64(dparams, ws->grad, ws->frames + row * layout->frame_size, params,
                           layout);
}

/* ---- the U-Net as a network type (network.h) */

/* The U-Net's settings in a network config: level l has base_channels * growth^l channels. The
 * image shape and the noise levels per row come from the network config itself. */
typedef struct {
    size_t base_channels, levels, growth, blocks, groups, embed;
    double embed_max_frequency;
} cm_unet_options;

#define UNET_OPTION(key, kind, member, lo, hi, help) \
    {key, kind, offsetof(cm_unet_options, member), lo, hi, NULL, 0, help, NULL, 0}
static const cm_field unet_fields[] = {
    UNET_OPTION("base_channels", CM_FIELD_SIZE, base_channels, 1, 1024,
                "U-Net: channels of the first level (conv_in's output)"),
    UNET_OPTION("levels", CM_FIELD_SIZE, levels, 1, CM_UNET_MAX_LEVELS,
                "U-Net: resolutions (H, H/2, ...); H and W divisible by 2^(levels-1)"),
    UNET_OPTION("growth", CM_FIELD_SIZE, growth, 1, 8,
                "U-Net: channel multiplier from one level to the next"),
    UNET_OPTION("res_blocks", CM_FIELD_SIZE, blocks, 1, CM_UNET_MAX_BLOCKS_PER_LEVEL,
                "U-Net: residual blocks per level (encoder and decoder each)"),
    UNET_OPTION("groups", CM_FIELD_SIZE, groups, 1, 1024, "U-Net: GroupNorm groups"),
    UNET_OPTION("embed", CM_FIELD_SIZE, embed, 2, 4096,
                "U-Net: Fourier features of each noise level (even)"),
    {"embed_max_frequency", CM_FIELD_DOUBLE, offsetof(cm_unet_options, embed_max_frequency), 1,
     1e12, NULL, 0, "U-Net: largest Fourier frequency", "embed-frequency", 0},
};
#undef UNET_OPTION

/* The network of docs/unet.md: 32 channels, 2 levels (x1, x2), 2 blocks per level, 8 groups, the
 * MLP's 64 Fourier features up to frequency 1000. */
static void unet_defaults(cm_network_config *config) {
    cm_unet_options *o = cm_network_options(config);
    cm_unet_config d = cm_unet_config_default(1, 28, 28);
    *o = (cm_unet_options){.base_channels = d.base_channels, .levels = d.levels, .growth = 2,
                           .blocks = d.blocks_per_level, .groups = d.groups, .embed = d.embed,
                           .embed_max_frequency = d.embed_max_frequency};
}

/* The cm_unet_config of a network config (its image shape, noise levels and settings). */
static cm_status unet_config_of(cm_unet_config *out, const cm_network_config *config) {
    const cm_unet_options *o = cm_network_options_const(config);
    if (!config->image_channels)
        return cm_error_set(CM_ERR_INVALID, "the unet network needs image data (C x H x W); "
                            "the data are vectors of dimension %zu", config->dim);
    if (o->levels > CM_UNET_MAX_LEVELS)
        return cm_error_set(CM_ERR_INVALID, "U-Net: %zu levels (at most %d)", o->levels,
                            CM_UNET_MAX_LEVELS);
    *out = cm_unet_config_default(config->image_channels, config->image_height,
                                  config->image_width);
    out->base_channels = o->base_channels;
    out->levels = o->levels;
    size_t multiplier = 1;
    for (size_t l = 0; l < o->levels; l++, multiplier *= o->growth)
        out->channel_multipliers[l] = multiplier;
    out->blocks_per_level = o->blocks;
    out->groups = o->groups;
    out->embed = o->embed;
    out->embed_max_frequency = o->embed_max_frequency;
    out->two_time = config->noise_levels == 2;
    return CM_OK;
}

static cm_status unet_create(void **state, cm_network *network) {
    *state = NULL;
    cm_unet_config config;
    CM_TRY(unet_config_of(&config, cm_network_config_of(network)));
    cm_unet_layout *layout = cm_malloc(1, sizeof *layout); /* about 64 KB: on the heap */
    if (!layout) return cm_error_set(CM_ERR_NOMEM, "U-Net layout");
    cm_status status = cm_unet_layout_init(layout, &config);
    for (size_t t = 0; status == CM_OK && t < layout->tensor_count; t++)
        status = cm_network_add_tensor(network, layout->tensors[t].name, layout->tensors[t].rank,
                                       layout->tensors[t].shape);
    if (status == CM_OK && cm_network_param_count(network) != layout->param_count)
        status = cm_error_set(CM_ERR_INVALID, "U-Net: tensors cover %zu of %zu parameters",
                              cm_network_param_count(network), layout->param_count);
    if (status != CM_OK) {
        cm_free(layout);
        return status;
    }
    *state = layout;
    return CM_OK;
}

static void unet_destroy(void *state) { cm_free(state); }

static void unet_init(const cm_network *network, float *params, cm_rng *rng) {
    cm_unet_init_params(params, cm_network_state(network), rng);
}

static cm_status unet_workspace_alloc(void **out, const cm_network *network, size_t rows, int f64) {
    const cm_unet_layout *layout = cm_network_state(network);
    if (f64) return cm_unet_workspace_alloc_f64((cm_unet_workspace_f64 **)out, layout, rows);
    return cm_unet_workspace_alloc((cm_unet_workspace **)out, layout, rows);
}

static void unet_workspace_free(void *workspace, int f64) {
    if (f64) cm_unet_workspace_free_f64(workspace);
    else cm_unet_workspace_free(workspace);
}

/* A oneDNN failure at run time (it cannot allocate inside a primitive) cannot be returned
 * through the interface's passes: the block's outputs become NaN, so that the failure surfaces
 * as a non-finite loss or sample (which the trainer and the samplers refuse), never as silent
 * numbers. */
static void poison(float *values, size_t count) {
    for (size_t i = 0; i < count; i++) values[i] = NAN;
}

static void unet_forward(const cm_network *network, float *out, const float *params,
                         void *workspace, const float *x_in, const float *c_noise, size_t rows) {
    if (cm_unet_forward(out, params, cm_network_state(network), workspace, x_in, c_noise, rows) !=
        CM_OK)
        poison(out, rows * cm_network_config_of(network)->dim);
}

static void unet_backward(const cm_network *network, float *dparams, float *dx_in,
                          const float *params, void *workspace, const float *dout, size_t rows) {
    if (cm_unet_backward(dparams, dx_in, params, cm_network_state(network), workspace, dout,
                         rows) != CM_OK) {
        poison(dparams, cm_network_param_count(network));
        if (dx_in) poison(dx_in, rows * cm_network_config_of(network)->dim);
    }
}

static void unet_forward_f64(const cm_network *network, double *out, const double *params,
                             void *workspace, const double *x_in, const double *c_noise,
                             size_t rows) {
    if (cm_unet_forward_f64(out, params, cm_network_state(network), workspace, x_in, c_noise,
                            rows) != CM_OK)
        for (size_t i = 0; i < rows * cm_network_config_of(network)->dim; i++) out[i] = NAN;
}

static void unet_backward_f64(const cm_network *network, double *dparams, double *dx_in,
                              const double *params, void *workspace, const double *dout,
                              size_t rows) {
    if (cm_unet_backward_f64(dparams, dx_in, params, cm_network_state(network), workspace, dout,
                             rows) != CM_OK)
        for (size_t i = 0; i < cm_network_param_count(network); i++) dparams[i] = NAN;
}

static double unet_forward_flops(const cm_network *network, size_t rows) {
    return cm_unet_forward_flops(cm_network_state(network), rows);
}

const cm_network_type cm_network_unet = {
    .name = "unet",
    .summary = "U-Net for images: residual blocks with GroupNorm and SiLU, noise embedding per "
               "block, stride-2 down, nearest up, skips (docs/unet.md)",
    .exact_rows = 1, /* rows go through the network one at a time (unet.h) */
    .options = unet_fields,
    .option_count = sizeof unet_fields / sizeof unet_fields[0],
    .defaults = unet_defaults,
    .create = unet_create,
    .destroy = unet_destroy,
    .init = unet_init,
    .workspace_alloc = unet_workspace_alloc,
    .workspace_free = unet_workspace_free,
    .forward = unet_forward,
    .backward = unet_backward,
    .forward_f64 = unet_forward_f64,
    .backward_f64 = unet_backward_f64,
    .forward_flops = unet_forward_flops,
    .export_c = cm_unet_export,
};
