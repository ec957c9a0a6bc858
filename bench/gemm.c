/* bench/gemm.c: float products and convolutions through oneDNN beside OpenBLAS
 * (docs/performance.md, "oneDNN").
 *
 * 1. gemm: GFLOP/s of OpenBLAS's cblas_sgemm, oneDNN's dnnl_sgemm and oneDNN's matmul primitive
 *    made for the shape (cm_matmul, src/nn/matmul.h: what the MLP runs) at the network's shapes
 *    and a few others, with 1 thread; the two sgemm also with 2 threads (our pool, 2 row blocks,
 *    each a single-threaded product). Validated first: 8 entries of each product against plain
 *    double dot products within gamma_{K+3} sum |a b|; whether the 2-block product has the bits
 *    of the one product is printed (rows may depend on M), and the allocations per product.
 * 2. fused: one forward layer act = silu(inp W^T + bias), 1 thread: cm_matmul then the MLP's
 *    bias + SiLU pass, against the matmul with the bias fused, and with bias and the swish
 *    (= SiLU) post-op fused; bits of each compared.
 * 3. conv: oneDNN's convolution primitive, forward, backward-data and backward-weights, at the
 *    3x3 shapes of a small U-Net on 28x28 images, batch 128, NCHW (and oneDNN's own blocked
 *    layout, reorders not timed), 1 thread and 2 (two half batches on our pool), each beside
 *    dnnl_sgemm at the im2col shape of 8 images (the ratio to it). NCHW results validated at
 *    sampled entries.
 * Allocations are counted by interposing glibc's allocation functions (bench/allocations.h).
 * Usage: make bench-gemm  or  build/bench_gemm [RUNS [FILTER]]  (FILTER: "gemm", "fused",
 * "conv", or a substring of a case's name).
 */
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <oneapi/dnnl/dnnl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "allocations.h"
#include "bench.h"
#include "cm/alloc.h"
#include "cm/parallel.h"
#include "cm/rng.h"
#include "nn/layers.h"
#include "nn/matmul.h"
#include "sgemm.h"

static int runs = 5;

static void die(const char *what) {
    fprintf(stderr, "bench_gemm: %s\n", what);
    exit(1);
}

#define DNNL_OK(expression)                                                              \
    do {                                                                                 \
        dnnl_status_t dnnl_status_ = (expression);                                       \
        if (dnnl_status_ != dnnl_success) {                                              \
            fprintf(stderr, "bench_gemm: %s failed (status %d)\n", #expression,          \
                    (int)dnnl_status_);                                                  \
            exit(1);                                                                     \
        }                                                                                \
    } while (0)

static void set_threads(size_t threads) {
    if (cm_parallel_set_threads(threads) != CM_OK) die("cannot start the pool's threads");
}

static float *random_floats(size_t n, uint64_t seed) {
    float *x = cm_malloc(n ? n : 1, sizeof(float));
    if (!x) die("out of memory");
    cm_rng rng;
    cm_rng_init(&rng, seed);
    cm_rng_normal_fill_f32(&rng, x, n);
    return x;
}

/* GFLOP/s of body(context) (flops per call): two warm-up calls (oneDNN generates its kernels on
 * first use), then runs of at least ~0.2 s each; median, min, max. */
typedef void (*bench_body)(void *context);
static bench_stats time_rate(bench_body body, void *context, double flops) {
    body(context);
    double t0 = bench_seconds();
    body(context);
    double once = bench_seconds() - t0;
    int repeat = once > 0.2 ? 1 : (int)(0.2 / (once > 1e-7 ? once : 1e-7)) + 1;
    double rate[BENCH_MAX_RUNS];
    for (int r = 0; r < runs; r++) {
        t0 = bench_seconds();
        for (int k = 0; k < repeat; k++) body(context);
        rate[r] = flops * repeat / (bench_seconds() - t0) / 1e9;
    }
    return bench_summary(rate, runs);
}

/* ================================================================ 1. GEMM */

typedef struct {
    const char *name;
    int trans_a, trans_b;
    size_t M, N, K; /* row-major C[M,N] = op(A)[M,K] op(B)[K,N] */
} gemm_case;

static const gemm_case gemm_cases[] = {
    {"mlp forward W 256 (inp W^T)", 0, 1, 512, 256, 256},
    {"mlp dinp = dout W, W 256", 0, 0, 512, 256, 256},
    {"mlp dW = dout^T inp, W 256", 1, 0, 256, 256, 512},
    {"first layer K = 2", 0, 1, 512, 256, 2},
    {"output layer N = 2", 0, 1, 512, 2, 256},
    {"sampling chunk 10000 rows", 0, 1, 10000, 256, 256},
    {"d=784 first layer forward", 0, 1, 512, 512, 784},
    {"d=784 output layer forward", 0, 1, 512, 784, 512},
    {"d=784 output dinp", 0, 0, 512, 512, 784},
    {"d=784 output dW", 1, 0, 784, 512, 512},
    {"im2col 3x3 32->32, 8 images", 0, 0, 6272, 32, 288},
    {"square 2048", 0, 0, 2048, 2048, 2048},
};

enum { LIB_OPENBLAS, LIB_SGEMM, LIB_MATMUL, LIBS }; /* cblas_sgemm, dnnl_sgemm, cm_matmul */
static const char *const lib_names[LIBS] = {"cblas_sgemm", "dnnl_sgemm", "cm_matmul"};

/* A cm_matmul with its own engine, stream and scratchpad. */
typedef struct {
    cm_onednn onednn;
    cm_matmul matmul;
    void *scratchpad;
} matmul_plan;

