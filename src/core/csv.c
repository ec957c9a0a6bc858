/* csv.c: comma-separated matrices of numbers: a validating reader and a "%.9g" writer.
 *
 * Hand-written because the reader must validate what small CSV libraries pass through: every
 * row the same width (a ragged line is named), every field a whole number token (strtod with a
 * full-field check; line and column named), finite values (strtod accepts "nan" and "inf"), no
 * NUL bytes, a size limit. An optional header line is recognised as the first non-blank line
 * whose fields are not all numbers. Fields may be padded with spaces; "\r\n" line ends, blank
 * lines and a missing final newline are fine. The header's names are returned on request
 * (cm_csv_parse_named; one pair of surrounding double quotes is removed from a name), so that
 * callers can select columns by name. Not supported: quoting of data fields, other separators,
 * missing values. Numbers are parsed in the C locale the library never changes.
 */
#include "cm/io.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cm/alloc.h"

#define CSV_FIELD_MAX 255 /* longest field text accepted as a number */
#define CSV_SHOWN_MAX 40  /* longest field text quoted in an error detail */

typedef struct {
    const char *start;
    size_t length;
} span;

static int is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

static span trim(const char *start, size_t length) {
    while (length && is_blank(*start)) start++, length--;
    while (length && is_blank(start[length - 1])) length--;
    return (span){start, length};
}

/* Parse a trimmed field as a whole strtod number (possibly nan/inf); 0 when it is not one. */
static int parse_number(double *out, span field) {
    char text[CSV_FIELD_MAX + 1];
    if (field.length == 0 || field.length > CSV_FIELD_MAX) return 0;
    memcpy(text, field.start, field.length);
    text[field.length] = '\0';
    char *end;
    *out = strtod(text, &end);
    return end == text + field.length;
}

static size_t count_fields(span line) {
    size_t count = 1;
    for (size_t i = 0; i < line.length; i++) count += line.start[i] == ',';
    return count;
}

/* The trimmed field that starts at `*cursor`; advances the cursor past its comma. */
static span next_field(const char **cursor, const char *line_end) {
    const char *comma = memchr(*cursor, ',', (size_t)(line_end - *cursor));
    const char *field_end = comma ? comma : line_end;
    span field = trim(*cursor, (size_t)(field_end - *cursor));
    *cursor = comma ? comma + 1 : line_end;
    return field;
}

static int all_numbers(span line) {
    const char *cursor = line.start, *end = line.start + line.length;
    for (size_t j = 0, n = count_fields(line); j < n; j++) {
        double ignored;
        if (!parse_number(&ignored, next_field(&cursor, end))) return 0;
    }
    return 1;
}

/* Parse one data line into row[0..cols) (row may be NULL when only validating). */
static cm_status parse_row(double *row, span line, size_t line_number, const char *name) {
    const char *cursor = line.start, *end = line.start + line.length;
    for (size_t j = 0, n = count_fields(line); j < n; j++) {
        span field = next_field(&cursor, end);
        int shown = field.length > CSV_SHOWN_MAX ? CSV_SHOWN_MAX : (int)field.length;
        double value;
        if (!parse_number(&value, field))
            return cm_error_set(CM_ERR_FORMAT, "%s:%zu: column %zu: cannot parse '%.*s%s' as a "
                                "number", name, line_number, j + 1, shown, field.start,
                                shown < (int)field.length ? "..." : "");
        if (!isfinite(value))
            return cm_error_set(CM_ERR_NONFINITE, "%s:%zu: column %zu: '%.*s' is not a finite "
                                "number", name, line_number, j + 1, shown, field.start);
        if (row) row[j] = value;
    }
    return CM_OK;
}

/* One pass over the text: validates every line and counts rows and columns; fills `data`
 * (rows x cols, row-major) when it is not NULL. */
static cm_status scan(double *data, size_t *out_rows, size_t *out_cols, const char *text,
                      size_t size, const char *name) {
    size_t rows = 0, cols = 0, first_line = 0, line_number = 0;
    for (size_t at = 0; at < size;) {
        const char *newline = memchr(text + at, '\n', size - at);
        size_t end = newline ? (size_t)(newline - text) : size;
        span line = trim(text + at, end - at);
        at = end + 1;
        line_number++;
        if (line.length == 0) continue;
        size_t fields = count_fields(line);
        if (first_line == 0) {
            first_line = line_number;
            cols = fields;
            if (!all_numbers(line)) continue; /* a header line */
        } else if (fields != cols) {
            return cm_error_set(CM_ERR_FORMAT, "%s:%zu: %zu fields, but line %zu has %zu", name,
                                line_number, fields, first_line, cols);
        }
        CM_TRY(parse_row(data ? data + rows * cols : NULL, line, line_number, name));
        rows++;
    }
    if (rows == 0) return cm_error_set(CM_ERR_FORMAT, "%s: empty: no rows of numbers", name);
    *out_rows = rows;
    *out_cols = cols;
    return CM_OK;
}

/* The first non-blank line, when it is a header (not all numbers). */
static int find_header(span *out, const char *text, size_t size) {
    for (size_t at = 0; at < size;) {
        const char *newline = memchr(text + at, '\n', size - at);
        size_t end = newline ? (size_t)(newline - text) : size;
        span line = trim(text + at, end - at);
        at = end + 1;
        if (line.length == 0) continue;
        *out = line;
        return !all_numbers(line);
    }
    return 0;
}

