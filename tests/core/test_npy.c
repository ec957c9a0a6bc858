/* test_npy.c: the NPY reader and writer, the atomic file writer and the .npy/.csv dispatch.
 *
 * Known answers come from hand-written byte images (header text and IEEE bit patterns typed
 * in, not produced by the writer); damaged images (every truncation, bad magic, huge shapes,
 * wrong dtypes, NaN) must fail with the right status, allocate nothing and never crash.
 */
#include "test.h"

#include <dirent.h>
#include <float.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cm/alloc.h"
#include "cm/io.h"

#define SPACES10 "          "

/* {'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), } as NPY 1.0: 10 + 118 bytes of
 * header (59 of dict, 58 spaces, '\n'), then [[1, 2], [-0.5, 0.25], [3, 1024]] as '<f8'. */
static const unsigned char known_f8[] =
    "\x93NUMPY\x01\x00\x76\x00"
    "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2), }"
    SPACES10 SPACES10 SPACES10 SPACES10 SPACES10 "        \n"
    "\x00\x00\x00\x00\x00\x00\xf0\x3f" "\x00\x00\x00\x00\x00\x00\x00\x40"
    "\x00\x00\x00\x00\x00\x00\xe0\xbf" "\x00\x00\x00\x00\x00\x00\xd0\x3f"
    "\x00\x00\x00\x00\x00\x00\x08\x40" "\x00\x00\x00\x00\x00\x00\x90\x40";
static const double known_f8_values[] = {1, 2, -0.5, 0.25, 3, 1024};

/* An NPY image with the given version, dict text (padded to 64) and data bytes; returns the
 * size. The buffer must hold 64 + strlen(dict) + 64 + data_size bytes. */
static size_t build_npy(unsigned char *out, int major, const char *dict, const void *data,
                        size_t data_size) {
    size_t prefix = major == 1 ? 10 : 12, dict_length = strlen(dict);
    size_t total = (prefix + dict_length + 1 + 63) / 64 * 64, header = total - prefix;
    memcpy(out, "\x93NUMPY", 6);
    out[6] = (unsigned char)major;
    out[7] = 0;
    for (size_t b = 0; b < prefix - 8; b++) out[8 + b] = (unsigned char)(header >> 8 * b);
    memcpy(out + prefix, dict, dict_length);
    memset(out + prefix + dict_length, ' ', header - dict_length - 1);
    out[total - 1] = '\n';
    if (data_size) memcpy(out + total, data, data_size);
    return total + data_size;
}

/* Parse must fail with `expected`, leave no output and no live allocation. */
static void check_parse_fails(const void *bytes, size_t size, cm_status expected,
                              const char *detail_part, const char *what) {
    long live = cm_alloc_live_count();
    double *data = (double *)&live; /* must be reset to NULL */
    size_t rows = 7, cols = 7;
    cm_status status = cm_npy_parse(&data, &rows, &cols, bytes, size, "bad.npy");
    CM_CHECK(status == expected, "%s: status %s, expected %s (%s)", what, cm_status_name(status),
             cm_status_name(expected), cm_error_detail());
    CM_CHECK(data == NULL && rows == 0 && cols == 0, "%s: outputs not cleared", what);
    CM_CHECK(strstr(cm_error_detail(), "bad.npy") != NULL, "%s: detail lacks the name: %s", what,
             cm_error_detail());
    if (detail_part)
        CM_CHECK(strstr(cm_error_detail(), detail_part) != NULL, "%s: detail '%s' lacks '%s'",
                 what, cm_error_detail(), detail_part);
    CM_CHECK(cm_alloc_live_count() == live, "%s: leaked %ld allocations", what,
             cm_alloc_live_count() - live);
    if (status == CM_OK) cm_free(data);
}

static void make_temp_dir(char *path, size_t size) {
    snprintf(path, size, "/tmp/cm_test_npy_XXXXXX");
    CM_CHECK(mkdtemp(path) != NULL, "mkdtemp failed");
}

/* Number of entries in `dir` (besides . and ..), counting those whose name contains "tmp". */
static int count_entries(const char *dir, int *temporaries) {
    DIR *handle = opendir(dir);
    int count = 0;
    *temporaries = 0;
    if (!handle) return -1;
    for (struct dirent *entry; (entry = readdir(handle));) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0) continue;
        count++;
        *temporaries += strstr(entry->d_name, "tmp") != NULL;
    }
    closedir(handle);
    return count;
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

