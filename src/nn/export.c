/* export.c: the writer through which a network type exports its forward pass as C99 text
 * (network.h, "export to C"): a growing text buffer with '@' standing for the symbol prefix ('$'
 * for it in upper case), the weight matrices and vectors the text refers to by index, and the
 * kernels every exported network may call (a register-tiled product, SiLU, the Fourier features
 * of layers.h), which the model part writes before the network's text. The kernels are not
 * cm's (no BLAS, no oneDNN: an export depends on libm alone); how they are written and why is
 * said above them. The sampler around the network, the weight storage in float32, float16 or
 * int8 and the header are the model part's (src/model/export.c); the writer keeps the weights
 * as float until then.
 */
#include "cm/network.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cm/alloc.h"

#define EXPORT_TILE 8
#define EXPORT_TEXT_INITIAL 65536

typedef struct {
    char *name;
    float *values;
    size_t rows, channels;
} export_tensor;

typedef struct {
    export_tensor *items;
    size_t count, capacity;
} export_list;

struct cm_export_writer {
    char prefix[64], upper[64]; /* the prefix, and in upper case */
    char *text; /* NUL-terminated */
    size_t length, capacity;
    cm_status status; /* the first failure of a printf (sticky) */
    size_t block_rows, work_floats;
    export_list matrices, vectors;
};

/* The kernels of network.h's list, '@' for the prefix and '$' for it in upper case, in two
 * forms. With GCC or clang (__GNUC__) they are written on the compilers' vector extensions:
 * a register tile of 4 rows x 2 vectors of 4 floats (SSE2, the x86-64 baseline), or 8 rows x
 * 1 vector of 8 floats when __AVX__ is defined (-march=native and the like), and SiLU on whole
 * vectors; otherwise (or with $_PLAIN_C defined) as plain C99 loops. Why not plain loops
 * alone: GCC 12 at -O2 kept the tile's accumulators in memory (13-20 GFLOP/s) and at -O3
 * vectorised the reduction loop with permutations (1-4 GFLOP/s for some tile shapes), while the
 * vector form measured 40 GFLOP/s at -O2 and 80-100 at -O3 -march=native (docs/export.md).
 * exp(-|x|) in SiLU is src/nn/layers.c's (Cody-Waite reduction, Cephes' polynomial, 2^n from its
 * bits in two halves, about 1 ulp, 0 beyond |x| = 104). */
