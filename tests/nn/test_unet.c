/* test_unet.c: the U-Net of src/nn/unet.h. Gradient checks in double against central
 * differences of the noise embedding, of residual blocks (identity and 1x1 skip, concatenated
 * input) and of the whole network (parameters, sampled per tensor, and inputs; one- and two-time,
 * 1 and 2 image channels); the float network (oneDNN) against the double one on the same
 * weights; identical bits from two calls; rows independent bit for bit; zero output at
 * initialisation; backward overwriting its outputs; the parameter and FLOP counts against hand
 * counts; bad configurations, capacities and failed allocations. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/rng.h"
#include "nn/unet.h"
#include "test.h"

#define FD_STEP 1e-6
#define FD_TOLERANCE 1e-6 /* relative to max(1, |analytic|); FD error is O(h^2) ~ 1e-12 */

static cm_unet_layout *layout_new(const cm_unet_config *config) {
    cm_unet_layout *layout = malloc(sizeof *layout);
    CM_CHECK_OK(cm_unet_layout_init(layout, config));
    return layout;
}

/* A small network for finite differences: 8x8 images, 8 then 16 channels, 4 groups. */
static cm_unet_config small_config(size_t channels, int two_time, size_t levels, size_t blocks) {
    cm_unet_config c = cm_unet_config_default(channels, 8, 8);
    c.base_channels = 8, c.groups = 4, c.embed = 8, c.levels = levels;
    c.channel_multipliers[0] = 1, c.channel_multipliers[1] = 2, c.channel_multipliers[2] = 2;
    c.blocks_per_level = blocks, c.two_time = two_time;
    return c;
}

/* PyTorch's initialisation, then every tensor made generic (GroupNorm weights 1 + noise, zero
 * tensors noise: the output conv too, so that gradients reach every layer); float and double. */
static void random_params(float *pf, double *pd, const cm_unet_layout *layout, cm_rng *rng) {
    cm_unet_init_params(pf, layout, rng);
    for (size_t t = 0; t < layout->tensor_count; t++) {
        const cm_unet_tensor *tensor = &layout->tensors[t];
        for (size_t i = 0; i < tensor->count; i++) {
            float *p = pf + tensor->offset + i;
            if (tensor->init != CM_UNET_INIT_UNIFORM) *p += (float)(0.3 * cm_rng_normal(rng));
        }
    }
    if (pd)
        for (size_t i = 0; i < layout->param_count; i++) pd[i] = pf[i];
}

