/* cmd_theory.c: `cm theory <subcommand>`: exact ideal consistency training measured on laws
 * known exactly (docs/theory.md; cm/theory.h). This file dispatches the subcommands and holds
 * `gaussian` (closed-form recursion for N(mean, diag) data, any d) and `mixture1d` (grid
 * recursion for 1-D mixtures). Each prints a table, or one JSON line per row with --json, and
 * with --csv FILE writes a tidy CSV (one row per parameter combination). Lists (--d 1,16,256
 * --T 50,100) give one row per combination.
 */
#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cm/alloc.h"
#include "cm/data.h"
#include "cm/law.h"
#include "cm/schedule.h"
#include "cm/theory.h"

/* Limits of the command line (the library takes more): enough for every sweep we run, small
 * enough that a typo does not start an hour-long job. */
#define THEORY_MAX_ROWS 4096
#define THEORY_MAX_T 10000000.0
#define THEORY_MAX_D 100000.0
#define THEORY_MAX_COMPONENTS 256
/* Elementary operations one command may ask for (about an hour at 10^8 per second): d T for a
 * spectrum (one gain recursion per coordinate), T x grid x nodes x K x 5 for mixture1d (the
 * refinement run costs 4 times the first). */
#define THEORY_MAX_WORK 3e11

/* ---------------------------------------------------------------- shared helpers */

/* Each list value an integer in [lo, hi]. */
static int integer_list(const cli_list *list, const char *name, double lo, double hi,
                        const char *command) {
    for (size_t i = 0; i < list->count; i++) {
        double v = list->values[i];
        if (v != floor(v) || v < lo || v > hi)
            return cli_usage_error(command, "--%s: %g is not an integer in [%g, %g]", name, v, lo,
                                   hi);
    }
    return CLI_OK;
}

/* Largest |mean| accepted: beyond ~1e150 the squared distances of the mixture's densities
 * overflow and the grid recursion returns NaN; 1e12 keeps every intermediate far from that
 * while allowing modes 10^12 standard deviations apart, past where the results stop changing. */
#define THEORY_MAX_ABS_MEAN 1e12

/* "--means M1,M2,...": finite numbers of any sign (OPT_LIST takes only positive values). */
static int parse_means(double *out, size_t *count, const char *text, const char *command) {
    *count = 0;
    const char *p = text;
    while (1) {
        size_t length = strcspn(p, ",");
        char item[64];
        if (length == 0 || length >= sizeof item || *count == THEORY_MAX_COMPONENTS)
            return cli_usage_error(command, "--means: '%s' is not a comma-separated list of at "
                                   "most %d finite numbers", text, THEORY_MAX_COMPONENTS);
        memcpy(item, p, length);
        item[length] = '\0';
        char *end = NULL;
        errno = 0;
        double value = item[0] == ' ' ? NAN : strtod(item, &end);
        if (!end || end == item || *end != '\0' || errno == ERANGE || !isfinite(value))
            return cli_usage_error(command, "--means: '%s' is not a finite number", item);
        if (fabs(value) > THEORY_MAX_ABS_MEAN)
            return cli_usage_error(command, "--means: %g is out of [-%g, %g]", value,
                                   THEORY_MAX_ABS_MEAN, THEORY_MAX_ABS_MEAN);
        out[(*count)++] = value;
        if (p[length] == '\0') return CLI_OK;
        p += length + 1;
    }
}

static void json_add(cJSON *object, const char *key, double value) {
    if (isfinite(value)) cJSON_AddNumberToObject(object, key, value);
    else cJSON_AddNullToObject(object, key);
}

static void print_json(cJSON *object) {
    char *text = cJSON_PrintUnformatted(object);
    if (text) printf("%s\n", text);
    free(text);
}

/* NULL with the error recorded (cli_fail prints it). */
static FILE *open_csv(const char *path) {
    FILE *file = fopen(path, "w");
    if (!file) cm_error_set(CM_ERR_IO, "cannot write %s: %s", path, strerror(errno));
    return file;
}

static int close_csv(FILE *file, const char *path, const char *command) {
    int failed = ferror(file);
    if (fclose(file) != 0 || failed)
        return cli_fail(command, cm_error_set(CM_ERR_IO, "writing %s failed", path));
    return CLI_OK;
}

