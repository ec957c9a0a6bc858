/* cmd_export.c: `cm export`: a trained consistency model as one dependency-free C99 file and its
 * header (export.h, docs/export.md): NAME.c and NAME.h beside it, symbols prefixed by --prefix
 * (default NAME), weights as --dtype f32, f16 or int8. The export itself is the library's
 * (src/model/export.c and the network types' export_c); this file parses and reports. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cm/alloc.h"
#include "cm/export.h"
#include "cm/model.h"

/* The default prefix: OUT's base name without ".c" if it is a C identifier, else NULL. */
static int default_prefix(char *out, size_t capacity, const char *path) {
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    size_t length = strlen(base) - 2; /* ".c", checked by the caller */
    if (length == 0 || length >= capacity) return 0;
    memcpy(out, base, length);
    out[length] = '\0';
    if (!(out[0] == '_' || (out[0] >= 'a' && out[0] <= 'z') || (out[0] >= 'A' && out[0] <= 'Z')))
        return 0;
    for (size_t i = 0; i < length; i++)
        if (!(out[i] == '_' || (out[i] >= 'a' && out[i] <= 'z') || (out[i] >= 'A' && out[i] <= 'Z') ||
              (out[i] >= '0' && out[i] <= '9')))
            return 0;
    return 1;
}

int cmd_export(int argc, char **argv) {
    const char *command = "export";
    const char *model_path = NULL, *out = NULL, *prefix = NULL, *dtype_name = "f32";
    int quiet = 0;
    cli_option options[] = {
        {"model", OPT_STRING, &model_path, "model file (DIR/model.safetensors)", 0, 1, 0},
        {"out", OPT_STRING, &out, "output source NAME.c (NAME.h is written beside it)", 0, 1, 0},
        {"prefix", OPT_STRING, &prefix, "prefix of every symbol (default: NAME, if a C identifier)", 0, 0, 0},
        {"dtype", OPT_STRING, &dtype_name, "weights: f32 | f16 | int8 (per-output-channel scales)", 0, 0, 0},
        {"quiet", OPT_FLAG, &quiet, "print nothing on success", 0, 0, 0},
    };
    int parsed = cli_parse(argc, argv, 2, options, sizeof options / sizeof options[0], command,
                           "Write a trained consistency model as one C99 file that compiles with\n"
                           "`cc -O2 -c` and links with -lm alone: weights, transform, network and\n"
                           "cm's sampler, drawing the samples of `cm sample` for the same seed\n"
                           "(docs/export.md). dsm models (denoisers) are not exported.");
    if (parsed != CLI_OK) return parsed;
    size_t length = strlen(out);
    if (length < 3 || strcmp(out + length - 2, ".c") != 0)
        return cli_usage_error(command, "--out %s: give a file name ending in .c", out);
    char default_name[64];
    if (!prefix && !default_prefix(default_name, sizeof default_name, out))
        return cli_usage_error(command, "--out %s: its name is not a C identifier; give --prefix",
                               out);
    cm_export_options o = {.prefix = prefix ? prefix : default_name, .model_name = model_path};
    if (cm_export_dtype_parse(&o.dtype, dtype_name) != CM_OK)
        return cli_usage_error(command, "%s", cm_error_detail());
    char *header_path = cm_malloc(length + 1, 1);
    if (!header_path) return cli_fail(command, cm_error_set(CM_ERR_NOMEM, "header path"));
    memcpy(header_path, out, length + 1);
    header_path[length - 1] = 'h';
    const char *slash = strrchr(header_path, '/');
    o.header_name = slash ? slash + 1 : header_path;
    cm_model model;
    cm_status status = cm_model_load(&model, model_path);
    if (status != CM_OK) {
        cm_free(header_path);
        return cli_fail(command, status);
    }
    cm_export_summary summary;
    status = cm_export_write(&summary, &model, &o, out, header_path);
    if (status == CM_OK && !quiet)
        fprintf(stderr, "cm export: %s and %s: %s %s model, %zu parameters as %s (%zu stored "
                "values), workspace %zu bytes, prefix %s\n", out, header_path,
                cm_method_name(model.config.method.kind), model.config.network.type->name,
                summary.param_count, cm_export_dtype_name(o.dtype), summary.stored_values,
                summary.workspace_bytes, o.prefix);
    cm_model_free(&model);
    cm_free(header_path);
    return status == CM_OK ? CLI_OK : cli_fail(command, status);
}
