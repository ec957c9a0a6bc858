/* test_diffusion.c: the diffusion samplers of diffusion.h driven by exact denoisers (a diagonal
 * Gaussian written out here, and law.h's mixtures): output moments against the data law, the
 * orders of Euler and Heun as the steps double (against the closed-form flow map and against
 * cm_law_flow), NFE counts, grids, batch independence, the dsm model read as a denoiser, the dsm
 * batch, and consistency distillation: the trainer's target is the teacher's ODE step, and the
 * exact consistency function makes the CD loss vanish at the order of the ODE step. */
#include "cm/diffusion.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/law.h"
#include "cm/train.h"
#include "train/testing.h"
#include "test.h"

/* ---- a hand-written exact denoiser: N(mean, diag(var)) in VE units,
 * D(x, s) = m + l / (l + s^2) (x - m). Counts its calls. */
typedef struct {
    size_t dim;
    const double *mean, *var;
    size_t calls;
} gauss_ctx;

static cm_status gauss_denoise(void *context, const double *x, const double *sigma, size_t n,
                               double *out) {
    gauss_ctx *g = context;
    g->calls++;
    for (size_t r = 0; r < n; r++)
        for (size_t i = 0; i < g->dim; i++) {
            double l = g->var[i], m = g->mean[i], s = sigma[r];
            out[r * g->dim + i] = m + l / (l + s * s) * (x[r * g->dim + i] - m);
        }
    return CM_OK;
}

/* the exact flow map of the same law from level a to level b */
static double gauss_flow(const gauss_ctx *g, size_t i, double x, double a, double b) {
    double l = g->var[i], m = g->mean[i];
    return m + sqrt((l + b * b) / (l + a * a)) * (x - m);
}

static void column_moments(const double *x, size_t n, size_t d, size_t j, double *mean, double *var) {
    double s = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) s += x[i * d + j];
    *mean = s / (double)n;
    for (size_t i = 0; i < n; i++) s2 += (x[i * d + j] - *mean) * (x[i * d + j] - *mean);
    *var = s2 / (double)(n - 1);
}

enum { N_MC = 20000 };
#define DSM_ERROR_BOUND 0.02 /* measured 0.0075 (seed 1, 6000 steps, lr 0.01); untrained 0.077 */

/* Every sampler with the exact denoiser reproduces N(mean, diag(var)): mean within 5 standard
 * errors, variance within 5 standard errors of a sample variance (sqrt(2 / n) relative), plus the
 * sampler's own discretisation bias (measured below 1% with these step counts; allowed 2%). */
static void test_samplers_reproduce_gaussian(void) {
    double mean[2] = {1.0, -0.5}, var[2] = {0.25, 2.0};
    gauss_ctx g = {2, mean, var, 0};
    cm_denoiser den = {gauss_denoise, &g, NULL, 2};
    double *x = cm_malloc(N_MC * 2, sizeof(double));
    uint64_t seed = cm_test_seed(11);
    const struct {
        cm_diffusion_sampler sampler;
        size_t steps;
    } runs[] = {{CM_DIFFUSION_EULER, 256}, {CM_DIFFUSION_HEUN, 32}, {CM_DIFFUSION_DDPM, 256}};
    for (size_t r = 0; r < 3; r++) {
        cm_diffusion_options o = cm_diffusion_options_default();
        o.sampler = runs[r].sampler;
        o.steps = runs[r].steps;
        o.sigma_max = 80;
        size_t nfe = 0;
        CM_CHECK_OK(cm_diffusion_sample(x, &den, &o, N_MC, seed, &nfe));
        CM_CHECK(nfe == cm_diffusion_nfe(o.sampler, o.steps), "nfe %zu", nfe);
        for (size_t j = 0; j < 2; j++) {
            double m, v;
            column_moments(x, N_MC, 2, j, &m, &v);
            CM_CHECK_CLOSE(m, mean[j], 5 * sqrt(var[j] / N_MC) + 0.02 * sqrt(var[j]),
                           cm_diffusion_sampler_name(o.sampler));
            CM_CHECK_CLOSE(v, var[j], var[j] * (5 * sqrt(2.0 / N_MC) + 0.02),
                           cm_diffusion_sampler_name(o.sampler));
        }
    }
    cm_free(x);
}