static void matmul_plan_make(matmul_plan *p, int trans_a, int trans_b, size_t M, size_t N,
                             size_t K, int bias) {
    *p = (matmul_plan){0};
    if (cm_onednn_create(&p->onednn) != CM_OK ||
        cm_matmul_create(&p->matmul, &p->onednn, trans_a, trans_b, M, N, K, bias) != CM_OK)
        die(cm_error_detail());
    size_t bytes = cm_matmul_scratchpad_bytes(&p->matmul);
    if (!(p->scratchpad = cm_malloc(bytes + 64, 1))) die("out of memory");
    if (cm_matmul_bind_scratchpad(&p->matmul,
                                  (void *)(((uintptr_t)p->scratchpad + 63) / 64 * 64)) != CM_OK)
        die(cm_error_detail());
}

static void matmul_plan_free(matmul_plan *p) {
    cm_matmul_destroy(&p->matmul);
    cm_onednn_destroy(&p->onednn);
    cm_free(p->scratchpad);
}

typedef struct {
    const gemm_case *g;
    int library;
    size_t blocks; /* row blocks, one pool task each (cm_matmul: 1) */
    const float *a, *b;
    float *c;
    matmul_plan *plan; /* LIB_MATMUL */
} gemm_job;

static size_t lda_of(const gemm_case *g) { return g->trans_a ? g->M : g->K; }
static size_t ldb_of(const gemm_case *g) { return g->trans_b ? g->K : g->N; }

static void gemm_block(void *context, size_t block) {
    const gemm_job *j = context;
    const gemm_case *g = j->g;
    if (j->library == LIB_MATMUL) {
        cm_matmul_run(&j->plan->matmul, j->c, j->a, j->b, NULL);
        return;
    }
    size_t first, end, lda = lda_of(g), ldb = ldb_of(g);
    cm_parallel_range(&first, &end, g->M, block, j->blocks);
    const float *a = j->a + (g->trans_a ? first : first * lda);
    if (bench_sgemm(j->library == LIB_SGEMM ? BENCH_ONEDNN : BENCH_OPENBLAS, g->trans_a,
                    g->trans_b, (int)(end - first), (int)g->N, (int)g->K, a, (int)lda, j->b,
                    (int)ldb, j->c + first * g->N, (int)g->N))
        die("dnnl_sgemm failed");
}

static void gemm_body(void *context) {
    gemm_job *j = context;
    cm_parallel_for(gemm_block, j, j->blocks);
}

/* 8 entries of C against plain double dot products: |C - sum| <= gamma_{K+3} sum |a b|. */
static void check_entries(const gemm_case *g, const float *a, const float *b, const float *c,
                          const char *library) {
    const double u = 0x1p-24, n = (double)g->K + 3.0, gamma = n * u / (1.0 - n * u);
    for (size_t probe = 0; probe < 8; probe++) {
        size_t i = (probe * 7919 + probe / 2) % g->M, j = (probe * 104729 + 3 * probe) % g->N;
        double sum = 0.0, magnitude = 0.0;
        for (size_t k = 0; k < g->K; k++) {
            double x = g->trans_a ? a[k * lda_of(g) + i] : a[i * lda_of(g) + k];
            double y = g->trans_b ? b[j * ldb_of(g) + k] : b[k * ldb_of(g) + j];
            sum += x * y;
            magnitude += fabs(x * y);
        }
        if (!(fabs(c[i * g->N + j] - sum) <= gamma * magnitude + 0x1p-126)) {
            fprintf(stderr, "%s: %s at (%zu, %zu): %.9g vs %.9g\n", g->name, library, i, j,
                    (double)c[i * g->N + j], sum);
            exit(1);
        }
    }
}

/* Validate the three, count their allocations per product, then time them. */
static void bench_gemm_case(const gemm_case *g) {
    size_t na = g->M * g->K, nb = g->K * g->N, nc = g->M * g->N;
    float *a = random_floats(na, 1), *b = random_floats(nb, 2), *c = random_floats(nc, 3);
    float *whole = random_floats(nc, 4);
    double flops = 2.0 * (double)g->M * (double)g->N * (double)g->K;
    int same_bits[2];
    long aligned[LIBS], all[LIBS];
    matmul_plan plan;
    matmul_plan_make(&plan, g->trans_a, g->trans_b, g->M, g->N, g->K, 0);
    set_threads(1);
    for (int library = 0; library < LIBS; library++) {
        gemm_job one = {g, library, 1, a, b, whole, &plan}, two = {g, library, 2, a, b, c, &plan};
        gemm_body(&one);
        long before_aligned = atomic_load(&bench_allocations_aligned);
        long before_all = atomic_load(&bench_allocations_all);
        gemm_body(&one);
        aligned[library] = atomic_load(&bench_allocations_aligned) - before_aligned;
        all[library] = atomic_load(&bench_allocations_all) - before_all;
        check_entries(g, a, b, whole, lib_names[library]);
        if (library == LIB_MATMUL) continue;
        gemm_body(&two); /* the two row blocks one after the other */
        same_bits[library] = memcmp(whole, c, nc * sizeof(float)) == 0;
    }
    bench_stats rate[2][LIBS];
    for (size_t threads = 1; threads <= 2; threads++) {
        set_threads(threads);
        for (int library = 0; library < (threads == 1 ? LIBS : LIB_MATMUL); library++) {
            gemm_job j = {g, library, threads, a, b, c, &plan};
            rate[threads - 1][library] = time_rate(gemm_body, &j, flops);
        }
    }
    set_threads(1);
    printf("%-30s %c%c %5zux%4zux%4zu |", g->name, g->trans_a ? 'T' : 'N',
           g->trans_b ? 'T' : 'N', g->M, g->N, g->K);
    for (int library = 0; library < LIBS; library++)
        printf(" %6.1f [%5.1f-%5.1f]", rate[0][library].median, rate[0][library].min,
               rate[0][library].max);
    printf(" |");
    for (int library = 0; library < LIB_MATMUL; library++)
        printf(" %6.1f [%5.1f-%5.1f]", rate[1][library].median, rate[1][library].min,
               rate[1][library].max);
    printf(" | %s %s | %ld/%ld %ld/%ld %ld/%ld | %s\n", same_bits[0] ? "yes" : "NO ",
           same_bits[1] ? "yes" : "NO ", aligned[0], all[0], aligned[1], all[1], aligned[2],
           all[2], cm_matmul_implementation(&plan.matmul));
    matmul_plan_free(&plan);
    cm_free(a), cm_free(b), cm_free(c), cm_free(whole);
}

