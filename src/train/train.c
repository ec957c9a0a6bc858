/* train.c: the trainer of train.h: [LHW] iterative consistency learning (online and sequential
 * teachers), [CM] consistency training and [iCT] (SPEC sections 2 and 5), denoising score
 * matching with the EDM preconditioning (Karras et al. 2022) and [CM] consistency distillation
 * from a teacher denoiser (diffusion.h), of a one-time consistency function (cd) or of a two-time
 * map g(x, t, s) (cd2, consistency.h).
 *
 * All buffers are allocated by cm_trainer_init; cm_trainer_step only computes. The teacher
 * forward runs first into its own output buffer, then the student forward and backward reuse
 * the activation workspace: the teacher's output is a constant of the loss (stop-gradient).
 * cm_trainer_get_state / cm_trainer_set_state expose the state a checkpoint must hold; the file
 * format itself lives in checkpoint.c.
 */
#include "cm/train.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/diffusion.h"
#include "cm/parallel.h"
#include "cm/schedule.h"
#include "nn/nn_blocks.h"

#define CM_TRANSFORM_FIT_DRAWS 65536 /* draws of a law used to fit the standardising transform */

struct cm_trainer {
    cm_train_config config;
    const cm_data *data; /* borrowed */
    cm_model model;      /* model.params = evaluation weights (EMA) */
    float *params, *grad;
    float *target;       /* ct: target EMA; lhw sequential: frozen snapshot; else NULL */
    cm_adam adam;
    cm_mlp_workspace *workspace;
    /* batch buffers, one block */
    float *block;
    double *x0_double;                                   /* [B, D] */
    double *row_loss;                                    /* [B], after x0_double */
    float *x0, *z, *x_student, *x_teacher;               /* [B, D] */
    float *out_student, *out_teacher, *x_in, *F_out, *dout, *dF; /* [B, D] */
    float *coef_student, *coef_teacher;                  /* [4B] */
    float *weight;                                       /* [B] */
    double *grid, *probabilities;                        /* [max levels] */
    size_t grid_levels;                                  /* N of the current grid, 0: none */
    double *row_sigma;                                   /* [3B]: student, teacher, cd2 target level */
    const cm_denoiser *teacher_denoiser;                 /* cd, cd2: borrowed */
    double *cd_x, *cd_work;                              /* cd, cd2: [B, D], [3 B D] */
    size_t stage;                                        /* lhw sequential: current t */
    cm_rng streams[CM_STREAM_COUNT];
    size_t step;
};

static size_t max_grid_levels(const cm_train_config *c) {
    if (c->method == CM_METHOD_CT) return c->ct_s1 + 2;
    if (c->method == CM_METHOD_ICT) return c->ict_s1 + 2;
    if (cm_method_is_distillation(c->method)) return c->cd_levels + 2;
    return 0;
}

static cm_status allocate_buffers(cm_trainer *tr) {
    size_t B = tr->config.batch, D = tr->config.network.dim, P = tr->model.layout.param_count;
    cm_method method = tr->config.method;
    int needs_target = method == CM_METHOD_CT || cm_method_is_distillation(method) ||
                       (method == CM_METHOD_LHW && tr->config.teacher == CM_TEACHER_SEQUENTIAL);
    tr->params = cm_malloc(P, sizeof(float));
    tr->grad = cm_malloc(P, sizeof(float));
    tr->target = needs_target ? cm_malloc(P, sizeof(float)) : NULL;
    size_t coef = CM_COEFFICIENT_COUNT(B, tr->config.network.two_time);
    size_t floats = 10 * B * D + 2 * coef + B;
    tr->block = cm_malloc(floats, sizeof(float));
    tr->x0_double = cm_malloc(B * D + B, sizeof(double));
    tr->row_sigma = cm_malloc(3 * B, sizeof(double));
    if (cm_method_is_distillation(tr->config.method)) {
        tr->cd_x = cm_malloc(B * D, sizeof(double));
        tr->cd_work = cm_malloc(3 * B * D, sizeof(double));
        if (!tr->cd_x || !tr->cd_work)
            return cm_error_set(CM_ERR_NOMEM, "distillation buffers (batch %zu)", B);
    }
    size_t levels = max_grid_levels(&tr->config);
    tr->grid = levels ? cm_malloc(2 * levels, sizeof(double)) : NULL;
    if (!tr->params || !tr->grad || (needs_target && !tr->target) || !tr->block ||
        !tr->x0_double || !tr->row_sigma || (levels && !tr->grid))
        return cm_error_set(CM_ERR_NOMEM, "trainer buffers (batch %zu, %zu parameters)", B, P);
    tr->probabilities = tr->grid ? tr->grid + levels : NULL;
    tr->row_loss = tr->x0_double + B * D;
    float *p = tr->block;
    float **arrays[] = {&tr->x0, &tr->z, &tr->x_student, &tr->x_teacher, &tr->out_student,
                        &tr->out_teacher, &tr->x_in, &tr->F_out, &tr->dout, &tr->dF};
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) *arrays[i] = p, p += B * D;
    tr->coef_student = p, p += coef;
    tr->coef_teacher = p, p += coef;
    tr->weight = p;
    return cm_mlp_workspace_alloc(&tr->workspace, &tr->model.layout, B);
}

