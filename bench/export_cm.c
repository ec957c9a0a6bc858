/* bench/export_cm.c: the time of `cm sample --threads 1` without the program around it:
 * cm_sample of N points (one step, or the levels given) on one pool thread and one BLAS thread,
 * processor time and wall time, best of RUNS. bench/export.sh runs it beside the compiled export
 * of the same model (the same processor-time clock, so a shared machine's load shows less).
 * Usage: build/bench_export_cm MODEL [N [RUNS [LEVEL...]]]   (N 10000, RUNS 5, seed 1)
 */
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "bench.h"
#include "cm/alloc.h"
#include "cm/model.h"
#include "cm/parallel.h"
#include "cm/sampler.h"

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: bench_export_cm MODEL [N [RUNS [LEVEL...]]]\n");
        return 2;
    }
    size_t n = argc > 2 ? strtoull(argv[2], NULL, 10) : 10000, count = 0;
    int runs = argc > 3 ? atoi(argv[3]) : 5;
    double levels[CM_SAMPLER_MAX_LEVELS];
    for (int i = 4; i < argc && count < CM_SAMPLER_MAX_LEVELS; i++) levels[count++] = atof(argv[i]);
    if (n < 1 || runs < 1 || runs > BENCH_MAX_RUNS) return 2;
    openblas_set_num_threads(1);
    if (cm_parallel_set_threads(1) != CM_OK) return 1;
    cm_model model;
    if (cm_model_load(&model, argv[1]) != CM_OK) {
        fprintf(stderr, "bench_export_cm: %s\n", cm_error_detail());
        return 1;
    }
    double *out = cm_malloc(n * model.config.network.dim, sizeof(double));
    double cpu[BENCH_MAX_RUNS], wall[BENCH_MAX_RUNS];
    for (int r = 0; r < runs && out; r++) {
        clock_t start = clock();
        wall[r] = bench_seconds();
        if (cm_sample(out, &model, levels, count, n, 1) != CM_OK) {
            fprintf(stderr, "bench_export_cm: %s\n", cm_error_detail());
            return 1;
        }
        cpu[r] = (double)(clock() - start) / CLOCKS_PER_SEC;
        wall[r] = bench_seconds() - wall[r];
    }
    if (!out) return 1;
    char name[256], load[64];
    bench_cpu_name(name, sizeof name);
    bench_load_average(load, sizeof load);
    bench_stats c = bench_summary(cpu, runs), w = bench_summary(wall, runs);
    printf("%.4f s processor (median %.4f), %.4f s wall (median %.4f); cm_sample, 1 thread, "
           "OpenBLAS %s; %s, load average %s\n", c.min, c.median, w.min, w.median,
           openblas_get_corename(), name, load);
    if (getenv("BENCH_COMMAND")) bench_print_command(argc, argv);
    cm_free(out);
    cm_model_free(&model);
    return 0;
}
