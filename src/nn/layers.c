/* layers.c: the layer kernels of layers.h (linear, SiLU, fused bias + SiLU, bias sums, the
 * Fourier embedding of the noise level) instantiated from layers_template.h in float (training)
 * and double (gradient checks), with the vectorisable sin/cos they use (exp: silu.h). The networks
 * (mlp.c, and any other type) are built from these. Products go through CBLAS here; speed and
 * its measurement in docs/performance.md. */
#include "nn/layers.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/vectorize.h"
#include "nn/silu.h"

/* sin and cos of phase[n] in double for the Fourier embedding, vectorisable: n = round(phase
 * 2/pi), r = phase - n pi/2 in two parts (exact products for |n| < 2^20, hence the limit), the
 * fdlibm kernel polynomials on |r| <= pi/4, and the quadrant n mod 4. Agrees with libm to a few
 * double ulps, so the float embedding it feeds is libm's up to rare last-bit ties (tested). */
#define CM_SINCOS_FAST_LIMIT 1.0e5
VECTOR_CLONES
static void cm_sincos_fast(double *restrict sine, double *restrict cosine,
                           const double *restrict phase, int n) {
    const double magic = 6755399441055744.0; /* 1.5 * 2^52 */
    const double pio2_hi = 1.57079632673412561417e+00, pio2_lo = 6.07710050650619224932e-11;
    for (int i = 0; i < n; i++) {
        double k = phase[i] * 6.36619772367581382433e-01 + magic, q = k - magic;
        double r = (phase[i] - q * pio2_hi) - q * pio2_lo, z = r * r;
        double s = r + r * z * (-1.66666666666666324348e-01 +
                                z * (8.33333333332248946124e-03 +
                                     z * (-1.98412698298579493134e-04 +
                                          z * (2.75573137070700676789e-06 +
                                               z * (-2.50507602534068634195e-08 +
                                                    z * 1.58969099521155010221e-10)))));
        double c = 1.0 - 0.5 * z + z * z * (4.16666666666666019037e-02 +
                                           z * (-1.38888888888741095749e-03 +
                                                z * (2.48015872894767294178e-05 +
                                                     z * (-2.75573143513906633035e-07 +
                                                          z * (2.08757232129817482790e-09 +
                                                               z * -1.13596475577881948265e-11)))));
        int64_t k_bits;
        memcpy(&k_bits, &k, sizeof k_bits);
        int64_t quadrant = k_bits & 3;
        double sin_value = (quadrant & 1) ? c : s, cos_value = (quadrant & 1) ? s : c;
        sine[i] = (quadrant & 2) ? -sin_value : sin_value;
        cosine[i] = ((quadrant + 1) & 2) ? -cos_value : cos_value;
    }
}

#define REAL float
#define FN(name) name
#define CBLAS_GEMM cblas_sgemm
#define EXP_NEG_ABS(x) cm_expf_neg_abs(x)
#define EXP_NEG_ABS_PARTS(x, scale) cm_expf_neg_abs_parts(x, scale)
#define IF_NEGATIVE(x, a, b) cm_if_negative(x, a, b)
#include "nn/layers_template.h"
#undef REAL
#undef FN
#undef CBLAS_GEMM
#undef EXP_NEG_ABS
#undef EXP_NEG_ABS_PARTS
#undef IF_NEGATIVE

#define REAL double
#define FN(name) name##_f64
#define CBLAS_GEMM cblas_dgemm
#define EXP_NEG_ABS(x) exp(-fabs(x))
#define EXP_NEG_ABS_PARTS(x, scale) (*(scale) = 1.0, exp(-fabs(x)))
#define IF_NEGATIVE(x, a, b) (signbit(x) ? (a) : (b))
#include "nn/layers_template.h"
#undef REAL
#undef FN
#undef CBLAS_GEMM
#undef EXP_NEG_ABS
#undef EXP_NEG_ABS_PARTS
#undef IF_NEGATIVE
