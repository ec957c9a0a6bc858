/* conv.c: the convolutions of conv.h: the reference loops (conv_template.h, float and double)
 * and the oneDNN plan of one row, float. oneDNN rather than our own kernels: its JIT kernels run
 * these shapes at about 200 GFLOP/s on one AVX-512 core (docs/unet.md), a rate hand-written C
 * reaches only with a blocking scheme per instruction set. The plan creates every primitive,
 * memory object and weight buffer up front; a run only points the memory objects at the
 * caller's arrays and executes (oneDNN itself may still allocate small bookkeeping inside
 * dnnl_primitive_execute, outside cm_malloc). The scratchpad is the caller's (user mode).
 */
#include "nn/conv.h"

#include <stdint.h>
#include <string.h>

#include "cm/alloc.h"
#include "core/vectorize.h"

#define REAL float
#define FN(name) name
#include "nn/conv_template.h"
#undef REAL
#undef FN

#define REAL double
#define FN(name) name##_f64
#include "nn/conv_template.h"
#undef REAL
#undef FN

/* A primitive with the memory object of its scratchpad (handle bound later). */
typedef struct {
    dnnl_primitive_t primitive;
    dnnl_memory_t scratchpad;
} step;

enum { STEP_FORWARD, STEP_BACKWARD_DATA, STEP_BACKWARD_WEIGHTS, STEP_LOAD_FORWARD,
       STEP_LOAD_BACKWARD_DATA, STEP_STORE_GRADIENT, STEP_COUNT };

/* Memory objects: plain ones point at the caller's arrays per call; blocked ones at `buffers`. */
enum { MEM_SRC, MEM_DST, MEM_BIAS, MEM_DIFF_SRC, MEM_DIFF_DST, MEM_DIFF_BIAS, MEM_USER_WEIGHTS,
       MEM_USER_DIFF_WEIGHTS, MEM_WEIGHTS_FORWARD, MEM_WEIGHTS_BACKWARD_DATA, MEM_DIFF_WEIGHTS,
       MEM_DIFF_WEIGHTS_SUM, MEM_COUNT };

struct cm_conv_plan {
    int H, W, C, OC, K, stride;
    int thin;                  /* 3x3, stride 1, OC = 1: conv_thin.c, no primitive */
    float *taps, *taps_grad, *taps_sum; /* thin: weights, one row's and the running weight
                                         * gradient in tap order [9][C] (inside buffers) */
    cm_onednn *onednn; /* borrowed */
    step steps[STEP_COUNT]; /* STEP_LOAD_BACKWARD_DATA unused (NULL) when the formats agree */
    dnnl_memory_t memory[MEM_COUNT];
    size_t scratchpad_bytes;
    size_t diff_weights_count; /* floats of the blocked weight gradient (padding included) */
    float *diff_weights, *diff_weights_sum, *diff_bias; /* inside `buffers` */
    void *buffers;                                      /* owns the blocked arrays */
    const char *implementation;
};

/* to[n] += from[n] (the running weight-gradient sum). */
VECTOR_CLONES
static void add_into(float *restrict to, const float *restrict from, size_t n) {
    for (size_t i = 0; i < n; i++) to[i] += from[i];
}

static cm_status make_step(step *out, const_dnnl_primitive_desc_t pd, size_t *scratchpad_max,
                           cm_onednn *onednn) {
    cm_status status = cm_onednn_check(dnnl_primitive_create(&out->primitive, pd), "primitive");
    if (status != CM_OK) return out->primitive = NULL, status;
    const dnnl_memory_desc_t *md = dnnl_primitive_desc_query_md(pd, dnnl_query_scratchpad_md, 0);
    size_t bytes = md ? dnnl_memory_desc_get_size(md) : 0;
    if (bytes > *scratchpad_max) *scratchpad_max = bytes;
    if (bytes == 0) return CM_OK;
    status = cm_onednn_check(dnnl_memory_create(&out->scratchpad, md, onednn->engine,
                                                DNNL_MEMORY_NONE), "scratchpad memory");
    if (status != CM_OK) out->scratchpad = NULL;
    return status;
}

