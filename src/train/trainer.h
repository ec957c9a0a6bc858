/* trainer.h (private to src/train): the trainer's state, shared by its parts:
 *   engine.c     init, the step (row blocks on the pool, the reduction through cm_comm, the
 *                optimiser and EMA policy), the test entry points of testing.h;
 *   objective.c  what one row of a batch is for each method (its draws, its student and teacher
 *                inputs, coefficients and loss weight) and the cd teacher's ODE step;
 *   method.c     the method table: what each method needs (target network, curriculum, grid,
 *                teacher), read by the engine and by checkpoint.c;
 *   state.c      the state a checkpoint holds, and its checks.
 * Arrays named [B, D] hold the whole batch; a row block writes only its own rows, so blocks run
 * at the same time without sharing anything but read-only inputs.
 */
#ifndef CM_TRAIN_TRAINER_H
#define CM_TRAIN_TRAINER_H

#include <stddef.h>

#include "cm/comm.h"
#include "cm/optim.h"
#include "cm/train.h"

/* Which network, if any, computes the target of a step (the stop-gradient side of the loss). */
typedef enum {
    CM_TARGET_DATA,     /* the clean data x0 (dsm): no target network */
    CM_TARGET_CURRENT,  /* the current weights (ict, lhw online) */
    CM_TARGET_EMA,      /* a target copy, an EMA of the weights updated after every step
                           (ct, cd, cd2) */
    CM_TARGET_SNAPSHOT, /* a copy frozen at the start of each stage (lhw sequential) */
} cm_target_kind;

/* The curriculum of step k: N(k) of ct/ict, the stage t of sequential lhw, T of online lhw, the
 * grid size of cd/cd2 (0 for dsm); the target EMA decay applied after the step (0: none). */
typedef struct {
    size_t levels;
    double target_decay;
} cm_curriculum;

typedef struct cm_method_entry {
    cm_method method;
    const char *summary;
    int distillation; /* needs a teacher denoiser (cm_trainer_set_teacher) before the first step */
    cm_target_kind (*target)(const cm_train_config *config);
    cm_curriculum (*curriculum)(const cm_train_config *config, size_t k);
    /* Karras grid levels the run may need (0: none). */
    size_t (*grid_levels)(const cm_train_config *config);
    /* Before the rows of a step: the grid of the curriculum (and anything per step). */
    void (*prepare)(cm_trainer *trainer, const cm_curriculum *curriculum);
    /* Row b of the step's batch, from its data (x0, x0_double) and noise (z) rows and its own
     * level generator: student and teacher inputs, coefficients, weight, row_sigma. */
    void (*build_row)(cm_trainer *trainer, size_t b, const cm_curriculum *curriculum,
                      cm_rng *level_rng);
} cm_method_entry;

/* The table's row of a method. */
const cm_method_entry *cm_method_entry_of(cm_method method);
/* 1 when the method keeps a target copy of the weights (EMA or snapshot). */
int cm_method_has_target_copy(const cm_train_config *config);

struct cm_trainer {
    cm_train_config config;
    const cm_method_entry *method;
    const cm_data *data;  /* borrowed */
    const cm_comm *comm;  /* borrowed */
    cm_model model;       /* model.params = evaluation weights (EMA) */
    float *params, *grad; /* raw training weights; the summed gradient of a step */
    float *target;        /* a target copy (cm_method_has_target_copy), else NULL */
    cm_adam adam;
    /* row blocks: the run's, this process's [block_first, block_end), first row of each */
    size_t blocks, block_first, block_end;
    size_t *row_first;                 /* [blocks + 1] */
    cm_network_workspace **workspaces; /* [blocks]; local blocks only */
    float **block_gradient;            /* [blocks]; local blocks only; the first is grad */
    /* batch arrays, one allocation each kind */
    float *block;
    double *x0_double, *row_loss;                           /* [B, D], [B] */
    float *x0, *z, *x_student, *x_teacher;                  /* [B, D] */
    float *out_student, *out_teacher, *x_in, *F_out, *dout, *dF; /* [B, D] */
    cm_coefficient_rows coef_student, coef_teacher;         /* views of B rows */
    float *weight;                                          /* [B] */
    double *row_sigma;     /* [3B]: student level, teacher level, cd2 target level */
    double *grid, *probabilities; /* [grid_levels(config)] Karras grid, iCT level probabilities */
    size_t grid_levels;           /* N of the current grid, 0: none */
    const cm_denoiser *teacher_denoiser; /* cd, cd2: borrowed */
    double *cd_x, *cd_work;              /* cd, cd2: [B, D], [3 B D] */
    size_t stage;                        /* lhw sequential: stage t of the last step */
    cm_rng streams[CM_STREAM_COUNT];
    size_t step;
};

/* objective.c */
void cm_objective_update_grid(cm_trainer *trainer, size_t levels);
void cm_objective_ve_row(cm_trainer *trainer, size_t b, const cm_curriculum *curriculum,
                         cm_rng *level_rng);
void cm_objective_ict_row(cm_trainer *trainer, size_t b, const cm_curriculum *curriculum,
                          cm_rng *level_rng);
void cm_objective_dsm_row(cm_trainer *trainer, size_t b, const cm_curriculum *curriculum,
                          cm_rng *level_rng);
void cm_objective_lhw_row(cm_trainer *trainer, size_t b, const cm_curriculum *curriculum,
                          cm_rng *level_rng);
void cm_objective_cd_row(cm_trainer *trainer, size_t b, const cm_curriculum *curriculum,
                         cm_rng *level_rng);
/* The cd teacher's ODE step for rows [first, end): x_teacher of those rows (after build_row). */
cm_status cm_objective_teacher_step(cm_trainer *trainer, size_t first, size_t end);

#endif
