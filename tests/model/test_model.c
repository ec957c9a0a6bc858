/* test_model.c: model files: save/load round trip to the bit (weights, config, transform,
 * data source), the config JSON round trip, and refusal of damaged or foreign files. */
#include "cm/model.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cm/alloc.h"
#include "cm/io.h"
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
    config.network.width = 12;
    config.network.depth = 2;
    config.seed = 123456789;
    config.adam.learning_rate = 0.000123456789012345;
    CM_CHECK_OK(cm_model_init(model, &config));
    cm_rng rng;
    cm_rng_init(&rng, 8);
    cm_mlp_init_params(model->params, &model->layout, &rng);
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
        CM_CHECK(loaded.layout.param_count == saved.layout.param_count, "param count");
        CM_CHECK(memcmp(loaded.params, saved.params, saved.layout.param_count * sizeof(float)) == 0,
                 "weights differ after a round trip");
        CM_CHECK(memcmp(&loaded.config, &saved.config, sizeof saved.config) == 0,
                 "config differs after a round trip (%s)", cm_method_name(methods[m]));
        CM_CHECK(memcmp(loaded.transform.shift, saved.transform.shift, 3 * sizeof(double)) == 0 &&
                     memcmp(loaded.transform.scale, saved.transform.scale, 3 * sizeof(double)) == 0,
                 "transform not read back to the bit");
        CM_CHECK(strcmp(loaded.data_source, "gauss:d=3") == 0, "data source '%s'", loaded.data_source);
        if (methods[m] == CM_METHOD_LHW)
            CM_CHECK(loaded.schedule.T == saved.config.chain_T, "schedule not rebuilt");
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
    CM_CHECK(config.chain_T == 50 && config.network.dim == 4 && config.method == CM_METHOD_LHW,
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
    saved.config.network.width = 13; /* the config now disagrees with the 12-wide tensors */
    char *json = NULL;
    CM_CHECK_OK(cm_train_config_to_json(&json, &saved.config));
    saved.config.network.width = 12;
    cm_tensor_view tensors[2 * (CM_MLP_MAX_DEPTH + 1)];
    char names[2 * (CM_MLP_MAX_DEPTH + 1)][32];
    for (size_t l = 0; l < saved.layout.layer_count; l++) {
        snprintf(names[2 * l], 32, "mlp.%zu.weight", l);
        snprintf(names[2 * l + 1], 32, "mlp.%zu.bias", l);
        tensors[2 * l] = (cm_tensor_view){names[2 * l], 2, {saved.layout.out[l], saved.layout.in[l]},
                                          saved.params + saved.layout.weight_offset[l]};
        tensors[2 * l + 1] = (cm_tensor_view){names[2 * l + 1], 1, {saved.layout.out[l]},
                                              saved.params + saved.layout.bias_offset[l]};
    }
    const char *keys[] = {"cm.format_version", "cm.config", "cm.transform"};
    const char *values[] = {"1", json, "{\"shift\": [0, 0, 0], \"scale\": [1, 1, 1]}"};
    path = temp_path("mismatch.safetensors");
    CM_CHECK_OK(cm_safetensors_write(path, tensors, 2 * saved.layout.layer_count, keys, values, 3));
    long live = cm_alloc_live_count();
    CM_CHECK(cm_model_load(&model, path) == CM_ERR_FORMAT, "shape mismatch accepted");
    CM_CHECK(cm_alloc_live_count() == live, "leak after a refused model");
    /* a future format version */
    values[0] = "2";
    CM_CHECK_OK(cm_safetensors_write(path, tensors, 2 * saved.layout.layer_count, keys, values, 3));
    CM_CHECK(cm_model_load(&model, path) == CM_ERR_UNSUPPORTED, "format version 2 accepted");
    /* a non-positive scale in the transform */
    values[0] = "1";
    saved.config.network.width = 12;
    cm_free(json);
    CM_CHECK_OK(cm_train_config_to_json(&json, &saved.config));
    values[1] = json;
    values[2] = "{\"shift\": [0, 0, 0], \"scale\": [1, 0, 1]}";
    CM_CHECK_OK(cm_safetensors_write(path, tensors, 2 * saved.layout.layer_count, keys, values, 3));
    CM_CHECK(cm_model_load(&model, path) == CM_ERR_FORMAT, "zero scale accepted");
    cm_free(json);
    cm_model_free(&saved);
    unlink(temp_path("model.safetensors"));
    unlink(temp_path("foreign.safetensors"));
    unlink(temp_path("mismatch.safetensors"));
    rmdir(directory);
    directory[0] = '\0';
}

const cm_test_case cm_tests_model[] = {
    {"save_load_round_trip", test_save_load_round_trip},
    {"config_json_rejects_bad_values", test_config_json_rejects_bad_values},
    {"load_refuses_foreign_and_damaged_files", test_load_refuses_foreign_and_damaged_files},
    {NULL, NULL},
};
