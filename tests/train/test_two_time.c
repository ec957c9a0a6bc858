/* test_two_time.c: the two-time consistency model g(x, t, s) and its distillation (cd2;
 * [JHMZ], consistency.h, src/train/objective.c): the trainer's target is the teacher's ODE step when the
 * target level is the teacher's level, the loss equals one computed independently from the
 * network, runs are bit-identical per seed and allocate nothing per step, and a short run on a
 * Gaussian learns its exact flow map (closed form) at every pair of levels. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/diffusion.h"
#include "cm/law.h"
#include "cm/multistep.h"
#include "cm/schedule.h"
#include "cm/train.h"
#include "train/testing.h"
#include "test.h"

#define DATA_SOURCE "gauss:d=2,mean=1,std=0.5"

/* A cd2 trainer on DATA_SOURCE with the exact teacher (the law standardised with the trainer's
 * transform); the law and denoiser are owned by the caller's fixture. */
typedef struct {
    cm_data *data;
    cm_trainer *trainer;
    cm_law *raw, *law;
    cm_denoiser teacher;
} cd2_fixture;

static void fixture_open(cd2_fixture *f, const cm_train_config *config) {
    *f = (cd2_fixture){0};
    CM_CHECK_OK(cm_data_open(&f->data, DATA_SOURCE));
    CM_CHECK_OK(cm_trainer_init(&f->trainer, config, f->data));
    const cm_transform *t = &cm_trainer_model(f->trainer)->transform;
    CM_CHECK_OK(cm_law_from_data(&f->raw, f->data));
    CM_CHECK_OK(cm_law_standardise(&f->law, f->raw, t->shift, t->scale));
    CM_CHECK_OK(cm_denoiser_from_law(&f->teacher, f->law));
    CM_CHECK_OK(cm_trainer_set_teacher(f->trainer, &f->teacher, NULL));
}

static void fixture_close(cd2_fixture *f) {
    cm_trainer_free(f->trainer);
    cm_denoiser_free(&f->teacher);
    cm_law_free(f->law);
    cm_law_free(f->raw);
    cm_data_free(f->data);
}

static cm_train_config small_cd2(size_t batch) {
    cm_train_config c = cm_train_config_default(CM_METHOD_CD2, 2);
    CM_TEST_MLP(c)->width = 16, CM_TEST_MLP(c)->depth = 1, CM_TEST_MLP(c)->embed = 8;
    c.batch = batch, c.steps = 50, c.seed = 3;
    return c;
}

/* Batch of step 4: target levels lie on the grid at or below the teacher's level; rows whose
 * target level is the teacher's level have the teacher input itself as target (g(x, t, t) = x,
 * so the loss there asks for the teacher's ODE step: zero learning error reproduces it); the
 * trainer's loss equals the l2 loss computed here from cm_consistency_forward of the same
 * network at the two-time coefficients. */
