/* test_unet_layers.c: GroupNorm, nearest upsampling, channel concatenation and the per-channel
 * shift of src/nn/unet_layers.h: known answers, gradients in double against central
 * differences, backward adding into gradients, the float kernels against the double ones, and
 * the fused GroupNorm + SiLU kernels against the plain kernels they fuse (bit for bit);
 * per-channel sums in pixel order. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cm/rng.h"
#include "nn/layers.h"
#include "nn/unet_layers.h"
#include "test.h"

#define FD_STEP 1e-6
#define FD_TOLERANCE 1e-6 /* relative to max(1, |analytic|); FD error is O(h^2) ~ 1e-12 */

static void fill(double *x, size_t n, cm_rng *rng) {
    for (size_t i = 0; i < n; i++) x[i] = cm_rng_normal(rng);
}

static double dot(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

/* A layer under test: forward(context) writes out[n_out] from the arrays it perturbs. */
typedef void (*forward_fn)(void *context, double *out);

/* Compare grads[k][i] with central differences of dot(forward(), R) in values[k][i], for every
 * entry of every array; returns the entries off (reporting the first few). */
static int check_fd(const char *what, forward_fn forward, void *context, double *out,
                    const double *R, size_t n_out, double **values, double **grads,
                    const size_t *sizes, int arrays) {
    int bad = 0;
    for (int k = 0; k < arrays; k++)
        for (size_t i = 0; i < sizes[k]; i++) {
            double saved = values[k][i];
            values[k][i] = saved + FD_STEP;
            forward(context, out);
            double plus = dot(out, R, n_out);
            values[k][i] = saved - FD_STEP;
            forward(context, out);
            double minus = dot(out, R, n_out);
            values[k][i] = saved;
            double numeric = (plus - minus) / (2 * FD_STEP);
            if (!(fabs(grads[k][i] - numeric) <= FD_TOLERANCE * fmax(1.0, fabs(grads[k][i]))) &&
                bad++ < 5)
                CM_CHECK(0, "%s: gradient %d[%zu] %.12g vs FD %.12g", what, k, i, grads[k][i],
                         numeric);
        }
    return bad;
}

typedef struct {
    double *inp, *weight, *bias, *mean, *rstd;
    int B, HW, C, G;
} norm_case;

static void norm_forward(void *context, double *out) {
    norm_case *n = context;
    cm_groupnorm_forward_f64(out, n->mean, n->rstd, n->inp, n->weight, n->bias, n->B, n->HW, n->C,
                             n->G);
}

static void check_groupnorm(int B, int HW, int C, int G, cm_rng *rng) {
    size_t n = (size_t)B * HW * C;
    norm_case nc = {calloc(n, 8), calloc(C, 8), calloc(C, 8), calloc(B * G, 8), calloc(B * G, 8),
                    B, HW, C, G};
    double *out = calloc(n, 8), *R = calloc(n, 8), *dinp = calloc(n, 8), *dw = calloc(C, 8),
           *db = calloc(C, 8);
    fill(nc.inp, n, rng), fill(nc.weight, C, rng), fill(nc.bias, C, rng), fill(R, n, rng);
    for (size_t i = 0; i < n; i++) nc.inp[i] = 3 + 2 * nc.inp[i]; /* off-centre, not unit */
    norm_forward(&nc, out);
    cm_groupnorm_backward_f64(dinp, dw, db, R, nc.inp, nc.mean, nc.rstd, nc.weight, B, HW, C, G);
    double *values[3] = {nc.inp, nc.weight, nc.bias}, *grads[3] = {dinp, dw, db};
    size_t sizes[3] = {n, (size_t)C, (size_t)C};
    char what[64];
    snprintf(what, sizeof what, "GroupNorm B%d HW%d C%d G%d", B, HW, C, G);
    CM_CHECK(check_fd(what, norm_forward, &nc, out, R, n, values, grads, sizes, 3) == 0,
             "%s: gradient entries off", what);
    free(nc.inp), free(nc.weight), free(nc.bias), free(nc.mean), free(nc.rstd);
    free(out), free(R), free(dinp), free(dw), free(db);
}

static void test_groupnorm_gradients(void) {
    cm_rng rng;
    cm_rng_init(&rng, cm_test_seed(21));
    check_groupnorm(2, 6, 8, 4, &rng);
    check_groupnorm(2, 5, 8, 1, &rng);
    check_groupnorm(1, 7, 6, 6, &rng); /* one channel per group */
    check_groupnorm(2, 4, 12, 3, &rng);
}

static void test_groupnorm_known_values(void) {
    /* weight 1, bias 0: every (row, group) has mean 0 and mean square var / (var + eps) */
    enum { B = 2, HW = 9, C = 8, G = 2 };
    cm_rng rng;
    cm_rng_init(&rng, 22);
    double inp[B * HW * C], out[B * HW * C], weight[C], bias[C] = {0}, mean[B * G], rstd[B * G];
    fill(inp, B * HW * C, &rng);
    for (int c = 0; c < C; c++) weight[c] = 1;
    for (int i = 0; i < B * HW * C; i++) inp[i] = 5 + 0.5 * inp[i];
    cm_groupnorm_forward_f64(out, mean, rstd, inp, weight, bias, B, HW, C, G);
    for (int b = 0; b < B; b++)
        for (int g = 0; g < G; g++) {
            double s = 0, s2 = 0, m = 0, v = 0;
            int count = HW * (C / G);
            for (int p = 0; p < HW; p++)
                for (int c = g * (C / G); c < (g + 1) * (C / G); c++) m += inp[(b * HW + p) * C + c];
            m /= count;
            for (int p = 0; p < HW; p++)
                for (int c = g * (C / G); c < (g + 1) * (C / G); c++) {
                    double d = inp[(b * HW + p) * C + c] - m, o = out[(b * HW + p) * C + c];
                    v += d * d, s += o, s2 += o * o;
                }
            v /= count;
            CM_CHECK_CLOSE(mean[b * G + g], m, 1e-14, "saved mean");
            CM_CHECK_CLOSE(rstd[b * G + g], 1 / sqrt(v + CM_GROUPNORM_EPSILON), 1e-12, "saved rstd");
            CM_CHECK_CLOSE(s / count, 0, 1e-14, "normalised mean");
            CM_CHECK_CLOSE(s2 / count, v / (v + CM_GROUPNORM_EPSILON), 1e-13, "normalised square");
        }
    /* rows are independent: row 1 alone gives the same values */
    double alone[HW * C], mean1[G], rstd1[G];
    cm_groupnorm_forward_f64(alone, mean1, rstd1, inp + HW * C, weight, bias, 1, HW, C, G);
    CM_CHECK(memcmp(alone, out + HW * C, sizeof alone) == 0, "row 1 depends on row 0");
}

typedef struct {
    double *a, *b;
    int B, H, W, C, C2;
} shape_case;

static void upsample_forward(void *context, double *out) {
    shape_case *s = context;
    cm_upsample_forward_f64(out, s->a, s->B, s->H, s->W, s->C);
}

static void concat_forward(void *context, double *out) {
    shape_case *s = context;
    cm_concat_forward_f64(out, s->a, s->b, s->B, s->H * s->W, s->C, s->C2);
}

/* out = x + shift per channel, with x = s->a and shift = s->b */
static void channel_add_forward(void *context, double *out) {
    shape_case *s = context;
    memcpy(out, s->a, (size_t)s->B * s->H * s->W * s->C * 8);
    cm_channel_add_forward_f64(out, s->b, s->B, s->H * s->W, s->C);
}

static void test_upsample_concat_shift(void) {
    enum { B = 2, H = 3, W = 2, C = 3, C2 = 2 };
    cm_rng rng;
    cm_rng_init(&rng, cm_test_seed(23));
    double a[B * H * W * C], b[B * H * W * C2], out[B * 4 * H * W * (C + C2)], R[sizeof out / 8];
    double da[B * H * W * C], db[B * H * W * C2];
    fill(a, B * H * W * C, &rng), fill(b, B * H * W * C2, &rng), fill(R, sizeof R / 8, &rng);
    shape_case s = {a, b, B, H, W, C, C2};
    /* upsampling: known values, then gradient */
    upsample_forward(&s, out);
    for (int y = 0; y < 2 * H; y++)
        for (int x = 0; x < 2 * W; x++)
            for (int c = 0; c < C; c++)
                CM_CHECK(out[(((size_t)1 * 2 * H + y) * 2 * W + x) * C + c] ==
                             a[((1 * H + y / 2) * W + x / 2) * C + c],
                         "upsample (1, %d, %d, %d)", y, x, c);
    memset(da, 0, sizeof da);
    cm_upsample_backward_f64(da, R, B, H, W, C);
    double *v1[1] = {a}, *g1[1] = {da};
    size_t n1[1] = {B * H * W * C};
    CM_CHECK(check_fd("upsample", upsample_forward, &s, out, R, B * 4 * H * W * C, v1, g1, n1, 1) == 0,
             "upsample gradient");
    /* concatenation: [a, b] per pixel */
    concat_forward(&s, out);
    CM_CHECK(out[5 * (C + C2) + 1] == a[5 * C + 1] && out[5 * (C + C2) + C + 1] == b[5 * C2 + 1],
             "concat layout");
    memset(da, 0, sizeof da), memset(db, 0, sizeof db);
    cm_concat_backward_f64(da, db, R, B, H * W, C, C2);
    double *v2[2] = {a, b}, *g2[2] = {da, db};
    size_t n2[2] = {B * H * W * C, B * H * W * C2};
    CM_CHECK(check_fd("concat", concat_forward, &s, out, R, B * H * W * (C + C2), v2, g2, n2, 2) == 0,
             "concat gradient");
    /* per-channel shift: b holds B x C shifts */
    channel_add_forward(&s, out);
    CM_CHECK(out[(1 * H * W + 4) * C + 2] == a[(1 * H * W + 4) * C + 2] + b[1 * C + 2], "shift");
    double dshift[B * C] = {0}, dx[B * H * W * C] = {0};
    cm_channel_add_backward_f64(dshift, R, B, H * W, C);
    for (int i = 0; i < B * H * W * C; i++) dx[i] = R[i];
    double *v3[2] = {a, b}, *g3[2] = {dx, dshift};
    size_t n3[2] = {B * H * W * C, B * C};
    CM_CHECK(check_fd("shift", channel_add_forward, &s, out, R, B * H * W * C, v3, g3, n3, 2) == 0,
             "shift gradient");
    /* backward adds: a second call doubles */
    double before = dshift[3];
    cm_channel_add_backward_f64(dshift, R, B, H * W, C);
    CM_CHECK_CLOSE(dshift[3], 2 * before, 1e-14 * fabs(before), "shift backward adds");
    before = da[4];
    cm_upsample_backward_f64(da, R, B, H, W, C);
    CM_CHECK(da[4] != before, "upsample backward adds");
}

/* The float kernels are the double ones in float: GroupNorm agrees to a few float ulps of its
 * unit-scale output (sums of up to HW C / G = 784 values: rounding ~ 784 2^-24 ~ 5e-5 worst). */
static void test_float_matches_double(void) {
    enum { B = 2, HW = 196, C = 32, G = 8 };
    cm_rng rng;
    cm_rng_init(&rng, cm_test_seed(24));
    static float x[B * HW * C], out[B * HW * C], dout[B * HW * C], dx[B * HW * C];
    static double xd[B * HW * C], outd[B * HW * C], doutd[B * HW * C], dxd[B * HW * C];
    float w[C], bias[C], mean[B * G], rstd[B * G], dw[C] = {0}, dbias[C] = {0};
    double wd[C], biasd[C], meand[B * G], rstdd[B * G], dwd[C] = {0}, dbiasd[C] = {0};
    cm_rng_normal_fill_f32(&rng, x, B * HW * C), cm_rng_normal_fill_f32(&rng, dout, B * HW * C);
    cm_rng_normal_fill_f32(&rng, w, C), cm_rng_normal_fill_f32(&rng, bias, C);
    for (int i = 0; i < B * HW * C; i++) x[i] = 2 + x[i], xd[i] = x[i], doutd[i] = dout[i];
    for (int c = 0; c < C; c++) wd[c] = w[c], biasd[c] = bias[c];
    memset(dx, 0, sizeof dx), memset(dxd, 0, sizeof dxd);
    cm_groupnorm_forward(out, mean, rstd, x, w, bias, B, HW, C, G);
    cm_groupnorm_forward_f64(outd, meand, rstdd, xd, wd, biasd, B, HW, C, G);
    cm_groupnorm_backward(dx, dw, dbias, dout, x, mean, rstd, w, B, HW, C, G);
    cm_groupnorm_backward_f64(dxd, dwd, dbiasd, doutd, xd, meand, rstdd, wd, B, HW, C, G);
    double worst_out = 0, worst_dx = 0, worst_dw = 0;
    for (int i = 0; i < B * HW * C; i++) {
        worst_out = fmax(worst_out, fabs(out[i] - outd[i]));
        worst_dx = fmax(worst_dx, fabs(dx[i] - dxd[i]));
    }
    for (int c = 0; c < C; c++) worst_dw = fmax(worst_dw, fabs(dw[c] - dwd[c]) / (1 + fabs(dwd[c])));
    CM_CHECK(worst_out < 1e-4 && worst_dx < 1e-4 && worst_dw < 1e-4,
             "float GroupNorm off: out %.3g, dx %.3g, dweight %.3g", worst_out, worst_dx, worst_dw);
}

/* Per-channel sums over pixels in float, bit for bit, in pixel order (their definition,
 * unet_layers.h): the shift gradient's sums, and GroupNorm's statistics with one channel per
 * group and 32 pixels (a power of two, so that the mean is the channel sum / 32 exactly). At 51
 * channels, so that the kernels' channel blocks of 32, 16 and 1 all run: a block that reordered
 * a sum or mixed channels would change bits. */
static void test_channel_sums_pixel_order(void) {
    enum { HW = 32, C = 51, G = C };
    cm_rng rng;
    cm_rng_init(&rng, cm_test_seed(26));
    static float x[HW * C];
    float mean[G], rstd[G], sums[C] = {0};
    for (int i = 0; i < HW * C; i++) x[i] = (float)(1.5 + 2 * cm_rng_normal(&rng));
    cm_channel_add_backward(sums, x, 1, HW, C);
    cm_groupnorm_statistics(mean, rstd, x, HW, C, G);
    int bad_sums = 0, bad_stats = 0;
    for (int c = 0; c < C; c++) {
        float sum = 0, squares = 0;
        for (int p = 0; p < HW; p++) sum += x[p * C + c];
        float expected_mean = (float)(sum / (double)HW);
        for (int p = 0; p < HW; p++) {
            float d = x[p * C + c] - expected_mean;
            squares += d * d;
        }
        float expected_rstd = (float)(1.0 / sqrt((double)squares / HW + CM_GROUPNORM_EPSILON));
        bad_sums += sums[c] != sum;
        bad_stats += mean[c] != expected_mean || rstd[c] != expected_rstd;
    }
    CM_CHECK(bad_sums == 0, "%d of %d channel sums differ from the pixel-order sums", bad_sums, C);
    CM_CHECK(bad_stats == 0, "%d of %d channels' statistics differ from the pixel-order sums",
             bad_stats, C);
}

/* ---- fused GroupNorm + SiLU: the plain kernels' values, bit for bit, in float and double */

/* 51 channels: the kernels' channel blocks of 32, 16 and 1 (unet_layers_template.h) */
#define FUSED_HW 49
#define FUSED_C 51
#define FUSED_G 3
#define FUSED_N (FUSED_HW * FUSED_C)

/* Inputs of the fused kernels: off-centre values with both signs, some large (SiLU's tails). */
#define FUSED_CHECK(REAL, SUFFIX)                                                                  \
    static int fused_check##SUFFIX(cm_rng *rng) {                                                \
        enum { HW = FUSED_HW, C = FUSED_C, G = FUSED_G, N = FUSED_N };                         \
        static REAL x[N], x2[N], shift[C], w[C], b[C], d_act[N], norm[N], act[N], act2[N];      \
        static REAL d_norm[N], d_norm2[N], dx[N], dx2[N], dw[C], dw2[C], db[C], db2[C];         \
        static REAL sums[C], sums2[C], stats[2 * G], stats2[2 * G];                             \
        int bad = 0;                                                                            \
        for (int i = 0; i < N; i++) {                                                           \
            x[i] = (REAL)(0.5 + 3 * cm_rng_normal(rng));                                        \
            d_act[i] = (REAL)cm_rng_normal(rng);                                                \
        }                                                                                       \
        x[7] = (REAL)60, x[11] = (REAL)-90; /* SiLU's saturated ends */                           \
        for (int c = 0; c < C; c++) {                                                           \
            shift[c] = (REAL)cm_rng_normal(rng), w[c] = (REAL)(1 + 0.3 * cm_rng_normal(rng));   \
            b[c] = (REAL)cm_rng_normal(rng);                                                    \
        }                                                                                       \
        /* statistics after the shift */                                                        \
        memcpy(x2, x, sizeof x);                                                                \
        cm_channel_add_forward##SUFFIX(x, shift, 1, HW, C);                                     \
        cm_groupnorm_statistics##SUFFIX(stats, stats + G, x, HW, C, G);                         \
        cm_groupnorm_statistics_shifted##SUFFIX(stats2, stats2 + G, x2, shift, HW, C, G);       \
        bad += memcmp(x, x2, sizeof x) != 0 || memcmp(stats, stats2, sizeof stats) != 0;       \
        /* forward */                                                                           \
        cm_groupnorm_apply##SUFFIX(norm, x, stats, stats + G, w, b, HW, C, G);                  \
        cm_silu_forward##SUFFIX(act, norm, N);                                                  \
        cm_groupnorm_silu_forward##SUFFIX(act2, x, stats, stats + G, w, b, HW, C, G);           \
        bad += 2 * (memcmp(act, act2, sizeof act) != 0);                                       \
        /* backward, adding (overwrite 0) and overwriting with the input gradient's sums */     \
        for (int overwrite = 0; overwrite < 2; overwrite++) {                                   \
            for (int i = 0; i < N; i++) dx[i] = dx2[i] = overwrite ? (REAL)NAN : (REAL)0.25;    \
            for (int c = 0; c < C; c++) dw[c] = dw2[c] = db[c] = db2[c] = (REAL)0.5;            \
            memset(sums, 0, sizeof sums), memset(sums2, 0, sizeof sums2);                       \
            memset(d_norm, 0, sizeof d_norm);                                                   \
            cm_silu_backward##SUFFIX(d_norm, d_act, norm, N);                                   \
            if (overwrite) memset(dx, 0, sizeof dx);                                            \
            cm_groupnorm_backward##SUFFIX(dx, dw, db, d_norm, x, stats, stats + G, w, 1, HW, C, G); \
            cm_channel_add_backward##SUFFIX(sums, dx, 1, HW, C);                                \
            cm_groupnorm_silu_backward##SUFFIX(dx2, dw2, db2, d_norm2, sums2, d_act, x, stats,   \
                                               stats + G, w, b, HW, C, G, overwrite);           \
            for (int i = 0; i < N; i++) bad += 4 * (dx[i] != dx2[i] || d_norm[i] != d_norm2[i]); \
            for (int c = 0; c < C; c++)                                                         \
                bad += 4 * (dw[c] != dw2[c] || db[c] != db2[c] ||                               \
                            (overwrite && sums[c] != sums2[c]));                                \
        }                                                                                       \
        return bad;                                                                             \
    }
