/* export.c: a trained consistency model as one dependency-free C99 file and its header
 * (export.h, docs/export.md). The network type writes its forward pass (network.h, export_c,
 * on the kernels of src/nn/export.c); this file writes what every network shares around it: the
 * banner, the data transform and method constants as hexadecimal floats (read back to the
 * bit), the weight arrays in float32, float16 or int8 and their accessors, a copy of cm's Philox
 * normals (src/core/rng.c), the coefficients of [CM] (VE), [LHW] (VP chain) and the two-time
 * map of cd2 (src/model/consistency.c), the sampler of src/sample/sampler.c ([CM] Algorithm 1),
 * and the header. Written by hand: no code generator library is worth a dependency for text this
 * regular. It does not export dsm models (denoisers) or the diffusion and [JHMZ] samplers.
 */
#include "cm/export.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/io.h"
#include "cm/version.h"

static const char *const dtype_names[CM_EXPORT_DTYPE_COUNT] = {"f32", "f16", "int8"};

const char *cm_export_dtype_name(cm_export_dtype dtype) {
    return dtype < CM_EXPORT_DTYPE_COUNT ? dtype_names[dtype] : "?";
}

cm_status cm_export_dtype_parse(cm_export_dtype *out, const char *text) {
    int index;
    CM_TRY(cm_field_name_parse(&index, text, dtype_names, CM_EXPORT_DTYPE_COUNT, "dtype"));
    *out = (cm_export_dtype)index;
    return CM_OK;
}

/* ---- float16 and int8 */

static uint32_t float_bits(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}

uint16_t cm_export_f16_from_f32(float value) {
    uint32_t bits = float_bits(value), sign = (bits >> 16) & 0x8000u, magnitude = bits & 0x7FFFFFFFu;
    if (magnitude > 0x7F800000u) return (uint16_t)(sign | 0x7E00u); /* NaN */
    if (magnitude >= 0x477FF000u) return (uint16_t)(sign | 0x7C00u); /* >= 65520: infinity */
    if (magnitude < 0x38800000u) { /* below 2^-14: a subnormal half, units of 2^-24 */
        float absolute;
        memcpy(&absolute, &magnitude, sizeof absolute);
        double scaled = (double)absolute * 16777216.0; /* exact */
        double whole = floor(scaled), fraction = scaled - whole;
        uint32_t m = (uint32_t)whole;
        if (fraction > 0.5 || (fraction == 0.5 && (m & 1u))) m++;
        return (uint16_t)(sign | m); /* m = 0x400 is the smallest normal, correctly encoded */
    }
    uint32_t half = ((magnitude >> 23) - 112u) << 10 | ((magnitude & 0x7FFFFFu) >> 13);
    uint32_t rest = magnitude & 0x1FFFu;
    if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) half++; /* a carry bumps the exponent */
    return (uint16_t)(sign | half);
}

float cm_export_f32_from_f16(uint16_t half) {
    uint32_t sign = (uint32_t)(half & 0x8000u) << 16, exponent = (half >> 10) & 0x1Fu;
    uint32_t mantissa = half & 0x3FFu, bits;
    if (exponent == 0) {
        float value = (float)mantissa * 5.9604644775390625e-8f; /* 2^-24, exact */
        return sign ? -value : value;
    }
    if (exponent == 31) bits = sign | 0x7F800000u | (mantissa << 13);
    else bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

void cm_export_int8_quantise(int8_t *q, float *scale, const float *values, size_t rows,
                             size_t channels) {
    for (size_t c = 0; c < channels; c++) {
        float largest = 0.0f;
        for (size_t r = 0; r < rows; r++) largest = fmaxf(largest, fabsf(values[r * channels + c]));
        scale[c] = largest / 127.0f;
    }
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < channels; c++) {
            double ratio = scale[c] > 0 ? (double)values[r * channels + c] / scale[c] : 0.0;
            double rounded = nearbyint(ratio);
            q[r * channels + c] = (int8_t)(rounded > 127 ? 127 : rounded < -127 ? -127 : rounded);
        }
}

/* ---- the parts of the source */

/* name[count] = values as hexadecimal doubles (exact). */
static void write_doubles(cm_export_writer *w, const char *name, const double *values,
                          size_t count) {
    cm_export_printf(w, "static const double @_%s[%zu] = {", name, count);
    for (size_t i = 0; i < count; i++)
        cm_export_printf(w, "%s%a,", i % 4 ? " " : "\n    ", values[i]);
    cm_export_printf(w, "\n};\n");
}

/* `text` fit for a C comment and the writer: at most `capacity` - 1 characters, no '@' or '$'
 * (the writer's marks), no comment end, printable ASCII. */
static void comment_safe(char *out, size_t capacity, const char *text) {
    size_t n = 0;
    for (const char *p = text ? text : ""; *p && n + 1 < capacity; p++) {
        char c = *p;
        int bad = c == '@' || c == '$' || c < 32 || c > 126 || (c == '/' && n > 0 && out[n - 1] == '*');
        out[n++] = bad ? '?' : c;
    }
    out[n] = '\0';
}

