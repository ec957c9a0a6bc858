/* law.c: exact data laws (see law.h): Gaussian mixtures with each covariance kept as its
 * eigendecomposition, their sampling, and what the variance-preserving forward process makes of
 * them at log-SNR lambda: log density, posterior of X_0 given X_t = x (weights by log-sum-exp),
 * denoiser and score (docs/math.md, docs/theory.md). The flow map is in law_flow.c.
 *
 * Every evaluation at a point works in component j's eigenbasis: y = U_j' (x - sqrt(abar) m_j),
 * where the law of X_t given j has the diagonal covariance v_j = abar l_j + (1 - abar). abar
 * and 1 - abar are both formed from lambda without cancellation (law.h).
 */
#include "cm/law.h"

#include <lapacke.h>
#include <math.h>
#include <string.h>

#include "cm/alloc.h"
#include "data/law_internal.h"

/* A covariance must be symmetric to this relative difference (of its largest entry), as in
 * gaussian.c; eigenvalues below -CLAMP |largest| mean it is not positive semidefinite, smaller
 * negative ones are rounding and become 0. */
#define LAW_SYMMETRY_TOLERANCE 1e-10
#define LAW_NEGATIVE_EIGENVALUE_TOLERANCE 1e-10
#define LOG_2PI 1.8378770664093454836

/* ---------------------------------------------------------------- construction */

/* A law of k components in dimension d with equal weights 1/k (constructors of mixtures set
 * their own); means, eigenvalues and basis are left for the caller to fill. */
static cm_status law_alloc(cm_law **out, size_t d, size_t k, int with_basis) {
    *out = NULL;
    if (d == 0 || k == 0)
        return cm_error_set(CM_ERR_INVALID, "law: dimension %zu and components %zu must be >= 1",
                            d, k);
    if (d > SIZE_MAX / 8 / k || (with_basis && d > SIZE_MAX / 8 / d))
        return cm_error_set(CM_ERR_INVALID, "law: %zu x %zu is too large", k, d);
    cm_law *law = cm_calloc(1, sizeof *law);
    if (!law) return cm_error_set(CM_ERR_NOMEM, "law: no memory");
    law->d = d;
    law->k = k;
    law->log_weights = cm_malloc(2 * k, sizeof(double));
    law->means = cm_malloc(k * d, sizeof(double));
    law->eigenvalues = cm_malloc(k * d, sizeof(double));
    law->basis = with_basis ? cm_malloc(d * d, sizeof(double)) : NULL;
    if (!law->log_weights || !law->means || !law->eigenvalues || (with_basis && !law->basis)) {
        cm_law_free(law);
        return cm_error_set(CM_ERR_NOMEM, "law: no memory for %zu components in dimension %zu",
                            k, d);
    }
    law->weights = law->log_weights + k;
    for (size_t j = 0; j < k; j++) {
        law->weights[j] = 1.0 / (double)k;
        law->log_weights[j] = -log((double)k);
    }
    law->equal_weights = 1;
    *out = law;
    return CM_OK;
}

void cm_law_free(cm_law *law) {
    if (!law) return;
    cm_free(law->log_weights);
    cm_free(law->means);
    cm_free(law->eigenvalues);
    cm_free(law->basis);
    cm_free(law);
}

static cm_status check_finite(const double *x, size_t count, const char *what) {
    for (size_t i = 0; i < count; i++)
        if (!isfinite(x[i]))
            return cm_error_set(CM_ERR_NONFINITE, "law: %s[%zu] is %g", what, i, x[i]);
    return CM_OK;
}

static void set_mean(cm_law *law, const double *mean) {
    for (size_t i = 0; i < law->d; i++) law->means[i] = mean ? mean[i] : 0.0;
}

