/* test_matmul.c: the fixed-shape oneDNN products of nn/matmul.h (white-box) and what they
 * promise about their bits.
 *
 * - the plain reference loop on a known answer (small integers: exact in float), with a bias;
 * - cm_matmul_run against the reference for all four transpose combinations, with and without a
 *   bias, odd sizes, K = 1, M = 1, N = 1, within the float error bound
 *   gamma_{K+3} = (K+3) u / (1 - (K+3) u) of sum |a b| + |bias| (any summation order); no run
 *   falls back to the plain loop;
 * - C is never read (NaN there does not propagate);
 * - the same product made twice, run twice, from 1 or 2 pool threads at once (each task its own
 *   engine, stream and primitive), and at any operand alignment: the same bits; the caller's
 *   OpenMP thread count is restored and no OpenMP thread is started;
 * - row r of C does not depend on the other rows of op(A) (the padding rows of mlp.c);
 * - sizes out of range are refused with a message, leaving nothing to free.
 */
#include "nn/matmul.h"

#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/parallel.h"
#include "cm/rng.h"
#include "test.h"

extern int omp_get_max_threads(void);
extern void omp_set_num_threads(int threads);

typedef struct {
    int trans_a, trans_b;
    size_t M, N, K;
} shape;

static size_t a_size(const shape *s) { return s->M * s->K; }
static size_t b_size(const shape *s) { return s->K * s->N; }

static float *random_floats(size_t n, cm_rng *rng) {
    float *x = cm_malloc(n ? n : 1, sizeof(float));
    if (x) cm_rng_normal_fill_f32(rng, x, n);
    return x;
}

/* A product with its own engine and stream, and its scratchpad (64-byte aligned). */
typedef struct {
    cm_onednn onednn;
    cm_matmul matmul;
    void *scratchpad;
} product;

static int product_make(product *p, const shape *s, int bias) {
    *p = (product){0};
    if (cm_onednn_create(&p->onednn) != CM_OK) return 0;
    if (cm_matmul_create(&p->matmul, &p->onednn, s->trans_a, s->trans_b, s->M, s->N, s->K, bias) !=
        CM_OK)
        return 0;
    size_t bytes = cm_matmul_scratchpad_bytes(&p->matmul);
    if (!(p->scratchpad = cm_malloc(bytes + 64, 1))) return 0;
    void *aligned = (void *)(((uintptr_t)p->scratchpad + 63) / 64 * 64);
    return cm_matmul_bind_scratchpad(&p->matmul, aligned) == CM_OK;
}

static void product_free(product *p) {
    cm_matmul_destroy(&p->matmul);
    cm_onednn_destroy(&p->onednn);
    cm_free(p->scratchpad);
}

static void test_reference_known_answer(void) {
    /* A = [1 2 3; 4 5 6], B = [1 -1; 0 2; 3 1]: A B = [10 6; 22 12]; + bias [1 -2] =
     * [11 4; 23 10]. Each operand also stored transposed. */
    const float A[6] = {1, 2, 3, 4, 5, 6}, At[6] = {1, 4, 2, 5, 3, 6};
    const float B[6] = {1, -1, 0, 2, 3, 1}, Bt[6] = {1, 0, 3, -1, 2, 1}, bias[2] = {1, -2};
    const float expected[4] = {11, 4, 23, 10};
    for (int t = 0; t < 4; t++) {
        int ta = t & 1, tb = t >> 1;
        float C[4] = {NAN, NAN, NAN, NAN}, R[4] = {NAN, NAN, NAN, NAN};
        cm_matmul_reference(R, ta ? At : A, tb ? Bt : B, bias, ta, tb, 2, 2, 3);
        product p;
        shape s = {ta, tb, 2, 2, 3};
        CM_CHECK(product_make(&p, &s, 1), "trans %d%d: %s", ta, tb, cm_error_detail());
        if (p.matmul.primitive) cm_matmul_run(&p.matmul, C, ta ? At : A, tb ? Bt : B, bias);
        product_free(&p);
        for (int i = 0; i < 4; i++)
            CM_CHECK(R[i] == expected[i] && C[i] == expected[i],
                     "trans %d%d: C[%d] = %g (reference %g), expected %g", ta, tb, i, C[i], R[i],
                     expected[i]);
    }
}

