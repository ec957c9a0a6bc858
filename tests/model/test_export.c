/* test_export.c: the C export (export.h, network.h's writer): float16 conversion against known
 * bit patterns and exhaustively against its inverse, int8 quantisation on known answers, the
 * writer's prefix marks and checks, the texts of MLP and U-Net exports (their API, determinism,
 * the dtypes), refusals (dsm, long chains, float16 overflow, bad names) and allocation failures.
 * That the exported file compiles and draws cm sample's samples is tests/cli_export.sh's. */
#include "cm/export.h"

#include <math.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/network.h"
#include "test.h"

static float from_bits(uint32_t bits) {
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

static void test_f16_known_values(void) {
    const struct {
        float value;
        uint16_t half;
    } cases[] = {
        {1.0f, 0x3C00}, {-2.0f, 0xC000}, {0.0f, 0x0000}, {-0.0f, 0x8000}, {65504.0f, 0x7BFF},
        {65519.0f, 0x7BFF}, {65520.0f, 0x7C00}, {1e10f, 0x7C00}, {-1e10f, 0xFC00},
        {0x1p-24f, 0x0001}, {0x1p-25f, 0x0000},        /* a tie below the smallest: to even (0) */
        {0x1.8p-24f, 0x0002}, {0x1.8p-23f, 0x0003},   /* 1.5 units -> 2; 3 units exact */
        {0x1p-14f, 0x0400}, {0x1.ff8p-15f, 0x03FF}, /* the largest subnormal */
        {0x1.ffcp-15f, 0x0400},                     /* half a unit above it: to even, 2^-14 */
        {1.0f + 0x1p-11f, 0x3C00}, {1.0f + 0x1.8p-10f, 0x3C02}, /* ties to even */
        {1.0f + 0x1.01p-11f, 0x3C01}, {0.1f, 0x2E66}, {-0.333333343f, 0xB555},
        {INFINITY, 0x7C00},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        CM_CHECK(cm_export_f16_from_f32(cases[i].value) == cases[i].half, "f16(%a) = 0x%04x, want 0x%04x",
                 (double)cases[i].value, cm_export_f16_from_f32(cases[i].value), cases[i].half);
    CM_CHECK((cm_export_f16_from_f32(NAN) & 0x7C00) == 0x7C00 && (cm_export_f16_from_f32(NAN) & 0x3FF),
             "NaN stays NaN");
    CM_CHECK(cm_export_f32_from_f16(0x0001) == 0x1p-24f && cm_export_f32_from_f16(0x8000) == 0.0f &&
                 signbit(cm_export_f32_from_f16(0x8000)) && cm_export_f32_from_f16(0x7BFF) == 65504.0f &&
                 isinf(cm_export_f32_from_f16(0xFC00)),
             "decoding of subnormal, -0, max, -inf");
}

/* Every finite half decodes to a float that encodes back to it, and the float just above or
 * below the midpoint of two neighbours rounds to the nearer one. */
static void test_f16_exhaustive(void) {
    int bad = 0;
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7C00) == 0x7C00) continue; /* infinities and NaNs */
        float x = cm_export_f32_from_f16((uint16_t)h);
        if (cm_export_f16_from_f32(x) != h) bad++;
        if ((h & 0x7FFF) == 0x7BFF) continue;
        float next = cm_export_f32_from_f16((uint16_t)(h + 1)), middle = 0.5f * (x + next);
        uint32_t bits;
        memcpy(&bits, &middle, sizeof bits);
        if (cm_export_f16_from_f32(from_bits(bits - 1)) != h) bad++;
        if (cm_export_f16_from_f32(from_bits(bits + 1)) != h + 1) bad++;
    }
    CM_CHECK(bad == 0, "%d float16 round trips or roundings wrong", bad);
}