cm_status cm_law_gaussian_diagonal(cm_law **out, size_t d, const double *mean,
                                   const double *variances) {
    if (!out || !variances) return cm_error_set(CM_ERR_INVALID, "cm_law_gaussian_diagonal: NULL");
    *out = NULL;
    if (d == 0) return cm_error_set(CM_ERR_INVALID, "law: dimension 0");
    if (mean) CM_TRY(check_finite(mean, d, "mean"));
    CM_TRY(check_finite(variances, d, "variances"));
    for (size_t i = 0; i < d; i++)
        if (variances[i] < 0.0)
            return cm_error_set(CM_ERR_INVALID, "law: variance %zu is %g < 0", i, variances[i]);
    cm_law *law;
    CM_TRY(law_alloc(&law, d, 1, 0));
    set_mean(law, mean);
    memcpy(law->eigenvalues, variances, d * sizeof(double));
    *out = law;
    return CM_OK;
}

/* Eigendecomposition of cov (d x d, symmetric) into law->eigenvalues and law->basis, whose row c
 * is eigenvector c (LAPACK's column-major output read row-major). */
static cm_status decompose(cm_law *law, const double *cov) {
    size_t d = law->d;
    lapack_int n = (lapack_int)d, iwork_query = 0;
    double work_query = 0.0;
    lapack_int info = LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, 'V', 'L', n, NULL, n, NULL,
                                          &work_query, -1, &iwork_query, -1);
    if (info != 0)
        return cm_error_set(CM_ERR_INVALID, "law: dsyevd workspace query failed (info %d)",
                            (int)info);
    double *work = cm_malloc((size_t)work_query + 1, sizeof(double));
    lapack_int *iwork = cm_malloc((size_t)iwork_query + 1, sizeof(lapack_int));
    cm_status status = CM_OK;
    if (!work || !iwork) status = cm_error_set(CM_ERR_NOMEM, "law: eigen workspace, d = %zu", d);
    if (status == CM_OK) {
        memcpy(law->basis, cov, d * d * sizeof(double)); /* symmetric: either order */
        info = LAPACKE_dsyevd_work(LAPACK_COL_MAJOR, 'V', 'L', n, law->basis, n, law->eigenvalues,
                                   work, (lapack_int)work_query, iwork, iwork_query);
        if (info != 0)
            status = cm_error_set(CM_ERR_INVALID, "law: dsyevd failed (info %d)", (int)info);
    }
    cm_free(work);
    cm_free(iwork);
    CM_TRY(status);
    double largest = fmax(fabs(law->eigenvalues[0]), fabs(law->eigenvalues[d - 1]));
    for (size_t i = 0; i < d; i++) {
        if (law->eigenvalues[i] < -LAW_NEGATIVE_EIGENVALUE_TOLERANCE * largest)
            return cm_error_set(CM_ERR_INVALID, "law: covariance is not positive semidefinite "
                                "(eigenvalue %g)", law->eigenvalues[i]);
        if (law->eigenvalues[i] < 0.0) law->eigenvalues[i] = 0.0;
    }
    return CM_OK;
}

cm_status cm_law_gaussian(cm_law **out, size_t d, const double *mean, const double *cov) {
    if (!out || !cov) return cm_error_set(CM_ERR_INVALID, "cm_law_gaussian: NULL argument");
    *out = NULL;
    if (d == 0) return cm_error_set(CM_ERR_INVALID, "law: dimension 0");
    if (d > 46340) return cm_error_set(CM_ERR_INVALID, "law: dimension %zu too large", d);
    if (mean) CM_TRY(check_finite(mean, d, "mean"));
    CM_TRY(check_finite(cov, d * d, "cov"));
    double largest = 0.0;
    for (size_t i = 0; i < d * d; i++) largest = fmax(largest, fabs(cov[i]));
    for (size_t i = 0; i < d; i++)
        for (size_t j = i + 1; j < d; j++)
            if (fabs(cov[i * d + j] - cov[j * d + i]) > LAW_SYMMETRY_TOLERANCE * largest)
                return cm_error_set(CM_ERR_INVALID, "law: covariance is not symmetric at (%zu, "
                                    "%zu)", i, j);
    cm_law *law;
    CM_TRY(law_alloc(&law, d, 1, 1));
    set_mean(law, mean);
    cm_status status = decompose(law, cov);
    if (status != CM_OK) {
        cm_law_free(law);
        return status;
    }
    *out = law;
    return CM_OK;
}

