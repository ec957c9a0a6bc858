/* cli.c: option parsing, error reporting and small system helpers of the cm tool (cli.h). In a
 * job of several processes (dist.h) help and usage errors, the same on every process, are printed
 * by rank 0 alone; a runtime error by the process that meets it, naming its rank. */
#include "cli.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cm/alloc.h"
#include "cm/checkpoint.h"
#include "cm/parallel.h"
#include "dist.h"

int cli_fail(const char *command, cm_status status) {
    const char *detail = cm_error_detail();
    char rank[64] = "";
    if (cli_dist_size() > 1)
        snprintf(rank, sizeof rank, " (rank %zu of %zu)", cli_dist_rank(), cli_dist_size());
    fprintf(stderr, "cm %s: error%s: %s%s%s\n", command, rank, cm_status_name(status),
            detail[0] ? ": " : "", detail);
    return status == CM_ERR_INVALID ? CLI_USAGE_ERROR : CLI_RUNTIME_ERROR;
}

int cli_usage_error(const char *command, const char *format, ...) {
    if (cli_dist_rank() != 0) return CLI_USAGE_ERROR; /* rank 0 says it */
    va_list args;
    va_start(args, format);
    fprintf(stderr, "cm %s: error: ", command);
    vfprintf(stderr, format, args);
    fprintf(stderr, " (see cm %s --help)\n", command);
    va_end(args);
    return CLI_USAGE_ERROR;
}

static int parse_double(double *out, const char *text) {
    char *end;
    errno = 0;
    double value = strtod(text, &end);
    if (end == text || *end != '\0' || errno == ERANGE || !isfinite(value)) return 0;
    *out = value;
    return 1;
}

static int parse_u64(uint64_t *out, const char *text) {
    if (text[0] == '-' || text[0] == '+' || text[0] == '\0' || text[0] == ' ') return 0;
    char *end;
    errno = 0;
    unsigned long long value = strtoull(text, &end, 10);
    if (*end != '\0' || errno == ERANGE) return 0;
    *out = (uint64_t)value;
    return 1;
}

/* A count: digits (2000000), or a number in decimal or scientific notation whose value is an
 * integer (2e6, 2.5e6); no sign, spaces, hexadecimal, NaN or infinity. Values up to 2^40 are
 * exact in a double, so nothing is rounded. */
static int parse_count(uint64_t *out, const char *text) {
    if (parse_u64(out, text)) return 1;
    if (text[0] < '0' || text[0] > '9' || text[strspn(text, "0123456789.eE+-")] != '\0') return 0;
    double value;
    if (!parse_double(&value, text) || value < 0 || value > CLI_SIZE_MAX || floor(value) != value)
        return 0;
    *out = (uint64_t)value;
    return 1;
}

static int parse_list(cli_list *out, const char *text) {
    out->count = 0;
    const char *p = text;
    while (1) {
        char item[64];
        size_t length = strcspn(p, ",");
        if (length == 0 || length >= sizeof item || out->count == CLI_LIST_MAX) return 0;
        memcpy(item, p, length);
        item[length] = '\0';
        double value;
        if (!parse_double(&value, item) || !(value > 0)) return 0;
        out->values[out->count++] = value;
        if (p[length] == '\0') return 1;
        p += length + 1;
    }
}

static void print_default(const cli_option *o) {
    switch (o->kind) {
    case OPT_STRING: {
        const char *value = *(const char **)o->target;
        if (value) printf(" (default: %s)", value);
        break;
    }
    case OPT_SIZE: printf(" (default: %zu)", *(size_t *)o->target); break;
    case OPT_U64: printf(" (default: %llu)", (unsigned long long)*(uint64_t *)o->target); break;
    case OPT_DOUBLE: printf(" (default: %g)", *(double *)o->target); break;
    case OPT_FLAG: break;
    case OPT_FIELD: {
        const cli_field_target *t = o->target;
        char value[64];
        cm_field_format_plain(value, sizeof value, t->field, t->base);
        printf(" (default: %s)", value);
        break;
    }
    case OPT_LIST: {
        const cli_list *list = o->target;
        if (list->count) {
            printf(" (default: ");
            for (size_t i = 0; i < list->count; i++) printf("%s%g", i ? "," : "", list->values[i]);
            printf(")");
        }
        break;
    }
    }
}

