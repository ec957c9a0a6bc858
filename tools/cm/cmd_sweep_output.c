/* cmd_sweep_output.c: the outputs of `cm sweep` (sweep.h): sweep.csv (one tidy row per point),
 * fits.csv (per series, the least-squares slope of log error on log x and its 95% interval:
 * Student t on k - 2 degrees of freedom from the regression's standard error) and sweep.png
 * (log-log, one series per combination of the other parameters; when T varies, the shape
 * log^5 T / T of [LHW] Theorem 1's rate term scaled to the first point, its constant being
 * unknown; for one learned series, the terms of the theorem beside the measured W1).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/bound.h"
#include "plot.h"
#include "sweep.h"

/* ---- the slope of a series */

/* 97.5% quantiles of Student's t for 1..30 degrees of freedom; 1.96 beyond. */
static double t_quantile(size_t dof) {
    static const double q[30] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262,
                                 2.228, 2.201, 2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101,
                                 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052,
                                 2.048, 2.045, 2.042};
    return dof == 0 ? NAN : dof <= 30 ? q[dof - 1] : 1.96;
}

/* Least squares of log y on log x: slope and its 95% interval half-width (NaN below 3 points). */
static void fit_slope(const double *x, const double *y, size_t n, double *slope, double *half) {
    double sx = 0, sy = 0, k = 0;
    *slope = *half = NAN;
    for (size_t i = 0; i < n; i++)
        if (x[i] > 0 && y[i] > 0) sx += log(x[i]), sy += log(y[i]), k++;
    if (k < 2) return;
    double mx = sx / k, my = sy / k, sxx = 0, sxy = 0;
    for (size_t i = 0; i < n; i++)
        if (x[i] > 0 && y[i] > 0) {
            double a = log(x[i]) - mx, b = log(y[i]) - my;
            sxx += a * a;
            sxy += a * b;
        }
    if (!(sxx > 0)) return;
    *slope = sxy / sxx;
    if (k < 3) return;
    double ssr = 0;
    for (size_t i = 0; i < n; i++)
        if (x[i] > 0 && y[i] > 0) {
            double r = log(y[i]) - my - *slope * (log(x[i]) - mx);
            ssr += r * r;
        }
    *half = t_quantile((size_t)k - 2) * sqrt(ssr / (k - 2) / sxx);
}

/* ---- sweep.csv */

static const char *error_kind(const char *kind, const sweep_point *pt) {
    if (!strcmp(kind, "gaussian")) return isfinite(pt->w1_ideal) ? "w1" : "w2_upper";
    return "w1";
}

cm_status sweep_write_csv(const char *path, const sweep_point *points, size_t count,
                          const char *kind) {
    FILE *f = fopen(path, "w");
    if (!f) return cm_error_set(CM_ERR_IO, "cannot write '%.200s'", path);
    fprintf(f, "kind,T,d,var,spectrum,c0,c1,sep,n,width,series,error,error_kind,w1_floor,eps,"
               "eps_F,w1_ideal,w2_ideal,w1_lower,w1_ddim,lipschitz_learned,lipschitz_exact,"
               "lipschitz_theory,gap_total,gap_exact_total\n");
    for (size_t i = 0; i < count; i++) {
        const sweep_point *p = &points[i];
        fprintf(f, "%s,%g,%g,%g,%s,%g,%g,%g,%g,%g,%zu,%.10g,%s,%.10g,%.10g,%.10g,%.10g,%.10g,"
                   "%.10g,%.10g,%.10g,%.10g,%.10g,%.10g,%.10g\n",
                kind, p->p[P_T], p->p[P_D], p->p[P_VAR], p->p[P_SPECTRUM] > 0 ? "aniso" : "iso",
                p->p[P_C0], p->p[P_C1], p->p[P_SEP], p->p[P_N], p->p[P_WIDTH], p->series, p->error,
                error_kind(kind, p), p->w1_floor, p->eps, p->eps_F, p->w1_ideal, p->w2,
                p->w1_lower, p->w1_ddim, p->lipschitz, p->lipschitz_exact, p->lipschitz_theory,
                p->gap_total, p->gap_exact_total);
    }
    return fclose(f) == 0 ? CM_OK : cm_error_set(CM_ERR_IO, "cannot write '%.200s'", path);
}

/* --vary NAME=LIST: which parameter, and its list into lists[which]. */

/* ---- fits and figure */

/* What the figure draws: the x values (shared by every series), every point's error, the bound's
 * shape, learned's terms, and a label per series. */
typedef struct {
    double *x, *errors, *shape, *terms; /* x_count, total, x_count, 4 x_count: one allocation */
    char labels[SWEEP_MAX_SERIES + 4][160];
    cm_plot_series series[SWEEP_MAX_SERIES + 4];
    size_t count;
} sweep_figure;

/* The parameters of series k (those listed with more than one value, and gaussian's spectrum)
 * into label; returns its length, the trailing space included. */
static int series_label(char *label, const sweep_point *first, const sweep_grid *grid) {
    int length = 0;
    for (int q = 0; q < P_COUNT; q++)
        if (grid->used[q] && q != grid->x_param &&
            (grid->lists[q].count > 1 || q == P_SPECTRUM) && length < 100) {
            if (q == P_SPECTRUM)
                length += snprintf(label + length, 100 - length, "%s ",
                                   first->p[q] > 0 ? "aniso" : "iso");
            else
                length += snprintf(label + length, 100 - length, "%s=%g ", SWEEP_PARAM_NAMES[q],
                                   first->p[q]);
        }
    return length;
}

