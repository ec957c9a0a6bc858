/* network.h: the network F of a model, as an interface. A network type (a small table of
 * functions, GSL's type-object pattern) provides the parameter layout, initialisation, and
 * forward and backward passes over one row block in float, with a double twin for gradient
 * checks; the trainer, the evaluator (evaluator.h), the model files and the CLI talk only to
 * this interface. Adding a network is one module (src/nn/<name>.c defining a cm_network_type)
 * and one line in the registry (src/nn/network.c); docs/architecture.md shows the list.
 *
 * What F computes: out[rows, D] = F(x_in[rows, D], c_noise[rows, L]), x_in already scaled by
 * c_in (consistency.h), L = noise_levels (1, or 2 for two-time models: the level and the target
 * level of g(x, t, s)). Images are rows of D = C H W values in (c, h, w) order.
 *
 * The contract every type meets (tests/nn/test_network.c checks it for every registered type):
 * - Rows are independent: no batch statistics (GroupNorm, never BatchNorm); a row's output
 *   does not depend on the other rows' values.
 * - Calls are per row block, on the calling thread only (no threads inside: the caller runs
 *   blocks on its pool), and allocate nothing. A forward keeps its activations in the
 *   workspace, overwriting those of that workspace's previous forward; a backward uses the
 *   activations of the same workspace's last forward.
 * - backward OVERWRITES dparams[param_count] with this block's parameter gradient of
 *   sum(out * dout), and dx_in[rows, D] (when not NULL) with the input gradient; summing block
 *   gradients is the caller's job (in a fixed order: docs/architecture.md).
 * - float and double are compiled from one source; the double twin is for gradient checks.
 * - rows <= the capacity the workspace was made for.
 * Pointers are borrowed for the call; a cm_network owns its tensor list and type state.
 *
 * Export to C (export.h, docs/export.md): a type may also write its forward pass as C99 text
 * through a cm_export_writer (the end of this header), so that a trained model becomes one
 * dependency-free C file; the sampler around it is written by the model part (export.h).
 */
#ifndef CM_NETWORK_H
#define CM_NETWORK_H

#include <stddef.h>

#include "cm/field.h"
#include "cm/io.h"
#include "cm/rng.h"
#include "cm/status.h"

#define CM_TENSOR_NAME_MAX 64 /* CM_TENSOR_MAX_DIMS: io.h */
#define CM_NETWORK_OPTION_BYTES 256 /* room for a type's own settings struct */
#define CM_NETWORK_MAX_NOISE_LEVELS 2

/* One named tensor of the flat parameter vector (for files, export and gradient checks). */
typedef struct {
    char name[CM_TENSOR_NAME_MAX]; /* e.g. "mlp.0.weight" */
    size_t ndim;
    size_t shape[CM_TENSOR_MAX_DIMS];
    size_t offset; /* of its first value in the parameter vector */
    size_t count;  /* product of the shape */
} cm_tensor_layout;

typedef struct cm_network_type cm_network_type;
typedef struct cm_network cm_network;
typedef struct cm_network_workspace cm_network_workspace;
typedef struct cm_export_writer cm_export_writer;

/* What a network is asked to be: the data it maps, how many noise levels a row carries, and its
 * type's own settings (a struct of the type, stored in `options` and described by the type's
 * field table, so that they reach JSON and the CLI without code outside the type). */
typedef struct {
    const cm_network_type *type;
    size_t dim;                     /* D */
    size_t image_channels, image_height, image_width; /* an image's C, H, W (C H W = D);
                                                        0, 0, 0 for vectors */
    size_t noise_levels;            /* L: 1, or 2 (two-time models) */
    union {
        double align_double;
        size_t align_size;
        unsigned char bytes[CM_NETWORK_OPTION_BYTES];
    } options;
} cm_network_config;

