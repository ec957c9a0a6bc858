/* cmd_info.c: `cm info MODEL_OR_DIR`: what a model file, a checkpoint or a run directory holds:
 * method, network (type, settings, parameter count), data source and dimension, steps trained,
 * noise range or chain, standardising transform, file format version, the command line that
 * trained it (metadata "cm.command" of a model, "cm.cli.command" of a checkpoint; "not recorded"
 * for files written before cm recorded it) and an FNV-1a 64 fingerprint of the weights, so two
 * files can be compared by their weights alone. Text, or one JSON object with --json.
 * It reads the file once and changes nothing; it does not validate a checkpoint's training state
 * (cm train --resume does).
 */
#include <cJSON.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "cm/alloc.h"
#include "cm/checkpoint.h"
#include "cm/io.h"
#include "cm/model.h"
#include "cm/train.h"

#define INFO_TRANSFORM_SHOWN 4 /* coordinates of the transform printed before "..." */

/* What cm info found. */
typedef struct {
    char path[4096];
    const char *kind;         /* "model" or "checkpoint" */
    const char *version;      /* cm.format_version */
    const char *command;      /* NULL: not recorded */
    size_t step;              /* steps done (a model: its config's steps) */
    int unfinished;
    uint64_t fingerprint;
    cm_model model;
} info_record;

/* The file an argument names: a file; for a directory its model, else its checkpoint. */
static cm_status info_path(char *out, size_t capacity, const char *given) {
    struct stat st;
    if (stat(given, &st) == 0 && S_ISDIR(st.st_mode)) {
        snprintf(out, capacity, "%s/%s", given, CM_CHECKPOINT_RUN_FILE);
        char model[4096];
        snprintf(model, sizeof model, "%s/model.safetensors", given);
        if (stat(model, &st) != 0 && stat(out, &st) == 0) return CM_OK; /* an unfinished run */
    }
    return cli_model_path(out, capacity, given);
}

static uint64_t weights_fingerprint(const cm_model *model) {
    uint64_t hash = 14695981039346656037ull; /* FNV-1a 64 */
    const unsigned char *bytes = (const unsigned char *)model->params;
    for (size_t i = 0; i < cm_model_param_count(model) * sizeof(float); i++) {
        hash ^= bytes[i];
        hash *= 1099511628211ull;
    }
    return hash;
}

static cm_status info_read(info_record *r, const char *given) {
    CM_TRY(info_path(r->path, sizeof r->path, given));
    cm_safetensors *file = NULL;
    CM_TRY(cm_safetensors_read(&file, r->path));
    cm_status status = cm_model_from_file(&r->model, file, r->path);
    if (status != CM_OK) {
        cm_safetensors_free(file);
        return status;
    }
    /* the metadata strings are copied out: the file is freed here */
    static char version[16], command[65536];
    const char *step_text = cm_safetensors_metadata(file, "cm.checkpoint.step");
    const char *stored = cm_safetensors_metadata(file, step_text ? "cm.cli.command" : "cm.command");
    snprintf(version, sizeof version, "%s", cm_safetensors_metadata(file, "cm.format_version"));
    if (stored) snprintf(command, sizeof command, "%s", stored);
    r->version = version;
    r->command = stored ? command : NULL;
    r->kind = step_text ? "checkpoint" : "model";
    r->step = step_text ? (size_t)strtoull(step_text, NULL, 10) : r->model.config.steps;
    r->unfinished = r->step < r->model.config.steps;
    r->fingerprint = weights_fingerprint(&r->model);
    cm_safetensors_free(file);
    return CM_OK;
}

/* "width 256, depth 3, ..." from the network type's field table. */
static void network_settings(char *out, size_t capacity, const cm_network_config *net) {
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < net->type->option_count && used < capacity; i++) {
        char value[64];
        cm_field_format_plain(value, sizeof value, &net->type->options[i],
                              cm_network_options_const(net));
        used += (size_t)snprintf(out + used, capacity - used, "%s%s %s", i ? ", " : "",
                                 net->type->options[i].key, value);
    }
}

