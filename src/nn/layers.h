/* layers.h (private to src/nn): the layer kernels the network types are built from, llm.c
 * style: outputs first, then inputs, then weights, then dimensions; backward functions ADD into
 * gradients unless they say they overwrite. Every kernel exists in float and in double (suffix
 * _f64: the same source, layers_template.h, compiled twice) so that gradient checks by finite
 * differences run in double on exactly the code that trains. Weights are stored [OC, C]
 * row-major (out = inp @ weight^T + bias, as PyTorch).
 *
 * Dimension letters (used the same way in every header): B batch (or a block's rows), D data
 * dimension, W width, E embedding features, C input channels of a layer, OC output channels,
 * L depth, N samples, T chain length.
 */
#ifndef CM_NN_LAYERS_H
#define CM_NN_LAYERS_H

#include <stddef.h>

#define CM_EMBED_MAX_FEATURES 4096

/* out[B,OC] = inp[B,C] @ weight[OC,C]^T + bias[OC] (bias may be NULL) */
void cm_linear_forward(float *out, const float *inp, const float *weight, const float *bias, int B,
                       int C, int OC);
/* dinp[B,C] += dout @ weight; dweight[OC,C] += dout^T @ inp; dbias[OC] += sum_b dout.
 * dinp and dbias may be NULL. */
void cm_linear_backward(float *dinp, float *dweight, float *dbias, const float *dout,
                        const float *inp, const float *weight, int B, int C, int OC);
/* out[N] = inp / (1 + exp(-inp)) */
void cm_silu_forward(float *out, const float *inp, int N);
/* dinp[N] += dout * silu'(inp) */
void cm_silu_backward(float *dinp, const float *dout, const float *inp, int N);
/* Fused: pre[B,W] += bias (in place), act[B,W] = silu(pre). */
void cm_bias_silu_forward(float *act, float *pre, const float *bias, int B, int W);
/* Fused: d_pre[B,W] = d_act * silu'(pre) (overwritten), dbias[W] (+)= its column sums (added
 * when accumulate, else overwritten), summed over rows in order. */
void cm_silu_backward_bias(float *d_pre, float *dbias, const float *d_act, const float *pre, int B,
                           int W, int accumulate);
/* out[B,OC] += bias */
void cm_add_bias(float *out, const float *bias, int B, int OC);
/* dbias[OC] (+)= column sums of dout[B,OC] over rows in order (added when accumulate). */
void cm_bias_gradient(float *dbias, const float *dout, int B, int OC, int accumulate);
/* Fourier features of the noise level, row b written at out + b * stride: [sin(f_k c_b)]_k then
 * [cos(f_k c_b)]_k, k < E/2, frequencies f_k = max_frequency^(k / (E/2 - 1)) geometric from 1
 * (E even, <= CM_EMBED_MAX_FEATURES); row b embeds c_noise[b * c_stride]. Phases in double. */
void cm_embed_rows(float *out, size_t stride, const float *c_noise, size_t c_stride, int B, int E,
                   double max_frequency);
/* cm_embed_rows into a dense out[B,E] from c_noise[B]. Fixed features: no backward. */
void cm_fourier_embedding(float *out, const float *c_noise, int B, int E, double max_frequency);

void cm_linear_forward_f64(double *out, const double *inp, const double *weight,
                           const double *bias, int B, int C, int OC);
void cm_linear_backward_f64(double *dinp, double *dweight, double *dbias, const double *dout,
                            const double *inp, const double *weight, int B, int C, int OC);
void cm_silu_forward_f64(double *out, const double *inp, int N);
void cm_silu_backward_f64(double *dinp, const double *dout, const double *inp, int N);
void cm_bias_silu_forward_f64(double *act, double *pre, const double *bias, int B, int W);
void cm_silu_backward_bias_f64(double *d_pre, double *dbias, const double *d_act,
                               const double *pre, int B, int W, int accumulate);
void cm_add_bias_f64(double *out, const double *bias, int B, int OC);
void cm_bias_gradient_f64(double *dbias, const double *dout, int B, int OC, int accumulate);
void cm_embed_rows_f64(double *out, size_t stride, const double *c_noise, size_t c_stride, int B,
                       int E, double max_frequency);
void cm_fourier_embedding_f64(double *out, const double *c_noise, int B, int E,
                              double max_frequency);

#endif
