/* engine.c: the trainer of train.h: buffers sized once, then each step as row-block jobs on the
 * pool (parallel.h), the blocks' gradients summed in a fixed order through cm_comm (comm.h), and
 * the optimiser and EMA policy of the method table (method.c). What a row is belongs to
 * objective.c; the state a checkpoint holds to state.c.
 *
 * A step: the curriculum of step k (method table) and its grid; then, for each of this
 * process's row blocks, as one pool task: draw the block's rows (data, noise, levels; train.h),
 * build their pairs (objective.c), the target (teacher forward, or the data for dsm), the student
 * forward, the loss rows and the backward into the block's own gradient. Distillation runs the
 * teacher's ODE step between the draws and the networks, block by block (the denoiser runs its
 * own pool jobs). Then the tree sum of the block gradients, the loss from the rows' terms in row
 * order, Adam, the evaluation EMA and the target update.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/parallel.h"
#include "train/testing.h"
#include "train/trainer.h"

#define CM_TRANSFORM_FIT_DRAWS 65536 /* draws of a law used to fit the standardising transform */

/* The block buffers: row starts, this process's blocks' workspaces and gradient buffers. */
static cm_status allocate_blocks(cm_trainer *tr) {
    size_t B = tr->config.batch, P = cm_model_param_count(&tr->model), largest = 0;
    tr->blocks = tr->config.blocks;
    cm_comm_block_range(&tr->block_first, &tr->block_end, tr->comm, tr->blocks);
    tr->row_first = cm_malloc(tr->blocks + 1, sizeof(size_t));
    tr->workspaces = cm_calloc(tr->blocks, sizeof *tr->workspaces);
    tr->block_gradient = cm_calloc(tr->blocks, sizeof *tr->block_gradient);
    if (!tr->row_first || !tr->workspaces || !tr->block_gradient)
        return cm_error_set(CM_ERR_NOMEM, "trainer: %zu row blocks", tr->blocks);
    for (size_t b = 0; b < tr->blocks; b++) {
        size_t end;
        cm_parallel_range(&tr->row_first[b], &end, B, b, tr->blocks);
        tr->row_first[b + 1] = end;
        if (end - tr->row_first[b] > largest) largest = end - tr->row_first[b];
    }
    for (size_t b = tr->block_first; b < tr->block_end; b++) {
        CM_TRY(cm_network_workspace_alloc(&tr->workspaces[b], tr->model.network, largest));
        tr->block_gradient[b] = b == tr->block_first ? tr->grad : cm_malloc(P, sizeof(float));
        if (!tr->block_gradient[b])
            return cm_error_set(CM_ERR_NOMEM, "trainer: gradient of row block %zu", b);
    }
    return CM_OK;
}

static cm_status allocate_buffers(cm_trainer *tr) {
    size_t B = tr->config.batch, D = tr->config.network.dim, P = cm_model_param_count(&tr->model);
    size_t L = tr->config.network.noise_levels, coef = CM_COEFFICIENT_COUNT(B, L);
    tr->params = cm_malloc(P, sizeof(float));
    tr->grad = cm_malloc(P, sizeof(float));
    tr->target = cm_method_has_target_copy(&tr->config) ? cm_malloc(P, sizeof(float)) : NULL;
    tr->block = cm_malloc(10 * B * D + 2 * coef + B, sizeof(float));
    tr->x0_double = cm_malloc(B * D + B, sizeof(double));
    tr->row_sigma = cm_calloc(3 * B, sizeof(double));
    if (tr->method->distillation) {
        tr->cd_x = cm_malloc(B * D, sizeof(double));
        tr->cd_work = cm_malloc(3 * B * D, sizeof(double));
        if (!tr->cd_x || !tr->cd_work)
            return cm_error_set(CM_ERR_NOMEM, "distillation buffers (batch %zu)", B);
    }
    size_t levels = tr->method->grid_levels(&tr->config);
    tr->grid = levels ? cm_malloc(2 * levels, sizeof(double)) : NULL;
    if (!tr->params || !tr->grad || (cm_method_has_target_copy(&tr->config) && !tr->target) ||
        !tr->block || !tr->x0_double || !tr->row_sigma || (levels && !tr->grid))
        return cm_error_set(CM_ERR_NOMEM, "trainer buffers (batch %zu, %zu parameters)", B, P);
    tr->probabilities = tr->grid ? tr->grid + levels : NULL;
    tr->row_loss = tr->x0_double + B * D;
    float *p = tr->block;
    float **arrays[] = {&tr->x0, &tr->z, &tr->x_student, &tr->x_teacher, &tr->out_student,
                        &tr->out_teacher, &tr->x_in, &tr->F_out, &tr->dout, &tr->dF};
    for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++) *arrays[i] = p, p += B * D;
    tr->coef_student = cm_coefficient_rows_view(p, B, L), p += coef;
    tr->coef_teacher = cm_coefficient_rows_view(p, B, L), p += coef;
    tr->weight = p;
    return allocate_blocks(tr);
}

