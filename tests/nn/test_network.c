/* test_network.c: the contract of network.h, checked for every registered network type through
 * the interface only: parameter and input gradients of the double twin against central
 * differences (a capped, seeded selection of parameters), backward overwrites (two backward
 * passes give the same gradient, not twice it), rows are independent (a row evaluated alone
 * equals the same row in a block), the float path agrees with the double one, init is a
 * function of the generator, the tensor list tiles the parameter vector, and the FLOP count is
 * linear in the rows. A new type gets all of this by its registry line; small settings for the
 * slow ones are set below by key. The rows are 1 x 4 x 4 images. */
#include "cm/network.h"

#include <math.h>
#include <string.h>

#include "cm/alloc.h"
#include "test.h"

#define FD_STEP 1e-6
#define FD_TOLERANCE 1e-6   /* relative to max(1, |analytic|): central differences, O(h^2) */
#define CHECKED_PARAMS 160  /* parameters checked per type (all of them when fewer) */
#define ROWS 3

/* Small settings for quick checks, by type and key (types not listed keep their defaults). */
static const struct {
    const char *type, *key;
    double value;
} small_settings[] = {
    {"mlp", "width", 7}, {"mlp", "depth", 2}, {"mlp", "embed", 4},
    {"mlp", "embed_max_frequency", 30},
    {"unet", "base_channels", 4}, {"unet", "levels", 2}, {"unet", "res_blocks", 1},
    {"unet", "groups", 2}, {"unet", "embed", 4}, {"unet", "embed_max_frequency", 30},
};

/* Rows of 1 x 4 x 4 images (dimension 16): every type takes them (the MLP ignores the shape). */
static cm_network_config small_config(const cm_network_type *type, size_t levels) {
    cm_network_config config = cm_network_config_default(type, 16, levels);
    config.image_channels = 1, config.image_height = 4, config.image_width = 4;
    for (size_t i = 0; i < sizeof small_settings / sizeof small_settings[0]; i++)
        if (strcmp(small_settings[i].type, type->name) == 0)
            CM_CHECK_OK(cm_network_config_set(&config, small_settings[i].key,
                                              small_settings[i].value));
    return config;
}

