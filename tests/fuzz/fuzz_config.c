/* fuzz_config.c: fuzz target of the training-config JSON (cm_train_config_from_json, the
 * "cm.config" of model and checkpoint files): any text either fails with a status or gives a
 * config that passes cm_train_config_check and survives to_json -> from_json unchanged. */
#include <stdlib.h>

#include "cm/alloc.h"
#include "cm/config.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = fuzz_text(data, size);
    if (!text) return 0;
    cm_train_config config, again;
    if (cm_train_config_from_json(&config, text, "fuzz.json") == CM_OK) {
        char *json = NULL;
        if (cm_train_config_check(&config) != CM_OK) abort();
        if (cm_train_config_to_json(&json, &config) != CM_OK) abort();
        if (cm_train_config_from_json(&again, json, "again.json") != CM_OK) abort();
        if (cm_train_config_diff(&again, &config) != CM_OK) abort();
        cm_free(json);
    }
    free(text);
    return 0;
}
