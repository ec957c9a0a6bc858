/* nn_blocks.h: the MLP of nn.h one row block at a time, for callers inside the library that run
 * a whole training step as one pool job (train.c: teacher forward, student forward, loss and
 * backward of block s in task s; docs/performance.md). Private to src/ (not installed).
 *
 * A batch of B rows is CM_MLP_SHARDS fixed row blocks (cm_parallel_range(B, s, CM_MLP_SHARDS)).
 * cm_mlp_forward_block and cm_mlp_backward_block compute exactly what cm_mlp_forward and
 * cm_mlp_backward compute for that block (they are what those run per task), so a step built
 * from them gives the same bits. Different blocks touch disjoint rows and workspace buffers and
 * may run at the same time; the same block's forward must precede its backward, and another
 * forward of block s (the teacher's) overwrites its activations. After every block's backward,
 * cm_mlp_reduce_blocks adds blocks 1.. into dparams (block 0 added itself), in block order.
 * None of these allocates; only cm_mlp_reduce_blocks starts a pool job (do not call it inside
 * one). Pointers are whole-batch arrays, borrowed. */
#ifndef CM_NN_BLOCKS_H
#define CM_NN_BLOCKS_H

#include "cm/nn.h"

void cm_mlp_forward_block(float *out, const float *params, const cm_mlp_layout *layout,
                          cm_mlp_workspace *workspace, const float *x_in, const float *c_noise,
                          int B, size_t block);
void cm_mlp_backward_block(float *dparams, float *dx_in, const float *params,
                           const cm_mlp_layout *layout, cm_mlp_workspace *workspace,
                           const float *dout, int B, size_t block);
void cm_mlp_reduce_blocks(float *dparams, const cm_mlp_layout *layout,
                          cm_mlp_workspace *workspace, int B);

void cm_mlp_forward_block_f64(double *out, const double *params, const cm_mlp_layout *layout,
                              cm_mlp_workspace_f64 *workspace, const double *x_in,
                              const double *c_noise, int B, size_t block);
void cm_mlp_backward_block_f64(double *dparams, double *dx_in, const double *params,
                               const cm_mlp_layout *layout, cm_mlp_workspace_f64 *workspace,
                               const double *dout, int B, size_t block);
void cm_mlp_reduce_blocks_f64(double *dparams, const cm_mlp_layout *layout,
                              cm_mlp_workspace_f64 *workspace, int B);

#endif
