/* columns.c: which columns of a user's file are data: column selection by header name, 0-based
 * index or inclusive index range (cm_data_parse_columns, data.h), and the refusal of a first
 * column that is a row index rather than a data dimension (what pandas' to_csv writes by
 * default: header ",a,b", rows "0,-2.50,-0.36"; or an "id"/"index" column).
 *
 * Hand-written: a few dozen lines of string matching; no CSV library knows our rules. It does not
 * guess which columns are data beyond the index test: every other choice is the user's, stated
 * in the source string (FILE:columns=LIST) so that a model remembers it (docs/data.md).
 */
#include "data/columns.h"

#include <ctype.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cm/alloc.h"

#define SHOWN_NAMES_MAX 160 /* characters of the header quoted in an error detail */

/* A whole decimal number of digits only, without overflow; 0 when it is not one. */
static int parse_index(size_t *out, const char *text, size_t length) {
    if (length == 0 || length > 18) return 0;
    size_t value = 0;
    for (size_t i = 0; i < length; i++) {
        if (!isdigit((unsigned char)text[i])) return 0;
        value = value * 10 + (size_t)(text[i] - '0');
    }
    *out = value;
    return 1;
}

/* The column named exactly text[0..length), or cols when none is. */
static size_t find_name(const char *text, size_t length, const char *const *names, size_t cols) {
    for (size_t j = 0; names && j < cols; j++)
        if (strlen(names[j]) == length && memcmp(names[j], text, length) == 0) return j;
    return cols;
}

/* "a, b, c" (the header, shortened) for error details. */
static void describe_names(char *out, size_t size, const char *const *names, size_t cols) {
    out[0] = '\0';
    if (!names) {
        snprintf(out, size, "no header: use 0-based indices 0..%zu", cols - 1);
        return;
    }
    size_t used = (size_t)snprintf(out, size, "the header has ");
    for (size_t j = 0; j < cols && used < size; j++)
        used += (size_t)snprintf(out + used, size - used, "%s'%s'", j ? ", " : "", names[j]);
}

static cm_status add_column(size_t *out, size_t *count, size_t column, size_t cols,
                            const char *item, size_t length) {
    if (column >= cols)
        return cm_error_set(CM_ERR_INVALID, "columns: '%.*s': index %zu, but the file has %zu "
                            "columns (0..%zu)", (int)length, item, column, cols, cols - 1);
    for (size_t k = 0; k < *count; k++)
        if (out[k] == column)
            return cm_error_set(CM_ERR_INVALID, "columns: '%.*s' selects column %zu a second time",
                                (int)length, item, column);
    out[(*count)++] = column;
    return CM_OK;
}

/* One item: a name, an index, or an inclusive range A-B. */
static cm_status parse_item(size_t *out, size_t *count, const char *item, size_t length,
                            const char *const *names, size_t cols) {
    size_t column = find_name(item, length, names, cols), first, last;
    if (column < cols) return add_column(out, count, column, cols, item, length);
    if (parse_index(&column, item, length)) return add_column(out, count, column, cols, item, length);
    const char *dash = memchr(item, '-', length);
    if (dash && parse_index(&first, item, (size_t)(dash - item)) &&
        parse_index(&last, dash + 1, length - (size_t)(dash - item) - 1)) {
        if (last < first)
            return cm_error_set(CM_ERR_INVALID, "columns: range '%.*s' runs backwards",
                                (int)length, item);
        for (size_t j = first; j <= last; j++)
            CM_TRY(add_column(out, count, j, cols, item, length));
        return CM_OK;
    }
    char known[SHOWN_NAMES_MAX];
    describe_names(known, sizeof known, names, cols);
    return cm_error_set(CM_ERR_INVALID, "columns: '%.*s' is neither a column name nor a 0-based "
                        "index or range A-B (%s)", (int)length, item, known);
}

