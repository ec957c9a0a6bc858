/* image_metrics.c: the image metrics of image_metrics.h: the Frechet distance from Gaussian fits
 * (gaussian.h's W2, squared), KID as the unbiased MMD^2 of a cubic polynomial kernel, nearest
 * neighbours by blocks of Gram products, the classifier's class summary, and the report with
 * its floors from training subsets. Gram products go through BLAS (dgemm) because KID and the
 * nearest-neighbour search are n m d sums (10000 x 60000 x 784 for the memorisation check): a
 * plain loop would take minutes. Each block's entries are summed in a fixed order, so results do
 * not depend on the thread count beyond what dgemm itself guarantees (each entry one dot
 * product). Not here: FID's Inception features (none offline), precision/recall, bootstrap.
 */
#include "cm/image_metrics.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/gaussian.h"
#include "cm/ot.h"
#include "cm/rng.h"

#define GRAM_BLOCK 512 /* rows of a Gram block on each side */

static cm_status check_points(const double *x, size_t n, size_t d, size_t minimum,
                              const char *what) {
    if (!x || d == 0 || n < minimum)
        return cm_error_set(CM_ERR_INVALID, "image metrics: %s: %zu points of dimension %zu (need "
                            "at least %zu)", what, n, d, minimum);
    if (n > SIZE_MAX / d / sizeof(double))
        return cm_error_set(CM_ERR_INVALID, "image metrics: %s: too many points", what);
    for (size_t i = 0; i < n * d; i++)
        if (!isfinite(x[i]))
            return cm_error_set(CM_ERR_NONFINITE, "image metrics: %s[%zu] is %g", what, i, x[i]);
    return CM_OK;
}

cm_status cm_frechet_distance(double *out, const double *a, size_t n, const double *b, size_t m,
                              size_t d) {
    CM_TRY(check_points(a, n, d, 2, "first set"));
    CM_TRY(check_points(b, m, d, 2, "second set"));
    double *moments = cm_malloc(2 * (d + d * d), sizeof(double));
    if (!moments) return cm_error_set(CM_ERR_NOMEM, "Frechet distance: moments of dimension %zu", d);
    double *mean_a = moments, *cov_a = mean_a + d, *mean_b = cov_a + d * d, *cov_b = mean_b + d;
    double w2 = 0.0;
    cm_status status = cm_gaussian_fit(mean_a, cov_a, a, n, d);
    if (status == CM_OK) status = cm_gaussian_fit(mean_b, cov_b, b, m, d);
    if (status == CM_OK) status = cm_gaussian_w2(&w2, mean_a, cov_a, mean_b, cov_b, d);
    cm_free(moments);
    if (status == CM_OK) *out = w2 * w2;
    return status;
}

/* sum over the block's entries (row-major order) of k(a_i, b_j) = (a_i.b_j / d + 1)^3, the
 * diagonal left out when `skip_diagonal` (a within-set block on the diagonal). gram[rows, cols]
 * holds the dot products. */
static double kernel_sum(const double *gram, size_t rows, size_t cols, size_t d,
                         int skip_diagonal) {
    double sum = 0.0, inv_d = 1.0 / (double)d;
    for (size_t i = 0; i < rows; i++)
        for (size_t j = 0; j < cols; j++) {
            if (skip_diagonal && i == j) continue;
            double t = gram[i * cols + j] * inv_d + 1.0;
            sum += t * t * t;
        }
    return sum;
}

/* sum over i in a, j in b of k(a_i, b_j) (i != j when a and b are the same set), block by
 * block in a fixed order. */
static double kernel_total(double *gram, const double *a, size_t n, const double *b, size_t m,
                           size_t d, int same) {
    double total = 0.0;
    for (size_t i0 = 0; i0 < n; i0 += GRAM_BLOCK) {
        size_t rows = n - i0 < GRAM_BLOCK ? n - i0 : GRAM_BLOCK;
        for (size_t j0 = 0; j0 < m; j0 += GRAM_BLOCK) {
            size_t cols = m - j0 < GRAM_BLOCK ? m - j0 : GRAM_BLOCK;
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)cols, (int)d, 1.0,
                        a + i0 * d, (int)d, b + j0 * d, (int)d, 0.0, gram, (int)cols);
            total += kernel_sum(gram, rows, cols, d, same && i0 == j0);
        }
    }
    return total;
}

