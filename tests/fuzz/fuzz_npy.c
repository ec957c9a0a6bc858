/* fuzz_npy.c: fuzz target of the NPY reader (cm_npy_parse): any bytes either parse into a
 * non-empty rows x cols matrix of finite values or fail with a status. */
#include <math.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/io.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    double *values = NULL;
    size_t rows = 0, cols = 0;
    if (cm_npy_parse(&values, &rows, &cols, data, size, "fuzz.npy") != CM_OK) return 0;
    if (rows == 0 || cols == 0) abort();
    for (size_t i = 0; i < rows * cols; i++)
        if (!isfinite(values[i])) abort();
    cm_free(values);
    return 0;
}