static cm_status fit_transform(cm_trainer *tr) {
    const cm_data *data = tr->data;
    size_t D = tr->config.network.dim;
    cm_transform_free(&tr->model.transform);
    if (cm_data_values(data))
        return cm_transform_fit(&tr->model.transform, cm_data_values(data), cm_data_rows(data), D,
                                tr->config.sigma_data);
    double *draws = cm_malloc((size_t)CM_TRANSFORM_FIT_DRAWS * D, sizeof(double));
    if (!draws) return cm_error_set(CM_ERR_NOMEM, "transform fit draws");
    cm_data_sample(data, &tr->streams[CM_STREAM_TRANSFORM], CM_TRANSFORM_FIT_DRAWS, draws);
    cm_status status = cm_transform_fit(&tr->model.transform, draws, CM_TRANSFORM_FIT_DRAWS, D,
                                        tr->config.sigma_data);
    cm_free(draws);
    return status;
}

cm_status cm_trainer_init(cm_trainer **out, const cm_train_config *config, const cm_data *data) {
    *out = NULL;
    CM_TRY(cm_train_config_check(config));
    if (cm_data_dim(data) != config->network.dim)
        return cm_error_set(CM_ERR_DIMENSION, "data dimension %zu but network dimension %zu",
                            cm_data_dim(data), config->network.dim);
    if (config->method == CM_METHOD_LHW && config->teacher == CM_TEACHER_SEQUENTIAL &&
        config->steps < config->chain_T - 1)
        return cm_error_set(CM_ERR_INVALID,
                            "the sequential teacher trains T - 1 = %zu stages: steps (%zu) must be at "
                            "least that",
                            config->chain_T - 1, config->steps);
    cm_trainer *tr = cm_calloc(1, sizeof *tr);
    if (!tr) return cm_error_set(CM_ERR_NOMEM, "trainer");
    tr->config = *config;
    tr->data = data;
    cm_rng root;
    cm_rng_init(&root, config->seed);
    for (int s = 1; s < CM_STREAM_COUNT; s++) cm_rng_fork(&tr->streams[s], &root, (uint64_t)s);
    cm_status status = cm_model_init(&tr->model, config);
    if (status == CM_OK) status = allocate_buffers(tr);
    cm_adam_config adam = config->adam;
    adam.decay_steps = config->lr_schedule == CM_LR_COSINE ? config->steps : 0;
    if (status == CM_OK) status = cm_adam_init(&tr->adam, &adam, tr->model.layout.param_count);
    if (status == CM_OK) status = fit_transform(tr);
    if (status == CM_OK)
        snprintf(tr->model.data_source, sizeof tr->model.data_source, "%s", cm_data_describe(data));
    if (status != CM_OK) {
        cm_trainer_free(tr);
        return status;
    }
    size_t P = tr->model.layout.param_count;
    cm_mlp_init_params(tr->params, &tr->model.layout, &tr->streams[CM_STREAM_INIT]);
    memcpy(tr->model.params, tr->params, P * sizeof(float));
    if (tr->target) memcpy(tr->target, tr->params, P * sizeof(float));
    *out = tr;
    return CM_OK;
}

void cm_trainer_free(cm_trainer *tr) {
    if (!tr) return;
    cm_model_free(&tr->model);
    cm_free(tr->params);
    cm_free(tr->grad);
    cm_free(tr->target);
    cm_free(tr->block);
    cm_free(tr->x0_double);
    cm_free(tr->row_sigma);
    cm_free(tr->cd_x);
    cm_free(tr->cd_work);
    cm_free(tr->grid);
    cm_adam_free(&tr->adam);
    cm_mlp_workspace_free(tr->workspace);
    cm_free(tr);
}

size_t cm_trainer_steps_done(const cm_trainer *tr) { return tr->step; }
const cm_data *cm_trainer_data(const cm_trainer *tr) { return tr->data; }
float *cm_trainer_params(cm_trainer *tr) { return tr->params; }

const cm_model *cm_trainer_model(cm_trainer *tr) {
    if (tr->config.ema_decay == 0)
        memcpy(tr->model.params, tr->params, tr->model.layout.param_count * sizeof(float));
    return &tr->model;
}

