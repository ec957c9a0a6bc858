/* test_model.c: model files: save/load round trip to the bit (weights, config, transform,
 * data source), the config JSON round trip, and refusal of damaged or foreign files. */
#include "cm/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cm/alloc.h"
#include "cm/io.h"
#include "nn/mlp.h"
#include "test.h"

static char directory[256];

static const char *temp_path(const char *name) {
    static char path[512];
    if (!directory[0]) {
        snprintf(directory, sizeof directory, "/tmp/cm_test_model_XXXXXX");
        if (!mkdtemp(directory)) directory[0] = '\0';
    }
    snprintf(path, sizeof path, "%s/%s", directory, name);
    return path;
}

static void random_model(cm_model *model, cm_method method) {
    cm_train_config config = cm_train_config_default(method, 3);
    cm_mlp_options *mlp = cm_network_options(&config.network);
    mlp->width = 12;
    mlp->depth = 2;
    config.seed = 123456789;
    config.optimizer.learning_rate = 0.000123456789012345;
    CM_CHECK_OK(cm_model_init(model, &config));
    cm_rng rng;
    cm_rng_init(&rng, 8);
    cm_network_init(model->network, model->params, &rng);
    for (int i = 0; i < 3; i++) {
        model->transform.shift[i] = cm_rng_normal(&rng);
        model->transform.scale[i] = 0.1 + cm_rng_uniform(&rng);
    }
    snprintf(model->data_source, sizeof model->data_source, "gauss:d=3");
}

static void test_save_load_round_trip(void) {
    const cm_method methods[] = {CM_METHOD_LHW, CM_METHOD_CT, CM_METHOD_ICT};
    for (int m = 0; m < 3; m++) {
        cm_model saved, loaded;
        random_model(&saved, methods[m]);
        const char *path = temp_path("model.safetensors");
        CM_CHECK_OK(cm_model_save(&saved, path));
        CM_CHECK_OK(cm_model_load(&loaded, path));
        CM_CHECK(cm_model_param_count(&loaded) == cm_model_param_count(&saved), "param count");
        CM_CHECK(memcmp(loaded.params, saved.params, cm_model_param_count(&saved) * sizeof(float)) == 0,
                 "weights differ after a round trip");
        CM_CHECK(memcmp(&loaded.config, &saved.config, sizeof saved.config) == 0,
                 "config differs after a round trip (%s)", cm_method_name(methods[m]));
        CM_CHECK(memcmp(loaded.transform.shift, saved.transform.shift, 3 * sizeof(double)) == 0 &&
                     memcmp(loaded.transform.scale, saved.transform.scale, 3 * sizeof(double)) == 0,
                 "transform not read back to the bit");
        CM_CHECK(strcmp(loaded.data_source, "gauss:d=3") == 0, "data source '%s'", loaded.data_source);
        if (methods[m] == CM_METHOD_LHW)
            CM_CHECK(loaded.schedule.T == saved.config.method.chain_T, "schedule not rebuilt");
        cm_model_free(&saved);
        cm_model_free(&loaded);
    }
}

static void test_config_json_rejects_bad_values(void) {
    cm_train_config config;
    const char *bad[] = {
        "",
        "[]",
        "{\"method\": \"ict\"}",
        "{\"method\": \"zzz\", \"dim\": 2}",
        "{\"method\": \"ict\", \"dim\": 2, \"width\": -1}",
        "{\"method\": \"ict\", \"dim\": 2, \"width\": 1.5}",
        "{\"method\": \"ict\", \"dim\": 2, \"lr\": \"fast\"}",
        "{\"method\": \"ict\", \"dim\": 2, \"unknown_key\": 1}",
        "{\"method\": \"ict\", \"dim\": 2, \"ema\": 1.5}",
        "{\"method\": \"ict\", \"dim\": 2, \"depth\": 1e300}",
        "{\"method\": \"ict\", \"dim\": 2, \"seed\": 1e300}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        long live = cm_alloc_live_count();
        CM_CHECK(cm_train_config_from_json(&config, bad[i], "test") != CM_OK, "accepted: %s", bad[i]);
        CM_CHECK(cm_alloc_live_count() == live, "leak on: %s", bad[i]);
    }
    CM_CHECK_OK(cm_train_config_from_json(&config, "{\"method\": \"lhw\", \"dim\": 4, \"T\": 50}", "test"));
    CM_CHECK(config.method.chain_T == 50 && config.network.dim == 4 && config.method.kind == CM_METHOD_LHW,
             "partial config not completed with defaults");
}

