/* bench/mpi.c: what data-parallel training over MPI costs (docs/distributed.md; not a test).
 *   train:  steps of the compute-heavy workload (ict on gauss:d=784, MLP width 512 depth 3,
 *           batch 512 in 4 row blocks, 1 thread per process) over the MPI communicator, or over
 *           the one-process communicator with `single` (MPI initialised but unused): the median
 *           step time (wall and the process's CPU time), the communicator's time per step
 *           (reduce = local subtrees + tree levels + broadcast; share) from cm_comm_mpi_stats,
 *           the time of the update every process repeats (norm, Adam, EMA), and the state hash
 *           (the same for any process count).
 *           train-unet, single-unet: the same with the U-Net on fashion-mnist, batch 128.
 *   reduce: reduce_blocks alone on 4 blocks (2 per process at R = 2) for counts from 1 float
 *           (latency) to the MLP's P and the U-Net's 681,665 parameters: median time after a
 *           barrier (the slowest process's), its tree and broadcast parts, and the bandwidth as
 *           the bytes a process moves (one node sent or received, one broadcast) per second.
 * Usage: mpirun -np R build-mpi/bench_mpi train|single|train-unet|single-unet|reduce [RUNS]
 *        (make MPI=1 mpi; 1 thread per process, OpenBLAS's included)
 * Timings on a machine shared with other work are noisy: every report prints the load average.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cm/comm_mpi.h"
#include "cm/data.h"
#include "cm/optim.h"
#include "cm/parallel.h"
#include "cm/train.h"

/* OpenBLAS's thread count changes the bits of its larger GEMMs and adds threads: one, as the
 * pool's (cm's CLI does the same with --threads). */
extern void openblas_set_num_threads(int threads);

#define UNET_PARAMS 681665 /* the U-Net of docs/unet.md */
#define WARMUP_STEPS 2

/* The MLP workload (gauss:d=784, width 512, depth 3, batch 512), or the U-Net's (fashion-mnist,
 * the U-Net's defaults, batch 128); 4 row blocks, ict. */
static cm_train_config workload(const cm_data *data, int unet) {
    cm_train_config c;
    if (unet) {
        c = cm_train_config_default_network(CM_METHOD_ICT, cm_network_type_find("unet"),
                                            cm_data_dim(data));
        cm_data_image_shape(data, &c.network.image_channels, &c.network.image_height,
                            &c.network.image_width);
        c.network.type->defaults(&c.network);
        c.batch = 128;
    } else {
        c = cm_train_config_default(CM_METHOD_ICT, cm_data_dim(data));
        cm_network_config_set(&c.network, "width", 512);
        cm_network_config_set(&c.network, "depth", 3);
        c.batch = 512;
    }
    c.blocks = 4;
    c.steps = 1000;
    c.seed = 1;
    return c;
}

static void fail(const char *what) {
    fprintf(stderr, "bench_mpi: %s: %s\n", what, cm_error_detail());
    MPI_Abort(MPI_COMM_WORLD, 1);
}

/* CPU time of this process: on a shared machine, what a step costs when it has its core (the
 * wall time also counts other processes' turns; a wait in MPI polls, so it counts here too). */
static double process_seconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

static uint64_t weights_hash(cm_trainer *trainer) {
    cm_trainer_state s;
    cm_trainer_get_state(&s, trainer);
    uint64_t h = 0xcbf29ce484222325ULL;
    const unsigned char *p = (const unsigned char *)s.params;
    for (size_t i = 0; i < s.param_count * sizeof(float); i++) h = (h ^ p[i]) * 0x100000001b3ULL;
    return h;
}

/* The part of a step every process repeats on all P weights after the reduction: the gradient
 * norm, Adam and the evaluation EMA (the serial part of the scaling model). */
