/* test_plot.c: PNG figures (suite `plot`).
 *
 * Checks that figures are written as complete PNG files (signature, non-trivial size), that an
 * unwritable path is an error rather than PLplot's exit(), that nothing is left behind on
 * failure and that no memory leaks. What the figure looks like is checked by eye.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cm/alloc.h"
#include "plot.h"
#include "cm/rng.h"
#include "test.h"

#define MIN_PNG_BYTES 2000 /* an 800 x 800 figure with axes and text is far larger */

/* Size of a PNG file, or -1 when it is missing or lacks the PNG signature. */
static long png_size(const char *path) {
    static const unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    unsigned char head[8];
    FILE *file = fopen(path, "rb");
    if (!file) return -1;
    size_t got = fread(head, 1, sizeof head, file);
    fseek(file, 0, SEEK_END);
    long size = ftell(file);
    fclose(file);
    return got == sizeof head && memcmp(head, signature, sizeof head) == 0 ? size : -1;
}

static void temp_png(char *path, size_t size, const char *name) {
    snprintf(path, size, "/tmp/cm_test_plot_%ld_%s.png", (long)getpid(), name);
}

static void test_scatter_png(void) {
    const size_t n = 2000, d = 3;
    double *reference = malloc(n * d * sizeof(double)), *samples = malloc(n * d * sizeof(double));
    cm_rng rng;
    cm_rng_init(&rng, 31);
    for (size_t i = 0; i < n; i++) {
        double angle = 6.283185307179586 * cm_rng_uniform(&rng);
        reference[i * d] = 2.0 * cos(angle);
        reference[i * d + 1] = 2.0 * sin(angle);
        reference[i * d + 2] = 0.0;
        samples[i * d] = 0.5 * cm_rng_normal(&rng);
        samples[i * d + 1] = 0.5 * cm_rng_normal(&rng);
        samples[i * d + 2] = 1.0;
    }
    samples[0] = 1e6;  /* an outlier must not break the limits */
    samples[4] = NAN;  /* non-finite points are skipped */
    char path[256];
    temp_png(path, sizeof path, "scatter");
    long live = cm_alloc_live_count();
    CM_CHECK_OK(cm_plot_scatter_png(path, reference, n, samples, n, d, "circle and samples"));
    CM_CHECK(cm_alloc_live_count() == live, "leak");
    long size = png_size(path);
    CM_CHECK(size > MIN_PNG_BYTES, "%s: PNG size %ld", path, size);
    /* overwriting an existing figure, and empty sets */
    CM_CHECK_OK(cm_plot_scatter_png(path, NULL, 0, samples, n, d, NULL));
    CM_CHECK_OK(cm_plot_scatter_png(path, reference, n, NULL, 0, d, "reference only"));
    CM_CHECK_OK(cm_plot_scatter_png(path, NULL, 0, NULL, 0, d, "empty"));
    CM_CHECK(png_size(path) > MIN_PNG_BYTES, "empty figure");
    remove(path);
    CM_CHECK(cm_plot_scatter_png(path, reference, n, samples, n, 1, "d = 1") == CM_ERR_DIMENSION,
             "d = 1 accepted");
    free(reference);
    free(samples);
}

static void test_line_png(void) {
    const size_t n = 300;
    double x[300], y[300];
    for (size_t i = 0; i < n; i++) {
        x[i] = (double)i;
        y[i] = 10.0 * exp(-(double)i / 60.0) + 0.01;
    }
    y[10] = 0.0;  /* skipped on a log axis */
    y[11] = -1.0;
    char path[256];
    temp_png(path, sizeof path, "line");
    long live = cm_alloc_live_count();
    CM_CHECK_OK(cm_plot_line_png(path, x, y, n, "training loss", "step", "loss", 1));
    CM_CHECK(png_size(path) > MIN_PNG_BYTES, "log-y PNG");
    CM_CHECK_OK(cm_plot_line_png(path, x, y, n, "training loss", "step", "loss", 0));
    CM_CHECK(png_size(path) > MIN_PNG_BYTES, "linear PNG");
    CM_CHECK_OK(cm_plot_line_png(path, x, y, 1, NULL, NULL, NULL, 0));
    CM_CHECK_OK(cm_plot_line_png(path, x, y, 0, "no points", NULL, NULL, 1));
    CM_CHECK(cm_alloc_live_count() == live, "leak");
    remove(path);
}

/* A log-log figure with the most series it accepts (16: each its own colour-map entry; PLplot's
 * default map has 16 entries, so series 11.. failed before plot.c enlarged it) and one more. */
static void test_loglog_most_series(void) {
    enum { SERIES = 16, POINTS = 5 };
    static double x[SERIES + 1][POINTS], y[SERIES + 1][POINTS];
    cm_plot_series series[SERIES + 1];
    for (int s = 0; s <= SERIES; s++) {
        for (int i = 0; i < POINTS; i++) x[s][i] = 1 << i, y[s][i] = (s + 1.0) / (i + 1.0);
        series[s] = (cm_plot_series){.x = x[s], .y = y[s], .n = POINTS, .label = "series",
                                     .style = s % 2};
    }
    char path[256];
    temp_png(path, sizeof path, "loglog");
    CM_CHECK_OK(cm_plot_loglog_png(path, series, SERIES, "16 series", "NFE", "W1"));
    CM_CHECK(png_size(path) > MIN_PNG_BYTES, "log-log PNG");
    CM_CHECK(cm_plot_loglog_png(path, series, SERIES + 1, NULL, NULL, NULL) == CM_ERR_INVALID,
             "17 series accepted");
    remove(path);
}

static void test_unwritable_path(void) {
    const double points[4] = {0.0, 1.0, 1.0, 0.0};
    long live = cm_alloc_live_count();
    const char *path = "/nonexistent-cm-dir/figure.png";
    cm_status status = cm_plot_scatter_png(path, points, 2, NULL, 0, 2, "x");
    CM_CHECK(status == CM_ERR_IO, "scatter to %s: %s", path, cm_status_name(status));
    CM_CHECK(strstr(cm_error_detail(), "nonexistent-cm-dir") != NULL, "detail: %s",
             cm_error_detail());
    status = cm_plot_line_png(path, points, points + 2, 2, "x", "x", "y", 0);
    CM_CHECK(status == CM_ERR_IO, "line to %s: %s", path, cm_status_name(status));
    CM_CHECK(cm_plot_line_png("", points, points, 2, "x", "x", "y", 0) != CM_OK, "empty path");
    CM_CHECK(cm_alloc_live_count() == live, "leak");
}

const cm_test_case cm_tests_plot[] = {
    {"scatter_png", test_scatter_png},
    {"line_png", test_line_png},
    {"loglog_most_series", test_loglog_most_series},
    {"unwritable_path", test_unwritable_path},
    {NULL, NULL},
};