/* Cost of the thread pin around every oneDNN call (read the caller's OpenMP count, set 1,
 * restore). */
static void pin_cost(void) {
    enum { REPEAT = 1000000 };
    omp_set_num_threads(2);
    double t0 = bench_seconds();
    for (int r = 0; r < REPEAT; r++) bench_pin_end(bench_pin_begin());
    double each = (bench_seconds() - t0) / REPEAT;
    printf("pin: omp_get_max_threads + 2 omp_set_num_threads = %.1f ns per product\n", 1e9 * each);
}

static void bench_gemm(const char *filter) {
    printf("\n== 1. GEMM, GFLOP/s: 1 thread: OpenBLAS cblas_sgemm, oneDNN dnnl_sgemm, oneDNN "
           "matmul primitive made for the shape (cm_matmul) | 2 threads (our pool, 2 row "
           "blocks): cblas_sgemm, dnnl_sgemm\n");
    printf("   then: 2 row blocks give the bits of one product (cblas_sgemm, dnnl_sgemm) | "
           "allocations per product, posix_memalign/all (cblas_sgemm, dnnl_sgemm, cm_matmul) | "
           "the matmul's implementation\n");
    pin_cost();
    for (size_t i = 0; i < sizeof gemm_cases / sizeof gemm_cases[0]; i++)
        if (strstr("gemm", filter) || strstr(gemm_cases[i].name, filter)) bench_gemm_case(&gemm_cases[i]);
}

/* ================================================================ 2. fused layer */

typedef struct {
    const char *name;
    size_t M, N, K; /* act[M,N] = silu(inp[M,K] W[N,K]^T + bias[N]) */
} layer_case;

static const layer_case layer_cases[] = {
    {"hidden W 256", 512, 256, 256},
    {"first d=2 W 256 (K = 2 + 64)", 512, 256, 66},
    {"hidden W 512", 512, 512, 512},
    {"first d=784 W 512 (K = 784 + 64)", 512, 512, 848},
    {"sampling chunk hidden W 256", 10000, 256, 256},
};

typedef struct {
    const layer_case *l;
    const float *inp, *weight, *bias;
    float *pre, *act;
    matmul_plan *plan;       /* cm_matmul, without or with the bias */
    dnnl_primitive_t matmul; /* bias and swish fused */
    dnnl_stream_t stream;
    dnnl_exec_arg_t args[5];
    int arg_count;
} layer_job;

static void layer_product_only(void *context) {
    layer_job *j = context;
    cm_matmul_run(&j->plan->matmul, j->pre, j->inp, j->weight, j->plan->matmul.bias ? j->bias : NULL);
}

/* The MLP's forward layer (mlp_template.h): the product, then one pass that adds the bias,
 * stores the pre-activation and its SiLU. */
static void layer_product_bias_silu(void *context) {
    layer_job *j = context;
    layer_product_only(j);
    cm_bias_silu_forward(j->act, j->pre, j->bias, (int)j->l->M, (int)j->l->N);
}

/* The bias in the product, then SiLU alone. */
static void layer_product_silu(void *context) {
    layer_job *j = context;
    layer_product_only(j);
    cm_silu_forward(j->act, j->pre, (int)(j->l->M * j->l->N));
}

static void layer_matmul(void *context) {
    layer_job *j = context;
    int saved = bench_pin_begin();
    DNNL_OK(dnnl_primitive_execute(j->matmul, j->stream, j->arg_count, j->args));
    DNNL_OK(dnnl_stream_wait(j->stream));
    bench_pin_end(saved);
}

static dnnl_memory_t user_memory(const dnnl_memory_desc_t *md, dnnl_engine_t engine, void *data) {
    dnnl_memory_t memory;
    DNNL_OK(dnnl_memory_create(&memory, md, engine, data));
    return memory;
}

/* The matmul primitive dst = src W^T + bias (swish: then x sigmoid(x)), scratchpad in the
 * caller's memory (*scratch, allocated here): execution allocates nothing. */
