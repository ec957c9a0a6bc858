/* test_classifier.c: the image classifier of include/cm/classifier.h: its parameter count and
 * tensors against hand counts, the softmax cross-entropy against values computed here, the
 * gradient of the whole double network against central differences, the float network against
 * the double one, what a row's values depend on, cm_classifier_apply's independence of n, place
 * and thread count, model files (round trip and refusals) and allocation failures. Training is
 * tested in tests/train/test_classifier_train.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/classifier.h"
#include "cm/io.h"
#include "cm/parallel.h"
#include "cm/rng.h"
#include "test.h"

#define FD_STEP 1e-6

/* A small network for the gradient checks: 1 x 8 x 8, widths 4 and 4, 6 features, 3 classes. */
static cm_classifier_config small_config(void) {
    cm_classifier_config c = cm_classifier_config_default(1, 8, 8, 3);
    c.width1 = 4, c.width2 = 4, c.features = 6, c.groups = 2;
    return c;
}

/* Weights drawn wider than the initialisation (GroupNorm weights and biases too), as float. */
static void random_weights(cm_classifier *clf, cm_rng *rng) {
    float *p = cm_classifier_params(clf);
    for (size_t i = 0; i < cm_classifier_param_count(clf); i++)
        p[i] = (float)(0.4 * cm_rng_normal(rng));
}

static void test_parameter_count(void) {
    cm_classifier *clf = NULL;
    cm_classifier_config c = cm_classifier_config_default(1, 28, 28, 10);
    CM_CHECK_OK(cm_classifier_create(&clf, &c));
    if (!clf) return;
    /* conv (9 C OC + OC) and GroupNorm (2 OC) per stage; Linear 7 7 64 -> 128 -> 10 */
    size_t expected = (9 * 1 * 32 + 32) + 64 + (9 * 32 * 32 + 32) + 64 + (9 * 32 * 64 + 64) +
                      128 + (9 * 64 * 64 + 64) + 128 + (7 * 7 * 64 * 128 + 128) + (128 * 10 + 10);
    CM_CHECK(cm_classifier_param_count(clf) == expected && expected == 468202,
             "%zu parameters, expected %zu", cm_classifier_param_count(clf), expected);
    size_t offset = 0;
    for (size_t t = 0; t < CM_CLASSIFIER_TENSORS; t++) {
        cm_classifier_tensor tensor = cm_classifier_tensor_at(clf, t);
        size_t count = 1;
        for (size_t i = 0; i < tensor.rank; i++) count *= tensor.shape[i];
        CM_CHECK(tensor.offset == offset && tensor.count == count, "%s: offset %zu count %zu",
                 tensor.name, tensor.offset, tensor.count);
        offset += tensor.count;
    }
    CM_CHECK(offset == expected, "tensors cover %zu of %zu", offset, expected);
    cm_classifier_tensor first = cm_classifier_tensor_at(clf, 0);
    cm_classifier_tensor linear1 = cm_classifier_tensor_at(clf, 16);
    CM_CHECK(strcmp(first.name, "classifier.conv1.weight") == 0 && first.shape[0] == 32 &&
                 first.shape[1] == 1 && first.shape[2] == 3 && first.shape[3] == 3,
             "first tensor %s", first.name);
    CM_CHECK(strcmp(linear1.name, "classifier.linear1.weight") == 0 && linear1.shape[0] == 128 &&
                 linear1.shape[1] == 3136, "tensor 16 %s", linear1.name);
    /* initialisation: GroupNorm weights 1 and biases 0, others within 1/sqrt(fan_in) */
    cm_rng rng;
    cm_rng_init(&rng, 1);
    cm_classifier_init(clf, &rng);
    const float *p = cm_classifier_params(clf);
    cm_classifier_tensor norm = cm_classifier_tensor_at(clf, 2), bias = cm_classifier_tensor_at(clf, 3);
    CM_CHECK(p[norm.offset] == 1.0f && p[bias.offset] == 0.0f, "GroupNorm initialisation");
    double largest = 0;
    for (size_t i = linear1.offset; i < linear1.offset + linear1.count; i++)
        largest = fmax(largest, fabs(p[i]));
    CM_CHECK(largest <= 1 / sqrt(3136.0) && largest > 0.9 / sqrt(3136.0), "linear1 bound %g",
             largest);
    cm_classifier_free(clf);
    /* bad configurations */
    cm_classifier_config bad = c;
    bad.height = 30;
    CM_CHECK(cm_classifier_create(&clf, &bad) == CM_ERR_INVALID && !clf, "height 30 accepted");
    bad = c, bad.classes = 1;
    CM_CHECK(cm_classifier_create(&clf, &bad) == CM_ERR_INVALID, "1 class accepted");
    bad = c, bad.groups = 5;
    CM_CHECK(cm_classifier_create(&clf, &bad) == CM_ERR_INVALID, "5 groups of 32 accepted");
}

