/* multistep.h: multistep sampling over a two-time map (docs/sampling.md): the [JHMZ] sampler with
 * a constant step eta in OU time and an overshoot delta, [LFC]'s Langevin correction, a search
 * for the intermediate noise levels of [CM] Algorithm 1, and the closed forms of all of it for
 * Gaussian data, where every map is affine and every output law Gaussian.
 *
 * Units are VE (X_sigma = X_0 + sigma Z). OU time t and VE level sigma correspond through the
 * variance-preserving process X_t = e^{-t} X_0 + sqrt(1 - e^{-2t}) Z:
 *     sigma(t) = sqrt(e^{2t} - 1) = sqrt(expm1(2t)),   t(sigma) = log1p(sigma^2) / 2.
 *
 * A two-time map g(x, from, to) ~ Phi_{from -> to}(x) (the probability-flow map between VE
 * levels). Provided: the exact flow map of a law (law.h, cm_law_flow), the closed-form map of a
 * diagonal Gaussian with a controlled error, and, for a one-time consistency model f(x, sigma)
 * (VE methods ct, ict, cd), OUR construction: predict x0 = f(x, from), then re-noise
 * deterministically with the implied noise, g = x0 + (to / from) (x - x0) (the DDIM update
 * written in VE units); and a trained two-time network g_theta(x, t, s) (cd2 models,
 * consistency.h), used as it is.
 *
 * [JHMZ] sampler (reconstructed: docs/sampling.md), K steps of size eta ending at t_end:
 *     T = t_end + K eta;  x = sqrt(1 + sigma(T)^2) Z  (the VP prior N(0, I) in VE units)
 *     for k = 0..K-1:  t = T - k eta,  t' = t - eta,  s = max(t' - delta, t_end)
 *                      x = g(x, sigma(t), sigma(s));  if t' > s: x += sqrt(sigma(t')^2 - sigma(s)^2) Z
 * delta = 0 chains the map (an ODE solve), delta < 0 means "jump to t_end every time" ([CM]
 * Algorithm 1 on the levels sigma(T - k eta)). One map call per step: NFE = K.
 * [LFC] correction: then L unadjusted Langevin steps x += h score(x, sigma_end) + sqrt(2 h) Z.
 * Noise: the prior is stage 0, the re-noising after step k stage k + 1, Langevin step j stage
 * K + 1 + j; point i of a stage uses only
 * cm_rng_fork(cm_rng_fork(sample stream of seed, stage), i).
 */
#ifndef CM_MULTISTEP_H
#define CM_MULTISTEP_H

#include <stddef.h>
#include <stdint.h>

#include "cm/diffusion.h"
#include "cm/law.h"
#include "cm/model.h"
#include "cm/status.h"

double cm_ou_sigma(double t);
double cm_ou_time(double sigma);

/* out[n x d] = g(x, from, to) for n points (the same levels for all). */
typedef cm_status (*cm_two_time_fn)(void *context, const double *x, size_t n, double from,
                                    double to, double *out);
typedef struct {
    cm_two_time_fn map;
    void *context;
    void (*release)(void *context);
    size_t dim;
} cm_two_time_map;
void cm_two_time_free(cm_two_time_map *map);

/* Exact flow map of a law (borrowed): cm_law_flow between lambda = -2 log from and -2 log to. */
cm_status cm_two_time_from_law(cm_two_time_map *out, const cm_law *law);
/* A trained VE model (borrowed), in model units: our construction for ct, ict, cd; the network
 * itself for cd2 (a target level below its sigma_min is read as sigma_min). */
cm_status cm_two_time_from_model(cm_two_time_map *out, const cm_model *model);

/* Diagonal Gaussian N(mean, diag(variances)) (in its eigenbasis) and a controlled error:
 *     g(x, a, b) = mean + (1 + p relative) r (x - mean) + p offset,  r = sqrt((var + b^2)/(var + a^2))
 * relative = offset = 0 is the exact flow map; `offset` is added to every coordinate. The error
 * profile p is 1, or with profile_scale > 0, p = min(1, a / profile_scale): errors proportional
 * to the level the map starts from (learned consistency functions are worse at high noise, and
 * exact at sigma_min by construction).
 */
