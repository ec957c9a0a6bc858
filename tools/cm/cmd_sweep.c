/* cmd_sweep.c: `cm sweep`: the theory lab over a grid of parameters (SPEC sections 3, 4, 7).
 * At every point of the product of the parameter lists it computes ideal consistency training
 * (gaussian: closed form; mixture1d: the exact grid recursion), learned CT with closed-form fits
 * (learned), or trains an [LHW] network and measures it (width); writes one tidy CSV row per
 * point, a CSV of fitted slopes, and a log-log PNG: the error against the varied parameter, one
 * series per combination of the others, each with its least-squares slope of log error on
 * log x and the slope's 95% confidence interval (Student t on k - 2 degrees of freedom from the
 * regression's standard error), and, when T varies, the shape log^5 T / T of Theorem 1's rate
 * term scaled to the first point (its constant is unknown; only the shape compares).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cm/alloc.h"
#include "cm/bound.h"
#include "cm/data.h"
#include "cm/law.h"
#include "cm/learned.h"
#include "plot.h"
#include "cm/schedule.h"
#include "cm/theory.h"
#include "cm/train.h"

enum { P_T, P_D, P_VAR, P_C0, P_C1, P_SEP, P_N, P_WIDTH, P_SPECTRUM, P_COUNT };
static const char *PARAM_NAMES[P_COUNT] = {"T", "d", "var", "c0", "c1", "sep", "n", "width",
                                           "spectrum"};
#define MAX_POINTS 4096
#define MAX_SERIES 16
#define MAX_T 100000
#define MAX_D 4096

typedef struct {
    double p[P_COUNT];
    double error, w1_floor, eps, eps_F, w1_ideal, w2, w1_lower, w1_ddim;
    double lipschitz, lipschitz_exact, lipschitz_theory, gap_total, gap_exact_total;
    /* lipschitz: of the learned map */
    size_t series;
} point;

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

typedef struct {
    const char *kind, *class_name, *out;
    double std;
    size_t steps, n_eval;
    uint64_t seed;
} sweep_settings;

static cm_status run_gaussian(point *pt) {
    size_t d = (size_t)pt->p[P_D];
    double *variances = cm_malloc(d, sizeof(double));
    if (!variances) return cm_error_set(CM_ERR_NOMEM, "sweep: variances");
    for (size_t i = 0; i < d; i++)
        variances[i] = pt->p[P_VAR] * (pt->p[P_SPECTRUM] > 0 && d > 1
                                           ? pow(10.0, -2.0 + 4.0 * (double)i / (double)(d - 1))
                                           : 1.0);
    cm_theory_gaussian_result g;
    cm_status status = cm_theory_gaussian(&g, d, variances, (size_t)pt->p[P_T], pt->p[P_C0],
                                          pt->p[P_C1]);
    cm_free(variances);
    if (status != CM_OK) return status;
    /* W1 where closed; otherwise its upper bound W2 (stated in the CSV's error_kind column) */
    pt->error = isfinite(g.w1_ideal) ? g.w1_ideal : g.w2_ideal;
    pt->w1_ideal = g.w1_ideal;
    pt->w2 = g.w2_ideal;
    pt->w1_lower = g.w1_ideal_lower;
    return CM_OK;
}

static cm_status mixture_law(cm_law **out, double sep, double std) {
    const double weights[2] = {1, 1}, means[2] = {-sep / 2, sep / 2}, stds[2] = {std, std};
    return cm_law_mixture_isotropic(out, 1, 2, weights, means, stds);
}