static void test_load_refuses_foreign_and_damaged_files(void) {
    cm_model model;
    /* a valid safetensors file without cm metadata */
    float w[4] = {1, 2, 3, 4};
    cm_tensor_view view = {.name = "x", .ndim = 1, .shape = {4}, .data = w};
    const char *path = temp_path("foreign.safetensors");
    CM_CHECK_OK(cm_safetensors_write(path, &view, 1, NULL, NULL, 0));
    CM_CHECK(cm_model_load(&model, path) == CM_ERR_FORMAT, "foreign file accepted");
    /* a model whose weight tensor has the wrong shape for its config */
    cm_model saved;
    random_model(&saved, CM_METHOD_ICT);
    cm_mlp_options *mlp = cm_network_options(&saved.config.network);
    mlp->width = 13; /* the config now disagrees with the 12-wide tensors */
    char *json = NULL;
    CM_CHECK_OK(cm_train_config_to_json(&json, &saved.config));
    mlp->width = 12;
    cm_tensor_view tensors[2 * (CM_MLP_MAX_DEPTH + 1)];
    size_t tensor_count = cm_network_tensor_count(saved.network);
    for (size_t t = 0; t < tensor_count; t++) tensors[t] = cm_model_tensor(&saved, saved.params, t);
    const char *keys[] = {"cm.format_version", "cm.config", "cm.transform"};
    const char *values[] = {"1", json, "{\"shift\": [0, 0, 0], \"scale\": [1, 1, 1]}"};
    path = temp_path("mismatch.safetensors");
    CM_CHECK_OK(cm_safetensors_write(path, tensors, tensor_count, keys, values, 3));
    long live = cm_alloc_live_count();
    CM_CHECK(cm_model_load(&model, path) == CM_ERR_FORMAT, "shape mismatch accepted");
    CM_CHECK(cm_alloc_live_count() == live, "leak after a refused model");
    /* a future format version */
    values[0] = "3";
    CM_CHECK_OK(cm_safetensors_write(path, tensors, tensor_count, keys, values, 3));
    CM_CHECK(cm_model_load(&model, path) == CM_ERR_UNSUPPORTED, "format version 3 accepted");
    /* a non-positive scale in the transform */
    values[0] = "2";
    cm_free(json);
    CM_CHECK_OK(cm_train_config_to_json(&json, &saved.config));
    values[1] = json;
    values[2] = "{\"shift\": [0, 0, 0], \"scale\": [1, 0, 1]}";
    CM_CHECK_OK(cm_safetensors_write(path, tensors, tensor_count, keys, values, 3));
    CM_CHECK(cm_model_load(&model, path) == CM_ERR_FORMAT, "zero scale accepted");
    cm_free(json);
    cm_model_free(&saved);
    unlink(temp_path("model.safetensors"));
    unlink(temp_path("foreign.safetensors"));
    unlink(temp_path("mismatch.safetensors"));
    rmdir(directory);
    directory[0] = '\0';
}

/* Format 2 (nested) round trips every method's config; format 1 (flat, cm 0.1) reads into the
 * same config; malformed nested forms are refused without a leak. */