/* Deterministic map from sigma 10 to 0.1 on a geometric grid of N steps: the error at fixed
 * points halves (Euler) or quarters (Heun) when N doubles. */
static double solve_error(const cm_denoiser *den, cm_diffusion_sampler method, size_t steps,
                          const double *x0, size_t n, const double *exact) {
    double grid[129], x[16];
    for (size_t i = 0; i <= steps; i++) grid[i] = 10.0 * pow(0.01, (double)i / (double)steps);
    memcpy(x, x0, n * sizeof(double));
    size_t nfe;
    CM_CHECK_OK(cm_diffusion_solve(den, method, grid, steps + 1, x, n, &nfe));
    CM_CHECK(nfe == (method == CM_DIFFUSION_HEUN ? 2 * steps : steps), "nfe %zu", nfe);
    double error = 0;
    for (size_t k = 0; k < n; k++) error = fmax(error, fabs(x[k] - exact[k]));
    return error;
}

static void check_orders(const cm_denoiser *den, const double *x0, size_t n, const double *exact,
                         const char *what) {
    for (int m = 0; m < 2; m++) {
        cm_diffusion_sampler method = m ? CM_DIFFUSION_HEUN : CM_DIFFUSION_EULER;
        double want = m ? 4.0 : 2.0, previous = solve_error(den, method, 8, x0, n, exact);
        for (size_t steps = 16; steps <= 64; steps *= 2) {
            double error = solve_error(den, method, steps, x0, n, exact);
            double ratio = previous / error;
            printf("  %s %s: N = %zu, error %.3e, ratio %.3f\n", what,
                   cm_diffusion_sampler_name(method), steps, error, ratio);
            CM_CHECK(fabs(ratio / want - 1) < 0.2, "%s %s N = %zu: error ratio %g, want %g", what,
                     cm_diffusion_sampler_name(method), steps, ratio, want);
            previous = error;
        }
    }
}

static void test_euler_heun_orders_gaussian(void) {
    double mean[1] = {0.7}, var[1] = {0.3};
    gauss_ctx g = {1, mean, var, 0};
    cm_denoiser den = {gauss_denoise, &g, NULL, 1};
    double x0[4] = {-20, -3, 4, 15}, exact[4];
    for (int k = 0; k < 4; k++) exact[k] = gauss_flow(&g, 0, x0[k], 10.0, 0.1);
    check_orders(&den, x0, 4, exact, "gaussian");
}

/* The same on a two-component mixture (non-linear denoiser), against cm_law_flow. */
static void test_euler_heun_orders_mixture(void) {
    double weights[2] = {0.3, 0.7}, means[2] = {-1.0, 1.5}, stds[2] = {0.3, 0.5};
    cm_law *law;
    CM_CHECK_OK(cm_law_mixture_isotropic(&law, 1, 2, weights, means, stds));
    if (!law) return;
    cm_denoiser den;
    CM_CHECK_OK(cm_denoiser_from_law(&den, law));
    double x0[4] = {-20, -3, 4, 15}, exact[4];
    /* VE level 10 -> VP x / sqrt(101) at lambda = -2 log 10, and back at level 0.1 */
    double vp[4];
    for (int k = 0; k < 4; k++) vp[k] = x0[k] / sqrt(1 + 100.0);
    CM_CHECK_OK(cm_law_flow(law, -2 * log(10.0), -2 * log(0.1), vp, 4, exact, NULL, NULL));
    for (int k = 0; k < 4; k++) exact[k] *= sqrt(1 + 0.01);
    check_orders(&den, x0, 4, exact, "mixture");
    cm_denoiser_free(&den);
    cm_law_free(law);
}

