/* fuzz_csv.c: fuzz target of the CSV reader (cm_csv_parse): any text either parses into a
 * finite rows x cols matrix or fails with a status; what parses also parses again after being
 * written with "%.17g" and gives the same values. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/io.h"
#include "fuzz.h"

#define ROUND_TRIP_MAX_VALUES 4096 /* values re-printed per input (keeps the target fast) */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    double *values = NULL;
    size_t rows = 0, cols = 0;
    if (cm_csv_parse(&values, &rows, &cols, (const char *)data, size, "fuzz.csv") != CM_OK)
        return 0;
    if (rows == 0 || cols == 0) abort();
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
