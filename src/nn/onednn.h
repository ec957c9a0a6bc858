/* onednn.h (private to src/nn): the oneDNN engine and stream of a network workspace (the U-Net's
 * convolutions, the MLP's products), and the rule that every oneDNN call runs on the calling
 * thread alone.
 *
 * Debian's oneDNN is built with the OpenMP runtime (no threadpool interface): it reads its
 * thread count from omp_get_max_threads(), a per-thread value, when a primitive is created
 * and when it runs. cm_onednn_pin_begin sets the calling thread's value to 1 (returning the
 * previous one) and cm_onednn_pin_end restores it, so no OpenMP team is ever started: the
 * caller's pool (parallel.h) owns the parallelism and the bits do not depend on thread counts.
 * Engines and streams are per workspace (no process-wide state here). Every oneDNN call of
 * src/nn (conv.c, matmul.c) goes through this one pin.
 */
#ifndef CM_NN_ONEDNN_H
#define CM_NN_ONEDNN_H

#include <oneapi/dnnl/dnnl.h>

#include "cm/status.h"

typedef struct {
    dnnl_engine_t engine; /* CPU engine 0 */
    dnnl_stream_t stream; /* in-order; used by one thread at a time */
} cm_onednn;

/* Create the engine and stream (CM_ERR_UNSUPPORTED with oneDNN's reason on failure; *out is
 * then cleared and owns nothing). */
cm_status cm_onednn_create(cm_onednn *out);
/* Release both (a zeroed cm_onednn is allowed). */
void cm_onednn_destroy(cm_onednn *onednn);

/* Run oneDNN on the calling thread alone until the matching cm_onednn_pin_end(previous). */
int cm_onednn_pin_begin(void);
void cm_onednn_pin_end(int previous);

/* The instruction set oneDNN generates kernels for on this machine (the highest it may use:
 * "avx512_core_bf16", "avx2", ...; capped by the environment variable ONEDNN_MAX_CPU_ISA).
 * A static string. */
const char *cm_onednn_isa(void);

/* CM_OK for dnnl_success, else records "oneDNN: <what>: <status>" and returns
 * CM_ERR_NOMEM (out_of_memory) or CM_ERR_UNSUPPORTED (anything else). */
cm_status cm_onednn_check(dnnl_status_t status, const char *what);

#endif
