/* test_image_metrics.c: the image metrics of include/cm/image_metrics.h. FD: zero on identical
 * sets, the closed form on points built to have given moments exactly (and the diagonal
 * formula |dm|^2 + sum (sqrt a - sqrt b)^2 computed here), and on Gaussian samples within a
 * tolerance derived from the sample size; KID: the U-statistic summed here in long double, and
 * unbiasedness on equal laws (seeded, with a tolerance from the spread of the repeats);
 * nearest neighbours against brute force; the class summary on known values; the report on
 * copied training images, on fresh ones and on noise; the report without a classifier (the same
 * pixel numbers); bad input. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cm/gaussian.h"
#include "cm/image_metrics.h"
#include "cm/rng.h"
#include "test.h"

/* 2d points m +- c L e_i, c = sqrt((2d - 1) / 2): their mean is m and their covariance (divisor
 * n - 1 = 2d - 1) is L L' exactly, up to rounding. */
static void points_with_moments(double *out, const double *mean, const double *L, size_t d) {
    double c = sqrt((2.0 * (double)d - 1.0) / 2.0);
    for (size_t i = 0; i < d; i++)
        for (size_t k = 0; k < d; k++) {
            out[(2 * i) * d + k] = mean[k] + c * L[k * d + i];
            out[(2 * i + 1) * d + k] = mean[k] - c * L[k * d + i];
        }
}

static void test_frechet_known_answers(void) {
    enum { D = 3 };
    /* diagonal covariances: FD = |dm|^2 + sum (sqrt a_k - sqrt b_k)^2 */
    const double m1[D] = {0.5, -1, 2}, m2[D] = {0, 1, 2.5};
    const double L1[D * D] = {2, 0, 0, 0, 1, 0, 0, 0, 0.5}, L2[D * D] = {1, 0, 0, 0, 3, 0, 0, 0, 0.5};
    double a[2 * D * D], b[2 * D * D], fd = NAN;
    points_with_moments(a, m1, L1, D);
    points_with_moments(b, m2, L2, D);
    CM_CHECK_OK(cm_frechet_distance(&fd, a, 2 * D, b, 2 * D, D));
    double expected = 0.25 + 4 + 0.25 + (2 - 1) * (2 - 1) + (1 - 3) * (1 - 3) + 0;
    CM_CHECK_CLOSE(fd, expected, 1e-12 * expected, "diagonal covariances");
    /* a full covariance against gaussian.h's closed form on the same moments */
    const double L3[D * D] = {1, 0, 0, 0.8, 0.6, 0, -0.3, 0.5, 0.7};
    double S1[D * D], S3[D * D], w2 = NAN;
    for (size_t i = 0; i < D; i++)
        for (size_t j = 0; j < D; j++) {
            S1[i * D + j] = S3[i * D + j] = 0;
            for (size_t k = 0; k < D; k++)
                S1[i * D + j] += L1[i * D + k] * L1[j * D + k], S3[i * D + j] += L3[i * D + k] * L3[j * D + k];
        }
    points_with_moments(b, m2, L3, D);
    CM_CHECK_OK(cm_frechet_distance(&fd, a, 2 * D, b, 2 * D, D));
    CM_CHECK_OK(cm_gaussian_w2(&w2, m1, S1, m2, S3, D));
    CM_CHECK_CLOSE(fd, w2 * w2, 1e-11 * w2 * w2, "full covariance: the closed form");
    /* FD(a, a) = 0 to rounding */
    CM_CHECK_OK(cm_frechet_distance(&fd, b, 2 * D, b, 2 * D, D));
    CM_CHECK(fd >= 0 && fd <= 1e-12, "FD(a, a) = %.3g", fd);
}

/* Samples of N(m1, S1) and N(m2, S2), n each, d = 2: FD_hat - FD = the mean term's noise
 * (sd 2 sqrt(dm' (S1 + S2) dm / n)) + the covariance term's (about (tr S1 + tr S2) sqrt(2 d / n))
 * + bias (tr S1 + tr S2) / n; tolerance 6 times the noise plus the bias. */
