/* test_image.c: image data (suite `image`): the IDX reader, the PNG reader and writer, PNG
 * folders, NPY image arrays, Fashion-MNIST when its Debian package is installed, and the law of
 * the generated 'shapes' set with its classification rule and clean test.
 *
 * Known answers are byte images built here: IDX headers typed in, gzip made with zlib's
 * deflate, PNG files assembled chunk by chunk (CRC and deflate from zlib, scanline filters
 * typed in), so the readers are checked against the formats, not against our writer. Every
 * damaged variant (bad magic, every truncation, overflowing or zero dimensions, trailing bytes,
 * damaged gzip or PNG data, count mismatches) must fail with a named status, leave no output
 * and leak nothing. Fashion-MNIST's answers (first label 9, pixel sums 76247 and 33456) were
 * computed with Python's gzip and struct modules from the package's files. Statistical checks
 * of 'shapes' use tolerances of SIGMAS standard errors of the sample size (seed printed).
 */
#include <dirent.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "cm/alloc.h"
#include "cm/image.h"
#include "cm/io.h"
#include "test.h"

#define SIGMAS 5.0

/* ---------------------------------------------------------------- helpers */

static void make_temp_dir(char *path, size_t size) {
    snprintf(path, size, "/tmp/cm_test_image_XXXXXX");
    CM_CHECK(mkdtemp(path) != NULL, "mkdtemp failed");
}

static void remove_tree(const char *dir) {
    DIR *handle = opendir(dir);
    if (!handle) return;
    for (struct dirent *entry; (entry = readdir(handle));) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, entry->d_name);
        struct stat info;
        if (lstat(path, &info) == 0 && S_ISDIR(info.st_mode)) remove_tree(path);
        else unlink(path);
    }
    closedir(handle);
    rmdir(dir);
}

static void write_file(const char *path, const void *bytes, size_t size) {
    FILE *file = fopen(path, "wb");
    CM_CHECK(file && fwrite(bytes, 1, size, file) == size, "cannot write %s", path);
    if (file) fclose(file);
}

/* gzip of in[n] into out (zlib's deflate with a gzip wrapper); returns the size. */
static size_t gzip_bytes(unsigned char *out, size_t capacity, const void *in, size_t n) {
    z_stream z;
    memset(&z, 0, sizeof z);
    CM_CHECK(deflateInit2(&z, 9, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY) == Z_OK,
             "deflateInit2");
    z.next_in = (Bytef *)in;
    z.avail_in = (uInt)n;
    z.next_out = out;
    z.avail_out = (uInt)capacity;
    CM_CHECK(deflate(&z, Z_FINISH) == Z_STREAM_END, "deflate did not finish");
    size_t size = z.total_out;
    deflateEnd(&z);
    return size;
}

/* ---------------------------------------------------------------- IDX */

/* Two 2 x 3 images, magic 0x00000803, dims 2, 2, 3 (big-endian), then 12 bytes. */
static const unsigned char idx_images[] = {0, 0, 8, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3,
                                           0, 1, 2, 3, 4, 5, 250, 251, 252, 253, 254, 255};
/* Two labels, magic 0x00000801. */
static const unsigned char idx_labels[] = {0, 0, 8, 1, 0, 0, 0, 2, 4, 1};

static void check_idx_fails(const void *bytes, size_t size, cm_status expected,
                            const char *detail_part, const char *what) {
    long live = cm_alloc_live_count();
    cm_idx_array a;
    memset(&a, 0x5a, sizeof a); /* must be cleared */
    cm_status status = cm_idx_parse(&a, bytes, size, "bad.idx");
    CM_CHECK(status == expected, "%s: status %s, expected %s (%s)", what, cm_status_name(status),
             cm_status_name(expected), cm_error_detail());
    CM_CHECK(a.bytes == NULL && a.size == 0 && a.ndim == 0, "%s: outputs not cleared", what);
    CM_CHECK(strstr(cm_error_detail(), "bad.idx") != NULL, "%s: detail lacks the name: %s", what,
             cm_error_detail());
    if (detail_part)
        CM_CHECK(strstr(cm_error_detail(), detail_part) != NULL, "%s: detail '%s' lacks '%s'",
                 what, cm_error_detail(), detail_part);
    CM_CHECK(cm_alloc_live_count() == live, "%s: leaked %ld", what, cm_alloc_live_count() - live);
    if (status == CM_OK) cm_idx_free(&a);
}

static void check_known_images(const cm_idx_array *a, const char *what) {
    CM_CHECK(a->ndim == 3 && a->shape[0] == 2 && a->shape[1] == 2 && a->shape[2] == 3 &&
             a->size == 12, "%s: shape %zu-D (%zu, %zu, %zu)", what, a->ndim, a->shape[0],
             a->shape[1], a->shape[2]);
    CM_CHECK(a->bytes && memcmp(a->bytes, idx_images + 16, 12) == 0, "%s: bytes differ", what);
}

static void test_idx_known_plain_and_gzip(void) {
    cm_idx_array a;
    CM_CHECK_OK(cm_idx_parse(&a, idx_images, sizeof idx_images, "plain.idx"));
    check_known_images(&a, "plain");
    cm_idx_free(&a);
    unsigned char gz[256], twice[512];
    size_t size = gzip_bytes(gz, sizeof gz, idx_images, sizeof idx_images);
    CM_CHECK(gz[0] == 0x1f && gz[1] == 0x8b, "gzip magic");
    CM_CHECK_OK(cm_idx_parse(&a, gz, size, "one.idx.gz"));
    check_known_images(&a, "gzip");
    cm_idx_free(&a);
    /* two members (gzip's concatenation rule): header + 5 bytes, then the other 7 */
    size_t first = gzip_bytes(twice, sizeof twice, idx_images, 21);
    size_t second = gzip_bytes(twice + first, sizeof twice - first, idx_images + 21, 7);
    CM_CHECK_OK(cm_idx_parse(&a, twice, first + second, "two.idx.gz"));
    check_known_images(&a, "two gzip members");
    cm_idx_free(&a);
    CM_CHECK_OK(cm_idx_parse(&a, idx_labels, sizeof idx_labels, "labels.idx"));
    CM_CHECK(a.ndim == 1 && a.shape[0] == 2 && a.shape[1] == 1 && a.size == 2 && a.bytes &&
             a.bytes[0] == 4 && a.bytes[1] == 1, "labels");
    cm_idx_free(&a);
}

