/* comm.h: the communication seam of the trainer. Between "gradient of each row block" and "one
 * optimiser step" the trainer (train.h) asks a cm_comm to sum the blocks' gradients, to share the
 * blocks' per-row values (the losses, in row order) and to agree on a failure, so that the same
 * code trains in one process or in several (MPI, built with `make MPI=1`; docs/distributed.md).
 *
 * A batch is `blocks` fixed row blocks; process p of R computes the contiguous blocks
 * cm_comm_block_range gives it. The gradient sum is a fixed pairwise tree over the blocks:
 *     for (stride = 1; stride < blocks; stride *= 2)
 *         for (b = 0; b + stride < blocks; b += 2 stride)   g[b] += g[b + stride]
 * so every sum has one order whatever R is, and the model after N steps has the same bits for
 * any number of processes (and threads) with the same block count. Each addition is element-wise
 * and split over threads by element ranges (parallel.h), which does not change any sum.
 * The single-process implementation (cm_comm_single) does the whole tree locally.
 */
#ifndef CM_COMM_H
#define CM_COMM_H

#include <stddef.h>

#include "cm/status.h"

typedef struct cm_comm cm_comm;

struct cm_comm {
    size_t rank, size; /* this process, processes */
    void *context;     /* the implementation's */
    /* On entry gradients[b] (count floats) holds row block b's gradient for each local block
     * (the entries of other blocks may be NULL); on return sum[count] holds the tree sum of all
     * blocks on every process. sum may be gradients[first] of the first local block; other
     * local buffers may be overwritten. */
    cm_status (*reduce_blocks)(const cm_comm *comm, float *const *gradients, size_t blocks,
                               size_t count, float *sum);
    /* values[row_first[b] * width .. row_first[b + 1] * width) holds block b's rows for the
     * local blocks; on return every process holds all rows. */
    cm_status (*share_rows)(const cm_comm *comm, double *values, const size_t *row_first,
                            size_t blocks, size_t width);
    /* *flag becomes 1 on every process if it is 1 on any. */
    cm_status (*any)(const cm_comm *comm, int *flag);
};

/* The one-process communicator (static, never freed). */
const cm_comm *cm_comm_single(void);
/* Blocks [*first, *end) of `blocks` computed by this process: contiguous, near-equal. */
void cm_comm_block_range(size_t *first, size_t *end, const cm_comm *comm, size_t blocks);
/* The additions of the header's tree whose two operands both lie in blocks [first, end) (block
 * indices global, so the pairs are the whole tree's), in place: with first = 0, end = blocks the
 * sum lands in gradients[0]. One pool job: element ranges on threads, every level in order
 * within a range. For implementations of reduce_blocks. */
void cm_comm_tree_sum(float *const *gradients, size_t first, size_t end, size_t count);

#endif