/* The noise levels the model knows, as a person reads them. */
static void noise_range(char *out, size_t capacity, const cm_model *model) {
    const cm_method_config *c = &model->config.method;
    switch (c->kind) {
    case CM_METHOD_LHW:
        snprintf(out, capacity, "VP chain T = %zu (c0 %g, c1 %g): sigma_1 = %.4g .. sigma_T = "
                 "%.6g; one step starts at t = T; --sigmas up to %.6g or --times up to %zu",
                 c->chain_T, c->c0, c->c1, model->schedule.sigma[1], model->schedule.sigma[c->chain_T],
                 model->schedule.sigma[c->chain_T], c->chain_T);
        break;
    case CM_METHOD_DSM:
        snprintf(out, capacity, "a denoiser trained on log sigma ~ N(%g, %g^2); samplers run from "
                 "sigma_max %g to sigma_min %g (Karras rho %g), then 0", c->dsm_p_mean,
                 c->dsm_p_std, c->sigma_max, c->sigma_min, c->rho);
        break;
    case CM_METHOD_CD:
    case CM_METHOD_CD2:
        snprintf(out, capacity, "distilled on %zu Karras levels (rho %g) from sigma_min %g to "
                 "sigma_max %g; --sigmas up to %g, on those levels", c->cd_levels, c->rho,
                 c->sigma_min, c->sigma_max, c->sigma_max);
        break;
    default:
        snprintf(out, capacity, "sigma_min %g to sigma_max %g (Karras rho %g); one step starts at "
                 "%g; --sigmas up to %g", c->sigma_min, c->sigma_max, c->rho, c->sigma_max,
                 c->sigma_max);
    }
}

/* "(x - shift) / scale: shift [..], scale [..]" (the first coordinates). */
static void transform_text(char *out, size_t capacity, const cm_transform *t) {
    int fixed = 1;
    for (size_t i = 0; i < t->dim; i++) fixed &= t->shift[i] == 0.5 && t->scale[i] == 0.5;
    if (fixed) {
        snprintf(out, capacity, "fixed: x_model = (x - 0.5) / 0.5 (pixels [0, 1] -> [-1, 1])");
        return;
    }
    size_t used = (size_t)snprintf(out, capacity, "x_model = (x - shift) / scale; shift");
    for (size_t part = 0; part < 2; part++) {
        const double *v = part ? t->scale : t->shift;
        if (part) used += (size_t)snprintf(out + used, capacity - used, "; scale");
        for (size_t i = 0; i < t->dim && i < INFO_TRANSFORM_SHOWN && used < capacity; i++)
            used += (size_t)snprintf(out + used, capacity - used, " %.6g", v[i]);
        if (t->dim > INFO_TRANSFORM_SHOWN && used < capacity)
            used += (size_t)snprintf(out + used, capacity - used, " ... (%zu values)", t->dim);
    }
}

static void print_text(const info_record *r) {
    const cm_model *m = &r->model;
    const cm_train_config *c = &m->config;
    const cm_network_config *net = &c->network;
    char settings[1024], noise[512], transform[1024];
    network_settings(settings, sizeof settings, net);
    noise_range(noise, sizeof noise, m);
    transform_text(transform, sizeof transform, &m->transform);
    printf("file       %s (%s, format %s)\n", r->path, r->kind, r->version);
    printf("method     %s: %s\n", cm_method_name(c->method.kind), cm_method_summary(c->method.kind));
    printf("network    %s (%s), %zu parameters\n", net->type->name, settings,
           cm_model_param_count(m));
    printf("data       %s", m->data_source[0] ? m->data_source : "(not recorded)");
    if (net->image_channels)
        printf(" (D = %zu: images %zu x %zu x %zu)\n", net->dim, net->image_channels,
               net->image_height, net->image_width);
    else
        printf(" (D = %zu)\n", net->dim);
    printf("steps      %zu of %zu%s (batch %zu in %zu blocks, seed %" PRIu64 ")\n", r->step,
           c->steps, r->unfinished ? ", unfinished: cm train --resume DIR finishes it" : "",
           c->batch, c->blocks, c->seed);
    printf("noise      %s\n", noise);
    printf("transform  %s\n", transform);
    printf("command    %s\n", r->command ? r->command : "not recorded (a file written before cm "
                                                        "recorded commands)");
    printf("weights    FNV-1a 64 %016" PRIx64 " (of the float32 weights; equal weights, equal "
           "value)\n", r->fingerprint);
}

