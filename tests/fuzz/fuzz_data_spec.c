/* fuzz_data_spec.c: fuzz target of data source strings (cm_data_open on "moons", "gauss:...",
 * "gmm:..."): any text either fails with a status or opens a source that draws points and
 * whose canonical description opens again to the same description. Strings that name files
 * (a '/' or a .csv/.npy suffix) are skipped: the file readers have their own targets. */
#include <stdlib.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/data.h"
#include "fuzz.h"

#define DRAWS 4

static int names_a_file(const char *text) {
    size_t n = strlen(text);
    return strchr(text, '/') != NULL ||
           (n >= 4 && (strcmp(text + n - 4, ".csv") == 0 || strcmp(text + n - 4, ".npy") == 0));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = fuzz_text(data, size);
    cm_data *source = NULL, *again = NULL;
    if (!text || names_a_file(text) || cm_data_open(&source, text) != CM_OK) {
        free(text);
        return 0;
    }
    double *points = cm_malloc(DRAWS * cm_data_dim(source), sizeof(double));
    cm_rng rng;
    cm_rng_init(&rng, 1);
    if (points) cm_data_sample(source, &rng, DRAWS, points);
    if (cm_data_open(&again, cm_data_describe(source)) != CM_OK) abort();
    if (strcmp(cm_data_describe(again), cm_data_describe(source)) != 0) abort();
    cm_free(points);
    cm_data_free(again);
    cm_data_free(source);
    free(text);
    return 0;
}
