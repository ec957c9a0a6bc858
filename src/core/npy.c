/* npy.c: NumPy .npy reader (format 1.0/2.0/3.0, '<f4', '<f8' or '|u1', C order, 1 to 4
 * dimensions) and float32 writer (format 1.0, any shape of 1 to 4 dimensions).
 *
 * Hand-written because Debian ships no C library for NPY, and the format is small: the magic
 * "\x93NUMPY", a version, a little-endian header length (u16 for 1.0, u32 for 2.0/3.0), a
 * Python dict literal {'descr': .., 'fortran_order': .., 'shape': (..)} padded with spaces and
 * '\n', then the raw array. The dict is parsed by hand (keys in any order, any spacing, trailing
 * commas) and everything is checked before the data is trusted. Not supported: big-endian or
 * native ('=', '|') byte order, Fortran order, structured and non-float dtypes, 0-D or >2-D.
 */
#include "cm/io.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cm/alloc.h"

#define NPY_MAGIC "\x93NUMPY"
#define NPY_MAGIC_LENGTH 6
#define NPY_MAX_DIMS 64 /* numpy's own limit (NPY_MAXDIMS) */
/* FLT_MAX plus half an ulp: doubles below it in magnitude round to a finite float32 */
#define NPY_F32_ROUNDS_FINITE 0x1.ffffffp127

typedef struct {
    char descr[16];
    int fortran_order;
    size_t ndim;
    uint64_t shape[CM_NPY_MAX_DIMS]; /* the first dimensions; ndim may be larger (then rejected) */
    int seen_descr, seen_fortran, seen_shape;
} npy_header;

typedef struct {
    const char *at, *end;
} cursor;

static uint64_t load_le(const unsigned char *bytes, int count) {
    uint64_t value = 0;
    for (int i = count - 1; i >= 0; i--) value = value << 8 | bytes[i];
    return value;
}

static void skip_space(cursor *c) {
    while (c->at < c->end && (*c->at == ' ' || *c->at == '\t' || *c->at == '\n' || *c->at == '\r'))
        c->at++;
}

static int accept(cursor *c, char expected) {
    skip_space(c);
    if (c->at < c->end && *c->at == expected) {
        c->at++;
        return 1;
    }
    return 0;
}

/* A quoted Python string ('..' or "..", no escapes) into dst[capacity]; 0 on failure. */
static int parse_string(cursor *c, char *dst, size_t capacity) {
    skip_space(c);
    if (c->at >= c->end || (*c->at != '\'' && *c->at != '"')) return 0;
    char quote = *c->at++;
    size_t length = 0;
    while (c->at < c->end && *c->at != quote) {
        if (*c->at == '\\' || length + 1 >= capacity) return 0;
        dst[length++] = *c->at++;
    }
    if (c->at >= c->end) return 0;
    c->at++;
    dst[length] = '\0';
    return 1;
}

/* Python True / False; -1 when neither. */
static int parse_bool(cursor *c) {
    skip_space(c);
    size_t left = (size_t)(c->end - c->at);
    if (left >= 4 && memcmp(c->at, "True", 4) == 0) return c->at += 4, 1;
    if (left >= 5 && memcmp(c->at, "False", 5) == 0) return c->at += 5, 0;
    return -1;
}

/* A non-negative decimal integer (Python 2 'L' suffix allowed); 0 on failure or overflow. */
static int parse_dimension(cursor *c, uint64_t *out) {
    skip_space(c);
    if (c->at >= c->end || *c->at < '0' || *c->at > '9') return 0;
    uint64_t value = 0;
    while (c->at < c->end && *c->at >= '0' && *c->at <= '9') {
        unsigned digit = (unsigned)(*c->at++ - '0');
        if (value > (UINT64_MAX - digit) / 10) return 0;
        value = value * 10 + digit;
    }
    if (c->at < c->end && *c->at == 'L') c->at++;
    *out = value;
    return 1;
}

