/* bench/reference.h: plain reference loops (double, libm, no BLAS, no threads) for the MLP of
 * src/nn/mlp.h (one noise level per row), against which the benchmarks validate the optimised float kernels before timing them.
 * One row at a time, written straight from the definitions: h0 = [x, sin(f_k c), cos(f_k c)],
 * z_l = W_l h_l + b_l, h_{l+1} = z_l / (1 + exp(-z_l)), out = W_L h_L + b_L.
 */
#ifndef CM_BENCH_REFERENCE_H
#define CM_BENCH_REFERENCE_H

#include <math.h>
#include <string.h>

#include "nn/mlp.h"

#define REF_MAX_UNITS 4096

typedef struct {
    double h[CM_MLP_MAX_DEPTH + 1][REF_MAX_UNITS]; /* layer inputs */
    double z[CM_MLP_MAX_DEPTH + 1][REF_MAX_UNITS]; /* pre-activations */
    double g[REF_MAX_UNITS], g_next[REF_MAX_UNITS];
} ref_scratch;

/* out[D] = F(x[D], c) for one row; keeps the row's activations in s. */
static void ref_forward_row(double *out, const float *params, const cm_mlp_layout *layout,
                            const float *x, double c, ref_scratch *s) {
    size_t D = layout->dim, half = layout->embed / 2;
    for (size_t i = 0; i < D; i++) s->h[0][i] = x[i];
    for (size_t k = 0; k < half; k++) {
        double f = half > 1 ? exp(log(layout->embed_max_frequency) * (double)k / (double)(half - 1)) : 1.0;
        s->h[0][D + k] = (float)sin(f * c);
        s->h[0][D + half + k] = (float)cos(f * c);
    }
    for (size_t l = 0; l < layout->layer_count; l++) {
        const float *w = params + layout->weight_offset[l], *b = params + layout->bias_offset[l];
        for (size_t o = 0; o < layout->out[l]; o++) {
            double sum = b[o];
            for (size_t i = 0; i < layout->in[l]; i++) sum += (double)w[o * layout->in[l] + i] * s->h[l][i];
            s->z[l][o] = sum;
            if (l + 1 < layout->layer_count) s->h[l + 1][o] = sum / (1.0 + exp(-sum));
            else out[o] = sum;
        }
    }
}

/* dparams[P] += d(dout . F)/dparams for the row of the last ref_forward_row. */
static void ref_backward_row(double *dparams, const float *params, const cm_mlp_layout *layout,
                             const double *dout, ref_scratch *s) {
    size_t L = layout->layer_count - 1;
    memcpy(s->g, dout, layout->out[L] * sizeof(double));
    for (size_t l = L + 1; l-- > 0;) {
        const float *w = params + layout->weight_offset[l];
        double *dw = dparams + layout->weight_offset[l], *db = dparams + layout->bias_offset[l];
        size_t C = layout->in[l], OC = layout->out[l];
        if (l < L) /* through the SiLU of layer l: g = g * silu'(z) */
            for (size_t o = 0; o < OC; o++) {
                double z = s->z[l][o], sig = 1.0 / (1.0 + exp(-z));
                s->g[o] *= sig * (1.0 + z * (1.0 - sig));
            }
        for (size_t o = 0; o < OC; o++) {
            db[o] += s->g[o];
            for (size_t i = 0; i < C; i++) dw[o * C + i] += s->g[o] * s->h[l][i];
        }
        if (l == 0) break;
        for (size_t i = 0; i < C; i++) {
            double sum = 0.0;
            for (size_t o = 0; o < OC; o++) sum += s->g[o] * (double)w[o * C + i];
            s->g_next[i] = sum;
        }
        memcpy(s->g, s->g_next, C * sizeof(double));
    }
}

#endif
