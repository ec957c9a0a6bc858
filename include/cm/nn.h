/* nn.h: the network of a consistency model: an MLP on [scaled x, noise-level embedding] with
 * SiLU, forward and backward written by hand (llm.c style), products through CBLAS.
 *
 * Dimension letters (used the same way in every header): B batch, D data dimension, W width,
 * E embedding features, C input channels of a layer, OC output channels, L depth (hidden
 * layers), N samples, T chain length.
 *
 * Every kernel exists in float (the training path) and in double (suffix _f64: the same source,
 * src/nn_template.h, compiled twice) so that gradient checks by finite differences run in
 * double on exactly the code that trains. Backward functions ADD into gradients; the caller
 * zeroes them. Weights are stored [OC, C] row-major (out = inp @ weight^T + bias, as PyTorch).
 */
#ifndef CM_NN_H
#define CM_NN_H

#include <stddef.h>
#include <stdint.h>

#include "cm/rng.h"
#include "cm/status.h"

#define CM_MLP_MAX_DEPTH 16
/* The MLP runs a batch as this many fixed row blocks (in parallel when cm_parallel has threads);
 * the split depends only on B, so results do not depend on the thread count. */
#define CM_MLP_SHARDS 2

/* ---- layer kernels (float and double) */

/* out[B,OC] = inp[B,C] @ weight[OC,C]^T + bias[OC] */
void cm_linear_forward(float *out, const float *inp, const float *weight, const float *bias, int B,
                       int C, int OC);
/* dinp[B,C] += dout @ weight; dweight[OC,C] += dout^T @ inp; dbias[OC] += sum_b dout.
 * dinp may be NULL (first layer: the input needs no gradient). */
void cm_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, int B, int C, int OC);
/* out[N] = inp / (1 + exp(-inp)) */
void cm_silu_forward(float *out, const float *inp, int N);
/* dinp[N] += dout * silu'(inp) */
void cm_silu_backward(float *dinp, const float *dout, const float *inp, int N);
/* out[B,E] = [sin(f_k c_noise_b), cos(f_k c_noise_b)]_k, k < E/2, with frequencies f_k geometric
 * from 1 to max_frequency (E even). Fixed features: no parameters, no backward. */
void cm_fourier_embedding(float *out, const float *c_noise, int B, int E, double max_frequency);

void cm_linear_forward_f64(double *out, const double *inp, const double *weight,
                           const double *bias, int B, int C, int OC);
void cm_linear_backward_f64(double *dinp, double *dweight, double *dbias, const double *dout,
                            const double *inp, const double *weight, int B, int C, int OC);
void cm_silu_forward_f64(double *out, const double *inp, int N);
void cm_silu_backward_f64(double *dinp, const double *dout, const double *inp, int N);
void cm_fourier_embedding_f64(double *out, const double *c_noise, int B, int E,
                              double max_frequency);

/* ---- the MLP: Linear(D+E -> W), SiLU, L-1 times [Linear(W -> W), SiLU], Linear(W -> D).
 * A two-time network (config.two_time) embeds two noise levels per row: its first layer is
 * Linear(D+2E -> W), and every c_noise array below is [B, 2] row-major (level, target level). */

typedef struct {
    size_t dim;                /* D */
    size_t width;              /* W */
    size_t depth;              /* L >= 1 hidden layers */
    size_t embed;              /* E, even */
    double embed_max_frequency;
    int two_time;              /* 0: F(x, c_noise); 1: F(x, c_noise, c_noise_target), the input
                                  [x, embed(c_noise), embed(c_noise_target)] (two-time models) */
} cm_mlp_config;

/* Where each layer's weight and bias live in the flat parameter vector. */
typedef struct {
    cm_mlp_config config;
    size_t layer_count;                         /* L + 1 */
    size_t in[CM_MLP_MAX_DEPTH + 1];            /* C of layer l */
    size_t out[CM_MLP_MAX_DEPTH + 1];           /* OC of layer l */
    size_t weight_offset[CM_MLP_MAX_DEPTH + 1]; /* into the parameter vector */
    size_t bias_offset[CM_MLP_MAX_DEPTH + 1];
    size_t param_count;
} cm_mlp_layout;

/* Validate a config (D, W >= 1, 1 <= L <= CM_MLP_MAX_DEPTH, E even >= 2, ...) and lay it out. */
cm_status cm_mlp_layout_init(cm_mlp_layout *out, const cm_mlp_config *config);
/* PyTorch's default Linear init: weights and biases U(-1/sqrt(C), 1/sqrt(C)), from `rng`. */
void cm_mlp_init_params(float *params, const cm_mlp_layout *layout, cm_rng *rng);

/* Activations for batches up to `batch_capacity`, one flat block (opaque). */
typedef struct cm_mlp_workspace cm_mlp_workspace;
typedef struct cm_mlp_workspace_f64 cm_mlp_workspace_f64;
cm_status cm_mlp_workspace_alloc(cm_mlp_workspace **out, const cm_mlp_layout *layout,
                                 size_t batch_capacity);
void cm_mlp_workspace_free(cm_mlp_workspace *workspace);
cm_status cm_mlp_workspace_alloc_f64(cm_mlp_workspace_f64 **out, const cm_mlp_layout *layout,
                                     size_t batch_capacity);
void cm_mlp_workspace_free_f64(cm_mlp_workspace_f64 *workspace);

/* F(x_in, c_noise): out[B,D] from x_in[B,D] (already scaled by c_in) and c_noise[B] ([B, 2] for
 * a two-time network). Keeps the
 * activations in `workspace` for cm_mlp_backward. B <= batch_capacity. */
void cm_mlp_forward(float *out, const float *params, const cm_mlp_layout *layout,
                    cm_mlp_workspace *workspace, const float *x_in, const float *c_noise, int B);
/* dparams += d(sum out * dout)/dparams, for the batch of the last forward. If dx_in is not
 * NULL it receives (overwritten, not added) the gradient with respect to x_in[B,D]. */
void cm_mlp_backward(float *dparams, float *dx_in, const float *params,
                     const cm_mlp_layout *layout, cm_mlp_workspace *workspace, const float *dout,
                     int B);
void cm_mlp_forward_f64(double *out, const double *params, const cm_mlp_layout *layout,
                        cm_mlp_workspace_f64 *workspace, const double *x_in,
                        const double *c_noise, int B);
void cm_mlp_backward_f64(double *dparams, double *dx_in, const double *params,
                         const cm_mlp_layout *layout, cm_mlp_workspace_f64 *workspace,
                         const double *dout, int B);

/* FLOPs of one forward pass of B rows (2 per multiply-add of the products). */
double cm_mlp_forward_flops(const cm_mlp_layout *layout, size_t B);

#endif