static dnnl_primitive_t make_matmul(layer_job *j, dnnl_engine_t engine, int swish, float *dst,
                                    float **scratch, const char **impl) {
    const layer_case *l = j->l;
    dnnl_memory_desc_t src_md, weight_md, bias_md, dst_md;
    dnnl_dims_t src_dims = {(dnnl_dim_t)l->M, (dnnl_dim_t)l->K};
    dnnl_dims_t weight_dims = {(dnnl_dim_t)l->K, (dnnl_dim_t)l->N};
    dnnl_dims_t bias_dims = {1, (dnnl_dim_t)l->N}, dst_dims = {(dnnl_dim_t)l->M, (dnnl_dim_t)l->N};
    DNNL_OK(dnnl_memory_desc_init_by_tag(&src_md, 2, src_dims, dnnl_f32, dnnl_ab));
    DNNL_OK(dnnl_memory_desc_init_by_tag(&weight_md, 2, weight_dims, dnnl_f32, dnnl_ba)); /* W[N,K] */
    DNNL_OK(dnnl_memory_desc_init_by_tag(&bias_md, 2, bias_dims, dnnl_f32, dnnl_ab));
    DNNL_OK(dnnl_memory_desc_init_by_tag(&dst_md, 2, dst_dims, dnnl_f32, dnnl_ab));
    dnnl_matmul_desc_t desc;
    DNNL_OK(dnnl_matmul_desc_init(&desc, &src_md, &weight_md, &bias_md, &dst_md));
    dnnl_primitive_attr_t attr;
    DNNL_OK(dnnl_primitive_attr_create(&attr));
    DNNL_OK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    dnnl_post_ops_t post_ops;
    DNNL_OK(dnnl_post_ops_create(&post_ops));
    if (swish) DNNL_OK(dnnl_post_ops_append_eltwise(post_ops, 1.0f, dnnl_eltwise_swish, 1.0f, 0.0f));
    DNNL_OK(dnnl_primitive_attr_set_post_ops(attr, post_ops));
    dnnl_primitive_desc_t pd;
    int saved = bench_pin_begin(); /* a primitive fixes its thread count when it is created */
    DNNL_OK(dnnl_primitive_desc_create(&pd, &desc, attr, engine, NULL));
    bench_pin_end(saved);
    DNNL_OK(dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, (void *)impl));
    const dnnl_memory_desc_t *scratch_md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t scratch_bytes = scratch_md ? dnnl_memory_desc_get_size(scratch_md) : 0;
    *scratch = cm_malloc(scratch_bytes / sizeof(float) + 1, sizeof(float)); /* 16-byte aligned */
    if (!*scratch) die("out of memory");
    dnnl_primitive_t primitive;
    saved = bench_pin_begin();
    DNNL_OK(dnnl_primitive_create(&primitive, pd));
    bench_pin_end(saved);
    j->arg_count = 0;
    j->args[j->arg_count++] = (dnnl_exec_arg_t){DNNL_ARG_SRC, user_memory(&src_md, engine, (void *)j->inp)};
    j->args[j->arg_count++] = (dnnl_exec_arg_t){DNNL_ARG_WEIGHTS, user_memory(&weight_md, engine, (void *)j->weight)};
    j->args[j->arg_count++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, user_memory(&bias_md, engine, (void *)j->bias)};
    j->args[j->arg_count++] = (dnnl_exec_arg_t){DNNL_ARG_DST, user_memory(&dst_md, engine, dst)};
    if (scratch_bytes)
        j->args[j->arg_count++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, user_memory(scratch_md, engine, *scratch)};
    /* (the primitive keeps what it needs of the descriptor and attributes) */
    DNNL_OK(dnnl_primitive_desc_destroy(pd));
    DNNL_OK(dnnl_post_ops_destroy(post_ops));
    DNNL_OK(dnnl_primitive_attr_destroy(attr));
    return primitive;
}

static void free_matmul(layer_job *j) {
    for (int a = 0; a < j->arg_count; a++) DNNL_OK(dnnl_memory_destroy(j->args[a].memory));
    DNNL_OK(dnnl_primitive_destroy(j->matmul));
}

static double max_abs(const float *x, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(x[i]));
    return m;
}

static double max_difference(const float *x, const float *y, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs((double)x[i] - y[i]));
    return m;
}

/* Which variant, its GFLOP/s (2 M N K per call) and microseconds per call. */
static void print_layer_rate(const char *variant, bench_stats s, double flops) {
    printf("    %-42s %7.1f GFLOP/s [%6.1f-%6.1f] %9.1f us\n", variant, s.median, s.min, s.max,
           1e6 * flops / (s.median * 1e9));
}

static void bench_layer_case(const layer_case *l, dnnl_engine_t engine, dnnl_stream_t stream) {
    size_t n = l->M * l->N;
    double flops = 2.0 * (double)l->M * (double)l->N * (double)l->K;
    float *inp = random_floats(l->M * l->K, 5), *weight = random_floats(l->N * l->K, 6);
    float *bias = random_floats(l->N, 7);
    float *pre = random_floats(n, 8), *act = random_floats(n, 9);
    float *pre_biased = random_floats(n, 10), *act_biased = random_floats(n, 11);
    float *act_fused = random_floats(n, 12), *act_again = random_floats(n, 13), *scratch;
    const char *impl;
    matmul_plan plain, with_bias;
    matmul_plan_make(&plain, 0, 1, l->M, l->N, l->K, 0);
    matmul_plan_make(&with_bias, 0, 1, l->M, l->N, l->K, 1);
    layer_job ours = {l, inp, weight, bias, pre, act, &plain, NULL, stream, {{0}}, 0};
    layer_job biased = ours, fused = ours;
    biased.pre = pre_biased, biased.act = act_biased, biased.plan = &with_bias;
    fused.matmul = make_matmul(&fused, engine, 1, act_fused, &scratch, &impl);
    /* bits: ours, the product with the bias, the fused output (twice) */
    layer_product_bias_silu(&ours);
    layer_product_silu(&biased);
    layer_matmul(&fused);
    memcpy(act_again, act_fused, n * sizeof(float));
    long before = atomic_load(&bench_allocations_aligned);
    layer_matmul(&fused);
    long allocations = atomic_load(&bench_allocations_aligned) - before;
    printf("  %s: M %zu, N %zu, K %zu; implementations %s (cm_matmul), %s (bias + swish)\n",
           l->name, l->M, l->N, l->K, cm_matmul_implementation(&plain.matmul), impl);
    printf("    bits: product with the bias %s ours (max |diff| %.2g), its act %s; fused act vs "
           "ours: max |diff| / max |act| = %.2g; fused twice: %s; posix_memalign per fused call: "
           "%ld\n", memcmp(pre, pre_biased, n * sizeof(float)) == 0 ? "==" : "!=",
           max_difference(pre, pre_biased, n),
           memcmp(act, act_biased, n * sizeof(float)) == 0 ? "==" : "!=",
           max_difference(act, act_fused, n) / max_abs(act, n),
           memcmp(act_fused, act_again, n * sizeof(float)) == 0 ? "same bits" : "OTHER BITS",
           allocations);
    print_layer_rate("cm_matmul alone", time_rate(layer_product_only, &ours, flops), flops);
    print_layer_rate("cm_matmul + bias and SiLU pass (the MLP)",
                     time_rate(layer_product_bias_silu, &ours, flops), flops);
    print_layer_rate("cm_matmul(bias) + cm_silu_forward", time_rate(layer_product_silu, &biased, flops),
                     flops);
    print_layer_rate("matmul(bias, swish) fused", time_rate(layer_matmul, &fused, flops), flops);
    free_matmul(&fused);
    matmul_plan_free(&plain), matmul_plan_free(&with_bias);
    cm_free(inp), cm_free(weight), cm_free(bias), cm_free(pre), cm_free(act), cm_free(pre_biased);
    cm_free(act_biased), cm_free(act_fused), cm_free(act_again), cm_free(scratch);
}

