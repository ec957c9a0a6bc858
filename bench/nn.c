/* bench/nn.c: training and sampling throughput against the machine's own limit (issue 6,
 * workloads 1-3; docs/performance.md).
 *
 * The limit: the single-precision GEMM rate of the linked BLAS measured in the same run, at a
 * large square size and at each workload's own GEMM shapes (the exact list of products one
 * training step or one sampler chunk makes), with 1 and 2 threads. Each workload is reported
 * as steps/s (samples/s), GFLOP/s by formula (2 per multiply-add of the products), and the
 * fraction of that limit; plus the 1 -> 2 thread speed-up.
 * Before timing, each workload is validated: the float MLP forward and backward against the
 * plain double loops of bench/reference.h on a batch of the workload's shape, one-step samples
 * against the reference evaluation of the same noise, and training bit-identical with 1 and 2
 * threads. Allocations are counted (malloc/calloc/realloc wrapped at link time: -Wl,--wrap)
 * across the timed steps, which must make none.
 * Workload 5, the theory sweep: exact ideal CT for X_0 ~ N(0, diag(l)) in d = 256 (l spread
 * log-uniformly over [0.1, 10]) at T = 50 ... 3200 (cm_theory_gaussian), validated against the
 * plain product of the per-step gains; its T values run as pool tasks.
 * Usage: make bench (all of it)  or  build/bench_nn [RUNS [FILTER]]  (FILTER: substring of a
 * workload name, e.g. "sample" or "d=784").
 */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "cm/alloc.h"
#include "cm/config.h"
#include "cm/data.h"
#include "cm/parallel.h"
#include "cm/rng.h"
#include "cm/sampler.h"
#include "cm/theory.h"
#include "cm/train.h"
#include "reference.h"

/* ---- allocation counter (the Makefile links with -Wl,--wrap=malloc,--wrap=calloc,...) */
static long allocation_calls;
void *__real_malloc(size_t size);
void *__real_calloc(size_t count, size_t size);
void *__real_realloc(void *pointer, size_t size);
void *__wrap_malloc(size_t size) {
    allocation_calls++;
    return __real_malloc(size);
}
void *__wrap_calloc(size_t count, size_t size) {
    allocation_calls++;
    return __real_calloc(count, size);
}
void *__wrap_realloc(void *pointer, size_t size) {
    allocation_calls++;
    return __real_realloc(pointer, size);
}

static int runs = 5;
static const size_t thread_counts[2] = {1, 2};

static void set_threads(size_t threads) {
    openblas_set_num_threads((int)threads);
    if (cm_parallel_set_threads(threads) != CM_OK) {
        fprintf(stderr, "cannot start %zu threads: %s\n", threads, cm_error_detail());
        exit(1);
    }
}

static void die(const char *what) {
    fprintf(stderr, "bench_nn: %s: %s\n", what, cm_error_detail());
    exit(1);
}

/* ---- GEMM shapes and the measured rate */

typedef struct {
    int trans_a, trans_b, M, N, K; /* row-major C[M,N] = op(A)[M,K] op(B)[K,N] */
} gemm_shape;

#define MAX_GEMMS 128

/* The products of the MLP on R rows (one row block): the forward, and for training also the
 * backward (nn_template.h issues exactly these). Returns the count. */
static int mlp_gemms(gemm_shape *out, const cm_mlp_layout *layout, int R, int backward) {
    int n = 0, L = (int)layout->config.depth;
    for (int l = 0; l <= L; l++)
        out[n++] = (gemm_shape){0, 1, R, (int)layout->out[l], (int)layout->in[l]};
    if (!backward) return n;
    int D = (int)layout->config.dim, W = (int)layout->config.width;
    out[n++] = (gemm_shape){0, 0, R, W, D};
    out[n++] = (gemm_shape){1, 0, D, W, R};
    for (int l = L - 1; l >= 0; l--) {
        if (l > 0) out[n++] = (gemm_shape){0, 0, R, (int)layout->in[l], W};
        out[n++] = (gemm_shape){1, 0, W, (int)layout->in[l], R};
    }
    return n;
}

static double gemm_flops(const gemm_shape *g, int count) {
    double flops = 0.0;
    for (int i = 0; i < count; i++) flops += 2.0 * g[i].M * (double)g[i].N * g[i].K;
    return flops;
}

