/* test_law.c: exact laws (suite `law`): the flow-map integrator against the Gaussian closed
 * form, score and denoiser against finite differences of the log density, posterior weights of
 * far-apart modes against hand-computed values, posterior sampling and the DDIM identity
 * E[U_{t-1} | U_t = x] = a_t x + b_t D_t(x) by Monte Carlo (tolerances of SIGMAS standard
 * errors from the sample size, seed printed), the flow map in law and its inverse, and the
 * gauss: spectrum source (same draws as cm_law_sample).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/data.h"
#include "cm/law.h"
#include "cm/schedule.h"
#include "test.h"

#define SIGMAS 5.0

static double max_abs_diff(const double *a, const double *b, size_t n) {
    double m = 0.0;
    for (size_t i = 0; i < n; i++) m = fmax(m, fabs(a[i] - b[i]));
    return m;
}

/* A random symmetric positive definite d x d matrix Q diag(s) Q' built from normals. */
static void random_spd(double *out, size_t d, uint64_t seed) {
    cm_rng rng;
    cm_rng_init(&rng, seed);
    double *b = malloc(d * d * sizeof(double));
    for (size_t i = 0; i < d * d; i++) b[i] = cm_rng_normal(&rng);
    for (size_t i = 0; i < d; i++)
        for (size_t j = 0; j < d; j++) {
            double s = i == j ? 0.1 : 0.0;
            for (size_t k = 0; k < d; k++) s += b[i * d + k] * b[j * d + k];
            out[i * d + j] = s;
        }
    free(b);
}

/* Flow from lambda -6 to 7 and back by the ODE and by the closed form. */
static void check_ode_against_closed_form(const cm_law *law, const char *what) {
    size_t d = cm_law_dim(law), n = 5;
    double *x = malloc(4 * n * d * sizeof(double)), *ode = x + n * d, *closed = ode + n * d,
           *back = closed + n * d;
    cm_rng rng;
    cm_rng_init(&rng, 7);
    cm_rng_normal_fill_f64(&rng, x, n * d);
    for (size_t i = 0; i < n * d; i++) x[i] *= 2.0;
    cm_law_flow_options o = cm_law_flow_options_default();
    cm_law_flow_stats stats;
    CM_CHECK_OK(cm_law_flow(law, -6.0, 7.0, x, n, closed, NULL, NULL));
    o.force_ode = 1;
    CM_CHECK_OK(cm_law_flow(law, -6.0, 7.0, x, n, ode, &o, &stats));
    double scale = 1.0 + max_abs_diff(closed, ode + n * d, 0); /* = 1 */
    for (size_t i = 0; i < n * d; i++) scale = fmax(scale, fabs(closed[i]));
    double error = max_abs_diff(ode, closed, n * d);
    CM_CHECK(error <= 1e-8 * scale, "%s: ODE vs closed form max error %.3g (scale %.3g)", what,
             error, scale);
    CM_CHECK(stats.steps > 0 && stats.denoiser_calls >= 6 * stats.steps, "%s: stats", what);
    CM_CHECK_OK(cm_law_flow(law, 7.0, -6.0, ode, n, back, &o, NULL));
    error = max_abs_diff(back, x, n * d);
    CM_CHECK(error <= 1e-7, "%s: t -> k -> t error %.3g", what, error);
    free(x);
}

static void test_flow_gaussian_closed_form(void) {
    size_t d = 16;
    double mean[16], variances[16], cov[16 * 16];
    for (size_t i = 0; i < d; i++) {
        mean[i] = 0.5 * (double)i - 3.0;
        variances[i] = pow(10.0, -2.0 + 4.0 * (double)i / (double)(d - 1)); /* logspace(-2,2) */
    }
    cm_law *law = NULL;
    double iso[16];
    for (size_t i = 0; i < d; i++) iso[i] = 2.5;
    CM_CHECK_OK(cm_law_gaussian_diagonal(&law, d, mean, iso));
    if (law) check_ode_against_closed_form(law, "isotropic");
    cm_law_free(law);
    CM_CHECK_OK(cm_law_gaussian_diagonal(&law, d, NULL, variances));
    if (law) check_ode_against_closed_form(law, "logspace(-2,2)");
    cm_law_free(law);
    random_spd(cov, 6, 3);
    CM_CHECK_OK(cm_law_gaussian(&law, 6, mean, cov));
    if (law) check_ode_against_closed_form(law, "full covariance");
    cm_law_free(law);
}

