/* bench/unet.c: speed of the U-Net (src/nn/unet.h) at the image workload: forward and backward
 * of one batch of 28x28x1 rows (default 128) at 32/64 channels, 2 blocks per level, on one
 * thread, and the same batch as 2 row blocks on 2 threads (the way a trainer runs it). Reports
 * the median wall time of RUNS repetitions, the thread's CPU time (on a shared machine the wall
 * time includes other processes' turns), GFLOP/s by formula (cm_unet_forward_flops; a backward
 * is 2 forwards), and an iCT step (a teacher forward, a student forward and a backward, timed as
 * one sequence) against PyTorch's 2.3 s for the same network, batch 128, one core. In the same
 * run, oneDNN's convolutions alone at the network's shapes (each conv's plan on the same number
 * of rows, row by row as the network calls them): the time an iCT step would take if nothing
 * but its convolutions cost, and what share of the step that is. Before timing, the float
 * network is checked against the double one on one row. Allocations made by cm during the timed
 * calls are counted (malloc wrapped at link time; oneDNN's own, inside its shared library, are
 * not seen).
 * Usage: build/bench_unet [RUNS [ROWS]]   (make bench-unet)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench.h"
#include "cm/parallel.h"
#include "cm/rng.h"
#include "nn/conv.h"
#include "nn/unet.h"

static long allocation_calls;
void *__real_malloc(size_t size);
void *__real_calloc(size_t count, size_t size);
void *__real_realloc(void *pointer, size_t size);
void *__wrap_malloc(size_t size) {
    __atomic_add_fetch(&allocation_calls, 1, __ATOMIC_RELAXED);
    return __real_malloc(size);
}
void *__wrap_calloc(size_t count, size_t size) {
    __atomic_add_fetch(&allocation_calls, 1, __ATOMIC_RELAXED);
    return __real_calloc(count, size);
}
void *__wrap_realloc(void *pointer, size_t size) {
    __atomic_add_fetch(&allocation_calls, 1, __ATOMIC_RELAXED);
    return __real_realloc(pointer, size);
}

static double thread_seconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &now);
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

static void check(cm_status status) {
    if (status == CM_OK) return;
    fprintf(stderr, "bench_unet: %s: %s\n", cm_status_name(status), cm_error_detail());
    exit(1);
}

/* One row block: its own workspace and row range, run as a pool task. */
typedef struct {
    const cm_unet_layout *layout;
    cm_unet_workspace *ws[2];
    const float *params, *x, *c_noise, *dout;
    float *out, *dparams[2];
    size_t rows, D;
    int backward;
} blocks_job;

static void run_block(void *context, size_t s) {
    blocks_job *j = context;
    size_t first, end;
    cm_parallel_range(&first, &end, j->rows, s, 2);
    if (j->backward)
        check(cm_unet_backward(j->dparams[s], NULL, j->params, j->layout, j->ws[s],
                               j->dout + first * j->D, end - first));
    else
        check(cm_unet_forward(j->out + first * j->D, j->params, j->layout, j->ws[s],
                              j->x + first * j->D, j->c_noise + first, end - first));
}

/* Validate: one row, float against double, relative to the output's scale. */
static void validate(const cm_unet_layout *layout, const float *params, const float *x,
                     const float *c_noise) {
    size_t P = layout->param_count, D = 784;
    cm_unet_workspace *ws = NULL;
    cm_unet_workspace_f64 *ws64 = NULL;
    check(cm_unet_workspace_alloc(&ws, layout, 1));
    check(cm_unet_workspace_alloc_f64(&ws64, layout, 1));
    double *pd = malloc(P * 8), xd[784], outd[784], c = c_noise[0];
    float out[784];
    for (size_t i = 0; i < P; i++) pd[i] = params[i];
    for (size_t i = 0; i < D; i++) xd[i] = x[i];
    check(cm_unet_forward(out, params, layout, ws, x, c_noise, 1));
    check(cm_unet_forward_f64(outd, pd, layout, ws64, xd, &c, 1));
    double worst = 0, scale = 0;
    for (size_t i = 0; i < D; i++) worst = fmax(worst, fabs(out[i] - outd[i])), scale = fmax(scale, fabs(outd[i]));
    printf("validation: float vs double on one row: max |diff| %.2g of max |out| %.2g\n", worst,
           scale);
    if (!(worst <= 1e-4 * scale)) {
        fprintf(stderr, "bench_unet: float network does not match the double one\n");
        exit(1);
    }
    free(pd);
    cm_unet_workspace_free(ws);
    cm_unet_workspace_free_f64(ws64);
}

