/* fuzz_safetensors.c: fuzz target of the safetensors reader (cm_safetensors_parse): any bytes
 * either fail with a status or parse, and then the tensors of the names the corpus uses are
 * readable to their last element (ASan checks the bounds). */
#include <string.h>

#include "cm/alloc.h"
#include "cm/io.h"
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    cm_safetensors *file = NULL;
    if (cm_safetensors_parse(&file, data, size, "fuzz.safetensors") != CM_OK) return 0;
    const char *names[] = {"a", "b", "x", "mlp.0.weight", "mlp.0.bias", "train.params"};
    volatile float sink = 0;
    for (size_t n = 0; n < sizeof names / sizeof names[0]; n++) {
        cm_tensor_view view;
        if (cm_safetensors_get(&view, file, names[n]) != CM_OK) continue;
        size_t elements = 1;
        for (size_t d = 0; d < view.ndim; d++) elements *= view.shape[d];
        for (size_t i = 0; i < elements; i++) sink += view.data[i];
    }
    (void)cm_safetensors_metadata(file, "cm.config");
    cm_safetensors_free(file);
    (void)sink;
    return 0;
}
