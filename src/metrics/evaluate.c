/* evaluate.c: distances of samples to a reference as given (all points of a file), each with
 * its noise floor over several repetitions (fresh draws of a law, or random splits of a file,
 * at stated sizes; median and range), an optional bootstrap interval, and the Gaussian closed
 * forms for gauss: references (see evaluate.h and docs/metrics.md). The metrics themselves live
 * in metrics.c (sliced, kernel), ot.c (exact W1, W2) and gaussian.c (closed forms); this file
 * draws and splits the reference points and wires them. It does not decide whether samples are
 * "good": it reports numbers of stated meaning.
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
/* Fork ids of the EVAL stream: a law's draws A_0 and B_0 are children 0 and 1 (as in the first
 * version, so a value and its first floor keep their values for a given seed); the bootstrap
 * resamples use child 2; repetition k of the floor (k > 0 for laws, every k for files) draws
 * from child k of child 3. */
#define BOOTSTRAP_STREAM 2
#define FLOOR_STREAM 3

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

int cm_metric_is_nonnegative(cm_metric metric) {
    return metric == CM_METRIC_W1 || metric == CM_METRIC_W2 || metric == CM_METRIC_SW1 ||
           metric == CM_METRIC_SW2 || metric == CM_METRIC_MSW1;
}

cm_evaluate_options cm_evaluate_options_default(void) {
    return (cm_evaluate_options){.metrics = CM_METRICS_DEFAULT,
                                 .n = 0,
                                 .projections = CM_EVALUATE_PROJECTIONS_DEFAULT,
                                 .seed = 0,
                                 .floor_splits = CM_EVALUATE_FLOOR_SPLITS_DEFAULT,
                                 .bootstrap = 0,
                                 .ot_max_points = CM_OT_MAX_POINTS_DEFAULT,
                                 .ot_repeats = CM_OT_REPEATS_DEFAULT,
                                 .bandwidth = 0.0};
}

/* Move `count` uniformly chosen entries of order[0..total) to its front (partial
 * Fisher-Yates): order[0..count) is then a uniform random subset, in random order. */
static void choose_front(size_t *order, size_t total, size_t count, cm_rng *rng) {
    for (size_t i = 0; i < count && i + 1 < total; i++) {
        size_t j = i + (size_t)cm_rng_below(rng, total - i);
        size_t swap = order[i];
        order[i] = order[j];
        order[j] = swap;
    }
}

/* out[i] = rows[order[i]] for i < count (rows of dim values). */
static void gather_rows(double *out, const double *rows, const size_t *order, size_t count,
                        size_t dim) {
    for (size_t i = 0; i < count; i++)
        memcpy(out + i * dim, rows + order[i] * dim, dim * sizeof(double));
}

typedef struct {
    const cm_evaluate_options *options;
    size_t dim;
    cm_ot_workspace *ot;     /* for the largest problem solved exactly (NULL when none) */
    size_t ot_rows, ot_cols; /* its capacity */
    double bandwidth;
} context;

/* metric(x, y) for x (nx points) and y (ny points). For subsampled OT, *low and *high receive
 * the t-interval of the subsample mean (else they are left alone). */