/* (d0, d1, ...) with an optional trailing comma. */
static cm_status parse_shape(npy_header *h, cursor *c, const char *name) {
    if (!accept(c, '(')) return cm_error_set(CM_ERR_FORMAT, "%s: 'shape' is not a tuple", name);
    h->ndim = 0;
    while (!accept(c, ')')) {
        uint64_t dimension;
        if (!parse_dimension(c, &dimension))
            return cm_error_set(CM_ERR_FORMAT, "%s: 'shape' holds something other than a "
                                "non-negative integer below 2^64", name);
        if (h->ndim >= NPY_MAX_DIMS)
            return cm_error_set(CM_ERR_FORMAT, "%s: 'shape' has more than %d dimensions", name,
                                NPY_MAX_DIMS);
        if (h->ndim < CM_NPY_MAX_DIMS) h->shape[h->ndim] = dimension;
        h->ndim++;
        if (!accept(c, ',')) {
            if (accept(c, ')')) break;
            return cm_error_set(CM_ERR_FORMAT, "%s: malformed 'shape' tuple", name);
        }
    }
    return CM_OK;
}

/* One `'key': value` pair of the header dict. */
static cm_status parse_entry(npy_header *h, cursor *c, const char *name) {
    char key[32];
    if (!parse_string(c, key, sizeof key))
        return cm_error_set(CM_ERR_FORMAT, "%s: header dict key is not a short string", name);
    if (!accept(c, ':'))
        return cm_error_set(CM_ERR_FORMAT, "%s: ':' missing after '%s'", name, key);
    int *seen = strcmp(key, "descr") == 0           ? &h->seen_descr
                : strcmp(key, "fortran_order") == 0 ? &h->seen_fortran
                : strcmp(key, "shape") == 0         ? &h->seen_shape
                                                    : NULL;
    if (!seen) return cm_error_set(CM_ERR_FORMAT, "%s: unexpected header key '%s'", name, key);
    if (*seen) return cm_error_set(CM_ERR_FORMAT, "%s: header key '%s' repeated", name, key);
    *seen = 1;
    if (seen == &h->seen_shape) return parse_shape(h, c, name);
    if (seen == &h->seen_fortran) {
        h->fortran_order = parse_bool(c);
        if (h->fortran_order < 0)
            return cm_error_set(CM_ERR_FORMAT, "%s: 'fortran_order' is not True or False", name);
        return CM_OK;
    }
    skip_space(c);
    if (c->at < c->end && *c->at == '[')
        return cm_error_set(CM_ERR_UNSUPPORTED, "%s: structured dtype (only '<f4', '<f8' and "
                            "'|u1')", name);
    if (!parse_string(c, h->descr, sizeof h->descr))
        return cm_error_set(CM_ERR_UNSUPPORTED, "%s: unsupported 'descr' (only '<f4', '<f8' and "
                            "'|u1')", name);
    return CM_OK;
}

/* The header dict literal: keys in any order, trailing comma, then padding only. */
static cm_status parse_header(npy_header *h, const char *text, size_t length, const char *name) {
    cursor c = {text, text + length};
    memset(h, 0, sizeof *h);
    if (!accept(&c, '{')) return cm_error_set(CM_ERR_FORMAT, "%s: header is not a dict", name);
    while (!accept(&c, '}')) {
        CM_TRY(parse_entry(h, &c, name));
        if (!accept(&c, ',')) {
            if (accept(&c, '}')) break;
            return cm_error_set(CM_ERR_FORMAT, "%s: malformed header dict", name);
        }
    }
    skip_space(&c);
    if (c.at != c.end) return cm_error_set(CM_ERR_FORMAT, "%s: junk after the header dict", name);
    const char *missing = !h->seen_descr     ? "descr"
                          : !h->seen_fortran ? "fortran_order"
                          : !h->seen_shape   ? "shape"
                                             : NULL;
    if (missing) return cm_error_set(CM_ERR_FORMAT, "%s: header lacks '%s'", name, missing);
    return CM_OK;
}

/* The dtype of a supported descr, or an UNSUPPORTED status. One-byte items have no byte order,
 * so '|u1', '<u1' and '>u1' are the same. */