/* ---------------------------------------------------------------- cm theory gaussian */

typedef struct {
    size_t d, T;
    double var, c0, c1;
    cm_theory_gaussian_result r;
} gaussian_row;

/* Variances of one row: var (isotropic) or the gauss: source's spectrum for this d. */
static cm_status row_variances(double *variances, size_t d, double var, const char *spectrum) {
    if (!spectrum) {
        for (size_t i = 0; i < d; i++) variances[i] = var;
        return CM_OK;
    }
    char source[160];
    snprintf(source, sizeof source, "gauss:d=%zu,spectrum=%s", d, spectrum);
    cm_data *data = NULL;
    CM_TRY(cm_data_open(&data, source));
    cm_gmm_view view;
    cm_status status = cm_data_gmm(&view, data);
    if (status == CM_OK) memcpy(variances, view.variances, d * sizeof(double));
    cm_data_free(data);
    return status;
}

static void gaussian_json(const gaussian_row *row, const char *spectrum, double mean) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "d", (double)row->d);
    if (spectrum) cJSON_AddStringToObject(o, "spectrum", spectrum);
    else cJSON_AddNumberToObject(o, "var", row->var);
    cJSON_AddNumberToObject(o, "mean", mean);
    cJSON_AddNumberToObject(o, "T", (double)row->T);
    cJSON_AddNumberToObject(o, "c0", row->c0);
    cJSON_AddNumberToObject(o, "c1", row->c1);
    json_add(o, "abar_T", row->r.abar_T);
    json_add(o, "w1_ideal", row->r.w1_ideal);
    json_add(o, "w2_ideal", row->r.w2_ideal);
    json_add(o, "w1_ideal_lower", row->r.w1_ideal_lower);
    json_add(o, "w1_ideal_upper", row->r.w1_ideal_upper);
    json_add(o, "w1_exact_map", row->r.w1_exact_map);
    json_add(o, "w2_exact_map", row->r.w2_exact_map);
    json_add(o, "gain_min", row->r.gain_min);
    json_add(o, "gain_max", row->r.gain_max);
    print_json(o);
    cJSON_Delete(o);
}

static int gaussian_output(const gaussian_row *rows, size_t count, const char *spectrum,
                           double mean, int json, const char *csv, const char *command) {
    if (json) {
        for (size_t i = 0; i < count; i++) gaussian_json(&rows[i], spectrum, mean);
    } else {
        printf("%6s %10s %8s %6s %6s %11s %11s %11s %11s %11s %11s\n", "d", "var", "T", "c0", "c1",
               "abar_T", "w2_ideal", "w1_ideal", "w1_lower", "w1_upper", "w2_exact");
        for (size_t i = 0; i < count; i++) {
            const gaussian_row *r = &rows[i];
            char var[32];
            if (spectrum) snprintf(var, sizeof var, "spectrum");
            else snprintf(var, sizeof var, "%g", r->var);
            printf("%6zu %10s %8zu %6g %6g %11.4e %11.4e %11.4e %11.4e %11.4e %11.4e\n", r->d, var,
                   r->T, r->c0, r->c1, r->r.abar_T, r->r.w2_ideal, r->r.w1_ideal,
                   r->r.w1_ideal_lower, r->r.w1_ideal_upper, r->r.w2_exact_map);
        }
    }
    if (!csv) return CLI_OK;
    FILE *file = open_csv(csv);
    if (!file) return cli_fail(command, CM_ERR_IO);
    fprintf(file, "d,var,spectrum,mean,T,c0,c1,abar_T,w2_ideal,w1_ideal,w1_ideal_lower,"
                  "w1_ideal_upper,w2_exact_map,w1_exact_map,gain_min,gain_max\n");
    for (size_t i = 0; i < count; i++) {
        const gaussian_row *r = &rows[i];
        fprintf(file, "%zu,%.17g,%s,%.17g,%zu,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,"
                      "%.17g,%.17g,%.17g\n",
                r->d, spectrum ? NAN : r->var, spectrum ? spectrum : "", mean, r->T, r->c0, r->c1,
                r->r.abar_T, r->r.w2_ideal, r->r.w1_ideal, r->r.w1_ideal_lower,
                r->r.w1_ideal_upper, r->r.w2_exact_map, r->r.w1_exact_map, r->r.gain_min,
                r->r.gain_max);
    }
    return close_csv(file, csv, command);
}