/* max over entries of |C - exact| / (gamma_{K+3} (sum |a b| + |bias|) + the smallest normal). */
static double worst_error_ratio(const shape *s, const float *A, const float *B, const float *bias,
                                const float *C) {
    const double u = 0x1p-24, n = (double)s->K + 3.0, gamma = n * u / (1.0 - n * u);
    double worst = 0.0;
    for (size_t i = 0; i < s->M; i++)
        for (size_t j = 0; j < s->N; j++) {
            double sum = bias ? bias[j] : 0.0, magnitude = bias ? fabs(bias[j]) : 0.0;
            for (size_t k = 0; k < s->K; k++) {
                double a = s->trans_a ? A[k * s->M + i] : A[i * s->K + k];
                double b = s->trans_b ? B[j * s->K + k] : B[k * s->N + j];
                sum += a * b, magnitude += fabs(a * b);
            }
            double ratio = fabs((double)C[i * s->N + j] - sum) / (gamma * magnitude + 0x1p-126);
            worst = ratio > worst ? ratio : worst;
        }
    return worst;
}

static void test_agrees_with_reference(void) {
    const size_t sizes[][3] = {{1, 1, 1},   {1, 256, 256}, {256, 1, 256}, {7, 5, 1},
                               {33, 17, 65}, {64, 64, 64},  {3, 259, 131}, {100, 2, 300},
                               {17, 100, 2}, {129, 67, 513}, {256, 256, 66}};
    cm_rng rng;
    cm_rng_init(&rng, cm_test_seed(11));
    size_t fallbacks = cm_matmul_fallback_count();
    for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++)
        for (int t = 0; t < 8; t++) {
            shape s = {t & 1, (t >> 1) & 1, sizes[z][0], sizes[z][1], sizes[z][2]};
            int with_bias = t >> 2;
            float *A = random_floats(a_size(&s), &rng), *B = random_floats(b_size(&s), &rng);
            float *bias = random_floats(s.N, &rng), *C = random_floats(s.M * s.N, &rng);
            float *R = random_floats(s.M * s.N, &rng);
            product p;
            int made = product_make(&p, &s, with_bias);
            CM_CHECK(made, "trans %d%d %zux%zux%zu: %s", s.trans_a, s.trans_b, s.M, s.N, s.K,
                     cm_error_detail());
            if (made && A && B && bias && C && R) {
                cm_matmul_run(&p.matmul, C, A, B, with_bias ? bias : NULL);
                cm_matmul_reference(R, A, B, with_bias ? bias : NULL, s.trans_a, s.trans_b, s.M,
                                    s.N, s.K);
                double ratio = worst_error_ratio(&s, A, B, with_bias ? bias : NULL, C);
                double ratio_reference = worst_error_ratio(&s, A, B, with_bias ? bias : NULL, R);
                CM_CHECK(ratio <= 1.0 && ratio_reference <= 1.0,
                         "trans %d%d %zux%zux%zu bias %d: error / bound = %.3g (reference loop "
                         "%.3g)", s.trans_a, s.trans_b, s.M, s.N, s.K, with_bias, ratio,
                         ratio_reference);
            }
            product_free(&p);
            cm_free(A), cm_free(B), cm_free(bias), cm_free(C), cm_free(R);
        }
    CM_CHECK(cm_matmul_fallback_count() == fallbacks, "%zu runs fell back to the plain loop",
             cm_matmul_fallback_count() - fallbacks);
}

/* C is overwritten without being read: NaN in C gives the bits of a zeroed C. */
static void test_output_not_read(void) {
    enum { M = 9, N = 20, K = 31 };
    cm_rng rng;
    cm_rng_init(&rng, 12);
    float A[M * K], B[K * N], C[M * N], zeroed[M * N];
    cm_rng_normal_fill_f32(&rng, A, M * K);
    cm_rng_normal_fill_f32(&rng, B, K * N);
    for (int t = 0; t < 4; t++) {
        shape s = {t & 1, t >> 1, M, N, K};
        product p;
        CM_CHECK(product_make(&p, &s, 0), "%s", cm_error_detail());
        for (int i = 0; i < M * N; i++) C[i] = NAN, zeroed[i] = 0.0f;
        if (p.matmul.primitive) {
            cm_matmul_run(&p.matmul, C, A, B, NULL);
            cm_matmul_run(&p.matmul, zeroed, A, B, NULL);
        }
        CM_CHECK(memcmp(C, zeroed, sizeof C) == 0, "trans %d%d: a NaN output differs", s.trans_a,
                 s.trans_b);
        product_free(&p);
    }
}

