/* test_sampler.c: [CM] Algorithm 1 and its [LHW] VP form checked on a model whose network is
 * zero, so that f(x, level) = skip(level) x and every output is Gaussian with a variance
 * computed here by hand; independence of the batch size; level validation. */
#include "cm/sampler.h"

#include <math.h>
#include <string.h>

#include "cm/alloc.h"
#include "test.h"

enum { N = 20000 };

/* mean and variance of column j of n x d points */
static void column_moments(const double *x, size_t n, size_t d, size_t j, double *mean, double *var) {
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) s += x[i * d + j];
    *mean = s / n;
    for (size_t i = 0; i < n; i++) s2 += (x[i * d + j] - *mean) * (x[i * d + j] - *mean);
    *var = s2 / (n - 1);
}

/* A model with zero weights (F = 0) and a non-trivial transform (shift 1, scale 2). */
static void zero_model(cm_model *model, cm_method method) {
    cm_train_config config = cm_train_config_default(method, 2);
    CM_TEST_MLP(config)->width = 8;
    CM_TEST_MLP(config)->depth = 1;
    CM_CHECK_OK(cm_model_init(model, &config));
    for (int i = 0; i < 2; i++) {
        model->transform.shift[i] = 1.0;
        model->transform.scale[i] = 2.0;
    }
}

static void check_gaussian(const double *x, double variance_model, const char *what) {
    /* data units: x = 2 y + 1 with Var(y) = variance_model */
    for (size_t j = 0; j < 2; j++) {
        double mean, var;
        column_moments(x, N, 2, j, &mean, &var);
        double want_var = 4 * variance_model;
        CM_CHECK_CLOSE(mean, 1.0, 5 * sqrt(want_var / N), what);
        CM_CHECK_CLOSE(var, want_var, 5 * want_var * sqrt(2.0 / N), what);
    }
}

static void test_ve_one_and_two_steps_exact_variance(void) {
    cm_model model;
    zero_model(&model, CM_METHOD_ICT);
    double *x = cm_malloc(N * 2, sizeof(double));
    uint64_t seed = cm_test_seed(31);
    const cm_train_config *c = &model.config;
    /* one step: x = skip(80) * 80 z */
    CM_CHECK_OK(cm_sample(x, &model, NULL, 0, N, seed));
    double s0 = c->method.sigma_max, k0 = cm_consistency_ve(s0, 0.5, c->method.sigma_min).skip;
    check_gaussian(x, k0 * k0 * s0 * s0, "one step");
    /* two steps 80, 0.8: x2 = skip(0.8) (x1 + sqrt(0.8^2 - smin^2) z) */
    double levels[2] = {80, 0.8};
    CM_CHECK_OK(cm_sample(x, &model, levels, 2, N, seed));
    double k80 = cm_consistency_ve(80, 0.5, c->method.sigma_min).skip;
    double k1 = cm_consistency_ve(0.8, 0.5, c->method.sigma_min).skip;
    double var1 = k80 * k80 * 6400;
    check_gaussian(x, k1 * k1 * (var1 + 0.64 - c->method.sigma_min * c->method.sigma_min), "two steps");
    cm_free(x);
    cm_model_free(&model);
}

static void test_lhw_two_steps_exact_variance(void) {
    cm_model model;
    zero_model(&model, CM_METHOD_LHW);
    const cm_lhw_schedule *s = &model.schedule;
    size_t T = model.config.method.chain_T, t1 = 40;
    double levels[2] = {s->sigma[T], s->sigma[t1]};
    double *x = cm_malloc(N * 2, sizeof(double));
    CM_CHECK_OK(cm_sample(x, &model, levels, 2, N, cm_test_seed(32)));
    double kT = cm_consistency_lhw(s, T, 0.5).skip, k1 = cm_consistency_lhw(s, t1, 0.5).skip;
    double ratio = exp(s->log_abar[t1] - s->log_abar[1]);
    /* x1 = kT Y; x2 = k1 (sqrt(ratio) x1 + sqrt(1 - ratio) z) */
    check_gaussian(x, k1 * k1 * (ratio * kT * kT + (1 - ratio)), "lhw two steps");
    cm_free(x);
    cm_model_free(&model);
}