static int theory_gaussian(int argc, char **argv) {
    const char *command = "theory gaussian";
    cli_list d_list = {{1}, 1}, var_list = {{1}, 1}, T_list = {{1000}, 1};
    cli_list c0_list = {{CM_LHW_C0_DEFAULT}, 1}, c1_list = {{CM_LHW_C1_DEFAULT}, 1};
    const char *spectrum = NULL, *csv = NULL;
    double mean = 0.0;
    int json = 0;
    cli_option options[] = {
        {"d", OPT_LIST, &d_list, "dimensions (list)", 0, 0, 0},
        {"var", OPT_LIST, &var_list, "variances of the isotropic N(mean 1, var I) (list)", 0, 0, 0},
        {"spectrum", OPT_STRING, &spectrum, "instead of --var: logspace(A,B), variances 10^A..10^B",
         0, 0, 0},
        {"mean", OPT_DOUBLE, &mean, "mean of every coordinate", -1e300, 0, 0},
        {"T", OPT_LIST, &T_list, "chain lengths (list, integers >= 2)", 0, 0, 0},
        {"c0", OPT_LIST, &c0_list, "[LHW] schedule constant c0 (list)", 0, 0, 0},
        {"c1", OPT_LIST, &c1_list, "schedule constant c1 (list)", 0, 0, 0},
        {"json", OPT_FLAG, &json, "one JSON line per row instead of the table", 0, 0, 0},
        {"csv", OPT_STRING, &csv, "also write the rows to this CSV file", 0, 0, 0},
    };
    int parsed = cli_parse(argc, argv, 3, options, sizeof options / sizeof options[0], command,
                           "Ideal consistency training on Gaussian data X_0 ~ N(mean 1, var I) (or a\n"
                           "log-spaced spectrum), in closed form (docs/theory.md): W2 and W1 between\n"
                           "f_T(Y), Y ~ N(0, I), and X_1, and the same for the exact flow map.\n"
                           "W1 is closed for d = 1 or isotropic zero-mean data; otherwise w1_ideal is\n"
                           "null and w1_ideal_lower/upper bound it (largest marginal W1, and W2).");
    if (parsed != CLI_OK) return parsed;
    if (spectrum && cli_option_seen(options, sizeof options / sizeof options[0], "var"))
        return cli_usage_error(command, "give --var or --spectrum, not both");
    if (integer_list(&d_list, "d", 1, THEORY_MAX_D, command) != CLI_OK ||
        integer_list(&T_list, "T", 2, THEORY_MAX_T, command) != CLI_OK)
        return CLI_USAGE_ERROR;
    for (size_t a = 0; a < d_list.count && spectrum; a++)
        for (size_t c = 0; c < T_list.count; c++)
            if (d_list.values[a] * T_list.values[c] > THEORY_MAX_WORK)
                return cli_usage_error(command, "d %g x T %g exceeds %g steps", d_list.values[a],
                                       T_list.values[c], THEORY_MAX_WORK);
    size_t vars = spectrum ? 1 : var_list.count;
    size_t count = d_list.count * vars * T_list.count * c0_list.count * c1_list.count;
    if (count > THEORY_MAX_ROWS)
        return cli_usage_error(command, "%zu combinations exceed %d rows", count, THEORY_MAX_ROWS);
    gaussian_row *rows = cm_calloc(count, sizeof *rows);
    double *variances = cm_malloc(2 * (size_t)THEORY_MAX_D, sizeof(double)); /* and the mean */
    cm_status status = rows && variances ? CM_OK : cm_error_set(CM_ERR_NOMEM, "theory rows");
    size_t r = 0;
    for (size_t a = 0; a < d_list.count && status == CM_OK; a++)
        for (size_t b = 0; b < vars && status == CM_OK; b++) {
            size_t d = (size_t)d_list.values[a];
            status = row_variances(variances, d, var_list.values[b], spectrum);
            for (size_t c = 0; c < T_list.count && status == CM_OK; c++)
                for (size_t e = 0; e < c0_list.count && status == CM_OK; e++)
                    for (size_t f = 0; f < c1_list.count && status == CM_OK; f++, r++) {
                        gaussian_row *row = &rows[r];
                        row->d = d;
                        row->T = (size_t)T_list.values[c];
                        row->var = var_list.values[b];
                        row->c0 = c0_list.values[e];
                        row->c1 = c1_list.values[f];
                        double *m = NULL;
                        if (mean != 0.0) {
                            m = variances + (size_t)THEORY_MAX_D;
                            for (size_t i = 0; i < d; i++) m[i] = mean;
                        }
                        status = cm_theory_gaussian_mean(&row->r, d, m, variances, row->T, row->c0,
                                                         row->c1);
                    }
        }
    int code = status == CM_OK ? gaussian_output(rows, count, spectrum, mean, json, csv, command)
                               : cli_fail(command, status);
    cm_free(rows);
    cm_free(variances);
    return code;
}

