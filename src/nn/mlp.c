/* mlp.c: the MLP network type (mlp.h): its settings with their defaults, layout, PyTorch's
 * default initialisation, mlp_template.h's block passes instantiated in float and double, and
 * its export to C (network.h: the forward pass on the writer's kernels, weights transposed),
 * behind the cm_network_type interface of network.h. The float products run on oneDNN matmul
 * primitives made with the workspace (matmul.h: about twice the rate of the OpenBLAS kernel the
 * machine pins, docs/performance.md), the double ones on cblas_dgemm (the gradient-check path).
 */
#include "nn/mlp.h"

#include <cblas.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cm/alloc.h"
#include "nn/layers.h"
#include "nn/matmul.h"

/* The products of layer l (weight[OC,C], M rows):
 * forward          out[M,OC]  = inp[M,C] @ weight^T
 * input gradient   dinp[M,C]  = dout[M,OC] @ weight
 * weight gradient  dweight[OC,C] = dout^T @ inp (sums over the M rows) */
enum { MLP_FORWARD, MLP_INPUT_GRADIENT, MLP_WEIGHT_GRADIENT, MLP_PRODUCT_KINDS };

static const int mlp_trans_a[MLP_PRODUCT_KINDS] = {0, 0, 1};
static const int mlp_trans_b[MLP_PRODUCT_KINDS] = {1, 0, 0};

/* ---- float: one oneDNN primitive per product, made for the workspace's row capacity M. */

typedef struct {
    cm_onednn onednn; /* engine and stream of this workspace's products */
    cm_matmul product[MLP_PRODUCT_KINDS][CM_MLP_MAX_DEPTH + 1];
    void *scratchpad; /* owns the scratchpad all products share (they never run at once) */
} mlp_products;

static void mlp_products_destroy(mlp_products *p) {
    for (int kind = 0; kind < MLP_PRODUCT_KINDS; kind++)
        for (size_t l = 0; l <= CM_MLP_MAX_DEPTH; l++) cm_matmul_destroy(&p->product[kind][l]);
    cm_onednn_destroy(&p->onednn);
    cm_free(p->scratchpad);
    p->scratchpad = NULL;
}

/* M, N, K of product `kind` of layer l on M rows. */
static void mlp_product_shape(size_t shape[3], const cm_mlp_layout *layout, int kind, size_t l,
                              size_t M) {
    size_t C = layout->in[l], OC = layout->out[l];
    size_t shapes[MLP_PRODUCT_KINDS][3] = {{M, OC, C}, {M, C, OC}, {OC, C, M}};
    memcpy(shape, shapes[kind], sizeof shapes[kind]);
}

static cm_status mlp_products_build(mlp_products *p, const cm_mlp_layout *layout, size_t rows) {
    CM_TRY(cm_onednn_create(&p->onednn));
    size_t bytes = 0;
    for (int kind = 0; kind < MLP_PRODUCT_KINDS; kind++)
        for (size_t l = 0; l < layout->layer_count; l++) {
            size_t s[3];
            mlp_product_shape(s, layout, kind, l, rows);
            CM_TRY(cm_matmul_create(&p->product[kind][l], &p->onednn, mlp_trans_a[kind],
                                    mlp_trans_b[kind], s[0], s[1], s[2], 0));
            size_t need = cm_matmul_scratchpad_bytes(&p->product[kind][l]);
            bytes = need > bytes ? need : bytes;
        }
    const size_t align = 64;
    if (!(p->scratchpad = cm_malloc(bytes + align, 1)))
        return cm_error_set(CM_ERR_NOMEM, "MLP products: %zu bytes of scratchpad", bytes);
    void *aligned = (void *)(((uintptr_t)p->scratchpad + align - 1) / align * align);
    for (int kind = 0; kind < MLP_PRODUCT_KINDS; kind++)
        for (size_t l = 0; l < layout->layer_count; l++)
            CM_TRY(cm_matmul_bind_scratchpad(&p->product[kind][l], aligned));
    return CM_OK;
}