static void test_int8_quantise(void) {
    /* columns: [1, -0.5, 0.25] (scale 1/127), zeros, [-3, 3, 1] (scale 3/127) */
    const float values[9] = {1.0f, 0.0f, -3.0f, -0.5f, 0.0f, 3.0f, 0.25f, 0.0f, 1.0f};
    int8_t q[9];
    float scale[3];
    cm_export_int8_quantise(q, scale, values, 3, 3);
    CM_CHECK(scale[0] == 1.0f / 127.0f && scale[1] == 0.0f && scale[2] == 3.0f / 127.0f, "scales %g %g %g",
             scale[0], scale[1], scale[2]);
    const int8_t want[9] = {127, 0, -127, -64, 0, 127, 32, 0, 42}; /* -63.5 -> -64 (even), 31.75 -> 32 */
    CM_CHECK(memcmp(q, want, sizeof want) == 0, "q = %d %d %d %d %d %d %d %d %d", q[0], q[1], q[2],
             q[3], q[4], q[5], q[6], q[7], q[8]);
    for (int i = 0; i < 9; i++)
        CM_CHECK(fabsf(q[i] * scale[i % 3] - values[i]) <= 0.5f * scale[i % 3] * (1.0f + 1e-6f),
                 "value %d decodes within half a step", i);
}

static void test_writer(void) {
    cm_export_writer *w = NULL;
    const char *bad[] = {"", "9lives", "a-b", "a b", "x\n", "@",
                         "a_name_that_is_far_too_long_for_a_prefix_of_the_exported_symbols_xx"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CM_CHECK(cm_export_writer_create(&w, bad[i]) == CM_ERR_INVALID && !w, "prefix '%s' refused",
                 bad[i]);
    }
    CM_CHECK(cm_export_writer_create(&w, NULL) == CM_ERR_INVALID, "NULL prefix refused");
    CM_CHECK_OK(cm_export_writer_create(&w, "Moons_2"));
    if (!w) return;
    cm_export_printf(w, "int @_f(void); #define $_D %d\n", 7);
    CM_CHECK(strcmp(cm_export_writer_text(w), "int Moons_2_f(void); #define MOONS_2_D 7\n") == 0,
             "marks replaced: %s", cm_export_writer_text(w));
    for (int i = 0; i < 20000; i++) cm_export_printf(w, "%s", "@@@@@@@@@@"); /* grows past 64 KB */
    CM_CHECK(strlen(cm_export_writer_text(w)) == 41 + 20000 * 70, "length %zu",
             strlen(cm_export_writer_text(w)));
    float values[6] = {1, 2, 3, 4, 5, 6};
    size_t index = 99;
    CM_CHECK_OK(cm_export_matrix(w, &index, "m", values, 2, 3));
    values[0] = -1;
    CM_CHECK(index == 0 && cm_export_writer_matrix(w, 0).values[0] == 1.0f &&
                 cm_export_writer_matrix(w, 0).rows == 2 && cm_export_writer_matrix(w, 0).channels == 3,
             "the matrix is a copy with its shape");
    CM_CHECK_OK(cm_export_vector(w, &index, "v", values, 6));
    CM_CHECK(index == 0 && cm_export_writer_vector_count(w) == 1 && cm_export_writer_vector(w, 0).rows == 1,
             "vector 0");
    CM_CHECK(cm_export_matrix(w, &index, "empty", values, 0, 3) == CM_ERR_INVALID, "empty refused");
    CM_CHECK(cm_export_writer_status(w) == CM_OK, "status");
    CM_CHECK(cm_export_padded(1) == 8 && cm_export_padded(8) == 8 && cm_export_padded(9) == 16,
             "padding to the tile");
    cm_export_writer_free(w);
}

