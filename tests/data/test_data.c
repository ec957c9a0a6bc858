/* test_data.c: data sources and the standardising transform (suite `data`).
 *
 * Statistical checks use tolerances of SIGMAS standard errors derived from the sample size
 * (seed printed, CM_TEST_SEED replays another); structural checks test the geometry that
 * docs/data.md promises (squares of the board, ring radii, moon circles, spiral arms).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cm/alloc.h"
#include "cm/checkpoint.h"
#include "cm/data.h"
#include "cm/image.h"
#include "cm/io.h"
#include "test.h"

#define SIGMAS 5.0 /* statistical tolerance: a correct generator fails about once in 10^6 */
#define PI 3.14159265358979323846

static cm_data *open_or_fail(const char *source) {
    cm_data *data = NULL;
    cm_status status = cm_data_open(&data, source);
    CM_CHECK(status == CM_OK, "cm_data_open(%s): %s: %s", source, cm_status_name(status),
             cm_error_detail());
    return data;
}

static double *draw(const cm_data *data, uint64_t seed, size_t n) {
    double *x = malloc(n * cm_data_dim(data) * sizeof(double));
    cm_rng rng;
    cm_rng_init(&rng, seed);
    cm_data_sample(data, &rng, n, x);
    return x;
}

/* |observed - p n| within SIGMAS binomial standard deviations. */
static void check_frequency(size_t observed, double p, size_t n, const char *what) {
    double sd = sqrt((double)n * p * (1.0 - p));
    CM_CHECK_CLOSE((double)observed, p * (double)n, SIGMAS * sd + 1.0, what);
}

static void test_gauss_moments(void) {
    uint64_t seed = cm_test_seed(11);
    const size_t n = 40000, d = 3;
    const double mean = 1.5, std = 2.0;
    cm_data *data = open_or_fail("gauss:d=3,mean=1.5,std=2");
    if (!data) return;
    CM_CHECK(cm_data_dim(data) == d && cm_data_kind_of(data) == CM_DATA_GAUSS, "kind/dim");
    double *x = draw(data, seed, n);
    for (size_t i = 0; i < d; i++) {
        double m = 0.0;
        for (size_t r = 0; r < n; r++) m += x[r * d + i];
        m /= (double)n;
        CM_CHECK_CLOSE(m, mean, SIGMAS * std / sqrt((double)n), "coordinate mean");
        for (size_t j = 0; j <= i; j++) {
            double c = 0.0, mj = 0.0;
            for (size_t r = 0; r < n; r++) mj += x[r * d + j];
            mj /= (double)n;
            for (size_t r = 0; r < n; r++) c += (x[r * d + i] - m) * (x[r * d + j] - mj);
            c /= (double)n;
            /* sd of a Gaussian sample covariance: sqrt((C_ii C_jj + C_ij^2) / n) */
            double target = i == j ? std * std : 0.0;
            double sd = sqrt((std * std * std * std + target * target) / (double)n);
            CM_CHECK_CLOSE(c, target, SIGMAS * sd, i == j ? "variance" : "covariance");
        }
    }
    free(x);
    cm_data_free(data);
}

static void test_gmm_law_and_moments(void) {
    uint64_t seed = cm_test_seed(12);
    const size_t n = 30000, d = 4, k = 3;
    const double sep = 3.0, std = 0.5;
    /* mean seed 2 places the three means >= 4.19 apart (8 component stds) */
    cm_data *data = open_or_fail("gmm:d=4,k=3,sep=3,std=0.5,seed=2");
    if (!data) return;
    cm_gmm_view law;
    CM_CHECK_OK(cm_data_gmm(&law, data));
    CM_CHECK(law.dim == d && law.components == k, "view shape %zu x %zu", law.components, law.dim);
    for (size_t j = 0; j < k; j++) {
        double norm = 0.0;
        for (size_t i = 0; i < d; i++) norm += law.means[j * d + i] * law.means[j * d + i];
        CM_CHECK_CLOSE(sqrt(norm), sep, 1e-12, "|m_j| = sep");
        CM_CHECK_CLOSE(law.weights[j], 1.0 / 3.0, 1e-15, "equal weights");
        CM_CHECK_CLOSE(law.stds[j], std, 0.0, "component std");
    }
    /* Assign each point to its nearest mean (misassigned: about 1 point in 10^5) and check
     * frequencies and within-component moments. */
    double *x = draw(data, seed, n);
    size_t count[3] = {0, 0, 0};
    double sum[3][4] = {{0}}, sq[3] = {0};
    for (size_t r = 0; r < n; r++) {
        size_t best = 0;
        double best_d2 = INFINITY;
        for (size_t j = 0; j < k; j++) {
            double d2 = 0.0;
            for (size_t i = 0; i < d; i++) {
                double t = x[r * d + i] - law.means[j * d + i];
                d2 += t * t;
            }
            if (d2 < best_d2) best_d2 = d2, best = j;
        }
        count[best]++;
        sq[best] += best_d2;
        for (size_t i = 0; i < d; i++) sum[best][i] += x[r * d + i] - law.means[best * d + i];
    }
    double min_gap = INFINITY;
    for (size_t a = 0; a < k; a++)
        for (size_t b = a + 1; b < k; b++) {
            double d2 = 0.0;
            for (size_t i = 0; i < d; i++) {
                double t = law.means[a * d + i] - law.means[b * d + i];
                d2 += t * t;
            }
            min_gap = fmin(min_gap, sqrt(d2));
        }
    CM_CHECK(min_gap > 8.0 * std, "means too close for the nearest-mean test: %g", min_gap);
    for (size_t j = 0; j < k; j++) {
        check_frequency(count[j], 1.0 / 3.0, n, "component frequency");
        double nj = (double)count[j];
        for (size_t i = 0; i < d; i++)
            CM_CHECK_CLOSE(sum[j][i] / nj, 0.0, SIGMAS * std / sqrt(nj), "component mean");
        /* E||z||^2 = d std^2, sd of the mean of ||z||^2 = sqrt(2 d) std^2 / sqrt(nj) */
        CM_CHECK_CLOSE(sq[j] / nj, (double)d * std * std,
                       SIGMAS * sqrt(2.0 * (double)d) * std * std / sqrt(nj), "component spread");
    }
    free(x);
    cm_data_free(data);

    /* d = 1: evenly spaced means sep (j - (K-1)/2) */
    data = open_or_fail("gmm:d=1,k=4,sep=2");
    if (!data) return;
    CM_CHECK_OK(cm_data_gmm(&law, data));
    const double expected[4] = {-3.0, -1.0, 1.0, 3.0};
    for (size_t j = 0; j < 4; j++) CM_CHECK_CLOSE(law.means[j], expected[j], 0.0, "1-D means");
    cm_data_free(data);

    data = open_or_fail("moons");
    if (!data) return;
    CM_CHECK(cm_data_gmm(&law, data) == CM_ERR_INVALID, "moons has no mixture view");
    CM_CHECK(cm_data_values(data) == NULL && cm_data_rows(data) == 0, "laws have no rows");
    cm_data_free(data);
}