/* The bytes of a file (cm_free them), or NULL. */
static unsigned char *slurp(const char *path, size_t *size) {
    void *bytes = NULL;
    if (cm_file_read_all(&bytes, size, path, 1 << 20) != CM_OK) return NULL;
    return bytes;
}

static void test_known_f8_v1(void) {
    double *data = NULL;
    size_t rows = 0, cols = 0;
    CM_CHECK(sizeof known_f8 - 1 == 128 + 48, "image is %zu bytes", sizeof known_f8 - 1);
    CM_CHECK_OK(cm_npy_parse(&data, &rows, &cols, known_f8, sizeof known_f8 - 1, "known.npy"));
    CM_CHECK(rows == 3 && cols == 2, "shape %zu x %zu", rows, cols);
    for (size_t i = 0; data && i < 6; i++)
        CM_CHECK(data[i] == known_f8_values[i], "value %zu: %g vs %g", i, data[i],
                 known_f8_values[i]);
    cm_free(data);
}

/* Version 2.0, keys in another order, odd spacing, 1-D shape "(4,)", '<f4' data. */
static void test_known_f4_v2_1d(void) {
    static const unsigned char values[] = {0x00, 0x00, 0xc0, 0x3f,  0x00, 0x00, 0x00, 0xc0,
                                           0x00, 0x00, 0x00, 0x3f,  0x00, 0x00, 0xc8, 0x42};
    unsigned char image[256];
    size_t size = build_npy(image, 2, "{ 'shape':(4,) ,'fortran_order' :False,\"descr\": '<f4',}",
                            values, sizeof values);
    double *data = NULL;
    size_t rows = 0, cols = 0;
    CM_CHECK_OK(cm_npy_parse(&data, &rows, &cols, image, size, "v2.npy"));
    CM_CHECK(rows == 4 && cols == 1, "shape %zu x %zu", rows, cols);
    const double expected[] = {1.5, -2.0, 0.5, 100.0};
    for (size_t i = 0; data && i < 4; i++)
        CM_CHECK(data[i] == expected[i], "value %zu: %g vs %g", i, data[i], expected[i]);
    cm_free(data);
}

/* Version 3.0 and a Python 2 style shape (2L, 1L) are read too. */
static void test_known_v3_long_shape(void) {
    static const unsigned char values[] = {0, 0, 0x80, 0x3f, 0, 0, 0, 0x40};
    unsigned char image[256];
    size_t size = build_npy(image, 3, "{'descr': '<f4', 'fortran_order': False, 'shape': (2L, 1L)}",
                            values, sizeof values);
    double *data = NULL;
    size_t rows = 0, cols = 0;
    CM_CHECK_OK(cm_npy_parse(&data, &rows, &cols, image, size, "v3.npy"));
    CM_CHECK(rows == 2 && cols == 1 && data && data[0] == 1.0 && data[1] == 2.0, "v3 values");
    cm_free(data);
}

/* A 3-D and a 4-D array (image batches) read as N rows of the product of the other dimensions;
 * cm_npy_parse_info reports the shape and leaves uint8 items in place. */