/* Loss and gradient against softmax computed here in long double. */
static void test_cross_entropy(void) {
    enum { R = 3, K = 4 };
    float logits[R * K] = {0, 0, 0, 0, 1.5f, -2, 0.25f, 3, 80, -80, 0, 1};
    size_t labels[R] = {2, 3, 1};
    float dlogits[R * K], probabilities[R * K];
    double scale = 0.5, expected = 0;
    double loss = cm_classifier_cross_entropy(dlogits, probabilities, logits, labels, R, K, scale);
    for (int r = 0; r < R; r++) {
        long double sum = 0;
        for (int k = 0; k < K; k++) sum += expl((long double)logits[r * K + k]);
        expected += (double)(logl(sum) - logits[r * K + labels[r]]);
        for (int k = 0; k < K; k++) {
            double p = (double)(expl((long double)logits[r * K + k]) / sum);
            CM_CHECK_CLOSE(probabilities[r * K + k], p, 1e-7 * fmax(p, 1e-30) + 1e-38, "probability");
            CM_CHECK_CLOSE(dlogits[r * K + k], scale * (p - (k == (int)labels[r])), 1e-7,
                           "dlogits");
        }
    }
    CM_CHECK_CLOSE(loss, expected, 1e-12 * expected, "cross-entropy");
    CM_CHECK_CLOSE(cm_classifier_cross_entropy(NULL, NULL, logits, labels, 1, K, 1), log(4.0),
                   1e-15, "equal logits: log K");
    size_t bad_label = K;
    CM_CHECK(isnan(cm_classifier_cross_entropy(NULL, NULL, logits, &bad_label, 1, K, 1)),
             "a label out of range gives NaN");
}

typedef struct {
    const cm_classifier *clf;
    cm_classifier_workspace_f64 *ws;
    double *params, *images, *logits, *R;
    size_t rows;
} fd_case;

static double fd_loss(fd_case *f) {
    size_t K = cm_classifier_config_of(f->clf)->classes;
    cm_classifier_forward_f64(f->logits, NULL, f->params, f->clf, f->ws, f->images, f->rows);
    double s = 0;
    for (size_t i = 0; i < f->rows * K; i++) s += f->logits[i] * f->R[i];
    return s;
}

/* The double network's parameter gradient of sum(logits R) against central differences: every
 * tensor at 4 entries (its first, last and two drawn ones). */
