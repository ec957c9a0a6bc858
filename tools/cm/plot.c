/* plot.c: PNG figures through PLplot's pngcairo device (see plot.h).
 *
 * PLplot calls exit() when it cannot open its output file and asks on stdin for a device when
 * the requested one is missing, so this file opens the file itself (a temporary name in the
 * target directory, handed over with plsfile, renamed into place when complete) and checks
 * that the driver exists before plinit. Its errors are captured with plsError instead of
 * being printed. Frames come from the 0.5% and 99.5% quantiles of each point set (the union),
 * so a few outliers do not squash the picture and are counted instead. Axis ticks are placed
 * here, not by PLplot, because PLplot labels a logarithmic axis only at whole decades (an axis
 * of less than a decade got no label at all). Not thread-safe: PLplot keeps global state.
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
#define TICKS_MAX 16               /* labelled ticks per axis */
#define TICKS_TARGET 6             /* about this many on a linear axis */
#define TICK_LENGTH 0.015          /* tick marks, as a fraction of the other axis' span */
#define HISTOGRAM_MIN_BINS 10
#define HISTOGRAM_MAX_BINS 100
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

/* ---------------------------------------------------------------- frames */

typedef struct {
    double x0, x1, y0, y1;
} frame;

/* Widen [*low, *high] to the QUANTILE_LOW/HIGH quantiles of x[0..n) (sorted in place), padded;
 * an empty set leaves it alone. */
static void widen_to_quantiles(double *low, double *high, double *x, size_t n) {
    if (n == 0) return;
    qsort(x, n, sizeof(double), compare_doubles);
    double lo = x[(size_t)(QUANTILE_LOW * (double)(n - 1))];
    double hi = x[(size_t)ceil(QUANTILE_HIGH * (double)(n - 1))];
    double span = hi - lo;
    if (!(span > 0.0)) span = fabs(lo) > 0.0 ? fabs(lo) : 1.0; /* a single value: show around it */
    *low = fmin(*low, lo - LIMIT_PAD * span);
    *high = fmax(*high, hi + LIMIT_PAD * span);
}

/* The union of the padded robust ranges of a[0..na) and b[0..nb) (both sorted in place);
 * [-1, 1] when both are empty. */
static void robust_union(double *low, double *high, double *a, size_t na, double *b, size_t nb) {
    *low = INFINITY;
    *high = -INFINITY;
    widen_to_quantiles(low, high, a, na);
    widen_to_quantiles(low, high, b, nb);
    if (!(*high > *low)) *low = -1.0, *high = 1.0;
}

/* Widen the narrower of two ranges about its centre so that it is at least 1/MAX_ASPECT of
 * the other: with equal scale on both axes, a nearly 1-D cloud still gets a usable frame. */
static void balance_ranges(frame *f) {
    double sx = f->x1 - f->x0, sy = f->y1 - f->y0;
    if (sy < sx / MAX_ASPECT) {
        double centre = 0.5 * (f->y0 + f->y1);
        f->y0 = centre - 0.5 * sx / MAX_ASPECT;
        f->y1 = centre + 0.5 * sx / MAX_ASPECT;
    } else if (sx < sy / MAX_ASPECT) {
        double centre = 0.5 * (f->x0 + f->x1);
        f->x0 = centre - 0.5 * sy / MAX_ASPECT;
        f->x1 = centre + 0.5 * sy / MAX_ASPECT;
    }
}

/* ---------------------------------------------------------------- ticks */

/* 1, 2 or 5 times a power of ten, near span / target. */
static double nice_step(double span, double target) {
    double raw = span / target, power = pow(10.0, floor(log10(raw))), mantissa = raw / power;
    return (mantissa < 1.5 ? 1.0 : mantissa < 3.5 ? 2.0 : mantissa < 7.5 ? 5.0 : 10.0) * power;
}

/* Multiples of a nice step inside [low, high] (at most capacity). */
static size_t linear_ticks(double *ticks, size_t capacity, double low, double high,
                           double target) {
    if (!(high > low)) return 0;
    double step = nice_step(high - low, target), slack = 1e-9 * step;
    size_t count = 0;
    for (double k = ceil((low - slack) / step); count < capacity; k++) {
        double t = k * step;
        if (t > high + slack) break;
        ticks[count++] = fabs(t) < slack ? 0.0 : t;
    }
    return count;
}

