/* cmd_eval.c: `cm eval`: distances of samples to a reference source or file, each beside its
 * noise floor, with an optional bootstrap interval and, for gauss: references, the closed-form
 * W2 of the fitted Gaussian (see cm/evaluate.h; the metrics are described in docs/metrics.md).
 * Images against images (without --metric): the image report of docs/images.md (eval_images.c):
 * FD, KID and classes on the committed classifier's features (28 x 28 gray images), pixel W1
 * and memorisation, each beside its floor. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cm/alloc.h"
#include "cm/data.h"
#include "cm/evaluate.h"
#include "cm/io.h"
#include "eval.h"

/* A JSON number, or null for NaN and infinities (which JSON cannot carry). */
static void json_number(const char *key, double value) {
    if (isfinite(value)) printf(", \"%s\": %.10g", key, value);
    else printf(", \"%s\": null", key);
}

#define HELP_SUMMARY                                                                         \
    "Distances between samples and a reference, each beside its noise floor.\n"                \
    "value: the metric between the samples (all rows, or the first --n) and the reference:\n"  \
    "  a FILE is used whole (w1/w2: the exact optimal-transport distance of the two point\n"   \
    "  sets); a LAW (moons, gauss:..., gmm:...) gives a fresh draw A of as many points.\n"     \
    "floor: the same metric between two samples of the reference's own law at stated sizes,\n" \
    "  --floor-splits times (law: fresh draw pairs of n points; file: random splits into A\n" \
    "  of min(n, m/2) rows and B of the rest, with n-to-B from as many random samples, the\n"  \
    "  like-with-like comparison), printed as median [min, max]. ratio: value (file: median\n" \
    "  samples to B) / median floor, for w1, w2, sw1, sw2, msw1 only: MMD^2 and energy are\n"  \
    "  unbiased and may be negative. Details: docs/metrics.md.\n"                                 \
    "Images (--samples a .npy [N, H, W] in [0, 1] or an image source, --ref images) without\n" \
    "  --metric: the image report of docs/images.md: FD and KID on the classifier's features,\n"\
    "  the class histogram and mean confidence, exact pixel W1 and the nearest-training-image\n"\
    "  distances, each beside the same numbers for --n training images (--train) in the\n"     \
    "  samples' place, --floor-splits subsets."

static void json_interval(const char *name, const char *what, double low, double high) {
    char key[64];
    snprintf(key, sizeof key, "%s_%s_low", name, what);
    json_number(key, low);
    snprintf(key, sizeof key, "%s_%s_high", name, what);
    json_number(key, high);
}

static void print_json(const cm_evaluation_report *e, const char *samples_path, size_t rows,
                       const cm_data *reference, uint64_t seed) {
    printf("{\"samples\": \"%s\", \"samples_rows\": %zu, \"ref\": \"%s\", \"ref_kind\": \"%s\", "
           "\"n\": %zu, \"ref_points\": %zu, \"dim\": %zu, \"floor_splits\": %zu, "
           "\"floor_points_a\": %zu, \"floor_points_b\": %zu, \"projections\": %zu, "
           "\"seed\": %llu, \"bootstrap\": %zu",
           samples_path, rows, cm_data_describe(reference), e->reference_is_file ? "file" : "law",
           e->n, e->reference_points, e->dim, e->floor_splits, e->floor_points_a,
           e->floor_points_b, e->projections, (unsigned long long)seed, e->bootstrap);
    char key[64];
    for (int k = 0; k < CM_METRIC_COUNT; k++) {
        const cm_metric_value *v = &e->metric[k];
        if (!v->computed) continue;
        const char *name = cm_metric_name((cm_metric)k);
        json_number(name, v->value);
        snprintf(key, sizeof key, "%s_floor", name);
        json_number(key, v->floor);
        if (cm_metric_is_nonnegative((cm_metric)k)) {
            snprintf(key, sizeof key, "%s_ratio", name);
            json_number(key, v->ratio);
        }
        json_interval(name, "floor", v->floor_low, v->floor_high);
        if (e->reference_is_file) {
            snprintf(key, sizeof key, "%s_matched", name);
            json_number(key, v->matched);
            json_interval(name, "matched", v->matched_low, v->matched_high);
        }
        if (e->bootstrap) json_interval(name, "ci", v->ci_low, v->ci_high);
        if (v->subsampled) {
            printf(", \"%s_subsample\": %zu, \"%s_repeats\": %zu", name, v->subsample_points, name,
                   v->repeats);
            json_interval(name, "mean", v->value_low, v->value_high);
        }
    }
    if (e->metric[CM_METRIC_MMD].computed) json_number("mmd_bandwidth", e->bandwidth);
    if (e->gaussian) {
        json_number("gauss_fit_w2", e->gaussian_fit_w2);
        json_number("gauss_fit_w2_floor", e->gaussian_fit_w2_floor);
        json_interval("gauss_fit_w2", "floor", e->gaussian_fit_w2_floor_low,
                      e->gaussian_fit_w2_floor_high);
        if (e->dim == 1) {
            json_number("gauss_fit_w1", e->gaussian_fit_w1);
            json_number("gauss_fit_w1_floor", e->gaussian_fit_w1_floor);
        }
    }
    printf("}\n");
}