static cm_status run_step(step *s, dnnl_stream_t stream, int nargs, dnnl_exec_arg_t *args) {
    if (s->scratchpad) args[nargs++] = (dnnl_exec_arg_t){DNNL_ARG_SCRATCHPAD, s->scratchpad};
    int pinned = cm_onednn_pin_begin();
    dnnl_status_t status = dnnl_primitive_execute(s->primitive, stream, nargs, args);
    if (status == dnnl_success) status = dnnl_stream_wait(stream);
    cm_onednn_pin_end(pinned);
    return cm_onednn_check(status, "execute");
}

static cm_status set_handle(cm_conv_plan *plan, int which, const void *pointer) {
    return cm_onednn_check(dnnl_memory_set_data_handle(plan->memory[which], (void *)pointer),
                           "set data handle");
}

/* The memory formats of a plan: the caller's (NHWC rows, OIHW weights) and the ones the
 * primitives chose for the weights. */
typedef struct {
    dnnl_memory_desc_t src, dst, bias, user_weights;
    dnnl_memory_desc_t weights_forward, weights_backward_data, diff_weights;
    int separate; /* backward-data wants other weights than forward */
} plan_formats;

#define TRY_DNNL(call, what)                                                \
    do {                                                                    \
        if ((status = cm_onednn_check((call), (what))) != CM_OK) goto done; \
    } while (0)

/* The descriptors of one row's convolution and the primitives (and reorders) made from them. */
static cm_status build_primitives(cm_conv_plan *plan, plan_formats *f) {
    cm_onednn *dnn = plan->onednn;
    int H = plan->H, W = plan->W, C = plan->C, OC = plan->OC, K = plan->K, s = plan->stride;
    int OH = cm_conv2d_out_size(H, K, s), OW = cm_conv2d_out_size(W, K, s), P = K / 2;
    dnnl_memory_desc_t any_weights;
    dnnl_dims_t src_dims = {1, C, H, W}, dst_dims = {1, OC, OH, OW}, bias_dims = {OC},
                weight_dims = {OC, C, K, K};
    dnnl_dims_t strides = {s, s}, pad_l = {P, P};
    /* oneDNN wants the right padding that makes (H + pad_l + pad_r - K) / s + 1 = OH exact */
    dnnl_dims_t pad_r = {(OH - 1) * s + K - H - P, (OW - 1) * s + K - W - P};
    dnnl_primitive_attr_t attr = NULL;
    dnnl_primitive_desc_t pd[STEP_COUNT] = {0};
    dnnl_convolution_desc_t forward, backward_data, backward_weights;
    cm_status status = CM_OK;
    TRY_DNNL(dnnl_memory_desc_init_by_tag(&f->src, 4, src_dims, dnnl_f32, dnnl_nhwc), "src md");
    TRY_DNNL(dnnl_memory_desc_init_by_tag(&f->dst, 4, dst_dims, dnnl_f32, dnnl_nhwc), "dst md");
    TRY_DNNL(dnnl_memory_desc_init_by_tag(&f->bias, 1, bias_dims, dnnl_f32, dnnl_x), "bias md");
    TRY_DNNL(dnnl_memory_desc_init_by_tag(&f->user_weights, 4, weight_dims, dnnl_f32, dnnl_oihw),
             "weights md");
    TRY_DNNL(dnnl_memory_desc_init_by_tag(&any_weights, 4, weight_dims, dnnl_f32,
                                          dnnl_format_tag_any), "weights md");
    TRY_DNNL(dnnl_primitive_attr_create(&attr), "attributes");
    TRY_DNNL(dnnl_primitive_attr_set_scratchpad_mode(attr, dnnl_scratchpad_mode_user), "attributes");
    TRY_DNNL(dnnl_convolution_forward_desc_init(&forward, dnnl_forward_training,
                                                dnnl_convolution_direct, &f->src, &any_weights,
                                                &f->bias, &f->dst, strides, pad_l, pad_r), "forward");
    TRY_DNNL(dnnl_primitive_desc_create(&pd[STEP_FORWARD], &forward, attr, dnn->engine, NULL),
             "forward");
    TRY_DNNL(dnnl_convolution_backward_data_desc_init(&backward_data, dnnl_convolution_direct,
                                                      &f->src, &any_weights, &f->dst, strides,
                                                      pad_l, pad_r), "backward data");
    TRY_DNNL(dnnl_primitive_desc_create(&pd[STEP_BACKWARD_DATA], &backward_data, attr, dnn->engine,
                                        pd[STEP_FORWARD]), "backward data");
    TRY_DNNL(dnnl_convolution_backward_weights_desc_init(&backward_weights, dnnl_convolution_direct,
                                                         &f->src, &any_weights, &f->bias, &f->dst,
                                                         strides, pad_l, pad_r), "backward weights");
    TRY_DNNL(dnnl_primitive_desc_create(&pd[STEP_BACKWARD_WEIGHTS], &backward_weights, attr,
                                        dnn->engine, pd[STEP_FORWARD]), "backward weights");
    f->weights_forward = *dnnl_primitive_desc_query_md(pd[STEP_FORWARD], dnnl_query_weights_md, 0);
    f->weights_backward_data =
        *dnnl_primitive_desc_query_md(pd[STEP_BACKWARD_DATA], dnnl_query_weights_md, 0);
    f->diff_weights =
        *dnnl_primitive_desc_query_md(pd[STEP_BACKWARD_WEIGHTS], dnnl_query_diff_weights_md, 0);
    f->separate = !dnnl_memory_desc_equal(&f->weights_forward, &f->weights_backward_data);
    TRY_DNNL(dnnl_reorder_primitive_desc_create(&pd[STEP_LOAD_FORWARD], &f->user_weights,
                                                dnn->engine, &f->weights_forward, dnn->engine,
                                                attr), "reorder");
    if (f->separate)
        TRY_DNNL(dnnl_reorder_primitive_desc_create(&pd[STEP_LOAD_BACKWARD_DATA], &f->user_weights,
                                                    dnn->engine, &f->weights_backward_data,
                                                    dnn->engine, attr), "reorder");
    TRY_DNNL(dnnl_reorder_primitive_desc_create(&pd[STEP_STORE_GRADIENT], &f->diff_weights,
                                                dnn->engine, &f->user_weights, dnn->engine, attr),
             "reorder");
    for (int i = 0; i < STEP_COUNT; i++)
        if (pd[i] && (status = make_step(&plan->steps[i], pd[i], &plan->scratchpad_bytes, dnn)))
            goto done;
done:
    for (int i = 0; i < STEP_COUNT; i++)
        if (pd[i]) dnnl_primitive_desc_destroy(pd[i]);
    if (attr) dnnl_primitive_attr_destroy(attr);
    return status;
}