/* ---- bits */

/* The shapes of the MLP's products (forward out = inp W^T, dinp = dout W, dW = dout^T inp at
 * widths 256 and 512, data dimensions 2 and 784) and odd ones. */
static const shape bit_shapes[] = {
    {0, 1, 256, 256, 256}, {0, 1, 256, 2, 256}, {0, 0, 256, 256, 256}, {1, 0, 256, 256, 256},
    {1, 0, 512, 848, 256}, {0, 1, 77, 259, 131}, {1, 1, 33, 65, 17}, {0, 0, 1, 300, 200},
    {1, 0, 300, 1, 200},
};
#define BIT_SHAPES (sizeof bit_shapes / sizeof bit_shapes[0])

typedef struct {
    const float *A[BIT_SHAPES], *B[BIT_SHAPES];
    float *C[4][BIT_SHAPES]; /* one output per task */
    int made[4];
} bits_job;

/* Task t makes its own products and runs them, in an order that depends on t (so different
 * products overlap in time). */
static void bits_task(void *context, size_t task) {
    bits_job *j = context;
    j->made[task] = 1;
    for (size_t z = 0; z < BIT_SHAPES; z++) {
        size_t which = task % 2 ? BIT_SHAPES - 1 - z : z;
        product p;
        if (product_make(&p, &bit_shapes[which], 0))
            cm_matmul_run(&p.matmul, j->C[task][which], j->A[which], j->B[which], NULL);
        else
            j->made[task] = 0;
        product_free(&p);
    }
}

static int bits_job_make(bits_job *j, float **once, cm_rng *rng) {
    int ok = 1;
    memset(j, 0, sizeof *j);
    for (size_t z = 0; z < BIT_SHAPES; z++) {
        const shape *s = &bit_shapes[z];
        j->A[z] = random_floats(a_size(s), rng);
        j->B[z] = random_floats(b_size(s), rng);
        once[z] = cm_malloc(s->M * s->N, sizeof(float));
        for (int t = 0; t < 4; t++) j->C[t][z] = cm_calloc(s->M * s->N, sizeof(float));
        ok = ok && j->A[z] && j->B[z] && once[z] && j->C[0][z] && j->C[1][z] && j->C[2][z] &&
             j->C[3][z];
    }
    return ok;
}

static void test_same_bits_any_thread(void) {
    cm_rng rng;
    cm_rng_init(&rng, 13);
    bits_job j;
    float *once[BIT_SHAPES] = {0};
    int ok = bits_job_make(&j, once, &rng);
    CM_CHECK(ok, "out of memory");
    for (size_t z = 0; ok && z < BIT_SHAPES; z++) { /* one product run twice */
        const shape *s = &bit_shapes[z];
        product p;
        CM_CHECK(product_make(&p, s, 0), "%s", cm_error_detail());
        if (p.matmul.primitive) {
            cm_matmul_run(&p.matmul, once[z], j.A[z], j.B[z], NULL);
            cm_matmul_run(&p.matmul, j.C[0][z], j.A[z], j.B[z], NULL);
        }
        product_free(&p);
        CM_CHECK(memcmp(once[z], j.C[0][z], s->M * s->N * sizeof(float)) == 0,
                 "trans %d%d %zux%zux%zu: a second run gives other bits", s->trans_a, s->trans_b,
                 s->M, s->N, s->K);
    }
    for (size_t threads = 1; ok && threads <= 2; threads++) {
        CM_CHECK_OK(cm_parallel_set_threads(threads));
        cm_parallel_for(bits_task, &j, 4);
        for (int t = 0; t < 4; t++) {
            CM_CHECK(j.made[t], "task %d could not make its products", t);
            for (size_t z = 0; z < BIT_SHAPES; z++) {
                const shape *s = &bit_shapes[z];
                CM_CHECK(memcmp(once[z], j.C[t][z], s->M * s->N * sizeof(float)) == 0,
                         "%zu threads, task %d, trans %d%d %zux%zux%zu: other bits", threads, t,
                         s->trans_a, s->trans_b, s->M, s->N, s->K);
            }
        }
    }
    CM_CHECK_OK(cm_parallel_set_threads(1));
    for (size_t z = 0; z < BIT_SHAPES; z++) {
        cm_free((void *)j.A[z]), cm_free((void *)j.B[z]), cm_free(once[z]);
        for (int t = 0; t < 4; t++) cm_free(j.C[t][z]);
    }
}