/* A model of `method` with random weights: an MLP on D = 3, or a small U-Net on 1 x 8 x 8. */
static void make_model(cm_model *model, cm_method method, int unet, size_t chain_T) {
    const cm_network_type *type = unet ? cm_network_type_find("unet") : cm_network_type_default();
    cm_train_config config = cm_train_config_default_network(method, type, unet ? 64 : 3);
    if (unet) {
        config.network.image_channels = 1;
        config.network.image_height = config.network.image_width = 8;
        CM_CHECK_OK(cm_network_config_set(&config.network, "base_channels", 8));
        CM_CHECK_OK(cm_network_config_set(&config.network, "groups", 2));
        CM_CHECK_OK(cm_network_config_set(&config.network, "res_blocks", 1));
    } else {
        CM_CHECK_OK(cm_network_config_set(&config.network, "width", 12));
        CM_CHECK_OK(cm_network_config_set(&config.network, "depth", 2));
    }
    if (chain_T) config.method.chain_T = chain_T;
    CM_CHECK_OK(cm_model_init(model, &config));
    cm_rng rng;
    cm_rng_init(&rng, 5);
    cm_network_init(model->network, model->params, &rng);
    for (size_t i = 0; i < cm_model_param_count(model); i++) /* every weight non-zero */
        model->params[i] += (float)(0.01 * cm_rng_normal(&rng));
    snprintf(model->data_source, sizeof model->data_source, "gauss:d=3 with an @, a $ and */");
}

static cm_export_options options(cm_export_dtype dtype) {
    return (cm_export_options){.prefix = "cmx", .dtype = dtype, .header_name = "cmx.h",
                               .model_name = "runs/x/model.safetensors"};
}

static void test_export_texts(void) {
    const cm_method methods[] = {CM_METHOD_ICT, CM_METHOD_LHW, CM_METHOD_CD2};
    for (int unet = 0; unet < 2; unet++)
        for (size_t m = 0; m < 3; m++) {
            cm_model model;
            make_model(&model, methods[m], unet, 0);
            for (int d = 0; d < CM_EXPORT_DTYPE_COUNT; d++) {
                char *source = NULL, *header = NULL, *again = NULL, *again_header = NULL;
                cm_export_summary summary;
                cm_export_options o = options((cm_export_dtype)d);
                CM_CHECK_OK(cm_export_c(&source, &header, &summary, &model, &o));
                CM_CHECK_OK(cm_export_c(&again, &again_header, NULL, &model, &o));
                if (!source || !again) break;
                CM_CHECK(strcmp(source, again) == 0 && strcmp(header, again_header) == 0,
                         "the same export twice");
                CM_CHECK(strstr(source, "int cmx_sample_levels(float *out, size_t n, uint64_t seed,") &&
                             strstr(source, "static void cmx_network_forward(") &&
                             strstr(source, "#include \"cmx.h\"") && !strstr(source, "@") &&
                             !strstr(source, "$"),
                         "%s %s %s: the source's API and marks", unet ? "unet" : "mlp",
                         cm_method_name(methods[m]), cm_export_dtype_name(o.dtype));
                char define[64];
                snprintf(define, sizeof define, "#define CMX_DIM %d", unet ? 64 : 3);
                CM_CHECK(strstr(header, define) && strstr(header, "int cmx_sample(float *out") &&
                             strstr(header, "#define CMX_WORKSPACE_BYTES"),
                         "the header's API");
                CM_CHECK((strstr(header, "#define CMX_CHAIN_T") != NULL) == (methods[m] == CM_METHOD_LHW),
                         "chain length in the header of lhw models only");
                CM_CHECK(summary.param_count == cm_model_param_count(&model) &&
                             summary.workspace_bytes > 0 && summary.block_rows > 0,
                         "summary");
                CM_CHECK((strstr(source, "static const int8_t cmx_int8[") != NULL) ==
                             (o.dtype == CM_EXPORT_INT8) &&
                             (strstr(source, "static const uint16_t cmx_f16[") != NULL) ==
                                 (o.dtype == CM_EXPORT_F16),
                         "the dtype's store");
                CM_CHECK(strstr(source, "trained on gauss:d=3 with an ?, a ? and *?.") != NULL,
                         "the data source made safe for a comment");
                cm_free(source), cm_free(header), cm_free(again), cm_free(again_header);
            }
            cm_model_free(&model);
        }
}