/* The plan's own buffers, each 64-byte aligned (forward weights, backward-data weights when
 * separate, one row's weight gradient, the running sum, one row's bias gradient), and the
 * memory objects: plain ones point at the caller's arrays per call, the others at the buffers. */
static cm_status build_memories(cm_conv_plan *plan, const plan_formats *f) {
    size_t align = 64, sizes[5] = {dnnl_memory_desc_get_size(&f->weights_forward),
                                   f->separate ? dnnl_memory_desc_get_size(&f->weights_backward_data) : 0,
                                   dnnl_memory_desc_get_size(&f->diff_weights),
                                   dnnl_memory_desc_get_size(&f->diff_weights),
                                   (size_t)plan->OC * sizeof(float)};
    size_t total = align;
    for (int i = 0; i < 5; i++) total += (sizes[i] + align - 1) / align * align;
    if (!(plan->buffers = cm_malloc(total, 1)))
        return cm_error_set(CM_ERR_NOMEM, "convolution weight buffers (%zu bytes)", total);
    char *p = (char *)(((uintptr_t)plan->buffers + align - 1) / align * align), *at[5];
    for (int i = 0; i < 5; i++) at[i] = p, p += (sizes[i] + align - 1) / align * align;
    plan->diff_weights = (float *)at[2], plan->diff_weights_sum = (float *)at[3];
    plan->diff_bias = (float *)at[4];
    plan->diff_weights_count = sizes[2] / sizeof(float);
    struct {
        int which;
        const dnnl_memory_desc_t *md;
        void *handle;
    } memories[MEM_COUNT] = {
        {MEM_SRC, &f->src, DNNL_MEMORY_NONE}, {MEM_DST, &f->dst, DNNL_MEMORY_NONE},
        {MEM_BIAS, &f->bias, DNNL_MEMORY_NONE}, {MEM_DIFF_SRC, &f->src, DNNL_MEMORY_NONE},
        {MEM_DIFF_DST, &f->dst, DNNL_MEMORY_NONE}, {MEM_DIFF_BIAS, &f->bias, at[4]},
        {MEM_USER_WEIGHTS, &f->user_weights, DNNL_MEMORY_NONE},
        {MEM_USER_DIFF_WEIGHTS, &f->user_weights, DNNL_MEMORY_NONE},
        {MEM_WEIGHTS_FORWARD, &f->weights_forward, at[0]},
        {MEM_WEIGHTS_BACKWARD_DATA, &f->weights_backward_data, f->separate ? at[1] : at[0]},
        {MEM_DIFF_WEIGHTS, &f->diff_weights, at[2]},
        {MEM_DIFF_WEIGHTS_SUM, &f->diff_weights, at[3]}};
    cm_status status = CM_OK;
    for (int i = 0; i < MEM_COUNT; i++)
        TRY_DNNL(dnnl_memory_create(&plan->memory[memories[i].which], memories[i].md,
                                    plan->onednn->engine, memories[i].handle), "memory");
done:
    return status;
}
#undef TRY_DNNL