/* Rebuild the Karras grid (and, for iCT, the level probabilities) when N changes. */
static void update_grid(cm_trainer *tr, size_t levels) {
    const cm_train_config *c = &tr->config;
    if (levels == tr->grid_levels) return;
    cm_karras_grid(tr->grid, levels, c->sigma_min, c->sigma_max, c->rho);
    if (c->method == CM_METHOD_ICT)
        cm_ict_level_probabilities(tr->probabilities, tr->grid, levels, c->ict_p_mean, c->ict_p_std);
    tr->grid_levels = levels;
}

/* Inverse-CDF draw of an interval index from the iCT probabilities. */
static size_t draw_lognormal_index(const double *probabilities, size_t intervals, cm_rng *rng) {
    double u = cm_rng_uniform(rng), cumulative = 0.0;
    for (size_t i = 0; i < intervals; i++) {
        cumulative += probabilities[i];
        if (u <= cumulative) return i;
    }
    return intervals - 1;
}

/* Loss weight of a pair of VE levels s_lo < s_hi. */
static float pair_weight(const cm_train_config *c, double s_lo, double s_hi) {
    return c->weighting == CM_WEIGHTING_INVERSE_GAP ? (float)(1.0 / (s_hi - s_lo)) : 1.0f;
}

/* VE pair at adjacent grid levels: student x0 + s_hi z, teacher x0 + s_lo z. */
static void build_ve_row(cm_trainer *tr, int b, double s_lo, double s_hi) {
    int B = (int)tr->config.batch, D = (int)tr->config.network.dim;
    const cm_train_config *c = &tr->config;
    for (int i = 0; i < D; i++) {
        size_t k = (size_t)b * D + i;
        tr->x_student[k] = (float)(tr->x0[k] + s_hi * tr->z[k]);
        tr->x_teacher[k] = (float)(tr->x0[k] + s_lo * tr->z[k]);
    }
    cm_coefficients_store(tr->coef_student, B, b, cm_consistency_ve(s_hi, c->sigma_data, c->sigma_min));
    cm_coefficients_store(tr->coef_teacher, B, b, cm_consistency_ve(s_lo, c->sigma_data, c->sigma_min));
    tr->weight[b] = pair_weight(c, s_lo, s_hi);
}

/* dsm row: x0 + sigma z with log sigma ~ N(P_mean, P_std^2) (EDM); the target is x0 itself (set
 * in batch_loss_and_gradient), weight (sigma^2 + sd^2) / (sigma sd)^2 with --weighting edm. */
static void build_dsm_row(cm_trainer *tr, int b, cm_rng *level_rng) {
    int B = (int)tr->config.batch, D = (int)tr->config.network.dim;
    const cm_train_config *c = &tr->config;
    double sigma = exp(c->dsm_p_mean + c->dsm_p_std * cm_rng_normal(level_rng));
    double sd = c->sigma_data;
    for (int i = 0; i < D; i++) {
        size_t k = (size_t)b * D + i;
        tr->x_student[k] = (float)(tr->x0[k] + sigma * tr->z[k]);
    }
    cm_coefficients_store(tr->coef_student, B, b, cm_consistency_ve(sigma, sd, 0.0));
    tr->row_sigma[b] = sigma;
    tr->weight[b] = c->weighting == CM_WEIGHTING_EDM
                        ? (float)((sigma * sigma + sd * sd) / (sigma * sd * sigma * sd)) : 1.0f;
}

/* cd: all rows of the batch at once. Student x0 + s_hi z; teacher input = one Euler or Heun
 * step of the teacher's probability-flow ODE from there down to s_lo ([CM] CD, SPEC section 5),
 * in double.
 * cd2 (two-time, consistency.h): the same pair, and a target level s = grid[u] with u uniform
 * in {0, ..., i} (s <= s_lo); the student is g(x0 + s_hi z, s_hi, s), the target
 * g_target(x_teacher, s_lo, s). At u = i that target is x_teacher itself (g(x, t, t) = x): the
 * loss then asks the network for the teacher's ODE step, and for smaller s for the consistency
 * of the map along the teacher's trajectory (the distillation loss of consistency trajectory
 * models, Kim et al. 2024, with the teacher's one step in place of their multi-step solve). */
