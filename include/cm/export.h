/* export.h: a trained consistency model as one dependency-free C99 source file and its header
 * (docs/export.md): the weights (float32, float16 or int8 with per-output-channel scales), the
 * data transform, the coefficients of [CM] (VE), [LHW] (VP) and the two-time map of cd2, the
 * noise embedding and the network's forward pass (written by its type: network.h, export_c),
 * cm's Philox normals (rng.h) and the sampler of sampler.h ([CM] Algorithm 1). It compiles with
 * `cc -O2 -c`, links with -lm alone, allocates nothing, and draws for the same seed the samples
 * `cm sample` draws up to float rounding. dsm models (denoisers) are not exported.
 */
#ifndef CM_EXPORT_H
#define CM_EXPORT_H

#include <stddef.h>
#include <stdint.h>

#include "cm/model.h"
#include "cm/status.h"

/* The generated API, for a prefix P (its macros in upper case, P_ below):
 *     size_t P_workspace_size(void);                       bytes (P_WORKSPACE_BYTES)
 *     int P_sample(float *out, size_t n, uint64_t seed);   one step, the static workspace
 *     int P_sample_levels(float *out, size_t n, uint64_t seed, const double *levels,
 *                         size_t count, void *workspace);  [CM] Algorithm 1
 * out[n, D] in data units; 0 on success, P_ERROR_ARGUMENT or P_ERROR_LEVELS. */

typedef enum {
    CM_EXPORT_F32,  /* the weights as trained */
    CM_EXPORT_F16,  /* IEEE binary16 matrices (round to nearest even), float32 vectors */
    CM_EXPORT_INT8, /* int8 matrices with a float32 scale per output channel, float32 vectors */
    CM_EXPORT_DTYPE_COUNT
} cm_export_dtype;

const char *cm_export_dtype_name(cm_export_dtype dtype);
cm_status cm_export_dtype_parse(cm_export_dtype *out, const char *text);

/* The levels a sampler may be given (P_MAX_LEVELS; sampler.h's CM_SAMPLER_MAX_LEVELS). */
#define CM_EXPORT_MAX_LEVELS 64
/* The [LHW] chain is written as tables of T + 1 doubles: T is bounded to keep the file small. */
#define CM_EXPORT_MAX_CHAIN 100000

typedef struct {
    const char *prefix;      /* of every symbol: a C identifier */
    cm_export_dtype dtype;
    const char *header_name; /* what the source #includes ("gen.h") */
    const char *model_name;  /* named in the banner (the model file), may be NULL */
} cm_export_options;

/* What an export holds. */
typedef struct {
    size_t param_count;     /* the model's parameters */
    size_t stored_values;   /* values in the file's weight arrays (padding included) */
    size_t workspace_bytes; /* P_WORKSPACE_BYTES */
    size_t block_rows;      /* rows per network call */
} cm_export_summary;

/* The source and header texts (cm_malloc'ed, the caller frees both with cm_free). CM_ERR_INVALID
 * for a dsm model, a bad prefix, a network type without export, an [LHW] chain longer than
 * CM_EXPORT_MAX_CHAIN, or (f16) a weight beyond the float16 range. */
cm_status cm_export_c(char **out_source, char **out_header, cm_export_summary *out_summary,
                      const cm_model *model, const cm_export_options *options);
/* The same, written to the two paths (each atomically: io.h). */
cm_status cm_export_write(cm_export_summary *out_summary, const cm_model *model,
                          const cm_export_options *options, const char *source_path,
                          const char *header_path);

/* float16 by hand (the export must not depend on a compiler's _Float16): round to nearest,
 * ties to even; subnormals kept; beyond the largest half (65504 + half an ulp) infinity. */
uint16_t cm_export_f16_from_f32(float value);
float cm_export_f32_from_f16(uint16_t half);
/* int8 per output channel: scale[c] = max_r |values[r, c]| / 127, q[r, c] = values / scale
 * rounded to nearest (0 for a channel of zeros); values[rows, channels] row-major. */
void cm_export_int8_quantise(int8_t *q, float *scale, const float *values, size_t rows,
                             size_t channels);

#endif
