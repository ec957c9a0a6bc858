/* model.c: a consistency model's weights, transform and schedule; safetensors save and load
 * (format in model.h). */
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
    CM_TRY(cm_mlp_layout_init(&out->layout, &config->network));
    out->params = cm_calloc(out->layout.param_count, sizeof(float));
    if (!out->params) return cm_error_set(CM_ERR_NOMEM, "model weights");
    cm_status status = cm_transform_identity(&out->transform, config->network.dim);
    if (status == CM_OK && config->method == CM_METHOD_LHW)
        status = cm_lhw_schedule_init(&out->schedule, config->chain_T, config->c0, config->c1);
    if (status != CM_OK) cm_model_free(out);
    return status;
}

void cm_model_free(cm_model *model) {
    if (!model) return;
    cm_free(model->params);
    cm_transform_free(&model->transform);
    cm_lhw_schedule_free(&model->schedule);
    *model = (cm_model){0};
}

cm_coefficients cm_model_coefficients(const cm_model *model, double level) {
    const cm_train_config *c = &model->config;
    if (c->method == CM_METHOD_LHW)
        return cm_consistency_lhw(&model->schedule, (size_t)level, c->sigma_data);
    if (c->method == CM_METHOD_CD2) /* its consistency function: g(x, sigma, sigma_min) */
        return cm_consistency_two_time(level, c->sigma_min, c->sigma_data);
    return cm_consistency_ve(level, c->sigma_data, c->sigma_min);
}

/* JSON {"shift": [...], "scale": [...]} with 17 significant digits (round-trips doubles). */
static cm_status transform_to_json(char **out, const cm_transform *t) {
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

size_t cm_model_tensors(cm_tensor_view *tensors, char (*names)[32], const cm_model *model) {
    const cm_mlp_layout *layout = &model->layout;
    for (size_t l = 0; l < layout->layer_count; l++) {
        snprintf(names[2 * l], 32, "mlp.%zu.weight", l);
        snprintf(names[2 * l + 1], 32, "mlp.%zu.bias", l);
        tensors[2 * l] = (cm_tensor_view){.name = names[2 * l],
                                          .ndim = 2,
                                          .shape = {layout->out[l], layout->in[l]},
                                          .data = model->params + layout->weight_offset[l]};
        tensors[2 * l + 1] = (cm_tensor_view){.name = names[2 * l + 1],
                                              .ndim = 1,
                                              .shape = {layout->out[l]},
                                              .data = model->params + layout->bias_offset[l]};
    }
    return 2 * layout->layer_count;
}

cm_status cm_model_save(const cm_model *model, const char *path) {
    cm_tensor_view tensors[CM_MODEL_MAX_TENSORS];
    char names[CM_MODEL_MAX_TENSORS][32];
    size_t count = cm_model_tensors(tensors, names, model);
    char *config_json = NULL, *transform_json = NULL;
    cm_status status = cm_train_config_to_json(&config_json, &model->config);
    if (status == CM_OK) status = transform_to_json(&transform_json, &model->transform);
    if (status == CM_OK) {
        char version[16];
        snprintf(version, sizeof version, "%d", CM_MODEL_FORMAT_VERSION);
        const char *keys[] = {"cm.format_version", "cm.config", "cm.transform", "cm.data"};
        const char *values[] = {version, config_json, transform_json, model->data_source};
        status = cm_safetensors_write(path, tensors, count, keys, values, 4);
    }
    cm_free(config_json);
    cm_free(transform_json);
    return status;
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

static cm_status load_transform(cm_transform *t, const char *json, const char *path) {
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

/* Check that the file holds every tensor of `layout` with the right shape: done before the
 * model is allocated, so a small file cannot ask for a huge allocation it does not back. */
static cm_status check_tensor_shapes(const cm_safetensors *file, const cm_mlp_layout *layout,
                                     const char *path) {
    for (size_t l = 0; l < layout->layer_count; l++) {
        for (int is_bias = 0; is_bias < 2; is_bias++) {
            char name[32];
            snprintf(name, sizeof name, is_bias ? "mlp.%zu.bias" : "mlp.%zu.weight", l);
            cm_tensor_view view;
            CM_TRY(cm_safetensors_get(&view, file, name));
            size_t want_ndim = is_bias ? 1 : 2;
            int shape_ok = view.ndim == want_ndim && view.shape[0] == layout->out[l] &&
                           (is_bias || view.shape[1] == layout->in[l]);
            if (!shape_ok)
                return cm_error_set(CM_ERR_FORMAT,
                                    "%s: tensor %s has the wrong shape for the stored config", path,
                                    name);
        }
    }
    return CM_OK;
}

/* Copy the (shape-checked) tensors into the model's weights, refusing non-finite values. */
static cm_status load_tensors(cm_model *model, const cm_safetensors *file, const char *path) {
    const cm_mlp_layout *layout = &model->layout;
    for (size_t l = 0; l < layout->layer_count; l++) {
        for (int is_bias = 0; is_bias < 2; is_bias++) {
            char name[32];
            snprintf(name, sizeof name, is_bias ? "mlp.%zu.bias" : "mlp.%zu.weight", l);
            cm_tensor_view view;
            CM_TRY(cm_safetensors_get(&view, file, name));
            size_t count = is_bias ? layout->out[l] : layout->out[l] * layout->in[l];
            size_t offset = is_bias ? layout->bias_offset[l] : layout->weight_offset[l];
            for (size_t i = 0; i < count; i++)
                if (!isfinite(view.data[i]))
                    return cm_error_set(CM_ERR_NONFINITE, "%s: tensor %s has a non-finite value",
                                        path, name);
            memcpy(model->params + offset, view.data, count * sizeof(float));
        }
    }
    return CM_OK;
}

cm_status cm_model_load(cm_model *out, const char *path) {
    *out = (cm_model){0};
    cm_safetensors *file = NULL;
    CM_TRY(cm_safetensors_read(&file, path));
    const char *version = cm_safetensors_metadata(file, "cm.format_version");
    const char *config_json = cm_safetensors_metadata(file, "cm.config");
    const char *transform_json = cm_safetensors_metadata(file, "cm.transform");
    cm_status status = CM_OK;
    if (!version || !config_json || !transform_json)
        status = cm_error_set(CM_ERR_FORMAT, "%s: not a cm model (metadata cm.* missing)", path);
    else if (strcmp(version, "1") != 0)
        status = cm_error_set(CM_ERR_UNSUPPORTED, "%s: model format version %s (this build reads 1)",
                              path, version);
    cm_train_config config;
    if (status == CM_OK) status = cm_train_config_from_json(&config, config_json, path);
    cm_mlp_layout layout;
    if (status == CM_OK) status = cm_mlp_layout_init(&layout, &config.network);
    if (status == CM_OK) status = check_tensor_shapes(file, &layout, path);
    if (status == CM_OK) status = cm_model_init(out, &config);
    if (status == CM_OK) status = load_transform(&out->transform, transform_json, path);
    if (status == CM_OK) status = load_tensors(out, file, path);
    const char *data_source = cm_safetensors_metadata(file, "cm.data");
    if (status == CM_OK && data_source)
        snprintf(out->data_source, sizeof out->data_source, "%s", data_source);
    cm_safetensors_free(file);
    if (status != CM_OK) cm_model_free(out);
    return status;
}
