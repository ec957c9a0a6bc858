/* model.h: a trained consistency model: its configuration, network weights, data transform
 * and (for [LHW] models) chain schedule, with saving and loading as safetensors.
 *
 * File layout (format version 1): tensors "mlp.<l>.weight" [OC, C] and "mlp.<l>.bias" [OC] in
 * float32, the evaluation weights; __metadata__ keys "cm.format_version" ("1"), "cm.config"
 * (the training configuration as JSON, see config.h) and "cm.transform" (JSON
 * {"shift": [...], "scale": [...]}, numbers printed with 17 significant digits so they read back
 * to the bit) and "cm.data" (the training data source, as cm_data_describe gives it). Loadable from Python: safetensors.numpy.load_file / safe_open(...).metadata().
 */
#ifndef CM_MODEL_H
#define CM_MODEL_H

#include <stddef.h>

#include "cm/config.h"
#include "cm/consistency.h"
#include "cm/data.h"
#include "cm/io.h"
#include "cm/nn.h"
#include "cm/schedule.h"

#define CM_MODEL_FORMAT_VERSION 1

typedef struct {
    cm_train_config config;
    cm_mlp_layout layout;
    float *params;            /* layout.param_count, owned */
    cm_transform transform;   /* owned */
    cm_lhw_schedule schedule; /* owned; only for CM_METHOD_LHW (else zeroed) */
    char data_source[512];    /* canonical description of the training data ("" if unknown) */
} cm_model;

/* A model with freshly allocated (uninitialised) weights for `config`, an identity transform of
 * the config's dimension and, for [LHW], its schedule. Free with cm_model_free. */
cm_status cm_model_init(cm_model *out, const cm_train_config *config);
void cm_model_free(cm_model *model);

/* Consistency-function coefficients at VE noise level sigma (VE models) or chain index t
 * ([LHW] models: `level` is t, cast to size_t; 1 <= t <= T). For a two-time (cd2) model: those
 * of g(x, sigma, sigma_min), in the two-time layout (consistency.h). */
cm_coefficients cm_model_coefficients(const cm_model *model, double level);

/* Views of the model's weights under the file names "mlp.<l>.weight" / "mlp.<l>.bias" into
 * tensors[2 (depth + 1)], with the names written to names[][32]; returns the count. The views
 * borrow model->params and names. */
#define CM_MODEL_MAX_TENSORS (2 * (CM_MLP_MAX_DEPTH + 1))
size_t cm_model_tensors(cm_tensor_view *tensors, char (*names)[32], const cm_model *model);

cm_status cm_model_save(const cm_model *model, const char *path);
/* Loads and validates a file written by cm_model_save (shapes must match the config). */
cm_status cm_model_load(cm_model *out, const char *path);

#endif
