/* classifier.h: a small convolutional image classifier, the feature extractor of the image
 * metrics (docs/images.md): no Inception network is available offline, and Frechet distances
 * are only comparable under one stated feature extractor, so cm trains its own on the
 * Fashion-MNIST training set (Xiao et al. 2017) and reports its test accuracy beside every
 * number it helps compute.
 *
 * The network (C x H x W images, H and W divisible by 4; pixels in [0, 1], mapped to [-1, 1]
 * inside):
 *   conv 3x3 C -> w1, GroupNorm, SiLU            H x W
 *   conv 3x3 stride 2 w1 -> w1, GroupNorm, SiLU  H/2 x W/2
 *   conv 3x3 w1 -> w2, GroupNorm, SiLU           H/2 x W/2
 *   conv 3x3 stride 2 w2 -> w2, GroupNorm, SiLU  H/4 x W/4
 *   flatten (channels last: index (y W/4 + x) w2 + c), Linear -> F, SiLU    the features
 *   Linear F -> K                                 the logits; softmax cross-entropy
 * with w1 = 32, w2 = 64, F = 128, 8 groups by default (468,202 parameters at 1 x 28 x 28, 10
 * classes). GroupNorm statistics are per image; the conv stages run one image at a time and the
 * Linears as products over a call's images, so an image's logits and features depend on the
 * image and on the number of images of the call, never on the other images' values
 * (cm_classifier_apply evaluates one image per call: its values are the image's alone).
 *
 * Calls are single-threaded on the caller's thread and allocate nothing; a workspace holds up to
 * `capacity` images. cm_classifier_apply runs many images as fixed row blocks on the pool
 * (parallel.h). The training loop lives in classifier_train.h (it needs data sources and Adam).
 * Float for training and inference; a double twin of the same code (reference convolutions)
 * serves gradient checks.
 */
#ifndef CM_CLASSIFIER_H
#define CM_CLASSIFIER_H

#include <stddef.h>

#include "cm/rng.h"
#include "cm/status.h"

typedef struct {
    size_t channels, height, width; /* image shape; H, W divisible by 4 */
    size_t classes;                 /* K >= 2 */
    size_t width1, width2;          /* channels of the first two and the last two convs */
    size_t features;                /* F: the penultimate layer's width */
    size_t groups;                  /* GroupNorm groups; w1 and w2 divisible */
} cm_classifier_config;

/* w1 = 32, w2 = 64, F = 128, 8 groups. */
cm_classifier_config cm_classifier_config_default(size_t channels, size_t height, size_t width,
                                                  size_t classes);

typedef struct cm_classifier cm_classifier; /* the configuration, the layout and the weights */

/* A classifier with every weight 0 (cm_classifier_init draws them). CM_ERR_INVALID for a bad
 * configuration, with the reason. */
cm_status cm_classifier_create(cm_classifier **out, const cm_classifier_config *config);
void cm_classifier_free(cm_classifier *classifier);
const cm_classifier_config *cm_classifier_config_of(const cm_classifier *classifier);
size_t cm_classifier_param_count(const cm_classifier *classifier);
/* The flat weight vector (owned by the classifier), tensors in the order of the names below. */
float *cm_classifier_params(cm_classifier *classifier);
const float *cm_classifier_params_const(const cm_classifier *classifier);
/* PyTorch's defaults, tensor by tensor from rng: conv and Linear weights and biases
 * U(-1/sqrt(fan_in), 1/sqrt(fan_in)), GroupNorm weights 1 and biases 0. */
void cm_classifier_init(cm_classifier *classifier, cm_rng *rng);

/* Named tensors ("classifier.conv1.weight" [w1, C, 3, 3], ..., "classifier.linear2.bias" [K]). */
#define CM_CLASSIFIER_TENSORS 20
typedef struct {
    const char *name;
    size_t offset, count, rank, shape[4];
} cm_classifier_tensor;
cm_classifier_tensor cm_classifier_tensor_at(const cm_classifier *classifier, size_t index);

/* A model file (safetensors, readable by Python's safetensors): the tensors and, in
 * __metadata__, "format": "cm-classifier-1", the configuration (keys channels, height, width,
 * classes, width1, width2, features, groups) and any extra string pairs given (keys not
 * starting with "__" and not those). */
cm_status cm_classifier_save(const cm_classifier *classifier, const char *path,
                             const char *const *keys, const char *const *values, size_t count);
/* Read a file written by cm_classifier_save (CM_ERR_FORMAT with a detail when it is not one). */
cm_status cm_classifier_load(cm_classifier **out, const char *path);
/* A metadata value of the file `path` was loaded from, or NULL. Owned by the classifier. */
const char *cm_classifier_metadata(const cm_classifier *classifier, const char *key);

/* ---- evaluation and training passes (float) */

typedef struct cm_classifier_workspace cm_classifier_workspace;
cm_status cm_classifier_workspace_alloc(cm_classifier_workspace **out,
                                        const cm_classifier *classifier, size_t capacity);
void cm_classifier_workspace_free(cm_classifier_workspace *workspace);

/* logits[rows, K] and features[rows, F] (either may be NULL) of images[rows, C H W] (pixels in
 * [0, 1], NCHW rows), 1 <= rows <= capacity; keeps what the backward needs. */
cm_status cm_classifier_forward(float *logits, float *features, const cm_classifier *classifier,
                                cm_classifier_workspace *workspace, const float *images,
                                size_t rows);
/* The parameter gradient of sum(logits * dlogits) over the rows of the last forward, written
 * into dparams[P] (OVERWRITTEN). */
cm_status cm_classifier_backward(float *dparams, const cm_classifier *classifier,
                                 cm_classifier_workspace *workspace, const float *dlogits,
                                 size_t rows);
/* Softmax cross-entropy: returns sum over rows of -log softmax(logits_r)[labels_r] (in double);
 * when dlogits is not NULL it receives scale (softmax(logits) - onehot(labels)) [rows, K].
 * probabilities[rows, K] (may be NULL) receives the softmax. A label >= K gives NaN. */
double cm_classifier_cross_entropy(float *dlogits, float *probabilities, const float *logits,
                                   const size_t *labels, size_t rows, size_t classes,
                                   double scale);

/* Softmax probabilities[n, K] and features[n, F] (either may be NULL) of n images [n, C H W]
 * given in double, pixels in [0, 1]: chunks of images split into two row blocks on the pool,
 * one image per forward call, so an image's values are the same bits whatever n, its place
 * and the thread count. Allocates its workspaces. */
cm_status cm_classifier_apply(double *probabilities, double *features,
                              const cm_classifier *classifier, const double *images, size_t n);

/* ---- the double twin, for gradient checks (reference convolutions; slow) */

typedef struct cm_classifier_workspace_f64 cm_classifier_workspace_f64;
cm_status cm_classifier_workspace_alloc_f64(cm_classifier_workspace_f64 **out,
                                            const cm_classifier *classifier, size_t capacity);
void cm_classifier_workspace_free_f64(cm_classifier_workspace_f64 *workspace);
cm_status cm_classifier_forward_f64(double *logits, double *features, const double *params,
                                    const cm_classifier *classifier,
                                    cm_classifier_workspace_f64 *workspace, const double *images,
                                    size_t rows);
cm_status cm_classifier_backward_f64(double *dparams, const double *params,
                                     const cm_classifier *classifier,
                                     cm_classifier_workspace_f64 *workspace,
                                     const double *dlogits, size_t rows);

#endif