/* The layout's convolutions alone: each conv's plan runs forward, backward-data and
 * backward-weights on `rows` rows, one row per call (as the network runs them), inputs and
 * outputs streamed from arrays of all rows; medians of `runs`. *out_ict receives the thread CPU
 * time of an iCT step's convolutions (2 forwards, backward-data of every conv but conv_in,
 * backward-weights), *out_flops its FLOPs. Prints each shape's rates. */
static void convolution_rates(double *out_ict, double *out_flops, const cm_unet_layout *layout,
                              size_t rows, int runs) {
    size_t largest_in = 0, largest_out = 0;
    for (size_t i = 0; i < layout->conv_count; i++) {
        const cm_unet_conv *c = &layout->convs[i];
        size_t OH = (size_t)cm_conv2d_out_size((int)c->height, (int)c->kernel, (int)c->stride);
        if (c->height * c->width * c->in_channels > largest_in) largest_in = c->height * c->width * c->in_channels;
        if (OH * OH * c->out_channels > largest_out) largest_out = OH * OH * c->out_channels;
    }
    float *in = malloc(rows * largest_in * 4), *out = malloc(rows * largest_out * 4);
    float *weights = malloc(128 * 128 * 9 * 4), bias[256] = {0}, dbias[256];
    cm_rng rng;
    cm_rng_init(&rng, 3);
    cm_rng_normal_fill_f32(&rng, in, rows * largest_in);
    cm_rng_normal_fill_f32(&rng, out, rows * largest_out);
    cm_rng_normal_fill_f32(&rng, weights, 128 * 128 * 9);
    printf("oneDNN's convolutions alone at the U-Net's shapes, %zu rows one per call, 1 thread "
           "(GFLOP/s by thread CPU time; forward, backward-data, backward-weights):\n", rows);
    double ict = 0, flops = 0;
    cm_onednn onednn;
    check(cm_onednn_create(&onednn));
    void *scratchpad = NULL;
    for (size_t i = 0; i < layout->conv_count; i++) {
        const cm_unet_conv *c = &layout->convs[i];
        int OH = cm_conv2d_out_size((int)c->height, (int)c->kernel, (int)c->stride);
        size_t n_in = c->height * c->width * c->in_channels, n_out = (size_t)OH * OH * c->out_channels;
        double f = 2.0 * n_out * c->in_channels * c->kernel * c->kernel * (double)rows;
        cm_conv_plan *plan = NULL;
        check(cm_conv_plan_create(&plan, &onednn, (int)c->height, (int)c->width,
                                  (int)c->in_channels, (int)c->out_channels, (int)c->kernel,
                                  (int)c->stride));
        free(scratchpad);
        scratchpad = malloc(cm_conv_plan_scratchpad_bytes(plan));
        check(cm_conv_plan_bind_scratchpad(plan, scratchpad));
        check(cm_conv_plan_load_weights(plan, weights));
        double t[3][BENCH_MAX_RUNS];
        for (int k = 0; k <= runs; k++) { /* k = 0 warms up */
            double c0 = thread_seconds();
            for (size_t r = 0; r < rows; r++)
                check(cm_conv_plan_forward(plan, out + r * n_out, in + r * n_in, bias));
            double c1 = thread_seconds();
            for (size_t r = 0; r < rows; r++)
                check(cm_conv_plan_backward_data(plan, in + r * n_in, out + r * n_out));
            double c2 = thread_seconds();
            for (size_t r = 0; r < rows; r++)
                check(cm_conv_plan_backward_weights(plan, dbias, out + r * n_out, in + r * n_in,
                                                    r == 0));
            double c3 = thread_seconds();
            if (k > 0) t[0][k - 1] = c1 - c0, t[1][k - 1] = c2 - c1, t[2][k - 1] = c3 - c2;
        }
        double fw = bench_summary(t[0], runs).median, bd = bench_summary(t[1], runs).median;
        double bw = bench_summary(t[2], runs).median;
        printf("  %2zux%-2zu %3zu -> %3zu k%zu s%zu  %6.1f %6.1f %6.1f\n", c->height, c->width,
               c->in_channels, c->out_channels, c->kernel, c->stride, f / fw * 1e-9,
               f / bd * 1e-9, f / bw * 1e-9);
        int conv_in = i == 0; /* the image's own gradient is not wanted in training */
        ict += 2 * fw + (conv_in ? 0 : bd) + bw;
        flops += f * (conv_in ? 3 : 4);
        cm_conv_plan_free(plan);
    }
    cm_onednn_destroy(&onednn);
    free(scratchpad), free(in), free(out), free(weights);
    *out_ict = ict, *out_flops = flops;
}

