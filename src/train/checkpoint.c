/* checkpoint.c: training checkpoints as safetensors (format in checkpoint.h, byte by byte in
 * docs/checkpoints.md), validated reading, exact restore, and run directories.
 *
 * Reading trusts nothing: the file is parsed by cm_safetensors_read, the config is parsed and
 * every training tensor's shape checked against it before cm_model_load allocates the network,
 * and cm_trainer_set_state checks values (finiteness, stream keys, stage) before a trainer takes
 * them. Not done here: choosing when to save or handling signals (the CLI's job).
 */
#include "cm/checkpoint.h"

#include <cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cm/alloc.h"
#include "cm/io.h"
#include "cm/model.h"
#include "train/trainer.h"

#define CK_VERSION_KEY "cm.checkpoint.version"
#define CK_EXTRA_PREFIX "cm.cli."
#define CK_EXTRA_MAX 8         /* cm.cli.* pairs a checkpoint may carry */
#define CK_STATE_KEYS 7        /* version, step, adam_step, stage, rng, curriculum, data_file */
#define CK_PATH_MAX 4096
#define CK_STEP_FORMAT "step-%08zu.safetensors"
#define CK_NUMBER_TEXT 32      /* longest decimal or hexadecimal number we write, with slack */

/* Names of the streams of rng.h in the .rng JSON, index = cm_stream value. */
static const char *const stream_names[CM_STREAM_COUNT] = {
    NULL, "data", "level", "noise", "sample", "init", "transform", "eval",
};

/* The training tensors, in file order; "train.target" only for methods with a target. */
enum { TENSOR_PARAMS, TENSOR_ADAM_M, TENSOR_ADAM_V, TENSOR_TARGET, TENSOR_COUNT };
static const char *const tensor_names[TENSOR_COUNT] = {
    "train.params", "train.adam.m", "train.adam.v", "train.target",
};

struct cm_checkpoint {
    cm_model model;             /* config, evaluation weights, transform, data source */
    cm_safetensors *file;       /* training tensors and metadata */
    cm_trainer_state state;     /* pointers into model and file */
    int has_data_file;          /* file data: rows, cols and hash of the values */
    uint64_t data_rows, data_cols, data_hash;
    char *path;                 /* for error details */
};

/* N(k) and mu(k) of step k (ct, ict), the stage (lhw sequential) or T (lhw online): the
 * method table's curriculum. */
static void curriculum_at(const cm_train_config *c, size_t k, size_t *levels, double *decay) {
    cm_curriculum curriculum = cm_method_entry_of(c->method.kind)->curriculum(c, k);
    *levels = curriculum.levels;
    *decay = curriculum.target_decay;
}

uint64_t cm_checkpoint_data_hash(const cm_data *data) { return cm_data_fingerprint(data); }

/* ---------------------------------------------------------------- writing */

/* Growing text buffer for the JSON values of the metadata; `failed` records a lost append. */
typedef struct {
    char *text;
    size_t used, capacity;
    int failed;
} text_buffer;