static cm_status mlp_products_create(mlp_products *out, const cm_mlp_layout *layout, size_t rows) {
    *out = (mlp_products){0};
    cm_status status = mlp_products_build(out, layout, rows);
    if (status != CM_OK) mlp_products_destroy(out);
    return status;
}

/* Product `kind` of layer l; M, N, K are those it was made for. */
static void mlp_product(mlp_products *p, int kind, size_t l, float *C, const float *A,
                        const float *B, int M, int N, int K) {
    cm_matmul_run(&p->product[kind][l], C, A, B, NULL);
}

/* ---- double: cblas_dgemm on the rows given. */

typedef struct {
    char unused;
} mlp_products_f64;

static cm_status mlp_products_create_f64(mlp_products_f64 *out, const cm_mlp_layout *layout,
                                         size_t rows) {
    return CM_OK;
}

static void mlp_products_destroy_f64(mlp_products_f64 *p) {}

static void mlp_product_f64(mlp_products_f64 *p, int kind, size_t l, double *C, const double *A,
                            const double *B, int M, int N, int K) {
    int ta = mlp_trans_a[kind], tb = mlp_trans_b[kind];
    cblas_dgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M,
                N, K, 1.0, A, ta ? M : K, B, tb ? K : N, 0.0, C, N);
}

#define REAL float
#define FN(name) name
#define WORKSPACE cm_mlp_workspace
#define PRODUCTS mlp_products
#define PAD_ROWS 1
#include "nn/mlp_template.h"
#undef REAL
#undef FN
#undef WORKSPACE
#undef PRODUCTS
#undef PAD_ROWS

#define REAL double
#define FN(name) name##_f64
#define WORKSPACE cm_mlp_workspace_f64
#define PRODUCTS mlp_products_f64
#define PAD_ROWS 0
#include "nn/mlp_template.h"
#undef REAL
#undef FN
#undef WORKSPACE
#undef PRODUCTS
#undef PAD_ROWS

/* Limits that keep every size product far from overflow and every int argument of CBLAS valid. */
#define CM_MLP_MAX_WIDTH 65536
#define CM_MLP_MAX_DIM 1048576

#define OPTION(key, kind, member, lo, hi, help) \
    {key, kind, offsetof(cm_mlp_options, member), lo, hi, NULL, 0, help, NULL, 0}
static const cm_field mlp_fields[] = {
    OPTION("width", CM_FIELD_SIZE, width, 1, CM_MLP_MAX_WIDTH, "MLP width"),
    OPTION("depth", CM_FIELD_SIZE, depth, 1, CM_MLP_MAX_DEPTH, "MLP hidden layers"),
    OPTION("embed", CM_FIELD_SIZE, embed, 2, CM_EMBED_MAX_FEATURES,
           "Fourier features of each noise level c_noise (even)"),
    {"embed_max_frequency", CM_FIELD_DOUBLE, offsetof(cm_mlp_options, embed_max_frequency), 1,
     1e12, NULL, 0, "largest Fourier frequency", "embed-frequency", 0},
};
#undef OPTION

/* Values measured on the 2-D sets (docs/training.md). */
static void mlp_defaults(cm_network_config *config) {
    cm_mlp_options *o = cm_network_options(config);
    o->width = 256;                  /* the reference network of docs/training.md */
    o->depth = 3;
    o->embed = 64;                   /* measured (32 and 16 frequencies did worse) */
    o->embed_max_frequency = 1000.0; /* measured (16, 100, 300 worse) */
}

