/* config.h: the configuration of a training run, with the papers' defaults, in four parts: the
 * network (network.h: its type and the type's own settings), the optimiser (Adam, its
 * learning-rate schedule and the evaluation EMA), the method (the objective, its noise levels and
 * curricula), and the run itself (steps, batch, row blocks, seed). One field table per part
 * drives the JSON form (stored in config.json and in every model file), the command-line options
 * and their --help, and the range checks (field.h).
 *
 * Methods: lhw ([LHW] iterative consistency learning on the discrete VP chain), ct ([CM]
 * consistency training), ict ([iCT]), dsm (denoising score matching with the EDM preconditioning
 * of Karras et al. 2022: the model is a denoiser, diffusion.h), cd ([CM] consistency
 * distillation from a teacher denoiser) and cd2 (the same distillation of a two-time
 * consistency model g(x, t, s), whose network also takes the target level s: [JHMZ], with the
 * parameterisation of consistency trajectory models, Kim et al. 2024). What each method needs
 * (a target network, a curriculum, a teacher) is declared once, in the method table of
 * train/method.c. Every constant chosen by a paper is set in cm_train_config_default with its
 * source; docs/training.md gives the measurements behind ours.
 *
 * JSON (model format 2): {"network": {"type": "mlp", "dim": 2, ..., <type settings>},
 * "optimizer": {...}, "method": {"method": "ict", ...}, "steps": .., "batch": .., "blocks": ..,
 * "seed": ..}. The flat form of format 1 (every key at the top level) is still read.
 */
#ifndef CM_CONFIG_H
#define CM_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "cm/field.h"
#include "cm/network.h"
#include "cm/status.h"

typedef enum {
    CM_METHOD_LHW,
    CM_METHOD_CT,
    CM_METHOD_ICT,
    CM_METHOD_DSM, /* a denoiser D(x, sigma), not a consistency function */
    CM_METHOD_CD,
    CM_METHOD_CD2, /* a two-time map g(x, t, s), distilled like cd ([JHMZ]) */
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
 * last step. */
typedef enum { CM_LR_CONSTANT, CM_LR_COSINE, CM_LR_SCHEDULE_COUNT } cm_lr_schedule;

const char *cm_method_name(cm_method method);
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

/* What a model of each method is (used by samplers, files and the CLI; the trainer's own needs
 * are in the method table of train/method.c). */
/* 1 for the methods trained by distillation from a teacher denoiser (cd, cd2). */
int cm_method_is_distillation(cm_method method);
/* 1 for the consistency models in VE units (ct, ict, cd, cd2): not lhw (a VP chain) or dsm. */
int cm_method_is_ve_consistency(cm_method method);
/* Noise levels per network row: 2 for the two-time cd2, else 1. */
size_t cm_method_noise_levels(cm_method method);

/* The optimiser: Adam with decoupled weight decay, warm-up, clipping, the learning-rate
 * schedule, and the evaluation EMA of the weights. */
typedef struct {
    double learning_rate; /* peak rate after warm-up */
    double beta1, beta2;
    double epsilon;
    double weight_decay;  /* decoupled */
    size_t warmup_steps;
    double clip_norm;     /* global gradient-norm clip; 0: none */
    cm_lr_schedule lr_schedule;
    double final_fraction; /* cosine: the last step's rate as a fraction of learning_rate */
    double ema_decay;     /* evaluation EMA of the weights; 0 disables */
} cm_optimizer_config;

/* The method: its objective, noise levels, curricula and teacher. */
typedef struct {
    cm_method kind;
    double sigma_data; /* standard deviation of the standardised data [CM] */
    cm_loss loss;
    cm_weighting weighting;
    double huber_c;    /* <= 0: the [iCT] value 0.00054 sqrt(D) */
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
    /* [iCT] curriculum and lognormal level sampling */
    size_t ict_s0, ict_s1;
    double ict_p_mean, ict_p_std;
    /* dsm: lognormal noise levels log sigma ~ N(P_mean, P_std^2) (EDM: -1.2, 1.2) */
    double dsm_p_mean, dsm_p_std;
    /* cd, cd2: fixed Karras grid of N levels, index uniform, teacher ODE step ([CM]: N = 18,
     * Heun); the target network is the EMA of ct_target_ema ([CM] CD: 0.95). */
    size_t cd_levels;
    cm_solver cd_solver;
} cm_method_config;

typedef struct {
    cm_network_config network;
    cm_optimizer_config optimizer;
    cm_method_config method;
    size_t steps;  /* K, total optimiser steps (curricula are defined against it) */
    size_t batch;  /* B */
    size_t blocks; /* fixed row blocks of a batch: the unit of work of threads and processes;
                      results depend on it, never on the thread or process count */
    uint64_t seed;
} cm_train_config;

/* Defaults for `method` in dimension `dim` with the default network type (see config.c for
 * each value's source). */
cm_train_config cm_train_config_default(cm_method method, size_t dim);
/* Defaults for `method` with a given network type (its own defaults) for D-dimensional rows. */
cm_train_config cm_train_config_default_network(cm_method method, const cm_network_type *type,
                                                size_t dim);
/* Range checks of every field, and of the network (cm_network_create would accept it), with a
 * detail naming the field. */
cm_status cm_train_config_check(const cm_train_config *config);
/* The pseudo-Huber constant in use (huber_c, or 0.00054 sqrt(D)). */
double cm_train_config_huber_c(const cm_train_config *config);

/* The field tables (offsets into the struct named): the run's own (steps, batch, blocks, seed:
 * into cm_train_config), the optimiser's (cm_optimizer_config) and the method's
 * (cm_method_config); the network's are its type's (network.h). */
const cm_field *cm_train_config_fields(size_t *count);
const cm_field *cm_optimizer_config_fields(size_t *count);
const cm_field *cm_method_config_fields(size_t *count);

/* JSON text of the config (cm_malloc'ed, caller frees with cm_free). */
cm_status cm_train_config_to_json(char **out, const cm_train_config *config);
/* Parse JSON written by cm_train_config_to_json (or the flat form of model format 1); unknown or
 * repeated keys are an error, missing keys keep the method's defaults. */
cm_status cm_train_config_from_json(cm_train_config *out, const char *json, const char *name);
/* CM_OK when the two configs agree in every field of the JSON form; otherwise CM_ERR_INVALID with
 * a detail naming the first field that differs and both values
 * ("\"lr\" is 0.01, the stored run has 0.001"). */
cm_status cm_train_config_diff(const cm_train_config *given, const cm_train_config *stored);

#endif
