/* test_gaussian.c: closed forms between Gaussians (suite `gaussian`).
 *
 * Known answers derived by hand: diagonal and commuting covariances (W2^2 = |dm|^2 +
 * sum (sqrt a_k - sqrt b_k)^2), the 2 x 2 identity tr sqrt(M) = sqrt(tr M + 2 sqrt(det M)) for
 * a non-commuting pair, 1-D KL, the folded-normal W1 against numerical quadrature of the
 * quantile integral, and the fit of known points. Bad input returns an error without leaks.
 */
#include <math.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/gaussian.h"
#include "cm/rng.h"
#include "test.h"

#define PI 3.14159265358979323846

/* R diag(values) R' with R the rotation by angle t (2 x 2). */
static void rotated(double *out, double t, double a, double b) {
    double c = cos(t), s = sin(t);
    out[0] = c * c * a + s * s * b;
    out[1] = out[2] = c * s * (a - b);
    out[3] = s * s * a + c * c * b;
}

static double w2(const double *m1, const double *s1, const double *m2, const double *s2,
                 size_t d) {
    double out = NAN;
    CM_CHECK_OK(cm_gaussian_w2(&out, m1, s1, m2, s2, d));
    return out;
}

static void test_w2_known_answers(void) {
    /* diagonal: |dm|^2 + sum (sqrt a - sqrt b)^2 */
    const double m1[3] = {0.0, 1.0, -2.0}, m2[3] = {1.0, 1.0, 0.5};
    const double s1[9] = {4, 0, 0, 0, 1, 0, 0, 0, 0.25}, s2[9] = {1, 0, 0, 0, 9, 0, 0, 0, 0.25};
    double expected = sqrt(1.0 + 0.0 + 6.25 + 1.0 + 4.0 + 0.0);
    CM_CHECK_CLOSE(w2(m1, s1, m2, s2, 3), expected, 1e-12, "diagonal");
    CM_CHECK_CLOSE(w2(m1, s1, m1, s1, 3), 0.0, 1e-7, "same law");
    /* commuting (same eigenvectors): rotation-invariant form */
    double c1[4], c2[4];
    rotated(c1, 0.7, 3.0, 0.5);
    rotated(c2, 0.7, 1.0, 2.0);
    const double zero[2] = {0.0, 0.0}, shift[2] = {0.3, -0.4};
    expected = sqrt(0.25 + pow(sqrt(3.0) - 1.0, 2) + pow(sqrt(0.5) - sqrt(2.0), 2));
    CM_CHECK_CLOSE(w2(zero, c1, shift, c2, 2), expected, 1e-12, "commuting");
    /* non-commuting 2 x 2: tr (S1^1/2 S2 S1^1/2)^1/2 = sqrt(tr(S1 S2) + 2 sqrt(det S1 det S2)) */
    rotated(c2, 0.0, 1.0, 2.0);
    double trace12 = c1[0] * c2[0] + c1[1] * c2[2] + c1[2] * c2[1] + c1[3] * c2[3];
    double det1 = c1[0] * c1[3] - c1[1] * c1[2], det2 = c2[0] * c2[3] - c2[1] * c2[2];
    double cross = sqrt(trace12 + 2.0 * sqrt(det1 * det2));
    expected = sqrt(c1[0] + c1[3] + c2[0] + c2[3] - 2.0 * cross);
    CM_CHECK_CLOSE(w2(zero, c1, zero, c2, 2), expected, 1e-12, "non-commuting 2 x 2");
    CM_CHECK_CLOSE(w2(zero, c2, zero, c1, 2), expected, 1e-12, "symmetry");
    /* 1-D: sqrt(dm^2 + ds^2); a singular covariance is allowed */
    const double a1 = 2.0, v1 = 4.0, a2 = -1.0, v2 = 0.0;
    CM_CHECK_CLOSE(w2(&a1, &v1, &a2, &v2, 1), sqrt(9.0 + 4.0), 1e-12, "1-D, point mass");
}

static double kl(const double *m1, const double *s1, const double *m2, const double *s2,
                 size_t d) {
    double out = NAN;
    CM_CHECK_OK(cm_gaussian_kl(&out, m1, s1, m2, s2, d));
    return out;
}

