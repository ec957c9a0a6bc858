/* test_csv.c: the CSV reader and writer.
 *
 * Known answers are typed-in texts; bad inputs (ragged rows, unparsable fields, NaN/inf, NUL
 * bytes, empty files) must fail with the right status and a detail naming the line and column,
 * and leave no allocation behind. The writer's exact text and its round trip are checked too.
 */
#include "test.h"

#include <dirent.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cm/alloc.h"
#include "cm/io.h"

/* Parse `text` and compare with rows x cols `expected`. */
static void check_parses(const char *text, size_t rows, size_t cols, const double *expected) {
    double *data = NULL;
    size_t r = 0, c = 0;
    cm_status status = cm_csv_parse(&data, &r, &c, text, strlen(text), "good.csv");
    CM_CHECK(status == CM_OK, "'%s': %s: %s", text, cm_status_name(status), cm_error_detail());
    CM_CHECK(r == rows && c == cols, "'%s': shape %zu x %zu, expected %zu x %zu", text, r, c, rows,
             cols);
    for (size_t i = 0; data && r == rows && c == cols && i < rows * cols; i++)
        CM_CHECK(data[i] == expected[i], "'%s': value %zu is %.17g, expected %.17g", text, i,
                 data[i], expected[i]);
    cm_free(data);
}

/* Parse must fail with `expected` and a detail containing `detail_part`, leaking nothing. */
static void check_fails(const char *text, size_t size, cm_status expected,
                        const char *detail_part) {
    long live = cm_alloc_live_count();
    double *data = (double *)&live;
    size_t rows = 7, cols = 7;
    cm_status status = cm_csv_parse(&data, &rows, &cols, text, size, "bad.csv");
    CM_CHECK(status == expected, "'%.*s': status %s, expected %s (%s)", (int)size, text,
             cm_status_name(status), cm_status_name(expected), cm_error_detail());
    CM_CHECK(data == NULL && rows == 0 && cols == 0, "'%.*s': outputs not cleared", (int)size,
             text);
    CM_CHECK(strstr(cm_error_detail(), detail_part) != NULL, "'%.*s': detail '%s' lacks '%s'",
             (int)size, text, cm_error_detail(), detail_part);
    CM_CHECK(cm_alloc_live_count() == live, "'%.*s': leaked %ld", (int)size, text,
             cm_alloc_live_count() - live);
    if (status == CM_OK) cm_free(data);
}

static void test_plain(void) {
    const double expected[] = {1, 2, 3, 4, 5, 6};
    check_parses("1,2,3\n4,5,6\n", 2, 3, expected);
    check_parses("1,2,3\n4,5,6", 2, 3, expected); /* no final newline */
    check_parses("1\n2\n3\n4\n5\n6\n", 6, 1, expected);
}

static void test_header_detected(void) {
    const double expected[] = {1, 2, 3, 4};
    check_parses("x0,x1\n1,2\n3,4\n", 2, 2, expected);
    check_parses("\n  \ny, 1\n1,2\n3,4\n", 2, 2, expected); /* not all fields are numbers */
    check_parses("1,2\n3,4\n", 2, 2, expected);
}

static void test_spaces_crlf_blank_lines(void) {
    const double expected[] = {1, 2, 3, 4};
    check_parses("\r\n  1 , 2 \r\n\r\n\t3,4\r\n\n", 2, 2, expected);
    check_parses("a , b\r\n1,2\r\n3,4", 2, 2, expected);
}

static void test_number_syntax(void) {
    const double expected[] = {1000, -0.5, 2, 0.25, 16, 4.9406564584124654e-324};
    check_parses("1e3,-0.5,+2,.25,0x10,4.9406564584124654e-324\n", 1, 6, expected);
}

static void test_ragged_rows(void) {
    check_fails("1,2\n3\n", 6, CM_ERR_FORMAT, "bad.csv:2: 1 fields, but line 1 has 2");
    check_fails("a,b,c\n1,2\n", 10, CM_ERR_FORMAT, "bad.csv:2:");
    check_fails("1,2\n\n\n3,4,5\n", 12, CM_ERR_FORMAT, "bad.csv:4:");
}

