/* eval_images.c: the image report of docs/images.md for `cm eval` and `cm classifier metrics`.
 * Reads the three image sets (samples, test, training), runs the classifier on them when one is
 * given (FD, KID, classes), and hands them to cm_image_report_compute (image_metrics.h), which
 * also computes the pixel-space numbers that need no classifier (exact W1, memorisation).
 * A law (shapes:) as test or training set is drawn from: EVAL_LAW_DRAWS fresh images, from
 * different streams of the seed for the two.
 */
#include "eval.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "cm/classifier.h"
#include "cm/data.h"
#include "cm/alloc.h"
#include "cm/rng.h"

/* A set's pixels, and the classifier's features and probabilities (NULL without one). */
typedef struct {
    double *pixels, *features, *probabilities;
    size_t count;
} image_set;

static void image_set_free(image_set *s) {
    cm_free(s->pixels), cm_free(s->features), cm_free(s->probabilities);
    *s = (image_set){0};
}

const char *eval_images_default_classifier(void) {
    static char path[PATH_MAX + 64];
    char exe[PATH_MAX];
    ssize_t got = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (got > 0) {
        exe[got] = '\0';
        char *slash = strrchr(exe, '/');
        if (slash) *slash = '\0';
        snprintf(path, sizeof path, "%s/../models/%s", exe, EVAL_CLASSIFIER_FILE);
        if (access(path, R_OK) == 0) return path;
    }
    snprintf(path, sizeof path, "models/%s", EVAL_CLASSIFIER_FILE);
    return access(path, R_OK) == 0 ? path : NULL;
}

/* The images of `data` of D pixels: a stored set's first n rows (all when n is 0), or n
 * (EVAL_LAW_DRAWS when 0) draws of a law from stream `stream` of `seed`; then the classifier's
 * outputs when clf is not NULL. A stored set of flat rows of D values is read as images. */
static cm_status image_set_read(image_set *out, const cm_data *data, size_t n, size_t D,
                                const cm_classifier *clf, uint64_t seed, uint64_t stream) {
    size_t C, H, W, rows = cm_data_rows(data);
    int image = cm_data_image_shape(data, &C, &H, &W);
    if (image ? C * H * W != D : !rows || cm_data_dim(data) != D)
        return cm_error_set(CM_ERR_INVALID, "%s does not hold images of %zu pixels (the "
                            "samples')", cm_data_describe(data), D);
    size_t count = rows ? (n && n < rows ? n : rows) : (n ? n : EVAL_LAW_DRAWS);
    *out = (image_set){.count = count};
    cm_status status = CM_OK;
    if (!(out->pixels = cm_malloc(count * D, sizeof(double))))
        status = cm_error_set(CM_ERR_NOMEM, "%s: %zu images", cm_data_describe(data), count);
    if (status == CM_OK && rows) cm_data_copy_rows(data, 0, count, out->pixels);
    if (status == CM_OK && !rows) {
        cm_rng root, draws;
        cm_rng_init(&root, seed);
        cm_rng_fork(&draws, &root, stream);
        cm_data_sample(data, &draws, count, out->pixels);
    }
    if (status == CM_OK && clf) {
        const cm_classifier_config *c = cm_classifier_config_of(clf);
        out->features = cm_malloc(count * c->features, sizeof(double));
        out->probabilities = cm_malloc(count * c->classes, sizeof(double));
        status = out->features && out->probabilities
                     ? cm_classifier_apply(out->probabilities, out->features, clf, out->pixels, count)
                     : cm_error_set(CM_ERR_NOMEM, "%s: classifier outputs of %zu images",
                                    cm_data_describe(data), count);
    }
    if (status != CM_OK) image_set_free(out);
    return status;
}

static cm_image_set_view view_of(const image_set *s) {
    return (cm_image_set_view){s->pixels, s->features, s->probabilities, s->count};
}

/* ---------------------------------------------------------------- output */

static void print_metric(const char *name, const cm_image_metric *m) {
    printf("  %-30s %10.4g   floor %10.4g [%.4g, %.4g]\n", name, m->value, m->floor, m->floor_low,
           m->floor_high);
}

static void print_table(const cm_image_report *r, const eval_images_request *q,
                        const char *accuracy) {
    printf("%zu samples (%s) against %zu test images (%s); floors: the same numbers for %zu "
           "training images (%s) in place of the samples, median [min, max] over %zu subsets\n",
           r->n, cm_data_describe(q->samples), r->test_count, cm_data_describe(q->test), r->n,
           cm_data_describe(q->train), q->options.floor_repeats);
    if (r->features) {
        printf("  classifier %s (test accuracy %s), %zu features, %zu classes\n", q->classifier,
               accuracy && *accuracy ? accuracy : "unknown", r->features, r->classes);
        print_metric("FD (classifier features)", &r->fd);
        print_metric("KID (classifier features)", &r->kid);
    } else {
        printf("  no classifier for these images: FD, KID and classes not computed\n");
    }
    if (r->w1_points) {
        char name[64];
        snprintf(name, sizeof name, "W1 pixels (%zu points a side)", r->w1_points);
        print_metric(name, &r->w1);
    }
    if (r->features) {
        printf("  classes (samples / test): total variation %.4f; mean top-class probability "
               "%.4f / %.4f\n   ", r->histogram_tv, r->confidence, r->test_confidence);
        for (size_t k = 0; k < r->classes; k++)
            printf(" %zu:%.3f/%.3f", k, r->histogram[k], r->test_histogram[k]);
        printf("\n");
    }
    if (r->memorisation_train)
        printf("  nearest training image (of %zu), pixel distance quantiles 1 %% / 5 %% / 50 %%: "
               "samples %.3f / %.3f / %.3f, test images %.3f / %.3f / %.3f; samples nearer than "
               "the test images' 1 %%: %.4f\n", r->memorisation_train, r->sample_nearest[0],
               r->sample_nearest[1], r->sample_nearest[2], r->test_nearest[0], r->test_nearest[1],
               r->test_nearest[2], r->copy_fraction);
}

