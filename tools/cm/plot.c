/* plot.c: PNG figures through PLplot's pngcairo device (see plot.h).
 *
 * PLplot calls exit() when it cannot open its output file and asks on stdin for a device when
 * the requested one is missing, so this file opens the file itself (a temporary name in the
 * target directory, handed over with plsfile, renamed into place when complete) and checks
 * that the driver exists before plinit. Its errors are captured with plsError instead of
 * being printed. Scatter limits come from the 0.5% and 99.5% quantiles so that a few outliers
 * do not squash the picture. Not thread-safe: PLplot keeps global state.
 */
#include "plot.h"

#include <errno.h>
#include <math.h>
#include <plplot.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cm/alloc.h"

#define PLOT_DEVICE "pngcairo"
#define PLOT_MAX_DEVICES 128      /* capacity for plgFileDevs' list (PLplot has ~40 devices) */
#define PLOT_MAX_POINTS 50000000  /* PLINT is 32-bit; far beyond what one figure can show */
#define SCATTER_SIZE 800          /* pixels, square */
#define LINE_WIDTH_PX 900
#define LINE_HEIGHT_PX 600
#define QUANTILE_LOW 0.005        /* scatter limits: 0.5% and 99.5% quantiles of all points */
#define QUANTILE_HIGH 0.995
#define LIMIT_PAD 0.08            /* margin added on each side, as a fraction of the span */
#define MAX_ASPECT 2.0            /* equal scale, but neither span below 1/2 of the other */
#define PAGE_MARGIN 0.3           /* share of the page the title, labels and ticks need */
#define MARKER_CODE 17            /* PLplot symbol 17: small filled dot */
#define MARKER_SCALE 0.45         /* symbol size relative to the default */
#define PLOT_LEGEND_MAX_POINTS 4096 /* points per series of a log-log figure */
#define TEMP_TRIES 16             /* attempts at an unused temporary file name */

/* cmap0 entries we use: 0 background (white), 1 axes and text (black), 2 reference points
 * (grey, half transparent), 3 samples (blue, partly transparent), 4 curves (opaque blue). */
enum { COLOR_BACKGROUND = 0, COLOR_TEXT = 1, COLOR_REFERENCE = 2, COLOR_SAMPLES = 3,
       COLOR_CURVE = 4, COLOR_FIRST_SERIES = 5 };
#define LOGLOG_MAX_SERIES 16
/* cmap0 holds 16 entries by default; the log-log series take entries 5.. (set before plinit) */
#define PLOT_COLOURS (COLOR_FIRST_SERIES + LOGLOG_MAX_SERIES)

static char plplot_error[1024]; /* plabort() writes here (plsError) instead of stderr */
static PLINT plplot_error_code;

typedef struct {
    const char *path;
    char temp_path[4096];
} figure;

static int device_available(void) {
    const char *menu_storage[PLOT_MAX_DEVICES], *name_storage[PLOT_MAX_DEVICES];
    const char **menus = menu_storage, **names = name_storage;
    int count = PLOT_MAX_DEVICES;
    plgFileDevs(&menus, &names, &count);
    for (int i = 0; i < count; i++)
        if (names[i] && strcmp(names[i], PLOT_DEVICE) == 0) return 1;
    return 0;
}

/* Open a temporary file beside `path`, start PLplot on it with a white page of the given size. */
static cm_status figure_begin(figure *fig, const char *path, int width, int height) {
    if (!path || !*path) return cm_error_set(CM_ERR_INVALID, "plot: empty output path");
    if (!device_available())
        return cm_error_set(CM_ERR_UNSUPPORTED, "plot: PLplot device %s is not installed "
                            "(Debian package plplot-driver-cairo)", PLOT_DEVICE);
    fig->path = path;
    FILE *file = NULL;
    static unsigned counter = 0;
    for (int attempt = 0; attempt < TEMP_TRIES && !file; attempt++) {
        int length = snprintf(fig->temp_path, sizeof fig->temp_path, "%s.tmp%ld.%u", path,
                              (long)getpid(), counter++);
        if (length < 0 || (size_t)length >= sizeof fig->temp_path)
            return cm_error_set(CM_ERR_INVALID, "plot: path too long: '%.200s'", path);
        file = fopen(fig->temp_path, "wbx");
        if (!file && errno != EEXIST) break;
    }
    if (!file)
        return cm_error_set(CM_ERR_IO, "plot: cannot write '%.200s': %s", path, strerror(errno));
    plplot_error[0] = '\0';
    plplot_error_code = 0;
    plsError(&plplot_error_code, plplot_error);
    plsdev(PLOT_DEVICE);
    plsfile(file); /* PLplot now owns `file` and closes it in plend */
    plspage(0.0, 0.0, width, height, 0, 0);
    plscolbg(255, 255, 255);
    plscmap0n(PLOT_COLOURS);
    plinit();
    plscol0(COLOR_TEXT, 0, 0, 0);
    plscol0a(COLOR_REFERENCE, 140, 140, 140, 0.5);
    plscol0a(COLOR_SAMPLES, 31, 119, 180, 0.6);
    plscol0(COLOR_CURVE, 31, 119, 180);
    plcol0(COLOR_TEXT);
    return CM_OK;
}

