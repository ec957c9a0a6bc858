/* plot.h: PNG figures through PLplot (device pngcairo).
 *
 * Scatter of samples over reference data (first two coordinates), a 1-D histogram of samples
 * over the data (and, when known, its density), line plots such as the training loss, and
 * log-log figures with a legend. Nothing is dropped silently: every function fills a
 * cm_plot_report (may be NULL) with what it drew and what it could not, and says so on the
 * figure too. PLplot keeps global state, so these functions are not thread-safe.
 */
#ifndef CM_PLOT_H
#define CM_PLOT_H

#include <stddef.h>

#include "cm/status.h"

/* Above this many points a scatter set is drawn as an evenly spaced subsample of this size
 * (every k-th point; cm's samples are i.i.d., so that is a uniform subsample), stated in the
 * legend: 800 x 800 pixels hold no more distinguishable dots. */
#define CM_PLOT_SCATTER_MAX_POINTS 20000

/* What a figure shows of its input. */
typedef struct {
    size_t drawn;          /* points (or values) drawn */
    size_t not_finite;     /* not drawn: NaN or infinite coordinates */
    size_t not_positive;   /* not drawn: <= 0 on a logarithmic axis */
    size_t outside;        /* finite samples outside the frame (scatter, histogram); the frame
                            * covers the robust range of data and samples, so these are outliers */
    size_t subsampled_from;/* scatter: points before subsampling (0: all drawn) */
    size_t x_labels, y_labels; /* labelled ticks of each axis (0 when PLplot chose them) */
} cm_plot_report;

/* Reference points (grey) and samples (colour) of dimension d >= 2, first two coordinates;
 * either set may be empty (count 0). The frame spans the 0.5%..99.5% quantiles of each set
 * (the union, padded), so samples far from the data widen it instead of being cut off; the
 * remaining outliers are counted (report->outside, and a note on the figure). A legend names
 * both sets with their counts. */
cm_status cm_plot_scatter(cm_plot_report *out, const char *path, const double *reference,
                          size_t reference_count, const double *samples, size_t sample_count,
                          size_t d, const char *title);

/* A 1-D histogram of samples (blue outline) over a histogram of reference points (grey bars),
 * both as densities on the same bins, and, when density_count > 0, the exact density of the
 * data as a black curve through (density_x[i], density_y[i]). Bins span the union of the
 * robust ranges of both sets (report->outside counts the rest). */
cm_status cm_plot_histogram(cm_plot_report *out, const char *path, const double *reference,
                            size_t reference_count, const double *samples, size_t sample_count,
                            const double *density_x, const double *density_y,
                            size_t density_count, const char *title);

/* y against x, n points; log10 scale on y when log_y is non-zero: non-positive y are not drawn
 * but counted (report->not_positive) and noted on the figure. A log axis of less than a decade
 * is labelled with 1-2-5 or evenly spaced values. */
cm_status cm_plot_line(cm_plot_report *out, const char *path, const double *x, const double *y,
                       size_t n, const char *title, const char *x_label, const char *y_label,
                       int log_y);

/* One curve of a log-log figure: n points (x, y > 0; others counted in the report), drawn as a
 * line with markers (style 0) or as a dashed line without markers (style 1, e.g. a reference
 * shape). */
typedef struct {
    const double *x, *y;
    size_t n;
    const char *label; /* legend text (may be NULL) */
    int style;
} cm_plot_series;

/* Several series on log10-log10 axes with a legend (at most 16 series); both axes labelled
 * whatever their span (see cm_plot_line). */
cm_status cm_plot_loglog(cm_plot_report *out, const char *path, const cm_plot_series *series,
                         size_t count, const char *title, const char *x_label,
                         const char *y_label);

/* Tick values (data units) of a log10 axis over [10^low, 10^high], at most `capacity`: the
 * decades when the axis spans two or more, else the 1-2-5 values inside when there are at least
 * three, else evenly spaced round values. Returns their number (>= 2 when high > low). */
size_t cm_plot_log_ticks(double *ticks, size_t capacity, double low, double high);

/* The first forms, kept for callers not yet moved to the functions above (no report). */
cm_status cm_plot_scatter_png(const char *path, const double *reference, size_t reference_count,
                              const double *samples, size_t sample_count, size_t d,
                              const char *title);
cm_status cm_plot_line_png(const char *path, const double *x, const double *y, size_t n,
                           const char *title, const char *x_label, const char *y_label,
                           int log_y);
/* cm_plot_loglog, and a note on stderr naming the points a log axis could not show. */
cm_status cm_plot_loglog_png(const char *path, const cm_plot_series *series, size_t count,
                             const char *title, const char *x_label, const char *y_label);

#endif
