/* unet_export.c: the U-Net's export to C (network.h, "export to C"): its forward pass written as
 * C99 text on the writer's kernels, one row at a time, channels-last as in unet_template.h:
 * convolutions as register tiles over the K K taps of a zero-padded copy (weights [K K C, OC]),
 * GroupNorm with unet_layers_template.h's statistics (per-channel float sums, then per group,
 * two passes), residual blocks, nearest upsampling, concatenated skips, the output GroupNorm,
 * SiLU and convolution. The noise embedding and every block's projection of it depend on the
 * level alone: they are computed once per call (the sampler evaluates a stage at one level).
 * The op list, shapes and parameters are unet.c's layout; nothing here trains or runs backward.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cm/alloc.h"
#include "nn/unet.h"
#include "nn/unet_layers.h"

/* Where the exported weights of the layout went: matrix and vector indices. */
typedef struct {
    size_t conv_matrix[CM_UNET_MAX_CONVS], conv_bias[CM_UNET_MAX_CONVS];
    size_t norm1[CM_UNET_MAX_RESBLOCKS], norm2[CM_UNET_MAX_RESBLOCKS]; /* weight; bias is +1 */
    size_t embed_matrix[CM_UNET_MAX_RESBLOCKS], embed_bias[CM_UNET_MAX_RESBLOCKS];
    size_t linear1, linear1_bias, linear2, linear2_bias, out_norm;
} unet_indices;

/* A convolution's weight [OC, C, K, K] as the matrix [K K C, OC padded]: row (ky K + kx) C + c,
 * column o; its bias padded. */
static cm_status export_conv(cm_export_writer *w, unet_indices *ix, const cm_unet_layout *L,
                             const float *params, size_t i) {
    const cm_unet_conv *c = &L->convs[i];
    size_t K = c->kernel, C = c->in_channels, OC = c->out_channels, ldw = cm_export_padded(OC);
    size_t rows = K * K * C;
    float *values = cm_calloc(rows * ldw + ldw, sizeof(float));
    if (!values) return cm_error_set(CM_ERR_NOMEM, "U-Net export of convolution %zu", i);
    const float *weight = params + c->weight;
    for (size_t o = 0; o < OC; o++)
        for (size_t ch = 0; ch < C; ch++)
            for (size_t t = 0; t < K * K; t++)
                values[(t * C + ch) * ldw + o] = weight[(o * C + ch) * K * K + t];
    memcpy(values + rows * ldw, params + c->bias, OC * sizeof(float));
    char name[64];
    snprintf(name, sizeof name, "convolution %zu (%zux%zu, %zu -> %zu)", i, K, K, C, OC);
    cm_status status = cm_export_matrix(w, &ix->conv_matrix[i], name, values, rows, ldw);
    if (status == CM_OK)
        status = cm_export_vector(w, &ix->conv_bias[i], name, values + rows * ldw, ldw);
    cm_free(values);
    return status;
}

/* A Linear weight [OC, C] at `offset` transposed to [C, OC padded], and its bias padded. */
static cm_status export_linear(cm_export_writer *w, size_t *matrix, size_t *bias,
                               const float *params, size_t weight_offset, size_t bias_offset,
                               size_t OC, size_t C, const char *name) {
    size_t ldw = cm_export_padded(OC);
    float *values = cm_calloc(C * ldw + ldw, sizeof(float));
    if (!values) return cm_error_set(CM_ERR_NOMEM, "U-Net export of %s", name);
    for (size_t o = 0; o < OC; o++)
        for (size_t c = 0; c < C; c++) values[c * ldw + o] = params[weight_offset + o * C + c];
    memcpy(values + C * ldw, params + bias_offset, OC * sizeof(float));
    cm_status status = cm_export_matrix(w, matrix, name, values, C, ldw);
    if (status == CM_OK) status = cm_export_vector(w, bias, name, values + C * ldw, ldw);
    cm_free(values);
    return status;
}

/* GroupNorm's weight and bias [C] as two vectors; *index is the weight's. */
static cm_status export_norm(cm_export_writer *w, size_t *index, const float *params,
                             size_t weight, size_t bias, size_t C, const char *name) {
    size_t second;
    CM_TRY(cm_export_vector(w, index, name, params + weight, C));
    return cm_export_vector(w, &second, name, params + bias, C);
}

