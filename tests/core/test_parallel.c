/* test_parallel.c: the thread pool (parallel.h) and the fast kernels it runs.
 *
 * - every task runs exactly once, for any thread and task count;
 * - the vectorised SiLU (nn.c's exp) against the double formula on a dense grid and on random
 *   values, within 3 float ulps, with the special values (0, -0, NaN, +-inf) behaving as
 *   x / (1 + expf(-x)) did;
 * - the vectorised sin/cos of the Fourier embedding against libm within 1 float ulp;
 * - bit-identical results with 1, 2 and 3 threads: MLP forward and backward, gradient norm,
 *   Adam, EMA, and whole training runs (ict, lhw); no allocation in steps with 2 threads;
 * - a lone row block (run on the calling thread) ignores OpenBLAS's thread count.
 */
#include "cm/parallel.h"

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/data.h"
#include "cm/evaluator.h"
#include "nn/layers.h"
#include "nn/mlp.h"
#include "cm/optim.h"
#include "cm/rng.h"
#include "cm/train.h"
#include "train/testing.h"
#include "test.h"

typedef struct {
    int count[200];
} count_job;

static void count_task(void *context, size_t task) { ((count_job *)context)->count[task]++; }

static void test_every_task_runs_once(void) {
    const size_t task_counts[] = {0, 1, 2, 3, 7, 64, 200};
    for (size_t threads = 1; threads <= 4; threads++) {
        CM_CHECK_OK(cm_parallel_set_threads(threads));
        CM_CHECK(cm_parallel_threads() == threads, "threads %zu", cm_parallel_threads());
        for (size_t c = 0; c < sizeof task_counts / sizeof task_counts[0]; c++)
            for (int repeat = 0; repeat < 50; repeat++) {
                count_job j = {{0}};
                cm_parallel_for(count_task, &j, task_counts[c]);
                for (size_t t = 0; t < 200; t++)
                    CM_CHECK(j.count[t] == (t < task_counts[c]), "threads %zu, tasks %zu: task %zu "
                             "ran %d times", threads, task_counts[c], t, j.count[t]);
            }
    }
    CM_CHECK(cm_parallel_set_threads(0) == CM_ERR_INVALID, "0 threads accepted");
    CM_CHECK(cm_parallel_set_threads(CM_PARALLEL_MAX_THREADS + 1) == CM_ERR_INVALID,
             "too many threads accepted");
    CM_CHECK_OK(cm_parallel_set_threads(1));
    size_t first, end, covered = 0;
    for (size_t part = 0; part < 7; part++) {
        cm_parallel_range(&first, &end, 100, part, 7);
        CM_CHECK(first == covered && end - first >= 14 && end - first <= 15, "range %zu: [%zu, %zu)",
                 part, first, end);
        covered = end;
    }
    CM_CHECK(covered == 100, "ranges cover %zu of 100", covered);
}

static double float_ulp(double x) {
    float f = (float)fabs(x);
    return (double)nextafterf(f, INFINITY) - (double)f;
}

/* x values: a grid of step 1/64 over [-110, 110] and 100000 normal draws of scale 10. */
static size_t silu_inputs(float *x, size_t capacity) {
    size_t n = 0;
    for (int k = -110 * 64; k <= 110 * 64 && n < capacity; k++) x[n++] = (float)k / 64.0f;
    cm_rng rng;
    cm_rng_init(&rng, cm_test_seed(61));
    while (n < capacity) x[n++] = (float)(10.0 * cm_rng_normal(&rng));
    return n;
}

