/* harness.c: failure recording and seeds for tests/test.h. */
#include "test.h"

#include <stdarg.h>
#include <stdlib.h>

int cm_test_failures_in_current = 0;

void cm_test_fail(const char *file, int line, const char *format, ...) {
    va_list args;
    va_start(args, format);
    fprintf(stdout, "    FAIL %s:%d: ", file, line);
    vfprintf(stdout, format, args);
    fprintf(stdout, "\n");
    va_end(args);
    cm_test_failures_in_current++;
}

uint64_t cm_test_seed(uint64_t default_seed) {
    const char *text = getenv("CM_TEST_SEED");
    uint64_t seed = text ? strtoull(text, NULL, 10) : default_seed;
    fprintf(stdout, "    seed %llu (replay with CM_TEST_SEED=%llu)\n", (unsigned long long)seed,
            (unsigned long long)seed);
    return seed;
}
