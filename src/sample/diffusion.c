/* diffusion.c: denoisers (a trained dsm model, an exact law) and the diffusion samplers of
 * diffusion.h: Euler (= DDIM) and Heun on the VE probability-flow ODE, EDM Algorithm 1 (Karras
 * et al. 2022), and DDPM ancestral sampling (Ho et al. 2020) written with the x0-prediction
 * posterior in VE units. Grids: Karras ([CM], EDM eq. 5) or geometric ([LHW]'s shape).
 */
#include "cm/diffusion.h"

#include <math.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/evaluator.h"
#include "cm/sampler.h"
#include "cm/schedule.h"

static const char *const sampler_names[] = {"ddim", "heun", "ddpm"};
static const char *const grid_names[] = {"karras", "lhw"};

static cm_status parse_enum(int *out, const char *text, const char *const *names, int count,
                            const char *what, const char *valid) {
    for (int i = 0; i < count; i++)
        if (text && strcmp(text, names[i]) == 0) {
            *out = i;
            return CM_OK;
        }
    return cm_error_set(CM_ERR_INVALID, "unknown %s '%s' (valid: %s)", what, text ? text : "",
                        valid);
}

const char *cm_diffusion_sampler_name(cm_diffusion_sampler s) {
    return (int)s >= 0 && s < CM_DIFFUSION_SAMPLER_COUNT ? sampler_names[s] : "?";
}
cm_status cm_diffusion_sampler_parse(cm_diffusion_sampler *out, const char *text) {
    int v = 0;
    if (text && strcmp(text, "euler") == 0) text = "ddim"; /* the same method */
    CM_TRY(parse_enum(&v, text, sampler_names, CM_DIFFUSION_SAMPLER_COUNT, "sampler",
                      "ddim (= euler), heun, ddpm"));
    *out = (cm_diffusion_sampler)v;
    return CM_OK;
}
const char *cm_grid_kind_name(cm_grid_kind k) {
    return (int)k >= 0 && k < CM_GRID_COUNT ? grid_names[k] : "?";
}
cm_status cm_grid_kind_parse(cm_grid_kind *out, const char *text) {
    int v = 0;
    CM_TRY(parse_enum(&v, text, grid_names, CM_GRID_COUNT, "grid", "karras, lhw"));
    *out = (cm_grid_kind)v;
    return CM_OK;
}

/* ---- the dsm model as a denoiser: D(x, sigma) = c_skip x + c_out F(c_in x, c_noise), the
 * coefficients of cm_consistency_ve at sigma_min = 0 (the EDM preconditioning), through an
 * evaluator (evaluator.h) owned by the denoiser. */

static void model_denoiser_release(void *context) { cm_evaluator_free(context); }

static cm_status model_denoise(void *context, const double *x, const double *sigma, size_t n,
                               double *out) {
    cm_evaluator_denoise(context, out, x, sigma, n);
    return CM_OK;
}

cm_status cm_denoiser_from_model(cm_denoiser *out, const cm_model *model) {
    return cm_denoiser_from_model_rows(out, model, cm_evaluator_options_for(model).chunk);
}

cm_status cm_denoiser_from_model_rows(cm_denoiser *out, const cm_model *model, size_t rows) {
    *out = (cm_denoiser){0};
    if (rows < 1 || rows > CM_SAMPLER_CHUNK)
        return cm_error_set(CM_ERR_INVALID, "denoiser rows %zu out of [1, %d]", rows,
                            CM_SAMPLER_CHUNK);
    if (model->config.method.kind != CM_METHOD_DSM)
        return cm_error_set(CM_ERR_INVALID, "a %s model is a consistency function, not a denoiser "
                            "(train one with --method dsm)",
                            cm_method_name(model->config.method.kind));
    cm_evaluator_options options = cm_evaluator_options_for(model);
    options.chunk = rows;
    options.blocks = rows < CM_EVALUATOR_BLOCKS ? rows : CM_EVALUATOR_BLOCKS;
    cm_evaluator *evaluator;
    CM_TRY(cm_evaluator_alloc(&evaluator, model, &options));
    *out = (cm_denoiser){.denoise = model_denoise, .context = evaluator,
                         .release = model_denoiser_release, .dim = model->config.network.dim};
    return CM_OK;
}

void cm_denoiser_free(cm_denoiser *denoiser) {
    if (!denoiser) return;
    if (denoiser->release) denoiser->release(denoiser->context);
    *denoiser = (cm_denoiser){0};
}

cm_status cm_denoiser_score(const cm_denoiser *d, const double *x, const double *sigma, size_t n,
                            double *out) {
    CM_TRY(d->denoise(d->context, x, sigma, n, out));
    for (size_t r = 0; r < n; r++)
        for (size_t i = 0; i < d->dim; i++) {
            size_t k = r * d->dim + i;
            out[k] = (out[k] - x[k]) / (sigma[r] * sigma[r]);
        }
    return CM_OK;
}

