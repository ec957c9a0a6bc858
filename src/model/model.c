/* model.c: a model's network, weights, transform and schedule; safetensors save and load
 * (format in model.h, byte by byte in docs/formats.md). Reading trusts nothing: the config is
 * parsed and every tensor's shape checked against the network it describes before the weights
 * are allocated, and every value must be finite. */
#include "cm/model.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/io.h"

cm_status cm_model_init(cm_model *out, const cm_train_config *config) {
    *out = (cm_model){0};
    CM_TRY(cm_train_config_check(config));
    out->config = *config;
    CM_TRY(cm_network_create(&out->network, &config->network));
    out->params = cm_calloc(cm_network_param_count(out->network), sizeof(float));
    cm_status status = out->params ? CM_OK : cm_error_set(CM_ERR_NOMEM, "model weights");
    if (status == CM_OK) status = cm_transform_identity(&out->transform, config->network.dim);
    if (status == CM_OK && config->method.kind == CM_METHOD_LHW)
        status = cm_lhw_schedule_init(&out->schedule, config->method.chain_T, config->method.c0,
                                      config->method.c1);
    if (status != CM_OK) cm_model_free(out);
    return status;
}

void cm_model_free(cm_model *model) {
    if (!model) return;
    cm_network_free(model->network);
    cm_free(model->params);
    cm_transform_free(&model->transform);
    cm_lhw_schedule_free(&model->schedule);
    *model = (cm_model){0};
}

size_t cm_model_param_count(const cm_model *model) {
    return cm_network_param_count(model->network);
}

cm_coefficients cm_model_coefficients(const cm_model *model, double level) {
    const cm_method_config *m = &model->config.method;
    if (m->kind == CM_METHOD_LHW)
        return cm_consistency_lhw(&model->schedule, (size_t)level, m->sigma_data);
    if (m->kind == CM_METHOD_CD2) /* its consistency function: g(x, sigma, sigma_min) */
        return cm_consistency_two_time(level, m->sigma_min, m->sigma_data);
    return cm_consistency_ve(level, m->sigma_data, m->sigma_min);
}

cm_tensor_view cm_model_tensor(const cm_model *model, const float *params, size_t index) {
    const cm_tensor_layout *t = cm_network_tensor(model->network, index);
    cm_tensor_view view = {.name = t->name, .ndim = t->ndim, .data = params + t->offset};
    memcpy(view.shape, t->shape, sizeof view.shape);
    return view;
}

/* JSON {"shift": [...], "scale": [...]} with 17 significant digits (round-trips doubles). */
cm_status cm_transform_to_json(char **out, const cm_transform *t) {
    size_t capacity = 64 + 2 * t->dim * 26;
    char *text = cm_malloc(capacity, 1);
    if (!text) return cm_error_set(CM_ERR_NOMEM, "transform JSON");
    size_t used = (size_t)snprintf(text, capacity, "{\"shift\": [");
    for (size_t i = 0; i < t->dim; i++)
        used += (size_t)snprintf(text + used, capacity - used, "%s%.17g", i ? ", " : "", t->shift[i]);
    used += (size_t)snprintf(text + used, capacity - used, "], \"scale\": [");
    for (size_t i = 0; i < t->dim; i++)
        used += (size_t)snprintf(text + used, capacity - used, "%s%.17g", i ? ", " : "", t->scale[i]);
    snprintf(text + used, capacity - used, "]}");
    *out = text;
    return CM_OK;
}

static cm_status read_vector(double *out, size_t dim, const cJSON *array, const char *path,
                             const char *key) {
    if (!cJSON_IsArray(array) || (size_t)cJSON_GetArraySize(array) != dim)
        return cm_error_set(CM_ERR_FORMAT, "%s: transform \"%s\" must be an array of %zu numbers",
                            path, key, dim);
    size_t i = 0;
    for (const cJSON *item = array->child; item; item = item->next, i++) {
        if (!cJSON_IsNumber(item) || !isfinite(item->valuedouble))
            return cm_error_set(CM_ERR_FORMAT, "%s: transform \"%s\"[%zu] is not a finite number",
                                path, key, i);
        out[i] = item->valuedouble;
    }
    return CM_OK;
}

