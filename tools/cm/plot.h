/* plot.h: PNG figures through PLplot (device pngcairo).
 *
 * Scatter of samples over reference data (first two coordinates), and line plots such as the
 * training loss. PLplot keeps global state, so these functions are not thread-safe.
 */
#ifndef CM_PLOT_H
#define CM_PLOT_H

#include <stddef.h>

#include "cm/status.h"

/* Reference points (grey) and samples (colour) of dimension d >= 2, first two coordinates;
 * either set may be empty (count 0). */
cm_status cm_plot_scatter_png(const char *path, const double *reference, size_t reference_count,
                              const double *samples, size_t sample_count, size_t d,
                              const char *title);
/* y against x, n points; log10 scale on y when log_y is non-zero (non-positive y skipped). */
cm_status cm_plot_line_png(const char *path, const double *x, const double *y, size_t n,
                           const char *title, const char *x_label, const char *y_label,
                           int log_y);

/* One curve of a log-log figure: n points (x, y > 0; others skipped), drawn as a line with
 * markers (style 0) or as a dashed line without markers (style 1, e.g. a reference shape). */
typedef struct {
    const double *x, *y;
    size_t n;
    const char *label; /* legend text (may be NULL) */
    int style;
} cm_plot_series;

/* Several series on log10-log10 axes with a legend (at most 16 series). */
cm_status cm_plot_loglog_png(const char *path, const cm_plot_series *series, size_t count,
                             const char *title, const char *x_label, const char *y_label);

#endif