/* law.h's denoiser, converted to VE units, equals the hand closed form. */
static void test_law_denoiser_matches_closed_form(void) {
    double mean[2] = {1.0, -0.5}, var[2] = {0.25, 2.0};
    gauss_ctx g = {2, mean, var, 0};
    cm_law *law;
    CM_CHECK_OK(cm_law_gaussian_diagonal(&law, 2, mean, var));
    if (!law) return;
    cm_denoiser den;
    CM_CHECK_OK(cm_denoiser_from_law(&den, law));
    double x[6] = {0.3, 2.0, -4.0, 1.0, 10.0, -7.0}, sigma[3] = {0.01, 1.0, 30.0}, a[6], b[6];
    CM_CHECK_OK(den.denoise(den.context, x, sigma, 3, a));
    gauss_denoise(&g, x, sigma, 3, b);
    for (int k = 0; k < 6; k++) CM_CHECK_CLOSE(a[k], b[k], 1e-12 * (1 + fabs(b[k])), "law denoiser");
    cm_denoiser_free(&den);
    cm_law_free(law);
}

static void test_grids(void) {
    cm_diffusion_options o = cm_diffusion_options_default();
    o.steps = 5, o.sigma_max = 80, o.sigma_min = 0.002;
    double grid[6];
    CM_CHECK_OK(cm_diffusion_grid(grid, &o));
    CM_CHECK(grid[0] == 80 && fabs(grid[4] - 0.002) < 1e-15 && grid[5] == 0, "karras ends");
    /* Karras i = 2 of 5 (from the top): (80^(1/7) + 0.5 (0.002^(1/7) - 80^(1/7)))^7 */
    double mid = pow(pow(80, 1 / 7.0) + 0.5 * (pow(0.002, 1 / 7.0) - pow(80, 1 / 7.0)), 7);
    CM_CHECK_CLOSE(grid[2], mid, 1e-12, "karras middle");
    o.grid = CM_GRID_LHW;
    CM_CHECK_OK(cm_diffusion_grid(grid, &o));
    for (int i = 0; i + 2 < 5; i++)
        CM_CHECK_CLOSE(grid[i] / grid[i + 1], grid[i + 1] / grid[i + 2], 1e-12, "geometric");
    o.steps = 1;
    CM_CHECK_OK(cm_diffusion_grid(grid, &o));
    CM_CHECK(grid[0] == 80 && grid[1] == 0, "one step");
    o.steps = 0;
    CM_CHECK(cm_diffusion_grid(grid, &o) == CM_ERR_INVALID, "0 steps accepted");
    o.steps = 4, o.sigma_min = 100;
    CM_CHECK(cm_diffusion_grid(grid, &o) == CM_ERR_INVALID, "sigma_min > sigma_max accepted");
    CM_CHECK(cm_diffusion_nfe(CM_DIFFUSION_HEUN, 18) == 35, "heun nfe");
    cm_diffusion_sampler s;
    CM_CHECK(cm_diffusion_sampler_parse(&s, "euler") == CM_OK && s == CM_DIFFUSION_EULER, "euler");
    CM_CHECK(cm_diffusion_sampler_parse(&s, "rk4") == CM_ERR_INVALID, "rk4 accepted");
}

/* The first n points of a draw of 2n are the draw of n (every sampler). */
static void test_batch_independence(void) {
    double mean[2] = {0, 0}, var[2] = {1, 1};
    gauss_ctx g = {2, mean, var, 0};
    cm_denoiser den = {gauss_denoise, &g, NULL, 2};
    double a[40], b[80];
    for (int s = 0; s < CM_DIFFUSION_SAMPLER_COUNT; s++) {
        cm_diffusion_options o = cm_diffusion_options_default();
        o.sampler = (cm_diffusion_sampler)s, o.steps = 6;
        CM_CHECK_OK(cm_diffusion_sample(a, &den, &o, 20, 3, NULL));
        CM_CHECK_OK(cm_diffusion_sample(b, &den, &o, 40, 3, NULL));
        CM_CHECK(memcmp(a, b, sizeof a) == 0, "%s depends on n", cm_diffusion_sampler_name(o.sampler));
    }
}