static void test_known_image_arrays(void) {
    static const unsigned char values[] = {0, 0, 0x80, 0x3f, 0, 0, 0, 0x40, 0, 0, 0x40, 0x40,
                                           0, 0, 0x80, 0x40, 0, 0, 0xa0, 0x40, 0, 0, 0xc0, 0x40};
    unsigned char image[256];
    size_t size = build_npy(image, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 1, 3)}",
                            values, sizeof values);
    double *data = NULL;
    size_t rows = 0, cols = 0;
    CM_CHECK_OK(cm_npy_parse(&data, &rows, &cols, image, size, "nhw.npy"));
    CM_CHECK(rows == 2 && cols == 3, "3-D read as %zu x %zu", rows, cols);
    for (size_t i = 0; data && i < 6; i++)
        CM_CHECK(data[i] == (double)(i + 1), "value %zu: %g", i, data[i]);
    cm_free(data);
    cm_npy_info info;
    size = build_npy(image, 1, "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 3, 1, 2)}",
                     values, sizeof values);
    CM_CHECK_OK(cm_npy_parse_info(&info, image, size, "nchw.npy"));
    CM_CHECK(info.ndim == 4 && info.shape[0] == 1 && info.shape[1] == 3 && info.shape[2] == 1 &&
             info.shape[3] == 2 && info.count == 6 && info.dtype == CM_NPY_FLOAT32,
             "4-D info: ndim %zu count %zu", info.ndim, info.count);
    CM_CHECK(cm_npy_item(&info, image, 5) == 6.0, "item 5 of the 4-D array");
    static const unsigned char pixels[] = {0, 1, 128, 255, 7, 9};
    size = build_npy(image, 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 2, 3), }",
                     pixels, sizeof pixels);
    CM_CHECK_OK(cm_npy_parse_info(&info, image, size, "u1.npy"));
    CM_CHECK(info.dtype == CM_NPY_UINT8 && info.ndim == 3 && info.count == 6 &&
             info.shape[3] == 1 && info.data_offset == size - sizeof pixels, "u1 info");
    for (size_t i = 0; i < 6; i++)
        CM_CHECK(cm_npy_item(&info, image, i) == pixels[i], "u1 item %zu", i);
    size = build_npy(image, 1, "{'descr': '<u1', 'fortran_order': False, 'shape': (6,), }",
                     pixels, sizeof pixels);
    CM_CHECK_OK(cm_npy_parse_info(&info, image, size, "u1-le.npy"));
    CM_CHECK(info.dtype == CM_NPY_UINT8 && info.ndim == 1 && info.shape[1] == 1, "'<u1' info");
    size = build_npy(image, 1, "{'descr': '|u1', 'fortran_order': False, 'shape': (1, 2, 3), }",
                     pixels, sizeof pixels - 1);
    CM_CHECK(cm_npy_parse_info(&info, image, size, "short.npy") == CM_ERR_FORMAT &&
             info.count == 0, "a truncated u1 array is refused and the info cleared");
}

static void test_truncated_every_length(void) {
    for (size_t size = 0; size < sizeof known_f8 - 1; size++) {
        char what[64];
        snprintf(what, sizeof what, "truncated to %zu bytes", size);
        check_parse_fails(known_f8, size, CM_ERR_FORMAT, NULL, what);
    }
    check_parse_fails(known_f8, sizeof known_f8 - 2, CM_ERR_FORMAT,
                      "truncated: header says 48 bytes of data, file has 47", "one byte short");
}

static void test_bad_magic_and_version(void) {
    unsigned char image[sizeof known_f8];
    memcpy(image, known_f8, sizeof image);
    image[1] = 'n';
    check_parse_fails(image, sizeof image - 1, CM_ERR_FORMAT, "magic", "bad magic");
    memcpy(image, known_f8, sizeof image);
    image[6] = 4;
    check_parse_fails(image, sizeof image - 1, CM_ERR_UNSUPPORTED, "4.0", "version 4.0");
    image[6] = 1;
    image[7] = 1;
    check_parse_fails(image, sizeof image - 1, CM_ERR_UNSUPPORTED, "1.1", "version 1.1");
}

static void test_header_length_beyond_file(void) {
    unsigned char image[sizeof known_f8];
    memcpy(image, known_f8, sizeof image);
    image[8] = 0xff;
    image[9] = 0xff;
    check_parse_fails(image, sizeof image - 1, CM_ERR_FORMAT, "exceeds", "header length 65535");
}

static void test_huge_shapes(void) {
    unsigned char image[256];
    double zero = 0;
    size_t size = build_npy(image, 1, "{'descr': '<f8', 'fortran_order': False, "
                            "'shape': (4294967296, 4294967296), }", &zero, sizeof zero);
    check_parse_fails(image, size, CM_ERR_FORMAT, "overflow", "shape (2^32, 2^32)");
    size = build_npy(image, 1, "{'descr': '<f4', 'fortran_order': False, "
                     "'shape': (1000000000, 1000), }", &zero, sizeof zero);
    check_parse_fails(image, size, CM_ERR_FORMAT, "truncated", "4 TB claimed, 8 bytes present");
    size = build_npy(image, 1, "{'descr': '<f4', 'fortran_order': False, "
                     "'shape': (99999999999999999999, 1), }", &zero, sizeof zero);
    check_parse_fails(image, size, CM_ERR_FORMAT, NULL, "dimension beyond 2^64");
}

