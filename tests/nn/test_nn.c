/* test_nn.c: gradient checks in double of every layer, of the whole MLP (driven through the
 * network interface, network.h), of the consistency function and of both losses, against
 * central finite differences; agreement of the float kernels (the training path) with the
 * double ones; the float path's padding of short blocks and its allocation failures. White-box: the layer kernels (nn/layers.h) and the MLP's layout (nn/mlp.h). */
#include "cm/network.h"

#include <math.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/consistency.h"
#include "nn/layers.h"
#include "nn/mlp.h"
#include "test.h"

#define FD_STEP 1e-6
#define FD_TOLERANCE 1e-6 /* relative to max(1, |analytic|): FD error is O(h^2) ~ 1e-12 here */

static void fill(double *x, size_t n, cm_rng *rng, double scale) {
    for (size_t i = 0; i < n; i++) x[i] = scale * cm_rng_normal(rng);
}

static double dot(const double *a, const double *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += a[i] * b[i];
    return s;
}

static int agree(double analytic, double numeric) {
    return fabs(analytic - numeric) <= FD_TOLERANCE * fmax(1.0, fabs(analytic));
}

static void test_linear_gradients(void) {
    enum { B = 3, C = 5, OC = 4 };
    cm_rng rng;
    cm_rng_init(&rng, 1);
    double inp[B * C], weight[OC * C], bias[OC], R[B * OC], out[B * OC];
    fill(inp, B * C, &rng, 1), fill(weight, OC * C, &rng, 1), fill(bias, OC, &rng, 1), fill(R, B * OC, &rng, 1);
    double dinp[B * C] = {0}, dweight[OC * C] = {0}, dbias[OC] = {0};
    cm_linear_backward_f64(dinp, dweight, dbias, R, inp, weight, B, C, OC);
    double *targets[3] = {inp, weight, bias};
    double *grads[3] = {dinp, dweight, dbias};
    size_t sizes[3] = {B * C, OC * C, OC};
    for (int which = 0; which < 3; which++) {
        for (size_t i = 0; i < sizes[which]; i++) {
            double saved = targets[which][i];
            targets[which][i] = saved + FD_STEP;
            cm_linear_forward_f64(out, inp, weight, bias, B, C, OC);
            double plus = dot(out, R, B * OC);
            targets[which][i] = saved - FD_STEP;
            cm_linear_forward_f64(out, inp, weight, bias, B, C, OC);
            double minus = dot(out, R, B * OC);
            targets[which][i] = saved;
            double numeric = (plus - minus) / (2 * FD_STEP);
            CM_CHECK(agree(grads[which][i], numeric), "linear grad %d[%zu]: %.12g vs FD %.12g",
                     which, i, grads[which][i], numeric);
        }
    }
    /* known answer: out = inp @ weight^T + bias for one entry */
    cm_linear_forward_f64(out, inp, weight, bias, B, C, OC);
    double expected = bias[2];
    for (int c = 0; c < C; c++) expected += inp[1 * C + c] * weight[2 * C + c];
    CM_CHECK_CLOSE(out[1 * OC + 2], expected, 1e-13, "linear forward entry");
    /* backward accumulates: a second call doubles the gradient */
    double dbias_before = dbias[0];
    cm_linear_backward_f64(dinp, dweight, dbias, R, inp, weight, B, C, OC);
    CM_CHECK_CLOSE(dbias[0], 2 * dbias_before, 1e-13, "backward adds into gradients");
}