/* A thin plan's buffers: its weights, one row's weight gradient and the running sum, in tap
 * order, and one row's bias gradient. */
static cm_status build_thin(cm_conv_plan *plan) {
    size_t n = (size_t)9 * plan->C * plan->OC;
    if (!(plan->buffers = cm_malloc(3 * n + (size_t)plan->OC, sizeof(float))))
        return cm_error_set(CM_ERR_NOMEM, "convolution weight buffers (%zu values)", 3 * n);
    plan->taps = plan->buffers;
    plan->taps_grad = plan->taps + n, plan->taps_sum = plan->taps_grad + n;
    plan->diff_bias = plan->taps_sum + n;
    return CM_OK;
}

/* Largest sizes a plan accepts: every product of dimensions stays far below 2^31. */
#define CM_CONV_MAX_SIZE 4096
#define CM_CONV_MAX_CHANNELS 4096

cm_status cm_conv_plan_create(cm_conv_plan **out, cm_onednn *onednn, int H, int W, int C, int OC,
                              int K, int stride) {
    *out = NULL;
    if (H < 1 || W < 1 || H > CM_CONV_MAX_SIZE || W > CM_CONV_MAX_SIZE || C < 1 || OC < 1 ||
        C > CM_CONV_MAX_CHANNELS || OC > CM_CONV_MAX_CHANNELS || K < 1 || K > 7 || K % 2 == 0 ||
        (stride != 1 && stride != 2))
        return cm_error_set(CM_ERR_INVALID,
                            "convolution %dx%dx%d -> %d channels, kernel %d, stride %d: out of "
                            "range (sizes 1..%d, channels 1..%d, odd kernel <= 7, stride 1 or 2)",
                            H, W, C, OC, K, stride, CM_CONV_MAX_SIZE, CM_CONV_MAX_CHANNELS);
    cm_conv_plan *plan = cm_calloc(1, sizeof *plan);
    if (!plan) return cm_error_set(CM_ERR_NOMEM, "convolution plan");
    *plan = (cm_conv_plan){.H = H, .W = W, .C = C, .OC = OC, .K = K, .stride = stride,
                           .onednn = onednn};
    plan->thin = K == 3 && stride == 1 && OC == 1 && C % CM_CONV_THIN_LANES == 0;
    cm_status status = CM_OK;
    if (plan->thin) {
        status = build_thin(plan);
    } else {
        int pinned = cm_onednn_pin_begin(); /* oneDNN picks kernels for the thread count it sees */
        plan_formats formats;
        status = build_primitives(plan, &formats);
        if (status == CM_OK) status = build_memories(plan, &formats);
        cm_onednn_pin_end(pinned);
    }
    if (status != CM_OK) {
        cm_conv_plan_free(plan);
        return status;
    }
    *out = plan;
    return CM_OK;
}

