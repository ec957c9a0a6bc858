/* bench/sgemm.h: the two float GEMMs the benchmarks hold the network against, run the way the
 * library runs its own products: OpenBLAS's cblas_sgemm (the kernel OPENBLAS_CORETYPE selects;
 * the limit of the network before its products moved to oneDNN) and oneDNN's dnnl_sgemm on the
 * calling thread alone (its OpenMP thread count pinned to 1 for the call, as src/nn/onednn.h
 * does; the limit of the network's oneDNN products), with the instruction set oneDNN chose.
 * Self-contained (oneDNN's C API, libgomp's controls), so that a benchmark built against an
 * older tree of the library measures the same limits.
 */
#ifndef CM_BENCH_SGEMM_H
#define CM_BENCH_SGEMM_H

#include <cblas.h>
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#include <string.h>

extern int omp_get_max_threads(void);
extern void omp_set_num_threads(int threads);

typedef enum { BENCH_OPENBLAS, BENCH_ONEDNN, BENCH_LIBRARIES } bench_library;
static const char *const bench_library_names[BENCH_LIBRARIES] = {"OpenBLAS", "oneDNN"};

/* Run oneDNN on the calling thread alone until the matching bench_pin_end(saved). */
static int bench_pin_begin(void) {
    int saved = omp_get_max_threads();
    if (saved != 1) omp_set_num_threads(1);
    return saved;
}
static void bench_pin_end(int saved) {
    if (saved != 1) omp_set_num_threads(saved);
}

/* Row-major C[M,N] = op(A)[M,K] op(B)[K,N] (beta = 0) by `library`; 0 on success. */
static int bench_sgemm(bench_library library, int trans_a, int trans_b, int M, int N, int K,
                       const float *A, int lda, const float *B, int ldb, float *C, int ldc) {
    if (library == BENCH_OPENBLAS) {
        cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                    trans_b ? CblasTrans : CblasNoTrans, M, N, K, 1.0f, A, lda, B, ldb, 0.0f, C,
                    ldc);
        return 0;
    }
    int saved = bench_pin_begin();
    dnnl_status_t status = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, 1.0f, A,
                                      lda, B, ldb, 0.0f, C, ldc);
    bench_pin_end(saved);
    return status != dnnl_success;
}

/* The instruction set oneDNN generates kernels for ("avx512_core_bf16", ...). */
static const char *bench_onednn_isa(void) {
    const char *name = dnnl_cpu_isa2str(dnnl_get_effective_cpu_isa());
    const char *prefix = "cpu_isa_";
    if (name && strncmp(name, prefix, strlen(prefix)) == 0) name += strlen(prefix);
    return name ? name : "unknown";
}

#endif