static void bench_update(size_t P, int runs) {
    cm_adam adam;
    cm_adam_config config = cm_adam_config_default();
    float *params = calloc(P, sizeof(float)), *grad = malloc(P * sizeof(float)),
          *ema = calloc(P, sizeof(float));
    if (!params || !grad || !ema || cm_adam_init(&adam, &config, P) != CM_OK) fail("update");
    double seconds[BENCH_MAX_RUNS];
    for (int k = 0; k < runs; k++) {
        for (size_t i = 0; i < P; i++) grad[i] = 1e-3f * (float)(i % 89) - 0.04f;
        double start = bench_seconds();
        cm_adam_step(&adam, params, grad, cm_gradient_norm(grad, P));
        cm_ema_update(ema, params, P, 0.999);
        seconds[k] = bench_seconds() - start;
    }
    bench_stats t = bench_summary(seconds, runs);
    printf("update (gradient norm, Adam, EMA) of P = %zu on every process: median %.2f ms "
           "(min %.2f)\n", P, 1e3 * t.median, 1e3 * t.min);
    cm_adam_free(&adam);
    free(params);
    free(grad);
    free(ema);
}

static void bench_train(cm_comm *mpi, int single, int unet, int runs) {
    const cm_comm *comm = single ? cm_comm_single() : mpi;
    cm_data *data = NULL;
    cm_trainer *trainer = NULL;
    if (cm_data_open(&data, unet ? "fashion-mnist" : "gauss:d=784") != CM_OK) fail("data");
    cm_train_config config = workload(data, unet);
    if (cm_trainer_init_comm(&trainer, &config, data, comm) != CM_OK) fail("trainer");
    double seconds[BENCH_MAX_RUNS], cpu[BENCH_MAX_RUNS];
    for (int k = 0; k < WARMUP_STEPS; k++)
        if (cm_trainer_step(trainer, NULL) != CM_OK) fail("step");
    cm_comm_mpi_stats_reset(mpi);
    MPI_Barrier(MPI_COMM_WORLD);
    for (int k = 0; k < runs; k++) {
        double start = bench_seconds(), cpu_start = process_seconds();
        if (cm_trainer_step(trainer, NULL) != CM_OK) fail("step");
        seconds[k] = bench_seconds() - start;
        cpu[k] = process_seconds() - cpu_start;
    }
    cm_comm_mpi_stats s;
    cm_comm_mpi_stats_get(&s, comm);
    bench_stats t = bench_summary(seconds, runs), c = bench_summary(cpu, runs);
    size_t first, end, P = cm_model_param_count(cm_trainer_model(trainer));
    cm_comm_block_range(&first, &end, comm, config.blocks);
    double n = runs;
    printf("rank %zu of %zu (%s): %zu blocks, P = %zu, step median %.1f ms (min %.1f, max %.1f), "
           "CPU time median %.1f ms (min %.1f); "
           "per step: reduce %.2f ms (tree %.2f, broadcast %.2f), share %.3f ms, any %.3f ms; "
           "tree bytes sent %.0f, received %.0f; state %016llx\n",
           comm->rank, comm->size, single ? "one-process communicator" : "MPI communicator",
           end - first, P, 1e3 * t.median, 1e3 * t.min, 1e3 * t.max, 1e3 * c.median, 1e3 * c.min,
           1e3 * s.reduce_seconds / n,
           1e3 * s.tree_seconds / n, 1e3 * s.broadcast_seconds / n, 1e3 * s.share_seconds / n,
           1e3 * s.any_seconds / n, s.tree_bytes_sent / n, s.tree_bytes_received / n,
           (unsigned long long)weights_hash(trainer));
    if (comm->rank == 0) bench_update(P, runs);
    cm_trainer_free(trainer);
    cm_data_free(data);
}