cm_status cm_data_parse_columns(size_t *out, size_t *out_count, const char *list,
                                const char *const *names, size_t cols) {
    if (!out || !out_count || !list || cols == 0)
        return cm_error_set(CM_ERR_INVALID, "columns: NULL argument or no columns");
    *out_count = 0;
    size_t count = 0;
    for (const char *item = list;;) {
        size_t length = strcspn(item, ",");
        if (length == 0)
            return cm_error_set(CM_ERR_INVALID, "columns '%.100s': empty item", list);
        CM_TRY(parse_item(out, &count, item, length, names, cols));
        if (item[length] == '\0') break;
        item += length + 1;
    }
    *out_count = count;
    return CM_OK;
}

static int is_index_name(const char *name) {
    static const char *const index_names[] = {"", "id", "index", "unnamed: 0", "#"};
    for (size_t k = 0; k < sizeof index_names / sizeof index_names[0]; k++) {
        const char *a = name, *b = index_names[k];
        while (*a && *b && tolower((unsigned char)*a) == *b) a++, b++;
        if (*a == '\0' && *b == '\0') return 1;
    }
    return 0;
}

/* 1 when column 0 of values (rows x cols) holds a row index: integers that increase by exactly
 * 1 (no header), or strictly increasing integers under an empty, "id", "index" or
 * "Unnamed: 0" name (a filtered pandas frame keeps gaps in its index). */
static int first_column_is_index(const double *values, size_t rows, size_t cols,
                                 const char *const *names) {
    if (cols < 2 || rows < 2) return 0;
    if (names && !is_index_name(names[0])) return 0;
    for (size_t i = 0; i < rows; i++) {
        double x = values[i * cols];
        if (x != floor(x) || fabs(x) > 9007199254740992.0) return 0;
        if (i == 0) continue;
        double previous = values[(i - 1) * cols];
        if (names ? !(x > previous) : x != previous + 1.0) return 0;
    }
    return 1;
}

cm_status cm_columns_check_index(const double *values, size_t rows, size_t cols,
                                 const char *const *names, const char *path) {
    if (!first_column_is_index(values, rows, cols, names)) return CM_OK;
    char by_name[SHOWN_NAMES_MAX] = "";
    size_t used = 0;
    for (size_t j = 1; names && j < cols && used < sizeof by_name; j++)
        used += (size_t)snprintf(by_name + used, sizeof by_name - used, "%s%s", j > 1 ? "," : "",
                                 names[j]);
    char hint[2 * SHOWN_NAMES_MAX + 512];
    if (names)
        snprintf(hint, sizeof hint, "'%.200s:columns=%s' or '%.200s:columns=1-%zu'", path,
                 by_name, path, cols - 1);
    else
        snprintf(hint, sizeof hint, "'%.200s:columns=1-%zu' (if it is data, columns=0-%zu "
                 "keeps it)", path, cols - 1, cols - 1);
    const char *label = !names ? "no header" : names[0][0] ? names[0] : "unnamed in the header";
    return cm_error_set(CM_ERR_FORMAT, "data file '%.200s': column 0 (%s) holds the integers "
                        "%.17g..%.17g in order: a row index, not a data dimension (pandas writes "
                        "one unless to_csv(index=False)); select the data columns by name or "
                        "0-based index: %s (cm's option --columns; cm eval --sample-columns for "
                        "its samples)", path, label, values[0], values[(rows - 1) * cols], hint);
}

cm_status cm_columns_select(double **values, size_t rows, size_t *cols, const char *const *names,
                         const char *list) {
    size_t *chosen = cm_malloc(*cols, sizeof(size_t)), count = 0;
    if (!chosen) return cm_error_set(CM_ERR_NOMEM, "columns: %zu indices", *cols);
    cm_status status = cm_data_parse_columns(chosen, &count, list, names, *cols);
    double *selected = status == CM_OK ? cm_malloc(rows * count, sizeof(double)) : NULL;
    if (status == CM_OK && !selected)
        status = cm_error_set(CM_ERR_NOMEM, "columns: %zu x %zu values", rows, count);
    if (status == CM_OK) {
        for (size_t i = 0; i < rows; i++)
            for (size_t k = 0; k < count; k++)
                selected[i * count + k] = (*values)[i * *cols + chosen[k]];
        cm_free(*values);
        *values = selected;
        *cols = count;
    }
    cm_free(chosen);
    return status;
}