static const char kernels_head[] =
    "/* ---- kernels (src/nn/export.c): a register tile for products, SiLU, Fourier features. With\n"
    " * GCC or clang they use the vector extensions (4 floats, or 8 with AVX); define $_PLAIN_C for\n"
    " * the plain C99 loops any compiler takes. */\n"
    "\n"
    "static int32_t @_bits(float x)\n"
    "{\n"
    "    int32_t bits;\n"
    "    memcpy(&bits, &x, sizeof bits);\n"
    "    return bits;\n"
    "}\n"
    "\n"
    "static float @_from_bits(int32_t bits)\n"
    "{\n"
    "    float x;\n"
    "    memcpy(&x, &bits, sizeof x);\n"
    "    return x;\n"
    "}\n"
    "\n"
    "/* silu(x) = x / (1 + e^-x) with e = exp(-|x|) = m scale: x >= 0: x / (1 + e); x < 0:\n"
    " * x e / (1 + e), x e rounded once as (x m) scale. exp(-|x|) by Cody-Waite reduction and\n"
    " * Cephes' polynomial, 2^n built from its bits in two halves (0 beyond |x| = 104). */\n"
    "static float @_silu1(float x)\n"
    "{\n"
    "    int32_t a_bits = @_bits(x) & 0x7FFFFFFF, zero_bits = 0x42D00000; /* 104.0f */\n"
    "    int32_t beyond = -(int32_t)(a_bits > zero_bits);\n"
    "    float t = @_from_bits((a_bits ^ ((a_bits ^ zero_bits) & beyond)) | (int32_t)0x80000000);\n"
    "    float k = t * 1.44269504088896341f + 12582912.0f, n = k - 12582912.0f; /* 1.5 2^23 */\n"
    "    float r = t - n * 0.693359375f;\n"
    "    r = r - n * -2.12194440e-4f;\n"
    "    float p = 1.9875691500e-4f;\n"
    "    p = p * r + 1.3981999507e-3f;\n"
    "    p = p * r + 8.3334519073e-3f;\n"
    "    p = p * r + 4.1665795894e-2f;\n"
    "    p = p * r + 1.6666665459e-1f;\n"
    "    p = p * r + 5.0000001201e-1f;\n"
    "    p = p * (r * r) + r + 1.0f;\n"
    "    int32_t n_int = @_bits(k) - 0x4B400000, half = n_int / 2, rest = n_int - half;\n"
    "    float scale1 = @_from_bits((half + 127) * 8388608), scale2 = @_from_bits((rest + 127) * 8388608);\n"
    "    float m = @_from_bits(@_bits(p * scale1) & ~beyond), e = m * scale2, xe = x * m * scale2;\n"
    "    int32_t negative = -(int32_t)((uint32_t)@_bits(x) >> 31); /* all ones when x < 0 */\n"
    "    float numerator = @_from_bits(@_bits(x) ^ ((@_bits(xe) ^ @_bits(x)) & negative));\n"
    "    return numerator / (1.0f + e);\n"
    "}\n"
    "\n"
    "/* Fourier features of a noise level: out[k] = sin(f_k c), out[E/2 + k] = cos(f_k c), k < E/2,\n"
    " * f_k = max_frequency^(k / (E/2 - 1)) (src/nn/layers.h), phases in double. */\n"
    "static void @_fourier(float *out, float c_noise, int E, double max_frequency)\n"
    "{\n"
    "    int half = E / 2;\n"
    "    double log_step = half > 1 ? log(max_frequency) / (double)(half - 1) : 0.0;\n"
    "    for (int k = 0; k < half; k++) {\n"
    "        double phase = exp(log_step * k) * (double)c_noise;\n"
    "        out[k] = (float)sin(phase);\n"
    "        out[half + k] = (float)cos(phase);\n"
    "    }\n"
    "}\n"
    "\n"
    "#if defined(__GNUC__) && !defined($_PLAIN_C)\n"
    "#if defined(__AVX__)\n"
    "#define @_LANES 8\n"
    "#define @_TILE_ROWS 8\n"
    "#else\n"
    "#define @_LANES 4\n"
    "#define @_TILE_ROWS 4\n"
    "#endif\n"
    "typedef float @_lanes __attribute__((vector_size(4 * @_LANES)));\n"
    "typedef int32_t @_int_lanes __attribute__((vector_size(4 * @_LANES)));\n"
    "\n"
    "/* @_silu1 on every lane */\n"
    "static @_lanes @_silu_lanes(@_lanes x)\n"
    "{\n"
    "    @_int_lanes x_bits = (@_int_lanes)x, zero_bits = x_bits * 0 + 0x42D00000;\n"
    "    @_int_lanes a_bits = x_bits & 0x7FFFFFFF, beyond = a_bits > zero_bits;\n"
    "    @_lanes t = (@_lanes)((a_bits ^ ((a_bits ^ zero_bits) & beyond)) | (int32_t)0x80000000);\n"
    "    @_lanes k = t * 1.44269504088896341f + 12582912.0f, n = k - 12582912.0f;\n"
    "    @_lanes r = t - n * 0.693359375f;\n"
    "    r = r - n * -2.12194440e-4f;\n"
    "    @_lanes p = r * 0.0f + 1.9875691500e-4f;\n"
    "    p = p * r + 1.3981999507e-3f;\n"
    "    p = p * r + 8.3334519073e-3f;\n"
    "    p = p * r + 4.1665795894e-2f;\n"
    "    p = p * r + 1.6666665459e-1f;\n"
    "    p = p * r + 5.0000001201e-1f;\n"
    "    p = p * (r * r) + r + 1.0f;\n"
    "    @_int_lanes n_int = (@_int_lanes)k - 0x4B400000, half = n_int / 2, rest = n_int - half;\n"
    "    @_lanes scale1 = (@_lanes)((half + 127) * 8388608), scale2 = (@_lanes)((rest + 127) * 8388608);\n"
    "    @_lanes m = (@_lanes)((@_int_lanes)(p * scale1) & ~beyond), e = m * scale2;\n"
    "    @_lanes xe = x * m * scale2;\n"
    "    @_int_lanes negative = x_bits < x_bits * 0; /* all ones when x < 0 */\n"
    "    return (@_lanes)(x_bits ^ (((@_int_lanes)xe ^ x_bits) & negative)) / (1.0f + e);\n"
    "}\n"
    "\n"
    "/* x[n] = silu(x[n]) in place. */\n"
    "static void @_silu(float *x, size_t n)\n"
    "{\n"
    "    size_t whole = n - n % @_LANES;\n"
    "    for (size_t i = 0; i < whole; i += @_LANES) {\n"
    "        @_lanes v;\n"
    "        memcpy(&v, x + i, sizeof v);\n"
    "        v = @_silu_lanes(v);\n"
    "        memcpy(x + i, &v, sizeof v);\n"
    "    }\n"
    "    for (size_t i = whole; i < n; i++) x[i] = @_silu1(x[i]);\n"
    "}\n"
    "\n";