struct cm_network_type {
    const char *name;    /* "mlp": the JSON "type" and the CLI's --network value */
    const char *summary; /* one line for --help */
    /* 1: a row's output is the same bits whatever other rows share its call (so evaluators need
     * not pad calls to a fixed shape, and may use small chunks); 0: products over the rows may
     * round a row differently for a different row count (the MLP's GEMMs) */
    int exact_rows;
    const cm_field *options; /* the type's settings, offsets into cm_network_config.options */
    size_t option_count;
    /* The defaults of the type's settings for config->dim (and image shape). */
    void (*defaults)(cm_network_config *config);
    /* Validate config (CM_ERR_INVALID naming the setting), add every tensor with
     * cm_network_add_tensor in file order, and make the type's state (*state, owned by the
     * network, freed by destroy). */
    cm_status (*create)(void **state, cm_network *network);
    void (*destroy)(void *state);
    void (*init)(const cm_network *network, float *params, cm_rng *rng);
    /* Workspace for blocks of up to `rows` rows, in float (f64 = 0) or double (f64 = 1). */
    cm_status (*workspace_alloc)(void **out, const cm_network *network, size_t rows, int f64);
    void (*workspace_free)(void *workspace, int f64);
    void (*forward)(const cm_network *network, float *out, const float *params, void *workspace,
                    const float *x_in, const float *c_noise, size_t rows);
    void (*backward)(const cm_network *network, float *dparams, float *dx_in,
                     const float *params, void *workspace, const float *dout, size_t rows);
    void (*forward_f64)(const cm_network *network, double *out, const double *params,
                        void *workspace, const double *x_in, const double *c_noise, size_t rows);
    void (*backward_f64)(const cm_network *network, double *dparams, double *dx_in,
                         const double *params, void *workspace, const double *dout, size_t rows);
    /* FLOPs of one forward of `rows` rows (2 per multiply-add). */
    double (*forward_flops)(const cm_network *network, size_t rows);
    /* Write the forward pass of `network` with weights `params` as C99 text through `writer`
     * (the contract at the end of this header); NULL: the type cannot be exported. */
    cm_status (*export_c)(const cm_network *network, const float *params,
                          cm_export_writer *writer);
};

/* ---- the registry */

/* The registered types, in registry order (index < count), and lookup by name (NULL if none). */
size_t cm_network_type_count(void);
const cm_network_type *cm_network_type_at(size_t index);
const cm_network_type *cm_network_type_find(const char *name);
/* CM_ERR_INVALID naming the valid types when `name` is not one. */
cm_status cm_network_type_parse(const cm_network_type **out, const char *name);
/* The default type (the MLP). */
const cm_network_type *cm_network_type_default(void);

/* A config of `type` for D-dimensional rows with L noise levels and the type's defaults. */
cm_network_config cm_network_config_default(const cm_network_type *type, size_t dim,
                                            size_t noise_levels);
/* Set the type's setting `key` (a key of its field table) to a number, range-checked
 * (CM_ERR_INVALID when the type has no such setting or the value is out of range). */
cm_status cm_network_config_set(cm_network_config *config, const char *key, double value);
/* The type's settings of a config, for its own functions (and the CLI): a pointer into
 * config->options. */
void *cm_network_options(cm_network_config *config);
const void *cm_network_options_const(const cm_network_config *config);

/* ---- a network: a config laid out */

cm_status cm_network_create(cm_network **out, const cm_network_config *config);
void cm_network_free(cm_network *network);
const cm_network_config *cm_network_config_of(const cm_network *network);
size_t cm_network_param_count(const cm_network *network);
size_t cm_network_tensor_count(const cm_network *network);
const cm_tensor_layout *cm_network_tensor(const cm_network *network, size_t index);
/* The tensor called `name`, or NULL. */
const cm_tensor_layout *cm_network_tensor_find(const cm_network *network, const char *name);
/* The type's state (for the type's own functions). */
void *cm_network_state(const cm_network *network);
/* For a type's create: append a tensor of the given shape after the previous ones
 * (CM_ERR_INVALID when the name is too long or the count overflows, CM_ERR_NOMEM). */
cm_status cm_network_add_tensor(cm_network *network, const char *name, size_t ndim,
                                const size_t *shape);

void cm_network_init(const cm_network *network, float *params, cm_rng *rng);
double cm_network_forward_flops(const cm_network *network, size_t rows);

/* ---- workspaces and the per-block passes (the contract above) */

cm_status cm_network_workspace_alloc(cm_network_workspace **out, const cm_network *network,
                                     size_t rows);
cm_status cm_network_workspace_alloc_f64(cm_network_workspace **out, const cm_network *network,
                                         size_t rows);
void cm_network_workspace_free(cm_network_workspace *workspace);
size_t cm_network_workspace_rows(const cm_network_workspace *workspace);

void cm_network_forward(const cm_network *network, float *out, const float *params,
                        cm_network_workspace *workspace, const float *x_in, const float *c_noise,
                        size_t rows);
void cm_network_backward(const cm_network *network, float *dparams, float *dx_in,
                         const float *params, cm_network_workspace *workspace, const float *dout,
                         size_t rows);