/* The standardising transform: the source's fixed one (images: [0, 1] -> [-1, 1]), or fitted to
 * a file's rows, or to draws of a law. */
static cm_status fit_transform(cm_trainer *tr) {
    const cm_data *data = tr->data;
    size_t D = tr->config.network.dim;
    double sd = tr->config.method.sigma_data;
    cm_transform_free(&tr->model.transform);
    if (cm_data_has_fixed_transform(data)) return cm_data_fixed_transform(&tr->model.transform, data);
    if (cm_data_values(data))
        return cm_transform_fit(&tr->model.transform, cm_data_values(data), cm_data_rows(data), D,
                                sd);
    double *draws = cm_malloc((size_t)CM_TRANSFORM_FIT_DRAWS * D, sizeof(double));
    if (!draws) return cm_error_set(CM_ERR_NOMEM, "transform fit draws");
    cm_data_sample(data, &tr->streams[CM_STREAM_TRANSFORM], CM_TRANSFORM_FIT_DRAWS, draws);
    cm_status status = cm_transform_fit(&tr->model.transform, draws, CM_TRANSFORM_FIT_DRAWS, D, sd);
    cm_free(draws);
    return status;
}

static cm_adam_config adam_config(const cm_train_config *c) {
    const cm_optimizer_config *o = &c->optimizer;
    return (cm_adam_config){.learning_rate = o->learning_rate, .beta1 = o->beta1,
                            .beta2 = o->beta2, .epsilon = o->epsilon,
                            .weight_decay = o->weight_decay, .warmup_steps = o->warmup_steps,
                            .clip_norm = o->clip_norm,
                            .decay_steps = o->lr_schedule == CM_LR_COSINE ? c->steps : 0,
                            .final_fraction = o->final_fraction};
}

static cm_status check_init(const cm_train_config *config, const cm_data *data,
                            const cm_comm *comm) {
    CM_TRY(cm_train_config_check(config));
    if (cm_data_dim(data) != config->network.dim)
        return cm_error_set(CM_ERR_DIMENSION, "data dimension %zu but network dimension %zu",
                            cm_data_dim(data), config->network.dim);
    const cm_method_config *m = &config->method;
    if (m->kind == CM_METHOD_LHW && m->teacher == CM_TEACHER_SEQUENTIAL &&
        config->steps < m->chain_T - 1)
        return cm_error_set(CM_ERR_INVALID, "the sequential teacher trains T - 1 = %zu stages: "
                            "steps (%zu) must be at least that", m->chain_T - 1, config->steps);
    if (comm->size > config->blocks)
        return cm_error_set(CM_ERR_INVALID, "%zu processes for %zu row blocks: every process "
                            "needs a block (--blocks)", comm->size, config->blocks);
    return CM_OK;
}