static void test_gradients_f64(void) {
    enum { ROWS = 2 };
    cm_rng rng;
    cm_rng_init(&rng, cm_test_seed(41));
    cm_classifier *clf = NULL;
    cm_classifier_config c = small_config();
    CM_CHECK_OK(cm_classifier_create(&clf, &c));
    if (!clf) return;
    size_t P = cm_classifier_param_count(clf), D = 64, K = 3;
    fd_case f = {.clf = clf, .rows = ROWS};
    CM_CHECK_OK(cm_classifier_workspace_alloc_f64(&f.ws, clf, ROWS));
    f.params = malloc(P * 8), f.images = malloc(ROWS * D * 8), f.logits = malloc(ROWS * K * 8);
    f.R = malloc(ROWS * K * 8);
    double *dparams = malloc(P * 8);
    for (size_t i = 0; i < P; i++) f.params[i] = 0.5 * cm_rng_normal(&rng);
    for (size_t i = 0; i < ROWS * D; i++) f.images[i] = cm_rng_uniform(&rng);
    for (size_t i = 0; i < ROWS * K; i++) f.R[i] = cm_rng_normal(&rng);
    fd_loss(&f);
    for (size_t i = 0; i < P; i++) dparams[i] = NAN; /* overwritten */
    CM_CHECK_OK(cm_classifier_backward_f64(dparams, f.params, clf, f.ws, f.R, ROWS));
    int bad = 0, checked = 0;
    for (size_t t = 0; t < CM_CLASSIFIER_TENSORS; t++) {
        cm_classifier_tensor tensor = cm_classifier_tensor_at(clf, t);
        size_t picks[4] = {0, tensor.count - 1, cm_rng_below(&rng, tensor.count),
                           cm_rng_below(&rng, tensor.count)};
        for (int k = 0; k < 4; k++) {
            size_t i = tensor.offset + picks[k];
            double saved = f.params[i];
            f.params[i] = saved + FD_STEP;
            double plus = fd_loss(&f);
            f.params[i] = saved - FD_STEP;
            double minus = fd_loss(&f);
            f.params[i] = saved;
            double numeric = (plus - minus) / (2 * FD_STEP);
            checked++;
            if (!(fabs(dparams[i] - numeric) <= 1e-6 * fmax(1.0, fabs(numeric))) && bad++ < 5)
                CM_CHECK(0, "%s[%zu]: gradient %.12g vs FD %.12g", tensor.name, picks[k],
                         dparams[i], numeric);
        }
    }
    CM_CHECK(bad == 0 && checked == 4 * CM_CLASSIFIER_TENSORS, "%d of %d entries off", bad, checked);
    cm_classifier_workspace_free_f64(f.ws);
    free(f.params), free(f.images), free(f.logits), free(f.R), free(dparams);
    cm_classifier_free(clf);
}

/* Float (oneDNN) against double (reference loops) on the same weights, 1 x 28 x 28. The float
 * path rounds in sums of up to 3136 products through 4 GroupNorms; observed relative errors are
 * ~1e-6; the tolerances leave a factor 30 or more. */
