/* io.h: readers and writers of the field's file formats: NPY, CSV and safetensors.
 *
 * Matrices are row-major double arrays of rows x cols (a 1-D NPY array is rows x 1). Every
 * reader validates before it trusts: magic, header length, dtype, shape, C order, the byte
 * count against the file size, an upper bound on sizes before allocating (CM_IO_MAX_BYTES), and
 * finiteness of every value; a failure returns a status with a one-line detail naming the file
 * and the problem (cm_error_detail) and allocates nothing the caller must free. Writers write a
 * temporary file in the same directory and rename it, so a crash never leaves a half-written
 * file and an existing file is only replaced by a complete one.
 * The parsers also take memory buffers (the *_parse functions) so fuzz targets can drive them.
 */
#ifndef CM_IO_H
#define CM_IO_H

#include <stddef.h>
#include <stdint.h>

#include "cm/status.h"

/* Largest payload a reader accepts (refused before allocating): 4 GiB. */
#define CM_IO_MAX_BYTES ((uint64_t)4 << 30)

/* ---- NPY (NumPy format 1.0/2.0/3.0; little-endian, C order, 1 to 4 dimensions) */

#define CM_NPY_MAX_DIMS 4

/* Parse an NPY image in memory. `name` is used in error details only. On success *out is a
 * cm_malloc'ed rows x cols array owned by the caller (free with cm_free). Float32 or float64
 * only. A 1-D array is rows x 1; a 3-D or 4-D array (a batch of images [N, H, W] or
 * [N, C, H, W]) is read as N rows of the product of its other dimensions, unscaled. */
cm_status cm_npy_parse(double **out, size_t *out_rows, size_t *out_cols, const void *bytes,
                       size_t size, const char *name);
cm_status cm_npy_read(double **out, size_t *out_rows, size_t *out_cols, const char *path);
/* Write rows x cols as float32 ('<f4'), 2-D, C order. */
cm_status cm_npy_write_f32(const char *path, const double *data, size_t rows, size_t cols);
/* Write an array of ndim (1..CM_NPY_MAX_DIMS) dimensions `shape` as float32, C order. */
cm_status cm_npy_write_f32_shape(const char *path, const double *data, const size_t *shape,
                                 size_t ndim);

typedef enum { CM_NPY_FLOAT32, CM_NPY_FLOAT64, CM_NPY_UINT8 } cm_npy_dtype;

/* What an NPY header says, checked against the bytes that follow it. */
typedef struct {
    cm_npy_dtype dtype;             /* '<f4', '<f8', or '|u1' (also written '<u1', '>u1') */
    size_t ndim;                    /* 1..CM_NPY_MAX_DIMS */
    size_t shape[CM_NPY_MAX_DIMS];  /* every dimension > 0; unused entries are 1 */
    size_t count;                   /* product of shape */
    size_t data_offset;             /* the items start at bytes + data_offset */
} cm_npy_info;

/* Validate an NPY image (preamble, header, dtype, C order, shape, the byte count exactly, at
 * most CM_IO_MAX_BYTES) without converting its items; they stay in `bytes`. */
cm_status cm_npy_parse_info(cm_npy_info *out, const void *bytes, size_t size, const char *name);
/* Item `index` (< info->count) of a validated image as a double (uint8 as 0..255; not checked
 * for finiteness). */
double cm_npy_item(const cm_npy_info *info, const void *bytes, size_t index);

/* ---- CSV (comma-separated numbers; optional header line of non-numeric names; blank lines
 * and trailing newline allowed; every row must have the same number of columns) */

cm_status cm_csv_parse(double **out, size_t *out_rows, size_t *out_cols, const char *text,
                       size_t size, const char *name);
cm_status cm_csv_read(double **out, size_t *out_rows, size_t *out_cols, const char *path);
/* The same, and when out_names is not NULL: *out_names = the cols names of the header line
 * (one pair of surrounding double quotes removed; "" for an empty field), or NULL when the file
 * has no header. The names live in one cm_malloc'ed block: cm_free(*out_names) releases all. */
cm_status cm_csv_parse_named(double **out, size_t *out_rows, size_t *out_cols, char ***out_names,
                             const char *text, size_t size, const char *name);
cm_status cm_csv_read_named(double **out, size_t *out_rows, size_t *out_cols, char ***out_names,
                            const char *path);
/* Write with "%.9g"; `header` (e.g. "x0,x1") is written first when not NULL. */
cm_status cm_csv_write(const char *path, const double *data, size_t rows, size_t cols,
                       const char *header);

/* ---- Dispatch on the file extension (.npy or .csv) */
cm_status cm_matrix_read(double **out, size_t *out_rows, size_t *out_cols, const char *path);
/* With the CSV header's names (see cm_csv_read_named; always NULL for NPY). */
cm_status cm_matrix_read_named(double **out, size_t *out_rows, size_t *out_cols,
                               char ***out_names, const char *path);
cm_status cm_matrix_write(const char *path, const double *data, size_t rows, size_t cols);

/* ---- safetensors: u64 little-endian header length N, N bytes of JSON header
 * {"name": {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}, ...,
 *  "__metadata__": {"key": "string value", ...}}, then the raw little-endian tensor bytes.
 * Readable by Python's safetensors. This implementation writes F32 tensors and reads F32 and
 * F64 (converted to float). */

#define CM_TENSOR_MAX_DIMS 4

typedef struct {
    const char *name;                 /* borrowed */
    size_t ndim;                      /* 0..CM_TENSOR_MAX_DIMS */
    size_t shape[CM_TENSOR_MAX_DIMS];
    const float *data;                /* borrowed; product(shape) floats */
} cm_tensor_view;

typedef struct cm_safetensors cm_safetensors; /* a loaded file; opaque */

/* Write `count` tensors and `metadata_count` string pairs (keys must not start with "__"). */
cm_status cm_safetensors_write(const char *path, const cm_tensor_view *tensors, size_t count,
                               const char *const *metadata_keys,
                               const char *const *metadata_values, size_t metadata_count);
cm_status cm_safetensors_parse(cm_safetensors **out, const void *bytes, size_t size,
                               const char *name);
cm_status cm_safetensors_read(cm_safetensors **out, const char *path);
void cm_safetensors_free(cm_safetensors *file);
/* Find tensor `name`: *out_view points into `file` (valid until cm_safetensors_free).
 * CM_ERR_FORMAT with a detail when absent. */
cm_status cm_safetensors_get(cm_tensor_view *out_view, const cm_safetensors *file,
                             const char *name);
/* Metadata value for `key`, or NULL when absent. Owned by `file`. */
const char *cm_safetensors_metadata(const cm_safetensors *file, const char *key);

/* Read a whole file into memory (cm_malloc'ed, caller frees), refusing files larger than
 * `max_bytes`. Shared by the readers above. */
cm_status cm_file_read_all(void **out, size_t *out_size, const char *path, uint64_t max_bytes);
/* Write `size` bytes to `path` through a temporary file + fsync + rename. */
cm_status cm_file_write_atomic(const char *path, const void *bytes, size_t size);

#endif
