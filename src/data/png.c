/* png.c: one PNG image in memory to an image set of count 1, and 8-bit gray/RGB pixels to a
 * PNG image in memory, through libpng (its low-level API: the simplified one converts 16-bit
 * and alpha with gamma arithmetic we do not want).
 *
 * Reading: 8-bit gray, gray + alpha, RGB, RGBA; palette and 1/2/4-bit gray expanded to 8 bits;
 * alpha (and tRNS transparency) dropped, not composited; 16-bit refused. libpng reports errors
 * by longjmp: its message (and the warning before it) become the status detail, nothing is
 * printed, its allocations go through cm_malloc (so fault injection reaches them), and
 * width and height are capped at CM_IMAGE_MAX_SIDE before any row is allocated. Chunks after
 * the image data are read up to IEND; bytes after IEND are ignored, as libpng does.
 */
#include "cm/image.h"

#include <png.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>

#include "cm/alloc.h"

#define PNG_SIGNATURE_BYTES 8
#define PNG_MESSAGE_MAX 160
/* Decoded bytes a PNG of n bytes can hold at most: deflate expands at most 1032 : 1 and a
 * decoded byte needs at least 1/24 of a raw one (1-bit palette indexes become RGB bytes); the
 * slack covers tiny files. Larger promises are refused before the pixels are allocated. */
#define PNG_MAX_EXPANSION (24 * 1032)
#define PNG_EXPANSION_SLACK ((uint64_t)1 << 16)

/* What libpng's callbacks share with us: the input, the output buffer, the last message. */
typedef struct {
    const unsigned char *input;
    size_t size, used;
    unsigned char *output; /* encoding: the PNG bytes written so far */
    size_t output_size, output_capacity;
    char message[PNG_MESSAGE_MAX];
    char warning[PNG_MESSAGE_MAX]; /* the last warning: often the reason of the error after it */
    int out_of_memory;
} png_context;

static void on_error(png_structp png, png_const_charp message) {
    png_context *c = png_get_error_ptr(png);
    snprintf(c->message, sizeof c->message, "%s", message);
    png_longjmp(png, 1);
}

/* The library never prints: a warning is kept for the detail of a failure that follows. */
static void on_warning(png_structp png, png_const_charp message) {
    png_context *c = png_get_error_ptr(png);
    snprintf(c->warning, sizeof c->warning, "%s", message);
}

static png_voidp on_malloc(png_structp png, png_alloc_size_t size) {
    void *memory = cm_malloc(size, 1);
    if (!memory) ((png_context *)png_get_mem_ptr(png))->out_of_memory = 1;
    return memory;
}

static void on_free(png_structp png, png_voidp memory) {
    (void)png;
    cm_free(memory);
}

static void on_read(png_structp png, png_bytep dst, size_t n) {
    png_context *c = png_get_io_ptr(png);
    if (n > c->size - c->used) png_error(png, "truncated PNG data");
    memcpy(dst, c->input + c->used, n);
    c->used += n;
}

/* The status of a libpng failure: NOMEM when one of its allocations failed. */
static cm_status png_failure(const png_context *c, const char *name, const char *doing) {
    if (c->out_of_memory) return cm_error_set(CM_ERR_NOMEM, "%s: no memory %s PNG", name, doing);
    return cm_error_set(CM_ERR_FORMAT, "%s: damaged PNG (%s%s%s)", name, c->message,
                        c->warning[0] ? "; " : "", c->warning);
}

/* ---------------------------------------------------------------- reading */

typedef struct {
    png_structp png;
    png_infop info;
    unsigned char *pixels; /* interleaved [H, W, C] */
    png_bytep *rows;       /* H pointers into pixels */
    size_t channels, height, width;
} png_decoder;

