/* evaluate.c: distances of samples to a reference, each with its noise floor, an optional
 * bootstrap interval, and the Gaussian closed forms for gauss: references (see evaluate.h).
 * The metrics themselves live in metrics.c (sliced, kernel), ot.c (exact W1, W2) and
 * gaussian.c (closed forms); this file draws the reference samples and wires them.
 */
#include "cm/evaluate.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/gaussian.h"
#include "cm/metrics.h"
#include "cm/ot.h"

/* Percentile bootstrap: the central 95% of the resampled values. */
#define BOOTSTRAP_LOW 0.025
#define BOOTSTRAP_HIGH 0.975
/* Fork ids of the EVAL stream: draws A and B are children 0 and 1 (as in the first version, so
 * sliced W1 keeps its values for a given seed); the bootstrap resamples use this one. */
#define BOOTSTRAP_STREAM 2

static const char *const metric_names[CM_METRIC_COUNT] = {"w1", "w2", "sw1", "sw2",
                                                           "msw1", "mmd", "energy"};
static const char *const metric_labels[CM_METRIC_COUNT] = {
    "W1 (exact OT)", "W2 (exact OT)", "sliced W1",       "sliced W2",
    "max-sliced W1", "MMD^2 (Gauss)", "energy distance"};

const char *cm_metric_name(cm_metric metric) {
    return (unsigned)metric < CM_METRIC_COUNT ? metric_names[metric] : "unknown";
}

const char *cm_metric_label(cm_metric metric) {
    return (unsigned)metric < CM_METRIC_COUNT ? metric_labels[metric] : "unknown";
}

cm_status cm_metric_parse_list(unsigned *out, const char *list) {
    if (!out || !list) return cm_error_set(CM_ERR_INVALID, "metric list: NULL argument");
    unsigned mask = 0;
    const char *p = list;
    for (;;) {
        size_t length = strcspn(p, ",");
        int found = -1;
        for (int k = 0; k < CM_METRIC_COUNT; k++)
            if (strlen(metric_names[k]) == length && strncmp(metric_names[k], p, length) == 0)
                found = k;
        if (found < 0)
            return cm_error_set(CM_ERR_INVALID, "unknown metric '%.*s' (valid: w1, w2, sw1, sw2, "
                                "msw1, mmd, energy)", (int)length, p);
        mask |= CM_METRIC_BIT(found);
        if (p[length] == '\0') break;
        p += length + 1;
    }
    *out = mask;
    return CM_OK;
}

cm_evaluate_options cm_evaluate_options_default(void) {
    return (cm_evaluate_options){.metrics = CM_METRICS_DEFAULT,
                                 .n = 0,
                                 .projections = CM_EVALUATE_PROJECTIONS_DEFAULT,
                                 .seed = 0,
                                 .bootstrap = 0,
                                 .ot_max_points = CM_OT_MAX_POINTS_DEFAULT,
                                 .ot_repeats = CM_OT_REPEATS_DEFAULT,
                                 .bandwidth = 0.0};
}

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

typedef struct {
    const cm_evaluate_options *options;
    size_t n, dim;
    cm_ot_workspace *ot; /* n x n, when exact OT is asked for and n <= ot_max_points */
    double bandwidth;
} context;

/* metric(x, y) for two sets of c->n points. For subsampled OT, *low and *high receive the
 * t-interval of the subsample mean (else they are left alone). */