static void test_idx_bad_headers(void) {
    static const struct {
        unsigned char magic[4];
        cm_status status;
        const char *detail;
    } cases[] = {
        {{1, 0, 8, 3}, CM_ERR_FORMAT, "not an IDX file"},
        {{0, 0, 0x0d, 3}, CM_ERR_UNSUPPORTED, "float32"},
        {{0, 0, 0x09, 1}, CM_ERR_UNSUPPORTED, "signed bytes"},
        {{0, 0, 0x07, 3}, CM_ERR_FORMAT, "unknown IDX element type 0x07"},
        {{0, 0, 8, 0}, CM_ERR_FORMAT, "no dimensions"},
        {{0, 0, 8, 4}, CM_ERR_UNSUPPORTED, "4 dimensions"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned char image[sizeof idx_images];
        memcpy(image, idx_images, sizeof image);
        memcpy(image, cases[i].magic, 4);
        char what[64];
        snprintf(what, sizeof what, "magic %02x %02x %02x %02x", cases[i].magic[0],
                 cases[i].magic[1], cases[i].magic[2], cases[i].magic[3]);
        check_idx_fails(image, sizeof image, cases[i].status, cases[i].detail, what);
    }
    const char text[] = "P5\n2 2\n255\nabcd";
    check_idx_fails(text, sizeof text - 1, CM_ERR_FORMAT, "not an IDX file", "a PGM file");
    check_idx_fails(idx_images, 0, CM_ERR_FORMAT, "shorter than the IDX magic", "empty");
}

static void test_idx_dimensions(void) {
    unsigned char image[sizeof idx_images];
    memcpy(image, idx_images, sizeof image);
    image[11] = 0; /* second dimension 0 */
    check_idx_fails(image, sizeof image, CM_ERR_FORMAT, "dimension 1 is 0", "zero dimension");
    memcpy(image, idx_images, sizeof image);
    memset(image + 4, 0xff, 12); /* (2^32 - 1)^3 overflows 64 bits */
    check_idx_fails(image, sizeof image, CM_ERR_FORMAT, "limit", "dimensions overflow");
    memcpy(image, idx_images, sizeof image);
    image[5] = 0x01; /* 2^24 + 2 images of 6 bytes: over 2^26, under the limit: truncated */
    check_idx_fails(image, sizeof image, CM_ERR_FORMAT, "truncated", "huge count, no data");
    memcpy(image, idx_images, sizeof image);
    image[4] = 0x40; /* 2^30 + ... images: over the 1 GiB limit */
    check_idx_fails(image, sizeof image, CM_ERR_FORMAT, "limit", "over the limit");
}

static void test_idx_truncated_and_trailing(void) {
    for (size_t size = 0; size < sizeof idx_images; size++) {
        char what[48];
        snprintf(what, sizeof what, "plain truncated to %zu bytes", size);
        check_idx_fails(idx_images, size, CM_ERR_FORMAT, "truncated", what);
    }
    unsigned char longer[sizeof idx_images + 1];
    memcpy(longer, idx_images, sizeof idx_images);
    longer[sizeof idx_images] = 7;
    check_idx_fails(longer, sizeof longer, CM_ERR_FORMAT, "trailing", "plain, one byte extra");
    unsigned char gz[256];
    size_t size = gzip_bytes(gz, sizeof gz, idx_images, sizeof idx_images);
    for (size_t cut = 2; cut < size; cut++) { /* from just the gzip magic to one byte short */
        char what[48];
        snprintf(what, sizeof what, "gzip truncated to %zu bytes", cut);
        check_idx_fails(gz, cut, CM_ERR_FORMAT, NULL, what);
    }
    size = gzip_bytes(gz, sizeof gz, longer, sizeof longer); /* inflates to one byte extra */
    check_idx_fails(gz, size, CM_ERR_FORMAT, "trailing", "gzip of one byte extra");
    size = gzip_bytes(gz, sizeof gz, idx_images, sizeof idx_images);
    gz[size] = 0;
    check_idx_fails(gz, size + 1, CM_ERR_FORMAT, "not another gzip member",
                    "a zero byte after the gzip member");
    size = gzip_bytes(gz, sizeof gz, idx_images, 20); /* header + 4 of 12 bytes */
    check_idx_fails(gz, size, CM_ERR_FORMAT, "the data holds 4", "gzip of a truncated body");
    size = gzip_bytes(gz, sizeof gz, idx_images, 10); /* inside the dimensions */
    check_idx_fails(gz, size, CM_ERR_FORMAT, "truncated in the IDX header",
                    "gzip of a truncated header");
}

static void test_idx_damaged_gzip(void) {
    unsigned char gz[256];
    size_t size = gzip_bytes(gz, sizeof gz, idx_images, sizeof idx_images);
    gz[size - 5] ^= 0x01; /* the CRC-32 of the trailer */
    check_idx_fails(gz, size, CM_ERR_FORMAT, "damaged gzip data", "CRC mismatch");
    size = gzip_bytes(gz, sizeof gz, idx_images, sizeof idx_images);
    gz[size - 1] ^= 0x01; /* the length (ISIZE) of the trailer */
    check_idx_fails(gz, size, CM_ERR_FORMAT, "damaged gzip data", "length mismatch");
    size = gzip_bytes(gz, sizeof gz, idx_images, sizeof idx_images);
    gz[2] = 7; /* compression method other than deflate */
    check_idx_fails(gz, size, CM_ERR_FORMAT, "damaged gzip data", "unknown method");
    /* a gzip member that promises 2^24 images from a few bytes: refused before allocating */
    unsigned char image[sizeof idx_images];
    memcpy(image, idx_images, sizeof image);
    image[5] = 0x01;
    size = gzip_bytes(gz, sizeof gz, image, sizeof image);
    check_idx_fails(gz, size, CM_ERR_FORMAT, "holds at most", "gzip cannot hold the payload");
}

/* Every allocation (ours and zlib's) failing in turn: NOMEM, nothing leaked. */
static void test_idx_out_of_memory(void) {
    unsigned char gz[256];
    size_t size = gzip_bytes(gz, sizeof gz, idx_images, sizeof idx_images);
    int succeeded = 0;
    for (long k = 0; k < 20 && !succeeded; k++) {
        long live = cm_alloc_live_count();
        cm_idx_array a;
        cm_alloc_fail_after(k);
        cm_status status = cm_idx_parse(&a, gz, size, "oom.idx.gz");
        cm_alloc_fail_after(-1);
        succeeded = status == CM_OK;
        CM_CHECK(succeeded || status == CM_ERR_NOMEM, "k = %ld: %s (%s)", k,
                 cm_status_name(status), cm_error_detail());
        if (succeeded) cm_idx_free(&a);
        CM_CHECK(cm_alloc_live_count() == live, "k = %ld: leaked", k);
    }
    CM_CHECK(succeeded, "never succeeded with up to 20 allocations");
}

/* Images and labels paired through files: labels, classes, and the count mismatch. */
static void test_idx_image_set_files(void) {
    char dir[64], images[128], labels[128], wrong[128];
    make_temp_dir(dir, sizeof dir);
    snprintf(images, sizeof images, "%s/images.gz", dir);
    snprintf(labels, sizeof labels, "%s/labels", dir);
    snprintf(wrong, sizeof wrong, "%s/three-labels", dir);
    unsigned char gz[256];
    write_file(images, gz, gzip_bytes(gz, sizeof gz, idx_images, sizeof idx_images));
    write_file(labels, idx_labels, sizeof idx_labels);
    const unsigned char three[] = {0, 0, 8, 1, 0, 0, 0, 3, 0, 1, 2};
    write_file(wrong, three, sizeof three);
    cm_image_set set;
    CM_CHECK_OK(cm_image_read_idx(&set, images, labels));
    CM_CHECK(set.count == 2 && set.channels == 1 && set.height == 2 && set.width == 3 &&
             set.bytes && !set.pixels, "set shape");
    CM_CHECK(set.labels && set.labels[0] == 4 && set.labels[1] == 1 && set.classes == 5,
             "labels and classes (largest label + 1)");
    double row[6];
    cm_image_set_row(&set, 1, row);
    CM_CHECK(row[0] == 250.0 / 255.0 && row[5] == 1.0, "row 1 in [0, 1]: %g %g", row[0], row[5]);
    cm_image_set_free(&set);
    long live = cm_alloc_live_count();
    CM_CHECK(cm_image_read_idx(&set, images, wrong) == CM_ERR_DIMENSION &&
                 strstr(cm_error_detail(), "3 labels for 2 images"),
             "count mismatch: %s", cm_error_detail());
    CM_CHECK(cm_image_read_idx(&set, labels, NULL) == CM_ERR_FORMAT &&
                 strstr(cm_error_detail(), "images are 3-D"),
             "labels as images: %s", cm_error_detail());
    CM_CHECK(cm_image_read_idx(&set, images, images) == CM_ERR_FORMAT &&
                 strstr(cm_error_detail(), "labels are 1-D"),
             "images as labels: %s", cm_error_detail());
    CM_CHECK(cm_alloc_live_count() == live && set.bytes == NULL, "failures leaked");
    CM_CHECK_OK(cm_image_read_idx(&set, images, NULL));
    CM_CHECK(set.labels == NULL && set.classes == 0, "no labels asked for");
    cm_image_set_free(&set);
    remove_tree(dir);
}

/* ---------------------------------------------------------------- PNG by hand */

static void put_be32(unsigned char *out, uint32_t value) {
    for (int b = 0; b < 4; b++) out[b] = (unsigned char)(value >> (24 - 8 * b));
}

static size_t png_chunk(unsigned char *out, const char *type, const void *data, size_t n) {
    put_be32(out, (uint32_t)n);
    memcpy(out + 4, type, 4);
    if (n) memcpy(out + 8, data, n);
    put_be32(out + 8 + n, (uint32_t)crc32(0, out + 4, (uInt)(n + 4)));
    return 12 + n;
}

typedef struct {
    uint32_t width, height;
    int depth, color_type, interlace;
    const unsigned char *raw; /* filtered scanlines, each with its filter byte */
    size_t raw_size;
    const unsigned char *palette, *transparency;
    size_t palette_size, transparency_size;
} png_spec;

/* A PNG file: signature, IHDR, [PLTE], [tRNS], IDAT (deflated raw), IEND. */
static size_t build_png(unsigned char *out, const png_spec *p) {
    unsigned char ihdr[13], idat[512];
    put_be32(ihdr, p->width);
    put_be32(ihdr + 4, p->height);
    ihdr[8] = (unsigned char)p->depth;
    ihdr[9] = (unsigned char)p->color_type;
    ihdr[10] = ihdr[11] = 0;
    ihdr[12] = (unsigned char)p->interlace;
    uLongf idat_size = sizeof idat;
    CM_CHECK(compress2(idat, &idat_size, p->raw, p->raw_size, 9) == Z_OK, "compress2");
    size_t size = 8;
    memcpy(out, "\x89PNG\r\n\x1a\n", 8);
    size += png_chunk(out + size, "IHDR", ihdr, 13);
    if (p->palette) size += png_chunk(out + size, "PLTE", p->palette, p->palette_size);
    if (p->transparency)
        size += png_chunk(out + size, "tRNS", p->transparency, p->transparency_size);
    size += png_chunk(out + size, "IDAT", idat, idat_size);
    size += png_chunk(out + size, "IEND", NULL, 0);
    return size;
}

static void check_png(const png_spec *p, size_t channels, const unsigned char *expected,
                      const char *what) {
    unsigned char file[1024];
    size_t size = build_png(file, p);
    cm_image_set set;
    cm_status status = cm_png_parse(&set, file, size, what);
    CM_CHECK(status == CM_OK, "%s: %s (%s)", what, cm_status_name(status), cm_error_detail());
    if (status != CM_OK) return;
    size_t n = channels * p->height * p->width;
    CM_CHECK(set.count == 1 && set.channels == channels && set.height == p->height &&
             set.width == p->width, "%s: shape %zu x %zu x %zu", what, set.channels, set.height,
             set.width);
    for (size_t i = 0; set.channels == channels && i < n; i++)
        CM_CHECK(set.bytes[i] == expected[i], "%s: byte %zu is %d, expected %d", what, i,
                 set.bytes[i], expected[i]);
    cm_image_set_free(&set);
}

static void test_png_known_colour_types(void) {
    const unsigned char gray[] = {0, 10, 20, 30, 0, 40, 50, 60};
    check_png(&(png_spec){3, 2, 8, 0, 0, gray, sizeof gray, NULL, NULL, 0, 0}, 1,
              (const unsigned char[]){10, 20, 30, 40, 50, 60}, "gray 3x2");
    const unsigned char gray_alpha[] = {0, 100, 7, 200, 9};
    check_png(&(png_spec){2, 1, 8, 4, 0, gray_alpha, sizeof gray_alpha, NULL, NULL, 0, 0}, 1,
              (const unsigned char[]){100, 200}, "gray + alpha: alpha dropped, not composited");
    const unsigned char rgba[] = {0, 1, 2, 3, 4};
    check_png(&(png_spec){1, 1, 8, 6, 0, rgba, sizeof rgba, NULL, NULL, 0, 0}, 3,
              (const unsigned char[]){1, 2, 3}, "RGBA");
    const unsigned char rgb_sub[] = {1, 10, 20, 30, 5, 5, 5}; /* filter 1: Sub */
    check_png(&(png_spec){2, 1, 8, 2, 0, rgb_sub, sizeof rgb_sub, NULL, NULL, 0, 0}, 3,
              (const unsigned char[]){10, 15, 20, 25, 30, 35}, "RGB, Sub filter, planar out");
    const unsigned char palette[] = {255, 0, 0, 0, 0, 255}, indexes[] = {0, 1, 0}, alpha[] = {128};
    check_png(&(png_spec){2, 1, 8, 3, 0, indexes, sizeof indexes, palette, NULL, 6, 0}, 3,
              (const unsigned char[]){0, 255, 0, 0, 255, 0}, "palette");
    check_png(&(png_spec){2, 1, 8, 3, 0, indexes, sizeof indexes, palette, alpha, 6, 1}, 3,
              (const unsigned char[]){0, 255, 0, 0, 255, 0}, "palette with tRNS");
    const unsigned char bits[] = {0, 0xa0};
    check_png(&(png_spec){8, 1, 1, 0, 0, bits, sizeof bits, NULL, NULL, 0, 0}, 1,
              (const unsigned char[]){255, 0, 255, 0, 0, 0, 0, 0}, "1-bit gray");
    /* Adam7 2x2: pass 1 holds (0,0), pass 6 (0,1), pass 7 the second row */
    const unsigned char adam7[] = {0, 11, 0, 22, 0, 33, 44};
    check_png(&(png_spec){2, 2, 8, 0, 1, adam7, sizeof adam7, NULL, NULL, 0, 0}, 1,
              (const unsigned char[]){11, 22, 33, 44}, "interlaced gray");
}

static void check_png_fails(const void *bytes, size_t size, cm_status expected,
                            const char *detail_part, const char *what) {
    long live = cm_alloc_live_count();
    cm_image_set set;
    cm_status status = cm_png_parse(&set, bytes, size, "bad.png");
    CM_CHECK(status == expected, "%s: %s, expected %s (%s)", what, cm_status_name(status),
             cm_status_name(expected), cm_error_detail());
    CM_CHECK(set.bytes == NULL && set.count == 0, "%s: output not cleared", what);
    CM_CHECK(strstr(cm_error_detail(), "bad.png") != NULL, "%s: detail lacks the name: %s", what,
             cm_error_detail());
    if (detail_part)
        CM_CHECK(strstr(cm_error_detail(), detail_part) != NULL, "%s: '%s' lacks '%s'", what,
                 cm_error_detail(), detail_part);
    CM_CHECK(cm_alloc_live_count() == live, "%s: leaked %ld", what, cm_alloc_live_count() - live);
    if (status == CM_OK) cm_image_set_free(&set);
}

static void test_png_damaged(void) {
    const unsigned char gray[] = {0, 10, 20, 30, 0, 40, 50, 60};
    png_spec spec = {3, 2, 8, 0, 0, gray, sizeof gray, NULL, NULL, 0, 0};
    unsigned char file[1024];
    size_t size = build_png(file, &spec);
    for (size_t cut = 0; cut < size - 12; cut++) { /* every length short of IEND */
        char what[48];
        snprintf(what, sizeof what, "truncated to %zu bytes", cut);
        check_png_fails(file, cut, CM_ERR_FORMAT, NULL, what);
    }
    check_png_fails("GIF89a....", 10, CM_ERR_FORMAT, "not a PNG", "a GIF");
    file[8 + 8 + 3] ^= 1; /* the IHDR width, under its CRC */
    check_png_fails(file, size, CM_ERR_FORMAT, "damaged PNG", "IHDR CRC");
    const unsigned char wide[] = {0, 1, 2};
    spec = (png_spec){20000, 1, 8, 0, 0, wide, sizeof wide, NULL, NULL, 0, 0};
    size = build_png(file, &spec);
    check_png_fails(file, size, CM_ERR_FORMAT, "damaged PNG", "width over the limit");
    spec = (png_spec){16000, 16000, 8, 2, 0, wide, sizeof wide, NULL, NULL, 0, 0};
    size = build_png(file, &spec);
    check_png_fails(file, size, CM_ERR_FORMAT, "cannot fit in", "768 MB promised in 70 bytes");
    const unsigned char deep[] = {0, 1, 2};
    spec = (png_spec){1, 1, 16, 0, 0, deep, sizeof deep, NULL, NULL, 0, 0};
    size = build_png(file, &spec);
    check_png_fails(file, size, CM_ERR_UNSUPPORTED, "16-bit", "16-bit gray");
    const unsigned char few[] = {0, 10, 20, 30}; /* one row of two */
    spec = (png_spec){3, 2, 8, 0, 0, few, sizeof few, NULL, NULL, 0, 0};
    size = build_png(file, &spec);
    check_png_fails(file, size, CM_ERR_FORMAT, "damaged PNG", "too little image data");
}

static void test_png_out_of_memory(void) {
    const unsigned char gray[] = {0, 10, 20, 30, 0, 40, 50, 60};
    unsigned char file[1024];
    size_t size = build_png(file, &(png_spec){3, 2, 8, 0, 0, gray, sizeof gray, NULL, NULL, 0, 0});
    int succeeded = 0;
    for (long k = 0; k < 60 && !succeeded; k++) {
        long live = cm_alloc_live_count();
        cm_image_set set;
        cm_alloc_fail_after(k);
        cm_status status = cm_png_parse(&set, file, size, "oom.png");
        cm_alloc_fail_after(-1);
        succeeded = status == CM_OK;
        CM_CHECK(succeeded || status == CM_ERR_NOMEM, "k = %ld: %s (%s)", k,
                 cm_status_name(status), cm_error_detail());
        if (succeeded) cm_image_set_free(&set);
        CM_CHECK(cm_alloc_live_count() == live, "k = %ld: leaked", k);
    }
    CM_CHECK(succeeded, "never succeeded with up to 60 allocations");
}

/* ---------------------------------------------------------------- PNG grid and folders */

/* Grid of 3 images [C, 2, 2] in 2 columns with padding 1: a 7 x 7 PNG whose pixels are the
 * images' bytes exactly and mid-gray elsewhere. */
static void check_grid_round_trip(size_t C) {
    char dir[64], path[128];
    make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/grid.png", dir);
    double pixels[3 * 3 * 4];
    for (size_t k = 0; k < 3 * C * 4; k++) pixels[k] = (double)((37 * k + 11) % 256) / 255.0;
    CM_CHECK_OK(cm_image_write_grid(path, pixels, 3, C, 2, 2, 2, 1));
    void *bytes = NULL;
    size_t size = 0;
    cm_image_set set = {0};
    CM_CHECK_OK(cm_file_read_all(&bytes, &size, path, 1 << 20));
    if (bytes) CM_CHECK_OK(cm_png_parse(&set, bytes, size, path));
    CM_CHECK(set.channels == C && set.height == 7 && set.width == 7, "grid %zu x %zu x %zu",
             set.channels, set.height, set.width);
    for (size_t c = 0; set.bytes && set.width == 7 && c < C; c++) {
        for (size_t y = 0; y < 7; y++) {
            for (size_t x = 0; x < 7; x++) {
                int expected = 128;
                size_t i = (y / 3) * 2 + x / 3;
                if (y % 3 != 0 && x % 3 != 0 && i < 3)
                    expected = (int)((37 * ((i * C + c) * 4 + (y % 3 - 1) * 2 + x % 3 - 1) + 11) %
                                     256);
                CM_CHECK(set.bytes[(c * 7 + y) * 7 + x] == expected, "C = %zu: channel %zu "
                         "(%zu, %zu) is %d, expected %d", C, c, y, x,
                         set.bytes[(c * 7 + y) * 7 + x], expected);
            }
        }
    }
    cm_image_set_free(&set);
    cm_free(bytes);
    remove_tree(dir);
}

static void test_grid_round_trip(void) {
    check_grid_round_trip(1);
    check_grid_round_trip(3);
}

static void test_grid_clips_and_refuses(void) {
    char dir[64], path[128];
    make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/g.png", dir);
    const double values[] = {-3.0, 1.5, 0.5 / 255.0 + 1e-9, INFINITY};
    CM_CHECK_OK(cm_image_write_grid(path, values, 1, 1, 2, 2, 1, 0));
    cm_image_set set = {0};
    void *bytes = NULL;
    size_t size = 0;
    CM_CHECK_OK(cm_file_read_all(&bytes, &size, path, 1 << 20));
    if (bytes) CM_CHECK_OK(cm_png_parse(&set, bytes, size, path));
    CM_CHECK(set.bytes && set.bytes[0] == 0 && set.bytes[1] == 255 && set.bytes[2] == 1 &&
             set.bytes[3] == 255, "clipping and rounding");
    cm_image_set_free(&set);
    cm_free(bytes);
    const double nan_value[] = {0.5, NAN, 0.5, 0.5};
    CM_CHECK(cm_image_write_grid(path, nan_value, 1, 1, 2, 2, 1, 0) == CM_ERR_NONFINITE &&
             strstr(cm_error_detail(), "row 0, column 1"), "NaN: %s", cm_error_detail());
    CM_CHECK(cm_image_write_grid(path, values, 1, 2, 1, 2, 1, 0) == CM_ERR_INVALID, "C = 2");
    CM_CHECK(cm_image_write_grid(path, values, 0, 1, 2, 2, 1, 0) == CM_ERR_INVALID, "n = 0");
    CM_CHECK(cm_image_write_grid(path, values, 1, 1, 2, 2, 0, 0) == CM_ERR_INVALID, "0 columns");
    CM_CHECK(cm_image_write_grid(path, values, 1, 1, 1, 20000, 1, 0) == CM_ERR_INVALID,
             "grid wider than the limit");
    snprintf(path, sizeof path, "%s/missing/g.png", dir);
    CM_CHECK(cm_image_write_grid(path, values, 1, 1, 2, 2, 1, 0) == CM_ERR_IO, "missing folder");
    remove_tree(dir);
}

/* One gray 1 x 2 PNG whose two pixels are `a` and `b`, written by the grid writer. */
static void write_png_pixels(const char *path, int a, int b, size_t channels) {
    double values[6] = {a / 255.0, b / 255.0, a / 255.0, b / 255.0, a / 255.0, b / 255.0};
    CM_CHECK_OK(cm_image_write_grid(path, values, 1, channels, 1, 2, 1, 0));
}

static void test_png_folder(void) {
    char dir[64], path[192];
    make_temp_dir(dir, sizeof dir);
    const char *names[] = {"b.png", "a.PNG", "c.png"};
    const int values[] = {20, 10, 30};
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        write_png_pixels(path, values[i], 255 - values[i], 1);
    }
    snprintf(path, sizeof path, "%s/notes.txt", dir);
    write_file(path, "x", 1);
    snprintf(path, sizeof path, "%s/.hidden.png", dir);
    write_file(path, "x", 1);
    snprintf(path, sizeof path, "%s/sub", dir); /* ignored: the folder has PNG files */
    mkdir(path, 0755);
    cm_image_set set;
    CM_CHECK_OK(cm_image_read_png_dir(&set, dir));
    CM_CHECK(set.count == 3 && set.channels == 1 && set.height == 1 && set.width == 2 &&
             !set.labels && set.classes == 0, "folder shape: %zu images", set.count);
    const unsigned char sorted[] = {10, 245, 20, 235, 30, 225}; /* a.PNG, b.png, c.png */
    CM_CHECK(set.bytes && set.count == 3 && memcmp(set.bytes, sorted, 6) == 0, "sorted by name");
    cm_image_set_free(&set);
    snprintf(path, sizeof path, "%s/d.png", dir);
    write_png_pixels(path, 1, 2, 3); /* RGB among gray */
    long live = cm_alloc_live_count();
    CM_CHECK(cm_image_read_png_dir(&set, dir) == CM_ERR_DIMENSION &&
             strstr(cm_error_detail(), "d.png"), "mixed channels: %s", cm_error_detail());
    write_file(path, "not a png", 9);
    CM_CHECK(cm_image_read_png_dir(&set, dir) == CM_ERR_FORMAT &&
             strstr(cm_error_detail(), "d.png: not a PNG"), "bad file: %s", cm_error_detail());
    CM_CHECK(cm_alloc_live_count() == live, "failures leaked");
    remove_tree(dir);
}

