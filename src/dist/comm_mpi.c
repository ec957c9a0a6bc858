/* comm_mpi.c: the communicator of comm.h over MPI (comm_mpi.h; built with `make MPI=1`).
 *
 * reduce_blocks is the single-process tree of comm.h, cut along the processes' contiguous block
 * ranges (the schedule of tree.h): each process sums its complete subtrees with
 * cm_comm_tree_sum; then, level by level, every pair of the tree that crosses a range end is
 * summed by the owner of its left node, which receives the right node from its owner (a point to
 * point message of `count` floats) and adds it with the same addition the single process makes;
 * the root lands on rank 0, which broadcasts it. Each process sends and receives at most one node
 * per level: at most ceil(log2 blocks) messages of P floats each way, plus the broadcast (MPI's
 * own algorithm, O(P log R) at worst). MPI_Allreduce is never used on floats: it promises no
 * order of the additions. share_rows is MPI_Allgatherv over the block ranges; `any` an integer
 * logical-OR Allreduce (exact in any order). Counts above INT_MAX are refused, not split.
 */
#include "cm/comm_mpi.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/parallel.h"
#include "dist/tree.h"

typedef struct {
    MPI_Comm communicator; /* a duplicate of the caller's, with MPI_ERRORS_RETURN */
    float *scratch;        /* the node a receive brings: scratch_count floats */
    size_t scratch_count;
    int *counts, *displacements; /* [size]: share_rows' Allgatherv */
    cm_comm_mpi_stats stats;
} mpi_context;

/* A failed MPI call as a status naming the call, this rank (when known: >= 0) and MPI's
 * message. */
static cm_status mpi_failed(int code, int rank, const char *what) {
    char text[MPI_MAX_ERROR_STRING], where[32] = "MPI";
    int length = 0;
    if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) snprintf(text, sizeof text, "code %d", code);
    if (rank >= 0) snprintf(where, sizeof where, "MPI rank %d", rank);
    return cm_error_set(CM_ERR_IO, "%s: %s failed: %s", where, what, text);
}

#define MPI_TRY(call, rank, what)                                              \
    do {                                                                        \
        int mpi_try_code_ = (call);                                            \
        if (mpi_try_code_ != MPI_SUCCESS) return mpi_failed(mpi_try_code_, (int)(rank), what); \
    } while (0)

/* into += add, element-wise on the pool: the addition of the single-process tree. */
static void add_node(float *into, float *add, size_t count) {
    float *pair[2] = {into, add};
    cm_comm_tree_sum(pair, 0, 2, count);
}

/* reduce_blocks needs a block on every process (the tree's owners); share_rows does not (a
 * process without blocks gives no rows), so that it can share any per-item results. */
static cm_status check_shape(const cm_comm *comm, size_t blocks, size_t count, const char *what,
                             int every_process_owns) {
    if (every_process_owns && blocks < comm->size)
        return cm_error_set(CM_ERR_INVALID, "%s: %zu row blocks for %zu processes (every process "
                            "needs a block)", what, blocks, comm->size);
    if (count > INT_MAX)
        return cm_error_set(CM_ERR_UNSUPPORTED, "%s: %zu values in one message (MPI counts stop "
                            "at %d)", what, count, INT_MAX);
    return CM_OK;
}

static cm_status reserve_scratch(mpi_context *m, size_t count) {
    if (m->scratch_count >= count) return CM_OK;
    cm_free(m->scratch);
    m->scratch_count = 0;
    if (!(m->scratch = cm_malloc(count, sizeof(float))))
        return cm_error_set(CM_ERR_NOMEM, "MPI communicator: receive buffer of %zu floats", count);
    m->scratch_count = count;
    return CM_OK;
}

/* The pairs (b, b + stride) of one level: post this process's receive and send (at most one
 * each, tree.h), add the pairs it holds both nodes of, then add the node received. */