static cm_status metric_once(double *out, double *low, double *high, cm_metric metric,
                             const double *x, const double *y, context *c) {
    const cm_evaluate_options *o = c->options;
    size_t n = c->n, d = c->dim;
    switch (metric) {
    case CM_METRIC_W1:
    case CM_METRIC_W2: {
        cm_ot_power power = metric == CM_METRIC_W1 ? CM_OT_W1 : CM_OT_W2;
        if (d == 1) return cm_metrics_wp_1d(out, x, n, y, n, (double)power); /* exact, any n */
        if (c->ot) return cm_ot_distance(out, NULL, c->ot, x, n, y, n, d, power, NULL, NULL);
        cm_ot_estimate e;
        CM_TRY(cm_ot_estimate_wp(&e, x, n, y, n, d, power, o->ot_max_points, o->ot_repeats,
                                 o->seed));
        *out = e.value;
        *low = e.ci_low;
        *high = e.ci_high;
        return CM_OK;
    }
    case CM_METRIC_SW1: return cm_metrics_sliced_w1(out, x, n, y, n, d, o->projections, o->seed);
    case CM_METRIC_SW2: return cm_metrics_sliced_w2(out, x, n, y, n, d, o->projections, o->seed);
    case CM_METRIC_MSW1:
        return cm_metrics_max_sliced_w1(out, NULL, x, n, y, n, d, o->projections,
                                        CM_METRICS_MAX_SLICED_STEPS, o->seed);
    case CM_METRIC_MMD: return cm_metrics_mmd2(out, x, n, y, n, d, c->bandwidth);
    case CM_METRIC_ENERGY: return cm_metrics_energy(out, x, n, y, n, d);
    case CM_METRIC_COUNT: break;
    }
    return cm_error_set(CM_ERR_INVALID, "unknown metric %d", (int)metric);
}

static int compare_doubles(const void *left, const void *right) {
    double a = *(const double *)left, b = *(const double *)right;
    return (a > b) - (a < b);
}

/* Quantile q of sorted x[0..count) with linear interpolation between order statistics. */
static double quantile_sorted(const double *x, size_t count, double q) {
    double position = q * (double)(count - 1);
    size_t below = (size_t)position;
    if (below + 1 >= count) return x[count - 1];
    double fraction = position - (double)below;
    return x[below] + fraction * (x[below + 1] - x[below]);
}

/* Bootstrap intervals of every requested metric: resample samples and A with replacement. */
static cm_status bootstrap(cm_evaluation_report *report, const double *samples, const double *a,
                           context *c, cm_rng *stream) {
    size_t n = c->n, d = c->dim, count = c->options->bootstrap;
    double *xs = cm_malloc(2 * n * d + count * CM_METRIC_COUNT, sizeof(double));
    if (!xs) return cm_error_set(CM_ERR_NOMEM, "bootstrap of %zu resamples", count);
    double *ys = xs + n * d, *values = ys + n * d;
    cm_rng resample;
    cm_status status = CM_OK;
    for (size_t b = 0; b < count && status == CM_OK; b++) {
        cm_rng_fork(&resample, stream, b);
        for (size_t i = 0; i < n; i++)
            memcpy(xs + i * d, samples + (size_t)cm_rng_below(&resample, n) * d, d * sizeof(double));
        for (size_t i = 0; i < n; i++)
            memcpy(ys + i * d, a + (size_t)cm_rng_below(&resample, n) * d, d * sizeof(double));
        for (int k = 0; k < CM_METRIC_COUNT && status == CM_OK; k++) {
            if (!report->metric[k].computed) continue;
            double low, high;
            status = metric_once(&values[k * count + b], &low, &high, (cm_metric)k, xs, ys, c);
        }
    }
    for (int k = 0; k < CM_METRIC_COUNT && status == CM_OK; k++) {
        if (!report->metric[k].computed) continue;
        qsort(values + k * count, count, sizeof(double), compare_doubles);
        report->metric[k].ci_low = quantile_sorted(values + k * count, count, BOOTSTRAP_LOW);
        report->metric[k].ci_high = quantile_sorted(values + k * count, count, BOOTSTRAP_HIGH);
    }
    cm_free(xs);
    return status;
}

/* For a gauss: reference, W2 (and W1 in 1-D) between the Gaussian fitted to x and the law. */
static cm_status gaussian_fit_distances(double *w2, double *w1, const double *x, size_t n,
                                        size_t d, const cm_gmm_view *law) {
    *w2 = *w1 = NAN;
    if (n < 2) return CM_OK;
    double *mean = cm_malloc(2 * d * d + d, sizeof(double));
    if (!mean) return cm_error_set(CM_ERR_NOMEM, "Gaussian fit in dimension %zu", d);
    double *cov = mean + d, *law_cov = cov + d * d;
    double variance = law->stds[0] * law->stds[0]; /* per coordinate when law->variances */
    memset(law_cov, 0, d * d * sizeof(double));
    for (size_t k = 0; k < d; k++)
        law_cov[k * d + k] = law->variances ? law->variances[k] : variance;
    cm_status status = cm_gaussian_fit(mean, cov, x, n, d);
    if (status == CM_OK) status = cm_gaussian_w2(w2, mean, cov, law->means, law_cov, d);
    if (status == CM_OK && d == 1)
        status = cm_gaussian_w1_1d(w1, mean[0], sqrt(cov[0]), law->means[0], sqrt(law_cov[0]));
    cm_free(mean);
    return status;
}

