/* rng.h: counter-based random numbers (Philox4x32-10, Salmon et al., SC 2011).
 *
 * A cm_rng is a 64-bit key and a 64-bit position. Output block k of a generator is
 * Philox(counter = (k, stream), key): no hidden state beyond the position, so a generator can be
 * forked into independent children (cm_rng_fork: the child's key is a Philox hash of the
 * parent's key and a child id) and a draw can be addressed directly (row i of a sample gets
 * the child with id i), which is what makes samples independent of batch size and thread count.
 * Normals by Box-Muller on 24/53-bit uniforms in (0, 1). Not cryptographic.
 */
#ifndef CM_RNG_H
#define CM_RNG_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t key[2];
    uint64_t position;   /* index of the next 32-bit word */
    double spare_normal; /* second Box-Muller output, valid when has_spare */
    int has_spare;
} cm_rng;

/* Named streams of a run, so that data, noise levels, noise and sampling never share draws. */
typedef enum {
    CM_STREAM_DATA = 1,
    CM_STREAM_LEVEL,
    CM_STREAM_NOISE,
    CM_STREAM_SAMPLE,
    CM_STREAM_INIT,
    CM_STREAM_TRANSFORM,
    CM_STREAM_EVAL,
    CM_STREAM_COUNT
} cm_stream;

/* The raw block function: out = Philox4x32-10(counter, key). */
void cm_philox4x32(uint32_t out[4], const uint32_t counter[4], const uint32_t key[2]);

/* A generator for `seed` (any 64-bit value). */
void cm_rng_init(cm_rng *out, uint64_t seed);
/* Child generator number `id` of `parent` (parent unchanged). Children with different ids, and
 * children of different parents, produce independent streams. */
void cm_rng_fork(cm_rng *out, const cm_rng *parent, uint64_t id);

uint32_t cm_rng_u32(cm_rng *rng);
uint64_t cm_rng_u64(cm_rng *rng);
/* Uniform in the open interval (0, 1), 53 random bits. */
double cm_rng_uniform(cm_rng *rng);
/* Uniform integer in [0, n), n >= 1, without modulo bias. */
uint64_t cm_rng_below(cm_rng *rng, uint64_t n);
/* Standard normal. */
double cm_rng_normal(cm_rng *rng);
/* Fill out[0..n) with standard normals (float or double). */
void cm_rng_normal_fill_f32(cm_rng *rng, float *out, size_t n);
void cm_rng_normal_fill_f64(cm_rng *rng, double *out, size_t n);
/* out[first, end) = the values first .. end - 1 of what cm_rng_normal_fill_f32(rng, out, n) would
 * write (any n >= end), bit for bit; *rng is not advanced. Box-Muller pair j after any spare uses
 * the words position + 4j .. + 3, so a fill can be split into parts that run on different
 * threads and give the same values as the whole (docs/performance.md). */
void cm_rng_normal_fill_f32_part(const cm_rng *rng, float *out, size_t first, size_t end);

#endif
