/* cmd_sample.c: `cm sample`: one-step or multistep samples from a trained model ([CM]
 * Algorithm 1; SPEC section 6), or from a dsm denoiser with a diffusion sampler (DDIM, Heun,
 * DDPM; diffusion.h), written as NPY or CSV, optionally drawn over the training data in a PNG. */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "cm/alloc.h"
#include "cm/data.h"
#include "cm/diffusion.h"
#include "cm/io.h"
#include "cm/model.h"
#include "plot.h"
#include "cm/sampler.h"
#include "cm/schedule.h"

#define PNG_REFERENCE_POINTS 5000

/* Scatter of the samples over fresh draws of the model's training data, when it can be opened. */
static cm_status write_png(const char *path, const cm_model *model, const double *samples,
                           size_t n, const char *title) {
    size_t dim = model->config.network.dim;
    cm_data *data = NULL;
    double *reference = NULL;
    size_t reference_count = 0;
    if (model->data_source[0] && cm_data_open(&data, model->data_source) == CM_OK &&
        cm_data_dim(data) == dim) {
        reference_count = cm_data_values(data) && cm_data_rows(data) < PNG_REFERENCE_POINTS
                              ? cm_data_rows(data) : PNG_REFERENCE_POINTS;
        reference = cm_malloc(reference_count * dim, sizeof(double));
        if (reference) {
            cm_rng rng;
            cm_rng_init(&rng, 12345);
            cm_data_sample(data, &rng, reference_count, reference);
        } else {
            reference_count = 0;
        }
    } else {
        fprintf(stderr, "cm sample: note: training data '%s' unavailable; the PNG shows samples only\n",
                model->data_source);
    }
    cm_error_clear();
    cm_status status = cm_plot_scatter_png(path, reference, reference_count, samples, n, dim, title);
    cm_free(reference);
    cm_data_free(data);
    return status;
}

/* A dsm model: a diffusion sampler over its denoiser. */
static int sample_denoiser(const cm_model *model, const char *sampler_name, const char *grid_name,
                           size_t steps, size_t n, uint64_t seed, const char *out,
                           const char *png, int quiet, int has_levels) {
    const char *command = "sample";
    if (has_levels)
        return cli_usage_error(command, "--sigmas/--times apply to consistency models; a dsm model "
                               "takes --sampler and --steps");
    cm_diffusion_options o = cm_diffusion_options_for_model(model);
    if (cm_diffusion_sampler_parse(&o.sampler, sampler_name) != CM_OK ||
        cm_grid_kind_parse(&o.grid, grid_name) != CM_OK)
        return cli_usage_error(command, "%s", cm_error_detail());
    if (steps > CM_DIFFUSION_MAX_STEPS)
        return cli_usage_error(command, "--steps %zu: at most %d", steps, CM_DIFFUSION_MAX_STEPS);
    o.steps = steps;
    size_t dim = model->config.network.dim, nfe = 0;
    double *samples = cm_malloc(n * dim, sizeof(double));
    cm_status status = samples ? CM_OK : cm_error_set(CM_ERR_NOMEM, "%zu samples", n);
    double start = cli_seconds();
    if (status == CM_OK) status = cm_diffusion_sample_model(samples, model, &o, n, seed, &nfe);
    double elapsed = cli_seconds() - start;
    if (status == CM_OK && out) status = cm_matrix_write(out, samples, n, dim);
    char title[256];
    snprintf(title, sizeof title, "dsm, %s, %zu steps (%s grid), NFE %zu", cm_diffusion_sampler_name(o.sampler),
             steps, cm_grid_kind_name(o.grid), nfe);
    if (status == CM_OK && png) status = write_png(png, model, samples, n, title);
    if (status == CM_OK && !quiet) {
        fprintf(stderr, "cm sample: %zu samples (%s) in %.3f s", n, title, elapsed);
        if (out) fprintf(stderr, " -> %s", out);
        if (png) fprintf(stderr, " -> %s", png);
        fprintf(stderr, "\n");
    }
    cm_free(samples);
    return status == CM_OK ? CLI_OK : cli_fail(command, status);
}

