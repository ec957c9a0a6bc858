/* cmd_eval.c: `cm eval`: distances of samples to a reference source or file, each beside its
 * noise floor, with an optional bootstrap interval and, for gauss: references, the closed-form
 * W2 of the fitted Gaussian (see cm/evaluate.h; the metrics are described in docs/metrics.md). */
#include <math.h>
#include <stdio.h>

#include "cli.h"
#include "cm/alloc.h"
#include "cm/data.h"
#include "cm/evaluate.h"
#include "cm/io.h"

/* A JSON number, or null for NaN and infinities (which JSON cannot carry). */
static void json_number(const char *key, double value) {
    if (isfinite(value)) printf(", \"%s\": %.6g", key, value);
    else printf(", \"%s\": null", key);
}

static void print_json(const cm_evaluation_report *e, const char *samples_path,
                       const cm_data *reference, uint64_t seed) {
    printf("{\"samples\": \"%s\", \"ref\": \"%s\", \"n\": %zu, \"dim\": %zu, \"projections\": %zu, "
           "\"seed\": %llu, \"bootstrap\": %zu",
           samples_path, cm_data_describe(reference), e->n, e->dim, e->projections,
           (unsigned long long)seed, e->bootstrap);
    char key[64];
    for (int k = 0; k < CM_METRIC_COUNT; k++) {
        const cm_metric_value *v = &e->metric[k];
        if (!v->computed) continue;
        const char *name = cm_metric_name((cm_metric)k);
        json_number(name, v->value);
        snprintf(key, sizeof key, "%s_floor", name);
        json_number(key, v->floor);
        snprintf(key, sizeof key, "%s_ratio", name);
        json_number(key, v->value / v->floor);
        if (e->bootstrap) {
            snprintf(key, sizeof key, "%s_ci_low", name);
            json_number(key, v->ci_low);
            snprintf(key, sizeof key, "%s_ci_high", name);
            json_number(key, v->ci_high);
        }
        if (v->subsampled) {
            printf(", \"%s_subsample\": %zu, \"%s_repeats\": %zu", name, v->subsample_points, name,
                   v->repeats);
            snprintf(key, sizeof key, "%s_mean_low", name);
            json_number(key, v->value_low);
            snprintf(key, sizeof key, "%s_mean_high", name);
            json_number(key, v->value_high);
            snprintf(key, sizeof key, "%s_floor_mean_low", name);
            json_number(key, v->floor_low);
            snprintf(key, sizeof key, "%s_floor_mean_high", name);
            json_number(key, v->floor_high);
        }
    }
    if (e->metric[CM_METRIC_MMD].computed) json_number("mmd_bandwidth", e->bandwidth);
    if (e->gaussian) {
        json_number("gauss_fit_w2", e->gaussian_fit_w2);
        json_number("gauss_fit_w2_floor", e->gaussian_fit_w2_floor);
        if (e->dim == 1) {
            json_number("gauss_fit_w1", e->gaussian_fit_w1);
            json_number("gauss_fit_w1_floor", e->gaussian_fit_w1_floor);
        }
    }
    printf("}\n");
}

static void print_row(const char *label, double value, double floor, const double *interval) {
    printf("%-30s %12.6g %12.6g %8.3g", label, value, floor, value / floor);
    if (interval) printf("   [%.6g, %.6g]", interval[0], interval[1]);
    printf("\n");
}

static void print_table(const cm_evaluation_report *e, const char *samples_path, size_t rows,
                        const cm_data *reference, uint64_t seed) {
    printf("samples    %s (%zu used of %zu, dimension %zu)\n", samples_path, e->n, rows, e->dim);
    printf("reference  %s\n", cm_data_describe(reference));
    printf("%-30s %12s %12s %8s%s\n", "metric", "value", "floor", "ratio",
           e->bootstrap ? "   95% bootstrap interval" : "");
    for (int k = 0; k < CM_METRIC_COUNT; k++) {
        const cm_metric_value *v = &e->metric[k];
        if (!v->computed) continue;
        const char *label = cm_metric_label((cm_metric)k);
        if (e->dim == 1 && k == CM_METRIC_W1) label = "W1 (exact, 1-D)";
        if (e->dim == 1 && k == CM_METRIC_W2) label = "W2 (exact, 1-D)";
        double interval[2] = {v->ci_low, v->ci_high};
        print_row(label, v->value, v->floor, e->bootstrap ? interval : NULL);
    }
    if (e->gaussian) {
        print_row("W2 Gaussian fit (closed form)", e->gaussian_fit_w2, e->gaussian_fit_w2_floor,
                  NULL);
        if (e->dim == 1)
            print_row("W1 Gaussian fit (closed form)", e->gaussian_fit_w1,
                      e->gaussian_fit_w1_floor, NULL);
    }
    for (int k = 0; k < CM_METRIC_COUNT; k++) {
        const cm_metric_value *v = &e->metric[k];
        if (!v->subsampled) continue;
        printf("%s: %zu points is above the exact-OT limit: mean of %zu exact solves on random "
               "subsamples of %zu points, 95%% t-interval of the mean [%.6g, %.6g], floor "
               "[%.6g, %.6g]; a subsample distance is larger than the full one "
               "(docs/metrics.md)\n",
               cm_metric_name((cm_metric)k), e->n, v->repeats, v->subsample_points, v->value_low,
               v->value_high, v->floor_low, v->floor_high);
    }
    if (e->metric[CM_METRIC_MMD].computed)
        printf("MMD^2: unbiased, Gaussian kernel of bandwidth %.6g\n", e->bandwidth);
    if (e->gaussian)
        printf("Gaussian fit: W2 between N(mean, covariance of the points) and the exact law; "
               "its floor fits reference draw A\n");
    printf("(%zu projections, seed %llu; floor = same metric between two independent "
           "reference samples of size %zu%s)\n",
           e->projections, (unsigned long long)seed, e->n,
           e->bootstrap ? "; interval: percentiles over resamples of samples and reference" : "");
}