static void test_silu_gradient(void) {
    enum { N = 9 };
    double inp[N] = {-20, -3, -1, -0.1, 0, 0.1, 1, 3, 20}, R[N], out[N], dinp[N] = {0};
    cm_rng rng;
    cm_rng_init(&rng, 2);
    fill(R, N, &rng, 1);
    cm_silu_backward_f64(dinp, R, inp, N);
    for (int i = 0; i < N; i++) {
        double saved = inp[i];
        inp[i] = saved + FD_STEP;
        cm_silu_forward_f64(out, inp, N);
        double plus = dot(out, R, N);
        inp[i] = saved - FD_STEP;
        cm_silu_forward_f64(out, inp, N);
        double minus = dot(out, R, N);
        inp[i] = saved;
        double numeric = (plus - minus) / (2 * FD_STEP);
        CM_CHECK(agree(dinp[i], numeric), "silu grad at %g: %.12g vs FD %.12g", inp[i], dinp[i], numeric);
    }
    cm_silu_forward_f64(out, inp, N);
    CM_CHECK_CLOSE(out[6], 1.0 / (1 + exp(-1.0)), 1e-15, "silu(1)");
    CM_CHECK(out[4] == 0.0, "silu(0) = %g", out[4]);
}

static void test_fourier_embedding_known_values(void) {
    double c_noise[2] = {0.3, -1.2}, out[2 * 8];
    cm_fourier_embedding_f64(out, c_noise, 2, 8, 1000.0);
    /* frequencies 1, 10, 100, 1000 (geometric, 4 of them) */
    CM_CHECK_CLOSE(out[0], sin(0.3), 1e-15, "sin f=1");
    CM_CHECK_CLOSE(out[2], sin(30.0), 1e-12, "sin f=100");
    CM_CHECK_CLOSE(out[8 + 4 + 3], cos(-1200.0), 1e-12, "cos f=1000 row 2");
}

/* An MLP built through the network interface, in double, with its layout for white-box checks. */
typedef struct {
    cm_network *network;
    const cm_mlp_layout *layout; /* the network's */
    cm_network_workspace *workspace;
    double *params, *dparams;
    size_t P;
} mlp_fixture;

static cm_network_config mlp_config(size_t D, size_t W, size_t L, size_t E, double frequency,
                                    size_t levels) {
    cm_network_config config = cm_network_config_default(&cm_network_mlp, D, levels);
    cm_mlp_options *o = cm_network_options(&config);
    o->width = W, o->depth = L, o->embed = E, o->embed_max_frequency = frequency;
    return config;
}

static void fixture_init(mlp_fixture *f, size_t D, size_t W, size_t L, size_t E, int B, cm_rng *rng,
                         int two_time) {
    *f = (mlp_fixture){0};
    cm_network_config config = mlp_config(D, W, L, E, 50, two_time ? 2 : 1);
    CM_CHECK_OK(cm_network_create(&f->network, &config));
    if (!f->network) return;
    f->layout = cm_network_state(f->network);
    CM_CHECK_OK(cm_network_workspace_alloc_f64(&f->workspace, f->network, (size_t)B));
    f->P = cm_network_param_count(f->network);
    f->params = cm_malloc(f->P, sizeof(double));
    f->dparams = cm_calloc(f->P, sizeof(double));
    fill(f->params, f->P, rng, 0.5);
}

static void fixture_free(mlp_fixture *f) {
    cm_network_workspace_free(f->workspace);
    cm_network_free(f->network);
    cm_free(f->params);
    cm_free(f->dparams);
}

/* Every parameter and input gradient of the MLP against central differences, for the one-time
 * network and the two-time one (input [x, embed(c), embed(c_target)]). */
static void check_mlp_gradients(int two_time);
static void test_mlp_gradients(void) {
    for (int two_time = 0; two_time < 2; two_time++) check_mlp_gradients(two_time);
}

