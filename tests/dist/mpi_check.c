/* mpi_check.c: the MPI communicator (comm_mpi.h) against the single-process tree of comm.h, run
 * under mpirun with any process count by tests/cli_mpi.sh (built by `make MPI=1 mpi`):
 * - reduce_blocks: for every block count from R to 13 and element counts 1 .. 65537, each process
 *   fills only its own blocks (the others are NULL), and every process must end with the bits of
 *   cm_comm_tree_sum over all blocks, on values whose sum shows the order of the additions; each
 *   process sends at most ceil(log2 blocks) tree messages per call, rank 0 none;
 * - share_rows: every process ends with every row's values (widths 1 and 3, uneven blocks, fewer
 *   blocks than processes);
 * - any: the logical or of the processes' flags, for each process alone raising it;
 * - a block count below the process count is refused on every process (no communication);
 * - an MPI failure (a null communicator) comes back as CM_ERR_IO with MPI's message.
 * Prints "mpi_check (R processes): N passed, N failed" from rank 0; exits 1 on any failure.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/comm.h"
#include "cm/comm_mpi.h"
#include "cm/parallel.h"
#include "cm/rng.h"

#define MAX_BLOCKS 13

static int failures, checks;

/* One line per failed check, written at once (the processes share stderr). */
#define CHECK(condition, ...)                                                    \
    do {                                                                         \
        checks++;                                                                \
        if (!(condition)) {                                                      \
            char line_[512];                                                     \
            failures++;                                                          \
            snprintf(line_, sizeof line_, __VA_ARGS__);                          \
            fprintf(stderr, "mpi_check rank %zu: %s\n", comm->rank, line_);      \
        }                                                                        \
    } while (0)

static void fill_block(float *out, size_t count, size_t b) {
    cm_rng root, rng;
    cm_rng_init(&root, 7);
    cm_rng_fork(&rng, &root, b);
    for (size_t i = 0; i < count; i++)
        out[i] = (float)(cm_rng_normal(&rng) * ldexp(1.0, (int)cm_rng_below(&rng, 20) - 10));
}

static void check_reduce(const cm_comm *comm, size_t blocks, size_t count) {
    float *local[MAX_BLOCKS] = {0}, *all[MAX_BLOCKS];
    float *storage = malloc(2 * blocks * count * sizeof(float));
    size_t first, end, levels = 0;
    cm_comm_block_range(&first, &end, comm, blocks);
    for (size_t b = 0; b < blocks; b++) {
        all[b] = storage + b * count;
        fill_block(all[b], count, b);
        if (b >= first && b < end) {
            local[b] = storage + (blocks + b) * count;
            memcpy(local[b], all[b], count * sizeof(float));
        }
    }
    while (((size_t)1 << levels) < blocks) levels++;
    cm_comm_tree_sum(all, 0, blocks, count);
    cm_comm_mpi_stats before, after;
    cm_comm_mpi_stats_get(&before, comm);
    cm_status status = comm->reduce_blocks(comm, local, blocks, count, local[first]);
    cm_comm_mpi_stats_get(&after, comm);
    CHECK(status == CM_OK, "reduce_blocks (blocks %zu, count %zu): %s", blocks, count,
          cm_error_detail());
    CHECK(memcmp(local[first], all[0], count * sizeof(float)) == 0,
          "reduce_blocks (blocks %zu, count %zu): not the single-process tree's bits", blocks,
          count);
    size_t sent = after.tree_messages_sent - before.tree_messages_sent;
    CHECK(sent <= levels && (comm->rank != 0 || sent == 0),
          "reduce_blocks (blocks %zu): %zu tree messages sent (at most %zu levels)", blocks, sent,
          levels);
    free(storage);
}