static const char tile_comment[] =
    "/* acc[i][j] = bias[j] + sum_{t < taps} sum_{c < C} in[i][offset[t] + c] w[(t C + c) ldw + j]\n"
    " * for @_TILE_ROWS inputs i (row pointers) and 8 output channels j; rows i < rows_valid and\n"
    " * channels j < cols_valid are stored at out[i ldo + j]. A linear layer is taps = 1, offset\n"
    " * {0}; a K x K convolution of a zero-padded channels-last image is taps = K K, offset[t] the\n"
    " * shift of tap t, w [K K C, ldw]. */\n"
    "static void @_tile(float *restrict out, size_t ldo, size_t rows_valid, size_t cols_valid,\n"
    "                   const float *const *in, const ptrdiff_t *offset, int taps, int C,\n"
    "                   const float *restrict w, size_t ldw, const float *restrict bias)\n"
    "{\n";

static const char kernels_plain[] =
    "#else\n"
    "#define @_TILE_ROWS 4\n"
    "\n"
    "static void @_silu(float *x, size_t n)\n"
    "{\n"
    "    for (size_t i = 0; i < n; i++) x[i] = @_silu1(x[i]);\n"
    "}\n"
    "\n"
    "%s" /* tile_comment */
    "    float acc[4][8];\n"
    "    for (int i = 0; i < 4; i++)\n"
    "        for (int j = 0; j < 8; j++) acc[i][j] = bias[j];\n"
    "    for (int t = 0; t < taps; t++) {\n"
    "        const float *restrict wt = w + (size_t)t * (size_t)C * ldw;\n"
    "        for (int c = 0; c < C; c++)\n"
    "            for (int i = 0; i < 4; i++) {\n"
    "                float x = in[i][offset[t] + c];\n"
    "                for (int j = 0; j < 8; j++) acc[i][j] += x * wt[(size_t)c * ldw + j];\n"
    "            }\n"
    "    }\n"
    "    for (size_t i = 0; i < rows_valid; i++)\n"
    "        for (size_t j = 0; j < cols_valid; j++) out[i * ldo + j] = acc[i][j];\n"
    "}\n"
    "#endif\n"
    "\n"
    "/* out[r ldo + o] = bias[o] + sum_c in[r ldi + c] w[c ldw + o] for r < rows, o < OC; w and\n"
    " * bias padded with zeros to ldw (a multiple of 8) columns. A short last tile of rows repeats\n"
    " * the last row (its results are not stored). */\n"
    "static void @_gemm(float *out, size_t ldo, const float *in, size_t ldi, size_t rows, size_t C,\n"
    "                   const float *w, size_t ldw, const float *bias, size_t OC)\n"
    "{\n"
    "    const ptrdiff_t zero = 0;\n"
    "    for (size_t r = 0; r < rows; r += @_TILE_ROWS) {\n"
    "        const float *p[@_TILE_ROWS];\n"
    "        size_t valid = rows - r < @_TILE_ROWS ? rows - r : @_TILE_ROWS;\n"
    "        for (size_t i = 0; i < @_TILE_ROWS; i++) p[i] = in + (r + (i < valid ? i : valid - 1)) * ldi;\n"
    "        for (size_t o = 0; o < OC; o += 8)\n"
    "            @_tile(out + r * ldo + o, ldo, valid, OC - o < 8 ? OC - o : 8, p, &zero, 1,\n"
    "                   (int)C, w + o, ldw, bias + o);\n"
    "    }\n"
    "}\n"
    "\n";