static int has_png_signature(const char *path) {
    static const unsigned char signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1A, '\n'};
    unsigned char head[8];
    FILE *file = fopen(path, "rb");
    if (!file) return 0;
    size_t got = fread(head, 1, sizeof head, file);
    fclose(file);
    return got == sizeof head && memcmp(head, signature, sizeof head) == 0;
}

/* Finish the page, then move the temporary file into place if PLplot reported no error. */
static cm_status figure_end(figure *fig) {
    plend();
    if (plplot_error_code != 0) {
        remove(fig->temp_path);
        char *newline;
        while ((newline = strchr(plplot_error, '\n'))) *newline = ' ';
        return cm_error_set(CM_ERR_IO, "plot '%.200s': PLplot error:%.300s", fig->path,
                            plplot_error);
    }
    if (!has_png_signature(fig->temp_path)) {
        remove(fig->temp_path);
        return cm_error_set(CM_ERR_IO, "plot '%.200s': PLplot wrote no PNG image", fig->path);
    }
    if (rename(fig->temp_path, fig->path) != 0) {
        int error = errno;
        remove(fig->temp_path);
        return cm_error_set(CM_ERR_IO, "plot: cannot rename to '%.200s': %s", fig->path,
                            strerror(error));
    }
    return CM_OK;
}

static int compare_doubles(const void *left, const void *right) {
    double a = *(const double *)left, b = *(const double *)right;
    return (a > b) - (a < b);
}

/* [low, high] from the QUANTILE_LOW/HIGH quantiles of x[0..n) (sorted in place), padded. */
static void robust_limits(double *low, double *high, double *x, size_t n) {
    if (n == 0) {
        *low = -1.0;
        *high = 1.0;
        return;
    }
    qsort(x, n, sizeof(double), compare_doubles);
    double lo = x[(size_t)(QUANTILE_LOW * (double)(n - 1))];
    double hi = x[(size_t)ceil(QUANTILE_HIGH * (double)(n - 1))];
    double span = hi - lo;
    if (!(span > 0.0)) span = fabs(lo) > 0.0 ? fabs(lo) : 1.0; /* a single value: show around it */
    *low = lo - LIMIT_PAD * span;
    *high = hi + LIMIT_PAD * span;
}

/* Widen the narrower of two ranges about its centre so that it is at least 1/MAX_ASPECT of
 * the other: with equal scale on both axes, a nearly 1-D cloud still gets a usable frame. */
static void balance_ranges(double *x0, double *x1, double *y0, double *y1) {
    double sx = *x1 - *x0, sy = *y1 - *y0;
    if (sy < sx / MAX_ASPECT) {
        double centre = 0.5 * (*y0 + *y1);
        *y0 = centre - 0.5 * sx / MAX_ASPECT;
        *y1 = centre + 0.5 * sx / MAX_ASPECT;
    } else if (sx < sy / MAX_ASPECT) {
        double centre = 0.5 * (*x0 + *x1);
        *x0 = centre - 0.5 * sy / MAX_ASPECT;
        *x1 = centre + 0.5 * sy / MAX_ASPECT;
    }
}

/* Copy the finite (x, y) pairs (first two coordinates of d-dim points) into xs, ys. */
static size_t gather_points(double *xs, double *ys, const double *points, size_t count,
                            size_t d) {
    size_t kept = 0;
    for (size_t i = 0; i < count; i++) {
        double x = points[i * d], y = points[i * d + 1];
        if (!isfinite(x) || !isfinite(y)) continue;
        xs[kept] = x;
        ys[kept] = y;
        kept++;
    }
    return kept;
}