static cm_status build_cd_batch(cm_trainer *tr, cm_rng *level_rng) {
    const cm_train_config *c = &tr->config;
    size_t B = c->batch, D = c->network.dim, N = c->cd_levels;
    int two_time = c->method == CM_METHOD_CD2;
    double *from = tr->row_sigma, *to = tr->row_sigma + B;
    update_grid(tr, N);
    for (size_t b = 0; b < B; b++) {
        size_t i = (size_t)cm_rng_below(level_rng, N - 1);
        to[b] = tr->grid[i], from[b] = tr->grid[i + 1];
        double target = two_time ? tr->grid[cm_rng_below(level_rng, i + 1)] : 0.0;
        tr->row_sigma[2 * B + b] = target;
        for (size_t j = 0; j < D; j++) {
            size_t k = b * D + j;
            tr->cd_x[k] = tr->x0_double[k] + from[b] * tr->z[k];
            tr->x_student[k] = (float)tr->cd_x[k];
        }
        cm_coefficients student = two_time
                                      ? cm_consistency_two_time(from[b], target, c->sigma_data)
                                      : cm_consistency_ve(from[b], c->sigma_data, c->sigma_min);
        cm_coefficients teacher = two_time
                                      ? cm_consistency_two_time(to[b], target, c->sigma_data)
                                      : cm_consistency_ve(to[b], c->sigma_data, c->sigma_min);
        cm_coefficients_store(tr->coef_student, (int)B, (int)b, student);
        cm_coefficients_store(tr->coef_teacher, (int)B, (int)b, teacher);
        tr->weight[b] = pair_weight(c, to[b], from[b]);
    }
    cm_diffusion_sampler solver = c->cd_solver == CM_SOLVER_HEUN ? CM_DIFFUSION_HEUN
                                                                 : CM_DIFFUSION_EULER;
    CM_TRY(cm_diffusion_step(tr->teacher_denoiser, solver, from, to, tr->cd_x, B, tr->cd_work));
    for (size_t k = 0; k < B * D; k++) tr->x_teacher[k] = (float)tr->cd_x[k];
    return CM_OK;
}

/* [LHW] VP pair with the same noise: U_t and U_{t-1} (SPEC section 2). */
static void build_lhw_row(cm_trainer *tr, int b, size_t t) {
    int B = (int)tr->config.batch, D = (int)tr->config.network.dim;
    const cm_lhw_schedule *s = &tr->model.schedule;
    double a_t = exp(0.5 * s->log_abar[t]), n_t = sqrt(s->one_minus_abar[t]);
    double a_prev = exp(0.5 * s->log_abar[t - 1]), n_prev = sqrt(s->one_minus_abar[t - 1]);
    for (int i = 0; i < D; i++) {
        size_t k = (size_t)b * D + i;
        tr->x_student[k] = (float)(a_t * tr->x0[k] + n_t * tr->z[k]);
        tr->x_teacher[k] = (float)(a_prev * tr->x0[k] + n_prev * tr->z[k]);
    }
    cm_coefficients_store(tr->coef_student, B, b, cm_consistency_lhw(s, t, tr->config.sigma_data));
    cm_coefficients_store(tr->coef_teacher, B, b, cm_consistency_lhw(s, t - 1, tr->config.sigma_data));
    tr->weight[b] = pair_weight(&tr->config, s->sigma[t - 1], s->sigma[t]);
}

size_t cm_lhw_stage(size_t k, size_t K, size_t T) {
    size_t t = 2 + (size_t)((double)k * (double)(T - 1) / (double)K);
    return t > T ? T : t;
}

static size_t sequential_stage(const cm_train_config *c, size_t k) {
    return cm_lhw_stage(k, c->steps, c->chain_T);
}

/* The batch's data and noise (independent streams) as one pool job: task 0 draws the data (then
 * the transform and the float copy), task 1 + p draws part p of the noise, in pairs of values
 * (cm_rng_normal_fill_f32_part: the same values as one fill). The noise of a d = 784 batch is
 * 800k normals, half a step when drawn on one thread (docs/performance.md). */
#define CM_TRAIN_NOISE_PARTS 8 /* noise parts: enough for 8 threads, a fixed split */

struct draw_job {
    cm_trainer *tr;
    cm_rng *data_rng, *noise_rng; /* forks of this step; the data's is advanced by task 0 */
};

static void draw_part(void *context, size_t task) {
    const struct draw_job *job = context;
    cm_trainer *tr = job->tr;
    size_t B = tr->config.batch, D = tr->config.network.dim, n = B * D;
    if (task == 0) {
        cm_data_sample(tr->data, job->data_rng, B, tr->x0_double);
        cm_transform_apply(&tr->model.transform, tr->x0_double, B);
        for (size_t i = 0; i < n; i++) tr->x0[i] = (float)tr->x0_double[i];
        return;
    }
    size_t first, end;
    cm_parallel_range(&first, &end, (n + 1) / 2, task - 1, CM_TRAIN_NOISE_PARTS);
    cm_rng_normal_fill_f32_part(job->noise_rng, tr->z, 2 * first, 2 * end < n ? 2 * end : n);
}