/* The first lines of both files: what the model is. */
static void write_banner(cm_export_writer *w, const cm_model *model, const cm_export_options *o) {
    const cm_network_config *n = &model->config.network;
    char name[320], source[CM_MODEL_DATA_SOURCE_MAX];
    comment_safe(name, sizeof name, o->model_name);
    comment_safe(source, sizeof source, model->data_source[0] ? model->data_source : "unknown data");
    cm_export_printf(w, "/* A consistency model exported by `cm export` (cm %s)%s%s:\n"
                     " * method %s, network %s (", CM_VERSION, name[0] ? " from " : "", name,
                     cm_method_name(model->config.method.kind), n->type->name);
    for (size_t i = 0; i < n->type->option_count; i++) {
        char value[64];
        cm_field_format_plain(value, sizeof value, &n->type->options[i], cm_network_options_const(n));
        cm_export_printf(w, "%s%s %s", i ? ", " : "", n->type->options[i].key, value);
    }
    cm_export_printf(w, "), D = %zu", n->dim);
    if (n->image_channels)
        cm_export_printf(w, " (images %zu x %zu x %zu, NCHW rows)", n->image_channels,
                         n->image_height, n->image_width);
    cm_export_printf(w, ",\n * %zu parameters stored as %s, trained on %s.\n",
                     cm_network_param_count(model->network), cm_export_dtype_name(o->dtype),
                     source);
}

/* The transform and the method's constants, and for [LHW] the chain tables. */
static cm_status write_constants(cm_export_writer *w, const cm_model *model) {
    const cm_method_config *m = &model->config.method;
    size_t D = model->config.network.dim;
    cm_export_printf(w, "/* the data transform, x_data = x_model scale + shift per coordinate, and "
                     "the method's\n * constants (src/model/consistency.c) */\n");
    write_doubles(w, "shift", model->transform.shift, D);
    write_doubles(w, "scale", model->transform.scale, D);
    cm_export_printf(w, "/* 1 for an image model: pixels are clipped to [0, 1], as cm sample does "
                     "*/\nstatic const int @_pixels = %d;\n",
                     model->config.network.image_channels ? 1 : 0);
    cm_export_printf(w, "static const double @_sigma_data = %a;\n", m->sigma_data);
    if (m->kind != CM_METHOD_LHW)
        cm_export_printf(w, "static const double @_sigma_min = %a, @_sigma_max = %a;\n",
                         m->sigma_min, m->sigma_max);
    else {
        if (m->chain_T > CM_EXPORT_MAX_CHAIN)
            return cm_error_set(CM_ERR_INVALID, "export: the [LHW] chain T = %zu is longer than "
                                "%d", m->chain_T, CM_EXPORT_MAX_CHAIN);
        cm_export_printf(w, "/* the [LHW] chain (src/model/schedule.c), entry t = 0..T */\n");
        write_doubles(w, "log_abar", model->schedule.log_abar, m->chain_T + 1);
        write_doubles(w, "sigma_t", model->schedule.sigma, m->chain_T + 1);
    }
    cm_export_printf(w, "\n");
    return cm_export_writer_status(w);
}

/* ---- the weights: arrays in the export's dtype, and the accessors @_matrix and @_vector of
 * network.h */

/* Where each tensor's values sit. The float32 store holds every vector, then (f32) every
 * matrix or (int8) every matrix's channel scales; the small store (f16, int8) the matrices. */
typedef struct {
    size_t *vector_at, *matrix_at, *scale_at, *rows, *channels; /* one block, owned */
    size_t f32_count, small_count, largest_matrix;
} store_plan;

static void plan_free(store_plan *plan) { cm_free(plan->vector_at); }

static cm_status plan_make(store_plan *plan, const cm_export_writer *net, cm_export_dtype dtype) {
    size_t V = cm_export_writer_vector_count(net), M = cm_export_writer_matrix_count(net);
    *plan = (store_plan){0};
    plan->vector_at = cm_calloc(V + 4 * M + 1, sizeof(size_t));
    if (!plan->vector_at) return cm_error_set(CM_ERR_NOMEM, "export: weight tables");
    plan->matrix_at = plan->vector_at + V, plan->scale_at = plan->matrix_at + M;
    plan->rows = plan->scale_at + M, plan->channels = plan->rows + M;
    for (size_t v = 0; v < V; v++) {
        plan->vector_at[v] = plan->f32_count;
        plan->f32_count += cm_export_writer_vector(net, v).channels;
    }
    for (size_t m = 0; m < M; m++) {
        cm_export_tensor t = cm_export_writer_matrix(net, m);
        size_t n = t.rows * t.channels;
        plan->rows[m] = t.rows, plan->channels[m] = t.channels;
        if (n > plan->largest_matrix) plan->largest_matrix = n;
        if (dtype == CM_EXPORT_F32) {
            plan->matrix_at[m] = plan->f32_count, plan->f32_count += n;
            continue;
        }
        plan->matrix_at[m] = plan->small_count, plan->small_count += n;
        if (dtype == CM_EXPORT_INT8) plan->scale_at[m] = plan->f32_count, plan->f32_count += t.channels;
    }
    return CM_OK;
}

/* ", value" with a line break every `per_line` values; *count counts them. */
static void write_value(cm_export_writer *w, size_t *count, size_t per_line, const char *format,
                        long value) {
    char text[32];
    snprintf(text, sizeof text, format, value);
    cm_export_printf(w, "%s%s,", *count % per_line ? " " : "\n    ", text);
    ++*count;
}

static void write_floats(cm_export_writer *w, size_t *count, const float *values, size_t n) {
    for (size_t i = 0; i < n; i++) write_value(w, count, 8, "0x%08lx", (long)float_bits(values[i]));
}