static void append(text_buffer *b, const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static void append(text_buffer *b, const char *format, ...) {
    if (b->failed) return;
    for (int attempt = 0; attempt < 2; attempt++) {
        va_list args;
        va_start(args, format);
        int length = vsnprintf(b->text ? b->text + b->used : NULL,
                               b->text ? b->capacity - b->used : 0, format, args);
        va_end(args);
        if (length < 0) break;
        if (b->text && b->used + (size_t)length < b->capacity) {
            b->used += (size_t)length;
            return;
        }
        size_t capacity = 2 * (b->used + (size_t)length + 1);
        char *bigger = cm_malloc(capacity, 1);
        if (!bigger) break;
        if (b->text) memcpy(bigger, b->text, b->used + 1);
        cm_free(b->text);
        b->text = bigger;
        b->capacity = capacity;
    }
    b->failed = 1;
}

/* {"data": {"key": [k0, k1], "position": "p", "spare": null | "0x1.8p+0"}, ...} */
static void rng_json(text_buffer *b, const cm_rng *streams) {
    append(b, "{");
    for (int s = 1; s < CM_STREAM_COUNT; s++) {
        const cm_rng *r = &streams[s];
        append(b, "%s\"%s\": {\"key\": [%lu, %lu], \"position\": \"%llu\", \"spare\": ",
               s > 1 ? ", " : "", stream_names[s], (unsigned long)r->key[0],
               (unsigned long)r->key[1], (unsigned long long)r->position);
        if (r->has_spare) append(b, "\"%a\"}", r->spare_normal);
        else append(b, "null}");
    }
    append(b, "}");
}

static cm_status check_extras(const char *path, const char *const *keys,
                              const char *const *values, size_t count) {
    if (count > CK_EXTRA_MAX)
        return cm_error_set(CM_ERR_INVALID, "%s: %zu extra metadata pairs (at most %d)", path,
                            count, CK_EXTRA_MAX);
    for (size_t i = 0; i < count; i++)
        if (!keys[i] || !values[i] || strncmp(keys[i], CK_EXTRA_PREFIX, strlen(CK_EXTRA_PREFIX)))
            return cm_error_set(CM_ERR_INVALID, "%s: extra metadata key %zu must start with %s",
                                path, i, CK_EXTRA_PREFIX);
    return CM_OK;
}

/* The training state's metadata values: counters, streams, curriculum, data file identity. */
typedef struct {
    char ck_version[CK_NUMBER_TEXT], step[CK_NUMBER_TEXT], adam_step[CK_NUMBER_TEXT],
        stage[CK_NUMBER_TEXT];
    text_buffer rng, curriculum, data_file;
} state_text;

static void state_text_free(state_text *t) {
    cm_free(t->rng.text);
    cm_free(t->curriculum.text);
    cm_free(t->data_file.text);
}

static int state_text_make(state_text *t, const cm_trainer_state *s, const cm_train_config *c,
                           const cm_data *data) {
    size_t levels;
    double decay;
    curriculum_at(c, s->step, &levels, &decay);
    snprintf(t->ck_version, sizeof t->ck_version, "%d", CM_CHECKPOINT_VERSION);
    snprintf(t->step, sizeof t->step, "%zu", s->step);
    snprintf(t->adam_step, sizeof t->adam_step, "%zu", s->adam_step);
    snprintf(t->stage, sizeof t->stage, "%zu", s->stage);
    rng_json(&t->rng, s->streams);
    append(&t->curriculum, "{\"levels\": %zu, \"target_decay\": %.17g}", levels, decay);
    if (cm_data_rows(data))
        append(&t->data_file, "{\"rows\": %zu, \"cols\": %zu, \"fnv1a64\": \"%016llx\"}",
               cm_data_rows(data), cm_data_dim(data),
               (unsigned long long)cm_checkpoint_data_hash(data));
    return !t->rng.failed && !t->curriculum.failed && !t->data_file.failed;
}

cm_status cm_checkpoint_save(const char *path, cm_trainer *trainer, const char *const *extra_keys,
                             const char *const *extra_values, size_t extra_count) {
    CM_TRY(check_extras(path, extra_keys, extra_values, extra_count));
    cm_trainer_state s;
    cm_trainer_get_state(&s, trainer);
    const cm_model *model = cm_trainer_model(trainer);
    size_t model_tensors = cm_network_tensor_count(model->network), count = 0;
    cm_tensor_view *tensors = cm_malloc(model_tensors + TENSOR_COUNT, sizeof *tensors);
    if (!tensors) return cm_error_set(CM_ERR_NOMEM, "%s: tensor list", path);
    for (; count < model_tensors; count++) tensors[count] = cm_model_tensor(model, model->params, count);
    const float *blocks[TENSOR_COUNT] = {s.params, s.adam_m, s.adam_v, s.target};
    for (int t = 0; t < TENSOR_COUNT; t++)
        if (blocks[t])
            tensors[count++] = (cm_tensor_view){.name = tensor_names[t], .ndim = 1,
                                                .shape = {s.param_count}, .data = blocks[t]};
    cm_model_metadata metadata;
    state_text text = {0};
    cm_status status = cm_model_metadata_make(&metadata, model);
    if (status == CM_OK && !state_text_make(&text, &s, &model->config, cm_trainer_data(trainer)))
        status = cm_error_set(CM_ERR_NOMEM, "%s: cannot build the metadata", path);
    if (status == CM_OK) {
        const char *keys[CM_MODEL_METADATA_COUNT + CK_STATE_KEYS + CK_EXTRA_MAX];
        const char *values[CM_MODEL_METADATA_COUNT + CK_STATE_KEYS + CK_EXTRA_MAX];
        size_t n = 0;
        for (; n < CM_MODEL_METADATA_COUNT; n++) keys[n] = metadata.keys[n], values[n] = metadata.values[n];
        const char *state_keys[] = {CK_VERSION_KEY, "cm.checkpoint.step", "cm.checkpoint.adam_step",
                                    "cm.checkpoint.stage", "cm.checkpoint.rng",
                                    "cm.checkpoint.curriculum"};
        const char *state_values[] = {text.ck_version, text.step, text.adam_step, text.stage,
                                      text.rng.text, text.curriculum.text};
        for (size_t i = 0; i < sizeof state_keys / sizeof state_keys[0]; i++)
            keys[n] = state_keys[i], values[n++] = state_values[i];
        if (text.data_file.text) keys[n] = "cm.checkpoint.data_file", values[n++] = text.data_file.text;
        for (size_t i = 0; i < extra_count; i++) keys[n] = extra_keys[i], values[n++] = extra_values[i];
        status = cm_safetensors_write(path, tensors, count, keys, values, n);
    }
    cm_model_metadata_free(&metadata);
    state_text_free(&text);
    cm_free(tensors);
    return status;
}

/* ---------------------------------------------------------------- reading */

void cm_checkpoint_free(cm_checkpoint *ck) {
    if (!ck) return;
    cm_model_free(&ck->model);
    cm_safetensors_free(ck->file);
    cm_free(ck->path);
    cm_free(ck);
}

const cm_train_config *cm_checkpoint_config(const cm_checkpoint *ck) { return &ck->model.config; }
size_t cm_checkpoint_step(const cm_checkpoint *ck) { return ck->state.step; }
const char *cm_checkpoint_data_source(const cm_checkpoint *ck) { return ck->model.data_source; }
const char *cm_checkpoint_metadata(const cm_checkpoint *ck, const char *key) {
    return cm_safetensors_metadata(ck->file, key);
}

/* A decimal integer of digits only, at most `max`; 0 when it is not one. */
static int parse_decimal(uint64_t *out, const char *text, uint64_t max) {
    uint64_t value = 0;
    if (!text || !*text) return 0;
    for (const char *c = text; *c; c++) {
        if (*c < '0' || *c > '9') return 0;
        uint64_t digit = (uint64_t)(*c - '0');
        if (value > (max - digit) / 10) return 0;
        value = value * 10 + digit;
    }
    *out = value;
    return 1;
}

/* Metadata value `key` as a decimal integer in [0, max]. */
static cm_status metadata_count(uint64_t *out, const cm_safetensors *file, const char *key,
                                uint64_t max, const char *path) {
    const char *text = cm_safetensors_metadata(file, key);
    if (!text) return cm_error_set(CM_ERR_FORMAT, "%s: metadata %s missing", path, key);
    if (!parse_decimal(out, text, max))
        return cm_error_set(CM_ERR_FORMAT, "%s: metadata %s = '%.32s' is not an integer in "
                            "[0, %llu]", path, key, text, (unsigned long long)max);
    return CM_OK;
}

/* Metadata value `key` parsed as a JSON object (NULL with a status when absent or not one). */
static cm_status metadata_json(cJSON **out, const cm_safetensors *file, const char *key,
                               const char *path) {
    *out = NULL;
    const char *text = cm_safetensors_metadata(file, key);
    if (!text) return cm_error_set(CM_ERR_FORMAT, "%s: metadata %s missing", path, key);
    cJSON *root = cJSON_Parse(text);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return cm_error_set(CM_ERR_FORMAT, "%s: metadata %s is not a JSON object", path, key);
    }
    *out = root;
    return CM_OK;
}