static cm_status export_weights(cm_export_writer *w, unet_indices *ix, const cm_unet_layout *L,
                                const float *params) {
    size_t E4 = L->embed_width, EL = L->config.embed * (L->config.two_time ? 2 : 1);
    CM_TRY(export_linear(w, &ix->linear1, &ix->linear1_bias, params, L->embed1_weight,
                         L->embed1_bias, E4, EL, "unet.embed.linear1"));
    CM_TRY(export_linear(w, &ix->linear2, &ix->linear2_bias, params, L->embed2_weight,
                         L->embed2_bias, E4, E4, "unet.embed.linear2"));
    for (size_t i = 0; i < L->conv_count; i++) CM_TRY(export_conv(w, ix, L, params, i));
    for (size_t b = 0; b < L->block_count; b++) {
        const cm_unet_block *k = &L->blocks[b];
        char name[64];
        snprintf(name, sizeof name, "block %zu", b);
        CM_TRY(export_norm(w, &ix->norm1[b], params, k->norm1_weight, k->norm1_bias,
                           k->in_channels, name));
        CM_TRY(export_norm(w, &ix->norm2[b], params, k->norm2_weight, k->norm2_bias,
                           k->out_channels, name));
        CM_TRY(export_linear(w, &ix->embed_matrix[b], &ix->embed_bias[b], params,
                             k->embed_weight, k->embed_bias, k->out_channels, E4, name));
    }
    size_t C_out = L->activations[L->ops[L->op_count - 1].input].channels;
    return export_norm(w, &ix->out_norm, params, L->out_norm_weight, L->out_norm_bias, C_out,
                       "unet.out.norm");
}

