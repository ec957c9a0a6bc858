/* columns.h: column selection and the row-index test of file sources, shared by data.c (not
 * installed; the public part, cm_data_parse_columns, is in include/cm/data.h). */
#ifndef CM_DATA_COLUMNS_H
#define CM_DATA_COLUMNS_H

#include <stddef.h>

#include "cm/data.h"

/* CM_ERR_FORMAT with a hint when column 0 of values (rows x cols; names from the CSV header or
 * NULL) is a row index rather than data; CM_OK otherwise. */
cm_status cm_columns_check_index(const double *values, size_t rows, size_t cols,
                              const char *const *names, const char *path);

/* Keep only the columns of `list` (cm_data_parse_columns), in its order: *values (rows x *cols,
 * cm_malloc'ed) is replaced by a new array and *cols updated. Unchanged on failure. */
cm_status cm_columns_select(double **values, size_t rows, size_t *cols, const char *const *names,
                         const char *list);

#endif