static void test_nonfinite_values(void) {
    double values[6] = {1, 2, 3, 4, 5, 6};
    unsigned char image[256];
    values[3] = NAN;
    size_t size = build_npy(image, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2)}",
                            values, sizeof values);
    check_parse_fails(image, size, CM_ERR_NONFINITE, "row 1, column 1", "NaN at [1, 1]");
    values[3] = 4;
    values[4] = -INFINITY;
    size = build_npy(image, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 2)}",
                     values, sizeof values);
    check_parse_fails(image, size, CM_ERR_NONFINITE, "row 2, column 0", "-inf at [2, 0]");
}

/* Header dicts that are well-formed NPY but unsupported, or malformed. */
static void test_rejected_headers(void) {
    static const struct {
        const char *dict;
        cm_status status;
        const char *detail;
    } cases[] = {
        {"{'descr': '>f8', 'fortran_order': False, 'shape': (1, 1), }",
         CM_ERR_UNSUPPORTED, "big-endian"},
        {"{'descr': '<f8', 'fortran_order': True, 'shape': (1, 1), }",
         CM_ERR_UNSUPPORTED, "fortran"},
        {"{'descr': '<i8', 'fortran_order': False, 'shape': (1, 1), }", CM_ERR_UNSUPPORTED, "<i8"},
        {"{'descr': '|u2', 'fortran_order': False, 'shape': (1, 1), }", CM_ERR_UNSUPPORTED, "|u2"},
        {"{'descr': '|u1', 'fortran_order': False, 'shape': (8,), }", CM_ERR_UNSUPPORTED,
         "images only"},
        {"{'descr': '=f8', 'fortran_order': False, 'shape': (1, 1), }",
         CM_ERR_UNSUPPORTED, "byte order"},
        {"{'descr': [('a', '<f8')], 'fortran_order': False, 'shape': (1,)}",
         CM_ERR_UNSUPPORTED, "structured"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': ()}", CM_ERR_UNSUPPORTED, "0-D"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1, 1, 1, 1)}", CM_ERR_UNSUPPORTED,
         "5-D"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1, 0)}", CM_ERR_FORMAT, "empty"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (0, 3)}", CM_ERR_FORMAT, "empty"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (3, 0)}", CM_ERR_FORMAT, "empty"},
        {"{'descr': '<f8', 'fortran_order': False}", CM_ERR_FORMAT, "shape"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (1,), 'x': 1}", CM_ERR_FORMAT, "'x'"},
        {"{'descr': '<f8', 'descr': '<f8', 'fortran_order': False, 'shape': (1,)}",
         CM_ERR_FORMAT, "repeated"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (1,)} x", CM_ERR_FORMAT, "junk"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (-1,)}", CM_ERR_FORMAT, "shape"},
        {"{'descr': '<f8', 'fortran_order': 0, 'shape': (1,)}", CM_ERR_FORMAT, "fortran_order"},
        {"{'descr': '<f8', 'fortran_order': False, 'shape': (1,,)}", CM_ERR_FORMAT, "shape"},
        {"{'descr': '<f8' 'fortran_order': False, 'shape': (1,)}", CM_ERR_FORMAT, "malformed"},
        {"['descr', '<f8']", CM_ERR_FORMAT, "dict"},
    };
    double value = 1;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned char image[256];
        size_t size = build_npy(image, 1, cases[i].dict, &value, sizeof value);
        check_parse_fails(image, size, cases[i].status, cases[i].detail, cases[i].dict);
    }
}

static void test_trailing_bytes(void) {
    unsigned char image[sizeof known_f8 + 1];
    memcpy(image, known_f8, sizeof known_f8);
    check_parse_fails(image, sizeof image, CM_ERR_FORMAT, "trailing", "one byte too many");
}

static void test_parse_out_of_memory(void) {
    long live = cm_alloc_live_count();
    double *data = NULL;
    size_t rows, cols;
    cm_alloc_fail_after(0);
    cm_status status = cm_npy_parse(&data, &rows, &cols, known_f8, sizeof known_f8 - 1, "oom.npy");
    cm_alloc_fail_after(-1);
    CM_CHECK(status == CM_ERR_NOMEM, "status %s", cm_status_name(status));
    CM_CHECK(data == NULL && cm_alloc_live_count() == live, "leak or output after NOMEM");
}

