/* evaluate.h: how good are samples? Distances to a reference, each beside its noise floor
 * (the same distance between two independent samples of the reference's own law at the same
 * sizes: an empirical distance is biased by sampling noise, about n^(-1/d) for W1 in dimension
 * d, so a number means little without its floor; docs/metrics.md).
 *
 * The value is the distance of the inputs as given. Samples: their first n rows (options.n,
 * default all). A reference FILE of m rows: all of them, so `value` is the exact W1 (W2, ...)
 * between the two point sets. A reference LAW (built-in set, gauss:, gmm:): a fresh draw A_0
 * of n points (child 0 of the seed's EVAL stream), so value and floor have the same sizes.
 *
 * The floor is a separate estimate over K = options.floor_splits independent repetitions,
 * reported as the median and the range [min, max] (one split moves it a lot on multimodal data):
 *   law:  floor_k = metric(B_k, A_k), two fresh draws of n points each (k = 0 uses children 0
 *         and 1 of the EVAL stream, so K = 1 reproduces the first version);
 *   file: the m rows are shuffled into disjoint A_k (h = min(n, floor(m/2)) rows) and B_k (the
 *         other m - h rows); floor_k = metric(A_k, B_k), and, at exactly those sizes,
 *         matched_k = metric(S_k, B_k) with S_k = h samples drawn without replacement: matched
 *         against floor is the like-with-like comparison (value itself is at sizes n x m).
 * The ratio (value or matched median) / floor median is defined for the distances w1, w2,
 * sw1, sw2, msw1 only: MMD^2 and the energy distance are unbiased estimates that can be
 * negative, so their ratio means nothing. With a bootstrap of B resamples, each metric also
 * gets the 2.5% and 97.5% percentiles of the value recomputed on resamples with replacement of
 * the samples and of the value's reference points. For a gauss: reference the closed-form W2
 * between the Gaussian fitted to the samples (mean, covariance) and the exact law is reported
 * too, with the same for A_k as floor.
 */
#ifndef CM_EVALUATE_H
#define CM_EVALUATE_H

#include <stddef.h>
#include <stdint.h>

#include "cm/data.h"
#include "cm/status.h"

#define CM_EVALUATE_PROJECTIONS_DEFAULT 512
/* Repetitions of the floor: enough for a median and a range that show how much one split or
 * one pair of draws moves it, cheap enough beside the value (each is one more solve). */
#define CM_EVALUATE_FLOOR_SPLITS_DEFAULT 5
#define CM_EVALUATE_FLOOR_SPLITS_MAX 1000

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
/* 1 for the distances (w1, w2, sw1, sw2, msw1: never negative, a ratio to the floor means
 * something), 0 for the unbiased estimates MMD^2 and energy (may be negative). */
int cm_metric_is_nonnegative(cm_metric metric);
/* Parse a comma-separated list of names into a bit mask (bit k = metric k). */
cm_status cm_metric_parse_list(unsigned *out, const char *list);
#define CM_METRIC_BIT(metric) (1u << (metric))
#define CM_METRICS_DEFAULT (CM_METRIC_BIT(CM_METRIC_W1) | CM_METRIC_BIT(CM_METRIC_SW1))

typedef struct {
    unsigned metrics;      /* bit mask of cm_metric */
    size_t n;              /* points used from the samples (their first n rows); 0 = all */
    size_t projections;    /* directions of the sliced metrics */
    uint64_t seed;         /* reference draws, splits, directions, subsamples, bootstrap */
    size_t floor_splits;   /* K >= 1: repetitions of the floor (draws or splits) */
    size_t bootstrap;      /* resamples of the percentile interval; 0 = none */
    size_t ot_max_points;  /* exact W1/W2 subsample above this many points (ot.h) */
    size_t ot_repeats;     /* subsamples averaged then */
    double bandwidth;      /* MMD kernel bandwidth; 0 = median heuristic on samples + reference */
} cm_evaluate_options;

cm_evaluate_options cm_evaluate_options_default(void);

typedef struct {
    int computed;
    double value;            /* metric(samples, reference) at sizes n x reference_points */
    double floor;            /* median over the K repetitions of metric(B_k, A_k) (law) or
                              * metric(A_k, B_k) (file) */
    double floor_low, floor_high;     /* min and max of the K floor values */
    double matched;          /* file: median of metric(S_k, B_k) at the floor's sizes; law: NaN */
    double matched_low, matched_high; /* file: their min and max; law: NaN */
    double ratio;            /* (law: value, file: matched) / floor, distances only; else NaN */
    double ci_low, ci_high;  /* bootstrap percentile interval of value (NaN without bootstrap) */
    int subsampled;          /* exact OT above ot_max_points: value is a subsample mean */
    size_t subsample_points, repeats;
    double value_low, value_high; /* its 95% t-interval (NaN when not subsampled) */
} cm_metric_value;

typedef struct {
    size_t n, dim, projections, bootstrap;
    int reference_is_file;   /* 1: a stored file (cm_data_values), 0: a law drawn afresh */
    size_t reference_points; /* file: all its m rows; law: n (draw A_0) */
    size_t floor_splits;     /* K */
    size_t floor_points_a;   /* law: n (A_k and B_k); file: h = min(n, floor(m / 2)) (A_k, S_k) */
    size_t floor_points_b;   /* law: n; file: m - h (B_k) */
    double bandwidth;        /* the MMD bandwidth used (NaN when MMD was not asked for) */
    cm_metric_value metric[CM_METRIC_COUNT];
    int gaussian;            /* the reference is a gauss: law: the closed forms below are set */
    double gaussian_fit_w2;  /* W2(N(fit of the samples), law) */
    double gaussian_fit_w2_floor, gaussian_fit_w2_floor_low, gaussian_fit_w2_floor_high;
                             /* median, min, max of W2(N(fit of A_k), law) */
    double gaussian_fit_w1, gaussian_fit_w1_floor; /* the same in W1 when dim == 1, else NaN */
} cm_evaluation_report;

/* samples: n x dim, finite. Allocates its own workspaces. */
cm_status cm_evaluate_report(cm_evaluation_report *out, const double *samples, size_t n,
                             size_t dim, const cm_data *reference,
                             const cm_evaluate_options *options);

/* The first form, kept for its callers: sliced W1 (and exact W1 when dim == 1) with their
 * floors (the medians of cm_evaluate_report with the default number of repetitions). */
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
