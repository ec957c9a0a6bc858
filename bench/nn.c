/* bench/nn.c: training and sampling throughput of the MLP against the machine's own limits
 * (docs/performance.md).
 *
 * The limits: the float GEMM rate at each workload's own products (the exact list one training
 * step or one sampler chunk makes, in the same arrangement: the row blocks one after the other
 * with 1 thread, one per thread with 2), measured in the same run with two libraries: oneDNN's
 * dnnl_sgemm (the limit of the network's oneDNN products) and OpenBLAS's cblas_sgemm (the kernel
 * OPENBLAS_CORETYPE selects: the limit before the products moved to oneDNN). Each workload is
 * reported as steps/s (samples/s), GFLOP/s by formula (2 per multiply-add of its products) and
 * its fraction of both limits, with 1 and 2 threads; with 1 thread also per CPU second of the
 * process (what other processes on a shared machine disturb least).
 * Validated before timing: every product shape of both libraries at 8 entries against double dot
 * products; the network's float forward and backward (through network.h, at the workload's
 * block capacity and one row fewer, the padded path) against the plain double loops of
 * bench/reference.h; training bit-identical with 1 and 2 threads; one-step samples against the
 * reference evaluation of the same noise, and bit-identical with 1 and 2 threads.
 * Allocations in the timed steps are counted twice: libcm's own (malloc/calloc/realloc wrapped at
 * link time, -Wl,--wrap: must be 0) and the whole process's (bench/allocations.h: what libdnnl
 * and the C++ runtime allocate inside a call too).
 * Workloads at d = 784 draw a Gaussian mixture law afresh every step (about 800k normal variates
 * through libm, which the step's time is mostly spent on) or rows of Fashion-MNIST (a copy).
 * Workload 5, the theory sweep: exact ideal CT for X_0 ~ N(0, diag(l)) in d = 256 at
 * T = 50 ... 3200 (cm_theory_gaussian) against the plain product of the per-step gains.
 * Usage: make bench (all of it)  or  build/bench_nn [RUNS [FILTER]]  (FILTER: substring of a
 * workload name, e.g. "sample", "ict-d=2" or "d=784").
 * Builds against this tree and against an older one with the same public API and nn/mlp.h
 * (the "before" of docs/performance.md).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "allocations.h"
#include "bench.h"
#include "cm/alloc.h"
#include "cm/config.h"
#include "cm/data.h"
#include "cm/evaluator.h"
#include "cm/parallel.h"
#include "cm/rng.h"
#include "cm/sampler.h"
#include "cm/theory.h"
#include "cm/train.h"
#include "nn/mlp.h"
#include "reference.h"
#include "sgemm.h"

/* ---- libcm's own allocations (the Makefile links with -Wl,--wrap=malloc,--wrap=calloc,...) */
static atomic_long library_allocations;
void *__real_malloc(size_t size);
void *__real_calloc(size_t count, size_t size);
void *__real_realloc(void *pointer, size_t size);
void *__wrap_malloc(size_t size) {
    atomic_fetch_add(&library_allocations, 1);
    return __real_malloc(size);
}
void *__wrap_calloc(size_t count, size_t size) {
    atomic_fetch_add(&library_allocations, 1);
    return __real_calloc(count, size);
}
void *__wrap_realloc(void *pointer, size_t size) {
    atomic_fetch_add(&library_allocations, 1);
    return __real_realloc(pointer, size);
}

typedef struct {
    long library, all, aligned;
} allocation_counts;

static allocation_counts allocations_now(void) {
    return (allocation_counts){atomic_load(&library_allocations), atomic_load(&bench_allocations_all),
                               atomic_load(&bench_allocations_aligned)};
}

static allocation_counts allocations_since(allocation_counts before) {
    allocation_counts now = allocations_now();
    return (allocation_counts){now.library - before.library, now.all - before.all,
                               now.aligned - before.aligned};
}

static int runs = 5;