cm_status cm_plot_scatter_png(const char *path, const double *reference, size_t reference_count,
                              const double *samples, size_t sample_count, size_t d,
                              const char *title) {
    if (d < 2) return cm_error_set(CM_ERR_DIMENSION, "scatter plot needs d >= 2 (got %zu)", d);
    if ((reference_count && !reference) || (sample_count && !samples))
        return cm_error_set(CM_ERR_INVALID, "scatter plot: NULL points");
    if (reference_count > PLOT_MAX_POINTS || sample_count > PLOT_MAX_POINTS)
        return cm_error_set(CM_ERR_INVALID, "scatter plot: more than %d points per set",
                            PLOT_MAX_POINTS);
    size_t total = reference_count + sample_count;
    /* xs | ys for reference then samples, and one scratch column for the quantiles */
    double *buffer = cm_malloc(3 * total + 1, sizeof(double));
    if (!buffer) return cm_error_set(CM_ERR_NOMEM, "scatter plot: no memory for %zu points", total);
    double *xs = buffer, *ys = buffer + total, *scratch = buffer + 2 * total;
    size_t n_ref = gather_points(xs, ys, reference, reference_count, d);
    size_t n_smp = gather_points(xs + n_ref, ys + n_ref, samples, sample_count, d);
    size_t kept = n_ref + n_smp;
    double x0, x1, y0, y1;
    memcpy(scratch, xs, kept * sizeof(double));
    robust_limits(&x0, &x1, scratch, kept);
    memcpy(scratch, ys, kept * sizeof(double));
    robust_limits(&y0, &y1, scratch, kept);
    balance_ranges(&x0, &x1, &y0, &y1);

    /* shrink the page along the shorter range so the equal-scale frame fills it */
    double ratio = (y1 - y0) / (x1 - x0);
    int width = SCATTER_SIZE, height = SCATTER_SIZE;
    if (ratio < 1.0) height = (int)(SCATTER_SIZE * (PAGE_MARGIN + (1.0 - PAGE_MARGIN) * ratio));
    if (ratio > 1.0) width = (int)(SCATTER_SIZE * (PAGE_MARGIN + (1.0 - PAGE_MARGIN) / ratio));
    figure fig;
    cm_status status = figure_begin(&fig, path, width, height);
    if (status != CM_OK) {
        cm_free(buffer);
        return status;
    }
    plenv(x0, x1, y0, y1, 1, 0); /* just = 1: equal scale on both axes */
    pllab("x#d0#u", "x#d1#u", title ? title : "");
    plssym(0.0, MARKER_SCALE);
    if (n_ref) {
        plcol0(COLOR_REFERENCE);
        plpoin((PLINT)n_ref, xs, ys, MARKER_CODE);
    }
    if (n_smp) {
        plcol0(COLOR_SAMPLES);
        plpoin((PLINT)n_smp, xs + n_ref, ys + n_ref, MARKER_CODE);
    }
    status = figure_end(&fig);
    cm_free(buffer);
    return status;
}

cm_status cm_plot_line_png(const char *path, const double *x, const double *y, size_t n,
                           const char *title, const char *x_label, const char *y_label,
                           int log_y) {
    if (n && (!x || !y)) return cm_error_set(CM_ERR_INVALID, "line plot: NULL data");
    if (n > PLOT_MAX_POINTS)
        return cm_error_set(CM_ERR_INVALID, "line plot: more than %d points", PLOT_MAX_POINTS);
    double *buffer = cm_malloc(2 * n + 1, sizeof(double));
    if (!buffer) return cm_error_set(CM_ERR_NOMEM, "line plot: no memory for %zu points", n);
    double *xs = buffer, *ys = buffer + n;
    size_t kept = 0;
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]) || !isfinite(y[i]) || (log_y && !(y[i] > 0.0))) continue;
        xs[kept] = x[i];
        ys[kept] = log_y ? log10(y[i]) : y[i];
        x0 = fmin(x0, xs[kept]);
        x1 = fmax(x1, xs[kept]);
        y0 = fmin(y0, ys[kept]);
        y1 = fmax(y1, ys[kept]);
        kept++;
    }
    if (kept == 0) x0 = y0 = 0.0, x1 = y1 = 1.0;
    if (!(x1 > x0)) x0 -= 0.5, x1 += 0.5;
    if (!(y1 > y0)) y0 -= 0.5, y1 += 0.5;
    double pad = LIMIT_PAD * (y1 - y0);
    y0 -= pad;
    y1 += pad;

    figure fig;
    cm_status status = figure_begin(&fig, path, LINE_WIDTH_PX, LINE_HEIGHT_PX);
    if (status != CM_OK) {
        cm_free(buffer);
        return status;
    }
    plenv(x0, x1, y0, y1, 0, log_y ? 20 : 0); /* axis 20: logarithmic y labels */
    pllab(x_label ? x_label : "", y_label ? y_label : "", title ? title : "");
    plcol0(COLOR_CURVE);
    plwidth(2.0);
    if (kept > 1) plline((PLINT)kept, xs, ys);
    if (kept == 1) plpoin(1, xs, ys, MARKER_CODE);
    status = figure_end(&fig);
    cm_free(buffer);
    return status;
}

#define LOGLOG_WIDTH_PX 1200 /* room for the legend right of the frame */