/* A dsm model with zero weights has F = 0, so D = c_skip x = sd^2 / (sd^2 + s^2) x: the exact
 * denoiser of N(0, sd^2 I). Its samples are that law mapped by the transform. */
static void test_zero_dsm_model_is_gaussian_denoiser(void) {
    cm_train_config c = cm_train_config_default(CM_METHOD_DSM, 2);
    CM_TEST_MLP(c)->width = 8, CM_TEST_MLP(c)->depth = 1;
    cm_model model;
    CM_CHECK_OK(cm_model_init(&model, &c));
    for (int i = 0; i < 2; i++) model.transform.shift[i] = 1.0, model.transform.scale[i] = 2.0;
    cm_denoiser den;
    CM_CHECK_OK(cm_denoiser_from_model(&den, &model));
    double x[4] = {1, -2, 0.5, 3}, sigma[2] = {0.3, 0.0}, out[4];
    CM_CHECK_OK(den.denoise(den.context, x, sigma, 2, out));
    double k = 0.25 / (0.25 + 0.09);
    CM_CHECK_CLOSE(out[0], k * 1, 1e-6, "D at 0.3");
    CM_CHECK_CLOSE(out[1], k * -2, 1e-6, "D at 0.3");
    CM_CHECK(out[2] == 0.5 && out[3] == 3, "D at sigma 0 is the identity");
    cm_denoiser_free(&den);
    double *samples = cm_malloc(N_MC * 2, sizeof(double));
    cm_diffusion_options o = cm_diffusion_options_for_model(&model);
    o.sampler = CM_DIFFUSION_HEUN, o.steps = 32;
    CM_CHECK_OK(cm_diffusion_sample_model(samples, &model, &o, N_MC, cm_test_seed(5), NULL));
    for (size_t j = 0; j < 2; j++) { /* data units: 1 + 2 N(0, 0.25) = N(1, 1) */
        double m, v;
        column_moments(samples, N_MC, 2, j, &m, &v);
        CM_CHECK_CLOSE(m, 1.0, 5 * sqrt(1.0 / N_MC), "zero dsm mean");
        CM_CHECK_CLOSE(v, 1.0, 5 * sqrt(2.0 / N_MC) + 0.02, "zero dsm variance");
    }
    cm_free(samples);
    cm_train_config ict = cm_train_config_default(CM_METHOD_ICT, 2);
    cm_model other;
    CM_CHECK_OK(cm_model_init(&other, &ict));
    CM_CHECK(cm_denoiser_from_model(&den, &other) == CM_ERR_INVALID, "ict model as a denoiser");
    cm_model_free(&other);
    cm_model_free(&model);
}

/* Local errors of one ODE step between adjacent levels, with the exact consistency function
 * f*(x, s) = Phi_{s -> smin}(x) as both student and target: the CD loss
 * |f*(x, s_hi) - f*(step(x), s_lo)| is the step's local error carried to smin, O(h^2) for Euler
 * and O(h^3) for Heun: halving the gap divides it by about 4 and 8. */
static void test_cd_loss_with_exact_consistency_function(void) {
    double mean[1] = {0.4}, var[1] = {0.2};
    gauss_ctx g = {1, mean, var, 0};
    cm_denoiser den = {gauss_denoise, &g, NULL, 1};
    double smin = 0.002, s_lo = 0.5, work[3], x0 = 2.0;
    for (int m = 0; m < 2; m++) {
        cm_diffusion_sampler method = m ? CM_DIFFUSION_HEUN : CM_DIFFUSION_EULER;
        double previous = 0, want = m ? 8.0 : 4.0;
        for (int k = 0; k < 4; k++) {
            double h = 0.04 * pow(0.5, k), s_hi = s_lo + h, x = x0, from = s_hi, to = s_lo;
            double student = gauss_flow(&g, 0, x, s_hi, smin);
            CM_CHECK_OK(cm_diffusion_step(&den, method, &from, &to, &x, 1, work));
            double loss = fabs(student - gauss_flow(&g, 0, x, s_lo, smin));
            if (k) {
                printf("  cd %s: gap %.4f, loss %.3e, ratio %.3f\n",
                       cm_diffusion_sampler_name(method), h, loss, previous / loss);
                CM_CHECK(fabs(previous / loss / want - 1) < 0.15, "%s: ratio %g, want %g",
                         cm_diffusion_sampler_name(method), previous / loss, want);
            }
            previous = loss;
        }
    }
}