static void test_export_refusals(void) {
    cm_model model;
    char *source = (char *)1, *header = (char *)1;
    cm_export_options o = options(CM_EXPORT_F32);
    make_model(&model, CM_METHOD_DSM, 0, 0);
    CM_CHECK(cm_export_c(&source, &header, NULL, &model, &o) == CM_ERR_INVALID && !source && !header,
             "a dsm model is refused");
    CM_CHECK(strstr(cm_error_detail(), "denoiser") != NULL, "detail: %s", cm_error_detail());
    cm_model_free(&model);
    make_model(&model, CM_METHOD_LHW, 0, CM_EXPORT_MAX_CHAIN + 1);
    CM_CHECK(cm_export_c(&source, &header, NULL, &model, &o) == CM_ERR_INVALID, "a long chain");
    cm_model_free(&model);
    make_model(&model, CM_METHOD_ICT, 0, 0);
    const char *names[] = {"", "a\"b.h", "x@.h", "d$.h", "a\nb.h", "c*.h"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        cm_export_options bad = o;
        bad.header_name = names[i];
        CM_CHECK(cm_export_c(&source, &header, NULL, &model, &bad) == CM_ERR_INVALID,
                 "header name %zu refused", i);
    }
    cm_export_options bad = o;
    bad.prefix = "2x";
    CM_CHECK(cm_export_c(&source, &header, NULL, &model, &bad) == CM_ERR_INVALID, "bad prefix");
    model.params[5] = 70000.0f; /* beyond float16's 65504 */
    bad = options(CM_EXPORT_F16);
    CM_CHECK(cm_export_c(&source, &header, NULL, &model, &bad) == CM_ERR_INVALID &&
                 strstr(cm_error_detail(), "float16"),
             "a weight beyond float16: %s", cm_error_detail());
    bad = options(CM_EXPORT_INT8);
    CM_CHECK_OK(cm_export_c(&source, &header, NULL, &model, &bad)); /* int8 scales it */
    cm_free(source), cm_free(header);
    cm_model_free(&model);
    cm_export_dtype dtype;
    CM_CHECK(cm_export_dtype_parse(&dtype, "int8") == CM_OK && dtype == CM_EXPORT_INT8, "int8");
    CM_CHECK(cm_export_dtype_parse(&dtype, "f64") == CM_ERR_INVALID, "f64 is not a dtype");
}

/* Every allocation failing in turn: CM_ERR_NOMEM, nothing leaked, nothing returned. */
static void test_export_allocation_failures(void) {
    for (int unet = 0; unet < 2; unet++) {
        cm_model model;
        make_model(&model, CM_METHOD_ICT, unet, 0);
        cm_export_options o = options(CM_EXPORT_INT8);
        int failures = 0;
        for (long k = 0; k < 400; k++) {
            char *source = NULL, *header = NULL;
            long live = cm_alloc_live_count();
            cm_alloc_fail_after(k);
            cm_status status = cm_export_c(&source, &header, NULL, &model, &o);
            cm_alloc_fail_after(-1);
            if (status == CM_OK) {
                cm_free(source), cm_free(header);
                break;
            }
            failures++;
            CM_CHECK(status == CM_ERR_NOMEM && !source && !header, "failure %ld: %s", k,
                     cm_status_name(status));
            CM_CHECK(cm_alloc_live_count() == live, "failure %ld leaked %ld", k,
                     cm_alloc_live_count() - live);
        }
        CM_CHECK(failures > 5 && failures < 400, "%d allocation points", failures);
        cm_model_free(&model);
    }
}

const cm_test_case cm_tests_export[] = {
    {"f16_known_values", test_f16_known_values},
    {"f16_exhaustive", test_f16_exhaustive},
    {"int8_quantise", test_int8_quantise},
    {"writer", test_writer},
    {"export_texts", test_export_texts},
    {"export_refusals", test_export_refusals},
    {"export_allocation_failures", test_export_allocation_failures},
    {NULL, NULL},
};