/* cd, cd2: a model distilled on a fixed Karras grid has seen only those levels (its embedding
 * of a level in between is an input it never met: docs/sampling.md, "Level search"), so a level
 * off that grid gets a warning naming the nearest grid level. */
static void warn_off_grid(const cm_model *model, const double *levels, size_t count) {
    const cm_method_config *c = &model->config.method;
    if (!cm_method_is_distillation(c->kind)) return;
    double *grid = cm_malloc(c->cd_levels, sizeof(double));
    if (!grid || cm_karras_grid(grid, c->cd_levels, c->sigma_min, c->sigma_max, c->rho) != CM_OK) {
        cm_error_clear();
        cm_free(grid);
        return;
    }
    for (size_t i = 0; i < count; i++) {
        size_t nearest = 0;
        for (size_t j = 1; j < c->cd_levels; j++)
            if (fabs(log(grid[j] / levels[i])) < fabs(log(grid[nearest] / levels[i]))) nearest = j;
        if (fabs(grid[nearest] - levels[i]) > 1e-4 * grid[nearest]) /* 4 digits suffice */
            fprintf(stderr, "cm sample: warning: level %g is not one of the %zu levels this %s "
                    "model was distilled on (nearest: %.6g); it has seen only those\n", levels[i],
                    c->cd_levels, cm_method_name(c->kind), grid[nearest]);
    }
    cm_free(grid);
}