/* The cd trainer's teacher input is one Heun step of the teacher from the student input, here
 * with the exact denoiser of the standardised law of gauss:d=2,mean=1,std=0.5 computed by hand;
 * the dsm batch's input is x0 + sigma z with a positive sigma per row. */
static void test_cd_target_is_teacher_ode_step(void) {
    cm_data *data;
    CM_CHECK_OK(cm_data_open(&data, "gauss:d=2,mean=1,std=0.5"));
    cm_train_config c = cm_train_config_default(CM_METHOD_CD, 2);
    CM_TEST_MLP(c)->width = 16, CM_TEST_MLP(c)->depth = 1, c.batch = 32, c.steps = 10, c.seed = 3;
    cm_trainer *tr;
    CM_CHECK_OK(cm_trainer_init(&tr, &c, data));
    const cm_transform *t = &cm_trainer_model(tr)->transform;
    double mean[2], var[2];
    for (int i = 0; i < 2; i++) {
        mean[i] = (1.0 - t->shift[i]) / t->scale[i];
        var[i] = 0.25 / (t->scale[i] * t->scale[i]);
    }
    gauss_ctx g = {2, mean, var, 0};
    cm_denoiser den = {gauss_denoise, &g, NULL, 2};
    float student[64], teacher[64];
    double s_hi[32], s_lo[32];
    cm_train_report report;
    CM_CHECK(cm_trainer_step(tr, &report) == CM_ERR_INVALID, "cd stepped without a teacher");
    CM_CHECK_OK(cm_trainer_set_teacher(tr, &den, NULL));
    CM_CHECK_OK(cm_trainer_batch_inputs(tr, 4, student, teacher, s_hi, s_lo, NULL));
    double worst = 0;
    for (int b = 0; b < 32; b++) {
        CM_CHECK(s_hi[b] > s_lo[b] && s_lo[b] >= c.method.sigma_min * 0.999, "levels %g %g", s_hi[b], s_lo[b]);
        double x[2] = {student[2 * b], student[2 * b + 1]}, work[6];
        CM_CHECK_OK(cm_diffusion_step(&den, CM_DIFFUSION_HEUN, &s_hi[b], &s_lo[b], x, 1, work));
        for (int i = 0; i < 2; i++) /* float rounding of the student input, carried by one step */
            worst = fmax(worst, fabs(x[i] - teacher[2 * b + i]) / (1e-6 * (1 + fabs(x[i]))));
    }
    CM_CHECK(worst < 10, "teacher input differs from an independent Heun step (%g x 1e-6)", worst);
    CM_CHECK_OK(cm_trainer_step(tr, &report));
    CM_CHECK(isfinite(report.loss) && report.levels == 18, "cd step: loss %g levels %zu",
             report.loss, report.levels);
    cm_trainer_free(tr);

    c = cm_train_config_default(CM_METHOD_DSM, 2);
    CM_TEST_MLP(c)->width = 16, CM_TEST_MLP(c)->depth = 1, c.batch = 32, c.steps = 10, c.seed = 3;
    CM_CHECK_OK(cm_trainer_init(&tr, &c, data));
    CM_CHECK_OK(cm_trainer_batch_inputs(tr, 0, student, teacher, s_hi, s_lo, NULL));
    for (int b = 0; b < 32; b++) CM_CHECK(s_hi[b] > 0 && isfinite(s_hi[b]), "dsm sigma %g", s_hi[b]);
    CM_CHECK(cm_trainer_set_teacher(tr, &den, NULL) == CM_ERR_INVALID, "dsm accepted a teacher");
    CM_CHECK_OK(cm_trainer_step(tr, &report));
    CM_CHECK(isfinite(report.loss), "dsm loss %g", report.loss);
    cm_trainer_free(tr);
    cm_data_free(data);
}

