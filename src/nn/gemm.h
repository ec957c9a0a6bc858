/* gemm.h (private to src/nn): the float matrix product of the network kernels, through oneDNN.
 *
 * Why oneDNN: OpenBLAS is pinned on our machines to its Haswell (AVX2) kernels
 * (OPENBLAS_CORETYPE=Haswell, which we leave set); oneDNN generates AVX-512 kernels at run time
 * for the CPU it finds, about twice the sgemm rate at the network's shapes (docs/performance.md).
 *
 * Threading rule: a product always runs on the calling thread alone. oneDNN (Debian's build is
 * OpenMP-only: no threadpool interface) would otherwise start an OpenMP team and may split a
 * product's K dimension across it, so that the bits would depend on the thread count. The
 * caller's OpenMP thread count is set to 1 for the duration of the call and restored (a
 * thread-local value in libgomp: a few nanoseconds). Parallelism is the caller's: fixed row
 * blocks run as cm_parallel_for tasks (parallel.h).
 *
 * Determinism (tests/nn/test_gemm.c): on one machine, the same call gives the same bits, on any
 * thread and for any alignment of the operands. Row r of C may depend on M (oneDNN picks a
 * different kernel for M = 1 and, when B is transposed, for small M): callers that need a row's
 * bits independent of the batch keep M fixed (samplers pad chunks to one shape). Across CPUs
 * oneDNN picks other kernels (cm_gemm_isa), so bits may differ between machines.
 */
#ifndef CM_NN_GEMM_H
#define CM_NN_GEMM_H

#include <stddef.h>

/* Row-major C[M,N] = alpha op(A)[M,K] op(B)[K,N] + beta C, op(X) = X^T if trans_x is non-zero.
 * A is M x K (K x M when trans_a) with leading dimension lda, B is K x N (N x K when trans_b)
 * with ldb, C has ldc >= N. beta = 0 overwrites C without reading it (NaN in C does not
 * propagate). Dimensions and leading dimensions below 2^31. Allocates: oneDNN mallocs its
 * packing buffer inside most calls (not through cm_malloc); if that fails the product is
 * computed by cm_gemm_f32_reference instead (other bits) and cm_gemm_fallback_count counts it. */
void cm_gemm_f32(int trans_a, int trans_b, size_t M, size_t N, size_t K, float alpha,
                 const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
                 size_t ldc);

/* The same product by the plain loop: each entry's dot product accumulated in double in order
 * k = 0..K-1, then alpha and beta applied in double and rounded once to float. */
void cm_gemm_f32_reference(int trans_a, int trans_b, size_t M, size_t N, size_t K, float alpha,
                           const float *A, size_t lda, const float *B, size_t ldb, float beta,
                           float *C, size_t ldc);

/* The instruction set oneDNN generates kernels for on this machine (the highest it may use:
 * "avx512_core_bf16", "avx2", ...; capped by the environment variable ONEDNN_MAX_CPU_ISA).
 * A static string. */
const char *cm_gemm_isa(void);

/* Products that oneDNN refused (out of memory for its packing buffer) and the plain loop
 * computed instead, since the process started. */
size_t cm_gemm_fallback_count(void);

#endif
