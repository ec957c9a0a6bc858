/* cmd_classifier.c: `cm classifier train` trains the image classifier of classifier.h (the
 * feature extractor of the image metrics, docs/images.md) on a labelled image source and
 * reports its accuracy on a test source; `cm classifier test` reports a saved classifier's
 * accuracy; `cm classifier metrics` reports the image metrics of image_metrics.h for image
 * samples (an NPY file) against the test and training sets. The file records the training data,
 * its fingerprint, the settings and the test accuracy in its metadata. Same seed and blocks: the
 * same file, bit for bit, for any thread count. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cm/classifier.h"
#include "cm/classifier_train.h"
#include "cm/alloc.h"
#include "cm/data.h"
#include "eval.h"

typedef struct {
    const char *data, *test, *out;
    size_t threads, log_every, test_draws;
    size_t width1, width2, features, groups; /* the network's widths (classifier.h) */
    cm_classifier_train_config train;
} train_options;

/* Open the training source and a classifier for its images and classes. */
static cm_status open_training(cm_data **data, cm_classifier **clf, const train_options *o) {
    CM_TRY(cm_data_open(data, o->data));
    size_t channels, height, width;
    if (!cm_data_image_shape(*data, &channels, &height, &width) || cm_data_classes(*data) < 2)
        return cm_error_set(CM_ERR_INVALID, "%s: the classifier trains on labelled images",
                            o->data);
    cm_classifier_config config =
        cm_classifier_config_default(channels, height, width, cm_data_classes(*data));
    config.width1 = o->width1, config.width2 = o->width2, config.features = o->features;
    config.groups = o->groups;
    return cm_classifier_create(clf, &config);
}

static cm_status report_accuracy(double *accuracy, const cm_classifier *clf, const char *source,
                                 size_t draws, const char *what) {
    cm_data *data = NULL;
    CM_TRY(cm_data_open(&data, source));
    size_t correct = 0, count = 0;
    cm_status status = cm_classifier_accuracy(accuracy, &correct, &count, clf, data, draws, 7);
    if (status == CM_OK)
        printf("%saccuracy on %s: %.4f (%zu of %zu)\n", what, cm_data_describe(data), *accuracy,
               correct, count);
    cm_data_free(data);
    return status;
}

/* The training loop: a line every log_every steps (mean loss and batch accuracy since the last). */
static cm_status train_loop(cm_classifier_trainer *trainer, const train_options *o) {
    double loss_sum = 0, accuracy_sum = 0, start = cli_seconds();
    size_t since = 0;
    for (size_t k = 0; k < o->train.steps; k++) {
        double loss, accuracy;
        CM_TRY(cm_classifier_trainer_step(trainer, &loss, &accuracy));
        loss_sum += loss, accuracy_sum += accuracy, since++;
        if ((k + 1) % o->log_every == 0 || k + 1 == o->train.steps) {
            printf("step %6zu  loss %.4f  batch accuracy %.4f  %.1f s\n", k + 1,
                   loss_sum / (double)since, accuracy_sum / (double)since, cli_seconds() - start);
            fflush(stdout);
            loss_sum = accuracy_sum = 0, since = 0;
        }
    }
    return CM_OK;
}

/* The file, with what made it in its metadata (no times or thread counts: the same command
 * writes the same bytes). */
static cm_status save(const cm_classifier *clf, const cm_data *data, const train_options *o,
                      double accuracy) {
    char fingerprint[32], settings[256], accuracy_text[32];
    snprintf(fingerprint, sizeof fingerprint, "%016" PRIx64, cm_data_fingerprint(data));
    snprintf(settings, sizeof settings, "steps %zu, batch %zu, blocks %zu, rate %g, warm-up %zu, "
             "weight decay %g, seed %" PRIu64, o->train.steps, o->train.batch, o->train.blocks,
             o->train.learning_rate, o->train.warmup_steps, o->train.weight_decay, o->train.seed);
    snprintf(accuracy_text, sizeof accuracy_text, "%.4f", accuracy);
    const char *keys[] = {"train_data", "train_fingerprint", "training", "test_data",
                          "test_accuracy"};
    const char *values[] = {cm_data_describe(data), fingerprint, settings, o->test ? o->test : "",
                            o->test ? accuracy_text : ""};
    return cm_classifier_save(clf, o->out, keys, values, o->test ? 5 : 3);
}