/* Moments of a full Gaussian law reproduce its covariance (eigendecomposition round trip). */
static void test_gaussian_moments(void) {
    size_t d = 5;
    double cov[25], mean[5] = {1, -2, 3, 0, 0.5}, m[5], c[25];
    random_spd(cov, d, 11);
    cm_law *law = NULL;
    CM_CHECK_OK(cm_law_gaussian(&law, d, mean, cov));
    if (!law) return;
    cm_law_moments(law, m, c);
    CM_CHECK(max_abs_diff(m, mean, d) == 0.0, "mean");
    CM_CHECK(max_abs_diff(c, cov, d * d) < 1e-12 * 50, "covariance %.3g", max_abs_diff(c, cov, 25));
    cm_law_free(law);
    cov[1] += 1.0; /* not symmetric */
    CM_CHECK(cm_law_gaussian(&law, d, mean, cov) == CM_ERR_INVALID, "asymmetric accepted");
    double bad[4] = {1, 2, 2, 1}; /* eigenvalues 3, -1 */
    CM_CHECK(cm_law_gaussian(&law, 2, NULL, bad) == CM_ERR_INVALID, "indefinite accepted");
    double nan_var[2] = {1, NAN};
    CM_CHECK(cm_law_gaussian_diagonal(&law, 2, NULL, nan_var) == CM_ERR_NONFINITE, "NaN");
    double w[2] = {1, 0}, mu[2] = {0, 1}, s[2] = {1, 1};
    CM_CHECK(cm_law_mixture_isotropic(&law, 1, 2, w, mu, s) == CM_ERR_INVALID, "zero weight");
}

/* Central differences of log p_t give the score; D = (x + (1 - abar) score) / sqrt(abar). */
static void check_score(const cm_law *law, double lambda, const double *x, const char *what) {
    size_t d = cm_law_dim(law);
    double *score = malloc(4 * d * sizeof(double)), *den = score + d, *xp = den + d,
           *scratch = malloc(cm_law_scratch_size(law) * sizeof(double));
    CM_CHECK_OK(cm_law_score(law, lambda, x, 1, score));
    CM_CHECK_OK(cm_law_denoise(law, lambda, x, 1, den));
    double abar = 1.0 / (1.0 + exp(-lambda)), one_minus = 1.0 / (1.0 + exp(lambda));
    for (size_t i = 0; i < d; i++) {
        double h = 1e-5;
        memcpy(xp, x, d * sizeof(double));
        xp[i] = x[i] + h;
        double up = cm_law_log_density_point(law, lambda, xp, scratch);
        xp[i] = x[i] - h;
        double down = cm_law_log_density_point(law, lambda, xp, scratch);
        double fd = (up - down) / (2.0 * h);
        CM_CHECK(fabs(fd - score[i]) <= 1e-6 * (1.0 + fabs(score[i])),
                 "%s: score[%zu] %.12g vs finite difference %.12g", what, i, score[i], fd);
        double tweedie = (x[i] + one_minus * fd) / sqrt(abar);
        CM_CHECK(fabs(tweedie - den[i]) <= 1e-6 * (1.0 + fabs(den[i])) / sqrt(abar),
                 "%s: D[%zu] %.12g vs Tweedie of finite difference %.12g", what, i, den[i],
                 tweedie);
    }
    free(score);
    free(scratch);
}

static void test_score_denoiser_finite_differences(void) {
    double w[3] = {0.2, 0.5, 0.3}, means[6] = {-1, 0.5, 2, 1, 0, -1.5}, stds[3] = {0.3, 0.7, 0.1};
    cm_law *law = NULL;
    CM_CHECK_OK(cm_law_mixture_isotropic(&law, 2, 3, w, means, stds));
    double x[2] = {0.4, -0.2};
    if (law) {
        check_score(law, 0.0, x, "mixture lambda 0");
        check_score(law, 2.5, x, "mixture lambda 2.5");
        check_score(law, -3.0, x, "mixture lambda -3");
    }
    cm_law_free(law);
    double cov[16], mean[4] = {0.3, -1, 2, 0}, x4[4] = {1, 0.5, -0.5, 2};
    random_spd(cov, 4, 5);
    CM_CHECK_OK(cm_law_gaussian(&law, 4, mean, cov));
    if (law) check_score(law, 1.0, x4, "full Gaussian");
    cm_law_free(law);
}

/* Modes at -+50 with std 0.5 (200 standard deviations apart). With equal v for both,
 * log w_+ - log w_- = delta = x sqrt(abar) (m_+ - m_-) / v, so log w_- = -log1p(e^delta) =
 * -delta - log1p(e^-delta): at x = 10, delta is about 4000 and w_- = e^-4000 underflows, its
 * log must not. */