typedef struct {
    const gemm_shape *shapes;
    int count, repeat;
    float *a, *b, *c[CM_MLP_SHARDS]; /* c: one output per task */
} gemm_job;

static void run_gemms(void *context, size_t task) {
    gemm_job *j = context;
    for (int r = 0; r < j->repeat; r++)
        for (int i = 0; i < j->count; i++) {
            const gemm_shape *g = &j->shapes[i];
            cblas_sgemm(CblasRowMajor, g->trans_a ? CblasTrans : CblasNoTrans,
                        g->trans_b ? CblasTrans : CblasNoTrans, g->M, g->N, g->K, 1.0f, j->a,
                        g->trans_a ? g->M : g->K, j->b, g->trans_b ? g->K : g->N, 0.0f,
                        j->c[task], g->N);
        }
}

static float *random_floats(size_t n, uint64_t seed) {
    float *x = cm_malloc(n, sizeof(float));
    if (!x) die("memory");
    cm_rng rng;
    cm_rng_init(&rng, seed);
    cm_rng_normal_fill_f32(&rng, x, n);
    return x;
}

/* GFLOP/s of the shape list: `tasks` copies run as cm_parallel_for tasks (tasks = row blocks of
 * the workload; with 1 thread they run one after the other, as in the workload). Median of
 * runs, each at least ~0.2 s. */
static bench_stats gemm_rate(const gemm_shape *shapes, int count, int tasks) {
    size_t biggest = 0;
    for (int i = 0; i < count; i++) {
        size_t mk = (size_t)shapes[i].M * shapes[i].K, kn = (size_t)shapes[i].K * shapes[i].N,
               mn = (size_t)shapes[i].M * shapes[i].N;
        biggest = mk > biggest ? mk : biggest;
        biggest = kn > biggest ? kn : biggest;
        biggest = mn > biggest ? mn : biggest;
    }
    gemm_job j = {shapes, count, 1, random_floats(biggest, 1), random_floats(biggest, 2), {0}};
    for (int t = 0; t < tasks; t++) j.c[t] = random_floats(biggest, 3 + t);
    double flops = gemm_flops(shapes, count) * tasks;
    double t0 = bench_seconds();
    cm_parallel_for(run_gemms, &j, (size_t)tasks); /* warm-up, and sizes the repeat */
    double once = bench_seconds() - t0;
    j.repeat = once > 0.2 ? 1 : (int)(0.2 / (once > 1e-6 ? once : 1e-6)) + 1;
    double rate[BENCH_MAX_RUNS];
    for (int r = 0; r < runs; r++) {
        t0 = bench_seconds();
        cm_parallel_for(run_gemms, &j, (size_t)tasks);
        rate[r] = flops * j.repeat / (bench_seconds() - t0) / 1e9;
    }
    cm_free(j.a);
    cm_free(j.b);
    for (int t = 0; t < tasks; t++) cm_free(j.c[t]);
    return bench_summary(rate, runs);
}

/* Large square sgemm, checked against a plain dot product at a few entries first. */
static void square_gemm(size_t n) {
    float *a = random_floats(n * n, 11), *b = random_floats(n * n, 12), *c = random_floats(n * n, 13);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)n, (int)n, (int)n, 1.0f, a, (int)n,
                b, (int)n, 0.0f, c, (int)n);
    for (size_t probe = 0; probe < 8; probe++) {
        size_t i = (probe * 7919) % n, j = (probe * 104729) % n;
        double sum = 0.0, magnitude = 0.0;
        for (size_t k = 0; k < n; k++) {
            sum += (double)a[i * n + k] * b[k * n + j];
            magnitude += fabs((double)a[i * n + k] * b[k * n + j]);
        }
        if (fabs(c[i * n + j] - sum) > 1e-5 * magnitude) {
            fprintf(stderr, "sgemm check failed at (%zu, %zu): %g vs %g\n", i, j, c[i * n + j], sum);
            exit(1);
        }
    }
    cm_free(a);
    cm_free(b);
    cm_free(c);
    gemm_shape square = {0, 0, (int)n, (int)n, (int)n};
    printf("sgemm %zux%zux%zu (checked against plain dot products):", n, n, n);
    for (int t = 0; t < 2; t++) {
        openblas_set_num_threads((int)thread_counts[t]); /* OpenBLAS's own threads here */
        cm_parallel_set_threads(1);
        bench_stats s = gemm_rate(&square, 1, 1);
        printf("  %zu thread%s %.1f GFLOP/s [%.1f-%.1f]", thread_counts[t],
               thread_counts[t] > 1 ? "s" : "", s.median, s.min, s.max);
    }
    printf("\n");
}

