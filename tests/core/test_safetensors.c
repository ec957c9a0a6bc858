/* test_safetensors.c: the safetensors reader and writer.
 *
 * Known answers come from hand-written images (header JSON and IEEE bit patterns typed in);
 * damaged or hostile images (every truncation, lying lengths, bad dtypes, shapes and offsets,
 * overlapping tensors) must fail with the right status, never crash and never leak, including
 * when any allocation fails. The writer's layout follows Python's safetensors (header padded
 * with spaces to a multiple of 8, contiguous offsets).
 */
#include "test.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cm/alloc.h"
#include "cm/io.h"

/* 8-byte length 56, 54 bytes of JSON and 2 spaces, then 3.0f. */
static const unsigned char tiny[] =
    "\x38\x00\x00\x00\x00\x00\x00\x00"
    "{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}  "
    "\x00\x00\x40\x40";

/* A safetensors image from header JSON (padded to 8 with spaces) and data; returns the size.
 * `out` must hold 8 + strlen(json) + 8 + data_size bytes. */
static size_t build_st(unsigned char *out, const char *json, const void *data, size_t data_size) {
    size_t length = strlen(json), padded = (length + 7) / 8 * 8;
    for (int b = 0; b < 8; b++) out[b] = (unsigned char)((uint64_t)padded >> 8 * b);
    memcpy(out + 8, json, length);
    memset(out + 8 + length, ' ', padded - length);
    if (data_size) memcpy(out + 8 + padded, data, data_size);
    return 8 + padded + data_size;
}

static void check_fails(const void *bytes, size_t size, cm_status expected, const char *detail_part,
                        const char *what) {
    long live = cm_alloc_live_count();
    cm_safetensors *file = (cm_safetensors *)&live;
    cm_status status = cm_safetensors_parse(&file, bytes, size, "bad.safetensors");
    CM_CHECK(status == expected, "%s: status %s, expected %s (%s)", what, cm_status_name(status),
             cm_status_name(expected), cm_error_detail());
    CM_CHECK(file == NULL || status == CM_OK, "%s: output not cleared", what);
    CM_CHECK(strstr(cm_error_detail(), "bad.safetensors") != NULL, "%s: detail lacks the name: %s",
             what, cm_error_detail());
    if (detail_part)
        CM_CHECK(strstr(cm_error_detail(), detail_part) != NULL, "%s: detail '%s' lacks '%s'",
                 what, cm_error_detail(), detail_part);
    if (status == CM_OK) cm_safetensors_free(file);
    CM_CHECK(cm_alloc_live_count() == live, "%s: leaked %ld", what, cm_alloc_live_count() - live);
}

static void test_known_tiny(void) {
    cm_safetensors *file = NULL;
    cm_tensor_view view;
    CM_CHECK(sizeof tiny - 1 == 68, "image is %zu bytes", sizeof tiny - 1);
    CM_CHECK_OK(cm_safetensors_parse(&file, tiny, sizeof tiny - 1, "tiny.safetensors"));
    if (!file) return;
    CM_CHECK_OK(cm_safetensors_get(&view, file, "a"));
    CM_CHECK(view.ndim == 1 && view.shape[0] == 1 && view.data && view.data[0] == 3.0f, "a");
    CM_CHECK(cm_safetensors_metadata(file, "anything") == NULL, "metadata without __metadata__");
    CM_CHECK(cm_safetensors_get(&view, file, "b") == CM_ERR_FORMAT, "absent tensor found");
    CM_CHECK(strstr(cm_error_detail(), "tiny.safetensors") && strstr(cm_error_detail(), "'b'"),
             "detail: %s", cm_error_detail());
    cm_safetensors_free(file);
}