static void test_float_matches_double(void) {
    enum { ROWS = 2 };
    cm_rng rng;
    cm_rng_init(&rng, cm_test_seed(42));
    cm_classifier *clf = NULL;
    cm_classifier_config c = cm_classifier_config_default(1, 28, 28, 10);
    CM_CHECK_OK(cm_classifier_create(&clf, &c));
    if (!clf) return;
    cm_classifier_init(clf, &rng);
    size_t P = cm_classifier_param_count(clf), D = 784, K = 10, F = 128;
    cm_classifier_workspace *ws = NULL;
    cm_classifier_workspace_f64 *ws64 = NULL;
    CM_CHECK_OK(cm_classifier_workspace_alloc(&ws, clf, ROWS));
    CM_CHECK_OK(cm_classifier_workspace_alloc_f64(&ws64, clf, ROWS));
    float *x = malloc(ROWS * D * 4), *z = malloc(ROWS * K * 4), *feat = malloc(ROWS * F * 4);
    float *R = malloc(ROWS * K * 4), *dp = malloc(P * 4);
    double *pd = malloc(P * 8), *xd = malloc(ROWS * D * 8), *zd = malloc(ROWS * K * 8);
    double *featd = malloc(ROWS * F * 8), *Rd = malloc(ROWS * K * 8), *dpd = malloc(P * 8);
    const float *p = cm_classifier_params(clf);
    for (size_t i = 0; i < P; i++) pd[i] = p[i];
    for (size_t i = 0; i < ROWS * D; i++) x[i] = (float)cm_rng_uniform(&rng), xd[i] = x[i];
    for (size_t i = 0; i < ROWS * K; i++) R[i] = (float)cm_rng_normal(&rng), Rd[i] = R[i];
    CM_CHECK_OK(cm_classifier_forward(z, feat, clf, ws, x, ROWS));
    CM_CHECK_OK(cm_classifier_backward(dp, clf, ws, R, ROWS));
    CM_CHECK_OK(cm_classifier_forward_f64(zd, featd, pd, clf, ws64, xd, ROWS));
    CM_CHECK_OK(cm_classifier_backward_f64(dpd, pd, clf, ws64, Rd, ROWS));
    double worst_z = 0, scale_z = 0, worst_f = 0, scale_f = 0;
    for (size_t i = 0; i < ROWS * K; i++)
        worst_z = fmax(worst_z, fabs(z[i] - zd[i])), scale_z = fmax(scale_z, fabs(zd[i]));
    for (size_t i = 0; i < ROWS * F; i++)
        worst_f = fmax(worst_f, fabs(feat[i] - featd[i])), scale_f = fmax(scale_f, fabs(featd[i]));
    CM_CHECK(scale_z > 0.01 && worst_z <= 1e-4 * scale_z, "logits off by %.3g (scale %.3g)",
             worst_z, scale_z);
    CM_CHECK(scale_f > 0.01 && worst_f <= 1e-4 * scale_f, "features off by %.3g (scale %.3g)",
             worst_f, scale_f);
    double worst_tensor = 0;
    for (size_t t = 0; t < CM_CLASSIFIER_TENSORS; t++) {
        cm_classifier_tensor tensor = cm_classifier_tensor_at(clf, t);
        double error = 0, norm = 0;
        for (size_t i = tensor.offset; i < tensor.offset + tensor.count; i++)
            error += (dp[i] - dpd[i]) * (dp[i] - dpd[i]), norm += dpd[i] * dpd[i];
        worst_tensor = fmax(worst_tensor, sqrt(error / norm));
        CM_CHECK(norm > 0 && sqrt(error / norm) <= 1e-4, "%s: relative error %.3g", tensor.name,
                 sqrt(error / norm));
    }
    printf("    logits %.2g of %.2g, features %.2g of %.2g, worst tensor gradient %.2g "
           "(relative)\n", worst_z, scale_z, worst_f, scale_f, worst_tensor);
    cm_classifier_workspace_free(ws), cm_classifier_workspace_free_f64(ws64);
    free(x), free(z), free(feat), free(R), free(dp), free(pd), free(xd), free(zd), free(featd);
    free(Rd), free(dpd);
    cm_classifier_free(clf);
}

/* Two calls give the same bits; a row's values do not depend on the other rows' values;
 * cm_classifier_apply gives an image the same bits whatever n, its place and the thread count,
 * and probabilities that sum to 1 and agree with the forward's logits. */