void cm_conv_plan_free(cm_conv_plan *plan) {
    if (!plan) return;
    for (int i = 0; i < STEP_COUNT; i++) {
        if (plan->steps[i].primitive) dnnl_primitive_destroy(plan->steps[i].primitive);
        if (plan->steps[i].scratchpad) dnnl_memory_destroy(plan->steps[i].scratchpad);
    }
    for (int i = 0; i < MEM_COUNT; i++)
        if (plan->memory[i]) dnnl_memory_destroy(plan->memory[i]);
    cm_free(plan->buffers);
    cm_free(plan);
}

/* weight[OC, C, 3, 3] <-> taps[ky 3 + kx][oc C + c] (OC = 1 where it is used). */
static void to_taps(float *taps, const float *weight, int C, int OC) {
    for (int i = 0; i < C * OC; i++)
        for (int tap = 0; tap < 9; tap++) taps[tap * C * OC + i] = weight[i * 9 + tap];
}

static void from_taps(float *weight, const float *taps, int C, int OC) {
    for (int i = 0; i < C * OC; i++)
        for (int tap = 0; tap < 9; tap++) weight[i * 9 + tap] = taps[tap * C * OC + i];
}

size_t cm_conv_plan_scratchpad_bytes(const cm_conv_plan *plan) {
    return plan->scratchpad_bytes > 0 ? plan->scratchpad_bytes : 1;
}

cm_status cm_conv_plan_bind_scratchpad(cm_conv_plan *plan, void *buffer) {
    if (plan->thin) return CM_OK;
    for (int i = 0; i < STEP_COUNT; i++)
        if (plan->steps[i].scratchpad)
            CM_TRY(cm_onednn_check(dnnl_memory_set_data_handle(plan->steps[i].scratchpad, buffer),
                                   "scratchpad handle"));
    return CM_OK;
}

const char *cm_conv_plan_implementation(const cm_conv_plan *plan) {
    if (plan->thin) return "cm thin 3x3 (conv_thin.c)";
    const_dnnl_primitive_desc_t pd = NULL;
    const char *name = NULL;
    if (dnnl_primitive_get_primitive_desc(plan->steps[STEP_FORWARD].primitive, &pd) !=
            dnnl_success ||
        dnnl_primitive_desc_query(pd, dnnl_query_impl_info_str, 0, &name) != dnnl_success || !name)
        return "unknown";
    return name;
}

cm_status cm_conv_plan_load_weights(cm_conv_plan *plan, const float *weight) {
    if (plan->thin) {
        to_taps(plan->taps, weight, plan->C, plan->OC);
        return CM_OK;
    }
    dnnl_stream_t stream = plan->onednn->stream;
    CM_TRY(set_handle(plan, MEM_USER_WEIGHTS, weight));
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_FROM, plan->memory[MEM_USER_WEIGHTS]},
                               {DNNL_ARG_TO, plan->memory[MEM_WEIGHTS_FORWARD]}};
    CM_TRY(run_step(&plan->steps[STEP_LOAD_FORWARD], stream, 2, args));
    if (!plan->steps[STEP_LOAD_BACKWARD_DATA].primitive) return CM_OK;
    dnnl_exec_arg_t args_data[3] = {{DNNL_ARG_FROM, plan->memory[MEM_USER_WEIGHTS]},
                                    {DNNL_ARG_TO, plan->memory[MEM_WEIGHTS_BACKWARD_DATA]}};
    return run_step(&plan->steps[STEP_LOAD_BACKWARD_DATA], stream, 2, args_data);
}

cm_status cm_conv_plan_forward(cm_conv_plan *plan, float *out, const float *inp,
                               const float *bias) {
    if (plan->thin) {
        cm_conv3x3_thin_forward(out, inp, plan->taps, bias, plan->H, plan->W, plan->C);
        return CM_OK;
    }
    CM_TRY(set_handle(plan, MEM_SRC, inp));
    CM_TRY(set_handle(plan, MEM_DST, out));
    CM_TRY(set_handle(plan, MEM_BIAS, bias));
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, plan->memory[MEM_SRC]},
                               {DNNL_ARG_WEIGHTS, plan->memory[MEM_WEIGHTS_FORWARD]},
                               {DNNL_ARG_BIAS, plan->memory[MEM_BIAS]},
                               {DNNL_ARG_DST, plan->memory[MEM_DST]}};
    return run_step(&plan->steps[STEP_FORWARD], plan->onednn->stream, 4, args);
}

