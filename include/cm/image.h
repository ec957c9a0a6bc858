/* image.h: image data: the image set (bytes or floats in [0, 1], optional labels), its readers
 * (IDX files as Fashion-MNIST ships them, gzip or plain; a folder of PNG files; NPY arrays
 * [N, H, W] / [N, C, H, W]), the generated 'shapes' law for fast tests, and a PNG writer of an
 * image grid.
 *
 * Layout everywhere: image i, channel c, row y, column x is element ((i C + c) H + y) W + x
 * ([N, C, H, W], row-major; C = 1 gray, C = 3 RGB). Pixel values are in [0, 1]; a stored byte
 * b means b / 255. Every reader validates before it trusts (magic, shapes, overflow,
 * truncation, trailing bytes, CM_IMAGE_MAX_BYTES before allocating) and fails with a one-line
 * detail naming the file, leaving nothing for the caller to free. Formats and the law of
 * 'shapes': docs/data.md.
 */
#ifndef CM_IMAGE_H
#define CM_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "cm/rng.h"
#include "cm/status.h"

/* Largest pixel payload a reader accepts (refused before allocating): 1 GiB of bytes, 20 times
 * Fashion-MNIST's training set. */
#define CM_IMAGE_MAX_BYTES ((uint64_t)1 << 30)
/* Largest width or height of one image. */
#define CM_IMAGE_MAX_SIDE 16384
/* Largest number of channels of an image set (NPY [N, C, H, W] with C above this is refused: it
 * is most likely a channels-last [N, H, W, C] array). */
#define CM_IMAGE_MAX_CHANNELS 4

/* Directory of the Debian package dataset-fashion-mnist. */
#define CM_FASHION_MNIST_DIR "/usr/share/datasets/fashion-mnist"

/* ---- The image set */

typedef struct {
    size_t count, channels, height, width;
    unsigned char *bytes; /* count x C x H x W bytes (pixel = byte / 255), or NULL */
    float *pixels;        /* count x C x H x W floats in [0, 1], or NULL; exactly one is set */
    size_t *labels;       /* count labels in 0..classes-1, or NULL (unlabelled) */
    size_t classes;       /* number of classes; 0 when unlabelled */
    char **class_names;   /* classes names, or NULL; each owned by the set */
} cm_image_set;

/* Values per image: C H W. */
size_t cm_image_set_dim(const cm_image_set *set);
/* Image `index` (< count) as C H W doubles in [0, 1]. */
void cm_image_set_row(const cm_image_set *set, size_t index, double *out);
/* Frees everything the set owns and zeroes it; a zeroed set is fine. */
void cm_image_set_free(cm_image_set *set);

/* ---- IDX: big-endian magic 0x0000 TT DD (TT = 0x08 unsigned bytes, DD = dimensions), DD
 * big-endian uint32 dimensions, then the bytes. Gzip files (magic 1f 8b, one or more members)
 * are inflated; anything else must be a plain IDX file. */

typedef struct {
    size_t ndim;         /* 1 (labels, magic 0x00000801) .. 3 (images, magic 0x00000803) */
    size_t shape[3];     /* every dimension > 0; unused entries are 1 */
    size_t size;         /* product of shape */
    unsigned char *bytes; /* size bytes, owned: cm_idx_free */
} cm_idx_array;

/* Parse an IDX image in memory (gzip or plain). `name` is for error details. */
cm_status cm_idx_parse(cm_idx_array *out, const void *bytes, size_t size, const char *name);
cm_status cm_idx_read(cm_idx_array *out, const char *path);
void cm_idx_free(cm_idx_array *array);

/* An image set from an IDX images file ([N, H, W], C = 1, kept as bytes) and, when labels_path
 * is not NULL, an IDX labels file of N labels (classes = largest label + 1). */
cm_status cm_image_read_idx(cm_image_set *out, const char *images_path, const char *labels_path);
/* Fashion-MNIST (Xiao et al. 2017) from CM_FASHION_MNIST_DIR: the 60000 training images, or
 * with test != 0 the 10000 test images; 28 x 28, C = 1, 10 named classes. A missing file is an
 * error naming the Debian package. */
cm_status cm_image_read_fashion_mnist(cm_image_set *out, int test);

/* ---- PNG (libpng): 8-bit gray, gray + alpha, RGB, RGBA; palette and 1/2/4-bit gray are
 * expanded to 8 bits; alpha is dropped (C = 1 for gray, 3 for colour); 16-bit is refused. */