static void test_unparsable_fields(void) {
    check_fails("1,2\n3,abc\n", 10, CM_ERR_FORMAT, "bad.csv:2: column 2: cannot parse 'abc'");
    check_fails("1,2,3\n4,,6\n", 11, CM_ERR_FORMAT, "bad.csv:2: column 2");
    check_fails("1.5x\n", 5, CM_ERR_FORMAT, "empty"); /* a lone non-numeric line is a header */
    check_fails("x\n1.5x\n", 7, CM_ERR_FORMAT, "bad.csv:2: column 1: cannot parse '1.5x'");
    check_fails("1;2\n3;4\n", 8, CM_ERR_FORMAT, "bad.csv:2: column 1");
    char text[400];
    memcpy(text, "1\n", 2);
    memset(text + 2, '1', 300); /* longer than any number needs */
    memcpy(text + 302, "\n", 2);
    check_fails(text, strlen(text), CM_ERR_FORMAT, "...");
}

static void test_nonfinite_values(void) {
    check_fails("1,nan\n", 6, CM_ERR_NONFINITE, "bad.csv:1: column 2: 'nan'");
    check_fails("1,2\n3,-inf\n", 11, CM_ERR_NONFINITE, "bad.csv:2: column 2");
    check_fails("1,2\nInfinity,1\n", 14, CM_ERR_NONFINITE, "bad.csv:2: column 1");
    check_fails("1,2\n1e999,1\n", 12, CM_ERR_NONFINITE, "bad.csv:2: column 1");
    check_fails("nan,1\n2,3\n", 10, CM_ERR_NONFINITE, "bad.csv:1: column 1");
}

static void test_empty_inputs(void) {
    check_fails("", 0, CM_ERR_FORMAT, "empty");
    check_fails("\n \r\n\n", 5, CM_ERR_FORMAT, "empty");
    check_fails("a,b\n", 4, CM_ERR_FORMAT, "empty");
}

static void test_nul_byte(void) {
    check_fails("1,2\n3\0,4\n", 9, CM_ERR_FORMAT, "bad.csv:2: NUL");
}

/* The text need not be NUL-terminated: bytes after `size` are never read. */
static void test_unterminated_buffer(void) {
    const char text[] = "1,23";
    double *data = NULL;
    size_t rows = 0, cols = 0;
    CM_CHECK_OK(cm_csv_parse(&data, &rows, &cols, text, 3, "cut.csv"));
    CM_CHECK(rows == 1 && cols == 2 && data && data[1] == 2.0, "read past the buffer");
    cm_free(data);
}

/* Every prefix of a valid text parses or fails cleanly, without leaks. */
static void test_prefixes_never_leak(void) {
    const char text[] = "x, y\r\n1.5, -2\r\n\r\n3e2, 0x1p-2\r\n";
    long live = cm_alloc_live_count();
    for (size_t size = 0; size <= sizeof text - 1; size++) {
        double *data = NULL;
        size_t rows, cols;
        cm_status status = cm_csv_parse(&data, &rows, &cols, text, size, "prefix.csv");
        if (status == CM_OK) {
            CM_CHECK(cols == 2 && rows >= 1 && rows <= 2, "prefix %zu: %zu x %zu", size, rows,
                     cols);
            CM_CHECK(data[0] == 1.5, "prefix %zu: first value %g", size, data[0]);
            cm_free(data);
        }
        CM_CHECK(cm_alloc_live_count() == live, "prefix %zu leaked", size);
    }
}

static void test_out_of_memory(void) {
    long live = cm_alloc_live_count();
    double *data = NULL;
    size_t rows, cols;
    cm_alloc_fail_after(0);
    cm_status status = cm_csv_parse(&data, &rows, &cols, "1,2\n", 4, "oom.csv");
    cm_alloc_fail_after(-1);
    CM_CHECK(status == CM_ERR_NOMEM && data == NULL, "status %s", cm_status_name(status));
    CM_CHECK(cm_alloc_live_count() == live, "leaked %ld", cm_alloc_live_count() - live);
}

/* Header names on request: pandas' unnamed index, quoted names, no header, and no leak when an
 * allocation fails. */