static cm_status play_level(const cm_comm *comm, float *const *gradients, size_t blocks,
                            size_t count, size_t stride, int tag) {
    mpi_context *m = comm->context;
    MPI_Request requests[2] = {MPI_REQUEST_NULL, MPI_REQUEST_NULL}; /* receive, send */
    size_t receive_into = SIZE_MAX;
    for (size_t b = 0; b + stride < blocks; b += 2 * stride) {
        size_t peer = 0;
        cm_comm_tree_role_kind role = cm_comm_tree_role(&peer, b, stride, blocks, comm->rank,
                                                        comm->size);
        if (role == CM_TREE_RECEIVE) {
            receive_into = b;
            MPI_TRY(MPI_Irecv(m->scratch, (int)count, MPI_FLOAT, (int)peer, tag, m->communicator,
                              &requests[0]), comm->rank, "receive of a tree node");
            m->stats.tree_bytes_received += count * sizeof(float);
        } else if (role == CM_TREE_SEND) {
            MPI_TRY(MPI_Isend(gradients[b + stride], (int)count, MPI_FLOAT, (int)peer, tag,
                              m->communicator, &requests[1]), comm->rank, "send of a tree node");
            m->stats.tree_messages_sent++;
            m->stats.tree_bytes_sent += count * sizeof(float);
        }
    }
    for (size_t b = 0; b + stride < blocks; b += 2 * stride) {
        size_t peer = 0;
        if (cm_comm_tree_role(&peer, b, stride, blocks, comm->rank, comm->size) == CM_TREE_ADD)
            add_node(gradients[b], gradients[b + stride], count);
    }
    MPI_TRY(MPI_Wait(&requests[0], MPI_STATUS_IGNORE), comm->rank, "receive of a tree node");
    if (receive_into != SIZE_MAX) add_node(gradients[receive_into], m->scratch, count);
    MPI_TRY(MPI_Wait(&requests[1], MPI_STATUS_IGNORE), comm->rank, "send of a tree node");
    return CM_OK;
}

static cm_status mpi_reduce(const cm_comm *comm, float *const *gradients, size_t blocks,
                            size_t count, float *sum) {
    mpi_context *m = comm->context;
    double start = MPI_Wtime();
    CM_TRY(check_shape(comm, blocks, count, "reduce_blocks", 1));
    CM_TRY(reserve_scratch(m, count));
    size_t first, end;
    cm_comm_block_range(&first, &end, comm, blocks);
    cm_comm_tree_sum_subtrees(gradients, first, end, blocks, count);
    double tree_start = MPI_Wtime();
    int level = 0;
    for (size_t stride = 1; stride < blocks; stride *= 2, level++)
        CM_TRY(play_level(comm, gradients, blocks, count, stride, level));
    double broadcast_start = MPI_Wtime();
    if (comm->rank == 0 && sum != gradients[0]) memcpy(sum, gradients[0], count * sizeof(float));
    MPI_TRY(MPI_Bcast(sum, (int)count, MPI_FLOAT, 0, m->communicator), comm->rank,
            "broadcast of the gradient sum");
    double done = MPI_Wtime();
    m->stats.reductions++;
    m->stats.reduce_seconds += done - start;
    m->stats.tree_seconds += broadcast_start - tree_start;
    m->stats.broadcast_seconds += done - broadcast_start;
    return CM_OK;
}

static cm_status mpi_share(const cm_comm *comm, double *values, const size_t *row_first,
                           size_t blocks, size_t width) {
    mpi_context *m = comm->context;
    double start = MPI_Wtime();
    CM_TRY(check_shape(comm, blocks, row_first[blocks] * width, "share_rows", 0));
    for (size_t p = 0; p < comm->size; p++) {
        size_t first, end;
        cm_parallel_range(&first, &end, blocks, p, comm->size);
        m->counts[p] = (int)((row_first[end] - row_first[first]) * width);
        m->displacements[p] = (int)(row_first[first] * width);
    }
    MPI_TRY(MPI_Allgatherv(MPI_IN_PLACE, 0, MPI_DATATYPE_NULL, values, m->counts,
                           m->displacements, MPI_DOUBLE, m->communicator),
            comm->rank, "all-gather of the rows' values");
    m->stats.shares++;
    m->stats.share_seconds += MPI_Wtime() - start;
    return CM_OK;
}