static void test_8gaussians(void) {
    uint64_t seed = cm_test_seed(13);
    const size_t n = 16000;
    cm_data *data = open_or_fail("8gaussians");
    if (!data) return;
    double *x = draw(data, seed, n);
    size_t count[8] = {0};
    double sq = 0.0, cross = 0.0, worst = 0.0;
    for (size_t r = 0; r < n; r++) {
        double angle = atan2(x[2 * r + 1], x[2 * r]);
        long k = lround(angle / (PI / 4.0));
        k = (k % 8 + 8) % 8;
        double dx = x[2 * r] - 2.0 * cos((double)k * PI / 4.0);
        double dy = x[2 * r + 1] - 2.0 * sin((double)k * PI / 4.0);
        count[k]++;
        sq += dx * dx + dy * dy;
        cross += dx * dy;
        worst = fmax(worst, sqrt(dx * dx + dy * dy));
    }
    for (int k = 0; k < 8; k++) check_frequency(count[k], 1.0 / 8.0, n, "8gaussians mode");
    /* ||noise||^2 / 0.01 ~ chi^2_2: mean 2, sd 2 */
    CM_CHECK_CLOSE(sq / (double)n, 0.02, SIGMAS * 0.02 / sqrt((double)n), "spread");
    /* independent coordinates: E[dx dy] = 0, sd of dx dy = 0.01 */
    CM_CHECK_CLOSE(cross / (double)n, 0.0, SIGMAS * 0.01 / sqrt((double)n), "noise covariance");
    CM_CHECK(worst < 0.7, "a point %g from its centre (7 std)", worst);
    free(x);
    cm_data_free(data);
}

static void test_moons(void) {
    uint64_t seed = cm_test_seed(14);
    const size_t n = 8000;
    const double noise = 0.05;
    cm_data *data = open_or_fail("moons");
    if (!data) return;
    double *x = draw(data, seed, n);
    size_t upper = 0;
    double mx = 0.0, my = 0.0;
    for (size_t r = 0; r < n; r++) {
        mx += x[2 * r];
        my += x[2 * r + 1];
        double px = x[2 * r] / 2.0 + 0.5, py = x[2 * r + 1] / 2.0 + 0.25; /* undo the centring */
        double d_up = fabs(hypot(px, py) - 1.0), d_low = fabs(hypot(px - 1.0, py - 0.5) - 1.0);
        double dist = fmin(d_up, d_low);
        if (d_up < d_low) upper++;
        CM_CHECK(dist < 6.0 * noise, "point %zu is %g from both half circles", r, dist);
        if (dist >= 6.0 * noise) break;
    }
    check_frequency(upper, 0.5, n, "upper moon share");
    /* the mean is exactly (0, 0); coordinate sds are 2 sqrt(3/4 + 0.05^2) = 1.74 (x) and
     * 2 sqrt(1/2 - 4/pi^2 + (2/pi - 1/4)^2 + 0.05^2) = 0.99 (y) */
    CM_CHECK_CLOSE(mx / (double)n, 0.0, SIGMAS * 1.74 / sqrt((double)n), "mean x");
    CM_CHECK_CLOSE(my / (double)n, 0.0, SIGMAS * 0.99 / sqrt((double)n), "mean y");
    free(x);
    cm_data_free(data);
}