/* Draw the batch of step k; returns the teacher weights to use and fills the report's levels. */
static const float *prepare_batch(cm_trainer *tr, size_t k, cm_train_report *report,
                                  cm_status *status) {
    const cm_train_config *c = &tr->config;
    size_t B = c->batch;
    cm_rng data_rng, noise_rng, level_rng;
    cm_rng_fork(&data_rng, &tr->streams[CM_STREAM_DATA], k);
    cm_rng_fork(&noise_rng, &tr->streams[CM_STREAM_NOISE], k);
    cm_rng_fork(&level_rng, &tr->streams[CM_STREAM_LEVEL], k);
    struct draw_job draws = {tr, &data_rng, &noise_rng};
    cm_parallel_for(draw_part, &draws, 1 + CM_TRAIN_NOISE_PARTS);
    report->target_decay = 0.0;
    *status = CM_OK;
    switch (c->method) {
    case CM_METHOD_DSM:
        for (size_t b = 0; b < B; b++) build_dsm_row(tr, (int)b, &level_rng);
        report->levels = 0;
        return NULL; /* no teacher network: the target is x0 */
    case CM_METHOD_CD:
    case CM_METHOD_CD2:
        *status = build_cd_batch(tr, &level_rng);
        report->levels = c->cd_levels;
        report->target_decay = c->ct_target_ema;
        return tr->target;
    case CM_METHOD_ICT: {
        size_t N = cm_ict_levels(k, c->steps, c->ict_s0, c->ict_s1);
        update_grid(tr, N);
        for (size_t b = 0; b < B; b++) {
            size_t i = draw_lognormal_index(tr->probabilities, N - 1, &level_rng);
            build_ve_row(tr, (int)b, tr->grid[i], tr->grid[i + 1]);
        }
        report->levels = N;
        return tr->params;
    }
    case CM_METHOD_CT: {
        size_t N = cm_ct_levels(k, c->steps, c->ct_s0, c->ct_s1);
        update_grid(tr, N);
        for (size_t b = 0; b < B; b++) {
            size_t i = (size_t)cm_rng_below(&level_rng, N - 1);
            build_ve_row(tr, (int)b, tr->grid[i], tr->grid[i + 1]);
        }
        report->levels = N;
        report->target_decay = c->ct_target_ema >= 0 ? c->ct_target_ema
                                                     : cm_ct_target_decay(N, c->ct_s0, c->ct_mu0);
        return tr->target;
    }
    case CM_METHOD_LHW:
    default:
        if (c->teacher == CM_TEACHER_SEQUENTIAL) {
            size_t t = sequential_stage(c, k);
            for (size_t b = 0; b < B; b++) build_lhw_row(tr, (int)b, t);
            report->levels = t;
            /* The first step of stage t learns from f_{t-1} = the network as the previous stage
             * left it: the current weights, which cm_trainer_step freezes into the target once
             * the step succeeds (so a failed step, or a test helper, changes nothing). */
            return t != tr->stage ? tr->params : tr->target;
        }
        for (size_t b = 0; b < B; b++)
            build_lhw_row(tr, (int)b, 2 + (size_t)cm_rng_below(&level_rng, c->chain_T - 1));
        report->levels = c->chain_T;
        return tr->params;
    }
}

/* The target of the prepared batch into out_teacher: the teacher network's output, or (dsm,
 * teacher NULL) the clean data x0. */
static void batch_target(cm_trainer *tr, const float *teacher) {
    int B = (int)tr->config.batch;
    if (!teacher) {
        memcpy(tr->out_teacher, tr->x0, (size_t)B * tr->config.network.dim * sizeof(float));
        return;
    }
    cm_consistency_forward(tr->out_teacher, tr->x_in, tr->F_out, teacher, &tr->model.layout,
                           tr->workspace, tr->x_teacher, tr->coef_teacher, B);
}

/* cd and cd2 need their teacher before the first batch. */
static cm_status check_ready(const cm_trainer *tr) {
    if (cm_method_is_distillation(tr->config.method) && !tr->teacher_denoiser)
        return cm_error_set(CM_ERR_INVALID, "%s: no teacher denoiser (cm_trainer_set_teacher)",
                            cm_method_name(tr->config.method));
    return CM_OK;
}

/* Rows [first, end) of cm_consistency_forward (consistency_template.h), the network part
 * being row block `block` of the MLP: the same arithmetic row by row, so the same bits. */
static void consistency_forward_rows(cm_trainer *tr, float *out, const float *params,
                                     const float *x, const float *coef, size_t first, size_t end,
                                     size_t block) {
    int B = (int)tr->config.batch, D = (int)tr->config.network.dim;
    const float *skip = coef, *scale_out = coef + B, *scale_in = coef + 2 * B;
    for (size_t b = first; b < end; b++)
        for (int i = 0; i < D; i++) tr->x_in[b * D + i] = scale_in[b] * x[b * D + i];
    cm_mlp_forward_block(tr->F_out, params, &tr->model.layout, tr->workspace, tr->x_in,
                         coef + 3 * B, B, block);
    for (size_t b = first; b < end; b++)
        for (int i = 0; i < D; i++) {
            size_t k = b * D + i;
            out[k] = skip[b] * x[k] + scale_out[b] * tr->F_out[k];
        }
}