static void check_mlp_gradients(int two_time) {
    enum { B = 4, D = 3 };
    cm_rng rng;
    cm_rng_init(&rng, 3);
    mlp_fixture f;
    fixture_init(&f, D, 6, 3, 4, B, &rng, two_time);
    CM_CHECK(f.layout->in[0] == (size_t)(D + 4 * (1 + two_time)), "first layer input %zu",
             f.layout->in[0]);
    double x[B * D], c_noise[2 * B], R[B * D], out[B * D], dx[B * D];
    fill(x, B * D, &rng, 1), fill(c_noise, 2 * B, &rng, 1), fill(R, B * D, &rng, 1);
    cm_network_forward_f64(f.network, out, f.params, f.workspace, x, c_noise, B);
    cm_network_backward_f64(f.network, f.dparams, dx, f.params, f.workspace, R, B);
    size_t P = f.P;
    for (size_t i = 0; i < P; i++) { /* every parameter: the net is small */
        double saved = f.params[i];
        f.params[i] = saved + FD_STEP;
        cm_network_forward_f64(f.network, out, f.params, f.workspace, x, c_noise, B);
        double plus = dot(out, R, B * D);
        f.params[i] = saved - FD_STEP;
        cm_network_forward_f64(f.network, out, f.params, f.workspace, x, c_noise, B);
        double minus = dot(out, R, B * D);
        f.params[i] = saved;
        double numeric = (plus - minus) / (2 * FD_STEP);
        CM_CHECK(agree(f.dparams[i], numeric), "mlp dparam[%zu] %.12g vs FD %.12g", i, f.dparams[i], numeric);
    }
    for (size_t i = 0; i < B * D; i++) {
        double saved = x[i];
        x[i] = saved + FD_STEP;
        cm_network_forward_f64(f.network, out, f.params, f.workspace, x, c_noise, B);
        double plus = dot(out, R, B * D);
        x[i] = saved - FD_STEP;
        cm_network_forward_f64(f.network, out, f.params, f.workspace, x, c_noise, B);
        double minus = dot(out, R, B * D);
        x[i] = saved;
        double numeric = (plus - minus) / (2 * FD_STEP);
        CM_CHECK(agree(dx[i], numeric), "mlp dx[%zu] %.12g vs FD %.12g", i, dx[i], numeric);
    }
    fixture_free(&f);
}

/* Loss of the whole model, L(params) = loss(f(x; params), target), for either loss. */
static double model_loss(mlp_fixture *f, double *dout, const double *x, const double *coef,
                         const double *target, const double *weight, int huber, int B) {
    size_t D = f->layout->dim;
    double out[64], x_in[64], F_out[64];
    cm_coefficient_rows_f64 rows = cm_coefficient_rows_view_f64((double *)coef, (size_t)B,
                                                                f->layout->noise_levels);
    cm_consistency_forward_f64(out, x_in, F_out, f->network, f->params, f->workspace, x, rows, B);
    return huber ? cm_loss_pseudo_huber_f64(dout, out, target, weight, 0.03, B, (int)D)
                 : cm_loss_l2_f64(dout, out, target, weight, B, (int)D);
}

/* Both losses through the consistency function to the parameters; case 2 and 3 are the
 * two-time parameterisation (consistency.h) with a target level per row. */