/* Distinct colours for the series of a log-log figure (cmap0 entries from 5 on). */
static const unsigned char SERIES_RGB[LOGLOG_MAX_SERIES][3] = {
    {31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}, {148, 103, 189},
    {140, 86, 75}, {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207},
    {0, 0, 128}, {128, 0, 0}, {0, 128, 0}, {128, 128, 0}, {0, 128, 128}, {64, 64, 64}};

cm_status cm_plot_loglog_png(const char *path, const cm_plot_series *series, size_t count,
                             const char *title, const char *x_label, const char *y_label) {
    if (count == 0 || count > LOGLOG_MAX_SERIES || !series)
        return cm_error_set(CM_ERR_INVALID, "log-log plot: %zu series (1..%d)", count,
                            LOGLOG_MAX_SERIES);
    size_t total = 0;
    for (size_t s = 0; s < count; s++) {
        if (series[s].n && (!series[s].x || !series[s].y))
            return cm_error_set(CM_ERR_INVALID, "log-log plot: NULL data in series %zu", s);
        if (series[s].n > PLOT_MAX_POINTS)
            return cm_error_set(CM_ERR_INVALID, "log-log plot: more than %d points", PLOT_MAX_POINTS);
        total += series[s].n;
    }
    double *buffer = cm_malloc(2 * total + 1, sizeof(double));
    if (!buffer) return cm_error_set(CM_ERR_NOMEM, "log-log plot: %zu points", total);
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    size_t kept_at[LOGLOG_MAX_SERIES + 1], kept = 0;
    for (size_t s = 0; s < count; s++) {
        kept_at[s] = kept;
        for (size_t i = 0; i < series[s].n; i++) {
            double x = series[s].x[i], y = series[s].y[i];
            if (!(x > 0.0) || !(y > 0.0) || !isfinite(x) || !isfinite(y)) continue;
            buffer[2 * kept] = log10(x);
            buffer[2 * kept + 1] = log10(y);
            x0 = fmin(x0, buffer[2 * kept]);
            x1 = fmax(x1, buffer[2 * kept]);
            y0 = fmin(y0, buffer[2 * kept + 1]);
            y1 = fmax(y1, buffer[2 * kept + 1]);
            kept++;
        }
    }
    kept_at[count] = kept;
    if (kept == 0) x0 = y0 = 0.0, x1 = y1 = 1.0;
    if (!(x1 > x0)) x0 -= 0.5, x1 += 0.5;
    if (!(y1 > y0)) y0 -= 0.5, y1 += 0.5;
    double xpad = LIMIT_PAD * (x1 - x0), ypad = LIMIT_PAD * (y1 - y0);
    figure fig;
    cm_status status = figure_begin(&fig, path, LOGLOG_WIDTH_PX, LINE_HEIGHT_PX);
    if (status != CM_OK) {
        cm_free(buffer);
        return status;
    }
    /* the frame on the left 60% of the page, the legend (one coloured line of text per series)
     * to its right, so that it never hides a curve */
    pladv(0);
    plvpor(0.10, 0.62, 0.12, 0.90);
    plwind(x0 - xpad, x1 + xpad, y0 - ypad, y1 + ypad);
    plbox("bcnstl", 0.0, 0, "bcnstvl", 0.0, 0);
    pllab(x_label ? x_label : "", y_label ? y_label : "", title ? title : "");
    double xs[PLOT_LEGEND_MAX_POINTS], ys[PLOT_LEGEND_MAX_POINTS];
    for (size_t s = 0; s < count; s++) {
        PLINT colour = (PLINT)(COLOR_FIRST_SERIES + s);
        plscol0(colour, SERIES_RGB[s][0], SERIES_RGB[s][1], SERIES_RGB[s][2]);
        plcol0(colour);
        size_t m = kept_at[s + 1] - kept_at[s];
        if (m > PLOT_LEGEND_MAX_POINTS) m = PLOT_LEGEND_MAX_POINTS;
        for (size_t i = 0; i < m; i++) {
            xs[i] = buffer[2 * (kept_at[s] + i)];
            ys[i] = buffer[2 * (kept_at[s] + i) + 1];
        }
        plwidth(2.0);
        pllsty(series[s].style ? 2 : 1);
        if (m > 1) plline((PLINT)m, xs, ys);
        pllsty(1);
        if (!series[s].style) plpoin((PLINT)m, xs, ys, 4);
        char text[200];
        snprintf(text, sizeof text, "%s%s", series[s].style ? "- - " : "-o- ",
                 series[s].label ? series[s].label : "");
        plschr(0.0, 0.8);
        plmtex("rv", 1.0, 0.97 - 0.06 * (double)s, 0.0, text);
        plschr(0.0, 1.0);
    }
    status = figure_end(&fig);
    cm_free(buffer);
    return status;
}