/* A JSON number that is an integer in [0, max] (max <= 2^53, where doubles are exact). */
static int json_integer(uint64_t *out, const cJSON *item, double max) {
    if (!cJSON_IsNumber(item)) return 0;
    double value = item->valuedouble;
    if (!(value >= 0 && value <= max) || floor(value) != value) return 0;
    *out = (uint64_t)value;
    return 1;
}

/* One stream {"key": [k0, k1], "position": "p", "spare": null | "hex float"}. */
static int read_stream(cm_rng *out, const cJSON *stream) {
    const cJSON *key = cJSON_GetObjectItemCaseSensitive(stream, "key");
    const cJSON *position = cJSON_GetObjectItemCaseSensitive(stream, "position");
    const cJSON *spare = cJSON_GetObjectItemCaseSensitive(stream, "spare");
    uint64_t k0, k1, p;
    if (!cJSON_IsArray(key) || cJSON_GetArraySize(key) != 2 ||
        !json_integer(&k0, cJSON_GetArrayItem(key, 0), UINT32_MAX) ||
        !json_integer(&k1, cJSON_GetArrayItem(key, 1), UINT32_MAX) ||
        !cJSON_IsString(position) || !parse_decimal(&p, position->valuestring, UINT64_MAX))
        return 0;
    *out = (cm_rng){.key = {(uint32_t)k0, (uint32_t)k1}, .position = p};
    if (cJSON_IsNull(spare)) return 1;
    if (!cJSON_IsString(spare)) return 0;
    char *end;
    out->spare_normal = strtod(spare->valuestring, &end);
    out->has_spare = 1;
    return end != spare->valuestring && *end == '\0' && isfinite(out->spare_normal);
}

