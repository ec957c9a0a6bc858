/* test_conv.c: the convolutions of src/nn/conv.h: known answers of the reference loops (zero
 * padding, stride, OIHW orientation, channels-last indexing), their gradients in double against
 * central differences, and the oneDNN plan (float, one row at a time) against the double
 * reference within the rounding bound of a float sum of n products (Higham: |error| <=
 * n u sum |terms|, u = 2^-24), for forward, backward-data and backward-weights. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cm/rng.h"
#include "nn/conv.h"
#include "test.h"

#define FD_STEP 1e-6
#define FD_TOLERANCE 1e-7 /* relative to max(1, |analytic|): the loss is linear in each value */

static void fill(double *x, size_t n, cm_rng *rng) {
    for (size_t i = 0; i < n; i++) x[i] = cm_rng_normal(rng);
}

static double dot(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static void test_conv_known_values(void) {
    /* a 3x3 kernel of ones on a 4x4 image of ones, bias 0.5: the count of in-image taps + 0.5 */
    double ones[16], kernel[9], bias[1] = {0.5}, out[16];
    for (int i = 0; i < 16; i++) ones[i] = 1;
    for (int i = 0; i < 9; i++) kernel[i] = 1;
    cm_conv2d_forward_f64(out, ones, kernel, bias, 1, 4, 4, 1, 1, 3, 1);
    CM_CHECK(out[0] == 4.5 && out[1] == 6.5 && out[5] == 9.5 && out[15] == 4.5,
             "stride 1: corner %g edge %g inside %g corner %g", out[0], out[1], out[5], out[15]);
    CM_CHECK(cm_conv2d_out_size(4, 3, 2) == 2 && cm_conv2d_out_size(28, 3, 2) == 14 &&
                 cm_conv2d_out_size(7, 3, 2) == 4 && cm_conv2d_out_size(5, 1, 1) == 5,
             "output sizes");
    /* stride 2: outputs centred on (0,0), (0,2), (2,0), (2,2) */
    cm_conv2d_forward_f64(out, ones, kernel, bias, 1, 4, 4, 1, 1, 3, 2);
    CM_CHECK(out[0] == 4.5 && out[1] == 6.5 && out[2] == 6.5 && out[3] == 9.5,
             "stride 2: %g %g %g %g", out[0], out[1], out[2], out[3]);
    /* orientation: a single 1 at (ky, kx) = (0, 2) reads inp(y - 1, x + 1) (PyTorch's
     * cross-correlation), from input channel 1 of 2 (OIHW) */
    double image[4 * 4 * 2], picker[2 * 9] = {0};
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++)
            for (int c = 0; c < 2; c++) image[(y * 4 + x) * 2 + c] = 100 * c + 10 * y + x;
    picker[1 * 9 + 0 * 3 + 2] = 1;
    cm_conv2d_forward_f64(out, image, picker, NULL, 1, 4, 4, 2, 1, 3, 1);
    CM_CHECK(out[2 * 4 + 1] == 100 + 10 * 1 + 2, "orientation: out(2,1) = %g, want 112",
             out[2 * 4 + 1]);
    CM_CHECK(out[0 * 4 + 1] == 0 && out[1 * 4 + 3] == 0, "padding reads zeros: %g %g", out[1],
             out[7]);
}

typedef struct {
    int B, H, W, C, OC, K, stride;
} conv_shape;