static void test_model_and_loss_gradients(void) {
    enum { B = 5, D = 2 };
    cm_rng rng;
    cm_rng_init(&rng, 4);
    for (int variant = 0; variant < 4; variant++) {
        int huber = variant % 2, two_time = variant / 2;
        mlp_fixture f;
        fixture_init(&f, D, 5, 2, 4, B, &rng, two_time);
        double x[B * D], target[B * D], weight[B], coef[5 * B], dout[B * D], dF[B * D];
        fill(x, B * D, &rng, 1), fill(target, B * D, &rng, 1);
        for (int b = 0; b < B; b++) {
            weight[b] = 0.5 + b;
            double sigma = 0.01 * pow(10.0, b);
            cm_coefficients c = two_time ? cm_consistency_two_time(sigma, sigma * 0.3 / (1 + b), 0.5)
                                         : cm_consistency_ve(sigma, 0.5, 0.002);
            cm_coefficient_rows_store_f64(cm_coefficient_rows_view_f64(coef, B, two_time ? 2 : 1),
                                          (size_t)b, c);
        }
        cm_coefficient_rows_f64 rows = cm_coefficient_rows_view_f64(coef, B, two_time ? 2 : 1);
        model_loss(&f, dout, x, coef, target, weight, huber, B);
        /* the loss's own gradient with respect to out, against FD on out */
        double out[B * D], x_in[B * D], F_out[B * D];
        cm_consistency_forward_f64(out, x_in, F_out, f.network, f.params, f.workspace, x, rows, B);
        for (int i = 0; i < B * D; i++) {
            double saved = out[i];
            out[i] = saved + FD_STEP;
            double plus = huber ? cm_loss_pseudo_huber_f64(NULL, out, target, weight, 0.03, B, D)
                                : cm_loss_l2_f64(NULL, out, target, weight, B, D);
            out[i] = saved - FD_STEP;
            double minus = huber ? cm_loss_pseudo_huber_f64(NULL, out, target, weight, 0.03, B, D)
                                 : cm_loss_l2_f64(NULL, out, target, weight, B, D);
            out[i] = saved;
            double numeric = (plus - minus) / (2 * FD_STEP);
            CM_CHECK(agree(dout[i], numeric), "%s dout[%d] %.12g vs FD %.12g", huber ? "huber" : "l2",
                     i, dout[i], numeric);
        }
        /* the whole chain: parameters -> consistency function -> loss */
        model_loss(&f, dout, x, coef, target, weight, huber, B);
        cm_consistency_backward_f64(f.dparams, dF, f.network, f.params, f.workspace, dout, rows, B);
        for (size_t i = 0; i < f.P; i++) {
            double saved = f.params[i];
            f.params[i] = saved + FD_STEP;
            double plus = model_loss(&f, NULL, x, coef, target, weight, huber, B);
            f.params[i] = saved - FD_STEP;
            double minus = model_loss(&f, NULL, x, coef, target, weight, huber, B);
            f.params[i] = saved;
            double numeric = (plus - minus) / (2 * FD_STEP);
            CM_CHECK(agree(f.dparams[i], numeric), "%s model dparam[%zu] %.12g vs FD %.12g",
                     huber ? "huber" : "l2", i, f.dparams[i], numeric);
        }
        fixture_free(&f);
    }
}

static void test_loss_known_values(void) {
    double out[4] = {1, 2, 3, 4}, target[4] = {1, 0, 0, 0}, weight[2] = {1, 2};
    /* rows: (0, 2) and (3, 4): squared norms 4 and 25 */
    CM_CHECK_CLOSE(cm_loss_l2_f64(NULL, out, target, weight, 2, 2), (4 + 2 * 25) / 2.0, 1e-15, "l2");
    double c = 1.0;
    double expected = ((sqrt(4 + c) - c) + 2 * (sqrt(25 + c) - c)) / 2;
    CM_CHECK_CLOSE(cm_loss_pseudo_huber_f64(NULL, out, target, weight, c, 2, 2), expected, 1e-15, "huber");
}

static void test_float_path_matches_double(void) {
    enum { B = 7, D = 2 };
    cm_rng rng;
    cm_rng_init(&rng, 6);
    cm_network_config config = mlp_config(D, 32, 3, 16, 100, 1);
    cm_mlp_layout layout;
    CM_CHECK_OK(cm_mlp_layout_init(&layout, &config));
    float *params = cm_malloc(layout.param_count, sizeof(float));
    double *params64 = cm_malloc(layout.param_count, sizeof(double));
    cm_network *network = NULL;
    CM_CHECK_OK(cm_network_create(&network, &config));
    if (!network || !params || !params64) return;
    cm_network_init(network, params, &rng);
    cm_network_free(network);
    for (size_t i = 0; i < layout.param_count; i++) params64[i] = params[i];
    cm_mlp_workspace *ws;
    cm_mlp_workspace_f64 *ws64;
    CM_CHECK_OK(cm_mlp_workspace_alloc(&ws, &layout, B));
    CM_CHECK_OK(cm_mlp_workspace_alloc_f64(&ws64, &layout, B));
    float x[B * D], c_noise[B], out[B * D];
    double x64[B * D], c64[B], out64[B * D];
    for (int i = 0; i < B * D; i++) x64[i] = x[i] = (float)cm_rng_normal(&rng);
    for (int b = 0; b < B; b++) c64[b] = c_noise[b] = (float)(0.25 * log(0.002 * pow(2.0, 3 * b)));
    cm_mlp_forward(out, params, &layout, ws, x, c_noise, B);
    cm_mlp_forward_f64(out64, params64, &layout, ws64, x64, c64, B);
    for (int i = 0; i < B * D; i++)
        CM_CHECK(fabs(out[i] - out64[i]) < 1e-5 * fmax(1, fabs(out64[i])), "float %g vs double %g", out[i], out64[i]);
    cm_mlp_workspace_free(ws);
    cm_mlp_workspace_free_f64(ws64);
    cm_free(params);
    cm_free(params64);
}