static void test_frechet_samples(void) {
    enum { N = 20000, D = 2 };
    cm_rng rng;
    cm_rng_init(&rng, cm_test_seed(46));
    static double a[N * D], b[N * D];
    const double m1[D] = {0, 0}, m2[D] = {1, -0.5};
    const double L1[D * D] = {1, 0, 0.5, 0.8}, L2[D * D] = {1.5, 0, -0.4, 0.6};
    double S1[D * D], S2[D * D];
    for (int i = 0; i < D; i++)
        for (int j = 0; j < D; j++) {
            S1[i * D + j] = S2[i * D + j] = 0;
            for (int k = 0; k < D; k++)
                S1[i * D + j] += L1[i * D + k] * L1[j * D + k], S2[i * D + j] += L2[i * D + k] * L2[j * D + k];
        }
    for (int r = 0; r < N; r++) {
        double z[4] = {cm_rng_normal(&rng), cm_rng_normal(&rng), cm_rng_normal(&rng),
                       cm_rng_normal(&rng)};
        for (int i = 0; i < D; i++) {
            a[r * D + i] = m1[i] + L1[i * D] * z[0] + L1[i * D + 1] * z[1];
            b[r * D + i] = m2[i] + L2[i * D] * z[2] + L2[i * D + 1] * z[3];
        }
    }
    double fd = NAN, w2 = NAN;
    CM_CHECK_OK(cm_frechet_distance(&fd, a, N, b, N, D));
    CM_CHECK_OK(cm_gaussian_w2(&w2, m1, S1, m2, S2, D));
    double dm[D] = {m2[0] - m1[0], m2[1] - m1[1]}, quad = 0, traces = S1[0] + S1[3] + S2[0] + S2[3];
    for (int i = 0; i < D; i++)
        for (int j = 0; j < D; j++) quad += dm[i] * (S1[i * D + j] + S2[i * D + j]) * dm[j];
    double noise = 2 * sqrt(quad / N) + traces * sqrt(2.0 * D / N), bias = traces / N;
    CM_CHECK(fabs(fd - w2 * w2) <= 6 * noise + bias, "FD %.6f vs closed form %.6f (tolerance %.4f)",
             fd, w2 * w2, 6 * noise + bias);
}

/* The unbiased MMD^2 of the cubic kernel summed pair by pair in long double. */
static double kid_brute_force(const double *a, size_t n, const double *b, size_t m, size_t d) {
    long double aa = 0, bb = 0, ab = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++) {
            if (i == j) continue;
            long double t = 0;
            for (size_t k = 0; k < d; k++) t += (long double)a[i * d + k] * a[j * d + k];
            aa += powl(t / d + 1, 3);
        }
    for (size_t i = 0; i < m; i++)
        for (size_t j = 0; j < m; j++) {
            if (i == j) continue;
            long double t = 0;
            for (size_t k = 0; k < d; k++) t += (long double)b[i * d + k] * b[j * d + k];
            bb += powl(t / d + 1, 3);
        }
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < m; j++) {
            long double t = 0;
            for (size_t k = 0; k < d; k++) t += (long double)a[i * d + k] * b[j * d + k];
            ab += powl(t / d + 1, 3);
        }
    return (double)(aa / (n * (n - 1.0L)) + bb / (m * (m - 1.0L)) - 2 * ab / ((long double)n * m));
}