/* ---------------------------------------------------------------- cm theory mixture1d */

typedef struct {
    size_t T;
    double std, c0, c1;
    cm_theory_mixture1d_result r;
} mixture_row;

static int mixture_output(const mixture_row *rows, size_t count, const double *means, size_t k,
                          const cm_theory_grid_options *o, int json, const char *csv,
                          const char *command) {
    for (size_t i = 0; i < count && json; i++) {
        const mixture_row *r = &rows[i];
        cJSON *object = cJSON_CreateObject(), *array = cJSON_AddArrayToObject(object, "means");
        for (size_t j = 0; j < k; j++) cJSON_AddItemToArray(array, cJSON_CreateNumber(means[j]));
        cJSON_AddNumberToObject(object, "std", r->std);
        cJSON_AddNumberToObject(object, "T", (double)r->T);
        cJSON_AddNumberToObject(object, "c0", r->c0);
        cJSON_AddNumberToObject(object, "c1", r->c1);
        json_add(object, "abar_T", r->r.abar_T);
        json_add(object, "w1_ideal", r->r.w1_ideal);
        json_add(object, "w1_ddim", r->r.w1_ddim);
        json_add(object, "w1_exact_map", r->r.w1_exact_map);
        json_add(object, "lipschitz", r->r.lipschitz);
        json_add(object, "log_lipschitz", r->r.log_lipschitz);
        cJSON_AddBoolToObject(object, "lipschitz_resolved", r->r.lipschitz_resolved);
        json_add(object, "refinement_change", r->r.refinement_change);
        cJSON_AddBoolToObject(object, "monotone", r->r.monotone);
        cJSON_AddNumberToObject(object, "grid_points", (double)o->grid_points);
        cJSON_AddNumberToObject(object, "hermite_nodes", (double)o->hermite_nodes);
        print_json(object);
        cJSON_Delete(object);
    }
    if (!json) {
        printf("%8s %8s %6s %6s %11s %11s %11s %11s %11s %11s\n", "T", "std", "c0", "c1", "abar_T",
               "w1_ideal", "w1_ddim", "w1_exact", "lipschitz", "refine_chg");
        for (size_t i = 0; i < count; i++) {
            const mixture_row *r = &rows[i];
            printf("%8zu %8g %6g %6g %11.4e %11.4e %11.4e %11.4e %11.4e %11.4e%s%s\n", r->T, r->std,
                   r->c0, r->c1, r->r.abar_T, r->r.w1_ideal, r->r.w1_ddim, r->r.w1_exact_map,
                   r->r.lipschitz, r->r.refinement_change,
                   r->r.monotone ? "" : "  (f_T not monotone: law sorted)",
                   r->r.lipschitz_resolved ? "" : "  (lipschitz: lower bound)");
        }
    }
    if (!csv) return CLI_OK;
    FILE *file = open_csv(csv);
    if (!file) return cli_fail(command, CM_ERR_IO);
    fprintf(file, "means,std,T,c0,c1,abar_T,w1_ideal,w1_ddim,w1_exact_map,lipschitz,"
                  "log_lipschitz,refinement_change,monotone,lipschitz_resolved,grid_points,hermite_nodes\n");
    for (size_t i = 0; i < count; i++) {
        const mixture_row *r = &rows[i];
        fputc('"', file);
        for (size_t j = 0; j < k; j++) fprintf(file, "%s%.17g", j ? "," : "", means[j]);
        fprintf(file, "\",%.17g,%zu,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%.17g,%d,%d,"
                      "%zu,%zu\n",
                r->std, r->T, r->c0, r->c1, r->r.abar_T, r->r.w1_ideal, r->r.w1_ddim,
                r->r.w1_exact_map, r->r.lipschitz, r->r.log_lipschitz, r->r.refinement_change,
                r->r.monotone,
                r->r.lipschitz_resolved, o->grid_points, o->hermite_nodes);
    }
    return close_csv(file, csv, command);
}

