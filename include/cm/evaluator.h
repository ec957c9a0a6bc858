/* evaluator.h: a trained model evaluated on any number of rows. One object owns the network
 * workspaces of a chunk's row blocks and the chunk buffers, and computes, in the model's
 * standardised units,
 *     x -> skip x + out F(in x, c_noise)
 * for the coefficients the caller names: the consistency function f(x, level) of a one-time
 * model (consistency.h), the denoiser D(x, sigma) of a dsm model (the VE coefficients at
 * sigma_min = 0), or the two-time map g(x, t, s) of a cd2 model. Samplers, diffusion
 * denoisers, multistep maps and the theory diagnostics all evaluate models through it.
 *
 * Rows go through the network in chunks of `chunk` rows; with `pad` a short last chunk is padded
 * with zero rows to the full chunk shape, so that a row's value does not depend on how many rows
 * are evaluated with it (BLAS kernels may round a row differently for a different number of
 * rows). Each chunk runs as `blocks` fixed row blocks on the pool (parallel.h): the result does
 * not depend on the thread count. Nothing is allocated after cm_evaluator_alloc. An evaluator is
 * used by one caller at a time; the model is borrowed and must outlive it.
 */
#ifndef CM_EVALUATOR_H
#define CM_EVALUATOR_H

#include <stddef.h>

#include "cm/consistency.h"
#include "cm/model.h"

#define CM_EVALUATOR_CHUNK 2048 /* rows per network call of the samplers */
#define CM_EVALUATOR_BLOCKS 2   /* row blocks of a chunk */

typedef struct {
    size_t chunk;  /* rows per network call, >= 1 */
    size_t blocks; /* row blocks of a chunk, 1..chunk; 1 runs on the calling thread alone, so
                      such an evaluator may be used inside a pool task */
    int pad;       /* 1: pad short chunks to `chunk` rows; 0: evaluate the rows given */
    int f64;       /* 1: the network's double twin on a double copy of the weights taken at
                      allocation (diagnostics that take central differences) */
} cm_evaluator_options;

/* chunk CM_EVALUATOR_CHUNK, blocks CM_EVALUATOR_BLOCKS, padded, float. */
cm_evaluator_options cm_evaluator_options_default(void);
/* The default for `model`'s network: a network whose rows are exact whatever their company
 * (network.h: exact_rows, e.g. the U-Net, whose rows are costly and whose workspace grows with
 * the chunk) gets unpadded chunks of CM_EVALUATOR_EXACT_CHUNK rows; others the default. */
#define CM_EVALUATOR_EXACT_CHUNK 64
cm_evaluator_options cm_evaluator_options_for(const cm_model *model);

typedef struct cm_evaluator cm_evaluator;

cm_status cm_evaluator_alloc(cm_evaluator **out, const cm_model *model,
                             const cm_evaluator_options *options);
void cm_evaluator_free(cm_evaluator *evaluator);
const cm_model *cm_evaluator_model(const cm_evaluator *evaluator);

/* out[n, D] = skip x + out F(in x, c_noise) with the same coefficients c for every row (float
 * evaluators only). out and x may be the same array. */
void cm_evaluator_apply(cm_evaluator *evaluator, float *out, const float *x, size_t n,
                        cm_coefficients c);
/* The same in double (either precision of evaluator: a float one rounds x to float). */
void cm_evaluator_apply_f64(cm_evaluator *evaluator, double *out, const double *x, size_t n,
                            cm_coefficients c);
/* The denoiser of a dsm model: out[n, D] = D(x_r, sigma_r) with each row's own sigma; a row with
 * sigma_r = 0 is returned unchanged (D(x, 0) = x). */
void cm_evaluator_denoise(cm_evaluator *evaluator, double *out, const double *x,
                          const double *sigma, size_t n);

#endif