static void test_config_json_formats(void) {
    for (int m = 0; m < CM_METHOD_COUNT; m++) {
        cm_train_config config = cm_train_config_default((cm_method)m, 5), back;
        config.blocks = 4;
        config.method.sigma_max = 7.25;
        char *json = NULL;
        CM_CHECK_OK(cm_train_config_to_json(&json, &config));
        if (!json) continue;
        CM_CHECK_OK(cm_train_config_from_json(&back, json, "test"));
        CM_CHECK(memcmp(&back, &config, sizeof config) == 0, "%s: nested round trip differs",
                 cm_method_name((cm_method)m));
        CM_CHECK(strstr(json, "\"network\": {\"type\": \"mlp\"") != NULL, "%s: %s",
                 cm_method_name((cm_method)m), json);
        cm_free(json);
    }
    cm_train_config flat, expected = cm_train_config_default(CM_METHOD_CD2, 2);
    CM_CHECK_OK(cm_train_config_from_json(&flat, "{\"method\": \"cd2\", \"dim\": 2, \"width\": 40, "
                                          "\"embed_max_frequency\": 300, \"lr\": 0.002, "
                                          "\"cd_levels\": 9, \"steps\": 77}", "flat"));
    cm_mlp_options *mlp = cm_network_options(&expected.network);
    mlp->width = 40;
    mlp->embed_max_frequency = 300;
    expected.optimizer.learning_rate = 0.002;
    expected.method.cd_levels = 9;
    expected.steps = 77;
    CM_CHECK(memcmp(&flat, &expected, sizeof flat) == 0, "format-1 config read differently");
    CM_CHECK(flat.network.noise_levels == 2 && flat.blocks == 2, "cd2 levels %zu, blocks %zu",
             flat.network.noise_levels, flat.blocks);
    const char *bad[] = {
        "{\"method\": {\"method\": \"ict\"}}",
        "{\"method\": {\"method\": \"ict\"}, \"network\": {\"type\": \"nope\", \"dim\": 2}}",
        "{\"method\": {\"method\": \"ict\"}, \"network\": {\"type\": \"mlp\", \"dim\": 2, \"width\": 0}}",
        "{\"method\": {\"method\": \"ict\"}, \"network\": {\"type\": \"mlp\", \"dim\": 2, \"lr\": 1}}",
        "{\"method\": {\"method\": \"ict\", \"T\": 5, \"T\": 6}, \"network\": {\"type\": \"mlp\", \"dim\": 2}}",
        "{\"method\": {\"method\": \"ict\"}, \"network\": {\"type\": \"mlp\", \"dim\": 2}, \"optimizer\": 3}",
        "{\"method\": {\"method\": \"ict\"}, \"network\": {\"type\": \"mlp\", \"dim\": 2}, \"blocks\": 0}",
        "{\"method\": {\"method\": \"ict\"}, \"network\": {\"type\": \"mlp\", \"dim\": 2}, \"batch\": 4, \"blocks\": 5}",
        "{\"method\": {\"method\": \"ict\", \"sigma_min\": 30}, \"network\": {\"type\": \"mlp\", \"dim\": 2}}",
        "{\"method\": {\"method\": \"ict\"}, \"network\": {\"type\": \"mlp\", \"dim\": 4, \"image_channels\": 1, \"image_height\": 2, \"image_width\": 3}}",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cm_train_config config;
        long live = cm_alloc_live_count();
        CM_CHECK(cm_train_config_from_json(&config, bad[i], "test") != CM_OK, "accepted: %s", bad[i]);
        CM_CHECK(cm_alloc_live_count() == live, "leak on: %s", bad[i]);
    }
}

/* Extra metadata (cm train's "cm.command") is written beside the model's own and ignored by
 * cm_model_load; keys outside "cm." or equal to the model's own are refused. */
static void test_save_annotated(void) {
    cm_model saved, loaded;
    random_model(&saved, CM_METHOD_ICT);
    const char *path = temp_path("annotated.safetensors");
    const char *keys[] = {"cm.command"}, *values[] = {"cm train --data 'a b.csv' --out r"};
    CM_CHECK_OK(cm_model_save_annotated(&saved, path, keys, values, 1));
    CM_CHECK_OK(cm_model_load(&loaded, path));
    CM_CHECK(memcmp(loaded.params, saved.params, cm_model_param_count(&saved) * sizeof(float)) == 0,
             "weights differ after an annotated save");
    cm_safetensors *file = NULL;
    CM_CHECK_OK(cm_safetensors_read(&file, path));
    const char *command = file ? cm_safetensors_metadata(file, "cm.command") : NULL;
    CM_CHECK(command && strcmp(command, values[0]) == 0, "cm.command read back as '%s'",
             command ? command : "(none)");
    cm_safetensors_free(file);
    const char *foreign[] = {"user.note"}, *own[] = {"cm.data"};
    CM_CHECK(cm_model_save_annotated(&saved, path, foreign, values, 1) == CM_ERR_INVALID,
             "a key outside cm. was accepted");
    CM_CHECK(cm_model_save_annotated(&saved, path, own, values, 1) == CM_ERR_INVALID,
             "a key of the model's own was accepted");
    cm_model_free(&saved);
    cm_model_free(&loaded);
}

const cm_test_case cm_tests_model[] = {
    {"save_annotated", test_save_annotated},
    {"config_json_formats", test_config_json_formats},
    {"save_load_round_trip", test_save_load_round_trip},
    {"config_json_rejects_bad_values", test_config_json_rejects_bad_values},
    {"load_refuses_foreign_and_damaged_files", test_load_refuses_foreign_and_damaged_files},
    {NULL, NULL},
};
