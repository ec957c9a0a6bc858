/* gaussian.c: closed forms between Gaussian laws (see gaussian.h): W2 (Dowson-Landau /
 * Givens-Shortt), KL, 1-D W1 (folded normal), symmetric matrix square roots, and the fit of a
 * Gaussian to points. Eigen-decompositions and Cholesky factors come from LAPACK through
 * LAPACKE's _work interface in column-major order, with workspaces from cm_malloc (so LAPACKE
 * never allocates on our behalf); nothing here is a hand-rolled eigensolver.
 */
#include "cm/gaussian.h"

#include <cblas.h>
#include <lapacke.h>
#include <math.h>
#include <string.h>

#include "cm/alloc.h"

/* Covariances must be symmetric to this relative difference (of the largest entry): more is a
 * caller's error, not rounding. */
#define SYMMETRY_TOLERANCE 1e-10
/* Eigenvalues of a positive semidefinite matrix computed by dsyevd are exact to about
 * d eps |lambda_max|; below -NEGATIVE_EIGENVALUE_TOLERANCE |lambda_max| the matrix is not PSD. */
#define NEGATIVE_EIGENVALUE_TOLERANCE 1e-10

static cm_status check_vector(const double *x, size_t count, const char *what) {
    if (!x) return cm_error_set(CM_ERR_INVALID, "Gaussian: %s is NULL", what);
    for (size_t k = 0; k < count; k++)
        if (!isfinite(x[k]))
            return cm_error_set(CM_ERR_NONFINITE, "Gaussian: %s[%zu] is %g", what, k, x[k]);
    return CM_OK;
}

static cm_status check_covariance(const double *s, size_t d, const char *what) {
    CM_TRY(check_vector(s, d * d, what));
    double largest = 0.0;
    for (size_t k = 0; k < d * d; k++)
        if (fabs(s[k]) > largest) largest = fabs(s[k]);
    for (size_t i = 0; i < d; i++)
        for (size_t j = i + 1; j < d; j++)
            if (fabs(s[i * d + j] - s[j * d + i]) > SYMMETRY_TOLERANCE * largest)
                return cm_error_set(CM_ERR_INVALID, "Gaussian: %s is not symmetric at (%zu, %zu): "
                                    "%g vs %g", what, i, j, s[i * d + j], s[j * d + i]);
    return CM_OK;
}

static cm_status check_dimension(size_t d) {
    if (d == 0) return cm_error_set(CM_ERR_INVALID, "Gaussian: dimension 0");
    if (d > (size_t)INT32_MAX / 8 || d > SIZE_MAX / (8 * d))
        return cm_error_set(CM_ERR_INVALID, "Gaussian: dimension %zu is too large", d);
    return CM_OK;
}

/* Eigen-decomposition workspace for d x d: three matrices, the eigenvalues, LAPACK's work. */
typedef struct {
    size_t d;
    double *a, *b, *c, *values, *work;
    lapack_int *iwork, lwork, liwork;
} eigen_space;

static cm_status eigen_alloc(eigen_space *e, size_t d) {
    double work_query = 0.0;
    lapack_int iwork_query = 0, n = (lapack_int)d;
    lapack_int info = LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, 'V', 'L', n, NULL, n, NULL,
                                          &work_query, -1, &iwork_query, -1);
    if (info != 0) return cm_error_set(CM_ERR_INVALID, "Gaussian: dsyevd workspace query failed "
                                       "(info %d)", (int)info);
    e->d = d;
    e->lwork = (lapack_int)work_query;
    e->liwork = iwork_query;
    e->a = cm_malloc(3 * d * d + d + (size_t)e->lwork, sizeof(double));
    e->iwork = cm_malloc((size_t)e->liwork, sizeof(lapack_int));
    if (!e->a || !e->iwork) {
        cm_free(e->a);
        cm_free(e->iwork);
        return cm_error_set(CM_ERR_NOMEM, "Gaussian: eigen workspace for d = %zu", d);
    }
    e->b = e->a + d * d;
    e->c = e->b + d * d;
    e->values = e->c + d * d;
    e->work = e->values + d;
    return CM_OK;
}

static void eigen_free(eigen_space *e) {
    cm_free(e->a);
    cm_free(e->iwork);
}

/* Eigenvalues (ascending, into e->values) and, with jobz 'V', eigenvectors (columns of
 * `matrix`, which is overwritten) of a symmetric matrix; values within rounding below zero are
 * set to zero, clearly negative ones are an error naming `what`. */
static cm_status eigen_psd(eigen_space *e, double *matrix, char jobz, const char *what) {
    lapack_int n = (lapack_int)e->d;
    lapack_int info = LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, jobz, 'L', n, matrix, n, e->values,
                                          e->work, e->lwork, e->iwork, e->liwork);
    if (info != 0)
        return cm_error_set(CM_ERR_INVALID, "Gaussian: eigen-decomposition of %s failed "
                            "(dsyevd info %d)", what, (int)info);
    double largest = fabs(e->values[e->d - 1]) > fabs(e->values[0]) ? fabs(e->values[e->d - 1])
                                                                    : fabs(e->values[0]);
    for (size_t k = 0; k < e->d; k++) {
        if (e->values[k] < -NEGATIVE_EIGENVALUE_TOLERANCE * largest)
            return cm_error_set(CM_ERR_INVALID, "Gaussian: %s is not positive semidefinite "
                                "(eigenvalue %g)", what, e->values[k]);
        if (e->values[k] < 0.0) e->values[k] = 0.0;
    }
    return CM_OK;
}