size_t cm_plot_log_ticks(double *ticks, size_t capacity, double low, double high) {
    static const double mantissas[3] = {1.0, 2.0, 5.0};
    if (!(high > low) || capacity == 0 || !isfinite(low) || !isfinite(high)) return 0;
    const double slack = 1e-9;
    size_t count = 0;
    if (high - low >= 2.0) {
        double first = ceil(low - slack), last = floor(high + slack);
        double stride = fmax(1.0, ceil((last - first + 1.0) / (double)TICKS_TARGET));
        for (double k = first; k <= last && count < capacity; k += stride) ticks[count++] = pow(10.0, k);
        if (count >= 2) return count;
    }
    count = 0;
    for (double k = floor(low); k <= ceil(high) && count < capacity; k++)
        for (int j = 0; j < 3 && count < capacity; j++) {
            double t = mantissas[j] * pow(10.0, k), exponent = log10(t);
            if (exponent >= low - slack && exponent <= high + slack) ticks[count++] = t;
        }
    if (count >= 3) return count;
    return linear_ticks(ticks, capacity, pow(10.0, low), pow(10.0, high), 4.0);
}

/* The text of a tick: "%g", or 10^k for decades far from 1 on a log axis. */
static void tick_label(char *out, size_t size, double value, int logarithmic) {
    double exponent = logarithmic ? log10(value) : 0.0;
    if (logarithmic && fabs(exponent - round(exponent)) < 1e-9 && fabs(exponent) > 3.0)
        snprintf(out, size, "10#u%d#d", (int)round(exponent));
    else
        snprintf(out, size, "%g", value);
}

/* Ticks and labels of one axis of frame f (world coordinates: log10 of the value on a log
 * axis). Returns the number of labelled ticks. */
static size_t draw_axis(int vertical, int logarithmic, const frame *f) {
    double low = vertical ? f->y0 : f->x0, high = vertical ? f->y1 : f->x1;
    double ticks[TICKS_MAX];
    size_t count = logarithmic ? cm_plot_log_ticks(ticks, TICKS_MAX, low, high)
                               : linear_ticks(ticks, TICKS_MAX, low, high, TICKS_TARGET);
    double across = vertical ? (f->x1 - f->x0) * TICK_LENGTH : (f->y1 - f->y0) * TICK_LENGTH;
    char text[32];
    for (size_t k = 0; k < count; k++) {
        double at = logarithmic ? log10(ticks[k]) : ticks[k];
        if (vertical) {
            pljoin(f->x0, at, f->x0 + across, at);
            pljoin(f->x1, at, f->x1 - across, at);
        } else {
            pljoin(at, f->y0, at, f->y0 + across);
            pljoin(at, f->y1, at, f->y1 - across);
        }
        tick_label(text, sizeof text, ticks[k], logarithmic);
        plmtex(vertical ? "lv" : "b", vertical ? 0.7 : 1.5, (at - low) / (high - low),
               vertical ? 1.0 : 0.5, text);
    }
    return count;
}

/* The frame box in viewport `viewport` (NULL: PLplot's standard one) with our ticks. */
static void draw_frame(cm_plot_report *r, const frame *f, const double *viewport, int log_x,
                       int log_y) {
    pladv(0);
    if (viewport) plvpor(viewport[0], viewport[1], viewport[2], viewport[3]);
    else plvsta();
    plwind(f->x0, f->x1, f->y0, f->y1);
    plcol0(COLOR_TEXT);
    plwidth(1.0);
    plbox("bc", 0.0, 0, "bc", 0.0, 0);
    r->x_labels = draw_axis(0, log_x, f);
    r->y_labels = draw_axis(1, log_y, f);
}

/* Axis labels, and the title above the two lines of legend and notes. */
static void labels(const char *x_label, const char *y_label, const char *title) {
    pllab(x_label ? x_label : "", y_label ? y_label : "", "");
    plmtex("t", 3.0, 0.5, 0.5, title ? title : "");
}