FUSED_CHECK(float, )
FUSED_CHECK(double, _f64)

typedef struct {
    double *inp, *weight, *bias, stats[2 * FUSED_G];
} fused_case;

/* act = SiLU(GroupNorm(inp)), the statistics from inp */
static void fused_forward(void *context, double *out) {
    fused_case *f = context;
    cm_groupnorm_statistics_f64(f->stats, f->stats + FUSED_G, f->inp, FUSED_HW, FUSED_C, FUSED_G);
    cm_groupnorm_silu_forward_f64(out, f->inp, f->stats, f->stats + FUSED_G, f->weight, f->bias,
                                  FUSED_HW, FUSED_C, FUSED_G);
}

static void test_fused_kernels(void) {
    cm_rng rng;
    cm_rng_init(&rng, cm_test_seed(25));
    /* mismatches weighed 1 statistics, 2 forward, 4 backward */
    int bad = fused_check(&rng);
    CM_CHECK(bad == 0, "float: fused kernels differ from the plain ones (code %d)", bad);
    bad = fused_check_f64(&rng);
    CM_CHECK(bad == 0, "double: fused kernels differ from the plain ones (code %d)", bad);
    /* gradient of the fused backward (overwrite and add) against central differences */
    static double inp[FUSED_N], out[FUSED_N], R[FUSED_N], d_norm[FUSED_N], dinp[FUSED_N];
    double weight[FUSED_C], bias[FUSED_C], dw[FUSED_C] = {0}, db[FUSED_C] = {0};
    fill(inp, FUSED_N, &rng), fill(R, FUSED_N, &rng), fill(weight, FUSED_C, &rng);
    fill(bias, FUSED_C, &rng);
    fused_case f = {inp, weight, bias, {0}};
    fused_forward(&f, out);
    for (int i = 0; i < FUSED_N; i++) dinp[i] = NAN;
    cm_groupnorm_silu_backward_f64(dinp, dw, db, d_norm, NULL, R, inp, f.stats, f.stats + FUSED_G,
                                   weight, bias, FUSED_HW, FUSED_C, FUSED_G, 1);
    double *values[3] = {inp, weight, bias}, *grads[3] = {dinp, dw, db};
    size_t sizes[3] = {FUSED_N, FUSED_C, FUSED_C};
    CM_CHECK(check_fd("GroupNorm + SiLU", fused_forward, &f, out, R, FUSED_N, values, grads,
                      sizes, 3) == 0, "fused GroupNorm + SiLU gradient entries off");
}

const cm_test_case cm_tests_unet_layers[] = {
    {"groupnorm_gradients", test_groupnorm_gradients},
    {"groupnorm_known_values", test_groupnorm_known_values},
    {"upsample_concat_shift", test_upsample_concat_shift},
    {"float_matches_double", test_float_matches_double},
    {"channel_sums_pixel_order", test_channel_sums_pixel_order},
    {"fused_kernels", test_fused_kernels},
    {NULL, NULL},
};
