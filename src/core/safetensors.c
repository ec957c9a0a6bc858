/* safetensors.c: the checkpoint format of Hugging Face's safetensors (see io.h for the layout).
 *
 * The writer emits F32 tensors contiguously in the order given, with the JSON header (built by
 * cJSON) padded with spaces to a multiple of 8 bytes as Python's safetensors does, so Python
 * loads the files. The reader validates everything before trusting it: the header length, the
 * JSON, each entry's dtype (F32, F64), shape and data_offsets, overflow of every product, and
 * that the tensors' bytes fit in the data section; then it copies (F32) or converts (F64) all
 * tensors into one aligned float buffer owned by the cm_safetensors object. cJSON allocates
 * through its own malloc (its hooks are process-wide, and other modules use cJSON too); every
 * buffer this file keeps goes through cm_malloc. Not supported: other dtypes, big-endian hosts.
 */
#include "cm/io.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/alloc.h"

#define ST_HEADER_MAX ((uint64_t)100000000) /* MAX_HEADER_SIZE of the safetensors crate */
#define ST_INTEGER_MAX 9007199254740992.0   /* 2^53: larger JSON numbers are not exact */
#define ST_METADATA_KEY "__metadata__"
/* FLT_MAX plus half an ulp: doubles below it in magnitude round to a finite float32 */
#define ST_F32_ROUNDS_FINITE 0x1.ffffffp127

typedef struct {
    cm_tensor_view view;
    uint64_t begin;   /* byte offset in the data section */
    size_t itemsize;  /* 4 (F32) or 8 (F64) */
    size_t elements;  /* product of the shape */
} tensor_entry;

struct cm_safetensors {
    char *source;            /* file name for error details */
    size_t count;
    tensor_entry *tensors;   /* names cm_malloc'ed, data points into `data` */
    size_t metadata_count;
    char **keys, **values;
    float *data;             /* every tensor's elements, in order */
};

/* ---- helpers */

static char *duplicate(const char *text) {
    size_t length = strlen(text) + 1;
    char *copy = cm_malloc(length, 1);
    if (copy) memcpy(copy, text, length);
    return copy;
}

static uint64_t load_le(const unsigned char *bytes, int count) {
    uint64_t value = 0;
    for (int i = count - 1; i >= 0; i--) value = value << 8 | bytes[i];
    return value;
}

/* A JSON number that is an exact non-negative integer; 0 when it is not one. */
static int json_integer(uint64_t *out, const cJSON *item) {
    if (!cJSON_IsNumber(item)) return 0;
    double value = item->valuedouble;
    if (!(value >= 0 && value <= ST_INTEGER_MAX) || floor(value) != value) return 0;
    *out = (uint64_t)value;
    return 1;
}

void cm_safetensors_free(cm_safetensors *file) {
    if (!file) return;
    for (size_t i = 0; file->tensors && i < file->count; i++)
        cm_free((char *)file->tensors[i].view.name);
    for (size_t i = 0; file->keys && i < file->metadata_count; i++) cm_free(file->keys[i]);
    for (size_t i = 0; file->values && i < file->metadata_count; i++) cm_free(file->values[i]);
    cm_free(file->tensors);
    cm_free(file->keys);
    cm_free(file->values);
    cm_free(file->data);
    cm_free(file->source);
    cm_free(file);
}

/* ---- reader */

static cm_status read_metadata(cm_safetensors *file, const cJSON *object, const char *name) {
    if (!cJSON_IsObject(object))
        return cm_error_set(CM_ERR_FORMAT, "%s: __metadata__ is not an object", name);
    size_t count = (size_t)cJSON_GetArraySize(object);
    file->keys = cm_calloc(count, sizeof(char *));
    file->values = cm_calloc(count, sizeof(char *));
    if (!file->keys || !file->values)
        return cm_error_set(CM_ERR_NOMEM, "%s: cannot allocate metadata", name);
    const cJSON *item;
    cJSON_ArrayForEach(item, object) {
        if (!cJSON_IsString(item))
            return cm_error_set(CM_ERR_FORMAT, "%s: __metadata__ value of '%s' is not a string",
                                name, item->string);
        size_t i = file->metadata_count++;
        file->keys[i] = duplicate(item->string);
        file->values[i] = duplicate(item->valuestring);
        if (!file->keys[i] || !file->values[i])
            return cm_error_set(CM_ERR_NOMEM, "%s: cannot allocate metadata", name);
    }
    return CM_OK;
}

