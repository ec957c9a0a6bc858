/* train.h: consistency training: the objectives of [LHW], [CM] CT and [iCT], the curricula, and
 * a trainer whose caller owns the loop (GSL style: init / step / inspect); also denoising score
 * matching (dsm) and [CM] consistency distillation (cd).
 *
 * One step ([LHW], [CM], [iCT]; docs/math.md): draw a batch X_0 from the data, one noise Z per
 * point, a
 * pair of adjacent levels per point; the student sees the noisier point, the teacher the less
 * noisy one built from the same Z; loss between student output and the teacher's output, which
 * is a constant of the step (no gradient flows into it):
 *   lhw  VP pairs (U_t, U_{t-1}), l2. Teacher: online = current weights at t-1 (t uniform in
 *        2..T); sequential = frozen snapshot of the previous stage, stages t = 2..T in order.
 *   ct   Karras grid of N(k) levels, index uniform, teacher = target EMA with mu(k), l2.
 *   ict  Karras grid of N(k) levels (doubling), index from the discretised lognormal, teacher =
 *        current weights, pseudo-Huber, weight 1 / (sigma_{i+1} - sigma_i).
 *   dsm  log sigma ~ N(P_mean, P_std^2) per point (EDM), input x0 + sigma z, target x0, the
 *        network read as the denoiser D = c_skip x + c_out F with cm_consistency_ve(sigma, sd, 0),
 *        l2 with weight (sigma^2 + sd^2) / (sigma sd)^2 (EDM eq. 8 and table 1).
 *   cd   fixed Karras grid of cd_levels, index uniform; student at x0 + sigma_{n+1} z, target =
 *        target EMA at the teacher's ODE step (Euler or Heun) from there to sigma_n ([CM] CD).
 *        The teacher denoiser is given with cm_trainer_set_teacher before the first step.
 * Randomness: the data, level and noise draws of step k come from children k of three separate
 * streams of the seed, and row r of that batch from child r of those (its data point, its noise
 * values r D .. r D + D - 1 of the step's noise stream, its own level generator), so a step's
 * batch depends only on (seed, k) and any row block can be drawn alone.
 * Execution: the batch is config.blocks fixed row blocks (threads run blocks; processes own
 * contiguous ranges of them, comm.h); each block's gradient is computed alone and the blocks'
 * gradients are summed in a fixed tree order, so results depend on the block count only, never on
 * the thread or process count. A step allocates nothing. Test entry points: src/train/testing.h.
 */
#ifndef CM_TRAIN_H
#define CM_TRAIN_H

#include <stddef.h>

#include "cm/comm.h"
#include "cm/config.h"
#include "cm/data.h"
#include "cm/diffusion.h"
#include "cm/model.h"

/* [CM] CT curriculum: N(k) = ceil(sqrt(k/K ((s1 + 1)^2 - s0^2) + s0^2) - 1) + 1. */
size_t cm_ct_levels(size_t k, size_t K, size_t s0, size_t s1);
/* [CM] adaptive target EMA: mu(k) = exp(s0 log mu0 / N(k)). */
double cm_ct_target_decay(size_t levels, size_t s0, double mu0);
/* [iCT] curriculum: N(k) = min(s0 2^floor(k / K'), s1) + 1, K' = floor(K / (log2 floor(s1/s0) + 1)). */
size_t cm_ict_levels(size_t k, size_t K, size_t s0, size_t s1);
/* [LHW] sequential teacher: stage t = min(2 + floor(k (T - 1) / K), T) of step k, so that the
 * T - 1 stages share the K steps equally. */
size_t cm_lhw_stage(size_t k, size_t K, size_t T);
/* [iCT] discretised lognormal over the N - 1 intervals of an increasing grid sigma[0..N):
 * out[i] = P(sigma_i < exp(P_mean + P_std Z) <= sigma_{i+1}) renormalised, i = 0..N-2. */
void cm_ict_level_probabilities(double *out, const double *sigma, size_t N, double p_mean,
                                double p_std);