/* CPU seconds of the whole process: with 1 thread, rates per CPU second are what a loaded
 * machine disturbs least (time other processes take is not counted). */
static double cpu_seconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &now);
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}
static const size_t thread_counts[2] = {1, 2};

static void die(const char *what) {
    fprintf(stderr, "bench_nn: %s: %s\n", what, cm_error_detail());
    exit(1);
}

/* The pool's thread count; OpenBLAS's own threads stay at 1 (2 threads = our pool). */
static void set_threads(size_t threads) {
    openblas_set_num_threads(1);
    if (cm_parallel_set_threads(threads) != CM_OK) die("cannot start the pool's threads");
}

static float *random_floats(size_t n, uint64_t seed) {
    float *x = cm_malloc(n ? n : 1, sizeof(float));
    if (!x) die("memory");
    cm_rng rng;
    cm_rng_init(&rng, seed);
    cm_rng_normal_fill_f32(&rng, x, n);
    return x;
}

/* ---- the products of a workload and the GEMM rate at them */

typedef struct {
    int trans_a, trans_b, M, N, K; /* row-major C[M,N] = op(A)[M,K] op(B)[K,N] */
} gemm_shape;

#define MAX_GEMMS 128

/* The products of the MLP on M rows (one row block, mlp_template.h): the forward, and for
 * training also the backward without the first layer's input gradient. Appends to out[*n]. */
static void mlp_gemms(gemm_shape *out, int *n, const cm_mlp_layout *layout, int M, int backward) {
    int last = (int)layout->depth;
    if (!backward) {
        for (int l = 0; l <= last; l++)
            out[(*n)++] = (gemm_shape){0, 1, M, (int)layout->out[l], (int)layout->in[l]};
        return;
    }
    for (int l = last; l >= 0; l--) {
        if (l > 0) out[(*n)++] = (gemm_shape){0, 0, M, (int)layout->in[l], (int)layout->out[l]};
        out[(*n)++] = (gemm_shape){1, 0, (int)layout->out[l], (int)layout->in[l], M};
    }
}

static double gemm_flops(const gemm_shape *g, int count) {
    double flops = 0.0;
    for (int i = 0; i < count; i++) flops += 2.0 * g[i].M * (double)g[i].N * g[i].K;
    return flops;
}

typedef struct {
    const gemm_shape *shapes;
    int count, repeat;
    bench_library library;
    float *a, *b, *c[2]; /* c: one output per task */
} gemm_job;

static void run_gemms(void *context, size_t task) {
    gemm_job *j = context;
    for (int r = 0; r < j->repeat; r++)
        for (int i = 0; i < j->count; i++) {
            const gemm_shape *g = &j->shapes[i];
            if (bench_sgemm(j->library, g->trans_a, g->trans_b, g->M, g->N, g->K, j->a,
                            g->trans_a ? g->M : g->K, j->b, g->trans_b ? g->K : g->N, j->c[task],
                            g->N))
                die("dnnl_sgemm failed");
        }
}

/* 8 entries of op(A) op(B) against double dot products: within gamma_{K+3} sum |a b|. */
static void check_product(const gemm_shape *g, const float *a, const float *b, const float *c,
                          bench_library library) {
    const double u = 0x1p-24, n = (double)g->K + 3.0, gamma = n * u / (1.0 - n * u);
    size_t lda = g->trans_a ? (size_t)g->M : (size_t)g->K, ldb = g->trans_b ? (size_t)g->K : (size_t)g->N;
    for (size_t probe = 0; probe < 8; probe++) {
        size_t i = (probe * 7919 + probe / 2) % (size_t)g->M, j = (probe * 104729 + 3 * probe) % (size_t)g->N;
        double sum = 0.0, magnitude = 0.0;
        for (size_t k = 0; k < (size_t)g->K; k++) {
            double x = g->trans_a ? a[k * lda + i] : a[i * lda + k];
            double y = g->trans_b ? b[j * ldb + k] : b[k * ldb + j];
            sum += x * y, magnitude += fabs(x * y);
        }
        if (!(fabs(c[i * (size_t)g->N + j] - sum) <= gamma * magnitude + 0x1p-126)) {
            fprintf(stderr, "bench_nn: %s %c%c %dx%dx%d at (%zu, %zu): %.9g vs %.9g\n",
                    bench_library_names[library], g->trans_a ? 'T' : 'N', g->trans_b ? 'T' : 'N',
                    g->M, g->N, g->K, i, j, (double)c[i * (size_t)g->N + j], sum);
            exit(1);
        }
    }
}