cm_status cm_trainer_init_comm(cm_trainer **out, const cm_train_config *config,
                               const cm_data *data, const cm_comm *comm) {
    *out = NULL;
    CM_TRY(check_init(config, data, comm));
    cm_trainer *tr = cm_calloc(1, sizeof *tr);
    if (!tr) return cm_error_set(CM_ERR_NOMEM, "trainer");
    tr->config = *config;
    tr->method = cm_method_entry_of(config->method.kind);
    tr->data = data;
    tr->comm = comm;
    cm_rng root;
    cm_rng_init(&root, config->seed);
    for (int s = 1; s < CM_STREAM_COUNT; s++) cm_rng_fork(&tr->streams[s], &root, (uint64_t)s);
    cm_status status = cm_model_init(&tr->model, config);
    if (status == CM_OK) status = allocate_buffers(tr);
    cm_adam_config adam = adam_config(config);
    if (status == CM_OK) status = cm_adam_init(&tr->adam, &adam, cm_model_param_count(&tr->model));
    if (status == CM_OK) status = fit_transform(tr);
    if (status == CM_OK)
        snprintf(tr->model.data_source, sizeof tr->model.data_source, "%s", cm_data_describe(data));
    if (status != CM_OK) {
        cm_trainer_free(tr);
        return status;
    }
    size_t P = cm_model_param_count(&tr->model);
    cm_network_init(tr->model.network, tr->params, &tr->streams[CM_STREAM_INIT]);
    memcpy(tr->model.params, tr->params, P * sizeof(float));
    if (tr->target) memcpy(tr->target, tr->params, P * sizeof(float));
    *out = tr;
    return CM_OK;
}

cm_status cm_trainer_init(cm_trainer **out, const cm_train_config *config, const cm_data *data) {
    return cm_trainer_init_comm(out, config, data, cm_comm_single());
}

void cm_trainer_free(cm_trainer *tr) {
    if (!tr) return;
    for (size_t b = 0; tr->workspaces && b < tr->blocks; b++) {
        cm_network_workspace_free(tr->workspaces[b]);
        if (tr->block_gradient && tr->block_gradient[b] != tr->grad) cm_free(tr->block_gradient[b]);
    }
    cm_free(tr->workspaces);
    cm_free(tr->block_gradient);
    cm_free(tr->row_first);
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
    cm_free(tr);
}

size_t cm_trainer_steps_done(const cm_trainer *tr) { return tr->step; }
const cm_data *cm_trainer_data(const cm_trainer *tr) { return tr->data; }
float *cm_trainer_params(cm_trainer *tr) { return tr->params; }

const cm_model *cm_trainer_model(cm_trainer *tr) {
    if (tr->config.optimizer.ema_decay == 0)
        memcpy(tr->model.params, tr->params, cm_model_param_count(&tr->model) * sizeof(float));
    return &tr->model;
}

/* ---------------------------------------------------------------- one step */

/* What the block tasks of a step compute (read-only for them). */
typedef struct {
    cm_trainer *tr;
    cm_curriculum curriculum;
    cm_rng data_rng, noise_rng, level_rng; /* children k of the run's streams */
    const float *student;                  /* the student's weights */
    const float *teacher;                  /* the target network's weights; NULL: the data */
    int draw, network, gradient;           /* the phases the job runs */
} step_job;

/* Rows [first, end): their data (transformed), noise and pairs (objective.c). */
static void draw_rows(const step_job *job, size_t first, size_t end) {
    cm_trainer *tr = job->tr;
    size_t D = tr->config.network.dim;
    for (size_t b = first; b < end; b++) {
        cm_rng point = job->data_rng; /* cm_data_sample draws point b from child b */
        point.position = b;
        cm_data_sample(tr->data, &point, 1, tr->x0_double + b * D);
    }
    cm_transform_apply(&tr->model.transform, tr->x0_double + first * D, end - first);
    for (size_t k = first * D; k < end * D; k++) tr->x0[k] = (float)tr->x0_double[k];
    cm_rng_normal_fill_f32_part(&job->noise_rng, tr->z, first * D, end * D);
    for (size_t b = first; b < end; b++) {
        cm_rng level;
        cm_rng_fork(&level, &job->level_rng, b);
        tr->method->build_row(tr, b, &job->curriculum, &level);
    }
}

/* Row block s through the networks: the target, the student, the loss rows and (when asked) the
 * block's gradient, overwriting block_gradient[s]. */