static cm_status run_mixture1d(point *pt, const sweep_settings *s) {
    cm_law *law = NULL;
    CM_TRY(mixture_law(&law, pt->p[P_SEP], s->std));
    cm_theory_mixture1d_result m;
    size_t T = (size_t)pt->p[P_T];
    cm_status status = cm_theory_mixture1d(&m, law, T, pt->p[P_C0], pt->p[P_C1], NULL);
    /* L_f by learned.h's exact 1-D slope (noise-side grid over [-6, 6] and data-side grid) */
    cm_lhw_schedule schedule = {0};
    double *grid = cm_malloc(CM_LEARNED_GRID_POINTS, sizeof(double));
    if (status == CM_OK && !grid) status = cm_error_set(CM_ERR_NOMEM, "sweep: grid");
    if (status == CM_OK) status = cm_lhw_schedule_init(&schedule, T, pt->p[P_C0], pt->p[P_C1]);
    if (status == CM_OK) {
        for (size_t k = 0; k < CM_LEARNED_GRID_POINTS; k++)
            grid[k] = CM_LEARNED_GRID_HALFWIDTH *
                      (2.0 * (double)k / (double)(CM_LEARNED_GRID_POINTS - 1) - 1.0);
        status = cm_learned_lipschitz_exact(&pt->lipschitz_exact, law,
                                            cm_lhw_schedule_log_snr(&schedule, T),
                                            cm_lhw_schedule_log_snr(&schedule, 1), grid,
                                            CM_LEARNED_GRID_POINTS);
    }
    cm_lhw_schedule_free(&schedule);
    cm_free(grid);
    cm_law_free(law);
    if (status != CM_OK) return status;
    pt->error = pt->w1_ideal = m.w1_ideal;
    pt->w1_ddim = m.w1_ddim;
    pt->lipschitz_theory = m.lipschitz; /* theory.h's own estimate, for comparison */
    return CM_OK;
}

/* The law of a point: a 1-D two-mode mixture when sep > 0, else N(0, var I_d). */
static cm_status point_law(cm_law **out, const point *pt, const sweep_settings *s) {
    if (pt->p[P_SEP] > 0) return mixture_law(out, pt->p[P_SEP], s->std);
    size_t d = (size_t)pt->p[P_D];
    double *variances = cm_malloc(d, sizeof(double));
    if (!variances) return cm_error_set(CM_ERR_NOMEM, "sweep: variances");
    for (size_t i = 0; i < d; i++) variances[i] = pt->p[P_VAR];
    cm_status status = cm_law_gaussian_diagonal(out, d, NULL, variances);
    cm_free(variances);
    return status;
}

static cm_status run_learned(point *pt, const sweep_settings *s) {
    cm_law *law = NULL;
    CM_TRY(point_law(&law, pt, s));
    cm_learned_options o = cm_learned_options_default();
    o.T = (size_t)pt->p[P_T];
    o.c0 = pt->p[P_C0];
    o.c1 = pt->p[P_C1];
    o.n = (size_t)pt->p[P_N];
    o.n_eval = s->n_eval;
    o.seed = s->seed;
    cm_status status = cm_learned_class_parse(&o.function_class, s->class_name);
    cm_learned *chain = NULL;
    cm_learned_result r;
    if (status == CM_OK) status = cm_learned_alloc(&chain, law, &o);
    if (status == CM_OK) status = cm_learned_run(chain, &r, NULL);
    /* W1 of ideal CT on the same law, where theory.h has it (NaN otherwise) */
    if (status == CM_OK && pt->p[P_SEP] > 0) {
        cm_theory_mixture1d_result m;
        status = cm_theory_mixture1d(&m, law, o.T, o.c0, o.c1, NULL);
        if (status == CM_OK) pt->w1_ideal = m.w1_ideal;
    } else if (status == CM_OK) {
        size_t d = (size_t)pt->p[P_D];
        double *variances = cm_malloc(d, sizeof(double));
        cm_theory_gaussian_result g;
        if (!variances) status = cm_error_set(CM_ERR_NOMEM, "sweep: variances");
        for (size_t i = 0; variances && i < d; i++) variances[i] = pt->p[P_VAR];
        if (status == CM_OK) status = cm_theory_gaussian(&g, d, variances, o.T, o.c0, o.c1);
        if (status == CM_OK) pt->w1_ideal = isfinite(g.w1_ideal) ? g.w1_ideal : g.w1_ideal_upper;
        cm_free(variances);
    }
    if (status == CM_OK) {
        pt->error = isfinite(r.w1_learned_closed) ? r.w1_learned_closed : r.w1_learned;
        pt->w1_floor = isfinite(r.w1_learned_closed) ? 0.0 : r.w1_floor;
        pt->eps = r.eps_l1;
        pt->eps_F = r.eps_f_l1;
        pt->lipschitz = r.lipschitz_learned;
        pt->lipschitz_exact = r.lipschitz_exact;
    }
    cm_learned_free(chain);
    cm_law_free(law);
    return status;
}