/* Option names compare with '_' and '-' as one character (a field's key is its flag). */
static int same_name(const char *name, const char *given, size_t length) {
    for (size_t i = 0; i < length; i++) {
        char a = name[i] == '_' ? '-' : name[i], b = given[i] == '_' ? '-' : given[i];
        if (a != b || a == '\0') return 0;
    }
    return name[length] == '\0';
}

/* "--name" with '-' for '_' into out[capacity]. */
static void flag_text(char *out, size_t capacity, const char *name) {
    snprintf(out, capacity, "--%s", name);
    for (char *p = out; *p; p++)
        if (*p == '_') *p = '-';
}

static void print_help(const cli_option *options, size_t count, const char *command,
                       const char *summary) {
    printf("usage: cm %s [options]\n\n%s\n\noptions:\n", command, summary);
    for (size_t i = 0; i < count; i++) {
        const cli_option *o = &options[i];
        const char *value = o->kind == OPT_FLAG     ? ""
                            : o->kind == OPT_STRING ? " TEXT"
                            : o->kind == OPT_LIST   ? " A,B,..."
                            : o->kind == OPT_FIELD &&
                                      ((const cli_field_target *)o->target)->field->kind ==
                                          CM_FIELD_ENUM
                                ? " NAME"
                                : " N";
        char left[64], flag[48];
        flag_text(flag, sizeof flag, o->name);
        snprintf(left, sizeof left, "%s%s", flag, value);
        printf("  %-22s %s%s", left, o->help, o->required ? " [required]" : "");
        print_default(o);
        printf("\n");
    }
    printf("  %-22s %s\n", "--help", "show this help");
}

static int set_value(cli_option *o, const char *value, const char *command) {
    switch (o->kind) {
    case OPT_STRING:
        if (value[0] == '\0') return cli_usage_error(command, "--%s needs a non-empty value", o->name);
        *(const char **)o->target = value;
        return CLI_OK;
    case OPT_SIZE: {
        uint64_t parsed;
        if (!parse_count(&parsed, value) || parsed > (uint64_t)CLI_SIZE_MAX ||
            (double)parsed < o->minimum)
            return cli_usage_error(command, "--%s: '%s' is not an integer in [%g, 2^40] (digits "
                                   "or e.g. 2e6)", o->name, value, o->minimum);
        *(size_t *)o->target = (size_t)parsed;
        return CLI_OK;
    }
    case OPT_U64:
        if (!parse_u64((uint64_t *)o->target, value))
            return cli_usage_error(command, "--%s: '%s' is not a non-negative 64-bit integer",
                                   o->name, value);
        return CLI_OK;
    case OPT_DOUBLE: {
        double parsed;
        if (!parse_double(&parsed, value) || parsed < o->minimum)
            return cli_usage_error(command, "--%s: '%s' is not a finite number >= %g", o->name,
                                   value, o->minimum);
        *(double *)o->target = parsed;
        return CLI_OK;
    }
    case OPT_LIST:
        if (!parse_list(o->target, value))
            return cli_usage_error(command,
                                   "--%s: '%s' is not a comma-separated list of at most %d "
                                   "positive finite numbers",
                                   o->name, value, CLI_LIST_MAX);
        return CLI_OK;
    case OPT_FIELD:
        if (cm_field_parse(((cli_field_target *)o->target)->field,
                           ((cli_field_target *)o->target)->base, value) != CM_OK)
            return cli_usage_error(command, "%s", cm_error_detail());
        return CLI_OK;
    case OPT_FLAG: break;
    }
    return CLI_OK;
}

