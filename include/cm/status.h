/* status.h: the error vocabulary of the cm library.
 *
 * Every library function that can fail returns a cm_status; results travel through
 * out-parameters. The library never prints and never exits: on failure it records a one-line
 * detail (which file, which line, which value) in a thread-local buffer that the CLI reads
 * with cm_error_detail() and prints. Modelled on zstd's error codes with a name function.
 */
#ifndef CM_STATUS_H
#define CM_STATUS_H

#include <stddef.h>

typedef enum {
    CM_OK = 0,
    CM_ERR_NOMEM,       /* an allocation failed */
    CM_ERR_INVALID,     /* an argument or option is out of range or malformed */
    CM_ERR_IO,          /* a file could not be opened, read or written */
    CM_ERR_FORMAT,      /* a file or spec string is damaged or not of the expected format */
    CM_ERR_NONFINITE,   /* NaN or infinity where a finite number is required */
    CM_ERR_DIMENSION,   /* shapes that do not agree (data dimension versus model, ...) */
    CM_ERR_UNSUPPORTED, /* a valid request this build does not implement (dtype, ...) */
    CM_STATUS_COUNT
} cm_status;

/* Short readable name of a status ("out of memory", "invalid argument", ...). Never NULL. */
const char *cm_status_name(cm_status status);

/* Detail of the most recent failure on this thread ("" when none was recorded). The string is
 * owned by the library and valid until the next failing call on this thread. */
const char *cm_error_detail(void);

/* Record a printf-style detail and return `status` (library-internal, but public so that tools
 * built on the library can use the same channel). */
cm_status cm_error_set(cm_status status, const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* Forget the recorded detail. */
void cm_error_clear(void);

/* Return early with the status of an expression that failed. */
#define CM_TRY(expression)                         \
    do {                                           \
        cm_status cm_try_status_ = (expression);   \
        if (cm_try_status_ != CM_OK) return cm_try_status_; \
    } while (0)

#endif