static void bench_fused(const char *filter, dnnl_engine_t engine, dnnl_stream_t stream) {
    printf("\n== 2. one forward layer act = silu(inp W^T + bias), 1 thread (GFLOP/s count the "
           "product only)\n");
    set_threads(1);
    for (size_t i = 0; i < sizeof layer_cases / sizeof layer_cases[0]; i++)
        if (strstr("fused", filter) || strstr(layer_cases[i].name, filter))
            bench_layer_case(&layer_cases[i], engine, stream);
}

/* ================================================================ 3. convolutions */

typedef struct {
    const char *name;
    int IC, OC, H, W, stride; /* 3x3, padding 1 */
} conv_case;

static const conv_case conv_cases[] = {
    {"3x3 32->32 at 28x28", 32, 32, 28, 28, 1},
    {"3x3 64->64 at 14x14", 64, 64, 14, 14, 1},
    {"3x3 32->64 at 14x14", 32, 64, 14, 14, 1},
    {"3x3 stride 2 32->32 28->14", 32, 32, 28, 28, 2},
};

enum { CONV_BATCH = 128, CONV_KINDS = 3 }; /* forward, backward-data, backward-weights */
static const char *const conv_kind_names[CONV_KINDS] = {"forward", "backward-data", "backward-weights"};

static int conv_out(const conv_case *c, int size) { return (size + 2 - 3) / c->stride + 1; }

/* One batch size's three primitives, and per task the buffers they run on. */
typedef struct {
    dnnl_primitive_t primitive[CONV_KINDS];
    const char *impl[CONV_KINDS];
    dnnl_memory_desc_t src_md, weight_md, dst_md; /* the forward's (the backward ones agree for
                                                     NCHW; for "any", each has its own below) */
    dnnl_memory_desc_t md[CONV_KINDS][3];          /* per kind: its three tensors */
    size_t scratch_bytes[CONV_KINDS];
} conv_plan;

typedef struct {
    float *tensor[CONV_KINDS][3]; /* forward: src, weights, dst; backward-data: diff_src,
                                     weights, diff_dst; backward-weights: src, diff_weights,
                                     diff_dst */
    float *scratch[CONV_KINDS];
    dnnl_exec_arg_t args[CONV_KINDS][4];
    dnnl_stream_t stream;
} conv_buffers;

static const int conv_arg_ids[CONV_KINDS][3] = {
    {DNNL_ARG_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DST},
    {DNNL_ARG_DIFF_SRC, DNNL_ARG_WEIGHTS, DNNL_ARG_DIFF_DST},
    {DNNL_ARG_SRC, DNNL_ARG_DIFF_WEIGHTS, DNNL_ARG_DIFF_DST},
};
static const dnnl_query_t conv_queries[CONV_KINDS][3] = {
    {dnnl_query_src_md, dnnl_query_weights_md, dnnl_query_dst_md},
    {dnnl_query_diff_src_md, dnnl_query_weights_md, dnnl_query_diff_dst_md},
    {dnnl_query_src_md, dnnl_query_diff_weights_md, dnnl_query_diff_dst_md},
};