static void test_png_folder_classes(void) {
    char dir[64], path[192];
    make_temp_dir(dir, sizeof dir);
    const char *classes[] = {"zebra", "ant", "empty"};
    for (int k = 0; k < 3; k++) {
        snprintf(path, sizeof path, "%s/%s", dir, classes[k]);
        mkdir(path, 0755);
    }
    snprintf(path, sizeof path, "%s/zebra/1.png", dir);
    write_png_pixels(path, 200, 201, 1);
    snprintf(path, sizeof path, "%s/zebra/0.png", dir);
    write_png_pixels(path, 100, 101, 1);
    snprintf(path, sizeof path, "%s/ant/x.png", dir);
    write_png_pixels(path, 5, 6, 1);
    cm_image_set set;
    CM_CHECK_OK(cm_image_read_png_dir(&set, dir));
    CM_CHECK(set.count == 3 && set.classes == 2 && set.labels && set.class_names,
             "classes: %zu images, %zu classes", set.count, set.classes);
    if (set.labels && set.class_names && set.count == 3 && set.classes == 2) {
        CM_CHECK(!strcmp(set.class_names[0], "ant") && !strcmp(set.class_names[1], "zebra"),
                 "class names sorted, the empty folder skipped");
        CM_CHECK(set.labels[0] == 0 && set.labels[1] == 1 && set.labels[2] == 1, "labels");
        CM_CHECK(set.bytes[0] == 5 && set.bytes[2] == 100 && set.bytes[4] == 200, "order");
    }
    cm_image_set_free(&set);
    long live = cm_alloc_live_count();
    snprintf(path, sizeof path, "%s/empty", dir);
    CM_CHECK(cm_image_read_png_dir(&set, path) == CM_ERR_FORMAT &&
             strstr(cm_error_detail(), "no PNG files"), "empty: %s", cm_error_detail());
    snprintf(path, sizeof path, "%s/missing", dir);
    CM_CHECK(cm_image_read_png_dir(&set, path) == CM_ERR_IO, "missing folder");
    CM_CHECK(cm_alloc_live_count() == live, "failures leaked");
    for (long k = 0, done = 0; k < 200 && !done; k++) { /* every allocation failing in turn */
        cm_alloc_fail_after(k);
        cm_status status = cm_image_read_png_dir(&set, dir);
        cm_alloc_fail_after(-1);
        done = status == CM_OK;
        CM_CHECK(done || status == CM_ERR_NOMEM, "k = %ld: %s", k, cm_error_detail());
        cm_image_set_free(&set);
        CM_CHECK(cm_alloc_live_count() == live, "k = %ld: leaked", k);
    }
    remove_tree(dir);
}

