/* test_plot.c: PNG figures (suite `plot`).
 *
 * Checks that figures are written as complete PNG files (signature, non-trivial size), that an
 * unwritable path is an error rather than PLplot's exit(), that nothing is left behind on
 * failure and that no memory leaks; and, through cm_plot_report, that nothing is dropped
 * silently: points a log axis cannot show and samples outside a scatter's frame are counted,
 * a log axis of less than a decade gets labelled ticks, a huge scatter is a stated subsample.
 * What the figure looks like is checked by eye.
 */
#include <math.h>
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

/* Ticks of log axes: at least two inside the range whatever its span, increasing; decades when
 * it spans several (PLplot labelled only decades, so an axis of less than one had none). */
static void test_log_ticks(void) {
    const double ranges[][2] = {{log10(0.3), log10(0.9)}, {0.0, log10(8.0)}, {-3.0, 2.0},
                                {log10(0.31), log10(0.32)}, {-0.2, 0.7}, {5.0, 5.0001},
                                {-300.0, 300.0}};
    for (size_t k = 0; k < sizeof ranges / sizeof ranges[0]; k++) {
        double ticks[16], low = ranges[k][0], high = ranges[k][1];
        size_t count = cm_plot_log_ticks(ticks, 16, low, high);
        CM_CHECK(count >= 2 && count <= 16, "[%g, %g]: %zu ticks", low, high, count);
        for (size_t i = 0; i < count; i++) {
            CM_CHECK(ticks[i] > 0.0 && log10(ticks[i]) >= low - 1e-9 &&
                         log10(ticks[i]) <= high + 1e-9, "[%g, %g]: tick %g outside", low, high,
                     ticks[i]);
            CM_CHECK(i == 0 || ticks[i] > ticks[i - 1], "[%g, %g]: ticks not increasing", low,
                     high);
        }
    }
    double ticks[16];
    CM_CHECK(cm_plot_log_ticks(ticks, 16, -3.0, 2.0) == 6 && ticks[0] == 1e-3 && ticks[5] == 100.0,
             "decades of [1e-3, 1e2]");
    CM_CHECK(cm_plot_log_ticks(ticks, 16, 0.0, log10(8.0)) == 3 && ticks[1] == 2.0, "1, 2, 5");
    CM_CHECK(cm_plot_log_ticks(ticks, 16, 1.0, 1.0) == 0, "empty range");
}

/* The default loss figure: a loss between 0.35 and 0.85 on a log axis is less than a decade;
 * its y axis must carry labels, and the points <= 0 or NaN are counted, not dropped silently. */
static void test_line_report(void) {
    double x[200], y[200];
    for (size_t i = 0; i < 200; i++) {
        x[i] = 50.0 * (double)i;
        y[i] = 0.35 + 0.5 * exp(-(double)i / 40.0);
    }
    y[3] = 0.0;
    y[4] = -2.0;
    y[5] = NAN;
    char path[256];
    temp_png(path, sizeof path, "line_report");
    cm_plot_report r;
    CM_CHECK_OK(cm_plot_line(&r, path, x, y, 200, "training loss", "step", "loss", 1));
    CM_CHECK(r.y_labels >= 3, "log y axis of 0.35..0.85: %zu labels", r.y_labels);
    CM_CHECK(r.x_labels >= 3, "x axis: %zu labels", r.x_labels);
    CM_CHECK(r.not_positive == 2 && r.not_finite == 1 && r.drawn == 197,
             "drawn %zu, <= 0 %zu, not finite %zu", r.drawn, r.not_positive, r.not_finite);
    CM_CHECK_OK(cm_plot_line(&r, path, x, y, 200, "linear", "step", "loss", 0));
    CM_CHECK(r.not_positive == 0 && r.not_finite == 1 && r.drawn == 199, "linear: drawn %zu",
             r.drawn);
    remove(path);
}

/* A log-log figure over NFE 1..8 (less than a decade on x): labelled ticks on both axes and
 * the point at W1 = 0 counted. */
static void test_loglog_report(void) {
    double nfe[4] = {1, 2, 4, 8}, w1[4] = {0.12, 0.09, 0.0, 0.075};
    cm_plot_series series[1] = {{nfe, w1, 4, "model", 0}};
    char path[256];
    temp_png(path, sizeof path, "loglog_report");
    cm_plot_report r;
    CM_CHECK_OK(cm_plot_loglog(&r, path, series, 1, "W1 against NFE", "NFE", "W1"));
    CM_CHECK(r.x_labels >= 3 && r.y_labels >= 2, "labels x %zu, y %zu", r.x_labels, r.y_labels);
    CM_CHECK(r.not_positive == 1 && r.drawn == 3, "drawn %zu, <= 0 %zu", r.drawn, r.not_positive);
    remove(path);
}

/* Samples far from the data widen the frame instead of being cut off; only outliers beyond
 * the samples' own robust range lie outside, and they are counted. */
