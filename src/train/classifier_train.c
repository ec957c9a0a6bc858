/* classifier_train.c: the classifier's trainer and accuracy of classifier_train.h. A step: for
 * each fixed row block, as one pool task, draw the block's rows (row b from child b of the
 * step's data stream), run the classifier forward, the cross-entropy rows (scaled by 1 / batch)
 * and the backward into the block's own gradient; then the blocks' gradients summed in block
 * order, Adam. It lives in src/train because it needs data sources and Adam (the network itself
 * is src/nn/classifier.c). No data augmentation, no epochs: draws with replacement.
 */
#include "cm/classifier_train.h"

#include <math.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/optim.h"
#include "cm/parallel.h"
#include "cm/rng.h"

#define CM_CLASSIFIER_MAX_BATCH ((size_t)1 << 16)

cm_classifier_train_config cm_classifier_train_config_default(void) {
    return (cm_classifier_train_config){.steps = 3000, .batch = 128, .blocks = 2,
                                        .learning_rate = 2e-3, .warmup_steps = 200,
                                        .weight_decay = 1e-4, .seed = 1};
}

struct cm_classifier_trainer {
    cm_classifier *classifier; /* borrowed */
    const cm_data *data;       /* borrowed */
    cm_classifier_train_config config;
    cm_adam adam;
    cm_rng streams[CM_STREAM_COUNT];
    size_t step, D, K;
    cm_classifier_workspace **workspaces; /* one per block */
    float **gradients;                    /* one per block; [0] is the summed gradient */
    double *x_double;                     /* [batch, D] the drawn images */
    float *x, *logits, *dlogits;          /* [batch, D], [batch, K], [batch, K] */
    size_t *labels;                       /* [batch] */
    double *block_loss;                   /* [blocks] */
    size_t *block_correct;                /* [blocks] */
    cm_status *block_status;              /* [blocks] */
};

static cm_status check_data(const cm_classifier *clf, const cm_data *data) {
    const cm_classifier_config *c = cm_classifier_config_of(clf);
    size_t channels, height, width;
    if (!cm_data_image_shape(data, &channels, &height, &width))
        return cm_error_set(CM_ERR_INVALID, "classifier: %s is not an image source",
                            cm_data_describe(data));
    if (channels != c->channels || height != c->height || width != c->width)
        return cm_error_set(CM_ERR_DIMENSION, "classifier for %zu x %zu x %zu images, data %s has "
                            "%zu x %zu x %zu", c->channels, c->height, c->width,
                            cm_data_describe(data), channels, height, width);
    if (cm_data_classes(data) != c->classes)
        return cm_error_set(CM_ERR_INVALID, "classifier of %zu classes, data %s has %zu",
                            c->classes, cm_data_describe(data), cm_data_classes(data));
    return CM_OK;
}

static cm_status check_config(const cm_classifier_train_config *c) {
    if (c->steps < 1 || c->batch < 1 || c->batch > CM_CLASSIFIER_MAX_BATCH || c->blocks < 1 ||
        c->blocks > c->batch || c->blocks > 1024)
        return cm_error_set(CM_ERR_INVALID, "classifier training: %zu steps, batch %zu, %zu "
                            "blocks (need steps >= 1, 1 <= blocks <= batch <= %zu)", c->steps,
                            c->batch, c->blocks, CM_CLASSIFIER_MAX_BATCH);
    if (!(c->learning_rate > 0) || !(c->weight_decay >= 0) || c->warmup_steps > c->steps)
        return cm_error_set(CM_ERR_INVALID, "classifier training: rate %g, weight decay %g, "
                            "warm-up %zu steps of %zu", c->learning_rate, c->weight_decay,
                            c->warmup_steps, c->steps);
    return CM_OK;
}