/* reduce_blocks of `count` floats over 4 blocks, `runs` times: the slowest process's times. */
static void bench_reduce_count(cm_comm *comm, size_t count, int runs) {
    enum { BLOCKS = 4 };
    float *gradients[BLOCKS] = {0};
    size_t first, end;
    cm_comm_block_range(&first, &end, comm, BLOCKS);
    for (size_t b = first; b < end; b++) {
        gradients[b] = malloc(count * sizeof(float));
        for (size_t i = 0; i < count; i++) gradients[b][i] = (float)(b + 1) * 1e-3f * (float)(i % 97);
    }
    double total[BENCH_MAX_RUNS], tree[BENCH_MAX_RUNS], broadcast[BENCH_MAX_RUNS];
    for (int k = -1; k < runs; k++) { /* k = -1: warm-up (allocates the receive buffer) */
        cm_comm_mpi_stats s;
        cm_comm_mpi_stats_reset(comm);
        MPI_Barrier(MPI_COMM_WORLD);
        if (comm->reduce_blocks(comm, gradients, BLOCKS, count, gradients[first]) != CM_OK)
            fail("reduce_blocks");
        cm_comm_mpi_stats_get(&s, comm);
        double mine[3] = {s.reduce_seconds, s.tree_seconds, s.broadcast_seconds}, slowest[3];
        MPI_Allreduce(mine, slowest, 3, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        if (k >= 0) total[k] = slowest[0], tree[k] = slowest[1], broadcast[k] = slowest[2];
    }
    bench_stats t = bench_summary(total, runs), a = bench_summary(tree, runs),
                b = bench_summary(broadcast, runs);
    double moved = 2.0 * (double)count * sizeof(float); /* one node each way + the broadcast */
    if (comm->rank == 0)
        printf("reduce %8zu floats (%7.3f MB), %zu processes: %9.1f us (min %.1f, max %.1f) = "
               "tree %.1f + broadcast %.1f + local sums; %.2f GB/s (median), %.2f GB/s (min)\n",
               count, count * 4e-6, comm->size, 1e6 * t.median, 1e6 * t.min, 1e6 * t.max,
               1e6 * a.median, 1e6 * b.median, moved / t.median * 1e-9, moved / t.min * 1e-9);
    for (size_t b2 = first; b2 < end; b2++) free(gradients[b2]);
}

int main(int argc, char **argv) {
    int provided = 0;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    openblas_set_num_threads(1);
    const char *mode = argc > 1 ? argv[1] : "train";
    int runs = argc > 2 ? atoi(argv[2]) : 10;
    if (runs < 1 || runs > BENCH_MAX_RUNS) runs = 10;
    cm_comm *comm = NULL;
    if (cm_comm_mpi_create(&comm, MPI_COMM_WORLD) != CM_OK) fail("communicator");
    char cpu[256], load[64];
    bench_cpu_name(cpu, sizeof cpu);
    bench_load_average(load, sizeof load);
    if (comm->rank == 0) {
        bench_print_command(argc, argv);
        printf("cpu: %s; load average %s; %zu processes x %zu thread(s); %d runs\n", cpu, load,
               comm->size, cm_parallel_threads(), runs);
    }
    fflush(stdout);
    if (!strncmp(mode, "train", 5) || !strncmp(mode, "single", 6)) {
        bench_train(comm, mode[0] == 's', strstr(mode, "-unet") != NULL, runs);
    } else if (!strcmp(mode, "reduce")) {
        cm_data *data = NULL;
        cm_model model;
        if (cm_data_open(&data, "gauss:d=784") != CM_OK) fail("data");
        cm_train_config config = workload(data, 0);
        if (cm_model_init(&model, &config) != CM_OK) fail("model");
        const size_t counts[] = {1, 1024, 16384, 131072, UNET_PARAMS,
                                 cm_model_param_count(&model)};
        for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++)
            bench_reduce_count(comm, counts[c], runs);
        cm_model_free(&model);
        cm_data_free(data);
    } else {
        if (comm->rank == 0)
            fprintf(stderr, "bench_mpi: mode train, single, train-unet, single-unet or reduce\n");
        MPI_Abort(MPI_COMM_WORLD, 2);
    }
    cm_comm_mpi_free(comm);
    MPI_Finalize();
    return 0;
}