static void test_cd2_target_is_teacher_step(void) {
    enum { B = 64, D = 2 };
    cm_train_config c = small_cd2(B);
    cd2_fixture f;
    fixture_open(&f, &c);
    float student[B * D], teacher[B * D];
    double s_hi[B], s_lo[B], s_target[B];
    CM_CHECK_OK(cm_trainer_batch_inputs(f.trainer, 4, student, teacher, s_hi, s_lo, s_target));
    const cm_model *model = cm_trainer_model(f.trainer);
    cm_network_workspace *ws = NULL;
    CM_CHECK_OK(cm_network_workspace_alloc(&ws, model->network, B));
    float coef_student[5 * B], coef_teacher[5 * B], out[B * D], target[B * D], x_in[B * D],
        F_out[B * D];
    cm_coefficient_rows rows_student = cm_coefficient_rows_view(coef_student, B, 2);
    cm_coefficient_rows rows_teacher = cm_coefficient_rows_view(coef_teacher, B, 2);
    size_t at_teacher_level = 0, below = 0;
    for (int b = 0; b < B; b++) {
        CM_CHECK(s_hi[b] > s_lo[b] && s_lo[b] >= s_target[b] && s_target[b] >= c.method.sigma_min * 0.999,
                 "row %d levels %g > %g >= %g", b, s_hi[b], s_lo[b], s_target[b]);
        at_teacher_level += s_target[b] == s_lo[b];
        below += s_target[b] < s_lo[b];
        cm_coefficient_rows_store(rows_student, (size_t)b,
                                  cm_consistency_two_time(s_hi[b], s_target[b], 0.5));
        cm_coefficient_rows_store(rows_teacher, (size_t)b,
                                  cm_consistency_two_time(s_lo[b], s_target[b], 0.5));
    }
    /* i uniform in 0..16, u uniform in 0..i: P(u = i) = mean of 1/(i+1), about 0.21 */
    CM_CHECK(at_teacher_level >= 3 && below >= 20, "target levels: %zu at the teacher's, %zu below",
             at_teacher_level, below);
    const float *params = cm_trainer_params(f.trainer); /* the target copy equals it at step 0 */
    cm_consistency_forward(out, x_in, F_out, model->network, params, ws, student, rows_student, B);
    cm_consistency_forward(target, x_in, F_out, model->network, params, ws, teacher, rows_teacher, B);
    double loss = 0;
    for (int b = 0; b < B; b++)
        for (int i = 0; i < D; i++) {
            if (s_target[b] == s_lo[b])
                CM_CHECK(target[b * D + i] == teacher[b * D + i], "row %d: target %.9g, teacher "
                         "step %.9g", b, target[b * D + i], teacher[b * D + i]);
            double diff = (double)out[b * D + i] - (double)target[b * D + i];
            loss += diff * diff / B;
        }
    double trainer_loss;
    CM_CHECK_OK(cm_trainer_batch_loss(f.trainer, 4, params, params, &trainer_loss));
    CM_CHECK(fabs(trainer_loss - loss) <= 1e-5 * loss, "cd2 loss %.9g, computed here %.9g",
             trainer_loss, loss);
    /* the teacher input is one Heun step of the exact denoiser (as for cd) */
    double worst = 0;
    for (int b = 0; b < B; b++) {
        double x[2] = {student[2 * b], student[2 * b + 1]}, work[6];
        CM_CHECK_OK(cm_diffusion_step(&f.teacher, CM_DIFFUSION_HEUN, &s_hi[b], &s_lo[b], x, 1, work));
        for (int i = 0; i < 2; i++)
            worst = fmax(worst, fabs(x[i] - teacher[2 * b + i]) / (1e-6 * (1 + fabs(x[i]))));
    }
    CM_CHECK(worst < 10, "teacher input differs from an independent Heun step (%g x 1e-6)", worst);
    cm_network_workspace_free(ws);
    fixture_close(&f);
}

/* Same seed: the same weights to the bit after 20 steps; another seed differs; the steps
 * allocate nothing (every allocation made to fail). */
static void test_cd2_same_seed_bit_identical(void) {
    cm_train_config c = small_cd2(32);
    cd2_fixture a, b, other;
    fixture_open(&a, &c);
    fixture_open(&b, &c);
    c.seed = 4;
    fixture_open(&other, &c);
    long live = cm_alloc_live_count();
    cm_alloc_fail_after(0);
    for (int k = 0; k < 20; k++) {
        CM_CHECK_OK(cm_trainer_step(a.trainer, NULL));
        CM_CHECK_OK(cm_trainer_step(b.trainer, NULL));
        CM_CHECK_OK(cm_trainer_step(other.trainer, NULL));
    }
    cm_alloc_fail_after(-1);
    CM_CHECK(cm_alloc_live_count() == live, "cd2 steps changed the live allocation count");
    size_t P = cm_model_param_count(cm_trainer_model(a.trainer));
    CM_CHECK(memcmp(cm_trainer_params(a.trainer), cm_trainer_params(b.trainer), P * sizeof(float)) == 0,
             "cd2: same seed, different weights");
    CM_CHECK(memcmp(cm_trainer_params(a.trainer), cm_trainer_params(other.trainer),
                    P * sizeof(float)) != 0, "cd2: seed ignored");
    fixture_close(&a);
    fixture_close(&b);
    fixture_close(&other);
}