static cm_status allocate(cm_classifier_trainer *t) {
    size_t B = t->config.batch, S = t->config.blocks, P = cm_classifier_param_count(t->classifier);
    t->workspaces = cm_calloc(S, sizeof *t->workspaces);
    t->gradients = cm_calloc(S, sizeof *t->gradients);
    t->x_double = cm_malloc(B * t->D, sizeof(double));
    t->x = cm_malloc(B * t->D + 2 * B * t->K, sizeof(float));
    t->labels = cm_malloc(B, sizeof(size_t));
    t->block_loss = cm_malloc(S, sizeof(double));
    t->block_correct = cm_malloc(S, sizeof(size_t));
    t->block_status = cm_malloc(S, sizeof(cm_status));
    if (!t->workspaces || !t->gradients || !t->x_double || !t->x || !t->labels ||
        !t->block_loss || !t->block_correct || !t->block_status)
        return cm_error_set(CM_ERR_NOMEM, "classifier trainer buffers (batch %zu)", B);
    t->logits = t->x + B * t->D, t->dlogits = t->logits + B * t->K;
    for (size_t s = 0; s < S; s++) {
        size_t first, end;
        cm_parallel_range(&first, &end, B, s, S);
        CM_TRY(cm_classifier_workspace_alloc(&t->workspaces[s], t->classifier, end - first));
        if (!(t->gradients[s] = cm_malloc(P, sizeof(float))))
            return cm_error_set(CM_ERR_NOMEM, "classifier trainer: gradient of block %zu", s);
    }
    return CM_OK;
}

cm_status cm_classifier_trainer_create(cm_classifier_trainer **out, cm_classifier *classifier,
                                       const cm_data *data,
                                       const cm_classifier_train_config *config) {
    *out = NULL;
    CM_TRY(check_config(config));
    CM_TRY(check_data(classifier, data));
    cm_classifier_trainer *t = cm_calloc(1, sizeof *t);
    if (!t) return cm_error_set(CM_ERR_NOMEM, "classifier trainer");
    *t = (cm_classifier_trainer){.classifier = classifier, .data = data, .config = *config,
                                 .D = cm_data_dim(data),
                                 .K = cm_classifier_config_of(classifier)->classes};
    cm_rng root;
    cm_rng_init(&root, config->seed);
    for (int s = 1; s < CM_STREAM_COUNT; s++) cm_rng_fork(&t->streams[s], &root, (uint64_t)s);
    cm_adam_config adam = cm_adam_config_default();
    adam.learning_rate = config->learning_rate;
    adam.warmup_steps = config->warmup_steps;
    adam.weight_decay = config->weight_decay;
    adam.decay_steps = config->steps;
    adam.final_fraction = 0.01;
    cm_status status = cm_adam_init(&t->adam, &adam, cm_classifier_param_count(classifier));
    if (status == CM_OK) status = allocate(t);
    if (status != CM_OK) {
        cm_classifier_trainer_free(t);
        return status;
    }
    cm_classifier_init(classifier, &t->streams[CM_STREAM_INIT]);
    *out = t;
    return CM_OK;
}

void cm_classifier_trainer_free(cm_classifier_trainer *t) {
    if (!t) return;
    for (size_t s = 0; t->workspaces && s < t->config.blocks; s++)
        cm_classifier_workspace_free(t->workspaces[s]);
    for (size_t s = 0; t->gradients && s < t->config.blocks; s++) cm_free(t->gradients[s]);
    cm_free(t->workspaces), cm_free(t->gradients), cm_free(t->x_double), cm_free(t->x);
    cm_free(t->labels), cm_free(t->block_loss), cm_free(t->block_correct);
    cm_free(t->block_status);
    cm_adam_free(&t->adam);
    cm_free(t);
}

size_t cm_classifier_trainer_steps_done(const cm_classifier_trainer *t) { return t->step; }

/* The index of the largest of z[K] (the first on ties). */
static size_t argmax(const float *z, size_t K) {
    size_t best = 0;
    for (size_t k = 1; k < K; k++)
        if (z[k] > z[best]) best = k;
    return best;
}

typedef struct {
    cm_classifier_trainer *t;
    cm_rng data_rng; /* child k of the data stream */
} step_job;

/* Block s of the step: draw its rows, forward, cross-entropy, backward into gradients[s]. */
static void step_block(void *context, size_t s) {
    step_job *job = context;
    cm_classifier_trainer *t = job->t;
    size_t first, end, D = t->D, K = t->K, B = t->config.batch;
    cm_parallel_range(&first, &end, B, s, t->config.blocks);
    size_t R = end - first;
    for (size_t b = first; b < end; b++) {
        cm_rng point = job->data_rng; /* cm_data_sample draws point b from child b */
        point.position = b;
        cm_data_sample_labelled(t->data, &point, 1, t->x_double + b * D, t->labels + b);
    }
    for (size_t i = first * D; i < end * D; i++) t->x[i] = (float)t->x_double[i];
    cm_status status = cm_classifier_forward(t->logits + first * K, NULL, t->classifier,
                                             t->workspaces[s], t->x + first * D, R);
    t->block_loss[s] = cm_classifier_cross_entropy(t->dlogits + first * K, NULL,
                                                   t->logits + first * K, t->labels + first, R,
                                                   K, 1.0 / (double)B);
    t->block_correct[s] = 0;
    for (size_t b = first; b < end; b++)
        t->block_correct[s] += argmax(t->logits + b * K, K) == t->labels[b];
    if (status == CM_OK)
        status = cm_classifier_backward(t->gradients[s], t->classifier, t->workspaces[s],
                                        t->dlogits + first * K, R);
    t->block_status[s] = status;
}