static cm_status run_width(point *pt, const sweep_settings *s) {
    char source[128];
    if (pt->p[P_SEP] > 0)
        snprintf(source, sizeof source, "gmm:d=1,k=2,sep=%.17g,std=%.17g", pt->p[P_SEP], s->std);
    else
        snprintf(source, sizeof source, "gauss:d=%zu,std=%.17g", (size_t)pt->p[P_D],
                 sqrt(pt->p[P_VAR]));
    cm_data *data = NULL;
    CM_TRY(cm_data_open(&data, source));
    cm_train_config config = cm_train_config_default(CM_METHOD_LHW, cm_data_dim(data));
    config.steps = s->steps;
    config.method.chain_T = (size_t)pt->p[P_T];
    config.method.c0 = pt->p[P_C0];
    config.method.c1 = pt->p[P_C1];
    config.seed = s->seed;
    cm_trainer *trainer = NULL;
    cm_law *law = NULL;
    cm_status status = cm_network_config_set(&config.network, "width", pt->p[P_WIDTH]);
    if (status == CM_OK) status = cm_trainer_init(&trainer, &config, data);
    for (size_t k = 0; status == CM_OK && k < s->steps; k++) {
        cm_train_report report;
        status = cm_trainer_step(trainer, &report);
    }
    if (status == CM_OK) status = cm_law_from_data(&law, data);
    cm_network_diagnostics r;
    if (status == CM_OK)
        status = cm_learned_network(&r, NULL, NULL, cm_trainer_model(trainer), law, 2000, 16,
                                    s->seed);
    if (status == CM_OK) {
        pt->error = r.w1;
        pt->w1_floor = r.w1_floor;
        pt->lipschitz = r.lipschitz_learned;
        pt->lipschitz_exact = r.lipschitz_exact;
        pt->gap_total = r.gap_total;
        pt->gap_exact_total = r.gap_exact_total;
    }
    cm_law_free(law);
    cm_trainer_free(trainer);
    cm_data_free(data);
    return status;
}

static const char *error_kind(const char *kind, const point *pt) {
    if (!strcmp(kind, "gaussian")) return isfinite(pt->w1_ideal) ? "w1" : "w2_upper";
    return "w1";
}

static int write_csv(const char *path, const point *points, size_t count, const char *kind) {
    FILE *f = fopen(path, "w");
    if (!f) return 0;
    fprintf(f, "kind,T,d,var,spectrum,c0,c1,sep,n,width,series,error,error_kind,w1_floor,eps,"
               "eps_F,w1_ideal,w2_ideal,w1_lower,w1_ddim,lipschitz_learned,lipschitz_exact,"
               "lipschitz_theory,gap_total,gap_exact_total\n");
    for (size_t i = 0; i < count; i++) {
        const point *p = &points[i];
        fprintf(f, "%s,%g,%g,%g,%s,%g,%g,%g,%g,%g,%zu,%.10g,%s,%.10g,%.10g,%.10g,%.10g,%.10g,"
                   "%.10g,%.10g,%.10g,%.10g,%.10g,%.10g,%.10g\n",
                kind, p->p[P_T], p->p[P_D], p->p[P_VAR], p->p[P_SPECTRUM] > 0 ? "aniso" : "iso",
                p->p[P_C0], p->p[P_C1], p->p[P_SEP], p->p[P_N], p->p[P_WIDTH], p->series, p->error,
                error_kind(kind, p), p->w1_floor, p->eps, p->eps_F, p->w1_ideal, p->w2,
                p->w1_lower, p->w1_ddim, p->lipschitz, p->lipschitz_exact, p->lipschitz_theory,
                p->gap_total, p->gap_exact_total);
    }
    return fclose(f) == 0;
}

