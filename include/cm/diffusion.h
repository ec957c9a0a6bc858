/* diffusion.h: the denoiser interface and the diffusion samplers that consistency models replace
 * (EDM = Karras, Aittala, Aila, Laine, "Elucidating the design space of diffusion-based
 * generative models", NeurIPS 2022; DDPM = Ho, Jain, Abbeel 2020; DDIM = Song, Meng, Ermon 2021).
 *
 * Everything here is in VE units: X_sigma = X_0 + sigma Z, and a denoiser is
 * D(x, sigma) = E[X_0 | X_sigma = x] (D(x, 0) = x). Two denoisers plug into the same samplers:
 *   - a trained `dsm` model (config.h): D(x, sigma) = c_skip x + c_out F(c_in x, c_noise) with
 *     the EDM coefficients, which are cm_consistency_ve(sigma, sigma_data, 0) (docs/math.md at
 *     sigma_min = 0), in the model's standardised units;
 *   - an exact law (law.h): the VP point x_vp = x / sqrt(1 + sigma^2) at log-SNR
 *     lambda = -2 log sigma has the same posterior mean, so D is cm_law_denoise_point there.
 * The probability-flow ODE in VE form is dx/dsigma = (x - D(x, sigma)) / sigma (EDM eq. 4 with
 * s(t) = 1, sigma(t) = t); DDIM is exactly its Euler method (EDM section 3).
 *
 * Samplers over a grid sigma_0 > ... > sigma_{N-1} > sigma_N = 0 (EDM Algorithm 1):
 *   euler ("ddim"): x += (s' - s) (x - D(x, s)) / s                     N network calls
 *   heun:           Euler predictor, then the trapezoid with the slope at s' (not at s' = 0)
 *                                                                        2N - 1 calls
 *   ddpm:           ancestral: x' ~ N(D + (s'^2 / s^2)(x - D), s'^2 (s^2 - s'^2) / s^2 I), the
 *                   posterior of X_{s'} given X_s = x and X_0 = D(x, s)  N calls
 * Grids: Karras ([CM], EDM eq. 5: N levels from sigma_max down to sigma_min, exponent rho) or
 * [LHW]'s shape, uniform in log-SNR (docs/math.md: the [LHW] schedule is almost uniform in
 * log-SNR), i.e. geometric in sigma from sigma_max to sigma_min; both then end at 0.
 * Start x = sigma_0 Z ([CM], EDM). Noise: point i at stage s uses only
 * cm_rng_fork(cm_rng_fork(sample stream of seed, s), i), as sampler.h does.
 */
#ifndef CM_DIFFUSION_H
#define CM_DIFFUSION_H

#include <stddef.h>
#include <stdint.h>

#include "cm/law.h"
#include "cm/model.h"
#include "cm/status.h"

/* out[n x d] = D(x_i, sigma[i]) for n points x[n x d] in VE units, one noise level per point
 * (sigma[i] = 0 gives x_i). Must not allocate (callers run it inside loops). */
typedef cm_status (*cm_denoise_fn)(void *context, const double *x, const double *sigma, size_t n,
                                   double *out);

/* A denoiser: the function, its context (owned by the denoiser when `release` is set), and its
 * data dimension. */
typedef struct {
    cm_denoise_fn denoise;
    void *context;
    void (*release)(void *context);
    size_t dim;
} cm_denoiser;

/* The denoiser of a trained dsm model, in the model's standardised units (the model is
 * borrowed and must outlive the denoiser). Points are evaluated in chunks of
 * CM_SAMPLER_CHUNK rows, always at full chunk shape (so a point's value does not depend on the
 * batch it came in). CM_ERR_INVALID unless the model's method is dsm. */
cm_status cm_denoiser_from_model(cm_denoiser *out, const cm_model *model);
/* The same with `rows` (1..CM_SAMPLER_CHUNK) rows per network call: a trainer's teacher uses its
 * batch size, so that a batch of B points costs B rows of work, not a padded chunk. */