/* F32 and F64 tensors, metadata, a scalar, an empty tensor, an unaligned F32 tensor. */
static void test_known_mixed(void) {
    static const unsigned char data[] = {
        0x00, 0x00, 0x80, 0x3f, 0x00, 0x00, 0x00, 0xc0,  /* w: 1.0f, -2.0f */
        0x00, 0x00, 0x00, 0x3f, 0x00, 0x00, 0xc8, 0x42,  /*    0.5f, 100.0f */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xd0, 0x3f,  /* b: 0.25 */
        0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0xc0,  /*    -3.0 */
        0xee, 0x00, 0x00, 0xc0, 0x3f};                   /* a spare byte, then u: 1.5f */
    const char *json =
        "{\"__metadata__\": {\"step\": \"42\", \"format\": \"cm-1\"},"
        " \"b\": {\"dtype\": \"F64\", \"shape\": [2], \"data_offsets\": [16, 32]},"
        " \"w\": {\"dtype\": \"F32\", \"shape\": [2, 2], \"data_offsets\": [0, 16]},"
        " \"u\": {\"shape\": [], \"data_offsets\": [33, 37], \"dtype\": \"F32\"},"
        " \"e\": {\"dtype\": \"F32\", \"shape\": [3, 0], \"data_offsets\": [32, 32]}}";
    unsigned char image[512];
    size_t size = build_st(image, json, data, sizeof data);
    cm_safetensors *file = NULL;
    cm_tensor_view view;
    CM_CHECK_OK(cm_safetensors_parse(&file, image, size, "mixed.safetensors"));
    if (!file) return;
    const float w[] = {1.0f, -2.0f, 0.5f, 100.0f};
    CM_CHECK_OK(cm_safetensors_get(&view, file, "w"));
    CM_CHECK(view.ndim == 2 && view.shape[0] == 2 && view.shape[1] == 2, "w shape");
    for (int i = 0; i < 4; i++) CM_CHECK(view.data[i] == w[i], "w[%d] = %g", i, view.data[i]);
    CM_CHECK((uintptr_t)view.data % sizeof(float) == 0, "w not aligned");
    CM_CHECK_OK(cm_safetensors_get(&view, file, "b"));
    CM_CHECK(view.ndim == 1 && view.shape[0] == 2 && view.data[0] == 0.25f && view.data[1] == -3.0f,
             "b (F64 converted)");
    CM_CHECK_OK(cm_safetensors_get(&view, file, "u"));
    CM_CHECK(view.ndim == 0 && view.data[0] == 1.5f, "u (scalar at an odd offset)");
    CM_CHECK((uintptr_t)view.data % sizeof(float) == 0, "u not aligned");
    CM_CHECK_OK(cm_safetensors_get(&view, file, "e"));
    CM_CHECK(view.ndim == 2 && view.shape[0] == 3 && view.shape[1] == 0, "e shape");
    const char *step = cm_safetensors_metadata(file, "step");
    CM_CHECK(step && strcmp(step, "42") == 0, "step = %s", step ? step : "(null)");
    const char *format = cm_safetensors_metadata(file, "format");
    CM_CHECK(format && strcmp(format, "cm-1") == 0, "format");
    cm_safetensors_free(file);
}

static void test_truncated_every_length(void) {
    for (size_t size = 0; size < sizeof tiny - 1; size++) {
        char what[64];
        snprintf(what, sizeof what, "truncated to %zu bytes", size);
        check_fails(tiny, size, CM_ERR_FORMAT, NULL, what);
    }
}

static void test_bad_header_length(void) {
    unsigned char image[sizeof tiny];
    memcpy(image, tiny, sizeof image);
    image[0] = 0x40; /* 64 > 60 bytes after the length */
    check_fails(image, sizeof image - 1, CM_ERR_FORMAT, "exceeds", "length past the end");
    image[0] = 0;
    image[4] = 1; /* 4 GiB */
    check_fails(image, sizeof image - 1, CM_ERR_FORMAT, "exceeds", "4 GiB header");
    memset(image, 0xff, 8);
    check_fails(image, sizeof image - 1, CM_ERR_FORMAT, "exceeds", "2^64 - 1 header");
    memcpy(image, tiny, sizeof image);
    image[0] = 0x30; /* 48: the JSON is cut */
    check_fails(image, sizeof image - 1, CM_ERR_FORMAT, NULL, "length inside the JSON");
}