static cm_status read_streams(cm_checkpoint *ck, const char *path) {
    cJSON *root;
    CM_TRY(metadata_json(&root, ck->file, "cm.checkpoint.rng", path));
    cm_status status = CM_OK;
    for (int s = 1; s < CM_STREAM_COUNT && status == CM_OK; s++) {
        const cJSON *stream = cJSON_GetObjectItemCaseSensitive(root, stream_names[s]);
        if (!cJSON_IsObject(stream) || !read_stream(&ck->state.streams[s], stream))
            status = cm_error_set(CM_ERR_FORMAT, "%s: random stream \"%s\" missing or malformed "
                                  "in cm.checkpoint.rng", path, stream_names[s]);
    }
    cJSON_Delete(root);
    return status;
}

/* The stored N(k), mu(k) of the next step must be what this build computes from the config:
 * otherwise the curricula changed since the run was saved and it cannot continue exactly. */
static cm_status check_curriculum(const cm_checkpoint *ck, const char *path) {
    cJSON *root;
    CM_TRY(metadata_json(&root, ck->file, "cm.checkpoint.curriculum", path));
    const cJSON *levels = cJSON_GetObjectItemCaseSensitive(root, "levels");
    const cJSON *decay = cJSON_GetObjectItemCaseSensitive(root, "target_decay");
    size_t want_levels;
    double want_decay;
    curriculum_at(&ck->model.config, ck->state.step, &want_levels, &want_decay);
    uint64_t stored_levels = 0;
    int ok = json_integer(&stored_levels, levels, 1e15) && cJSON_IsNumber(decay);
    double stored_decay = ok ? decay->valuedouble : 0.0;
    cJSON_Delete(root);
    if (!ok) return cm_error_set(CM_ERR_FORMAT, "%s: cm.checkpoint.curriculum is malformed", path);
    if (stored_levels != want_levels || stored_decay != want_decay)
        return cm_error_set(CM_ERR_FORMAT, "%s: stored curriculum (N = %llu, mu = %.17g) differs "
                            "from this build's (N = %zu, mu = %.17g) at step %zu", path,
                            (unsigned long long)stored_levels, stored_decay, want_levels,
                            want_decay, ck->state.step);
    return CM_OK;
}