/* Mean |g(x, t, s) - Phi_{t->s}(x)| over pairs of levels t > s on the cd grid and points
 * x ~ X_t (model units), with Phi the closed-form flow map of the standardised Gaussian. */
static double flow_map_error(const cm_model *model, const cm_law *law, uint64_t seed) {
    enum { N = 256, PAIRS = 24 };
    const cm_train_config *c = &model->config;
    cm_two_time_map map;
    CM_CHECK_OK(cm_two_time_from_model(&map, model));
    double mean[2], cov[4], var[2], x[N * 2], g[N * 2], grid[18], total = 0;
    cm_law_moments(law, mean, cov); /* a diagonal Gaussian: its flow acts per axis */
    var[0] = cov[0], var[1] = cov[3];
    CM_CHECK(c->method.cd_levels == 18 && cov[1] == 0, "cd levels %zu, covariance %g", c->method.cd_levels, cov[1]);
    CM_CHECK_OK(cm_karras_grid(grid, c->method.cd_levels, c->method.sigma_min, c->method.sigma_max, c->method.rho));
    cm_rng rng;
    cm_rng_init(&rng, seed);
    for (int p = 0; p < PAIRS; p++) {
        size_t hi = 1 + (size_t)cm_rng_below(&rng, c->method.cd_levels - 1);
        size_t lo = (size_t)cm_rng_below(&rng, hi);
        double t = grid[hi], s = grid[lo];
        for (int k = 0; k < N * 2; k++)
            x[k] = mean[k % 2] + sqrt(var[k % 2] + t * t) * cm_rng_normal(&rng);
        CM_CHECK_OK(map.map(map.context, x, N, t, s, g));
        for (int k = 0; k < N * 2; k++) {
            int i = k % 2;
            double exact = mean[i] + sqrt((var[i] + s * s) / (var[i] + t * t)) * (x[k] - mean[i]);
            total += fabs(g[k] - exact) / (N * 2 * PAIRS);
        }
    }
    cm_two_time_free(&map);
    return total;
}

/* A short seeded cd2 run with the exact teacher learns the Gaussian's two-time flow map: the
 * error falls well below the untrained network's (the bound is a margin over the measured
 * value, printed). Slow; CM_FAST skips it. */
static void test_cd2_learns_gaussian_flow_map(void) {
    if (getenv("CM_FAST")) return;
    cm_train_config c = cm_train_config_default(CM_METHOD_CD2, 2);
    CM_TEST_MLP(c)->width = 64, CM_TEST_MLP(c)->depth = 2, c.batch = 256, c.steps = 3000, c.seed = 1;
    cd2_fixture f;
    fixture_open(&f, &c);
    uint64_t seed = cm_test_seed(11);
    double before = flow_map_error(cm_trainer_model(f.trainer), f.law, seed);
    for (size_t k = 0; k < c.steps; k++) CM_CHECK_OK(cm_trainer_step(f.trainer, NULL));
    double after = flow_map_error(cm_trainer_model(f.trainer), f.law, seed);
    printf("    cd2 flow-map error: untrained %.4f, after %zu steps %.4f\n", before, c.steps, after);
    CM_CHECK(after < 0.3 * before && after < 0.02, "cd2 flow-map error %.4f (untrained %.4f)",
             after, before);
    fixture_close(&f);
}

const cm_test_case cm_tests_two_time[] = {
    {"cd2_target_is_teacher_step", test_cd2_target_is_teacher_step},
    {"cd2_same_seed_bit_identical", test_cd2_same_seed_bit_identical},
    {"cd2_learns_gaussian_flow_map", test_cd2_learns_gaussian_flow_map},
    {NULL, NULL},
};