static void test_samples_do_not_depend_on_count(void) {
    cm_train_config config = cm_train_config_default(CM_METHOD_ICT, 2);
    CM_TEST_MLP(config)->width = 16;
    cm_model model;
    CM_CHECK_OK(cm_model_init(&model, &config));
    cm_rng rng;
    cm_rng_init(&rng, 3);
    cm_network_init(model.network, model.params, &rng);
    /* 5000 spans three chunks of CM_SAMPLER_CHUNK rows; 1000 lies inside the first */
    double *a = cm_malloc(5000 * 2, sizeof(double)), *b = cm_malloc(1000 * 2, sizeof(double));
    double levels[2] = {80, 0.5};
    CM_CHECK_OK(cm_sample(a, &model, levels, 2, 5000, 9));
    CM_CHECK_OK(cm_sample(b, &model, levels, 2, 1000, 9));
    CM_CHECK(memcmp(a, b, 1000 * 2 * sizeof(double)) == 0, "first 1000 samples depend on n");
    CM_CHECK_OK(cm_sample(b, &model, levels, 2, 1000, 10));
    CM_CHECK(memcmp(a, b, 1000 * 2 * sizeof(double)) != 0, "seed ignored");
    cm_free(a);
    cm_free(b);
    cm_model_free(&model);
}

static void test_level_validation(void) {
    cm_model ve, lhw;
    zero_model(&ve, CM_METHOD_CT);
    zero_model(&lhw, CM_METHOD_LHW);
    double used[CM_SAMPLER_MAX_LEVELS];
    size_t count;
    double increasing[2] = {0.8, 80}, too_small[2] = {80, 0.001}, nan_level[1] = {NAN};
    CM_CHECK(cm_sampler_levels(used, &count, &ve, increasing, 2) == CM_ERR_INVALID, "increasing");
    CM_CHECK(cm_sampler_levels(used, &count, &ve, too_small, 2) == CM_ERR_INVALID, "below sigma_min");
    CM_CHECK(cm_sampler_levels(used, &count, &ve, nan_level, 1) == CM_ERR_INVALID, "NaN");
    CM_CHECK_OK(cm_sampler_levels(used, &count, &ve, NULL, 0));
    CM_CHECK(count == 1 && used[0] == ve.config.method.sigma_max, "default one step at sigma_max: %g", used[0]);
    /* lhw: two levels so close they map to the same chain index */
    double same[2] = {10.0, 9.999};
    CM_CHECK(cm_sampler_levels(used, &count, &lhw, same, 2) == CM_ERR_INVALID, "same chain index");
    double mapped[2] = {1000.0, 1.0};
    CM_CHECK_OK(cm_sampler_levels(used, &count, &lhw, mapped, 2));
    size_t t = cm_lhw_schedule_nearest(&lhw.schedule, 1.0);
    CM_CHECK(used[1] == lhw.schedule.sigma[t], "mapped level %g vs sigma_%zu = %g", used[1], t,
             lhw.schedule.sigma[t]);
    CM_CHECK(fabs(log(used[1])) < log(lhw.schedule.sigma[t + 1] / lhw.schedule.sigma[t - 1]),
             "nearest chain level %g is not near 1", used[1]);
    cm_model_free(&ve);
    cm_model_free(&lhw);
}

/* The progress callback of cm_sample_with_progress: one report per chunk, increasing, ending at
 * the total, and the samples are those of cm_sample bit for bit. */
typedef struct {
    size_t calls, last, total, bad;
} progress_log;

static void record_progress(void *context, size_t done, size_t total) {
    progress_log *log = context;
    if (done <= log->last || done > total || (log->total && total != log->total)) log->bad++;
    log->calls++;
    log->last = done;
    log->total = total;
}

static void test_progress_callback(void) {
    cm_model model;
    zero_model(&model, CM_METHOD_ICT);
    size_t n = 2 * CM_SAMPLER_CHUNK + 5;
    double *plain = cm_malloc(2 * n * 2, sizeof(double)), *watched = plain + n * 2;
    double levels[2] = {10.0, 0.8};
    progress_log log = {0};
    cm_sample_progress progress = {.report = record_progress, .context = &log};
    CM_CHECK_OK(cm_sample(plain, &model, levels, 2, n, 3));
    CM_CHECK_OK(cm_sample_with_progress(watched, &model, levels, 2, n, 3, &progress));
    CM_CHECK(log.calls == 3, "%zu progress reports for 3 chunks", log.calls);
    CM_CHECK(log.bad == 0 && log.last == n && log.total == n,
             "reports not increasing to the total (last %zu of %zu, %zu bad)", log.last, n, log.bad);
    CM_CHECK(memcmp(plain, watched, n * 2 * sizeof(double)) == 0,
             "samples with a progress callback differ from cm_sample's");
    cm_free(plain);
    cm_model_free(&model);
}

const cm_test_case cm_tests_sampler[] = {
    {"progress_callback", test_progress_callback},
    {"ve_one_and_two_steps_exact_variance", test_ve_one_and_two_steps_exact_variance},
    {"lhw_two_steps_exact_variance", test_lhw_two_steps_exact_variance},
    {"samples_do_not_depend_on_count", test_samples_do_not_depend_on_count},
    {"level_validation", test_level_validation},
    {NULL, NULL},
};