/* The vector tile: `rows` rows x `vectors` vectors of `lanes` floats (rows x 8 outputs), its
 * accumulators named a<i>_<v> so that they live in registers. */
static void write_vector_tile(cm_export_writer *w, int rows, int vectors, int lanes) {
    cm_export_printf(w, "%s", tile_comment);
    cm_export_printf(w, "    @_lanes b[%d], ", vectors);
    for (int i = 0; i < rows; i++)
        for (int v = 0; v < vectors; v++)
            cm_export_printf(w, "a%d_%d%s", i, v, i == rows - 1 && v == vectors - 1 ? ";\n" : ", ");
    cm_export_printf(w, "    float acc[%d][8];\n", rows);
    for (int v = 0; v < vectors; v++)
        cm_export_printf(w, "    memcpy(&b[%d], bias + %d, sizeof b[%d]);\n", v, v * lanes, v);
    for (int i = 0; i < rows; i++)
        for (int v = 0; v < vectors; v++) cm_export_printf(w, "    a%d_%d = b[%d];\n", i, v, v);
    cm_export_printf(w, "    for (int t = 0; t < taps; t++) {\n"
                     "        const float *restrict wt = w + (size_t)t * (size_t)C * ldw;\n");
    for (int i = 0; i < rows; i++)
        cm_export_printf(w, "        const float *p%d = in[%d] + offset[t];\n", i, i);
    cm_export_printf(w, "        for (int c = 0; c < C; c++) {\n"
                     "            @_lanes ");
    for (int v = 0; v < vectors; v++) cm_export_printf(w, "w%d%s", v, v == vectors - 1 ? ";\n" : ", ");
    for (int v = 0; v < vectors; v++)
        cm_export_printf(w, "            memcpy(&w%d, wt + (size_t)c * ldw + %d, sizeof w%d);\n",
                         v, v * lanes, v);
    for (int i = 0; i < rows; i++) {
        cm_export_printf(w, "            {\n                const float x = p%d[c];\n", i);
        for (int v = 0; v < vectors; v++) cm_export_printf(w, "                a%d_%d += x * w%d;\n", i, v, v);
        cm_export_printf(w, "            }\n");
    }
    cm_export_printf(w, "        }\n    }\n");
    for (int i = 0; i < rows; i++)
        for (int v = 0; v < vectors; v++)
            cm_export_printf(w, "    memcpy(acc[%d] + %d, &a%d_%d, sizeof a%d_%d);\n", i, v * lanes,
                             i, v, i, v);
    cm_export_printf(w, "    for (size_t i = 0; i < rows_valid; i++)\n"
                     "        for (size_t j = 0; j < cols_valid; j++) out[i * ldo + j] = acc[i][j];\n"
                     "}\n");
}