/* out = U diag(sqrt(values)) U' with U the columns of e->a after eigen_psd(e, e->a, 'V'). */
static void square_root_from_eigen(double *out, eigen_space *e) {
    size_t d = e->d;
    for (size_t k = 0; k < d; k++) {
        double root = sqrt(e->values[k]);
        for (size_t r = 0; r < d; r++) e->c[k * d + r] = e->a[k * d + r] * root;
    }
    cblas_dgemm(CblasColMajor, CblasNoTrans, CblasTrans, (int)d, (int)d, (int)d, 1.0, e->c,
                (int)d, e->a, (int)d, 0.0, out, (int)d);
    for (size_t i = 0; i < d; i++) /* exact symmetry */
        for (size_t j = i + 1; j < d; j++) out[i * d + j] = out[j * d + i] =
            0.5 * (out[i * d + j] + out[j * d + i]);
}

cm_status cm_gaussian_sqrtm(double *out, const double *matrix, size_t d) {
    if (!out) return cm_error_set(CM_ERR_INVALID, "Gaussian: out is NULL");
    CM_TRY(check_dimension(d));
    CM_TRY(check_covariance(matrix, d, "matrix"));
    eigen_space e;
    CM_TRY(eigen_alloc(&e, d));
    memcpy(e.a, matrix, d * d * sizeof(double));
    cm_status status = eigen_psd(&e, e.a, 'V', "matrix");
    if (status == CM_OK) square_root_from_eigen(out, &e);
    eigen_free(&e);
    return status;
}

/* The inputs of a distance between N(mean1, cov1) and N(mean2, cov2). */
static cm_status check_pair(const double *out, const double *mean1, const double *cov1,
                            const double *mean2, const double *cov2, size_t d) {
    if (!out) return cm_error_set(CM_ERR_INVALID, "Gaussian: out is NULL");
    CM_TRY(check_dimension(d));
    CM_TRY(check_vector(mean1, d, "mean1"));
    CM_TRY(check_vector(mean2, d, "mean2"));
    CM_TRY(check_covariance(cov1, d, "cov1"));
    CM_TRY(check_covariance(cov2, d, "cov2"));
    return CM_OK;
}

cm_status cm_gaussian_w2(double *out, const double *mean1, const double *cov1,
                         const double *mean2, const double *cov2, size_t d) {
    CM_TRY(check_pair(out, mean1, cov1, mean2, cov2, d));
    eigen_space e;
    CM_TRY(eigen_alloc(&e, d));
    /* R = S1^{1/2} into b; M = R S2 R into a; then the eigenvalues of M */
    memcpy(e.a, cov1, d * d * sizeof(double));
    cm_status status = eigen_psd(&e, e.a, 'V', "cov1");
    if (status == CM_OK) {
        square_root_from_eigen(e.b, &e);
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)d, (int)d, (int)d, 1.0, e.b,
                    (int)d, cov2, (int)d, 0.0, e.c, (int)d);
        cblas_dgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, (int)d, (int)d, (int)d, 1.0, e.c,
                    (int)d, e.b, (int)d, 0.0, e.a, (int)d);
        for (size_t i = 0; i < d; i++)
            for (size_t j = i + 1; j < d; j++) e.a[i * d + j] = e.a[j * d + i] =
                0.5 * (e.a[i * d + j] + e.a[j * d + i]);
        status = eigen_psd(&e, e.a, 'N', "S1^1/2 S2 S1^1/2 (cov2 not PSD?)");
    }
    if (status == CM_OK) {
        double squared = 0.0, cross = 0.0;
        for (size_t k = 0; k < d; k++) {
            squared += (mean1[k] - mean2[k]) * (mean1[k] - mean2[k]);
            squared += cov1[k * d + k] + cov2[k * d + k];
            cross += sqrt(e.values[k]);
        }
        squared -= 2.0 * cross;
        *out = sqrt(squared > 0.0 ? squared : 0.0);
    }
    eigen_free(&e);
    return status;
}

/* Lower Cholesky factor (column-major) of a symmetric positive definite matrix, in place. */
static cm_status cholesky(double *matrix, size_t d, const char *what) {
    lapack_int n = (lapack_int)d;
    lapack_int info = LAPACKE_dpotrf_work(LAPACK_COL_MAJOR, 'L', n, matrix, n);
    if (info > 0)
        return cm_error_set(CM_ERR_INVALID, "Gaussian: %s is not positive definite (leading minor "
                            "%d)", what, (int)info);
    if (info < 0) return cm_error_set(CM_ERR_INVALID, "Gaussian: dpotrf argument %d", (int)-info);
    return CM_OK;
}