/* Header and transforms: 8-bit, alpha dropped, C = 1 or 3. Runs under the caller's setjmp. */
static cm_status read_header(png_decoder *d, size_t input_size, const char *name) {
    png_read_info(d->png, d->info);
    png_uint_32 width = png_get_image_width(d->png, d->info);
    png_uint_32 height = png_get_image_height(d->png, d->info);
    int depth = png_get_bit_depth(d->png, d->info), type = png_get_color_type(d->png, d->info);
    if (depth == 16)
        return cm_error_set(CM_ERR_UNSUPPORTED, "%s: 16-bit PNG (only 8-bit and less)", name);
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(d->png);
    if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(d->png);
    if ((type & PNG_COLOR_MASK_ALPHA) || png_get_valid(d->png, d->info, PNG_INFO_tRNS))
        png_set_strip_alpha(d->png);
    png_set_interlace_handling(d->png);
    png_read_update_info(d->png, d->info);
    d->channels = (type & PNG_COLOR_MASK_COLOR) ? 3 : 1;
    d->height = height;
    d->width = width;
    if (png_get_channels(d->png, d->info) != d->channels ||
        png_get_bit_depth(d->png, d->info) != 8 ||
        png_get_rowbytes(d->png, d->info) != d->width * d->channels)
        return cm_error_set(CM_ERR_UNSUPPORTED, "%s: PNG colour type %d, depth %d does not "
                            "convert to 8-bit gray or RGB", name, type, depth);
    uint64_t decoded = (uint64_t)d->width * d->height * d->channels;
    if (decoded > CM_IMAGE_MAX_BYTES)
        return cm_error_set(CM_ERR_FORMAT, "%s: %zu x %zu PNG over the limit of %llu bytes",
                            name, d->width, d->height, (unsigned long long)CM_IMAGE_MAX_BYTES);
    if (decoded > (uint64_t)input_size * PNG_MAX_EXPANSION + PNG_EXPANSION_SLACK)
        return cm_error_set(CM_ERR_FORMAT, "%s: truncated: a %zu x %zu PNG cannot fit in %zu "
                            "bytes", name, d->width, d->height, input_size);
    return CM_OK;
}

/* Every step that can longjmp, under one setjmp; d's fields live in the caller's frame. */
static cm_status decode(png_decoder *d, png_context *c, const char *name) {
    if (setjmp(png_jmpbuf(d->png))) return png_failure(c, name, "decoding");
    png_set_user_limits(d->png, CM_IMAGE_MAX_SIDE, CM_IMAGE_MAX_SIDE);
    png_set_read_fn(d->png, c, on_read);
    CM_TRY(read_header(d, c->size, name));
    d->pixels = cm_malloc(d->height * d->width, d->channels);
    d->rows = cm_malloc(d->height, sizeof *d->rows);
    if (!d->pixels || !d->rows)
        return cm_error_set(CM_ERR_NOMEM, "%s: cannot allocate a %zu x %zu PNG", name, d->width,
                            d->height);
    for (size_t y = 0; y < d->height; y++) d->rows[y] = d->pixels + y * d->width * d->channels;
    png_read_image(d->png, d->rows);
    png_read_end(d->png, NULL);
    return CM_OK;
}

/* Interleaved [H, W, C] to the set's planar [1, C, H, W] bytes. */
static cm_status to_set(cm_image_set *out, const png_decoder *d, const char *name) {
    size_t plane = d->height * d->width;
    out->bytes = cm_malloc(plane, d->channels);
    if (!out->bytes) return cm_error_set(CM_ERR_NOMEM, "%s: cannot allocate pixels", name);
    for (size_t c = 0; c < d->channels; c++)
        for (size_t p = 0; p < plane; p++)
            out->bytes[c * plane + p] = d->pixels[p * d->channels + c];
    out->count = 1;
    out->channels = d->channels;
    out->height = d->height;
    out->width = d->width;
    return CM_OK;
}