/* The three primitives for `batch` images; blocked = let oneDNN choose the layouts. */
static void make_conv_plan(conv_plan *out, const conv_case *c, int batch, int blocked,
                           dnnl_engine_t engine) {
    dnnl_dims_t src_dims = {batch, c->IC, c->H, c->W}, weight_dims = {c->OC, c->IC, 3, 3};
    dnnl_dims_t dst_dims = {batch, c->OC, conv_out(c, c->H), conv_out(c, c->W)};
    dnnl_dims_t strides = {c->stride, c->stride}, padding = {1, 1};
    DNNL_OK(dnnl_memory_desc_init_by_tag(&out->src_md, 4, src_dims, dnnl_f32,
                                         blocked ? dnnl_format_tag_any : dnnl_nchw));
    DNNL_OK(dnnl_memory_desc_init_by_tag(&out->weight_md, 4, weight_dims, dnnl_f32,
                                         blocked ? dnnl_format_tag_any : dnnl_oihw));
    DNNL_OK(dnnl_memory_desc_init_by_tag(&out->dst_md, 4, dst_dims, dnnl_f32,
                                         blocked ? dnnl_format_tag_any : dnnl_nchw));
    dnnl_convolution_desc_t desc[CONV_KINDS];
    DNNL_OK(dnnl_convolution_forward_desc_init(&desc[0], dnnl_forward_training, dnnl_convolution_direct,
                                               &out->src_md, &out->weight_md, NULL, &out->dst_md,
                                               strides, padding, padding));
    DNNL_OK(dnnl_convolution_backward_data_desc_init(&desc[1], dnnl_convolution_direct, &out->src_md,
                                                     &out->weight_md, &out->dst_md, strides,
                                                     padding, padding));
    DNNL_OK(dnnl_convolution_backward_weights_desc_init(&desc[2], dnnl_convolution_direct,
                                                        &out->src_md, &out->weight_md, NULL,
                                                        &out->dst_md, strides, padding, padding));
    dnnl_primitive_attr_t attr;
    DNNL_OK(dnnl_primitive_attr_create(&attr));
    DNNL_OK(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user));
    dnnl_primitive_desc_t pd[CONV_KINDS];
    int saved = bench_pin_begin(); /* a primitive fixes its thread count when it is created */
    DNNL_OK(dnnl_primitive_desc_create(&pd[0], &desc[0], attr, engine, NULL));
    for (int k = 1; k < CONV_KINDS; k++)
        DNNL_OK(dnnl_primitive_desc_create(&pd[k], &desc[k], attr, engine, pd[0]));
    bench_pin_end(saved);
    for (int k = 0; k < CONV_KINDS; k++) {
        DNNL_OK(dnnl_primitive_desc_query(pd[k], dnnl_query_impl_info_str, 0, (void *)&out->impl[k]));
        for (int t = 0; t < 3; t++) out->md[k][t] = *dnnl_primitive_desc_query_md(pd[k], conv_queries[k][t], 0);
        const dnnl_memory_desc_t *scratch_md = dnnl_primitive_desc_query_md(pd[k], dnnl_query_scratchpad_md, 0);
        out->scratch_bytes[k] = scratch_md ? dnnl_memory_desc_get_size(scratch_md) : 0;
        saved = bench_pin_begin();
        DNNL_OK(dnnl_primitive_create(&out->primitive[k], pd[k]));
        bench_pin_end(saved);
        DNNL_OK(dnnl_primitive_desc_destroy(pd[k]));
    }
    DNNL_OK(dnnl_primitive_attr_destroy(attr));
}

static void free_conv_plan(conv_plan *p) {
    for (int k = 0; k < CONV_KINDS; k++) DNNL_OK(dnnl_primitive_destroy(p->primitive[k]));
}

static void make_conv_buffers(conv_buffers *out, const conv_plan *p, dnnl_engine_t engine, uint64_t seed) {
    DNNL_OK(dnnl_stream_create(&out->stream, engine, dnnl_stream_default_flags));
    for (int k = 0; k < CONV_KINDS; k++) {
        for (int t = 0; t < 3; t++) {
            size_t bytes = dnnl_memory_desc_get_size(&p->md[k][t]);
            out->tensor[k][t] = random_floats(bytes / sizeof(float), seed + 3 * (uint64_t)k + (uint64_t)t);
            out->args[k][t] = (dnnl_exec_arg_t){conv_arg_ids[k][t],
                                                user_memory(&p->md[k][t], engine, out->tensor[k][t])};
        }
        out->scratch[k] = cm_malloc(p->scratch_bytes[k] / sizeof(float) + 1, sizeof(float));
        if (!out->scratch[k]) die("out of memory");
        dnnl_memory_desc_t scratch_md;
        dnnl_dims_t bytes = {(dnnl_dim_t)(p->scratch_bytes[k] ? p->scratch_bytes[k] : 1)};
        DNNL_OK(dnnl_memory_desc_init_by_tag(&scratch_md, 1, bytes, dnnl_u8, dnnl_a));
        out->args[k][3] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, user_memory(&scratch_md, engine, out->scratch[k])};
    }
}

static void free_conv_buffers(conv_buffers *b) {
    for (int k = 0; k < CONV_KINDS; k++) {
        for (int a = 0; a < 4; a++) DNNL_OK(dnnl_memory_destroy(b->args[k][a].memory));
        for (int t = 0; t < 3; t++) cm_free(b->tensor[k][t]);
        cm_free(b->scratch[k]);
    }
    DNNL_OK(dnnl_stream_destroy(b->stream));
}

static void run_conv(const conv_plan *p, conv_buffers *b, int kind) {
    int saved = bench_pin_begin();
    DNNL_OK(dnnl_primitive_execute(p->primitive[kind], b->stream, 4, b->args[kind]));
    DNNL_OK(dnnl_stream_wait(b->stream));
    bench_pin_end(saved);
}

typedef struct {
    const conv_plan *plan;
    conv_buffers *buffers; /* one per task */
    int kind;
    size_t tasks;
    float *weight_sum; /* backward-weights with 2 tasks: the two halves' sum */
    size_t weight_count;
} conv_job;

static void conv_task(void *context, size_t task) {
    conv_job *j = context;
    run_conv(j->plan, &j->buffers[task], j->kind);
}

static void conv_body(void *context) {
    conv_job *j = context;
    cm_parallel_for(conv_task, j, j->tasks);
    if (j->kind == 2 && j->tasks == 2) /* per-half weight gradients, added in task order */
        for (size_t i = 0; i < j->weight_count; i++)
            j->weight_sum[i] = j->buffers[0].tensor[2][1][i] + j->buffers[1].tensor[2][1][i];
}

/* Value of the NCHW tensor x[n][c][h][w] or 0 outside (padding). */
static double at(const float *x, int C, int H, int W, int n, int c, int h, int w) {
    if (h < 0 || h >= H || w < 0 || w >= W) return 0.0;
    return x[(((size_t)n * C + c) * H + h) * W + w];
}

