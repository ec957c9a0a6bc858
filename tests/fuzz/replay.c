/* replay.c: a plain driver for a fuzz target without libFuzzer: feeds every file named on the
 * command line, or found in a directory named there, to LLVMFuzzerTestOneInput once. Built with
 * each tests/fuzz/fuzz_<target>.c by `make fuzz-replay` and run by scripts/run-tests over the
 * committed corpus, so crashes found by fuzzing stay fixed (under ASan in the sanitizer tier).
 * Usage: replay_<target> DIR|FILE...   Prints "replay: N inputs" and exits 0, or 1 when no
 * input was found or one could not be read.
 */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cm/alloc.h"
#include "cm/io.h"
#include "fuzz.h"

#define REPLAY_MAX_BYTES ((uint64_t)1 << 26) /* corpus files are small; 64 MiB is plenty */
#define REPLAY_PATH_MAX 4096

static int replay_file(const char *path) {
    void *bytes = NULL;
    size_t size = 0;
    if (cm_file_read_all(&bytes, &size, path, REPLAY_MAX_BYTES) != CM_OK) {
        fprintf(stderr, "replay: %s\n", cm_error_detail());
        return 0;
    }
    LLVMFuzzerTestOneInput(bytes, size);
    cm_free(bytes);
    return 1;
}

int main(int argc, char **argv) {
    size_t inputs = 0;
    int failed = 0;
    for (int i = 1; i < argc; i++) {
        struct stat info;
        if (stat(argv[i], &info) != 0) {
            fprintf(stderr, "replay: %s: no such file or directory\n", argv[i]);
            failed = 1;
            continue;
        }
        if (!S_ISDIR(info.st_mode)) {
            failed |= !replay_file(argv[i]);
            inputs++;
            continue;
        }
        DIR *directory = opendir(argv[i]);
        struct dirent *entry;
        while (directory && (entry = readdir(directory)) != NULL) {
            char path[REPLAY_PATH_MAX];
            if (entry->d_name[0] == '.') continue;
            snprintf(path, sizeof path, "%s/%s", argv[i], entry->d_name);
            failed |= !replay_file(path);
            inputs++;
        }
        if (directory) closedir(directory);
    }
    printf("replay: %zu inputs\n", inputs);
    return failed || inputs == 0;
}