static const char helpers[] =
    "/* ---- the network (src/nn/unet.c): the U-Net of docs/unet.md, one row at a time,\n"
    " * channels-last ([H W, C]) inside, NCHW rows outside */\n"
    "\n"
    "typedef struct {\n"
    "    float *act, *h, *h2, *cat, *pad, *sums, *decode;\n"
    "} @_scratch;\n"
    "\n"
    "/* out[(H + 2) (W + 2), C] = x[H W, C] inside a border of zeros */\n"
    "static void @_pad(float *out, const float *x, int H, int W, int C)\n"
    "{\n"
    "    size_t row = (size_t)(W + 2) * C;\n"
    "    memset(out, 0, (size_t)(H + 2) * row * sizeof(float));\n"
    "    for (int y = 0; y < H; y++)\n"
    "        memcpy(out + (size_t)(y + 1) * row + C, x + (size_t)y * W * C, (size_t)W * C * sizeof(float));\n"
    "}\n"
    "\n"
    "/* out[OH OW, OC] = bias + the K x K convolution (zero padding K / 2, stride 1 or 2) of\n"
    " * x[H W, C] with w [K K C, OC padded to 8] (row (ky K + kx) C + c): @_TILE_ROWS output pixels\n"
    " * x 8 channels at a time over the taps of a padded copy (pad: scratch). */\n"
    "static void @_conv(float *out, const float *x, int H, int W, int C, int OC, int K, int stride,\n"
    "                   const float *w, const float *bias, float *pad)\n"
    "{\n"
    "    int P = K / 2, OH = (H + 2 * P - K) / stride + 1, OW = (W + 2 * P - K) / stride + 1;\n"
    "    size_t PW = (size_t)W + 2 * (size_t)P, ldw = ((size_t)OC + 7) / 8 * 8;\n"
    "    size_t pixels = (size_t)OH * (size_t)OW;\n"
    "    ptrdiff_t offset[9];\n"
    "    const float *source = x;\n"
    "    if (P) {\n"
    "        @_pad(pad, x, H, W, C);\n"
    "        source = pad;\n"
    "    }\n"
    "    for (int t = 0; t < K * K; t++) offset[t] = ((ptrdiff_t)(t / K) * (ptrdiff_t)PW + t % K) * C;\n"
    "    for (size_t p = 0; p < pixels; p += @_TILE_ROWS) {\n"
    "        const float *in[@_TILE_ROWS];\n"
    "        size_t valid = pixels - p < @_TILE_ROWS ? pixels - p : @_TILE_ROWS;\n"
    "        for (size_t i = 0; i < @_TILE_ROWS; i++) {\n"
    "            size_t q = p + (i < valid ? i : valid - 1), oy = q / (size_t)OW, ox = q % (size_t)OW;\n"
    "            in[i] = source + (oy * (size_t)stride * PW + ox * (size_t)stride) * (size_t)C;\n"
    "        }\n"
    "        for (int o = 0; o < OC; o += 8)\n"
    "            @_tile(out + p * (size_t)OC + o, (size_t)OC, valid, OC - o < 8 ? (size_t)(OC - o) : 8,\n"
    "                   in, offset, K * K, C, w + o, ldw, bias + o);\n"
    "    }\n"
    "}\n"
    "\n"
    "/* out[HW, C] = SiLU(GroupNorm(x)), G groups of C / G channels, epsilon 1e-5: per-channel sums\n"
    " * over pixels in float, per group in channel order, two passes (unet_layers_template.h);\n"
    " * sums: 3 C floats. */\n"
    "static void @_norm_silu(float *out, const float *x, size_t HW, size_t C, size_t G,\n"
    "                        const float *weight, const float *bias, float *sums)\n"
    "{\n"
    "    float *sum = sums, *center = sums + C, *scale = sums + 2 * C;\n"
    "    size_t per = C / G;\n"
    "    double count = (double)HW * (double)per;\n"
    "    for (size_t c = 0; c < C; c++) sum[c] = 0.0f;\n"
    "    for (size_t p = 0; p < HW; p++)\n"
    "        for (size_t c = 0; c < C; c++) sum[c] += x[p * C + c];\n"
    "    for (size_t g = 0; g < G; g++) {\n"
    "        float s = 0.0f;\n"
    "        for (size_t c = g * per; c < (g + 1) * per; c++) s += sum[c];\n"
    "        for (size_t c = g * per; c < (g + 1) * per; c++) center[c] = (float)(s / count);\n"
    "    }\n"
    "    for (size_t c = 0; c < C; c++) sum[c] = 0.0f;\n"
    "    for (size_t p = 0; p < HW; p++)\n"
    "        for (size_t c = 0; c < C; c++) {\n"
    "            float d = x[p * C + c] - center[c];\n"
    "            sum[c] += d * d;\n"
    "        }\n"
    "    for (size_t g = 0; g < G; g++) {\n"
    "        float s = 0.0f;\n"
    "        for (size_t c = g * per; c < (g + 1) * per; c++) s += sum[c];\n"
    "        float rstd = (float)(1.0 / sqrt((double)s / count + 1e-5));\n"
    "        for (size_t c = g * per; c < (g + 1) * per; c++) scale[c] = rstd * weight[c];\n"
    "    }\n"
    "    for (size_t p = 0; p < HW; p++)\n"
    "        for (size_t c = 0; c < C; c++) out[p * C + c] = (x[p * C + c] - center[c]) * scale[c] + bias[c];\n"
    "    @_silu(out, HW * C);\n"
    "}\n"
    "\n"
    "/* A residual block: h = conv1(SiLU(GN1(x))) + shift per channel; out = (conv2(SiLU(GN2(h)))\n"
    " * + skip(x)) / sqrt(2), skip a 1x1 convolution when m[2] >= 0. m: the matrices of conv1, conv2,\n"
    " * skip; v: the vectors of norm1's weight (its bias follows), conv1's bias, norm2's weight,\n"
    " * conv2's bias, skip's bias. */\n"
    "static void @_resblock(float *out, const float *x, int H, int W, int cin, int cout, size_t G,\n"
    "                       const int *m, const int *v, const float *shift, const @_scratch *s)\n"
    "{\n"
    "    size_t HW = (size_t)H * (size_t)W, n = HW * (size_t)cout;\n"
    "    @_norm_silu(s->act, x, HW, (size_t)cin, G, @_vector(v[0]), @_vector(v[0] + 1), s->sums);\n"
    "    @_conv(s->h, s->act, H, W, cin, cout, 3, 1, @_matrix(m[0], s->decode), @_vector(v[1]), s->pad);\n"
    "    for (size_t p = 0; p < HW; p++)\n"
    "        for (size_t c = 0; c < (size_t)cout; c++) s->h[p * (size_t)cout + c] += shift[c];\n"
    "    @_norm_silu(s->act, s->h, HW, (size_t)cout, G, @_vector(v[2]), @_vector(v[2] + 1), s->sums);\n"
    "    @_conv(s->h2, s->act, H, W, cout, cout, 3, 1, @_matrix(m[1], s->decode), @_vector(v[3]), s->pad);\n"
    "    if (m[2] >= 0)\n"
    "        @_conv(out, x, H, W, cin, cout, 1, 1, @_matrix(m[2], s->decode), @_vector(v[4]), s->pad);\n"
    "    else\n"
    "        memcpy(out, x, n * sizeof(float));\n"
    "    for (size_t i = 0; i < n; i++) out[i] = (s->h2[i] + out[i]) * 0.70710678118654752440f;\n"
    "}\n"
    "\n"
    "/* out[HW, C1 + C2] = [a[HW, C1], b[HW, C2]] (a decoder block's input and its skip) */\n"
    "static void @_concat(float *out, const float *a, const float *b, int HW, int C1, int C2)\n"
    "{\n"
    "    for (size_t p = 0; p < (size_t)HW; p++) {\n"
    "        memcpy(out + p * (size_t)(C1 + C2), a + p * (size_t)C1, (size_t)C1 * sizeof(float));\n"
    "        memcpy(out + p * (size_t)(C1 + C2) + C1, b + p * (size_t)C2, (size_t)C2 * sizeof(float));\n"
    "    }\n"
    "}\n"
    "\n";