static cm_status print_json(const info_record *r) {
    const cm_model *m = &r->model;
    const cm_train_config *c = &m->config;
    cJSON *root = cJSON_CreateObject(), *network = cJSON_CreateObject();
    char text[64];
    cJSON_AddStringToObject(root, "file", r->path);
    cJSON_AddStringToObject(root, "kind", r->kind);
    cJSON_AddStringToObject(root, "format_version", r->version);
    cJSON_AddStringToObject(root, "method", cm_method_name(c->method.kind));
    cJSON_AddStringToObject(network, "type", c->network.type->name);
    for (size_t i = 0; i < c->network.type->option_count; i++) {
        const cm_field *f = &c->network.type->options[i];
        cm_field_format(text, sizeof text, f, cm_network_options_const(&c->network));
        cJSON *value = cJSON_Parse(text);
        if (value) cJSON_AddItemToObject(network, f->key, value);
    }
    cJSON_AddItemToObject(root, "network", network);
    cJSON_AddNumberToObject(root, "parameters", (double)cm_model_param_count(m));
    cJSON_AddStringToObject(root, "data", m->data_source);
    cJSON_AddNumberToObject(root, "dim", (double)c->network.dim);
    cJSON_AddNumberToObject(root, "step", (double)r->step);
    cJSON_AddNumberToObject(root, "steps", (double)c->steps);
    if (c->method.kind == CM_METHOD_LHW) {
        cJSON_AddNumberToObject(root, "chain_T", (double)c->method.chain_T);
        cJSON_AddNumberToObject(root, "sigma_T", m->schedule.sigma[c->method.chain_T]);
    } else {
        cJSON_AddNumberToObject(root, "sigma_min", c->method.sigma_min);
        cJSON_AddNumberToObject(root, "sigma_max", c->method.sigma_max);
    }
    cJSON *shift = cJSON_CreateDoubleArray(m->transform.shift, (int)m->transform.dim);
    cJSON *scale = cJSON_CreateDoubleArray(m->transform.scale, (int)m->transform.dim);
    cJSON_AddItemToObject(root, "transform_shift", shift);
    cJSON_AddItemToObject(root, "transform_scale", scale);
    if (r->command) cJSON_AddStringToObject(root, "command", r->command);
    else cJSON_AddNullToObject(root, "command");
    snprintf(text, sizeof text, "%016" PRIx64, r->fingerprint);
    cJSON_AddStringToObject(root, "weights_fnv1a", text);
    char *json = cJSON_PrintUnformatted(root);
    cJSON_Delete(root);
    if (!json) return cm_error_set(CM_ERR_NOMEM, "JSON output");
    printf("%s\n", json);
    cJSON_free(json);
    return CM_OK;
}

int cmd_info(int argc, char **argv) {
    const char *command = "info";
    const char *model_path = NULL;
    int json = 0;
    cli_option options[] = {
        {"model", OPT_STRING, &model_path, "model file, checkpoint, or run directory (also as the first argument)", 0, 0, 0},
        {"json", OPT_FLAG, &json, "one JSON object instead of text", 0, 0, 0},
    };
    int first = 2;
    if (argc > 2 && strncmp(argv[2], "-", 1) != 0) model_path = argv[first++];
    int parsed = cli_parse(argc, argv, first, options, sizeof options / sizeof options[0], command,
                           "What a model file, a checkpoint or a run directory (its\n"
                           "model.safetensors, else its checkpoint) holds: method, network, data,\n"
                           "steps, noise range, transform, format version, the command that trained\n"
                           "it and a fingerprint of its weights.\n"
                           "usage: cm info MODEL_OR_DIR [--json]");
    if (parsed != CLI_OK) return parsed;
    if (!model_path) return cli_usage_error(command, "give a model file or run directory");
    if (first == 3 && cli_option_seen(options, 2, "model"))
        return cli_usage_error(command, "give the model once (as an argument or with --model)");
    info_record r = {0};
    cm_status status = info_read(&r, model_path);
    if (status == CM_OK) {
        if (json) status = print_json(&r);
        else print_text(&r);
    }
    cm_model_free(&r.model);
    return status == CM_OK ? CLI_OK : cli_fail(command, status);
}