/* A short dsm run on a two-component mixture learns a denoiser close to the exact one (law.h,
 * standardised with the trainer's transform). Slow; CM_FAST skips it. Bound: a margin over the
 * measured mean |D - D*| on draws of X_sigma at sigma in {0.1, 0.5, 2}; the untrained network
 * (D = c_skip x, the denoiser of N(0, sd^2)) is several times worse. */
static void test_dsm_learns_mixture_denoiser(void) {
    if (getenv("CM_FAST")) return;
    cm_data *data;
    CM_CHECK_OK(cm_data_open(&data, "gmm:d=2,k=2,sep=1.5,std=0.4"));
    cm_train_config c = cm_train_config_default(CM_METHOD_DSM, 2);
    CM_TEST_MLP(c)->width = 64, CM_TEST_MLP(c)->depth = 2, c.batch = 256, c.steps = 6000, c.seed = 1;
    cm_trainer *tr;
    CM_CHECK_OK(cm_trainer_init(&tr, &c, data));
    cm_law *raw = NULL, *law = NULL;
    CM_CHECK_OK(cm_law_from_data(&raw, data));
    const cm_transform *t = &cm_trainer_model(tr)->transform;
    CM_CHECK_OK(cm_law_standardise(&law, raw, t->shift, t->scale));
    cm_denoiser exact;
    CM_CHECK_OK(cm_denoiser_from_law(&exact, law));
    double untrained = -1;
    for (size_t k = 0; k <= c.steps; k++) {
        if (k == 0 || k == c.steps) {
            cm_denoiser den;
            CM_CHECK_OK(cm_denoiser_from_model(&den, cm_trainer_model(tr)));
            double x[200], sigma[100], a[200], b[200], error = 0;
            cm_rng rng;
            cm_rng_init(&rng, 9);
            const double levels[3] = {0.1, 0.5, 2.0};
            for (int l = 0; l < 3; l++) {
                cm_law_sample(law, &rng, 100, x);
                for (int r = 0; r < 100; r++) {
                    sigma[r] = levels[l];
                    for (int i = 0; i < 2; i++) x[2 * r + i] += levels[l] * cm_rng_normal(&rng);
                }
                CM_CHECK_OK(den.denoise(den.context, x, sigma, 100, a));
                CM_CHECK_OK(exact.denoise(exact.context, x, sigma, 100, b));
                for (int k2 = 0; k2 < 200; k2++) error += fabs(a[k2] - b[k2]) / 600;
            }
            cm_denoiser_free(&den);
            printf("  dsm step %zu: mean |D - D*| = %.4f\n", k, error);
            if (k == 0) untrained = error;
            else CM_CHECK(error < DSM_ERROR_BOUND && error < untrained / 3,
                          "dsm error %g (untrained %g)", error, untrained);
        }
        if (k < c.steps) CM_CHECK_OK(cm_trainer_step(tr, NULL));
    }
    cm_denoiser_free(&exact);
    cm_law_free(law);
    cm_law_free(raw);
    cm_trainer_free(tr);
    cm_data_free(data);
}

const cm_test_case cm_tests_diffusion[] = {
    {"samplers_reproduce_gaussian", test_samplers_reproduce_gaussian},
    {"euler_heun_orders_gaussian", test_euler_heun_orders_gaussian},
    {"euler_heun_orders_mixture", test_euler_heun_orders_mixture},
    {"law_denoiser_matches_closed_form", test_law_denoiser_matches_closed_form},
    {"grids", test_grids},
    {"batch_independence", test_batch_independence},
    {"zero_dsm_model_is_gaussian_denoiser", test_zero_dsm_model_is_gaussian_denoiser},
    {"cd_loss_with_exact_consistency_function", test_cd_loss_with_exact_consistency_function},
    {"cd_target_is_teacher_ode_step", test_cd_target_is_teacher_ode_step},
    {"dsm_learns_mixture_denoiser", test_dsm_learns_mixture_denoiser},
    {NULL, NULL},
};