/* ---- validation of the MLP kernels against bench/reference.h */

static ref_scratch scratch; /* large: static */

/* Max relative errors of cm_mlp_forward / cm_mlp_backward (float) against the double reference
 * on B rows of random inputs; exits on failure. */
static void validate_mlp(const float *params, const cm_mlp_layout *layout, int B, const char *name) {
    size_t D = layout->config.dim, P = layout->param_count;
    float *x = random_floats((size_t)B * D, 21), *c = random_floats((size_t)B, 22);
    float *dout = random_floats((size_t)B * D, 23), *out = random_floats((size_t)B * D, 24);
    float *grad = cm_calloc(P, sizeof(float));
    double *ref_grad = cm_calloc(P, sizeof(double)), *ref_out = cm_malloc(D, sizeof(double));
    double *ref_dout = cm_malloc(D, sizeof(double));
    cm_mlp_workspace *ws;
    if (!grad || !ref_grad || !ref_out || !ref_dout || cm_mlp_workspace_alloc(&ws, layout, (size_t)B))
        die("memory");
    for (int b = 0; b < B; b++) c[b] = 0.5f * c[b]; /* c_noise = log(sigma) / 4: about N(0, 0.5) */
    cm_mlp_forward(out, params, layout, ws, x, c, B);
    cm_mlp_backward(grad, NULL, params, layout, ws, dout, B);
    double out_error = 0.0, out_scale = 0.0;
    for (int b = 0; b < B; b++) {
        ref_forward_row(ref_out, params, layout, x + (size_t)b * D, c[b], &scratch);
        for (size_t i = 0; i < D; i++) {
            out_error = fmax(out_error, fabs(out[(size_t)b * D + i] - ref_out[i]));
            out_scale = fmax(out_scale, fabs(ref_out[i]));
            ref_dout[i] = dout[(size_t)b * D + i];
        }
        ref_backward_row(ref_grad, params, layout, ref_dout, &scratch);
    }
    double grad_error = 0.0, grad_norm = 0.0;
    for (size_t i = 0; i < P; i++) {
        grad_error += (grad[i] - ref_grad[i]) * (grad[i] - ref_grad[i]);
        grad_norm += ref_grad[i] * ref_grad[i];
    }
    double forward_rel = out_error / out_scale, backward_rel = sqrt(grad_error / grad_norm);
    printf("  validate %s: forward max error / max |out| = %.2e, gradient |g - g_ref| / |g_ref| "
           "= %.2e (B = %d vs plain double loops)\n", name, forward_rel, backward_rel, B);
    if (!(forward_rel < 1e-4) || !(backward_rel < 1e-4)) {
        fprintf(stderr, "validation failed for %s\n", name);
        exit(1);
    }
    cm_mlp_workspace_free(ws);
    cm_free(x);
    cm_free(c);
    cm_free(dout);
    cm_free(out);
    cm_free(grad);
    cm_free(ref_grad);
    cm_free(ref_out);
    cm_free(ref_dout);
}

/* ---- workloads 1 and 2: training steps */

typedef struct {
    double rate[2];       /* steps/s or samples/s, 1 and 2 threads (medians) */
    double fraction[2];   /* of the GEMM rate at the workload's shapes */
    double gemm[2];       /* that GEMM rate (GFLOP/s) */
} result;

static cm_train_config workload_config(cm_method method, size_t dim, size_t width) {
    cm_train_config c = cm_train_config_default(method, dim);
    c.network.width = width;
    c.network.depth = 3;
    c.network.embed = 32;
    c.batch = 512;
    c.steps = 1000000; /* curricula far from their ends: the timed steps are typical */
    c.seed = 1;
    return c;
}

static cm_trainer *make_trainer(const cm_train_config *c, const cm_data *data) {
    cm_trainer *tr;
    if (cm_trainer_init(&tr, c, data) != CM_OK) die("trainer");
    return tr;
}

static void train_steps(cm_trainer *tr, size_t count) {
    for (size_t k = 0; k < count; k++)
        if (cm_trainer_step(tr, NULL) != CM_OK) die("step");
}

