/* data.h: data sources: built-in 2-D sets, exact Gaussian and Gaussian-mixture laws in any
 * dimension, and user files; and the standardising transform stored with a model.
 *
 * A source is opened from a string:
 *   8gaussians | moons | swissroll | checkerboard | rings     built-in 2-D sets, roughly unit scale
 *   gauss:d=D[,mean=M][,std=S]                                N(M 1, S^2 I_D)
 *   gauss:d=D[,mean=M],spectrum=logspace(A,B)                 N(M 1, diag(v)) with variances
 *        v_i = 10^(A + (B - A) i / (D - 1)), i = 0..D-1, log-spaced from 10^A to 10^B
 *        (numpy.logspace; D = 1 gives 10^A); spectrum and std exclude each other.
 *   gmm:d=D,k=K[,sep=R][,std=S][,seed=N]                      equal-weight mixture of K
 *        isotropic Gaussians N(m_j, S^2 I); means m_j = R u_j with u_j uniform on the unit sphere
 *        (seeded by N, independent of the sampling seed); in d = 1, m_j = R (j - (K-1)/2).
 *   path/to/file.csv | path/to/file.npy                       rows are points
 *   path/to/file.csv:columns=LIST                             only the listed columns
 *        (cm_data_parse_columns: names of the CSV header, 0-based indices, ranges A-B)
 * A file whose first column is a row index (consecutive integers without a header; increasing
 * integers under an empty, "id", "index" or "Unnamed: 0" name, as pandas' to_csv writes) is
 * refused with a hint unless its columns are selected.
 * Laws are sampled exactly and freshly on every draw (an infinite data set); files are sampled
 * by drawing rows uniformly with replacement. The generators are documented in docs/data.md.
 */
#ifndef CM_DATA_H
#define CM_DATA_H

#include <stddef.h>

#include "cm/rng.h"
#include "cm/status.h"

typedef enum {
    CM_DATA_8GAUSSIANS,
    CM_DATA_MOONS,
    CM_DATA_SWISSROLL,
    CM_DATA_CHECKERBOARD,
    CM_DATA_RINGS,
    CM_DATA_GAUSS,
    CM_DATA_GMM,
    CM_DATA_FILE,
    CM_DATA_KIND_COUNT
} cm_data_kind;

const char *cm_data_kind_name(cm_data_kind kind);

/* A Gaussian mixture sum_j weight_j N(mean_j, std_j^2 I_D) (gauss: is K = 1); or, when
 * variances is not NULL (gauss: with a spectrum, K = 1), N(mean_0, diag(variances)) and stds[0]
 * is NAN so that a user that ignores variances cannot silently take it for isotropic. */
typedef struct {
    size_t dim, components;
    const double *weights;   /* K */
    const double *means;     /* K x D, row-major */
    const double *stds;      /* K */
    const double *variances; /* D or NULL (isotropic components) */
} cm_gmm_view;

typedef struct cm_data cm_data; /* opaque */

/* Open a source (see the grammar above). *out is owned by the caller: cm_data_free. */
cm_status cm_data_open(cm_data **out, const char *source);

/* Options of cm_data_open_with (a zero-initialised struct means none). */
typedef struct {
    const char *columns; /* file sources: the column list of ":columns=" (NULL: all columns);
                          * giving both is an error. The source's description then ends in
                          * ":columns=LIST", so a model or checkpoint reopens the same columns. */
} cm_data_options;

cm_status cm_data_open_with(cm_data **out, const char *source, const cm_data_options *options);

/* Resolve a column list against a file of `cols` columns with header `names` (NULL: no header):
 * comma-separated items, each the exact name of a column (names are matched first, so a header
 * "0,1" written by pandas selects by name), else a 0-based index, else an inclusive index range
 * A-B; no column twice, at least one. out (capacity cols) receives the 0-based indices in list
 * order, *out_count their number. CM_ERR_INVALID with a detail naming the item otherwise. */
cm_status cm_data_parse_columns(size_t *out, size_t *out_count, const char *list,
                                const char *const *names, size_t cols);
void cm_data_free(cm_data *data);

cm_data_kind cm_data_kind_of(const cm_data *data);
size_t cm_data_dim(const cm_data *data);
/* Canonical description, e.g. "gmm:d=16,k=8,sep=4,std=0.3,seed=1". Owned by `data`. */
const char *cm_data_describe(const cm_data *data);
/* A file source made from values in memory (rows x dim, copied; finite), described as
 * `description` (e.g. a path). For tests and callers that already hold the points. */
cm_status cm_data_from_values(cm_data **out, const double *values, size_t rows, size_t dim,
                              const char *description);
/* Number of stored rows of a file source; 0 for laws (unbounded). */
size_t cm_data_rows(const cm_data *data);
/* The stored rows of a file source (rows x dim), or NULL for laws. Owned by `data`. */
const double *cm_data_values(const cm_data *data);
/* For gauss:/gmm: sources, the exact law; CM_ERR_INVALID for others. */
cm_status cm_data_gmm(cm_gmm_view *out, const cm_data *data);

/* Draw n points into out (n x dim). Deterministic given the rng state; no allocation.
 * With base = rng->position on entry, point i is drawn from the child cm_rng_fork(rng, base + i)
 * alone, and on return rng->position = base + n (the parent serves only as a point counter).
 * So a draw of n points is a prefix of a draw of n' > n points from the same state, and
 * successive draws from one generator never share a child. */
void cm_data_sample(const cm_data *data, cm_rng *rng, size_t n, double *out);

/* ---- Standardising transform: x_model = (x - shift) / scale, per coordinate. */
typedef struct {
    size_t dim;
    double *shift; /* dim, owned */
    double *scale; /* dim, owned; > 0 */
} cm_transform;

/* Fit shift = mean and scale = std / target_std from n x dim points, so that the transformed
 * points have mean 0 and standard deviation target_std per coordinate (a column with zero spread
 * gets scale 1). Allocates shift and scale; free with cm_transform_free. */
cm_status cm_transform_fit(cm_transform *out, const double *x, size_t n, size_t dim,
                           double target_std);
/* Identity transform of dimension dim (allocates). */
cm_status cm_transform_identity(cm_transform *out, size_t dim);
void cm_transform_free(cm_transform *transform);
/* In place on n x dim points. */
void cm_transform_apply(const cm_transform *transform, double *x, size_t n);
void cm_transform_invert(const cm_transform *transform, double *x, size_t n);

#endif
