/* image.c: the image set (image.h): access and freeing; image sets from IDX files (images and
 * labels paired, Fashion-MNIST from its Debian package) and from NPY arrays [N, H, W] /
 * [N, C, H, W]; and the PNG grid writer.
 *
 * 8-bit sources stay bytes (Fashion-MNIST's 60000 x 784 pixels are 47 MB as bytes, 376 MB as
 * doubles); a reader of float NPY files keeps floats. Pixel values are in [0, 1] everywhere:
 * a float file with a value outside is refused rather than rescaled, since no rescaling rule
 * can be guessed safely. The PNG folder reader lives in image_dir.c, the PNG codec in png.c.
 */
#include "cm/image.h"

#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cm/alloc.h"
#include "cm/io.h"

#define GRID_PADDING_LEVEL 128 /* mid-gray: visible against black and white images */
#define GRID_MAX_PADDING 64
/* A float64 file of CM_IMAGE_MAX_BYTES / 4 pixels (the float32 limit) plus its header. */
#define NPY_MAX_FILE_BYTES (CM_IMAGE_MAX_BYTES * 2 + ((uint64_t)1 << 20))
#define FASHION_MNIST_CLASSES 10

/* Xiao, Rasul, Vollgraf 2017, Table 1: the label of each class index. */
static const char *const fashion_mnist_names[FASHION_MNIST_CLASSES] = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot",
};

size_t cm_image_set_dim(const cm_image_set *set) {
    return set->channels * set->height * set->width;
}

void cm_image_set_row(const cm_image_set *set, size_t index, double *out) {
    size_t dim = cm_image_set_dim(set);
    if (set->bytes) {
        const unsigned char *row = set->bytes + index * dim;
        for (size_t k = 0; k < dim; k++) out[k] = (double)row[k] / 255.0;
    } else {
        const float *row = set->pixels + index * dim;
        for (size_t k = 0; k < dim; k++) out[k] = (double)row[k];
    }
}

void cm_image_set_free(cm_image_set *set) {
    if (!set) return;
    for (size_t k = 0; set->class_names && k < set->classes; k++) cm_free(set->class_names[k]);
    cm_free(set->class_names);
    cm_free(set->labels);
    cm_free(set->pixels);
    cm_free(set->bytes);
    memset(set, 0, sizeof *set);
}

/* Copies of `count` names as the set's class names. */
static cm_status set_class_names(cm_image_set *set, const char *const *names, size_t count) {
    set->class_names = cm_calloc(count, sizeof *set->class_names);
    if (!set->class_names) return cm_error_set(CM_ERR_NOMEM, "image set: class names");
    for (size_t k = 0; k < count; k++) {
        size_t length = strlen(names[k]);
        set->class_names[k] = cm_malloc(length + 1, 1);
        if (!set->class_names[k]) return cm_error_set(CM_ERR_NOMEM, "image set: class names");
        memcpy(set->class_names[k], names[k], length + 1);
    }
    return CM_OK;
}

/* ---------------------------------------------------------------- IDX */

static cm_status read_labels(cm_image_set *set, const char *path) {
    cm_idx_array labels;
    CM_TRY(cm_idx_read(&labels, path));
    cm_status status = CM_OK;
    if (labels.ndim != 1)
        status = cm_error_set(CM_ERR_FORMAT, "%s: %zu-D IDX; labels are 1-D (magic 0x00000801)",
                              path, labels.ndim);
    else if (labels.size != set->count)
        status = cm_error_set(CM_ERR_DIMENSION, "%s: %zu labels for %zu images", path,
                              labels.size, set->count);
    else if (!(set->labels = cm_malloc(labels.size, sizeof(size_t))))
        status = cm_error_set(CM_ERR_NOMEM, "%s: cannot allocate %zu labels", path, labels.size);
    for (size_t i = 0; status == CM_OK && i < labels.size; i++) {
        set->labels[i] = labels.bytes[i];
        if (set->labels[i] + 1 > set->classes) set->classes = set->labels[i] + 1;
    }
    cm_idx_free(&labels);
    return status;
}

cm_status cm_image_read_idx(cm_image_set *out, const char *images_path, const char *labels_path) {
    cm_idx_array images;
    memset(out, 0, sizeof *out);
    CM_TRY(cm_idx_read(&images, images_path));
    if (images.ndim != 3) {
        cm_idx_free(&images);
        return cm_error_set(CM_ERR_FORMAT, "%s: %zu-D IDX; images are 3-D [N, H, W] (magic "
                            "0x00000803)", images_path, images.ndim);
    }
    cm_image_set set = {.count = images.shape[0], .channels = 1, .height = images.shape[1],
                        .width = images.shape[2], .bytes = images.bytes};
    cm_status status = CM_OK;
    if (set.height > CM_IMAGE_MAX_SIDE || set.width > CM_IMAGE_MAX_SIDE)
        status = cm_error_set(CM_ERR_FORMAT, "%s: %zu x %zu images (sides up to %d)", images_path,
                              set.height, set.width, CM_IMAGE_MAX_SIDE);
    if (status == CM_OK && labels_path) status = read_labels(&set, labels_path);
    if (status != CM_OK) {
        cm_image_set_free(&set); /* owns images.bytes now */
        return status;
    }
    *out = set;
    return CM_OK;
}

