/* classifier_train.h: training the image classifier of classifier.h on a labelled image source
 * (data.h: fashion-mnist, shapes, a PNG folder with class sub-folders), and its accuracy on one.
 *
 * Training minimises the mean softmax cross-entropy with Adam (optim.h: warm-up, cosine decay)
 * on batches drawn with replacement: row b of step k is drawn from child b of the step's data
 * stream, as the consistency trainer draws its rows (train.h). A batch is `blocks` fixed row
 * blocks, each run as one pool task into its own gradient; the blocks' gradients are summed in
 * block order. So the weights after any number of steps are the same bits for any thread count
 * (given the seed and the block count). The caller owns the loop (create, step, free), the
 * printing and the stopping; nothing here prints.
 */
#ifndef CM_CLASSIFIER_TRAIN_H
#define CM_CLASSIFIER_TRAIN_H

#include <stddef.h>
#include <stdint.h>

#include "cm/classifier.h"
#include "cm/data.h"
#include "cm/status.h"

typedef struct {
    size_t steps;          /* the length of the cosine decay (the caller may stop earlier) */
    size_t batch, blocks;  /* rows per step; fixed row blocks (1 <= blocks <= batch) */
    double learning_rate;  /* Adam's peak rate, after warm-up */
    size_t warmup_steps;
    double weight_decay;   /* decoupled (AdamW) */
    uint64_t seed;         /* initial weights and data draws */
} cm_classifier_train_config;

/* 3000 steps of 128 rows in 2 blocks, rate 2e-3 after 200 warm-up steps, cosine to 1 % of it,
 * weight decay 1e-4, seed 1: 92.8 % test accuracy on Fashion-MNIST (6000 steps: 92.7 %;
 * docs/images.md). */
cm_classifier_train_config cm_classifier_train_config_default(void);

typedef struct cm_classifier_trainer cm_classifier_trainer;

/* A trainer of `classifier` (borrowed: trained in place; its weights are drawn from the seed
 * here) on `data` (borrowed; labelled, images of the classifier's shape and class count). */
cm_status cm_classifier_trainer_create(cm_classifier_trainer **out, cm_classifier *classifier,
                                       const cm_data *data,
                                       const cm_classifier_train_config *config);
void cm_classifier_trainer_free(cm_classifier_trainer *trainer);
/* One step; *out_loss (may be NULL) receives the batch's mean cross-entropy before the update,
 * *out_accuracy (may be NULL) the fraction of the batch classified right. */
cm_status cm_classifier_trainer_step(cm_classifier_trainer *trainer, double *out_loss,
                                     double *out_accuracy);
size_t cm_classifier_trainer_steps_done(const cm_classifier_trainer *trainer);

/* Accuracy of `classifier` on a labelled source: every stored image of an image set, or n draws
 * (from seed) of a law such as shapes. *out_correct (may be NULL) receives the number right,
 * *out_count the number classified. Runs on the pool (cm_classifier_apply). */
cm_status cm_classifier_accuracy(double *out, size_t *out_correct, size_t *out_count,
                                 const cm_classifier *classifier, const cm_data *data, size_t n,
                                 uint64_t seed);

#endif