/* Round trip through a file: float32-representable values come back bit-exact; the file is
 * version 1.0 with a header padded to 64 bytes and no temporary file remains. */
static void test_write_read_round_trip(void) {
    char dir[64], path[128];
    make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/x.npy", dir);
    const double values[] = {0.0,     -0.0,       1.5, -3.0517578125e-05,     65504.0,
                             1.0 / 1024, FLT_MAX, -7.0, 1.401298464324817e-45, 0.1f};
    long live = cm_alloc_live_count();
    CM_CHECK_OK(cm_npy_write_f32(path, values, 5, 2));
    double *data = NULL;
    size_t rows = 0, cols = 0;
    CM_CHECK_OK(cm_npy_read(&data, &rows, &cols, path));
    CM_CHECK(rows == 5 && cols == 2, "shape %zu x %zu", rows, cols);
    for (size_t i = 0; data && i < 10; i++)
        CM_CHECK(memcmp(&data[i], &values[i], sizeof(double)) == 0, "value %zu: %.17g vs %.17g", i,
                 data[i], values[i]);
    cm_free(data);
    size_t size = 0;
    unsigned char *bytes = slurp(path, &size);
    CM_CHECK(bytes && size == 128 + 40, "file is %zu bytes", size); /* 70 bytes of header, padded */
    if (bytes && size >= 64) {
        size_t header = bytes[8] | (size_t)bytes[9] << 8;
        CM_CHECK(bytes[6] == 1 && bytes[7] == 0 && (10 + header) % 64 == 0, "version/padding");
        CM_CHECK(bytes[9 + header] == '\n', "header does not end in a newline");
        CM_CHECK(memcmp(bytes + 10, "{'descr': '<f4', 'fortran_order': False, 'shape': (5, 2), }",
                        59) == 0, "header text: %.60s", (const char *)bytes + 10);
    }
    cm_free(bytes);
    CM_CHECK(cm_alloc_live_count() == live, "leaked %ld", cm_alloc_live_count() - live);
    int temporaries, entries = count_entries(dir, &temporaries);
    CM_CHECK(entries == 1 && temporaries == 0, "%d entries, %d temporary", entries, temporaries);
    remove_tree(dir);
}

/* cm_npy_write_f32_shape: 1-D and 3-D headers as numpy writes them, values back exactly. */
static void test_write_shapes(void) {
    char dir[64], path[128];
    make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/s.npy", dir);
    const double values[] = {0.5, 1, 0, 0.25, 0.75, 1, 0.125, 0};
    const size_t cube[] = {2, 2, 2}, line[] = {3}, five[] = {1, 1, 1, 1, 8};
    const struct {
        const size_t *shape;
        size_t ndim;
        const char *text;
    } cases[] = {{cube, 3, "'shape': (2, 2, 2), }"}, {line, 1, "'shape': (3,), }"}};
    for (size_t c = 0; c < 2; c++) {
        CM_CHECK_OK(cm_npy_write_f32_shape(path, values, cases[c].shape, cases[c].ndim));
        size_t size = 0;
        unsigned char *bytes = slurp(path, &size);
        cm_npy_info info;
        CM_CHECK(bytes && cm_npy_parse_info(&info, bytes, size, path) == CM_OK, "%s", cm_error_detail());
        CM_CHECK(bytes && strstr((const char *)bytes + 10, cases[c].text) != NULL,
                 "header lacks %s", cases[c].text);
        CM_CHECK(info.ndim == cases[c].ndim && info.shape[0] == cases[c].shape[0], "shape back");
        for (size_t i = 0; bytes && i < info.count; i++)
            CM_CHECK(cm_npy_item(&info, bytes, i) == values[i], "value %zu", i);
        cm_free(bytes);
    }
    CM_CHECK(cm_npy_write_f32_shape(path, values, five, 5) == CM_ERR_INVALID, "5-D written");
    CM_CHECK(cm_npy_write_f32_shape(path, values, five, 0) == CM_ERR_INVALID, "0-D written");
    const size_t empty[] = {2, 0, 2};
    CM_CHECK(cm_npy_write_f32_shape(path, values, empty, 3) == CM_ERR_INVALID, "empty written");
    remove_tree(dir);
}

