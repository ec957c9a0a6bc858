/* field.h: settings described once, as tables. A cm_field names one member of a settings
 * struct (its JSON key, its kind, its offset, its range, its help line); one table per struct
 * then drives the JSON form of a configuration (model/config.c), the command-line options and
 * their --help (tools/cm/), and range checks, so that a new setting (or a new network's
 * settings) is declared in one place. Modelled on the option tables of GSL and zstd's CLI.
 */
#ifndef CM_FIELD_H
#define CM_FIELD_H

#include <stddef.h>
#include <stdint.h>

#include "cm/status.h"

typedef enum {
    CM_FIELD_SIZE,   /* size_t, an integer in [minimum, maximum] */
    CM_FIELD_U64,    /* uint64_t (seeds), any value JSON can carry exactly (< 2^53) */
    CM_FIELD_DOUBLE, /* double, finite, in [minimum, maximum] */
    CM_FIELD_ENUM,   /* an int-sized enum, written and read by name */
    CM_FIELD_KIND_COUNT
} cm_field_kind;

typedef struct {
    const char *key;      /* JSON key; the CLI flag is the key with '_' as '-' unless `flag` */
    cm_field_kind kind;
    size_t offset;        /* of the member in the struct the table describes */
    double minimum, maximum; /* the range, inclusive (but see above_minimum) */
    const char *const *names; /* CM_FIELD_ENUM: value i is names[i] */
    size_t name_count;
    const char *help;     /* one line, without the default (printed from the value) */
    const char *flag;     /* CLI flag if it differs from the key, else NULL */
    int above_minimum;    /* 1: the value must be > minimum (a rate, a scale), not >= */
} cm_field;

/* The CLI flag of a field (the key with '_' as '-', or f->flag) into out[capacity]. */
void cm_field_flag(char *out, size_t capacity, const cm_field *field);
/* The value of `field` in `base` as JSON text ("0.001", "16000", "\"ict\"") into
 * out[capacity]; returns the length snprintf reports. Doubles with 17 significant digits. */
int cm_field_format(char *out, size_t capacity, const cm_field *field, const void *base);
/* The value as a person reads it in --help and messages ("0.001", "ict"). */
int cm_field_format_plain(char *out, size_t capacity, const cm_field *field, const void *base);
/* Set the field of `base` from command-line text, refusing garbage, NaN and out-of-range values
 * with a CM_ERR_INVALID detail that names the flag and the valid range or names. */
cm_status cm_field_parse(const cm_field *field, void *base, const char *text);
/* Set from a JSON number (SIZE, U64, DOUBLE) or a JSON string (ENUM), with the same checks;
 * CM_ERR_FORMAT with a detail naming `where` and the key. */
cm_status cm_field_set_number(const cm_field *field, void *base, double value, const char *where);
cm_status cm_field_set_name(const cm_field *field, void *base, const char *name, const char *where);
/* Check the current value of the field in `base` against its range (CM_ERR_INVALID). */
cm_status cm_field_check(const cm_field *field, const void *base);

/* Name <-> value of an enum table (names[count]); parse fails with the valid names listed. */
cm_status cm_field_name_parse(int *out, const char *text, const char *const *names, size_t count,
                              const char *what);

#endif