static void network_rows(const step_job *job, size_t s) {
    cm_trainer *tr = job->tr;
    size_t first = tr->row_first[s], R = tr->row_first[s + 1] - first;
    size_t D = tr->config.network.dim, at = first * D;
    const cm_network *network = tr->model.network;
    cm_network_workspace *ws = tr->workspaces[s];
    cm_coefficient_rows student = cm_coefficient_rows_offset(tr->coef_student, first);
    if (job->teacher)
        cm_consistency_forward(tr->out_teacher + at, tr->x_in + at, tr->F_out + at, network,
                               job->teacher, ws, tr->x_teacher + at,
                               cm_coefficient_rows_offset(tr->coef_teacher, first), R);
    else
        memcpy(tr->out_teacher + at, tr->x0 + at, R * D * sizeof(float));
    cm_consistency_forward(tr->out_student + at, tr->x_in + at, tr->F_out + at, network,
                           job->student, ws, tr->x_student + at, student, R);
    const cm_method_config *m = &tr->config.method;
    double huber = m->loss == CM_LOSS_PSEUDO_HUBER ? cm_train_config_huber_c(&tr->config) : 0.0;
    cm_loss_rows(tr->row_loss + first, job->gradient ? tr->dout + at : NULL,
                 tr->out_student + at, tr->out_teacher + at, tr->weight + first, m->loss, huber,
                 R, D, tr->config.batch);
    if (job->gradient)
        cm_consistency_backward(tr->block_gradient[s], tr->dF + at, network, job->student, ws,
                                tr->dout + at, student, R);
}

/* Task t of a step job: this process's block block_first + t, through the job's phases. */
static void step_task(void *context, size_t t) {
    const step_job *job = context;
    cm_trainer *tr = job->tr;
    size_t s = tr->block_first + t;
    if (tr->row_first[s + 1] == tr->row_first[s]) return;
    if (job->draw) draw_rows(job, tr->row_first[s], tr->row_first[s + 1]);
    if (job->network) network_rows(job, s);
}

static void run_job(step_job *job, int draw, int network) {
    job->draw = draw;
    job->network = network;
    cm_parallel_for(step_task, job, job->tr->block_end - job->tr->block_first);
}

/* The weights the target network uses at this step (NULL: the target is the data). */
static const float *target_weights(const cm_trainer *tr, const cm_curriculum *cur) {
    switch (tr->method->target(&tr->config)) {
    case CM_TARGET_DATA: return NULL;
    case CM_TARGET_CURRENT: return tr->params;
    case CM_TARGET_EMA: return tr->target;
    case CM_TARGET_SNAPSHOT:
        /* The first step of stage t learns from f_{t-1} = the network as the previous stage
         * left it: the current weights, which cm_trainer_step freezes into the target once the
         * step succeeds (so a failed step, or a test entry point, changes nothing). */
        return cur->levels != tr->stage ? tr->params : tr->target;
    }
    return NULL;
}

static cm_status check_ready(const cm_trainer *tr) {
    if (tr->method->distillation && !tr->teacher_denoiser)
        return cm_error_set(CM_ERR_INVALID, "%s: no teacher denoiser (cm_trainer_set_teacher)",
                            cm_method_name(tr->config.method.kind));
    return CM_OK;
}

/* The job of step k: its curriculum, grid and generators, student = the current weights. */
static cm_status begin_step(step_job *job, cm_trainer *tr, size_t k) {
    CM_TRY(check_ready(tr));
    *job = (step_job){.tr = tr, .student = tr->params, .gradient = 1};
    job->curriculum = tr->method->curriculum(&tr->config, k);
    tr->method->prepare(tr, &job->curriculum);
    job->teacher = target_weights(tr, &job->curriculum);
    cm_rng_fork(&job->data_rng, &tr->streams[CM_STREAM_DATA], k);
    cm_rng_fork(&job->noise_rng, &tr->streams[CM_STREAM_NOISE], k);
    cm_rng_fork(&job->level_rng, &tr->streams[CM_STREAM_LEVEL], k);
    return CM_OK;
}

/* The draws of the job's batch, and for distillation the teacher's ODE step block by block. */
static cm_status draw_batch(step_job *job) {
    cm_trainer *tr = job->tr;
    run_job(job, 1, 0);
    cm_status status = CM_OK;
    for (size_t s = tr->block_first; s < tr->block_end && status == CM_OK; s++)
        if (tr->method->distillation && tr->row_first[s + 1] > tr->row_first[s])
            status = cm_objective_teacher_step(tr, tr->row_first[s], tr->row_first[s + 1]);
    int failed = status != CM_OK;
    CM_TRY(tr->comm->any(tr->comm, &failed));
    if (failed && status == CM_OK)
        return cm_error_set(CM_ERR_INVALID, "another process failed in the teacher's step");
    return status;
}