static void test_posterior_far_modes(void) {
    double w[2] = {1, 1}, means[2] = {-50, 50}, stds[2] = {0.5, 0.5};
    cm_law *law = NULL;
    CM_CHECK_OK(cm_law_mixture_isotropic(&law, 1, 2, w, means, stds));
    if (!law) return;
    double lambda = 10.0, abar = 1.0 / (1.0 + exp(-lambda)), one_minus = 1.0 / (1.0 + exp(lambda));
    double v = abar * 0.25 + one_minus;
    double xs[3] = {10.0, 0.0, -0.003};
    for (int c = 0; c < 3; c++) {
        double x = xs[c], lw[2], pm[2], pv[2];
        CM_CHECK_OK(cm_law_posterior(law, lambda, &x, lw, pm, pv));
        double delta = x * sqrt(abar) * 100.0 / v;
        double want_minus = -fmax(delta, 0.0) - log1p(exp(-fabs(delta)));
        double want_plus = -fmax(-delta, 0.0) - log1p(exp(-fabs(delta)));
        CM_CHECK(isfinite(lw[0]) && isfinite(lw[1]), "x = %g: weights %g %g", x, lw[0], lw[1]);
        CM_CHECK_CLOSE(lw[0], want_minus, 1e-12 * (1.0 + fabs(want_minus)), "log w_-");
        CM_CHECK_CLOSE(lw[1], want_plus, 1e-12 * (1.0 + fabs(want_plus)), "log w_+");
        for (int j = 0; j < 2; j++) {
            CM_CHECK_CLOSE(pm[j], means[j] + sqrt(abar) * 0.25 / v * (x - sqrt(abar) * means[j]),
                           1e-12, "posterior mean");
            CM_CHECK_CLOSE(pv[j], 0.25 * one_minus / v, 1e-15, "posterior variance");
        }
        double den;
        CM_CHECK_OK(cm_law_denoise(law, lambda, &x, 1, &den));
        CM_CHECK_CLOSE(den, exp(lw[0]) * pm[0] + exp(lw[1]) * pm[1], 1e-12, "denoiser");
        double logp;
        CM_CHECK_OK(cm_law_log_density(law, lambda, &x, 1, &logp));
        CM_CHECK(isfinite(logp), "log density at x = %g is %g", x, logp);
    }
    cm_law_free(law);
}

/* Posterior draws of a 2-D mixture near its decision boundary: mean and covariance of the draws
 * against sum_j w_j (mean_j, diag(var_j) + mean_j mean_j') - mean mean'. */
static void test_posterior_sample_moments(void) {
    uint64_t seed = cm_test_seed(21);
    double w[2] = {0.4, 0.6}, means[4] = {-1, 0, 1.5, 1}, stds[2] = {0.5, 0.8};
    cm_law *law = NULL;
    CM_CHECK_OK(cm_law_mixture_isotropic(&law, 2, 2, w, means, stds));
    if (!law) return;
    double x[2] = {0.2, 0.3}, lambda = 0.5, lw[2], pm[4], pv[4];
    CM_CHECK_OK(cm_law_posterior(law, lambda, x, lw, pm, pv));
    double mean[2] = {0, 0}, second[4] = {0, 0, 0, 0};
    for (int j = 0; j < 2; j++)
        for (int a = 0; a < 2; a++) {
            mean[a] += exp(lw[j]) * pm[j * 2 + a];
            for (int b = 0; b < 2; b++)
                second[a * 2 + b] += exp(lw[j]) * ((a == b ? pv[j * 2 + a] : 0.0) +
                                                   pm[j * 2 + a] * pm[j * 2 + b]);
        }
    double den[2];
    CM_CHECK_OK(cm_law_denoise(law, lambda, x, 1, den));
    CM_CHECK(max_abs_diff(den, mean, 2) < 1e-14, "denoiser is the posterior mean");
    size_t n = 40000;
    double *draws = malloc(n * 2 * sizeof(double));
    cm_rng rng;
    cm_rng_init(&rng, seed);
    CM_CHECK_OK(cm_law_posterior_sample(law, lambda, x, &rng, n, draws));
    CM_CHECK(rng.position == n, "rng advanced by %llu", (unsigned long long)rng.position);
    double m[2] = {0, 0}, s[4] = {0, 0, 0, 0}, fourth[2] = {0, 0}, cross = 0.0;
    for (size_t i = 0; i < n; i++)
        for (int a = 0; a < 2; a++) m[a] += draws[i * 2 + a] / (double)n;
    for (size_t i = 0; i < n; i++)
        for (int a = 0; a < 2; a++) {
            double da = draws[i * 2 + a] - mean[a];
            fourth[a] += da * da * da * da / (double)n;
            for (int b = 0; b < 2; b++) s[a * 2 + b] += da * (draws[i * 2 + b] - mean[b]) / (double)n;
            if (a == 0) { /* (dx dy)^2: the variance of one term of the sample covariance */
                double product = da * (draws[i * 2 + 1] - mean[1]);
                cross += product * product / (double)n;
            }
        }
    for (int a = 0; a < 2; a++) {
        double var = second[a * 3] - mean[a] * mean[a];
        CM_CHECK_CLOSE(m[a], mean[a], SIGMAS * sqrt(var / (double)n), "posterior sample mean");
        CM_CHECK_CLOSE(s[a * 3], var, SIGMAS * sqrt((fourth[a] - var * var) / (double)n),
                       "posterior sample variance");
    }
    double cov01 = second[1] - mean[0] * mean[1];
    CM_CHECK_CLOSE(s[1], cov01, SIGMAS * sqrt((cross - cov01 * cov01) / (double)n),
                   "posterior sample covariance");
    free(draws);
    cm_law_free(law);
}

