/* vectorize.h (internal): VECTOR_CLONES, the attribute of cm's hot element-wise loops.
 *
 * GCC compiles such a function twice, for AVX2 and for the x86-64 baseline (SSE2), and picks
 * one at load time (ifunc). The two copies round identically: in C11 mode GCC does not contract
 * a * b + c into a fused multiply-add, and every vectorised loop is element-wise or keeps its
 * sums in a fixed order. tree-vectorize: plain -O2 (GCC 12) only vectorises the cheapest loops.
 * no-math-errno: sqrtf may then be an instruction (cm never reads errno after sqrt; results are
 * the same). Elsewhere (clang, other systems) the attribute is empty: plain loops.
 */
#ifndef CM_VECTORIZE_H
#define CM_VECTORIZE_H

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define VECTOR_CLONES                                                                     \
    __attribute__((target_clones("avx2", "default"),                                      \
                   optimize("tree-vectorize", "no-math-errno")))
#else
#define VECTOR_CLONES
#endif

/* The helpers called inside those loops must be inlined for the loops to vectorise. */
#if defined(__GNUC__)
#define ALWAYS_INLINE __attribute__((always_inline))
#else
#define ALWAYS_INLINE
#endif

#endif