static void test_rejected_headers(void) {
    static const struct {
        const char *json;
        cm_status status;
        const char *detail;
    } cases[] = {
        {"{\"a\": {\"dtype\": \"I32\", \"shape\": [1], \"data_offsets\": [0, 4]}}",
         CM_ERR_UNSUPPORTED, "I32"},
        {"{\"a\": {\"dtype\": \"BF16\", \"shape\": [2], \"data_offsets\": [0, 4]}}",
         CM_ERR_UNSUPPORTED, "BF16"},
        {"{\"a\": {\"shape\": [1], \"data_offsets\": [0, 4]}}", CM_ERR_FORMAT, "dtype"},
        {"{\"a\": {\"dtype\": 32, \"shape\": [1], \"data_offsets\": [0, 4]}}",
         CM_ERR_FORMAT, "dtype"},
        {"{\"a\": [1, 2]}", CM_ERR_FORMAT, "'a'"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [-1], \"data_offsets\": [0, 4]}}",
         CM_ERR_FORMAT, "shape"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [0.5], \"data_offsets\": [0, 4]}}",
         CM_ERR_FORMAT, "shape"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [\"1\"], \"data_offsets\": [0, 4]}}",
         CM_ERR_FORMAT, "shape"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": 1, \"data_offsets\": [0, 4]}}",
         CM_ERR_FORMAT, "shape"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1,1,1,1,1], \"data_offsets\": [0, 4]}}",
         CM_ERR_UNSUPPORTED, "5 dimensions"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [4294967296, 4294967296, 4294967296], "
         "\"data_offsets\": [0, 4]}}", CM_ERR_FORMAT, "overflow"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1e300], \"data_offsets\": [0, 4]}}",
         CM_ERR_FORMAT, "shape"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [2], \"data_offsets\": [0, 8]}}",
         CM_ERR_FORMAT, "outside"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [4, 0]}}",
         CM_ERR_FORMAT, "outside"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 2]}}",
         CM_ERR_FORMAT, "bytes for"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0]}}",
         CM_ERR_FORMAT, "data_offsets"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], "
         "\"data_offsets\": [0, 18446744073709551616]}}",
         CM_ERR_FORMAT, "data_offsets"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1]}}", CM_ERR_FORMAT, "data_offsets"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
         " \"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}",
          CM_ERR_FORMAT, "repeats"},
        {"{\"a\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]},"
         " \"b\": {\"dtype\": \"F32\", \"shape\": [1], \"data_offsets\": [0, 4]}}",
          CM_ERR_FORMAT, "overlap"},
        {"{\"__metadata__\": [\"x\"]}", CM_ERR_FORMAT, "__metadata__"},
        {"{\"__metadata__\": {\"step\": 42}}", CM_ERR_FORMAT, "step"},
        {"[1, 2]", CM_ERR_FORMAT, "object"},
        {"{\"a\": ", CM_ERR_FORMAT, "JSON"},
        {"{} {}", CM_ERR_FORMAT, "junk"},
        {"", CM_ERR_FORMAT, "JSON"},
    };
    const unsigned char data[] = {0, 0, 0x80, 0x3f};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        unsigned char image[512];
        size_t size = build_st(image, cases[i].json, data, sizeof data);
        check_fails(image, size, cases[i].status, cases[i].detail, cases[i].json);
    }
    /* an F64 value beyond float32 range cannot be converted */
    const unsigned char huge[] = {0, 0, 0, 0, 0, 0, 0xf0, 0x6f}; /* 2^768, about 1.6e231 */
    unsigned char image[256];
    size_t size = build_st(
        image, "{\"h\": {\"dtype\": \"F64\", \"shape\": [1], \"data_offsets\": [0, 8]}}", huge,
        sizeof huge);
    check_fails(image, size, CM_ERR_UNSUPPORTED, "float32 range", "F64 2^768");
}