static cm_status check_dtype(cm_npy_dtype *dtype, const npy_header *h, const char *name) {
    const char *d = h->descr;
    if (strcmp(d, "<f4") == 0 || strcmp(d, "<f8") == 0) {
        *dtype = d[2] == '4' ? CM_NPY_FLOAT32 : CM_NPY_FLOAT64;
        return CM_OK;
    }
    if ((d[0] == '|' || d[0] == '<' || d[0] == '>') && strcmp(d + 1, "u1") == 0) {
        *dtype = CM_NPY_UINT8;
        return CM_OK;
    }
    if (d[0] == '>')
        return cm_error_set(CM_ERR_UNSUPPORTED, "%s: big-endian dtype '%s' (only '<f4', '<f8', "
                            "'|u1')", name, d);
    if ((d[0] == '=' || d[0] == '|') && (strcmp(d + 1, "f4") == 0 || strcmp(d + 1, "f8") == 0))
        return cm_error_set(CM_ERR_UNSUPPORTED, "%s: dtype '%s' does not say its byte order "
                            "(only '<f4', '<f8')", name, d);
    return cm_error_set(CM_ERR_UNSUPPORTED, "%s: dtype '%s' (only float32 '<f4', float64 '<f8' "
                        "and uint8 '|u1')", name, d);
}

static size_t itemsize_of(cm_npy_dtype dtype) {
    return dtype == CM_NPY_FLOAT64 ? 8 : dtype == CM_NPY_FLOAT32 ? 4 : 1;
}

/* Magic, version and header length; out_header and out_data locate the dict and the array. */
static cm_status parse_preamble(size_t *out_header, size_t *out_header_length, size_t *out_data,
                                const unsigned char *bytes, size_t size, const char *name) {
    if (size < NPY_MAGIC_LENGTH + 2 || memcmp(bytes, NPY_MAGIC, NPY_MAGIC_LENGTH) != 0)
        return cm_error_set(CM_ERR_FORMAT, "%s: not an NPY file (bad magic)", name);
    int major = bytes[6], minor = bytes[7];
    if ((major != 1 && major != 2 && major != 3) || minor != 0)
        return cm_error_set(CM_ERR_UNSUPPORTED, "%s: NPY format version %d.%d (only 1.0, 2.0, 3.0)",
                            name, major, minor);
    size_t field = major == 1 ? 2 : 4;
    if (size < 8 + field)
        return cm_error_set(CM_ERR_FORMAT, "%s: truncated in the NPY preamble", name);
    uint64_t header_length = load_le(bytes + 8, (int)field);
    if (header_length > size - 8 - field)
        return cm_error_set(CM_ERR_FORMAT, "%s: header length %llu exceeds the file (%zu bytes)",
                            name, (unsigned long long)header_length, size);
    *out_header = 8 + field;
    *out_header_length = (size_t)header_length;
    *out_data = 8 + field + (size_t)header_length;
    return CM_OK;
}

/* "(2, 3, 4)" for error details. */
static void format_shape(char *dst, size_t capacity, const npy_header *h) {
    size_t used = (size_t)snprintf(dst, capacity, "(");
    for (size_t i = 0; i < h->ndim && used < capacity; i++)
        used += (size_t)snprintf(dst + used, capacity - used, "%s%llu", i ? ", " : "",
                                 (unsigned long long)h->shape[i]);
    if (used < capacity) snprintf(dst + used, capacity - used, ")");
}