static double dot(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* sum(F(x; p) * R) for the double twin. */
static double objective(const cm_network *n, cm_network_workspace *ws, const double *p,
                        const double *x, const double *c, const double *R, double *out) {
    size_t D = cm_network_config_of(n)->dim;
    cm_network_forward_f64(n, out, p, ws, x, c, ROWS);
    return dot(out, R, ROWS * D);
}

static void check_gradients(const cm_network *n, double *p, const double *c, cm_rng *rng) {
    size_t D = cm_network_config_of(n)->dim, P = cm_network_param_count(n);
    cm_network_workspace *ws = NULL;
    CM_CHECK_OK(cm_network_workspace_alloc_f64(&ws, n, ROWS));
    double *x = cm_malloc(4 * ROWS * D + 2 * P, sizeof(double));
    if (!ws || !x) return;
    double *R = x + ROWS * D, *out = R + ROWS * D, *dx = out + ROWS * D, *dp = dx + ROWS * D,
           *dp2 = dp + P;
    cm_rng_normal_fill_f64(rng, x, ROWS * D);
    cm_rng_normal_fill_f64(rng, R, ROWS * D);
    objective(n, ws, p, x, c, R, out);
    memset(dp, 0x7f, P * sizeof(double)); /* garbage: backward must overwrite, not add */
    cm_network_backward_f64(n, dp, dx, p, ws, R, ROWS);
    cm_network_backward_f64(n, dp2, NULL, p, ws, R, ROWS);
    CM_CHECK(memcmp(dp, dp2, P * sizeof(double)) == 0, "%s: a second backward differs",
             cm_network_config_of(n)->type->name);
    size_t stride = P > CHECKED_PARAMS ? P / CHECKED_PARAMS : 1, worst_at = 0;
    double worst = 0;
    for (size_t i = cm_rng_below(rng, stride); i < P; i += stride) {
        double saved = p[i];
        p[i] = saved + FD_STEP;
        double plus = objective(n, ws, p, x, c, R, out);
        p[i] = saved - FD_STEP;
        double minus = objective(n, ws, p, x, c, R, out);
        p[i] = saved;
        double error = fabs((plus - minus) / (2 * FD_STEP) - dp[i]) / fmax(1.0, fabs(dp[i]));
        if (error > worst) worst = error, worst_at = i;
    }
    CM_CHECK(worst <= FD_TOLERANCE, "%s: parameter %zu gradient off by %.3g (relative)",
             cm_network_config_of(n)->type->name, worst_at, worst);
    worst = 0;
    for (size_t i = 0; i < ROWS * D; i++) {
        double saved = x[i];
        x[i] = saved + FD_STEP;
        double plus = objective(n, ws, p, x, c, R, out);
        x[i] = saved - FD_STEP;
        double minus = objective(n, ws, p, x, c, R, out);
        x[i] = saved;
        worst = fmax(worst, fabs((plus - minus) / (2 * FD_STEP) - dx[i]) / fmax(1.0, fabs(dx[i])));
    }
    CM_CHECK(worst <= FD_TOLERANCE, "%s: input gradient off by %.3g (relative)",
             cm_network_config_of(n)->type->name, worst);
    cm_free(x);
    cm_network_workspace_free(ws);
}

/* Row r alone equals row r of the block (double: to rounding), and the float path agrees with
 * the double one to float precision. */
static void check_rows_and_precision(const cm_network *n, const float *pf, const double *p,
                                     const double *c, cm_rng *rng) {
    size_t D = cm_network_config_of(n)->dim, L = cm_network_config_of(n)->noise_levels;
    cm_network_workspace *ws = NULL, *wf = NULL;
    CM_CHECK_OK(cm_network_workspace_alloc_f64(&ws, n, ROWS));
    CM_CHECK_OK(cm_network_workspace_alloc(&wf, n, ROWS));
    double x[ROWS * 64], out[ROWS * 64], alone[64];
    float xf[ROWS * 64], cf[ROWS * 2], outf[ROWS * 64];
    if (!ws || !wf || D > 64) return;
    cm_rng_normal_fill_f64(rng, x, ROWS * D);
    cm_network_forward_f64(n, out, p, ws, x, c, ROWS);
    for (size_t r = 0; r < ROWS; r++) {
        cm_network_forward_f64(n, alone, p, ws, x + r * D, c + r * L, 1);
        for (size_t i = 0; i < D; i++)
            CM_CHECK(fabs(alone[i] - out[r * D + i]) <= 1e-12 * (1 + fabs(out[r * D + i])),
                     "row %zu evaluated alone: %.17g vs %.17g", r, alone[i], out[r * D + i]);
    }
    for (size_t i = 0; i < ROWS * D; i++) xf[i] = (float)x[i];
    for (size_t i = 0; i < ROWS * L; i++) cf[i] = (float)c[i];
    cm_network_forward(n, outf, pf, wf, xf, cf, ROWS);
    for (size_t i = 0; i < ROWS * D; i++)
        CM_CHECK(fabs(outf[i] - out[i]) <= 1e-4 * (1 + fabs(out[i])), "float %.9g vs double %.9g",
                 outf[i], out[i]);
    cm_network_workspace_free(ws);
    cm_network_workspace_free(wf);
}

/* The tensors tile [0, P) in order; init is deterministic in the generator. */
static void check_layout_and_init(const cm_network *n) {
    size_t P = cm_network_param_count(n), next = 0;
    for (size_t t = 0; t < cm_network_tensor_count(n); t++) {
        const cm_tensor_layout *tensor = cm_network_tensor(n, t);
        size_t count = 1;
        for (size_t d = 0; d < tensor->ndim; d++) count *= tensor->shape[d];
        CM_CHECK(tensor->offset == next && tensor->count == count, "tensor %s at %zu (want %zu)",
                 tensor->name, tensor->offset, next);
        CM_CHECK(cm_network_tensor_find(n, tensor->name) == tensor, "tensor %s not found by name",
                 tensor->name);
        next += count;
    }
    CM_CHECK(next == P, "tensors cover %zu of %zu parameters", next, P);
    float *a = cm_malloc(2 * P, sizeof(float));
    if (!a) return;
    cm_rng r1, r2;
    cm_rng_init(&r1, 5), cm_rng_init(&r2, 5);
    cm_network_init(n, a, &r1);
    cm_network_init(n, a + P, &r2);
    CM_CHECK(memcmp(a, a + P, P * sizeof(float)) == 0, "init is not a function of the generator");
    double f1 = cm_network_forward_flops(n, 1), f8 = cm_network_forward_flops(n, 8);
    CM_CHECK(f1 > 0 && fabs(f8 - 8 * f1) <= 1e-9 * f8, "flops %g for 1 row, %g for 8", f1, f8);
    cm_free(a);
}

static void test_every_type_meets_the_contract(void) {
    for (size_t t = 0; t < cm_network_type_count(); t++) {
        const cm_network_type *type = cm_network_type_at(t);
        CM_CHECK(cm_network_type_find(type->name) == type, "registry lookup of %s", type->name);
        for (size_t levels = 1; levels <= 2; levels++) {
            cm_network_config config = small_config(type, levels);
            cm_network *n = NULL;
            CM_CHECK_OK(cm_network_create(&n, &config));
            if (!n) continue;
            size_t P = cm_network_param_count(n);
            float *pf = cm_malloc(P, sizeof(float));
            double *p = cm_malloc(P, sizeof(double)), c[ROWS * 2];
            cm_rng rng;
            cm_rng_init(&rng, 17 + t);
            if (pf && p) {
                for (size_t i = 0; i < P; i++) pf[i] = (float)(0.4 * cm_rng_normal(&rng));
                for (size_t i = 0; i < P; i++) p[i] = pf[i];
                for (size_t i = 0; i < ROWS * levels; i++) c[i] = -1.5 + 0.6 * (double)i;
                check_layout_and_init(n);
                check_gradients(n, p, c, &rng);
                check_rows_and_precision(n, pf, p, c, &rng);
            }
            cm_free(pf);
            cm_free(p);
            cm_network_free(n);
        }
    }
}

/* Unknown types and settings are refused with the valid names. */
static void test_registry_refuses_unknown(void) {
    const cm_network_type *type = NULL;
    CM_CHECK(cm_network_type_parse(&type, "transformer") == CM_ERR_INVALID && !type,
             "unknown type accepted");
    CM_CHECK(strstr(cm_error_detail(), "mlp") != NULL, "detail lists no valid type: %s",
             cm_error_detail());
    cm_network_config config = cm_network_config_default(cm_network_type_default(), 2, 1);
    CM_CHECK(cm_network_config_set(&config, "no_such_setting", 1) == CM_ERR_INVALID,
             "unknown setting accepted");
}

const cm_test_case cm_tests_network[] = {
    {"every_type_meets_the_contract", test_every_type_meets_the_contract},
    {"registry_refuses_unknown", test_registry_refuses_unknown},
    {NULL, NULL},
};