/* Rows [first, end) of cm_loss_l2 / cm_loss_pseudo_huber (consistency_template.h): dout of those
 * rows, and each row's term of the loss's sum into row_loss[b] (the caller adds them in row
 * order and divides by B, as those functions do, so the loss has the same bits). */
static void loss_rows(cm_trainer *tr, size_t first, size_t end) {
    const cm_train_config *c = &tr->config;
    int B = (int)c->batch, D = (int)c->network.dim;
    const float *out = tr->out_student, *target = tr->out_teacher;
    int huber = c->loss == CM_LOSS_PSEUDO_HUBER;
    double hc = huber ? cm_train_config_huber_c(c) : 0.0;
    for (size_t b = first; b < end; b++) {
        double w = (double)tr->weight[b], squared = 0.0;
        for (int i = 0; i < D; i++) {
            size_t k = b * D + i;
            double diff = (double)out[k] - (double)target[k];
            squared += diff * diff;
            if (!huber) tr->dout[k] = (float)(2.0 * w * diff / B);
        }
        if (!huber) {
            tr->row_loss[b] = w * squared;
            continue;
        }
        double root = sqrt(squared + hc * hc);
        tr->row_loss[b] = w * (root - hc);
        for (int i = 0; i < D; i++) {
            size_t k = b * D + i;
            tr->dout[k] = (float)(w * ((double)out[k] - (double)target[k]) / (root * B));
        }
    }
}

struct step_job {
    cm_trainer *tr;
    const float *teacher; /* NULL: the target is x0 (dsm) */
};

/* Task `block` of a step: for that row block, the target (teacher forward), the student forward,
 * the loss's rows and the backward (cm_consistency_backward's dF, then the block's gradient).
 * One pool job per step instead of one per network pass: half the hand-offs, and the per-row
 * work between passes runs on both threads (docs/performance.md). */
static void step_block(void *context, size_t block) {
    const struct step_job *job = context;
    cm_trainer *tr = job->tr;
    int B = (int)tr->config.batch, D = (int)tr->config.network.dim;
    size_t first, end;
    cm_parallel_range(&first, &end, (size_t)B, block, CM_MLP_SHARDS);
    if (end == first) return;
    if (job->teacher)
        consistency_forward_rows(tr, tr->out_teacher, job->teacher, tr->x_teacher,
                                 tr->coef_teacher, first, end, block);
    else
        memcpy(tr->out_teacher + first * D, tr->x0 + first * D, (end - first) * D * sizeof(float));
    consistency_forward_rows(tr, tr->out_student, tr->params, tr->x_student, tr->coef_student,
                             first, end, block);
    loss_rows(tr, first, end);
    const float *scale_out = tr->coef_student + B;
    for (size_t b = first; b < end; b++)
        for (int i = 0; i < D; i++) tr->dF[b * D + i] = scale_out[b] * tr->dout[b * D + i];
    cm_mlp_backward_block(tr->grad, NULL, tr->params, &tr->model.layout, tr->workspace, tr->dF,
                          B, block);
}

/* Loss and gradient (into tr->grad) of the prepared batch: batch_target, the student's
 * cm_consistency_forward, the loss and cm_consistency_backward, as one pool job of
 * CM_MLP_SHARDS row-block tasks (step_block), then the blocks' gradients added in order. */
static double batch_loss_and_gradient(cm_trainer *tr, const float *teacher) {
    int B = (int)tr->config.batch;
    struct step_job job = {tr, teacher};
    memset(tr->grad, 0, tr->model.layout.param_count * sizeof(float));
    cm_parallel_for(step_block, &job, CM_MLP_SHARDS);
    cm_mlp_reduce_blocks(tr->grad, &tr->model.layout, tr->workspace, B);
    double total = 0.0;
    for (int b = 0; b < B; b++) total += tr->row_loss[b];
    return total / B;
}

cm_status cm_trainer_batch_gradient(cm_trainer *tr, size_t k, double *out_loss, float *grad) {
    cm_train_report report;
    cm_status status;
    CM_TRY(check_ready(tr));
    const float *teacher = prepare_batch(tr, k, &report, &status);
    CM_TRY(status);
    *out_loss = batch_loss_and_gradient(tr, teacher);
    memcpy(grad, tr->grad, tr->model.layout.param_count * sizeof(float));
    return CM_OK;
}