/* ---------------------------------------------------------------- NPY images */

/* An NPY 1.0 image with the dict padded to 64 bytes. */
static size_t build_npy(unsigned char *out, const char *dict, const void *data, size_t size) {
    size_t length = strlen(dict), total = (10 + length + 1 + 63) / 64 * 64;
    memcpy(out, "\x93NUMPY\x01\x00", 8);
    out[8] = (unsigned char)(total - 10);
    out[9] = 0;
    memcpy(out + 10, dict, length);
    memset(out + 10 + length, ' ', total - 10 - length - 1);
    out[total - 1] = '\n';
    memcpy(out + total, data, size);
    return total + size;
}

static void test_npy_images(void) {
    unsigned char file[512];
    const unsigned char bytes[] = {0, 51, 102, 153, 204, 255, 1, 2, 3, 4, 5, 6};
    size_t size = build_npy(file, "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 2, 3), }",
                            bytes, sizeof bytes);
    cm_image_set set;
    CM_CHECK_OK(cm_image_parse_npy(&set, file, size, "u1.npy"));
    CM_CHECK(set.count == 2 && set.channels == 1 && set.height == 2 && set.width == 3 &&
             set.bytes && !set.pixels && memcmp(set.bytes, bytes, 12) == 0, "[N, H, W] bytes");
    double row[6];
    cm_image_set_row(&set, 0, row);
    CM_CHECK(row[1] == 0.2 && row[5] == 1.0, "bytes / 255: %.17g %.17g", row[1], row[5]);
    cm_image_set_free(&set);
    const float floats[] = {0.0f, 0.25f, 0.5f, 1.0f, 0.125f, 0.75f};
    size = build_npy(file, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 1, 2), }",
                     floats, sizeof floats);
    CM_CHECK_OK(cm_image_parse_npy(&set, file, size, "f4.npy"));
    CM_CHECK(set.count == 1 && set.channels == 3 && set.height == 1 && set.width == 2 &&
             set.pixels && !set.bytes && set.pixels[5] == 0.75f, "[N, C, H, W] floats");
    cm_image_set_free(&set);
    const double doubles[] = {0.5, 1.0000001};
    size = build_npy(file, "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1, 2), }",
                     doubles, sizeof doubles);
    long live = cm_alloc_live_count();
    CM_CHECK(cm_image_parse_npy(&set, file, size, "f8.npy") == CM_ERR_FORMAT &&
             strstr(cm_error_detail(), "element 1) is outside [0, 1]"), "%s", cm_error_detail());
    const double nan_pixel[] = {NAN, 0.0};
    size = build_npy(file, "{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1, 2), }",
                     nan_pixel, sizeof nan_pixel);
    CM_CHECK(cm_image_parse_npy(&set, file, size, "nan.npy") == CM_ERR_NONFINITE, "NaN pixel");
    size = build_npy(file, "{'descr': '|u1', 'fortran_order': False, 'shape': (2, 6), }",
                     bytes, sizeof bytes);
    CM_CHECK(cm_image_parse_npy(&set, file, size, "2d.npy") == CM_ERR_FORMAT &&
             strstr(cm_error_detail(), "2-D array; images are"), "2-D: %s", cm_error_detail());
    size = build_npy(file, "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 2, 1, 6), }",
                     bytes, sizeof bytes);
    CM_CHECK_OK(cm_image_parse_npy(&set, file, size, "c2.npy"));
    cm_image_set_free(&set);
    size = build_npy(file, "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 2, 1, 6), }",
                     bytes, sizeof bytes - 1);
    CM_CHECK(cm_image_parse_npy(&set, file, size, "short.npy") == CM_ERR_FORMAT, "truncated");
    const unsigned char many[24] = {0};
    size = build_npy(file, "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 6, 2, 2), }",
                     many, 24);
    CM_CHECK(cm_image_parse_npy(&set, file, size, "hwc.npy") == CM_ERR_FORMAT &&
             strstr(cm_error_detail(), "channels-last"), "6 channels: %s", cm_error_detail());
    CM_CHECK(cm_alloc_live_count() == live, "failures leaked");
}