static double dot(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static int fd_agrees(double analytic, double numeric) {
    return fabs(analytic - numeric) <= FD_TOLERANCE * fmax(1.0, fabs(analytic));
}

/* Entries to check in a tensor of `count`: the first, the last and one at random. */
static size_t pick(size_t count, int k, cm_rng *rng) {
    return k == 0 ? 0 : k == 1 ? count - 1 : (size_t)cm_rng_below(rng, count);
}

/* ---- counts */

/* Parameters of a residual block a -> b with a 4ch = 128 embedding (docs/unet.md). */
static size_t block_params(size_t a, size_t b) {
    return 2 * a + (9 * a * b + b) + (128 * b + b) + 2 * b + (9 * b * b + b) +
           (a != b ? a * b + b : 0);
}

static void test_parameter_count(void) {
    cm_unet_config config = cm_unet_config_default(1, 28, 28);
    cm_unet_layout *layout = layout_new(&config);
    /* by hand: embedding 64*128+128 + 128*128+128; conv_in 1*32*9+32; 2 blocks 32->32; stride-2
     * conv 32->32; blocks 32->64, 64->64; middle 64->64; 2 blocks 128->64; upsampling conv
     * 64->64; blocks 96->32, 64->32; output GroupNorm 2*32 and conv 32*9+1 */
    size_t hand = (64 * 128 + 128) + (128 * 128 + 128) + (9 * 32 + 32) + 2 * block_params(32, 32) +
                  (9 * 32 * 32 + 32) + block_params(32, 64) + 2 * block_params(64, 64) +
                  2 * block_params(128, 64) + (9 * 64 * 64 + 64) + block_params(96, 32) +
                  block_params(64, 32) + 64 + (9 * 32 + 1);
    CM_CHECK(layout->param_count == hand && hand == 681665, "parameters %zu, by hand %zu",
             layout->param_count, hand);
    /* tensors tile the vector in order, names unique, the brief's example name and shape */
    size_t offset = 0;
    int found = 0;
    for (size_t t = 0; t < layout->tensor_count; t++) {
        const cm_unet_tensor *tensor = &layout->tensors[t];
        CM_CHECK(tensor->offset == offset, "%s at %zu, expected %zu", tensor->name, tensor->offset,
                 offset);
        offset += tensor->count;
        for (size_t u = 0; u < t; u++)
            CM_CHECK(strcmp(tensor->name, layout->tensors[u].name) != 0, "name %s twice",
                     tensor->name);
        if (strcmp(tensor->name, "unet.down.0.res.1.conv1.weight") == 0)
            found = tensor->rank == 4 && tensor->shape[0] == 32 && tensor->shape[1] == 32 &&
                    tensor->shape[2] == 3 && tensor->shape[3] == 3;
    }
    CM_CHECK(offset == layout->param_count, "tensors cover %zu of %zu", offset,
             layout->param_count);
    CM_CHECK(found, "unet.down.0.res.1.conv1.weight [32, 32, 3, 3] missing");
    CM_CHECK(strcmp(layout->tensors[layout->tensor_count - 1].name, "unet.out.conv.bias") == 0,
             "last tensor %s", layout->tensors[layout->tensor_count - 1].name);
    /* FLOPs by hand: 2 x multiply-adds of every conv (OH OW OC C K K) and Linear per row */
    CM_CHECK(cm_unet_forward_flops(layout, 1) == 402876416.0,
             "FLOPs per row %.0f, by hand 402876416", cm_unet_forward_flops(layout, 1));
    CM_CHECK(cm_unet_forward_flops(layout, 128) == 128 * 402876416.0, "FLOPs of 128 rows");
    /* the size does not change the parameters; a two-time network's first Linear takes 2 x 64 */
    config = cm_unet_config_default(1, 16, 16);
    cm_unet_layout *small = layout_new(&config);
    config.two_time = 1;
    cm_unet_layout *two = layout_new(&config);
    CM_CHECK(small->param_count == hand && two->param_count == hand + 64 * 128,
             "16x16: %zu, two-time: %zu", small->param_count, two->param_count);
    free(layout), free(small), free(two);
}

static void test_initialisation(void) {
    cm_unet_config config = cm_unet_config_default(1, 28, 28);
    cm_unet_layout *layout = layout_new(&config);
    float *params = malloc(layout->param_count * sizeof(float));
    cm_rng rng;
    cm_rng_init(&rng, cm_test_seed(31));
    cm_unet_init_params(params, layout, &rng);
    for (size_t t = 0; t < layout->tensor_count; t++) {
        const cm_unet_tensor *tensor = &layout->tensors[t];
        const float *p = params + tensor->offset;
        double bound = tensor->fan_in ? 1 / sqrt((double)tensor->fan_in) : 0, square = 0;
        int bad = 0;
        for (size_t i = 0; i < tensor->count; i++) {
            square += (double)p[i] * p[i];
            if (tensor->init == CM_UNET_INIT_ONES) bad += p[i] != 1.0f;
            if (tensor->init == CM_UNET_INIT_ZEROS) bad += p[i] != 0.0f;
            if (tensor->init == CM_UNET_INIT_UNIFORM) bad += !(fabs(p[i]) <= bound);
        }
        CM_CHECK(bad == 0, "%s: %d values off its initialisation", tensor->name, bad);
        /* U(-a, a): E x^2 = a^2 / 3, relative standard deviation of the mean of x^2 is
         * sqrt(4/45) / (1/3) / sqrt(n) = 0.894 / sqrt(n); 5 of them */
        if (tensor->init == CM_UNET_INIT_UNIFORM && tensor->count >= 1000) {
            double expected = bound * bound / 3, tolerance = 5 * 0.894 / sqrt((double)tensor->count);
            CM_CHECK(fabs(square / tensor->count / expected - 1) <= tolerance,
                     "%s: mean square %.4g, expected %.4g", tensor->name,
                     square / tensor->count, expected);
        }
    }
    CM_CHECK(strcmp(layout->tensors[layout->tensor_count - 2].name, "unet.out.conv.weight") == 0 &&
                 layout->tensors[layout->tensor_count - 2].init == CM_UNET_INIT_ZEROS,
             "the output conv is not zero-initialised");
    free(params), free(layout);
}

static void test_layout_rejects_bad_configs(void) {
    cm_unet_layout *layout = malloc(sizeof *layout);
    cm_unet_config c;
    const char *what[] = {"28x28 with 4 levels (28 %% 8)", "12 channels, 8 groups", "odd embedding",
                          "no levels", "multiplier 0", "two_time 2", "no blocks", "5 levels",
                          "no image channels", "max frequency < 1"};
    for (int k = 0; k < 10; k++) {
        c = cm_unet_config_default(1, 28, 28);
        switch (k) {
        case 0: c.levels = 4, c.channel_multipliers[2] = c.channel_multipliers[3] = 2; break;
        case 1: c.base_channels = 12; break;
        case 2: c.embed = 63; break;
        case 3: c.levels = 0; break;
        case 4: c.channel_multipliers[1] = 0; break;
        case 5: c.two_time = 2; break;
        case 6: c.blocks_per_level = 0; break;
        case 7: c.levels = 5; break;
        case 8: c.channels = 0; break;
        case 9: c.embed_max_frequency = 0.5; break;
        }
        CM_CHECK(cm_unet_layout_init(layout, &c) == CM_ERR_INVALID, "accepted: %s", what[k]);
    }
    c = cm_unet_config_default(1, 28, 28);
    c.levels = 3, c.channel_multipliers[2] = 2; /* 28 -> 14 -> 7 */
    CM_CHECK_OK(cm_unet_layout_init(layout, &c));
    free(layout);
}

/* ---- gradient checks in double */

static void test_embedding_gradients(void) {
    cm_rng rng;
    cm_rng_init(&rng, cm_test_seed(32));
    for (int two_time = 0; two_time <= 1; two_time++) {
        cm_unet_config config = small_config(1, two_time, 2, 1);
        cm_unet_layout *layout = layout_new(&config);
        size_t P = layout->param_count, E4 = layout->embed_width;
        cm_unet_workspace_f64 *ws = NULL;
        CM_CHECK_OK(cm_unet_workspace_alloc_f64(&ws, layout, 1));
        float *pf = malloc(P * sizeof(float));
        double *pd = malloc(P * 8), *dparams = calloc(P, 8), emb[64], R[64];
        double c_noise[2] = {0.37, -1.3};
        random_params(pf, pd, layout, &rng);
        for (size_t i = 0; i < E4; i++) R[i] = cm_rng_normal(&rng);
        cm_unet_embedding_forward_f64(emb, pd, layout, ws, c_noise, 0);
        cm_unet_embedding_backward_f64(dparams, R, pd, layout, ws, 0);
        int bad = 0;
        for (size_t t = 0; t < layout->tensor_count; t++) {
            const cm_unet_tensor *tensor = &layout->tensors[t];
            int embedding = strncmp(tensor->name, "unet.embed.", 11) == 0;
            for (size_t i = 0; i < tensor->count; i++) {
                size_t k = tensor->offset + i;
                if (!embedding) {
                    bad += dparams[k] != 0;
                    continue;
                }
                double saved = pd[k];
                pd[k] = saved + FD_STEP;
                cm_unet_embedding_forward_f64(emb, pd, layout, ws, c_noise, 0);
                double plus = dot(emb, R, E4);
                pd[k] = saved - FD_STEP;
                cm_unet_embedding_forward_f64(emb, pd, layout, ws, c_noise, 0);
                double minus = dot(emb, R, E4);
                pd[k] = saved;
                double numeric = (plus - minus) / (2 * FD_STEP);
                if (!fd_agrees(dparams[k], numeric) && bad++ < 5)
                    CM_CHECK(0, "embedding (two_time %d) %s[%zu]: %.12g vs FD %.12g", two_time,
                             tensor->name, i, dparams[k], numeric);
            }
        }
        CM_CHECK(bad == 0, "embedding (two_time %d): %d gradient entries off", two_time, bad);
        cm_unet_workspace_free_f64(ws);
        free(pf), free(pd), free(dparams), free(layout);
    }
}

typedef struct {
    const cm_unet_layout *layout;
    cm_unet_workspace_f64 *ws;
    double *params, *x, *emb, *out, *R;
    size_t block, n_out;
} block_case;

static double block_loss(block_case *k) {
    CM_CHECK_OK(cm_unet_resblock_forward_f64(k->out, k->x, k->emb, k->params, k->layout, k->ws,
                                             k->block, 0));
    return dot(k->out, k->R, k->n_out);
}

static int fd_entry(block_case *k, double *value, double analytic, const char *what, size_t i,
                    int *bad) {
    double saved = *value;
    *value = saved + FD_STEP;
    double plus = block_loss(k);
    *value = saved - FD_STEP;
    double minus = block_loss(k);
    *value = saved;
    double numeric = (plus - minus) / (2 * FD_STEP);
    if (!fd_agrees(analytic, numeric) && (*bad)++ < 5)
        CM_CHECK(0, "block %zu: %s[%zu]: %.12g vs FD %.12g", k->block, what, i, analytic, numeric);
    return 0;
}

static void check_block(const cm_unet_layout *layout, cm_unet_workspace_f64 *ws, double *params,
                        size_t block, cm_rng *rng) {
    const cm_unet_block *b = &layout->blocks[block];
    size_t HW = b->height * b->width, n_in = HW * b->in_channels, n_out = HW * b->out_channels;
    size_t E4 = layout->embed_width, P = layout->param_count;
    double *x = malloc(n_in * 8), *out = malloc(n_out * 8), *R = malloc(n_out * 8);
    double *dx = calloc(n_in, 8), *emb = malloc(E4 * 8), *demb = calloc(E4, 8);
    double *dparams = calloc(P, 8);
    for (size_t i = 0; i < n_in; i++) x[i] = cm_rng_normal(rng);
    for (size_t i = 0; i < E4; i++) emb[i] = cm_rng_normal(rng);
    for (size_t i = 0; i < n_out; i++) R[i] = cm_rng_normal(rng);
    block_case k = {layout, ws, params, x, emb, out, R, block, n_out};
    block_loss(&k);
    CM_CHECK_OK(cm_unet_resblock_backward_f64(dx, demb, dparams, R, x, emb, params, layout, ws,
                                              block, 0));
    int bad = 0;
    for (int j = 0; j < 40; j++) {
        size_t i = (size_t)cm_rng_below(rng, n_in);
        fd_entry(&k, &x[i], dx[i], "x", i, &bad);
    }
    for (size_t i = 0; i < E4; i++) fd_entry(&k, &emb[i], demb[i], "emb", i, &bad);
    for (size_t t = 0; t < layout->tensor_count; t++)
        for (int j = 0; j < 3; j++) {
            size_t i = layout->tensors[t].offset + pick(layout->tensors[t].count, j, rng);
            fd_entry(&k, &params[i], dparams[i], layout->tensors[t].name, i, &bad);
        }
    CM_CHECK(bad == 0, "block %zu (%zu -> %zu, skip %d): %d gradient entries off", block,
             b->in_channels, b->out_channels, b->skip, bad);
    free(x), free(out), free(R), free(dx), free(emb), free(demb), free(dparams);
}

static void test_resblock_gradients(void) {
    cm_rng rng;
    cm_rng_init(&rng, cm_test_seed(33));
    cm_unet_config config = small_config(1, 0, 2, 1);
    cm_unet_layout *layout = layout_new(&config);
    cm_unet_workspace_f64 *ws = NULL;
    CM_CHECK_OK(cm_unet_workspace_alloc_f64(&ws, layout, 1));
    float *pf = malloc(layout->param_count * sizeof(float));
    double *pd = malloc(layout->param_count * 8);
    random_params(pf, pd, layout, &rng);
    /* blocks: 0 identity 8 -> 8 at 8x8; 1 with a 1x1 skip 8 -> 16 at 4x4; 4 the last decoder
     * block on a concatenation 16 + 8 -> 8 at 8x8 */
    CM_CHECK(layout->blocks[0].skip < 0 && layout->blocks[1].skip >= 0 &&
                 layout->blocks[4].in_channels == 24 && layout->blocks[4].out_channels == 8,
             "unexpected block shapes");
    size_t blocks[3] = {0, 1, 4};
    for (int i = 0; i < 3; i++) check_block(layout, ws, pd, blocks[i], &rng);
    cm_unet_workspace_free_f64(ws);
    free(pf), free(pd), free(layout);
}

/* The whole double network on 2 rows: every tensor at 3 entries, and 24 input values. */
static void check_network(cm_unet_config config, cm_rng *rng) {
    enum { ROWS = 2 };
    cm_unet_layout *layout = layout_new(&config);
    size_t P = layout->param_count, D = config.channels * config.height * config.width;
    size_t L = config.two_time ? 2 : 1;
    cm_unet_workspace_f64 *ws = NULL;
    CM_CHECK_OK(cm_unet_workspace_alloc_f64(&ws, layout, ROWS));
    float *pf = malloc(P * sizeof(float));
    double *pd = malloc(P * 8), *dparams = malloc(P * 8), *x = malloc(ROWS * D * 8);
    double *dx = malloc(ROWS * D * 8), *out = malloc(ROWS * D * 8), *R = malloc(ROWS * D * 8);
    double c_noise[ROWS * 2];
    random_params(pf, pd, layout, rng);
    for (size_t i = 0; i < ROWS * D; i++) x[i] = cm_rng_normal(rng), R[i] = cm_rng_normal(rng);
    for (size_t i = 0; i < ROWS * L; i++) c_noise[i] = 2 * cm_rng_uniform(rng) - 1;
    CM_CHECK_OK(cm_unet_forward_f64(out, pd, layout, ws, x, c_noise, ROWS));
    CM_CHECK_OK(cm_unet_backward_f64(dparams, dx, pd, layout, ws, R, ROWS));
    int bad = 0, checked = 0;
    for (size_t t = 0; t < layout->tensor_count + 1; t++)
        for (int j = 0; j < (t < layout->tensor_count ? 3 : 24); j++) {
            int input = t == layout->tensor_count;
            size_t i = input ? (size_t)cm_rng_below(rng, ROWS * D)
                             : layout->tensors[t].offset + pick(layout->tensors[t].count, j, rng);
            double *value = input ? &x[i] : &pd[i], analytic = input ? dx[i] : dparams[i];
            double saved = *value;
            *value = saved + FD_STEP;
            CM_CHECK_OK(cm_unet_forward_f64(out, pd, layout, ws, x, c_noise, ROWS));
            double plus = dot(out, R, ROWS * D);
            *value = saved - FD_STEP;
            CM_CHECK_OK(cm_unet_forward_f64(out, pd, layout, ws, x, c_noise, ROWS));
            double minus = dot(out, R, ROWS * D);
            *value = saved;
            double numeric = (plus - minus) / (2 * FD_STEP);
            checked++;
            if (!fd_agrees(analytic, numeric) && bad++ < 5)
                CM_CHECK(0, "U-Net %s[%zu]: %.12g vs FD %.12g",
                         input ? "x_in" : layout->tensors[t].name, i, analytic, numeric);
        }
    CM_CHECK(bad == 0, "U-Net (C %zu, two_time %d, %zu levels): %d of %d entries off",
             config.channels, config.two_time, config.levels, bad, checked);
    cm_unet_workspace_free_f64(ws);
    free(pf), free(pd), free(dparams), free(x), free(dx), free(out), free(R), free(layout);
}

static void test_network_gradients(void) {
    cm_rng rng;
    cm_rng_init(&rng, cm_test_seed(34));
    check_network(small_config(1, 0, 2, 1), &rng);
    check_network(small_config(2, 1, 3, 2), &rng); /* NCHW rows of 2 channels, 8 -> 4 -> 2 */
}

/* A one-level network (no resampling) whose kernels are symmetric left-right commutes with
 * mirroring the image: out(flip x) = flip out(x). Checks that rows are read and written as NCHW
 * images (a mix-up of channels, rows and columns breaks the symmetry), here with 2 channels on a
 * 4 x 6 image. */
static void test_mirror_symmetry(void) {
    enum { ROWS = 2, C = 2, H = 4, W = 6 };
    cm_rng rng;
    cm_rng_init(&rng, cm_test_seed(40));
    cm_unet_config config = cm_unet_config_default(C, H, W);
    config.base_channels = 8, config.groups = 4, config.embed = 8, config.levels = 1;
    config.blocks_per_level = 1;
    cm_unet_layout *layout = layout_new(&config);
    size_t P = layout->param_count, D = C * H * W;
    cm_unet_workspace_f64 *ws = NULL;
    CM_CHECK_OK(cm_unet_workspace_alloc_f64(&ws, layout, ROWS));
    float *pf = malloc(P * sizeof(float));
    double *pd = malloc(P * 8), x[ROWS * D], mirrored[ROWS * D], out[ROWS * D], out2[ROWS * D];
    double c_noise[ROWS] = {0.2, -0.7};
    random_params(pf, pd, layout, &rng);
    for (size_t i = 0; i < layout->conv_count; i++) {
        const cm_unet_conv *conv = &layout->convs[i];
        size_t K = conv->kernel, taps = conv->out_channels * conv->in_channels * K;
        for (size_t j = 0; j < taps; j++) /* (oc, c, ky) rows of K values: w[K-1-kx] = w[kx] */
            for (size_t kx = 0; kx < K / 2; kx++)
                pd[conv->weight + j * K + K - 1 - kx] = pd[conv->weight + j * K + kx];
    }
    for (size_t i = 0; i < ROWS * D; i++) x[i] = cm_rng_normal(&rng);
    for (size_t r = 0; r < ROWS; r++)
        for (size_t c = 0; c < C; c++)
            for (size_t y = 0; y < H; y++)
                for (size_t col = 0; col < W; col++)
                    mirrored[((r * C + c) * H + y) * W + col] = x[((r * C + c) * H + y) * W + W - 1 - col];
    CM_CHECK_OK(cm_unet_forward_f64(out, pd, layout, ws, x, c_noise, ROWS));
    CM_CHECK_OK(cm_unet_forward_f64(out2, pd, layout, ws, mirrored, c_noise, ROWS));
    double worst = 0, scale = 0;
    for (size_t r = 0; r < ROWS; r++)
        for (size_t c = 0; c < C; c++)
            for (size_t y = 0; y < H; y++)
                for (size_t col = 0; col < W; col++) {
                    size_t at = ((r * C + c) * H + y) * W;
                    worst = fmax(worst, fabs(out2[at + col] - out[at + W - 1 - col]));
                    scale = fmax(scale, fabs(out[at + col]));
                }
    CM_CHECK(scale > 0.1 && worst <= 1e-12 * scale, "mirrored input: output off by %.3g (scale %.3g)",
             worst, scale);
    cm_unet_workspace_free_f64(ws);
    free(pf), free(pd), free(layout);
}

/* ---- the float network */

typedef struct {
    cm_unet_layout *layout;
    cm_unet_workspace *ws;
    size_t P, D, L, rows;
    float *params, *x, *c_noise, *out, *dout, *dparams, *dx;
} fixture;

static fixture fixture_make(cm_unet_config config, size_t rows, int initial, cm_rng *rng) {
    fixture f = {.layout = layout_new(&config)};
    f.P = f.layout->param_count, f.D = config.channels * config.height * config.width;
    f.L = config.two_time ? 2 : 1, f.rows = rows;
    CM_CHECK_OK(cm_unet_workspace_alloc(&f.ws, f.layout, rows));
    f.params = malloc(f.P * 4), f.dparams = malloc(f.P * 4);
    f.x = malloc(rows * f.D * 4), f.out = malloc(rows * f.D * 4), f.dout = malloc(rows * f.D * 4);
    f.dx = malloc(rows * f.D * 4), f.c_noise = malloc(rows * f.L * 4);
    if (initial)
        cm_unet_init_params(f.params, f.layout, rng);
    else
        random_params(f.params, NULL, f.layout, rng);
    cm_rng_normal_fill_f32(rng, f.x, rows * f.D);
    cm_rng_normal_fill_f32(rng, f.dout, rows * f.D);
    for (size_t i = 0; i < rows * f.L; i++) f.c_noise[i] = (float)(2 * cm_rng_uniform(rng) - 1);
    return f;
}

static void fixture_free(fixture *f) {
    cm_unet_workspace_free(f->ws);
    free(f->layout), free(f->params), free(f->dparams), free(f->x), free(f->out), free(f->dout);
    free(f->dx), free(f->c_noise);
}

/* Float against double on the same weights and inputs. The float path rounds at every layer
 * (about 40 of them, sums of up to 1152 products each, through GroupNorms that rescale);
 * observed relative errors are ~3e-6; the tolerances leave a factor 30. */
static void check_float_against_double(cm_unet_config config, size_t rows, cm_rng *rng) {
    fixture f = fixture_make(config, rows, 0, rng);
    size_t P = f.P, n = rows * f.D;
    cm_unet_workspace_f64 *ws = NULL;
    CM_CHECK_OK(cm_unet_workspace_alloc_f64(&ws, f.layout, rows));
    double *pd = malloc(P * 8), *dpd = malloc(P * 8), *x = malloc(n * 8), *out = malloc(n * 8);
    double *dout = malloc(n * 8), *dx = malloc(n * 8), c_noise[8];
    for (size_t i = 0; i < P; i++) pd[i] = f.params[i];
    for (size_t i = 0; i < n; i++) x[i] = f.x[i], dout[i] = f.dout[i];
    for (size_t i = 0; i < rows * f.L; i++) c_noise[i] = f.c_noise[i];
    CM_CHECK_OK(cm_unet_forward(f.out, f.params, f.layout, f.ws, f.x, f.c_noise, rows));
    CM_CHECK_OK(cm_unet_backward(f.dparams, f.dx, f.params, f.layout, f.ws, f.dout, rows));
    CM_CHECK_OK(cm_unet_forward_f64(out, pd, f.layout, ws, x, c_noise, rows));
    CM_CHECK_OK(cm_unet_backward_f64(dpd, dx, pd, f.layout, ws, dout, rows));
    double scale = 0, worst = 0, dx_error = 0, dx_norm = 0;
    for (size_t i = 0; i < n; i++) {
        scale = fmax(scale, fabs(out[i]));
        worst = fmax(worst, fabs(f.out[i] - out[i]));
        dx_error += (f.dx[i] - dx[i]) * (f.dx[i] - dx[i]), dx_norm += dx[i] * dx[i];
    }
    CM_CHECK(scale > 0.1 && worst <= 1e-4 * scale, "%zux%zux%zu: float output off by %.3g (scale %.3g)",
             config.channels, config.height, config.width, worst, scale);
    CM_CHECK(sqrt(dx_error / dx_norm) <= 1e-4, "input gradient: relative error %.3g",
             sqrt(dx_error / dx_norm));
    double worst_tensor = 0;
    for (size_t t = 0; t < f.layout->tensor_count; t++) {
        const cm_unet_tensor *tensor = &f.layout->tensors[t];
        double error = 0, norm = 0;
        for (size_t i = tensor->offset; i < tensor->offset + tensor->count; i++)
            error += (f.dparams[i] - dpd[i]) * (f.dparams[i] - dpd[i]), norm += dpd[i] * dpd[i];
        double relative = sqrt(error / norm);
        worst_tensor = fmax(worst_tensor, relative);
        CM_CHECK(norm > 0 && relative <= 1e-4, "%s: float gradient relative error %.3g",
                 tensor->name, relative);
    }
    fprintf(stdout, "    %zux%zux%zu, %zu rows: output %.2g of %.2g, input gradient %.2g, worst "
            "tensor gradient %.2g (relative)\n", config.channels, config.height, config.width,
            rows, worst, scale, sqrt(dx_error / dx_norm), worst_tensor);
    cm_unet_workspace_free_f64(ws);
    free(pd), free(dpd), free(x), free(out), free(dout), free(dx);
    fixture_free(&f);
}

static void test_float_matches_double(void) {
    cm_rng rng;
    cm_rng_init(&rng, cm_test_seed(35));
    check_float_against_double(cm_unet_config_default(1, 16, 16), 2, &rng);
    check_float_against_double(small_config(3, 1, 2, 1), 2, &rng); /* 3 channels, two-time */
    if (!getenv("CM_FAST")) check_float_against_double(cm_unet_config_default(1, 28, 28), 1, &rng);
}

/* Two forwards and two backwards give the same bits; a row's output and input gradient are those
 * of the row alone, bit for bit (every row takes the same one-row path); the parameter gradient
 * of 3 rows is the sum of the rows' to float rounding. */
static void test_deterministic_and_rows_independent(void) {
    enum { ROWS = 3 };
    cm_rng rng;
    cm_rng_init(&rng, cm_test_seed(36));
    fixture f = fixture_make(cm_unet_config_default(1, 16, 16), ROWS, 0, &rng);
    size_t n = ROWS * f.D, P = f.P, D = f.D;
    float *out2 = malloc(n * 4), *dparams2 = malloc(P * 4), *dx2 = malloc(n * 4);
    float *one_out = malloc(D * 4), *one_dx = malloc(D * 4), *one_dparams = malloc(P * 4);
    double *sum = calloc(P, 8);
    CM_CHECK_OK(cm_unet_forward(f.out, f.params, f.layout, f.ws, f.x, f.c_noise, ROWS));
    CM_CHECK_OK(cm_unet_backward(f.dparams, f.dx, f.params, f.layout, f.ws, f.dout, ROWS));
    CM_CHECK_OK(cm_unet_forward(out2, f.params, f.layout, f.ws, f.x, f.c_noise, ROWS));
    CM_CHECK_OK(cm_unet_backward(dparams2, dx2, f.params, f.layout, f.ws, f.dout, ROWS));
    CM_CHECK(memcmp(f.out, out2, n * 4) == 0, "two forwards differ");
    CM_CHECK(memcmp(f.dparams, dparams2, P * 4) == 0 && memcmp(f.dx, dx2, n * 4) == 0,
             "two backwards differ");
    for (size_t r = 0; r < ROWS; r++) {
        CM_CHECK_OK(cm_unet_forward(one_out, f.params, f.layout, f.ws, f.x + r * D,
                                    f.c_noise + r, 1));
        CM_CHECK_OK(cm_unet_backward(one_dparams, one_dx, f.params, f.layout, f.ws,
                                     f.dout + r * D, 1));
        CM_CHECK(memcmp(one_out, f.out + r * D, D * 4) == 0, "row %zu alone: other output", r);
        CM_CHECK(memcmp(one_dx, f.dx + r * D, D * 4) == 0, "row %zu alone: other input gradient", r);
        for (size_t i = 0; i < P; i++) sum[i] += one_dparams[i];
    }
    double error = 0, norm = 0;
    for (size_t i = 0; i < P; i++)
        error += (f.dparams[i] - sum[i]) * (f.dparams[i] - sum[i]), norm += sum[i] * sum[i];
    CM_CHECK(sqrt(error / norm) < 1e-6, "3 rows' gradient vs the sum of the rows: %.3g",
             sqrt(error / norm));
    /* a row's output does not depend on its neighbours' values */
    for (size_t i = D; i < n; i++) f.x[i] = -f.x[i];
    CM_CHECK_OK(cm_unet_forward(out2, f.params, f.layout, f.ws, f.x, f.c_noise, ROWS));
    CM_CHECK(memcmp(out2, f.out, D * 4) == 0, "row 0 depends on rows 1, 2");
    free(out2), free(dparams2), free(dx2), free(one_out), free(one_dx), free(one_dparams), free(sum);
    fixture_free(&f);
}

/* PyTorch's initialisation zeroes the output conv: the output is exactly 0, and so is every
 * gradient behind that conv (they all pass through its zero weights). */
static void test_zero_output_at_init(void) {
    cm_rng rng;
    cm_rng_init(&rng, cm_test_seed(37));
    fixture f = fixture_make(cm_unet_config_default(1, 16, 16), 2, 1, &rng);
    CM_CHECK_OK(cm_unet_forward(f.out, f.params, f.layout, f.ws, f.x, f.c_noise, 2));
    CM_CHECK_OK(cm_unet_backward(f.dparams, f.dx, f.params, f.layout, f.ws, f.dout, 2));
    int nonzero_out = 0, nonzero_dx = 0;
    for (size_t i = 0; i < 2 * f.D; i++) nonzero_out += f.out[i] != 0, nonzero_dx += f.dx[i] != 0;
    CM_CHECK(nonzero_out == 0 && nonzero_dx == 0, "%d outputs and %d input gradients not 0",
             nonzero_out, nonzero_dx);
    for (size_t t = 0; t < f.layout->tensor_count; t++) {
        const cm_unet_tensor *tensor = &f.layout->tensors[t];
        int output_conv = strncmp(tensor->name, "unet.out.conv.", 14) == 0, nonzero = 0;
        for (size_t i = 0; i < tensor->count; i++) nonzero += f.dparams[tensor->offset + i] != 0;
        CM_CHECK(output_conv ? nonzero == (int)tensor->count : nonzero == 0,
                 "%s: %d nonzero gradient entries", tensor->name, nonzero);
    }
    fixture_free(&f);
}

/* backward overwrites dparams and dx_in: NaN there beforehand changes nothing; without dx_in
 * the parameter gradient is the same. */
static void test_backward_overwrites(void) {
    cm_rng rng;
    cm_rng_init(&rng, cm_test_seed(38));
    fixture f = fixture_make(small_config(1, 0, 2, 1), 2, 0, &rng);
    size_t n = 2 * f.D;
    float *dparams = malloc(f.P * 4), *dx = malloc(n * 4);
    CM_CHECK_OK(cm_unet_forward(f.out, f.params, f.layout, f.ws, f.x, f.c_noise, 2));
    memset(f.dparams, 0, f.P * 4), memset(f.dx, 0, n * 4);
    CM_CHECK_OK(cm_unet_backward(f.dparams, f.dx, f.params, f.layout, f.ws, f.dout, 2));
    for (size_t i = 0; i < f.P; i++) dparams[i] = NAN;
    for (size_t i = 0; i < n; i++) dx[i] = NAN;
    CM_CHECK_OK(cm_unet_backward(dparams, dx, f.params, f.layout, f.ws, f.dout, 2));
    CM_CHECK(memcmp(dparams, f.dparams, f.P * 4) == 0 && memcmp(dx, f.dx, n * 4) == 0,
             "backward depends on what dparams or dx_in held");
    CM_CHECK_OK(cm_unet_backward(dparams, NULL, f.params, f.layout, f.ws, f.dout, 2));
    CM_CHECK(memcmp(dparams, f.dparams, f.P * 4) == 0, "dx_in = NULL changes dparams");
    free(dparams), free(dx);
    fixture_free(&f);
}

/* The workspace reorders a conv's weights only when they changed since the last forward: weights
 * changed in place (same pointer) or passed at another address are picked up, bit for bit the
 * results of a fresh workspace, and unchanged weights give the same bits again. */
static void test_weights_changed_between_calls(void) {
    cm_rng rng;
    cm_rng_init(&rng, cm_test_seed(40));
    fixture f = fixture_make(small_config(1, 0, 2, 1), 2, 0, &rng);
    size_t n = 2 * f.D, P = f.P;
    float *out1 = malloc(n * 4), *out2 = malloc(n * 4), *copy = malloc(P * 4);
    float *dp1 = malloc(P * 4), *dp2 = malloc(P * 4);
    cm_unet_workspace *fresh = NULL;
    CM_CHECK_OK(cm_unet_forward(out1, f.params, f.layout, f.ws, f.x, f.c_noise, 2));
    /* in place: one entry of the first conv and of the last residual block's conv2 */
    const cm_unet_conv *first = &f.layout->convs[0], *late = &f.layout->convs[f.layout->conv_count - 2];
    f.params[first->weight + 3] += 0.5f, f.params[late->weight + 7] -= 0.25f;
    CM_CHECK_OK(cm_unet_forward(f.out, f.params, f.layout, f.ws, f.x, f.c_noise, 2));
    CM_CHECK_OK(cm_unet_backward(dp1, NULL, f.params, f.layout, f.ws, f.dout, 2));
    CM_CHECK_OK(cm_unet_workspace_alloc(&fresh, f.layout, 2));
    CM_CHECK_OK(cm_unet_forward(out2, f.params, f.layout, fresh, f.x, f.c_noise, 2));
    CM_CHECK_OK(cm_unet_backward(dp2, NULL, f.params, f.layout, fresh, f.dout, 2));
    CM_CHECK(memcmp(out1, f.out, n * 4) != 0, "changing the weights changed nothing");
    CM_CHECK(memcmp(out2, f.out, n * 4) == 0 && memcmp(dp1, dp2, P * 4) == 0,
             "weights changed in place: stale convolution weights");
    /* at another address with the old values again */
    memcpy(copy, f.params, P * 4);
    copy[first->weight + 3] -= 0.5f, copy[late->weight + 7] += 0.25f;
    CM_CHECK_OK(cm_unet_forward(out2, copy, f.layout, f.ws, f.x, f.c_noise, 2));
    CM_CHECK(memcmp(out1, out2, n * 4) == 0, "the original weights at another address");
    cm_unet_workspace_free(fresh);
    free(out1), free(out2), free(copy), free(dp1), free(dp2);
    fixture_free(&f);
}

static void test_capacity_and_allocation_failures(void) {
    cm_rng rng;
    cm_rng_init(&rng, 39);
    fixture f = fixture_make(small_config(1, 0, 2, 1), 2, 0, &rng);
    CM_CHECK(cm_unet_forward(f.out, f.params, f.layout, f.ws, f.x, f.c_noise, 3) == CM_ERR_INVALID,
             "3 rows in a workspace of 2");
    CM_CHECK(cm_unet_forward(f.out, f.params, f.layout, f.ws, f.x, f.c_noise, 0) == CM_ERR_INVALID,
             "0 rows");
    CM_CHECK(cm_unet_backward(f.dparams, NULL, f.params, f.layout, f.ws, f.dout, 3) ==
                 CM_ERR_INVALID, "backward of 3 rows in a workspace of 2");
    cm_unet_workspace *ws = (cm_unet_workspace *)f.params;
    CM_CHECK(cm_unet_workspace_alloc(&ws, f.layout, 0) == CM_ERR_INVALID && !ws, "capacity 0");
    /* every allocation failing in turn: NOMEM and nothing left behind */
    long live = cm_alloc_live_count();
    int failures = 0;
    for (long k = 0; k < 1000; k++) {
        cm_alloc_fail_after(k);
        cm_status status = cm_unet_workspace_alloc(&ws, f.layout, 2);
        cm_alloc_fail_after(-1);
        if (status == CM_OK) {
            cm_unet_workspace_free(ws);
            break;
        }
        failures++;
        CM_CHECK(status == CM_ERR_NOMEM && !ws, "allocation %ld failing: %s", k,
                 cm_status_name(status));
        CM_CHECK(cm_alloc_live_count() == live, "allocation %ld failing leaks %ld blocks", k,
                 cm_alloc_live_count() - live);
    }
    CM_CHECK(failures >= 3, "only %d allocations to fail", failures);
    cm_unet_workspace_f64 *ws64 = NULL;
    cm_alloc_fail_after(1);
    CM_CHECK(cm_unet_workspace_alloc_f64(&ws64, f.layout, 2) == CM_ERR_NOMEM && !ws64,
             "double workspace, second allocation failing");
    cm_alloc_fail_after(-1);
    CM_CHECK(cm_alloc_live_count() == live, "double workspace leaks");
    fixture_free(&f);
}

const cm_test_case cm_tests_unet[] = {
    {"parameter_count", test_parameter_count},
    {"initialisation", test_initialisation},
    {"layout_rejects_bad_configs", test_layout_rejects_bad_configs},
    {"embedding_gradients", test_embedding_gradients},
    {"resblock_gradients", test_resblock_gradients},
    {"network_gradients", test_network_gradients},
    {"mirror_symmetry", test_mirror_symmetry},
    {"float_matches_double", test_float_matches_double},
    {"deterministic_and_rows_independent", test_deterministic_and_rows_independent},
    {"zero_output_at_init", test_zero_output_at_init},
    {"backward_overwrites", test_backward_overwrites},
    {"weights_changed_between_calls", test_weights_changed_between_calls},
    {"capacity_and_allocation_failures", test_capacity_and_allocation_failures},
    {NULL, NULL},
};