int cli_parse(int argc, char **argv, int first, cli_option *options, size_t count,
              const char *command, const char *summary) {
    for (int i = first; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            if (cli_dist_rank() == 0) print_help(options, count, command, summary);
            return CLI_HELP_SHOWN;
        }
        if (strncmp(arg, "--", 2) != 0)
            return cli_usage_error(command, "unexpected argument '%s'", arg);
        const char *name = arg + 2, *equals = strchr(name, '=');
        size_t name_length = equals ? (size_t)(equals - name) : strlen(name);
        cli_option *o = NULL;
        for (size_t k = 0; k < count; k++)
            if (same_name(options[k].name, name, name_length)) o = &options[k];
        if (!o) return cli_usage_error(command, "unknown option '%.*s'", (int)(name_length + 2), arg);
        if (o->seen) return cli_usage_error(command, "--%s given twice", o->name);
        o->seen = 1;
        if (o->kind == OPT_FLAG) {
            if (equals) return cli_usage_error(command, "--%s takes no value", o->name);
            *(int *)o->target = 1;
            continue;
        }
        const char *value = equals ? equals + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!value) return cli_usage_error(command, "--%s needs a value", o->name);
        int status = set_value(o, value, command);
        if (status != CLI_OK) return status;
    }
    for (size_t k = 0; k < count; k++)
        if (options[k].required && !options[k].seen)
            return cli_usage_error(command, "--%s is required", options[k].name);
    return CLI_OK;
}

cm_status cli_make_directory(const char *path) {
    char buffer[4096];
    if (strlen(path) >= sizeof buffer) return cm_error_set(CM_ERR_INVALID, "path too long: %s", path);
    strcpy(buffer, path);
    for (char *p = buffer + 1; ; p++) {
        if (*p == '/' || *p == '\0') {
            char saved = *p;
            *p = '\0';
            struct stat info;
            if (stat(buffer, &info) == 0) {
                if (!S_ISDIR(info.st_mode))
                    return cm_error_set(CM_ERR_IO, "%s exists and is not a directory", buffer);
            } else if (mkdir(buffer, 0777) != 0 && errno != EEXIST) {
                return cm_error_set(CM_ERR_IO, "cannot create directory %s: %s", buffer,
                                    strerror(errno));
            }
            *p = saved;
            if (saved == '\0') break;
        }
    }
    return CM_OK;
}

double cli_seconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + 1e-9 * (double)now.tv_nsec;
}

/* The library's pool runs the batch halves of training and sampling (parallel.h); OpenBLAS gets
 * the same count for the products outside the pool (metrics, OT). If a thread cannot start, the
 * pool keeps one thread: slower, the same results. */
void cli_set_threads(size_t threads) {
    openblas_set_num_threads((int)threads);
    if (cm_parallel_set_threads(threads) != CM_OK) cm_error_clear();
}

size_t cli_field_options(cli_option *out, cli_field_target *targets, const cm_field *fields,
                         size_t count, void *base) {
    for (size_t i = 0; i < count; i++) {
        targets[i] = (cli_field_target){.field = &fields[i], .base = base};
        /* the key itself: names match with '_' read as '-' (same_name) */
        out[i] = (cli_option){.name = fields[i].flag ? fields[i].flag : fields[i].key,
                              .kind = OPT_FIELD, .target = &targets[i], .help = fields[i].help};
    }
    return count;
}

const char *cli_find_value(int argc, char **argv, int first, const char *name) {
    size_t length = strlen(name);
    for (int i = first; i < argc; i++) {
        const char *arg = argv[i];
        if (strncmp(arg, "--", 2) != 0 || strlen(arg + 2) < length ||
            !(arg[2 + length] == '=' || arg[2 + length] == '\0') ||
            !same_name(name, arg + 2, length))
            continue;
        if (arg[2 + length] == '=') return arg + 3 + length;
        if (arg[2 + length] == '\0') return i + 1 < argc ? argv[i + 1] : NULL;
    }
    return NULL;
}