void cm_export_write_kernels(cm_export_writer *w) {
    cm_export_printf(w, "%s", kernels_head);
    cm_export_printf(w, "#if @_LANES == 8\n");
    write_vector_tile(w, 8, 1, 8);
    cm_export_printf(w, "#else\n");
    write_vector_tile(w, 4, 2, 4);
    cm_export_printf(w, "#endif\n");
    cm_export_printf(w, kernels_plain, tile_comment);
}

size_t cm_export_padded(size_t n) { return (n + EXPORT_TILE - 1) / EXPORT_TILE * EXPORT_TILE; }

/* Make room for `more` bytes and the NUL. */
static cm_status reserve(cm_export_writer *w, size_t more) {
    if (w->length + more + 1 <= w->capacity) return CM_OK;
    size_t capacity = w->capacity ? w->capacity : EXPORT_TEXT_INITIAL;
    while (capacity < w->length + more + 1) {
        if (capacity > ((size_t)1 << 40)) return cm_error_set(CM_ERR_NOMEM, "export text too long");
        capacity *= 2;
    }
    char *grown = cm_malloc(capacity, 1);
    if (!grown) return cm_error_set(CM_ERR_NOMEM, "export text (%zu bytes)", capacity);
    if (w->length) memcpy(grown, w->text, w->length);
    grown[w->length] = '\0';
    cm_free(w->text);
    w->text = grown;
    w->capacity = capacity;
    return CM_OK;
}

/* Append `text` with every '@' replaced by the prefix and every '$' by it in upper case. */
static void append(cm_export_writer *w, const char *text, size_t length) {
    if (w->status != CM_OK) return;
    size_t prefix = strlen(w->prefix), marks = 0;
    for (size_t i = 0; i < length; i++) marks += text[i] == '@' || text[i] == '$';
    cm_status status = reserve(w, length + marks * prefix);
    if (status != CM_OK) {
        w->status = status;
        return;
    }
    for (size_t i = 0; i < length; i++) {
        if (text[i] == '@' || text[i] == '$') {
            const char *name = text[i] == '@' ? w->prefix : w->upper;
            memcpy(w->text + w->length, name, prefix);
            w->length += prefix;
        } else {
            w->text[w->length++] = text[i];
        }
    }
    w->text[w->length] = '\0';
}