void cm_network_forward_f64(const cm_network *network, double *out, const double *params,
                            cm_network_workspace *workspace, const double *x_in,
                            const double *c_noise, size_t rows);
void cm_network_backward_f64(const cm_network *network, double *dparams, double *dx_in,
                             const double *params, cm_network_workspace *workspace,
                             const double *dout, size_t rows);

/* ---- export to C: what a type's export_c writes, and the writer it writes through
 *
 * The exported forward is one C99 function, in the text written with cm_export_printf:
 *     static void @_network_forward(float *out, const float *x_in, const float *c_noise,
 *                                   size_t rows, float *work, float *decode);
 * out[rows, D] = F(x_in[rows, D], c_noise[L]) for 1 <= rows <= the block declared with
 * cm_export_set_forward: ONE set of L noise levels for every row of a call (a sampler evaluates
 * a stage at one level, so level-only work such as the noise embedding is done once per call).
 * `work` holds the floats declared there; `decode` the floats of the largest matrix. Weights are
 * added with cm_export_matrix (matrices, stored in the export's dtype) and cm_export_vector
 * (biases and other vectors, always float32) in the layout the forward reads; the forward gets
 * them back with
 *     const float *@_matrix(int index, float *decode);  (valid until the next @_matrix call)
 *     const float *@_vector(int index);
 * '@' in written text stands for the symbol prefix. The writer also provides the kernels every
 * forward may call (cm_export_write_kernels, which the model part calls before export_c):
 *     @_gemm(out, ldo, in, ldi, rows, C, w, ldw, bias, OC): out[r, o] = bias[o] + sum_c
 *         in[r ldi + c] w[c ldw + o], o < OC, w [C, ldw] with ldw >= OC rounded up to 8 and
 *         bias[ldw] (the columns from OC on zero);
 *     @_tile(...): the register tile of @_TILE_ROWS inputs x 8 output channels @_gemm is made
 *         of, over `taps` shifted inputs (a convolution: see its comment in the written text);
 *     @_silu(x, n) in place; @_fourier(out, c_noise, E, max_frequency) (layers.h's features). */

/* An empty writer for symbols prefixed `prefix` (a C identifier, < 64 characters). */
cm_status cm_export_writer_create(cm_export_writer **out, const char *prefix);
void cm_export_writer_free(cm_export_writer *writer);
/* Append the kernels listed above. */
void cm_export_write_kernels(cm_export_writer *writer);
/* Append printf-formatted text with every '@' replaced by the prefix and every '$' by the
 * prefix in upper case (the header's macros). A failure (no memory) is kept and returned by
 * cm_export_writer_status. */
void cm_export_printf(cm_export_writer *writer, const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* The forward's block (rows per call, >= 1) and the floats of `work` a call needs. */
void cm_export_set_forward(cm_export_writer *writer, size_t block_rows, size_t work_floats);
/* Add values[rows, channels] (row-major; its columns are the output channels: int8 scales are
 * per column) as matrix *out_index; `name` is a comment (the tensor it came from). Copied. */
cm_status cm_export_matrix(cm_export_writer *writer, size_t *out_index, const char *name,
                           const float *values, size_t rows, size_t channels);
/* Add values[count] as vector *out_index. Copied. */
cm_status cm_export_vector(cm_export_writer *writer, size_t *out_index, const char *name,
                           const float *values, size_t count);
/* Round n up to a multiple of the tile (8): the width of exported matrices and biases. */
size_t cm_export_padded(size_t n);

/* What the model part reads back (export.h). */
typedef struct {
    const char *name;
    const float *values; /* [rows, channels]; a vector: rows = 1 */
    size_t rows, channels;
} cm_export_tensor;
cm_status cm_export_writer_status(const cm_export_writer *writer);
/* The text written so far (the kernels, then the network's), NUL-terminated. */
const char *cm_export_writer_text(const cm_export_writer *writer);
size_t cm_export_writer_block_rows(const cm_export_writer *writer);
size_t cm_export_writer_work_floats(const cm_export_writer *writer);
size_t cm_export_writer_matrix_count(const cm_export_writer *writer);
size_t cm_export_writer_vector_count(const cm_export_writer *writer);
cm_export_tensor cm_export_writer_matrix(const cm_export_writer *writer, size_t index);
cm_export_tensor cm_export_writer_vector(const cm_export_writer *writer, size_t index);

#endif