static void check_gradients(conv_shape s, cm_rng *rng) {
    int OH = cm_conv2d_out_size(s.H, s.K, s.stride), OW = cm_conv2d_out_size(s.W, s.K, s.stride);
    size_t n_in = (size_t)s.B * s.H * s.W * s.C, n_w = (size_t)s.OC * s.C * s.K * s.K;
    size_t n_out = (size_t)s.B * OH * OW * s.OC;
    double *inp = calloc(n_in, 8), *w = calloc(n_w, 8), *bias = calloc(s.OC, 8);
    double *R = calloc(n_out, 8), *out = calloc(n_out, 8);
    double *dinp = calloc(n_in, 8), *dw = calloc(n_w, 8), *dbias = calloc(s.OC, 8);
    fill(inp, n_in, rng), fill(w, n_w, rng), fill(bias, s.OC, rng), fill(R, n_out, rng);
    cm_conv2d_backward_f64(dinp, dw, dbias, R, inp, w, s.B, s.H, s.W, s.C, s.OC, s.K, s.stride);
    double *values[3] = {inp, w, bias}, *grads[3] = {dinp, dw, dbias};
    size_t sizes[3] = {n_in, n_w, (size_t)s.OC};
    int bad = 0;
    for (int which = 0; which < 3; which++)
        for (size_t i = 0; i < sizes[which]; i++) {
            double saved = values[which][i];
            values[which][i] = saved + FD_STEP;
            cm_conv2d_forward_f64(out, inp, w, bias, s.B, s.H, s.W, s.C, s.OC, s.K, s.stride);
            double plus = dot(out, R, n_out);
            values[which][i] = saved - FD_STEP;
            cm_conv2d_forward_f64(out, inp, w, bias, s.B, s.H, s.W, s.C, s.OC, s.K, s.stride);
            double minus = dot(out, R, n_out);
            values[which][i] = saved;
            double numeric = (plus - minus) / (2 * FD_STEP), analytic = grads[which][i];
            if (!(fabs(analytic - numeric) <= FD_TOLERANCE * fmax(1.0, fabs(analytic))) && bad++ < 5)
                CM_CHECK(0, "conv %dx%dx%d->%d K%d s%d: gradient %d[%zu] %.12g vs FD %.12g", s.H,
                         s.W, s.C, s.OC, s.K, s.stride, which, i, analytic, numeric);
        }
    CM_CHECK(bad == 0, "%d gradient entries off", bad);
    /* backward adds: a second call doubles */
    double before = dbias[0];
    cm_conv2d_backward_f64(NULL, NULL, dbias, R, inp, w, s.B, s.H, s.W, s.C, s.OC, s.K, s.stride);
    CM_CHECK_CLOSE(dbias[0], 2 * before, 1e-12 * fabs(before), "backward adds into dbias");
    free(inp), free(w), free(bias), free(R), free(out), free(dinp), free(dw), free(dbias);
}

static void test_conv_gradients(void) {
    cm_rng rng;
    cm_rng_init(&rng, cm_test_seed(11));
    conv_shape shapes[] = {{2, 5, 6, 3, 4, 3, 1}, {2, 6, 5, 3, 4, 3, 2}, {2, 7, 7, 2, 3, 3, 2},
                           {2, 5, 4, 3, 5, 1, 1}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) check_gradients(shapes[i], &rng);
}

/* |a - exact| <= (n + 2) u abs_sum for every entry, u = 2^-24; returns the entries off. */
static int count_beyond_bound(const float *a, const double *exact, const double *abs_sum,
                              size_t count, double n, const char *what, conv_shape s) {
    int bad = 0;
    double u = ldexp(1.0, -24), worst = 0;
    for (size_t i = 0; i < count; i++) {
        double bound = (n + 2) * u * abs_sum[i], error = fabs((double)a[i] - exact[i]);
        if (bound > 0) worst = fmax(worst, error / bound);
        if (!(error <= bound) && bad++ < 3)
            CM_CHECK(0, "%s %dx%dx%d->%d K%d s%d [%zu]: %.9g vs %.17g (bound %.3g)", what, s.H,
                     s.W, s.C, s.OC, s.K, s.stride, i, a[i], exact[i], bound);
    }
    fprintf(stdout, "    %-16s %3dx%-3d %3d->%-3d K%d s%d: worst error %.3f of the bound\n", what,
            s.H, s.W, s.C, s.OC, s.K, s.stride, worst);
    return bad;
}

static void to_double(double *out, const float *in, size_t n, int absolute) {
    for (size_t i = 0; i < n; i++) out[i] = absolute ? fabs((double)in[i]) : (double)in[i];
}