/* "median [min, max]" in at most `size` characters. */
static void format_range(char *out, size_t size, double median, double low, double high) {
    snprintf(out, size, "%.4g [%.4g, %.4g]", median, low, high);
}

static void print_row(const cm_evaluation_report *e, const char *label, const cm_metric_value *v,
                      int nonnegative) {
    char floor[64], matched[64], ratio[16] = "-";
    format_range(floor, sizeof floor, v->floor, v->floor_low, v->floor_high);
    format_range(matched, sizeof matched, v->matched, v->matched_low, v->matched_high);
    if (nonnegative && isfinite(v->ratio)) snprintf(ratio, sizeof ratio, "%.3g", v->ratio);
    printf("%-30s %12.6g", label, v->value);
    if (e->reference_is_file) printf("   %-34s", matched);
    printf("   %-34s %7s", floor, ratio);
    if (e->bootstrap) printf("   [%.6g, %.6g]", v->ci_low, v->ci_high);
    printf("\n");
}

static void print_header(const cm_evaluation_report *e, const char *samples_path, size_t rows,
                         const cm_data *reference, uint64_t seed) {
    printf("samples    %s: %s %zu of %zu rows, dimension %zu\n", samples_path,
           e->n == rows ? "all" : "the first", e->n, rows, e->dim);
    if (e->reference_is_file)
        printf("reference  %s: all %zu rows of the file\n", cm_data_describe(reference),
               e->reference_points);
    else
        printf("reference  %s (a law): a fresh draw A of %zu points (seed %llu)\n",
               cm_data_describe(reference), e->reference_points, (unsigned long long)seed);
    char floor_title[64], matched_title[64];
    snprintf(floor_title, sizeof floor_title, "floor (%zu %s)", e->floor_splits,
             e->reference_is_file ? "splits" : "pairs");
    snprintf(matched_title, sizeof matched_title, "samples(%zu) to B", e->floor_points_a);
    printf("%-30s %12s", "metric", e->reference_is_file ? "value (all)" : "value");
    if (e->reference_is_file) printf("   %-34s", matched_title);
    printf("   %-34s %7s%s\n", floor_title, "ratio",
           e->bootstrap ? "   95% bootstrap interval of value" : "");
}