/* A table `name`[n] of size_t (one 0 when n = 0: C has no empty arrays). */
static void write_table(cm_export_writer *w, const char *name, const size_t *values, size_t n) {
    cm_export_printf(w, "static const size_t @_%s[%zu] = {", name, n ? n : 1);
    for (size_t i = 0; i < n; i++) cm_export_printf(w, "%s%zu,", i % 8 ? " " : "\n    ", values[i]);
    cm_export_printf(w, "%s\n};\n", n ? "" : "\n    0,");
}

/* Matrix m quantised: q[rows, channels] and scale[channels] (cm_malloc'ed, caller frees q;
 * scale lives in the same block). */
static cm_status quantise(int8_t **out_q, float **out_scale, cm_export_tensor t) {
    size_t n = t.rows * t.channels;
    float *scale = cm_malloc(t.channels + (n + sizeof(float) - 1) / sizeof(float), sizeof(float));
    if (!scale) return cm_error_set(CM_ERR_NOMEM, "export: int8 matrix %s", t.name);
    int8_t *q = (int8_t *)(scale + t.channels);
    cm_export_int8_quantise(q, scale, t.values, t.rows, t.channels);
    *out_q = q, *out_scale = scale;
    return CM_OK;
}

static cm_status write_f32_store(cm_export_writer *w, const cm_export_writer *net,
                                 const store_plan *plan, cm_export_dtype dtype) {
    size_t V = cm_export_writer_vector_count(net), M = cm_export_writer_matrix_count(net), count = 0;
    size_t total = plan->f32_count ? plan->f32_count : 1;
    cm_export_printf(w, "/* float32 values as IEEE 754 bits (exact), read through the union: every\n"
                     " * vector, then %s */\n"
                     "static const union { uint32_t bits[%zu]; float values[%zu]; } @_f32 = {{",
                     dtype == CM_EXPORT_F32 ? "every matrix" : dtype == CM_EXPORT_INT8
                         ? "the int8 matrices' channel scales" : "nothing else", total, total);
    for (size_t v = 0; v < V; v++) {
        cm_export_tensor t = cm_export_writer_vector(net, v);
        write_floats(w, &count, t.values, t.channels);
    }
    for (size_t m = 0; m < M && dtype != CM_EXPORT_F16; m++) {
        cm_export_tensor t = cm_export_writer_matrix(net, m);
        if (dtype == CM_EXPORT_F32) {
            write_floats(w, &count, t.values, t.rows * t.channels);
            continue;
        }
        int8_t *q;
        float *scale;
        CM_TRY(quantise(&q, &scale, t));
        write_floats(w, &count, scale, t.channels);
        cm_free(scale);
    }
    if (count == 0) write_floats(w, &count, (const float[1]){0.0f}, 1);
    cm_export_printf(w, "\n}};\n");
    return cm_export_writer_status(w);
}

/* The f16 or int8 matrices (CM_ERR_INVALID for a weight beyond the float16 range). */
static cm_status write_small_store(cm_export_writer *w, const cm_export_writer *net,
                                   const store_plan *plan, cm_export_dtype dtype) {
    size_t M = cm_export_writer_matrix_count(net), count = 0;
    int half = dtype == CM_EXPORT_F16;
    cm_export_printf(w, "/* the matrices as %s */\nstatic const %s @_%s[%zu] = {",
                     half ? "IEEE 754 binary16 bits" : "int8, times their channel's scale",
                     half ? "uint16_t" : "int8_t", half ? "f16" : "int8", plan->small_count);
    for (size_t m = 0; m < M; m++) {
        cm_export_tensor t = cm_export_writer_matrix(net, m);
        size_t n = t.rows * t.channels;
        if (half) {
            for (size_t i = 0; i < n; i++) {
                uint16_t h = cm_export_f16_from_f32(t.values[i]);
                if ((h & 0x7C00u) == 0x7C00u)
                    return cm_error_set(CM_ERR_INVALID, "export: %s holds %g, beyond float16's "
                                        "range (use --dtype f32)", t.name, t.values[i]);
                write_value(w, &count, 12, "0x%04lx", (long)h);
            }
            continue;
        }
        int8_t *q;
        float *scale;
        CM_TRY(quantise(&q, &scale, t));
        for (size_t i = 0; i < n; i++) write_value(w, &count, 16, "%ld", (long)q[i]);
        cm_free(scale);
    }
    cm_export_printf(w, "\n};\n");
    return cm_export_writer_status(w);
}

static const char accessor_f32[] =
    "\n/* Matrix `index` (network.h): float32 weights are read in place. */\n"
    "static const float *@_matrix(int index, float *decode)\n"
    "{\n"
    "    (void)decode;\n"
    "    return @_f32.values + @_matrix_at[index];\n"
    "}\n";