static void test_swissroll(void) {
    uint64_t seed = cm_test_seed(15);
    const size_t n = 2000, grid = 6000;
    cm_data *data = open_or_fail("swissroll");
    if (!data) return;
    double *x = draw(data, seed, n);
    double sq = 0.0, worst = 0.0;
    for (size_t r = 0; r < n; r++) {
        double best = INFINITY;
        for (size_t g = 0; g <= grid; g++) { /* distance to the curve t (cos t, sin t) / 5 */
            double t = 1.5 * PI * (1.0 + 2.0 * (double)g / (double)grid);
            double dx = x[2 * r] - 0.2 * t * cos(t), dy = x[2 * r + 1] - 0.2 * t * sin(t);
            best = fmin(best, dx * dx + dy * dy);
        }
        sq += best;
        worst = fmax(worst, sqrt(best));
    }
    /* noise 0.1 N(0, I): the distance to the curve is about its normal component, whose
     * square has mean 0.01; the nearest-point distance can only be smaller. */
    CM_CHECK(sq / (double)n < 0.012, "mean squared distance to the spiral %g", sq / (double)n);
    CM_CHECK(sq / (double)n > 0.006, "points too close to the spiral: %g", sq / (double)n);
    CM_CHECK(worst < 0.6, "a point %g from the spiral", worst);
    free(x);
    cm_data_free(data);
}

static void test_checkerboard(void) {
    uint64_t seed = cm_test_seed(16);
    const size_t n = 16000;
    cm_data *data = open_or_fail("checkerboard");
    if (!data) return;
    double *x = draw(data, seed, n);
    size_t count[4][4] = {{0}};
    size_t bad = 0;
    for (size_t r = 0; r < n; r++) {
        double a = x[2 * r], b = x[2 * r + 1];
        if (!(a >= -2.0 && a < 2.0 && b >= -2.0 && b < 2.0)) {
            bad++;
            continue;
        }
        long fa = (long)floor(a), fb = (long)floor(b);
        if ((fa + fb) % 2 != 0) bad++;
        count[fa + 2][fb + 2]++;
    }
    CM_CHECK(bad == 0, "%zu points outside the black squares", bad);
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < 4; j++)
            if ((i + j) % 2 == 0) check_frequency(count[i][j], 1.0 / 8.0, n, "square share");
    free(x);
    cm_data_free(data);
}

static void test_rings(void) {
    uint64_t seed = cm_test_seed(17);
    const size_t n = 20000;
    const double noise = 0.04;
    cm_data *data = open_or_fail("rings");
    if (!data) return;
    double *x = draw(data, seed, n);
    size_t count[4] = {0};
    double sq = 0.0;
    for (size_t r = 0; r < n; r++) {
        double radius = hypot(x[2 * r], x[2 * r + 1]);
        long ring = lround(radius / 0.5) - 1;
        double residual = radius - 0.5 * (double)(ring + 1);
        CM_CHECK(ring >= 0 && ring < 4 && fabs(residual) < 6.0 * noise,
                 "radius %g is on no ring", radius);
        if (ring < 0 || ring >= 4) break;
        count[ring]++;
        sq += residual * residual;
    }
    for (int j = 0; j < 4; j++) check_frequency(count[j], (j + 1) / 10.0, n, "ring share");
    /* radial residual ~ N(0, noise^2) up to O(noise^2 / radius) curvature terms */
    CM_CHECK_CLOSE(sqrt(sq / (double)n), noise, 0.1 * noise, "radial spread");
    free(x);
    cm_data_free(data);
}

/* A draw of n is a prefix of a draw of n' > n; two draws in sequence equal one longer draw;
 * the position counts points; another seed differs. */
static void test_sample_prefix_and_determinism(void) {
    const char *sources[] = {"8gaussians", "moons", "swissroll", "checkerboard", "rings",
                             "gauss:d=5", "gmm:d=3,k=4", "shapes:size=8,seed=3"};
    for (size_t s = 0; s < sizeof sources / sizeof sources[0]; s++) {
        cm_data *data = open_or_fail(sources[s]);
        if (!data) continue;
        size_t d = cm_data_dim(data), n = 10, n_long = 25;
        double *a = calloc(n_long * d, sizeof(double)), *b = calloc(n_long * d, sizeof(double));
        double *c = calloc(n_long * d, sizeof(double));
        cm_rng rng, rng2, rng3;
        cm_rng_init(&rng, 99);
        rng.position = 7; /* any start: the rule is relative to the position */
        rng2 = rng;
        cm_data_sample(data, &rng, n, a);
        cm_data_sample(data, &rng2, n_long, b);
        CM_CHECK(rng.position == 7 + n && rng2.position == 7 + n_long, "%s: position %llu",
                 sources[s], (unsigned long long)rng.position);
        CM_CHECK(memcmp(a, b, n * d * sizeof(double)) == 0, "%s: prefix property", sources[s]);
        cm_data_sample(data, &rng, n_long - n, a + n * d);
        CM_CHECK(memcmp(a, b, n_long * d * sizeof(double)) == 0, "%s: sequential draws",
                 sources[s]);
        cm_rng_init(&rng3, 100);
        rng3.position = 7;
        cm_data_sample(data, &rng3, n_long, c);
        CM_CHECK(memcmp(b, c, n_long * d * sizeof(double)) != 0, "%s: seed ignored", sources[s]);
        free(a);
        free(b);
        free(c);
        cm_data_free(data);
    }
}