int cli_option_seen(const cli_option *options, size_t count, const char *name) {
    for (size_t i = 0; i < count; i++)
        if (same_name(options[i].name, name, strlen(name))) return options[i].seen;
    return 0;
}

cm_status cli_model_path(char *out, size_t capacity, const char *given) {
    struct stat info;
    if (stat(given, &info) != 0 || !S_ISDIR(info.st_mode)) {
        if ((size_t)snprintf(out, capacity, "%s", given) >= capacity)
            return cm_error_set(CM_ERR_INVALID, "path too long: %.64s...", given);
        return CM_OK;
    }
    if ((size_t)snprintf(out, capacity, "%s/model.safetensors", given) >= capacity)
        return cm_error_set(CM_ERR_INVALID, "path too long: %.64s...", given);
    if (stat(out, &info) == 0) return CM_OK;
    char checkpoint[4096];
    snprintf(checkpoint, sizeof checkpoint, "%s/%s", given, CM_CHECKPOINT_RUN_FILE);
    if (stat(checkpoint, &info) == 0)
        return cm_error_set(CM_ERR_IO, "%s holds no model.safetensors: its run is unfinished "
                            "(finish it with cm train --resume %s, or give %s for the weights of "
                            "its last checkpoint)", given, given, checkpoint);
    return cm_error_set(CM_ERR_IO, "%s is a directory without model.safetensors (not a cm run "
                        "directory?)", given);
}

cm_status cli_model_load(cm_model *out, const char *given) {
    char path[4096];
    *out = (cm_model){0};
    CM_TRY(cli_model_path(path, sizeof path, given));
    return cm_model_load(out, path);
}

/* Characters a POSIX shell reads literally outside quotes. */
static int shell_plain(const char *text) {
    if (!text[0]) return 0;
    for (const char *p = text; *p; p++)
        if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-./:=,+@%^", *p))
            return 0;
    return 1;
}

char *cli_command_line(int argc, char **argv) {
    size_t capacity = 3;
    for (int i = 1; i < argc; i++) capacity += 4 * strlen(argv[i]) + 3; /* ' -> '\'' */
    char *out = cm_malloc(capacity, 1);
    if (!out) return NULL;
    size_t used = (size_t)snprintf(out, capacity, "cm");
    for (int i = 1; i < argc; i++) {
        out[used++] = ' ';
        if (shell_plain(argv[i])) {
            used += (size_t)snprintf(out + used, capacity - used, "%s", argv[i]);
            continue;
        }
        out[used++] = '\'';
        for (const char *p = argv[i]; *p; p++) {
            if (*p == '\'') {
                memcpy(out + used, "'\\''", 4);
                used += 4;
            } else {
                out[used++] = *p;
            }
        }
        out[used++] = '\'';
    }
    out[used] = '\0';
    return out;
}

void cli_progress_start(cli_progress *p, const char *label, int enabled) {
    *p = (cli_progress){.label = label, .start = cli_seconds(), .enabled = enabled && isatty(2)};
}

void cli_progress_update(cli_progress *p, size_t done, size_t total) {
    if (!p->enabled || total == 0) return;
    double elapsed = cli_seconds() - p->start;
    if (elapsed < 0.25 || (elapsed - p->last_print < 0.2 && done < total)) return;
    double rate = elapsed > 0 ? (double)done / elapsed : 0.0;
    double eta = rate > 0 ? (double)(total - done) / rate : 0.0;
    int width = 30, filled = (int)(width * (double)done / (double)total);
    fprintf(stderr, "\r%s [%.*s%*s] %zu/%zu  %.3g/s  ETA %d:%02d ", p->label, filled,
            "##############################", width - filled, "", done, total, rate,
            (int)eta / 60, (int)eta % 60);
    p->last_print = elapsed;
    p->shown = 1;
}

void cli_progress_finish(cli_progress *p) {
    if (p->shown) fprintf(stderr, "\n");
    p->shown = 0;
}