/* [LHW] (docs/math.md): with the same Z, U_{t-1} = sqrt(abar_{t-1}) X_0 + sqrt(1 - abar_{t-1}) Z and
 * Z = (x - sqrt(abar_t) X_0) / sqrt(1 - abar_t), so draws of X_0 | U_t = x give draws of
 * U_{t-1} | U_t = x whose mean must be the DDIM step a_t x + b_t D_t(x). */
static void test_ddim_identity(void) {
    uint64_t seed = cm_test_seed(33);
    double w[3] = {1, 2, 1}, means[3] = {-2, 0.5, 3}, stds[3] = {0.3, 0.5, 0.2};
    cm_law *law = NULL;
    CM_CHECK_OK(cm_law_mixture_isotropic(&law, 1, 3, w, means, stds));
    cm_lhw_schedule s;
    CM_CHECK_OK(cm_lhw_schedule_init(&s, 50, 2.0, 4.0));
    if (!law) return;
    size_t n = 50000, t = 30;
    double ab = exp(s.log_abar[t]), ab1 = exp(s.log_abar[t - 1]);
    double om = s.one_minus_abar[t], om1 = s.one_minus_abar[t - 1];
    double a_t = sqrt(om1 / om), b_t = sqrt(ab1) - a_t * sqrt(ab);
    double lambda = cm_lhw_schedule_log_snr(&s, t);
    double *x0 = malloc(n * sizeof(double));
    for (int c = 0; c < 3; c++) {
        double x = -1.0 + 1.2 * c;
        cm_rng rng;
        cm_rng_init(&rng, seed + (uint64_t)c);
        CM_CHECK_OK(cm_law_posterior_sample(law, lambda, &x, &rng, n, x0));
        double sum = 0.0, sum2 = 0.0;
        for (size_t i = 0; i < n; i++) {
            double z = (x - sqrt(ab) * x0[i]) / sqrt(om);
            double u = sqrt(ab1) * x0[i] + sqrt(om1) * z;
            sum += u;
            sum2 += u * u;
        }
        double mean = sum / (double)n, var = sum2 / (double)n - mean * mean, den;
        CM_CHECK_OK(cm_law_denoise(law, lambda, &x, 1, &den));
        CM_CHECK_CLOSE(mean, a_t * x + b_t * den, SIGMAS * sqrt(var / (double)n) + 1e-12,
                       "E[U_{t-1} | U_t = x] vs DDIM step");
    }
    free(x0);
    cm_lhw_schedule_free(&s);
    cm_law_free(law);
}

