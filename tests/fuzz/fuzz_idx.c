/* fuzz_idx.c: fuzz target of the IDX reader (cm_idx_parse, gzip or plain): any bytes either
 * fail with a status or give 1 to 3 non-zero dimensions whose product is the byte count; the
 * array written back as a plain IDX file parses to the same shape and bytes. */
#include <string.h>

#include "cm/alloc.h"
#include "cm/image.h"
#include "fuzz.h"

/* The plain IDX image of `a`: magic 00 00 08 ndim, big-endian dimensions, the bytes. */
static unsigned char *plain_image(const cm_idx_array *a, size_t *size) {
    *size = 4 + 4 * a->ndim + a->size;
    unsigned char *image = cm_malloc(*size, 1);
    if (!image) return NULL;
    image[0] = image[1] = 0;
    image[2] = 0x08;
    image[3] = (unsigned char)a->ndim;
    for (size_t i = 0; i < a->ndim; i++)
        for (int b = 0; b < 4; b++)
            image[4 + 4 * i + b] = (unsigned char)(a->shape[i] >> (24 - 8 * b));
    memcpy(image + 4 + 4 * a->ndim, a->bytes, a->size);
    return image;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cm_idx_array a, again;
    if (cm_idx_parse(&a, data, size, "fuzz.idx") != CM_OK) return 0;
    size_t product = 1;
    for (size_t i = 0; i < 3; i++) {
        if (a.shape[i] == 0 || (i >= a.ndim && a.shape[i] != 1)) abort();
        product *= a.shape[i];
    }
    if (a.ndim < 1 || a.ndim > 3 || product != a.size || !a.bytes) abort();
    size_t plain_size = 0;
    unsigned char *plain = plain_image(&a, &plain_size);
    if (plain) {
        if (cm_idx_parse(&again, plain, plain_size, "fuzz-again.idx") != CM_OK) abort();
        if (again.ndim != a.ndim || again.size != a.size ||
            memcmp(again.shape, a.shape, sizeof a.shape) || memcmp(again.bytes, a.bytes, a.size))
            abort();
        cm_idx_free(&again);
        cm_free(plain);
    }
    cm_idx_free(&a);
    return 0;
}