/* What every number is, in words, under the table. */
static void print_legend(const cm_evaluation_report *e) {
    if (e->reference_is_file) {
        printf("value: the metric between the %zu samples and the %zu reference rows (exact OT: "
               "the optimum over all couplings of the two point sets).\n",
               e->n, e->reference_points);
        printf("floor: %zu random splits of the reference into disjoint A (%zu rows) and B (%zu "
               "rows); floor = metric(A, B), samples(%zu) to B = metric(%zu random samples, B): "
               "the same sizes, so these two compare like with like; median [min, max] over the "
               "splits; ratio = median samples to B / median floor (distances only).\n",
               e->floor_splits, e->floor_points_a, e->floor_points_b, e->floor_points_a,
               e->floor_points_a);
    } else {
        printf("value: the metric between the %zu samples and draw A of %zu points of the law.\n",
               e->n, e->reference_points);
        printf("floor: the same metric between two independent fresh draws of %zu points each "
               "(what samples of the law itself score at this size), %zu pairs, median [min, "
               "max]; ratio = value / median floor (distances only).\n",
               e->floor_points_a, e->floor_splits);
    }
    printf("MMD^2 and energy are unbiased estimates that can be negative: compare the value with "
           "the floor's range, not by a ratio.\n");
}

static void print_table(const cm_evaluation_report *e, const char *samples_path, size_t rows,
                        const cm_data *reference, uint64_t seed) {
    print_header(e, samples_path, rows, reference, seed);
    for (int k = 0; k < CM_METRIC_COUNT; k++) {
        const cm_metric_value *v = &e->metric[k];
        if (!v->computed) continue;
        const char *label = cm_metric_label((cm_metric)k);
        if (e->dim == 1 && k == CM_METRIC_W1) label = "W1 (exact, 1-D)";
        if (e->dim == 1 && k == CM_METRIC_W2) label = "W2 (exact, 1-D)";
        print_row(e, label, v, cm_metric_is_nonnegative((cm_metric)k));
    }
    if (e->gaussian) {
        cm_metric_value fit = {.value = e->gaussian_fit_w2, .floor = e->gaussian_fit_w2_floor,
                               .floor_low = e->gaussian_fit_w2_floor_low,
                               .floor_high = e->gaussian_fit_w2_floor_high,
                               .ratio = e->gaussian_fit_w2 / e->gaussian_fit_w2_floor,
                               .ci_low = NAN, .ci_high = NAN};
        print_row(e, "W2 Gaussian fit (closed form)", &fit, 1);
        if (e->dim == 1)
            printf("%-30s %12.6g   %-34.4g\n", "W1 Gaussian fit (closed form)", e->gaussian_fit_w1,
                   e->gaussian_fit_w1_floor);
    }
    for (int k = 0; k < CM_METRIC_COUNT; k++) {
        const cm_metric_value *v = &e->metric[k];
        if (!v->subsampled) continue;
        printf("%s: %zu x %zu points is above the exact-OT limit: the value is the mean of %zu "
               "exact solves on random subsamples of at most %zu points a side, 95%% t-interval "
               "of the mean [%.6g, %.6g]; a subsample distance is larger than the full one "
               "(docs/metrics.md)\n",
               cm_metric_name((cm_metric)k), e->n, e->reference_points, v->repeats,
               v->subsample_points, v->value_low, v->value_high);
    }
    if (e->metric[CM_METRIC_MMD].computed)
        printf("MMD^2: unbiased, Gaussian kernel of bandwidth %.6g\n", e->bandwidth);
    if (e->gaussian)
        printf("Gaussian fit: W2 between N(mean, covariance of the samples) and the exact law; "
               "its floor fits the draws A_k instead (W1 row: floor of the first draw)\n");
    print_legend(e);
    printf("(%zu projections, seed %llu%s)\n", e->projections, (unsigned long long)seed,
           e->bootstrap ? "; bootstrap: percentiles of the value over resamples of the samples "
                          "and the reference points" : "");
}

/* Images against images: the request of eval_images.c from cm eval's options and the opened
 * sources (borrowed). The training images default to Fashion-MNIST's for its test set, to the
 * law itself for a law (drawn from another stream); the classifier to the committed one for
 * 28 x 28 gray images. */