static int run_train(const train_options *o) {
    const char *command = "classifier train";
    cm_data *data = NULL;
    cm_classifier *clf = NULL;
    cm_classifier_trainer *trainer = NULL;
    cm_status status = open_training(&data, &clf, o);
    if (status == CM_OK) status = cm_classifier_trainer_create(&trainer, clf, data, &o->train);
    if (status == CM_OK)
        printf("classifier: %zu parameters; training on %s, %zu steps of %zu rows\n",
               cm_classifier_param_count(clf), cm_data_describe(data), o->train.steps,
               o->train.batch);
    double start = cli_seconds(), accuracy = 0;
    if (status == CM_OK) status = train_loop(trainer, o);
    double seconds = cli_seconds() - start;
    if (status == CM_OK) printf("trained in %.1f s (%zu threads)\n", seconds, o->threads);
    if (status == CM_OK && o->test)
        status = report_accuracy(&accuracy, clf, o->test, o->test_draws, "test ");
    if (status == CM_OK) status = save(clf, data, o, accuracy);
    if (status == CM_OK) printf("wrote %s\n", o->out);
    cm_classifier_trainer_free(trainer);
    cm_classifier_free(clf);
    cm_data_free(data);
    return status == CM_OK ? CLI_OK : cli_fail(command, status);
}

static int cmd_classifier_train(int argc, char **argv) {
    cm_classifier_config network = cm_classifier_config_default(1, 28, 28, 10);
    train_options o = {.data = "fashion-mnist", .test = NULL, .threads = 1, .log_every = 500,
                       .test_draws = 10000, .width1 = network.width1, .width2 = network.width2,
                       .features = network.features, .groups = network.groups,
                       .train = cm_classifier_train_config_default()};
    cm_classifier_train_config *t = &o.train;
    cli_option options[] = {
        {"data", OPT_STRING, &o.data, "labelled image source to train on (fashion-mnist, "
         "shapes[:size=S], DIR/ of class folders)", 0, 0, 0},
        {"test", OPT_STRING, &o.test, "source to report the accuracy on (default: "
         "fashion-mnist:test when --data is fashion-mnist)", 0, 0, 0},
        {"test-draws", OPT_SIZE, &o.test_draws, "images drawn from a --test law (stored sets: "
         "all)", 1, 0, 0},
        {"out", OPT_STRING, &o.out, "classifier file (.safetensors)", 0, 1, 0},
        {"steps", OPT_SIZE, &t->steps, "training steps", 1, 0, 0},
        {"batch", OPT_SIZE, &t->batch, "rows per step", 1, 0, 0},
        {"blocks", OPT_SIZE, &t->blocks, "fixed row blocks per step (the result depends on "
         "them, not on --threads)", 1, 0, 0},
        {"lr", OPT_DOUBLE, &t->learning_rate, "Adam's peak learning rate (cosine decay to 1 %)",
         1e-12, 0, 0},
        {"warmup", OPT_SIZE, &t->warmup_steps, "warm-up steps", 0, 0, 0},
        {"weight-decay", OPT_DOUBLE, &t->weight_decay, "decoupled weight decay", 0, 0, 0},
        {"seed", OPT_U64, &t->seed, "seed of the initial weights and the data draws", 0, 0, 0},
        {"threads", OPT_SIZE, &o.threads, "threads of the pool; results do not depend on it", 1,
         0, 0},
        {"log-every", OPT_SIZE, &o.log_every, "steps between progress lines", 1, 0, 0},
        {"width1", OPT_SIZE, &o.width1, "channels of the first two convs", 1, 0, 0},
        {"width2", OPT_SIZE, &o.width2, "channels of the last two convs", 1, 0, 0},
        {"features", OPT_SIZE, &o.features, "width of the penultimate layer (the features)", 1, 0,
         0},
        {"groups", OPT_SIZE, &o.groups, "GroupNorm groups", 1, 0, 0},
    };
    int parsed = cli_parse(argc, argv, 3, options, sizeof options / sizeof options[0],
                           "classifier train",
                           "Train the image classifier whose features the image metrics use; "
                           "report its test accuracy.");
    if (parsed != CLI_OK) return parsed;
    if (o.threads > 64) return cli_usage_error("classifier train", "--threads %zu: at most 64",
                                               o.threads);
    if (!o.test && strcmp(o.data, "fashion-mnist") == 0) o.test = "fashion-mnist:test";
    cli_set_threads(o.threads);
    return run_train(&o);
}

