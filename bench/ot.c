/* bench/ot.c: time exact W1 (cm_ot_distance: cost matrix + exact solve + certificate +
 * re-evaluation in double; and the two solvers alone: assignment method and network simplex) between two independent samples of N(0, I_d), n = m = 1000, 2000,
 * 5000 in d = 2 and 16. Each size is validated first (the certificate of cm_ot_check, and the
 * plan's marginals), then timed: the median of RUNS runs (default 5), each on fresh samples'
 * first draw (same data every run). Peak memory is getrusage's ru_maxrss after each size (sizes
 * run in increasing order, so it is that size's peak). Not a test: it prints, it takes a minute.
 * Usage: make BUILD=build bench-ot   or   OPENBLAS_NUM_THREADS=1 build/bench_ot [RUNS [N...]]
 * (make bench also runs n = 5000 with OPENBLAS_NUM_THREADS=2: only the cost matrix can use it)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <cblas.h>

#include "bench.h"
#include "cm/alloc.h"
#include "cm/ot.h"
#include "cm/rng.h"

#define MAX_RUNS BENCH_MAX_RUNS

int main(int argc, char **argv) {
    int runs = argc > 1 ? atoi(argv[1]) : 5;
    if (runs < 1 || runs > MAX_RUNS) {
        fprintf(stderr, "usage: bench_ot [RUNS (1..%d) [N...]]\n", MAX_RUNS);
        return 2;
    }
    size_t sizes[16] = {1000, 2000, 5000}, count = 3;
    if (argc > 2) {
        count = 0;
        for (int k = 2; k < argc && count < 16; k++)
            sizes[count++] = (size_t)strtoull(argv[k], NULL, 10);
    }
    const size_t dims[2] = {2, 16};
    bench_print_command(argc, argv);
    char cpu[256], load[64];
    bench_cpu_name(cpu, sizeof cpu);
    bench_load_average(load, sizeof load);
    printf("machine: %s, load average %s; OpenBLAS kernel %s, %d BLAS thread(s) (the solvers "
           "themselves run on one thread)\n", cpu, load, openblas_get_corename(),
           openblas_get_num_threads());
    printf("exact W1 between two independent samples of N(0, I_d), n = m; median of %d runs\n",
           runs);
    printf("%6s %4s %12s %10s %10s %8s %6s %10s %10s %10s\n", "n", "d", "W1", "total s",
           "costs s", "pivots", "scans", "simplex s", "assign s", "peak MB");
    for (size_t s = 0; s < count; s++) {
        for (size_t t = 0; t < 2; t++) {
            size_t n = sizes[s], d = dims[t];
            double *x = cm_malloc(2 * n * d, sizeof(double)), *y = x + n * d;
            cm_ot_workspace *w = NULL;
            if (!x || cm_ot_workspace_alloc(&w, n, n) != CM_OK) {
                fprintf(stderr, "no memory for n = %zu: %s\n", n, cm_error_detail());
                return 1;
            }
            cm_rng rng;
            cm_rng_init(&rng, 1000 + n + d);
            cm_rng_normal_fill_f64(&rng, x, 2 * n * d);
            /* validate: the certificate (cm_ot_distance checks it too; done here explicitly) */
            double value;
            cm_ot_result r;
            cm_ot_certificate c;
            cm_status status = cm_ot_distance(&value, &r, w, x, n, y, n, d, CM_OT_W1, NULL, NULL);
            if (status == CM_OK)
                status = cm_ot_check(&c, cm_ot_workspace_costs(w), n, n, NULL, NULL, &r);
            if (status != CM_OK) {
                fprintf(stderr, "n = %zu, d = %zu: %s: %s\n", n, d, cm_status_name(status),
                        cm_error_detail());
                return 1;
            }
            double total[MAX_RUNS], costs[MAX_RUNS], solve[MAX_RUNS], assignment[MAX_RUNS];
            for (int k = 0; k < runs; k++) {
                double t0 = bench_seconds();
                cm_ot_distance(&value, &r, w, x, n, y, n, d, CM_OT_W1, NULL, NULL);
                double t1 = bench_seconds();
                cm_ot_cost_matrix(cm_ot_workspace_costs(w), x, n, y, n, d, CM_OT_W1);
                double t2 = bench_seconds();
                cm_ot_result rs; /* the network simplex alone, with the matrix-only order */
                cm_ot_solve(&rs, w, cm_ot_workspace_costs(w), n, n, NULL, NULL);
                double t3 = bench_seconds();
                cm_ot_result ra; /* the second exact method, checked equal */
                cm_ot_solve_assignment(&ra, w, cm_ot_workspace_costs(w), n);
                double t4 = bench_seconds();
                if (fabs(ra.cost - rs.cost) > 1e-9 * rs.cost || fabs(r.cost - rs.cost) > 1e-9 * rs.cost) {
                    fprintf(stderr, "n = %zu, d = %zu: simplex %.17g, assignment %.17g, "
                            "distance %.17g\n", n, d, rs.cost, ra.cost, r.cost);
                    return 1;
                }
                total[k] = t1 - t0;
                costs[k] = t2 - t1;
                solve[k] = t3 - t2;
                assignment[k] = t4 - t3;
            }
            struct rusage usage;
            getrusage(RUSAGE_SELF, &usage);
            printf("%6zu %4zu %12.8f %10.3f %10.3f %8zu %6zu %10.3f %10.3f %10.1f\n", n, d, value,
                   bench_summary(total, runs).median, bench_summary(costs, runs).median,
                   r.pivots, r.rounds, bench_summary(solve, runs).median,
                   bench_summary(assignment, runs).median,
                   (double)usage.ru_maxrss / 1024.0);
            fflush(stdout);
            cm_ot_workspace_free(w);
            cm_free(x);
        }
    }
    printf("(total = cm_ot_distance: cost matrix, solve (simplex in d <= 3, assignment method "
           "above), certificate, re-evaluation;\n pivots/paths and scans of that solve; simplex "
           "and assign = cm_ot_solve and cm_ot_solve_assignment alone on the same matrix, with the "
           "matrix-only order,\n all three checked equal; peak = ru_maxrss so far)\n");
    return 0;
}