static int theory_mixture1d(int argc, char **argv) {
    const char *command = "theory mixture1d";
    const char *means_text = NULL, *csv = NULL;
    cli_list std_list = {{0.5}, 1}, weight_list = {{0}, 0}, T_list = {{1000}, 1};
    cli_list c0_list = {{CM_LHW_C0_DEFAULT}, 1}, c1_list = {{CM_LHW_C1_DEFAULT}, 1};
    cm_theory_grid_options o = cm_theory_grid_options_default();
    int json = 0, no_refine = 0;
    cli_option options[] = {
        {"means", OPT_STRING, &means_text, "component means M1,M2,... (any sign)", 0, 1, 0},
        {"std", OPT_LIST, &std_list, "common component std (list: one row each)", 0, 0, 0},
        {"weights", OPT_LIST, &weight_list, "component weights (default equal)", 0, 0, 0},
        {"T", OPT_LIST, &T_list, "chain lengths (list, integers >= 2)", 0, 0, 0},
        {"c0", OPT_LIST, &c0_list, "[LHW] schedule constant c0 (list)", 0, 0, 0},
        {"c1", OPT_LIST, &c1_list, "schedule constant c1 (list)", 0, 0, 0},
        {"grid", OPT_SIZE, &o.grid_points, "grid points per t", 4, 0, 0},
        {"nodes", OPT_SIZE, &o.hermite_nodes, "Gauss-Hermite nodes", 1, 0, 0},
        {"halfwidth", OPT_DOUBLE, &o.halfwidth_stds, "grid half-width in component stds", 1, 0, 0},
        {"quantile-points", OPT_SIZE, &o.quantile_points,
         "nodes of the Y-quadrature for W1 (0: 16 per grid point)", 0, 0, 0},
        {"no-refine", OPT_FLAG, &no_refine, "skip the run at twice the resolution", 0, 0, 0},
        {"json", OPT_FLAG, &json, "one JSON line per row instead of the table", 0, 0, 0},
        {"csv", OPT_STRING, &csv, "also write the rows to this CSV file", 0, 0, 0},
    };
    int parsed = cli_parse(argc, argv, 3, options, sizeof options / sizeof options[0], command,
                           "Ideal consistency training on a 1-D Gaussian mixture, exactly on a grid\n"
                           "(docs/theory.md): W1 by quantiles between f_T(Y), Y ~ N(0,1), and X_1;\n"
                           "the exact-denoiser DDIM chain and the exact flow map for comparison;\n"
                           "lipschitz = sup of the exact map's slope p_T(x) / p_1(Phi(x)); and the\n"
                           "change of w1_ideal when grid, nodes and quadrature are doubled.");
    if (parsed != CLI_OK) return parsed;
    double means[THEORY_MAX_COMPONENTS], weights[THEORY_MAX_COMPONENTS];
    size_t k = 0;
    if (parse_means(means, &k, means_text, command) != CLI_OK) return CLI_USAGE_ERROR;
    if (weight_list.count && weight_list.count != k)
        return cli_usage_error(command, "--weights has %zu values for %zu means",
                               weight_list.count, k);
    for (size_t j = 0; j < k; j++) weights[j] = weight_list.count ? weight_list.values[j] : 1.0;
    if (integer_list(&T_list, "T", 2, THEORY_MAX_T, command) != CLI_OK) return CLI_USAGE_ERROR;
    o.refine = !no_refine;
    for (size_t c = 0; c < T_list.count; c++) {
        double work = T_list.values[c] * (double)o.grid_points * (double)o.hermite_nodes *
                      (double)k * (o.refine ? 5.0 : 1.0);
        if (work > THEORY_MAX_WORK)
            return cli_usage_error(command, "T %g x grid %zu x nodes %zu x %zu components "
                                   "exceeds %g steps", T_list.values[c], o.grid_points,
                                   o.hermite_nodes, k, THEORY_MAX_WORK);
    }
    size_t count = std_list.count * T_list.count * c0_list.count * c1_list.count;
    if (count > THEORY_MAX_ROWS)
        return cli_usage_error(command, "%zu combinations exceed %d rows", count, THEORY_MAX_ROWS);
    mixture_row *rows = cm_calloc(count, sizeof *rows);
    cm_status status = rows ? CM_OK : cm_error_set(CM_ERR_NOMEM, "theory rows");
    size_t r = 0;
    for (size_t a = 0; a < std_list.count && status == CM_OK; a++) {
        double stds[THEORY_MAX_COMPONENTS];
        for (size_t j = 0; j < k; j++) stds[j] = std_list.values[a];
        cm_law *law = NULL;
        status = cm_law_mixture_isotropic(&law, 1, k, weights, means, stds);
        for (size_t c = 0; c < T_list.count && status == CM_OK; c++)
            for (size_t e = 0; e < c0_list.count && status == CM_OK; e++)
                for (size_t f = 0; f < c1_list.count && status == CM_OK; f++, r++) {
                    mixture_row *row = &rows[r];
                    row->T = (size_t)T_list.values[c];
                    row->std = std_list.values[a];
                    row->c0 = c0_list.values[e];
                    row->c1 = c1_list.values[f];
                    status = cm_theory_mixture1d(&row->r, law, row->T, row->c0, row->c1, &o);
                }
        cm_law_free(law);
    }
    int code = status == CM_OK ? mixture_output(rows, count, means, k, &o, json, csv, command)
                               : cli_fail(command, status);
    cm_free(rows);
    return code;
}