static int cmd_classifier_test(int argc, char **argv) {
    const char *command = "classifier test", *model = NULL, *source = "fashion-mnist:test";
    size_t threads = 1, draws = 10000;
    cli_option options[] = {
        {"model", OPT_STRING, &model, "classifier file", 0, 1, 0},
        {"data", OPT_STRING, &source, "labelled image source", 0, 0, 0},
        {"draws", OPT_SIZE, &draws, "images drawn from a law (stored sets: all)", 1, 0, 0},
        {"threads", OPT_SIZE, &threads, "threads of the pool", 1, 0, 0},
    };
    int parsed = cli_parse(argc, argv, 3, options, sizeof options / sizeof options[0], command,
                           "Accuracy of a trained classifier on a labelled image source.");
    if (parsed != CLI_OK) return parsed;
    if (threads > 64) return cli_usage_error(command, "--threads %zu: at most 64", threads);
    cli_set_threads(threads);
    cm_classifier *clf = NULL;
    double accuracy;
    cm_status status = cm_classifier_load(&clf, model);
    if (status == CM_OK) status = report_accuracy(&accuracy, clf, source, draws, "");
    cm_classifier_free(clf);
    return status == CM_OK ? CLI_OK : cli_fail(command, status);
}

/* ---- cm classifier metrics: the image report (eval_images.c) with this classifier */

static int cmd_classifier_metrics(int argc, char **argv) {
    const char *command = "classifier metrics", *model = NULL, *samples_path = NULL;
    const char *test_source = "fashion-mnist:test", *train_source = "fashion-mnist";
    size_t n = 0, threads = 1;
    int json = 0;
    cm_image_metrics_options o = cm_image_metrics_options_default();
    cli_option options[] = {
        {"model", OPT_STRING, &model, "classifier file (cm classifier train)", 0, 1, 0},
        {"samples", OPT_STRING, &samples_path, "samples: .npy [N, H, W] or [N, C, H, W] in [0, 1], "
         "or any stored image source", 0, 1, 0},
        {"n", OPT_SIZE, &n, "samples used (their first n; 0: all)", 0, 0, 0},
        {"test", OPT_STRING, &test_source, "test images", 0, 0, 0},
        {"train", OPT_STRING, &train_source, "training images (floors, memorisation)", 0, 0, 0},
        {"repeats", OPT_SIZE, &o.floor_repeats, "training subsets per floor", 1, 0, 0},
        {"w1-points", OPT_SIZE, &o.w1_points, "points a side of each exact pixel W1 (0: none)", 0,
         0, 0},
        {"memorisation-train", OPT_SIZE, &o.memorisation_train, "training images searched for "
         "each nearest neighbour (0: no memorisation check)", 0, 0, 0},
        {"memorisation-test", OPT_SIZE, &o.memorisation_test, "test images whose nearest "
         "training image is the reference", 1, 0, 0},
        {"seed", OPT_U64, &o.seed, "seed of the subsets", 0, 0, 0},
        {"threads", OPT_SIZE, &threads, "threads of the pool and of BLAS", 1, 0, 0},
        {"json", OPT_FLAG, &json, "one JSON line instead of the table (numbers not computed: null)", 0, 0, 0},
    };
    int parsed = cli_parse(argc, argv, 3, options, sizeof options / sizeof options[0], command,
                           "Image metrics of samples (docs/images.md): FD and KID on the "
                           "classifier's features, classes, pixel W1 and memorisation, each "
                           "beside its floor.");
    if (parsed != CLI_OK) return parsed;
    if (threads > 64) return cli_usage_error(command, "--threads %zu: at most 64", threads);
    cli_set_threads(threads);
    cm_data *samples = NULL, *test = NULL, *train = NULL;
    cm_status status = cm_data_open(&samples, samples_path);
    if (status == CM_OK) status = cm_data_open(&test, test_source);
    if (status == CM_OK) status = cm_data_open(&train, train_source);
    int code = status == CM_OK ? CLI_OK : cli_fail(command, status);
    if (code == CLI_OK) {
        eval_images_request request = {.samples = samples, .test = test, .train = train,
                                       .classifier = model, .n = n, .options = o, .json = json};
        code = eval_images_run(command, &request);
    }
    cm_data_free(samples), cm_data_free(test), cm_data_free(train);
    return code;
}

int cmd_classifier(int argc, char **argv) {
    const char *usage = "usage: cm classifier train|test|metrics [options]  (--help for each)\n";
    if (argc < 3) {
        fputs(usage, stderr);
        return CLI_USAGE_ERROR;
    }
    if (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0) {
        fputs(usage, stdout);
        return CLI_HELP_SHOWN;
    }
    if (strcmp(argv[2], "train") == 0) return cmd_classifier_train(argc, argv);
    if (strcmp(argv[2], "test") == 0) return cmd_classifier_test(argc, argv);
    if (strcmp(argv[2], "metrics") == 0) return cmd_classifier_metrics(argc, argv);
    return cli_usage_error("classifier", "unknown subcommand '%s' (train, test or metrics)",
                           argv[2]);
}
