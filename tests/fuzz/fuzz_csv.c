/* fuzz_csv.c: fuzz target of the CSV reader (cm_csv_parse_named): any text either parses into
 * a finite rows x cols matrix, with cols header names when it has a header, or fails with a
 * status; what parses also parses again after being written with "%.17g" and gives the same
 * values; the index test and a column selection by the header's own names never break. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/data.h"
#include "cm/io.h"
#include "fuzz.h"

#define ROUND_TRIP_MAX_VALUES 4096 /* values re-printed per input (keeps the target fast) */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    double *values = NULL;
    size_t rows = 0, cols = 0;
    char **names = NULL;
    if (cm_csv_parse_named(&values, &rows, &cols, &names, (const char *)data, size, "fuzz.csv") !=
        CM_OK)
        return 0;
    if (rows == 0 || cols == 0) abort();
    size_t *chosen = cm_malloc(cols, sizeof(size_t)), count = 0;
    if (names && chosen) {
        for (size_t j = 0; j < cols; j++)
            if (strlen(names[j]) > 4096) abort();
        /* the first name as a selection: it resolves to a column or fails with a status */
        if (names[0][0] && !strchr(names[0], ',') &&
            cm_data_parse_columns(chosen, &count, names[0], (const char *const *)names, cols) ==
                CM_OK) {
            for (size_t k = 0; k < count; k++)
                if (chosen[k] >= cols) abort();
        }
    }
    cm_free(chosen);
    cm_free(names);
    for (size_t i = 0; i < rows * cols; i++)
        if (!isfinite(values[i])) abort();
    if (rows * cols <= ROUND_TRIP_MAX_VALUES) {
        size_t capacity = rows * cols * 26 + 1, used = 0;
        char *text = cm_malloc(capacity, 1);
        for (size_t i = 0; text && i < rows * cols; i++)
            used += (size_t)snprintf(text + used, capacity - used, "%.17g%c", values[i],
                                     (i + 1) % cols ? ',' : '\n');
        double *again = NULL;
        size_t rows2 = 0, cols2 = 0;
        if (text && cm_csv_parse(&again, &rows2, &cols2, text, used, "again.csv") == CM_OK) {
            if (rows2 != rows || cols2 != cols || memcmp(again, values, rows * cols * sizeof(double)))
                abort();
        } else if (text) {
            abort();
        }
        cm_free(again);
        cm_free(text);
    }
    cm_free(values);
    return 0;
}