static void test_kid(void) {
    enum { N = 700, M = 530, D = 3, R = 300, SMALL = 40 }; /* N, M span two Gram blocks */
    cm_rng rng;
    cm_rng_init(&rng, cm_test_seed(47));
    static double a[N * D], b[M * D];
    for (size_t i = 0; i < N * D; i++) a[i] = cm_rng_normal(&rng);
    for (size_t i = 0; i < M * D; i++) b[i] = 0.3 + 1.2 * cm_rng_normal(&rng);
    double kid = NAN, expected = kid_brute_force(a, N, b, M, D);
    CM_CHECK_OK(cm_kernel_inception_distance(&kid, a, N, b, M, D));
    CM_CHECK_CLOSE(kid, expected, 1e-10 * fabs(expected) + 1e-12, "KID against the pair sums");
    /* equal laws: the mean over R repeats is within 4 standard errors of 0; shifted laws are
     * far above */
    double sum = 0, sum2 = 0, shifted = 0;
    for (int r = 0; r < R; r++) {
        for (size_t i = 0; i < SMALL * D; i++) a[i] = cm_rng_normal(&rng), b[i] = cm_rng_normal(&rng);
        CM_CHECK_OK(cm_kernel_inception_distance(&kid, a, SMALL, b, SMALL, D));
        sum += kid, sum2 += kid * kid;
        for (size_t i = 0; i < SMALL * D; i++) b[i] += 1.0;
        CM_CHECK_OK(cm_kernel_inception_distance(&kid, a, SMALL, b, SMALL, D));
        shifted += kid;
    }
    double mean = sum / R, sd = sqrt((sum2 - R * mean * mean) / (R - 1));
    printf("    equal laws: mean KID %.3g, sd %.3g over %d repeats; shifted: mean %.3g\n", mean, sd,
           R, shifted / R);
    CM_CHECK(fabs(mean) <= 4 * sd / sqrt((double)R), "equal laws: mean KID %.3g (sd %.3g)", mean,
             sd);
    CM_CHECK(shifted / R > 10 * sd, "shifted laws: mean KID %.3g not above the noise %.3g",
             shifted / R, sd);
}

static void test_nearest_distances(void) {
    enum { N = 700, M = 1100, D = 5 };
    cm_rng rng;
    cm_rng_init(&rng, cm_test_seed(48));
    static double a[N * D], b[M * D], out[N];
    static size_t nearest[N];
    for (size_t i = 0; i < N * D; i++) a[i] = 3 + cm_rng_normal(&rng);
    for (size_t i = 0; i < M * D; i++) b[i] = 3 + cm_rng_normal(&rng);
    memcpy(b + 17 * D, a + 5 * D, D * sizeof(double)); /* an exact copy */
    CM_CHECK_OK(cm_nearest_distances(out, nearest, a, N, b, M, D));
    int bad = 0;
    for (size_t i = 0; i < N; i++) {
        double best = INFINITY;
        size_t best_j = 0;
        for (size_t j = 0; j < M; j++) {
            double s = 0;
            for (size_t k = 0; k < D; k++) s += (a[i * D + k] - b[j * D + k]) * (a[i * D + k] - b[j * D + k]);
            if (s < best) best = s, best_j = j;
        }
        /* |a|^2 + |b|^2 - 2 a.b rounds to ~1e-16 of |a|^2 ~ 50: 1e-13 on squares */
        if (!(fabs(out[i] * out[i] - best) <= 1e-12 && nearest[i] == best_j) && bad++ < 3)
            CM_CHECK(0, "row %zu: %.15g (%zu) vs brute force %.15g (%zu)", i, out[i] * out[i],
                     nearest[i], best, best_j);
    }
    CM_CHECK(nearest[5] == 17 && out[5] < 1e-6, "the exact copy: %zu at %.3g", nearest[5], out[5]);
}

static void test_class_summary(void) {
    const double p[4 * 3] = {0.7, 0.2, 0.1, 0.1, 0.8, 0.1, 0.3, 0.3, 0.4, 0.5, 0.5, 0.0};
    double histogram[3], confidence;
    cm_class_summary(histogram, &confidence, p, 4, 3);
    CM_CHECK(histogram[0] == 0.5 && histogram[1] == 0.25 && histogram[2] == 0.25,
             "histogram %g %g %g (a tie goes to the first class)", histogram[0], histogram[1],
             histogram[2]);
    CM_CHECK_CLOSE(confidence, (0.7 + 0.8 + 0.4 + 0.5) / 4, 1e-15, "mean confidence");
}

/* A synthetic image world: D pixels N(0.5, 0.15^2) each, the features their standardised
 * values, K = 2 classes by the sign of the first feature; train, test and fresh samples from one
 * law. */