/* Shared by the two mixture constructors: eigenvalues k x d from stds (isotropic) or from
 * variances (diagonal), exactly one of them non-NULL. */
static cm_status mixture(cm_law **out, size_t d, size_t k, const double *weights,
                         const double *means, const double *stds, const double *variances) {
    if (!out || !weights || !means || (!stds && !variances))
        return cm_error_set(CM_ERR_INVALID, "law mixture: NULL argument");
    *out = NULL;
    if (d == 0 || k == 0)
        return cm_error_set(CM_ERR_INVALID, "law: dimension %zu, components %zu", d, k);
    if (k > SIZE_MAX / 8 / d) return cm_error_set(CM_ERR_INVALID, "law: too many components");
    CM_TRY(check_finite(weights, k, "weights"));
    CM_TRY(check_finite(means, k * d, "means"));
    const double *spread = stds ? stds : variances;
    size_t count = stds ? k : k * d;
    CM_TRY(check_finite(spread, count, stds ? "stds" : "variances"));
    for (size_t i = 0; i < count; i++)
        if (spread[i] < 0.0)
            return cm_error_set(CM_ERR_INVALID, "law: %s[%zu] is %g < 0",
                                stds ? "stds" : "variances", i, spread[i]);
    double total = 0.0;
    for (size_t j = 0; j < k; j++) {
        if (!(weights[j] > 0.0))
            return cm_error_set(CM_ERR_INVALID, "law: weight %zu is %g, must be > 0", j,
                                weights[j]);
        total += weights[j];
    }
    if (!isfinite(total)) return cm_error_set(CM_ERR_NONFINITE, "law: weights sum to %g", total);
    cm_law *law;
    CM_TRY(law_alloc(&law, d, k, 0));
    for (size_t j = 0; j < k; j++) {
        law->weights[j] = weights[j] / total;
        law->log_weights[j] = log(weights[j]) - log(total);
        if (weights[j] != weights[0]) law->equal_weights = 0;
        for (size_t i = 0; i < d; i++)
            law->eigenvalues[j * d + i] = stds ? stds[j] * stds[j] : variances[j * d + i];
    }
    memcpy(law->means, means, k * d * sizeof(double));
    *out = law;
    return CM_OK;
}

cm_status cm_law_mixture_isotropic(cm_law **out, size_t d, size_t k, const double *weights,
                                   const double *means, const double *stds) {
    if (!stds) return cm_error_set(CM_ERR_INVALID, "law mixture: stds is NULL");
    return mixture(out, d, k, weights, means, stds, NULL);
}

cm_status cm_law_mixture_diagonal(cm_law **out, size_t d, size_t k, const double *weights,
                                  const double *means, const double *variances) {
    if (!variances) return cm_error_set(CM_ERR_INVALID, "law mixture: variances is NULL");
    return mixture(out, d, k, weights, means, NULL, variances);
}

/* (X - shift) / scale: means (m - shift) / scale; a diagonal component's variances divide by
 * scale^2; a full covariance becomes D^-1 S D^-1 (D = diag(scale)), decomposed again. */