static int eval_images(const char *command, const cm_data *samples, const cm_data *reference,
                       const char *reference_source, const char *train_source,
                       const char *classifier, const cm_evaluate_options *o, size_t w1_points,
                       int json) {
    size_t C = 0, H = 0, W = 0;
    cm_data_image_shape(reference, &C, &H, &W);
    if (!train_source && strcmp(reference_source, "fashion-mnist:test") == 0)
        train_source = "fashion-mnist";
    if (!train_source && cm_data_rows(reference))
        return cli_usage_error(command, "--ref %s: give --train, the training images the floors "
                               "and the memorisation check compare with", reference_source);
    cm_data *train = NULL;
    cm_status status = train_source ? cm_data_open(&train, train_source) : CM_OK;
    if (status != CM_OK) return cli_fail(command, status);
    if (!classifier && C == 1 && H == 28 && W == 28) {
        classifier = eval_images_default_classifier();
        if (!classifier)
            fprintf(stderr, "cm eval: the committed classifier models/%s was not found (beside the "
                    "executable or in ./models): FD, KID and classes are not computed; give "
                    "--classifier FILE (cm classifier train makes one)\n", EVAL_CLASSIFIER_FILE);
    }
    eval_images_request request = {.samples = samples, .test = reference,
                                   .train = train ? train : reference, .classifier = classifier,
                                   .n = o->n, .json = json,
                                   .options = cm_image_metrics_options_default()};
    request.options.seed = o->seed;
    request.options.floor_repeats = o->floor_splits;
    request.options.w1_points = w1_points;
    int code = eval_images_run(command, &request);
    cm_data_free(train);
    return code;
}