static const char accessor_f16[] =
    "\n/* binary16 -> float32, exact (subnormal halves are multiples of 2^-24) */\n"
    "static float @_half(uint16_t h)\n"
    "{\n"
    "    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exponent = (h >> 10) & 0x1Fu;\n"
    "    uint32_t mantissa = h & 0x3FFu, bits;\n"
    "    float value;\n"
    "    if (exponent == 0) {\n"
    "        value = (float)mantissa * 5.9604644775390625e-8f;\n"
    "        return sign ? -value : value;\n"
    "    }\n"
    "    bits = sign | ((exponent + 112u) << 23) | (mantissa << 13);\n"
    "    memcpy(&value, &bits, sizeof value);\n"
    "    return value;\n"
    "}\n"
    "\n"
    "/* Matrix `index` (network.h), decoded into `decode`. */\n"
    "static const float *@_matrix(int index, float *decode)\n"
    "{\n"
    "    const uint16_t *restrict h = @_f16 + @_matrix_at[index];\n"
    "    size_t n = @_matrix_rows[index] * @_matrix_channels[index];\n"
    "    for (size_t i = 0; i < n; i++) decode[i] = @_half(h[i]);\n"
    "    return decode;\n"
    "}\n";

static const char accessor_int8[] =
    "\n/* Matrix `index` (network.h), decoded into `decode`: q times its column's scale. */\n"
    "static const float *@_matrix(int index, float *decode)\n"
    "{\n"
    "    const int8_t *restrict q = @_int8 + @_matrix_at[index];\n"
    "    const float *restrict scale = @_f32.values + @_scale_at[index];\n"
    "    size_t rows = @_matrix_rows[index], channels = @_matrix_channels[index];\n"
    "    for (size_t r = 0; r < rows; r++)\n"
    "        for (size_t c = 0; c < channels; c++)\n"
    "            decode[r * channels + c] = (float)q[r * channels + c] * scale[c];\n"
    "    return decode;\n"
    "}\n";

static const char accessor_vector[] =
    "\n/* Vector `index` (network.h): float32, in place. */\n"
    "static const float *@_vector(int index)\n"
    "{\n"
    "    return @_f32.values + @_vector_at[index];\n"
    "}\n\n";

/* The weight arrays, their tables and accessors; *out_stored values, *out_decode floats of the
 * decode buffer (0 for f32). */
static cm_status write_weights(cm_export_writer *w, const cm_export_writer *net,
                               cm_export_dtype dtype, size_t *out_stored, size_t *out_decode) {
    store_plan plan;
    CM_TRY(plan_make(&plan, net, dtype));
    size_t V = cm_export_writer_vector_count(net), M = cm_export_writer_matrix_count(net);
    cm_export_printf(w, "/* ---- the weights (%zu matrices in the layouts the network reads, %zu "
                     "vectors) */\n\n", M, V);
    write_table(w, "vector_at", plan.vector_at, V);
    write_table(w, "matrix_at", plan.matrix_at, M);
    if (dtype != CM_EXPORT_F32) {
        write_table(w, "matrix_rows", plan.rows, M);
        write_table(w, "matrix_channels", plan.channels, M);
    }
    if (dtype == CM_EXPORT_INT8) write_table(w, "scale_at", plan.scale_at, M);
    cm_status status = write_f32_store(w, net, &plan, dtype);
    if (status == CM_OK && dtype != CM_EXPORT_F32) status = write_small_store(w, net, &plan, dtype);
    cm_export_printf(w, "%s", dtype == CM_EXPORT_F32 ? accessor_f32
                              : dtype == CM_EXPORT_F16 ? accessor_f16 : accessor_int8);
    cm_export_printf(w, "%s", accessor_vector);
    *out_stored = plan.f32_count + plan.small_count;
    *out_decode = dtype == CM_EXPORT_F32 ? 0 : plan.largest_matrix;
    plan_free(&plan);
    return status != CM_OK ? status : cm_export_writer_status(w);
}

/* ---- cm's random numbers and the sampler */