cm_status cm_png_parse(cm_image_set *out, const void *bytes, size_t size, const char *name) {
    memset(out, 0, sizeof *out);
    if (!name) name = "(png buffer)";
    if (size < PNG_SIGNATURE_BYTES || png_sig_cmp(bytes, 0, PNG_SIGNATURE_BYTES) != 0)
        return cm_error_set(CM_ERR_FORMAT, "%s: not a PNG file (bad signature)", name);
    png_context c = {.input = bytes, .size = size, .used = PNG_SIGNATURE_BYTES};
    png_decoder d = {0};
    d.png = png_create_read_struct_2(PNG_LIBPNG_VER_STRING, &c, on_error, on_warning, &c,
                                     on_malloc, on_free);
    if (d.png) d.info = png_create_info_struct(d.png);
    cm_status status = CM_OK;
    if (!d.png || !d.info) status = cm_error_set(CM_ERR_NOMEM, "%s: cannot start libpng", name);
    if (status == CM_OK) {
        png_set_sig_bytes(d.png, PNG_SIGNATURE_BYTES);
        status = decode(&d, &c, name);
    }
    if (status == CM_OK) status = to_set(out, &d, name);
    png_destroy_read_struct(d.png ? &d.png : NULL, d.info ? &d.info : NULL, NULL);
    cm_free(d.rows);
    cm_free(d.pixels);
    if (status != CM_OK) cm_image_set_free(out);
    return status;
}

/* ---------------------------------------------------------------- writing */

static void on_write(png_structp png, png_bytep data, size_t n) {
    png_context *c = png_get_io_ptr(png);
    if (n > c->output_capacity - c->output_size) {
        size_t capacity = c->output_capacity ? c->output_capacity : 4096;
        while (capacity - c->output_size < n) {
            if (capacity > SIZE_MAX / 2) png_error(png, "PNG too large");
            capacity *= 2;
        }
        unsigned char *bigger = cm_malloc(capacity, 1);
        if (!bigger) {
            c->out_of_memory = 1;
            png_error(png, "out of memory");
        }
        if (c->output_size) memcpy(bigger, c->output, c->output_size);
        cm_free(c->output);
        c->output = bigger;
        c->output_capacity = capacity;
    }
    memcpy(c->output + c->output_size, data, n);
    c->output_size += n;
}

static void on_flush(png_structp png) { (void)png; }

static cm_status encode(png_structp png, png_infop info, png_context *c,
                        const unsigned char *pixels, size_t channels, size_t height,
                        size_t width) {
    if (setjmp(png_jmpbuf(png))) return png_failure(c, "PNG encoder", "encoding");
    png_set_write_fn(png, c, on_write, on_flush);
    png_set_IHDR(png, info, (png_uint_32)width, (png_uint_32)height, 8,
                 channels == 1 ? PNG_COLOR_TYPE_GRAY : PNG_COLOR_TYPE_RGB, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_write_info(png, info);
    for (size_t y = 0; y < height; y++) png_write_row(png, pixels + y * width * channels);
    png_write_end(png, NULL);
    return CM_OK;
}

cm_status cm_png_encode(unsigned char **out, size_t *out_size, const unsigned char *pixels,
                        size_t channels, size_t height, size_t width) {
    *out = NULL;
    *out_size = 0;
    if (channels != 1 && channels != 3)
        return cm_error_set(CM_ERR_INVALID, "PNG encoder: %zu channels (only 1 gray or 3 RGB)",
                            channels);
    if (height == 0 || width == 0 || height > CM_IMAGE_MAX_SIDE || width > CM_IMAGE_MAX_SIDE)
        return cm_error_set(CM_ERR_INVALID, "PNG encoder: %zu x %zu image (sides 1..%d)", width,
                            height, CM_IMAGE_MAX_SIDE);
    png_context c = {0};
    png_structp png = png_create_write_struct_2(PNG_LIBPNG_VER_STRING, &c, on_error, on_warning,
                                                &c, on_malloc, on_free);
    png_infop info = png ? png_create_info_struct(png) : NULL;
    cm_status status = png && info ? encode(png, info, &c, pixels, channels, height, width)
                                   : cm_error_set(CM_ERR_NOMEM, "PNG encoder: cannot start libpng");
    png_destroy_write_struct(png ? &png : NULL, info ? &info : NULL);
    if (status != CM_OK) {
        cm_free(c.output);
        return status;
    }
    *out = c.output;
    *out_size = c.output_size;
    return CM_OK;
}