cm_status cm_image_read_fashion_mnist(cm_image_set *out, int test) {
    char images[256], labels[256];
    const char *prefix = test ? "t10k" : "train";
    memset(out, 0, sizeof *out);
    snprintf(images, sizeof images, "%s/%s-images-idx3-ubyte.gz", CM_FASHION_MNIST_DIR, prefix);
    snprintf(labels, sizeof labels, "%s/%s-labels-idx1-ubyte.gz", CM_FASHION_MNIST_DIR, prefix);
    struct stat info;
    if (stat(images, &info) != 0 || stat(labels, &info) != 0)
        return cm_error_set(CM_ERR_IO, "Fashion-MNIST is not installed (%s missing): install the "
                            "Debian package dataset-fashion-mnist (apt-get install "
                            "dataset-fashion-mnist)", stat(images, &info) ? images : labels);
    cm_image_set set;
    CM_TRY(cm_image_read_idx(&set, images, labels));
    cm_status status = CM_OK;
    if (set.height != 28 || set.width != 28 || set.classes > FASHION_MNIST_CLASSES)
        status = cm_error_set(CM_ERR_FORMAT, "%s: %zu x %zu images, %zu classes: not "
                              "Fashion-MNIST's 28 x 28 and 10", images, set.height, set.width,
                              set.classes);
    if (status == CM_OK) {
        set.classes = FASHION_MNIST_CLASSES;
        status = set_class_names(&set, fashion_mnist_names, FASHION_MNIST_CLASSES);
    }
    if (status != CM_OK) {
        cm_image_set_free(&set);
        return status;
    }
    *out = set;
    return CM_OK;
}

/* ---------------------------------------------------------------- NPY */

/* Shape of an image array: [N, H, W] or [N, C, H, W], within the limits. */
static cm_status npy_image_shape(cm_image_set *set, const cm_npy_info *info, const char *name) {
    if (info->ndim != 3 && info->ndim != 4)
        return cm_error_set(CM_ERR_FORMAT, "%s: %zu-D array; images are [N, H, W] or "
                            "[N, C, H, W]", name, info->ndim);
    set->count = info->shape[0];
    set->channels = info->ndim == 4 ? info->shape[1] : 1;
    set->height = info->shape[info->ndim - 2];
    set->width = info->shape[info->ndim - 1];
    if (set->channels > CM_IMAGE_MAX_CHANNELS)
        return cm_error_set(CM_ERR_FORMAT, "%s: %zu channels (at most %d; a channels-last "
                            "[N, H, W, C] array must be transposed to [N, C, H, W])", name,
                            set->channels, CM_IMAGE_MAX_CHANNELS);
    if (set->height > CM_IMAGE_MAX_SIDE || set->width > CM_IMAGE_MAX_SIDE)
        return cm_error_set(CM_ERR_FORMAT, "%s: %zu x %zu images (sides up to %d)", name,
                            set->height, set->width, CM_IMAGE_MAX_SIDE);
    size_t item = info->dtype == CM_NPY_UINT8 ? 1 : sizeof(float);
    if ((uint64_t)info->count > CM_IMAGE_MAX_BYTES / item)
        return cm_error_set(CM_ERR_FORMAT, "%s: %zu pixels, over the limit of %llu bytes", name,
                            info->count, (unsigned long long)CM_IMAGE_MAX_BYTES);
    return CM_OK;
}

/* Float pixels, each checked to lie in [0, 1]. */
static cm_status npy_float_pixels(cm_image_set *set, const cm_npy_info *info, const void *bytes,
                                  const char *name) {
    set->pixels = cm_malloc(info->count, sizeof(float));
    if (!set->pixels) return cm_error_set(CM_ERR_NOMEM, "%s: cannot allocate pixels", name);
    size_t dim = cm_image_set_dim(set);
    for (size_t k = 0; k < info->count; k++) {
        double value = cm_npy_item(info, bytes, k);
        if (!(value >= 0.0 && value <= 1.0))
            return cm_error_set(isfinite(value) ? CM_ERR_FORMAT : CM_ERR_NONFINITE,
                                "%s: pixel value %g (image %zu, element %zu) is outside [0, 1]",
                                name, value, k / dim, k % dim);
        set->pixels[k] = (float)value;
    }
    return CM_OK;
}

