/* sweep.h: what the files of `cm sweep` share (private to tools/cm): the parameters of a point
 * of the grid and what is measured there, the measurement of one point for each kind
 * (cmd_sweep_points.c), and the outputs: tidy CSV, fitted slopes and the log-log figure
 * (cmd_sweep_output.c). cmd_sweep.c parses the options, builds the grid and wires these.
 */
#ifndef CM_TOOLS_SWEEP_H
#define CM_TOOLS_SWEEP_H

#include <stddef.h>
#include <stdint.h>

#include "cli.h"
#include "cm/status.h"

/* The parameters a sweep can vary (the x axis) or list (the series); spectrum is gaussian's
 * iso (0) or aniso (1) and cannot be the x axis. */
enum { P_T, P_D, P_VAR, P_C0, P_C1, P_SEP, P_N, P_WIDTH, P_SPECTRUM, P_COUNT };
#define SWEEP_MAX_SERIES 16 /* series of one figure */
extern const char *const SWEEP_PARAM_NAMES[P_COUNT];

typedef enum { SWEEP_GAUSSIAN, SWEEP_MIXTURE1D, SWEEP_LEARNED, SWEEP_WIDTH } sweep_kind;

/* One point of the grid: its parameters, its series (the combination of the non-x parameters)
 * and what was measured; NaN where the kind measures nothing. */
typedef struct {
    double p[P_COUNT];
    double error, w1_floor, eps, eps_F, w1_ideal, w2, w1_lower, w1_ddim;
    double lipschitz, lipschitz_exact, lipschitz_theory, gap_total, gap_exact_total;
    /* lipschitz: of the learned map */
    size_t series;
} sweep_point;

/* The settings that are not lists. */
typedef struct {
    const char *kind, *class_name, *out;
    double std;
    size_t steps, n_eval;
    uint64_t seed;
} sweep_settings;

/* The grid: the lists of every parameter, the x axis, the counts. */
typedef struct {
    cli_list lists[P_COUNT];
    int x_param, used[P_COUNT];
    size_t total, series_count, x_count;
    sweep_kind kind;
} sweep_grid;

/* ---- cmd_sweep_points.c */

/* Measure one point (its parameters set, its results NaN) of the given kind. */
cm_status sweep_measure_point(sweep_point *pt, sweep_kind kind, const sweep_settings *s);

/* ---- cmd_sweep_output.c */

/* points[total] as the tidy CSV at path. */
cm_status sweep_write_csv(const char *path, const sweep_point *points, size_t count,
                          const char *kind);
/* The fitted slope of each series (labels[k] gets its parameters and slope), fits.csv in the
 * output directory, one line per series on stdout; then sweep.png. */
cm_status sweep_write_fits_and_figure(const sweep_point *points, const sweep_grid *grid,
                                      const sweep_settings *s);

#endif
