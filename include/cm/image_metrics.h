/* image_metrics.h: how good are generated images? Numbers on the features and predictions of
 * cm's own classifier (classifier.h: no Inception network is available offline, and FID values
 * are only comparable under one feature extractor) and in pixel space, each beside a floor
 * computed the same way on real images at the same sizes (docs/images.md).
 *
 *   FD   Frechet distance between the Gaussians fitted (mean, covariance with divisor n - 1) to
 *        two feature sets: |m_a - m_b|^2 + tr(S_a + S_b - 2 (S_a^{1/2} S_b S_a^{1/2})^{1/2})
 *        (the squared W2 of gaussian.h; FID's formula on other features);
 *   KID  the unbiased MMD^2 (U-statistics within each set) with the polynomial kernel
 *        k(x, y) = (x.y / d + 1)^3 on the same features (Binkowski et al. 2018, who call it the
 *        kernel inception distance): unbiased, so it can be slightly negative on equal laws;
 *   classes: the classifier's class histogram of the samples and their mean top-class
 *        probability, beside the same for test images;
 *   W1   exact W1 in pixel space between samples and test images (ot.h, subsampled to a stated
 *        number of points);
 *   memorisation: each sample's Euclidean pixel distance to its nearest training image,
 *        against the same for test images (which no model saw): a generator that copies
 *        training images has samples far closer to the training set than test images are.
 *
 * The library computes on arrays; features and probabilities come from the caller
 * (cm_classifier_apply), which keeps this subsystem free of the network code.
 */
#ifndef CM_IMAGE_METRICS_H
#define CM_IMAGE_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "cm/status.h"

/* FD between the Gaussian fits of a (n x d) and b (m x d), n, m >= 2. */
cm_status cm_frechet_distance(double *out, const double *a, size_t n, const double *b, size_t m,
                              size_t d);
/* KID = unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3 between a (n x d) and b (m x d), n, m >= 2.
 * Gram blocks through BLAS (dgemm), each block summed in a fixed order. Allocates a block. */
cm_status cm_kernel_inception_distance(double *out, const double *a, size_t n, const double *b,
                                       size_t m, size_t d);
/* out[i] = min_j |a_i - b_j| (Euclidean; a n x d, b m x d, m >= 1); nearest (may be NULL)
 * receives the j. Squared distances as |a|^2 + |b|^2 - 2 a.b in double (Gram blocks through
 * dgemm): exact duplicates come out at about 1e-7 of the vectors' norms, not 0. Allocates. */
cm_status cm_nearest_distances(double *out, size_t *nearest, const double *a, size_t n,
                               const double *b, size_t m, size_t d);
/* histogram[K] = the fraction of the n rows of probabilities[n, K] whose largest entry is class
 * k (the first on ties); *mean_confidence = the mean of each row's largest entry. */
void cm_class_summary(double *histogram, double *mean_confidence, const double *probabilities,
                      size_t n, size_t K);

/* ---- the report */

/* An image set as the report reads it: pixels [count, D] in [0, 1], the classifier's features
 * [count, F] and softmax probabilities [count, K] (NULL for the training set). */
typedef struct {
    const double *pixels, *features, *probabilities;
    size_t count;
} cm_image_set_view;

typedef struct {
    size_t floor_repeats;  /* K >= 1 training subsets for each floor */
    uint64_t seed;         /* the subsets and the W1 subsamples */
    size_t w1_points;      /* points per side of each exact W1 solve (0: no W1) */
    size_t memorisation_train; /* training images searched for nearest neighbours (0: none;
                                  * more than the set: all) */
    size_t memorisation_test;  /* test images whose nearest training distance is the reference */
} cm_image_metrics_options;

/* 5 repeats, seed 0, W1 on 2000 points, nearest neighbours among all training images for every
 * sample and 2000 test images. */
cm_image_metrics_options cm_image_metrics_options_default(void);

/* A number beside its floor: the median, min and max over the K repeats of the same number
 * computed for n training images (a subset drawn without replacement) in place of the n
 * samples. */
typedef struct {
    double value, floor, floor_low, floor_high;
} cm_image_metric;

#define CM_IMAGE_METRICS_MAX_CLASSES 64
#define CM_IMAGE_METRICS_QUANTILES 3 /* 1 %, 5 %, 50 % */

typedef struct {
    size_t n, test_count, train_count, pixels, features, classes;
    cm_image_metric fd;  /* FD(samples, test) */
    cm_image_metric kid; /* KID(samples, test) */
    cm_image_metric w1;  /* W1 in pixels (NaN when w1_points is 0) */
    size_t w1_points;    /* points per side of each solve */
    double histogram[CM_IMAGE_METRICS_MAX_CLASSES];      /* samples' class fractions */
    double test_histogram[CM_IMAGE_METRICS_MAX_CLASSES]; /* test images' */
    double histogram_tv;  /* total variation (half the L1 distance) between the two */
    double confidence, test_confidence; /* mean top-class probability */
    /* memorisation: quantiles (1 %, 5 %, 50 %) of the nearest-training-image distance */
    size_t memorisation_train, memorisation_test;
    double sample_nearest[CM_IMAGE_METRICS_QUANTILES];
    double test_nearest[CM_IMAGE_METRICS_QUANTILES];
    double copy_threshold; /* the test set's 1 % quantile */
    double copy_fraction;  /* samples nearer a training image than that (about 0.01 without
                              memorisation) */
} cm_image_report;

/* The report of samples against test images, the floors from training images (train->count >=
 * samples->count, else CM_ERR_INVALID). D, F, K: pixels, features and classes per image.
 * F = K = 0 is the report without a classifier (images no classifier was trained for): the sets'
 * features and probabilities are not read (may be NULL); FD, KID, the histograms, their total
 * variation and the confidences are NaN; W1 and memorisation as above. */
cm_status cm_image_report_compute(cm_image_report *out, const cm_image_set_view *samples,
                                  const cm_image_set_view *test, const cm_image_set_view *train,
                                  size_t D, size_t F, size_t K,
                                  const cm_image_metrics_options *options);

#endif
