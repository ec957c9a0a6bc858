/* matmul.c: the fixed-shape products of matmul.h on oneDNN's matmul primitive, and their plain
 * reference loop. oneDNN rather than our own kernels or OpenBLAS: its JIT kernels (brgemm,
 * AVX-512 here) run the MLP's shapes at about twice the rate of the OpenBLAS kernel the machine
 * pins (docs/performance.md), a rate hand-written C reaches only with a blocking scheme per
 * instruction set. Every descriptor, memory object and the primitive are made up front; a run
 * points the memory objects at the caller's arrays and executes on the calling thread.
 * Deliberately not here: post-op fusion beyond the bias (the MLP keeps the pre-activation for
 * SiLU's derivative; measured in docs/performance.md) and a double variant (the double network
 * is the gradient-check path and keeps cblas_dgemm).
 */
#include "nn/matmul.h"
#include "nn/gemm.h"

#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

static atomic_size_t fallbacks;

/* The plain loops of gemm.c: C = bias (broadcast over rows) + A B, the sum and the bias added
 * in double and rounded once, as beta = 1 with C holding the bias does there. */
void cm_matmul_reference(float *C, const float *A, const float *B, const float *bias, int trans_a,
                         int trans_b, size_t M, size_t N, size_t K) {
    for (size_t i = 0; bias && i < M; i++) memcpy(C + i * N, bias, N * sizeof(float));
    cm_gemm_f32_reference(trans_a, trans_b, M, N, K, 1.0f, A, trans_a ? M : K, B,
                          trans_b ? K : N, bias ? 1.0f : 0.0f, C, N);
}

/* The plain descriptors of a [rows, columns] array, stored transposed ([columns, rows]) or not. */
static dnnl_status_t plain_md(dnnl_memory_desc_t *md, size_t rows, size_t columns,
                              int transposed) {
    dnnl_dims_t dims = {(dnnl_dim_t)rows, (dnnl_dim_t)columns};
    return dnnl_memory_desc_init_by_tag(md, 2, dims, dnnl_f32, transposed ? dnnl_ba : dnnl_ab);
}

#define TRY_DNNL(call, what)                                                \
    do {                                                                    \
        if ((status = cm_onednn_check((call), (what))) != CM_OK) goto done; \
    } while (0)

/* The primitive and its memory objects (handles DNNL_MEMORY_NONE until a run). */
static cm_status build(cm_matmul *m) {
    dnnl_engine_t engine = m->onednn->engine;
    dnnl_memory_desc_t a_md, b_md, c_md, bias_md;
    dnnl_matmul_desc_t desc;
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd = NULL;
    cm_status status = CM_OK;
    TRY_DNNL(plain_md(&a_md, m->M, m->K, m->trans_a), "A descriptor");
    TRY_DNNL(plain_md(&b_md, m->K, m->N, m->trans_b), "B descriptor");
    TRY_DNNL(plain_md(&c_md, m->M, m->N, 0), "C descriptor");
    TRY_DNNL(plain_md(&bias_md, 1, m->N, 0), "bias descriptor");
    TRY_DNNL(dnnl_matmul_desc_init(&desc, &a_md, &b_md, m->bias ? &bias_md : NULL, &c_md),
             "matmul descriptor");
    TRY_DNNL(dnnl_primitive_attr_create(&attr), "attributes");
    TRY_DNNL(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "attributes");
    TRY_DNNL(dnnl_primitive_desc_create(&pd, &desc, attr, engine, NULL), "matmul");
    TRY_DNNL(dnnl_primitive_create(&m->primitive, pd), "matmul primitive");
    const dnnl_memory_desc_t *scratch_md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    m->scratchpad_bytes = scratch_md ? dnnl_memory_desc_get_size(scratch_md) : 0;
    if (m->scratchpad_bytes)
        TRY_DNNL(dnnl_memory_create(&m->scratchpad, scratch_md, engine, DNNL_MEMORY_NONE),
                 "scratchpad memory");
    TRY_DNNL(dnnl_memory_create(&m->a, &a_md, engine, DNNL_MEMORY_NONE), "memory");
    TRY_DNNL(dnnl_memory_create(&m->b, &b_md, engine, DNNL_MEMORY_NONE), "memory");
    TRY_DNNL(dnnl_memory_create(&m->c, &c_md, engine, DNNL_MEMORY_NONE), "memory");
    if (m->bias)
        TRY_DNNL(dnnl_memory_create(&m->bias_memory, &bias_md, engine, DNNL_MEMORY_NONE), "memory");
done:
    if (pd) dnnl_primitive_desc_destroy(pd);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return status;
}
#undef TRY_DNNL

