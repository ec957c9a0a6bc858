/* fuzz.h: what the fuzz targets share: the libFuzzer entry point they define, and a scratch
 * file for the readers that take a path (model and checkpoint loading).
 *
 * Each tests/fuzz/fuzz_<target>.c is linked either with libFuzzer (make fuzz: clang
 * -fsanitize=fuzzer,address,undefined) or with replay.c, a plain main() that feeds it every file
 * of its committed corpus tests/fuzz/corpus/<target>/ (scripts/run-tests, in every CI run). A
 * target aborts only when an invariant breaks (a round trip that changes a value); any error
 * status is an expected answer to a bad input.
 */
#ifndef CM_FUZZ_H
#define CM_FUZZ_H

#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char fuzz_scratch_path[128];

static void fuzz_remove_scratch(void) { unlink(fuzz_scratch_path); }

/* Write data[size] to /tmp/cm-fuzz-<pid>-<name> (removed at exit); NULL when that fails. */
static inline const char *fuzz_scratch_file(const uint8_t *data, size_t size, const char *name) {
    if (!fuzz_scratch_path[0]) {
        snprintf(fuzz_scratch_path, sizeof fuzz_scratch_path, "/tmp/cm-fuzz-%ld-%s",
                 (long)getpid(), name);
        atexit(fuzz_remove_scratch);
    }
    int fd = open(fuzz_scratch_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return NULL;
    size_t done = 0;
    while (done < size) {
        ssize_t wrote = write(fd, data + done, size - done);
        if (wrote <= 0) break;
        done += (size_t)wrote;
    }
    close(fd);
    return done == size ? fuzz_scratch_path : NULL;
}

/* A NUL-terminated copy of data[size] (malloc'ed; the caller frees), or NULL. */
static inline char *fuzz_text(const uint8_t *data, size_t size) {
    char *text = malloc(size + 1);
    if (!text) return NULL;
    for (size_t i = 0; i < size; i++) text[i] = (char)data[i];
    text[size] = '\0';
    return text;
}

#endif
