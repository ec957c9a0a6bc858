/* rng.c: Philox4x32-10 and the draws built on it (see rng.h).
 *
 * Written by hand because the algorithm is 20 lines and no Debian C library offers a keyed,
 * splittable counter-based generator with a stable output across versions. Constants from
 * Salmon, Moraes, Dror, Shaw, "Parallel random numbers: as easy as 1, 2, 3" (SC 2011), checked
 * against the Random123 known-answer vectors in tests/test_rng.c.
 */
#include "cm/rng.h"

#include <math.h>

#include "core/vectorize.h"

#define PHILOX_M0 0xD2511F53u
#define PHILOX_M1 0xCD9E8D57u
#define PHILOX_W0 0x9E3779B9u
#define PHILOX_W1 0xBB67AE85u

void cm_philox4x32(uint32_t out[4], const uint32_t counter[4], const uint32_t key[2]) {
    uint32_t c0 = counter[0], c1 = counter[1], c2 = counter[2], c3 = counter[3];
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        uint64_t p0 = (uint64_t)PHILOX_M0 * c0;
        uint64_t p1 = (uint64_t)PHILOX_M1 * c2;
        uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1 ^ k0;
        uint32_t n1 = (uint32_t)p1;
        uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3 ^ k1;
        uint32_t n3 = (uint32_t)p0;
        c0 = n0; c1 = n1; c2 = n2; c3 = n3;
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    out[0] = c0; out[1] = c1; out[2] = c2; out[3] = c3;
}

void cm_rng_init(cm_rng *out, uint64_t seed) {
    /* Hash the seed so that nearby seeds give unrelated keys. */
    uint32_t counter[4] = {(uint32_t)seed, (uint32_t)(seed >> 32), 0x63u, 0x6Du};
    uint32_t key[2] = {0x243F6A88u, 0x85A308D3u};
    uint32_t block[4];
    cm_philox4x32(block, counter, key);
    out->key[0] = block[0];
    out->key[1] = block[1];
    out->position = 0;
    out->has_spare = 0;
    out->spare_normal = 0.0;
}

void cm_rng_fork(cm_rng *out, const cm_rng *parent, uint64_t id) {
    /* Counter word 3 = 0xF0 marks "fork" so fork keys never equal ordinary output blocks. */
    uint32_t counter[4] = {(uint32_t)id, (uint32_t)(id >> 32), 0u, 0xF0u};
    uint32_t block[4];
    cm_philox4x32(block, counter, parent->key);
    out->key[0] = block[0];
    out->key[1] = block[1];
    out->position = 0;
    out->has_spare = 0;
    out->spare_normal = 0.0;
}

uint32_t cm_rng_u32(cm_rng *rng) {
    uint64_t block_index = rng->position >> 2;
    uint32_t counter[4] = {(uint32_t)block_index, (uint32_t)(block_index >> 32), 0u, 0u};
    uint32_t block[4];
    cm_philox4x32(block, counter, rng->key);
    uint32_t word = block[rng->position & 3u];
    rng->position++;
    return word;
}

uint64_t cm_rng_u64(cm_rng *rng) {
    uint64_t high = cm_rng_u32(rng);
    return (high << 32) | cm_rng_u32(rng);
}

double cm_rng_uniform(cm_rng *rng) {
    /* 53 bits, shifted by half a unit so that 0 and 1 are never returned. */
    uint64_t bits = cm_rng_u64(rng) >> 11;
    return ((double)bits + 0.5) * 0x1.0p-53;
}

uint64_t cm_rng_below(cm_rng *rng, uint64_t n) {
    if (n <= 1) return 0;
    uint64_t limit = UINT64_MAX - UINT64_MAX % n; /* reject the biased tail */
    uint64_t value;
    do {
        value = cm_rng_u64(rng);
    } while (value >= limit);
    return value % n;
}

double cm_rng_normal(cm_rng *rng) {
    if (rng->has_spare) {
        rng->has_spare = 0;
        return rng->spare_normal;
    }
    double u1 = cm_rng_uniform(rng), u2 = cm_rng_uniform(rng);
    double radius = sqrt(-2.0 * log(u1));
    double angle = 6.283185307179586476925286766559 * u2;
    rng->spare_normal = radius * sin(angle);
    rng->has_spare = 1;
    return radius * cos(angle);
}