#define CM_MATMUL_MAX_SIZE ((size_t)INT32_MAX)

cm_status cm_matmul_create(cm_matmul *out, cm_onednn *onednn, int trans_a, int trans_b, size_t M,
                           size_t N, size_t K, int bias) {
    *out = (cm_matmul){0};
    if (M < 1 || N < 1 || K < 1 || M > CM_MATMUL_MAX_SIZE || N > CM_MATMUL_MAX_SIZE ||
        K > CM_MATMUL_MAX_SIZE)
        return cm_error_set(CM_ERR_INVALID, "matmul %zu x %zu x %zu: sizes must be in [1, 2^31)",
                            M, N, K);
    *out = (cm_matmul){.trans_a = trans_a != 0, .trans_b = trans_b != 0, .bias = bias != 0,
                       .M = M, .N = N, .K = K, .onednn = onednn};
    int pinned = cm_onednn_pin_begin(); /* a primitive fixes its thread count when made */
    cm_status status = build(out);
    cm_onednn_pin_end(pinned);
    if (status != CM_OK) cm_matmul_destroy(out);
    return status;
}

void cm_matmul_destroy(cm_matmul *m) {
    if (m->primitive) dnnl_primitive_destroy(m->primitive);
    dnnl_memory_t memories[5] = {m->a, m->b, m->c, m->bias_memory, m->scratchpad};
    for (int i = 0; i < 5; i++)
        if (memories[i]) dnnl_memory_destroy(memories[i]);
    *m = (cm_matmul){0};
}

size_t cm_matmul_scratchpad_bytes(const cm_matmul *m) { return m->scratchpad_bytes; }

cm_status cm_matmul_bind_scratchpad(cm_matmul *m, void *buffer) {
    if (!m->scratchpad) return CM_OK;
    return cm_onednn_check(dnnl_memory_set_data_handle(m->scratchpad, buffer), "scratchpad handle");
}

/* Point the memory objects at the arrays and execute on the calling thread alone. */
static dnnl_status_t execute(cm_matmul *m, float *C, const float *A, const float *B,
                             const float *bias) {
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, m->a}, {DNNL_ARG_WEIGHTS, m->b}, {DNNL_ARG_DST, m->c}};
    int count = 3;
    dnnl_status_t status = dnnl_memory_set_data_handle(m->a, (void *)A);
    if (status == dnnl_success) status = dnnl_memory_set_data_handle(m->b, (void *)B);
    if (status == dnnl_success) status = dnnl_memory_set_data_handle(m->c, C);
    if (m->bias) {
        if (status == dnnl_success) status = dnnl_memory_set_data_handle(m->bias_memory, (void *)bias);
        args[count++] = (dnnl_exec_arg_t){DNNL_ARG_BIAS, m->bias_memory};
    }
    if (m->scratchpad) args[count++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, m->scratchpad};
    if (status != dnnl_success) return status;
    int pinned = cm_onednn_pin_begin();
    status = dnnl_primitive_execute(m->primitive, m->onednn->stream, count, args);
    if (status == dnnl_success) status = dnnl_stream_wait(m->onednn->stream);
    cm_onednn_pin_end(pinned);
    return status;
}

void cm_matmul_run(cm_matmul *m, float *C, const float *A, const float *B, const float *bias) {
    if (m->primitive && execute(m, C, A, B, bias) == dnnl_success) return;
    atomic_fetch_add(&fallbacks, 1);
    cm_matmul_reference(C, A, B, m->bias ? bias : NULL, m->trans_a, m->trans_b, m->M, m->N, m->K);
}

const char *cm_matmul_implementation(const cm_matmul *m) {
    const_dnnl_primitive_desc_t pd = NULL;
    const char *name = NULL;
    if (!m->primitive || dnnl_primitive_get_primitive_desc(m->primitive, &pd) != dnnl_success ||
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) != dnnl_success || !name)
        return "unknown";
    return name;
}

size_t cm_matmul_fallback_count(void) { return atomic_load(&fallbacks); }