/* "not shown: 3 samples outside the frame, 1 point not finite" (the parts that are not 0). */
static void not_shown(char *out, size_t size, size_t outside, size_t not_finite,
                      const char *outside_what) {
    int used = snprintf(out, size, "not shown:");
    if (outside)
        used += snprintf(out + used, size - (size_t)used, " %zu %s%s outside the frame", outside,
                         outside_what, outside == 1 ? "" : "s");
    if (not_finite)
        snprintf(out + used, size - (size_t)used, "%s %zu value%s not finite", outside ? "," : "",
                 not_finite, not_finite == 1 ? "" : "s");
}

/* One line of text above the frame: left-, right-aligned or centred (pos 0, 1, 0.5). */
static void note_above(double line, double pos, PLINT colour, const char *text) {
    plcol0(colour);
    plschr(0.0, 0.8);
    plmtex("t", 0.6 + 1.1 * line, pos, pos, text);
    plschr(0.0, 1.0);
    plcol0(COLOR_TEXT);
}

/* ---------------------------------------------------------------- scatter */

/* Copy the finite (x, y) pairs (first two coordinates of d-dim points) into xs, ys. */
static size_t gather_points(double *xs, double *ys, const double *points, size_t count, size_t d) {
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

/* Keep CM_PLOT_SCATTER_MAX_POINTS evenly spaced points of xs, ys (in place) when there are
 * more; returns how many are kept. */
static size_t thin_points(double *xs, double *ys, size_t n) {
    if (n <= CM_PLOT_SCATTER_MAX_POINTS) return n;
    for (size_t k = 0; k < CM_PLOT_SCATTER_MAX_POINTS; k++) {
        size_t i = (size_t)((double)k * (double)n / CM_PLOT_SCATTER_MAX_POINTS);
        xs[k] = xs[i];
        ys[k] = ys[i];
    }
    return CM_PLOT_SCATTER_MAX_POINTS;
}

static cm_status check_scatter(const double *reference, size_t reference_count,
                               const double *samples, size_t sample_count, size_t d) {
    if (d < 2) return cm_error_set(CM_ERR_DIMENSION, "scatter plot needs d >= 2 (got %zu)", d);
    if ((reference_count && !reference) || (sample_count && !samples))
        return cm_error_set(CM_ERR_INVALID, "scatter plot: NULL points");
    if (reference_count > PLOT_MAX_POINTS || sample_count > PLOT_MAX_POINTS)
        return cm_error_set(CM_ERR_INVALID, "scatter plot: more than %d points per set",
                            PLOT_MAX_POINTS);
    return CM_OK;
}

/* The frame of a scatter: union of both sets' robust ranges, balanced (xs, ys are copied). */
static frame scatter_frame(const double *xs, const double *ys, size_t n_ref, size_t n_smp,
                           double *scratch) {
    frame f;
    size_t kept = n_ref + n_smp;
    memcpy(scratch, xs, kept * sizeof(double));
    robust_union(&f.x0, &f.x1, scratch, n_ref, scratch + n_ref, n_smp);
    memcpy(scratch, ys, kept * sizeof(double));
    robust_union(&f.y0, &f.y1, scratch, n_ref, scratch + n_ref, n_smp);
    balance_ranges(&f);
    return f;
}

static size_t count_outside(const double *xs, const double *ys, size_t n, const frame *f) {
    size_t outside = 0;
    for (size_t i = 0; i < n; i++)
        outside += xs[i] < f->x0 || xs[i] > f->x1 || ys[i] < f->y0 || ys[i] > f->y1;
    return outside;
}

/* The legend (a dot and a count per set) and the notes of what is not shown. */
static void scatter_legend(const cm_plot_report *r, size_t n_ref, size_t finite_ref,
                           size_t n_smp, size_t finite_smp) {
    char text[160];
    if (n_ref == finite_ref) snprintf(text, sizeof text, "#[0x25cf] data (%zu points)", n_ref);
    else snprintf(text, sizeof text, "#[0x25cf] data (%zu shown of %zu)", n_ref, finite_ref);
    note_above(0, 0.0, COLOR_REFERENCE, text);
    if (n_smp == finite_smp) snprintf(text, sizeof text, "#[0x25cf] samples (%zu points)", n_smp);
    else snprintf(text, sizeof text, "#[0x25cf] samples (%zu shown of %zu)", n_smp, finite_smp);
    note_above(0, 1.0, COLOR_SAMPLES, text);
    if (r->outside || r->not_finite) {
        not_shown(text, sizeof text, r->outside, r->not_finite, "sample");
        note_above(1, 1.0, COLOR_TEXT, text);
    }
}

cm_status cm_plot_scatter(cm_plot_report *out, const char *path, const double *reference,
                          size_t reference_count, const double *samples, size_t sample_count,
                          size_t d, const char *title) {
    cm_plot_report r = {0};
    CM_TRY(check_scatter(reference, reference_count, samples, sample_count, d));
    size_t total = reference_count + sample_count;
    /* xs | ys for reference then samples, and one scratch column for the quantiles */
    double *buffer = cm_malloc(3 * total + 1, sizeof(double));
    if (!buffer) return cm_error_set(CM_ERR_NOMEM, "scatter plot: no memory for %zu points", total);
    double *xs = buffer, *ys = buffer + total, *scratch = buffer + 2 * total;
    size_t finite_ref = gather_points(xs, ys, reference, reference_count, d);
    size_t finite_smp = gather_points(xs + finite_ref, ys + finite_ref, samples, sample_count, d);
    r.not_finite = total - finite_ref - finite_smp;
    frame f = scatter_frame(xs, ys, finite_ref, finite_smp, scratch);
    r.outside = count_outside(xs + finite_ref, ys + finite_ref, finite_smp, &f);
    size_t reference_outside = count_outside(xs, ys, finite_ref, &f);
    /* thin each set for drawing; the samples move up behind the kept reference points */
    size_t n_ref = thin_points(xs, ys, finite_ref);
    memmove(xs + n_ref, xs + finite_ref, finite_smp * sizeof(double));
    memmove(ys + n_ref, ys + finite_ref, finite_smp * sizeof(double));
    size_t n_smp = thin_points(xs + n_ref, ys + n_ref, finite_smp);
    if (n_ref < finite_ref || n_smp < finite_smp) r.subsampled_from = finite_ref + finite_smp;
    r.drawn = r.subsampled_from ? n_ref + n_smp - count_outside(xs, ys, n_ref + n_smp, &f)
                                : finite_ref + finite_smp - r.outside - reference_outside;

    /* shrink the page along the shorter range so the equal-scale frame fills it */
    double ratio = (f.y1 - f.y0) / (f.x1 - f.x0);
    int width = SCATTER_SIZE, height = SCATTER_SIZE;
    if (ratio < 1.0) height = (int)(SCATTER_SIZE * (PAGE_MARGIN + (1.0 - PAGE_MARGIN) * ratio));
    if (ratio > 1.0) width = (int)(SCATTER_SIZE * (PAGE_MARGIN + (1.0 - PAGE_MARGIN) / ratio));
    figure fig;
    cm_status status = figure_begin(&fig, path, width, height);
    if (status != CM_OK) {
        cm_free(buffer);
        return status;
    }
    plenv(f.x0, f.x1, f.y0, f.y1, 1, 0); /* just = 1: equal scale on both axes */
    labels("x#d0#u", "x#d1#u", title);
    plssym(0.0, MARKER_SCALE);
    if (n_ref) {
        plcol0(COLOR_REFERENCE);
        plpoin((PLINT)n_ref, xs, ys, MARKER_CODE);
    }
    if (n_smp) {
        plcol0(COLOR_SAMPLES);
        plpoin((PLINT)n_smp, xs + n_ref, ys + n_ref, MARKER_CODE);
    }
    scatter_legend(&r, n_ref, finite_ref, n_smp, finite_smp);
    status = figure_end(&fig);
    cm_free(buffer);
    if (status == CM_OK && out) *out = r;
    return status;
}

cm_status cm_plot_scatter_png(const char *path, const double *reference, size_t reference_count,
                              const double *samples, size_t sample_count, size_t d,
                              const char *title) {
    return cm_plot_scatter(NULL, path, reference, reference_count, samples, sample_count, d,
                           title);
}

/* ---------------------------------------------------------------- histogram */

/* Finite values of x into out; returns their number. */
static size_t gather_finite(double *out, const double *x, size_t n) {
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (isfinite(x[i])) out[kept++] = x[i];
    return kept;
}

/* Densities of x[0..n) on `bins` equal bins of [x0, x1] (count / (total * width)); returns how
 * many values fall outside. */
static size_t bin_densities(double *density, const double *x, size_t n, size_t total, double x0,
                            double x1, size_t bins) {
    double width = (x1 - x0) / (double)bins;
    size_t outside = 0;
    for (size_t b = 0; b < bins; b++) density[b] = 0.0;
    for (size_t i = 0; i < n; i++) {
        if (x[i] < x0 || x[i] > x1) {
            outside++;
            continue;
        }
        size_t b = (size_t)((x[i] - x0) / width);
        density[b < bins ? b : bins - 1] += 1.0;
    }
    for (size_t b = 0; b < bins; b++) density[b] /= (double)total * width;
    return outside;
}

/* The reference density as grey bars, the samples' as a blue outline. */
static void draw_histograms(const double *reference_density, const double *sample_density,
                            size_t bins, size_t n_ref, size_t n_smp, const frame *f) {
    double width = (f->x1 - f->x0) / (double)bins;
    plcol0(COLOR_REFERENCE);
    for (size_t b = 0; n_ref && b < bins; b++) {
        double left = f->x0 + (double)b * width, top = reference_density[b];
        double px[4] = {left, left, left + width, left + width}, py[4] = {0.0, top, top, 0.0};
        if (top > 0.0) plfill(4, px, py);
    }
    if (!n_smp) return;
    double px[2 * HISTOGRAM_MAX_BINS + 2], py[2 * HISTOGRAM_MAX_BINS + 2];
    for (size_t b = 0; b < bins; b++) {
        px[2 * b + 1] = px[2 * b + 2] = f->x0 + (double)(b + 1) * width;
        py[2 * b + 1] = py[2 * b + 2] = sample_density[b];
    }
    px[0] = px[1] = f->x0;
    py[0] = 0.0;
    py[1] = sample_density[0];
    py[2 * bins + 1] = 0.0;
    px[2 * bins + 1] = f->x1;
    plcol0(COLOR_CURVE);
    plwidth(2.0);
    plline((PLINT)(2 * bins + 2), px, py);
    plwidth(1.0);
}

static cm_status check_histogram(const double *reference, size_t reference_count,
                                 const double *samples, size_t sample_count,
                                 const double *density_x, const double *density_y,
                                 size_t density_count) {
    if ((reference_count && !reference) || (sample_count && !samples) ||
        (density_count && (!density_x || !density_y)))
        return cm_error_set(CM_ERR_INVALID, "histogram: NULL data");
    if (reference_count > PLOT_MAX_POINTS || sample_count > PLOT_MAX_POINTS ||
        density_count > PLOT_MAX_POINTS)
        return cm_error_set(CM_ERR_INVALID, "histogram: more than %d values per set",
                            PLOT_MAX_POINTS);
    return CM_OK;
}

/* Bins by the Rice rule 2 n^(1/3) of the smaller non-empty set, within [10, 100]. */
static size_t histogram_bins(size_t n_ref, size_t n_smp) {
    size_t n = n_ref && n_smp ? (n_ref < n_smp ? n_ref : n_smp) : n_ref + n_smp;
    double rice = 2.0 * cbrt((double)n);
    return rice < HISTOGRAM_MIN_BINS ? HISTOGRAM_MIN_BINS
           : rice > HISTOGRAM_MAX_BINS ? HISTOGRAM_MAX_BINS : (size_t)rice;
}

/* The top of the frame: the largest density drawn (bars, outline, curve inside [x0, x1]). */
static double histogram_top(const double *densities, size_t count, const double *density_x,
                            const double *density_y, size_t density_count, const frame *f) {
    double top = 0.0;
    for (size_t b = 0; b < count; b++) top = fmax(top, densities[b]);
    for (size_t i = 0; i < density_count; i++)
        if (density_x[i] >= f->x0 && density_x[i] <= f->x1 && isfinite(density_y[i]))
            top = fmax(top, density_y[i]);
    return top > 0.0 ? top : 1.0;
}

static void histogram_legend(const cm_plot_report *r, size_t n_ref, size_t n_smp,
                             size_t density_count) {
    char text[160];
    snprintf(text, sizeof text, "#[0x2588] data (%zu points)", n_ref);
    note_above(0, 0.0, COLOR_REFERENCE, text);
    if (density_count) note_above(0, 0.5, COLOR_TEXT, "#[0x2014] data density");
    snprintf(text, sizeof text, "#[0x2014] samples (%zu points)", n_smp);
    note_above(0, 1.0, COLOR_SAMPLES, text);
    if (r->outside || r->not_finite) {
        not_shown(text, sizeof text, r->outside, r->not_finite, "sample");
        note_above(1, 1.0, COLOR_TEXT, text);
    }
}

cm_status cm_plot_histogram(cm_plot_report *out, const char *path, const double *reference,
                            size_t reference_count, const double *samples, size_t sample_count,
                            const double *density_x, const double *density_y,
                            size_t density_count, const char *title) {
    cm_plot_report r = {0};
    CM_TRY(check_histogram(reference, reference_count, samples, sample_count, density_x,
                           density_y, density_count));
    size_t total = reference_count + sample_count;
    double *values = cm_malloc(2 * total + 2 * HISTOGRAM_MAX_BINS + 1, sizeof(double));
    if (!values) return cm_error_set(CM_ERR_NOMEM, "histogram: %zu values", total);
    double *scratch = values + total, *densities = scratch + total;
    size_t n_ref = gather_finite(values, reference, reference_count);
    size_t n_smp = gather_finite(values + n_ref, samples, sample_count);
    r.not_finite = total - n_ref - n_smp;
    frame f;
    memcpy(scratch, values, (n_ref + n_smp) * sizeof(double));
    robust_union(&f.x0, &f.x1, scratch, n_ref, scratch + n_ref, n_smp);
    size_t bins = histogram_bins(n_ref, n_smp);
    size_t ref_out = bin_densities(densities, values, n_ref, n_ref, f.x0, f.x1, bins);
    r.outside = bin_densities(densities + bins, values + n_ref, n_smp, n_smp, f.x0, f.x1, bins);
    r.drawn = n_ref + n_smp - ref_out - r.outside;
    f.y0 = 0.0;
    f.y1 = 1.08 * histogram_top(densities, 2 * bins, density_x, density_y, density_count, &f);
    figure fig;
    cm_status status = figure_begin(&fig, path, LINE_WIDTH_PX, LINE_HEIGHT_PX);
    if (status == CM_OK) {
        draw_frame(&r, &f, NULL, 0, 0);
        labels("x", "density", title);
        draw_histograms(densities, densities + bins, bins, n_ref, n_smp, &f);
        if (density_count > 1) {
            plcol0(COLOR_TEXT);
            plline((PLINT)density_count, density_x, density_y);
        }
        histogram_legend(&r, n_ref, n_smp, density_count);
        status = figure_end(&fig);
    }
    cm_free(values);
    if (status == CM_OK && out) *out = r;
    return status;
}

/* ---------------------------------------------------------------- lines */

/* Keep the drawable points of (x, y) as world coordinates (log10 where logarithmic) in xs, ys,
 * counting the rest in r; returns how many were kept. */
static size_t gather_curve(double *xs, double *ys, cm_plot_report *r, const double *x,
                           const double *y, size_t n, int log_x, int log_y) {
    size_t kept = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i]) || !isfinite(y[i])) {
            r->not_finite++;
            continue;
        }
        if ((log_x && !(x[i] > 0.0)) || (log_y && !(y[i] > 0.0))) {
            r->not_positive++;
            continue;
        }
        xs[kept] = log_x ? log10(x[i]) : x[i];
        ys[kept] = log_y ? log10(y[i]) : y[i];
        kept++;
    }
    return kept;
}

