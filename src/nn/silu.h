/* silu.h (private to src/nn): the vectorisable exp(-|x|) of SiLU in float and the sign select,
 * shared by the element-wise kernels of layers.c (SiLU, the MLP) and unet_layers.c (GroupNorm +
 * SiLU of the U-Net) so that every SiLU in cm rounds the same way. Inline helpers only; each
 * .c file maps them to the macros its template expects (EXP_NEG_ABS, EXP_NEG_ABS_PARTS,
 * IF_NEGATIVE; double uses libm's exp and signbit).
 */
#ifndef CM_NN_SILU_H
#define CM_NN_SILU_H

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

#endif
