/* config.h: the training configuration of every method, with the papers' defaults, and its JSON
 * form (stored in config.json and in the model file).
 *
 * Methods: lhw ([LHW] iterative consistency learning on the discrete VP chain, SPEC section 2),
 * ct ([CM] consistency training), ict ([iCT]), dsm (denoising score matching with the EDM
 * preconditioning, Karras et al. 2022: the model is a denoiser, diffusion.h) and cd ([CM]
 * consistency distillation from a teacher denoiser, SPEC section 5) and cd2 (the same
 * distillation of a two-time consistency model g(x, t, s), whose network also takes the target
 * level s: SPEC section 6, train.c). Every constant chosen by a paper is set in
 * cm_train_config_default with its source.
 */
#ifndef CM_CONFIG_H
#define CM_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "cm/nn.h"
#include "cm/optim.h"
#include "cm/status.h"

typedef enum {
    CM_METHOD_LHW,
    CM_METHOD_CT,
    CM_METHOD_ICT,
    CM_METHOD_DSM, /* a denoiser D(x, sigma), not a consistency function */
    CM_METHOD_CD,
    CM_METHOD_CD2, /* a two-time map g(x, t, s), distilled like cd (SPEC section 6, [JHMZ]) */
    CM_METHOD_COUNT
} cm_method;
/* The ODE step of the cd teacher ([CM]: Heun, EDM's second-order method). */
typedef enum { CM_SOLVER_EULER, CM_SOLVER_HEUN, CM_SOLVER_COUNT } cm_solver;
typedef enum { CM_TEACHER_ONLINE, CM_TEACHER_SEQUENTIAL, CM_TEACHER_COUNT } cm_teacher;
typedef enum { CM_LOSS_L2, CM_LOSS_PSEUDO_HUBER, CM_LOSS_COUNT } cm_loss;
/* Per-pair loss weight: none, or [iCT]'s 1 / (sigma_{i+1} - sigma_i) (VE levels of the pair);
 * dsm: EDM's (sigma^2 + sd^2) / (sigma sd)^2 ("edm"; for the other methods it is refused). */
typedef enum {
    CM_WEIGHTING_NONE,
    CM_WEIGHTING_INVERSE_GAP,
    CM_WEIGHTING_EDM,
    CM_WEIGHTING_COUNT
} cm_weighting;
/* Learning rate over the run: constant, or cosine decay from lr to lr * final_fraction at the
 * last step (the trainer sets the optimiser's decay length to `steps`). */
typedef enum { CM_LR_CONSTANT, CM_LR_COSINE, CM_LR_SCHEDULE_COUNT } cm_lr_schedule;

const char *cm_method_name(cm_method method);
/* 1 for the methods trained by distillation from a teacher denoiser (cd, cd2). */
int cm_method_is_distillation(cm_method method);
/* 1 for the consistency models in VE units (ct, ict, cd, cd2): not lhw (a VP chain) or dsm. */
int cm_method_is_ve_consistency(cm_method method);
cm_status cm_method_parse(cm_method *out, const char *text);
const char *cm_teacher_name(cm_teacher teacher);
cm_status cm_teacher_parse(cm_teacher *out, const char *text);
const char *cm_loss_name(cm_loss loss);
cm_status cm_loss_parse(cm_loss *out, const char *text);
const char *cm_weighting_name(cm_weighting weighting);
cm_status cm_weighting_parse(cm_weighting *out, const char *text);
const char *cm_solver_name(cm_solver solver);
cm_status cm_solver_parse(cm_solver *out, const char *text);
const char *cm_lr_schedule_name(cm_lr_schedule schedule);
cm_status cm_lr_schedule_parse(cm_lr_schedule *out, const char *text);

typedef struct {
    cm_method method;
    cm_mlp_config network;
    cm_adam_config adam;  /* adam.decay_steps is ignored: lr_schedule decides */
    cm_lr_schedule lr_schedule;
    size_t steps;      /* K, total optimiser steps (curricula are defined against it) */
    size_t batch;      /* B */
    uint64_t seed;
    double ema_decay;  /* evaluation EMA of the weights; 0 disables */
    double sigma_data; /* standard deviation of the standardised data [CM] */
    cm_loss loss;
    cm_weighting weighting;
    /* VE grid ([CM], [iCT]) */
    double sigma_min, sigma_max, rho;
    /* [LHW] chain */
    size_t chain_T;
    double c0, c1;
    cm_teacher teacher;
    /* [CM] CT curriculum N(k) and adaptive target EMA mu(k) */
    size_t ct_s0, ct_s1;
    double ct_mu0;
    double ct_target_ema; /* < 0: [CM]'s adaptive mu(k); in [0, 1): fixed decay (0: no EMA,
                             the target is the current weights as in [iCT]) */
    /* [iCT] curriculum, lognormal level sampling, pseudo-Huber constant */
    size_t ict_s0, ict_s1;
    double ict_p_mean, ict_p_std;
    double huber_c;       /* <= 0: the [iCT] value 0.00054 sqrt(D) */
    /* dsm: lognormal noise levels log sigma ~ N(P_mean, P_std^2) (EDM: -1.2, 1.2) */
    double dsm_p_mean, dsm_p_std;
    /* cd: fixed Karras grid of N levels, index uniform, teacher ODE step ([CM]: N = 18, Heun);
     * the target network is the EMA of target_ema (ct_target_ema; [CM] CD: 0.95). */
    size_t cd_levels;
    cm_solver cd_solver;
} cm_train_config;

/* Defaults for `method` in dimension `dim` (see config.c for each value's source). */
cm_train_config cm_train_config_default(cm_method method, size_t dim);
/* Range checks of every field, with a detail naming the field. */
cm_status cm_train_config_check(const cm_train_config *config);
/* The pseudo-Huber constant in use (huber_c, or 0.00054 sqrt(D)). */
double cm_train_config_huber_c(const cm_train_config *config);

/* JSON text of the config (cm_malloc'ed, caller frees with cm_free). */
cm_status cm_train_config_to_json(char **out, const cm_train_config *config);
/* Parse JSON written by cm_train_config_to_json; unknown or repeated keys are an error, missing
 * keys keep the method's defaults. */
cm_status cm_train_config_from_json(cm_train_config *out, const char *json, const char *name);
/* CM_OK when the two configs agree in every field of the JSON form; otherwise CM_ERR_INVALID with
 * a detail naming the first field that differs and both values
 * ("\"lr\" is 0.01, the stored run has 0.001"). */
cm_status cm_train_config_diff(const cm_train_config *given, const cm_train_config *stored);

#endif