/* JSON has no NaN: numbers that were not computed are null. */
static void json_number(const char *key, double value) {
    if (isfinite(value)) printf(",\"%s\":%.17g", key, value);
    else printf(",\"%s\":null", key);
}

static void json_metric(const char *key, const cm_image_metric *m) {
    printf(",\"%s\":{\"value\":", key);
    printf(isfinite(m->value) ? "%.17g" : "null", m->value);
    json_number("floor", m->floor);
    json_number("floor_low", m->floor_low);
    json_number("floor_high", m->floor_high);
    printf("}");
}

static void print_json(const cm_image_report *r, const eval_images_request *q) {
    printf("{\"n\":%zu,\"test_count\":%zu,\"train_count\":%zu,\"floor_repeats\":%zu,"
           "\"seed\":%llu", r->n, r->test_count, r->train_count, q->options.floor_repeats,
           (unsigned long long)q->options.seed);
    json_metric("fd", &r->fd);
    json_metric("kid", &r->kid);
    json_metric("w1_pixels", &r->w1);
    printf(",\"w1_points\":%zu,\"classes\":[", r->w1_points);
    for (size_t k = 0; k < r->classes; k++) printf("%s%.17g", k ? "," : "", r->histogram[k]);
    printf("],\"test_classes\":[");
    for (size_t k = 0; k < r->classes; k++) printf("%s%.17g", k ? "," : "", r->test_histogram[k]);
    printf("]");
    json_number("class_total_variation", r->histogram_tv);
    json_number("confidence", r->confidence);
    json_number("test_confidence", r->test_confidence);
    printf(",\"memorisation_train\":%zu", r->memorisation_train);
    json_number("sample_nearest_1pc", r->sample_nearest[0]);
    json_number("sample_nearest_5pc", r->sample_nearest[1]);
    json_number("sample_nearest_50pc", r->sample_nearest[2]);
    json_number("test_nearest_1pc", r->test_nearest[0]);
    json_number("test_nearest_5pc", r->test_nearest[1]);
    json_number("test_nearest_50pc", r->test_nearest[2]);
    json_number("copy_fraction", r->copy_fraction);
    printf("}\n");
}

/* ---------------------------------------------------------------- the report */

int eval_images_run(const char *command, const eval_images_request *q) {
    size_t C = 0, H = 0, W = 0;
    cm_classifier *clf = NULL;
    cm_status status = q->classifier ? cm_classifier_load(&clf, q->classifier) : CM_OK;
    if (status != CM_OK) return cli_fail(command, status);
    const cm_classifier_config *c = clf ? cm_classifier_config_of(clf) : NULL;
    /* a flat file of rows of the classifier's C x H x W pixels (cm sample before NPY image
     * shapes) is read as its images */
    if (!cm_data_image_shape(q->samples, &C, &H, &W)) {
        if (!c || cm_data_dim(q->samples) != c->channels * c->height * c->width) {
            cm_classifier_free(clf);
            return cli_usage_error(command, "--samples %s: not a file of images (a .npy [N, H, W] "
                                   "or [N, C, H, W] in [0, 1], or an image source%s)",
                                   cm_data_describe(q->samples),
                                   c ? ", or rows of the classifier's pixels" : "");
        }
        C = c->channels, H = c->height, W = c->width;
    }
    size_t D = C * H * W;
    if (c && (c->channels != C || c->height != H || c->width != W))
        status = cm_error_set(CM_ERR_INVALID, "the classifier %s reads images of %zu x %zu x %zu, "
                              "the samples are %zu x %zu x %zu", q->classifier, c->channels,
                              c->height, c->width, C, H, W);
    image_set samples = {0}, test = {0}, train = {0};
    if (status == CM_OK && !cm_data_rows(q->samples))
        status = cm_error_set(CM_ERR_INVALID, "--samples %s: a law, not stored images",
                              cm_data_describe(q->samples));
    if (status == CM_OK) status = image_set_read(&samples, q->samples, q->n, D, clf, 0, 0);
    if (status == CM_OK && samples.count < 2)
        status = cm_error_set(CM_ERR_INVALID, "--samples %s: %zu image(s); the report needs at "
                              "least 2", cm_data_describe(q->samples), samples.count);
    if (status == CM_OK)
        status = image_set_read(&test, q->test, 0, D, clf, q->options.seed, CM_STREAM_EVAL);
    if (status == CM_OK)
        status = image_set_read(&train, q->train, 0, D, clf, q->options.seed, CM_STREAM_DATA);
    if (status == CM_OK && train.count < samples.count)
        status = cm_error_set(CM_ERR_INVALID, "--train %s: %zu images, fewer than the %zu samples "
                              "(the floors put as many training images in their place); use "
                              "--n", cm_data_describe(q->train), train.count, samples.count);
    cm_image_report report;
    if (status == CM_OK) {
        cm_image_set_view s = view_of(&samples), te = view_of(&test), tr = view_of(&train);
        status = cm_image_report_compute(&report, &s, &te, &tr, D, c ? c->features : 0,
                                         c ? c->classes : 0, &q->options);
    }
    if (status == CM_OK && q->json) print_json(&report, q);
    else if (status == CM_OK)
        print_table(&report, q, clf ? cm_classifier_metadata(clf, "test_accuracy") : NULL);
    image_set_free(&samples), image_set_free(&test), image_set_free(&train);
    cm_classifier_free(clf);
    return status == CM_OK ? CLI_OK : cli_fail(command, status);
}