/* Operands at every offset 0..15 floats (any alignment up to 64 bytes): the same bits. */
static void test_same_bits_any_alignment(void) {
    cm_rng rng;
    cm_rng_init(&rng, 14);
    for (size_t z = 0; z < BIT_SHAPES; z++) {
        const shape *s = &bit_shapes[z];
        size_t na = a_size(s), nb = b_size(s), nc = s->M * s->N;
        float *A0 = random_floats(na + 16, &rng), *B0 = random_floats(nb + 16, &rng);
        float *C0 = cm_malloc(nc + 16, sizeof(float)), *first = cm_malloc(nc, sizeof(float));
        product p;
        int made = product_make(&p, s, 0);
        CM_CHECK(made && A0 && B0 && C0 && first, "setup: %s", cm_error_detail());
        for (size_t offset = 0; made && A0 && B0 && C0 && first && offset < 16; offset++) {
            float *A = A0 + offset, *B = B0 + (offset * 7) % 16, *C = C0 + (offset * 3) % 16;
            memmove(A, A0 + 16, na * sizeof(float)); /* the same values at every offset */
            memmove(B, B0 + 16, nb * sizeof(float));
            cm_matmul_run(&p.matmul, C, A, B, NULL);
            if (offset == 0) memcpy(first, C, nc * sizeof(float));
            CM_CHECK(memcmp(first, C, nc * sizeof(float)) == 0,
                     "trans %d%d %zux%zux%zu: offset %zu gives other bits", s->trans_a, s->trans_b,
                     s->M, s->N, s->K, offset);
            memmove(A0 + 16, A, na * sizeof(float)); /* back for the next offset */
            memmove(B0 + 16, B, nb * sizeof(float));
        }
        product_free(&p);
        cm_free(A0), cm_free(B0), cm_free(C0), cm_free(first);
    }
}

/* Threads of this process (entries of /proc/self/task), or -1 where that is not readable. */
static int thread_count(void) {
    DIR *dir = opendir("/proc/self/task");
    if (!dir) return -1;
    int count = 0;
    for (struct dirent *entry; (entry = readdir(dir));)
        if (entry->d_name[0] != '.') count++;
    closedir(dir);
    return count;
}

/* Made and run with the caller's OpenMP count at 1..4: the count is restored after each call,
 * and oneDNN starts no OpenMP team (libgomp's workers would stay alive: they show in
 * /proc/self/task). The pool has one thread here. */
static void test_pinned_to_the_calling_thread(void) {
    enum { M = 512, N = 512, K = 512 };
    cm_rng rng;
    cm_rng_init(&rng, 15);
    float *A = random_floats(M * K, &rng), *B = random_floats(K * N, &rng);
    float *C = cm_malloc(M * N, sizeof(float));
    CM_CHECK_OK(cm_parallel_set_threads(1));
    int saved = omp_get_max_threads(), before = thread_count();
    for (int caller = 1; A && B && C && caller <= 4; caller++) {
        omp_set_num_threads(caller);
        for (int t = 0; t < 4; t++) {
            shape s = {t & 1, t >> 1, M, N, K};
            product p;
            CM_CHECK(product_make(&p, &s, 0), "%s", cm_error_detail());
            CM_CHECK(omp_get_max_threads() == caller, "made: caller's OpenMP threads %d, was %d",
                     omp_get_max_threads(), caller);
            if (p.matmul.primitive) cm_matmul_run(&p.matmul, C, A, B, NULL);
            CM_CHECK(omp_get_max_threads() == caller, "run: caller's OpenMP threads %d, was %d",
                     omp_get_max_threads(), caller);
            product_free(&p);
        }
    }
    int after = thread_count();
    CM_CHECK(before == after, "threads before %d, after %d: oneDNN started an OpenMP team",
             before, after);
    omp_set_num_threads(saved);
    cm_free(A), cm_free(B), cm_free(C);
}