static cm_status metric_once(double *out, double *low, double *high, cm_metric metric,
                             const double *x, size_t nx, const double *y, size_t ny,
                             context *c) {
    const cm_evaluate_options *o = c->options;
    size_t d = c->dim;
    switch (metric) {
    case CM_METRIC_W1:
    case CM_METRIC_W2: {
        cm_ot_power power = metric == CM_METRIC_W1 ? CM_OT_W1 : CM_OT_W2;
        if (d == 1) return cm_metrics_wp_1d(out, x, nx, y, ny, (double)power); /* exact, any n */
        if (c->ot && nx <= c->ot_rows && ny <= c->ot_cols)
            return cm_ot_distance(out, NULL, c->ot, x, nx, y, ny, d, power, NULL, NULL);
        cm_ot_estimate e;
        CM_TRY(cm_ot_estimate_wp(&e, x, nx, y, ny, d, power, o->ot_max_points, o->ot_repeats,
                                 o->seed));
        *out = e.value;
        if (e.subsampled) *low = e.ci_low, *high = e.ci_high;
        return CM_OK;
    }
    case CM_METRIC_SW1:
        return cm_metrics_sliced_w1(out, x, nx, y, ny, d, o->projections, o->seed);
    case CM_METRIC_SW2:
        return cm_metrics_sliced_w2(out, x, nx, y, ny, d, o->projections, o->seed);
    case CM_METRIC_MSW1:
        return cm_metrics_max_sliced_w1(out, NULL, x, nx, y, ny, d, o->projections,
                                        CM_METRICS_MAX_SLICED_STEPS, o->seed);
    case CM_METRIC_MMD: return cm_metrics_mmd2(out, x, nx, y, ny, d, c->bandwidth);
    case CM_METRIC_ENERGY: return cm_metrics_energy(out, x, nx, y, ny, d);
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

/* Median, min and max of x[0..count) (sorted in place). */
static void summarise(double *median, double *low, double *high, double *x, size_t count) {
    qsort(x, count, sizeof(double), compare_doubles);
    *median = quantile_sorted(x, count, 0.5);
    *low = x[0];
    *high = x[count - 1];
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

/* Everything one evaluation holds: the sizes, the value's reference points and the buffers of
 * the floor's repetitions (allocated once by evaluation_alloc). */
typedef struct {
    size_t n, m, h, hb;      /* samples used, value's reference points, |A_k|, |B_k| */
    int is_file;
    const double *reference; /* the value's reference points: the file's rows or draw A_0 */
    double *a0;              /* law: draw A_0 (n x dim) */
    double *a, *b, *s;       /* A_k, B_k, and (file) S_k */
    size_t *order, *sample_order; /* file: row permutation (m), sample subset (n) */
    double *repeats;         /* K x CM_METRIC_COUNT floor values, then as many matched ones */
    double *fits;            /* K Gaussian-fit floors (W2) */
} evaluation;

static cm_status evaluation_alloc(evaluation *e, size_t dim, size_t splits) {
    size_t points = e->is_file ? e->m + e->h : 3 * e->n; /* file: A|B permuted, S; law: A0,A,B */
    e->a0 = cm_malloc(points * dim + (2 * CM_METRIC_COUNT + 1) * splits, sizeof(double));
    e->order = cm_malloc(e->is_file ? e->m + e->n : 1, sizeof(size_t));
    if (!e->a0 || !e->order)
        return cm_error_set(CM_ERR_NOMEM, "evaluation buffers (%zu points of dimension %zu)",
                            points, dim);
    if (e->is_file) {
        e->a = e->a0;
        e->b = e->a + e->h * dim;
        e->s = e->b + e->hb * dim;
        e->sample_order = e->order + e->m;
        e->reference = NULL; /* set by the caller: the file's rows */
    } else {
        e->a = e->a0 + e->n * dim;
        e->b = e->a + e->n * dim;
        e->s = NULL;
        e->reference = e->a0;
    }
    e->repeats = e->a0 + points * dim;
    e->fits = e->repeats + 2 * CM_METRIC_COUNT * splits;
    return CM_OK;
}

/* Repetition k of the floor: law: A_k, B_k fresh draws of n points (k = 0: children 0 and 1
 * of the EVAL stream, A_0 being the value's draw; k > 0: children 0 and 1 of child k of
 * FLOOR_STREAM); file: a seeded split of the rows into A_k (h) and B_k (m - h), and S_k, h of
 * the samples. */
static void prepare_repetition(evaluation *e, const cm_data *reference, const double *samples,
                               size_t dim, size_t k, cm_rng *stream) {
    cm_rng floor_stream, split, draw_a, draw_b;
    cm_rng_fork(&floor_stream, stream, FLOOR_STREAM);
    cm_rng_fork(&split, &floor_stream, k);
    if (!e->is_file) {
        cm_rng *parent = k == 0 ? stream : &split;
        cm_rng_fork(&draw_a, parent, 0);
        cm_rng_fork(&draw_b, parent, 1);
        cm_data_sample(reference, &draw_a, e->n, e->a);
        cm_data_sample(reference, &draw_b, e->n, e->b);
        return;
    }
    for (size_t i = 0; i < e->m; i++) e->order[i] = i;
    choose_front(e->order, e->m, e->h, &split);
    gather_rows(e->a, e->reference, e->order, e->m, dim); /* A_k then B_k: contiguous */
    for (size_t i = 0; i < e->n; i++) e->sample_order[i] = i;
    choose_front(e->sample_order, e->n, e->h, &split);
    gather_rows(e->s, samples, e->sample_order, e->h, dim);
}

/* The K repetitions of every requested metric: floor_k and (file) matched_k, then their
 * median and range. */
static cm_status floors(cm_evaluation_report *r, evaluation *e, const double *samples,
                        const cm_data *reference, context *c, cm_rng *stream) {
    size_t K = c->options->floor_splits, dim = c->dim;
    double *floor_values = e->repeats, *matched_values = e->repeats + CM_METRIC_COUNT * K;
    cm_gmm_view law;
    if (r->gaussian) CM_TRY(cm_data_gmm(&law, reference));
    for (size_t k = 0; k < K; k++) {
        prepare_repetition(e, reference, samples, dim, k, stream);
        for (int q = 0; q < CM_METRIC_COUNT; q++) {
            if (!r->metric[q].computed) continue;
            double ignored_low, ignored_high;
            if (e->is_file) {
                CM_TRY(metric_once(&floor_values[q * K + k], &ignored_low, &ignored_high,
                                   (cm_metric)q, e->a, e->h, e->b, e->hb, c));
                CM_TRY(metric_once(&matched_values[q * K + k], &ignored_low, &ignored_high,
                                   (cm_metric)q, e->s, e->h, e->b, e->hb, c));
            } else {
                CM_TRY(metric_once(&floor_values[q * K + k], &ignored_low, &ignored_high,
                                   (cm_metric)q, e->b, e->n, e->a, e->n, c));
            }
        }
        if (r->gaussian) {
            double w1;
            CM_TRY(gaussian_fit_distances(&e->fits[k], &w1, e->a, e->n, dim, &law));
            if (k == 0) r->gaussian_fit_w1_floor = w1;
        }
    }
    for (int q = 0; q < CM_METRIC_COUNT; q++) {
        cm_metric_value *v = &r->metric[q];
        if (!v->computed) continue;
        summarise(&v->floor, &v->floor_low, &v->floor_high, floor_values + q * K, K);
        if (e->is_file)
            summarise(&v->matched, &v->matched_low, &v->matched_high, matched_values + q * K, K);
        double compared = e->is_file ? v->matched : v->value;
        if (cm_metric_is_nonnegative((cm_metric)q) && v->floor > 0.0)
            v->ratio = compared / v->floor;
    }
    if (r->gaussian)
        summarise(&r->gaussian_fit_w2_floor, &r->gaussian_fit_w2_floor_low,
                  &r->gaussian_fit_w2_floor_high, e->fits, K);
    return CM_OK;
}

/* Bootstrap intervals of every requested value: resample the samples (n) and the value's
 * reference points (m) with replacement. */
static cm_status bootstrap(cm_evaluation_report *report, const double *samples,
                           const evaluation *e, context *c, cm_rng *stream) {
    size_t n = e->n, m = e->m, d = c->dim, count = c->options->bootstrap;
    double *xs = cm_malloc((n + m) * d + count * CM_METRIC_COUNT, sizeof(double));
    if (!xs) return cm_error_set(CM_ERR_NOMEM, "bootstrap of %zu resamples", count);
    double *ys = xs + n * d, *values = ys + m * d;
    cm_rng resample;
    cm_status status = CM_OK;
    for (size_t b = 0; b < count && status == CM_OK; b++) {
        cm_rng_fork(&resample, stream, b);
        for (size_t i = 0; i < n; i++)
            memcpy(xs + i * d, samples + (size_t)cm_rng_below(&resample, n) * d,
                   d * sizeof(double));
        for (size_t i = 0; i < m; i++)
            memcpy(ys + i * d, e->reference + (size_t)cm_rng_below(&resample, m) * d,
                   d * sizeof(double));
        for (int k = 0; k < CM_METRIC_COUNT && status == CM_OK; k++) {
            if (!report->metric[k].computed) continue;
            double low, high;
            status = metric_once(&values[k * count + b], &low, &high, (cm_metric)k, xs, n, ys,
                                 m, c);
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
    if (o->floor_splits == 0 || o->floor_splits > CM_EVALUATE_FLOOR_SPLITS_MAX)
        return cm_error_set(CM_ERR_INVALID, "evaluate: %zu floor repetitions (1..%d)",
                            o->floor_splits, CM_EVALUATE_FLOOR_SPLITS_MAX);
    if (o->n > n)
        return cm_error_set(CM_ERR_INVALID, "%zu points asked for, the samples have %zu", o->n, n);
    if (o->ot_max_points < 2 || o->ot_repeats == 0)
        return cm_error_set(CM_ERR_INVALID, "evaluate: OT limit %zu (>= 2), repeats %zu (>= 1)",
                            o->ot_max_points, o->ot_repeats);
    if (o->bandwidth < 0.0 || !isfinite(o->bandwidth))
        return cm_error_set(CM_ERR_INVALID, "evaluate: bandwidth %g", o->bandwidth);
    if (cm_data_values(reference) && cm_data_rows(reference) < 2)
        return cm_error_set(CM_ERR_INVALID, "reference %s has %zu row: a noise floor needs two "
                            "disjoint parts", cm_data_describe(reference),
                            cm_data_rows(reference));
    for (size_t i = 0; i < n * dim; i++)
        if (!isfinite(samples[i]))
            return cm_error_set(CM_ERR_NONFINITE, "sample %zu, coordinate %zu is not finite",
                                i / dim, i % dim);
    return CM_OK;
}

/* The values: metric(samples, reference points) for every requested metric, the MMD
 * bandwidth first (median heuristic on the same two sets). */
static cm_status values(cm_evaluation_report *r, const double *samples, const evaluation *e,
                        context *c) {
    const cm_evaluate_options *o = c->options;
    if (o->metrics & CM_METRIC_BIT(CM_METRIC_MMD)) {
        if (o->bandwidth > 0.0) c->bandwidth = o->bandwidth;
        else CM_TRY(cm_metrics_median_distance(&c->bandwidth, samples, e->n, e->reference, e->m,
                                               c->dim));
        if (!(c->bandwidth > 0.0))
            return cm_error_set(CM_ERR_INVALID, "MMD: the median distance is 0 (constant "
                                "samples); give a bandwidth");
        r->bandwidth = c->bandwidth;
    }
    for (int k = 0; k < CM_METRIC_COUNT; k++) {
        if (!(o->metrics & CM_METRIC_BIT(k))) continue;
        cm_metric_value *v = &r->metric[k];
        v->computed = 1;
        CM_TRY(metric_once(&v->value, &v->value_low, &v->value_high, (cm_metric)k, samples, e->n,
                           e->reference, e->m, c));
        if ((k == CM_METRIC_W1 || k == CM_METRIC_W2) && c->dim > 1 &&
            (e->n > o->ot_max_points || e->m > o->ot_max_points)) {
            v->subsampled = 1;
            v->subsample_points = o->ot_max_points;
            v->repeats = o->ot_repeats;
        }
    }
    return CM_OK;
}

/* The exact-OT workspace, sized for the largest W1/W2 problem solved exactly (dim > 1, both
 * sides at most ot_max_points): the value (n x m) or else the repetitions (h x (m - h)). */
static cm_status ot_workspace(context *c, const evaluation *e) {
    const cm_evaluate_options *o = c->options;
    unsigned exact = CM_METRIC_BIT(CM_METRIC_W1) | CM_METRIC_BIT(CM_METRIC_W2);
    if (!(o->metrics & exact) || c->dim == 1) return CM_OK;
    size_t rows = e->n, cols = e->m;
    if (rows > o->ot_max_points || cols > o->ot_max_points) rows = e->h, cols = e->hb;
    if (rows > o->ot_max_points || cols > o->ot_max_points) return CM_OK;
    c->ot_rows = rows;
    c->ot_cols = cols;
    return cm_ot_workspace_alloc(&c->ot, rows, cols);
}

static cm_evaluation_report empty_report(const evaluation *e, size_t dim,
                                         const cm_evaluate_options *o) {
    cm_evaluation_report r = {.n = e->n, .dim = dim, .projections = o->projections,
                              .bootstrap = o->bootstrap, .reference_is_file = e->is_file,
                              .reference_points = e->m, .floor_splits = o->floor_splits,
                              .floor_points_a = e->h, .floor_points_b = e->hb,
                              .bandwidth = NAN, .gaussian_fit_w2 = NAN,
                              .gaussian_fit_w2_floor = NAN, .gaussian_fit_w2_floor_low = NAN,
                              .gaussian_fit_w2_floor_high = NAN, .gaussian_fit_w1 = NAN,
                              .gaussian_fit_w1_floor = NAN};
    for (int k = 0; k < CM_METRIC_COUNT; k++) {
        cm_metric_value *v = &r.metric[k];
        v->value = v->floor = v->floor_low = v->floor_high = NAN;
        v->matched = v->matched_low = v->matched_high = v->ratio = NAN;
        v->ci_low = v->ci_high = v->value_low = v->value_high = NAN;
    }
    return r;
}

static cm_status evaluate_all(cm_evaluation_report *r, const double *samples, evaluation *e,
                              const cm_data *reference, context *c, cm_rng *stream) {
    if (!e->is_file) {
        cm_rng draw_a;
        cm_rng_fork(&draw_a, stream, 0);
        cm_data_sample(reference, &draw_a, e->n, e->a0);
    }
    CM_TRY(ot_workspace(c, e));
    CM_TRY(values(r, samples, e, c));
    if (cm_data_kind_of(reference) == CM_DATA_GAUSS) {
        cm_gmm_view law;
        CM_TRY(cm_data_gmm(&law, reference));
        r->gaussian = 1;
        CM_TRY(gaussian_fit_distances(&r->gaussian_fit_w2, &r->gaussian_fit_w1, samples, e->n,
                                      c->dim, &law));
    }
    CM_TRY(floors(r, e, samples, reference, c, stream));
    if (c->options->bootstrap > 0) {
        cm_rng resamples;
        cm_rng_fork(&resamples, stream, BOOTSTRAP_STREAM);
        CM_TRY(bootstrap(r, samples, e, c, &resamples));
    }
    return CM_OK;
}

cm_status cm_evaluate_report(cm_evaluation_report *out, const double *samples, size_t n,
                             size_t dim, const cm_data *reference,
                             const cm_evaluate_options *options) {
    if (!out) return cm_error_set(CM_ERR_INVALID, "evaluate: out is NULL");
    CM_TRY(check_request(samples, n, dim, reference, options));
    evaluation e = {.n = options->n ? options->n : n,
                    .is_file = cm_data_values(reference) != NULL};
    e.m = e.is_file ? cm_data_rows(reference) : e.n;
    e.h = e.is_file ? (e.n < e.m / 2 ? e.n : e.m / 2) : e.n;
    e.hb = e.is_file ? e.m - e.h : e.n;
    cm_evaluation_report r = empty_report(&e, dim, options);
    context c = {.options = options, .dim = dim, .ot = NULL, .bandwidth = NAN};
    cm_status status = evaluation_alloc(&e, dim, options->floor_splits);
    if (status == CM_OK) {
        if (e.is_file) e.reference = cm_data_values(reference);
        cm_rng root, stream;
        cm_rng_init(&root, options->seed);
        cm_rng_fork(&stream, &root, CM_STREAM_EVAL);
        status = evaluate_all(&r, samples, &e, reference, &c, &stream);
    }
    cm_ot_workspace_free(c.ot);
    cm_free(e.a0);
    cm_free(e.order);
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