static result bench_train(const char *name, cm_method method, const char *spec, size_t width) {
    result res = {{0}, {0}, {0}};
    cm_data *data;
    if (cm_data_open(&data, spec) != CM_OK) die(spec);
    size_t dim = cm_data_dim(data);
    cm_train_config config = workload_config(method, dim, width);
    cm_mlp_layout layout;
    if (cm_mlp_layout_init(&layout, &config.network) != CM_OK) die("layout");
    printf("\n%s: %s on %s, D = %zu, width %zu, depth 3, E = 32, batch 512, %zu parameters\n",
           name, cm_method_name(method), spec, dim, width, layout.param_count);

    cm_trainer *tr = make_trainer(&config, data);
    set_threads(1);
    validate_mlp(cm_trainer_params(tr), &layout, (int)config.batch, name);
    /* determinism: 6 steps with 1 thread and with 2 threads, same seed */
    cm_trainer *other = make_trainer(&config, data);
    train_steps(tr, 6);
    set_threads(2);
    train_steps(other, 6);
    int same = memcmp(cm_trainer_params(tr), cm_trainer_params(other),
                      layout.param_count * sizeof(float)) == 0;
    printf("  weights after 6 steps with 1 and with 2 threads: %s\n",
           same ? "bit-identical" : "DIFFERENT");
    if (!same) exit(1);
    cm_trainer_free(other);

    /* FLOPs of a step: teacher and student forwards and the student backward, all blocks */
    gemm_shape shapes[MAX_GEMMS], forward_only[MAX_GEMMS];
    int rows = (int)(config.batch / CM_MLP_SHARDS);
    int n_backward = mlp_gemms(shapes, &layout, rows, 1);
    int n_forward = mlp_gemms(forward_only, &layout, rows, 0);
    /* one step's list: forward (teacher), forward + backward (student) */
    gemm_shape step[MAX_GEMMS];
    int n_step = 0;
    for (int i = 0; i < n_forward; i++) step[n_step++] = forward_only[i];
    for (int i = 0; i < n_backward; i++) step[n_step++] = shapes[i];
    double flops = gemm_flops(step, n_step) * CM_MLP_SHARDS;
    gemm_shape full[MAX_GEMMS]; /* the same products on the whole batch: OpenBLAS's own threads */
    int n_full = mlp_gemms(full, &layout, (int)config.batch, 0);
    n_full += mlp_gemms(full + n_full, &layout, (int)config.batch, 1);

    printf("  %-8s %22s %10s %12s %22s %9s %s\n", "threads", "steps/s [min-max]", "GFLOP/s",
           "GFLOP/step", "sgemm at shapes", "fraction", "allocations in timed steps");
    for (int t = 0; t < 2; t++) {
        set_threads(thread_counts[t]);
        train_steps(tr, 3);
        double t0 = bench_seconds();
        train_steps(tr, 2);
        double per_step = (bench_seconds() - t0) / 2;
        size_t chunk = per_step > 0.25 ? 1 : (size_t)(0.25 / per_step) + 1;
        double rate[BENCH_MAX_RUNS];
        long before = allocation_calls;
        for (int r = 0; r < runs; r++) {
            t0 = bench_seconds();
            train_steps(tr, chunk);
            rate[r] = (double)chunk / (bench_seconds() - t0);
        }
        long allocations = allocation_calls - before;
        bench_stats s = bench_summary(rate, runs);
        bench_stats g = gemm_rate(step, n_step, CM_MLP_SHARDS);
        res.rate[t] = s.median;
        res.gemm[t] = g.median;
        res.fraction[t] = s.median * flops / 1e9 / g.median;
        printf("  %-8zu %9.1f [%5.1f-%5.1f] %10.1f %12.3f %12.1f GFLOP/s %8.0f%% %ld in %zu steps\n",
               thread_counts[t], s.median, s.min, s.max, s.median * flops / 1e9, flops / 1e9,
               g.median, 100 * res.fraction[t], allocations, chunk * runs);
        if (t == 1) {
            openblas_set_num_threads(2);
            cm_parallel_set_threads(1);
            bench_stats o = gemm_rate(full, n_full, 1);
            printf("           (the same products on the whole batch with OpenBLAS's 2 threads: "
                   "%.1f GFLOP/s; step at %.0f%% of it)\n",
                   o.median, 100 * s.median * flops / 1e9 / o.median);
        }
    }
    printf("  speed-up 1 -> 2 threads: %.2fx (sgemm at the same shapes, same run: %.2fx)\n",
           res.rate[1] / res.rate[0], res.gemm[1] / res.gemm[0]);
    cm_trainer_free(tr);
    cm_data_free(data);
    return res;
}

