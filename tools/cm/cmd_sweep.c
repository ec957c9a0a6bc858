/* cmd_sweep.c: `cm sweep`: the theory lab over a grid of parameters ([LHW] Theorem 1's terms;
 * docs/theory.md). At every point of the product of the parameter lists it computes ideal
 * consistency training (gaussian: closed form; mixture1d: the exact grid recursion), learned CT
 * with closed-form fits (learned), or trains an [LHW] network and measures it (width)
 * (cmd_sweep_points.c); writes one tidy CSV row per point, a CSV of fitted slopes, and a log-log
 * PNG: the error against the varied parameter, one series per combination of the others, each
 * with its slope and 95% interval, and the bound's shape when T varies (cmd_sweep_output.c).
 * This file parses the options, builds the grid (x fastest, so each series is a contiguous run
 * of points) and runs it. Over R processes (mpirun, an MPI build: dist.h) each measures a
 * contiguous range of the points (cm_comm_block_range), every point in one process as a serial
 * run would, and the results are gathered (share_rows); rank 0 prints and writes the same lines
 * and files as a serial run.
 */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cm/alloc.h"
#include "cm/learned.h"
#include "dist.h"
#include "sweep.h"

#define MAX_POINTS 4096
#define MAX_T 100000
#define MAX_D 4096

const char *const SWEEP_PARAM_NAMES[P_COUNT] = {"T", "d", "var", "c0", "c1", "sep", "n", "width",
                                                "spectrum"};