static void test_scatter_report(void) {
    enum { N = 2000, FAR = 300, OUTLIERS = 3 };
    double *reference = malloc(N * 2 * sizeof(double)), *samples = malloc(N * 2 * sizeof(double));
    cm_rng rng;
    cm_rng_init(&rng, 41);
    for (size_t i = 0; i < N; i++) {
        reference[2 * i] = cm_rng_normal(&rng);
        reference[2 * i + 1] = cm_rng_normal(&rng);
        samples[2 * i] = cm_rng_normal(&rng) + (i < FAR ? 12.0 : 0.0); /* 15% far to the right */
        samples[2 * i + 1] = cm_rng_normal(&rng);
    }
    for (size_t i = 0; i < OUTLIERS; i++) samples[2 * (N - 1 - i)] = 1e6;
    samples[2 * 500 + 1] = NAN;
    char path[256];
    temp_png(path, sizeof path, "scatter_report");
    cm_plot_report r;
    CM_CHECK_OK(cm_plot_scatter(&r, path, reference, N, samples, N, 2, "far samples"));
    CM_CHECK(r.outside == OUTLIERS, "outside %zu, expected %d", r.outside, OUTLIERS);
    CM_CHECK(r.not_finite == 1 && r.drawn == 2 * N - OUTLIERS - 1 && r.subsampled_from == 0,
             "drawn %zu, not finite %zu", r.drawn, r.not_finite);
    /* very many samples: a stated subsample */
    size_t many = 3 * CM_PLOT_SCATTER_MAX_POINTS + 7;
    double *big = malloc(many * 2 * sizeof(double));
    for (size_t i = 0; i < 2 * many; i++) big[i] = cm_rng_normal(&rng);
    CM_CHECK_OK(cm_plot_scatter(&r, path, reference, N, big, many, 2, "many"));
    CM_CHECK(r.subsampled_from == N + many && r.drawn <= N + CM_PLOT_SCATTER_MAX_POINTS &&
                 r.drawn >= 0.98 * (N + CM_PLOT_SCATTER_MAX_POINTS),
             "subsample: drawn %zu of %zu", r.drawn, r.subsampled_from);
    remove(path);
    free(big);
    free(reference);
    free(samples);
}

/* 1-D samples: a histogram over the data's histogram and density. */
static void test_histogram(void) {
    enum { N = 3000 };
    double *reference = malloc(N * sizeof(double)), *samples = malloc(N * sizeof(double));
    double density_x[200], density_y[200];
    cm_rng rng;
    cm_rng_init(&rng, 43);
    for (size_t i = 0; i < N; i++) {
        reference[i] = cm_rng_normal(&rng) + (i % 2 ? 2.0 : -2.0);
        samples[i] = 8.0 * cm_rng_uniform(&rng) - 4.0; /* bounded: only samples[0] lies out */
    }
    samples[0] = 1e9;
    samples[1] = INFINITY;
    for (size_t i = 0; i < 200; i++) {
        double x = -6.0 + 12.0 * (double)i / 199.0, a = x - 2.0, b = x + 2.0;
        density_x[i] = x;
        density_y[i] = 0.5 * (exp(-0.5 * a * a) + exp(-0.5 * b * b)) / sqrt(2.0 * 3.14159265358979);
    }
    char path[256];
    temp_png(path, sizeof path, "histogram");
    long live = cm_alloc_live_count();
    cm_plot_report r;
    CM_CHECK_OK(cm_plot_histogram(&r, path, reference, N, samples, N, density_x, density_y, 200,
                                  "1-D samples"));
    CM_CHECK(png_size(path) > MIN_PNG_BYTES, "histogram PNG");
    CM_CHECK(r.outside == 1 && r.not_finite == 1, "outside %zu, not finite %zu", r.outside,
             r.not_finite);
    CM_CHECK(r.x_labels >= 3 && r.y_labels >= 3, "labels x %zu y %zu", r.x_labels, r.y_labels);
    CM_CHECK_OK(cm_plot_histogram(&r, path, NULL, 0, samples, N, NULL, NULL, 0, NULL));
    CM_CHECK_OK(cm_plot_histogram(&r, path, reference, N, NULL, 0, NULL, NULL, 0, "data only"));
    CM_CHECK_OK(cm_plot_histogram(&r, path, NULL, 0, NULL, 0, NULL, NULL, 0, "empty"));
    CM_CHECK(cm_plot_histogram(&r, path, NULL, 5, NULL, 0, NULL, NULL, 0, NULL) == CM_ERR_INVALID,
             "NULL values accepted");
    CM_CHECK(cm_alloc_live_count() == live, "leak");
    remove(path);
    free(reference);
    free(samples);
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
    {"log_ticks", test_log_ticks},
    {"line_report", test_line_report},
    {"loglog_report", test_loglog_report},
    {"scatter_report", test_scatter_report},
    {"histogram", test_histogram},
    {NULL, NULL},
};