cm_status cm_mlp_layout_init(cm_mlp_layout *out, const cm_network_config *config) {
    *out = (cm_mlp_layout){0};
    const cm_mlp_options *o = cm_network_options_const(config);
    if (config->dim < 1 || config->dim > CM_MLP_MAX_DIM)
        return cm_error_set(CM_ERR_INVALID, "MLP: data dimension %zu out of [1, %d]", config->dim,
                            CM_MLP_MAX_DIM);
    if (o->width < 1 || o->width > CM_MLP_MAX_WIDTH)
        return cm_error_set(CM_ERR_INVALID, "MLP: width %zu out of [1, %d]", o->width,
                            CM_MLP_MAX_WIDTH);
    if (o->depth < 1 || o->depth > CM_MLP_MAX_DEPTH)
        return cm_error_set(CM_ERR_INVALID, "MLP: depth %zu out of [1, %d]", o->depth,
                            CM_MLP_MAX_DEPTH);
    if (o->embed < 2 || o->embed % 2 || o->embed > CM_EMBED_MAX_FEATURES)
        return cm_error_set(CM_ERR_INVALID, "MLP: embedding features %zu must be even, in [2, %d]",
                            o->embed, CM_EMBED_MAX_FEATURES);
    if (!(o->embed_max_frequency >= 1.0) || !isfinite(o->embed_max_frequency))
        return cm_error_set(CM_ERR_INVALID, "MLP: embedding max frequency %g must be >= 1",
                            o->embed_max_frequency);
    if (config->noise_levels < 1 || config->noise_levels > CM_NETWORK_MAX_NOISE_LEVELS)
        return cm_error_set(CM_ERR_INVALID, "MLP: %zu noise levels per row (1 or 2)",
                            config->noise_levels);
    *out = (cm_mlp_layout){.dim = config->dim, .width = o->width, .depth = o->depth,
                           .embed = o->embed, .noise_levels = config->noise_levels,
                           .embed_max_frequency = o->embed_max_frequency};
    out->layer_count = o->depth + 1;
    size_t offset = 0;
    for (size_t l = 0; l < out->layer_count; l++) {
        out->in[l] = l == 0 ? config->dim + o->embed * config->noise_levels : o->width;
        out->out[l] = l == o->depth ? config->dim : o->width;
        out->weight_offset[l] = offset;
        offset += out->in[l] * out->out[l];
        out->bias_offset[l] = offset;
        offset += out->out[l];
    }
    out->param_count = offset;
    return CM_OK;
}

static cm_status mlp_create(void **state, cm_network *network) {
    *state = NULL;
    cm_mlp_layout layout;
    CM_TRY(cm_mlp_layout_init(&layout, cm_network_config_of(network)));
    for (size_t l = 0; l < layout.layer_count; l++) {
        char name[CM_TENSOR_NAME_MAX];
        size_t weight[2] = {layout.out[l], layout.in[l]}, bias[1] = {layout.out[l]};
        snprintf(name, sizeof name, "mlp.%zu.weight", l);
        CM_TRY(cm_network_add_tensor(network, name, 2, weight));
        snprintf(name, sizeof name, "mlp.%zu.bias", l);
        CM_TRY(cm_network_add_tensor(network, name, 1, bias));
    }
    cm_mlp_layout *copy = cm_malloc(1, sizeof *copy);
    if (!copy) return cm_error_set(CM_ERR_NOMEM, "MLP layout");
    *copy = layout;
    *state = copy;
    return CM_OK;
}

static void mlp_destroy(void *state) { cm_free(state); }

/* PyTorch's default Linear init: weights and biases U(-1/sqrt(C), 1/sqrt(C)), layer by layer
 * (weight then bias), from `rng`. */
static void mlp_init(const cm_network *network, float *params, cm_rng *rng) {
    const cm_mlp_layout *layout = cm_network_state(network);
    for (size_t l = 0; l < layout->layer_count; l++) {
        double bound = 1.0 / sqrt((double)layout->in[l]);
        size_t count = layout->in[l] * layout->out[l] + layout->out[l];
        float *p = params + layout->weight_offset[l];
        for (size_t i = 0; i < count; i++) p[i] = (float)(bound * (2.0 * cm_rng_uniform(rng) - 1.0));
    }
}