static const char philox[] =
    "/* ---- cm's random numbers (src/core/rng.c): Philox4x32-10 (Salmon et al., SC 2011), the key\n"
    " * of a seed and of a child generator, and Box-Muller normals: the bits of cm_rng_* */\n"
    "\n"
    "static void @_philox(uint32_t out[4], const uint32_t counter[4], const uint32_t key[2])\n"
    "{\n"
    "    uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];\n"
    "    uint32_t k0 = key[0], k1 = key[1];\n"
    "    for (int round = 0; round < 10; round++) {\n"
    "        uint64_t p0 = (uint64_t)0xD2511F53u * c0, p1 = (uint64_t)0xCD9E8D57u * c2;\n"
    "        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0, n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;\n"
    "        c1 = (uint32_t)p1;\n"
    "        c3 = (uint32_t)p0;\n"
    "        c0 = n0;\n"
    "        c2 = n2;\n"
    "        k0 += 0x9E3779B9u;\n"
    "        k1 += 0xBB67AE85u;\n"
    "    }\n"
    "    out[0] = c0, out[1] = c1, out[2] = c2, out[3] = c3;\n"
    "}\n"
    "\n"
    "/* cm_rng_init(seed): the key is Philox of (seed, 0x63, 0x6D) under a fixed key. */\n"
    "static void @_seed_key(uint32_t key[2], uint64_t seed)\n"
    "{\n"
    "    const uint32_t counter[4] = {(uint32_t)seed, (uint32_t)(seed >> 32), 0x63u, 0x6Du};\n"
    "    const uint32_t fixed[2] = {0x243F6A88u, 0x85A308D3u};\n"
    "    uint32_t block[4];\n"
    "    @_philox(block, counter, fixed);\n"
    "    key[0] = block[0], key[1] = block[1];\n"
    "}\n"
    "\n"
    "/* cm_rng_fork(parent, id): the child's key is Philox of (id, 0, 0xF0) under the parent's. */\n"
    "static void @_fork_key(uint32_t key[2], const uint32_t parent[2], uint64_t id)\n"
    "{\n"
    "    const uint32_t counter[4] = {(uint32_t)id, (uint32_t)(id >> 32), 0u, 0xF0u};\n"
    "    uint32_t block[4];\n"
    "    @_philox(block, counter, parent);\n"
    "    key[0] = block[0], key[1] = block[1];\n"
    "}\n"
    "\n"
    "/* cm_rng_uniform of the words (high, low): 53 bits plus half a unit, in (0, 1). */\n"
    "static double @_uniform(uint32_t high, uint32_t low)\n"
    "{\n"
    "    uint64_t bits = (((uint64_t)high << 32) | low) >> 11;\n"
    "    return ((double)bits + 0.5) * 0x1.0p-53;\n"
    "}\n"
    "\n"
    "/* out[D] = the normals of point `point` of a stage: cm_rng_normal_fill_f32 of child `point`\n"
    " * of the stage's generator, whose Box-Muller pair j is its Philox block j (cosine, sine). */\n"
    "static void @_point_normals(float *out, const uint32_t stage[2], uint64_t point, size_t D)\n"
    "{\n"
    "    uint32_t key[2], block[4];\n"
    "    @_fork_key(key, stage, point);\n"
    "    for (size_t j = 0; 2 * j < D; j++) {\n"
    "        const uint32_t counter[4] = {(uint32_t)j, (uint32_t)((uint64_t)j >> 32), 0u, 0u};\n"
    "        @_philox(block, counter, key);\n"
    "        double u1 = @_uniform(block[0], block[1]), u2 = @_uniform(block[2], block[3]);\n"
    "        double radius = sqrt(-2.0 * log(u1)), angle = 6.283185307179586476925286766559 * u2;\n"
    "        out[2 * j] = (float)(radius * cos(angle));\n"
    "        if (2 * j + 1 < D) out[2 * j + 1] = (float)(radius * sin(angle));\n"
    "    }\n"
    "}\n"
    "\n";

/* The coefficients of one stage, as src/model/consistency.c computes them in double and the
 * evaluator stores them in float. */
static void write_coefficients(cm_export_writer *w, const cm_model *model) {
    cm_method kind = model->config.method.kind;
    cm_export_printf(w,
        "/* ---- the sampler (src/sample/sampler.c): [CM] Algorithm 1 over f(x) = skip x +\n"
        " * out F(in x, c_noise), coefficients in double as src/model/consistency.c, stored in float */\n"
        "\n"
        "typedef struct {\n"
        "    float skip, out, in, c_noise[2];\n"
        "    double keep, add; /* the stage's input: keep x + add z */\n"
        "} @_stage;\n"
        "\n"
        "/* [CM] VE: c_skip = sd^2 / ((sigma - smin)^2 + sd^2), c_out = sd (sigma - smin) /\n"
        " * sqrt(sd^2 + sigma^2), c_in = 1 / sqrt(sigma^2 + sd^2), c_noise = log(sigma) / 4 */\n"
        "static void @_ve(double out[4], double sigma, double sigma_min)\n"
        "{\n"
        "    double sd = @_sigma_data, sd2 = sd * sd, gap = sigma - sigma_min;\n"
        "    out[0] = sd2 / (gap * gap + sd2);\n"
        "    out[1] = sd * gap / sqrt(sd2 + sigma * sigma);\n"
        "    out[2] = 1.0 / sqrt(sigma * sigma + sd2);\n"
        "    out[3] = 0.25 * log(sigma);\n"
        "}\n"
        "\n");
    if (kind == CM_METHOD_LHW)
        cm_export_printf(w,
            "/* [LHW] at chain index t: f(x, t) = sqrt(abar_1) g(x / sqrt(abar_t), sigma_t), g the VE form\n"
            " * at sigma_min = sigma_1, in log space (f(x, 1) = x exactly) */\n"
            "static void @_coefficients(@_stage *stage, size_t t)\n"
            "{\n"
            "    double ve[4];\n"
            "    @_ve(ve, @_sigma_t[t], @_sigma_t[1]);\n"
            "    stage->skip = (float)(ve[0] * exp(0.5 * (@_log_abar[1] - @_log_abar[t])));\n"
            "    stage->out = (float)(exp(0.5 * @_log_abar[1]) * ve[1]);\n"
            "    stage->in = (float)(ve[2] * exp(-0.5 * @_log_abar[t]));\n"
            "    stage->c_noise[0] = (float)ve[3];\n"
            "}\n\n");
    else if (kind == CM_METHOD_CD2)
        cm_export_printf(w,
            "/* the two-time map g(x, sigma, sigma_min) of cd2: r = sigma_min / sigma, skip = r + (1 - r)\n"
            " * c_skip, out = (1 - r) c_out of the denoiser (VE at sigma_min = 0); the network also sees\n"
            " * c_noise(sigma_min) */\n"
            "static void @_coefficients(@_stage *stage, double sigma)\n"
            "{\n"
            "    double d[4], r = @_sigma_min / sigma;\n"
            "    @_ve(d, sigma, 0.0);\n"
            "    stage->skip = (float)(r + (1.0 - r) * d[0]);\n"
            "    stage->out = (float)((1.0 - r) * d[1]);\n"
            "    stage->in = (float)d[2];\n"
            "    stage->c_noise[0] = (float)d[3];\n"
            "    stage->c_noise[1] = (float)(0.25 * log(@_sigma_min));\n"
            "}\n\n");
    else
        cm_export_printf(w,
            "static void @_coefficients(@_stage *stage, double sigma)\n"
            "{\n"
            "    double ve[4];\n"
            "    @_ve(ve, sigma, @_sigma_min);\n"
            "    stage->skip = (float)ve[0];\n"
            "    stage->out = (float)ve[1];\n"
            "    stage->in = (float)ve[2];\n"
            "    stage->c_noise[0] = (float)ve[3];\n"
            "}\n\n");
}