/* A left-to-right sum differs from the tree's on these values (so the check above can fail). */
static void check_values_show_the_order(const cm_comm *comm) {
    size_t count = 1000, differ = 0;
    float *all[MAX_BLOCKS], *storage = malloc(MAX_BLOCKS * count * sizeof(float));
    float *sequential = calloc(count, sizeof(float));
    for (size_t b = 0; b < MAX_BLOCKS; b++) {
        all[b] = storage + b * count;
        fill_block(all[b], count, b);
        for (size_t i = 0; i < count; i++) sequential[i] += all[b][i];
    }
    cm_comm_tree_sum(all, 0, MAX_BLOCKS, count);
    for (size_t i = 0; i < count; i++) differ += sequential[i] != all[0][i];
    CHECK(differ > count / 10, "only %zu of %zu sums depend on the order", differ, count);
    free(storage);
    free(sequential);
}

static void check_share(const cm_comm *comm, size_t blocks, size_t rows, size_t width) {
    size_t row_first[MAX_BLOCKS + 1], first, end;
    for (size_t b = 0; b < blocks; b++) cm_parallel_range(&row_first[b], &row_first[b + 1], rows, b, blocks);
    cm_comm_block_range(&first, &end, comm, blocks);
    double *values = malloc(rows * width * sizeof(double));
    for (size_t k = 0; k < rows * width; k++)
        values[k] = k >= row_first[first] * width && k < row_first[end] * width ? 0.5 + (double)k : NAN;
    cm_status status = comm->share_rows(comm, values, row_first, blocks, width);
    size_t wrong = 0;
    for (size_t k = 0; k < rows * width; k++) wrong += values[k] != 0.5 + (double)k;
    CHECK(status == CM_OK && wrong == 0, "share_rows (blocks %zu, rows %zu, width %zu): %zu "
          "values wrong (%s)", blocks, rows, width, wrong, cm_error_detail());
    free(values);
}

static void check_any(const cm_comm *comm) {
    for (size_t raiser = 0; raiser <= comm->size; raiser++) { /* raiser == size: nobody */
        int flag = comm->rank == raiser;
        cm_status status = comm->any(comm, &flag);
        CHECK(status == CM_OK && flag == (raiser < comm->size), "any (raised by %zu): %d", raiser,
              flag);
    }
}

int main(int argc, char **argv) {
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    cm_comm *comm = NULL;
    if (cm_comm_mpi_create(&comm, MPI_COMM_WORLD) != CM_OK) {
        fprintf(stderr, "mpi_check: %s\n", cm_error_detail());
        MPI_Abort(MPI_COMM_WORLD, 1);
    }
    if (argc > 1) cm_parallel_set_threads((size_t)atoi(argv[1]));
    const size_t counts[] = {1, 5, 1000, 65537};
    check_values_show_the_order(comm);
    for (size_t blocks = comm->size; blocks <= MAX_BLOCKS; blocks++)
        for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++)
            check_reduce(comm, blocks, counts[c]);
    for (size_t blocks = 1; blocks <= MAX_BLOCKS; blocks += blocks < comm->size ? 1 : 3) {
        check_share(comm, blocks, 3 * blocks + 2, 1);
        check_share(comm, blocks, 5 * blocks + 1, 3);
    }
    check_any(comm);
    if (comm->size > 1) {
        float gradient[4] = {0}, *gradients[1] = {gradient};
        cm_status status = comm->reduce_blocks(comm, gradients, comm->size - 1, 4, gradient);
        CHECK(status == CM_ERR_INVALID, "%zu blocks for %zu processes: status %d", comm->size - 1,
              comm->size, (int)status);
    }
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    cm_comm *invalid = NULL;
    cm_status status = cm_comm_mpi_create(&invalid, MPI_COMM_NULL);
    CHECK(status == CM_ERR_IO && invalid == NULL && strstr(cm_error_detail(), "MPI: duplicating"),
          "a null communicator: status %d, detail \"%s\"", (int)status, cm_error_detail());
    int totals[2] = {checks, failures};
    MPI_Allreduce(MPI_IN_PLACE, totals, 2, MPI_INT, MPI_SUM, MPI_COMM_WORLD);
    if (comm->rank == 0)
        printf("mpi_check (%zu processes): %d passed, %d failed\n", comm->size,
               totals[0] - totals[1], totals[1]);
    cm_comm_mpi_free(comm);
    MPI_Finalize();
    return totals[1] ? 1 : 0;
}