int cmd_eval(int argc, char **argv) {
    const char *command = "eval";
    const char *samples_path = NULL, *reference_source = NULL, *metric_list = "w1,sw1";
    cm_evaluate_options o = cm_evaluate_options_default();
    int json = 0;
    cli_option options[] = {
        {"samples", OPT_STRING, &samples_path, "samples file (.npy or .csv)", 0, 1, 0},
        {"ref", OPT_STRING, &reference_source, "reference: a data source or a file", 0, 1, 0},
        {"metric", OPT_STRING, &metric_list,
         "comma-separated: w1,w2 (exact OT),sw1,sw2,msw1,mmd,energy", 0, 0, 0},
        {"n", OPT_SIZE, &o.n, "points used from the samples (0 = all)", 0, 0, 0},
        {"projections", OPT_SIZE, &o.projections, "random directions of the sliced distances", 1, 0, 0},
        {"seed", OPT_U64, &o.seed, "seed of the reference draws, directions and resamples", 0, 0, 0},
        {"bootstrap", OPT_SIZE, &o.bootstrap, "resamples of a 95% percentile interval (0 = none)",
         0, 0, 0},
        {"ot-max", OPT_SIZE, &o.ot_max_points,
         "exact W1/W2 above this many points: mean over subsamples", 2, 0, 0},
        {"ot-repeats", OPT_SIZE, &o.ot_repeats, "subsamples averaged above --ot-max", 1, 0, 0},
        {"bandwidth", OPT_DOUBLE, &o.bandwidth, "MMD kernel bandwidth (0 = median heuristic)", 0,
         0, 0},
        {"json", OPT_FLAG, &json, "one JSON line instead of the table", 0, 0, 0},
    };
    int parsed = cli_parse(argc, argv, 2, options, sizeof options / sizeof options[0], command,
                           "Distances of samples to a reference, each beside its noise floor (the\n"
                           "same distance between two independent reference samples of the same\n"
                           "size). w1/w2 are exact optimal transport; see docs/metrics.md.");
    if (parsed != CLI_OK) return parsed;
    if (o.projections > 100000)
        return cli_usage_error(command, "--projections %zu: at most 100000", o.projections);
    if (o.bootstrap > 100000)
        return cli_usage_error(command, "--bootstrap %zu: at most 100000", o.bootstrap);
    if (o.bootstrap == 1) return cli_usage_error(command, "--bootstrap 1: an interval needs >= 2");
    if (cm_metric_parse_list(&o.metrics, metric_list) != CM_OK)
        return cli_usage_error(command, "--metric: %s", cm_error_detail());
    double *samples = NULL;
    size_t n = 0, dim = 0;
    cm_data *reference = NULL;
    cm_status status = cm_matrix_read(&samples, &n, &dim, samples_path);
    if (status == CM_OK) status = cm_data_open(&reference, reference_source);
    if (status == CM_OK && o.n > n) {
        cm_free(samples);
        cm_data_free(reference);
        return cli_usage_error(command, "--n %zu: %s has only %zu rows", o.n, samples_path, n);
    }
    cm_evaluation_report e;
    if (status == CM_OK) status = cm_evaluate_report(&e, samples, n, dim, reference, &o);
    if (status == CM_OK) {
        if (json) print_json(&e, samples_path, reference, o.seed);
        else print_table(&e, samples_path, n, reference, o.seed);
    }
    cm_free(samples);
    cm_data_free(reference);
    return status == CM_OK ? CLI_OK : cli_fail(command, status);
}
