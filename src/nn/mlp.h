/* mlp.h (private to src/nn; white-box tests include it): the multilayer perceptron network type
 * cm_network_mlp: Linear(D + L E -> W), SiLU, L-1 times [Linear(W -> W), SiLU], Linear(W -> D),
 * on the input row [x_in, embed(c_noise_1), ..., embed(c_noise_L)] (layers.h's Fourier features).
 * Forward and backward of one row block, written by hand (llm.c style) in mlp_template.h,
 * compiled in float and double. Tensors in file order: "mlp.<l>.weight" [OC, C] and
 * "mlp.<l>.bias" [OC], l = 0..depth.
 *
 * Products: in float, oneDNN matmul primitives (matmul.h) made with the workspace for exactly
 * its row capacity (per layer: forward, input gradient, weight gradient; one shared
 * scratchpad), so a call allocates no buffer; a block of fewer rows runs padded to the capacity
 * with zero rows (one extra row for the smaller of a batch's two block sizes; a short call into a
 * large workspace costs the full capacity). For one capacity a row's output and input gradient
 * therefore do not depend on the other rows of its block. In double, cblas_dgemm on the rows
 * given (the gradient-check path).
 */
#ifndef CM_NN_MLP_H
#define CM_NN_MLP_H

#include <stddef.h>

#include "cm/network.h"

#define CM_MLP_MAX_DEPTH 16

/* The MLP's own settings (stored in cm_network_config.options; its field table is
 * cm_network_mlp.options). */
typedef struct {
    size_t width;              /* W */
    size_t depth;              /* hidden layers, 1..CM_MLP_MAX_DEPTH */
    size_t embed;              /* E, even: Fourier features per noise level */
    double embed_max_frequency;
} cm_mlp_options;

/* Where each layer's weight and bias live in the flat parameter vector. */
typedef struct {
    size_t dim, width, depth, embed, noise_levels;
    double embed_max_frequency;
    size_t layer_count;                         /* depth + 1 */
    size_t in[CM_MLP_MAX_DEPTH + 1];            /* C of layer l */
    size_t out[CM_MLP_MAX_DEPTH + 1];           /* OC of layer l */
    size_t weight_offset[CM_MLP_MAX_DEPTH + 1]; /* into the parameter vector */
    size_t bias_offset[CM_MLP_MAX_DEPTH + 1];
    size_t param_count;
} cm_mlp_layout;

extern const cm_network_type cm_network_mlp;

/* Validate a network config of type mlp and lay it out. */
cm_status cm_mlp_layout_init(cm_mlp_layout *out, const cm_network_config *config);

/* One row block's activations and (float) products (opaque), for blocks of up to `rows` rows.
 * CM_ERR_NOMEM, or CM_ERR_UNSUPPORTED when oneDNN refuses a product. */
typedef struct cm_mlp_workspace cm_mlp_workspace;
typedef struct cm_mlp_workspace_f64 cm_mlp_workspace_f64;
cm_status cm_mlp_workspace_alloc(cm_mlp_workspace **out, const cm_mlp_layout *layout, size_t rows);
void cm_mlp_workspace_free(cm_mlp_workspace *workspace);
cm_status cm_mlp_workspace_alloc_f64(cm_mlp_workspace_f64 **out, const cm_mlp_layout *layout,
                                     size_t rows);
void cm_mlp_workspace_free_f64(cm_mlp_workspace_f64 *workspace);

/* out[rows, D] = F(x_in, c_noise) of one block (c_noise [rows, L]); activations kept. */
void cm_mlp_forward(float *out, const float *params, const cm_mlp_layout *layout,
                    cm_mlp_workspace *workspace, const float *x_in, const float *c_noise, int rows);
/* dparams (overwritten) = d(sum out * dout)/dparams of the block's last forward; dx_in
 * (overwritten, when not NULL) = the gradient with respect to x_in[rows, D]. */
void cm_mlp_backward(float *dparams, float *dx_in, const float *params, const cm_mlp_layout *layout,
                     cm_mlp_workspace *workspace, const float *dout, int rows);
void cm_mlp_forward_f64(double *out, const double *params, const cm_mlp_layout *layout,
                        cm_mlp_workspace_f64 *workspace, const double *x_in,
                        const double *c_noise, int rows);
void cm_mlp_backward_f64(double *dparams, double *dx_in, const double *params,
                         const cm_mlp_layout *layout, cm_mlp_workspace_f64 *workspace,
                         const double *dout, int rows);

#endif
