/* sample_main.c: the driver tests/cli_export.sh links with a model exported under the prefix
 * cmx (cm export --prefix cmx): it draws samples through the export's API and writes them as an
 * NPY file (float32 [n, D]) that cm eval and the comparison read.
 *     sample_main OUT.npy N SEED [--static] [--time] [LEVEL ...]
 * With levels it calls cmx_sample_levels (sigmas, or chain indices for lhw models), else
 * cmx_sample; a workspace from malloc unless --static; --time prints the processor seconds of
 * the call (the best of 5). Exit 0, 1 when the export returns an error (printed), 2 on bad usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cmx.h"

static int write_npy(const char *path, const float *values, size_t n, size_t d) {
    char header[128];
    int length = snprintf(header, sizeof header,
                          "{'descr': '<f4', 'fortran_order': False, 'shape': (%zu, %zu), }", n, d);
    int padded = (10 + length + 1 + 63) / 64 * 64 - 10; /* magic + length: 10 bytes, then "\n" */
    FILE *file = fopen(path, "wb");
    if (!file) return 0;
    fwrite("\x93NUMPY\x01\x00", 1, 8, file);
    unsigned char size[2] = {(unsigned char)(padded & 0xFF), (unsigned char)(padded >> 8)};
    fwrite(size, 1, 2, file);
    fwrite(header, 1, (size_t)length, file);
    for (int i = length; i < padded - 1; i++) fputc(' ', file);
    fputc('\n', file);
    size_t written = fwrite(values, sizeof(float), n * d, file);
    return fclose(file) == 0 && written == n * d;
}

/* Processor time of this process (C99's clock): steadier than wall time on a shared machine. */
static double now(void) { return (double)clock() / CLOCKS_PER_SEC; }

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s OUT.npy N SEED [--static] [--time] [LEVEL ...]\n", argv[0]);
        return 2;
    }
    size_t n = strtoull(argv[2], NULL, 10), count = 0;
    unsigned long long seed = strtoull(argv[3], NULL, 10);
    int use_static = 0, timed = 0;
    double levels[CMX_MAX_LEVELS];
    for (int i = 4; i < argc; i++) {
        if (strcmp(argv[i], "--static") == 0) use_static = 1;
        else if (strcmp(argv[i], "--time") == 0) timed = 1;
        else if (count < CMX_MAX_LEVELS) levels[count++] = strtod(argv[i], NULL);
    }
    float *out = malloc(n * CMX_DIM * sizeof(float) + 1);
    void *workspace = use_static ? NULL : malloc(cmx_workspace_size());
    if (!out || (!use_static && !workspace)) return 2;
    double best = 1e300;
    int status = 0;
    for (int repeat = 0; repeat < (timed ? 5 : 1); repeat++) {
        double start = now();
        status = count ? cmx_sample_levels(out, n, seed, levels, count, workspace)
                 : use_static ? cmx_sample(out, n, seed)
                              : cmx_sample_levels(out, n, seed, NULL, 0, workspace);
        double seconds = now() - start;
        if (seconds < best) best = seconds;
    }
    if (status != CMX_OK) {
        fprintf(stderr, "sample_main: the export returned %d\n", status);
        return 1;
    }
    if (timed) printf("%.4f s\n", best);
    int ok = write_npy(argv[1], out, n, CMX_DIM);
    free(out);
    free(workspace);
    return ok ? 0 : 1;
}