/* Draws, networks, the tree sum of the gradients into grad, and the batch loss. */
static cm_status loss_and_gradient(step_job *job, double *out_loss) {
    cm_trainer *tr = job->tr;
    size_t B = tr->config.batch;
    if (tr->method->distillation) {
        CM_TRY(draw_batch(job));
        run_job(job, 0, 1);
    } else {
        run_job(job, 1, 1);
    }
    if (job->gradient)
        CM_TRY(tr->comm->reduce_blocks(tr->comm, tr->block_gradient, tr->blocks,
                                       cm_model_param_count(&tr->model), tr->grad));
    CM_TRY(tr->comm->share_rows(tr->comm, tr->row_loss, tr->row_first, tr->blocks, 1));
    double total = 0.0;
    for (size_t b = 0; b < B; b++) total += tr->row_loss[b];
    *out_loss = total / (double)B;
    return CM_OK;
}

cm_status cm_trainer_step(cm_trainer *tr, cm_train_report *out) {
    size_t P = cm_model_param_count(&tr->model), k = tr->step;
    cm_train_report report = {0};
    step_job job;
    CM_TRY(begin_step(&job, tr, k));
    CM_TRY(loss_and_gradient(&job, &report.loss));
    report.learning_rate = cm_adam_current_rate(&tr->adam);
    report.grad_norm = cm_gradient_norm(tr->grad, P);
    report.step = k + 1;
    report.levels = job.curriculum.levels;
    report.target_decay = job.curriculum.target_decay;
    if (out) *out = report;
    if (!isfinite(report.loss) || !isfinite(report.grad_norm))
        return cm_error_set(CM_ERR_NONFINITE,
                            "step %zu: loss %g, gradient norm %g (not finite); weights not updated",
                            k + 1, report.loss, report.grad_norm);
    cm_target_kind target = tr->method->target(&tr->config);
    if (target == CM_TARGET_SNAPSHOT && report.levels != tr->stage) {
        memcpy(tr->target, tr->params, P * sizeof(float)); /* freeze f_{t-1} before it moves */
        tr->stage = report.levels;
    }
    cm_adam_step(&tr->adam, tr->params, tr->grad, report.grad_norm);
    double ema = tr->config.optimizer.ema_decay;
    if (ema > 0) cm_ema_update(tr->model.params, tr->params, P, ema);
    if (target == CM_TARGET_EMA) cm_ema_update(tr->target, tr->params, P, report.target_decay);
    tr->step++;
    return CM_OK;
}

/* ---------------------------------------------------------------- test entry points (testing.h) */

cm_status cm_trainer_batch_gradient(cm_trainer *tr, size_t k, double *out_loss, float *grad) {
    step_job job;
    CM_TRY(begin_step(&job, tr, k));
    CM_TRY(loss_and_gradient(&job, out_loss));
    memcpy(grad, tr->grad, cm_model_param_count(&tr->model) * sizeof(float));
    return CM_OK;
}

cm_status cm_trainer_batch_loss(cm_trainer *tr, size_t k, const float *student,
                                const float *teacher, double *out_loss) {
    step_job job;
    CM_TRY(begin_step(&job, tr, k));
    job.student = student;
    job.teacher = job.teacher ? teacher : NULL;
    job.gradient = 0;
    return loss_and_gradient(&job, out_loss);
}

cm_status cm_trainer_batch_inputs(cm_trainer *tr, size_t k, float *student, float *teacher,
                                  double *student_sigma, double *teacher_sigma,
                                  double *target_sigma) {
    size_t B = tr->config.batch, D = tr->config.network.dim;
    step_job job;
    CM_TRY(begin_step(&job, tr, k));
    CM_TRY(draw_batch(&job));
    memcpy(student, tr->x_student, B * D * sizeof(float));
    memcpy(teacher, tr->x_teacher, B * D * sizeof(float));
    for (size_t b = 0; b < B; b++) {
        student_sigma[b] = tr->row_sigma[b];
        teacher_sigma[b] = tr->row_sigma[B + b];
        if (target_sigma) target_sigma[b] = tr->row_sigma[2 * B + b];
    }
    return CM_OK;
}