/* ---------------------------------------------------------------- Fashion-MNIST */

static int fashion_mnist_installed(void) {
    struct stat info;
    if (stat(CM_FASHION_MNIST_DIR "/train-images-idx3-ubyte.gz", &info) == 0) return 1;
    printf("    skipped: dataset-fashion-mnist is not installed\n");
    return 0;
}

static long long pixel_sum(const cm_image_set *set, size_t index) {
    long long sum = 0;
    for (size_t k = 0; k < 784; k++) sum += set->bytes[index * 784 + k];
    return sum;
}

/* Known answers from Python: gzip.open(...).read(), struct.unpack('>IIII', d[:16]),
 * sum(d[16:16 + 784]) (first image), sum of the last 784 bytes (last image). */
static void test_fashion_mnist(void) {
    if (!fashion_mnist_installed()) return;
    cm_image_set set;
    CM_CHECK_OK(cm_image_read_fashion_mnist(&set, 1));
    CM_CHECK(set.count == 10000 && set.channels == 1 && set.height == 28 && set.width == 28 &&
             set.classes == 10 && set.labels && set.bytes, "test set shape");
    if (set.bytes && set.labels && set.count == 10000) {
        CM_CHECK(set.labels[0] == 9 && set.labels[1] == 2 && set.labels[9] == 7, "test labels");
        CM_CHECK(pixel_sum(&set, 0) == 33456, "test image 0 sum %lld", pixel_sum(&set, 0));
        CM_CHECK(!strcmp(set.class_names[9], "Ankle boot") && !strcmp(set.class_names[0],
                 "T-shirt/top"), "class names");
    }
    cm_image_set_free(&set);
    if (getenv("CM_FAST")) return; /* the training set: 26 MB of gzip */
    CM_CHECK_OK(cm_image_read_fashion_mnist(&set, 0));
    CM_CHECK(set.count == 60000 && set.height == 28 && set.width == 28 && set.classes == 10,
             "training set shape %zu x %zu x %zu, %zu classes", set.count, set.height, set.width,
             set.classes);
    if (set.bytes && set.labels && set.count == 60000) {
        CM_CHECK(set.labels[0] == 9 && set.labels[3] == 3 && set.labels[6] == 7, "labels");
        CM_CHECK(pixel_sum(&set, 0) == 76247, "image 0 sum %lld", pixel_sum(&set, 0));
        CM_CHECK(pixel_sum(&set, 59999) == 16684, "image 59999 sum %lld", pixel_sum(&set, 59999));
        size_t per_class[10] = {0};
        for (size_t i = 0; i < set.count; i++) per_class[set.labels[i] < 10 ? set.labels[i] : 0]++;
        for (size_t k = 0; k < 10; k++)
            CM_CHECK(per_class[k] == 6000, "class %zu has %zu images (6000 each)", k, per_class[k]);
    }
    cm_image_set_free(&set);
}