static void test_silu_matches_the_formula(void) {
    enum { N = 14081 + 100000 };
    float *x = cm_malloc(N, sizeof(float)), *y = cm_malloc(N, sizeof(float));
    float *d = cm_malloc(N, sizeof(float)), *g = cm_malloc(N, sizeof(float));
    if (!x || !y || !d || !g) return;
    size_t n = silu_inputs(x, N);
    cm_silu_forward(y, x, (int)n);
    for (size_t i = 0; i < n; i++) d[i] = 0.25f, g[i] = 1.0f;
    cm_silu_backward(d, g, x, (int)n);
    double worst_forward = 0.0, worst_backward = 0.0, worst_at = 0.0;
    for (size_t i = 0; i < n; i++) {
        double v = x[i], s = 1.0 / (1.0 + exp(-v)), ref = v * s;
        /* normal results: 3 ulps (exp about 1, then a product and a
         * quotient). Subnormal ones (x < -92): 64 steps of 2^-149 (the old
         * x / (1 + expf(-x)) gave -0 for every x < -88.7, where silu(x) ~ -1e-36). */
        double error = fabs(y[i] - ref) / (fabs(ref) >= FLT_MIN ? float_ulp(ref) : 32.0 * FLT_TRUE_MIN);
        if (error > worst_forward) worst_at = x[i];
        worst_forward = fmax(worst_forward, error);
        double dref = 0.25 + s * (1.0 + v * (1.0 - s));
        double scale = 0.25 + s + fabs(v * s * (1.0 - s)); /* sizes of the summed terms */
        worst_backward = fmax(worst_backward, fabs(d[i] - dref) / (scale * FLT_EPSILON));
        if (!(error <= 3.0)) {
            CM_CHECK(0, "silu(%.9g) = %.9g, formula %.9g", x[i], y[i], ref);
            break;
        }
    }
    CM_CHECK(worst_forward <= 3.0, "silu: %.2f ulps at x = %.9g", worst_forward, worst_at);
    CM_CHECK(worst_backward <= 4.0, "silu': %.2f eps of its terms", worst_backward);
    /* special values: as x / (1 + expf(-x)) */
    float special[6] = {0.0f, -0.0f, NAN, INFINITY, -INFINITY, 200.0f}, out[6], grad[6] = {0};
    float ones[6] = {1, 1, 1, 1, 1, 1};
    cm_silu_forward(out, special, 6);
    cm_silu_backward(grad, ones, special, 6);
    CM_CHECK(out[0] == 0.0f && !signbit(out[0]), "silu(0) = %g", out[0]);
    CM_CHECK(out[1] == 0.0f && signbit(out[1]), "silu(-0) = %g", out[1]);
    CM_CHECK(isnan(out[2]) && isnan(grad[2]), "silu(NaN) = %g, silu' %g", out[2], grad[2]);
    CM_CHECK(out[3] == INFINITY, "silu(inf) = %g", out[3]);
    CM_CHECK(isnan(out[4]), "silu(-inf) = %g (as -inf / (1 + expf(inf)))", out[4]);
    CM_CHECK(out[5] == 200.0f && grad[5] == 1.0f, "silu(200) = %g, silu' %g", out[5], grad[5]);
    CM_CHECK(grad[0] == 0.5f, "silu'(0) = %g", grad[0]);
    cm_free(x);
    cm_free(y);
    cm_free(d);
    cm_free(g);
}

static void test_embedding_matches_libm(void) {
    enum { B = 801, E = 64 };
    float c[B], *out = cm_malloc((size_t)B * E, sizeof(float));
    if (!out) return;
    for (int b = 0; b < B; b++) c[b] = (float)(b - 400) / 200.0f; /* [-2, 2], the c_noise range */
    c[B - 1] = 500.0f; /* phases up to 5e5: past the fast path's limit, libm */
    const double max_frequency = 1000.0;
    cm_fourier_embedding(out, c, B, E, max_frequency);
    int half = E / 2;
    double worst = 0.0;
    for (int b = 0; b < B; b++)
        for (int k = 0; k < half; k++) {
            double f = exp(log(max_frequency) / (half - 1) * k), phase = f * (double)c[b];
            double s = sin(phase), co = cos(phase);
            worst = fmax(worst, fabs(out[b * E + k] - s) / float_ulp(s));
            worst = fmax(worst, fabs(out[b * E + half + k] - co) / float_ulp(co));
        }
    CM_CHECK(worst <= 1.0, "embedding: %.2f float ulps from libm", worst);
    cm_free(out);
}

/* A model's evaluator (its row blocks on the pool) gives the same bits with 1, 2 and 3 threads,
 * on an MLP of odd sizes and a padded chunk of odd length. */