static int is_identifier(const char *name) {
    if (!name || !(*name == '_' || (*name >= 'a' && *name <= 'z') || (*name >= 'A' && *name <= 'Z')))
        return 0;
    for (const char *p = name; *p; p++)
        if (!(*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9')))
            return 0;
    return 1;
}

cm_status cm_export_writer_create(cm_export_writer **out, const char *prefix) {
    *out = NULL;
    cm_export_writer probe;
    if (!is_identifier(prefix) || strlen(prefix) >= sizeof probe.prefix)
        return cm_error_set(CM_ERR_INVALID, "export prefix '%.80s' must be a C identifier of at "
                            "most %zu characters", prefix ? prefix : "", sizeof probe.prefix - 1);
    cm_export_writer *w = cm_calloc(1, sizeof *w);
    if (!w) return cm_error_set(CM_ERR_NOMEM, "export writer");
    snprintf(w->prefix, sizeof w->prefix, "%s", prefix);
    for (size_t i = 0; i <= strlen(prefix); i++)
        w->upper[i] = prefix[i] >= 'a' && prefix[i] <= 'z' ? (char)(prefix[i] - 'a' + 'A') : prefix[i];
    *out = w;
    return CM_OK;
}


static void list_free(export_list *list) {
    for (size_t i = 0; i < list->count; i++) {
        cm_free(list->items[i].name);
        cm_free(list->items[i].values);
    }
    cm_free(list->items);
}

void cm_export_writer_free(cm_export_writer *w) {
    if (!w) return;
    list_free(&w->matrices);
    list_free(&w->vectors);
    cm_free(w->text);
    cm_free(w);
}

void cm_export_printf(cm_export_writer *w, const char *format, ...) {
    if (w->status != CM_OK) return;
    char small[1024];
    va_list args;
    va_start(args, format);
    int length = vsnprintf(small, sizeof small, format, args);
    va_end(args);
    if (length < 0) {
        w->status = cm_error_set(CM_ERR_INVALID, "export: unformattable text");
        return;
    }
    if ((size_t)length < sizeof small) {
        append(w, small, (size_t)length);
        return;
    }
    char *large = cm_malloc((size_t)length + 1, 1);
    if (!large) {
        w->status = cm_error_set(CM_ERR_NOMEM, "export text");
        return;
    }
    va_start(args, format);
    vsnprintf(large, (size_t)length + 1, format, args);
    va_end(args);
    append(w, large, (size_t)length);
    cm_free(large);
}

void cm_export_set_forward(cm_export_writer *w, size_t block_rows, size_t work_floats) {
    w->block_rows = block_rows;
    w->work_floats = work_floats;
}

static cm_status list_add(export_list *list, size_t *out_index, const char *name,
                          const float *values, size_t rows, size_t channels) {
    if (rows == 0 || channels == 0 || rows > ((size_t)1 << 40) / channels)
        return cm_error_set(CM_ERR_INVALID, "export: tensor %s of %zu x %zu values", name, rows,
                            channels);
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? 2 * list->capacity : 32;
        export_tensor *grown = cm_malloc(capacity, sizeof *grown);
        if (!grown) return cm_error_set(CM_ERR_NOMEM, "export tensor list");
        if (list->count) memcpy(grown, list->items, list->count * sizeof *grown);
        cm_free(list->items);
        list->items = grown;
        list->capacity = capacity;
    }
    export_tensor t = {.rows = rows, .channels = channels};
    t.name = cm_malloc(strlen(name) + 1, 1);
    t.values = cm_malloc(rows * channels, sizeof(float));
    if (!t.name || !t.values) {
        cm_free(t.name);
        cm_free(t.values);
        return cm_error_set(CM_ERR_NOMEM, "export tensor %s", name);
    }
    memcpy(t.name, name, strlen(name) + 1);
    memcpy(t.values, values, rows * channels * sizeof(float));
    *out_index = list->count;
    list->items[list->count++] = t;
    return CM_OK;
}

cm_status cm_export_matrix(cm_export_writer *w, size_t *out_index, const char *name,
                           const float *values, size_t rows, size_t channels) {
    return list_add(&w->matrices, out_index, name, values, rows, channels);
}

cm_status cm_export_vector(cm_export_writer *w, size_t *out_index, const char *name,
                           const float *values, size_t count) {
    return list_add(&w->vectors, out_index, name, values, 1, count);
}

cm_status cm_export_writer_status(const cm_export_writer *w) { return w->status; }
const char *cm_export_writer_text(const cm_export_writer *w) { return w->text; }
size_t cm_export_writer_block_rows(const cm_export_writer *w) { return w->block_rows; }
size_t cm_export_writer_work_floats(const cm_export_writer *w) { return w->work_floats; }
size_t cm_export_writer_matrix_count(const cm_export_writer *w) { return w->matrices.count; }
size_t cm_export_writer_vector_count(const cm_export_writer *w) { return w->vectors.count; }

static cm_export_tensor view(const export_list *list, size_t index) {
    if (index >= list->count) return (cm_export_tensor){0};
    const export_tensor *t = &list->items[index];
    return (cm_export_tensor){.name = t->name, .values = t->values, .rows = t->rows,
                              .channels = t->channels};
}

cm_export_tensor cm_export_writer_matrix(const cm_export_writer *w, size_t index) {
    return view(&w->matrices, index);
}

cm_export_tensor cm_export_writer_vector(const cm_export_writer *w, size_t index) {
    return view(&w->vectors, index);
}