static const char upsample[] =
    "/* out[2H 2W, C] = nearest x2 of x[H W, C] */\n"
    "static void @_upsample(float *out, const float *x, int H, int W, int C)\n"
    "{\n"
    "    for (int y = 0; y < 2 * H; y++)\n"
    "        for (int k = 0; k < 2 * W; k++)\n"
    "            memcpy(out + ((size_t)y * 2 * W + k) * C, x + ((size_t)(y / 2) * W + k / 2) * C,\n"
    "                   (size_t)C * sizeof(float));\n"
    "}\n"
    "\n";

/* Where a call's work floats go: the embedding, the blocks' shifts, every activation of a row
 * (compactly, in layout order), then the scratch arrays. */
typedef struct {
    size_t fourier, embed1, embed2, shift[CM_UNET_MAX_RESBLOCKS], activation[CM_UNET_MAX_OPS + 1];
    size_t act, h, h2, cat, pad, sums, total;
} unet_frame;

static unet_frame frame_plan(const cm_unet_layout *L) {
    unet_frame f = {0};
    size_t EL = L->config.embed * (L->config.two_time ? 2 : 1), E4 = L->embed_width, n = 0;
    size_t pad = 1, channels = 1;
    f.fourier = n, n += EL;
    f.embed1 = n, n += E4;
    f.embed2 = n, n += E4;
    for (size_t b = 0; b < L->block_count; b++) {
        f.shift[b] = n, n += L->blocks[b].out_channels;
        size_t widest = L->blocks[b].in_channels > L->blocks[b].out_channels
                            ? L->blocks[b].in_channels : L->blocks[b].out_channels;
        if (widest > channels) channels = widest;
    }
    for (size_t a = 0; a < L->activation_count; a++) {
        const cm_unet_activation *x = &L->activations[a];
        f.activation[a] = n, n += x->height * x->width * x->channels;
        if (x->channels > channels) channels = x->channels;
    }
    for (size_t i = 0; i < L->conv_count; i++) {
        const cm_unet_conv *c = &L->convs[i];
        size_t padded = (c->height + 2) * (c->width + 2) * c->in_channels;
        if (c->kernel > 1 && padded > pad) pad = padded;
    }
    f.act = n, n += L->scratch_size;
    f.h = n, n += L->scratch_size;
    f.h2 = n, n += L->scratch_size;
    f.cat = n, n += L->scratch_size;
    f.pad = n, n += pad;
    f.sums = n, n += 3 * channels;
    f.total = n;
    return f;
}