/* @_stages: the checks and mapping of cm_sampler_levels (sampler.h) and each stage's
 * coefficients and re-noising. */
static void write_stages(cm_export_writer *w, const cm_model *model) {
    int lhw = model->config.method.kind == CM_METHOD_LHW;
    cm_export_printf(w,
        "/* The stages of levels[count] (count 0: one step at %s): %s. */\n"
        "static int @_stages(@_stage *stages, size_t *out_count, const double *levels, size_t count)\n"
        "{\n"
        "    const double one_step = %s;\n"
        "    if (count == 0) levels = &one_step, count = 1;\n"
        "    if (!levels || count > $_MAX_LEVELS) return $_ERROR_ARGUMENT;\n"
        "    for (size_t i = 0; i < count; i++) {\n"
        "        double level = levels[i];\n",
        lhw ? "t = T" : "sigma_max",
        lhw ? "chain indices t in [1, T], decreasing, t >= 2 after the first; x = f(z, t_0), then "
              "x = f(sqrt(abar_t / abar_1) x + sqrt(1 - abar_t / abar_1) z, t)"
            : "noise levels, finite, > sigma_min, decreasing; x = f(sigma_0 z, sigma_0), then "
              "x = f(x + sqrt(sigma^2 - sigma_min^2) z, sigma)",
        lhw ? "$_CHAIN_T" : "@_sigma_max");
    if (lhw)
        cm_export_printf(w,
            "        if (!(level >= 1 && level <= $_CHAIN_T) || level != floor(level)) return $_ERROR_LEVELS;\n"
            "        if (i > 0 && !(level < levels[i - 1] && level >= 2)) return $_ERROR_LEVELS;\n"
            "        size_t t = (size_t)level;\n"
            "        double log_ratio = @_log_abar[t] - @_log_abar[1];\n"
            "        @_coefficients(&stages[i], t);\n"
            "        stages[i].keep = i == 0 ? 0.0 : exp(0.5 * log_ratio);\n"
            "        stages[i].add = i == 0 ? 1.0 : sqrt(-expm1(log_ratio));\n");
    else
        cm_export_printf(w,
            "        if (!isfinite(level) || !(level > @_sigma_min)) return $_ERROR_LEVELS;\n"
            "        if (i > 0 && !(level < levels[i - 1])) return $_ERROR_LEVELS;\n"
            "        @_coefficients(&stages[i], level);\n"
            "        stages[i].keep = i == 0 ? 0.0 : 1.0;\n"
            "        stages[i].add = i == 0 ? level : sqrt(level * level - @_sigma_min * @_sigma_min);\n");
    cm_export_printf(w,
        "    }\n"
        "    *out_count = count;\n"
        "    return 0;\n"
        "}\n\n");
}

static const char sampler[] =
    "static float @_static_workspace[@_WORKSPACE_FLOATS];\n"
    "\n"
    "size_t @_workspace_size(void)\n"
    "{\n"
    "    return sizeof(float) * @_WORKSPACE_FLOATS;\n"
    "}\n"
    "\n"
    "/* Blocks of @_NETWORK_BLOCK points through every stage: the noise of point i at stage s is\n"
    " * child i of child s of the seed's sample stream (src/sample/sampler.c), so a point does not\n"
    " * depend on n or on the block; out in data units (x scale + shift, in double). */\n"
    "int @_sample_levels(float *out, size_t n, uint64_t seed, const double *levels, size_t count,\n"
    "                    void *workspace)\n"
    "{\n"
    "    @_stage stages[$_MAX_LEVELS];\n"
    "    size_t stage_count, B = @_NETWORK_BLOCK, D = $_DIM;\n"
    "    int status = @_stages(stages, &stage_count, levels, count);\n"
    "    if (status != 0) return status;\n"
    "    if (n > 0 && !out) return $_ERROR_ARGUMENT;\n"
    "    float *x = workspace ? (float *)workspace : @_static_workspace;\n"
    "    float *noisy = x + B * D, *x_in = noisy + B * D, *F = x_in + B * D;\n"
    "    float *work = F + B * D, *decode = work + @_NETWORK_WORK;\n"
    "    uint32_t root[2], sample_stream[2], stage_key[$_MAX_LEVELS][2];\n"
    "    @_seed_key(root, seed);\n"
    "    @_fork_key(sample_stream, root, 4); /* CM_STREAM_SAMPLE */\n"
    "    for (size_t s = 0; s < stage_count; s++) @_fork_key(stage_key[s], sample_stream, s);\n"
    "    for (size_t first = 0; first < n; first += B) {\n"
    "        size_t rows = n - first < B ? n - first : B;\n"
    "        for (size_t s = 0; s < stage_count; s++) {\n"
    "            const @_stage *g = &stages[s];\n"
    "            for (size_t r = 0; r < rows; r++)\n"
    "                @_point_normals(noisy + r * D, stage_key[s], first + r, D);\n"
    "            for (size_t k = 0; k < rows * D; k++) {\n"
    "                noisy[k] = s == 0 ? (float)(g->add * noisy[k])\n"
    "                                  : (float)(g->keep * x[k] + g->add * noisy[k]);\n"
    "                x_in[k] = g->in * noisy[k];\n"
    "            }\n"
    "            @_network_forward(F, x_in, g->c_noise, rows, work, decode);\n"
    "            for (size_t k = 0; k < rows * D; k++) x[k] = g->skip * noisy[k] + g->out * F[k];\n"
    "        }\n"
    "        for (size_t r = 0; r < rows; r++)\n"
    "            for (size_t i = 0; i < D; i++) {\n"
    "                double v = (double)x[r * D + i] * @_scale[i] + @_shift[i];\n"
    "                out[(first + r) * D + i] = (float)(@_pixels && v < 0 ? 0 : @_pixels && v > 1 ? 1 : v);\n"
    "            }\n"
    "    }\n"
    "    return 0;\n"
    "}\n"
    "\n"
    "int @_sample(float *out, size_t n, uint64_t seed)\n"
    "{\n"
    "    return @_sample_levels(out, n, seed, NULL, 0, NULL);\n"
    "}\n";