typedef struct {
    size_t dim;
    const double *mean, *variances; /* borrowed, d each */
    double relative, offset;
    double profile_scale;           /* 0: constant error */
} cm_gaussian_map;
cm_status cm_two_time_gaussian(cm_two_time_map *out, const cm_gaussian_map *gaussian);

typedef struct {
    size_t steps;            /* K >= 1 */
    double eta;              /* OU step > 0 */
    double delta;            /* overshoot >= 0; < 0: jump to sigma_end ([CM]) */
    double sigma_end;        /* final level > 0; default 0.002 ([CM] sigma_min) */
    size_t langevin_steps;   /* [LFC] correction: L >= 0 (0: none) */
    double langevin_step;    /* h > 0 */
} cm_jhmz_options;
cm_jhmz_options cm_jhmz_options_default(void);

/* Draw n samples into out[n x d] (the map's units). `score` (may be NULL when
 * langevin_steps = 0) is the denoiser whose score drives the correction. Allocates once. */
cm_status cm_jhmz_sample(double *out, const cm_two_time_map *map, const cm_denoiser *score,
                         const cm_jhmz_options *options, size_t n, uint64_t seed);

/* [LFC] correction on its own, in place on x[n x d] (d = score->dim, the score's units):
 * `steps` unadjusted Langevin steps x += step score(x, sigma) + sqrt(2 step) Z, score from the
 * denoiser by Tweedie (cm_denoiser_score). Langevin step j draws its noise as stage
 * first_stage + j of the sample stream of `seed` (the convention above: cm_jhmz_sample calls it
 * with first_stage = K + 1; after cm_sample with k levels, first_stage = k keeps the stages
 * disjoint). steps = 0 does nothing. Allocates once. */
cm_status cm_langevin_correct(double *x, size_t n, const cm_denoiser *score, double sigma,
                              size_t steps, double step, uint64_t seed, size_t first_stage);

/* The exact law of cm_jhmz_sample's output with the cm_two_time_gaussian map (and, for the
 * Langevin steps, the exact score of N(mean, diag(variances)) at sigma_end): Gaussian,
 * N(out_mean, diag(out_variances)), propagated coordinate by coordinate in closed form. */
cm_status cm_jhmz_gaussian(double *out_mean, double *out_variances, const cm_gaussian_map *g,
                           const cm_jhmz_options *options);
/* KL(output || target) and W2(output, target) of that law against the target
 * N(mean, diag(variances + sigma_end^2)), sums over coordinates of the 1-D closed forms. */
cm_status cm_jhmz_gaussian_error(double *kl, double *w2, const cm_gaussian_map *g,
                                 const cm_jhmz_options *options);

/* [CM] Algorithm 1 on explicit levels for the cm_two_time_gaussian map: x = g(sigma_0 Z, s_0,
 * sigma_end), then x = g(x + sqrt(s_k^2 - sigma_end^2) Z, s_k, sigma_end); output law into
 * out_mean / out_variances (closed form). */
cm_status cm_cm_gaussian(double *out_mean, double *out_variances, const cm_gaussian_map *g,
                         const double *levels, size_t count, double sigma_end);
/* KL(output || target) and W2(output, target) of that law against the target
 * N(mean, diag(variances + sigma_end^2)), as cm_jhmz_gaussian_error. */
cm_status cm_cm_gaussian_error(double *kl, double *w2, const cm_gaussian_map *g,
                               const double *levels, size_t count, double sigma_end);

/* Greedy search of [CM] Algorithm 1's levels for a consistency model (VE, or lhw: levels are
 * snapped by cm_sampler_levels): levels[0] = sigma_max (or sigma_T); level k (k = 1..count-1) is
 * the minimiser over log sigma in (sigma_min, levels[k-1]) of the sliced W1 (`projections`
 * directions; or exact W1 when projections = 0) between n samples and the held-out reference
 * (m x d, original units), with `iterations` evaluations, the earlier levels fixed: a grid of
 * up to 5 points over the interval (its low end: nearly the one-step sample), then golden-section
 * search around the best grid point with the rest; the best level evaluated wins. Samples use `seed`. *out_distance: the distance at the chosen levels. */
cm_status cm_multistep_search_levels(double *levels, double *out_distance, const cm_model *model,
                                     size_t count, const double *reference, size_t m, size_t n,
                                     size_t projections, size_t iterations, uint64_t seed);

#endif