/* Samples of X_t pushed by the flow map have the mean and variance of X_k (a bimodal mixture). */
static void test_flow_in_law(void) {
    uint64_t seed = cm_test_seed(44);
    double w[2] = {0.3, 0.7}, means[2] = {-2, 1.5}, stds[2] = {0.4, 0.6};
    cm_law *law = NULL;
    CM_CHECK_OK(cm_law_mixture_isotropic(&law, 1, 2, w, means, stds));
    if (!law) return;
    size_t n = 4000;
    double lt = -1.0, lk = 4.0, at = 1.0 / (1.0 + exp(-lt)), ak = 1.0 / (1.0 + exp(-lk));
    double *x = malloc(3 * n * sizeof(double)), *y = x + n, *z = y + n;
    cm_rng rng;
    cm_rng_init(&rng, seed);
    cm_law_sample(law, &rng, n, x);
    cm_rng_normal_fill_f64(&rng, z, n);
    for (size_t i = 0; i < n; i++) x[i] = sqrt(at) * x[i] + sqrt(1.0 - at) * z[i];
    CM_CHECK_OK(cm_law_flow(law, lt, lk, x, n, y, NULL, NULL));
    double m0, v0;
    cm_law_moments(law, &m0, &v0);
    double mean = sqrt(ak) * m0, var = ak * v0 + (1.0 - ak);
    double sm = 0.0, sv = 0.0, s4 = 0.0;
    for (size_t i = 0; i < n; i++) sm += y[i] / (double)n;
    for (size_t i = 0; i < n; i++) {
        double e = y[i] - mean;
        sv += e * e / (double)n;
        s4 += e * e * e * e / (double)n;
    }
    CM_CHECK_CLOSE(sm, mean, SIGMAS * sqrt(var / (double)n), "flow-map output mean");
    CM_CHECK_CLOSE(sv, var, SIGMAS * sqrt((s4 - var * var) / (double)n), "flow-map output variance");
    /* in 1-D the flow map is monotone */
    for (size_t i = 1; i < n; i++)
        if ((x[i] - x[0]) * (y[i] - y[0]) < 0.0) {
            CM_CHECK(0, "flow map not monotone at %zu", i);
            break;
        }
    free(x);
    cm_law_free(law);
}

static void test_flow_inverse_mixture(void) {
    double w[3] = {1, 1, 1}, means[6] = {-3, 0, 3, 0, 0, 3}, stds[3] = {0.2, 0.4, 0.3};
    cm_law *law = NULL;
    CM_CHECK_OK(cm_law_mixture_isotropic(&law, 2, 3, w, means, stds));
    if (!law) return;
    double x[8] = {0.1, 0.2, -1, 2, 1.5, -0.5, 0, 0}, y[8], back[8];
    cm_law_flow_stats stats;
    CM_CHECK_OK(cm_law_flow(law, -5.0, 6.0, x, 4, y, NULL, &stats));
    CM_CHECK_OK(cm_law_flow(law, 6.0, -5.0, y, 4, back, NULL, NULL));
    CM_CHECK(max_abs_diff(back, x, 8) < 1e-7, "inverse error %.3g", max_abs_diff(back, x, 8));
    CM_CHECK(stats.rejected < stats.steps, "steps %zu rejected %zu", stats.steps, stats.rejected);
    cm_law_flow_options o = cm_law_flow_options_default();
    o.max_steps = 2;
    CM_CHECK(cm_law_flow(law, -5.0, 6.0, x, 1, y, &o, NULL) == CM_ERR_INVALID, "max_steps");
    CM_CHECK(cm_law_flow(law, NAN, 6.0, x, 1, y, NULL, NULL) == CM_ERR_NONFINITE, "NaN lambda");
    CM_CHECK(cm_law_flow(law, 0.0, 800.0, x, 1, y, NULL, NULL) == CM_ERR_INVALID, "lambda 800");
    CM_CHECK(cm_law_denoise(law, -701.0, x, 1, y) == CM_ERR_INVALID, "lambda -701");
    cm_law_free(law);
}