cm_status cm_law_standardise(cm_law **out, const cm_law *law, const double *shift,
                             const double *scale) {
    if (!out || !law || !shift || !scale)
        return cm_error_set(CM_ERR_INVALID, "cm_law_standardise: NULL argument");
    *out = NULL;
    size_t d = law->d, k = law->k;
    CM_TRY(check_finite(shift, d, "shift"));
    CM_TRY(check_finite(scale, d, "scale"));
    for (size_t i = 0; i < d; i++)
        if (!(scale[i] > 0.0))
            return cm_error_set(CM_ERR_INVALID, "law: scale[%zu] is %g, must be > 0", i, scale[i]);
    cm_law *result;
    CM_TRY(law_alloc(&result, d, k, law->basis != NULL));
    memcpy(result->log_weights, law->log_weights, 2 * k * sizeof(double));
    result->equal_weights = law->equal_weights;
    for (size_t j = 0; j < k; j++)
        for (size_t i = 0; i < d; i++) {
            result->means[j * d + i] = (law->means[j * d + i] - shift[i]) / scale[i];
            result->eigenvalues[j * d + i] = law->eigenvalues[j * d + i] / (scale[i] * scale[i]);
        }
    if (!law->basis) {
        *out = result;
        return CM_OK;
    }
    double *cov = cm_malloc(d * d, sizeof(double));
    cm_status status = cov ? CM_OK : cm_error_set(CM_ERR_NOMEM, "law: covariance d = %zu", d);
    if (status == CM_OK) {
        for (size_t a = 0; a < d; a++)
            for (size_t b = 0; b < d; b++) {
                double sum = 0.0;
                for (size_t c = 0; c < d; c++)
                    sum += law->basis[c * d + a] * law->eigenvalues[c] * law->basis[c * d + b];
                cov[a * d + b] = sum / (scale[a] * scale[b]);
            }
        for (size_t a = 0; a < d; a++) /* exact symmetry */
            for (size_t b = a + 1; b < d; b++)
                cov[a * d + b] = cov[b * d + a] = 0.5 * (cov[a * d + b] + cov[b * d + a]);
        status = decompose(result, cov);
    }
    cm_free(cov);
    if (status != CM_OK) {
        cm_law_free(result);
        return status;
    }
    *out = result;
    return CM_OK;
}

cm_status cm_law_from_data(cm_law **out, const cm_data *data) {
    if (!out || !data) return cm_error_set(CM_ERR_INVALID, "cm_law_from_data: NULL argument");
    *out = NULL;
    cm_gmm_view view;
    CM_TRY(cm_data_gmm(&view, data));
    if (view.variances) {
        if (view.components != 1)
            return cm_error_set(CM_ERR_UNSUPPORTED, "law: per-coordinate variances with %zu "
                                "components", view.components);
        return cm_law_gaussian_diagonal(out, view.dim, view.means, view.variances);
    }
    return cm_law_mixture_isotropic(out, view.dim, view.components, view.weights, view.means,
                                    view.stds);
}

/* ---------------------------------------------------------------- queries */

size_t cm_law_dim(const cm_law *law) { return law->d; }
size_t cm_law_components(const cm_law *law) { return law->k; }
size_t cm_law_scratch_size(const cm_law *law) { return 2 * law->k + 2 * law->d; }

cm_status cm_law_diagonal_components(const cm_law *law, const double **log_weights,
                                     const double **means, const double **variances) {
    if (law->basis)
        return cm_error_set(CM_ERR_UNSUPPORTED, "the law has a full covariance (d = %zu), not "
                            "diagonal components", law->d);
    *log_weights = law->log_weights, *means = law->means, *variances = law->eigenvalues;
    return CM_OK;
}

/* y = U_j' r (U = NULL: y = r). Rows of basis are eigenvectors. */
void cm_law_to_eigen(const cm_law *law, const double *r, double *y) {
    size_t d = law->d;
    if (!law->basis) {
        memcpy(y, r, d * sizeof(double));
        return;
    }
    for (size_t c = 0; c < d; c++) {
        const double *u = law->basis + c * d;
        double s = 0.0;
        for (size_t i = 0; i < d; i++) s += u[i] * r[i];
        y[c] = s;
    }
}

/* out += U_j y (U = NULL: out += y). */
void cm_law_from_eigen_add(const cm_law *law, const double *y, double *out) {
    size_t d = law->d;
    if (!law->basis) {
        for (size_t i = 0; i < d; i++) out[i] += y[i];
        return;
    }
    for (size_t c = 0; c < d; c++) {
        const double *u = law->basis + c * d;
        for (size_t i = 0; i < d; i++) out[i] += u[i] * y[c];
    }
}

