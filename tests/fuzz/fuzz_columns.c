/* fuzz_columns.c: fuzz target of column lists (cm_data_parse_columns, the LIST of
 * FILE:columns=LIST and of --columns). The input's first line is a header of names, the rest
 * the list: any list either resolves to distinct in-range columns or fails with a status. */
#include <stdlib.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/data.h"
#include "fuzz.h"

#define COLUMNS_MAX 64 /* names taken from the header line */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *text = fuzz_text(data, size);
    if (!text) return 0;
    char *newline = strchr(text, '\n');
    const char *list = newline ? newline + 1 : text;
    const char *names[COLUMNS_MAX];
    size_t cols = 0;
    if (newline) {
        *newline = '\0';
        for (char *name = text; cols < COLUMNS_MAX;) {
            char *comma = strchr(name, ',');
            names[cols++] = name;
            if (!comma) break;
            *comma = '\0';
            name = comma + 1;
        }
    } else {
        cols = 8; /* no header: indices only */
    }
    size_t chosen[COLUMNS_MAX], count = 0;
    if (cm_data_parse_columns(chosen, &count, list, newline ? names : NULL, cols) == CM_OK) {
        if (count == 0 || count > cols) abort();
        for (size_t k = 0; k < count; k++) {
            if (chosen[k] >= cols) abort();
            for (size_t l = 0; l < k; l++)
                if (chosen[l] == chosen[k]) abort();
        }
    }
    free(text);
    return 0;
}
