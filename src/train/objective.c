/* objective.c: one row of a training batch for each method ([LHW], [CM] CT, [iCT], denoising
 * score matching, [CM] consistency distillation and its two-time form): the pair of inputs the
 * student and the teacher see, their coefficients (consistency.h), the row's loss weight and
 * levels. Each row draws its levels from its own generator (a child of the step's level stream
 * by the row's global index), so any row block, on any thread or process, draws exactly its own
 * rows. The losses themselves are cm_loss_rows (consistency.h).
 */
#include <math.h>
#include <string.h>

#include "cm/diffusion.h"
#include "cm/schedule.h"
#include "train/trainer.h"

/* Rebuild the Karras grid (and, for iCT, the level probabilities) when N changes. */
void cm_objective_update_grid(cm_trainer *tr, size_t levels) {
    const cm_method_config *c = &tr->config.method;
    if (levels == tr->grid_levels) return;
    cm_karras_grid(tr->grid, levels, c->sigma_min, c->sigma_max, c->rho);
    if (c->kind == CM_METHOD_ICT)
        cm_ict_level_probabilities(tr->probabilities, tr->grid, levels, c->ict_p_mean,
                                   c->ict_p_std);
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

/* Loss weight of a pair of VE levels s_lo < s_hi: none, or [iCT]'s 1 / (s_hi - s_lo). */
static float pair_weight(const cm_method_config *c, double s_lo, double s_hi) {
    return c->weighting == CM_WEIGHTING_INVERSE_GAP ? (float)(1.0 / (s_hi - s_lo)) : 1.0f;
}

static void set_levels(cm_trainer *tr, size_t b, double student, double teacher, double target) {
    size_t B = tr->config.batch;
    tr->row_sigma[b] = student;
    tr->row_sigma[B + b] = teacher;
    tr->row_sigma[2 * B + b] = target;
}

/* VE pair at adjacent grid levels ([CM] CT): student x0 + s_hi z, teacher x0 + s_lo z. */
static void ve_pair(cm_trainer *tr, size_t b, double s_lo, double s_hi) {
    size_t D = tr->config.network.dim;
    const cm_method_config *c = &tr->config.method;
    for (size_t i = 0; i < D; i++) {
        size_t k = b * D + i;
        tr->x_student[k] = (float)(tr->x0[k] + s_hi * tr->z[k]);
        tr->x_teacher[k] = (float)(tr->x0[k] + s_lo * tr->z[k]);
    }
    cm_coefficient_rows_store(tr->coef_student, b, cm_consistency_ve(s_hi, c->sigma_data, c->sigma_min));
    cm_coefficient_rows_store(tr->coef_teacher, b, cm_consistency_ve(s_lo, c->sigma_data, c->sigma_min));
    tr->weight[b] = pair_weight(c, s_lo, s_hi);
    set_levels(tr, b, s_hi, s_lo, 0.0);
}

/* [CM] CT: the pair's lower index uniform over the N(k) - 1 intervals. */
void cm_objective_ve_row(cm_trainer *tr, size_t b, const cm_curriculum *cur, cm_rng *level_rng) {
    size_t i = (size_t)cm_rng_below(level_rng, cur->levels - 1);
    ve_pair(tr, b, tr->grid[i], tr->grid[i + 1]);
}

/* [iCT]: the lower index from the discretised lognormal. */
void cm_objective_ict_row(cm_trainer *tr, size_t b, const cm_curriculum *cur, cm_rng *level_rng) {
    size_t i = draw_lognormal_index(tr->probabilities, cur->levels - 1, level_rng);
    ve_pair(tr, b, tr->grid[i], tr->grid[i + 1]);
}

/* dsm: x0 + sigma z with log sigma ~ N(P_mean, P_std^2) (EDM); the target is x0 itself, weight
 * (sigma^2 + sd^2) / (sigma sd)^2 with --weighting edm (EDM eq. 8 and table 1). */
void cm_objective_dsm_row(cm_trainer *tr, size_t b, const cm_curriculum *cur, cm_rng *level_rng) {
    size_t D = tr->config.network.dim;
    const cm_method_config *c = &tr->config.method;
    double sigma = exp(c->dsm_p_mean + c->dsm_p_std * cm_rng_normal(level_rng));
    double sd = c->sigma_data;
    for (size_t i = 0; i < D; i++) {
        size_t k = b * D + i;
        tr->x_student[k] = (float)(tr->x0[k] + sigma * tr->z[k]);
    }
    cm_coefficient_rows_store(tr->coef_student, b, cm_consistency_ve(sigma, sd, 0.0));
    tr->weight[b] = c->weighting == CM_WEIGHTING_EDM
                        ? (float)((sigma * sigma + sd * sd) / (sigma * sd * sigma * sd)) : 1.0f;
    set_levels(tr, b, sigma, 0.0, 0.0);
}

/* [LHW] VP pair with the same noise: U_t and U_{t-1}; t is the stage (sequential teacher) or
 * uniform in 2..T (online teacher). */
void cm_objective_lhw_row(cm_trainer *tr, size_t b, const cm_curriculum *cur, cm_rng *level_rng) {
    size_t D = tr->config.network.dim;
    const cm_method_config *c = &tr->config.method;
    size_t t = c->teacher == CM_TEACHER_SEQUENTIAL ? cur->levels
                                                   : 2 + (size_t)cm_rng_below(level_rng, c->chain_T - 1);
    const cm_lhw_schedule *s = &tr->model.schedule;
    double a_t = exp(0.5 * s->log_abar[t]), n_t = sqrt(s->one_minus_abar[t]);
    double a_prev = exp(0.5 * s->log_abar[t - 1]), n_prev = sqrt(s->one_minus_abar[t - 1]);
    for (size_t i = 0; i < D; i++) {
        size_t k = b * D + i;
        tr->x_student[k] = (float)(a_t * tr->x0[k] + n_t * tr->z[k]);
        tr->x_teacher[k] = (float)(a_prev * tr->x0[k] + n_prev * tr->z[k]);
    }
    cm_coefficient_rows_store(tr->coef_student, b, cm_consistency_lhw(s, t, c->sigma_data));
    cm_coefficient_rows_store(tr->coef_teacher, b, cm_consistency_lhw(s, t - 1, c->sigma_data));
    tr->weight[b] = pair_weight(c, s->sigma[t - 1], s->sigma[t]);
    set_levels(tr, b, s->sigma[t], s->sigma[t - 1], 0.0);
}

/* cd: student at x0 + s_hi z of a uniform pair of the fixed grid; the teacher's input, one
 * Euler or Heun step of the teacher's probability-flow ODE from there down to s_lo ([CM] CD),
 * comes from cm_objective_teacher_step. cd2 (two-time, consistency.h) adds a target level
 * s = grid[u], u uniform in {0, ..., i} (s <= s_lo): the student is g(x0 + s_hi z, s_hi, s), the
 * target g_target(x_teacher, s_lo, s). At u = i that target is x_teacher itself
 * (g(x, t, t) = x): the loss then asks the network for the teacher's ODE step, and for smaller s
 * for the consistency of the map along the teacher's trajectory (the distillation loss of
 * consistency trajectory models, Kim et al. 2024, with the teacher's one step in place of their
 * multi-step solve). */
void cm_objective_cd_row(cm_trainer *tr, size_t b, const cm_curriculum *cur, cm_rng *level_rng) {
    const cm_method_config *c = &tr->config.method;
    size_t D = tr->config.network.dim, N = c->cd_levels;
    int two_time = c->kind == CM_METHOD_CD2;
    size_t i = (size_t)cm_rng_below(level_rng, N - 1);
    double to = tr->grid[i], from = tr->grid[i + 1];
    double target = two_time ? tr->grid[cm_rng_below(level_rng, i + 1)] : 0.0;
    for (size_t j = 0; j < D; j++) {
        size_t k = b * D + j;
        tr->cd_x[k] = tr->x0_double[k] + from * tr->z[k];
        tr->x_student[k] = (float)tr->cd_x[k];
    }
    cm_coefficients student = two_time ? cm_consistency_two_time(from, target, c->sigma_data)
                                       : cm_consistency_ve(from, c->sigma_data, c->sigma_min);
    cm_coefficients teacher = two_time ? cm_consistency_two_time(to, target, c->sigma_data)
                                       : cm_consistency_ve(to, c->sigma_data, c->sigma_min);
    cm_coefficient_rows_store(tr->coef_student, b, student);
    cm_coefficient_rows_store(tr->coef_teacher, b, teacher);
    tr->weight[b] = pair_weight(c, to, from);
    set_levels(tr, b, from, to, target);
}

cm_status cm_objective_teacher_step(cm_trainer *tr, size_t first, size_t end) {
    size_t B = tr->config.batch, D = tr->config.network.dim;
    cm_diffusion_sampler solver = tr->config.method.cd_solver == CM_SOLVER_HEUN
                                      ? CM_DIFFUSION_HEUN : CM_DIFFUSION_EULER;
    CM_TRY(cm_diffusion_step(tr->teacher_denoiser, solver, tr->row_sigma + first,
                             tr->row_sigma + B + first, tr->cd_x + first * D, end - first,
                             tr->cd_work));
    for (size_t k = first * D; k < end * D; k++) tr->x_teacher[k] = (float)tr->cd_x[k];
    return CM_OK;
}
