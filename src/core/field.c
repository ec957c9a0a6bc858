/* field.c: formatting, parsing and range checks of table-described settings (see field.h). */
#include "cm/field.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIELD_JSON_EXACT 9007199254740992.0 /* 2^53: larger integers do not survive a JSON number */

void cm_field_flag(char *out, size_t capacity, const cm_field *f) {
    snprintf(out, capacity, "%s", f->flag ? f->flag : f->key);
    for (char *p = out; *p; p++)
        if (*p == '_') *p = '-';
}

static const char *enum_name(const cm_field *f, const void *base) {
    int value = *(const int *)((const char *)base + f->offset);
    return value >= 0 && (size_t)value < f->name_count ? f->names[value] : "?";
}

int cm_field_format(char *out, size_t capacity, const cm_field *f, const void *base) {
    const void *p = (const char *)base + f->offset;
    switch (f->kind) {
    case CM_FIELD_SIZE: return snprintf(out, capacity, "%zu", *(const size_t *)p);
    case CM_FIELD_U64:
        return snprintf(out, capacity, "%llu", (unsigned long long)*(const uint64_t *)p);
    case CM_FIELD_DOUBLE: return snprintf(out, capacity, "%.17g", *(const double *)p);
    case CM_FIELD_ENUM: return snprintf(out, capacity, "\"%s\"", enum_name(f, base));
    case CM_FIELD_KIND_COUNT: break;
    }
    return snprintf(out, capacity, "null");
}

int cm_field_format_plain(char *out, size_t capacity, const cm_field *f, const void *base) {
    const void *p = (const char *)base + f->offset;
    if (f->kind == CM_FIELD_DOUBLE) return snprintf(out, capacity, "%g", *(const double *)p);
    if (f->kind == CM_FIELD_ENUM) return snprintf(out, capacity, "%s", enum_name(f, base));
    return cm_field_format(out, capacity, f, base);
}

cm_status cm_field_name_parse(int *out, const char *text, const char *const *names, size_t count,
                              const char *what) {
    for (size_t i = 0; i < count; i++)
        if (text && strcmp(text, names[i]) == 0) {
            *out = (int)i;
            return CM_OK;
        }
    char valid[256] = "";
    for (size_t i = 0; i < count; i++) {
        strncat(valid, names[i], sizeof valid - strlen(valid) - 1);
        if (i + 1 < count) strncat(valid, ", ", sizeof valid - strlen(valid) - 1);
    }
    return cm_error_set(CM_ERR_INVALID, "unknown %s '%.64s' (valid: %s)", what, text ? text : "",
                        valid);
}

/* Store a number already known to be finite, checking kind and range. */
static cm_status store_number(const cm_field *f, void *base, double value, cm_status error,
                              const char *where, const char *name) {
    void *p = (char *)base + f->offset;
    switch (f->kind) {
    case CM_FIELD_SIZE:
        if (floor(value) != value || !(value >= f->minimum && value <= f->maximum))
            return cm_error_set(error, "%s%s%s: '%.17g' is not an integer in [%.17g, %.17g]", where,
                                where[0] ? ": " : "", name, value, f->minimum, f->maximum);
        *(size_t *)p = (size_t)value;
        return CM_OK;
    case CM_FIELD_U64:
        if (floor(value) != value || !(value >= 0 && value <= FIELD_JSON_EXACT))
            return cm_error_set(error, "%s%s%s: '%.17g' is not an integer in [0, 2^53]", where,
                                where[0] ? ": " : "", name, value);
        *(uint64_t *)p = (uint64_t)value;
        return CM_OK;
    case CM_FIELD_DOUBLE:
        if (f->above_minimum && !(value > f->minimum) && value <= f->maximum)
            return cm_error_set(error, "%s%s%s: %.17g must be > %g", where, where[0] ? ": " : "",
                                name, value, f->minimum);
        if (!(value >= f->minimum && value <= f->maximum))
            return cm_error_set(error, "%s%s%s: %.17g is out of %s%g, %g]", where,
                                where[0] ? ": " : "", name, value, f->above_minimum ? "(" : "[",
                                f->minimum, f->maximum);
        *(double *)p = value;
        return CM_OK;
    default:
        return cm_error_set(error, "%s%s%s must be a name, not a number", where,
                            where[0] ? ": " : "", name);
    }
}

cm_status cm_field_set_number(const cm_field *f, void *base, double value, const char *where) {
    char name[80];
    snprintf(name, sizeof name, "\"%s\"", f->key);
    if (!isfinite(value))
        return cm_error_set(CM_ERR_FORMAT, "%s: %s must be a finite number", where, name);
    return store_number(f, base, value, CM_ERR_FORMAT, where, name);
}

cm_status cm_field_set_name(const cm_field *f, void *base, const char *text, const char *where) {
    int value;
    if (f->kind != CM_FIELD_ENUM)
        return cm_error_set(CM_ERR_FORMAT, "%s: \"%s\" must be a number", where, f->key);
    if (cm_field_name_parse(&value, text, f->names, f->name_count, f->key) != CM_OK)
        return cm_error_set(CM_ERR_FORMAT, "%s: %s", where, cm_error_detail());
    *(int *)((char *)base + f->offset) = value;
    return CM_OK;
}

/* A decimal integer of digits only (no sign, no spaces), without overflow. */
static int parse_unsigned(uint64_t *out, const char *text) {
    if (text[0] < '0' || text[0] > '9') return 0;
    char *end;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (*end != '\0' || errno == ERANGE) return 0;
    *out = (uint64_t)value;
    return 1;
}

cm_status cm_field_parse(const cm_field *f, void *base, const char *text) {
    char flag[80];
    cm_field_flag(flag, sizeof flag, f);
    if (f->kind == CM_FIELD_ENUM) {
        int value;
        CM_TRY(cm_field_name_parse(&value, text, f->names, f->name_count, flag));
        *(int *)((char *)base + f->offset) = value;
        return CM_OK;
    }
    if (f->kind == CM_FIELD_U64) {
        uint64_t value;
        if (!parse_unsigned(&value, text))
            return cm_error_set(CM_ERR_INVALID, "--%s: '%.64s' is not a non-negative 64-bit "
                                "integer", flag, text);
        *(uint64_t *)((char *)base + f->offset) = value;
        return CM_OK;
    }
    char *end;
    errno = 0;
    double value = strtod(text, &end);
    if (end == text || *end != '\0' || errno == ERANGE || !isfinite(value))
        return cm_error_set(CM_ERR_INVALID, "--%s: '%.64s' is not a finite number", flag, text);
    char name[84];
    snprintf(name, sizeof name, "--%s", flag);
    return store_number(f, base, value, CM_ERR_INVALID, "", name);
}

cm_status cm_field_check(const cm_field *f, const void *base) {
    const void *p = (const char *)base + f->offset;
    double value;
    switch (f->kind) {
    case CM_FIELD_SIZE: value = (double)*(const size_t *)p; break;
    case CM_FIELD_DOUBLE: value = *(const double *)p; break;
    case CM_FIELD_ENUM: {
        int v = *(const int *)p;
        if (v < 0 || (size_t)v >= f->name_count)
            return cm_error_set(CM_ERR_INVALID, "config: unknown %s %d", f->key, v);
        return CM_OK;
    }
    default: return CM_OK;
    }
    if (!(value >= f->minimum && value <= f->maximum) ||
        (f->above_minimum && !(value > f->minimum)))
        return cm_error_set(CM_ERR_INVALID, "config: %s %.17g out of %s%g, %g]", f->key, value,
                            f->above_minimum ? "(" : "[", f->minimum, f->maximum);
    return CM_OK;
}
