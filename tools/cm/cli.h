/* cli.h: what every subcommand of the cm tool shares: a table-driven option parser with
 * --help generated from the table, number parsing that refuses garbage, NaN and out-of-range
 * values, and the mapping of library statuses to messages and exit codes
 * (0 ok, 1 runtime error, 2 usage error).
 */
#ifndef CM_CLI_H
#define CM_CLI_H

#include <stddef.h>
#include <stdint.h>

#include "cm/field.h"
#include "cm/model.h"
#include "cm/status.h"

enum { CLI_OK = 0, CLI_RUNTIME_ERROR = 1, CLI_USAGE_ERROR = 2, CLI_HELP_SHOWN = 3 };

typedef enum {
    OPT_STRING,   /* const char ** */
    OPT_SIZE,     /* size_t *, an integer in [minimum, 2^40]: digits or 2e6 (not 2.5) */
    OPT_U64,      /* uint64_t * */
    OPT_DOUBLE,   /* double *, finite, >= minimum */
    OPT_FLAG,     /* int *, set to 1, takes no value */
    OPT_LIST,     /* double list: cli_list * (comma-separated, finite, > 0) */
    OPT_FIELD,    /* a setting described by a cm_field (field.h): cli_field_target * */
} cli_option_kind;

#define CLI_LIST_MAX 64
#define CLI_SIZE_MAX 1099511627776.0 /* 2^40: the largest OPT_SIZE value */
typedef struct {
    double values[CLI_LIST_MAX];
    size_t count;
} cli_list;

typedef struct {
    const char *name;  /* without the leading "--" */
    cli_option_kind kind;
    void *target;
    const char *help;  /* one line; the default is printed from the target's initial value */
    double minimum;    /* OPT_SIZE / OPT_DOUBLE lower bound (inclusive) */
    int required;
    int seen;          /* set by the parser */
} cli_option;

/* The target of an OPT_FIELD option: the setting and the struct its offset refers to. */
typedef struct {
    const cm_field *field;
    void *base;
} cli_field_target;

/* Parse argv[first..argc) against options[count]. Prints the error (or the help) itself and
 * returns CLI_OK, CLI_USAGE_ERROR or CLI_HELP_SHOWN. */
int cli_parse(int argc, char **argv, int first, cli_option *options, size_t count,
              const char *command, const char *summary);

/* Options for every field of a table (flag, help and default from the field), with `base` the
 * struct the offsets refer to, into out[] and their targets into targets[] (which must live as
 * long as the options). Returns the count. */
size_t cli_field_options(cli_option *out, cli_field_target *targets, const cm_field *fields,
                         size_t count, void *base);
/* The value of `name` given as --name VALUE or --name=VALUE in argv[first..argc), or NULL (the
 * first occurrence; cli_parse later refuses a repeated option). */
const char *cli_find_value(int argc, char **argv, int first, const char *name);

/* 1 if the option named `name` (without "--") was given on the command line (after cli_parse). */
int cli_option_seen(const cli_option *options, size_t count, const char *name);

/* Print "cm <command>: error: <status name>: <detail>" to stderr and return the exit code. */
int cli_fail(const char *command, cm_status status);
/* Print "cm <command>: error: <formatted message>" and return CLI_USAGE_ERROR. */
int cli_usage_error(const char *command, const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ---- Model arguments: every --model (and cm info, cm train --teacher-model, --init-from) takes
 * a model file or a run directory DIR, read as DIR/model.safetensors. */

/* The file a model argument names into out[capacity]: `given` itself, or DIR/model.safetensors
 * for a directory (CM_ERR_IO naming the directory, and its checkpoint if the run is unfinished,
 * when that file is missing). */
cm_status cli_model_path(char *out, size_t capacity, const char *given);
/* cm_model_load of the file cli_model_path names. */
cm_status cli_model_load(cm_model *out, const char *given);

/* The command line "cm ARG1 ARG2 ..." (argv[1..argc)), each argument quoted for a POSIX shell
 * when it needs it, so that pasting it runs the same command; cm_malloc'ed (cm_free), or NULL
 * when out of memory. */
char *cli_command_line(int argc, char **argv);

/* A progress bar on stderr for a long operation: shown only when `enabled` and stderr is a
 * terminal, redrawn at most every 0.2 s, first after 0.25 s (short operations print nothing). */
typedef struct {
    const char *label;
    double start, last_print;
    int enabled, shown;
} cli_progress;
void cli_progress_start(cli_progress *progress, const char *label, int enabled);
void cli_progress_update(cli_progress *progress, size_t done, size_t total);
/* End the bar's line (if one was drawn). */
void cli_progress_finish(cli_progress *progress);

/* Create a directory (and its parents) if missing; error if a non-directory is in the way. */
cm_status cli_make_directory(const char *path);
/* Seconds on a monotonic clock. */
double cli_seconds(void);
/* Set the number of BLAS threads (1..64). */
void cli_set_threads(size_t threads);

int cmd_train(int argc, char **argv);
int cmd_sample(int argc, char **argv);
/* tools/cm/cmd_export.c */
int cmd_export(int argc, char **argv);
int cmd_data(int argc, char **argv);
int cmd_eval(int argc, char **argv);
/* tools/cm/cmd_info.c: cm info MODEL_OR_DIR */
int cmd_info(int argc, char **argv);
int cmd_nfe(int argc, char **argv);
int cmd_theory(int argc, char **argv);
/* tools/cm/cmd_theory_learned.c: cm theory learned | bound | network */
int cmd_theory_learned(int argc, char **argv);
int cmd_theory_bound(int argc, char **argv);
int cmd_theory_network(int argc, char **argv);
/* tools/cm/cmd_sweep.c */
int cmd_sweep(int argc, char **argv);
/* tools/cm/cmd_classifier.c: cm classifier train | test */
int cmd_classifier(int argc, char **argv);

#endif