/* The padded bounding box of world points; a degenerate range is widened about its value. */
static frame curve_frame(const double *xs, const double *ys, size_t n, int pad_x) {
    frame f = {INFINITY, -INFINITY, INFINITY, -INFINITY};
    for (size_t i = 0; i < n; i++) {
        f.x0 = fmin(f.x0, xs[i]);
        f.x1 = fmax(f.x1, xs[i]);
        f.y0 = fmin(f.y0, ys[i]);
        f.y1 = fmax(f.y1, ys[i]);
    }
    if (n == 0) f.x0 = f.y0 = 0.0, f.x1 = f.y1 = 1.0;
    if (!(f.x1 > f.x0)) f.x0 -= 0.5, f.x1 += 0.5;
    if (!(f.y1 > f.y0)) f.y0 -= 0.5, f.y1 += 0.5;
    double xpad = pad_x ? LIMIT_PAD * (f.x1 - f.x0) : 0.0, ypad = LIMIT_PAD * (f.y1 - f.y0);
    return (frame){f.x0 - xpad, f.x1 + xpad, f.y0 - ypad, f.y1 + ypad};
}

/* "3 points not drawn (2 <= 0 on a log axis, 1 not finite)" above the frame. */
static void skipped_note(const cm_plot_report *r, double pos) {
    if (!r->not_positive && !r->not_finite) return;
    char text[160];
    size_t count = r->not_positive + r->not_finite;
    snprintf(text, sizeof text, "%zu point%s not drawn (%zu <= 0 on a log axis, %zu not finite)",
             count, count == 1 ? "" : "s", r->not_positive, r->not_finite);
    note_above(0, pos, COLOR_TEXT, text);
}