static cm_status check_request(const double *samples, size_t n, size_t dim,
                               const cm_data *reference, const cm_evaluate_options *o) {
    if (!samples || !reference || !o) return cm_error_set(CM_ERR_INVALID, "evaluate: NULL argument");
    if (n == 0 || dim == 0) return cm_error_set(CM_ERR_INVALID, "no samples to evaluate");
    if (dim != cm_data_dim(reference))
        return cm_error_set(CM_ERR_DIMENSION, "samples have dimension %zu, the reference %s has %zu",
                            dim, cm_data_describe(reference), cm_data_dim(reference));
    if (o->metrics == 0 || o->metrics >= CM_METRIC_BIT(CM_METRIC_COUNT))
        return cm_error_set(CM_ERR_INVALID, "evaluate: metric mask %#x", o->metrics);
    if (o->projections == 0) return cm_error_set(CM_ERR_INVALID, "evaluate: 0 projections");
    if (o->n > n)
        return cm_error_set(CM_ERR_INVALID, "%zu points asked for, the samples have %zu", o->n, n);
    if (o->ot_max_points < 2 || o->ot_repeats == 0)
        return cm_error_set(CM_ERR_INVALID, "evaluate: OT limit %zu (>= 2), repeats %zu (>= 1)",
                            o->ot_max_points, o->ot_repeats);
    if (o->bandwidth < 0.0 || !isfinite(o->bandwidth))
        return cm_error_set(CM_ERR_INVALID, "evaluate: bandwidth %g", o->bandwidth);
    for (size_t i = 0; i < n * dim; i++)
        if (!isfinite(samples[i]))
            return cm_error_set(CM_ERR_NONFINITE, "sample %zu, coordinate %zu is not finite",
                                i / dim, i % dim);
    return CM_OK;
}

static cm_status evaluate_all(cm_evaluation_report *r, const double *samples, const double *a,
                              const double *b, context *c, cm_rng *stream,
                              const cm_data *reference) {
    const cm_evaluate_options *o = c->options;
    if (o->metrics & CM_METRIC_BIT(CM_METRIC_MMD)) {
        if (o->bandwidth > 0.0) c->bandwidth = o->bandwidth;
        else CM_TRY(cm_metrics_median_distance(&c->bandwidth, samples, c->n, a, c->n, c->dim));
        if (!(c->bandwidth > 0.0))
            return cm_error_set(CM_ERR_INVALID, "MMD: the median distance is 0 (constant "
                                "samples); give a bandwidth");
        r->bandwidth = c->bandwidth;
    }
    for (int k = 0; k < CM_METRIC_COUNT; k++) {
        if (!(o->metrics & CM_METRIC_BIT(k))) continue;
        cm_metric_value *v = &r->metric[k];
        v->computed = 1;
        v->value_low = v->value_high = v->floor_low = v->floor_high = NAN;
        CM_TRY(metric_once(&v->value, &v->value_low, &v->value_high, (cm_metric)k, samples, a, c));
        CM_TRY(metric_once(&v->floor, &v->floor_low, &v->floor_high, (cm_metric)k, b, a, c));
        if ((k == CM_METRIC_W1 || k == CM_METRIC_W2) && c->dim > 1 && c->n > o->ot_max_points) {
            v->subsampled = 1;
            v->subsample_points = o->ot_max_points;
            v->repeats = o->ot_repeats;
        }
    }
    if (cm_data_kind_of(reference) == CM_DATA_GAUSS) {
        cm_gmm_view law;
        CM_TRY(cm_data_gmm(&law, reference));
        r->gaussian = 1;
        CM_TRY(gaussian_fit_distances(&r->gaussian_fit_w2, &r->gaussian_fit_w1, samples, c->n,
                                      c->dim, &law));
        CM_TRY(gaussian_fit_distances(&r->gaussian_fit_w2_floor, &r->gaussian_fit_w1_floor, a,
                                      c->n, c->dim, &law));
    }
    if (o->bootstrap > 0) {
        cm_rng resamples;
        cm_rng_fork(&resamples, stream, BOOTSTRAP_STREAM);
        CM_TRY(bootstrap(r, samples, a, c, &resamples));
    }
    return CM_OK;
}