/* --vary NAME=LIST: which parameter, and its list into lists[which]. */
static int parse_vary(int *which, cli_list *lists, const char *text, const char *command) {
    const char *equals = strchr(text, '=');
    if (!equals) return cli_usage_error(command, "--vary '%s': expected NAME=A,B,...", text);
    for (int k = 0; k < P_SPECTRUM; k++)
        if (strlen(SWEEP_PARAM_NAMES[k]) == (size_t)(equals - text) &&
            !strncmp(text, SWEEP_PARAM_NAMES[k], (size_t)(equals - text))) {
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


static int parse_kind(sweep_kind *out, const char *text) {
    const char *names[4] = {"gaussian", "mixture1d", "learned", "width"};
    for (int k = 0; k < 4; k++)
        if (!strcmp(text, names[k])) {
            *out = (sweep_kind)k;
            return CLI_OK;
        }
    return cli_usage_error("sweep", "--kind '%s': gaussian, mixture1d, learned or width", text);
}

/* The lists of the grid: the x axis from --vary, the spectrum, the defaults the kind needs, and
 * their ranges. */
static int check_lists(sweep_grid *grid, const char *vary, const char *spectrum,
                       const sweep_settings *s) {
    const char *command = "sweep";
    cli_list *lists = grid->lists;
    int code = parse_vary(&grid->x_param, lists, vary, command);
    if (code != CLI_OK) return code;
    if (!strcmp(spectrum, "iso")) lists[P_SPECTRUM] = (cli_list){{0}, 1};
    else if (!strcmp(spectrum, "aniso")) lists[P_SPECTRUM] = (cli_list){{1}, 1};
    else if (!strcmp(spectrum, "iso,aniso")) lists[P_SPECTRUM] = (cli_list){{0, 1}, 2};
    else return cli_usage_error(command, "--spectrum '%s': iso, aniso or iso,aniso", spectrum);
    if (grid->kind != SWEEP_GAUSSIAN) lists[P_SPECTRUM] = (cli_list){{0}, 1};
    if (grid->kind == SWEEP_MIXTURE1D && lists[P_SEP].count == 0)
        return cli_usage_error(command, "--kind mixture1d needs --sep (or --vary sep=...)");
    if (lists[P_SEP].count == 0) lists[P_SEP] = (cli_list){{0}, 1};
    if ((code = check_integers(&lists[P_T], "T", 2, grid->kind == SWEEP_WIDTH ? 1000 : MAX_T,
                               command)) ||
        (code = check_integers(&lists[P_D], "d", 1, MAX_D, command)) ||
        (code = check_integers(&lists[P_N], "n", 2, 1e7, command)) ||
        (code = check_integers(&lists[P_WIDTH], "width", 1, 4096, command)))
        return code;
    if (s->steps > 1000000) return cli_usage_error(command, "--steps %zu: at most 1e6", s->steps);
    if (s->n_eval > 1000000) return cli_usage_error(command, "--eval %zu: at most 1e6", s->n_eval);
    cm_learned_class check_class;
    if (cm_learned_class_parse(&check_class, s->class_name) != CM_OK)
        return cli_usage_error(command, "--class: %s", cm_error_detail());
    return CLI_OK;
}

/* The parameters that matter for the kind (the others are fixed to their first value), and
 * the counts of points and series. */
static int plan_grid(sweep_grid *grid, const char *kind_name) {
    const char *command = "sweep";
    sweep_kind kind = grid->kind;
    int *used = grid->used;
    for (int k = 0; k < P_COUNT; k++) used[k] = k == P_T || k == P_C0 || k == P_C1;
    if (kind == SWEEP_GAUSSIAN) used[P_D] = used[P_VAR] = used[P_SPECTRUM] = 1;
    if (kind == SWEEP_MIXTURE1D) used[P_SEP] = 1;
    if (kind == SWEEP_LEARNED || kind == SWEEP_WIDTH) used[P_D] = used[P_VAR] = used[P_SEP] = 1;
    if (kind == SWEEP_LEARNED) used[P_N] = 1;
    if (kind == SWEEP_WIDTH) used[P_WIDTH] = 1;
    if (!used[grid->x_param])
        return cli_usage_error(command, "--vary %s has no effect for --kind %s",
                               SWEEP_PARAM_NAMES[grid->x_param], kind_name);
    grid->total = grid->series_count = 1;
    for (int k = 0; k < P_COUNT; k++) {
        if (!used[k]) grid->lists[k].count = 1;
        grid->total *= grid->lists[k].count;
        if (k != grid->x_param) grid->series_count *= grid->lists[k].count;
    }
    grid->x_count = grid->lists[grid->x_param].count;
    if (grid->total > MAX_POINTS)
        return cli_usage_error(command, "%zu points: at most %d", grid->total, MAX_POINTS);
    if (grid->series_count > SWEEP_MAX_SERIES)
        return cli_usage_error(command, "%zu series: at most %d in one figure", grid->series_count,
                               SWEEP_MAX_SERIES);
    return CLI_OK;
}

/* Point `index` of the grid, x fastest: its parameters and series, its results NaN. */
static void grid_point(sweep_point *pt, const sweep_grid *grid, size_t index) {
    size_t rest = index / grid->x_count;
    int x = grid->x_param;
    pt->p[x] = grid->lists[x].values[index % grid->x_count];
    pt->series = rest;
    for (int k = P_COUNT - 1; k >= 0; k--) {
        if (k == x) continue;
        pt->p[k] = grid->lists[k].values[rest % grid->lists[k].count];
        rest /= grid->lists[k].count;
    }
    pt->w1_floor = pt->eps = pt->eps_F = pt->w1_ideal = pt->w2 = pt->w1_lower = NAN;
    pt->w1_ddim = pt->lipschitz = pt->lipschitz_exact = pt->lipschitz_theory = NAN;
    pt->gap_total = pt->gap_exact_total = NAN;
}

/* What a point measures (sweep_point's results), gathered from the process that measured it. */
static const size_t RESULT_OFFSETS[] = {
    offsetof(sweep_point, error), offsetof(sweep_point, w1_floor), offsetof(sweep_point, eps),
    offsetof(sweep_point, eps_F), offsetof(sweep_point, w1_ideal), offsetof(sweep_point, w2),
    offsetof(sweep_point, w1_lower), offsetof(sweep_point, w1_ddim),
    offsetof(sweep_point, lipschitz), offsetof(sweep_point, lipschitz_exact),
    offsetof(sweep_point, lipschitz_theory), offsetof(sweep_point, gap_total),
    offsetof(sweep_point, gap_exact_total)};
#define RESULT_COUNT (sizeof RESULT_OFFSETS / sizeof RESULT_OFFSETS[0])

static void print_point(const sweep_point *pt) {
    printf("%-6g %-6g %-8g %-6s %-6g %-6g %-6g %-8g %-6g %12.6g %10.4g %10.4g %10.4g\n",
           pt->p[P_T], pt->p[P_D], pt->p[P_VAR], pt->p[P_SPECTRUM] > 0 ? "aniso" : "iso",
           pt->p[P_C0], pt->p[P_C1], pt->p[P_SEP], pt->p[P_N], pt->p[P_WIDTH], pt->error,
           pt->w1_floor, pt->eps, pt->eps_F);
    fflush(stdout);
}

/* Every process's points into every process's copy of the grid: one row of RESULT_COUNT values
 * per point, the point a block of the communicator's share (its owner is the process that
 * measured it, cm_comm_block_range). */
static cm_status share_points(sweep_point *points, size_t total, const cm_comm *comm) {
    double *values = cm_malloc(total * RESULT_COUNT, sizeof(double));
    size_t *row_first = cm_malloc(total + 1, sizeof(size_t));
    cm_status status = CM_OK;
    if (!values || !row_first) status = cm_error_set(CM_ERR_NOMEM, "sweep: %zu results", total);
    for (size_t i = 0; status == CM_OK && i <= total; i++) {
        row_first[i] = i;
        for (size_t k = 0; i < total && k < RESULT_COUNT; k++)
            memcpy(&values[i * RESULT_COUNT + k], (char *)&points[i] + RESULT_OFFSETS[k],
                   sizeof(double));
    }
    if (status == CM_OK) status = comm->share_rows(comm, values, row_first, total, RESULT_COUNT);
    for (size_t i = 0; status == CM_OK && i < total; i++)
        for (size_t k = 0; k < RESULT_COUNT; k++)
            memcpy((char *)&points[i] + RESULT_OFFSETS[k], &values[i * RESULT_COUNT + k],
                   sizeof(double));
    cm_free(values);
    cm_free(row_first);
    return status;
}

/* Every point measured: this process's range of them, one line each on stdout as it is done
 * (rank 0, whose range comes first), then the others' gathered and printed in order. */
static cm_status run_points(sweep_point *points, const sweep_grid *grid, const sweep_settings *s) {
    const cm_comm *comm = cli_dist_comm();
    int writer = comm->rank == 0;
    size_t first, end;
    cm_comm_block_range(&first, &end, comm, grid->total);
    if (writer)
        printf("%-6s %-6s %-8s %-6s %-6s %-6s %-6s %-8s %-6s %12s %10s %10s %10s\n", "T", "d",
               "var", "spec", "c0", "c1", "sep", "n", "width", "error", "floor", "eps", "eps_F");
    for (size_t index = 0; index < grid->total; index++) grid_point(&points[index], grid, index);
    for (size_t index = first; index < end; index++) {
        cm_status status = sweep_measure_point(&points[index], grid->kind, s);
        if (status != CM_OK) {
            fflush(stdout);
            return status;
        }
        if (writer) print_point(&points[index]);
    }
    if (comm->size == 1) return CM_OK;
    CM_TRY(share_points(points, grid->total, comm));
    for (size_t index = end; writer && index < grid->total; index++) print_point(&points[index]);
    return CM_OK;
}

/* The grid run into the output directory (rank 0 creates it; every process agrees before the
 * work starts): sweep.csv, fits.csv, sweep.png. Returns a CLI exit code. */
static int run_sweep(const sweep_grid *grid, const sweep_settings *s) {
    const char *command = "sweep";
    int writer = cli_dist_rank() == 0;
    cm_status status = writer ? cli_make_directory(s->out) : CM_OK;
    sweep_point *points = status == CM_OK ? cm_calloc(grid->total, sizeof(sweep_point)) : NULL;
    if (status == CM_OK && !points)
        status = cm_error_set(CM_ERR_NOMEM, "sweep: %zu points", grid->total);
    int code = cli_dist_agree(status == CM_OK ? CLI_OK : cli_fail(command, status));
    if (code == CLI_OK) {
        cli_dist_collective(1);
        status = run_points(points, grid, s);
        char path[4096];
        snprintf(path, sizeof path, "%s/sweep.csv", s->out);
        if (status == CM_OK && writer) status = sweep_write_csv(path, points, grid->total, s->kind);
        if (status == CM_OK && writer) status = sweep_write_fits_and_figure(points, grid, s);
        if (status == CM_OK && writer)
            printf("wrote %s/sweep.csv, %s/fits.csv, %s/sweep.png\n", s->out, s->out, s->out);
        code = status == CM_OK ? CLI_OK : cli_fail(command, status);
    }
    cm_free(points);
    return code;
}

int cmd_sweep(int argc, char **argv) {
    const char *command = "sweep";
    sweep_settings s = {"gaussian", "affine", NULL, 0.5, 300, 1000, 1};
    const char *vary = NULL, *spectrum = "iso";
    sweep_grid grid = {.lists = {{{100}, 1}, {{1}, 1}, {{1}, 1}, {{2}, 1}, {{4}, 1}, {{0}, 0},
                                 {{1000}, 1}, {{32}, 1}, {{0}, 0}}};
    cli_option options[] = {
        {"kind", OPT_STRING, &s.kind, "gaussian | mixture1d | learned | width", 0, 0, 0},
        {"vary", OPT_STRING, &vary, "the x axis: NAME=A,B,... (T, d, var, c0, c1, sep, n, width)",
         0, 1, 0},
        {"T", OPT_LIST, &grid.lists[P_T], "chain lengths", 0, 0, 0},
        {"d", OPT_LIST, &grid.lists[P_D], "dimensions (gaussian, learned, width)", 0, 0, 0},
        {"var", OPT_LIST, &grid.lists[P_VAR], "data variance (aniso: the spectrum var 10^-2 .. var 10^2)", 0, 0, 0},
        {"spectrum", OPT_STRING, &spectrum, "gaussian: iso, aniso (logspace(-2,2)) or iso,aniso", 0,
         0, 0},
        {"c0", OPT_LIST, &grid.lists[P_C0], "schedule constant c0", 0, 0, 0},
        {"c1", OPT_LIST, &grid.lists[P_C1], "schedule constant c1", 0, 0, 0},
        {"sep", OPT_LIST, &grid.lists[P_SEP], "mixture1d/learned/width: distance of two modes", 0, 0, 0},
        {"std", OPT_DOUBLE, &s.std, "std of each mode", 1e-6, 0, 0},
        {"n", OPT_LIST, &grid.lists[P_N], "learned: pairs per step", 0, 0, 0},
        {"class", OPT_STRING, &s.class_name, "learned: affine or rff", 0, 0, 0},
        {"eval", OPT_SIZE, &s.n_eval, "learned: X_t points per step for eps, eps_F", 2, 0, 0},
        {"width", OPT_LIST, &grid.lists[P_WIDTH], "width: network widths", 0, 0, 0},
        {"steps", OPT_SIZE, &s.steps, "width: training steps per network", 1, 0, 0},
        {"seed", OPT_U64, &s.seed, "seed", 0, 0, 0},
        {"out", OPT_STRING, &s.out, "output directory (sweep.csv, fits.csv, sweep.png)", 0, 1, 0},
    };
    int parsed = cli_parse(argc, argv, 2, options, sizeof options / sizeof options[0], command,
                           "Theory-lab sweep: error of ideal or learned consistency training (or a\n"
                           "trained network) over a grid of parameters; tidy CSV, fitted log-log\n"
                           "slopes with 95% intervals, and a PNG with the bound's shape.");
    if (parsed != CLI_OK) return parsed;
    int code = parse_kind(&grid.kind, s.kind);
    if (code == CLI_OK) code = check_lists(&grid, vary, spectrum, &s);
    if (code == CLI_OK) code = plan_grid(&grid, s.kind);
    if (code != CLI_OK) return code;
    return run_sweep(&grid, &s);
}