/* ---------------------------------------------------------------- dispatch */

typedef struct {
    const char *name;
    int (*run)(int argc, char **argv); /* full argv: argv[2] is the subcommand, options from 3 */
    const char *summary;
} theory_command;

static const theory_command theory_commands[] = {
    {"gaussian", theory_gaussian, "ideal CT on Gaussian data, closed form (any d)"},
    {"mixture1d", theory_mixture1d, "ideal CT on a 1-D mixture, exact on a grid"},
    /* Subcommands of tools/cm/cmd_theory_learned.c (declared in cli.h): one line each here. */
    {"learned", cmd_theory_learned, "learned CT (affine / random features) with eps, eps_F, L_f"},
    {"bound", cmd_theory_bound, "the terms of Theorem 1 and the T of its corollary"},
    {"network", cmd_theory_network, "Theorem 1's quantities for a trained lhw network"},
};

static void theory_usage(FILE *stream) {
    fprintf(stream, "usage: cm theory <subcommand> [options]    (cm theory <subcommand> --help)\n\n"
                    "Consistency training measured on laws known exactly ([LHW]; docs/theory.md).\n\n"
                    "subcommands:\n");
    for (size_t i = 0; i < sizeof theory_commands / sizeof theory_commands[0]; i++)
        fprintf(stream, "  %-10s %s\n", theory_commands[i].name, theory_commands[i].summary);
}

int cmd_theory(int argc, char **argv) {
    if (argc < 3) {
        theory_usage(stderr);
        return CLI_USAGE_ERROR;
    }
    const char *name = argv[2];
    if (!strcmp(name, "--help") || !strcmp(name, "-h") || !strcmp(name, "help")) {
        theory_usage(stdout);
        return CLI_OK;
    }
    for (size_t i = 0; i < sizeof theory_commands / sizeof theory_commands[0]; i++)
        if (!strcmp(name, theory_commands[i].name)) return theory_commands[i].run(argc, argv);
    fprintf(stderr, "cm theory: error: unknown subcommand '%s' (see cm theory --help)\n", name);
    return CLI_USAGE_ERROR;
}