/* Shape and byte count of a validated header, checked against the data that follows. */
static cm_status check_shape(cm_npy_info *info, const npy_header *h, size_t data_size,
                             const char *name) {
    if (h->fortran_order)
        return cm_error_set(CM_ERR_UNSUPPORTED, "%s: fortran_order is True (only C order)", name);
    if (h->ndim == 0 || h->ndim > CM_NPY_MAX_DIMS)
        return cm_error_set(CM_ERR_UNSUPPORTED, "%s: %zu-D array (only 1-D to %d-D)", name,
                            h->ndim, CM_NPY_MAX_DIMS);
    char shape[128];
    format_shape(shape, sizeof shape, h);
    uint64_t count = 1, itemsize = itemsize_of(info->dtype);
    for (size_t i = 0; i < h->ndim; i++)
        if (h->shape[i] == 0)
            return cm_error_set(CM_ERR_FORMAT, "%s: empty: shape %s", name, shape);
    for (size_t i = 0; i < h->ndim; i++) {
        if (count > UINT64_MAX / h->shape[i] || count * h->shape[i] > UINT64_MAX / itemsize)
            return cm_error_set(CM_ERR_FORMAT, "%s: shape %s overflows a 64-bit byte count", name,
                                shape);
        count *= h->shape[i];
    }
    uint64_t bytes = count * itemsize;
    if (bytes > data_size)
        return cm_error_set(CM_ERR_FORMAT, "%s: truncated: header says %llu bytes of data, file "
                            "has %zu", name, (unsigned long long)bytes, data_size);
    if (bytes < data_size)
        return cm_error_set(CM_ERR_FORMAT, "%s: header says %llu bytes of data, file has %zu "
                            "(trailing bytes)", name, (unsigned long long)bytes, data_size);
    if (bytes > CM_IO_MAX_BYTES || count > SIZE_MAX / sizeof(double))
        return cm_error_set(CM_ERR_FORMAT, "%s: %llu bytes of data, over the limit of %llu", name,
                            (unsigned long long)bytes, (unsigned long long)CM_IO_MAX_BYTES);
    info->ndim = h->ndim;
    for (size_t i = 0; i < CM_NPY_MAX_DIMS; i++)
        info->shape[i] = i < h->ndim ? (size_t)h->shape[i] : 1;
    info->count = (size_t)count;
    return CM_OK;
}

cm_status cm_npy_parse_info(cm_npy_info *out, const void *bytes, size_t size, const char *name) {
    const unsigned char *image = bytes;
    size_t header_at = 0, header_length = 0, data_at = 0;
    npy_header h;
    cm_npy_info info = {0};
    memset(out, 0, sizeof *out);
    if (!name) name = "(npy buffer)";
    CM_TRY(parse_preamble(&header_at, &header_length, &data_at, image, size, name));
    CM_TRY(parse_header(&h, (const char *)image + header_at, header_length, name));
    CM_TRY(check_dtype(&info.dtype, &h, name));
    CM_TRY(check_shape(&info, &h, size - data_at, name));
    info.data_offset = data_at;
    *out = info;
    return CM_OK;
}