static void test_spec_errors(void) {
    const char *bad[] = {
        "", "foo", "MOONS", "moons ", "gauss", "gauss:", "gauss:d", "gauss:=2", "gauss:d=0",
        "gauss:d=-1", "gauss:d=+2", "gauss:d=2x", "gauss:d= 2", "gauss:d=2,", "gauss:d=2,,std=1",
        "gauss:,d=2", "gauss:d=100001", "gauss:d=99999999999999999999999", "gauss:d=2,std=0",
        "gauss:d=2,std=-1", "gauss:d=2,std=", "gauss:d=2,mean=nan", "gauss:d=2,mean=inf",
        "gauss:d=2,mean=1e999", "gauss:d=2,mean= 1", "gauss:d=2,mean=1 ", "gauss:d=2,foo=1",
        "gauss:d=2,d=3", "gauss:d=2,k=3", "gmm:d=2", "gmm:k=2", "gmm:d=2,k=0",
        "gmm:d=2,k=100001", "gmm:d=100000,k=1000", "gmm:d=2,k=2,sep=-1", "gmm:d=2,k=2,seed=-1",
        "gmm:d=2,k=2,seed=99999999999999999999999", "gmm:d=2,k=2,std=1x", "gmm:d=2,k=2,std=0",
        "gmm:d=2,k=2,mean=1", "gmm:d=2,k=2,sep=1,sep=2",
        "gauss:d=2,mean=1000000000000000000000000000000000000000000000000000000000000000000000",
        "/nonexistent-dir/points.csv", "missing-file.npy", "shapes:size=7", "shapes:size=257",
        "shapes:size=16,size=16", "shapes:colour=1", "shapes:size=", "shapes:size=1e1", "shapes ",
        "shapes:size=16,", "fashion-mnist:train", "FASHION-MNIST", "/nonexistent-dir/",
    };
    long live = cm_alloc_live_count();
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cm_data *data = (cm_data *)&live; /* must be reset to NULL */
        cm_error_clear();
        cm_status status = cm_data_open(&data, bad[i]);
        CM_CHECK(status != CM_OK, "'%s' was accepted", bad[i]);
        CM_CHECK(data == NULL, "'%s': out not NULL on failure", bad[i]);
        CM_CHECK(cm_error_detail()[0] != '\0', "'%s': no detail", bad[i]);
        CM_CHECK(strchr(cm_error_detail(), '\n') == NULL, "'%s': detail spans lines", bad[i]);
        if (status == CM_OK) cm_data_free(data);
    }
    CM_CHECK(cm_alloc_live_count() == live, "leak: %ld live allocations",
             cm_alloc_live_count() - live);
    cm_data *data = NULL;
    cm_status status = cm_data_open(&data, "nonsense");
    CM_CHECK(status == CM_ERR_INVALID && strstr(cm_error_detail(), "checkerboard") &&
                 strstr(cm_error_detail(), "gmm:"),
             "unknown name should list the valid ones: %s", cm_error_detail());
    status = cm_data_open(&data, "gauss:d=2,mean=nan");
    CM_CHECK(status == CM_ERR_NONFINITE, "mean=nan: %s", cm_status_name(status));
}