/* GFLOP/s of `library` at the shape list: `tasks` copies as pool tasks (the workload's row
 * blocks; with 1 thread one after the other). Each shape validated first; median of runs, each
 * at least ~0.2 s. */
static bench_stats gemm_rate(bench_library library, const gemm_shape *shapes, int count,
                             int tasks) {
    size_t biggest = 0;
    for (int i = 0; i < count; i++) {
        size_t sizes[3] = {(size_t)shapes[i].M * shapes[i].K, (size_t)shapes[i].K * shapes[i].N,
                           (size_t)shapes[i].M * shapes[i].N};
        for (int k = 0; k < 3; k++) biggest = sizes[k] > biggest ? sizes[k] : biggest;
    }
    gemm_job j = {shapes, 1, 1, library, random_floats(biggest, 1), random_floats(biggest, 2), {0}};
    for (int t = 0; t < tasks; t++) j.c[t] = random_floats(biggest, 3 + t);
    for (int i = 0; i < count; i++) {
        j.shapes = shapes + i;
        run_gemms(&j, 0);
        check_product(shapes + i, j.a, j.b, j.c[0], library);
    }
    j.shapes = shapes, j.count = count;
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
    cm_free(j.a), cm_free(j.b);
    for (int t = 0; t < tasks; t++) cm_free(j.c[t]);
    return bench_summary(rate, runs);
}

/* A square product as 1 and 2 row blocks (1 and 2 threads), both libraries. */
static void square_gemm(int n) {
    printf("sgemm %dx%dx%d (validated at 8 entries), GFLOP/s, 1 thread | 2 threads (2 row "
           "blocks on the pool):\n", n, n, n);
    for (int library = 0; library < BENCH_LIBRARIES; library++) {
        printf("  %-9s", bench_library_names[library]);
        for (int t = 0; t < 2; t++) {
            set_threads(thread_counts[t]);
            gemm_shape block = {0, 0, n / (int)thread_counts[t], n, n};
            bench_stats s = gemm_rate((bench_library)library, &block, 1, (int)thread_counts[t]);
            printf("  %7.1f [%5.1f-%5.1f]", s.median, s.min, s.max);
        }
        printf("\n");
    }
    set_threads(1);
}

/* ---- what every workload reports */

typedef struct {
    double rate[2];                     /* steps/s or samples/s, 1 and 2 threads (medians) */
    double limit[BENCH_LIBRARIES][2];   /* GEMM GFLOP/s at the workload's shapes */
    double fraction[BENCH_LIBRARIES][2]; /* workload GFLOP/s over that */
    double per_cpu;                     /* 1 thread: rate per CPU second of the process */
} result;

/* Time both libraries at the shapes for `threads`, print the line's tail, fill the result. */
static void limits_line(result *res, int t, const gemm_shape *shapes, int count, int tasks,
                        double gflops) {
    const bench_library order[BENCH_LIBRARIES] = {BENCH_ONEDNN, BENCH_OPENBLAS};
    for (int i = 0; i < BENCH_LIBRARIES; i++) {
        bench_library library = order[i];
        bench_stats g = gemm_rate(library, shapes, count, tasks);
        res->limit[library][t] = g.median;
        res->fraction[library][t] = gflops / g.median;
        printf(" %7.1f %4.0f%%", g.median, 100 * res->fraction[library][t]);
    }
}