double cm_npy_item(const cm_npy_info *info, const void *bytes, size_t index) {
    const unsigned char *item = (const unsigned char *)bytes + info->data_offset;
    if (info->dtype == CM_NPY_UINT8) return item[index];
    if (info->dtype == CM_NPY_FLOAT64) {
        uint64_t bits = load_le(item + 8 * index, 8);
        double value;
        memcpy(&value, &bits, sizeof value);
        return value;
    }
    uint32_t bits = (uint32_t)load_le(item + 4 * index, 4);
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

cm_status cm_npy_parse(double **out, size_t *out_rows, size_t *out_cols, const void *bytes,
                       size_t size, const char *name) {
    cm_npy_info info;
    *out = NULL;
    *out_rows = *out_cols = 0;
    if (!name) name = "(npy buffer)";
    CM_TRY(cm_npy_parse_info(&info, bytes, size, name));
    if (info.dtype == CM_NPY_UINT8)
        return cm_error_set(CM_ERR_UNSUPPORTED, "%s: dtype '|u1' is read as images only (a "
                            "matrix must be float32 '<f4' or float64 '<f8')", name);
    size_t rows = info.shape[0], cols = info.count / rows;
    double *data = cm_malloc(rows * cols, sizeof(double));
    if (!data) return cm_error_set(CM_ERR_NOMEM, "%s: cannot allocate %zu x %zu", name, rows, cols);
    for (size_t i = 0; i < rows * cols; i++) {
        data[i] = cm_npy_item(&info, bytes, i);
        if (!isfinite(data[i])) {
            cm_free(data);
            return cm_error_set(CM_ERR_NONFINITE, "%s: non-finite value at row %zu, column %zu "
                                "(0-based)", name, i / cols, i % cols);
        }
    }
    *out = data;
    *out_rows = rows;
    *out_cols = cols;
    return CM_OK;
}

cm_status cm_npy_read(double **out, size_t *out_rows, size_t *out_cols, const char *path) {
    void *bytes;
    size_t size;
    *out = NULL;
    *out_rows = *out_cols = 0;
    /* Headers are tiny in practice; 1 MiB of slack keeps the whole file under the limit. */
    CM_TRY(cm_file_read_all(&bytes, &size, path, CM_IO_MAX_BYTES + ((uint64_t)1 << 20)));
    cm_status status = cm_npy_parse(out, out_rows, out_cols, bytes, size, path);
    cm_free(bytes);
    return status;
}

/* Version 1.0 header for '<f4' of the given shape ("(3,)", "(5, 2)", "(4, 16, 16)"), padded
 * with spaces and '\n' to a multiple of 64. */
static size_t format_header(char *dst, size_t capacity, const size_t *shape, size_t ndim) {
    char dict[256], dims[128];
    size_t used = 0;
    for (size_t i = 0; i < ndim; i++)
        used += (size_t)snprintf(dims + used, sizeof dims - used, "%s%zu", i ? ", " : "", shape[i]);
    if (ndim == 1) snprintf(dims + used, sizeof dims - used, ",");
    int length = snprintf(dict, sizeof dict,
                          "{'descr': '<f4', 'fortran_order': False, 'shape': (%s), }", dims);
    size_t unpadded = NPY_MAGIC_LENGTH + 4 + (size_t)length + 1;
    size_t total = (unpadded + 63) / 64 * 64;
    if (total > capacity) return 0;
    size_t header_length = total - NPY_MAGIC_LENGTH - 4;
    memcpy(dst, NPY_MAGIC "\x01\x00", NPY_MAGIC_LENGTH + 2);
    dst[8] = (char)(header_length & 0xff);
    dst[9] = (char)(header_length >> 8);
    memcpy(dst + 10, dict, (size_t)length);
    memset(dst + 10 + length, ' ', header_length - (size_t)length - 1);
    dst[total - 1] = '\n';
    return total;
}

cm_status cm_npy_write_f32_shape(const char *path, const double *data, const size_t *shape,
                                 size_t ndim) {
    if (ndim == 0 || ndim > CM_NPY_MAX_DIMS)
        return cm_error_set(CM_ERR_INVALID, "%s: %zu-D array (only 1-D to %d-D)", path, ndim,
                            CM_NPY_MAX_DIMS);
    size_t count = 1;
    for (size_t i = 0; i < ndim; i++) {
        if (shape[i] == 0)
            return cm_error_set(CM_ERR_INVALID, "%s: empty: dimension %zu of the array is 0", path,
                                i);
        if (count > SIZE_MAX / shape[i] || count * shape[i] > (SIZE_MAX - 256) / 4)
            return cm_error_set(CM_ERR_INVALID, "%s: array is too large", path);
        count *= shape[i];
    }
    size_t cols = count / shape[0];
    char header[256];
    size_t header_size = format_header(header, sizeof header, shape, ndim);
    unsigned char *image = cm_malloc(header_size + 4 * count, 1);
    if (!image) return cm_error_set(CM_ERR_NOMEM, "%s: cannot allocate %zu floats", path, count);
    memcpy(image, header, header_size);
    for (size_t i = 0; i < count; i++) {
        if (!(fabs(data[i]) < NPY_F32_ROUNDS_FINITE)) { /* NaN, inf, or rounds to inf */
            cm_free(image);
            return cm_error_set(CM_ERR_NONFINITE, "%s: value %g at row %zu, column %zu (0-based) "
                                "is not a finite float32", path, data[i], i / cols, i % cols);
        }
        float value = (float)data[i];
        uint32_t bits;
        memcpy(&bits, &value, sizeof bits);
        unsigned char *bytes = image + header_size + 4 * i;
        for (int b = 0; b < 4; b++) bytes[b] = (unsigned char)(bits >> 8 * b);
    }
    cm_status status = cm_file_write_atomic(path, image, header_size + 4 * count);
    cm_free(image);
    return status;
}

cm_status cm_npy_write_f32(const char *path, const double *data, size_t rows, size_t cols) {
    if (rows == 0 || cols == 0)
        return cm_error_set(CM_ERR_INVALID, "%s: empty: %zu x %zu array", path, rows, cols);
    const size_t shape[2] = {rows, cols};
    return cm_npy_write_f32_shape(path, data, shape, 2);
}