void cm_law_moments(const cm_law *law, double *mean, double *cov) {
    size_t d = law->d, k = law->k;
    for (size_t i = 0; i < d; i++) {
        mean[i] = 0.0;
        for (size_t j = 0; j < k; j++) mean[i] += law->weights[j] * law->means[j * d + i];
    }
    memset(cov, 0, d * d * sizeof(double));
    for (size_t j = 0; j < k; j++) {
        const double *m = law->means + j * d, *l = law->eigenvalues + j * d;
        double w = law->weights[j];
        for (size_t a = 0; a < d; a++)
            for (size_t b = 0; b < d; b++) {
                double within = 0.0;
                if (law->basis)
                    for (size_t c = 0; c < d; c++)
                        within += law->basis[c * d + a] * l[c] * law->basis[c * d + b];
                else if (a == b)
                    within = l[a];
                cov[a * d + b] += w * (within + (m[a] - mean[a]) * (m[b] - mean[b]));
            }
    }
}

/* Draw the component of a point: uniform (cm_rng_below, as cm_data_sample does) when the
 * weights are equal, else by inversion of the cumulative weights. */
size_t cm_law_draw_component(const cm_law *law, const double *log_weights, cm_rng *rng) {
    size_t k = law->k;
    if (!log_weights && law->equal_weights) return (size_t)cm_rng_below(rng, k);
    double u = cm_rng_uniform(rng), cumulative = 0.0;
    for (size_t j = 0; j + 1 < k; j++) {
        cumulative += log_weights ? exp(log_weights[j]) : law->weights[j];
        if (u < cumulative) return j;
    }
    return k - 1;
}

void cm_law_sample(const cm_law *law, cm_rng *rng, size_t n, double *out) {
    size_t d = law->d;
    uint64_t base = rng->position;
    for (size_t p = 0; p < n; p++) {
        cm_rng point;
        cm_rng_fork(&point, rng, base + p);
        size_t j = cm_law_draw_component(law, NULL, &point);
        const double *m = law->means + j * d, *l = law->eigenvalues + j * d;
        double *x = out + p * d;
        if (!law->basis) {
            /* same order of draws and arithmetic as data.c's law_point: m + sqrt(l) z */
            for (size_t i = 0; i < d; i++) x[i] = m[i] + sqrt(l[i]) * cm_rng_normal(&point);
            continue;
        }
        memcpy(x, m, d * sizeof(double));
        for (size_t c = 0; c < d; c++) {
            double scaled = sqrt(l[c]) * cm_rng_normal(&point);
            const double *u = law->basis + c * d;
            for (size_t i = 0; i < d; i++) x[i] += u[i] * scaled;
        }
    }
    rng->position = base + n;
}

/* ---------------------------------------------------------------- the forward process */

void cm_law_abar(double lambda, double *abar, double *one_minus_abar) {
    *abar = 1.0 / (1.0 + exp(-lambda));
    *one_minus_abar = 1.0 / (1.0 + exp(lambda));
}

/* ---------------------------------------------------------------- the forward process
 * Scratch layout of the *_point functions (cm_law_scratch_size = 2K + 2d): lw[K], K spare,
 * r[d] = x - sqrt(abar) m_j, y[d] = U' r. */

/* Component j's unnormalised log term log pi_j + log N(x; sqrt(abar) m_j, U diag(v_j) U'),
 * v_j = abar l_j + 1 - abar; leaves r = x - sqrt(abar) m_j and y = U' r (each d) behind for
 * the caller. */
static double component_log_term(const cm_law *law, size_t j, double abar, double one_minus,
                                 const double *x, double *r, double *y) {
    size_t d = law->d;
    const double *m = law->means + j * d, *l = law->eigenvalues + j * d;
    double root = sqrt(abar);
    for (size_t i = 0; i < d; i++) r[i] = x[i] - root * m[i];
    cm_law_to_eigen(law, r, y);
    double quadratic = 0.0, log_det = 0.0;
    for (size_t i = 0; i < d; i++) {
        double v = abar * l[i] + one_minus;
        quadratic += y[i] * y[i] / v;
        log_det += log(v);
    }
    return law->log_weights[j] - 0.5 * (quadratic + log_det + (double)d * LOG_2PI);
}