/* The float MLP runs its products for the workspace's capacity (oneDNN primitives of one shape,
 * mlp_template.h): a block of fewer rows is padded with zero rows. Its rows then have the bits of
 * the same rows in a full block, the input gradient likewise, and its parameter gradient the
 * bits of a full block whose extra rows carry a zero output gradient (they add exact zeros).
 * Stale values left in the workspace by a full block (even NaN) do not reach a smaller one. */
static void test_float_padded_rows(void) {
    enum { CAPACITY = 37, D = 3 };
    cm_rng rng;
    cm_rng_init(&rng, 9);
    cm_network_config config = mlp_config(D, 48, 3, 16, 100, 1);
    cm_network *n = NULL;
    CM_CHECK_OK(cm_network_create(&n, &config));
    cm_network_workspace *ws = NULL;
    if (n) CM_CHECK_OK(cm_network_workspace_alloc(&ws, n, CAPACITY));
    size_t P = n ? cm_network_param_count(n) : 0;
    float *p = cm_malloc(P, sizeof(float)), *g_full = cm_malloc(P, sizeof(float));
    float *g = cm_malloc(P, sizeof(float));
    float x[CAPACITY * D], c[CAPACITY], dout[CAPACITY * D], out_full[CAPACITY * D];
    float out[CAPACITY * D], dx_full[CAPACITY * D], dx[CAPACITY * D], x_nan[CAPACITY * D];
    if (!ws || !p || !g_full || !g) goto done;
    cm_network_init(n, p, &rng);
    cm_rng_normal_fill_f32(&rng, x, CAPACITY * D);
    cm_rng_normal_fill_f32(&rng, c, CAPACITY);
    cm_rng_normal_fill_f32(&rng, dout, CAPACITY * D);
    for (size_t R = 1; R < CAPACITY; R += 7) {
        /* the full block, its extra rows' output gradient zero */
        float dout_full[CAPACITY * D];
        memcpy(dout_full, dout, sizeof dout_full);
        memset(dout_full + R * D, 0, (CAPACITY - R) * D * sizeof(float));
        cm_network_forward(n, out_full, p, ws, x, c, CAPACITY);
        cm_network_backward(n, g_full, dx_full, p, ws, dout_full, CAPACITY);
        /* stale NaN activations from a full block of NaN inputs, then R rows */
        for (size_t i = 0; i < CAPACITY * D; i++) x_nan[i] = NAN;
        cm_network_forward(n, out, p, ws, x_nan, c, CAPACITY);
        cm_network_backward(n, g, dx, p, ws, dout, CAPACITY);
        cm_network_forward(n, out, p, ws, x, c, R);
        cm_network_backward(n, g, dx, p, ws, dout, R);
        CM_CHECK(memcmp(out, out_full, R * D * sizeof(float)) == 0,
                 "%zu rows of %d: outputs differ from the full block's", R, CAPACITY);
        CM_CHECK(memcmp(dx, dx_full, R * D * sizeof(float)) == 0,
                 "%zu rows of %d: input gradients differ from the full block's", R, CAPACITY);
        CM_CHECK(memcmp(g, g_full, P * sizeof(float)) == 0,
                 "%zu rows of %d: parameter gradient differs from the full block's", R, CAPACITY);
    }
done:
    cm_network_workspace_free(ws);
    cm_network_free(n);
    cm_free(p), cm_free(g_full), cm_free(g);
}