/* Values are rounded to float32 on writing; values float32 cannot hold are refused. */
static void test_write_rounds_and_refuses(void) {
    char dir[64], path[128];
    make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/r.npy", dir);
    double value = 0.1, *data = NULL;
    size_t rows, cols;
    CM_CHECK_OK(cm_npy_write_f32(path, &value, 1, 1));
    CM_CHECK_OK(cm_npy_read(&data, &rows, &cols, path));
    CM_CHECK(data && data[0] == (double)0.1f, "0.1 read back as %.17g", data ? data[0] : 0);
    cm_free(data);
    double bad[] = {1, 1e39};
    CM_CHECK(cm_npy_write_f32(path, bad, 1, 2) == CM_ERR_NONFINITE, "1e39 written as float32");
    bad[1] = NAN;
    CM_CHECK(cm_npy_write_f32(path, bad, 2, 1) == CM_ERR_NONFINITE, "NaN written");
    CM_CHECK(cm_npy_write_f32(path, bad, 0, 1) == CM_ERR_INVALID, "empty array written");
    double edge[] = {3.40282347e+38, -0x1.fffffefffffffp127}; /* above FLT_MAX, round to it */
    CM_CHECK_OK(cm_npy_write_f32(path, edge, 2, 1));
    CM_CHECK_OK(cm_npy_read(&data, &rows, &cols, path));
    CM_CHECK(data && data[0] == FLT_MAX && data[1] == -FLT_MAX, "edge values read back");
    cm_free(data);
    edge[1] = 0x1.ffffffp127; /* halfway to the next power: rounds to infinity */
    CM_CHECK(cm_npy_write_f32(path, edge, 2, 1) == CM_ERR_NONFINITE, "overflowing value written");
    remove_tree(dir);
}

/* A failing write leaves an existing file untouched and no temporary file behind. */
static void test_failed_write_keeps_old_file(void) {
    char dir[64], path[128], blocked[160];
    make_temp_dir(dir, sizeof dir);
    snprintf(path, sizeof path, "%s/keep.npy", dir);
    CM_CHECK_OK(cm_npy_write_f32(path, known_f8_values, 3, 2));
    size_t before_size = 0, after_size = 0;
    unsigned char *before = slurp(path, &before_size);
    const double other[] = {9, NAN};
    CM_CHECK(cm_npy_write_f32(path, other, 2, 1) == CM_ERR_NONFINITE, "NaN write succeeded");
    cm_alloc_fail_after(0);
    cm_status status = cm_npy_write_f32(path, other, 1, 1);
    cm_alloc_fail_after(-1);
    CM_CHECK(status == CM_ERR_NOMEM, "write under NOMEM: %s", cm_status_name(status));
    /* rename onto a non-empty directory fails after the temporary file was written */
    snprintf(blocked, sizeof blocked, "%s/sub.npy", dir);
    mkdir(blocked, 0700);
    snprintf(blocked, sizeof blocked, "%s/sub.npy/inner", dir);
    CM_CHECK_OK(cm_file_write_atomic(blocked, "x", 1));
    snprintf(blocked, sizeof blocked, "%s/sub.npy", dir);
    status = cm_npy_write_f32(blocked, other, 1, 1);
    CM_CHECK(status == CM_ERR_IO, "write over a directory: %s", cm_status_name(status));
    unsigned char *after = slurp(path, &after_size);
    CM_CHECK(before && after && before_size == after_size &&
             memcmp(before, after, before_size) == 0, "existing file changed");
    int temporaries, entries = count_entries(dir, &temporaries);
    CM_CHECK(entries == 2 && temporaries == 0, "%d entries, %d temporary", entries, temporaries);
    CM_CHECK(cm_npy_write_f32("/nonexistent-cm-dir/x.npy", other, 1, 1) == CM_ERR_IO,
             "write into a missing directory");
    CM_CHECK(strstr(cm_error_detail(), "/nonexistent-cm-dir/x.npy") != NULL, "detail: %s",
             cm_error_detail());
    cm_free(before);
    cm_free(after);
    remove_tree(dir);
}