/* One PNG image in memory as a set of count 1 (bytes). */
cm_status cm_png_parse(cm_image_set *out, const void *bytes, size_t size, const char *name);
/* Encode an 8-bit gray (C = 1) or RGB (C = 3) image of interleaved pixels [H, W, C] into a PNG
 * image in memory: *out is cm_malloc'ed (cm_free), *out_size its length. */
cm_status cm_png_encode(unsigned char **out, size_t *out_size, const unsigned char *pixels,
                        size_t channels, size_t height, size_t width);

/* A folder of PNG files (names ending in .png, any case; hidden files skipped), sorted by name
 * (byte order), all of one size and channel count. When the folder holds no PNG file but
 * sub-folders that do, each such sub-folder is a class (sorted by name; labels are the indexes,
 * class names the folder names) and its PNG files are that class's images. */
cm_status cm_image_read_png_dir(cm_image_set *out, const char *path);

/* An NPY array [N, H, W] (C = 1) or [N, C, H, W] (C <= CM_IMAGE_MAX_CHANNELS) as an image
 * set: '|u1' kept as bytes (b / 255); '<f4' / '<f8' as floats, every value in [0, 1]. */
cm_status cm_image_parse_npy(cm_image_set *out, const void *bytes, size_t size, const char *name);
cm_status cm_image_read_npy(cm_image_set *out, const char *path);

/* Write n images [N, C, H, W] with values in [0, 1] (C = 1 gray or 3 RGB; each value v
 * becomes the byte round(255 v)) as one PNG grid: `columns` images per row, rows as needed,
 * `padding` pixels of mid-gray (128) between images and around the grid. Values outside
 * [0, 1] are clipped; NaN is refused. Written atomically. */
cm_status cm_image_write_grid(const char *path, const double *pixels, size_t n, size_t channels,
                              size_t height, size_t width, size_t columns, size_t padding);

/* ---- 'shapes': 1-channel size x size images of one disc, square or bar on black
 * (docs/data.md defines the law exactly). Classes: */
typedef enum { CM_SHAPE_DISC, CM_SHAPE_SQUARE, CM_SHAPE_BAR, CM_SHAPE_COUNT } cm_shape_class;

#define CM_SHAPES_MIN_SIZE 8
#define CM_SHAPES_MAX_SIZE 256

const char *cm_shape_class_name(cm_shape_class shape);

/* The parameters of one drawn image, in pixel units (rows y, columns x, 0-based). */
typedef struct {
    cm_shape_class shape;
    double intensity;       /* a in [0.5, 1): the value of every pixel of the shape */
    size_t top, left;       /* the shape's bounding box: rows top..top+rows-1, ... */
    size_t rows, columns;   /* ... columns left..left+columns-1 */
    size_t radius;          /* disc: radius r (rows = columns = 2 r + 1); else 0 */
    int vertical;           /* bar: 1 vertical (long side along y), 0 horizontal; else 0 */
} cm_shape_params;

/* Draw one image into out (size x size doubles) from rng alone, per the law of docs/data.md;
 * *params (may be NULL) receives what was drawn. size in [CM_SHAPES_MIN_SIZE,
 * CM_SHAPES_MAX_SIZE]. No allocation. */
void cm_shapes_draw(double *out, cm_shape_params *params, size_t size, cm_rng *rng);

/* What the classification rule of docs/data.md measures on one size x size image: the pixels
 * at or above half the image's largest value form the support. */
typedef struct {
    cm_shape_class shape;   /* by the rule; CM_SHAPE_COUNT when the image is blank */
    double peak;            /* the largest value */
    size_t mass;            /* pixels in the support */
    size_t top, left, rows, columns; /* the support's bounding box */
    double fill;            /* mass / (rows columns) */
    double centre_y, centre_x; /* mean position of the support's pixels */
} cm_shape_measure;

void cm_shapes_measure(cm_shape_measure *out, const double *image, size_t size);

/* Is the image one clean shape, as every image of the law is? Not blank; its support (the pixels
 * at or above half the peak, as above) one 8-connected region; and every pixel neither in the
 * support nor touching it (8-neighbours) below CM_SHAPES_CLEAN_BACKGROUND times the peak: a
 * second shape, a ghost or noise away from the shape make an image unclean, a soft edge one
 * pixel wide does not. A NaN pixel makes it unclean. scratch: size x size entries (the regions'
 * union-find). Returns 1 or 0; no allocation. */
#define CM_SHAPES_CLEAN_BACKGROUND 0.25
int cm_shapes_clean(const double *image, size_t size, size_t *scratch);

#endif