/* cm.checkpoint.data_file {"rows", "cols", "fnv1a64"}: present exactly for file data. */
static cm_status read_data_file(cm_checkpoint *ck, const char *path) {
    if (!cm_safetensors_metadata(ck->file, "cm.checkpoint.data_file")) return CM_OK;
    cJSON *root;
    CM_TRY(metadata_json(&root, ck->file, "cm.checkpoint.data_file", path));
    const cJSON *hash = cJSON_GetObjectItemCaseSensitive(root, "fnv1a64");
    int ok = json_integer(&ck->data_rows, cJSON_GetObjectItemCaseSensitive(root, "rows"), 1e15) &&
             json_integer(&ck->data_cols, cJSON_GetObjectItemCaseSensitive(root, "cols"), 1e15) &&
             cJSON_IsString(hash) && strlen(hash->valuestring) == 16 &&
             strspn(hash->valuestring, "0123456789abcdef") == 16;
    if (ok) ck->data_hash = strtoull(hash->valuestring, NULL, 16);
    cJSON_Delete(root);
    if (!ok) return cm_error_set(CM_ERR_FORMAT, "%s: cm.checkpoint.data_file is malformed", path);
    ck->has_data_file = 1;
    return CM_OK;
}

/* Version, config and the training tensors' shapes: everything that bounds what
 * cm_model_from_file will allocate. Sets ck->state's tensor pointers. A version-1 checkpoint
 * (cm 0.1) is refused: its run drew the noise levels of a batch from one generator in row order,
 * this build draws each row's from its own (train.h), so it could not continue that run
 * exactly; its model part still loads with cm_model_load. */
static cm_status read_header(cm_checkpoint *ck, cm_train_config *config, const char *path) {
    const char *version = cm_safetensors_metadata(ck->file, CK_VERSION_KEY);
    if (!version)
        return cm_error_set(CM_ERR_FORMAT, "%s: not a checkpoint (no %s; a model file?)", path,
                            CK_VERSION_KEY);
    if (strcmp(version, "1") == 0)
        return cm_error_set(CM_ERR_UNSUPPORTED, "%s: a version-1 checkpoint (cm 0.1) cannot be "
                            "resumed exactly by this build, whose batches draw their noise levels "
                            "row by row; its model still samples (cm sample --model)", path);
    char expected[CK_NUMBER_TEXT];
    snprintf(expected, sizeof expected, "%d", CM_CHECKPOINT_VERSION);
    if (strcmp(version, expected) != 0)
        return cm_error_set(CM_ERR_UNSUPPORTED, "%s: checkpoint version '%.16s' (this build "
                            "reads %d)", path, version, CM_CHECKPOINT_VERSION);
    const char *config_json = cm_safetensors_metadata(ck->file, "cm.config");
    if (!config_json) return cm_error_set(CM_ERR_FORMAT, "%s: metadata cm.config missing", path);
    CM_TRY(cm_train_config_from_json(config, config_json, path));
    cm_network *network;
    CM_TRY(cm_network_create(&network, &config->network));
    size_t param_count = cm_network_param_count(network);
    cm_network_free(network);
    const float **blocks[TENSOR_COUNT] = {&ck->state.params, &ck->state.adam_m,
                                          &ck->state.adam_v, &ck->state.target};
    for (int t = 0; t < TENSOR_COUNT; t++) {
        if (t == TENSOR_TARGET && !cm_method_has_target_copy(config)) continue;
        cm_tensor_view view;
        CM_TRY(cm_safetensors_get(&view, ck->file, tensor_names[t]));
        if (view.ndim != 1 || view.shape[0] != param_count)
            return cm_error_set(CM_ERR_FORMAT, "%s: tensor %s must have shape [%zu], the "
                                "parameter count of the stored config", path, tensor_names[t],
                                param_count);
        *blocks[t] = view.data;
    }
    ck->state.param_count = param_count;
    return CM_OK;
}

