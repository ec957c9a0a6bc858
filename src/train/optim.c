/* optim.c: Adam/AdamW with warm-up and clipping, and the weight EMA (see optim.h).
 *
 * The loops over the parameters run as CM_OPTIM_PARTS fixed element ranges (cm_parallel_for
 * tasks): updates are element-wise, so any split gives the same bits, and the gradient norm's
 * sum has a fixed order (each range in CM_OPTIM_LANES interleaved partial sums, then the
 * partial sums in order), which does not depend on the thread count.
 */
#include "cm/optim.h"

#include <math.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/parallel.h"
#include "core/vectorize.h"

#define CM_OPTIM_PARTS 8 /* element ranges: enough for 8 threads, few enough to cost nothing */
#define CM_OPTIM_LANES 8 /* partial sums per range: one AVX2 register of floats */

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

/* Sum of squares of x[n] in double, in CM_OPTIM_LANES interleaved partial sums (vectorisable,
 * fixed order). */
VECTOR_CLONES
static double sum_of_squares(const float *restrict x, size_t n) {
    double lane[CM_OPTIM_LANES] = {0};
    size_t blocks = n / CM_OPTIM_LANES;
    for (size_t b = 0; b < blocks; b++)
        for (size_t j = 0; j < CM_OPTIM_LANES; j++) {
            double value = x[b * CM_OPTIM_LANES + j];
            lane[j] += value * value;
        }
    double total = 0.0;
    for (size_t i = blocks * CM_OPTIM_LANES; i < n; i++) total += (double)x[i] * x[i];
    for (size_t j = 0; j < CM_OPTIM_LANES; j++) total += lane[j];
    return total;
}

typedef struct {
    const float *grad;
    size_t count;
    double partial[CM_OPTIM_PARTS];
} norm_job;

static void norm_part(void *context, size_t part) {
    norm_job *j = context;
    size_t first, end;
    cm_parallel_range(&first, &end, j->count, part, CM_OPTIM_PARTS);
    j->partial[part] = sum_of_squares(j->grad + first, end - first);
}

double cm_gradient_norm(const float *grad, size_t count) {
    norm_job j = {grad, count, {0}};
    cm_parallel_for_sized(norm_part, &j, CM_OPTIM_PARTS, count);
    double squared = 0.0;
    for (size_t p = 0; p < CM_OPTIM_PARTS; p++) squared += j.partial[p];
    return sqrt(squared);
}

/* The per-step constants of one Adam update, and the arrays it runs over. */
typedef struct {
    float *params, *grad, *m, *v;
    size_t count;
    float clip_factor; /* 1: no clipping */
    float b1, b2, step_size, inv_sqrt_c2, eps, decay;
} adam_job;

/* Vectorised (sqrtf included) because the Makefile compiles this file with -fno-math-errno. */
VECTOR_CLONES
static void adam_update(float *restrict params, float *restrict grad, float *restrict m_all,
                        float *restrict v_all, size_t n, const adam_job *c) {
    float b1 = c->b1, b2 = c->b2, step_size = c->step_size, inv_sqrt_c2 = c->inv_sqrt_c2;
    float eps = c->eps, decay = c->decay, factor = c->clip_factor;
    if (factor != 1.0f)
        for (size_t i = 0; i < n; i++) grad[i] *= factor;
    for (size_t i = 0; i < n; i++) {
        float g = grad[i];
        float m = b1 * m_all[i] + (1.0f - b1) * g;
        float v = b2 * v_all[i] + (1.0f - b2) * g * g;
        m_all[i] = m;
        v_all[i] = v;
        params[i] -= step_size * m / (sqrtf(v) * inv_sqrt_c2 + eps) + decay * params[i];
    }
}

static void adam_part(void *context, size_t part) {
    const adam_job *j = context;
    size_t first, end;
    cm_parallel_range(&first, &end, j->count, part, CM_OPTIM_PARTS);
    adam_update(j->params + first, j->grad + first, j->m + first, j->v + first, end - first, j);
}

void cm_adam_step(cm_adam *adam, float *params, float *grad, double grad_norm) {
    const cm_adam_config *c = &adam->config;
    adam_job j = {.params = params, .grad = grad, .m = adam->m, .v = adam->v,
                 .count = adam->count, .clip_factor = 1.0f};
    if (c->clip_norm > 0 && grad_norm > c->clip_norm) j.clip_factor = (float)(c->clip_norm / grad_norm);
    double rate = cm_adam_current_rate(adam);
    adam->step++;
    /* bias corrections 1 - beta^step, in double */
    double correction1 = 1.0 - pow(c->beta1, (double)adam->step);
    double correction2 = 1.0 - pow(c->beta2, (double)adam->step);
    j.b1 = (float)c->beta1;
    j.b2 = (float)c->beta2;
    j.step_size = (float)(rate / correction1);
    j.inv_sqrt_c2 = (float)(1.0 / sqrt(correction2));
    j.eps = (float)c->epsilon;
    j.decay = (float)(rate * c->weight_decay);
    cm_parallel_for_sized(adam_part, &j, CM_OPTIM_PARTS, 8 * adam->count); /* ~8 operations each */
}

typedef struct {
    float *ema;
    const float *params;
    size_t count;
    float d, one_minus;
} ema_job;

VECTOR_CLONES
static void ema_update(float *restrict ema, const float *restrict params, size_t n, float d,
                       float one_minus) {
    for (size_t i = 0; i < n; i++) ema[i] = d * ema[i] + one_minus * params[i];
}

static void ema_part(void *context, size_t part) {
    const ema_job *j = context;
    size_t first, end;
    cm_parallel_range(&first, &end, j->count, part, CM_OPTIM_PARTS);
    ema_update(j->ema + first, j->params + first, end - first, j->d, j->one_minus);
}

void cm_ema_update(float *ema, const float *params, size_t count, double decay) {
    ema_job j = {ema, params, count, (float)decay, (float)(1.0 - decay)};
    cm_parallel_for_sized(ema_part, &j, CM_OPTIM_PARTS, count);
}