/* Every allocation of a float workspace failing in turn: CM_ERR_NOMEM, nothing leaked. */
static void test_workspace_allocation_failures(void) {
    cm_network_config config = mlp_config(2, 16, 2, 8, 100, 1);
    cm_network *n = NULL;
    CM_CHECK_OK(cm_network_create(&n, &config));
    if (!n) return;
    int succeeded = 0;
    for (long k = 0; k < 20 && !succeeded; k++) {
        long live = cm_alloc_live_count();
        cm_network_workspace *ws = NULL;
        cm_alloc_fail_after(k);
        cm_status status = cm_network_workspace_alloc(&ws, n, 8);
        cm_alloc_fail_after(-1);
        succeeded = status == CM_OK;
        CM_CHECK(status == CM_OK || (status == CM_ERR_NOMEM && !ws), "failure after %ld: %s", k,
                 cm_status_name(status));
        cm_network_workspace_free(ws);
        CM_CHECK(cm_alloc_live_count() == live, "failure after %ld: %ld allocations leaked", k,
                 cm_alloc_live_count() - live);
    }
    CM_CHECK(succeeded, "the workspace never succeeded within 20 allocations");
    cm_network_free(n);
}

static void test_layout_rejects_bad_configs(void) {
    cm_mlp_layout layout;
    cm_network_config bad[] = {
        mlp_config(0, 8, 1, 4, 10, 1),  mlp_config(2, 0, 1, 4, 10, 1),
        mlp_config(2, 8, 0, 4, 10, 1),  mlp_config(2, 8, 17, 4, 10, 1),
        mlp_config(2, 8, 1, 3, 10, 1),  mlp_config(2, 8, 1, 4, NAN, 1),
        mlp_config(2, 8, 1, 4, 10, 3),
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        cm_network *network = NULL;
        CM_CHECK(cm_mlp_layout_init(&layout, &bad[i]) == CM_ERR_INVALID, "bad config %zu accepted", i);
        CM_CHECK(cm_network_create(&network, &bad[i]) == CM_ERR_INVALID && !network,
                 "bad config %zu made a network", i);
    }
    cm_network_config good = mlp_config(2, 256, 3, 32, 100, 1);
    CM_CHECK_OK(cm_mlp_layout_init(&layout, &good));
    /* (34*256 + 256) + 2 (256*256 + 256) + (256*2 + 2) */
    CM_CHECK(layout.param_count == 34 * 256 + 256 + 2 * (256 * 256 + 256) + 256 * 2 + 2,
             "param count %zu", layout.param_count);
}

/* The two-time input is [x, embed(c), embed(c_target)]: with the first layer's columns of the
 * target embedding set to zero, a two-time network is the one-time network with the other
 * weights (to rounding: the zero columns add exact zeros, but BLAS may block a longer product
 * differently); with them nonzero, the target level
 * changes the output. And g(x, t, t) = x to the bit for any weights (r = 1: skip 1, out 0). */
