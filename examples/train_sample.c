/* train_sample.c: cm's public API from end to end. Train a consistency model by [iCT] for a few
 * hundred steps on a built-in Gaussian mixture, draw one-step samples, and print their exact
 * W1 against fresh draws of the law beside the noise floor (two fresh draws of the same size
 * against each other: what "as good as the law itself" measures). Build against an installed
 * cm (make install PREFIX=DIR; PKG_CONFIG_PATH=DIR/lib/pkgconfig), see examples/README.md:
 *     cc train_sample.c $(pkg-config --cflags --libs cm) -Wl,-rpath,$(pkg-config --variable=libdir cm)
 * Run: ./a.out [STEPS] (default 400, a few seconds: W1 about 5 floors; `cm train`'s default
 * 16000 steps go much further, docs/training.md). Prints "steps S  W1 X  floor Y  ratio R".
 */
#include <stdio.h>
#include <stdlib.h>

#include <cm/data.h>
#include <cm/evaluate.h>
#include <cm/sampler.h>
#include <cm/train.h>

int main(int argc, char **argv) {
    size_t steps = argc > 1 ? strtoul(argv[1], NULL, 10) : 400, n = 1000;
    cm_data *data = NULL;
    cm_trainer *trainer = NULL;
    cm_evaluation_report report;
    cm_status status = cm_data_open(&data, "gmm:d=2,k=3,sep=4,std=0.5,seed=1");
    size_t dim = status == CM_OK ? cm_data_dim(data) : 1;
    double *samples = malloc(n * dim * sizeof(double));
    if (status == CM_OK && !samples) status = cm_error_set(CM_ERR_NOMEM, "samples");
    if (status == CM_OK) {
        cm_train_config config = cm_train_config_default(CM_METHOD_ICT, dim);
        config.steps = steps; /* the curricula are laid out over this many steps */
        config.optimizer.ema_decay = 0; /* the default EMA (0.999) outlasts so short a run */
        config.seed = 1;
        status = cm_trainer_init(&trainer, &config, data);
    }
    for (size_t k = 0; k < steps && status == CM_OK; k++) {
        cm_train_report step;
        status = cm_trainer_step(trainer, &step);
    }
    /* one step (no levels: sigma_max), seed 2; then exact W1 against fresh draws, seed 3 */
    if (status == CM_OK) status = cm_sample(samples, cm_trainer_model(trainer), NULL, 0, n, 2);
    cm_evaluate_options options = cm_evaluate_options_default();
    options.metrics = CM_METRIC_BIT(CM_METRIC_W1);
    options.seed = 3;
    if (status == CM_OK) status = cm_evaluate_report(&report, samples, n, dim, data, &options);
    if (status == CM_OK) {
        const cm_metric_value *w1 = &report.metric[CM_METRIC_W1];
        printf("steps %zu  W1 %.4f  floor %.4f  ratio %.2f\n", steps, w1->value, w1->floor,
               w1->ratio);
    } else {
        fprintf(stderr, "train_sample: %s: %s\n", cm_status_name(status), cm_error_detail());
    }
    free(samples);
    cm_trainer_free(trainer);
    cm_data_free(data);
    return status == CM_OK ? 0 : 1;
}