typedef struct {
    double *pixels, *features, *probabilities;
    size_t count;
} world_set;

static void world_finish(world_set *s, size_t D) {
    for (size_t i = 0; i < s->count; i++) {
        for (size_t k = 0; k < D; k++) s->features[i * D + k] = (s->pixels[i * D + k] - 0.5) / 0.15;
        double p = 1 / (1 + exp(-3 * s->features[i * D]));
        s->probabilities[2 * i] = p, s->probabilities[2 * i + 1] = 1 - p;
    }
}

static world_set world_draw(size_t count, size_t D, cm_rng *rng) {
    world_set s = {malloc(count * D * 8), malloc(count * D * 8), malloc(count * 2 * 8), count};
    for (size_t i = 0; i < count * D; i++) s.pixels[i] = 0.5 + 0.15 * cm_rng_normal(rng);
    world_finish(&s, D);
    return s;
}

static cm_image_set_view view(const world_set *s) {
    return (cm_image_set_view){s->pixels, s->features, s->probabilities, s->count};
}

static void test_report(void) {
    enum { D = 6, N = 600 };
    cm_rng rng;
    cm_rng_init(&rng, cm_test_seed(49));
    world_set train = world_draw(3000, D, &rng), test = world_draw(1000, D, &rng);
    world_set fresh = world_draw(N, D, &rng), noise = world_draw(N, D, &rng);
    world_set copied = {train.pixels + 100 * D, train.features + 100 * D,
                        train.probabilities + 200, N};
    for (size_t i = 0; i < N * D; i++) noise.pixels[i] = cm_rng_uniform(&rng);
    world_finish(&noise, D);
    cm_image_metrics_options o = cm_image_metrics_options_default();
    o.w1_points = 200, o.memorisation_test = 1000;
    cm_image_report r_fresh, r_copied, r_noise;
    cm_image_set_view tr = view(&train), te = view(&test), f = view(&fresh), c = view(&copied);
    cm_image_set_view z = view(&noise);
    CM_CHECK_OK(cm_image_report_compute(&r_fresh, &f, &te, &tr, D, D, 2, &o));
    CM_CHECK_OK(cm_image_report_compute(&r_copied, &c, &te, &tr, D, D, 2, &o));
    CM_CHECK_OK(cm_image_report_compute(&r_noise, &z, &te, &tr, D, D, 2, &o));
    printf("    FD fresh %.4f copied %.4f noise %.4f (floor %.4f [%.4f, %.4f]); copies: fresh %.3f, "
           "copied %.3f\n", r_fresh.fd.value, r_copied.fd.value, r_noise.fd.value,
           r_fresh.fd.floor, r_fresh.fd.floor_low, r_fresh.fd.floor_high, r_fresh.copy_fraction,
           r_copied.copy_fraction);
    /* fresh draws of the law sit with the floor, noise far above it */
    CM_CHECK(r_fresh.fd.value < 3 * r_fresh.fd.floor_high, "fresh FD %.4g, floor up to %.4g",
             r_fresh.fd.value, r_fresh.fd.floor_high);
    CM_CHECK(r_noise.fd.value > 10 * r_noise.fd.floor_high, "noise FD %.4g", r_noise.fd.value);
    CM_CHECK(r_noise.kid.value > r_noise.kid.floor_high + 5 * (r_noise.kid.floor_high -
                                                               r_noise.kid.floor_low),
             "noise KID %.4g, floor %.4g "
             "[%.4g, %.4g]", r_noise.kid.value, r_noise.kid.floor, r_noise.kid.floor_low,
             r_noise.kid.floor_high);
    CM_CHECK(r_noise.w1.value > r_noise.w1.floor_high, "noise W1 %.4g", r_noise.w1.value);
    CM_CHECK(r_fresh.fd.floor_low <= r_fresh.fd.floor && r_fresh.fd.floor <= r_fresh.fd.floor_high,
             "floor median within its range");
    /* memorisation: copied training images are at distance 0 */
    CM_CHECK(r_copied.copy_fraction == 1.0 && r_copied.sample_nearest[2] < 1e-6,
             "copies: fraction %.3f, median distance %.3g", r_copied.copy_fraction,
             r_copied.sample_nearest[2]);
    CM_CHECK(r_fresh.copy_fraction < 0.05, "fresh draws: copy fraction %.3f", r_fresh.copy_fraction);
    /* classes: the noise's histogram differs from the test set's by its total variation */
    double tv = 0.5 * (fabs(r_noise.histogram[0] - r_noise.test_histogram[0]) +
                       fabs(r_noise.histogram[1] - r_noise.test_histogram[1]));
    CM_CHECK_CLOSE(r_noise.histogram_tv, tv, 1e-15, "total variation");
    /* without a classifier (F = K = 0, no features): the same pixel numbers, bit for bit (the
     * same subsets and W1 subsamples), and NaN for what needs features */
    cm_image_set_view bare_f = {fresh.pixels, NULL, NULL, N}, bare_te = {test.pixels, NULL, NULL, 1000};
    cm_image_set_view bare_tr = {train.pixels, NULL, NULL, 3000};
    cm_image_report r_bare;
    CM_CHECK_OK(cm_image_report_compute(&r_bare, &bare_f, &bare_te, &bare_tr, D, 0, 0, &o));
    CM_CHECK(r_bare.w1.value == r_fresh.w1.value && r_bare.w1.floor == r_fresh.w1.floor &&
             r_bare.w1.floor_low == r_fresh.w1.floor_low &&
             r_bare.w1.floor_high == r_fresh.w1.floor_high, "W1 without a classifier %.17g [%.17g], "
             "with %.17g [%.17g]", r_bare.w1.value, r_bare.w1.floor, r_fresh.w1.value,
             r_fresh.w1.floor);
    CM_CHECK(memcmp(r_bare.sample_nearest, r_fresh.sample_nearest, sizeof r_bare.sample_nearest) == 0 &&
             memcmp(r_bare.test_nearest, r_fresh.test_nearest, sizeof r_bare.test_nearest) == 0 &&
             r_bare.copy_fraction == r_fresh.copy_fraction, "memorisation without a classifier");
    CM_CHECK(isnan(r_bare.fd.value) && isnan(r_bare.fd.floor) && isnan(r_bare.kid.value) &&
             isnan(r_bare.histogram_tv) && isnan(r_bare.confidence) && r_bare.classes == 0,
             "FD %g, KID %g, classes TV %g without a classifier", r_bare.fd.value,
             r_bare.kid.value, r_bare.histogram_tv);
    CM_CHECK(cm_image_report_compute(&r_bare, &bare_f, &bare_te, &bare_tr, D, 0, 2, &o) ==
             CM_ERR_INVALID, "classes without features");
    CM_CHECK(cm_image_report_compute(&r_bare, &bare_f, &bare_te, &bare_tr, D, D, 2, &o) ==
             CM_ERR_INVALID, "features promised, none given");
    /* refusals */
    cm_image_set_view small = tr;
    small.count = N - 1;
    CM_CHECK(cm_image_report_compute(&r_fresh, &f, &te, &small, D, D, 2, &o) == CM_ERR_INVALID,
             "fewer training images than samples");
    fresh.features[7] = NAN;
    CM_CHECK(cm_image_report_compute(&r_fresh, &f, &te, &tr, D, D, 2, &o) == CM_ERR_NONFINITE,
             "a NaN feature");
    world_set *sets[] = {&train, &test, &fresh, &noise};
    for (int i = 0; i < 4; i++) free(sets[i]->pixels), free(sets[i]->features), free(sets[i]->probabilities);
}

const cm_test_case cm_tests_image_metrics[] = {
    {"frechet_known_answers", test_frechet_known_answers},
    {"frechet_samples", test_frechet_samples},
    {"kid", test_kid},
    {"nearest_distances", test_nearest_distances},
    {"class_summary", test_class_summary},
    {"report", test_report},
    {NULL, NULL},
};