static void test_read_errors(void) {
    char dir[64];
    make_temp_dir(dir, sizeof dir);
    double *data = NULL;
    size_t rows, cols;
    long live = cm_alloc_live_count();
    CM_CHECK(cm_npy_read(&data, &rows, &cols, "/nonexistent-cm-dir/x.npy") == CM_ERR_IO, "missing");
    CM_CHECK(cm_npy_read(&data, &rows, &cols, dir) == CM_ERR_IO, "directory read as a file");
    void *bytes = NULL;
    size_t size;
    char path[128];
    snprintf(path, sizeof path, "%s/big", dir);
    CM_CHECK_OK(cm_file_write_atomic(path, known_f8, 100));
    CM_CHECK(cm_file_read_all(&bytes, &size, path, 99) == CM_ERR_FORMAT, "limit not enforced");
    CM_CHECK(cm_file_read_all(&bytes, &size, path, 100) == CM_OK && size == 100, "limit exact");
    cm_free(bytes);
    /* /proc files report size 0: the limit is enforced while reading, not from the size */
    if (access("/proc/self/status", R_OK) == 0) {
        CM_CHECK(cm_file_read_all(&bytes, &size, "/proc/self/status", 10) == CM_ERR_FORMAT,
                 "limit not enforced while reading");
        CM_CHECK(cm_file_read_all(&bytes, &size, "/proc/self/status", 1 << 20) == CM_OK &&
                 size > 10 && memcmp(bytes, "Name:", 5) == 0, "reading /proc/self/status");
        cm_free(bytes);
    }
    CM_CHECK(cm_alloc_live_count() == live, "leaked %ld", cm_alloc_live_count() - live);
    remove_tree(dir);
}

static void test_matrix_dispatch(void) {
    char dir[64], path[128];
    make_temp_dir(dir, sizeof dir);
    const char *names[] = {"a.NPY", "b.Csv", "c.npy", "d.csv"};
    for (size_t i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        double *data = NULL;
        size_t rows = 0, cols = 0;
        CM_CHECK_OK(cm_matrix_write(path, known_f8_values, 2, 3));
        CM_CHECK_OK(cm_matrix_read(&data, &rows, &cols, path));
        CM_CHECK(rows == 2 && cols == 3, "%s: shape %zu x %zu", names[i], rows, cols);
        for (size_t k = 0; data && k < 6; k++)
            CM_CHECK(data[k] == known_f8_values[k], "%s: value %zu", names[i], k);
        cm_free(data);
    }
    snprintf(path, sizeof path, "%s/c.npy", dir);
    size_t size = 0;
    unsigned char *bytes = slurp(path, &size);
    CM_CHECK(bytes && memcmp(bytes, "\x93NUMPY", 6) == 0, ".npy written as NPY");
    cm_free(bytes);
    double *data = NULL;
    size_t rows, cols;
    CM_CHECK(cm_matrix_write("/tmp/x.txt", known_f8_values, 1, 1) == CM_ERR_INVALID, ".txt");
    CM_CHECK(strstr(cm_error_detail(), "unknown extension") != NULL, "detail %s",
             cm_error_detail());
    CM_CHECK(cm_matrix_read(&data, &rows, &cols, "/tmp/dir.npy/noext") == CM_ERR_INVALID, "noext");
    CM_CHECK(cm_matrix_read(&data, &rows, &cols, "x.npyz") == CM_ERR_INVALID, ".npyz");
    remove_tree(dir);
}

const cm_test_case cm_tests_npy[] = {
    {"known_f8_v1", test_known_f8_v1},
    {"known_f4_v2_1d", test_known_f4_v2_1d},
    {"known_v3_long_shape", test_known_v3_long_shape},
    {"known_image_arrays", test_known_image_arrays},
    {"truncated_every_length", test_truncated_every_length},
    {"bad_magic_and_version", test_bad_magic_and_version},
    {"header_length_beyond_file", test_header_length_beyond_file},
    {"huge_shapes", test_huge_shapes},
    {"nonfinite_values", test_nonfinite_values},
    {"rejected_headers", test_rejected_headers},
    {"trailing_bytes", test_trailing_bytes},
    {"parse_out_of_memory", test_parse_out_of_memory},
    {"write_read_round_trip", test_write_read_round_trip},
    {"write_shapes", test_write_shapes},
    {"write_rounds_and_refuses", test_write_rounds_and_refuses},
    {"failed_write_keeps_old_file", test_failed_write_keeps_old_file},
    {"read_errors", test_read_errors},
    {"matrix_dispatch", test_matrix_dispatch},
    {NULL, NULL},
};