/* ---- workload 3: one-step sampling */

static result bench_sample(size_t n) {
    result res = {{0}, {0}, {0}};
    cm_data *data;
    if (cm_data_open(&data, "moons") != CM_OK) die("moons");
    cm_train_config config = workload_config(CM_METHOD_ICT, 2, 256);
    printf("\nsample: one-step sampling of %zu points with the workload-1 network (ict, moons, "
           "width 256, depth 3, E = 32)\n", n);
    cm_trainer *tr = make_trainer(&config, data);
    set_threads(1);
    train_steps(tr, 20);
    const cm_model *model = cm_trainer_model(tr);
    size_t D = 2;
    double *out = cm_malloc(n * D, sizeof(double)), *other = cm_malloc(n * D, sizeof(double));
    if (!out || !other) die("memory");
    uint64_t seed = 7;
    if (cm_sample(out, model, NULL, 0, n, seed) != CM_OK) die("sample");
    /* validate: points at both ends against the reference evaluation of the same noise */
    cm_rng root, stream, stage;
    cm_rng_init(&root, seed);
    cm_rng_fork(&stream, &root, CM_STREAM_SAMPLE);
    cm_rng_fork(&stage, &stream, 0);
    cm_coefficients k = cm_model_coefficients(model, config.method.sigma_max);
    double worst = 0.0;
    for (size_t probe = 0; probe < 64; probe++) {
        size_t i = probe < 32 ? probe : n - 64 + probe;
        cm_rng point;
        float z[2], x[2];
        double F[2], ref[2];
        cm_rng_fork(&point, &stage, i);
        cm_rng_normal_fill_f32(&point, z, D);
        for (size_t d = 0; d < D; d++) x[d] = (float)(config.method.sigma_max * z[d]);
        float x_in[2] = {(float)k.in * x[0], (float)k.in * x[1]};
        ref_forward_row(F, model->params, &model->layout, x_in, (float)k.c_noise, &scratch);
        for (size_t d = 0; d < D; d++) ref[d] = k.skip * x[d] + k.out * F[d];
        cm_transform_invert(&model->transform, ref, 1);
        for (size_t d = 0; d < D; d++)
            worst = fmax(worst, fabs(out[i * D + d] - ref[d]) / (1.0 + fabs(ref[d])));
    }
    printf("  validate: 64 samples (first and last 32) vs the plain double evaluation of their "
           "noise: max |x - x_ref| / (1 + |x_ref|) = %.2e\n", worst);
    if (!(worst < 1e-4)) {
        fprintf(stderr, "sample validation failed\n");
        exit(1);
    }
    set_threads(2);
    if (cm_sample(other, model, NULL, 0, n, seed) != CM_OK) die("sample");
    int same = memcmp(out, other, n * D * sizeof(double)) == 0;
    printf("  samples with 1 and with 2 threads: %s\n", same ? "bit-identical" : "DIFFERENT");
    if (!same) exit(1);
    long before = allocation_calls;
    cm_sample(other, model, NULL, 0, CM_SAMPLER_CHUNK, seed);
    long small = allocation_calls - before;
    before = allocation_calls;
    cm_sample(other, model, NULL, 0, n, seed);
    long large = allocation_calls - before;
    printf("  allocations per cm_sample call: %ld for n = %d, %ld for n = %zu (none per chunk)\n",
           small, CM_SAMPLER_CHUNK, large, n);

    gemm_shape shapes[MAX_GEMMS];
    int count = mlp_gemms(shapes, &model->layout, CM_SAMPLER_CHUNK / CM_MLP_SHARDS, 0);
    size_t chunks = (n + CM_SAMPLER_CHUNK - 1) / CM_SAMPLER_CHUNK;
    double flops = cm_mlp_forward_flops(&model->layout, n);
    printf("  %-8s %26s %10s %22s %9s\n", "threads", "samples/s [min-max]", "GFLOP/s",
           "sgemm at shapes", "fraction");
    for (int t = 0; t < 2; t++) {
        set_threads(thread_counts[t]);
        double rate[BENCH_MAX_RUNS];
        for (int r = 0; r < runs; r++) {
            double t0 = bench_seconds();
            cm_sample(other, model, NULL, 0, n, seed);
            rate[r] = (double)n / (bench_seconds() - t0);
        }
        bench_stats s = bench_summary(rate, runs);
        bench_stats g = gemm_rate(shapes, count, CM_MLP_SHARDS);
        res.rate[t] = s.median;
        res.gemm[t] = g.median;
        res.fraction[t] = s.median * flops / n / 1e9 / g.median;
        printf("  %-8zu %10.0f [%6.0f-%6.0f] %10.1f %12.1f GFLOP/s %8.0f%%\n", thread_counts[t],
               s.median, s.min, s.max, s.median * flops / n / 1e9, g.median,
               100 * res.fraction[t]);
    }
    printf("  (FLOPs counted for the %zu points asked; the sampler evaluates %zu chunks of %d "
           "rows, %.1f%% padding)\n", n, chunks, CM_SAMPLER_CHUNK,
           100.0 * ((double)chunks * CM_SAMPLER_CHUNK - (double)n) / (double)n);
    printf("  speed-up 1 -> 2 threads: %.2fx (sgemm at the same shapes, same run: %.2fx)\n",
           res.rate[1] / res.rate[0], res.gemm[1] / res.gemm[0]);
    cm_free(out);
    cm_free(other);
    cm_trainer_free(tr);
    cm_data_free(data);
    return res;
}

