/* alloc.c: allocation wrapper with overflow checks and a fault-injection hook (see alloc.h). */
#include "cm/alloc.h"

#include <stdint.h>
#include <stdlib.h>

static long fail_countdown = -1; /* -1: never fail */
static long live_count = 0;

static int should_fail(void) {
    if (fail_countdown < 0) return 0;
    if (fail_countdown == 0) return 1;
    fail_countdown--;
    return 0;
}

void *cm_malloc(size_t count, size_t size) {
    if (size != 0 && count > SIZE_MAX / size) return NULL;
    if (should_fail()) return NULL;
    size_t bytes = count * size;
    void *pointer = malloc(bytes ? bytes : 1);
    if (pointer) live_count++;
    return pointer;
}

void *cm_calloc(size_t count, size_t size) {
    if (size != 0 && count > SIZE_MAX / size) return NULL;
    if (should_fail()) return NULL;
    void *pointer = calloc(count ? count : 1, size ? size : 1);
    if (pointer) live_count++;
    return pointer;
}

void cm_free(void *pointer) {
    if (!pointer) return;
    live_count--;
    free(pointer);
}

void cm_alloc_fail_after(long successes) { fail_countdown = successes; }
long cm_alloc_live_count(void) { return live_count; }
