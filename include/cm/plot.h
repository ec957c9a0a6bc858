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

#endif