static void print_limits_header(const char *unit) {
    printf("  %-7s %26s %8s | %-13s %-13s| allocations in the timed %s: libcm, whole process "
           "(posix_memalign)\n", "threads", unit, "GFLOP/s", "oneDNN sgemm", "OpenBLAS sgemm",
           unit);
    printf("  %-7s %26s %8s | %7s %5s %7s %5s|\n", "", "", "", "GFLOP/s", "frac", "GFLOP/s",
           "frac");
}

/* ---- validation of the network's float passes against bench/reference.h */

static ref_scratch scratch; /* large: static */

/* Forward and backward of `rows` rows through a workspace of `capacity` rows, against the double
 * reference: max relative error of the outputs and relative norm error of the gradient. */
static void validate_network(const cm_network *network, const float *params,
                             const cm_mlp_layout *layout, size_t capacity, size_t rows,
                             double *forward_error, double *gradient_error) {
    size_t D = layout->dim, P = layout->param_count;
    float *x = random_floats(rows * D, 21), *c = random_floats(rows, 22);
    float *dout = random_floats(rows * D, 23), *out = random_floats(rows * D, 24);
    float *grad = cm_calloc(P, sizeof(float));
    double *ref_grad = cm_calloc(P, sizeof(double)), ref_out[REF_MAX_UNITS], ref_dout[REF_MAX_UNITS];
    cm_network_workspace *ws;
    if (!grad || !ref_grad || cm_network_workspace_alloc(&ws, network, capacity) != CM_OK)
        die("validation buffers");
    for (size_t b = 0; b < rows; b++) c[b] = 0.5f * c[b]; /* c_noise = log(sigma) / 4 */
    cm_network_forward(network, out, params, ws, x, c, rows);
    cm_network_backward(network, grad, NULL, params, ws, dout, rows);
    double out_error = 0.0, out_scale = 0.0, error = 0.0, norm = 0.0;
    for (size_t b = 0; b < rows; b++) {
        ref_forward_row(ref_out, params, layout, x + b * D, c[b], &scratch);
        for (size_t i = 0; i < D; i++) {
            out_error = fmax(out_error, fabs(out[b * D + i] - ref_out[i]));
            out_scale = fmax(out_scale, fabs(ref_out[i]));
            ref_dout[i] = dout[b * D + i];
        }
        ref_backward_row(ref_grad, params, layout, ref_dout, &scratch);
    }
    for (size_t i = 0; i < P; i++) {
        error += (grad[i] - ref_grad[i]) * (grad[i] - ref_grad[i]);
        norm += ref_grad[i] * ref_grad[i];
    }
    *forward_error = out_error / out_scale;
    *gradient_error = sqrt(error / norm);
    cm_network_workspace_free(ws);
    cm_free(x), cm_free(c), cm_free(dout), cm_free(out), cm_free(grad), cm_free(ref_grad);
}

/* Both the full block and one row fewer (a padded block); exits above 1e-4. */
static void validate_workload(const cm_network *network, const float *params,
                              const cm_mlp_layout *layout, size_t capacity) {
    for (size_t rows = capacity; rows + 1 >= capacity && rows > 0; rows--) {
        double forward, gradient;
        validate_network(network, params, layout, capacity, rows, &forward, &gradient);
        printf("  validate: %zu rows in a workspace of %zu: forward max error / max |out| = "
               "%.2e, gradient |g - g_ref| / |g_ref| = %.2e (vs plain double loops)\n", rows,
               capacity, forward, gradient);
        if (!(forward < 1e-4) || !(gradient < 1e-4)) {
            fprintf(stderr, "bench_nn: network validation failed\n");
            exit(1);
        }
    }
}

/* ---- workloads 1 and 2: training steps */