/* ---------------------------------------------------------------- shapes */

/* Lattice points of the disc x^2 + y^2 <= r^2. */
static size_t disc_points(size_t r) {
    size_t count = 0;
    for (long y = -(long)r; y <= (long)r; y++)
        for (long x = -(long)r; x <= (long)r; x++) count += x * x + y * y <= (long)(r * r);
    return count;
}

/* One image against its drawn parameters: values {0, a}, the support is the shape, the
 * classification rule recovers it. Returns the number of failed checks. */
static int check_shape_image(const double *image, const cm_shape_params *p, size_t size) {
    int failures = cm_test_failures_in_current;
    size_t mass = 0;
    for (size_t k = 0; k < size * size; k++) {
        CM_CHECK(image[k] == 0.0 || image[k] == p->intensity, "pixel value %g", image[k]);
        mass += image[k] != 0.0;
    }
    size_t expected = p->shape == CM_SHAPE_DISC ? disc_points(p->radius) : p->rows * p->columns;
    CM_CHECK(mass == expected, "%s mass %zu, expected %zu", cm_shape_class_name(p->shape), mass,
             expected);
    CM_CHECK(p->top + p->rows <= size && p->left + p->columns <= size, "inside the image");
    CM_CHECK(p->intensity >= 0.5 && p->intensity < 1.0, "intensity %g", p->intensity);
    cm_shape_measure m;
    cm_shapes_measure(&m, image, size);
    CM_CHECK(m.shape == p->shape, "%s (size %zu, %zu x %zu, r %zu) classified as %s (fill %g)",
             cm_shape_class_name(p->shape), size, p->rows, p->columns, p->radius,
             cm_shape_class_name(m.shape), m.fill);
    CM_CHECK(m.mass == mass && m.top == p->top && m.left == p->left && m.rows == p->rows &&
             m.columns == p->columns && m.peak == p->intensity, "measured box and mass");
    static size_t scratch[CM_SHAPES_MAX_SIZE * CM_SHAPES_MAX_SIZE];
    CM_CHECK(cm_shapes_clean(image, size, scratch), "a drawn %s is clean",
             cm_shape_class_name(p->shape));
    return cm_test_failures_in_current - failures;
}