static cm_status mpi_any(const cm_comm *comm, int *flag) {
    mpi_context *m = comm->context;
    double start = MPI_Wtime();
    int value = *flag != 0;
    MPI_TRY(MPI_Allreduce(MPI_IN_PLACE, &value, 1, MPI_INT, MPI_LOR, m->communicator), comm->rank,
            "agreement on a failure (logical or)");
    *flag = value;
    m->stats.agreements++;
    m->stats.any_seconds += MPI_Wtime() - start;
    return CM_OK;
}

static cm_status mpi_context_init(mpi_context *m, cm_comm *comm, MPI_Comm communicator) {
    int rank = -1, size = 0;
    MPI_TRY(MPI_Comm_dup(communicator, &m->communicator), rank, "duplicating the communicator");
    MPI_TRY(MPI_Comm_set_errhandler(m->communicator, MPI_ERRORS_RETURN), rank,
            "setting MPI_ERRORS_RETURN");
    MPI_TRY(MPI_Comm_rank(m->communicator, &rank), rank, "MPI_Comm_rank");
    MPI_TRY(MPI_Comm_size(m->communicator, &size), rank, "MPI_Comm_size");
    comm->rank = (size_t)rank;
    comm->size = (size_t)size;
    m->counts = cm_malloc((size_t)size, sizeof(int));
    m->displacements = cm_malloc((size_t)size, sizeof(int));
    if (!m->counts || !m->displacements)
        return cm_error_set(CM_ERR_NOMEM, "MPI communicator of %d processes", size);
    return CM_OK;
}

cm_status cm_comm_mpi_create(cm_comm **out, MPI_Comm communicator) {
    *out = NULL;
    int initialized = 0, finalized = 0;
    MPI_Initialized(&initialized);
    MPI_Finalized(&finalized);
    if (!initialized || finalized)
        return cm_error_set(CM_ERR_INVALID, "MPI communicator: MPI is not initialised "
                            "(MPI_Init_thread before cm_comm_mpi_create)");
    cm_comm *comm = cm_calloc(1, sizeof *comm);
    mpi_context *m = cm_calloc(1, sizeof *m);
    if (!comm || !m) {
        cm_free(comm);
        cm_free(m);
        return cm_error_set(CM_ERR_NOMEM, "MPI communicator");
    }
    m->communicator = MPI_COMM_NULL;
    *comm = (cm_comm){.context = m, .reduce_blocks = mpi_reduce, .share_rows = mpi_share,
                      .any = mpi_any};
    cm_status status = mpi_context_init(m, comm, communicator);
    if (status != CM_OK) {
        cm_comm_mpi_free(comm);
        return status;
    }
    *out = comm;
    return CM_OK;
}

void cm_comm_mpi_free(cm_comm *comm) {
    if (!comm) return;
    mpi_context *m = comm->context;
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (m->communicator != MPI_COMM_NULL && !finalized) MPI_Comm_free(&m->communicator);
    cm_free(m->scratch);
    cm_free(m->counts);
    cm_free(m->displacements);
    cm_free(m);
    cm_free(comm);
}

void cm_comm_mpi_stats_get(cm_comm_mpi_stats *out, const cm_comm *comm) {
    *out = (cm_comm_mpi_stats){0};
    if (comm && comm->reduce_blocks == mpi_reduce) *out = ((const mpi_context *)comm->context)->stats;
}

void cm_comm_mpi_stats_reset(cm_comm *comm) {
    if (comm && comm->reduce_blocks == mpi_reduce)
        ((mpi_context *)comm->context)->stats = (cm_comm_mpi_stats){0};
}