/* lw[j] = component_log_term(j) into scratch[0..K); returns their log-sum-exp, log p_t(x). */
static double log_terms(const cm_law *law, double abar, double one_minus, const double *x,
                        double *scratch) {
    size_t d = law->d, k = law->k;
    double *lw = scratch, *r = scratch + 2 * k, *y = r + d;
    double largest = -INFINITY;
    for (size_t j = 0; j < k; j++) {
        lw[j] = component_log_term(law, j, abar, one_minus, x, r, y);
        if (lw[j] > largest) largest = lw[j];
    }
    double sum = 0.0;
    for (size_t j = 0; j < k; j++) sum += exp(lw[j] - largest);
    return largest + log(sum);
}

double cm_law_log_density_point(const cm_law *law, double lambda, const double *x,
                                double *scratch) {
    double abar, one_minus;
    cm_law_abar(lambda, &abar, &one_minus);
    return log_terms(law, abar, one_minus, x, scratch);
}

void cm_law_denoise_point(const cm_law *law, double lambda, const double *x, double *out,
                          double *log_weights, double *scratch) {
    size_t d = law->d, k = law->k;
    double abar, one_minus;
    cm_law_abar(lambda, &abar, &one_minus);
    double *lw = scratch, *r = scratch + 2 * k, *y = r + d;
    double total = log_terms(law, abar, one_minus, x, scratch), root = sqrt(abar);
    memset(out, 0, d * sizeof(double));
    for (size_t j = 0; j < k; j++) {
        lw[j] -= total;
        if (log_weights) log_weights[j] = lw[j];
        double w = exp(lw[j]);
        if (w == 0.0) continue; /* underflowed: contributes nothing in double */
        const double *m = law->means + j * d, *l = law->eigenvalues + j * d;
        for (size_t i = 0; i < d; i++) r[i] = x[i] - root * m[i];
        cm_law_to_eigen(law, r, y);
        for (size_t i = 0; i < d; i++) {
            y[i] *= w * root * l[i] / (abar * l[i] + one_minus);
            out[i] += w * m[i];
        }
        cm_law_from_eigen_add(law, y, out);
    }
}

static cm_status check_batch(const cm_law *law, double lambda, const void *x, size_t n,
                             const void *out) {
    if (!law || (!x && n) || (!out && n))
        return cm_error_set(CM_ERR_INVALID, "law: NULL argument");
    if (!isfinite(lambda)) return cm_error_set(CM_ERR_NONFINITE, "law: lambda %g", lambda);
    if (fabs(lambda) > CM_LAW_MAX_ABS_LAMBDA)
        return cm_error_set(CM_ERR_INVALID, "law: |lambda| = %g > %g (1 - abar or abar would "
                            "underflow)", fabs(lambda), CM_LAW_MAX_ABS_LAMBDA);
    return CM_OK;
}

static double *scratch_alloc(const cm_law *law) {
    return cm_malloc(cm_law_scratch_size(law), sizeof(double));
}

cm_status cm_law_log_density(const cm_law *law, double lambda, const double *x, size_t n,
                             double *out) {
    CM_TRY(check_batch(law, lambda, x, n, out));
    double *scratch = scratch_alloc(law);
    if (!scratch) return cm_error_set(CM_ERR_NOMEM, "law: scratch");
    for (size_t p = 0; p < n; p++)
        out[p] = cm_law_log_density_point(law, lambda, x + p * law->d, scratch);
    cm_free(scratch);
    return CM_OK;
}

cm_status cm_law_denoise(const cm_law *law, double lambda, const double *x, size_t n,
                         double *out) {
    CM_TRY(check_batch(law, lambda, x, n, out));
    double *scratch = scratch_alloc(law);
    if (!scratch) return cm_error_set(CM_ERR_NOMEM, "law: scratch");
    for (size_t p = 0; p < n; p++)
        cm_law_denoise_point(law, lambda, x + p * law->d, out + p * law->d, NULL, scratch);
    cm_free(scratch);
    return CM_OK;
}