/* The law at every size 8..256: each image as its parameters say, classified right. */
static void test_shapes_every_size(void) {
    double *image = malloc(CM_SHAPES_MAX_SIZE * CM_SHAPES_MAX_SIZE * sizeof(double));
    cm_rng root, rng;
    cm_rng_init(&root, cm_test_seed(31));
    for (size_t size = CM_SHAPES_MIN_SIZE; image && size <= CM_SHAPES_MAX_SIZE; size++) {
        for (uint64_t i = 0; i < 12; i++) {
            cm_shape_params p;
            cm_rng_fork(&rng, &root, size * 1000 + i);
            cm_shapes_draw(image, &p, size, &rng);
            if (check_shape_image(image, &p, size)) return free(image);
        }
    }
    free(image);
    cm_shape_measure m;
    double blank[64] = {0};
    cm_shapes_measure(&m, blank, 8);
    CM_CHECK(m.shape == CM_SHAPE_COUNT && m.mass == 0, "a blank image has no class");
}

/* The clean test on images built by hand (8 x 8, rows as strings: '#' the peak 0.8, digits d
 * the value d / 10, '.' 0): one region (8-connected), a soft edge, a faint or a bright pixel
 * away from the shape, two shapes, blank and NaN. */
static void test_shapes_clean(void) {
    static const struct {
        const char *rows;
        int clean;
        const char *what;
    } cases[] = {
        {"........" "..##...." "..##...." "........" "........" "........" "........" "........",
         1, "a square"},
        {"........" ".#......" "..#....." "...#...." "........" "........" "........" "........",
         1, "a diagonal line: one 8-connected region"},
        {"........" ".3333..." ".3##3..." ".3##3..." ".3333..." "........" "........" "........",
         1, "a soft edge at 0.3 touching the shape"},
        {"........" "..##...." "..##...." "........" "........" "........" "......1." "........",
         1, "a pixel at 0.1 away from the shape (below a quarter of the peak)"},
        {"........" "..##...." "..##...." "........" "........" "........" "......3." "........",
         0, "a ghost at 0.3 away from the shape"},
        {"##......" "##......" "........" "........" "........" "........" "......##" "......##",
         0, "two shapes"},
        {"........" "........" "........" "........" "........" "........" "........" "........",
         0, "blank"},
    };
    double image[64];
    size_t scratch[64];
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        for (size_t i = 0; i < 64; i++) {
            char ch = cases[c].rows[i];
            image[i] = ch == '#' ? 0.8 : ch == '.' ? 0.0 : (ch - '0') / 10.0;
        }
        CM_CHECK(cm_shapes_clean(image, 8, scratch) == cases[c].clean, "%s: clean %d expected",
                 cases[c].what, cases[c].clean);
        if (c == 0) {
            image[63] = NAN;
            CM_CHECK(!cm_shapes_clean(image, 8, scratch), "a NaN pixel");
        }
    }
}