int main(int argc, char **argv) {
    int runs = argc > 1 ? atoi(argv[1]) : 5;
    size_t rows = argc > 2 ? (size_t)atol(argv[2]) : 128;
    if (runs < 1 || runs > BENCH_MAX_RUNS || rows < 2) {
        fprintf(stderr, "usage: bench_unet [RUNS (1..%d) [ROWS (>= 2)]]\n", BENCH_MAX_RUNS);
        return 2;
    }
    char cpu[256], load[64];
    bench_print_command(argc, argv);
    bench_cpu_name(cpu, sizeof cpu);
    bench_load_average(load, sizeof load);
    printf("cpu: %s; load average before: %s\n", cpu, load);
    cm_unet_config config = cm_unet_config_default(1, 28, 28);
    static cm_unet_layout layout;
    check(cm_unet_layout_init(&layout, &config));
    size_t P = layout.param_count, D = 784;
    double flops = cm_unet_forward_flops(&layout, rows);
    printf("U-Net 28x28x1, channels 32/64, 2 blocks per level: %zu parameters, %.1f MFLOP per row "
           "forward\n", P, cm_unet_forward_flops(&layout, 1) * 1e-6);
    float *params = malloc(P * 4), *x = malloc(rows * D * 4), *out = malloc(rows * D * 4);
    float *dout = malloc(rows * D * 4), *dparams = malloc(P * 4), *dparams2 = malloc(P * 4);
    float *c_noise = malloc(rows * 4);
    cm_rng rng;
    cm_rng_init(&rng, 1);
    cm_unet_init_params(params, &layout, &rng);
    const cm_unet_tensor *last = &layout.tensors[layout.tensor_count - 2]; /* out conv weight */
    for (size_t i = 0; i < last->count; i++) params[last->offset + i] = (float)(0.05 * cm_rng_normal(&rng));
    cm_rng_normal_fill_f32(&rng, x, rows * D);
    cm_rng_normal_fill_f32(&rng, dout, rows * D);
    for (size_t r = 0; r < rows; r++) c_noise[r] = (float)(2 * cm_rng_uniform(&rng) - 1);
    validate(&layout, params, x, c_noise);

    /* one thread, one block of all rows */
    cm_unet_workspace *ws = NULL;
    double t0 = bench_seconds();
    check(cm_unet_workspace_alloc(&ws, &layout, rows));
    printf("workspace for %zu rows: %.3f s to make (oneDNN primitives)\n", rows, bench_seconds() - t0);
    check(cm_unet_forward(out, params, &layout, ws, x, c_noise, rows)); /* warm-up */
    check(cm_unet_backward(dparams, NULL, params, &layout, ws, dout, rows));
    double forward[BENCH_MAX_RUNS], backward[BENCH_MAX_RUNS], cpu_forward[BENCH_MAX_RUNS],
        cpu_backward[BENCH_MAX_RUNS];
    long allocations_before = allocation_calls;
    for (int k = 0; k < runs; k++) {
        double w0 = bench_seconds(), c0 = thread_seconds();
        check(cm_unet_forward(out, params, &layout, ws, x, c_noise, rows));
        double w1 = bench_seconds(), c1 = thread_seconds();
        check(cm_unet_backward(dparams, NULL, params, &layout, ws, dout, rows));
        forward[k] = w1 - w0, backward[k] = bench_seconds() - w1;
        cpu_forward[k] = c1 - c0, cpu_backward[k] = thread_seconds() - c1;
    }
    long allocations = allocation_calls - allocations_before;
    bench_stats f = bench_summary(forward, runs), b = bench_summary(backward, runs);
    bench_stats cf = bench_summary(cpu_forward, runs), cb = bench_summary(cpu_backward, runs);
    printf("1 thread, %zu rows, %d runs (median [min, max]):\n", rows, runs);
    printf("  forward   %.3f s [%.3f, %.3f]  %.1f GFLOP/s   (thread CPU time %.3f s: %.1f GFLOP/s)\n",
           f.median, f.min, f.max, flops / f.median * 1e-9, cf.median, flops / cf.median * 1e-9);
    printf("  backward  %.3f s [%.3f, %.3f]  %.1f GFLOP/s   (thread CPU time %.3f s: %.1f GFLOP/s)\n",
           b.median, b.min, b.max, 2 * flops / b.median * 1e-9, cb.median,
           2 * flops / cb.median * 1e-9);
    double both = f.median + b.median, ict = 2 * f.median + b.median;
    double cpu_ict = 2 * cf.median + cb.median;
    printf("  forward + backward %.3f s; an iCT step (2 forwards + 1 backward) %.3f s (CPU time "
           "%.3f s) against PyTorch's 2.3 s: %.2fx its speed (%.2fx by CPU time)\n", both, ict,
           cpu_ict, 2.3 / ict, 2.3 / cpu_ict);
    printf("  allocations by cm during the timed calls: %ld\n", allocations);

    /* an iCT step as the trainer runs it: teacher forward, student forward, backward */
    double step[BENCH_MAX_RUNS], cpu_step[BENCH_MAX_RUNS];
    for (int k = 0; k < runs; k++) {
        double w0 = bench_seconds(), c0 = thread_seconds();
        check(cm_unet_forward(out, params, &layout, ws, x, c_noise, rows));
        check(cm_unet_forward(out, params, &layout, ws, x, c_noise, rows));
        check(cm_unet_backward(dparams, NULL, params, &layout, ws, dout, rows));
        step[k] = bench_seconds() - w0, cpu_step[k] = thread_seconds() - c0;
    }
    bench_stats st = bench_summary(step, runs), cst = bench_summary(cpu_step, runs);
    double step_flops = 4 * flops; /* 2 forwards + a backward of 2 forwards' FLOPs */
    printf("  iCT step (teacher forward, student forward, backward) %.3f s [%.3f, %.3f], thread "
           "CPU time %.3f s: %.1f GFLOP/s; PyTorch 2.3 s: %.2fx its speed; target 1.15 s\n",
           st.median, st.min, st.max, cst.median, step_flops / cst.median * 1e-9,
           2.3 / st.median);
    double conv_step, conv_flops;
    convolution_rates(&conv_step, &conv_flops, &layout, rows, runs);
    printf("  an iCT step's convolutions alone: %.3f s of thread CPU time (%.1f GFLOP/s); the step "
           "takes %.3f s: %.0f %% of it is the convolutions' own time, the step runs at %.0f %% "
           "of oneDNN's convolution rate at its shapes\n", conv_step,
           conv_flops / conv_step * 1e-9, cst.median, 100 * conv_step / cst.median,
           100 * (step_flops / cst.median) / (conv_flops / conv_step));

    /* two threads: two row blocks, each its own workspace, as pool tasks */
    check(cm_parallel_set_threads(2));
    blocks_job job = {&layout, {NULL, NULL}, params, x, c_noise, dout, out, {dparams, dparams2},
                      rows, D, 0};
    for (int s = 0; s < 2; s++) check(cm_unet_workspace_alloc(&job.ws[s], &layout, (rows + 1) / 2));
    cm_parallel_for(run_block, &job, 2);
    for (int k = 0; k < runs; k++) {
        double w0 = bench_seconds();
        job.backward = 0;
        cm_parallel_for(run_block, &job, 2);
        double w1 = bench_seconds();
        job.backward = 1;
        cm_parallel_for(run_block, &job, 2);
        forward[k] = w1 - w0, backward[k] = bench_seconds() - w1;
    }
    f = bench_summary(forward, runs), b = bench_summary(backward, runs);
    printf("2 threads, 2 blocks of %zu rows: forward %.3f s (%.1f GFLOP/s), backward %.3f s "
           "(%.1f GFLOP/s), iCT step %.3f s\n", (rows + 1) / 2, f.median, flops / f.median * 1e-9,
           b.median, 2 * flops / b.median * 1e-9, 2 * f.median + b.median);
    bench_load_average(load, sizeof load);
    printf("load average after: %s\n", load);
    for (int s = 0; s < 2; s++) cm_unet_workspace_free(job.ws[s]);
    cm_unet_workspace_free(ws);
    free(params), free(x), free(out), free(dout), free(dparams), free(dparams2), free(c_noise);
    return 0;
}