/* Every allocation of the reader may fail: NOMEM, no leak, and success once enough succeed. */
static void test_parse_allocation_failures(void) {
    const char *json =
        "{\"__metadata__\": {\"k\": \"v\"}, \"w\": {\"dtype\": \"F32\", \"shape\": [1], "
        "\"data_offsets\": [0, 4]}}";
    const unsigned char data[] = {0, 0, 0x80, 0x3f};
    unsigned char image[256];
    size_t size = build_st(image, json, data, sizeof data);
    int succeeded = 0;
    for (long k = 0; k < 64 && !succeeded; k++) {
        long live = cm_alloc_live_count();
        cm_safetensors *file = NULL;
        cm_alloc_fail_after(k);
        cm_status status = cm_safetensors_parse(&file, image, size, "oom.safetensors");
        cm_alloc_fail_after(-1);
        CM_CHECK(status == CM_OK || status == CM_ERR_NOMEM, "k=%ld: %s", k, cm_status_name(status));
        CM_CHECK((status == CM_OK) == (file != NULL), "k=%ld: output and status disagree", k);
        succeeded = status == CM_OK;
        cm_safetensors_free(file);
        CM_CHECK(cm_alloc_live_count() == live, "k=%ld: leaked %ld", k,
                 cm_alloc_live_count() - live);
    }
    CM_CHECK(succeeded, "never succeeded");
}

static int count_temporaries(const char *dir) {
    DIR *handle = opendir(dir);
    int count = 0;
    for (struct dirent *entry; handle && (entry = readdir(handle));)
        count += strstr(entry->d_name, ".tmp") != NULL;
    if (handle) closedir(handle);
    return count;
}

/* Check the layout Python's safetensors requires: header a multiple of 8 starting with '{'
 * and padded with spaces; tensor bytes exactly fill the data section. */
static void check_layout(const unsigned char *bytes, size_t size, size_t data_bytes) {
    uint64_t length = 0;
    for (int b = 7; b >= 0; b--) length = length << 8 | bytes[b];
    CM_CHECK(length % 8 == 0 && 8 + length + data_bytes == size, "header length %llu, size %zu",
             (unsigned long long)length, size);
    CM_CHECK(bytes[8] == '{', "header does not start with '{'");
    size_t end = 8 + (size_t)length;
    while (end > 8 && bytes[end - 1] == ' ') end--;
    CM_CHECK(end > 8 && bytes[end - 1] == '}' && 8 + length - end < 8, "padding");
}

static void test_write_read_round_trip(void) {
    char dir[64] = "/tmp/cm_test_safetensors_XXXXXX", path[128];
    CM_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(path, sizeof path, "%s/m.safetensors", dir);
    const float w[6] = {1.5f, -0.0f, 3.4028235e38f, 1.4e-45f, 0.1f, -7.0f}, s = 2.5f;
    const cm_tensor_view tensors[] = {
        {"layer.0.weight", 2, {2, 3}, w},
        {"scale", 0, {0}, &s},
        {"empty", 1, {0}, NULL},
        {"quote\"and\\slash", 4, {1, 1, 1, 1}, &s},
    };
    const char *keys[] = {"config", "step", "unicode"};
    const char *values[] = {"{\"sigma_data\": 0.5}\nline two", "1000", "\xc3\xa9t\xc3\xa9"};
    long live = cm_alloc_live_count();
    CM_CHECK_OK(cm_safetensors_write(path, tensors, 4, keys, values, 3));
    void *bytes = NULL;
    size_t size = 0;
    CM_CHECK_OK(cm_file_read_all(&bytes, &size, path, 1 << 20));
    if (bytes) check_layout(bytes, size, 4 * (6 + 1 + 0 + 1));
    cm_free(bytes);
    cm_safetensors *file = NULL;
    CM_CHECK_OK(cm_safetensors_read(&file, path));
    for (size_t t = 0; file && t < 4; t++) {
        cm_tensor_view view;
        CM_CHECK_OK(cm_safetensors_get(&view, file, tensors[t].name));
        CM_CHECK(view.ndim == tensors[t].ndim, "%s: ndim %zu", tensors[t].name, view.ndim);
        size_t count = 1;
        for (size_t d = 0; d < view.ndim && d < CM_TENSOR_MAX_DIMS; d++) {
            CM_CHECK(view.shape[d] == tensors[t].shape[d], "%s: shape[%zu]", tensors[t].name, d);
            count *= view.shape[d];
        }
        if (view.ndim == tensors[t].ndim && count)
            CM_CHECK(memcmp(view.data, tensors[t].data, count * sizeof(float)) == 0,
                     "%s: data differ", tensors[t].name);
    }
    for (size_t k = 0; file && k < 3; k++) {
        const char *value = cm_safetensors_metadata(file, keys[k]);
        CM_CHECK(value && strcmp(value, values[k]) == 0, "metadata %s = %s", keys[k],
                 value ? value : "(null)");
    }
    cm_safetensors_free(file);
    CM_CHECK(cm_alloc_live_count() == live, "leaked %ld", cm_alloc_live_count() - live);
    CM_CHECK(count_temporaries(dir) == 0, "temporary file left behind");
    unlink(path);
    rmdir(dir);
}