/* Step, Adam step and stage (checked against each other by cm_trainer_set_state). */
static cm_status read_counters(cm_checkpoint *ck, const char *path) {
    uint64_t step, adam_step, stage;
    const cm_train_config *c = &ck->model.config;
    CM_TRY(metadata_count(&step, ck->file, "cm.checkpoint.step", c->steps, path));
    CM_TRY(metadata_count(&adam_step, ck->file, "cm.checkpoint.adam_step", c->steps, path));
    CM_TRY(metadata_count(&stage, ck->file, "cm.checkpoint.stage", c->method.chain_T, path));
    ck->state.step = (size_t)step;
    ck->state.adam_step = (size_t)adam_step;
    ck->state.stage = (size_t)stage;
    return CM_OK;
}

cm_status cm_checkpoint_read(cm_checkpoint **out, const char *path) {
    *out = NULL;
    cm_checkpoint *ck = cm_calloc(1, sizeof *ck);
    if (!ck) return cm_error_set(CM_ERR_NOMEM, "%s: checkpoint", path);
    cm_train_config config;
    size_t length = strlen(path) + 1;
    ck->path = cm_malloc(length, 1);
    cm_status status = ck->path ? CM_OK : cm_error_set(CM_ERR_NOMEM, "%s: checkpoint", path);
    if (status == CM_OK) memcpy(ck->path, path, length);
    if (status == CM_OK) status = cm_safetensors_read(&ck->file, path);
    if (status == CM_OK) status = read_header(ck, &config, path);
    if (status == CM_OK) status = cm_model_from_file(&ck->model, ck->file, path);
    if (status == CM_OK) status = read_counters(ck, path);
    if (status == CM_OK) status = read_streams(ck, path);
    if (status == CM_OK) status = check_curriculum(ck, path);
    if (status == CM_OK) status = read_data_file(ck, path);
    if (status != CM_OK) {
        cm_checkpoint_free(ck);
        return status;
    }
    ck->state.ema = ck->model.params;
    ck->state.transform = &ck->model.transform;
    *out = ck;
    return CM_OK;
}

/* The data must be the run's: the same law, or a file with the same rows, columns and hash. */
static cm_status check_data(const cm_checkpoint *ck, const cm_data *data) {
    const char *stored = ck->model.data_source, *given = cm_data_describe(data);
    if (!ck->has_data_file) {
        if (cm_data_rows(data) || strcmp(stored, given) != 0)
            return cm_error_set(CM_ERR_INVALID, "data '%.200s' is not the run's data '%.200s'",
                                given, stored);
        return CM_OK;
    }
    if (!cm_data_rows(data))
        return cm_error_set(CM_ERR_INVALID, "data '%.200s' is not a file; the run trained on the "
                            "file '%.200s'", given, stored);
    uint64_t hash = cm_checkpoint_data_hash(data);
    if (cm_data_rows(data) != ck->data_rows || cm_data_dim(data) != ck->data_cols ||
        hash != ck->data_hash)
        return cm_error_set(CM_ERR_INVALID, "data file '%.200s' (%zu x %zu, FNV-1a %016llx) "
                            "differs from the run's (%llu x %llu, FNV-1a %016llx)", given,
                            cm_data_rows(data), cm_data_dim(data), (unsigned long long)hash,
                            (unsigned long long)ck->data_rows, (unsigned long long)ck->data_cols,
                            (unsigned long long)ck->data_hash);
    return CM_OK;
}

cm_status cm_checkpoint_restore(cm_trainer **out, const cm_checkpoint *ck, const cm_data *data) {
    return cm_checkpoint_restore_comm(out, ck, data, cm_comm_single());
}