/* ---- the header and the whole */

static void write_header(cm_export_writer *w, const cm_model *model, const cm_export_options *o,
                         size_t workspace_floats, const char *banner) {
    const cm_network_config *n = &model->config.network;
    const cm_method_config *m = &model->config.method;
    int lhw = m->kind == CM_METHOD_LHW;
    cm_export_printf(w, "%s", banner);
    cm_export_printf(w,
        " * The API of the exported sampler (docs/export.md of cm). It allocates nothing: a call\n"
        " * uses the caller's workspace of $_WORKSPACE_BYTES bytes (aligned for float), or with\n"
        " * workspace NULL a static one (then calls must not overlap: not thread-safe).\n"
        " */\n"
        "#ifndef $_H_INCLUDED\n"
        "#define $_H_INCLUDED\n\n"
        "#include <stddef.h>\n#include <stdint.h>\n\n"
        "#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n"
        "#define $_DIM %zu /* values per sample, D%s */\n"
        "#define $_IMAGE_CHANNELS %zu\n#define $_IMAGE_HEIGHT %zu\n#define $_IMAGE_WIDTH %zu\n"
        "#define $_MAX_LEVELS %d /* levels of one call of @_sample_levels, at most */\n"
        "#define $_LEVELS_ARE_CHAIN_INDICES %d /* 1: levels are [LHW] chain indices t */\n",
        n->dim, n->image_channels ? "; an image C x H x W in NCHW order" : "", n->image_channels,
        n->image_height, n->image_width, CM_EXPORT_MAX_LEVELS, lhw);
    if (lhw)
        cm_export_printf(w, "#define $_CHAIN_T %zu /* chain length T; one step is t = T */\n",
                         m->chain_T);
    else
        cm_export_printf(w, "#define $_SIGMA_MIN %.17g\n#define $_SIGMA_MAX %.17g /* one step */\n",
                         m->sigma_min, m->sigma_max);
    cm_export_printf(w,
        "#define $_WORKSPACE_BYTES %zu\n\n"
        "enum { $_OK = 0, $_ERROR_ARGUMENT = -1, $_ERROR_LEVELS = -2 };\n\n"
        "/* Bytes of workspace a call of @_sample_levels needs ($_WORKSPACE_BYTES). */\n"
        "size_t @_workspace_size(void);\n"
        "/* out[n, $_DIM] = n samples in one step, seeded as `cm sample --seed seed`; the static\n"
        " * workspace. */\n"
        "int @_sample(float *out, size_t n, uint64_t seed);\n"
        "/* [CM] Algorithm 1 at levels[count] (%s; count 0: one step),\n"
        " * as `cm sample --%s`. $_ERROR_LEVELS for levels out of range or not decreasing,\n"
        " * $_ERROR_ARGUMENT for a NULL pointer or more than $_MAX_LEVELS levels. */\n"
        "int @_sample_levels(float *out, size_t n, uint64_t seed, const double *levels, size_t count,\n"
        "                    void *workspace);\n\n"
        "#ifdef __cplusplus\n}\n#endif\n\n#endif\n",
        workspace_floats * sizeof(float),
        lhw ? "chain indices t, integers in [1, T], decreasing, >= 2 after the first"
            : "noise levels sigma > $_SIGMA_MIN, decreasing",
        lhw ? "times" : "sigmas");
}