cm_status cm_gaussian_kl(double *out, const double *mean1, const double *cov1,
                         const double *mean2, const double *cov2, size_t d) {
    CM_TRY(check_pair(out, mean1, cov1, mean2, cov2, d));
    double *l1 = cm_malloc(2 * d * d + d, sizeof(double));
    if (!l1) return cm_error_set(CM_ERR_NOMEM, "Gaussian: KL workspace for d = %zu", d);
    double *l2 = l1 + d * d, *z = l2 + d * d;
    memcpy(l1, cov1, d * d * sizeof(double));
    memcpy(l2, cov2, d * d * sizeof(double));
    cm_status status = cholesky(l1, d, "cov1");
    if (status == CM_OK) status = cholesky(l2, d, "cov2");
    if (status == CM_OK) {
        /* log det S = 2 sum log L_kk; tr(S2^-1 S1) = |L2^-1 L1|_F^2; Mahalanobis |L2^-1 dm|^2 */
        double log_det1 = 0.0, log_det2 = 0.0, trace = 0.0, mahalanobis = 0.0;
        for (size_t k = 0; k < d; k++) {
            log_det1 += 2.0 * log(l1[k * d + k]);
            log_det2 += 2.0 * log(l2[k * d + k]);
            z[k] = mean2[k] - mean1[k];
        }
        for (size_t c = 0; c < d; c++) /* zero the upper triangle dpotrf left in place */
            for (size_t r = 0; r < c; r++) l1[c * d + r] = 0.0;
        lapack_int n = (lapack_int)d;
        lapack_int info = LAPACKE_dtrtrs_work(LAPACK_COL_MAJOR, 'L', 'N', 'N', n, n, l2, n, l1, n);
        if (info == 0) info = LAPACKE_dtrtrs_work(LAPACK_COL_MAJOR, 'L', 'N', 'N', n, 1, l2, n, z, n);
        if (info != 0) {
            status = cm_error_set(CM_ERR_INVALID, "Gaussian: triangular solve failed (dtrtrs info "
                                  "%d)", (int)info);
        } else {
            for (size_t k = 0; k < d * d; k++) trace += l1[k] * l1[k];
            for (size_t k = 0; k < d; k++) mahalanobis += z[k] * z[k];
            double kl = 0.5 * (trace + mahalanobis - (double)d + log_det2 - log_det1);
            *out = kl > 0.0 ? kl : 0.0;
        }
    }
    cm_free(l1);
    return status;
}

cm_status cm_gaussian_w1_1d(double *out, double mean1, double std1, double mean2, double std2) {
    if (!out) return cm_error_set(CM_ERR_INVALID, "Gaussian: out is NULL");
    if (!isfinite(mean1) || !isfinite(mean2) || !isfinite(std1) || !isfinite(std2))
        return cm_error_set(CM_ERR_NONFINITE, "Gaussian W1: non-finite parameter (%g, %g, %g, %g)",
                            mean1, std1, mean2, std2);
    if (std1 < 0.0 || std2 < 0.0)
        return cm_error_set(CM_ERR_INVALID, "Gaussian W1: negative standard deviation (%g, %g)",
                            std1, std2);
    double dm = mean1 - mean2, ds = fabs(std1 - std2);
    if (ds == 0.0) {
        *out = fabs(dm);
        return CM_OK;
    }
    const double sqrt_2_over_pi = 0.79788456080286535588, sqrt_2 = 1.41421356237309504880;
    double ratio = dm / ds;
    *out = ds * sqrt_2_over_pi * exp(-0.5 * ratio * ratio) + dm * erf(ratio / sqrt_2);
    return CM_OK;
}

cm_status cm_gaussian_fit(double *mean, double *cov, const double *x, size_t n, size_t d) {
    if (!mean || !cov) return cm_error_set(CM_ERR_INVALID, "Gaussian fit: NULL output");
    CM_TRY(check_dimension(d));
    if (n < 2) return cm_error_set(CM_ERR_INVALID, "Gaussian fit: %zu points (at least 2)", n);
    if (n > SIZE_MAX / d) return cm_error_set(CM_ERR_INVALID, "Gaussian fit: size overflow");
    CM_TRY(check_vector(x, n * d, "points"));
    memset(mean, 0, d * sizeof(double));
    memset(cov, 0, d * d * sizeof(double));
    for (size_t r = 0; r < n; r++)
        for (size_t k = 0; k < d; k++) mean[k] += x[r * d + k];
    for (size_t k = 0; k < d; k++) mean[k] /= (double)n;
    for (size_t r = 0; r < n; r++) {
        const double *p = x + r * d;
        for (size_t i = 0; i < d; i++) {
            double centred = p[i] - mean[i];
            for (size_t j = 0; j <= i; j++) cov[i * d + j] += centred * (p[j] - mean[j]);
        }
    }
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j <= i; j++)
            cov[i * d + j] = cov[j * d + i] = cov[i * d + j] / (double)(n - 1);
    return CM_OK;
}
