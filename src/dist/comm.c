/* comm.c: the single-process communicator of comm.h and the fixed-order tree sum of row-block
 * gradients that every implementation shares. */
#include "cm/comm.h"

#include <string.h>

#include "cm/parallel.h"

#define TREE_PARTS 8 /* element ranges of one tree sum: enough for 8 threads, a fixed split */

typedef struct {
    float *const *gradients;
    size_t first, end, count;
} tree_job;

/* Element range `part` of the tree's additions, level by level. */
static void tree_part(void *context, size_t part) {
    const tree_job *job = context;
    size_t from, to;
    cm_parallel_range(&from, &to, job->count, part, TREE_PARTS);
    for (size_t stride = 1; stride < job->end; stride *= 2)
        for (size_t b = 0; b + stride < job->end; b += 2 * stride) {
            if (b < job->first) continue;
            float *restrict into = job->gradients[b];
            const float *restrict add = job->gradients[b + stride];
            for (size_t i = from; i < to; i++) into[i] += add[i];
        }
}

void cm_comm_tree_sum(float *const *gradients, size_t first, size_t end, size_t count) {
    if (end - first < 2) return;
    tree_job job = {gradients, first, end, count};
    cm_parallel_for_sized(tree_part, &job, TREE_PARTS, count * (end - first));
}

void cm_comm_block_range(size_t *first, size_t *end, const cm_comm *comm, size_t blocks) {
    cm_parallel_range(first, end, blocks, comm->rank, comm->size);
}

static cm_status single_reduce(const cm_comm *comm, float *const *gradients, size_t blocks,
                               size_t count, float *sum) {
    cm_comm_tree_sum(gradients, 0, blocks, count);
    if (sum != gradients[0]) memcpy(sum, gradients[0], count * sizeof(float));
    return CM_OK;
}

static cm_status single_share(const cm_comm *comm, double *values, const size_t *row_first,
                              size_t blocks, size_t width) {
    return CM_OK; /* every block is local */
}

static cm_status single_any(const cm_comm *comm, int *flag) { return CM_OK; }

static const cm_comm single = {.rank = 0, .size = 1, .context = NULL,
                               .reduce_blocks = single_reduce, .share_rows = single_share,
                               .any = single_any};

const cm_comm *cm_comm_single(void) { return &single; }
