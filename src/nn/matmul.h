/* matmul.h (private to src/nn): one float matrix product of one fixed shape through oneDNN's
 * matmul primitive, made once (when a network workspace is made) and run many times; the MLP's
 * float path runs every product through it (mlp.c).
 *
 * Why a primitive of one shape rather than dnnl_sgemm: dnnl_sgemm allocates its packing buffer
 * (posix_memalign, 64-263 KB at the MLP's shapes) inside nearly every call, while a primitive
 * made with a user scratchpad packs into the caller's buffer; a primitive with a run-time M
 * (DNNL_RUNTIME_DIM_VAL) is oneDNN's gemm:jit implementation, i.e. dnnl_sgemm again (measured:
 * docs/performance.md). oneDNN 2.6 still makes a few small allocations of its own bookkeeping
 * (the argument map: 6 of 32-104 bytes) inside each dnnl_primitive_execute; no C entry point
 * avoids them.
 *
 * Threads: a product is created and run with the calling thread's OpenMP count pinned to 1
 * (onednn.h): it never starts an OpenMP team, parallelism is the caller's (row blocks on the
 * pool), and the kernel oneDNN chooses does not depend on the machine's core count.
 *
 * Determinism: the same product on the same machine gives the same bits, on any thread, at any
 * operand alignment; row r of C does not depend on the values of the other rows of op(A).
 * Across machines oneDNN generates kernels for the instruction set it finds (cm_onednn_isa), so
 * other CPUs may give other bits (docs/performance.md).
 */
#ifndef CM_NN_MATMUL_H
#define CM_NN_MATMUL_H

#include <stddef.h>

#include "cm/status.h"
#include "nn/onednn.h"

/* C[M,N] = op(A)[M,K] op(B)[K,N] (+ bias[N] on every row when made with a bias), row-major and
 * dense: A is [M,K] ([K,M] when trans_a), B is [K,N] ([N,K] when trans_b), C is [M,N]. */
typedef struct {
    int trans_a, trans_b, bias;
    size_t M, N, K;
    cm_onednn *onednn; /* borrowed: engine and stream; must outlive the product */
    dnnl_primitive_t primitive;
    dnnl_memory_t a, b, c, bias_memory; /* the caller's arrays, pointed at per run */
    dnnl_memory_t scratchpad;           /* NULL when the primitive needs none */
    size_t scratchpad_bytes;
} cm_matmul;

/* Make the product (1 <= M, N, K < 2^31). CM_ERR_INVALID for sizes out of range,
 * CM_ERR_UNSUPPORTED or CM_ERR_NOMEM when oneDNN refuses; *out then owns nothing. */
cm_status cm_matmul_create(cm_matmul *out, cm_onednn *onednn, int trans_a, int trans_b, size_t M,
                           size_t N, size_t K, int bias);
/* Release it (a zeroed cm_matmul is allowed). */
void cm_matmul_destroy(cm_matmul *matmul);

/* Bytes of scratchpad it needs (0: none). */
size_t cm_matmul_scratchpad_bytes(const cm_matmul *matmul);
/* Use `buffer` (borrowed, >= the bytes above, 64-byte aligned) as its scratchpad; products that
 * never run at the same time may share one buffer. Call before the first run. */
cm_status cm_matmul_bind_scratchpad(cm_matmul *matmul, void *buffer);

/* C = op(A) op(B) (+ bias; NULL when made without), C overwritten and never read. If oneDNN
 * fails here (it cannot, short of running out of memory for its bookkeeping), the product is
 * computed by cm_matmul_reference instead (correct, other bits) and cm_matmul_fallback_count
 * counts it. */
void cm_matmul_run(cm_matmul *matmul, float *C, const float *A, const float *B, const float *bias);

/* The same product by the plain loop: each entry's dot product accumulated in double in order
 * k = 0..K-1, plus the bias in double, rounded once to float. */
void cm_matmul_reference(float *C, const float *A, const float *B, const float *bias, int trans_a,
                         int trans_b, size_t M, size_t N, size_t K);

/* The implementation oneDNN chose ("brg:avx512_core", ...; a static string). */
const char *cm_matmul_implementation(const cm_matmul *matmul);

/* Runs that fell back to the plain loop since the process started. */
size_t cm_matmul_fallback_count(void);

#endif