void cm_rng_normal_fill_f32(cm_rng *rng, float *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = (float)cm_rng_normal(rng);
}

#define CM_RNG_BATCH 16 /* Philox blocks computed side by side (vector lanes) */

/* words[w][j] = word w of output block first_block + j: cm_philox4x32 on CM_RNG_BATCH counters at
 * once, written lane-wise so that the compiler vectorises it (integer arithmetic: exact). */
VECTOR_CLONES
static void philox_batch(uint32_t words[4][CM_RNG_BATCH], uint64_t first_block,
                         const uint32_t key[2]) {
    uint32_t c0[CM_RNG_BATCH], c1[CM_RNG_BATCH], c2[CM_RNG_BATCH], c3[CM_RNG_BATCH];
    for (int j = 0; j < CM_RNG_BATCH; j++) {
        uint64_t block = first_block + (uint64_t)j;
        c0[j] = (uint32_t)block, c1[j] = (uint32_t)(block >> 32), c2[j] = 0u, c3[j] = 0u;
    }
    uint32_t k0 = key[0], k1 = key[1];
    for (int round = 0; round < 10; round++) {
        for (int j = 0; j < CM_RNG_BATCH; j++) {
            uint64_t p0 = (uint64_t)PHILOX_M0 * c0[j];
            uint64_t p1 = (uint64_t)PHILOX_M1 * c2[j];
            uint32_t n0 = (uint32_t)(p1 >> 32) ^ c1[j] ^ k0;
            uint32_t n2 = (uint32_t)(p0 >> 32) ^ c3[j] ^ k1;
            c1[j] = (uint32_t)p1;
            c3[j] = (uint32_t)p0;
            c0[j] = n0;
            c2[j] = n2;
        }
        k0 += PHILOX_W0;
        k1 += PHILOX_W1;
    }
    for (int j = 0; j < CM_RNG_BATCH; j++)
        words[0][j] = c0[j], words[1][j] = c1[j], words[2][j] = c2[j], words[3][j] = c3[j];
}

/* cm_rng_uniform of the 64-bit value (high, low). */
static double uniform_of(uint32_t high, uint32_t low) {
    uint64_t bits = (((uint64_t)high << 32) | low) >> 11;
    return ((double)bits + 0.5) * 0x1.0p-53;
}

void cm_rng_normal_fill_f32_part(const cm_rng *rng, float *out, size_t first, size_t end) {
    cm_rng r = *rng;
    size_t i = first, spare = r.has_spare ? 1 : 0;
    if (spare && i == 0 && i < end) out[i++] = (float)r.spare_normal;
    r.has_spare = 0;
    if (i >= end) return;
    /* value i (i >= spare) is output (i - spare) % 2 of Box-Muller pair (i - spare) / 2, and each
     * pair takes two 64-bit uniforms, i.e. 4 words */
    size_t pair = (i - spare) / 2;
    r.position += 4 * (uint64_t)pair;
    if ((i - spare) % 2) (void)cm_rng_normal(&r); /* the pair's first value belongs to out[i - 1] */
    if (r.has_spare && i < end) out[i++] = (float)cm_rng_normal(&r);
    /* Whole pairs from a block boundary: CM_RNG_BATCH Philox blocks at once (one block = one
     * pair), then Box-Muller exactly as cm_rng_normal writes it (same expressions, same libm
     * calls), so the values are the same bits; tests/test_rng_parts.c compares them. */
    if (r.position % 4 == 0) {
        uint32_t words[4][CM_RNG_BATCH];
        while (end - i >= 2 * CM_RNG_BATCH) {
            philox_batch(words, r.position >> 2, r.key);
            for (int j = 0; j < CM_RNG_BATCH; j++) {
                double u1 = uniform_of(words[0][j], words[1][j]);
                double u2 = uniform_of(words[2][j], words[3][j]);
                double radius = sqrt(-2.0 * log(u1));
                double angle = 6.283185307179586476925286766559 * u2;
                out[i++] = (float)(radius * cos(angle));
                out[i++] = (float)(radius * sin(angle));
            }
            r.position += 4 * CM_RNG_BATCH;
        }
    }
    for (; i < end; i++) out[i] = (float)cm_rng_normal(&r);
}

void cm_rng_normal_fill_f64(cm_rng *rng, double *out, size_t n) {
    for (size_t i = 0; i < n; i++) out[i] = cm_rng_normal(rng);
}