cm_status cm_kernel_inception_distance(double *out, const double *a, size_t n, const double *b,
                                       size_t m, size_t d) {
    CM_TRY(check_points(a, n, d, 2, "first set"));
    CM_TRY(check_points(b, m, d, 2, "second set"));
    double *gram = cm_malloc((size_t)GRAM_BLOCK * GRAM_BLOCK, sizeof(double));
    if (!gram) return cm_error_set(CM_ERR_NOMEM, "KID: Gram block");
    double within_a = kernel_total(gram, a, n, a, n, d, 1);
    double within_b = kernel_total(gram, b, m, b, m, d, 1);
    double across = kernel_total(gram, a, n, b, m, d, 0);
    cm_free(gram);
    double dn = (double)n, dm = (double)m;
    *out = within_a / (dn * (dn - 1)) + within_b / (dm * (dm - 1)) - 2.0 * across / (dn * dm);
    return CM_OK;
}

/* norms[i] = |x_i|^2 for n rows of dimension d. */
static void squared_norms(double *norms, const double *x, size_t n, size_t d) {
    for (size_t i = 0; i < n; i++) {
        double s = 0.0;
        for (size_t k = 0; k < d; k++) s += x[i * d + k] * x[i * d + k];
        norms[i] = s;
    }
}

cm_status cm_nearest_distances(double *out, size_t *nearest, const double *a, size_t n,
                               const double *b, size_t m, size_t d) {
    CM_TRY(check_points(a, n, d, 1, "queries"));
    CM_TRY(check_points(b, m, d, 1, "candidates"));
    double *gram = cm_malloc((size_t)GRAM_BLOCK * GRAM_BLOCK + n + m, sizeof(double));
    if (!gram) return cm_error_set(CM_ERR_NOMEM, "nearest neighbours: Gram block");
    double *norm_a = gram + (size_t)GRAM_BLOCK * GRAM_BLOCK, *norm_b = norm_a + n;
    squared_norms(norm_a, a, n, d);
    squared_norms(norm_b, b, m, d);
    for (size_t i = 0; i < n; i++) out[i] = INFINITY;
    for (size_t i0 = 0; i0 < n; i0 += GRAM_BLOCK) {
        size_t rows = n - i0 < GRAM_BLOCK ? n - i0 : GRAM_BLOCK;
        for (size_t j0 = 0; j0 < m; j0 += GRAM_BLOCK) {
            size_t cols = m - j0 < GRAM_BLOCK ? m - j0 : GRAM_BLOCK;
            cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)cols, (int)d, 1.0,
                        a + i0 * d, (int)d, b + j0 * d, (int)d, 0.0, gram, (int)cols);
            for (size_t i = 0; i < rows; i++)
                for (size_t j = 0; j < cols; j++) {
                    double squared = norm_a[i0 + i] + norm_b[j0 + j] - 2.0 * gram[i * cols + j];
                    if (squared < out[i0 + i]) { /* the first j on ties */
                        out[i0 + i] = squared;
                        if (nearest) nearest[i0 + i] = j0 + j;
                    }
                }
        }
    }
    for (size_t i = 0; i < n; i++) out[i] = sqrt(out[i] > 0.0 ? out[i] : 0.0);
    cm_free(gram);
    return CM_OK;
}

void cm_class_summary(double *histogram, double *mean_confidence, const double *probabilities,
                      size_t n, size_t K) {
    double confidence = 0.0;
    for (size_t k = 0; k < K; k++) histogram[k] = 0.0;
    for (size_t r = 0; r < n; r++) {
        const double *p = probabilities + r * K;
        size_t best = 0;
        for (size_t k = 1; k < K; k++)
            if (p[k] > p[best]) best = k;
        histogram[best] += 1.0;
        confidence += p[best];
    }
    for (size_t k = 0; k < K; k++) histogram[k] /= n ? (double)n : 1.0;
    *mean_confidence = n ? confidence / (double)n : NAN;
}

/* ---- the report */

cm_image_metrics_options cm_image_metrics_options_default(void) {
    return (cm_image_metrics_options){.floor_repeats = 5, .seed = 0, .w1_points = 2000,
                                      .memorisation_train = (size_t)-1,
                                      .memorisation_test = 2000};
}