cm_status cm_transform_from_json(cm_transform *t, const char *json, const char *path) {
    cJSON *root = cJSON_Parse(json);
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return cm_error_set(CM_ERR_FORMAT, "%s: cm.transform is not a JSON object", path);
    }
    cm_status status = read_vector(t->shift, t->dim, cJSON_GetObjectItemCaseSensitive(root, "shift"),
                                   path, "shift");
    if (status == CM_OK)
        status = read_vector(t->scale, t->dim, cJSON_GetObjectItemCaseSensitive(root, "scale"),
                             path, "scale");
    for (size_t i = 0; status == CM_OK && i < t->dim; i++)
        if (!(t->scale[i] > 0))
            status = cm_error_set(CM_ERR_FORMAT, "%s: transform scale[%zu] = %g must be > 0", path,
                                  i, t->scale[i]);
    cJSON_Delete(root);
    return status;
}

cm_status cm_model_metadata_make(cm_model_metadata *out, const cm_model *model) {
    *out = (cm_model_metadata){0};
    snprintf(out->version, sizeof out->version, "%d", CM_MODEL_FORMAT_VERSION);
    cm_status status = cm_train_config_to_json(&out->config_json, &model->config);
    if (status == CM_OK) status = cm_transform_to_json(&out->transform_json, &model->transform);
    if (status != CM_OK) {
        cm_model_metadata_free(out);
        return status;
    }
    const char *keys[] = {"cm.format_version", "cm.config", "cm.transform", "cm.data"};
    const char *values[] = {out->version, out->config_json, out->transform_json,
                            model->data_source};
    memcpy(out->keys, keys, sizeof keys);
    memcpy(out->values, values, sizeof values);
    return CM_OK;
}

void cm_model_metadata_free(cm_model_metadata *m) {
    cm_free(m->config_json);
    cm_free(m->transform_json);
    *m = (cm_model_metadata){0};
}

cm_status cm_model_save(const cm_model *model, const char *path) {
    return cm_model_save_annotated(model, path, NULL, NULL, 0);
}

#define MODEL_EXTRA_METADATA_MAX 16

cm_status cm_model_save_annotated(const cm_model *model, const char *path,
                                  const char *const *extra_keys, const char *const *extra_values,
                                  size_t extra_count) {
    if (extra_count > MODEL_EXTRA_METADATA_MAX)
        return cm_error_set(CM_ERR_INVALID, "%s: %zu extra metadata pairs (at most %d)", path,
                            extra_count, MODEL_EXTRA_METADATA_MAX);
    const char *keys[CM_MODEL_METADATA_COUNT + MODEL_EXTRA_METADATA_MAX];
    const char *values[CM_MODEL_METADATA_COUNT + MODEL_EXTRA_METADATA_MAX];
    cm_model_metadata metadata;
    CM_TRY(cm_model_metadata_make(&metadata, model));
    memcpy(keys, metadata.keys, sizeof metadata.keys);
    memcpy(values, metadata.values, sizeof metadata.values);
    cm_status status = CM_OK;
    for (size_t i = 0; i < extra_count && status == CM_OK; i++) {
        int own = 0;
        for (size_t j = 0; j < CM_MODEL_METADATA_COUNT; j++)
            own |= strcmp(extra_keys[i], metadata.keys[j]) == 0;
        if (strncmp(extra_keys[i], "cm.", 3) != 0 || own)
            status = cm_error_set(CM_ERR_INVALID, "%s: metadata key '%s' must start with \"cm.\" "
                                  "and not be one of the model's own", path, extra_keys[i]);
        keys[CM_MODEL_METADATA_COUNT + i] = extra_keys[i];
        values[CM_MODEL_METADATA_COUNT + i] = extra_values[i];
    }
    size_t count = cm_network_tensor_count(model->network);
    cm_tensor_view *tensors = status == CM_OK ? cm_malloc(count, sizeof *tensors) : NULL;
    if (status == CM_OK && !tensors) status = cm_error_set(CM_ERR_NOMEM, "%s: tensor list", path);
    for (size_t i = 0; status == CM_OK && i < count; i++)
        tensors[i] = cm_model_tensor(model, model->params, i);
    if (status == CM_OK)
        status = cm_safetensors_write(path, tensors, count, keys, values,
                                      CM_MODEL_METADATA_COUNT + extra_count);
    cm_model_metadata_free(&metadata);
    cm_free(tensors);
    return status;
}

