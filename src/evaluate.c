/* evaluate.c: sliced W1 (and exact 1-D W1) of samples against a reference, with the noise
 * floor (see evaluate.h). */
#include "cm/evaluate.h"

#include <math.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/metrics.h"

/* Two disjoint random subsets of `count` rows each of a stored data set (Fisher-Yates). */
static cm_status split_rows(double *a, double *b, const cm_data *reference, size_t count,
                            cm_rng *rng) {
    size_t m = cm_data_rows(reference), dim = cm_data_dim(reference);
    const double *rows = cm_data_values(reference);
    size_t *order = cm_malloc(m, sizeof(size_t));
    if (!order) return cm_error_set(CM_ERR_NOMEM, "reference shuffle of %zu rows", m);
    for (size_t i = 0; i < m; i++) order[i] = i;
    for (size_t i = 0; i < 2 * count; i++) {
        size_t j = i + (size_t)cm_rng_below(rng, m - i);
        size_t swap = order[i];
        order[i] = order[j];
        order[j] = swap;
    }
    for (size_t i = 0; i < count; i++) {
        memcpy(a + i * dim, rows + order[i] * dim, dim * sizeof(double));
        memcpy(b + i * dim, rows + order[count + i] * dim, dim * sizeof(double));
    }
    cm_free(order);
    return CM_OK;
}

cm_status cm_evaluate(cm_evaluation *out, const double *samples, size_t n, size_t dim,
                      const cm_data *reference, size_t projections, uint64_t seed) {
    if (n == 0) return cm_error_set(CM_ERR_INVALID, "no samples to evaluate");
    if (dim != cm_data_dim(reference))
        return cm_error_set(CM_ERR_DIMENSION, "samples have dimension %zu, the reference %s has %zu",
                            dim, cm_data_describe(reference), cm_data_dim(reference));
    for (size_t i = 0; i < n * dim; i++)
        if (!isfinite(samples[i]))
            return cm_error_set(CM_ERR_NONFINITE, "sample %zu, coordinate %zu is not finite",
                                i / dim, i % dim);
    size_t used = n;
    if (cm_data_values(reference)) {
        size_t half = cm_data_rows(reference) / 2;
        if (half == 0)
            return cm_error_set(CM_ERR_INVALID, "reference %s has fewer than 2 rows",
                                cm_data_describe(reference));
        if (half < used) used = half;
    }
    double *a = cm_malloc(2 * used * dim, sizeof(double));
    if (!a) return cm_error_set(CM_ERR_NOMEM, "reference draws (%zu x %zu)", used, dim);
    double *b = a + used * dim;
    cm_rng root, stream, draw_a, draw_b;
    cm_rng_init(&root, seed);
    cm_rng_fork(&stream, &root, CM_STREAM_EVAL);
    cm_status status = CM_OK;
    if (cm_data_values(reference)) {
        status = split_rows(a, b, reference, used, &stream);
    } else {
        cm_rng_fork(&draw_a, &stream, 0);
        cm_rng_fork(&draw_b, &stream, 1);
        cm_data_sample(reference, &draw_a, used, a);
        cm_data_sample(reference, &draw_b, used, b);
    }
    cm_evaluation e = {.n = used, .dim = dim, .projections = projections, .w1 = NAN, .w1_floor = NAN};
    /* the same seed gives the same projection directions to both distances */
    if (status == CM_OK)
        status = cm_metrics_sliced_w1(&e.sliced_w1, samples, used, a, used, dim, projections, seed);
    if (status == CM_OK)
        status = cm_metrics_sliced_w1(&e.sliced_w1_floor, b, used, a, used, dim, projections, seed);
    if (status == CM_OK && dim == 1) status = cm_metrics_w1_1d(&e.w1, samples, used, a, used);
    if (status == CM_OK && dim == 1) status = cm_metrics_w1_1d(&e.w1_floor, b, used, a, used);
    cm_free(a);
    if (status == CM_OK) *out = e;
    return status;
}