cm_status cm_trainer_batch_loss(cm_trainer *tr, size_t k, const float *student,
                                const float *teacher, double *out_loss) {
    const cm_train_config *c = &tr->config;
    int B = (int)c->batch, D = (int)c->network.dim;
    cm_train_report report;
    cm_status status;
    CM_TRY(check_ready(tr));
    const float *own = prepare_batch(tr, k, &report, &status);
    CM_TRY(status);
    batch_target(tr, own ? teacher : NULL);
    cm_consistency_forward(tr->out_student, tr->x_in, tr->F_out, student, &tr->model.layout,
                           tr->workspace, tr->x_student, tr->coef_student, B);
    *out_loss = c->loss == CM_LOSS_PSEUDO_HUBER
                    ? cm_loss_pseudo_huber(NULL, tr->out_student, tr->out_teacher, tr->weight,
                                           cm_train_config_huber_c(c), B, D)
                    : cm_loss_l2(NULL, tr->out_student, tr->out_teacher, tr->weight, B, D);
    return CM_OK;
}

cm_status cm_trainer_step(cm_trainer *tr, cm_train_report *out) {
    const cm_train_config *c = &tr->config;
    size_t P = tr->model.layout.param_count, k = tr->step;
    cm_train_report report = {0};
    cm_status status;
    CM_TRY(check_ready(tr));
    const float *teacher = prepare_batch(tr, k, &report, &status);
    CM_TRY(status);
    report.loss = batch_loss_and_gradient(tr, teacher);
    report.learning_rate = cm_adam_current_rate(&tr->adam);
    report.grad_norm = cm_gradient_norm(tr->grad, P);
    report.step = k + 1;
    if (out) *out = report;
    if (!isfinite(report.loss) || !isfinite(report.grad_norm))
        return cm_error_set(CM_ERR_NONFINITE,
                            "step %zu: loss %g, gradient norm %g (not finite); weights not updated",
                            k + 1, report.loss, report.grad_norm);
    int sequential = c->method == CM_METHOD_LHW && c->teacher == CM_TEACHER_SEQUENTIAL;
    if (sequential && report.levels != tr->stage) { /* freeze f_{t-1} before it moves */
        memcpy(tr->target, tr->params, P * sizeof(float));
        tr->stage = report.levels;
    }
    cm_adam_step(&tr->adam, tr->params, tr->grad, report.grad_norm);
    if (c->ema_decay > 0) cm_ema_update(tr->model.params, tr->params, P, c->ema_decay);
    if (c->method == CM_METHOD_CT || cm_method_is_distillation(c->method))
        cm_ema_update(tr->target, tr->params, P, report.target_decay);
    tr->step++;
    return CM_OK;
}

void cm_trainer_get_state(cm_trainer_state *out, cm_trainer *tr) {
    *out = (cm_trainer_state){0};
    out->step = tr->step;
    out->stage = tr->stage;
    out->adam_step = tr->adam.step;
    out->param_count = tr->model.layout.param_count;
    out->params = tr->params;
    out->ema = cm_trainer_model(tr)->params;
    out->target = tr->target;
    out->adam_m = tr->adam.m;
    out->adam_v = tr->adam.v;
    memcpy(out->streams, tr->streams, sizeof tr->streams);
    out->transform = &tr->model.transform;
}

/* Index of the first non-finite (or, with nonnegative, negative) value of x[n], or n. */
static size_t first_bad_value(const float *x, size_t n, int nonnegative) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]) || (nonnegative && x[i] < 0)) return i;
    return n;
}

/* The checks of cm_trainer_set_state on the scalars, the streams and the transform. */
static cm_status check_state_scalars(const cm_trainer *tr, const cm_trainer_state *s) {
    const cm_train_config *c = &tr->config;
    int sequential = c->method == CM_METHOD_LHW && c->teacher == CM_TEACHER_SEQUENTIAL;
    size_t stage = sequential && s->step > 0 ? sequential_stage(c, s->step - 1) : 0;
    if (s->step > c->steps)
        return cm_error_set(CM_ERR_FORMAT, "state: step %zu is past the run's %zu steps", s->step,
                            c->steps);
    if (s->adam_step != s->step)
        return cm_error_set(CM_ERR_FORMAT, "state: Adam step %zu differs from the step %zu",
                            s->adam_step, s->step);
    if (s->stage != stage)
        return cm_error_set(CM_ERR_FORMAT, "state: stage %zu, but step %zu is in stage %zu",
                            s->stage, s->step, stage);
    if (s->param_count != tr->model.layout.param_count)
        return cm_error_set(CM_ERR_FORMAT, "state: %zu parameters, the network has %zu",
                            s->param_count, tr->model.layout.param_count);
    if ((s->target != NULL) != (tr->target != NULL))
        return cm_error_set(CM_ERR_FORMAT, "state: a target copy is %s for method %s",
                            tr->target ? "required" : "not expected", cm_method_name(c->method));
    for (int i = 1; i < CM_STREAM_COUNT; i++)
        if (memcmp(s->streams[i].key, tr->streams[i].key, sizeof tr->streams[i].key) != 0)
            return cm_error_set(CM_ERR_FORMAT, "state: random stream %d does not derive from seed "
                                "%llu", i, (unsigned long long)c->seed);
    const cm_transform *t = s->transform;
    if (!t || t->dim != c->network.dim)
        return cm_error_set(CM_ERR_FORMAT, "state: transform of dimension %zu, the data has %zu",
                            t ? t->dim : 0, c->network.dim);
    for (size_t i = 0; i < t->dim; i++)
        if (!isfinite(t->shift[i]) || !(t->scale[i] > 0) || !isfinite(t->scale[i]))
            return cm_error_set(CM_ERR_FORMAT, "state: transform coordinate %zu (shift %g, scale "
                                "%g) is not finite with scale > 0", i, t->shift[i], t->scale[i]);
    return CM_OK;
}