static cm_train_config workload_config(cm_method method, size_t dim, size_t width) {
    cm_train_config c = cm_train_config_default(method, dim);
    if (cm_network_config_set(&c.network, "width", (double)width) != CM_OK ||
        cm_network_config_set(&c.network, "depth", 3) != CM_OK)
        die("network settings");
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

static const float *trainer_params(cm_trainer *tr) { return cm_trainer_model(tr)->params; }

/* 6 steps with 1 and with 2 threads from the same seed give the same weights. */
static void check_thread_bits(const cm_train_config *config, const cm_data *data, size_t P) {
    cm_trainer *one = make_trainer(config, data), *two = make_trainer(config, data);
    set_threads(1);
    train_steps(one, 6);
    set_threads(2);
    train_steps(two, 6);
    int same = memcmp(trainer_params(one), trainer_params(two), P * sizeof(float)) == 0;
    printf("  weights after 6 steps with 1 and with 2 threads: %s\n",
           same ? "bit-identical" : "DIFFERENT");
    if (!same) exit(1);
    cm_trainer_free(one);
    cm_trainer_free(two);
}

/* Steps/s: median of runs of at least ~0.25 s each; *per_cpu: the median per CPU second. */
static bench_stats time_steps(cm_trainer *tr, size_t *steps_per_run, allocation_counts *counted,
                              double *per_cpu) {
    train_steps(tr, 3);
    double t0 = bench_seconds();
    train_steps(tr, 2);
    double per_step = (bench_seconds() - t0) / 2;
    size_t chunk = per_step > 0.25 ? 1 : (size_t)(0.25 / per_step) + 1;
    double rate[BENCH_MAX_RUNS], cpu_rate[BENCH_MAX_RUNS];
    allocation_counts before = allocations_now();
    for (int r = 0; r < runs; r++) {
        t0 = bench_seconds();
        double c0 = cpu_seconds();
        train_steps(tr, chunk);
        rate[r] = (double)chunk / (bench_seconds() - t0);
        cpu_rate[r] = (double)chunk / (cpu_seconds() - c0);
    }
    *counted = allocations_since(before);
    *steps_per_run = chunk;
    *per_cpu = bench_summary(cpu_rate, runs).median;
    return bench_summary(rate, runs);
}

static result bench_train(const char *name, cm_method method, const char *spec, size_t width) {
    result res;
    memset(&res, 0, sizeof res);
    cm_data *data;
    if (cm_data_open(&data, spec) != CM_OK) die(spec);
    cm_train_config config = workload_config(method, cm_data_dim(data), width);
    cm_mlp_layout layout;
    if (cm_mlp_layout_init(&layout, &config.network) != CM_OK) die("layout");
    size_t blocks = config.blocks, capacity = (config.batch + blocks - 1) / blocks;
    printf("\n%s: %s on %s, D = %zu, width %zu, depth %zu, E = %zu, batch %zu in %zu row blocks, "
           "%zu parameters\n", name, cm_method_name(method), spec, layout.dim, layout.width,
           layout.depth, layout.embed, config.batch, blocks, layout.param_count);
    cm_trainer *tr = make_trainer(&config, data);
    set_threads(1);
    validate_workload(cm_trainer_model(tr)->network, trainer_params(tr), &layout, capacity);
    check_thread_bits(&config, data, layout.param_count);

    /* one block's products: the target's forward, the student's forward and backward */
    gemm_shape step[MAX_GEMMS];
    int n_step = 0;
    mlp_gemms(step, &n_step, &layout, (int)capacity, 0);
    mlp_gemms(step, &n_step, &layout, (int)capacity, 0);
    mlp_gemms(step, &n_step, &layout, (int)capacity, 1);
    double flops = gemm_flops(step, n_step) * (double)blocks;
    printf("  %.4f GFLOP per step (%d products per row block of %zu rows)\n", flops / 1e9, n_step,
           capacity);
    print_limits_header("steps");
    for (int t = 0; t < 2; t++) {
        set_threads(thread_counts[t]);
        size_t chunk;
        allocation_counts counted;
        double per_cpu;
        bench_stats s = time_steps(tr, &chunk, &counted, &per_cpu);
        res.rate[t] = s.median;
        if (t == 0) res.per_cpu = per_cpu;
        printf("  %-7zu %9.1f [%6.1f-%6.1f] %8.1f |", thread_counts[t], s.median, s.min, s.max,
               s.median * flops / 1e9);
        limits_line(&res, t, step, n_step, (int)blocks, s.median * flops / 1e9);
        printf("| %ld, %ld (%ld) in %zu steps", counted.library, counted.all, counted.aligned,
               chunk * (size_t)runs);
        if (t == 0) printf("; %.1f steps per CPU second", per_cpu);
        printf("\n");
    }
    printf("  speed-up 1 -> 2 threads: %.2fx (oneDNN sgemm at the same shapes: %.2fx)\n",
           res.rate[1] / res.rate[0], res.limit[BENCH_ONEDNN][1] / res.limit[BENCH_ONEDNN][0]);
    cm_trainer_free(tr);
    cm_data_free(data);
    return res;
}

/* ---- workload 3: one-step sampling */

/* 64 samples (first and last 32) against the plain double evaluation of their noise. */
static void validate_samples(const cm_model *model, const cm_mlp_layout *layout, const double *out,
                             size_t n, uint64_t seed) {
    cm_rng root, stream, stage;
    cm_rng_init(&root, seed);
    cm_rng_fork(&stream, &root, CM_STREAM_SAMPLE);
    cm_rng_fork(&stage, &stream, 0);
    double sigma_max = model->config.method.sigma_max, worst = 0.0;
    cm_coefficients k = cm_model_coefficients(model, sigma_max);
    for (size_t probe = 0; probe < 64; probe++) {
        size_t i = probe < 32 ? probe : n - 64 + probe;
        cm_rng point;
        float z[2], x_in[2];
        double x[2], F[2], ref[2];
        cm_rng_fork(&point, &stage, i);
        cm_rng_normal_fill_f32(&point, z, 2);
        for (size_t d = 0; d < 2; d++) {
            x[d] = (float)(sigma_max * z[d]);
            x_in[d] = (float)(k.in * x[d]);
        }
        ref_forward_row(F, model->params, layout, x_in, (float)k.c_noise, &scratch);
        for (size_t d = 0; d < 2; d++) ref[d] = k.skip * x[d] + k.out * F[d];
        cm_transform_invert(&model->transform, ref, 1);
        for (size_t d = 0; d < 2; d++)
            worst = fmax(worst, fabs(out[i * 2 + d] - ref[d]) / (1.0 + fabs(ref[d])));
    }
    printf("  validate: 64 samples (first and last 32) vs the plain double evaluation of their "
           "noise: max |x - x_ref| / (1 + |x_ref|) = %.2e\n", worst);
    if (!(worst < 1e-4)) {
        fprintf(stderr, "bench_nn: sample validation failed\n");
        exit(1);
    }
}

static result bench_sample(size_t n) {
    result res;
    memset(&res, 0, sizeof res);
    cm_data *data;
    if (cm_data_open(&data, "moons") != CM_OK) die("moons");
    cm_train_config config = workload_config(CM_METHOD_ICT, 2, 256);
    cm_trainer *tr = make_trainer(&config, data);
    set_threads(1);
    train_steps(tr, 20);
    const cm_model *model = cm_trainer_model(tr);
    cm_mlp_layout layout;
    if (cm_mlp_layout_init(&layout, &model->config.network) != CM_OK) die("layout");
    int chunk = CM_EVALUATOR_CHUNK, blocks = CM_EVALUATOR_BLOCKS, rows = chunk / blocks;
    printf("\nsample-%zu: one-step sampling of %zu points with the ict network of workload 1 "
           "(moons, width %zu, depth %zu, E = %zu); chunks of %d rows in %d row blocks\n", n, n,
           layout.width, layout.depth, layout.embed, chunk, blocks);
    double *out = cm_malloc(n * 2, sizeof(double)), *other = cm_malloc(n * 2, sizeof(double));
    if (!out || !other) die("memory");
    uint64_t seed = 7;
    if (cm_sample(out, model, NULL, 0, n, seed) != CM_OK) die("sample");
    validate_samples(model, &layout, out, n, seed);
    set_threads(2);
    if (cm_sample(other, model, NULL, 0, n, seed) != CM_OK) die("sample");
    int same = memcmp(out, other, n * 2 * sizeof(double)) == 0;
    printf("  samples with 1 and with 2 threads: %s\n", same ? "bit-identical" : "DIFFERENT");
    if (!same) exit(1);

    gemm_shape shapes[MAX_GEMMS];
    int count = 0;
    mlp_gemms(shapes, &count, &layout, rows, 0);
    size_t chunks = (n + (size_t)chunk - 1) / (size_t)chunk;
    double flops_per_sample = gemm_flops(shapes, count) / rows;
    print_limits_header("calls");
    for (int t = 0; t < 2; t++) {
        set_threads(thread_counts[t]);
        double rate[BENCH_MAX_RUNS], cpu_rate[BENCH_MAX_RUNS];
        allocation_counts before = allocations_now();
        for (int r = 0; r < runs; r++) {
            double t0 = bench_seconds(), c0 = cpu_seconds();
            if (cm_sample(other, model, NULL, 0, n, seed) != CM_OK) die("sample");
            rate[r] = (double)n / (bench_seconds() - t0);
            cpu_rate[r] = (double)n / (cpu_seconds() - c0);
        }
        allocation_counts counted = allocations_since(before);
        bench_stats s = bench_summary(rate, runs);
        res.rate[t] = s.median;
        if (t == 0) res.per_cpu = bench_summary(cpu_rate, runs).median;
        printf("  %-7zu %9.0f [%6.0f-%6.0f] %8.1f |", thread_counts[t], s.median, s.min, s.max,
               s.median * flops_per_sample / 1e9);
        limits_line(&res, t, shapes, count, blocks, s.median * flops_per_sample / 1e9);
        printf("| %ld, %ld (%ld) in %d calls of %zu chunks", counted.library, counted.all,
               counted.aligned, runs, chunks);
        if (t == 0) printf("; %.0f samples per CPU second", res.per_cpu);
        printf("\n");
    }
    printf("  (samples/s; FLOPs counted for the %zu points asked; the sampler evaluates %zu chunks "
           "of %d rows, %.1f%% padding)\n", n, chunks, chunk,
           100.0 * ((double)chunks * chunk - (double)n) / (double)n);
    printf("  speed-up 1 -> 2 threads: %.2fx (oneDNN sgemm at the same shapes: %.2fx)\n",
           res.rate[1] / res.rate[0], res.limit[BENCH_ONEDNN][1] / res.limit[BENCH_ONEDNN][0]);
    cm_free(out), cm_free(other);
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
    result res;
    memset(&res, 0, sizeof res);
    static sweep_job j;
    for (size_t i = 0; i < SWEEP_D; i++) j.variances[i] = pow(10.0, -1.0 + 2.0 * i / (SWEEP_D - 1));
    printf("\ntheory-sweep: ideal CT for N(0, diag(l)), d = %d, l log-uniform in [0.1, 10], T = "
           "50, 100, ..., 3200 (c0 = 2, c1 = 4): the whole sweep\n", SWEEP_D);
    set_threads(1);
    cm_parallel_for(sweep_task, &j, SWEEP_T_COUNT);
    double worst = 0.0;
    for (size_t i = 0; i < SWEEP_T_COUNT; i++) {
        if (j.status[i] != CM_OK) die("cm_theory_gaussian");
        double ref = plain_w2(j.variances, sweep_T[i]);
        worst = fmax(worst, fabs(j.result[i].w2_ideal - ref) / ref);
    }
    printf("  validate: W2 of ideal CT vs the plain product of the step gains: max relative "
           "difference %.2e over the 7 T values\n", worst);
    if (!(worst < 1e-9)) {
        fprintf(stderr, "bench_nn: theory validation failed\n");
        exit(1);
    }
    printf("  %-7s %26s\n", "threads", "sweep seconds [min-max]");
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
        printf("  %-7zu %10.4f [%6.4f-%6.4f]\n", thread_counts[t], s.median, s.min, s.max);
    }
    return res;
}