cm_status cm_checkpoint_restore_comm(cm_trainer **out, const cm_checkpoint *ck,
                                     const cm_data *data, const cm_comm *comm) {
    *out = NULL;
    CM_TRY(check_data(ck, data));
    cm_trainer *trainer;
    CM_TRY(cm_trainer_init_comm(&trainer, &ck->model.config, data, comm));
    cm_status status = cm_trainer_set_state(trainer, &ck->state);
    if (status != CM_OK) {
        char detail[512];
        snprintf(detail, sizeof detail, "%s", cm_error_detail());
        cm_trainer_free(trainer);
        return cm_error_set(status, "%s: %s", ck->path, detail);
    }
    *out = trainer;
    return CM_OK;
}

/* ---------------------------------------------------------------- run directories */

/* snprintf into out[capacity], CM_ERR_INVALID when it does not fit. */
static cm_status format_path(char *out, size_t capacity, const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

static cm_status format_path(char *out, size_t capacity, const char *format, ...) {
    va_list args;
    va_start(args, format);
    int length = vsnprintf(out, capacity, format, args);
    va_end(args);
    if (length < 0 || (size_t)length >= capacity)
        return cm_error_set(CM_ERR_INVALID, "path too long (%d characters)", length);
    return CM_OK;
}

/* The step of a numbered checkpoint's file name "step-%08zu.safetensors", exactly as written. */
static int numbered_step(size_t *out, const char *name) {
    uint64_t step;
    char digits[CK_NUMBER_TEXT], again[CK_PATH_MAX];
    size_t length = strlen(name), prefix = strlen("step-"), suffix = strlen(".safetensors");
    if (length <= prefix + suffix || length - prefix - suffix >= sizeof digits) return 0;
    if (strncmp(name, "step-", prefix) != 0 || strcmp(name + length - suffix, ".safetensors"))
        return 0;
    memcpy(digits, name + prefix, length - prefix - suffix);
    digits[length - prefix - suffix] = '\0';
    if (!parse_decimal(&step, digits, SIZE_MAX)) return 0;
    snprintf(again, sizeof again, CK_STEP_FORMAT, (size_t)step);
    if (strcmp(again, name) != 0) return 0;
    *out = (size_t)step;
    return 1;
}

/* A temporary file of cm_file_write_atomic for a numbered checkpoint (".step-...tmpXXXXXX"). */
static int is_temporary(const char *name) {
    return strncmp(name, ".step-", 6) == 0 && strstr(name, ".safetensors.tmp") != NULL;
}

static int descending(const void *a, const void *b) {
    size_t x = *(const size_t *)a, y = *(const size_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* Delete the numbered checkpoints of `directory` beyond the newest `keep` (all with keep = 0)
 * and any temporary file left by a crash. Best effort unless `strict`: then the first failure
 * to delete is returned. */
static cm_status prune(const char *directory, size_t keep, int strict) {
    DIR *listing = opendir(directory);
    if (!listing) {
        if (errno == ENOENT || !strict) return CM_OK;
        return cm_error_set(CM_ERR_IO, "%s: cannot list: %s", directory, strerror(errno));
    }
    size_t count = 0, capacity = 0, *steps = NULL, step;
    struct dirent *entry;
    cm_status status = CM_OK;
    char path[CK_PATH_MAX];
    while ((entry = readdir(listing)) != NULL) {
        if (is_temporary(entry->d_name) &&
            format_path(path, sizeof path, "%s/%s", directory, entry->d_name) == CM_OK)
            unlink(path);
        if (!numbered_step(&step, entry->d_name)) continue;
        if (count == capacity) {
            size_t bigger = capacity ? 2 * capacity : 16, *grown = cm_malloc(bigger, sizeof *grown);
            if (!grown) {
                status = strict ? cm_error_set(CM_ERR_NOMEM, "%s: listing", directory) : CM_OK;
                break;
            }
            if (count) memcpy(grown, steps, count * sizeof *steps);
            cm_free(steps);
            steps = grown;
            capacity = bigger;
        }
        steps[count++] = step;
    }
    closedir(listing);
    if (status == CM_OK && count > keep) {
        qsort(steps, count, sizeof *steps, descending);
        for (size_t i = keep; i < count; i++) {
            char name[CK_NUMBER_TEXT + 32];
            snprintf(name, sizeof name, CK_STEP_FORMAT, steps[i]);
            if (format_path(path, sizeof path, "%s/%s", directory, name) != CM_OK) continue;
            if (unlink(path) != 0 && errno != ENOENT && strict && status == CM_OK)
                status = cm_error_set(CM_ERR_IO, "%s: cannot delete: %s", path, strerror(errno));
        }
    }
    cm_free(steps);
    return status;
}

/* Make DIR/checkpoint.safetensors name `target` (a path relative to DIR): a symbolic link
 * renamed into place, or an atomic copy where the file system refuses links. */
static cm_status point_at(const char *dir, const char *relative, const char *target) {
    char link_path[CK_PATH_MAX], temporary[CK_PATH_MAX];
    CM_TRY(format_path(link_path, sizeof link_path, "%s/%s", dir, CM_CHECKPOINT_RUN_FILE));
    /* one writer per directory: a fixed name, so a link left by a crash is replaced */
    CM_TRY(format_path(temporary, sizeof temporary, "%s/.%s.tmp-link", dir,
                       CM_CHECKPOINT_RUN_FILE));
    unlink(temporary);
    if (symlink(relative, temporary) == 0) {
        if (rename(temporary, link_path) == 0) return CM_OK;
        cm_status status = cm_error_set(CM_ERR_IO, "%s: cannot rename a link into place: %s",
                                        link_path, strerror(errno));
        unlink(temporary);
        return status;
    }
    void *bytes;
    size_t size;
    CM_TRY(cm_file_read_all(&bytes, &size, target, CM_IO_MAX_BYTES * 2));
    cm_status status = cm_file_write_atomic(link_path, bytes, size);
    cm_free(bytes);
    return status;
}

cm_status cm_checkpoint_save_run(char *out_path, size_t capacity, const char *dir,
                                 cm_trainer *trainer, size_t keep, const char *const *extra_keys,
                                 const char *const *extra_values, size_t extra_count) {
    char directory[CK_PATH_MAX], relative[CK_PATH_MAX], name[CK_NUMBER_TEXT + 32];
    if (keep < 1) return cm_error_set(CM_ERR_INVALID, "%s: keep must be at least 1", dir);
    size_t step = cm_trainer_steps_done(trainer);
    snprintf(name, sizeof name, CK_STEP_FORMAT, step);
    CM_TRY(format_path(directory, sizeof directory, "%s/%s", dir, CM_CHECKPOINT_RUN_DIR));
    CM_TRY(format_path(relative, sizeof relative, "%s/%s", CM_CHECKPOINT_RUN_DIR, name));
    CM_TRY(format_path(out_path, capacity, "%s/%s", directory, name));
    if (mkdir(directory, 0777) != 0 && errno != EEXIST)
        return cm_error_set(CM_ERR_IO, "%s: cannot create: %s", directory, strerror(errno));
    CM_TRY(cm_checkpoint_save(out_path, trainer, extra_keys, extra_values, extra_count));
    CM_TRY(point_at(dir, relative, out_path));
    return prune(directory, keep, 0);
}

cm_status cm_checkpoint_clear_run(const char *dir) {
    char path[CK_PATH_MAX];
    CM_TRY(format_path(path, sizeof path, "%s/%s", dir, CM_CHECKPOINT_RUN_FILE));
    if (unlink(path) != 0 && errno != ENOENT)
        return cm_error_set(CM_ERR_IO, "%s: cannot delete: %s", path, strerror(errno));
    CM_TRY(format_path(path, sizeof path, "%s/%s", dir, CM_CHECKPOINT_RUN_DIR));
    return prune(path, 0, 1);
}