static void test_describe_round_trip(void) {
    const char *cases[][2] = {
        {"gauss:d=2", "gauss:d=2,mean=0,std=1"},
        {"gauss:std=0.1,d=7,mean=-2.5", "gauss:d=7,mean=-2.5,std=0.1"},
        {"gmm:d=3,k=2", "gmm:d=3,k=2,sep=4,std=0.5,seed=1"},
        {"gmm:d=16,k=8,sep=4,std=0.3,seed=1", "gmm:d=16,k=8,sep=4,std=0.3,seed=1"},
        {"moons", "moons"},
        {"shapes", "shapes:size=16,seed=0"},
        {"shapes:seed=5,size=32", "shapes:size=32,seed=5"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cm_data *data = open_or_fail(cases[i][0]);
        if (!data) continue;
        CM_CHECK(strcmp(cm_data_describe(data), cases[i][1]) == 0, "describe(%s) = %s",
                 cases[i][0], cm_data_describe(data));
        cm_data *again = open_or_fail(cm_data_describe(data));
        cm_gmm_view v1, v2;
        if (again && cm_data_gmm(&v1, data) == CM_OK) {
            CM_CHECK_OK(cm_data_gmm(&v2, again));
            CM_CHECK(memcmp(v1.means, v2.means, v1.components * v1.dim * sizeof(double)) == 0,
                     "%s: means differ after reopening", cases[i][0]);
        }
        cm_data_free(again);
        cm_data_free(data);
    }
    CM_CHECK(strcmp(cm_data_kind_name(CM_DATA_CHECKERBOARD), "checkerboard") == 0, "kind name");
    CM_CHECK(strcmp(cm_data_kind_name(CM_DATA_KIND_COUNT), "unknown") == 0, "kind sentinel");
    CM_CHECK(strcmp(cm_data_kind_name(CM_DATA_SHAPES), "shapes") == 0 &&
             strcmp(cm_data_kind_name(CM_DATA_IMAGES), "images") == 0, "image kind names");
    /* different mean seeds give different means; same seed the same */
    cm_data *a = open_or_fail("gmm:d=3,k=2,seed=1"), *b = open_or_fail("gmm:d=3,k=2,seed=2");
    cm_gmm_view va, vb;
    if (a && b && cm_data_gmm(&va, a) == CM_OK && cm_data_gmm(&vb, b) == CM_OK)
        CM_CHECK(memcmp(va.means, vb.means, 6 * sizeof(double)) != 0, "seed= ignored");
    cm_data_free(a);
    cm_data_free(b);
}

/* Every allocation of cm_data_open failing in turn: NOMEM or success, never a leak. */
static void test_open_out_of_memory(void) {
    const char *sources[] = {"gmm:d=3,k=2", "gauss:d=4", "rings", "shapes:size=8"};
    for (size_t s = 0; s < 4; s++) {
        for (long k = 0; k < 10; k++) {
            long live = cm_alloc_live_count();
            cm_data *data = NULL;
            cm_alloc_fail_after(k);
            cm_status status = cm_data_open(&data, sources[s]);
            cm_alloc_fail_after(-1);
            CM_CHECK(status == CM_OK || status == CM_ERR_NOMEM, "%s fail after %ld: %s",
                     sources[s], k, cm_status_name(status));
            cm_data_free(data);
            CM_CHECK(cm_alloc_live_count() == live, "%s fail after %ld: leak", sources[s], k);
        }
    }
}

static void test_file_source(void) {
    char path[128];
    snprintf(path, sizeof path, "/tmp/cm_test_data_%ld.csv", (long)getpid());
    FILE *file = fopen(path, "w");
    CM_CHECK(file != NULL, "cannot write %s", path);
    if (!file) return;
    fprintf(file, "x0,x1\n1,2\n3,4\n5,6\n");
    fclose(file);
    cm_data *data = open_or_fail(path);
    remove(path);
    if (!data) return;
    CM_CHECK(cm_data_kind_of(data) == CM_DATA_FILE && cm_data_rows(data) == 3 &&
                 cm_data_dim(data) == 2,
             "file shape %zu x %zu", cm_data_rows(data), cm_data_dim(data));
    CM_CHECK(strcmp(cm_data_describe(data), path) == 0, "describe %s", cm_data_describe(data));
    const double *values = cm_data_values(data);
    CM_CHECK(values && values[0] == 1.0 && values[5] == 6.0, "stored values");
    double *x = draw(data, 5, 300);
    size_t seen[3] = {0};
    for (size_t r = 0; r < 300; r++) {
        long row = lround((x[2 * r] - 1.0) / 2.0);
        CM_CHECK(row >= 0 && row < 3 && x[2 * r + 1] == x[2 * r] + 1.0, "drawn point is no row");
        if (row >= 0 && row < 3) seen[row]++;
    }
    for (int i = 0; i < 3; i++) check_frequency(seen[i], 1.0 / 3.0, 300, "row frequency");
    free(x);
    cm_data_free(data);
}

static void write_text(const char *path, const char *text) {
    FILE *file = fopen(path, "w");
    CM_CHECK(file != NULL, "cannot write %s", path);
    if (!file) return;
    fputs(text, file);
    fclose(file);
}

/* An index first column is refused with a hint (pandas' to_csv: header ",a,b"; an "id" column;
 * consecutive integers without a header); columns are selected by name, index and range, the
 * description remembers the selection and reopens it; bad lists fail naming the item. */
static void test_file_columns(void) {
    char path[128], source[256];
    snprintf(path, sizeof path, "/tmp/cm_test_columns_%ld.csv", (long)getpid());
    cm_data *data = NULL;
    write_text(path, ",a,b\n0,-2.50,-0.36\n1,0.5,0.25\n2,1.5,-1\n");
    CM_CHECK(cm_data_open(&data, path) == CM_ERR_FORMAT && !data, "pandas index accepted");
    CM_CHECK(strstr(cm_error_detail(), "row index") && strstr(cm_error_detail(), "columns=a,b"),
             "hint: %s", cm_error_detail());
    const char *lists[] = {"a,b", "1,2", "1-2", "b,a"};
    for (size_t k = 0; k < 4; k++) {
        CM_CHECK_OK(cm_data_open_with(&data, path, &(cm_data_options){.columns = lists[k]}));
        if (!data) continue;
        const double *v = cm_data_values(data);
        int swapped = k == 3;
        CM_CHECK(cm_data_dim(data) == 2 && cm_data_rows(data) == 3 &&
                     v[swapped ? 1 : 0] == -2.5 && v[swapped ? 0 : 1] == -0.36 &&
                     v[4] == (swapped ? -1.0 : 1.5),
                 "columns %s: values", lists[k]);
        snprintf(source, sizeof source, "%s:columns=%s", path, lists[k]);
        CM_CHECK(strcmp(cm_data_describe(data), source) == 0, "describe %s", cm_data_describe(data));
        cm_data *again = NULL;
        CM_CHECK_OK(cm_data_open(&again, cm_data_describe(data)));
        CM_CHECK(again && cm_data_dim(again) == 2 && cm_data_values(again)[0] == v[0],
                 "reopened description");
        cm_data_free(again);
        cm_data_free(data);
        data = NULL;
    }
    const char *bad[] = {"a,c", "a,1", "3", "2-1", "a,,b", "", "1-9"};
    for (size_t k = 0; k < 7; k++) {
        CM_CHECK(cm_data_open_with(&data, path, &(cm_data_options){.columns = bad[k]}) ==
                     CM_ERR_INVALID && !data, "columns '%s' accepted", bad[k]);
    }
    snprintf(source, sizeof source, "%s:columns=a", path);
    CM_CHECK(cm_data_open_with(&data, source, &(cm_data_options){.columns = "a"}) ==
                 CM_ERR_INVALID, "columns given twice");
    CM_CHECK(cm_data_open_with(&data, "moons", &(cm_data_options){.columns = "0"}) ==
                 CM_ERR_INVALID, "columns of a law");
    write_text(path, "id,x,y\n1,0.5,0.5\n2,0.25,1\n3,1,2\n");
    CM_CHECK(cm_data_open(&data, path) == CM_ERR_FORMAT, "id column accepted");
    write_text(path, "index,x\n0,0.5\n5,0.25\n9,1\n"); /* a filtered frame keeps gaps */
    CM_CHECK(cm_data_open(&data, path) == CM_ERR_FORMAT, "gapped index column accepted");
    write_text(path, "7,0.5\n8,0.25\n9,1\n");
    CM_CHECK(cm_data_open(&data, path) == CM_ERR_FORMAT, "headerless row numbers accepted");
    /* not indices: named data, non-consecutive without header, a single column */
    const char *fine[] = {"t,x\n0,0.5\n1,0.25\n2,1\n", "0,0.5\n2,0.25\n3,1\n",
                          "0\n1\n2\n", ",a\n0.5,1\n1.5,2\n"};
    for (size_t k = 0; k < 4; k++) {
        write_text(path, fine[k]);
        CM_CHECK_OK(cm_data_open(&data, path));
        cm_data_free(data);
        data = NULL;
    }
    remove(path);
}

/* cm_data_from_values: a file source from memory, copied, finite. */
static void test_from_values(void) {
    const double values[6] = {1, 2, 3, 4, 5, 6};
    cm_data *data = NULL;
    CM_CHECK_OK(cm_data_from_values(&data, values, 3, 2, "memory"));
    CM_CHECK(data && cm_data_kind_of(data) == CM_DATA_FILE && cm_data_rows(data) == 3 &&
                 cm_data_values(data) != values && cm_data_values(data)[5] == 6.0 &&
                 strcmp(cm_data_describe(data), "memory") == 0, "from values");
    cm_data_free(data);
    const double bad[2] = {1.0, NAN};
    CM_CHECK(cm_data_from_values(&data, bad, 1, 2, "nan") == CM_ERR_NONFINITE && !data, "NaN");
    CM_CHECK(cm_data_from_values(&data, values, 0, 2, "empty") == CM_ERR_INVALID, "empty");
}

/* ---------------------------------------------------------------- image sources */

/* shapes: 1 x S x S, 3 named classes, a law (no rows); draw i is cm_shapes_draw from
 * cm_rng_fork(child i, seed) (docs/data.md), with its class as label. */
static void test_shapes_source(void) {
    cm_data *data = open_or_fail("shapes:size=12,seed=4");
    if (!data) return;
    size_t C = 9, H = 9, W = 9, n = 40;
    CM_CHECK(cm_data_kind_of(data) == CM_DATA_SHAPES && cm_data_dim(data) == 144 &&
             cm_data_image_shape(data, &C, &H, &W) && C == 1 && H == 12 && W == 12,
             "shape %zu x %zu x %zu", C, H, W);
    CM_CHECK(cm_data_rows(data) == 0 && !cm_data_values(data) && !cm_data_labels(data) &&
             cm_data_fingerprint(data) == 0, "a law: no rows");
    CM_CHECK(cm_data_classes(data) == 3 && !strcmp(cm_data_class_name(data, 2), "bar") &&
             cm_data_class_name(data, 3) == NULL, "classes");
    double *x = calloc(n * 144, sizeof(double)), *y = calloc(n * 144, sizeof(double));
    size_t labels[40];
    cm_rng rng, again;
    cm_rng_init(&rng, 8);
    again = rng;
    cm_data_sample_labelled(data, &rng, n, x, labels);
    cm_data_sample(data, &again, n, y);
    CM_CHECK(x && y && memcmp(x, y, n * 144 * sizeof(double)) == 0 && rng.position == n,
             "labelled draws are the plain draws");
    for (size_t i = 0; x && i < n; i++) {
        cm_rng child, stream;
        cm_shape_params p;
        double image[144];
        cm_rng_fork(&child, &again, i); /* again.position is n now; fork uses the key alone */
        cm_rng_fork(&stream, &child, 4);
        cm_shapes_draw(image, &p, 12, &stream);
        CM_CHECK(memcmp(image, x + i * 144, sizeof image) == 0 && labels[i] == (size_t)p.shape,
                 "draw %zu is not the documented one", i);
    }
    free(x);
    free(y);
    cm_data_free(data);
    size_t none = 0;
    data = open_or_fail("moons");
    if (!data) return;
    CM_CHECK(!cm_data_image_shape(data, &none, NULL, NULL) && none == 0 &&
             cm_data_classes(data) == 0 && !cm_data_class_name(data, 0), "vector source");
    cm_rng_init(&rng, 1);
    double point[2];
    cm_data_sample_labelled(data, &rng, 1, point, labels);
    CM_CHECK(labels[0] == CM_DATA_NO_LABEL, "an unlabelled draw has CM_DATA_NO_LABEL");
    cm_data_free(data);
}

static void test_fixed_transform(void) {
    cm_data *data = open_or_fail("shapes:size=8");
    if (!data) return;
    cm_transform t;
    CM_CHECK(cm_data_has_fixed_transform(data), "images have a fixed transform");
    CM_CHECK_OK(cm_data_fixed_transform(&t, data));
    CM_CHECK(t.dim == 64, "dim %zu", t.dim);
    double x[64];
    for (size_t i = 0; i < 64; i++) x[i] = (double)i / 63.0;
    cm_transform_apply(&t, x, 1);
    CM_CHECK(x[0] == -1.0 && x[63] == 1.0 && fabs(x[21] - (2.0 * 21.0 / 63.0 - 1.0)) < 1e-15,
             "pixels 0, 1 map to -1, 1: %g %g", x[0], x[63]);
    cm_transform_free(&t);
    cm_data_free(data);
    data = open_or_fail("gauss:d=2");
    if (!data) return;
    CM_CHECK(!cm_data_has_fixed_transform(data) &&
             cm_data_fixed_transform(&t, data) == CM_ERR_INVALID && t.shift == NULL,
             "a law has no fixed transform");
    cm_data_free(data);
}

static void write_bytes(const char *path, const void *bytes, size_t size) {
    FILE *file = fopen(path, "wb");
    CM_CHECK(file && fwrite(bytes, 1, size, file) == size, "cannot write %s", path);
    if (file) fclose(file);
}

/* uint8 [3, 2, 2] as NPY 1.0 (header padded to 128 bytes); pixel k is first + 20 k. */
static void write_u1_npy(const char *path, unsigned char first) {
    static const char dict[] = "{'descr': '|u1', 'fortran_order': False, 'shape': (3, 2, 2), }";
    unsigned char file[128 + 12];
    memcpy(file, "\x93NUMPY\x01\x00\x76\x00", 10); /* header length 118 */
    memcpy(file + 10, dict, sizeof dict - 1);
    memset(file + 10 + sizeof dict - 1, ' ', 118 - (sizeof dict - 1));
    file[127] = '\n';
    for (int k = 0; k < 12; k++) file[128 + k] = (unsigned char)(first + 20 * k);
    write_bytes(path, file, sizeof file);
}

/* An NPY image array and a PNG folder as sources: stored rows, bytes / 255, labels. */
static void test_image_file_sources(void) {
    char dir[64], path[160];
    snprintf(dir, sizeof dir, "/tmp/cm_test_data_img_XXXXXX");
    CM_CHECK(mkdtemp(dir) != NULL, "mkdtemp");
    snprintf(path, sizeof path, "%s/x.npy", dir);
    write_u1_npy(path, 5);
    cm_data *data = open_or_fail(path);
    size_t C, H, W;
    if (data) {
        CM_CHECK(cm_data_kind_of(data) == CM_DATA_IMAGES && cm_data_rows(data) == 3 &&
                 cm_data_dim(data) == 4 && cm_data_image_shape(data, &C, &H, &W) && C == 1 &&
                 H == 2 && W == 2 && !cm_data_values(data) && cm_data_classes(data) == 0,
                 "NPY image source");
        double rows[12];
        cm_data_copy_rows(data, 1, 2, rows);
        CM_CHECK(rows[0] == 85.0 / 255.0 && rows[7] == 225.0 / 255.0, "copied rows %g %g",
                 rows[0], rows[7]);
        double *x = draw(data, 3, 30);
        for (size_t i = 0; i < 30; i++)
            CM_CHECK(fmod(x[4 * i] * 255.0 - 5.0, 80.0) < 1e-9, "draw %zu is no row", i);
        free(x);
        uint64_t hash = cm_data_fingerprint(data);
        write_u1_npy(path, 6);
        cm_data *other = open_or_fail(path);
        CM_CHECK(hash != 0 && other && cm_data_fingerprint(other) != hash &&
                 cm_data_fingerprint(data) == hash, "fingerprint follows the content");
        cm_data_free(other);
        cm_data_free(data);
    }
    for (int k = 0; k < 2; k++) {
        const char *names[] = {"cats", "dogs"};
        snprintf(path, sizeof path, "%s/set/%s", dir, names[k]);
        if (k == 0) {
            char parent[128];
            snprintf(parent, sizeof parent, "%s/set", dir);
            mkdir(parent, 0755);
        }
        mkdir(path, 0755);
        snprintf(path, sizeof path, "%s/set/%s/0.png", dir, names[k]);
        double pixel = k ? 1.0 : 0.0;
        CM_CHECK_OK(cm_image_write_grid(path, &pixel, 1, 1, 1, 1, 1, 0));
    }
    snprintf(path, sizeof path, "%s/set/", dir);
    data = open_or_fail(path);
    if (data) {
        size_t labels[20];
        double x[20];
        cm_rng rng;
        cm_rng_init(&rng, 2);
        cm_data_sample_labelled(data, &rng, 20, x, labels);
        CM_CHECK(cm_data_rows(data) == 2 && cm_data_dim(data) == 1 && cm_data_classes(data) == 2 &&
                 !strcmp(cm_data_class_name(data, 1), "dogs") && cm_data_labels(data) &&
                 cm_data_labels(data)[1] == 1, "PNG folder source with classes");
        for (size_t i = 0; i < 20; i++)
            CM_CHECK(x[i] == (double)labels[i], "draw %zu: pixel %g with label %zu", i, x[i],
                     labels[i]);
        cm_data_free(data);
    }
    char here[512];
    CM_CHECK(getcwd(here, sizeof here) != NULL && chdir(dir) == 0, "chdir");
    data = NULL;
    CM_CHECK(cm_data_open(&data, "set") == CM_ERR_INVALID &&
             strstr(cm_error_detail(), "named with a '/', e.g. 'set/'"),
             "a folder named without '/': %s", cm_error_detail());
    CM_CHECK(chdir(here) == 0, "chdir back");
    snprintf(path, sizeof path, "rm -rf '%s'", dir);
    CM_CHECK(system(path) == 0, "cleanup");
}

/* The file hash of checkpoints is cm_data_fingerprint for file sources. */
static void test_fingerprint_of_files(void) {
    char path[128];
    snprintf(path, sizeof path, "/tmp/cm_test_data_fp_%ld.csv", (long)getpid());
    FILE *file = fopen(path, "w");
    if (!file) return;
    fprintf(file, "1,2\n3,4.5\n");
    fclose(file);
    cm_data *data = open_or_fail(path);
    remove(path);
    if (!data) return;
    CM_CHECK(cm_data_fingerprint(data) == cm_checkpoint_data_hash(data) &&
             cm_data_fingerprint(data) != 0, "fingerprint %016llx vs checkpoint hash %016llx",
             (unsigned long long)cm_data_fingerprint(data),
             (unsigned long long)cm_checkpoint_data_hash(data));
    cm_data_free(data);
}

/* Known answers from Python's gzip/struct on the package's files (see test_image.c). */
static void test_fashion_mnist_source(void) {
    struct stat info;
    if (stat(CM_FASHION_MNIST_DIR "/t10k-images-idx3-ubyte.gz", &info) != 0) {
        printf("    skipped: dataset-fashion-mnist is not installed\n");
        return;
    }
    cm_data *data = open_or_fail("fashion-mnist:test");
    if (!data) return;
    size_t C, H, W;
    CM_CHECK(cm_data_rows(data) == 10000 && cm_data_dim(data) == 784 &&
             cm_data_image_shape(data, &C, &H, &W) && C == 1 && H == 28 && W == 28 &&
             cm_data_classes(data) == 10 && cm_data_labels(data)[0] == 9 &&
             !strcmp(cm_data_class_name(data, 9), "Ankle boot") &&
             !strcmp(cm_data_describe(data), "fashion-mnist:test") &&
             cm_data_has_fixed_transform(data), "fashion-mnist:test");
    double row[784], sum = 0.0;
    cm_data_copy_rows(data, 0, 1, row);
    for (int k = 0; k < 784; k++) sum += row[k] * 255.0;
    CM_CHECK(fabs(sum - 33456.0) < 1e-6, "image 0 sum %.9g", sum);
    cm_data_free(data);
}

static void test_transform(void) {
    uint64_t seed = cm_test_seed(18);
    const size_t n = 500, d = 3;
    const double target = 0.5;
    double *x = malloc(n * d * sizeof(double)), *y = malloc(n * d * sizeof(double));
    cm_rng rng;
    cm_rng_init(&rng, seed);
    for (size_t r = 0; r < n; r++) {
        x[r * d] = 1000.0 + 3.0 * cm_rng_normal(&rng); /* large offset: tests the two passes */
        x[r * d + 1] = 1e-3 * cm_rng_uniform(&rng);
        x[r * d + 2] = 0.1; /* constant column: scale 1 */
    }
    memcpy(y, x, n * d * sizeof(double));
    cm_transform t;
    CM_CHECK_OK(cm_transform_fit(&t, x, n, d, target));
    CM_CHECK(t.scale[2] == 1.0, "constant column scale %g", t.scale[2]);
    cm_transform_apply(&t, y, n);
    for (size_t i = 0; i < 2; i++) {
        double m = 0.0, v = 0.0;
        for (size_t r = 0; r < n; r++) m += y[r * d + i];
        m /= (double)n;
        for (size_t r = 0; r < n; r++) v += (y[r * d + i] - m) * (y[r * d + i] - m);
        CM_CHECK_CLOSE(m, 0.0, 1e-12, "transformed mean");
        CM_CHECK_CLOSE(sqrt(v / (double)n), target, 1e-12, "transformed std");
    }
    cm_transform_invert(&t, y, n);
    for (size_t k = 0; k < n * d; k++)
        CM_CHECK_CLOSE(y[k], x[k], 1e-12 * fabs(x[k]) + 1e-15, "round trip");
    cm_transform_free(&t);
    CM_CHECK(t.shift == NULL && t.scale == NULL, "free resets");
    cm_transform_free(&t); /* twice is harmless */

    CM_CHECK_OK(cm_transform_identity(&t, d));
    memcpy(y, x, n * d * sizeof(double));
    cm_transform_apply(&t, y, n);
    CM_CHECK(memcmp(x, y, n * d * sizeof(double)) == 0, "identity changes points");
    cm_transform_free(&t);

    CM_CHECK(cm_transform_fit(&t, x, 0, d, 1.0) != CM_OK, "n = 0 accepted");
    CM_CHECK(cm_transform_fit(&t, x, n, d, 0.0) != CM_OK, "target 0 accepted");
    CM_CHECK(cm_transform_fit(&t, x, n, d, NAN) != CM_OK, "target NaN accepted");
    x[4] = NAN;
    CM_CHECK(cm_transform_fit(&t, x, n, d, 1.0) == CM_ERR_NONFINITE, "NaN point accepted");
    CM_CHECK(t.shift == NULL && t.scale == NULL, "failed fit leaves nothing to free");
    free(x);
    free(y);
}

const cm_test_case cm_tests_data[] = {
    {"gauss_moments", test_gauss_moments},
    {"gmm_law_and_moments", test_gmm_law_and_moments},
    {"8gaussians", test_8gaussians},
    {"moons", test_moons},
    {"swissroll", test_swissroll},
    {"checkerboard", test_checkerboard},
    {"rings", test_rings},
    {"sample_prefix_and_determinism", test_sample_prefix_and_determinism},
    {"spec_errors", test_spec_errors},
    {"describe_round_trip", test_describe_round_trip},
    {"open_out_of_memory", test_open_out_of_memory},
    {"file_source", test_file_source},
    {"file_columns", test_file_columns},
    {"from_values", test_from_values},
    {"transform", test_transform},
    {"shapes_source", test_shapes_source},
    {"fixed_transform", test_fixed_transform},
    {"image_file_sources", test_image_file_sources},
    {"fingerprint_of_files", test_fingerprint_of_files},
    {"fashion_mnist_source", test_fashion_mnist_source},
    {NULL, NULL},
};