/* ---- workload 5: theory sweep */

#define SWEEP_D 256
#define SWEEP_T_COUNT 7
static const size_t sweep_T[SWEEP_T_COUNT] = {50, 100, 200, 400, 800, 1600, 3200};

typedef struct {
    double variances[SWEEP_D];
    cm_theory_gaussian_result result[SWEEP_T_COUNT];
    cm_status status[SWEEP_T_COUNT];
} sweep_job;

static void sweep_task(void *context, size_t i) {
    sweep_job *j = context;
    j->status[i] = cm_theory_gaussian(&j->result[i], SWEEP_D, j->variances, sweep_T[i], 2.0, 4.0);
}

/* W2 of ideal CT by the plain product A_T(l) = prod_{t=2..T} g_t(l) (theory.h). */
static double plain_w2(const double *variances, size_t T) {
    cm_lhw_schedule s;
    if (cm_lhw_schedule_init(&s, T, 2.0, 4.0) != CM_OK) die("schedule");
    double total = 0.0;
    for (size_t i = 0; i < SWEEP_D; i++) {
        double l = variances[i], gain = 1.0;
        for (size_t t = 2; t <= T; t++) {
            double abar_prev = exp(s.log_abar[t - 1]), abar = exp(s.log_abar[t]);
            double v = abar * l + s.one_minus_abar[t];
            gain *= (sqrt(abar_prev * abar) * l + sqrt(s.one_minus_abar[t - 1] * s.one_minus_abar[t])) / v;
        }
        double v1 = exp(s.log_abar[1]) * l + s.one_minus_abar[1];
        total += (gain - sqrt(v1)) * (gain - sqrt(v1));
    }
    cm_lhw_schedule_free(&s);
    return sqrt(total);
}