/* ---- grids and samplers */

cm_diffusion_options cm_diffusion_options_default(void) {
    return (cm_diffusion_options){.sampler = CM_DIFFUSION_HEUN, .grid = CM_GRID_KARRAS,
                                  .steps = 18,   /* EDM's CIFAR-10 setting (35 NFE with Heun) */
                                  .sigma_min = CM_KARRAS_SIGMA_MIN, .sigma_max = 10.0,
                                  .rho = CM_KARRAS_RHO};
}

cm_diffusion_options cm_diffusion_options_for_model(const cm_model *model) {
    cm_diffusion_options o = cm_diffusion_options_default();
    o.sigma_min = model->config.method.sigma_min;
    o.sigma_max = model->config.method.sigma_max;
    o.rho = model->config.method.rho;
    return o;
}

size_t cm_diffusion_nfe(cm_diffusion_sampler sampler, size_t steps) {
    return sampler == CM_DIFFUSION_HEUN ? 2 * steps - 1 : steps;
}

cm_status cm_diffusion_grid(double *grid, const cm_diffusion_options *o) {
    size_t N = o->steps;
    if (N < 1 || N > CM_DIFFUSION_MAX_STEPS)
        return cm_error_set(CM_ERR_INVALID, "steps %zu out of [1, %d]", N, CM_DIFFUSION_MAX_STEPS);
    if (!(o->sigma_min > 0) || !(o->sigma_max > o->sigma_min) || !isfinite(o->sigma_max))
        return cm_error_set(CM_ERR_INVALID, "need 0 < sigma_min (%g) < sigma_max (%g)",
                            o->sigma_min, o->sigma_max);
    if (o->grid == CM_GRID_KARRAS && !(o->rho > 0 && isfinite(o->rho)))
        return cm_error_set(CM_ERR_INVALID, "rho %g must be > 0", o->rho);
    grid[0] = o->sigma_max;
    if (N >= 2) {
        if (o->grid == CM_GRID_KARRAS) {
            CM_TRY(cm_karras_grid(grid, N, o->sigma_min, o->sigma_max, o->rho));
        } else {
            double lo = log(o->sigma_min), hi = log(o->sigma_max);
            for (size_t i = 0; i < N; i++) grid[i] = exp(lo + (hi - lo) * (double)i / (double)(N - 1));
            grid[0] = o->sigma_min, grid[N - 1] = o->sigma_max;
        }
        for (size_t i = 0; i < N / 2; i++) { /* increasing -> decreasing */
            double t = grid[i];
            grid[i] = grid[N - 1 - i];
            grid[N - 1 - i] = t;
        }
    }
    grid[N] = 0.0;
    return CM_OK;
}

cm_status cm_diffusion_step(const cm_denoiser *den, cm_diffusion_sampler method,
                            const double *from, const double *to, double *x, size_t n,
                            double *work) {
    size_t D = den->dim;
    double *d1 = work, *x2 = work + n * D, *d2 = work + 2 * n * D;
    CM_TRY(den->denoise(den->context, x, from, n, d1));
    for (size_t r = 0; r < n; r++) {
        double h = to[r] - from[r];
        for (size_t i = 0; i < D; i++) {
            size_t k = r * D + i;
            d1[k] = (x[k] - d1[k]) / from[r]; /* dx/dsigma at (x, from) */
            x2[k] = x[k] + h * d1[k];
        }
    }
    if (method != CM_DIFFUSION_HEUN) {
        memcpy(x, x2, n * D * sizeof(double));
        return CM_OK;
    }
    CM_TRY(den->denoise(den->context, x2, to, n, d2));
    for (size_t r = 0; r < n; r++) {
        double h = to[r] - from[r];
        for (size_t i = 0; i < D; i++) {
            size_t k = r * D + i;
            if (to[r] > 0) /* EDM Algorithm 1: no correction on the last step to sigma = 0 */
                x[k] += 0.5 * h * (d1[k] + (x2[k] - d2[k]) / to[r]);
            else
                x[k] = x2[k];
        }
    }
    return CM_OK;
}

/* Work of cm_diffusion_step for n points: 3 n d doubles, plus two level rows of n. */
static double *solver_work(size_t n, size_t D) { return cm_malloc(3 * n * D + 2 * n, sizeof(double)); }