/* The "shape" array: at most CM_TENSOR_MAX_DIMS non-negative integers, product checked. */
static cm_status read_shape(tensor_entry *t, const cJSON *shape, const char *tensor,
                            const char *name) {
    if (!cJSON_IsArray(shape))
        return cm_error_set(CM_ERR_FORMAT, "%s: tensor '%s': shape is not an array", name, tensor);
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > CM_TENSOR_MAX_DIMS)
        return cm_error_set(CM_ERR_UNSUPPORTED, "%s: tensor '%s' has %d dimensions (at most %d)",
                            name, tensor, ndim, CM_TENSOR_MAX_DIMS);
    uint64_t elements = 1;
    const cJSON *item;
    t->view.ndim = 0;
    cJSON_ArrayForEach(item, shape) {
        uint64_t dimension;
        if (!json_integer(&dimension, item))
            return cm_error_set(CM_ERR_FORMAT, "%s: tensor '%s': shape holds something other "
                                "than a non-negative integer below 2^53", name, tensor);
        if (dimension != 0 && elements > UINT64_MAX / dimension)
            return cm_error_set(CM_ERR_FORMAT, "%s: tensor '%s': shape overflows", name, tensor);
        elements *= dimension;
        t->view.shape[t->view.ndim++] = (size_t)dimension;
    }
    if (elements > UINT64_MAX / t->itemsize || elements > SIZE_MAX)
        return cm_error_set(CM_ERR_FORMAT, "%s: tensor '%s': shape overflows", name, tensor);
    t->elements = (size_t)elements;
    return CM_OK;
}