/* The slope of each series into its label, fits.csv and a line on stdout. */
static cm_status write_fits(sweep_figure *figure, const sweep_point *points,
                            const sweep_grid *grid, const char *out) {
    char path[4096];
    snprintf(path, sizeof path, "%s/fits.csv", out);
    FILE *fits = fopen(path, "w");
    if (!fits) return cm_error_set(CM_ERR_IO, "cannot write '%.200s'", path);
    fprintf(fits, "series,vary,slope,ci_low,ci_high,points,parameters\n");
    size_t n = grid->x_count;
    for (size_t k = 0; k < grid->series_count; k++) {
        double slope, half;
        fit_slope(figure->x, figure->errors + k * n, n, &slope, &half);
        char *label = figure->labels[k];
        int length = series_label(label, &points[k * n], grid);
        snprintf(label + length, sizeof figure->labels[k] - length, "slope %.3f +- %.3f", slope,
                 half);
        fprintf(fits, "%zu,%s,%.6g,%.6g,%.6g,%zu,%.*s\n", k, SWEEP_PARAM_NAMES[grid->x_param],
                slope, slope - half, slope + half, n, length > 0 ? length - 1 : 0,
                label); /* the series' own parameters */
        printf("series %zu: %s\n", k, label);
    }
    return fclose(fits) == 0 ? CM_OK : cm_error_set(CM_ERR_IO, "cannot write fits.csv");
}

/* Beside the series: the bound's shape when T varies, learned's terms for one series. */
static void add_reference_series(sweep_figure *figure, const sweep_point *points,
                                 const sweep_grid *grid) {
    size_t n = grid->x_count;
    if (grid->x_param == P_T && grid->series_count < SWEEP_MAX_SERIES + 1 && n > 1 &&
        points[0].error > 0) {
        double scale = points[0].error / cm_bound_rate_shape(points[0].p[P_T]);
        for (size_t i = 0; i < n; i++) figure->shape[i] = scale * cm_bound_rate_shape(figure->x[i]);
        snprintf(figure->labels[figure->count], sizeof figure->labels[0],
                 "log^5 T / T (bound shape, scaled)");
        figure->series[figure->count] = (cm_plot_series){figure->x, figure->shape, n,
                                                         figure->labels[figure->count], 1};
        figure->count++;
    }
    /* learned, one series: the terms beside the measured W1 (Theorem 1 with the rate term
     * replaced by the exact ideal-CT error) */
    if (grid->kind != SWEEP_LEARNED || grid->series_count != 1) return;
    for (size_t i = 0; i < n; i++) {
        figure->terms[i] = points[i].w1_ideal;
        figure->terms[n + i] = points[i].eps;
        figure->terms[2 * n + i] = points[i].eps_F;
        figure->terms[3 * n + i] = points[i].w1_ideal + points[i].eps + points[i].eps_F;
    }
    const char *names[4] = {"W1 of ideal CT", "eps (sum over t)", "eps_F (sum over t)",
                            "W1 ideal + eps + eps_F"};
    for (int q = 0; q < 4; q++) {
        snprintf(figure->labels[figure->count], sizeof figure->labels[0], "%s", names[q]);
        figure->series[figure->count] = (cm_plot_series){figure->x, figure->terms + q * n, n,
                                                         figure->labels[figure->count], q == 3};
        figure->count++;
    }
}

cm_status sweep_write_fits_and_figure(const sweep_point *points, const sweep_grid *grid,
                                      const sweep_settings *s) {
    static sweep_figure figure; /* labels and series: too large for the stack, made once */
    size_t n = grid->x_count, total = grid->total;
    double *memory = cm_malloc(total + 6 * n, sizeof(double));
    if (!memory) return cm_error_set(CM_ERR_NOMEM, "sweep: plot");
    figure.x = memory, figure.errors = memory + n, figure.shape = figure.errors + total;
    figure.terms = figure.shape + n;
    for (size_t i = 0; i < n; i++) figure.x[i] = points[i].p[grid->x_param];
    for (size_t i = 0; i < total; i++) figure.errors[i] = points[i].error;
    cm_status status = write_fits(&figure, points, grid, s->out);
    for (size_t k = 0; k < grid->series_count; k++)
        figure.series[k] = (cm_plot_series){figure.x, figure.errors + k * n, n, figure.labels[k], 0};
    figure.count = grid->series_count;
    add_reference_series(&figure, points, grid);
    char title[160], path[4096];
    snprintf(title, sizeof title, "cm sweep --kind %s: error vs %s", s->kind,
             SWEEP_PARAM_NAMES[grid->x_param]);
    snprintf(path, sizeof path, "%s/sweep.png", s->out);
    if (status == CM_OK)
        status = cm_plot_loglog_png(path, figure.series, figure.count, title,
                                    SWEEP_PARAM_NAMES[grid->x_param],
                                    grid->kind == SWEEP_GAUSSIAN
                                        ? "W1 of ideal CT (W2 where W1 not closed)"
                                        : "W1 vs X_1");
    cm_free(memory);
    return status;
}