/* gauss:, gauss: with a spectrum and gmm: sources give the exact law and the same draws. */
static void test_from_data(void) {
    const char *sources[] = {"gauss:d=3,mean=1.5,std=0.7", "gmm:d=4,k=3,sep=2,std=0.3,seed=5",
                             "gauss:d=16,spectrum=logspace(-2,2)",
                             "gauss:d=1,mean=-1,spectrum=logspace(0.5,3)"};
    for (int c = 0; c < 4; c++) {
        cm_data *data = NULL;
        cm_law *law = NULL;
        CM_CHECK_OK(cm_data_open(&data, sources[c]));
        if (!data) continue;
        CM_CHECK_OK(cm_law_from_data(&law, data));
        size_t d = cm_data_dim(data), n = 50;
        double *a = malloc(2 * n * d * sizeof(double)), *b = a + n * d;
        cm_rng r1, r2;
        cm_rng_init(&r1, 9);
        r1.position = 17;
        r2 = r1;
        cm_data_sample(data, &r1, n, a);
        if (law) cm_law_sample(law, &r2, n, b);
        CM_CHECK(law && memcmp(a, b, n * d * sizeof(double)) == 0 && r1.position == r2.position,
                 "%s: cm_law_sample differs from cm_data_sample", sources[c]);
        free(a);
        cm_law_free(law);
        cm_data_free(data);
    }
    cm_data *data = NULL;
    cm_law *law = NULL;
    CM_CHECK_OK(cm_data_open(&data, "gauss:d=5,mean=2,spectrum=logspace(-2,2)"));
    if (data) {
        CM_CHECK(strcmp(cm_data_describe(data), "gauss:d=5,mean=2,spectrum=logspace(-2,2)") == 0,
                 "description %s", cm_data_describe(data));
        cm_gmm_view view;
        CM_CHECK_OK(cm_data_gmm(&view, data));
        double want[5] = {0.01, 0.1, 1, 10, 100};
        for (int i = 0; i < 5; i++)
            CM_CHECK(view.variances && fabs(view.variances[i] - want[i]) <= 1e-14 * want[i],
                     "variance %d", i);
        CM_CHECK(isnan(view.stds[0]), "stds[0] of a spectrum is NAN");
        CM_CHECK_OK(cm_law_from_data(&law, data));
        double m[5], cov[25];
        if (law) {
            cm_law_moments(law, m, cov);
            for (int i = 0; i < 5; i++) {
                CM_CHECK(m[i] == 2.0, "mean");
                CM_CHECK(fabs(cov[i * 6] - want[i]) <= 1e-14 * want[i], "variance");
            }
        }
        cm_law_free(law);
        cm_data_free(data);
    }
    const char *bad[] = {"gauss:d=4,spectrum=logspace(-2)", "gauss:d=4,spectrum=logspace(a,2)",
                         "gauss:d=4,spectrum=logspace(-2,2", "gauss:d=4,spectrum=linspace(1,2)",
                         "gauss:d=4,spectrum=logspace(-2,nan)", "gauss:d=4,spectrum=logspace(,2)",
                         "gauss:d=4,spectrum=logspace(1,2)x", "gauss:d=4,std=1,spectrum=logspace(1,2)",
                         "gauss:d=4,spectrum=logspace(-2,400)", "gauss:d=4,spectrum=logspace(1,2),"};
    for (size_t c = 0; c < sizeof bad / sizeof bad[0]; c++) {
        data = NULL;
        CM_CHECK(cm_data_open(&data, bad[c]) != CM_OK && !data, "'%s' accepted", bad[c]);
    }
}


/* Standardised laws: moments of (X - shift) / scale, for a diagonal mixture and a full Gaussian;
 * and a diagonal mixture's draws are the transformed draws (to rounding). */
static void test_standardise(void) {
    double w[2] = {1, 3}, means[4] = {-1, 2, 3, 0}, variances[4] = {0.5, 2, 0.1, 1};
    double shift[2] = {0.5, -1}, scale[2] = {2, 0.25};
    cm_law *law = NULL, *st = NULL;
    CM_CHECK_OK(cm_law_mixture_diagonal(&law, 2, 2, w, means, variances));
    if (law) CM_CHECK_OK(cm_law_standardise(&st, law, shift, scale));
    if (law && st) {
        double m[2], c[4], ms[2], cs[4];
        cm_law_moments(law, m, c);
        cm_law_moments(st, ms, cs);
        for (int a = 0; a < 2; a++) {
            CM_CHECK_CLOSE(ms[a], (m[a] - shift[a]) / scale[a], 1e-14, "standardised mean");
            for (int b = 0; b < 2; b++)
                CM_CHECK_CLOSE(cs[a * 2 + b], c[a * 2 + b] / (scale[a] * scale[b]), 1e-13,
                               "standardised covariance");
        }
        double x[20], y[20];
        cm_rng r1, r2;
        cm_rng_init(&r1, 4);
        r2 = r1;
        cm_law_sample(law, &r1, 10, x);
        cm_law_sample(st, &r2, 10, y);
        for (int i = 0; i < 20; i++)
            CM_CHECK_CLOSE(y[i], (x[i] - shift[i % 2]) / scale[i % 2], 1e-13, "standardised draw");
    }
    cm_law_free(st);
    cm_law_free(law);
    double cov[9], mean[3] = {1, 2, 3}, sh[3] = {1, 0, -1}, sc[3] = {0.5, 2, 3}, m[3], c[9];
    random_spd(cov, 3, 8);
    law = st = NULL;
    CM_CHECK_OK(cm_law_gaussian(&law, 3, mean, cov));
    if (law) CM_CHECK_OK(cm_law_standardise(&st, law, sh, sc));
    if (st) {
        cm_law_moments(st, m, c);
        for (int a = 0; a < 3; a++) {
            CM_CHECK_CLOSE(m[a], (mean[a] - sh[a]) / sc[a], 1e-14, "full: mean");
            for (int b = 0; b < 3; b++)
                CM_CHECK_CLOSE(c[a * 3 + b], cov[a * 3 + b] / (sc[a] * sc[b]), 1e-12, "full: cov");
        }
    }
    sc[1] = 0.0;
    cm_law *bad = NULL;
    if (law) CM_CHECK(cm_law_standardise(&bad, law, sh, sc) == CM_ERR_INVALID && !bad, "scale 0");
    cm_law_free(st);
    cm_law_free(law);
}