/* One shape: two rows through a plan against the double reference. */
static void check_plan(conv_shape s, cm_rng *rng) {
    int OH = cm_conv2d_out_size(s.H, s.K, s.stride), OW = cm_conv2d_out_size(s.W, s.K, s.stride);
    size_t row_in = (size_t)s.H * s.W * s.C, row_out = (size_t)OH * OW * s.OC, B = 2;
    size_t n_in = B * row_in, n_out = B * row_out, n_w = (size_t)s.OC * s.C * s.K * s.K;
    size_t most = n_in > n_out ? n_in : n_out;
    most = most > n_w ? most : n_w;
    float *inp = malloc(n_in * 4), *w = malloc(n_w * 4), *bias = malloc(s.OC * 4);
    float *dout = malloc(n_out * 4), *out = malloc(n_out * 4), *dinp = malloc(n_in * 4);
    float *dw = malloc(n_w * 4), *dw_again = malloc(n_w * 4), *dbias = calloc(s.OC, 4);
    double *a = calloc(most, 8), *b = calloc(most, 8), *c = calloc(s.OC, 8);
    double *exact = calloc(most, 8), *abs_sum = calloc(most, 8), *exact_bias = calloc(s.OC, 8),
           *abs_bias = calloc(s.OC, 8);
    cm_rng_normal_fill_f32(rng, inp, n_in), cm_rng_normal_fill_f32(rng, w, n_w);
    cm_rng_normal_fill_f32(rng, bias, s.OC), cm_rng_normal_fill_f32(rng, dout, n_out);
    for (size_t i = 0; i < n_in; i++) dinp[i] = NAN; /* backward-data overwrites */
    cm_onednn onednn;
    cm_conv_plan *plan = NULL;
    void *scratchpad = NULL;
    CM_CHECK_OK(cm_onednn_create(&onednn));
    CM_CHECK_OK(cm_conv_plan_create(&plan, &onednn, s.H, s.W, s.C, s.OC, s.K, s.stride));
    if (!plan) goto done;
    fprintf(stdout, "    implementation: %s\n", cm_conv_plan_implementation(plan));
    scratchpad = malloc(cm_conv_plan_scratchpad_bytes(plan));
    CM_CHECK_OK(cm_conv_plan_bind_scratchpad(plan, scratchpad));
    CM_CHECK_OK(cm_conv_plan_load_weights(plan, w));
    for (size_t r = 0; r < B; r++) {
        CM_CHECK_OK(cm_conv_plan_forward(plan, out + r * row_out, inp + r * row_in, bias));
        CM_CHECK_OK(cm_conv_plan_backward_data(plan, dinp + r * row_in, dout + r * row_out));
        CM_CHECK_OK(cm_conv_plan_backward_weights(plan, dbias, dout + r * row_out,
                                                  inp + r * row_in, r == 0));
    }
    for (size_t i = 0; i < n_w; i++) dw[i] = NAN, dw_again[i] = NAN;
    CM_CHECK_OK(cm_conv_plan_store_weight_gradient(plan, dw));
    /* forward: n = C K K products and the bias */
    to_double(a, inp, n_in, 0), to_double(b, w, n_w, 0), to_double(c, bias, s.OC, 0);
    cm_conv2d_forward_f64(exact, a, b, c, (int)B, s.H, s.W, s.C, s.OC, s.K, s.stride);
    to_double(a, inp, n_in, 1), to_double(b, w, n_w, 1), to_double(c, bias, s.OC, 1);
    cm_conv2d_forward_f64(abs_sum, a, b, c, (int)B, s.H, s.W, s.C, s.OC, s.K, s.stride);
    count_beyond_bound(out, exact, abs_sum, n_out, (double)s.C * s.K * s.K + 1, "forward", s);
    /* backward-data: n <= OC K K products per input value */
    memset(exact, 0, most * 8), memset(abs_sum, 0, most * 8);
    to_double(a, dout, n_out, 0), to_double(b, w, n_w, 0);
    cm_conv2d_backward_f64(exact, NULL, NULL, a, NULL, b, (int)B, s.H, s.W, s.C, s.OC, s.K, s.stride);
    to_double(a, dout, n_out, 1), to_double(b, w, n_w, 1);
    cm_conv2d_backward_f64(abs_sum, NULL, NULL, a, NULL, b, (int)B, s.H, s.W, s.C, s.OC, s.K,
                           s.stride);
    count_beyond_bound(dinp, exact, abs_sum, n_in, (double)s.OC * s.K * s.K, "backward data", s);
    /* backward-weights: OH OW products per row, then the running sum over the B rows */
    memset(exact, 0, most * 8), memset(abs_sum, 0, most * 8);
    double *inp_d = calloc(n_in, 8), *dout_d = calloc(n_out, 8);
    to_double(inp_d, inp, n_in, 0), to_double(dout_d, dout, n_out, 0);
    cm_conv2d_backward_f64(NULL, exact, exact_bias, dout_d, inp_d, NULL, (int)B, s.H, s.W, s.C,
                           s.OC, s.K, s.stride);
    to_double(inp_d, inp, n_in, 1), to_double(dout_d, dout, n_out, 1);
    cm_conv2d_backward_f64(NULL, abs_sum, abs_bias, dout_d, inp_d, NULL, (int)B, s.H, s.W, s.C,
                           s.OC, s.K, s.stride);
    double n_sum = (double)OH * OW + (double)B;
    count_beyond_bound(dw, exact, abs_sum, n_w, n_sum, "backward weights", s);
    count_beyond_bound(dbias, exact_bias, abs_bias, (size_t)s.OC, n_sum, "backward bias", s);
    /* a new running sum (first = 1) forgets the old one: the same bits again */
    float *dbias_again = calloc(s.OC, 4);
    for (size_t r = 0; r < B; r++)
        CM_CHECK_OK(cm_conv_plan_backward_weights(plan, dbias_again, dout + r * row_out,
                                                  inp + r * row_in, r == 0));
    free(dbias_again);
    CM_CHECK_OK(cm_conv_plan_store_weight_gradient(plan, dw_again));
    CM_CHECK(memcmp(dw, dw_again, n_w * 4) == 0, "a second weight-gradient sum differs");
    free(inp_d), free(dout_d);
done:
    cm_conv_plan_free(plan);
    cm_onednn_destroy(&onednn);
    free(scratchpad), free(inp), free(w), free(bias), free(dout), free(out), free(dinp), free(dw);
    free(dw_again), free(dbias), free(a), free(b), free(c), free(exact), free(abs_sum);
    free(exact_bias), free(abs_bias);
}

