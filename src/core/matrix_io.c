/* matrix_io.c: read or write a rows x cols matrix as NPY or CSV, chosen by the file extension.
 *
 * ".npy" and ".csv" are matched case-insensitively; anything else is refused rather than
 * guessed from the contents, so a typo in an output name never produces a surprising format.
 * NPY is written as float32 (npy.c), CSV with "%.9g" and no header line (csv.c).
 */
#include "cm/io.h"

#include <ctype.h>
#include <string.h>

typedef enum { MATRIX_UNKNOWN, MATRIX_NPY, MATRIX_CSV } matrix_format;

static int extension_is(const char *extension, const char *expected) {
    for (; *extension && *expected; extension++, expected++)
        if (tolower((unsigned char)*extension) != *expected) return 0;
    return *extension == '\0' && *expected == '\0';
}

static matrix_format format_of(const char *path) {
    const char *slash = strrchr(path, '/');
    const char *dot = strrchr(slash ? slash + 1 : path, '.');
    if (!dot) return MATRIX_UNKNOWN;
    if (extension_is(dot, ".npy")) return MATRIX_NPY;
    if (extension_is(dot, ".csv")) return MATRIX_CSV;
    return MATRIX_UNKNOWN;
}

cm_status cm_matrix_read(double **out, size_t *out_rows, size_t *out_cols, const char *path) {
    return cm_matrix_read_named(out, out_rows, out_cols, NULL, path);
}

cm_status cm_matrix_read_named(double **out, size_t *out_rows, size_t *out_cols,
                               char ***out_names, const char *path) {
    *out = NULL;
    *out_rows = *out_cols = 0;
    if (out_names) *out_names = NULL;
    switch (format_of(path)) {
    case MATRIX_NPY: return cm_npy_read(out, out_rows, out_cols, path);
    case MATRIX_CSV: return cm_csv_read_named(out, out_rows, out_cols, out_names, path);
    case MATRIX_UNKNOWN: break;
    }
    return cm_error_set(CM_ERR_INVALID, "%s: unknown extension (expected .npy or .csv)", path);
}

cm_status cm_matrix_write(const char *path, const double *data, size_t rows, size_t cols) {
    switch (format_of(path)) {
    case MATRIX_NPY: return cm_npy_write_f32(path, data, rows, cols);
    case MATRIX_CSV: return cm_csv_write(path, data, rows, cols, NULL);
    case MATRIX_UNKNOWN: break;
    }
    return cm_error_set(CM_ERR_INVALID, "%s: unknown extension (expected .npy or .csv)", path);
}
