/* model.h: a trained model: its configuration, network (network.h) and weights, data transform
 * and (for [LHW] models) chain schedule, with saving and loading as safetensors.
 *
 * File layout (format version 2; docs/formats.md byte by byte): one F32 tensor per tensor of the
 * network's layout, named by the network type (the MLP: "mlp.<l>.weight" [OC, C] and
 * "mlp.<l>.bias" [OC]), holding the evaluation weights; __metadata__ keys "cm.format_version"
 * ("2"), "cm.config" (the training configuration as JSON, config.h), "cm.transform" (JSON
 * {"shift": [...], "scale": [...]}, numbers printed with 17 significant digits so they read back
 * to the bit) and "cm.data" (the training data source, as cm_data_describe gives it). Format 1
 * (the same, with the flat configuration of cm 0.1) is still read. Loadable from Python:
 * safetensors.numpy.load_file / safe_open(...).metadata(), or python/cm_numpy.py.
 */
#ifndef CM_MODEL_H
#define CM_MODEL_H

#include <stddef.h>

#include "cm/config.h"
#include "cm/consistency.h"
#include "cm/data.h"
#include "cm/io.h"
#include "cm/network.h"
#include "cm/schedule.h"

#define CM_MODEL_FORMAT_VERSION 2
#define CM_MODEL_DATA_SOURCE_MAX 512

typedef struct {
    cm_train_config config;
    cm_network *network;      /* owned */
    float *params;            /* cm_network_param_count(network) values, owned */
    cm_transform transform;   /* owned */
    cm_lhw_schedule schedule; /* owned; only for CM_METHOD_LHW (else zeroed) */
    char data_source[CM_MODEL_DATA_SOURCE_MAX]; /* canonical description of the training data
                                                   ("" if unknown) */
} cm_model;

/* A model with freshly allocated (zeroed) weights for `config`, an identity transform of the
 * config's dimension and, for [LHW], its schedule. Free with cm_model_free. */
cm_status cm_model_init(cm_model *out, const cm_train_config *config);
void cm_model_free(cm_model *model);
size_t cm_model_param_count(const cm_model *model);

/* Consistency-function coefficients at VE noise level sigma (VE models) or chain index t
 * ([LHW] models: `level` is t, cast to size_t; 1 <= t <= T). For a two-time (cd2) model: those
 * of g(x, sigma, sigma_min). */
cm_coefficients cm_model_coefficients(const cm_model *model, double level);

/* View of tensor `index` (< cm_network_tensor_count) of `params` laid out as the model's
 * network, under its file name (borrowed from the network). */
cm_tensor_view cm_model_tensor(const cm_model *model, const float *params, size_t index);

/* The transform as the JSON of cm.transform (cm_malloc'ed, caller frees), and back (into a
 * transform of the right dimension, already allocated). */
cm_status cm_transform_to_json(char **out, const cm_transform *transform);
cm_status cm_transform_from_json(cm_transform *transform, const char *json, const char *name);

/* The model's metadata pairs of a file: format version, config, transform and data source
 * (keys[i] = values[i]; the strings are owned by the struct: cm_model_metadata_free). */
#define CM_MODEL_METADATA_COUNT 4
typedef struct {
    const char *keys[CM_MODEL_METADATA_COUNT];
    const char *values[CM_MODEL_METADATA_COUNT];
    char version[16];
    char *config_json, *transform_json;
} cm_model_metadata;
cm_status cm_model_metadata_make(cm_model_metadata *out, const cm_model *model);
void cm_model_metadata_free(cm_model_metadata *metadata);

cm_status cm_model_save(const cm_model *model, const char *path);
/* The same with `extra_count` more metadata pairs (keys start with "cm." and are none of the
 * model's own four), e.g. "cm.command": the command line that trained the model (cm train). A
 * reader that does not know a key ignores it; cm_model_load does. */
cm_status cm_model_save_annotated(const cm_model *model, const char *path,
                                  const char *const *extra_keys, const char *const *extra_values,
                                  size_t extra_count);
/* Loads and validates a file written by cm_model_save (format 1 or 2: shapes must match the
 * config, values finite). */
cm_status cm_model_load(cm_model *out, const char *path);
/* The same from a file already read (a checkpoint reads its file once). */
cm_status cm_model_from_file(cm_model *out, const cm_safetensors *file, const char *path);

#endif