static void test_evaluator_same_bits_any_thread_count(void) {
    cm_train_config config = cm_train_config_default(CM_METHOD_ICT, 3);
    cm_mlp_options *mlp = cm_network_options(&config.network);
    mlp->width = 37;
    mlp->embed = 8;
    mlp->embed_max_frequency = 100;
    cm_model model;
    CM_CHECK_OK(cm_model_init(&model, &config));
    enum { N = 101, D = 3 };
    float x[N * D], out[3][N * D];
    cm_rng rng;
    cm_rng_init(&rng, 71);
    cm_network_init(model.network, model.params, &rng);
    cm_rng_normal_fill_f32(&rng, x, N * D);
    cm_evaluator_options options = cm_evaluator_options_default();
    options.chunk = 57;
    options.blocks = 3;
    for (int t = 0; t < 3; t++) {
        cm_evaluator *e = NULL;
        CM_CHECK_OK(cm_parallel_set_threads((size_t)t + 1));
        CM_CHECK_OK(cm_evaluator_alloc(&e, &model, &options));
        if (e) cm_evaluator_apply(e, out[t], x, N, cm_model_coefficients(&model, 1.7));
        cm_evaluator_free(e);
    }
    CM_CHECK_OK(cm_parallel_set_threads(1));
    for (int t = 1; t < 3; t++)
        CM_CHECK(memcmp(out[0], out[t], sizeof out[0]) == 0, "evaluation differs with %d threads",
                 t + 1);
    cm_model_free(&model);
}

static void test_optimiser_same_bits_any_thread_count(void) {
    enum { P = 10007 };
    float *g = cm_malloc(3 * P, sizeof(float)), *p = cm_malloc(3 * P, sizeof(float));
    float *ema = cm_malloc(3 * P, sizeof(float));
    if (!g || !p || !ema) return;
    cm_rng rng;
    cm_rng_init(&rng, 81);
    cm_rng_normal_fill_f32(&rng, g, P);
    cm_rng_normal_fill_f32(&rng, p, P);
    double reference = 0.0;
    for (size_t i = 0; i < P; i++) reference += (double)g[i] * g[i];
    reference = sqrt(reference);
    cm_adam_config config = cm_adam_config_default();
    config.clip_norm = 10.0; /* below the norm (~100): the clipping path runs */
    config.weight_decay = 0.01;
    double norms[3];
    for (int t = 0; t < 3; t++) {
        memcpy(g + (size_t)t * P, g, P * sizeof(float));
        memcpy(p + (size_t)t * P, p, P * sizeof(float));
        memcpy(ema + (size_t)t * P, p, P * sizeof(float));
    }
    cm_adam adam[3];
    for (int t = 0; t < 3; t++) {
        CM_CHECK_OK(cm_parallel_set_threads((size_t)t + 1));
        CM_CHECK_OK(cm_adam_init(&adam[t], &config, P));
        norms[t] = cm_gradient_norm(g + (size_t)t * P, P);
        for (int step = 0; step < 3; step++)
            cm_adam_step(&adam[t], p + (size_t)t * P, g + (size_t)t * P, norms[t]);
        cm_ema_update(ema + (size_t)t * P, p + (size_t)t * P, P, 0.9);
    }
    CM_CHECK_OK(cm_parallel_set_threads(1));
    CM_CHECK_CLOSE(norms[0], reference, 1e-12 * reference, "gradient norm vs plain double sum");
    for (int t = 1; t < 3; t++) {
        CM_CHECK(norms[t] == norms[0], "norm %.17g with %d threads, %.17g with 1", norms[t], t + 1,
                 norms[0]);
        CM_CHECK(memcmp(p, p + (size_t)t * P, P * sizeof(float)) == 0, "Adam differs with %d threads", t + 1);
        CM_CHECK(memcmp(adam[0].v, adam[t].v, P * sizeof(float)) == 0, "moments differ with %d threads", t + 1);
        CM_CHECK(memcmp(ema, ema + (size_t)t * P, P * sizeof(float)) == 0, "EMA differs with %d threads", t + 1);
    }
    for (int t = 0; t < 3; t++) cm_adam_free(&adam[t]);
    cm_free(g);
    cm_free(p);
    cm_free(ema);
}

/* Whole runs: weights after 8 steps with 1 and with 2 threads; with 2 threads the steps make no
 * allocation (every allocation made to fail). */