cm_status cm_plot_line(cm_plot_report *out, const char *path, const double *x, const double *y,
                       size_t n, const char *title, const char *x_label, const char *y_label,
                       int log_y) {
    cm_plot_report r = {0};
    if (n && (!x || !y)) return cm_error_set(CM_ERR_INVALID, "line plot: NULL data");
    if (n > PLOT_MAX_POINTS)
        return cm_error_set(CM_ERR_INVALID, "line plot: more than %d points", PLOT_MAX_POINTS);
    double *buffer = cm_malloc(2 * n + 1, sizeof(double));
    if (!buffer) return cm_error_set(CM_ERR_NOMEM, "line plot: no memory for %zu points", n);
    double *xs = buffer, *ys = buffer + n;
    size_t kept = gather_curve(xs, ys, &r, x, y, n, 0, log_y);
    r.drawn = kept;
    frame f = curve_frame(xs, ys, kept, 0);
    figure fig;
    cm_status status = figure_begin(&fig, path, LINE_WIDTH_PX, LINE_HEIGHT_PX);
    if (status == CM_OK) {
        draw_frame(&r, &f, NULL, 0, log_y);
        labels(x_label, y_label, title);
        plcol0(COLOR_CURVE);
        plwidth(2.0);
        if (kept > 1) plline((PLINT)kept, xs, ys);
        if (kept == 1) plpoin(1, xs, ys, MARKER_CODE);
        skipped_note(&r, 1.0);
        status = figure_end(&fig);
    }
    cm_free(buffer);
    if (status == CM_OK && out) *out = r;
    return status;
}