static void test_conv_onednn_matches_reference(void) {
    cm_rng rng;
    cm_rng_init(&rng, cm_test_seed(12));
    /* the U-Net's shapes at 28x28 (conv_in, 3x3, stride 2, concatenated input, 1x1 skip, the
     * output conv), odd sizes, and more of the thin loops' (one output channel, 16 k input
     * channels) and of the shapes beside them that stay with oneDNN */
    conv_shape shapes[] = {{2, 28, 28, 1, 32, 3, 1},  {2, 28, 28, 32, 32, 3, 1},
                           {2, 28, 28, 32, 32, 3, 2}, {2, 14, 14, 128, 64, 3, 1},
                           {2, 28, 28, 96, 32, 1, 1}, {2, 28, 28, 32, 1, 3, 1},
                           {2, 7, 5, 3, 5, 3, 2},     {2, 6, 9, 5, 3, 3, 1},
                           {2, 7, 5, 48, 1, 3, 1},    {2, 1, 1, 16, 1, 3, 1},
                           {2, 6, 9, 37, 1, 3, 1},    {2, 9, 8, 16, 1, 3, 2}};
    for (size_t i = 0; i < sizeof shapes / sizeof shapes[0]; i++) check_plan(shapes[i], &rng);
}

static void test_conv_plan_rejects_bad_shapes(void) {
    cm_onednn onednn;
    cm_conv_plan *plan = (cm_conv_plan *)&onednn; /* cleared on failure */
    CM_CHECK_OK(cm_onednn_create(&onednn));
    CM_CHECK(cm_conv_plan_create(&plan, &onednn, 8, 8, 4, 4, 2, 1) == CM_ERR_INVALID && !plan,
             "even kernel accepted");
    CM_CHECK(cm_conv_plan_create(&plan, &onednn, 8, 8, 4, 4, 3, 3) == CM_ERR_INVALID,
             "stride 3 accepted");
    CM_CHECK(cm_conv_plan_create(&plan, &onednn, 0, 8, 4, 4, 3, 1) == CM_ERR_INVALID,
             "empty image accepted");
    cm_onednn_destroy(&onednn);
}

const cm_test_case cm_tests_conv[] = {
    {"known_values", test_conv_known_values},
    {"gradients", test_conv_gradients},
    {"onednn_matches_reference", test_conv_onednn_matches_reference},
    {"plan_rejects_bad_shapes", test_conv_plan_rejects_bad_shapes},
    {NULL, NULL},
};
