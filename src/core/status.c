/* status.c: names of cm_status values and the thread-local error detail (see status.h). */
#include "cm/status.h"

#include <stdarg.h>
#include <stdio.h>

static _Thread_local char error_detail[512];

const char *cm_status_name(cm_status status) {
    switch (status) {
    case CM_OK: return "ok";
    case CM_ERR_NOMEM: return "out of memory";
    case CM_ERR_INVALID: return "invalid argument";
    case CM_ERR_IO: return "input/output error";
    case CM_ERR_FORMAT: return "malformed input";
    case CM_ERR_NONFINITE: return "non-finite value";
    case CM_ERR_DIMENSION: return "dimension mismatch";
    case CM_ERR_UNSUPPORTED: return "unsupported";
    case CM_STATUS_COUNT: break;
    }
    return "unknown status";
}

const char *cm_error_detail(void) { return error_detail; }

cm_status cm_error_set(cm_status status, const char *format, ...) {
    va_list args;
    va_start(args, format);
    vsnprintf(error_detail, sizeof error_detail, format, args);
    va_end(args);
    return status;
}

void cm_error_clear(void) { error_detail[0] = '\0'; }