cm_status cm_plot_line_png(const char *path, const double *x, const double *y, size_t n,
                           const char *title, const char *x_label, const char *y_label,
                           int log_y) {
    return cm_plot_line(NULL, path, x, y, n, title, x_label, y_label, log_y);
}

#define LOGLOG_WIDTH_PX 1200 /* room for the legend right of the frame */

/* Distinct colours for the series of a log-log figure (cmap0 entries from 5 on). */
static const unsigned char SERIES_RGB[LOGLOG_MAX_SERIES][3] = {
    {31, 119, 180}, {255, 127, 14}, {44, 160, 44}, {214, 39, 40}, {148, 103, 189},
    {140, 86, 75}, {227, 119, 194}, {127, 127, 127}, {188, 189, 34}, {23, 190, 207},
    {0, 0, 128}, {128, 0, 0}, {0, 128, 0}, {128, 128, 0}, {0, 128, 128}, {64, 64, 64}};

static cm_status check_series(const cm_plot_series *series, size_t count, size_t *total) {
    if (count == 0 || count > LOGLOG_MAX_SERIES || !series)
        return cm_error_set(CM_ERR_INVALID, "log-log plot: %zu series (1..%d)", count,
                            LOGLOG_MAX_SERIES);
    *total = 0;
    for (size_t s = 0; s < count; s++) {
        if (series[s].n && (!series[s].x || !series[s].y))
            return cm_error_set(CM_ERR_INVALID, "log-log plot: NULL data in series %zu", s);
        if (series[s].n > PLOT_MAX_POINTS)
            return cm_error_set(CM_ERR_INVALID, "log-log plot: more than %d points", PLOT_MAX_POINTS);
        *total += series[s].n;
    }
    return CM_OK;
}