cm_status cm_trainer_set_state(cm_trainer *tr, const cm_trainer_state *s) {
    CM_TRY(check_state_scalars(tr, s));
    size_t P = tr->model.layout.param_count;
    const struct {
        const char *name;
        const float *values;
        int nonnegative;
    } blocks[] = {{"weights", s->params, 0}, {"EMA weights", s->ema, 0}, {"target", s->target, 0},
                  {"Adam first moment", s->adam_m, 0}, {"Adam second moment", s->adam_v, 1}};
    for (size_t b = 0; b < sizeof blocks / sizeof blocks[0]; b++) {
        if (!blocks[b].values) {
            if (b == 2) continue; /* no target: checked above */
            return cm_error_set(CM_ERR_FORMAT, "state: %s missing", blocks[b].name);
        }
        size_t bad = first_bad_value(blocks[b].values, P, blocks[b].nonnegative);
        if (bad < P)
            return cm_error_set(CM_ERR_FORMAT, "state: %s[%zu] = %g is not %s", blocks[b].name,
                                bad, blocks[b].values[bad],
                                blocks[b].nonnegative ? "finite and >= 0" : "finite");
    }
    memcpy(tr->params, s->params, P * sizeof(float));
    memcpy(tr->model.params, s->ema, P * sizeof(float));
    if (tr->target) memcpy(tr->target, s->target, P * sizeof(float));
    memcpy(tr->adam.m, s->adam_m, P * sizeof(float));
    memcpy(tr->adam.v, s->adam_v, P * sizeof(float));
    tr->adam.step = s->adam_step;
    tr->step = s->step;
    tr->stage = s->stage;
    memcpy(tr->streams, s->streams, sizeof tr->streams);
    if (s->transform != &tr->model.transform) {
        memcpy(tr->model.transform.shift, s->transform->shift, tr->model.transform.dim * sizeof(double));
        memcpy(tr->model.transform.scale, s->transform->scale, tr->model.transform.dim * sizeof(double));
    }
    return CM_OK;
}

cm_status cm_trainer_set_teacher(cm_trainer *tr, const cm_denoiser *teacher,
                                 const cm_transform *transform) {
    size_t D = tr->config.network.dim;
    if (!cm_method_is_distillation(tr->config.method))
        return cm_error_set(CM_ERR_INVALID, "a teacher applies to cd and cd2, not %s",
                            cm_method_name(tr->config.method));
    if (teacher->dim != D)
        return cm_error_set(CM_ERR_DIMENSION, "teacher of dimension %zu, the data has %zu",
                            teacher->dim, D);
    if (transform) {
        if (transform->dim != D)
            return cm_error_set(CM_ERR_DIMENSION, "teacher transform of dimension %zu, the data "
                                "has %zu", transform->dim, D);
        memcpy(tr->model.transform.shift, transform->shift, D * sizeof(double));
        memcpy(tr->model.transform.scale, transform->scale, D * sizeof(double));
    }
    tr->teacher_denoiser = teacher;
    return CM_OK;
}

cm_status cm_trainer_batch_inputs(cm_trainer *tr, size_t k, float *student, float *teacher,
                                  double *student_sigma, double *teacher_sigma,
                                  double *target_sigma) {
    cm_train_report report;
    cm_status status;
    size_t B = tr->config.batch, D = tr->config.network.dim;
    CM_TRY(check_ready(tr));
    prepare_batch(tr, k, &report, &status);
    CM_TRY(status);
    memcpy(student, tr->x_student, B * D * sizeof(float));
    memcpy(teacher, tr->x_teacher, B * D * sizeof(float));
    int distillation = cm_method_is_distillation(tr->config.method);
    for (size_t b = 0; b < B; b++) {
        student_sigma[b] = tr->row_sigma[b];
        teacher_sigma[b] = distillation ? tr->row_sigma[B + b] : 0.0;
        if (target_sigma) target_sigma[b] = distillation ? tr->row_sigma[2 * B + b] : 0.0;
    }
    return CM_OK;
}
