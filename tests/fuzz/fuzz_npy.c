/* fuzz_npy.c: fuzz target of the NPY readers: any bytes either parse into a non-empty rows x
 * cols matrix of finite values (cm_npy_parse) or fail with a status; and either give an image
 * set whose pixels lie in [0, 1] (cm_image_parse_npy: [N, H, W] / [N, C, H, W]) or fail. */
#include <math.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/image.h"
#include "cm/io.h"
#include "fuzz.h"

static void check_images(const uint8_t *data, size_t size) {
    cm_image_set set;
    if (cm_image_parse_npy(&set, data, size, "fuzz-images.npy") != CM_OK) return;
    size_t count = set.count * cm_image_set_dim(&set);
    if (count == 0 || set.channels > CM_IMAGE_MAX_CHANNELS || !set.bytes == !set.pixels) abort();
    for (size_t k = 0; set.pixels && k < count; k++)
        if (!(set.pixels[k] >= 0.0f && set.pixels[k] <= 1.0f)) abort();
    cm_image_set_free(&set);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    double *values = NULL;
    size_t rows = 0, cols = 0;
    check_images(data, size);
    if (cm_npy_parse(&values, &rows, &cols, data, size, "fuzz.npy") != CM_OK) return 0;
    if (rows == 0 || cols == 0) abort();
    for (size_t i = 0; i < rows * cols; i++)
        if (!isfinite(values[i])) abort();
    cm_free(values);
    return 0;
}