/* Row r of C depends only on row r of op(A) (and B): zero rows, or huge ones, elsewhere (the
 * padding rows of a block) do not change it. */
static void test_row_ignores_other_rows(void) {
    cm_rng rng;
    cm_rng_init(&rng, 16);
    for (size_t z = 0; z < BIT_SHAPES; z++) {
        const shape *s = &bit_shapes[z];
        size_t lda = s->trans_a ? s->M : s->K, nc = s->M * s->N, keep = s->M / 2;
        float *A = random_floats(a_size(s), &rng), *B = random_floats(b_size(s), &rng);
        float *C = cm_malloc(nc, sizeof(float)), *D = cm_malloc(nc, sizeof(float));
        product p;
        int made = product_make(&p, s, 0);
        CM_CHECK(made && A && B && C && D, "setup: %s", cm_error_detail());
        if (made && A && B && C && D) {
            cm_matmul_run(&p.matmul, C, A, B, NULL);
            for (int fill = 0; fill < 2; fill++) { /* the other rows: zero, then 1e30 */
                for (size_t i = 0; i < s->M; i++)
                    for (size_t k = 0; k < s->K && i != keep; k++)
                        *(s->trans_a ? &A[k * lda + i] : &A[i * lda + k]) = fill ? 1e30f : 0.0f;
                cm_matmul_run(&p.matmul, D, A, B, NULL);
                CM_CHECK(memcmp(C + keep * s->N, D + keep * s->N, s->N * sizeof(float)) == 0,
                         "trans %d%d %zux%zux%zu: row %zu changed with the other rows",
                         s->trans_a, s->trans_b, s->M, s->N, s->K, keep);
            }
        }
        product_free(&p);
        cm_free(A), cm_free(B), cm_free(C), cm_free(D);
    }
}

static void test_refuses_bad_sizes(void) {
    cm_onednn onednn;
    CM_CHECK_OK(cm_onednn_create(&onednn));
    const size_t bad[][3] = {{0, 4, 4}, {4, 0, 4}, {4, 4, 0}, {(size_t)1 << 31, 4, 4},
                             {4, 4, (size_t)1 << 40}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cm_matmul m;
        CM_CHECK(cm_matmul_create(&m, &onednn, 0, 0, bad[i][0], bad[i][1], bad[i][2], 0) ==
                         CM_ERR_INVALID &&
                     !m.primitive && strstr(cm_error_detail(), "matmul"),
                 "%zu x %zu x %zu accepted (%s)", bad[i][0], bad[i][1], bad[i][2],
                 cm_error_detail());
        cm_matmul_destroy(&m); /* a refused product owns nothing */
    }
    cm_onednn_destroy(&onednn);
}

static void test_isa_is_named(void) {
    const char *isa = cm_onednn_isa();
    CM_CHECK(isa && isa[0] && strcmp(isa, "unknown") != 0, "ISA '%s'", isa ? isa : "(null)");
    shape s = {0, 1, 256, 256, 256};
    product p;
    CM_CHECK(product_make(&p, &s, 0), "%s", cm_error_detail());
    const char *implementation = cm_matmul_implementation(&p.matmul);
    CM_CHECK(strcmp(implementation, "unknown") != 0, "implementation '%s'", implementation);
    product_free(&p);
}

const cm_test_case cm_tests_matmul[] = {
    {"reference_known_answer", test_reference_known_answer},
    {"agrees_with_reference", test_agrees_with_reference},
    {"output_not_read", test_output_not_read},
    {"same_bits_any_thread", test_same_bits_any_thread},
    {"same_bits_any_alignment", test_same_bits_any_alignment},
    {"pinned_to_the_calling_thread", test_pinned_to_the_calling_thread},
    {"row_ignores_other_rows", test_row_ignores_other_rows},
    {"refuses_bad_sizes", test_refuses_bad_sizes},
    {"isa_is_named", test_isa_is_named},
    {NULL, NULL},
};