/* In 1-D the flow map is the monotone transport: F_k(Phi(x)) = F_t(x) for the mixture CDFs
 * (computed here with erfc, independently of the library), to the integrator's tolerance. */
static double mixture_cdf(const double *w, const double *m, const double *s, int k, double lambda,
                          double x) {
    double abar = 1.0 / (1.0 + exp(-lambda)), one_minus = 1.0 / (1.0 + exp(lambda)), sum = 0.0;
    for (int j = 0; j < k; j++) {
        double sd = sqrt(abar * s[j] * s[j] + one_minus);
        sum += w[j] * 0.5 * erfc(-(x - sqrt(abar) * m[j]) / (sd * sqrt(2.0)));
    }
    return sum;
}

static void test_flow_is_monotone_transport(void) {
    double w[3] = {0.2, 0.5, 0.3}, means[3] = {-3, 0.5, 2.5}, stds[3] = {0.3, 0.6, 0.2};
    cm_law *law = NULL;
    CM_CHECK_OK(cm_law_mixture_isotropic(&law, 1, 3, w, means, stds));
    if (!law) return;
    double x[9], y[9], lt = -2.0, lk = 5.0;
    for (int i = 0; i < 9; i++) x[i] = -2.0 + 0.5 * i;
    CM_CHECK_OK(cm_law_flow(law, lt, lk, x, 9, y, NULL, NULL));
    for (int i = 0; i < 9; i++) {
        double before = mixture_cdf(w, means, stds, 3, lt, x[i]);
        double after = mixture_cdf(w, means, stds, 3, lk, y[i]);
        CM_CHECK(fabs(before - after) < 1e-8, "x %g -> %g: CDF %.12g vs %.12g", x[i], y[i],
                 before, after);
    }
    cm_law_free(law);
}

/* Every allocation failure of the constructors returns CM_ERR_NOMEM and leaks nothing. */
static void test_out_of_memory(void) {
    double cov[9], mean[3] = {0, 1, 2}, shift[3] = {0, 0, 0}, scale[3] = {1, 2, 3};
    random_spd(cov, 3, 2);
    long live = cm_alloc_live_count();
    int succeeded = 0;
    for (long k = 0; k < 20 && !succeeded; k++) {
        cm_law *law = NULL, *st = NULL;
        cm_alloc_fail_after(k);
        cm_status status = cm_law_gaussian(&law, 3, mean, cov);
        if (status == CM_OK) status = cm_law_standardise(&st, law, shift, scale);
        cm_alloc_fail_after(-1);
        CM_CHECK(status == CM_OK || status == CM_ERR_NOMEM, "k %ld: %s", k, cm_status_name(status));
        succeeded = status == CM_OK;
        cm_law_free(st);
        cm_law_free(law);
        CM_CHECK(cm_alloc_live_count() == live, "k %ld: %ld allocations leaked", k,
                 cm_alloc_live_count() - live);
    }
    CM_CHECK(succeeded, "never succeeded");
}

/* A full-covariance Gaussian by explicit 2 x 2 conditioning: with C = abar S + (1 - abar) I,
 * E[X_0 | x] = mu + sqrt(abar) S C^-1 (x - sqrt(abar) mu) and Cov = S - abar S C^-1 S; the
 * denoiser exactly, the posterior draws' covariance within its sampling error. */
