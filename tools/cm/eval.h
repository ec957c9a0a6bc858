/* eval.h: the image report shared by `cm eval` (a --samples file of images against an image
 * --ref) and `cm classifier metrics` (private to tools/cm). eval_images.c computes it with
 * image_metrics.h and prints it; the numbers are defined in docs/images.md. */
#ifndef CM_TOOLS_EVAL_H
#define CM_TOOLS_EVAL_H

#include <stddef.h>
#include <stdint.h>

#include "cm/data.h"
#include "cm/image_metrics.h"

/* The committed Fashion-MNIST classifier: searched in ../models beside the executable (the build
 * tree) and in ./models (eval_images_default_classifier). */
#define EVAL_CLASSIFIER_FILE "classifier-fashion-mnist.safetensors"
#define EVAL_LAW_DRAWS 10000 /* images drawn from a law (shapes:) as test or training set */

typedef struct {
    const cm_data *samples; /* images in [0, 1], stored; or rows of the classifier's pixels */
    const cm_data *test;    /* the reference images: a stored set or a law */
    const cm_data *train;   /* the floors' and memorisation's training images; it may be `test`
                             * when that is a law (drawn from another stream) */
    const char *classifier; /* a classifier file, or NULL: the report without one */
    size_t n;               /* samples used (their first n; 0: all) */
    cm_image_metrics_options options;
    int json;
} eval_images_request;

/* The committed classifier's path when it is found (see above), else NULL. */
const char *eval_images_default_classifier(void);

/* Compute and print the report (a table on stdout, or one JSON line); returns the exit code
 * (0, or that of cli_fail). `command` names the command in messages. The sources are borrowed:
 * each is opened once by the caller. */
int eval_images_run(const char *command, const eval_images_request *request);

#endif
