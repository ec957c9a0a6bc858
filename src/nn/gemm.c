/* gemm.c: cm_gemm_f32 through oneDNN's dnnl_sgemm, pinned to the calling thread (onednn.h), and
 * its plain reference loop (gemm.h says why oneDNN and what determinism holds). Used by the
 * image classifier (classifier.c), whose products have several shapes and leading dimensions;
 * the consistency networks use one matmul primitive per shape instead (matmul.h), because
 * dnnl_sgemm allocates its packing buffer inside each call (docs/performance.md): the
 * classifier's training steps therefore allocate inside oneDNN, which its docs state.
 * dnnl_sgemm is row-major like cblas_sgemm; it returns a status instead of calling xerbla.
 */
#include "nn/gemm.h"

#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl_debug.h>
#include <stdatomic.h>
#include <string.h>

#include "nn/onednn.h"


static atomic_size_t fallbacks;

void cm_gemm_f32_reference(int trans_a, int trans_b, size_t M, size_t N, size_t K, float alpha,
                           const float *A, size_t lda, const float *B, size_t ldb, float beta,
                           float *C, size_t ldc) {
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) {
            double sum = 0.0;
            for (size_t k = 0; k < K; k++) {
                double a = trans_a ? A[k * lda + i] : A[i * lda + k];
                double b = trans_b ? B[j * ldb + k] : B[k * ldb + j];
                sum += a * b;
            }
            double value = (double)alpha * sum;
            if (beta != 0.0f) value += (double)beta * C[i * ldc + j];
            C[i * ldc + j] = (float)value;
        }
}

/* C[M,N] = beta C, C not read when beta = 0. */
static void scale_rows(float *C, size_t ldc, size_t M, size_t N, float beta) {
    for (size_t i = 0; i < M; i++)
        for (size_t j = 0; j < N; j++) C[i * ldc + j] = beta == 0.0f ? 0.0f : beta * C[i * ldc + j];
}

void cm_gemm_f32(int trans_a, int trans_b, size_t M, size_t N, size_t K, float alpha,
                 const float *A, size_t lda, const float *B, size_t ldb, float beta, float *C,
                 size_t ldc) {
    if (M == 0 || N == 0) return;
    if (K == 0) { /* BLAS: C = beta C; dnnl_sgemm 2.6 returns without touching C */
        scale_rows(C, ldc, M, N, beta);
        return;
    }
    int caller_threads = cm_onednn_pin_begin();
    dnnl_status_t status = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', (dnnl_dim_t)M,
                                      (dnnl_dim_t)N, (dnnl_dim_t)K, alpha, A, (dnnl_dim_t)lda,
                                      B, (dnnl_dim_t)ldb, beta, C, (dnnl_dim_t)ldc);
    cm_onednn_pin_end(caller_threads);
    if (status != dnnl_success) {
        atomic_fetch_add(&fallbacks, 1);
        cm_gemm_f32_reference(trans_a, trans_b, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
    }
}

const char *cm_gemm_isa(void) {
    const char *name = dnnl_cpu_isa2str(dnnl_get_effective_cpu_isa());
    const char *prefix = "cpu_isa_";
    if (name && strncmp(name, prefix, strlen(prefix)) == 0) name += strlen(prefix);
    return name ? name : "unknown";
}

size_t cm_gemm_fallback_count(void) { return atomic_load(&fallbacks); }