/* Statistics of n draws at size 16: class frequencies 1/3, the mean intensity 3/4, the mean
 * mass of each class (disc: (13 + 29 + 49) / 3; square: mean of s^2, s = 4..8, is 38; bar:
 * E t E L = 2.5 * 11), and the centre of mass at (7.5, 7.5) by symmetry; tolerances are
 * SIGMAS standard errors (sample standard deviations over sqrt(n)). */
static void test_shapes_law_statistics(void) {
    uint64_t seed = cm_test_seed(32);
    const size_t n = 30000, S = 16;
    const double expected_mass[CM_SHAPE_COUNT] = {91.0 / 3.0, 38.0, 27.5};
    double image[256];
    double sum[CM_SHAPE_COUNT] = {0}, sum2[CM_SHAPE_COUNT] = {0}, cy = 0, cy2 = 0, cx = 0, cx2 = 0;
    double a = 0;
    size_t count[CM_SHAPE_COUNT] = {0};
    cm_rng root, rng;
    cm_rng_init(&root, seed);
    for (size_t i = 0; i < n; i++) {
        cm_shape_params p;
        cm_shape_measure m;
        cm_rng_fork(&rng, &root, i);
        cm_shapes_draw(image, &p, S, &rng);
        cm_shapes_measure(&m, image, S);
        count[m.shape < CM_SHAPE_COUNT ? m.shape : 0]++;
        sum[p.shape] += (double)m.mass;
        sum2[p.shape] += (double)m.mass * (double)m.mass;
        cy += m.centre_y, cy2 += m.centre_y * m.centre_y;
        cx += m.centre_x, cx2 += m.centre_x * m.centre_x;
        a += p.intensity;
    }
    for (int k = 0; k < CM_SHAPE_COUNT; k++) {
        double sd = sqrt((double)n / 3.0 * (2.0 / 3.0));
        CM_CHECK_CLOSE((double)count[k], (double)n / 3.0, SIGMAS * sd, "class frequency");
        double mean = sum[k] / (double)count[k];
        double spread = sqrt(sum2[k] / (double)count[k] - mean * mean);
        CM_CHECK_CLOSE(mean, expected_mass[k], SIGMAS * spread / sqrt((double)count[k]),
                       cm_shape_class_name((cm_shape_class)k));
    }
    double my = cy / (double)n, mx = cx / (double)n;
    CM_CHECK_CLOSE(my, 7.5, SIGMAS * sqrt(cy2 / (double)n - my * my) / sqrt((double)n), "centre y");
    CM_CHECK_CLOSE(mx, 7.5, SIGMAS * sqrt(cx2 / (double)n - mx * mx) / sqrt((double)n), "centre x");
    CM_CHECK_CLOSE(a / (double)n, 0.75, SIGMAS * 0.5 / sqrt(12.0 * (double)n), "intensity");
}

const cm_test_case cm_tests_image[] = {
    {"idx_known_plain_and_gzip", test_idx_known_plain_and_gzip},
    {"idx_bad_headers", test_idx_bad_headers},
    {"idx_dimensions", test_idx_dimensions},
    {"idx_truncated_and_trailing", test_idx_truncated_and_trailing},
    {"idx_damaged_gzip", test_idx_damaged_gzip},
    {"idx_out_of_memory", test_idx_out_of_memory},
    {"idx_image_set_files", test_idx_image_set_files},
    {"png_known_colour_types", test_png_known_colour_types},
    {"png_damaged", test_png_damaged},
    {"png_out_of_memory", test_png_out_of_memory},
    {"grid_round_trip", test_grid_round_trip},
    {"grid_clips_and_refuses", test_grid_clips_and_refuses},
    {"png_folder", test_png_folder},
    {"png_folder_classes", test_png_folder_classes},
    {"npy_images", test_npy_images},
    {"fashion_mnist", test_fashion_mnist},
    {"shapes_every_size", test_shapes_every_size},
    {"shapes_law_statistics", test_shapes_law_statistics},
    {"shapes_clean", test_shapes_clean},
    {NULL, NULL},
};