/* conv i on the row: out = conv(in) at the conv's own shape. */
static void write_conv_call(cm_export_writer *w, const cm_unet_layout *L, const unet_indices *ix,
                            int i, const char *out, size_t out_at, const char *in, size_t in_at) {
    const cm_unet_conv *c = &L->convs[i];
    cm_export_printf(w, "        @_conv(%s + %zu, %s + %zu, %zu, %zu, %zu, %zu, %zu, %zu, @_matrix(%zu, "
                     "decode), @_vector(%zu), s.pad);\n", out, out_at, in, in_at, c->height,
                     c->width, c->in_channels, c->out_channels, c->kernel, c->stride,
                     ix->conv_matrix[i], ix->conv_bias[i]);
}

/* Op k of the layout on one row (frame: the activations; s: the scratch). */
static void write_op(cm_export_writer *w, const cm_unet_layout *L, const unet_indices *ix,
                     const unet_frame *f, size_t k) {
    const cm_unet_op *op = &L->ops[k];
    const cm_unet_activation *in = &L->activations[op->input];
    size_t G = L->config.groups, HW = in->height * in->width;
    switch (op->kind) {
    case CM_UNET_OP_CONV_IN:
    case CM_UNET_OP_DOWNSAMPLE:
        write_conv_call(w, L, ix, op->conv, "frame", f->activation[op->output], "frame",
                        f->activation[op->input]);
        return;
    case CM_UNET_OP_UPSAMPLE:
        cm_export_printf(w, "        @_upsample(s.cat, frame + %zu, %zu, %zu, %zu);\n",
                         f->activation[op->input], in->height, in->width, in->channels);
        write_conv_call(w, L, ix, op->conv, "frame", f->activation[op->output], "s.cat", 0);
        return;
    case CM_UNET_OP_RESBLOCK: {
        const cm_unet_block *b = &L->blocks[op->block];
        size_t x_at = f->activation[op->input];
        const char *x = "frame";
        if (op->skip >= 0) {
            cm_export_printf(w, "        @_concat(s.cat, frame + %zu, frame + %zu, %zu, %zu, %zu);\n",
                             f->activation[op->input], f->activation[op->skip], HW, in->channels,
                             L->activations[op->skip].channels);
            x = "s.cat", x_at = 0;
        }
        long skip_matrix = b->skip >= 0 ? (long)ix->conv_matrix[b->skip] : -1;
        long skip_bias = b->skip >= 0 ? (long)ix->conv_bias[b->skip] : -1;
        cm_export_printf(w, "        @_resblock(frame + %zu, %s + %zu, %zu, %zu, %zu, %zu, %zu,\n"
                         "                   (const int[3]){%zu, %zu, %ld},\n"
                         "                   (const int[5]){%zu, %zu, %zu, %zu, %ld}, shift + %zu, &s);\n",
                         f->activation[op->output], x, x_at, b->height, b->width, b->in_channels,
                         b->out_channels, G, ix->conv_matrix[b->conv1], ix->conv_matrix[b->conv2],
                         skip_matrix, ix->norm1[op->block], ix->conv_bias[b->conv1],
                         ix->norm2[op->block], ix->conv_bias[b->conv2], skip_bias,
                         f->shift[op->block] - f->shift[0]);
        return;
    }
    case CM_UNET_OP_OUTPUT: {
        size_t C = L->config.channels;
        cm_export_printf(w, "        @_norm_silu(s.act, frame + %zu, %zu, %zu, %zu, @_vector(%zu), "
                         "@_vector(%zu), s.sums);\n", f->activation[op->input], HW, in->channels, G,
                         ix->out_norm, ix->out_norm + 1);
        write_conv_call(w, L, ix, op->conv, "s.h2", 0, "s.act", 0);
        cm_export_printf(w, "        for (size_t c = 0; c < %zu; c++)\n"
                         "            for (size_t p = 0; p < %zu; p++) y[c * %zu + p] = s.h2[p * %zu + c];\n",
                         C, HW, HW, C);
        return;
    }
    }
}

