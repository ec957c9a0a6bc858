/* conv_set.c: the convolutions of one network as a set (conv.h): one oneDNN engine and stream,
 * one plan per convolution, one scratchpad that they share (they run one at a time on the
 * calling thread), and the weights each plan was loaded from. A forward needs every conv's
 * weights in its primitives' own format (reorders of all the weights: about 0.9 ms a call for
 * the U-Net); the set reorders a conv's weights only when they differ, bit for bit, from the
 * copy it holds, so repeated forwards on the same weights (a trainer's teacher and student, a
 * sampler's chunks) reorder once. Comparing costs one read of the weights (about 0.1 ms);
 * keying on the contents rather than on a pointer or a counter stays right however the caller
 * changes its weights, in place or not.
 */
#include <string.h>

#include "cm/alloc.h"
#include "nn/conv.h"

struct cm_conv_set {
    cm_onednn onednn;
    size_t count;
    cm_conv_plan **plans;     /* count plans */
    size_t *weight_counts;    /* OC C K K of each conv */
    size_t *loaded_at;        /* where conv i's copy starts in `loaded` */
    int *valid;               /* plan i holds loaded[loaded_at[i] ...] */
    float *loaded;            /* the weights the plans hold */
    void *scratchpad;
};

void cm_conv_set_free(cm_conv_set *set) {
    if (!set) return;
    for (size_t i = 0; set->plans && i < set->count; i++) cm_conv_plan_free(set->plans[i]);
    cm_onednn_destroy(&set->onednn);
    cm_free(set->plans), cm_free(set->weight_counts), cm_free(set->loaded_at);
    cm_free(set->valid), cm_free(set->loaded), cm_free(set->scratchpad);
    cm_free(set);
}

/* The plans (set->count of them once made) and the largest scratchpad they need. */
static cm_status make_plans(cm_conv_set *set, const cm_conv_shape *shapes, size_t count,
                            size_t *scratchpad) {
    *scratchpad = 1;
    for (size_t i = 0; i < count; i++) {
        const cm_conv_shape *s = &shapes[i];
        CM_TRY(cm_conv_plan_create(&set->plans[i], &set->onednn, s->height, s->width, s->channels,
                                   s->out_channels, s->kernel, s->stride));
        set->count = i + 1;
        size_t bytes = cm_conv_plan_scratchpad_bytes(set->plans[i]);
        if (bytes > *scratchpad) *scratchpad = bytes;
    }
    return CM_OK;
}

cm_status cm_conv_set_create(cm_conv_set **out, const cm_conv_shape *shapes, size_t count) {
    *out = NULL;
    if (count == 0) return cm_error_set(CM_ERR_INVALID, "convolution set: no convolution");
    cm_conv_set *set = cm_calloc(1, sizeof *set);
    if (!set) return cm_error_set(CM_ERR_NOMEM, "convolution set");
    set->plans = cm_calloc(count, sizeof *set->plans);
    set->weight_counts = cm_calloc(count, sizeof *set->weight_counts);
    set->loaded_at = cm_calloc(count, sizeof *set->loaded_at);
    set->valid = cm_calloc(count, sizeof *set->valid);
    cm_status status = CM_OK;
    if (!set->plans || !set->weight_counts || !set->loaded_at || !set->valid)
        status = cm_error_set(CM_ERR_NOMEM, "convolution set of %zu", count);
    if (status == CM_OK) status = cm_onednn_create(&set->onednn);
    size_t scratchpad = 1, weights = 0;
    if (status == CM_OK) status = make_plans(set, shapes, count, &scratchpad);
    for (size_t i = 0; status == CM_OK && i < count; i++) {
        const cm_conv_shape *s = &shapes[i];
        set->weight_counts[i] = (size_t)s->out_channels * s->channels * s->kernel * s->kernel;
        set->loaded_at[i] = weights, weights += set->weight_counts[i];
    }
    if (status == CM_OK && !(set->scratchpad = cm_malloc(scratchpad, 1)))
        status = cm_error_set(CM_ERR_NOMEM, "convolution scratchpad (%zu bytes)", scratchpad);
    if (status == CM_OK && !(set->loaded = cm_malloc(weights, sizeof(float))))
        status = cm_error_set(CM_ERR_NOMEM, "convolution weight copies (%zu values)", weights);
    for (size_t i = 0; status == CM_OK && i < count; i++)
        status = cm_conv_plan_bind_scratchpad(set->plans[i], set->scratchpad);
    if (status != CM_OK) {
        cm_conv_set_free(set);
        return status;
    }
    *out = set;
    return CM_OK;
}

cm_conv_plan *cm_conv_set_plan(cm_conv_set *set, size_t index) { return set->plans[index]; }

cm_status cm_conv_set_load_weights(cm_conv_set *set, size_t index, const float *weight) {
    float *copy = set->loaded + set->loaded_at[index];
    size_t bytes = set->weight_counts[index] * sizeof(float);
    if (set->valid[index] && memcmp(copy, weight, bytes) == 0) return CM_OK;
    set->valid[index] = 0; /* until the reorder succeeds */
    CM_TRY(cm_conv_plan_load_weights(set->plans[index], weight));
    memcpy(copy, weight, bytes);
    set->valid[index] = 1;
    return CM_OK;
}