static cm_status mlp_workspace_alloc(void **out, const cm_network *network, size_t rows, int f64) {
    const cm_mlp_layout *layout = cm_network_state(network);
    if (f64) return cm_mlp_workspace_alloc_f64((cm_mlp_workspace_f64 **)out, layout, rows);
    return cm_mlp_workspace_alloc((cm_mlp_workspace **)out, layout, rows);
}

static void mlp_workspace_free(void *workspace, int f64) {
    if (f64) cm_mlp_workspace_free_f64(workspace);
    else cm_mlp_workspace_free(workspace);
}

static void mlp_forward(const cm_network *network, float *out, const float *params,
                        void *workspace, const float *x_in, const float *c_noise, size_t rows) {
    cm_mlp_forward(out, params, cm_network_state(network), workspace, x_in, c_noise, (int)rows);
}

static void mlp_backward(const cm_network *network, float *dparams, float *dx_in,
                         const float *params, void *workspace, const float *dout, size_t rows) {
    cm_mlp_backward(dparams, dx_in, params, cm_network_state(network), workspace, dout, (int)rows);
}

static void mlp_forward_f64(const cm_network *network, double *out, const double *params,
                            void *workspace, const double *x_in, const double *c_noise,
                            size_t rows) {
    cm_mlp_forward_f64(out, params, cm_network_state(network), workspace, x_in, c_noise, (int)rows);
}

static void mlp_backward_f64(const cm_network *network, double *dparams, double *dx_in,
                             const double *params, void *workspace, const double *dout,
                             size_t rows) {
    cm_mlp_backward_f64(dparams, dx_in, params, cm_network_state(network), workspace, dout,
                        (int)rows);
}

static double mlp_forward_flops(const cm_network *network, size_t rows) {
    const cm_mlp_layout *layout = cm_network_state(network);
    double flops = 0.0;
    for (size_t l = 0; l < layout->layer_count; l++)
        flops += 2.0 * (double)rows * (double)layout->in[l] * (double)layout->out[l];
    return flops;
}

/* ---- export to C (network.h): weights transposed to [C, OC] with OC padded to the tile, so
 * that the writer's @_gemm runs over output channels; the embedding's share of the first layer
 * (the same for every row of a call) is summed once per call. */

/* Layer l's weight, transposed to [C, OC padded], as matrix l and its bias (padded) as
 * vector l. */
static cm_status export_layer(cm_export_writer *writer, const cm_mlp_layout *layout,
                              const float *params, size_t l) {
    size_t OC = layout->out[l], C = layout->in[l], ldw = cm_export_padded(OC), index;
    float *values = cm_calloc(C * ldw + ldw, sizeof(float));
    if (!values) return cm_error_set(CM_ERR_NOMEM, "MLP export of layer %zu", l);
    float *bias = values + C * ldw;
    const float *weight = params + layout->weight_offset[l];
    for (size_t o = 0; o < OC; o++)
        for (size_t c = 0; c < C; c++) values[c * ldw + o] = weight[o * C + c];
    memcpy(bias, params + layout->bias_offset[l], OC * sizeof(float));
    char name[CM_TENSOR_NAME_MAX];
    snprintf(name, sizeof name, "mlp.%zu.weight, transposed", l);
    cm_status status = cm_export_matrix(writer, &index, name, values, C, ldw);
    snprintf(name, sizeof name, "mlp.%zu.bias", l);
    if (status == CM_OK) status = cm_export_vector(writer, &index, name, bias, ldw);
    cm_free(values);
    return status;
}

#define MLP_EXPORT_BLOCK 64 /* rows per call of the exported forward */