#define UNET_EXPORT_BLOCK 4 /* rows per call of the exported forward (they run one at a time) */

static void write_forward(cm_export_writer *w, const cm_unet_layout *L, const unet_indices *ix,
                          const unet_frame *f) {
    const cm_unet_config *c = &L->config;
    size_t E = c->embed, levels = c->two_time ? 2 : 1, E4 = L->embed_width, HW = c->height * c->width;
    size_t E4p = cm_export_padded(E4);
    cm_export_printf(w,
        "static void @_network_forward(float *out, const float *x_in, const float *c_noise,\n"
        "                              size_t rows, float *work, float *decode)\n"
        "{\n"
        "    float *fourier = work + %zu, *embed1 = work + %zu, *embed2 = work + %zu;\n"
        "    float *shift = work + %zu, *frame = work;\n"
        "    @_scratch s = {work + %zu, work + %zu, work + %zu, work + %zu, work + %zu, work + %zu, decode};\n"
        "    /* the embedding SiLU(Linear2(SiLU(Linear1(Fourier(c_noise))))) and each block's\n"
        "     * projection of it: the same for every row */\n"
        "    for (int j = 0; j < %zu; j++) @_fourier(fourier + j * %zu, c_noise[j], %zu, %.17g);\n"
        "    @_gemm(embed1, %zu, fourier, %zu, 1, %zu, @_matrix(%zu, decode), %zu, @_vector(%zu), %zu);\n"
        "    @_silu(embed1, %zu);\n"
        "    @_gemm(embed2, %zu, embed1, %zu, 1, %zu, @_matrix(%zu, decode), %zu, @_vector(%zu), %zu);\n"
        "    @_silu(embed2, %zu);\n",
        f->fourier, f->embed1, f->embed2, f->shift[0], f->act, f->h, f->h2, f->cat, f->pad, f->sums,
        levels, E, E, c->embed_max_frequency, E4, E * levels, E * levels, ix->linear1, E4p,
        ix->linear1_bias, E4, E4, E4, E4, E4, ix->linear2, E4p, ix->linear2_bias, E4, E4);
    for (size_t b = 0; b < L->block_count; b++) {
        size_t cout = L->blocks[b].out_channels;
        cm_export_printf(w, "    @_gemm(shift + %zu, %zu, embed2, %zu, 1, %zu, @_matrix(%zu, decode), "
                         "%zu, @_vector(%zu), %zu);\n", f->shift[b] - f->shift[0], cout, E4, E4,
                         ix->embed_matrix[b], cm_export_padded(cout), ix->embed_bias[b], cout);
    }
    cm_export_printf(w,
        "    for (size_t r = 0; r < rows; r++) {\n"
        "        const float *x = x_in + r * %zu;\n"
        "        float *y = out + r * %zu;\n"
        "        for (size_t c = 0; c < %zu; c++)\n"
        "            for (size_t p = 0; p < %zu; p++) frame[%zu + p * %zu + c] = x[c * %zu + p];\n",
        c->channels * HW, c->channels * HW, c->channels, HW, f->activation[0], c->channels, HW);
    for (size_t k = 0; k < L->op_count; k++) write_op(w, L, ix, f, k);
    cm_export_printf(w, "    }\n}\n\n");
}

cm_status cm_unet_export(const cm_network *network, const float *params, cm_export_writer *w) {
    const cm_unet_layout *L = cm_network_state(network);
    unet_indices *ix = cm_calloc(1, sizeof *ix);
    if (!ix) return cm_error_set(CM_ERR_NOMEM, "U-Net export");
    cm_status status = export_weights(w, ix, L, params);
    if (status == CM_OK) {
        unet_frame f = frame_plan(L);
        int upsamples = 0;
        for (size_t k = 0; k < L->op_count; k++) upsamples |= L->ops[k].kind == CM_UNET_OP_UPSAMPLE;
        cm_export_set_forward(w, UNET_EXPORT_BLOCK, f.total);
        cm_export_printf(w, "%s%s", helpers, upsamples ? upsample : "");
        write_forward(w, L, ix, &f);
        status = cm_export_writer_status(w);
    }
    cm_free(ix);
    return status;
}