/* --vary NAME=LIST: which parameter, and its list into lists[which]. */
static int parse_vary(int *which, cli_list *lists, const char *text, const char *command) {
    const char *equals = strchr(text, '=');
    if (!equals) return cli_usage_error(command, "--vary '%s': expected NAME=A,B,...", text);
    for (int k = 0; k < P_SPECTRUM; k++)
        if (strlen(PARAM_NAMES[k]) == (size_t)(equals - text) &&
            !strncmp(text, PARAM_NAMES[k], (size_t)(equals - text))) {
            cli_list parsed = {{0}, 0};
            const char *p = equals + 1;
            while (1) {
                size_t length = strcspn(p, ",");
                char item[64], *end;
                if (length == 0 || length >= sizeof item || parsed.count == CLI_LIST_MAX)
                    return cli_usage_error(command, "--vary '%s': malformed list", text);
                memcpy(item, p, length);
                item[length] = '\0';
                double v = strtod(item, &end);
                if (*end || !isfinite(v) || !(v > 0))
                    return cli_usage_error(command, "--vary '%s': '%s' is not a positive finite "
                                           "number", text, item);
                parsed.values[parsed.count++] = v;
                if (!p[length]) break;
                p += length + 1;
            }
            *which = k;
            lists[k] = parsed;
            return CLI_OK;
        }
    return cli_usage_error(command, "--vary: unknown parameter in '%s' (T, d, var, c0, c1, sep, "
                           "n, width)", text);
}

static int check_integers(const cli_list *list, const char *name, double low, double high,
                          const char *command) {
    for (size_t i = 0; i < list->count; i++) {
        double v = list->values[i];
        if (v != floor(v) || v < low || v > high)
            return cli_usage_error(command, "--%s %g: must be an integer in [%g, %g]", name, v, low,
                                   high);
    }
    return CLI_OK;
}