/* Series s (kept points xs, ys of world coordinates) in its colour, and its legend line. */
static void draw_series(const cm_plot_series *series, size_t s, double *xs, double *ys,
                        size_t m) {
    PLINT colour = (PLINT)(COLOR_FIRST_SERIES + s);
    plscol0(colour, SERIES_RGB[s][0], SERIES_RGB[s][1], SERIES_RGB[s][2]);
    plcol0(colour);
    plwidth(2.0);
    pllsty(series->style ? 2 : 1);
    if (m > 1) plline((PLINT)m, xs, ys);
    pllsty(1);
    if (!series->style && m) plpoin((PLINT)m, xs, ys, 4);
    char text[200];
    snprintf(text, sizeof text, "%s%s", series->style ? "- - " : "-o- ",
             series->label ? series->label : "");
    plschr(0.0, 0.8);
    plmtex("rv", 1.0, 0.97 - 0.06 * (double)s, 0.0, text);
    plschr(0.0, 1.0);
}

cm_status cm_plot_loglog(cm_plot_report *out, const char *path, const cm_plot_series *series,
                         size_t count, const char *title, const char *x_label,
                         const char *y_label) {
    cm_plot_report r = {0};
    size_t total = 0;
    CM_TRY(check_series(series, count, &total));
    double *buffer = cm_malloc(2 * total + 1, sizeof(double));
    if (!buffer) return cm_error_set(CM_ERR_NOMEM, "log-log plot: %zu points", total);
    double *xs = buffer, *ys = buffer + total;
    size_t kept_at[LOGLOG_MAX_SERIES + 1], kept = 0;
    for (size_t s = 0; s < count; s++) {
        kept_at[s] = kept;
        kept += gather_curve(xs + kept, ys + kept, &r, series[s].x, series[s].y, series[s].n, 1, 1);
    }
    kept_at[count] = kept;
    r.drawn = kept;
    frame f = curve_frame(xs, ys, kept, 1);
    figure fig;
    cm_status status = figure_begin(&fig, path, LOGLOG_WIDTH_PX, LINE_HEIGHT_PX);
    if (status == CM_OK) {
        /* the frame on the left 60% of the page, the legend (one coloured line of text per
         * series) to its right, so that it never hides a curve */
        const double viewport[4] = {0.10, 0.62, 0.12, 0.84};
        draw_frame(&r, &f, viewport, 1, 1);
        labels(x_label, y_label, title);
        for (size_t s = 0; s < count; s++)
            draw_series(&series[s], s, xs + kept_at[s], ys + kept_at[s], kept_at[s + 1] - kept_at[s]);
        skipped_note(&r, 0.0);
        status = figure_end(&fig);
    }
    cm_free(buffer);
    if (status == CM_OK && out) *out = r;
    return status;
}

cm_status cm_plot_loglog_png(const char *path, const cm_plot_series *series, size_t count,
                             const char *title, const char *x_label, const char *y_label) {
    cm_plot_report r = {0};
    cm_status status = cm_plot_loglog(&r, path, series, count, title, x_label, y_label);
    if (status == CM_OK && (r.not_positive || r.not_finite))
        fprintf(stderr, "cm: note: %s: %zu point(s) not drawn (%zu <= 0 on a log axis, %zu not "
                        "finite); the CSV and table hold them\n", path,
                r.not_positive + r.not_finite, r.not_positive, r.not_finite);
    return status;
}
