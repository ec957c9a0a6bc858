/* optim.c: Adam/AdamW with warm-up and clipping, and the weight EMA (see optim.h). */
#include "cm/optim.h"

#include <math.h>
#include <string.h>

#include "cm/alloc.h"

cm_adam_config cm_adam_config_default(void) {
    return (cm_adam_config){.learning_rate = 1e-4,
                            .beta1 = 0.9,
                            .beta2 = 0.999,
                            .epsilon = 1e-8,
                            .weight_decay = 0.0,
                            .warmup_steps = 0,
                            .clip_norm = 0.0,
                            .decay_steps = 0,
                            .final_fraction = 0.0};
}

cm_status cm_adam_config_check(const cm_adam_config *c) {
    if (!(c->learning_rate > 0) || !isfinite(c->learning_rate))
        return cm_error_set(CM_ERR_INVALID, "Adam: learning rate %g must be > 0", c->learning_rate);
    if (!(c->beta1 >= 0 && c->beta1 < 1) || !(c->beta2 >= 0 && c->beta2 < 1))
        return cm_error_set(CM_ERR_INVALID, "Adam: betas (%g, %g) must be in [0, 1)", c->beta1,
                            c->beta2);
    if (!(c->epsilon > 0) || !isfinite(c->epsilon))
        return cm_error_set(CM_ERR_INVALID, "Adam: epsilon %g must be > 0", c->epsilon);
    if (!(c->weight_decay >= 0) || !isfinite(c->weight_decay))
        return cm_error_set(CM_ERR_INVALID, "Adam: weight decay %g must be >= 0", c->weight_decay);
    if (!(c->final_fraction >= 0 && c->final_fraction <= 1))
        return cm_error_set(CM_ERR_INVALID, "Adam: final rate fraction %g must be in [0, 1]",
                            c->final_fraction);
    if (!(c->clip_norm >= 0) || !isfinite(c->clip_norm))
        return cm_error_set(CM_ERR_INVALID, "Adam: clip norm %g must be >= 0", c->clip_norm);
    return CM_OK;
}

cm_status cm_adam_init(cm_adam *out, const cm_adam_config *config, size_t count) {
    *out = (cm_adam){0};
    CM_TRY(cm_adam_config_check(config));
    float *block = cm_calloc(2 * count, sizeof(float));
    if (!block) return cm_error_set(CM_ERR_NOMEM, "Adam moments for %zu parameters", count);
    out->config = *config;
    out->count = count;
    out->m = block;
    out->v = block + count;
    return CM_OK;
}

void cm_adam_free(cm_adam *adam) {
    if (!adam) return;
    cm_free(adam->m);
    *adam = (cm_adam){0};
}

double cm_adam_current_rate(const cm_adam *adam) {
    const cm_adam_config *c = &adam->config;
    if (c->warmup_steps && adam->step < c->warmup_steps)
        return c->learning_rate * (double)(adam->step + 1) / (double)c->warmup_steps;
    if (c->decay_steps == 0) return c->learning_rate;
    double progress = adam->step >= c->decay_steps ? 1.0 : (double)adam->step / (double)c->decay_steps;
    double cosine = 0.5 * (1.0 + cos(3.14159265358979323846 * progress));
    return c->learning_rate * (c->final_fraction + (1.0 - c->final_fraction) * cosine);
}

double cm_gradient_norm(const float *grad, size_t count) {
    double squared = 0.0;
    for (size_t i = 0; i < count; i++) squared += (double)grad[i] * grad[i];
    return sqrt(squared);
}

void cm_adam_step(cm_adam *adam, float *params, float *grad, double grad_norm) {
    const cm_adam_config *c = &adam->config;
    if (c->clip_norm > 0 && grad_norm > c->clip_norm) {
        float factor = (float)(c->clip_norm / grad_norm);
        for (size_t i = 0; i < adam->count; i++) grad[i] *= factor;
    }
    double rate = cm_adam_current_rate(adam);
    adam->step++;
    /* bias corrections 1 - beta^step, in double */
    double correction1 = 1.0 - pow(c->beta1, (double)adam->step);
    double correction2 = 1.0 - pow(c->beta2, (double)adam->step);
    float b1 = (float)c->beta1, b2 = (float)c->beta2;
    float step_size = (float)(rate / correction1);
    float inv_sqrt_c2 = (float)(1.0 / sqrt(correction2));
    float eps = (float)c->epsilon, decay = (float)(rate * c->weight_decay);
    for (size_t i = 0; i < adam->count; i++) {
        float g = grad[i];
        float m = b1 * adam->m[i] + (1.0f - b1) * g;
        float v = b2 * adam->v[i] + (1.0f - b2) * g * g;
        adam->m[i] = m;
        adam->v[i] = v;
        params[i] -= step_size * m / (sqrtf(v) * inv_sqrt_c2 + eps) + decay * params[i];
    }
}

void cm_ema_update(float *ema, const float *params, size_t count, double decay) {
    float d = (float)decay, one_minus = (float)(1.0 - decay);
    for (size_t i = 0; i < count; i++) ema[i] = d * ema[i] + one_minus * params[i];
}