static cm_status mlp_export(const cm_network *network, const float *params,
                            cm_export_writer *w) {
    const cm_mlp_layout *m = cm_network_state(network);
    size_t D = m->dim, E = m->embed, L = m->noise_levels, W = m->width;
    size_t Wp = cm_export_padded(W), Dp = cm_export_padded(D), last = m->depth;
    for (size_t l = 0; l < m->layer_count; l++) CM_TRY(export_layer(w, m, params, l));
    cm_export_set_forward(w, MLP_EXPORT_BLOCK, L * E + Wp + 2 * MLP_EXPORT_BLOCK * W);
    cm_export_printf(w,
        "/* ---- the network (src/nn/mlp.c): Linear(D + L E -> W), SiLU, %zu x [Linear(W -> W),\n"
        " * SiLU], Linear(W -> D) on [x_in, Fourier(c_noise_1), ..], with D = %zu, E = %zu,\n"
        " * L = %zu, W = %zu. Matrix l is layer l's weight transposed [C, OC padded to 8], vector\n"
        " * l its bias. The embedding's share of the first layer is the same for every row of a\n"
        " * call: it is summed once, into the first layer's bias. */\n"
        "\n"
        "static void @_network_forward(float *out, const float *x_in, const float *c_noise,\n"
        "                              size_t rows, float *work, float *decode)\n"
        "{\n"
        "    float *embedding = work;            /* [L E] */\n"
        "    float *first_bias = work + %zu;      /* [%zu] */\n"
        "    float *a = first_bias + %zu, *b = a + %zu; /* [rows, W] each */\n"
        "    for (int j = 0; j < %zu; j++)\n"
        "        @_fourier(embedding + j * %zu, c_noise[j], %zu, %.17g);\n"
        "    const float *w = @_matrix(0, decode), *bias = @_vector(0);\n"
        "    for (int o = 0; o < %zu; o++) first_bias[o] = bias[o];\n"
        "    for (int c = 0; c < %zu; c++) {\n"
        "        const float e = embedding[c], *restrict row = w + (size_t)(%zu + c) * %zu;\n"
        "        for (int o = 0; o < %zu; o++) first_bias[o] += e * row[o];\n"
        "    }\n"
        "    @_gemm(a, %zu, x_in, %zu, rows, %zu, w, %zu, first_bias, %zu);\n"
        "    @_silu(a, rows * %zu);\n",
        m->depth - 1, D, E, L, W, L * E, Wp, Wp,
        (size_t)MLP_EXPORT_BLOCK * W, L, E, E, m->embed_max_frequency, Wp, L * E, D, Wp, Wp, W,
        D, D, Wp, W, W);
    for (size_t l = 1; l < last; l++)
        cm_export_printf(w,
            "    @_gemm(b, %zu, a, %zu, rows, %zu, @_matrix(%zu, decode), %zu, @_vector(%zu), %zu);\n"
            "    @_silu(b, rows * %zu);\n"
            "    { float *swap = a; a = b; b = swap; }\n",
            W, W, W, l, Wp, l, W, W);
    cm_export_printf(w,
        "    (void)b;\n"
        "    @_gemm(out, %zu, a, %zu, rows, %zu, @_matrix(%zu, decode), %zu, @_vector(%zu), %zu);\n"
        "}\n\n",
        D, W, W, last, Dp, last, D);
    return cm_export_writer_status(w);
}

const cm_network_type cm_network_mlp = {
    .name = "mlp",
    .summary = "multilayer perceptron on [x, Fourier features of the noise level(s)], SiLU",
    .options = mlp_fields,
    .option_count = sizeof mlp_fields / sizeof mlp_fields[0],
    .defaults = mlp_defaults,
    .create = mlp_create,
    .destroy = mlp_destroy,
    .init = mlp_init,
    .workspace_alloc = mlp_workspace_alloc,
    .workspace_free = mlp_workspace_free,
    .forward = mlp_forward,
    .backward = mlp_backward,
    .forward_f64 = mlp_forward_f64,
    .backward_f64 = mlp_backward_f64,
    .forward_flops = mlp_forward_flops,
    .export_c = mlp_export,
};
