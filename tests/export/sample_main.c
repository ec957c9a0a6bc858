/* sample_main.c: the driver tests/cli_export.sh (and bench/export.sh) links with a model
 * exported under the prefix cmx (cm export --prefix cmx): it draws samples through the export's
 * API and writes them as an NPY file (float32 [n, D]) that cm eval reads.
 *     sample_main OUT.npy N SEED [--static] [--time] [--compare REF.npy] [LEVEL ...]
 * With levels it calls cmx_sample_levels (sigmas, or chain indices for lhw models), else
 * cmx_sample; a workspace from malloc unless --static; --time prints the processor seconds of
 * the call (the best of 5); --compare prints max |out - ref| / max |ref| against a float32 NPY
 * file of the same shape (what cm sample wrote). Exit 0; 1 when the export returns an error
 * (printed) or the comparison cannot be made; 2 on bad usage. */
#include <math.h>
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

/* The max |out - ref| / max |ref| against REF.npy (2-D '<f4', C order, n x d), or -1. */
static double compare(const char *path, const float *out, size_t n, size_t d) {
    unsigned char preamble[10];
    char header[4096];
    FILE *file = fopen(path, "rb");
    if (!file) return -1;
    size_t length = 0, rows = 0, cols = 0;
    if (fread(preamble, 1, 10, file) == 10 && memcmp(preamble, "\x93NUMPY\x01", 7) == 0)
        length = (size_t)preamble[8] | (size_t)preamble[9] << 8;
    if (length == 0 || length >= sizeof header || fread(header, 1, length, file) != length) {
        fclose(file);
        return -1;
    }
    header[length] = '\0';
    /* [N, D], or an image model's [N, H, W] / [N, C, H, W]: cols is the product after N */
    const char *shape = strstr(header, "'shape': (");
    int parsed = shape ? sscanf(shape, "'shape': (%zu, %zu", &rows, &cols) : 0;
    for (const char *p = shape ? strchr(shape, ',') : NULL; parsed == 2 && p && (p = strchr(p + 1, ','));) {
        size_t more;
        if (sscanf(p, ", %zu", &more) == 1) cols *= more;
    }
    if (!strstr(header, "'<f4'") || parsed != 2 || rows != n || cols != d) {
        fclose(file);
        return -1;
    }
    double largest = 0, difference = 0;
    for (size_t i = 0; i < n * d; i++) {
        float ref;
        if (fread(&ref, sizeof ref, 1, file) != 1) {
            fclose(file);
            return -1;
        }
        if (fabs(ref) > largest) largest = fabs(ref);
        if (fabs((double)out[i] - ref) > difference) difference = fabs((double)out[i] - ref);
    }
    fclose(file);
    return largest > 0 ? difference / largest : -1;
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
    const char *reference = NULL;
    double levels[CMX_MAX_LEVELS + 1]; /* one more, to see it refused */
    for (int i = 4; i < argc; i++) {
        if (strcmp(argv[i], "--static") == 0) use_static = 1;
        else if (strcmp(argv[i], "--time") == 0) timed = 1;
        else if (strcmp(argv[i], "--compare") == 0 && i + 1 < argc) reference = argv[++i];
        else if (count <= CMX_MAX_LEVELS) levels[count++] = strtod(argv[i], NULL);
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
    if (ok && reference) {
        double difference = compare(reference, out, n, CMX_DIM);
        if (difference < 0) fprintf(stderr, "sample_main: cannot compare with %s\n", reference);
        else printf("max relative difference %.3g\n", difference);
        ok = difference >= 0;
    }
    free(out);
    free(workspace);
    return ok ? 0 : 1;
}
