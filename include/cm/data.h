/* data.h: data sources: built-in 2-D sets, exact Gaussian and Gaussian-mixture laws in any
 * dimension, user files, and images; and the standardising transform stored with a model.
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
 * Images (points of dimension C H W in [0, 1], layout [C, H, W]; image.h):
 *   shapes[:size=S][,seed=N]    generated 1 x S x S images of a disc, square or bar (3 labelled
 *        classes), an infinite law like gauss:; S = 16 and N = 0 by default
 *   fashion-mnist | fashion-mnist:test     the 60000 training or 10000 test images of
 *        Fashion-MNIST (Xiao et al. 2017), 1 x 28 x 28, 10 labelled classes, from the Debian
 *        package dataset-fashion-mnist
 *   path/to/folder/                       a folder of PNG files (sub-folders as classes)
 *   path/to/images.npy                    an NPY array [N, H, W] or [N, C, H, W]
 * Laws are sampled exactly and freshly on every draw (an infinite data set); files and stored
 * image sets are sampled by drawing rows uniformly with replacement. The generators are
 * documented in docs/data.md.
 */
#ifndef CM_DATA_H
#define CM_DATA_H

#include <stddef.h>
#include <stdint.h>

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
    CM_DATA_SHAPES, /* the generated image law */
    CM_DATA_IMAGES, /* a stored image set: Fashion-MNIST, a PNG folder, an NPY image array */
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
/* Number of stored rows of a file or stored image source; 0 for laws (unbounded). */
size_t cm_data_rows(const cm_data *data);
/* The stored rows of a file source (rows x dim), or NULL for laws. Owned by `data`.
 * NULL for image sources too, also stored ones (CM_DATA_IMAGES: cm_data_rows > 0): their
 * pixels are kept as bytes and converted per row (60000 Fashion-MNIST images would be 376 MB
 * as doubles). Callers that test cm_data_values to tell stored data from a law therefore treat
 * a stored image set as a law and draw from it with cm_data_sample (with replacement); use
 * cm_data_rows and cm_data_copy_rows to reach its rows, and cm_data_fingerprint for its
 * identity. */
const double *cm_data_values(const cm_data *data);
/* Rows first .. first + n - 1 (first + n <= cm_data_rows) of a file or stored image source into
 * out (n x dim), image pixels in [0, 1]. No allocation. */
void cm_data_copy_rows(const cm_data *data, size_t first, size_t n, double *out);
/* FNV-1a 64-bit hash of a stored source's content: for files the rows, the dimension and every
 * value's bits (the hash the checkpoints of file runs record); for stored image sets the count,
 * C, H, W, the stored pixels (bytes, or float bits), the class count and the labels. 0 for
 * laws (including shapes), which their description identifies. */
uint64_t cm_data_fingerprint(const cm_data *data);
/* For gauss:/gmm: sources, the exact law; CM_ERR_INVALID for others. */
cm_status cm_data_gmm(cm_gmm_view *out, const cm_data *data);

/* Draw n points into out (n x dim). Deterministic given the rng state; no allocation.
 * With base = rng->position on entry, point i is drawn from the child cm_rng_fork(rng, base + i)
 * alone, and on return rng->position = base + n (the parent serves only as a point counter).
 * So a draw of n points is a prefix of a draw of n' > n points from the same state, and
 * successive draws from one generator never share a child. */
void cm_data_sample(const cm_data *data, cm_rng *rng, size_t n, double *out);

/* ---- Images and labels */

#define CM_DATA_NO_LABEL ((size_t)-1)

/* The same points as cm_data_sample, and when out_labels is not NULL each point's class in
 * out_labels[0..n) (CM_DATA_NO_LABEL for unlabelled sources). */
void cm_data_sample_labelled(const cm_data *data, cm_rng *rng, size_t n, double *out,
                             size_t *out_labels);
/* 1 for image sources (shapes, images), with their channels, height and width (dim = C H W);
 * 0 for vector sources, with the three set to 0. Any pointer may be NULL. */
int cm_data_image_shape(const cm_data *data, size_t *channels, size_t *height, size_t *width);
/* Number of classes of a labelled source (shapes: 3; fashion-mnist: 10; a PNG folder with
 * class sub-folders; labelled IDX); 0 when unlabelled. */
size_t cm_data_classes(const cm_data *data);
/* The name of class `label` ("disc", "Ankle boot", a folder name), or NULL when unknown. */
const char *cm_data_class_name(const cm_data *data, size_t label);
/* The labels of a stored labelled image set (cm_data_rows of them), or NULL. Owned by data. */
const size_t *cm_data_labels(const cm_data *data);

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
/* 1 when the source prescribes its transform instead of having one fitted: image sources,
 * whose pixels in [0, 1] are modelled in [-1, 1] (shift 0.5, scale 0.5 for every coordinate:
 * x_model = (x - 0.5) / 0.5; docs/data.md). */
int cm_data_has_fixed_transform(const cm_data *data);
/* That transform (allocates; cm_transform_free); CM_ERR_INVALID for other sources. */
cm_status cm_data_fixed_transform(cm_transform *out, const cm_data *data);
/* In place on n x dim points. */
void cm_transform_apply(const cm_transform *transform, double *x, size_t n);
void cm_transform_invert(const cm_transform *transform, double *x, size_t n);

#endif