int cmd_sample(int argc, char **argv) {
    const char *command = "sample";
    const char *model_path = NULL, *out = NULL, *png = NULL;
    size_t n = 10000, threads = 1;
    uint64_t seed = 0;
    cli_list sigmas = {.count = 0}, times = {.count = 0};
    int quiet = 0;
    const char *sampler_name = "heun", *grid_name = "karras";
    size_t steps = 18;
    cli_option options[] = {
        {"model", OPT_STRING, &model_path, "model file (DIR/model.safetensors)", 0, 1, 0},
        {"n", OPT_SIZE, &n, "number of samples", 1, 0, 0},
        {"seed", OPT_U64, &seed, "seed of the sampling noise", 0, 0, 0},
        {"out", OPT_STRING, &out, "output file, .npy (float32) or .csv", 0, 0, 0},
        {"sigmas", OPT_LIST, &sigmas, "decreasing noise levels, e.g. 80,0.8 (default: one step)", 0, 0, 0},
        {"times", OPT_LIST, &times, "lhw: decreasing chain indices t, e.g. 100,40", 0, 0, 0},
        {"sampler", OPT_STRING, &sampler_name, "dsm models: ddim (Euler) | heun | ddpm", 0, 0, 0},
        {"steps", OPT_SIZE, &steps, "dsm models: sampler steps N (heun: 2N - 1 network calls)", 1, 0, 0},
        {"grid", OPT_STRING, &grid_name, "dsm models: karras | lhw (geometric) noise levels", 0, 0, 0},
        {"png", OPT_STRING, &png, "scatter of the samples over the data (first 2 coordinates)", 0, 0, 0},
        {"threads", OPT_SIZE, &threads, "BLAS threads", 1, 0, 0},
        {"quiet", OPT_FLAG, &quiet, "print nothing on success", 0, 0, 0},
    };
    int parsed = cli_parse(argc, argv, 2, options, sizeof options / sizeof options[0], command,
                           "Draw samples from a consistency model in one step, or in several with\n"
                           "--sigmas (VE noise levels as values; [CM] Algorithm 1). For lhw models the\n"
                           "levels are mapped to the nearest chain index, or given as --times.\n"
                           "A dsm model (a denoiser) is sampled with --sampler and --steps instead.");
    if (parsed != CLI_OK) return parsed;
    if (!out && !png) return cli_usage_error(command, "give --out and/or --png");
    if (sigmas.count && times.count) return cli_usage_error(command, "give --sigmas or --times, not both");
    if (n > ((size_t)1 << 28)) return cli_usage_error(command, "--n %zu: at most 2^28", n);
    if (threads > 64) return cli_usage_error(command, "--threads %zu: at most 64", threads);
    cli_set_threads(threads);
    cm_model model;
    cm_status status = cm_model_load(&model, model_path);
    if (status != CM_OK) return cli_fail(command, status);
    size_t dim = model.config.network.dim;
    if (model.config.method.kind == CM_METHOD_DSM) {
        int code = sample_denoiser(&model, sampler_name, grid_name, steps, n, seed, out, png,
                                   quiet, sigmas.count || times.count);
        cm_model_free(&model);
        return code;
    }
    const char *denoiser_only[] = {"sampler", "steps", "grid"};
    for (size_t i = 0; i < sizeof denoiser_only / sizeof denoiser_only[0]; i++)
        if (cli_option_seen(options, sizeof options / sizeof options[0], denoiser_only[i])) {
            const char *method = cm_method_name(model.config.method.kind); /* a static string */
            cm_model_free(&model);
            return cli_usage_error(command, "--%s applies to dsm models; a %s model is sampled "
                                   "with --sigmas", denoiser_only[i], method);
        }
    if (times.count) {
        if (model.config.method.kind != CM_METHOD_LHW) {
            cm_model_free(&model);
            return cli_usage_error(command, "--times applies to lhw models; this one is %s",
                                   cm_method_name(model.config.method.kind));
        }
        for (size_t i = 0; i < times.count; i++) {
            double t = times.values[i];
            if (t != (double)(size_t)t || t < 1 || t > (double)model.config.method.chain_T) {
                cm_model_free(&model);
                return cli_usage_error(command, "--times: %g is not an integer in [1, T = %zu]", t,
                                       model.config.method.chain_T);
            }
            sigmas.values[i] = model.schedule.sigma[(size_t)t];
        }
        sigmas.count = times.count;
    }
    double used[CM_SAMPLER_MAX_LEVELS];
    size_t used_count = 0;
    double *samples = cm_malloc(n * dim, sizeof(double));
    status = samples ? CM_OK : cm_error_set(CM_ERR_NOMEM, "%zu samples of dimension %zu", n, dim);
    if (status == CM_OK) status = cm_sampler_levels(used, &used_count, &model, sigmas.values, sigmas.count);
    if (status == CM_OK && model.config.method.kind != CM_METHOD_LHW && used[0] > model.config.method.sigma_max && !quiet)
        fprintf(stderr, "cm sample: note: first level %g is above the model's sigma_max %g (trained up to "
                        "there only; the map is extrapolated)\n", used[0], model.config.method.sigma_max);
    if (status == CM_OK && !quiet) warn_off_grid(&model, used, used_count);
    double start = cli_seconds();
    if (status == CM_OK) status = cm_sample(samples, &model, sigmas.values, sigmas.count, n, seed);
    double elapsed = cli_seconds() - start;
    if (status == CM_OK && out) status = cm_matrix_write(out, samples, n, dim);
    char title[256];
    int length = snprintf(title, sizeof title, "%s, %zu step%s:", cm_method_name(model.config.method.kind),
                          used_count, used_count > 1 ? "s" : "");
    for (size_t i = 0; i < used_count && length > 0 && (size_t)length < sizeof title - 16; i++)
        length += snprintf(title + length, sizeof title - (size_t)length, " %.3g", used[i]);
    if (status == CM_OK && png) status = write_png(png, &model, samples, n, title);
    if (status == CM_OK && !quiet) {
        fprintf(stderr, "cm sample: %zu samples (%s) in %.3f s", n, title, elapsed);
        if (out) fprintf(stderr, " -> %s", out);
        if (png) fprintf(stderr, " -> %s", png);
        fprintf(stderr, "\n");
    }
    cm_free(samples);
    cm_model_free(&model);
    return status == CM_OK ? CLI_OK : cli_fail(command, status);
}