cm_status cm_evaluate_report(cm_evaluation_report *out, const double *samples, size_t n,
                             size_t dim, const cm_data *reference,
                             const cm_evaluate_options *options) {
    if (!out) return cm_error_set(CM_ERR_INVALID, "evaluate: out is NULL");
    CM_TRY(check_request(samples, n, dim, reference, options));
    size_t used = options->n ? options->n : n;
    if (cm_data_values(reference)) {
        size_t half = cm_data_rows(reference) / 2;
        if (half == 0)
            return cm_error_set(CM_ERR_INVALID, "reference %s has fewer than 2 rows",
                                cm_data_describe(reference));
        if (half < used) used = half;
    }
    cm_evaluation_report r = {.n = used, .dim = dim, .projections = options->projections,
                              .bootstrap = options->bootstrap, .bandwidth = NAN,
                              .gaussian_fit_w2 = NAN, .gaussian_fit_w2_floor = NAN,
                              .gaussian_fit_w1 = NAN, .gaussian_fit_w1_floor = NAN};
    for (int k = 0; k < CM_METRIC_COUNT; k++) {
        r.metric[k].value = r.metric[k].floor = NAN;
        r.metric[k].ci_low = r.metric[k].ci_high = NAN;
    }
    context c = {.options = options, .n = used, .dim = dim, .ot = NULL, .bandwidth = NAN};
    double *a = cm_malloc(2 * used * dim, sizeof(double));
    if (!a) return cm_error_set(CM_ERR_NOMEM, "reference draws (%zu x %zu)", used, dim);
    double *b = a + used * dim;
    cm_rng root, stream, draw_a, draw_b;
    cm_rng_init(&root, options->seed);
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
    unsigned exact = CM_METRIC_BIT(CM_METRIC_W1) | CM_METRIC_BIT(CM_METRIC_W2);
    if (status == CM_OK && (options->metrics & exact) && dim > 1 && used <= options->ot_max_points)
        status = cm_ot_workspace_alloc(&c.ot, used, used);
    if (status == CM_OK) status = evaluate_all(&r, samples, a, b, &c, &stream, reference);
    cm_ot_workspace_free(c.ot);
    cm_free(a);
    if (status == CM_OK) *out = r;
    return status;
}

cm_status cm_evaluate(cm_evaluation *out, const double *samples, size_t n, size_t dim,
                      const cm_data *reference, size_t projections, uint64_t seed) {
    if (!out) return cm_error_set(CM_ERR_INVALID, "evaluate: out is NULL");
    cm_evaluate_options o = cm_evaluate_options_default();
    o.metrics = CM_METRIC_BIT(CM_METRIC_SW1) | (dim == 1 ? CM_METRIC_BIT(CM_METRIC_W1) : 0u);
    o.projections = projections;
    o.seed = seed;
    cm_evaluation_report r;
    CM_TRY(cm_evaluate_report(&r, samples, n, dim, reference, &o));
    *out = (cm_evaluation){.n = r.n, .dim = r.dim, .projections = r.projections,
                           .sliced_w1 = r.metric[CM_METRIC_SW1].value,
                           .sliced_w1_floor = r.metric[CM_METRIC_SW1].floor,
                           .w1 = dim == 1 ? r.metric[CM_METRIC_W1].value : NAN,
                           .w1_floor = dim == 1 ? r.metric[CM_METRIC_W1].floor : NAN};
    return CM_OK;
}