static void test_two_time_layout(void) {
    enum { B = 3, D = 2, W = 5, E = 4 };
    cm_rng rng;
    cm_rng_init(&rng, 8);
    mlp_fixture one, two;
    fixture_init(&one, D, W, 2, E, B, &rng, 0);
    fixture_init(&two, D, W, 2, E, B, &rng, 1);
    CM_CHECK(two.P == one.P + (size_t)W * E, "parameters %zu %zu", two.P, one.P);
    /* copy the one-time weights into the two-time layout; target columns D+E..D+2E-1 zero */
    for (int o = 0; o < W; o++)
        for (int i = 0; i < D + 2 * E; i++)
            two.params[(size_t)o * (D + 2 * E) + i] = i < D + E ? one.params[(size_t)o * (D + E) + i] : 0.0;
    memcpy(two.params + two.layout->bias_offset[0], one.params + one.layout->bias_offset[0],
           (one.P - one.layout->bias_offset[0]) * sizeof(double));
    double x[B * D], c[B], c_pair[2 * B], out_one[B * D], out_two[B * D];
    fill(x, B * D, &rng, 1), fill(c, B, &rng, 1);
    for (int b = 0; b < B; b++) c_pair[2 * b] = c[b], c_pair[2 * b + 1] = 0.7 * b - 1.0;
    cm_network_forward_f64(one.network, out_one, one.params, one.workspace, x, c, B);
    cm_network_forward_f64(two.network, out_two, two.params, two.workspace, x, c_pair, B);
    for (int i = 0; i < B * D; i++)
        CM_CHECK(fabs(out_one[i] - out_two[i]) <= 1e-14 * (1 + fabs(out_one[i])),
                 "zero target columns: %d: %.17g vs %.17g", i, out_one[i], out_two[i]);
    two.params[D + E] = 0.8; /* one target column weight of unit 0 */
    cm_network_forward_f64(two.network, out_two, two.params, two.workspace, x, c_pair, B);
    double changed = 0;
    for (int i = 0; i < B * D; i++) changed = fmax(changed, fabs(out_one[i] - out_two[i]));
    CM_CHECK(changed > 1e-6, "the target level does not reach the output (%g)", changed);
    double coef[5 * B], g[B * D], x_in[B * D], F_out[B * D];
    for (int b = 0; b < B; b++) {
        double t = 0.05 * (b + 1) * (b + 1);
        cm_coefficients k = cm_consistency_two_time(t, t, 0.5);
        CM_CHECK(k.skip == 1.0 && k.out == 0.0 && k.two_time, "g(., t, t): skip %.17g out %.17g",
                 k.skip, k.out);
        cm_coefficient_rows_store_f64(cm_coefficient_rows_view_f64(coef, B, 2), (size_t)b, k);
    }
    cm_consistency_forward_f64(g, x_in, F_out, two.network, two.params, two.workspace, x,
                               cm_coefficient_rows_view_f64(coef, B, 2), B);
    for (int i = 0; i < B * D; i++) CM_CHECK(g[i] == x[i], "g(x, t, t) != x at %d", i);
    /* hand value: t = 2, s = 0.5, sd = 0.5: r = 1/4, c_skip = 0.25/4.25, c_out = 1/sqrt(4.25),
     * skip = 1/4 + 3/4 c_skip, out = 3/4 c_out, in = 1/sqrt(4.25), noises log(2)/4, log(0.5)/4 */
    cm_coefficients h = cm_consistency_two_time(2.0, 0.5, 0.5);
    CM_CHECK_CLOSE(h.skip, 0.25 + 0.75 * 0.25 / 4.25, 1e-15, "two-time skip");
    CM_CHECK_CLOSE(h.out, 0.75 * 1.0 / sqrt(4.25), 1e-15, "two-time out");
    CM_CHECK_CLOSE(h.in, 1.0 / sqrt(4.25), 1e-15, "two-time in");
    CM_CHECK_CLOSE(h.c_noise_target, 0.25 * log(0.5), 1e-15, "two-time target noise");
    fixture_free(&one);
    fixture_free(&two);
}

const cm_test_case cm_tests_nn[] = {
    {"float_padded_rows", test_float_padded_rows},
    {"workspace_allocation_failures", test_workspace_allocation_failures},
    {"two_time_layout", test_two_time_layout},
    {"linear_gradients", test_linear_gradients},
    {"silu_gradient", test_silu_gradient},
    {"fourier_embedding_known_values", test_fourier_embedding_known_values},
    {"mlp_gradients", test_mlp_gradients},
    {"model_and_loss_gradients", test_model_and_loss_gradients},
    {"loss_known_values", test_loss_known_values},
    {"float_path_matches_double", test_float_path_matches_double},
    {"layout_rejects_bad_configs", test_layout_rejects_bad_configs},
    {NULL, NULL},
};
