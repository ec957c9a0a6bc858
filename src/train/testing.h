/* testing.h (private to src/train; included by white-box tests only): entry points that expose a
 * step's pieces without updating anything, so that tests can check the objective against an
 * independent computation. Each draws the batch step k would draw, exactly as cm_trainer_step
 * does (every row block, in one process). */
#ifndef CM_TRAIN_TESTING_H
#define CM_TRAIN_TESTING_H

#include "cm/train.h"

/* The loss and its gradient (overwriting grad[param_count]) on the batch of step k, at the
 * current weights. */
cm_status cm_trainer_batch_gradient(cm_trainer *trainer, size_t k, double *out_loss, float *grad);
/* The loss on the batch of step k with explicit student and teacher weights (each param_count
 * floats). With teacher = student this is the training loss whose gradient
 * cm_trainer_batch_gradient returns, except that there the teacher is a constant. */
cm_status cm_trainer_batch_loss(cm_trainer *trainer, size_t k, const float *student,
                                const float *teacher, double *out_loss);
/* The student and teacher network inputs (B x D floats each) and the per-row levels (student;
 * teacher; the target level s of g(x, t, s) for cd2, else 0, when target_sigma is not NULL) of
 * the batch of step k. dsm rows have no teacher: level 0 and an unspecified input. */
cm_status cm_trainer_batch_inputs(cm_trainer *trainer, size_t k, float *student, float *teacher,
                                  double *student_sigma, double *teacher_sigma,
                                  double *target_sigma);
/* The raw training weights (param_count floats, owned by the trainer). */
float *cm_trainer_params(cm_trainer *trainer);

#endif