/* One tensor entry {"dtype", "shape", "data_offsets"}, checked against the data section. */
static cm_status read_entry(tensor_entry *t, const cJSON *entry, uint64_t data_size,
                            const char *name) {
    const char *tensor = entry->string;
    if (!cJSON_IsObject(entry))
        return cm_error_set(CM_ERR_FORMAT, "%s: tensor '%s' is not an object", name, tensor);
    const cJSON *dtype = cJSON_GetObjectItemCaseSensitive(entry, "dtype");
    const cJSON *offsets = cJSON_GetObjectItemCaseSensitive(entry, "data_offsets");
    if (!cJSON_IsString(dtype))
        return cm_error_set(CM_ERR_FORMAT, "%s: tensor '%s' has no dtype string", name, tensor);
    if (strcmp(dtype->valuestring, "F32") != 0 && strcmp(dtype->valuestring, "F64") != 0)
        return cm_error_set(CM_ERR_UNSUPPORTED, "%s: tensor '%s' has dtype %.16s (only F32, F64)",
                            name, tensor, dtype->valuestring);
    t->itemsize = dtype->valuestring[1] == '3' ? 4 : 8;
    CM_TRY(read_shape(t, cJSON_GetObjectItemCaseSensitive(entry, "shape"), tensor, name));
    uint64_t begin, end;
    if (!cJSON_IsArray(offsets) || cJSON_GetArraySize(offsets) != 2 ||
        !json_integer(&begin, cJSON_GetArrayItem(offsets, 0)) ||
        !json_integer(&end, cJSON_GetArrayItem(offsets, 1)))
        return cm_error_set(CM_ERR_FORMAT, "%s: tensor '%s': data_offsets is not [begin, end]",
                            name, tensor);
    if (begin > end || end > data_size)
        return cm_error_set(CM_ERR_FORMAT, "%s: tensor '%s': data_offsets [%llu, %llu] outside "
                            "the %llu-byte data section", name, tensor, (unsigned long long)begin,
                            (unsigned long long)end, (unsigned long long)data_size);
    if (end - begin != (uint64_t)t->elements * t->itemsize)
        return cm_error_set(CM_ERR_FORMAT, "%s: tensor '%s': %llu bytes for %zu elements of %zu "
                            "bytes", name, tensor, (unsigned long long)(end - begin), t->elements,
                            t->itemsize);
    t->begin = begin;
    t->view.name = duplicate(tensor);
    if (!t->view.name) return cm_error_set(CM_ERR_NOMEM, "%s: cannot allocate a name", name);
    return CM_OK;
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Refuse two tensors (or two __metadata__ entries) with the same name: sort and compare. */
static cm_status check_unique(const cJSON *root, const char *name) {
    size_t count = (size_t)cJSON_GetArraySize(root), i = 0;
    const char **names = cm_malloc(count, sizeof(char *));
    if (!names) return cm_error_set(CM_ERR_NOMEM, "%s: cannot allocate the name list", name);
    const cJSON *item;
    cJSON_ArrayForEach(item, root) names[i++] = item->string;
    qsort(names, count, sizeof(char *), compare_names);
    cm_status status = CM_OK;
    for (i = 1; i < count && status == CM_OK; i++)
        if (strcmp(names[i - 1], names[i]) == 0)
            status = cm_error_set(CM_ERR_FORMAT, "%s: header repeats the name '%s'", name,
                                  names[i]);
    cm_free(names);
    return status;
}

/* Every entry of the header object, with tensor bytes adding up to at most the data section
 * (so overlapping entries cannot make the float buffer larger than the file). */
static cm_status read_entries(cm_safetensors *file, const cJSON *root, uint64_t data_size,
                              const char *name) {
    CM_TRY(check_unique(root, name));
    const cJSON *metadata = cJSON_GetObjectItemCaseSensitive(root, ST_METADATA_KEY);
    size_t count = (size_t)cJSON_GetArraySize(root) - (metadata != NULL);
    file->tensors = cm_calloc(count, sizeof(tensor_entry));
    if (!file->tensors) return cm_error_set(CM_ERR_NOMEM, "%s: cannot allocate tensors", name);
    if (metadata) CM_TRY(read_metadata(file, metadata, name));
    uint64_t total_bytes = 0;
    const cJSON *entry;
    cJSON_ArrayForEach(entry, root) {
        if (entry == metadata) continue;
        tensor_entry *t = &file->tensors[file->count++];
        CM_TRY(read_entry(t, entry, data_size, name));
        total_bytes += (uint64_t)t->elements * t->itemsize; /* each <= data_size: no overflow */
        if (total_bytes > data_size)
            return cm_error_set(CM_ERR_FORMAT, "%s: tensors overlap (their bytes add up to more "
                                "than the %llu-byte data section)", name,
                                (unsigned long long)data_size);
    }
    return CM_OK;
}

/* Copy (F32) or convert (F64) every tensor into one float buffer; views point into it. */
static cm_status load_tensors(cm_safetensors *file, const unsigned char *data, const char *name) {
    size_t total = 0;
    for (size_t i = 0; i < file->count; i++) total += file->tensors[i].elements;
    file->data = cm_malloc(total, sizeof(float));
    if (!file->data)
        return cm_error_set(CM_ERR_NOMEM, "%s: cannot allocate %zu floats", name, total);
    float *next = file->data;
    for (size_t i = 0; i < file->count; i++) {
        tensor_entry *t = &file->tensors[i];
        const unsigned char *bytes = data + t->begin;
        for (size_t k = 0; k < t->elements; k++) {
            uint64_t bits = load_le(bytes + k * t->itemsize, (int)t->itemsize);
            if (t->itemsize == 4) {
                uint32_t bits32 = (uint32_t)bits;
                memcpy(&next[k], &bits32, sizeof(float));
                continue;
            }
            double value;
            memcpy(&value, &bits, sizeof value);
            if (fabs(value) >= ST_F32_ROUNDS_FINITE && isfinite(value))
                return cm_error_set(CM_ERR_UNSUPPORTED, "%s: tensor '%s' element %zu (%g) is "
                                    "outside the float32 range", name, t->view.name, k, value);
            next[k] = (float)value;
        }
        t->view.data = next;
        next += t->elements;
    }
    return CM_OK;
}

/* The header text (not NUL-terminated in the file) as a cJSON object; NULL with a status. */
static cm_status parse_header(cJSON **out, const unsigned char *text, size_t length,
                              const char *name) {
    char *copy = cm_malloc(length + 1, 1);
    if (!copy) return cm_error_set(CM_ERR_NOMEM, "%s: cannot allocate the header", name);
    memcpy(copy, text, length);
    copy[length] = '\0';
    const char *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(copy, length, &end, 0);
    cm_status status = CM_OK;
    size_t stop = end ? (size_t)(end - copy) : 0;
    while (root && stop < length && (copy[stop] == ' ' || copy[stop] == '\n' ||
                                     copy[stop] == '\t' || copy[stop] == '\r'))
        stop++;
    if (!root)
        status = cm_error_set(CM_ERR_FORMAT, "%s: header is not valid JSON (near byte %zu)", name,
                              8 + stop);
    else if (stop != length)
        status = cm_error_set(CM_ERR_FORMAT, "%s: junk after the JSON header", name);
    else if (!cJSON_IsObject(root))
        status = cm_error_set(CM_ERR_FORMAT, "%s: header is not a JSON object", name);
    cm_free(copy);
    if (status != CM_OK) cJSON_Delete(root);
    *out = status == CM_OK ? root : NULL;
    return status;
}

cm_status cm_safetensors_parse(cm_safetensors **out, const void *bytes, size_t size,
                               const char *name) {
    const unsigned char *image = bytes;
    *out = NULL;
    if (!name) name = "(safetensors buffer)";
    if (size < 8) return cm_error_set(CM_ERR_FORMAT, "%s: truncated: %zu bytes", name, size);
    uint64_t header_length = load_le(image, 8);
    if (header_length > ST_HEADER_MAX || header_length > size - 8)
        return cm_error_set(CM_ERR_FORMAT, "%s: header length %llu exceeds the file (%zu bytes) "
                            "or 100 MB", name, (unsigned long long)header_length, size);
    cJSON *root = NULL;
    CM_TRY(parse_header(&root, image + 8, (size_t)header_length, name));
    cm_safetensors *file = cm_calloc(1, sizeof *file);
    cm_status status = file ? CM_OK : cm_error_set(CM_ERR_NOMEM, "%s: out of memory", name);
    if (status == CM_OK && !(file->source = duplicate(name)))
        status = cm_error_set(CM_ERR_NOMEM, "%s: out of memory", name);
    size_t data_at = 8 + (size_t)header_length;
    if (status == CM_OK) status = read_entries(file, root, size - data_at, name);
    if (status == CM_OK) status = load_tensors(file, image + data_at, name);
    cJSON_Delete(root);
    if (status != CM_OK) {
        cm_safetensors_free(file);
        return status;
    }
    *out = file;
    return CM_OK;
}

cm_status cm_safetensors_read(cm_safetensors **out, const char *path) {
    void *bytes;
    size_t size;
    *out = NULL;
    CM_TRY(cm_file_read_all(&bytes, &size, path, CM_IO_MAX_BYTES + ST_HEADER_MAX + 8));
    cm_status status = cm_safetensors_parse(out, bytes, size, path);
    cm_free(bytes);
    return status;
}

cm_status cm_safetensors_get(cm_tensor_view *out_view, const cm_safetensors *file,
                             const char *name) {
    for (size_t i = 0; i < file->count; i++) {
        if (strcmp(file->tensors[i].view.name, name) == 0) {
            *out_view = file->tensors[i].view;
            return CM_OK;
        }
    }
    return cm_error_set(CM_ERR_FORMAT, "%s: no tensor named '%s'", file->source, name);
}

const char *cm_safetensors_metadata(const cm_safetensors *file, const char *key) {
    for (size_t i = 0; i < file->metadata_count; i++)
        if (strcmp(file->keys[i], key) == 0) return file->values[i];
    return NULL;
}

/* ---- writer */

static size_t element_count(const cm_tensor_view *t) {
    size_t elements = 1;
    for (size_t d = 0; d < t->ndim; d++) elements *= t->shape[d]; /* checked by check_inputs */
    return elements;
}

/* Names, shapes and metadata keys the format can hold; *out_bytes is the data section size. */
static cm_status check_inputs(uint64_t *out_bytes, const char *path, const cm_tensor_view *tensors,
                              size_t count, const char *const *keys, const char *const *values,
                              size_t metadata_count) {
    uint64_t bytes = 0;
    for (size_t i = 0; i < count; i++) {
        const cm_tensor_view *t = &tensors[i];
        if (!t->name || !t->name[0] || strcmp(t->name, ST_METADATA_KEY) == 0)
            return cm_error_set(CM_ERR_INVALID, "%s: tensor %zu has no usable name", path, i);
        for (size_t j = 0; j < i; j++)
            if (strcmp(tensors[j].name, t->name) == 0)
                return cm_error_set(CM_ERR_INVALID, "%s: tensor name '%s' repeated", path, t->name);
        if (t->ndim > CM_TENSOR_MAX_DIMS)
            return cm_error_set(CM_ERR_INVALID, "%s: tensor '%s' has %zu dimensions", path,
                                t->name, t->ndim);
        uint64_t elements = 1, limit = CM_IO_MAX_BYTES / 4; /* what the reader accepts */
        for (size_t d = 0; d < t->ndim; d++) {
            if (t->shape[d] != 0 && elements > limit / t->shape[d])
                return cm_error_set(CM_ERR_INVALID, "%s: tensor '%s' is too large", path, t->name);
            elements *= t->shape[d];
        }
        if (elements > 0 && !t->data)
            return cm_error_set(CM_ERR_INVALID, "%s: tensor '%s' has no data", path, t->name);
        bytes += 4 * elements;
        if (bytes > CM_IO_MAX_BYTES)
            return cm_error_set(CM_ERR_INVALID, "%s: tensors exceed %llu bytes in all", path,
                                (unsigned long long)CM_IO_MAX_BYTES);
    }
    for (size_t i = 0; i < metadata_count; i++)
        if (!keys[i] || !values[i] || strncmp(keys[i], "__", 2) == 0)
            return cm_error_set(CM_ERR_INVALID, "%s: metadata key %zu is missing or starts with "
                                "\"__\"", path, i);
    *out_bytes = bytes;
    return CM_OK;
}

/* {"dtype": "F32", "shape": [..], "data_offsets": [begin, end]}; integers written as raw text
 * so that large values never go through double formatting. */
static cJSON *tensor_json(const cm_tensor_view *t, uint64_t begin, uint64_t end) {
    char shape[CM_TENSOR_MAX_DIMS * 22 + 4] = "[", offsets[48];
    for (size_t d = 0; d < t->ndim; d++)
        snprintf(shape + strlen(shape), sizeof shape - strlen(shape), "%s%zu", d ? "," : "",
                 t->shape[d]);
    strcat(shape, "]");
    snprintf(offsets, sizeof offsets, "[%llu,%llu]", (unsigned long long)begin,
             (unsigned long long)end);
    cJSON *entry = cJSON_CreateObject();
    if (entry && (!cJSON_AddStringToObject(entry, "dtype", "F32") ||
                  !cJSON_AddRawToObject(entry, "shape", shape) ||
                  !cJSON_AddRawToObject(entry, "data_offsets", offsets))) {
        cJSON_Delete(entry);
        return NULL;
    }
    return entry;
}

/* The header JSON text (cJSON-allocated; free with cJSON_free), or NULL when out of memory. */
static char *header_json(const cm_tensor_view *tensors, size_t count, const char *const *keys,
                         const char *const *values, size_t metadata_count) {
    cJSON *root = cJSON_CreateObject();
    int ok = root != NULL;
    if (ok && metadata_count > 0) {
        cJSON *metadata = cJSON_AddObjectToObject(root, ST_METADATA_KEY);
        ok = metadata != NULL;
        for (size_t i = 0; ok && i < metadata_count; i++)
            ok = cJSON_AddStringToObject(metadata, keys[i], values[i]) != NULL;
    }
    uint64_t offset = 0;
    for (size_t i = 0; ok && i < count; i++) {
        uint64_t bytes = 4 * (uint64_t)element_count(&tensors[i]);
        cJSON *entry = tensor_json(&tensors[i], offset, offset + bytes);
        ok = entry && cJSON_AddItemToObject(root, tensors[i].name, entry);
        if (entry && !ok) cJSON_Delete(entry);
        offset += bytes;
    }
    char *text = ok ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    return text;
}

cm_status cm_safetensors_write(const char *path, const cm_tensor_view *tensors, size_t count,
                               const char *const *metadata_keys,
                               const char *const *metadata_values, size_t metadata_count) {
    uint64_t data_bytes = 0;
    CM_TRY(check_inputs(&data_bytes, path, tensors, count, metadata_keys, metadata_values,
                        metadata_count));
    char *json = header_json(tensors, count, metadata_keys, metadata_values, metadata_count);
    if (!json) return cm_error_set(CM_ERR_NOMEM, "%s: cannot build the JSON header", path);
    size_t length = strlen(json), padded = (length + 7) / 8 * 8;
    unsigned char *image = cm_malloc(8 + padded + (size_t)data_bytes, 1);
    if (!image) {
        cJSON_free(json);
        return cm_error_set(CM_ERR_NOMEM, "%s: cannot allocate %llu bytes", path,
                            (unsigned long long)(8 + padded + data_bytes));
    }
    for (int b = 0; b < 8; b++) image[b] = (unsigned char)((uint64_t)padded >> 8 * b);
    memcpy(image + 8, json, length);
    memset(image + 8 + length, ' ', padded - length);
    cJSON_free(json);
    unsigned char *next = image + 8 + padded;
    for (size_t i = 0; i < count; i++) {
        for (size_t k = 0, n = element_count(&tensors[i]); k < n; k++, next += 4) {
            uint32_t bits;
            memcpy(&bits, &tensors[i].data[k], sizeof bits);
            for (int b = 0; b < 4; b++) next[b] = (unsigned char)(bits >> 8 * b);
        }
    }
    cm_status status = cm_file_write_atomic(path, image, 8 + padded + (size_t)data_bytes);
    cm_free(image);
    return status;
}