static void test_posterior_full_covariance(void) {
    uint64_t seed = cm_test_seed(66);
    double S[4] = {2.0, 0.8, 0.8, 1.0}, mu[2] = {1.0, -0.5}, x[2] = {0.3, 0.9}, lambda = 0.7;
    cm_law *law = NULL;
    CM_CHECK_OK(cm_law_gaussian(&law, 2, mu, S));
    if (!law) return;
    double ab = 1.0 / (1.0 + exp(-lambda)), om = 1.0 / (1.0 + exp(lambda)), r = sqrt(ab);
    double C[4] = {ab * S[0] + om, ab * S[1], ab * S[2], ab * S[3] + om};
    double det = C[0] * C[3] - C[1] * C[2];
    double Ci[4] = {C[3] / det, -C[1] / det, -C[2] / det, C[0] / det};
    double SCi[4]; /* S C^-1 */
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++) SCi[a * 2 + b] = S[a * 2] * Ci[b] + S[a * 2 + 1] * Ci[2 + b];
    double want_mean[2], want_cov[4], den[2];
    for (int a = 0; a < 2; a++)
        want_mean[a] = mu[a] + r * (SCi[a * 2] * (x[0] - r * mu[0]) + SCi[a * 2 + 1] * (x[1] - r * mu[1]));
    for (int a = 0; a < 2; a++)
        for (int b = 0; b < 2; b++)
            want_cov[a * 2 + b] = S[a * 2 + b] - ab * (SCi[a * 2] * S[b] + SCi[a * 2 + 1] * S[2 + b]);
    CM_CHECK_OK(cm_law_denoise(law, lambda, x, 1, den));
    CM_CHECK(max_abs_diff(den, want_mean, 2) < 1e-13, "full-covariance denoiser off by %.3g",
             max_abs_diff(den, want_mean, 2));
    size_t n = 40000;
    double *draws = malloc(2 * n * sizeof(double));
    cm_rng rng;
    cm_rng_init(&rng, seed);
    CM_CHECK_OK(cm_law_posterior_sample(law, lambda, x, &rng, n, draws));
    for (int a = 0; a < 2; a++)
        for (int b = a; b < 2; b++) {
            double sum = 0.0, sum2 = 0.0;
            for (size_t i = 0; i < n; i++) {
                double p = (draws[2 * i + a] - want_mean[a]) * (draws[2 * i + b] - want_mean[b]);
                sum += p;
                sum2 += p * p;
            }
            double c = sum / (double)n, var = sum2 / (double)n - c * c;
            CM_CHECK_CLOSE(c, want_cov[a * 2 + b], SIGMAS * sqrt(var / (double)n),
                           "full-covariance posterior covariance");
        }
    free(draws);
    cm_law_free(law);
}

/* cm_law_diagonal_components: the law's own normalised log weights, means and variances for
 * diagonal components; refused for a full covariance. */
static void test_diagonal_components(void) {
    const double weights[2] = {1, 3}, means[4] = {-1, 0.5, 2, -3}, variances[4] = {0.25, 1, 4, 0.5};
    cm_law *law = NULL;
    CM_CHECK_OK(cm_law_mixture_diagonal(&law, 2, 2, weights, means, variances));
    const double *log_w = NULL, *m = NULL, *v = NULL;
    CM_CHECK_OK(cm_law_diagonal_components(law, &log_w, &m, &v));
    if (log_w && m && v) {
        CM_CHECK_CLOSE(log_w[0], log(0.25), 1e-15, "log weight 0");
        CM_CHECK_CLOSE(log_w[1], log(0.75), 1e-15, "log weight 1");
        for (int i = 0; i < 4; i++) {
            CM_CHECK(m[i] == means[i], "mean %d: %g", i, m[i]);
            CM_CHECK(v[i] == variances[i], "variance %d: %g", i, v[i]);
        }
    }
    cm_law_free(law);
    const double cov[4] = {1.0, 0.3, 0.3, 2.0};
    CM_CHECK_OK(cm_law_gaussian(&law, 2, NULL, cov));
    CM_CHECK(cm_law_diagonal_components(law, &log_w, &m, &v) == CM_ERR_UNSUPPORTED,
             "a full covariance has no diagonal components");
    cm_law_free(law);
}

const cm_test_case cm_tests_law[] = {
    {"flow_gaussian_closed_form", test_flow_gaussian_closed_form},
    {"gaussian_moments", test_gaussian_moments},
    {"score_denoiser_finite_differences", test_score_denoiser_finite_differences},
    {"posterior_far_modes", test_posterior_far_modes},
    {"posterior_sample_moments", test_posterior_sample_moments},
    {"posterior_full_covariance", test_posterior_full_covariance},
    {"ddim_identity", test_ddim_identity},
    {"flow_in_law", test_flow_in_law},
    {"flow_inverse_mixture", test_flow_inverse_mixture},
    {"from_data", test_from_data},
    {"standardise", test_standardise},
    {"flow_is_monotone_transport", test_flow_is_monotone_transport},
    {"out_of_memory", test_out_of_memory},
    {"diagonal_components", test_diagonal_components},
    {NULL, NULL},
};