cm_status cm_diffusion_solve(const cm_denoiser *den, cm_diffusion_sampler method,
                             const double *grid, size_t count, double *x, size_t n, size_t *nfe) {
    if (method == CM_DIFFUSION_DDPM)
        return cm_error_set(CM_ERR_INVALID, "ddpm is not an ODE solver");
    if (count < 2) return cm_error_set(CM_ERR_INVALID, "an ODE solve needs at least two levels");
    for (size_t s = 0; s + 1 < count; s++)
        if (!(grid[s] > grid[s + 1]) || !(grid[s + 1] >= 0) || !isfinite(grid[s]))
            return cm_error_set(CM_ERR_INVALID, "levels must decrease to >= 0 (%g then %g)",
                                grid[s], grid[s + 1]);
    double *work = solver_work(n, den->dim);
    if (!work) return cm_error_set(CM_ERR_NOMEM, "solver work (%zu points)", n);
    double *from = work + 3 * n * den->dim, *to = from + n;
    size_t calls = 0;
    cm_status status = CM_OK;
    for (size_t s = 0; s + 1 < count && status == CM_OK; s++) {
        for (size_t r = 0; r < n; r++) from[r] = grid[s], to[r] = grid[s + 1];
        status = cm_diffusion_step(den, method, from, to, x, n, work);
        calls += method == CM_DIFFUSION_HEUN && grid[s + 1] > 0 ? 2 : 1;
    }
    cm_free(work);
    if (nfe) *nfe = calls;
    return status;
}

/* Fill x[n x d] with scale * (normals of stage s), point i from child i of the stage stream. */
static void stage_normals(double *x, const cm_rng *sample_stream, size_t stage, size_t n,
                          size_t D, double scale) {
    cm_rng stage_rng;
    cm_rng_fork(&stage_rng, sample_stream, stage);
    for (size_t i = 0; i < n; i++) {
        cm_rng point;
        cm_rng_fork(&point, &stage_rng, i);
        cm_rng_normal_fill_f64(&point, x + i * D, D);
        for (size_t k = 0; k < D; k++) x[i * D + k] *= scale;
    }
}

/* DDPM ancestral over the grid: x <- D + (s'^2 / s^2)(x - D) + s' sqrt(1 - s'^2 / s^2) z. */
static cm_status ddpm(const cm_denoiser *den, const double *grid, size_t count, double *x,
                      size_t n, const cm_rng *stream) {
    size_t D = den->dim;
    double *work = cm_malloc(2 * n * D + n, sizeof(double));
    if (!work) return cm_error_set(CM_ERR_NOMEM, "ddpm work (%zu points)", n);
    double *den_out = work, *z = work + n * D, *level = z + n * D;
    cm_status status = CM_OK;
    for (size_t s = 0; s + 1 < count && status == CM_OK; s++) {
        for (size_t r = 0; r < n; r++) level[r] = grid[s];
        status = den->denoise(den->context, x, level, n, den_out);
        double ratio = grid[s + 1] * grid[s + 1] / (grid[s] * grid[s]);
        double noise = grid[s + 1] * sqrt(1.0 - ratio);
        if (status == CM_OK && noise > 0) stage_normals(z, stream, s + 1, n, D, noise);
        for (size_t k = 0; k < n * D && status == CM_OK; k++)
            x[k] = den_out[k] + ratio * (x[k] - den_out[k]) + (noise > 0 ? z[k] : 0.0);
    }
    cm_free(work);
    return status;
}

cm_status cm_diffusion_sample(double *out, const cm_denoiser *den, const cm_diffusion_options *o,
                              size_t n, uint64_t seed, size_t *nfe) {
    if (n == 0) return cm_error_set(CM_ERR_INVALID, "number of samples must be >= 1");
    if (o->sampler >= CM_DIFFUSION_SAMPLER_COUNT || o->grid >= CM_GRID_COUNT)
        return cm_error_set(CM_ERR_INVALID, "unknown sampler or grid");
    if (o->steps < 1 || o->steps > CM_DIFFUSION_MAX_STEPS)
        return cm_error_set(CM_ERR_INVALID, "steps %zu out of [1, %d]", o->steps,
                            CM_DIFFUSION_MAX_STEPS);
    double *grid = cm_malloc(o->steps + 1, sizeof(double));
    if (!grid) return cm_error_set(CM_ERR_NOMEM, "grid");
    cm_status status = cm_diffusion_grid(grid, o);
    cm_rng root, stream;
    cm_rng_init(&root, seed);
    cm_rng_fork(&stream, &root, CM_STREAM_SAMPLE);
    if (status == CM_OK) {
        stage_normals(out, &stream, 0, n, den->dim, grid[0]);
        if (o->sampler == CM_DIFFUSION_DDPM)
            status = ddpm(den, grid, o->steps + 1, out, n, &stream);
        else
            status = cm_diffusion_solve(den, o->sampler, grid, o->steps + 1, out, n, NULL);
    }
    cm_free(grid);
    if (nfe) *nfe = cm_diffusion_nfe(o->sampler, o->steps);
    return status;
}

cm_status cm_diffusion_sample_model(double *out, const cm_model *model,
                                    const cm_diffusion_options *o, size_t n, uint64_t seed,
                                    size_t *nfe) {
    cm_denoiser den;
    CM_TRY(cm_denoiser_from_model(&den, model));
    cm_status status = cm_diffusion_sample(out, &den, o, n, seed, nfe);
    cm_denoiser_free(&den);
    if (status == CM_OK) cm_transform_invert(&model->transform, out, n);
    return status;
}