/* ---- the table at the end */

static void print_summary(const char *const *names, const result *results, size_t count) {
    printf("\nsummary: rate (steps/s, samples/s, sweeps/s) and fraction of the sgemm rate at the "
           "workload's shapes, same run, same thread count\n");
    printf("%-22s %10s %10s %8s | %-17s | %-17s | %-17s | %s\n", "workload", "1 thread",
           "2 threads", "speed-up", "of oneDNN 1 / 2", "of OpenBLAS 1 / 2", "oneDNN sgemm 1->2",
           "1 thread per CPU s");
    for (size_t i = 0; i < count; i++) {
        const result *r = &results[i];
        printf("%-22s %10.1f %10.1f %7.2fx", names[i], r->rate[0], r->rate[1],
               r->rate[1] / r->rate[0]);
        if (r->limit[BENCH_ONEDNN][0] > 0)
            printf(" | %6.0f%% / %5.0f%% | %6.0f%% / %5.0f%% | %16.2fx | %.1f\n",
                   100 * r->fraction[BENCH_ONEDNN][0], 100 * r->fraction[BENCH_ONEDNN][1],
                   100 * r->fraction[BENCH_OPENBLAS][0], 100 * r->fraction[BENCH_OPENBLAS][1],
                   r->limit[BENCH_ONEDNN][1] / r->limit[BENCH_ONEDNN][0], r->per_cpu);
        else
            printf(" | %17s | %17s | %17s | -\n", "-", "-", "-");
    }
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    runs = argc > 1 ? atoi(argv[1]) : 5;
    const char *filter = argc > 2 ? argv[2] : "";
    if (runs < 1 || runs > BENCH_MAX_RUNS) {
        fprintf(stderr, "usage: bench_nn [RUNS (1..%d) [FILTER]]\n", BENCH_MAX_RUNS);
        return 2;
    }
    char cpu[256], load[64];
    bench_cpu_name(cpu, sizeof cpu);
    bench_print_command(argc, argv);
    bench_load_average(load, sizeof load);
    const dnnl_version_t *version = dnnl_version();
    printf("machine: %s, %ld cores online, load average %s; OpenBLAS kernel %s; oneDNN %d.%d.%d "
           "ISA %s (ONEDNN_MAX_CPU_ISA=%s); medians of %d runs [min-max]\n", cpu,
           sysconf(_SC_NPROCESSORS_ONLN), load, openblas_get_corename(), version->major,
           version->minor, version->patch, bench_onednn_isa(),
           getenv("ONEDNN_MAX_CPU_ISA") ? getenv("ONEDNN_MAX_CPU_ISA") : "(unset)", runs);
    if (filter[0] == '\0') square_gemm(2048);
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
        {"train-ict-fmnist-d=784", CM_METHOD_ICT, "fashion-mnist", 512},
    };
    size_t count = sizeof workloads / sizeof workloads[0];
    result results[10];
    const char *names[10];
    size_t done = 0;
    for (size_t w = 0; w < count; w++) {
        if (!strstr(workloads[w].name, filter)) continue;
        names[done] = workloads[w].name;
        results[done++] = bench_train(workloads[w].name, workloads[w].method, workloads[w].spec,
                                      workloads[w].width);
    }
    if (strstr("sample-100000", filter)) {
        names[done] = "sample-100000";
        results[done++] = bench_sample(100000);
    }
    if (strstr("theory-sweep", filter)) {
        names[done] = "theory-sweep";
        results[done++] = bench_theory();
    }
    print_summary(names, results, done);
    bench_load_average(load, sizeof load);
    printf("(speed-up 1 -> 2 threads beside the oneDNN sgemm rate's own gain from the second "
           "thread in this run: how much of a second core the machine gave; load average at the "
           "end %s)\n", load);
    return 0;
}