static void test_training_same_bits_any_thread_count(void) {
    const cm_method methods[] = {CM_METHOD_ICT, CM_METHOD_LHW, CM_METHOD_CT};
    for (int m = 0; m < 3; m++) {
        cm_data *data;
        CM_CHECK_OK(cm_data_open(&data, "moons"));
        cm_train_config config = cm_train_config_default(methods[m], 2);
        CM_TEST_MLP(config)->width = 48;
        config.batch = 67; /* odd: unequal row blocks */
        config.steps = 100;
        config.seed = 5;
        cm_trainer *trainer[2] = {NULL, NULL};
        for (int t = 0; t < 2; t++) {
            CM_CHECK_OK(cm_parallel_set_threads((size_t)t + 1));
            CM_CHECK_OK(cm_trainer_init(&trainer[t], &config, data));
            if (!trainer[t]) continue;
            long live = cm_alloc_live_count();
            cm_alloc_fail_after(0);
            for (int k = 0; k < 8; k++) CM_CHECK_OK(cm_trainer_step(trainer[t], NULL));
            cm_alloc_fail_after(-1);
            CM_CHECK(cm_alloc_live_count() == live, "steps allocated");
        }
        CM_CHECK_OK(cm_parallel_set_threads(1));
        if (trainer[0] && trainer[1]) {
            size_t P = cm_model_param_count(cm_trainer_model(trainer[0]));
            CM_CHECK(memcmp(cm_trainer_params(trainer[0]), cm_trainer_params(trainer[1]),
                            P * sizeof(float)) == 0,
                     "%s: weights differ between 1 and 2 threads", cm_method_name(methods[m]));
            CM_CHECK(memcmp(cm_trainer_model(trainer[0])->params, cm_trainer_model(trainer[1])->params,
                            P * sizeof(float)) == 0,
                     "%s: EMA differs between 1 and 2 threads", cm_method_name(methods[m]));
        }
        cm_trainer_free(trainer[0]);
        cm_trainer_free(trainer[1]);
        cm_data_free(data);
    }
}

/* A row block alone on the pool (one task: run on the calling thread) gets the bits it gets
 * among others (OpenBLAS pinned to one thread), whatever OpenBLAS's own thread count: one
 * process of several may hold a single block while the others hold two. */
extern void openblas_set_num_threads(int threads);
extern int openblas_get_num_threads(void);

static void test_single_block_ignores_openblas_threads(void) {
    cm_data *data;
    CM_CHECK_OK(cm_data_open(&data, "gauss:d=64"));
    cm_train_config config = cm_train_config_default(CM_METHOD_ICT, 64);
    CM_TEST_MLP(config)->width = 512; /* products large enough for OpenBLAS to use its threads */
    config.batch = 256;
    config.blocks = 1;
    config.steps = 10;
    int blas_threads = openblas_get_num_threads();
    float *params[2] = {NULL, NULL};
    size_t P = 0;
    for (int t = 0; t < 2; t++) {
        cm_trainer *trainer = NULL;
        openblas_set_num_threads(t + 1);
        CM_CHECK_OK(cm_trainer_init(&trainer, &config, data));
        if (!trainer) continue;
        CM_CHECK_OK(cm_trainer_step(trainer, NULL));
        P = cm_model_param_count(cm_trainer_model(trainer));
        params[t] = malloc(P * sizeof(float));
        if (params[t]) memcpy(params[t], cm_trainer_params(trainer), P * sizeof(float));
        cm_trainer_free(trainer);
    }
    openblas_set_num_threads(blas_threads);
    CM_CHECK(params[0] && params[1] && memcmp(params[0], params[1], P * sizeof(float)) == 0,
             "one row block: weights differ between OpenBLAS at 1 and 2 threads");
    free(params[0]);
    free(params[1]);
    cm_data_free(data);
}

const cm_test_case cm_tests_parallel[] = {
    {"every_task_runs_once", test_every_task_runs_once},
    {"silu_matches_the_formula", test_silu_matches_the_formula},
    {"embedding_matches_libm", test_embedding_matches_libm},
    {"evaluator_same_bits_any_thread_count", test_evaluator_same_bits_any_thread_count},
    {"optimiser_same_bits_any_thread_count", test_optimiser_same_bits_any_thread_count},
    {"training_same_bits_any_thread_count", test_training_same_bits_any_thread_count},
    {"single_block_ignores_openblas_threads", test_single_block_ignores_openblas_threads},
    {NULL, NULL},
};