static void test_rows_and_apply(void) {
    enum { ROWS = 3, N = 70 };
    cm_rng rng;
    cm_rng_init(&rng, cm_test_seed(43));
    cm_classifier *clf = NULL;
    cm_classifier_config c = cm_classifier_config_default(1, 16, 16, 5);
    CM_CHECK_OK(cm_classifier_create(&clf, &c));
    if (!clf) return;
    random_weights(clf, &rng);
    size_t D = 256, K = 5, F = 128;
    cm_classifier_workspace *ws = NULL;
    CM_CHECK_OK(cm_classifier_workspace_alloc(&ws, clf, ROWS));
    float x[ROWS * 256], z1[ROWS * 5], z2[ROWS * 5], f1[ROWS * 128], f2[ROWS * 128];
    for (size_t i = 0; i < ROWS * D; i++) x[i] = (float)cm_rng_uniform(&rng);
    CM_CHECK_OK(cm_classifier_forward(z1, f1, clf, ws, x, ROWS));
    CM_CHECK_OK(cm_classifier_forward(z2, f2, clf, ws, x, ROWS));
    CM_CHECK(memcmp(z1, z2, sizeof z1) == 0 && memcmp(f1, f2, sizeof f1) == 0, "two calls differ");
    for (size_t i = D; i < ROWS * D; i++) x[i] = 1 - x[i];
    CM_CHECK_OK(cm_classifier_forward(z2, f2, clf, ws, x, ROWS));
    CM_CHECK(memcmp(z1, z2, K * 4) == 0 && memcmp(f1, f2, F * 4) == 0,
             "row 0 depends on the values of rows 1, 2");
    CM_CHECK(cm_classifier_forward(z2, f2, clf, ws, x, ROWS + 1) == CM_ERR_INVALID,
             "more rows than the workspace holds");
    /* apply */
    double *images = malloc(N * D * 8), *p_all = malloc(N * K * 8), *f_all = malloc(N * F * 8);
    double *p_some = malloc(N * K * 8), *f_some = malloc(N * F * 8);
    for (size_t i = 0; i < N * D; i++) images[i] = cm_rng_uniform(&rng);
    CM_CHECK_OK(cm_classifier_apply(p_all, f_all, clf, images, N));
    CM_CHECK_OK(cm_parallel_set_threads(2));
    CM_CHECK_OK(cm_classifier_apply(p_some, f_some, clf, images + 5 * D, N - 5));
    CM_CHECK_OK(cm_parallel_set_threads(1));
    CM_CHECK(memcmp(p_all + 5 * K, p_some, (N - 5) * K * 8) == 0 &&
                 memcmp(f_all + 5 * F, f_some, (N - 5) * F * 8) == 0,
             "apply: an image's values depend on n, its place or the thread count");
    double worst_sum = 0;
    for (size_t r = 0; r < N; r++) {
        double s = 0;
        for (size_t k = 0; k < K; k++) s += p_all[r * K + k];
        worst_sum = fmax(worst_sum, fabs(s - 1));
    }
    CM_CHECK(worst_sum < 1e-12, "probabilities sum to 1 within %.3g", worst_sum);
    float one[256], z[5];
    for (size_t i = 0; i < D; i++) one[i] = (float)images[7 * D + i];
    CM_CHECK_OK(cm_classifier_forward(z, NULL, clf, ws, one, 1));
    double largest = z[0], total = 0;
    for (size_t k = 1; k < K; k++) largest = fmax(largest, z[k]);
    for (size_t k = 0; k < K; k++) total += exp(z[k] - largest);
    CM_CHECK_CLOSE(p_all[7 * K + 2], exp(z[2] - largest) / total, 1e-15, "apply's softmax");
    cm_classifier_workspace_free(ws);
    free(images), free(p_all), free(f_all), free(p_some), free(f_some);
    cm_classifier_free(clf);
}

