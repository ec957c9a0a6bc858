/* fuzz_model.c: fuzz target of model loading (cm_model_load: safetensors, the config and
 * transform JSON, shapes, finiteness): any file either fails with a status, or loads, samples
 * without a crash, and saves and loads back to the same weights. */
#include <stdlib.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/model.h"
#include "cm/sampler.h"
#include "fuzz.h"

#define SAMPLE_MAX_PARAMS 100000 /* sample only from small networks (keeps the target fast) */
#define SAMPLE_COUNT 3

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_scratch_file(data, size, "model.safetensors");
    cm_model model, again;
    if (!path || cm_model_load(&model, path) != CM_OK) return 0;
    if (cm_model_param_count(&model) <= SAMPLE_MAX_PARAMS) {
        double *out = cm_malloc(SAMPLE_COUNT * model.config.network.dim, sizeof(double));
        if (out) (void)cm_sample(out, &model, NULL, 0, SAMPLE_COUNT, 1);
        cm_free(out);
    }
    if (cm_model_save(&model, path) != CM_OK) abort();
    if (cm_model_load(&again, path) != CM_OK) abort();
    if (memcmp(again.params, model.params, cm_model_param_count(&model) * sizeof(float)) != 0) abort();
    cm_model_free(&again);
    cm_model_free(&model);
    return 0;
}
