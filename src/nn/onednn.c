/* onednn.c: the engine, stream, thread pinning and status translation of onednn.h. The OpenMP
 * controls are declared here rather than taken from <omp.h>, which clang does not ship without
 * libomp-dev; the symbols come from libgomp, oneDNN's own runtime (linked with -lgomp). */
#include "nn/onednn.h"

#include <oneapi/dnnl/dnnl_debug.h>
#include <string.h>

extern int omp_get_max_threads(void);
extern void omp_set_num_threads(int threads);

cm_status cm_onednn_check(dnnl_status_t status, const char *what) {
    if (status == dnnl_success) return CM_OK;
    return cm_error_set(status == dnnl_out_of_memory ? CM_ERR_NOMEM : CM_ERR_UNSUPPORTED,
                        "oneDNN: %s: %s", what, dnnl_status2str(status));
}

int cm_onednn_pin_begin(void) {
    int previous = omp_get_max_threads();
    if (previous != 1) omp_set_num_threads(1);
    return previous;
}

void cm_onednn_pin_end(int previous) {
    if (previous != 1) omp_set_num_threads(previous);
}

cm_status cm_onednn_create(cm_onednn *out) {
    *out = (cm_onednn){0};
    cm_status status = cm_onednn_check(dnnl_engine_create(&out->engine, dnnl_cpu, 0), "CPU engine");
    if (status != CM_OK) {
        out->engine = NULL;
        return status;
    }
    status = cm_onednn_check(dnnl_stream_create(&out->stream, out->engine, dnnl_stream_default_flags),
                             "stream");
    if (status != CM_OK) {
        out->stream = NULL;
        cm_onednn_destroy(out);
    }
    return status;
}

void cm_onednn_destroy(cm_onednn *onednn) {
    if (onednn->stream) dnnl_stream_destroy(onednn->stream);
    if (onednn->engine) dnnl_engine_destroy(onednn->engine);
    *onednn = (cm_onednn){0};
}

const char *cm_onednn_isa(void) {
    const char *name = dnnl_cpu_isa2str(dnnl_get_effective_cpu_isa());
    const char *prefix = "cpu_isa_";
    if (name && strncmp(name, prefix, strlen(prefix)) == 0) name += strlen(prefix);
    return name ? name : "unknown";
}