static result bench_theory(void) {
    result res = {{0}, {0}, {0}};
    static sweep_job j;
    for (size_t i = 0; i < SWEEP_D; i++) j.variances[i] = pow(10.0, -1.0 + 2.0 * i / (SWEEP_D - 1));
    printf("\ntheory: ideal CT for N(0, diag(l)), d = %d, l log-uniform in [0.1, 10], T = 50, 100, "
           "..., 3200 (c0 = 2, c1 = 4): the whole sweep\n", SWEEP_D);
    set_threads(1);
    cm_parallel_for(sweep_task, &j, SWEEP_T_COUNT);
    double worst = 0.0;
    for (size_t i = 0; i < SWEEP_T_COUNT; i++) {
        if (j.status[i] != CM_OK) die("cm_theory_gaussian");
        double ref = plain_w2(j.variances, sweep_T[i]);
        worst = fmax(worst, fabs(j.result[i].w2_ideal - ref) / ref);
    }
    printf("  validate: W2 of ideal CT vs the plain product of the step gains: max relative "
           "difference %.2e over the 7 T values (W2 at T = 3200: %.6g)\n", worst,
           j.result[SWEEP_T_COUNT - 1].w2_ideal);
    if (!(worst < 1e-9)) {
        fprintf(stderr, "theory validation failed\n");
        exit(1);
    }
    printf("  %-8s %26s\n", "threads", "sweep seconds [min-max]");
    for (int t = 0; t < 2; t++) {
        set_threads(thread_counts[t]);
        double seconds[BENCH_MAX_RUNS];
        for (int r = 0; r < runs; r++) {
            double t0 = bench_seconds();
            cm_parallel_for(sweep_task, &j, SWEEP_T_COUNT);
            seconds[r] = bench_seconds() - t0;
        }
        bench_stats s = bench_summary(seconds, runs);
        res.rate[t] = 1.0 / s.median;
        printf("  %-8zu %10.4f [%6.4f-%6.4f]\n", thread_counts[t], s.median, s.min, s.max);
    }
    printf("  speed-up 1 -> 2 threads: %.2fx (T values as pool tasks; no GEMM: no fraction)\n",
           res.rate[1] / res.rate[0]);
    return res;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    runs = argc > 1 ? atoi(argv[1]) : 5;
    const char *filter = argc > 2 ? argv[2] : "";
    if (runs < 1 || runs > BENCH_MAX_RUNS) {
        fprintf(stderr, "usage: bench_nn [RUNS (1..%d) [FILTER]]\n", BENCH_MAX_RUNS);
        return 2;
    }
    char cpu[256];
    bench_cpu_name(cpu, sizeof cpu);
    bench_print_command(argc, argv);
    char load[64];
    bench_load_average(load, sizeof load);
    printf("machine: %s, %ld cores online, load average %s; OpenBLAS kernel %s (%s); medians of "
           "%d runs [min-max]\n", cpu, sysconf(_SC_NPROCESSORS_ONLN), load, openblas_get_corename(),
           openblas_get_config(), runs);
    square_gemm(2048);
    struct {
        const char *name;
        cm_method method;
        const char *spec;
        size_t width;
    } workloads[] = {
        {"train-ict-d=2", CM_METHOD_ICT, "moons", 256},
        {"train-lhw-d=2", CM_METHOD_LHW, "moons", 256},
        {"train-ict-d=16", CM_METHOD_ICT, "gmm:d=16,k=4", 512},
        {"train-lhw-d=16", CM_METHOD_LHW, "gmm:d=16,k=4", 512},
        {"train-ict-d=784", CM_METHOD_ICT, "gmm:d=784,k=4", 512},
        {"train-lhw-d=784", CM_METHOD_LHW, "gmm:d=784,k=4", 512},
    };
    size_t count = sizeof workloads / sizeof workloads[0];
    result results[8];
    const char *names[8];
    size_t done = 0;
    for (size_t w = 0; w < count; w++) {
        if (!strstr(workloads[w].name, filter)) continue;
        names[done] = workloads[w].name;
        results[done++] = bench_train(workloads[w].name, workloads[w].method, workloads[w].spec,
                                      workloads[w].width);
    }
    if (strstr("sample-100000", filter)) {
        names[done] = "sample-100000 (samples/s)";
        results[done++] = bench_sample(100000);
    }
    if (strstr("theory-sweep", filter)) {
        names[done] = "theory-sweep (sweeps/s)";
        results[done++] = bench_theory();
    }
    printf("\nsummary (%s kernel)\n%-26s %12s %12s %8s %10s %10s %12s\n", openblas_get_corename(),
           "workload", "1 thread", "2 threads", "speed-up", "fraction 1", "fraction 2",
           "sgemm 1->2");
    for (size_t i = 0; i < done; i++) {
        printf("%-26s %12.1f %12.1f %7.2fx", names[i], results[i].rate[0], results[i].rate[1],
               results[i].rate[1] / results[i].rate[0]);
        if (results[i].fraction[0] > 0)
            printf(" %9.0f%% %9.0f%% %11.2fx\n", 100 * results[i].fraction[0],
                   100 * results[i].fraction[1], results[i].gemm[1] / results[i].gemm[0]);
        else
            printf(" %10s %10s\n", "-", "-");
    }
    bench_load_average(load, sizeof load);
    printf("(fraction = GFLOP/s of the workload / sgemm GFLOP/s at its own shapes, same thread "
           "count; sgemm 1->2 = how much that sgemm rate itself gained from the second thread in\n"
           " this run, i.e. how much of a second core the machine gave; load average at the end %s)\n",
           load);
    return 0;
}