cm_status cm_denoiser_from_model_rows(cm_denoiser *out, const cm_model *model, size_t rows);
/* The exact denoiser of a law (law.h, borrowed), in the law's units. */
cm_status cm_denoiser_from_law(cm_denoiser *out, const cm_law *law);
void cm_denoiser_free(cm_denoiser *denoiser);
/* score(x, sigma) = (D(x, sigma) - x) / sigma^2 (Tweedie), for sigma > 0. */
cm_status cm_denoiser_score(const cm_denoiser *denoiser, const double *x, const double *sigma,
                            size_t n, double *out);

typedef enum {
    CM_DIFFUSION_EULER, /* "ddim": Euler on the probability-flow ODE */
    CM_DIFFUSION_HEUN,  /* "heun": EDM's second-order method */
    CM_DIFFUSION_DDPM,  /* "ddpm": ancestral sampling */
    CM_DIFFUSION_SAMPLER_COUNT
} cm_diffusion_sampler;
const char *cm_diffusion_sampler_name(cm_diffusion_sampler sampler);
cm_status cm_diffusion_sampler_parse(cm_diffusion_sampler *out, const char *text);

typedef enum { CM_GRID_KARRAS, CM_GRID_LHW, CM_GRID_COUNT } cm_grid_kind;
const char *cm_grid_kind_name(cm_grid_kind kind);
cm_status cm_grid_kind_parse(cm_grid_kind *out, const char *text);

#define CM_DIFFUSION_MAX_STEPS 4096

typedef struct {
    cm_diffusion_sampler sampler;
    cm_grid_kind grid;
    size_t steps;        /* N >= 1: levels sigma_0..sigma_{N-1}, then 0 */
    double sigma_min;    /* last non-zero level; default 0.002 [CM], EDM */
    double sigma_max;    /* first level; default 10 (the trainer's, config.c), set from a model */
    double rho;          /* Karras exponent; default 7 ([CM], EDM) */
} cm_diffusion_options;
cm_diffusion_options cm_diffusion_options_default(void);

/* The N + 1 levels of `options` into grid[N + 1] (grid[N] = 0). With N = 1: {sigma_max, 0}. */
cm_status cm_diffusion_grid(double *grid, const cm_diffusion_options *options);

/* Network calls per point of a sampler with N steps (euler, ddpm: N; heun: 2N - 1). */
size_t cm_diffusion_nfe(cm_diffusion_sampler sampler, size_t steps);

/* One ODE step per point, from level from[i] > 0 to to[i] >= 0 (Euler or Heun; Heun makes no
 * correction when to[i] = 0), in place on x[n x d]; work: 3 n d doubles. No allocation. */
cm_status cm_diffusion_step(const cm_denoiser *denoiser, cm_diffusion_sampler method,
                            const double *from, const double *to, double *x, size_t n,
                            double *work);

/* Integrate the probability-flow ODE in place over x[n x d] along the decreasing levels
 * grid[0..count) (count >= 2, grid[count - 1] may be 0), Euler or Heun (CM_DIFFUSION_DDPM is
 * refused). *nfe (may be NULL) receives the denoiser calls per point. Allocates its work once. */
cm_status cm_diffusion_solve(const cm_denoiser *denoiser, cm_diffusion_sampler method,
                             const double *grid, size_t count, double *x, size_t n, size_t *nfe);

/* Draw n samples into out[n x d] in the denoiser's units. *nfe may be NULL. */
cm_status cm_diffusion_sample(double *out, const cm_denoiser *denoiser,
                              const cm_diffusion_options *options, size_t n, uint64_t seed,
                              size_t *nfe);

/* Defaults with sigma_max, sigma_min and rho taken from a model's config. */
cm_diffusion_options cm_diffusion_options_for_model(const cm_model *model);
/* For a dsm model: samples in the data's original units (the model's transform inverted). */
cm_status cm_diffusion_sample_model(double *out, const cm_model *model,
                                    const cm_diffusion_options *options, size_t n, uint64_t seed,
                                    size_t *nfe);

#endif
