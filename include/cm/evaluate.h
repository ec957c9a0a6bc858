/* evaluate.h: how good are samples? Distances to a reference source, each beside its noise
 * floor: the same distance between two independent reference samples of the same size
 * (SPEC section 7: an empirical distance is biased by sampling noise, about n^(-1/d) for W1 in
 * dimension d, so a number means little without its floor).
 *
 * Reference laws (built-in sets, gauss:, gmm:) give two fresh independent draws A and B of n
 * points each (children 0 and 1 of the seed's EVAL stream). A reference file of m rows is
 * shuffled (seeded) and split into disjoint A and B of n' = min(n, floor(m / 2)) rows each; the
 * samples are then cut to their first n' rows, and n' is reported. Every metric is
 * metric(samples, A) with floor metric(B, A). With a bootstrap of B resamples, each metric also
 * gets the 2.5% and 97.5% percentiles of metric(samples*, A*) over resamples with replacement of
 * both sets. For a gauss: reference the closed form W2 between the Gaussian fitted to the
 * samples (mean, covariance) and the exact law is reported too, with the same for A as floor.
 */
#ifndef CM_EVALUATE_H
#define CM_EVALUATE_H

#include <stddef.h>
#include <stdint.h>

#include "cm/data.h"
#include "cm/status.h"

#define CM_EVALUATE_PROJECTIONS_DEFAULT 512

typedef enum {
    CM_METRIC_W1,     /* exact W1 by optimal transport (ot.h) */
    CM_METRIC_W2,     /* exact W2 by optimal transport */
    CM_METRIC_SW1,    /* sliced W1 */
    CM_METRIC_SW2,    /* sliced W2 */
    CM_METRIC_MSW1,   /* max-sliced W1 (a lower bound of its maximum) */
    CM_METRIC_MMD,    /* unbiased MMD^2, Gaussian kernel */
    CM_METRIC_ENERGY, /* energy distance (unbiased) */
    CM_METRIC_COUNT
} cm_metric;

/* Short name used by --metric and as the JSON key ("w1", "sw1", ...). */
const char *cm_metric_name(cm_metric metric);
/* Label of a table row ("W1 (exact OT)", ...). */
const char *cm_metric_label(cm_metric metric);
/* Parse a comma-separated list of names into a bit mask (bit k = metric k). */
cm_status cm_metric_parse_list(unsigned *out, const char *list);
#define CM_METRIC_BIT(metric) (1u << (metric))
#define CM_METRICS_DEFAULT (CM_METRIC_BIT(CM_METRIC_W1) | CM_METRIC_BIT(CM_METRIC_SW1))

typedef struct {
    unsigned metrics;      /* bit mask of cm_metric */
    size_t n;              /* points used from the samples; 0 = all of them */
    size_t projections;    /* directions of the sliced metrics */
    uint64_t seed;         /* reference draws, directions, subsamples, bootstrap */
    size_t bootstrap;      /* resamples of the percentile interval; 0 = none */
    size_t ot_max_points;  /* exact W1/W2 subsample above this many points (ot.h) */
    size_t ot_repeats;     /* subsamples averaged then */
    double bandwidth;      /* MMD kernel bandwidth; 0 = median heuristic on samples + A */
} cm_evaluate_options;

cm_evaluate_options cm_evaluate_options_default(void);

typedef struct {
    int computed;
    double value;          /* metric(samples, A) */
    double floor;          /* metric(B, A) */
    double ci_low, ci_high;/* bootstrap percentile interval of value (NaN without bootstrap) */
    int subsampled;        /* exact OT above ot_max_points: value and floor are subsample means */
    size_t subsample_points, repeats;
    double value_low, value_high, floor_low, floor_high; /* their 95% t-intervals */
} cm_metric_value;

typedef struct {
    size_t n, dim, projections, bootstrap;
    double bandwidth;      /* the MMD bandwidth used (NaN when MMD was not asked for) */
    cm_metric_value metric[CM_METRIC_COUNT];
    int gaussian;          /* the reference is a gauss: law: the closed forms below are set */
    double gaussian_fit_w2, gaussian_fit_w2_floor; /* W2(N(fit of samples or A), law) */
    double gaussian_fit_w1, gaussian_fit_w1_floor; /* the same in W1 when dim == 1, else NaN */
} cm_evaluation_report;

/* samples: n x dim, finite. Allocates its own workspaces. */
cm_status cm_evaluate_report(cm_evaluation_report *out, const double *samples, size_t n,
                             size_t dim, const cm_data *reference,
                             const cm_evaluate_options *options);

/* The first form of the training issue, kept for its callers: sliced W1 (and exact W1 when
 * dim == 1) with their floors. */
typedef struct {
    size_t n;              /* points used from the samples and from each reference draw */
    size_t dim;
    size_t projections;
    double sliced_w1;      /* SW1(samples, A) */
    double sliced_w1_floor;/* SW1(A, B) */
    double w1;             /* exact W1(samples, A) when dim == 1, else NaN */
    double w1_floor;       /* exact W1(A, B) when dim == 1, else NaN */
} cm_evaluation;

cm_status cm_evaluate(cm_evaluation *out, const double *samples, size_t n, size_t dim,
                      const cm_data *reference, size_t projections, uint64_t seed);

#endif
