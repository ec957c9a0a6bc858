/* layers.c: the layer kernels of layers.h (linear, SiLU, fused bias + SiLU, bias sums, the
 * Fourier embedding of the noise level) instantiated from layers_template.h in float (training)
 * and double (gradient checks), with the vectorisable exp and sin/cos they use. The networks
 * (mlp.c, and any other type) are built from these. Products go through CBLAS here; speed and
 * its measurement in docs/performance.md. */
#include "nn/layers.h"

#include <cblas.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/vectorize.h"

/* exp(-|x|) in float for SiLU, in a form the compiler vectorises (libm's expf is a call per
 * element): Cody-Waite reduction t = n ln2 + r, |r| <= ln2 / 2, Cephes' expf polynomial for
 * e^r (about 1 ulp), and 2^n built from its bits in two halves so that results down to the
 * smallest subnormal are right. The _parts form returns e^-|x| = m * scale with m normal, so
 * that x e^-|x| can be rounded once, as (x m) scale, even where e^-|x| itself is subnormal. Below -CM_EXPF_ZERO (where expf is 0 too) it returns 0, and
 * for a NaN input 0 too, which the callers' use of x turns into NaN again. Checked
 * against expf on a dense grid of [-110, 0] in tests/test_nn.c. */
#define CM_EXPF_ZERO 104.0f /* expf(-104) < 2^-149 / 2: rounds to 0 */
static inline ALWAYS_INLINE int32_t float_bits(float x) {
    int32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return bits;
}
static inline ALWAYS_INLINE float cm_expf_neg_abs_parts(float x, float *scale) {
    /* Comparisons on the bits, not on floats: GCC will not if-convert a float comparison that
     * might trap (-ftrapping-math), and a NaN's bits compare above CM_EXPF_ZERO's. */
    int32_t a_bits = float_bits(x) & 0x7FFFFFFF, zero_bits = 0x42D00000; /* 104.0f */
    /* all ones when |x| > 104 or NaN, else 0; selects with masks, not ?: (GCC would split the
     * loop body into paths again) */
    int32_t beyond = -(int32_t)(a_bits > zero_bits);
    int32_t t_bits = (a_bits ^ ((a_bits ^ zero_bits) & beyond)) | (int32_t)0x80000000;
    float t; /* -min(|x|, 104) */
    memcpy(&t, &t_bits, sizeof t);
    const float magic = 12582912.0f; /* 1.5 * 2^23: adding it rounds to an integer */
    float k = t * 1.44269504088896341f + magic, n = k - magic;
    float r = t - n * 0.693359375f; /* ln 2 = 0.693359375 - 2.12194440e-4 (Cephes) */
    r = r - n * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * (r * r) + r + 1.0f;
    int32_t k_bits;
    memcpy(&k_bits, &k, sizeof k_bits);
    int32_t n_int = k_bits - 0x4B400000; /* n, in [-150, 0] */
    int32_t half = n_int / 2, rest = n_int - half;
    uint32_t bits1 = (uint32_t)(half + 127) << 23, bits2 = (uint32_t)(rest + 127) << 23;
    float scale1, scale2;
    memcpy(&scale1, &bits1, sizeof scale1);
    memcpy(&scale2, &bits2, sizeof scale2);
    int32_t m_bits = float_bits(p * scale1) & ~beyond;
    float m;
    memcpy(&m, &m_bits, sizeof m);
    *scale = scale2;
    return m;
}

static inline ALWAYS_INLINE float cm_expf_neg_abs(float x) {
    float scale, m = cm_expf_neg_abs_parts(x, &scale);
    return m * scale;
}

/* a if x's sign bit is set, else b, selected with a mask (see cm_expf_neg_abs). */
static inline ALWAYS_INLINE float cm_if_negative(float x, float a, float b) {
    int32_t mask = float_bits(x) >> 31; /* arithmetic shift (GCC, clang): all ones or 0 */
    int32_t bits = float_bits(b) ^ ((float_bits(a) ^ float_bits(b)) & mask);
    float out;
    memcpy(&out, &bits, sizeof out);
    return out;
}

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
