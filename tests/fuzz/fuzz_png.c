/* fuzz_png.c: fuzz target of the PNG reader (cm_png_parse, libpng): any bytes either fail with
 * a status or give one gray or RGB image within the size limits; that image encoded again
 * (cm_png_encode) decodes to the same pixels. */
#include <string.h>

#include "cm/alloc.h"
#include "cm/image.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cm_image_set image, again;
    if (cm_png_parse(&image, data, size, "fuzz.png") != CM_OK) return 0;
    size_t C = image.channels, H = image.height, W = image.width, plane = H * W;
    if (image.count != 1 || (C != 1 && C != 3) || H == 0 || W == 0 || H > CM_IMAGE_MAX_SIDE ||
        W > CM_IMAGE_MAX_SIDE || !image.bytes || image.pixels || image.labels)
        abort();
    unsigned char *interleaved = cm_malloc(plane, C), *png = NULL;
    size_t png_size = 0;
    if (interleaved) {
        for (size_t c = 0; c < C; c++)
            for (size_t p = 0; p < plane; p++) interleaved[p * C + c] = image.bytes[c * plane + p];
        if (cm_png_encode(&png, &png_size, interleaved, C, H, W) == CM_OK) {
            if (cm_png_parse(&again, png, png_size, "fuzz-again.png") != CM_OK) abort();
            if (again.channels != C || again.height != H || again.width != W ||
                memcmp(again.bytes, image.bytes, plane * C) != 0)
                abort();
            cm_image_set_free(&again);
        }
    }
    cm_free(png);
    cm_free(interleaved);
    cm_image_set_free(&image);
    return 0;
}
