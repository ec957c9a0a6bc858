/* fuzz_classifier.c: fuzz target of classifier files (cm_classifier_load: safetensors, the
 * configuration in the metadata, tensor names and shapes, finiteness): any file either fails
 * with a status, or loads, classifies an image without a crash, and saves and loads back to the
 * same weights. */
#include <stdlib.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/classifier.h"
#include "fuzz.h"

#define APPLY_MAX_PARAMS 100000 /* classify only with small networks (keeps the target fast) */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_scratch_file(data, size, "classifier.safetensors");
    cm_classifier *clf = NULL, *again = NULL;
    if (!path || cm_classifier_load(&clf, path) != CM_OK) return 0;
    const cm_classifier_config *c = cm_classifier_config_of(clf);
    size_t P = cm_classifier_param_count(clf), D = c->channels * c->height * c->width;
    if (P <= APPLY_MAX_PARAMS && D <= 4096) {
        double *image = cm_calloc(D + c->classes, sizeof(double));
        if (image) (void)cm_classifier_apply(image + D, NULL, clf, image, 1);
        cm_free(image);
    }
    if (cm_classifier_save(clf, path, NULL, NULL, 0) != CM_OK) abort();
    if (cm_classifier_load(&again, path) != CM_OK) abort();
    if (memcmp(cm_classifier_params(again), cm_classifier_params(clf), P * sizeof(float)) != 0)
        abort();
    cm_classifier_free(again);
    cm_classifier_free(clf);
    return 0;
}