static void test_files(void) {
    cm_rng rng;
    cm_rng_init(&rng, 44);
    cm_classifier *clf = NULL, *back = NULL;
    cm_classifier_config c = small_config();
    CM_CHECK_OK(cm_classifier_create(&clf, &c));
    if (!clf) return;
    random_weights(clf, &rng);
    const char *path = "build/test_classifier.safetensors";
    const char *keys[] = {"test_accuracy"}, *values[] = {"0.9125"};
    CM_CHECK_OK(cm_classifier_save(clf, path, keys, values, 1));
    CM_CHECK_OK(cm_classifier_load(&back, path));
    if (back) {
        size_t P = cm_classifier_param_count(clf);
        CM_CHECK(cm_classifier_param_count(back) == P &&
                     memcmp(cm_classifier_params(back), cm_classifier_params(clf), P * 4) == 0,
                 "weights after a round trip");
        CM_CHECK(cm_classifier_config_of(back)->features == 6 &&
                     cm_classifier_config_of(back)->groups == 2, "configuration after a round trip");
        const char *accuracy = cm_classifier_metadata(back, "test_accuracy");
        CM_CHECK(accuracy && strcmp(accuracy, "0.9125") == 0, "metadata after a round trip");
        cm_classifier_free(back), back = NULL;
    }
    const char *reserved[] = {"classes"};
    CM_CHECK(cm_classifier_save(clf, path, reserved, values, 1) == CM_ERR_INVALID,
             "a reserved metadata key accepted");
    /* not a classifier: a safetensors file without the format key */
    float value = 1;
    cm_tensor_view view = {.name = "x", .ndim = 1, .shape = {1}, .data = &value};
    CM_CHECK_OK(cm_safetensors_write(path, &view, 1, NULL, NULL, 0));
    CM_CHECK(cm_classifier_load(&back, path) == CM_ERR_FORMAT && !back, "not a classifier file");
    /* a tensor whose shape disagrees with the configuration */
    cm_tensor_view views[CM_CLASSIFIER_TENSORS];
    for (size_t t = 0; t < CM_CLASSIFIER_TENSORS; t++) {
        cm_classifier_tensor tensor = cm_classifier_tensor_at(clf, t);
        views[t] = (cm_tensor_view){.name = tensor.name, .ndim = tensor.rank,
                                    .data = cm_classifier_params(clf) + tensor.offset};
        memcpy(views[t].shape, tensor.shape, sizeof views[t].shape);
    }
    views[0].shape[0] = 2, views[0].shape[1] = 2; /* 4 x 1 x 3 x 3 read as 2 x 2 x 3 x 3 */
    const char *meta_keys[] = {"format", "channels", "height", "width", "classes", "width1",
                               "width2", "features", "groups"};
    const char *meta_values[] = {"cm-classifier-1", "1", "8", "8", "3", "4", "4", "6", "2"};
    CM_CHECK_OK(cm_safetensors_write(path, views, CM_CLASSIFIER_TENSORS, meta_keys, meta_values, 9));
    CM_CHECK(cm_classifier_load(&back, path) == CM_ERR_FORMAT && !back, "a tensor of another shape");
    views[0].shape[0] = 4, views[0].shape[1] = 1;
    meta_values[8] = "-2";
    CM_CHECK_OK(cm_safetensors_write(path, views, CM_CLASSIFIER_TENSORS, meta_keys, meta_values, 9));
    CM_CHECK(cm_classifier_load(&back, path) == CM_ERR_FORMAT && !back, "groups -2");
    cm_classifier_free(clf);
    remove(path);
}

static void test_allocation_failures(void) {
    cm_classifier *clf = NULL;
    cm_classifier_config c = small_config();
    long live = cm_alloc_live_count();
    int failures = 0;
    for (long k = 0; k < 1000; k++) {
        cm_alloc_fail_after(k);
        cm_status status = cm_classifier_create(&clf, &c);
        cm_classifier_workspace *ws = NULL;
        if (status == CM_OK) status = cm_classifier_workspace_alloc(&ws, clf, 2);
        cm_alloc_fail_after(-1);
        cm_classifier_workspace_free(ws);
        cm_classifier_free(clf), clf = NULL;
        if (status == CM_OK) break;
        failures++;
        CM_CHECK(status == CM_ERR_NOMEM, "allocation %ld failing: %s", k, cm_status_name(status));
        CM_CHECK(cm_alloc_live_count() == live, "allocation %ld failing leaks %ld blocks", k,
                 cm_alloc_live_count() - live);
    }
    CM_CHECK(failures >= 4, "only %d allocations to fail", failures);
}

const cm_test_case cm_tests_classifier[] = {
    {"parameter_count", test_parameter_count},
    {"cross_entropy", test_cross_entropy},
    {"gradients_f64", test_gradients_f64},
    {"float_matches_double", test_float_matches_double},
    {"rows_and_apply", test_rows_and_apply},
    {"files", test_files},
    {"allocation_failures", test_allocation_failures},
    {NULL, NULL},
};
