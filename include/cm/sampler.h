/* sampler.h: one-step and multistep consistency sampling ([CM] Algorithm 1; docs/sampling.md).
 *
 * VE models ([CM], [iCT]): levels are noise levels sigma_0 > sigma_1 > ... (values, not grid
 * indices): x = f(sigma_0 z_0, sigma_0); then for each later tau: x = f(x + sqrt(tau^2 -
 * sigma_min^2) z, tau). One step is the list {sigma_max}.
 * [LHW] models (VP chain): each level sigma is mapped to the chain index t whose sigma_t is
 * nearest in log scale; x = f(Y, t_0) with Y ~ N(0, I); then re-noise
 * x_hat = sqrt(abar_t / abar_1) x + sqrt(1 - abar_t / abar_1) z and x = f(x_hat, t). One step is
 * {sigma_T}. The mapped levels are reported back.
 *
 * Noise: point i at stage s uses only cm_rng_fork(cm_rng_fork(sample stream of seed, s), i), so
 * samples do not depend on the batch size or the number of threads, and the first n points of
 * a draw of n' > n points are the draw of n points. Output in the data's original units.
 */
#ifndef CM_SAMPLER_H
#define CM_SAMPLER_H

#include <stddef.h>
#include <stdint.h>

#include "cm/model.h"

#define CM_SAMPLER_MAX_LEVELS 64
#define CM_SAMPLER_CHUNK 2048 /* rows per network evaluation */

/* Validate and map a list of levels for `model` into used[count] (VE: the values themselves;
 * [LHW]: sigma_t of the nearest chain index). count = 0 means one step (used[0] = sigma_max or
 * sigma_T, *out_count = 1). Levels must be finite, > sigma_min (after the first: strictly
 * decreasing) and, for [LHW], map to strictly decreasing chain indices. */
cm_status cm_sampler_levels(double *used, size_t *out_count, const cm_model *model,
                            const double *levels, size_t count);

/* Draw n samples into out (n x D, original units). Allocates its workspace once. */
cm_status cm_sample(double *out, const cm_model *model, const double *levels, size_t level_count,
                    size_t n, uint64_t seed);

/* Progress of a long draw: report(context, done, total) after every chunk of CM_SAMPLER_CHUNK
 * points (done counts finished points; the last call has done = total). The callback only
 * observes: it cannot change or stop the draw. */
typedef struct {
    void (*report)(void *context, size_t done, size_t total);
    void *context;
} cm_sample_progress;

/* cm_sample with a progress callback (progress may be NULL); the same samples, bit for bit. */
cm_status cm_sample_with_progress(double *out, const cm_model *model, const double *levels,
                                  size_t level_count, size_t n, uint64_t seed,
                                  const cm_sample_progress *progress);

#endif