static void test_kl_known_answers(void) {
    /* 1-D: log(s2/s1) + (s1^2 + dm^2) / (2 s2^2) - 1/2 */
    const double m1 = 0.5, v1 = 0.25, m2 = -1.0, v2 = 4.0;
    double expected = log(2.0 / 0.5) + (0.25 + 2.25) / 8.0 - 0.5;
    CM_CHECK_CLOSE(kl(&m1, &v1, &m2, &v2, 1), expected, 1e-13, "1-D");
    CM_CHECK_CLOSE(kl(&m1, &v1, &m1, &v1, 1), 0.0, 1e-15, "same law");
    /* diagonal: the sum of the 1-D values */
    const double mu1[2] = {0.5, 1.0}, mu2[2] = {-1.0, 1.0};
    const double d1[4] = {0.25, 0, 0, 1.0}, d2[4] = {4.0, 0, 0, 3.0};
    expected += log(sqrt(3.0)) + 1.0 / 6.0 - 0.5;
    CM_CHECK_CLOSE(kl(mu1, d1, mu2, d2, 2), expected, 1e-13, "diagonal");
    /* rotation invariance: rotating both laws leaves KL unchanged */
    double r1[4], r2[4];
    rotated(r1, 1.1, 0.25, 1.0);
    rotated(r2, 1.1, 4.0, 3.0);
    const double zero[2] = {0.0, 0.0};
    double rotated_mean[2] = {-1.5 * cos(1.1), -1.5 * sin(1.1)};
    CM_CHECK_CLOSE(kl(zero, r1, rotated_mean, r2, 2), expected, 1e-12, "rotated");
}

/* Midpoint rule for int_0^1 |dm + ds Phi^-1(u)| du written as int |dm + ds z| phi(z) dz on
 * [-12, 12] with a fine step: independent of the closed form. */
static double w1_quadrature(double dm, double ds) {
    const int steps = 200000;
    double h = 24.0 / steps, total = 0.0;
    for (int k = 0; k < steps; k++) {
        double z = -12.0 + (k + 0.5) * h;
        total += fabs(dm + ds * z) * exp(-0.5 * z * z) / sqrt(2.0 * PI) * h;
    }
    return total;
}

static void test_w1_1d(void) {
    double out;
    CM_CHECK_OK(cm_gaussian_w1_1d(&out, 1.0, 2.0, -0.5, 2.0));
    CM_CHECK_CLOSE(out, 1.5, 1e-15, "equal variances: |dm|");
    CM_CHECK_OK(cm_gaussian_w1_1d(&out, 0.0, 3.0, 0.0, 1.0));
    CM_CHECK_CLOSE(out, 2.0 * sqrt(2.0 / PI), 1e-15, "equal means: |ds| sqrt(2/pi)");
    const double cases[][4] = {{0.3, 1.0, 0.0, 2.0}, {-2.0, 0.5, 1.0, 1.5}, {5.0, 1.0, 0.0, 1.1}};
    for (size_t c = 0; c < 3; c++) {
        CM_CHECK_OK(cm_gaussian_w1_1d(&out, cases[c][0], cases[c][1], cases[c][2], cases[c][3]));
        double reference = w1_quadrature(cases[c][0] - cases[c][2], cases[c][1] - cases[c][3]);
        CM_CHECK_CLOSE(out, reference, 1e-8, "closed form vs quadrature");
    }
    /* W1 <= W2 */
    const double m = 0.3, v = 1.0, m2 = 0.0, v2 = 4.0;
    CM_CHECK_OK(cm_gaussian_w1_1d(&out, 0.3, 1.0, 0.0, 2.0));
    CM_CHECK(out <= w2(&m, &v, &m2, &v2, 1), "W1 %g above W2", out);
}

