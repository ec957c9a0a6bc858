/* optim.h: Adam with decoupled weight decay (Kingma & Ba 2015; Loshchilov & Hutter 2019),
 * linear warm-up, global-norm gradient clipping, and exponential moving averages of weights
 * (the evaluation EMA, and the [CM] target network).
 *
 * Moments are stored in one flat block beside the parameters; a step allocates nothing.
 */
#ifndef CM_OPTIM_H
#define CM_OPTIM_H

#include <stddef.h>

#include "cm/status.h"

typedef struct {
    double learning_rate; /* peak rate after warm-up */
    double beta1, beta2;  /* moment decays */
    double epsilon;       /* added to sqrt(v) */
    double weight_decay;  /* decoupled: p -= lr * wd * p */
    size_t warmup_steps;  /* rate ramps linearly from lr / warmup to lr; 0: none */
    double clip_norm;     /* global gradient-norm clip; 0: none */
    size_t decay_steps;   /* cosine decay of the rate from lr (after warm-up) to
                             lr * final_fraction at this step; 0: constant rate */
    double final_fraction;
} cm_adam_config;

/* lr 1e-4, betas (0.9, 0.999), eps 1e-8, no weight decay, no warm-up, no clipping: the Adam
 * settings of [CM] and [iCT] (their rate is 1e-4 for CIFAR; the CLI sets its own default). */
cm_adam_config cm_adam_config_default(void);
cm_status cm_adam_config_check(const cm_adam_config *config);

typedef struct {
    cm_adam_config config;
    size_t count;      /* parameters */
    size_t step;       /* steps taken */
    float *m, *v;      /* first and second moments, one block, owned */
} cm_adam;

cm_status cm_adam_init(cm_adam *out, const cm_adam_config *config, size_t count);
void cm_adam_free(cm_adam *adam);
/* Learning rate at the next step (warm-up and cosine decay applied). */
double cm_adam_current_rate(const cm_adam *adam);
/* Euclidean norm of grad[count], accumulated in double. */
double cm_gradient_norm(const float *grad, size_t count);
/* One step: clips grad in place when clip_norm > 0 and grad_norm (cm_gradient_norm of grad,
 * which the caller has already computed to check it) exceeds it, then updates params. */
void cm_adam_step(cm_adam *adam, float *params, float *grad, double grad_norm);

/* ema = decay * ema + (1 - decay) * params. */
void cm_ema_update(float *ema, const float *params, size_t count, double decay);

#endif