int cmd_sweep(int argc, char **argv) {
    const char *command = "sweep";
    sweep_settings s = {"gaussian", "affine", NULL, 0.5, 300, 1000, 1};
    const char *vary = NULL, *spectrum = "iso";
    cli_list lists[P_COUNT] = {{{100}, 1}, {{1}, 1}, {{1}, 1}, {{2}, 1}, {{4}, 1}, {{0}, 0},
                               {{1000}, 1}, {{32}, 1}, {{0}, 0}};
    cli_option options[] = {
        {"kind", OPT_STRING, &s.kind, "gaussian | mixture1d | learned | width", 0, 0, 0},
        {"vary", OPT_STRING, &vary, "the x axis: NAME=A,B,... (T, d, var, c0, c1, sep, n, width)",
         0, 1, 0},
        {"T", OPT_LIST, &lists[P_T], "chain lengths", 0, 0, 0},
        {"d", OPT_LIST, &lists[P_D], "dimensions (gaussian, learned, width)", 0, 0, 0},
        {"var", OPT_LIST, &lists[P_VAR], "data variance (aniso: the spectrum var 10^-2 .. var 10^2)", 0, 0, 0},
        {"spectrum", OPT_STRING, &spectrum, "gaussian: iso, aniso (logspace(-2,2)) or iso,aniso", 0,
         0, 0},
        {"c0", OPT_LIST, &lists[P_C0], "schedule constant c0", 0, 0, 0},
        {"c1", OPT_LIST, &lists[P_C1], "schedule constant c1", 0, 0, 0},
        {"sep", OPT_LIST, &lists[P_SEP], "mixture1d/learned/width: distance of two modes", 0, 0, 0},
        {"std", OPT_DOUBLE, &s.std, "std of each mode", 1e-6, 0, 0},
        {"n", OPT_LIST, &lists[P_N], "learned: pairs per step", 0, 0, 0},
        {"class", OPT_STRING, &s.class_name, "learned: affine or rff", 0, 0, 0},
        {"eval", OPT_SIZE, &s.n_eval, "learned: X_t points per step for eps, eps_F", 2, 0, 0},
        {"width", OPT_LIST, &lists[P_WIDTH], "width: network widths", 0, 0, 0},
        {"steps", OPT_SIZE, &s.steps, "width: training steps per network", 1, 0, 0},
        {"seed", OPT_U64, &s.seed, "seed", 0, 0, 0},
        {"out", OPT_STRING, &s.out, "output directory (sweep.csv, fits.csv, sweep.png)", 0, 1, 0},
    };
    int parsed = cli_parse(argc, argv, 2, options, sizeof options / sizeof options[0], command,
                           "Theory-lab sweep: error of ideal or learned consistency training (or a\n"
                           "trained network) over a grid of parameters; tidy CSV, fitted log-log\n"
                           "slopes with 95% intervals, and a PNG with the bound's shape.");
    if (parsed != CLI_OK) return parsed;
    int kind_gaussian = !strcmp(s.kind, "gaussian"), kind_mixture = !strcmp(s.kind, "mixture1d"),
        kind_learned = !strcmp(s.kind, "learned"), kind_width = !strcmp(s.kind, "width");
    if (!kind_gaussian && !kind_mixture && !kind_learned && !kind_width)
        return cli_usage_error(command, "--kind '%s': gaussian, mixture1d, learned or width",
                               s.kind);
    int x_param = 0;
    int code = parse_vary(&x_param, lists, vary, command);
    if (code != CLI_OK) return code;
    if (!strcmp(spectrum, "iso")) lists[P_SPECTRUM] = (cli_list){{0}, 1};
    else if (!strcmp(spectrum, "aniso")) lists[P_SPECTRUM] = (cli_list){{1}, 1};
    else if (!strcmp(spectrum, "iso,aniso")) lists[P_SPECTRUM] = (cli_list){{0, 1}, 2};
    else return cli_usage_error(command, "--spectrum '%s': iso, aniso or iso,aniso", spectrum);
    if (!kind_gaussian) lists[P_SPECTRUM] = (cli_list){{0}, 1};
    if (kind_mixture && lists[P_SEP].count == 0)
        return cli_usage_error(command, "--kind mixture1d needs --sep (or --vary sep=...)");
    if (lists[P_SEP].count == 0) lists[P_SEP] = (cli_list){{0}, 1};
    if ((code = check_integers(&lists[P_T], "T", 2, kind_width ? 1000 : MAX_T, command)) ||
        (code = check_integers(&lists[P_D], "d", 1, MAX_D, command)) ||
        (code = check_integers(&lists[P_N], "n", 2, 1e7, command)) ||
        (code = check_integers(&lists[P_WIDTH], "width", 1, 4096, command)))
        return code;
    if (s.steps > 1000000) return cli_usage_error(command, "--steps %zu: at most 1e6", s.steps);
    if (s.n_eval > 1000000) return cli_usage_error(command, "--eval %zu: at most 1e6", s.n_eval);
    cm_learned_class check_class;
    if (cm_learned_class_parse(&check_class, s.class_name) != CM_OK)
        return cli_usage_error(command, "--class: %s", cm_error_detail());
    /* the parameters that matter for this kind: the others are fixed to their first value */
    int used[P_COUNT] = {1, 0, 0, 1, 1, 0, 0, 0, 0};
    if (kind_gaussian) used[P_D] = used[P_VAR] = used[P_SPECTRUM] = 1;
    if (kind_mixture) used[P_SEP] = 1;
    if (kind_learned || kind_width) used[P_D] = used[P_VAR] = used[P_SEP] = 1;
    if (kind_learned) used[P_N] = 1;
    if (kind_width) used[P_WIDTH] = 1;
    if (!used[x_param])
        return cli_usage_error(command, "--vary %s has no effect for --kind %s",
                               PARAM_NAMES[x_param], s.kind);
    size_t total = 1, series_count = 1;
    for (int k = 0; k < P_COUNT; k++) {
        if (!used[k]) lists[k].count = 1;
        total *= lists[k].count;
        if (k != x_param) series_count *= lists[k].count;
    }
    if (total > MAX_POINTS)
        return cli_usage_error(command, "%zu points: at most %d", total, MAX_POINTS);
    if (series_count > MAX_SERIES)
        return cli_usage_error(command, "%zu series: at most %d in one figure", series_count,
                               MAX_SERIES);
    cm_status status = cli_make_directory(s.out);
    if (status != CM_OK) return cli_fail(command, status);
    point *points = cm_calloc(total, sizeof(point));
    double *xs = cm_malloc(2 * total + 2, sizeof(double));
    if (!points || !xs) {
        cm_free(points);
        cm_free(xs);
        return cli_fail(command, cm_error_set(CM_ERR_NOMEM, "sweep: %zu points", total));
    }
    /* enumerate with x_param fastest, so each series is a contiguous run */
    size_t x_count = lists[x_param].count;
    printf("%-6s %-6s %-8s %-6s %-6s %-6s %-6s %-8s %-6s %12s %10s %10s %10s\n", "T", "d", "var",
           "spec", "c0", "c1", "sep", "n", "width", "error", "floor", "eps", "eps_F");
    for (size_t index = 0; index < total && status == CM_OK; index++) {
        point *pt = &points[index];
        size_t rest = index / x_count;
        pt->p[x_param] = lists[x_param].values[index % x_count];
        pt->series = rest;
        for (int k = P_COUNT - 1; k >= 0; k--) {
            if (k == x_param) continue;
            pt->p[k] = lists[k].values[rest % lists[k].count];
            rest /= lists[k].count;
        }
        pt->w1_floor = pt->eps = pt->eps_F = pt->w1_ideal = pt->w2 = pt->w1_lower = NAN;
        pt->w1_ddim = pt->lipschitz = pt->lipschitz_exact = pt->lipschitz_theory = NAN;
        pt->gap_total = pt->gap_exact_total = NAN;
        if (kind_gaussian) status = run_gaussian(pt);
        else if (kind_mixture) status = run_mixture1d(pt, &s);
        else if (kind_learned) status = run_learned(pt, &s);
        else status = run_width(pt, &s);
        if (status == CM_OK)
            printf("%-6g %-6g %-8g %-6s %-6g %-6g %-6g %-8g %-6g %12.6g %10.4g %10.4g %10.4g\n",
                   pt->p[P_T], pt->p[P_D], pt->p[P_VAR], pt->p[P_SPECTRUM] > 0 ? "aniso" : "iso",
                   pt->p[P_C0], pt->p[P_C1], pt->p[P_SEP], pt->p[P_N], pt->p[P_WIDTH], pt->error,
                   pt->w1_floor, pt->eps, pt->eps_F);
        fflush(stdout);
    }
    char path[4096];
    if (status == CM_OK) {
        snprintf(path, sizeof path, "%s/sweep.csv", s.out);
        if (!write_csv(path, points, total, s.kind))
            status = cm_error_set(CM_ERR_IO, "cannot write '%.200s'", path);
    }
    cm_plot_series series[MAX_SERIES + 4];
    char labels[MAX_SERIES + 4][160];
    double slopes[MAX_SERIES][2];
    double *x = xs, *shape = xs + total;
    FILE *fits = NULL;
    if (status == CM_OK) {
        snprintf(path, sizeof path, "%s/fits.csv", s.out);
        fits = fopen(path, "w");
        if (!fits) status = cm_error_set(CM_ERR_IO, "cannot write '%.200s'", path);
        else fprintf(fits, "series,vary,slope,ci_low,ci_high,points,parameters\n");
    }
    for (size_t k = 0; status == CM_OK && k < series_count; k++) {
        point *run = points + k * x_count;
        double *y = shape; /* scratch for this series' errors (shape filled later) */
        for (size_t i = 0; i < x_count; i++) x[k * x_count + i] = run[i].p[x_param];
        for (size_t i = 0; i < x_count; i++) y[i] = run[i].error;
        fit_slope(x + k * x_count, y, x_count, &slopes[k][0], &slopes[k][1]);
        int length = 0;
        for (int q = 0; q < P_COUNT; q++)
            if (used[q] && q != x_param && (lists[q].count > 1 || q == P_SPECTRUM) &&
                length < 100) {
                if (q == P_SPECTRUM)
                    length += snprintf(labels[k] + length, 100 - length, "%s ",
                                       run[0].p[q] > 0 ? "aniso" : "iso");
                else
                    length += snprintf(labels[k] + length, 100 - length, "%s=%g ", PARAM_NAMES[q],
                                       run[0].p[q]);
            }
        snprintf(labels[k] + length, sizeof labels[k] - length, "slope %.3f +- %.3f",
                 slopes[k][0], slopes[k][1]);
        fprintf(fits, "%zu,%s,%.6g,%.6g,%.6g,%zu,%.*s\n", k, PARAM_NAMES[x_param], slopes[k][0],
                slopes[k][0] - slopes[k][1], slopes[k][0] + slopes[k][1], x_count,
                length > 0 ? length - 1 : 0, labels[k]); /* the series' own parameters */
        printf("series %zu: %s\n", k, labels[k]);
    }
    if (fits && fclose(fits) != 0 && status == CM_OK)
        status = cm_error_set(CM_ERR_IO, "cannot write fits.csv");
    double *errors = NULL;
    if (status == CM_OK) {
        errors = cm_malloc(total + 1, sizeof(double));
        if (!errors) status = cm_error_set(CM_ERR_NOMEM, "sweep: plot");
    }
    if (status == CM_OK) {
        for (size_t i = 0; i < total; i++) errors[i] = points[i].error;
        for (size_t k = 0; k < series_count; k++)
            series[k] = (cm_plot_series){x + k * x_count, errors + k * x_count, x_count, labels[k], 0};
        size_t count = series_count;
        if (x_param == P_T && series_count < MAX_SERIES + 1 && x_count > 1 && points[0].error > 0) {
            double scale = points[0].error / cm_bound_rate_shape(points[0].p[P_T]);
            for (size_t i = 0; i < x_count; i++) shape[i] = scale * cm_bound_rate_shape(x[i]);
            snprintf(labels[count], sizeof labels[count], "log^5 T / T (bound shape, scaled)");
            series[count] = (cm_plot_series){x, shape, x_count, labels[count], 1};
            count++;
        }
        /* learned, one series: the terms beside the measured W1 (Theorem 1 with the rate term
         * replaced by the exact ideal-CT error) */
        double *terms = NULL;
        if (kind_learned && series_count == 1) {
            terms = cm_malloc(4 * x_count, sizeof(double));
            if (!terms) status = cm_error_set(CM_ERR_NOMEM, "sweep: plot");
            for (size_t i = 0; terms && i < x_count; i++) {
                terms[i] = points[i].w1_ideal;
                terms[x_count + i] = points[i].eps;
                terms[2 * x_count + i] = points[i].eps_F;
                terms[3 * x_count + i] = points[i].w1_ideal + points[i].eps + points[i].eps_F;
            }
            const char *names[4] = {"W1 of ideal CT", "eps (sum over t)", "eps_F (sum over t)",
                                    "W1 ideal + eps + eps_F"};
            for (int q = 0; terms && q < 4; q++) {
                snprintf(labels[count], sizeof labels[count], "%s", names[q]);
                series[count] = (cm_plot_series){x, terms + q * x_count, x_count, labels[count],
                                                 q == 3 ? 1 : 0};
                count++;
            }
        }
        char title[160];
        snprintf(title, sizeof title, "cm sweep --kind %s: error vs %s", s.kind,
                 PARAM_NAMES[x_param]);
        snprintf(path, sizeof path, "%s/sweep.png", s.out);
        if (status == CM_OK)
            status = cm_plot_loglog_png(path, series, count, title, PARAM_NAMES[x_param],
                                        kind_gaussian ? "W1 of ideal CT (W2 where W1 not closed)"
                                                      : "W1 vs X_1");
        cm_free(terms);
    }
    if (status == CM_OK)
        printf("wrote %s/sweep.csv, %s/fits.csv, %s/sweep.png\n", s.out, s.out, s.out);
    cm_free(errors);
    cm_free(points);
    cm_free(xs);
    return status == CM_OK ? CLI_OK : cli_fail(command, status);
}