/* The source file's text after the banner. */
static cm_status write_source(cm_export_writer *w, const cm_export_writer *net,
                              const cm_model *model, const cm_export_options *o,
                              cm_export_summary *summary) {
    size_t B = cm_export_writer_block_rows(net), D = model->config.network.dim, stored, decode;
    size_t work = cm_export_writer_work_floats(net);
    cm_export_printf(w,
        " * One dependency-free C99 file: cc -O2 -c; link with -lm. The API is in %s. It holds the\n"
        " * weights, the data transform, the consistency coefficients, the noise embedding and the\n"
        " * network's forward pass, cm's Philox normals and the sampler of `cm sample` ([CM]\n"
        " * Algorithm 1): the same seed gives cm sample's samples up to float rounding.\n"
        " */\n"
        "#include <math.h>\n#include <stddef.h>\n#include <stdint.h>\n#include <string.h>\n\n"
        "#include \"%s\"\n\n",
        o->header_name, o->header_name);
    CM_TRY(write_constants(w, model));
    CM_TRY(write_weights(w, net, o->dtype, &stored, &decode));
    size_t floats = 4 * B * D + work + decode;
    cm_export_printf(w,
        "/* the workspace: x, the noisy input, c_in x and F [block, D] each, the network's work,\n"
        " * the decoded matrix */\n"
        "#define @_NETWORK_BLOCK %zu\n#define @_NETWORK_WORK %zu\n#define @_WORKSPACE_FLOATS %zu\n"
        "typedef char @_workspace_check[$_WORKSPACE_BYTES == sizeof(float) * @_WORKSPACE_FLOATS ? 1 : -1];\n\n",
        B, work, floats);
    cm_export_printf(w, "%s", cm_export_writer_text(net));
    cm_export_printf(w, "%s", philox);
    write_coefficients(w, model);
    write_stages(w, model);
    cm_export_printf(w, "%s", sampler);
    *summary = (cm_export_summary){.param_count = cm_network_param_count(model->network),
                                   .stored_values = stored, .workspace_bytes = floats * sizeof(float),
                                   .block_rows = B};
    return cm_export_writer_status(w);
}

/* A copy of the writer's text (cm_malloc'ed). */
static cm_status take_text(char **out, const cm_export_writer *w) {
    const char *text = cm_export_writer_text(w);
    size_t length = strlen(text);
    *out = cm_malloc(length + 1, 1);
    if (!*out) return cm_error_set(CM_ERR_NOMEM, "export text (%zu bytes)", length);
    memcpy(*out, text, length + 1);
    return CM_OK;
}

static cm_status check_options(const cm_model *model, const cm_export_options *o) {
    const cm_network_type *type = model->config.network.type;
    if (model->config.method.kind == CM_METHOD_DSM)
        return cm_error_set(CM_ERR_INVALID, "export: a dsm model is a denoiser, not a consistency "
                            "function (export a ct, ict, lhw, cd or cd2 model)");
    if (!type->export_c)
        return cm_error_set(CM_ERR_UNSUPPORTED, "export: the %s network has no C export",
                            type->name);
    if (o->dtype >= CM_EXPORT_DTYPE_COUNT)
        return cm_error_set(CM_ERR_INVALID, "export: dtype %d", (int)o->dtype);
    const char *h = o->header_name;
    if (!h || !*h || strlen(h) > 255 || strpbrk(h, "\"\\\n@$*"))
        return cm_error_set(CM_ERR_INVALID, "export: header name '%.80s' (1 to 255 characters, "
                            "none of \" \\ @ $ * or a line break)", h ? h : "");
    return CM_OK;
}

cm_status cm_export_c(char **out_source, char **out_header, cm_export_summary *out_summary,
                      const cm_model *model, const cm_export_options *o) {
    *out_source = *out_header = NULL;
    CM_TRY(check_options(model, o));
    cm_export_writer *net = NULL, *banner = NULL, *source = NULL, *header = NULL;
    cm_export_summary summary = {0};
    cm_status status = cm_export_writer_create(&net, o->prefix);
    if (status == CM_OK) status = cm_export_writer_create(&banner, o->prefix);
    if (status == CM_OK) status = cm_export_writer_create(&source, o->prefix);
    if (status == CM_OK) status = cm_export_writer_create(&header, o->prefix);
    if (status == CM_OK) {
        cm_export_write_kernels(net);
        status = model->config.network.type->export_c(model->network, model->params, net);
    }
    if (status == CM_OK && cm_export_writer_block_rows(net) < 1)
        status = cm_error_set(CM_ERR_INVALID, "export: the %s network declared no block",
                              model->config.network.type->name);
    if (status == CM_OK) {
        write_banner(banner, model, o);
        status = cm_export_writer_status(banner);
    }
    if (status == CM_OK) {
        cm_export_printf(source, "%s", cm_export_writer_text(banner));
        status = write_source(source, net, model, o, &summary);
    }
    if (status == CM_OK) {
        write_header(header, model, o, summary.workspace_bytes / sizeof(float),
                     cm_export_writer_text(banner));
        status = cm_export_writer_status(header);
    }
    if (status == CM_OK) status = take_text(out_source, source);
    if (status == CM_OK) status = take_text(out_header, header);
    if (status != CM_OK) {
        cm_free(*out_source);
        *out_source = NULL;
    }
    cm_export_writer_free(net), cm_export_writer_free(banner);
    cm_export_writer_free(source), cm_export_writer_free(header);
    if (status == CM_OK && out_summary) *out_summary = summary;
    return status;
}

cm_status cm_export_write(cm_export_summary *out_summary, const cm_model *model,
                          const cm_export_options *options, const char *source_path,
                          const char *header_path) {
    char *source, *header;
    CM_TRY(cm_export_c(&source, &header, out_summary, model, options));
    cm_status status = cm_file_write_atomic(header_path, header, strlen(header));
    if (status == CM_OK) status = cm_file_write_atomic(source_path, source, strlen(source));
    cm_free(source);
    cm_free(header);
    return status;
}