/* Refused inputs and failed writes leave an existing file as it was, with no temporary file. */
static void test_write_refusals_keep_old_file(void) {
    char dir[64] = "/tmp/cm_test_safetensors_XXXXXX", path[128];
    CM_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(path, sizeof path, "%s/keep.safetensors", dir);
    const float x[2] = {1, 2};
    const cm_tensor_view good = {"x", 1, {2}, x};
    CM_CHECK_OK(cm_safetensors_write(path, &good, 1, NULL, NULL, 0));
    void *before = NULL, *after = NULL;
    size_t before_size = 0, after_size = 0;
    CM_CHECK_OK(cm_file_read_all(&before, &before_size, path, 1 << 20));
    const cm_tensor_view twice[] = {good, good};
    const cm_tensor_view reserved = {"__metadata__", 1, {2}, x};
    const cm_tensor_view too_many_dims = {"y", 5, {1, 1, 1, 1}, x};
    const cm_tensor_view no_data = {"z", 1, {2}, NULL};
    const char *bad_key[] = {"__format__"}, *value[] = {"1"};
    const struct {
        const cm_tensor_view *tensors;
        size_t count, metadata_count;
        const char *what;
    } refused[] = {{twice, 2, 0, "repeated name"}, {&reserved, 1, 0, "name __metadata__"},
                   {&too_many_dims, 1, 0, "5-D"},  {&no_data, 1, 0, "no data"},
                   {&good, 1, 1, "metadata key starting with __"}};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        CM_CHECK(cm_safetensors_write(path, refused[i].tensors, refused[i].count, bad_key, value,
                                      refused[i].metadata_count) == CM_ERR_INVALID,
                 "%s accepted", refused[i].what);
    cm_alloc_fail_after(0);
    cm_status status = cm_safetensors_write(path, &good, 1, NULL, NULL, 0);
    cm_alloc_fail_after(-1);
    CM_CHECK(status == CM_ERR_NOMEM, "write under NOMEM: %s", cm_status_name(status));
    CM_CHECK_OK(cm_file_read_all(&after, &after_size, path, 1 << 20));
    CM_CHECK(before && after && before_size == after_size &&
             memcmp(before, after, before_size) == 0, "existing file changed");
    CM_CHECK(count_temporaries(dir) == 0, "temporary file left behind");
    CM_CHECK(cm_safetensors_write("/nonexistent-cm-dir/m.safetensors", &good, 1, NULL, NULL, 0) ==
             CM_ERR_IO, "write into a missing directory");
    cm_free(before);
    cm_free(after);
    unlink(path);
    rmdir(dir);
}

const cm_test_case cm_tests_safetensors[] = {
    {"known_tiny", test_known_tiny},
    {"known_mixed", test_known_mixed},
    {"truncated_every_length", test_truncated_every_length},
    {"bad_header_length", test_bad_header_length},
    {"rejected_headers", test_rejected_headers},
    {"parse_allocation_failures", test_parse_allocation_failures},
    {"write_read_round_trip", test_write_read_round_trip},
    {"write_refusals_keep_old_file", test_write_refusals_keep_old_file},
    {NULL, NULL},
};
