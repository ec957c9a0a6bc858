/* method.c: the method table. What each training method needs is declared here once: which
 * network computes its target (none, the current weights, an EMA copy, a stage snapshot), its
 * curriculum and target decay at step k ([CM] CT's N(k) and mu(k), [iCT]'s doubling N(k),
 * [LHW]'s stages), the Karras grid it may need, whether it distils a teacher, and how one row of
 * its batch is built (objective.c). The engine (engine.c) and the checkpoints (checkpoint.c)
 * read it; adding a method is a row here and its row builder. */
#include "train/trainer.h"

static cm_target_kind target_current(const cm_train_config *c) { return CM_TARGET_CURRENT; }
static cm_target_kind target_ema(const cm_train_config *c) { return CM_TARGET_EMA; }
static cm_target_kind target_data(const cm_train_config *c) { return CM_TARGET_DATA; }
static cm_target_kind target_lhw(const cm_train_config *c) {
    return c->method.teacher == CM_TEACHER_SEQUENTIAL ? CM_TARGET_SNAPSHOT : CM_TARGET_CURRENT;
}

static cm_curriculum curriculum_lhw(const cm_train_config *c, size_t k) {
    const cm_method_config *m = &c->method;
    size_t levels = m->teacher == CM_TEACHER_SEQUENTIAL ? cm_lhw_stage(k, c->steps, m->chain_T)
                                                        : m->chain_T;
    return (cm_curriculum){.levels = levels, .target_decay = 0.0};
}

static cm_curriculum curriculum_ct(const cm_train_config *c, size_t k) {
    const cm_method_config *m = &c->method;
    size_t levels = cm_ct_levels(k, c->steps, m->ct_s0, m->ct_s1);
    double decay = m->ct_target_ema >= 0 ? m->ct_target_ema
                                         : cm_ct_target_decay(levels, m->ct_s0, m->ct_mu0);
    return (cm_curriculum){.levels = levels, .target_decay = decay};
}

static cm_curriculum curriculum_ict(const cm_train_config *c, size_t k) {
    const cm_method_config *m = &c->method;
    return (cm_curriculum){.levels = cm_ict_levels(k, c->steps, m->ict_s0, m->ict_s1)};
}

static cm_curriculum curriculum_dsm(const cm_train_config *c, size_t k) {
    return (cm_curriculum){.levels = 0, .target_decay = 0.0};
}

static cm_curriculum curriculum_cd(const cm_train_config *c, size_t k) {
    return (cm_curriculum){.levels = c->method.cd_levels, .target_decay = c->method.ct_target_ema};
}

static size_t grid_none(const cm_train_config *c) { return 0; }
static size_t grid_ct(const cm_train_config *c) { return c->method.ct_s1 + 2; }
static size_t grid_ict(const cm_train_config *c) { return c->method.ict_s1 + 2; }
static size_t grid_cd(const cm_train_config *c) { return c->method.cd_levels + 2; }

static void prepare_nothing(cm_trainer *tr, const cm_curriculum *cur) {}
static void prepare_grid(cm_trainer *tr, const cm_curriculum *cur) {
    cm_objective_update_grid(tr, cur->levels);
}

static const cm_method_entry table[CM_METHOD_COUNT] = {
    [CM_METHOD_LHW] = {CM_METHOD_LHW, "[LHW] iterative consistency learning on the VP chain", 0,
                       target_lhw, curriculum_lhw, grid_none, prepare_nothing,
                       cm_objective_lhw_row},
    [CM_METHOD_CT] = {CM_METHOD_CT, "[CM] consistency training", 0, target_ema, curriculum_ct,
                      grid_ct, prepare_grid, cm_objective_ve_row},
    [CM_METHOD_ICT] = {CM_METHOD_ICT, "[iCT] improved consistency training", 0, target_current,
                       curriculum_ict, grid_ict, prepare_grid, cm_objective_ict_row},
    [CM_METHOD_DSM] = {CM_METHOD_DSM, "denoising score matching (EDM): a denoiser", 0,
                       target_data, curriculum_dsm, grid_none, prepare_nothing,
                       cm_objective_dsm_row},
    [CM_METHOD_CD] = {CM_METHOD_CD, "[CM] consistency distillation of a teacher denoiser", 1,
                      target_ema, curriculum_cd, grid_cd, prepare_grid, cm_objective_cd_row},
    [CM_METHOD_CD2] = {CM_METHOD_CD2, "distillation of a two-time model g(x, t, s) ([JHMZ])", 1,
                       target_ema, curriculum_cd, grid_cd, prepare_grid, cm_objective_cd_row},
};

const cm_method_entry *cm_method_entry_of(cm_method method) {
    return (int)method >= 0 && method < CM_METHOD_COUNT ? &table[method] : NULL;
}

int cm_method_has_target_copy(const cm_train_config *config) {
    cm_target_kind kind = table[config->method.kind].target(config);
    return kind == CM_TARGET_EMA || kind == CM_TARGET_SNAPSHOT;
}

const char *cm_method_summary(cm_method method) {
    const cm_method_entry *entry = cm_method_entry_of(method);
    return entry ? entry->summary : "?";
}