/* Check that the file holds every tensor of `network` with the right shape: done before the
 * weights are allocated, so a small file cannot ask for a huge allocation it does not back. */
static cm_status check_tensor_shapes(const cm_safetensors *file, const cm_network *network,
                                     const char *path) {
    for (size_t i = 0; i < cm_network_tensor_count(network); i++) {
        const cm_tensor_layout *t = cm_network_tensor(network, i);
        cm_tensor_view view;
        CM_TRY(cm_safetensors_get(&view, file, t->name));
        int shape_ok = view.ndim == t->ndim;
        for (size_t d = 0; shape_ok && d < t->ndim; d++) shape_ok = view.shape[d] == t->shape[d];
        if (!shape_ok)
            return cm_error_set(CM_ERR_FORMAT, "%s: tensor %s has the wrong shape for the stored "
                                "config", path, t->name);
    }
    return CM_OK;
}

/* Copy the (shape-checked) tensors into the model's weights, refusing non-finite values. */
static cm_status load_tensors(cm_model *model, const cm_safetensors *file, const char *path) {
    for (size_t i = 0; i < cm_network_tensor_count(model->network); i++) {
        const cm_tensor_layout *t = cm_network_tensor(model->network, i);
        cm_tensor_view view;
        CM_TRY(cm_safetensors_get(&view, file, t->name));
        for (size_t k = 0; k < t->count; k++)
            if (!isfinite(view.data[k]))
                return cm_error_set(CM_ERR_NONFINITE, "%s: tensor %s has a non-finite value", path,
                                    t->name);
        memcpy(model->params + t->offset, view.data, t->count * sizeof(float));
    }
    return CM_OK;
}

cm_status cm_model_from_file(cm_model *out, const cm_safetensors *file, const char *path) {
    *out = (cm_model){0};
    const char *version = cm_safetensors_metadata(file, "cm.format_version");
    const char *config_json = cm_safetensors_metadata(file, "cm.config");
    const char *transform_json = cm_safetensors_metadata(file, "cm.transform");
    if (!version || !config_json || !transform_json)
        return cm_error_set(CM_ERR_FORMAT, "%s: not a cm model (metadata cm.* missing)", path);
    if (strcmp(version, "1") != 0 && strcmp(version, "2") != 0)
        return cm_error_set(CM_ERR_UNSUPPORTED, "%s: model format version %.16s (this build "
                            "reads 1 and 2)", path, version);
    cm_train_config config;
    CM_TRY(cm_train_config_from_json(&config, config_json, path));
    cm_network *network;
    CM_TRY(cm_network_create(&network, &config.network));
    cm_status status = check_tensor_shapes(file, network, path);
    cm_network_free(network);
    CM_TRY(status);
    CM_TRY(cm_model_init(out, &config));
    status = cm_transform_from_json(&out->transform, transform_json, path);
    if (status == CM_OK) status = load_tensors(out, file, path);
    const char *data_source = cm_safetensors_metadata(file, "cm.data");
    if (status == CM_OK && data_source)
        snprintf(out->data_source, sizeof out->data_source, "%s", data_source);
    if (status != CM_OK) cm_model_free(out);
    return status;
}

cm_status cm_model_load(cm_model *out, const char *path) {
    *out = (cm_model){0};
    cm_safetensors *file = NULL;
    CM_TRY(cm_safetensors_read(&file, path));
    cm_status status = cm_model_from_file(out, file, path);
    cm_safetensors_free(file);
    return status;
}
