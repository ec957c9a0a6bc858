/* vectorize.h (internal): VECTOR_CLONES, the attribute of cm's hot element-wise loops.
 *
 * GCC compiles such a function three times, for AVX-512, AVX2 and the x86-64 baseline (SSE2),
 * and picks one at load time (ifunc); AVX-512 measured twice as fast as AVX2 for SiLU on this
 * machine (docs/performance.md). The copies round identically: in C11 mode GCC does not contract
 * a * b + c into a fused multiply-add, and every vectorised loop is element-wise or keeps its
 * sums in a fixed order. optimize("tree-vectorize") is needed for these loops to vectorise
 * at -O2 (checked with gcc -fopt-info-vec); they are written for it: no branches (selects by
 * masks on the bits), no calls, restrict pointers. (optimize("no-math-errno") has no effect
 * there, measured: loops with sqrtf, such as Adam's, stay scalar.)
 * Elsewhere (clang, other systems) the attribute is empty: plain loops, same results.
 */
#ifndef CM_VECTORIZE_H
#define CM_VECTORIZE_H

#if defined(__GNUC__) && !defined(__clang__) && defined(__x86_64__) && defined(__linux__)
#define VECTOR_CLONES                                                                     \
    __attribute__((target_clones("avx512f", "avx2", "default"), optimize("tree-vectorize")))
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