cm_status cm_classifier_trainer_step(cm_classifier_trainer *t, double *out_loss,
                                     double *out_accuracy) {
    size_t S = t->config.blocks, P = cm_classifier_param_count(t->classifier);
    step_job job = {.t = t};
    cm_rng_fork(&job.data_rng, &t->streams[CM_STREAM_DATA], t->step);
    cm_parallel_for(step_block, &job, S);
    double loss = 0.0;
    size_t correct = 0;
    for (size_t s = 0; s < S; s++) {
        CM_TRY(t->block_status[s]);
        loss += t->block_loss[s], correct += t->block_correct[s];
    }
    for (size_t s = 1; s < S; s++) { /* in block order */
        const float *g = t->gradients[s];
        float *sum = t->gradients[0];
        for (size_t i = 0; i < P; i++) sum[i] += g[i];
    }
    loss /= (double)t->config.batch;
    double norm = cm_gradient_norm(t->gradients[0], P);
    if (!isfinite(loss) || !isfinite(norm))
        return cm_error_set(CM_ERR_NONFINITE, "classifier training: loss %g, gradient norm %g at "
                            "step %zu", loss, norm, t->step);
    cm_adam_step(&t->adam, cm_classifier_params(t->classifier), t->gradients[0], norm);
    t->step++;
    if (out_loss) *out_loss = loss;
    if (out_accuracy) *out_accuracy = (double)correct / (double)t->config.batch;
    return CM_OK;
}

/* ---- accuracy on a labelled source */

#define ACCURACY_CHUNK 1024

cm_status cm_classifier_accuracy(double *out, size_t *out_correct, size_t *out_count,
                                 const cm_classifier *classifier, const cm_data *data, size_t n,
                                 uint64_t seed) {
    CM_TRY(check_data(classifier, data));
    size_t stored = cm_data_rows(data), D = cm_data_dim(data);
    size_t K = cm_classifier_config_of(classifier)->classes, count = stored ? stored : n;
    const size_t *labels = cm_data_labels(data);
    if (count == 0) return cm_error_set(CM_ERR_INVALID, "classifier accuracy: no image");
    double *images = cm_malloc(ACCURACY_CHUNK * (D + K), sizeof(double));
    size_t *drawn = cm_malloc(ACCURACY_CHUNK, sizeof(size_t)), correct = 0;
    cm_status status = images && drawn ? CM_OK : cm_error_set(CM_ERR_NOMEM, "accuracy buffers");
    cm_rng rng;
    cm_rng_init(&rng, seed);
    for (size_t first = 0; status == CM_OK && first < count; first += ACCURACY_CHUNK) {
        size_t m = count - first < ACCURACY_CHUNK ? count - first : ACCURACY_CHUNK;
        double *probabilities = images + ACCURACY_CHUNK * D;
        if (stored) {
            cm_data_copy_rows(data, first, m, images);
            if (labels) memcpy(drawn, labels + first, m * sizeof(size_t));
        } else {
            cm_data_sample_labelled(data, &rng, m, images, drawn);
        }
        if (stored && !labels) status = cm_error_set(CM_ERR_INVALID, "%s has no labels",
                                                     cm_data_describe(data));
        if (status == CM_OK) status = cm_classifier_apply(probabilities, NULL, classifier, images, m);
        for (size_t i = 0; status == CM_OK && i < m; i++) {
            size_t best = 0;
            for (size_t k = 1; k < K; k++)
                if (probabilities[i * K + k] > probabilities[i * K + best]) best = k;
            correct += best == drawn[i];
        }
    }
    cm_free(images), cm_free(drawn);
    if (status != CM_OK) return status;
    *out = (double)correct / (double)count;
    if (out_correct) *out_correct = correct;
    if (out_count) *out_count = count;
    return CM_OK;
}