cm_status cm_conv_plan_backward_data(cm_conv_plan *plan, float *dinp, const float *dout) {
    if (plan->thin) {
        cm_conv3x3_thin_backward_data(dinp, dout, plan->taps, plan->H, plan->W, plan->C);
        return CM_OK;
    }
    CM_TRY(set_handle(plan, MEM_DIFF_SRC, dinp));
    CM_TRY(set_handle(plan, MEM_DIFF_DST, dout));
    dnnl_exec_arg_t args[4] = {{DNNL_ARG_DIFF_SRC, plan->memory[MEM_DIFF_SRC]},
                               {DNNL_ARG_WEIGHTS, plan->memory[MEM_WEIGHTS_BACKWARD_DATA]},
                               {DNNL_ARG_DIFF_DST, plan->memory[MEM_DIFF_DST]}};
    return run_step(&plan->steps[STEP_BACKWARD_DATA], plan->onednn->stream, 3, args);
}

/* A thin plan's backward-weights: the row's gradient (zeroed, then summed over pixels), then
 * the running sum, as the oneDNN path does. */
static void thin_backward_weights(cm_conv_plan *plan, float *dbias, const float *dout,
                                  const float *inp, int first) {
    size_t n = (size_t)9 * plan->C * plan->OC;
    memset(plan->taps_grad, 0, n * sizeof(float));
    memset(plan->diff_bias, 0, (size_t)plan->OC * sizeof(float));
    cm_conv3x3_thin_backward_weights(plan->taps_grad, plan->diff_bias, dout, inp, plan->H, plan->W,
                                     plan->C);
    if (first)
        memcpy(plan->taps_sum, plan->taps_grad, n * sizeof(float));
    else
        add_into(plan->taps_sum, plan->taps_grad, n);
    add_into(dbias, plan->diff_bias, (size_t)plan->OC);
}

cm_status cm_conv_plan_backward_weights(cm_conv_plan *plan, float *dbias, const float *dout,
                                        const float *inp, int first) {
    if (plan->thin) {
        thin_backward_weights(plan, dbias, dout, inp, first);
        return CM_OK;
    }
    CM_TRY(set_handle(plan, MEM_SRC, inp));
    CM_TRY(set_handle(plan, MEM_DIFF_DST, dout));
    /* the first row writes the sum itself; later rows write their own and add it */
    dnnl_memory_t target = plan->memory[first ? MEM_DIFF_WEIGHTS_SUM : MEM_DIFF_WEIGHTS];
    dnnl_exec_arg_t args[5] = {{DNNL_ARG_SRC, plan->memory[MEM_SRC]},
                               {DNNL_ARG_DIFF_DST, plan->memory[MEM_DIFF_DST]},
                               {DNNL_ARG_DIFF_WEIGHTS, target},
                               {DNNL_ARG_DIFF_BIAS, plan->memory[MEM_DIFF_BIAS]}};
    CM_TRY(run_step(&plan->steps[STEP_BACKWARD_WEIGHTS], plan->onednn->stream, 4, args));
    if (!first) add_into(plan->diff_weights_sum, plan->diff_weights, plan->diff_weights_count);
    add_into(dbias, plan->diff_bias, (size_t)plan->OC);
    return CM_OK;
}

cm_status cm_conv_plan_store_weight_gradient(cm_conv_plan *plan, float *dweight) {
    if (plan->thin) {
        from_taps(dweight, plan->taps_sum, plan->C, plan->OC);
        return CM_OK;
    }
    CM_TRY(set_handle(plan, MEM_USER_DIFF_WEIGHTS, dweight));
    dnnl_exec_arg_t args[3] = {{DNNL_ARG_FROM, plan->memory[MEM_DIFF_WEIGHTS_SUM]},
                               {DNNL_ARG_TO, plan->memory[MEM_USER_DIFF_WEIGHTS]}};
    return run_step(&plan->steps[STEP_STORE_GRADIENT], plan->onednn->stream, 2, args);
}