/* 16 sampled entries of each NCHW result against direct double sums within gamma_{K+3} sum |x y|. */
static void check_conv(const conv_case *c, const conv_buffers *b) {
    int OH = conv_out(c, c->H), OW = conv_out(c, c->W), s = c->stride;
    const float *src = b->tensor[0][0], *weight = b->tensor[0][1], *dst = b->tensor[0][2];
    const float *diff_src = b->tensor[1][0], *diff_dst = b->tensor[1][2];
    const float *src_w = b->tensor[2][0], *diff_weight = b->tensor[2][1], *diff_dst_w = b->tensor[2][2];
    const double u = 0x1p-24;
    for (int probe = 0; probe < 16; probe++) {
        int n = (probe * 37) % CONV_BATCH, oc = (probe * 7) % c->OC, ic = (probe * 5) % c->IC;
        int oh = (probe * 11) % OH, ow = (probe * 13) % OW, ih = (probe * 3) % c->H, iw = (probe * 17) % c->W;
        int kh = probe % 3, kw = (probe / 3) % 3;
        double sum[3] = {0, 0, 0}, magnitude[3] = {0, 0, 0}, count[3] = {0, 0, 0};
        for (int i = 0; i < c->IC; i++) /* forward: dst[n][oc][oh][ow] */
            for (int y = 0; y < 3; y++)
                for (int x = 0; x < 3; x++) {
                    double term = at(src, c->IC, c->H, c->W, n, i, oh * s - 1 + y, ow * s - 1 + x) *
                                  weight[((size_t)oc * c->IC + i) * 9 + y * 3 + x];
                    sum[0] += term, magnitude[0] += fabs(term), count[0]++;
                }
        for (int o = 0; o < c->OC; o++) /* backward-data: diff_src[n][ic][ih][iw] */
            for (int y = 0; y < 3; y++)
                for (int x = 0; x < 3; x++) {
                    int h = ih + 1 - y, w = iw + 1 - x;
                    if (h % s || w % s) continue;
                    double term = at(diff_dst, c->OC, OH, OW, n, o, h / s, w / s) *
                                  b->tensor[1][1][((size_t)o * c->IC + ic) * 9 + y * 3 + x];
                    sum[1] += term, magnitude[1] += fabs(term), count[1]++;
                }
        for (int m = 0; m < CONV_BATCH; m++) /* backward-weights: diff_weight[oc][ic][kh][kw] */
            for (int h = 0; h < OH; h++)
                for (int w = 0; w < OW; w++) {
                    double term = at(diff_dst_w, c->OC, OH, OW, m, oc, h, w) *
                                  at(src_w, c->IC, c->H, c->W, m, ic, h * s - 1 + kh, w * s - 1 + kw);
                    sum[2] += term, magnitude[2] += fabs(term), count[2]++;
                }
        double got[3] = {dst[(((size_t)n * c->OC + oc) * OH + oh) * OW + ow],
                         diff_src[(((size_t)n * c->IC + ic) * c->H + ih) * c->W + iw],
                         diff_weight[((size_t)oc * c->IC + ic) * 9 + kh * 3 + kw]};
        for (int k = 0; k < CONV_KINDS; k++) {
            double gamma = (count[k] + 3) * u / (1 - (count[k] + 3) * u);
            if (!(fabs(got[k] - sum[k]) <= gamma * magnitude[k] + 0x1p-126)) {
                fprintf(stderr, "%s %s: sampled entry %d: %.9g vs %.9g\n", c->name,
                        conv_kind_names[k], probe, got[k], sum[k]);
                exit(1);
            }
        }
    }
}

static void bench_conv_case(const conv_case *c, int blocked, dnnl_engine_t engine,
                            const double sgemm[2]) {
    int OH = conv_out(c, c->H), OW = conv_out(c, c->W);
    double flops = 2.0 * CONV_BATCH * c->OC * OH * OW * (double)c->IC * 9.0;
    conv_plan whole, half;
    make_conv_plan(&whole, c, CONV_BATCH, blocked, engine);
    make_conv_plan(&half, c, CONV_BATCH / 2, blocked, engine);
    conv_buffers one, two[2];
    make_conv_buffers(&one, &whole, engine, 20);
    make_conv_buffers(&two[0], &half, engine, 30);
    make_conv_buffers(&two[1], &half, engine, 40);
    size_t weight_count = (size_t)c->OC * c->IC * 9;
    float *weight_sum = random_floats(dnnl_memory_desc_get_size(&half.md[2][1]) / sizeof(float), 50);
    long allocations = 0;
    set_threads(1);
    for (int k = 0; k < CONV_KINDS; k++) {
        run_conv(&whole, &one, k);
        long before = atomic_load(&bench_allocations_aligned);
        run_conv(&whole, &one, k);
        allocations += atomic_load(&bench_allocations_aligned) - before;
    }
    if (!blocked) check_conv(c, &one);
    printf("  %s, %s (%s%s): %.3f GFLOP per pass; posix_memalign per pass: %.1f\n", c->name,
           blocked ? "oneDNN's blocked layouts" : "NCHW", blocked ? "" : "validated; ",
           whole.impl[0], flops / 1e9, allocations / (double)CONV_KINDS);
    for (int k = 0; k < CONV_KINDS; k++) {
        conv_job j1 = {&whole, &one, k, 1, weight_sum, weight_count};
        conv_job j2 = {&half, two, k, 2, weight_sum, weight_count};
        set_threads(1);
        bench_stats s1 = time_rate(conv_body, &j1, flops);
        set_threads(2);
        bench_stats s2 = time_rate(conv_body, &j2, flops);
        set_threads(1);
        printf("    %-17s %-28s %7.1f [%6.1f-%6.1f]  %7.1f [%6.1f-%6.1f]  %4.2fx  of sgemm %3.0f%% "
               "/ %3.0f%%\n", conv_kind_names[k], whole.impl[k], s1.median, s1.min, s1.max,
               s2.median, s2.min, s2.max, s2.median / s1.median, 100 * s1.median / sgemm[0],
               100 * s2.median / sgemm[1]);
    }
    free_conv_buffers(&one), free_conv_buffers(&two[0]), free_conv_buffers(&two[1]);
    free_conv_plan(&whole), free_conv_plan(&half);
    cm_free(weight_sum);
}