typedef struct {
    size_t step;          /* steps completed */
    double loss;          /* of the batch of this step, before the update */
    double learning_rate; /* used by this step */
    double grad_norm;     /* before clipping */
    size_t levels;        /* N(k) (ct, ict), stage t (lhw sequential), T (lhw online) */
    double target_decay;  /* ct: mu(k) of this step; otherwise 0 */
} cm_train_report;

typedef struct cm_trainer cm_trainer; /* opaque */

/* One line on what a method trains (for --help). */
const char *cm_method_summary(cm_method method);

/* Validates the config against the data (dimension), fits the standardising transform
 * (a file's rows, or 65536 draws of a law from the TRANSFORM stream), initialises the weights
 * from the INIT stream. `data` is borrowed and must outlive the trainer. */
cm_status cm_trainer_init(cm_trainer **out, const cm_train_config *config, const cm_data *data);
/* The same for one process of several: `comm` (borrowed, must outlive the trainer) says which
 * row blocks this process computes and sums the blocks' gradients (comm.h). */
cm_status cm_trainer_init_comm(cm_trainer **out, const cm_train_config *config,
                               const cm_data *data, const cm_comm *comm);
void cm_trainer_free(cm_trainer *trainer);
/* One optimiser step. CM_ERR_NONFINITE if the loss or gradient is not finite: the detail names
 * the step and the trainer's whole state is untouched (it can still be checkpointed). */
cm_status cm_trainer_step(cm_trainer *trainer, cm_train_report *out);
size_t cm_trainer_steps_done(const cm_trainer *trainer);
/* The model with the evaluation weights (EMA, or the raw weights when the EMA is off). Owned by
 * the trainer; valid until the next step. */
const cm_model *cm_trainer_model(cm_trainer *trainer);

/* The data source the trainer was made with (borrowed). */
const cm_data *cm_trainer_data(const cm_trainer *trainer);

/* cd, cd2: the teacher denoiser (borrowed; must outlive the trainer), in model units. With a
 * transform (the teacher model's), the trainer adopts it as its standardising transform, so that
 * teacher and student see the same units; call before the first step (or before
 * cm_trainer_set_state). CM_ERR_INVALID for other methods. */
cm_status cm_trainer_set_teacher(cm_trainer *trainer, const cm_denoiser *teacher,
                                 const cm_transform *transform);
/* ---- The complete state of a run between two steps (what a checkpoint holds, checkpoint.h).
 * Everything else a step uses is a function of the config and the step index: the batch of step
 * k comes from children k of the fixed DATA, LEVEL and NOISE streams, the curricula N(k), mu(k)
 * and the learning rate are formulas in k, and the Karras grid is rebuilt from N(k). */
typedef struct {
    size_t step;                     /* steps completed; the next step draws batch `step` */
    size_t stage;                    /* lhw sequential: stage t of the last step (0 before the
                                        first); 0 for the other methods */
    size_t adam_step;                /* equals step (one Adam update per successful step) */
    size_t param_count;
    const float *params;             /* raw training weights */
    const float *ema;                /* evaluation weights (a copy of params when the EMA is off) */
    const float *target;             /* ct target EMA, lhw sequential snapshot; NULL otherwise */
    const float *adam_m, *adam_v;    /* Adam moments */
    cm_rng streams[CM_STREAM_COUNT]; /* the run's fixed streams (index 0 unused) */
    const cm_transform *transform;   /* the standardising transform */
} cm_trainer_state;

/* The state of `trainer` between steps. Pointers are borrowed from the trainer and valid until
 * its next step or free. */
void cm_trainer_get_state(cm_trainer_state *out, cm_trainer *trainer);
/* Overwrite the state of `trainer` (freshly made by cm_trainer_init with the same config and
 * data) with a copy of `state`, after checking that this config and seed can have produced it:
 * step <= steps, adam_step == step, the stage of step - 1, a target exactly when the method has
 * one, stream keys derived from the seed, finite weights and moments, v >= 0, a transform of the
 * right dimension with finite shift and scale > 0. CM_ERR_FORMAT with a detail naming the first
 * problem; the trainer is unchanged on failure. */
cm_status cm_trainer_set_state(cm_trainer *trainer, const cm_trainer_state *state);

#endif