static int compare_doubles(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

/* Median, min and max of values[count] (sorted in place). */
static void summarise(cm_image_metric *out, double *values, size_t count) {
    qsort(values, count, sizeof(double), compare_doubles);
    out->floor = count % 2 ? values[count / 2] : 0.5 * (values[count / 2 - 1] + values[count / 2]);
    out->floor_low = values[0];
    out->floor_high = values[count - 1];
}

/* index[0..n) = n distinct rows of 0..total-1 drawn from rng (a partial Fisher-Yates shuffle of
 * order[total], which the caller keeps as the identity between calls). */
static void draw_subset(size_t *index, size_t *order, size_t n, size_t total, cm_rng *rng) {
    for (size_t i = 0; i < total; i++) order[i] = i;
    for (size_t i = 0; i < n; i++) {
        size_t j = i + (size_t)cm_rng_below(rng, total - i), swap = order[i];
        order[i] = order[j], order[j] = swap;
        index[i] = order[i];
    }
}

static void gather(double *out, const double *rows, const size_t *index, size_t n, size_t width) {
    for (size_t i = 0; i < n; i++)
        memcpy(out + i * width, rows + index[i] * width, width * sizeof(double));
}

static cm_status check_report(const cm_image_set_view *samples, const cm_image_set_view *test,
                              const cm_image_set_view *train, size_t D, size_t F, size_t K,
                              const cm_image_metrics_options *o) {
    int classifier = F > 0 || K > 0; /* F = K = 0: pixels only */
    if (!samples->pixels || !test->pixels || !train->pixels)
        return cm_error_set(CM_ERR_INVALID, "image report: a set lacks its pixels");
    if (classifier && (!samples->features || !samples->probabilities || !test->features ||
                       !test->probabilities || !train->features))
        return cm_error_set(CM_ERR_INVALID, "image report: a set lacks features or "
                            "probabilities");
    if (D == 0 || (classifier && (F == 0 || K < 2 || K > CM_IMAGE_METRICS_MAX_CLASSES)))
        return cm_error_set(CM_ERR_INVALID, "image report: %zu pixels, %zu features, %zu classes "
                            "(2..%d, or 0 features and 0 classes without a classifier)", D, F, K,
                            CM_IMAGE_METRICS_MAX_CLASSES);
    if (samples->count < 2 || test->count < 2 || train->count < samples->count)
        return cm_error_set(CM_ERR_INVALID, "image report: %zu samples, %zu test images, %zu "
                            "training images (the floors need as many training images as "
                            "samples)", samples->count, test->count, train->count);
    if (o->floor_repeats < 1 || o->floor_repeats > 1000)
        return cm_error_set(CM_ERR_INVALID, "image report: %zu floor repeats (1..1000)",
                            o->floor_repeats);
    return CM_OK;
}

/* The classes: histograms, confidences and their total variation. */
static void report_classes(cm_image_report *r, const cm_image_set_view *samples,
                           const cm_image_set_view *test, size_t K) {
    cm_class_summary(r->histogram, &r->confidence, samples->probabilities, samples->count, K);
    cm_class_summary(r->test_histogram, &r->test_confidence, test->probabilities, test->count, K);
    double l1 = 0.0;
    for (size_t k = 0; k < K; k++) l1 += fabs(r->histogram[k] - r->test_histogram[k]);
    r->histogram_tv = 0.5 * l1;
}

/* The values and, over K training subsets of n images, the floors of FD, KID and W1. */
static cm_status report_distances(cm_image_report *r, const cm_image_set_view *samples,
                                  const cm_image_set_view *test, const cm_image_set_view *train,
                                  size_t D, size_t F, const cm_image_metrics_options *o) {
    size_t n = samples->count, m = test->count, R = o->floor_repeats;
    size_t width = D > F ? D : F;
    double *subset = cm_malloc(n * width + 3 * R, sizeof(double));
    size_t *index = cm_malloc(n + train->count, sizeof(size_t));
    if (!subset || !index) {
        cm_free(subset), cm_free(index);
        return cm_error_set(CM_ERR_NOMEM, "image report: subsets of %zu images", n);
    }
    double *fd = subset + n * width, *kid = fd + R, *w1 = kid + R;
    cm_ot_estimate estimate;
    cm_status status = CM_OK;
    if (F) status = cm_frechet_distance(&r->fd.value, samples->features, n, test->features, m, F);
    if (status == CM_OK && F)
        status = cm_kernel_inception_distance(&r->kid.value, samples->features, n,
                                              test->features, m, F);
    if (status == CM_OK && o->w1_points)
        status = cm_ot_estimate_wp(&estimate, samples->pixels, n, test->pixels, m, D, CM_OT_W1,
                                   o->w1_points, 1, o->seed);
    if (status == CM_OK && o->w1_points) r->w1.value = estimate.value;
    cm_rng root;
    cm_rng_init(&root, o->seed);
    for (size_t k = 0; status == CM_OK && k < R; k++) {
        cm_rng rng;
        cm_rng_fork(&rng, &root, k + 1);
        draw_subset(index, index + n, n, train->count, &rng);
        if (F) {
            gather(subset, train->features, index, n, F);
            status = cm_frechet_distance(&fd[k], subset, n, test->features, m, F);
        }
        if (status == CM_OK && F)
            status = cm_kernel_inception_distance(&kid[k], subset, n, test->features, m, F);
        if (status != CM_OK || !o->w1_points) continue;
        gather(subset, train->pixels, index, n, D);
        status = cm_ot_estimate_wp(&estimate, subset, n, test->pixels, m, D, CM_OT_W1,
                                   o->w1_points, 1, o->seed + k + 1);
        w1[k] = estimate.value;
    }
    if (status == CM_OK) {
        if (F) summarise(&r->fd, fd, R), summarise(&r->kid, kid, R);
        if (o->w1_points) summarise(&r->w1, w1, R);
        r->w1_points = o->w1_points ? (n < o->w1_points ? n : o->w1_points) : 0;
    }
    cm_free(subset), cm_free(index);
    return status;
}

/* q-quantiles of sorted[count] (nearest rank below: sorted[floor(q (count - 1))]). */
static void quantiles(double *out, const double *sorted, size_t count) {
    static const double q[CM_IMAGE_METRICS_QUANTILES] = {0.01, 0.05, 0.5};
    for (int i = 0; i < CM_IMAGE_METRICS_QUANTILES; i++)
        out[i] = sorted[(size_t)floor(q[i] * (double)(count - 1))];
}

/* Nearest training image of every sample and of the first test images. */
static cm_status report_memorisation(cm_image_report *r, const cm_image_set_view *samples,
                                     const cm_image_set_view *test,
                                     const cm_image_set_view *train, size_t D,
                                     const cm_image_metrics_options *o) {
    size_t n = samples->count, T = o->memorisation_train < train->count ? o->memorisation_train
                                                                         : train->count;
    size_t Q = o->memorisation_test < test->count ? o->memorisation_test : test->count;
    r->memorisation_train = T, r->memorisation_test = Q;
    if (T == 0 || Q == 0) return CM_OK;
    double *sample_distance = cm_malloc(n + Q, sizeof(double));
    if (!sample_distance) return cm_error_set(CM_ERR_NOMEM, "image report: %zu distances", n + Q);
    double *test_distance = sample_distance + n;
    cm_status status = cm_nearest_distances(sample_distance, NULL, samples->pixels, n,
                                            train->pixels, T, D);
    if (status == CM_OK)
        status = cm_nearest_distances(test_distance, NULL, test->pixels, Q, train->pixels, T, D);
    if (status == CM_OK) {
        qsort(sample_distance, n, sizeof(double), compare_doubles);
        qsort(test_distance, Q, sizeof(double), compare_doubles);
        quantiles(r->sample_nearest, sample_distance, n);
        quantiles(r->test_nearest, test_distance, Q);
        r->copy_threshold = r->test_nearest[0];
        size_t below = 0;
        while (below < n && sample_distance[below] < r->copy_threshold) below++;
        r->copy_fraction = (double)below / (double)n;
    }
    cm_free(sample_distance);
    return status;
}

cm_status cm_image_report_compute(cm_image_report *out, const cm_image_set_view *samples,
                                  const cm_image_set_view *test, const cm_image_set_view *train,
                                  size_t D, size_t F, size_t K,
                                  const cm_image_metrics_options *options) {
    CM_TRY(check_report(samples, test, train, D, F, K, options));
    cm_image_report r = {.n = samples->count, .test_count = test->count,
                         .train_count = train->count, .pixels = D, .features = F, .classes = K};
    r.fd = r.kid = r.w1 = (cm_image_metric){NAN, NAN, NAN, NAN};
    r.copy_threshold = r.copy_fraction = NAN;
    r.histogram_tv = r.confidence = r.test_confidence = NAN;
    for (int i = 0; i < CM_IMAGE_METRICS_QUANTILES; i++) r.sample_nearest[i] = r.test_nearest[i] = NAN;
    if (K) report_classes(&r, samples, test, K);
    CM_TRY(report_distances(&r, samples, test, train, D, F, options));
    CM_TRY(report_memorisation(&r, samples, test, train, D, options));
    *out = r;
    return CM_OK;
}