static void test_sqrtm_and_fit(void) {
    double s[9] = {4, 1, 0.5, 1, 3, 0.2, 0.5, 0.2, 2}, root[9], square[9];
    CM_CHECK_OK(cm_gaussian_sqrtm(root, s, 3));
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++) {
            square[i * 3 + j] = 0.0;
            for (int k = 0; k < 3; k++) square[i * 3 + j] += root[i * 3 + k] * root[k * 3 + j];
            CM_CHECK_CLOSE(square[i * 3 + j], s[i * 3 + j], 1e-13, "sqrtm squared");
        }
    /* fit: points (0,0), (2,0), (0,2), (2,2): mean (1,1), covariance (4/3) I */
    const double x[8] = {0, 0, 2, 0, 0, 2, 2, 2};
    double mean[2], cov[4];
    CM_CHECK_OK(cm_gaussian_fit(mean, cov, x, 4, 2));
    CM_CHECK_CLOSE(mean[0], 1.0, 0.0, "mean");
    CM_CHECK_CLOSE(mean[1], 1.0, 0.0, "mean");
    CM_CHECK_CLOSE(cov[0], 4.0 / 3.0, 1e-15, "variance");
    CM_CHECK_CLOSE(cov[1], 0.0, 0.0, "covariance");
    CM_CHECK_CLOSE(cov[3], 4.0 / 3.0, 1e-15, "variance");
    /* a large sample of N(m, S): the fitted law is close to it in W2 (error ~ 1/sqrt(n)) */
    uint64_t seed = cm_test_seed(41);
    cm_rng rng;
    cm_rng_init(&rng, seed);
    enum { N = 20000 };
    double *points = cm_malloc(2 * N, sizeof(double)), law[4], law_root[4];
    const double law_mean[2] = {1.0, -2.0};
    rotated(law, 0.4, 2.0, 0.5);
    CM_CHECK_OK(cm_gaussian_sqrtm(law_root, law, 2));
    for (size_t i = 0; i < N; i++) {
        double z0 = cm_rng_normal(&rng), z1 = cm_rng_normal(&rng);
        points[2 * i] = law_mean[0] + law_root[0] * z0 + law_root[1] * z1;
        points[2 * i + 1] = law_mean[1] + law_root[2] * z0 + law_root[3] * z1;
    }
    CM_CHECK_OK(cm_gaussian_fit(mean, cov, points, N, 2));
    CM_CHECK(w2(mean, cov, law_mean, law, 2) < 10.0 / sqrt((double)N), "fit far from the law");
    cm_free(points);
}

static void test_errors(void) {
    long live = cm_alloc_live_count();
    const double m[2] = {0, 0}, good[4] = {1, 0, 0, 1}, asym[4] = {1, 0.5, 0.1, 1};
    const double negative[4] = {1, 2, 2, 1}, singular[4] = {1, 1, 1, 1}, bad[4] = {1, NAN, NAN, 1};
    double out;
    CM_CHECK(cm_gaussian_w2(&out, m, asym, m, good, 2) == CM_ERR_INVALID, "asymmetric");
    CM_CHECK(strstr(cm_error_detail(), "symmetric") != NULL, "detail: %s", cm_error_detail());
    CM_CHECK(cm_gaussian_w2(&out, m, negative, m, good, 2) == CM_ERR_INVALID, "not PSD");
    CM_CHECK(cm_gaussian_w2(&out, m, good, m, negative, 2) == CM_ERR_INVALID, "cov2 not PSD");
    CM_CHECK(cm_gaussian_w2(&out, m, bad, m, good, 2) == CM_ERR_NONFINITE, "NaN");
    CM_CHECK(cm_gaussian_w2(&out, m, good, m, good, 0) == CM_ERR_INVALID, "d = 0");
    CM_CHECK_OK(cm_gaussian_w2(&out, m, singular, m, good, 2)); /* PSD is enough for W2 */
    CM_CHECK(cm_gaussian_kl(&out, m, singular, m, good, 2) == CM_ERR_INVALID, "KL, singular");
    CM_CHECK(cm_gaussian_kl(&out, m, good, m, singular, 2) == CM_ERR_INVALID, "KL, singular 2");
    CM_CHECK(cm_gaussian_w1_1d(&out, 0, -1, 0, 1) == CM_ERR_INVALID, "negative std");
    CM_CHECK(cm_gaussian_w1_1d(&out, NAN, 1, 0, 1) == CM_ERR_NONFINITE, "NaN mean");
    double mean[2], cov[4];
    CM_CHECK(cm_gaussian_fit(mean, cov, m, 1, 2) == CM_ERR_INVALID, "fit of one point");
    CM_CHECK(cm_alloc_live_count() == live, "leak");
    for (long k = 0; k < 4; k++) {
        cm_alloc_fail_after(k);
        cm_status s1 = cm_gaussian_w2(&out, m, good, m, good, 2);
        cm_status s2 = cm_gaussian_kl(&out, m, good, m, good, 2);
        cm_alloc_fail_after(-1);
        CM_CHECK(s1 == CM_OK || s1 == CM_ERR_NOMEM, "W2 with failing allocation %ld", k);
        CM_CHECK(s2 == CM_OK || s2 == CM_ERR_NOMEM, "KL with failing allocation %ld", k);
        CM_CHECK(cm_alloc_live_count() == live, "leak after failure %ld", k);
    }
}

const cm_test_case cm_tests_gaussian[] = {
    {"w2_known_answers", test_w2_known_answers},
    {"kl_known_answers", test_kl_known_answers},
    {"w1_1d", test_w1_1d},
    {"sqrtm_and_fit", test_sqrtm_and_fit},
    {"errors", test_errors},
    {NULL, NULL},
};
