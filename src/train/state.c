/* state.c: the complete state of a run between two steps (train.h's cm_trainer_state: what a
 * checkpoint holds, checkpoint.h), its checks against the trainer's config and seed before a
 * trainer takes it, and the cd teacher a trainer borrows. */
#include <math.h>
#include <string.h>

#include "train/trainer.h"

void cm_trainer_get_state(cm_trainer_state *out, cm_trainer *tr) {
    *out = (cm_trainer_state){0};
    out->step = tr->step;
    out->stage = tr->stage;
    out->adam_step = tr->adam.step;
    out->param_count = cm_model_param_count(&tr->model);
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
    int sequential = tr->method->target(c) == CM_TARGET_SNAPSHOT;
    size_t stage = sequential && s->step > 0 ? tr->method->curriculum(c, s->step - 1).levels : 0;
    if (s->step > c->steps)
        return cm_error_set(CM_ERR_FORMAT, "state: step %zu is past the run's %zu steps", s->step,
                            c->steps);
    if (s->adam_step != s->step)
        return cm_error_set(CM_ERR_FORMAT, "state: Adam step %zu differs from the step %zu",
                            s->adam_step, s->step);
    if (s->stage != stage)
        return cm_error_set(CM_ERR_FORMAT, "state: stage %zu, but step %zu is in stage %zu",
                            s->stage, s->step, stage);
    if (s->param_count != cm_model_param_count(&tr->model))
        return cm_error_set(CM_ERR_FORMAT, "state: %zu parameters, the network has %zu",
                            s->param_count, cm_model_param_count(&tr->model));
    if ((s->target != NULL) != (tr->target != NULL))
        return cm_error_set(CM_ERR_FORMAT, "state: a target copy is %s for method %s",
                            tr->target ? "required" : "not expected", cm_method_name(c->method.kind));
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
    size_t P = cm_model_param_count(&tr->model);
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
    if (!tr->method->distillation)
        return cm_error_set(CM_ERR_INVALID, "a teacher applies to cd and cd2, not %s",
                            cm_method_name(tr->config.method.kind));
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