/* Tweedie: grad log p_t(x) = (sqrt(abar) D(x) - x) / (1 - abar). */
cm_status cm_law_score(const cm_law *law, double lambda, const double *x, size_t n,
                       double *out) {
    CM_TRY(cm_law_denoise(law, lambda, x, n, out));
    double abar, one_minus;
    cm_law_abar(lambda, &abar, &one_minus);
    double root = sqrt(abar);
    for (size_t i = 0; i < n * law->d; i++) out[i] = (root * out[i] - x[i]) / one_minus;
    return CM_OK;
}

/* No allocation: row j of means holds r = x - sqrt(abar) m_j and row j of variances holds
 * y = U' r until both are overwritten with the posterior's moments. */
cm_status cm_law_posterior(const cm_law *law, double lambda, const double *x, double *log_weights,
                           double *means, double *variances) {
    if (!log_weights || !means || !variances)
        return cm_error_set(CM_ERR_INVALID, "law posterior: NULL output");
    CM_TRY(check_batch(law, lambda, x, 1, x));
    size_t d = law->d, k = law->k;
    double abar, one_minus;
    cm_law_abar(lambda, &abar, &one_minus);
    double root = sqrt(abar);
    for (size_t j = 0; j < k; j++) {
        const double *m = law->means + j * d, *l = law->eigenvalues + j * d;
        double *mean = means + j * d, *y = variances + j * d;
        log_weights[j] = component_log_term(law, j, abar, one_minus, x, mean, y);
        for (size_t i = 0; i < d; i++) y[i] *= root * l[i] / (abar * l[i] + one_minus);
        memcpy(mean, m, d * sizeof(double));
        cm_law_from_eigen_add(law, y, mean);
        for (size_t i = 0; i < d; i++) y[i] = l[i] * (one_minus / (abar * l[i] + one_minus));
    }
    double largest = -INFINITY, sum = 0.0;
    for (size_t j = 0; j < k; j++) largest = fmax(largest, log_weights[j]);
    for (size_t j = 0; j < k; j++) sum += exp(log_weights[j] - largest);
    double total = largest + log(sum);
    for (size_t j = 0; j < k; j++) log_weights[j] -= total;
    return CM_OK;
}

void cm_law_posterior_draw(const cm_law *law, const double *log_weights, const double *means,
                          const double *variances, cm_rng *rng, size_t n, double *out) {
    size_t d = law->d;
    uint64_t base = rng->position;
    for (size_t p = 0; p < n; p++) {
        cm_rng point;
        cm_rng_fork(&point, rng, base + p);
        size_t j = cm_law_draw_component(law, log_weights, &point);
        double *sample = out + p * d;
        memcpy(sample, means + j * d, d * sizeof(double));
        const double *variance = variances + j * d;
        for (size_t c = 0; c < d; c++) {
            double scaled = sqrt(variance[c]) * cm_rng_normal(&point);
            if (!law->basis) {
                sample[c] += scaled;
                continue;
            }
            const double *u = law->basis + c * d;
            for (size_t i = 0; i < d; i++) sample[i] += u[i] * scaled;
        }
    }
    rng->position = base + n;
}

cm_status cm_law_posterior_sample(const cm_law *law, double lambda, const double *x, cm_rng *rng,
                                  size_t n, double *out) {
    if (!rng || (!out && n)) return cm_error_set(CM_ERR_INVALID, "law posterior: NULL argument");
    size_t d = law->d, k = law->k;
    double *log_weights = cm_malloc(k + 2 * k * d, sizeof(double));
    if (!log_weights) return cm_error_set(CM_ERR_NOMEM, "law posterior: %zu x %zu", k, d);
    double *means = log_weights + k, *variances = means + k * d;
    cm_status status = cm_law_posterior(law, lambda, x, log_weights, means, variances);
    if (status == CM_OK) cm_law_posterior_draw(law, log_weights, means, variances, rng, n, out);
    cm_free(log_weights);
    return status;
}