int cmd_eval(int argc, char **argv) {
    const char *command = "eval";
    const char *samples_path = NULL, *reference_source = NULL, *metric_list = NULL;
    const char *classifier = NULL, *train_source = NULL;
    size_t w1_points = cm_image_metrics_options_default().w1_points;
    const char *columns = NULL, *sample_columns = NULL;
    cm_evaluate_options o = cm_evaluate_options_default();
    int json = 0;
    cli_option options[] = {
        {"samples", OPT_STRING, &samples_path, "samples file (.npy or .csv)", 0, 1, 0},
        {"ref", OPT_STRING, &reference_source, "reference: a data source or a file", 0, 1, 0},
        {"columns", OPT_STRING, &columns,
         "columns of a --ref file: header names, 0-based indices or ranges A-B (default all)", 0,
         0, 0},
        {"sample-columns", OPT_STRING, &sample_columns, "the same for the --samples file", 0, 0,
         0},
        {"metric", OPT_STRING, &metric_list,
         "comma-separated: w1,w2 (exact OT),sw1,sw2,msw1,mmd,energy (default w1,sw1; images: the image report)", 0, 0, 0},
        {"n", OPT_SIZE, &o.n, "points used from the samples (0 = all)", 0, 0, 0},
        {"projections", OPT_SIZE, &o.projections, "random directions of the sliced distances", 1, 0, 0},
        {"seed", OPT_U64, &o.seed, "seed of the reference draws and splits, directions and resamples", 0, 0, 0},
        {"floor-splits", OPT_SIZE, &o.floor_splits,
         "repetitions of the noise floor (fresh draw pairs of a law, random splits of a file)", 1,
         0, 0},
        {"bootstrap", OPT_SIZE, &o.bootstrap, "resamples of a 95% percentile interval (0 = none)",
         0, 0, 0},
        {"ot-max", OPT_SIZE, &o.ot_max_points,
         "exact W1/W2 above this many points: mean over subsamples", 2, 0, 0},
        {"ot-repeats", OPT_SIZE, &o.ot_repeats, "subsamples averaged above --ot-max", 1, 0, 0},
        {"bandwidth", OPT_DOUBLE, &o.bandwidth, "MMD kernel bandwidth (0 = median heuristic)", 0,
         0, 0},
        {"json", OPT_FLAG, &json, "one JSON line instead of the table", 0, 0, 0},
        {"classifier", OPT_STRING, &classifier, "images: the classifier of FD, KID and classes (default: the committed Fashion-MNIST classifier, for 28 x 28 gray images)", 0, 0, 0},
        {"train", OPT_STRING, &train_source, "images: training images of the floors and the memorisation check (default: fashion-mnist for fashion-mnist:test, the law itself for a law)", 0, 0, 0},
        {"w1-points", OPT_SIZE, &w1_points, "images: points a side of the exact pixel W1 (0: none)", 0, 0, 0},
    };
    int parsed = cli_parse(argc, argv, 2, options, sizeof options / sizeof options[0], command,
                           HELP_SUMMARY);
    if (parsed != CLI_OK) return parsed;
    if (o.projections > 100000)
        return cli_usage_error(command, "--projections %zu: at most 100000", o.projections);
    if (o.bootstrap > 100000)
        return cli_usage_error(command, "--bootstrap %zu: at most 100000", o.bootstrap);
    if (o.bootstrap == 1) return cli_usage_error(command, "--bootstrap 1: an interval needs >= 2");
    if (o.floor_splits > CM_EVALUATE_FLOOR_SPLITS_MAX)
        return cli_usage_error(command, "--floor-splits %zu: at most %d", o.floor_splits,
                               CM_EVALUATE_FLOOR_SPLITS_MAX);
    if (metric_list && cm_metric_parse_list(&o.metrics, metric_list) != CM_OK)
        return cli_usage_error(command, "--metric: %s", cm_error_detail());
    cm_data *samples_file = NULL, *reference = NULL;
    cm_status status = cm_data_open_with(&samples_file, samples_path,
                                         &(cm_data_options){.columns = sample_columns});
    if (status != CM_OK) return cli_fail(command, status);
    if (!cm_data_rows(samples_file)) {
        cm_data_free(samples_file);
        return cli_usage_error(command, "--samples %s: not a file of points or images", samples_path);
    }
    status = cm_data_open_with(&reference, reference_source, &(cm_data_options){.columns = columns});
    if (status != CM_OK) {
        cm_data_free(samples_file);
        return cli_fail(command, status);
    }
    size_t C, H, W;
    if (!metric_list && cm_data_image_shape(samples_file, &C, &H, &W) &&
        cm_data_image_shape(reference, &C, &H, &W)) {
        int code = eval_images(command, samples_file, reference, reference_source, train_source,
                               classifier, &o, w1_points, json);
        cm_data_free(samples_file);
        cm_data_free(reference);
        return code;
    }
    if (classifier || train_source) {
        cm_data_free(samples_file);
        cm_data_free(reference);
        return cli_usage_error(command, "--%s applies to images against images (without "
                               "--metric)", classifier ? "classifier" : "train");
    }
    if (!metric_list) status = cm_metric_parse_list(&o.metrics, "w1,sw1");
    /* images are stored as bytes or floats in [0, 1]: their rows as doubles */
    double *image_rows = NULL;
    if (status == CM_OK && !cm_data_values(samples_file)) {
        size_t rows = cm_data_rows(samples_file), d = cm_data_dim(samples_file);
        image_rows = cm_malloc(rows * d, sizeof(double));
        if (image_rows) cm_data_copy_rows(samples_file, 0, rows, image_rows);
        else status = cm_error_set(CM_ERR_NOMEM, "%zu images of %zu values", rows, d);
    }
    const double *samples = status == CM_OK ? (image_rows ? image_rows : cm_data_values(samples_file)) : NULL;
    size_t n = status == CM_OK ? cm_data_rows(samples_file) : 0;
    size_t dim = status == CM_OK ? cm_data_dim(samples_file) : 0;
    if (status == CM_OK && o.n > n) {
        cm_free(image_rows);
        cm_data_free(samples_file);
        cm_data_free(reference);
        return cli_usage_error(command, "--n %zu: %s has only %zu rows", o.n, samples_path, n);
    }
    cm_evaluation_report e;
    if (status == CM_OK) status = cm_evaluate_report(&e, samples, n, dim, reference, &o);
    if (status == CM_OK) {
        const char *shown = cm_data_describe(samples_file);
        if (json) print_json(&e, shown, n, reference, o.seed);
        else print_table(&e, shown, n, reference, o.seed);
    }
    cm_free(image_rows);
    cm_data_free(samples_file);
    cm_data_free(reference);
    return status == CM_OK ? CLI_OK : cli_fail(command, status);
}