cm_status cm_image_parse_npy(cm_image_set *out, const void *bytes, size_t size, const char *name) {
    cm_npy_info info;
    cm_image_set set = {0};
    memset(out, 0, sizeof *out);
    if (!name) name = "(npy buffer)";
    CM_TRY(cm_npy_parse_info(&info, bytes, size, name));
    cm_status status = npy_image_shape(&set, &info, name);
    if (status == CM_OK && info.dtype == CM_NPY_UINT8) {
        set.bytes = cm_malloc(info.count, 1);
        const unsigned char *items = (const unsigned char *)bytes + info.data_offset;
        if (set.bytes) memcpy(set.bytes, items, info.count);
        else status = cm_error_set(CM_ERR_NOMEM, "%s: cannot allocate pixels", name);
    } else if (status == CM_OK) {
        status = npy_float_pixels(&set, &info, bytes, name);
    }
    if (status != CM_OK) {
        cm_image_set_free(&set);
        return status;
    }
    *out = set;
    return CM_OK;
}

cm_status cm_image_read_npy(cm_image_set *out, const char *path) {
    void *bytes = NULL;
    size_t size = 0;
    memset(out, 0, sizeof *out);
    CM_TRY(cm_file_read_all(&bytes, &size, path, NPY_MAX_FILE_BYTES));
    cm_status status = cm_image_parse_npy(out, bytes, size, path);
    cm_free(bytes);
    return status;
}

/* ---------------------------------------------------------------- PNG grid */

/* round(255 v) of v clipped to [0, 1]. */
static unsigned char pixel_byte(double value) {
    if (value <= 0.0) return 0;
    if (value >= 1.0) return 255;
    return (unsigned char)lround(255.0 * value);
}

/* Tile n images into canvas [grid_h, grid_w, C] (already filled with the padding level). */
static cm_status tile(unsigned char *canvas, size_t grid_w, const double *pixels, size_t n,
                      size_t C, size_t H, size_t W, size_t columns, size_t padding) {
    for (size_t i = 0; i < n; i++) {
        size_t y0 = padding + i / columns * (H + padding);
        size_t x0 = padding + i % columns * (W + padding);
        for (size_t c = 0; c < C; c++) {
            const double *plane = pixels + (i * C + c) * H * W;
            for (size_t y = 0; y < H; y++) {
                for (size_t x = 0; x < W; x++) {
                    double value = plane[y * W + x];
                    if (isnan(value))
                        return cm_error_set(CM_ERR_NONFINITE, "image grid: image %zu, channel "
                                            "%zu, row %zu, column %zu is NaN", i, c, y, x);
                    canvas[((y0 + y) * grid_w + x0 + x) * C + c] = pixel_byte(value);
                }
            }
        }
    }
    return CM_OK;
}

cm_status cm_image_write_grid(const char *path, const double *pixels, size_t n, size_t channels,
                              size_t height, size_t width, size_t columns, size_t padding) {
    if (n == 0 || height == 0 || width == 0 || columns == 0 || (channels != 1 && channels != 3))
        return cm_error_set(CM_ERR_INVALID, "%s: image grid of %zu images [%zu, %zu, %zu] in %zu "
                            "columns (need n, H, W, columns >= 1 and C = 1 or 3)", path, n,
                            channels, height, width, columns);
    if (padding > GRID_MAX_PADDING || height > CM_IMAGE_MAX_SIDE || width > CM_IMAGE_MAX_SIDE)
        return cm_error_set(CM_ERR_INVALID, "%s: image grid padding %zu (at most %d) or image "
                            "side over %d", path, padding, GRID_MAX_PADDING, CM_IMAGE_MAX_SIDE);
    if (columns > n) columns = n;
    size_t rows = n / columns + (n % columns != 0);
    if (rows > CM_IMAGE_MAX_SIDE || columns > CM_IMAGE_MAX_SIDE)
        return cm_error_set(CM_ERR_INVALID, "%s: image grid of %zu x %zu images is too large",
                            path, rows, columns);
    uint64_t grid_w = (uint64_t)columns * (width + padding) + padding;
    uint64_t grid_h = (uint64_t)rows * (height + padding) + padding;
    if (grid_w > CM_IMAGE_MAX_SIDE || grid_h > CM_IMAGE_MAX_SIDE)
        return cm_error_set(CM_ERR_INVALID, "%s: image grid of %llu x %llu pixels (at most %d a "
                            "side: fewer images or columns)", path, (unsigned long long)grid_w,
                            (unsigned long long)grid_h, CM_IMAGE_MAX_SIDE);
    unsigned char *canvas = cm_malloc((size_t)(grid_w * grid_h), channels), *png = NULL;
    if (!canvas) return cm_error_set(CM_ERR_NOMEM, "%s: cannot allocate the image grid", path);
    memset(canvas, GRID_PADDING_LEVEL, (size_t)(grid_w * grid_h) * channels);
    size_t png_size = 0;
    cm_status status = tile(canvas, (size_t)grid_w, pixels, n, channels, height, width, columns,
                            padding);
    if (status == CM_OK)
        status = cm_png_encode(&png, &png_size, canvas, channels, (size_t)grid_h, (size_t)grid_w);
    if (status == CM_OK) status = cm_file_write_atomic(path, png, png_size);
    cm_free(png);
    cm_free(canvas);
    return status;
}