/* The names of a header line: cols pointers followed by the NUL-terminated names, in one
 * allocation (cm_free(names) releases all). */
static cm_status header_names(char ***out, span header, size_t cols, const char *name) {
    char **names = cm_malloc(cols * sizeof(char *) + header.length + cols, 1);
    if (!names) return cm_error_set(CM_ERR_NOMEM, "%s: cannot allocate the header", name);
    char *text = (char *)(names + cols);
    const char *cursor = header.start, *end = header.start + header.length;
    for (size_t j = 0; j < cols; j++) {
        span field = next_field(&cursor, end);
        if (field.length >= 2 && field.start[0] == '"' && field.start[field.length - 1] == '"')
            field = (span){field.start + 1, field.length - 2};
        memcpy(text, field.start, field.length);
        text[field.length] = '\0';
        names[j] = text;
        text += field.length + 1;
    }
    *out = names;
    return CM_OK;
}

cm_status cm_csv_parse_named(double **out, size_t *out_rows, size_t *out_cols, char ***out_names,
                             const char *text, size_t size, const char *name) {
    size_t rows = 0, cols = 0;
    *out = NULL;
    *out_rows = *out_cols = 0;
    if (out_names) *out_names = NULL;
    if (!name) name = "(csv buffer)";
    if (size > CM_IO_MAX_BYTES)
        return cm_error_set(CM_ERR_FORMAT, "%s: %zu bytes, over the limit of %llu", name, size,
                            (unsigned long long)CM_IO_MAX_BYTES);
    const char *nul = memchr(text, '\0', size);
    if (nul) {
        size_t line_number = 1;
        for (const char *c = text; c < nul; c++) line_number += *c == '\n';
        return cm_error_set(CM_ERR_FORMAT, "%s:%zu: NUL byte (not a text file)", name, line_number);
    }
    CM_TRY(scan(NULL, &rows, &cols, text, size, name));
    span header;
    char **names = NULL;
    if (out_names && find_header(&header, text, size))
        CM_TRY(header_names(&names, header, cols, name));
    double *data = cm_malloc(rows * cols, sizeof(double));
    if (!data) {
        cm_free(names);
        return cm_error_set(CM_ERR_NOMEM, "%s: cannot allocate %zu x %zu", name, rows, cols);
    }
    cm_status status = scan(data, &rows, &cols, text, size, name);
    if (status != CM_OK) {
        cm_free(data);
        cm_free(names);
        return status;
    }
    *out = data;
    *out_rows = rows;
    *out_cols = cols;
    if (out_names) *out_names = names;
    return CM_OK;
}

cm_status cm_csv_parse(double **out, size_t *out_rows, size_t *out_cols, const char *text,
                       size_t size, const char *name) {
    return cm_csv_parse_named(out, out_rows, out_cols, NULL, text, size, name);
}

cm_status cm_csv_read_named(double **out, size_t *out_rows, size_t *out_cols, char ***out_names,
                            const char *path) {
    void *text;
    size_t size;
    *out = NULL;
    *out_rows = *out_cols = 0;
    if (out_names) *out_names = NULL;
    CM_TRY(cm_file_read_all(&text, &size, path, CM_IO_MAX_BYTES));
    cm_status status = cm_csv_parse_named(out, out_rows, out_cols, out_names, text, size, path);
    cm_free(text);
    return status;
}

cm_status cm_csv_read(double **out, size_t *out_rows, size_t *out_cols, const char *path) {
    return cm_csv_read_named(out, out_rows, out_cols, NULL, path);
}

/* Longest "%.9g" of a finite double ("-1.23456789e-308") plus a separator, rounded up. */
#define CSV_VALUE_MAX 24

cm_status cm_csv_write(const char *path, const double *data, size_t rows, size_t cols,
                       const char *header) {
    if (rows == 0 || cols == 0)
        return cm_error_set(CM_ERR_INVALID, "%s: empty: %zu x %zu matrix", path, rows, cols);
    size_t header_length = header ? strlen(header) : 0;
    if (header && strpbrk(header, "\r\n"))
        return cm_error_set(CM_ERR_INVALID, "%s: header contains a line break", path);
    if (rows > SIZE_MAX / cols || rows * cols > (SIZE_MAX - header_length - 2) / CSV_VALUE_MAX)
        return cm_error_set(CM_ERR_INVALID, "%s: %zu x %zu matrix is too large", path, rows, cols);
    for (size_t i = 0; i < rows * cols; i++)
        if (!isfinite(data[i]))
            return cm_error_set(CM_ERR_NONFINITE, "%s: value at row %zu, column %zu (0-based) is "
                                "not finite", path, i / cols, i % cols);
    size_t capacity = rows * cols * CSV_VALUE_MAX + header_length + 2, used = 0;
    char *text = cm_malloc(capacity, 1);
    if (!text) return cm_error_set(CM_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, capacity);
    if (header) used += (size_t)snprintf(text, capacity, "%s\n", header);
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++)
            used += (size_t)snprintf(text + used, capacity - used, "%.9g%c", data[r * cols + c],
                                     c + 1 < cols ? ',' : '\n');
    cm_status status = cm_file_write_atomic(path, text, used);
    cm_free(text);
    return status;
}