static void test_header_names(void) {
    const char *text = " ,a, \"b c\" \n0,1.5,2\n1,3,4\n";
    double *data = NULL;
    size_t rows = 0, cols = 0;
    char **names = NULL;
    CM_CHECK_OK(cm_csv_parse_named(&data, &rows, &cols, &names, text, strlen(text), "n.csv"));
    CM_CHECK(rows == 2 && cols == 3 && data && data[1] == 1.5, "shape %zu x %zu", rows, cols);
    CM_CHECK(names && strcmp(names[0], "") == 0 && strcmp(names[1], "a") == 0 &&
                 strcmp(names[2], "b c") == 0, "names");
    cm_free(data);
    cm_free(names);
    names = (char **)&rows;
    CM_CHECK_OK(cm_csv_parse_named(&data, &rows, &cols, &names, "1,2\n", 4, "plain.csv"));
    CM_CHECK(names == NULL, "names of a file without header");
    cm_free(data);
    long live = cm_alloc_live_count();
    for (long k = 0; k < 4; k++) {
        cm_alloc_fail_after(k);
        cm_status status = cm_csv_parse_named(&data, &rows, &cols, &names, text, strlen(text), "n.csv");
        cm_alloc_fail_after(-1);
        CM_CHECK(status == CM_OK || status == CM_ERR_NOMEM, "fail after %ld", k);
        if (status == CM_OK) {
            cm_free(data);
            cm_free(names);
        } else {
            CM_CHECK(data == NULL && names == NULL, "outputs after a failure");
        }
    }
    CM_CHECK(cm_alloc_live_count() == live, "leaked %ld", cm_alloc_live_count() - live);
}

static int count_temporaries(const char *dir) {
    DIR *handle = opendir(dir);
    int count = 0;
    for (struct dirent *entry; handle && (entry = readdir(handle));)
        count += strstr(entry->d_name, ".tmp") != NULL;
    if (handle) closedir(handle);
    return count;
}

/* The writer's exact text, its round trip, and its refusals. */
static void test_write(void) {
    char dir[64] = "/tmp/cm_test_csv_XXXXXX", path[128];
    CM_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(path, sizeof path, "%s/w.csv", dir);
    const double values[] = {1, -0.5, 1e-10, 123456789, 0.1f, 3.4028234663852886e38};
    CM_CHECK_OK(cm_csv_write(path, values, 3, 2, "a,b"));
    void *text = NULL;
    size_t size = 0;
    CM_CHECK_OK(cm_file_read_all(&text, &size, path, 1 << 20));
    const char *expected = "a,b\n1,-0.5\n1e-10,123456789\n0.100000001,3.40282347e+38\n";
    CM_CHECK(text && size == strlen(expected) && memcmp(text, expected, size) == 0,
             "text is '%.*s'", (int)size, text ? (const char *)text : "");
    cm_free(text);
    double *data = NULL;
    size_t rows = 0, cols = 0;
    CM_CHECK_OK(cm_csv_read(&data, &rows, &cols, path));
    CM_CHECK(rows == 3 && cols == 2, "shape %zu x %zu", rows, cols);
    for (size_t i = 0; data && i < 6; i++) /* "%.9g" round-trips float32 values exactly */
        CM_CHECK((float)data[i] == (float)values[i], "value %zu: %.17g vs %.17g", i, data[i],
                 values[i]);
    cm_free(data);
    const double bad[] = {1, NAN};
    CM_CHECK(cm_csv_write(path, bad, 1, 2, NULL) == CM_ERR_NONFINITE, "NaN written");
    CM_CHECK(strstr(cm_error_detail(), "row 0, column 1") != NULL, "%s", cm_error_detail());
    CM_CHECK(cm_csv_write(path, values, 1, 2, "a\nb") == CM_ERR_INVALID, "header with newline");
    CM_CHECK(cm_csv_write(path, values, 0, 2, NULL) == CM_ERR_INVALID, "empty matrix");
    CM_CHECK(cm_csv_read(&data, &rows, &cols, path) == CM_OK && rows == 3, "file was changed");
    cm_free(data);
    CM_CHECK(count_temporaries(dir) == 0, "temporary file left behind");
    CM_CHECK(cm_csv_read(&data, &rows, &cols, "/nonexistent-cm-dir/x.csv") == CM_ERR_IO, "missing");
    unlink(path);
    rmdir(dir);
}

const cm_test_case cm_tests_csv[] = {
    {"plain", test_plain},
    {"header_detected", test_header_detected},
    {"spaces_crlf_blank_lines", test_spaces_crlf_blank_lines},
    {"number_syntax", test_number_syntax},
    {"ragged_rows", test_ragged_rows},
    {"unparsable_fields", test_unparsable_fields},
    {"nonfinite_values", test_nonfinite_values},
    {"empty_inputs", test_empty_inputs},
    {"nul_byte", test_nul_byte},
    {"unterminated_buffer", test_unterminated_buffer},
    {"prefixes_never_leak", test_prefixes_never_leak},
    {"out_of_memory", test_out_of_memory},
    {"write", test_write},
    {"header_names", test_header_names},
    {NULL, NULL},
};