/* dnnl_sgemm at the im2col product of one convolution for 8 images, [8 OH OW, 9 IC] x [9 IC, OC],
 * with 1 thread and as 2 row blocks on 2 threads: the rate a convolution could reach as GEMM. */
static void conv_gemm_rate(double rate[2], const conv_case *c) {
    gemm_case g = {c->name, 0, 0, (size_t)8 * conv_out(c, c->H) * conv_out(c, c->W),
                   (size_t)c->OC, (size_t)9 * c->IC};
    float *a = random_floats(g.M * g.K, 60), *b = random_floats(g.K * g.N, 61), *out = random_floats(g.M * g.N, 62);
    set_threads(1);
    gemm_job check = {&g, LIB_SGEMM, 1, a, b, out, NULL};
    gemm_body(&check);
    check_entries(&g, a, b, out, "dnnl_sgemm");
    bench_stats s[2];
    for (size_t threads = 1; threads <= 2; threads++) {
        set_threads(threads);
        gemm_job j = {&g, LIB_SGEMM, threads, a, b, out, NULL};
        s[threads - 1] = time_rate(gemm_body, &j, 2.0 * (double)g.M * (double)g.N * (double)g.K);
        rate[threads - 1] = s[threads - 1].median;
    }
    set_threads(1);
    printf("  %s: dnnl_sgemm at its im2col shape for 8 images, %zux%zux%zu NN (validated): "
           "%.1f GFLOP/s [%.1f-%.1f] with 1 thread, %.1f [%.1f-%.1f] with 2 row blocks on 2\n",
           c->name, g.M, g.N, g.K, s[0].median, s[0].min, s[0].max, s[1].median, s[1].min,
           s[1].max);
    cm_free(a), cm_free(b), cm_free(out);
}

static void bench_conv(const char *filter, dnnl_engine_t engine) {
    printf("\n== 3. convolutions (oneDNN primitive), batch %d, padding 1, no bias; GFLOP/s "
           "(2 N OC OH OW IC 9 per pass):\n   implementation, 1 thread, 2 threads (our pool, two "
           "half batches), speed-up, and each as a fraction of dnnl_sgemm at the im2col shape "
           "(same thread count)\n", CONV_BATCH);
    for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++) {
        if (!strstr("conv", filter) && !strstr(conv_cases[i].name, filter)) continue;
        double sgemm[2];
        conv_gemm_rate(sgemm, &conv_cases[i]);
        for (int blocked = 0; blocked < 2; blocked++)
            bench_conv_case(&conv_cases[i], blocked, engine, sgemm);
    }
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    runs = argc > 1 ? atoi(argv[1]) : 5;
    const char *filter = argc > 2 ? argv[2] : "";
    if (runs < 1 || runs > BENCH_MAX_RUNS) {
        fprintf(stderr, "usage: bench_gemm [RUNS (1..%d) [FILTER]]\n", BENCH_MAX_RUNS);
        return 2;
    }
    char cpu[256], load[64];
    bench_cpu_name(cpu, sizeof cpu);
    bench_print_command(argc, argv);
    bench_load_average(load, sizeof load);
    const dnnl_version_t *version = dnnl_version();
    printf("machine: %s, %ld cores online, load average %s; OpenBLAS kernel %s; oneDNN %d.%d.%d, "
           "ISA %s (ONEDNN_MAX_CPU_ISA=%s); medians of %d runs [min-max]\n", cpu,
           sysconf(_SC_NPROCESSORS_ONLN), load, openblas_get_corename(), version->major,
           version->minor, version->patch, bench_onednn_isa(),
           getenv("ONEDNN_MAX_CPU_ISA") ? getenv("ONEDNN_MAX_CPU_ISA") : "(unset)", runs);
    openblas_set_num_threads(1); /* OpenBLAS's own threads never: 2 threads = our pool */
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    DNNL_OK(dnnl_engine_create(&engine, dnnl_cpu, 0));
    DNNL_OK(dnnl_stream_create(&stream, engine, dnnl_stream_default_flags));
    int all = filter[0] == '\0';
    int any_gemm = 0, any_layer = 0, any_conv = 0;
    for (size_t i = 0; i < sizeof gemm_cases / sizeof gemm_cases[0]; i++)
        any_gemm |= strstr(gemm_cases[i].name, filter) != NULL;
    for (size_t i = 0; i < sizeof layer_cases / sizeof layer_cases[0]; i++)
        any_layer |= strstr(layer_cases[i].name, filter) != NULL;
    for (size_t i = 0; i < sizeof conv_cases / sizeof conv_cases[0]; i++)
        any_conv |= strstr(conv_cases[i].name, filter) != NULL;
    if (all || any_gemm || strstr("gemm", filter)) bench_gemm(all ? "gemm" : filter);
    if (all || any_layer || strstr("fused", filter)) bench_fused(all ? "fused" : filter, engine, stream);
    if (all || any_conv || strstr("conv", filter)) bench_conv(all ? "conv" : filter, engine);
    DNNL_OK(dnnl_stream_destroy(stream));
    DNNL_OK(dnnl_engine_destroy(engine));
    bench_load_average(load, sizeof load);
    printf("\nload average at the end: %s; cm_matmul runs that fell back to the plain loop: %zu\n",
           load, cm_matmul_fallback_count());
    return 0;
}
