/* test_classifier_train.c: the classifier trainer of include/cm/classifier_train.h: it learns
 * the three classes of the shapes law (a bound on the accuracy from measurement), its weights
 * are the same bits for 1 and 2 threads and depend on the block count, and it refuses data that
 * do not fit the classifier. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cm/classifier.h"
#include "cm/classifier_train.h"
#include "cm/data.h"
#include "cm/parallel.h"
#include "test.h"

/* A classifier for shapes:size=16 (1 x 16 x 16, 3 classes), narrower than the default. */
static cm_classifier *shapes_classifier(void) {
    cm_classifier_config c = cm_classifier_config_default(1, 16, 16, 3);
    c.width1 = 8, c.width2 = 16, c.features = 32, c.groups = 4;
    cm_classifier *clf = NULL;
    CM_CHECK_OK(cm_classifier_create(&clf, &c));
    return clf;
}

/* Train `steps` steps; the classifier's weights are then the result. */
static cm_status train(cm_classifier *clf, const cm_data *data, size_t steps, size_t blocks,
                       double *out_loss) {
    cm_classifier_train_config config = cm_classifier_train_config_default();
    config.steps = steps, config.batch = 32, config.blocks = blocks;
    config.warmup_steps = steps < 10 ? 1 : 10;
    config.seed = 5;
    cm_classifier_trainer *trainer = NULL;
    CM_TRY(cm_classifier_trainer_create(&trainer, clf, data, &config));
    cm_status status = CM_OK;
    for (size_t k = 0; status == CM_OK && k < steps; k++)
        status = cm_classifier_trainer_step(trainer, out_loss, NULL);
    cm_classifier_trainer_free(trainer);
    return status;
}

/* 300 steps of 32 shapes: measured accuracy 1.000 on 600 fresh draws (test-draw seeds 1-3 and
 * 45; after 150 steps 0.94-0.96). Bound 0.97: 7 standard errors (sqrt(p (1 - p) / 600) at
 * p = 0.99) below 0.99; chance is 1/3, and confusing two of the three classes gives 2/3. */
static void test_learns_shapes(void) {
    cm_data *data = NULL;
    CM_CHECK_OK(cm_data_open(&data, "shapes:size=16"));
    cm_classifier *clf = shapes_classifier();
    if (!data || !clf) return;
    double loss = 0, accuracy = 0;
    size_t correct = 0, count = 0;
    CM_CHECK_OK(train(clf, data, 300, 2, &loss));
    CM_CHECK_OK(cm_classifier_accuracy(&accuracy, &correct, &count, clf, data, 600,
                                       cm_test_seed(45)));
    printf("    300 steps: last batch loss %.4f, accuracy %.4f (%zu of %zu)\n", loss, accuracy,
           correct, count);
    CM_CHECK(count == 600 && accuracy >= 0.97, "accuracy %.4f on %zu draws", accuracy, count);
    CM_CHECK(loss < 0.1, "last batch loss %.4f (measured 0.0128)", loss);
    cm_classifier_free(clf);
    cm_data_free(data);
}

/* 3 steps on 1 and on 2 threads: the same bits. 3 blocks instead of 2 sum the same rows'
 * gradients in another order: other bits, but the same weights to rounding (Adam's first steps
 * move each weight by about the rate times the sign of its gradient, so a block left out of the
 * sum would move a large share of the weights the other way). */
static void test_deterministic(void) {
    cm_data *data = NULL;
    CM_CHECK_OK(cm_data_open(&data, "shapes:size=16"));
    cm_classifier *one = shapes_classifier(), *two = shapes_classifier(), *other = shapes_classifier();
    if (!data || !one || !two || !other) return;
    size_t P = cm_classifier_param_count(one), differ = 0;
    CM_CHECK_OK(train(one, data, 3, 2, NULL));
    CM_CHECK_OK(cm_parallel_set_threads(2));
    CM_CHECK_OK(train(two, data, 3, 2, NULL));
    CM_CHECK_OK(train(other, data, 3, 3, NULL));
    CM_CHECK_OK(cm_parallel_set_threads(1));
    const float *a = cm_classifier_params(one), *c = cm_classifier_params(other);
    CM_CHECK(memcmp(a, cm_classifier_params(two), P * 4) == 0, "1 and 2 threads give other weights");
    CM_CHECK(memcmp(a, c, P * 4) != 0, "3 blocks give the bits of 2");
    for (size_t i = 0; i < P; i++) differ += fabs(a[i] - c[i]) > 1e-5;
    CM_CHECK(differ < P / 100, "2 and 3 blocks: %zu of %zu weights differ by more than 1e-5",
             differ, P);
    cm_classifier_free(one), cm_classifier_free(two), cm_classifier_free(other);
    cm_data_free(data);
}

static void test_refuses_unfit_data(void) {
    cm_classifier *clf = shapes_classifier();
    cm_data *moons = NULL, *big = NULL;
    CM_CHECK_OK(cm_data_open(&moons, "moons"));
    CM_CHECK_OK(cm_data_open(&big, "shapes:size=32"));
    if (!clf || !moons || !big) return;
    cm_classifier_train_config config = cm_classifier_train_config_default();
    cm_classifier_trainer *trainer = NULL;
    CM_CHECK(cm_classifier_trainer_create(&trainer, clf, moons, &config) == CM_ERR_INVALID &&
                 !trainer, "vectors accepted");
    CM_CHECK(cm_classifier_trainer_create(&trainer, clf, big, &config) == CM_ERR_DIMENSION &&
                 !trainer, "32 x 32 images for a 16 x 16 classifier");
    config.blocks = config.batch + 1;
    cm_data *shapes = NULL;
    CM_CHECK_OK(cm_data_open(&shapes, "shapes:size=16"));
    CM_CHECK(cm_classifier_trainer_create(&trainer, clf, shapes, &config) == CM_ERR_INVALID,
             "more blocks than rows");
    double accuracy;
    CM_CHECK(cm_classifier_accuracy(&accuracy, NULL, NULL, clf, moons, 10, 1) == CM_ERR_INVALID,
             "accuracy on vectors");
    cm_classifier_free(clf);
    cm_data_free(moons), cm_data_free(big), cm_data_free(shapes);
}

const cm_test_case cm_tests_classifier_train[] = {
    {"learns_shapes", test_learns_shapes},
    {"deterministic", test_deterministic},
    {"refuses_unfit_data", test_refuses_unfit_data},
    {NULL, NULL},
};
