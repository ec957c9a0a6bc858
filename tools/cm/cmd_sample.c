/* cmd_sample.c: `cm sample`: one-step or multistep samples from a trained model ([CM]
 * Algorithm 1; docs/sampling.md), or from a dsm denoiser with a diffusion sampler (DDIM, Heun,
 * DDPM; diffusion.h), written as NPY or CSV, optionally drawn over the training data in a PNG
 * (a scatter of the first two coordinates; 1-D data as a histogram over the data's density;
 * image models as a grid of images).
 * Guards: every output is checked before anything is drawn or written; noise levels above the
 * model's trained range are refused unless --extrapolate; levels a cd/cd2 model was not
 * distilled on, and Heun steps too long for its corrector (measured, docs/sampling.md), warn,
 * also under --quiet (which silences only progress and the summary line).
 * Not here: the sampling arithmetic (the library) or searching levels (cm nfe).
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "cm/alloc.h"
#include "cm/data.h"
#include "cm/diffusion.h"
#include "cm/image.h"
#include "cm/io.h"
#include "cm/law.h"
#include "cm/model.h"
#include "plot.h"
#include "cm/sampler.h"
#include "cm/schedule.h"

#define PNG_REFERENCE_POINTS 5000
#define PNG_GRID_MAX_IMAGES 256       /* image models: the first 256 samples in the grid */
#define PNG_HISTOGRAM_MAX_SAMPLES 1000000 /* 1-D: the first million samples (i.i.d.: a uniform
                                           * subsample) in the histogram */
#define DENSITY_POINTS 512
/* The data density of a gauss:/gmm: source is the law's X_t density at this log-SNR: the noise
 * variance 1 / (1 + e^lambda) is about 1e-22, far below any data scale (law.h). */
#define DENSITY_LOG_SNR 50.0
/* A level counts as inside the trained range up to this relative excess (a level printed with
 * 4-6 digits and pasted back must not be refused). */
#define LEVEL_RANGE_TOLERANCE 1e-6
/* Heun's corrector uses the slope at the step's end s', so a long step from s to s' amplifies
 * the Euler predictor's error. On a dsm moons model (docs/sampling.md, "Heun with few steps")
 * Heun was worse than DDIM with the same steps, 8.6-970x the floor, exactly where a corrected
 * step has s / s' > 16 or their geometric mean exceeds 8 (2-5 steps on either grid over
 * [0.002, 10]); from 6 steps on it was as good or better. */
#define HEUN_MAX_STEP_RATIO 16.0
#define HEUN_MAX_MEAN_RATIO 8.0

/* ---------------------------------------------------------------- outputs */

/* An output path: the extension is one of `extensions` ("npy,csv") and its directory exists,
 * so that a long draw is not lost to a typo at the end. */
static int check_output(const char *option, const char *path, const char *extensions) {
    const char *dot = strrchr(path, '.'), *slash = strrchr(path, '/');
    char extension[16] = "";
    if (dot && (!slash || dot > slash) && strlen(dot + 1) < sizeof extension)
        snprintf(extension, sizeof extension, "%s", dot + 1);
    int known = 0;
    for (const char *e = extensions; *e;) {
        size_t length = strcspn(e, ",");
        known |= extension[0] && strlen(extension) == length && strncmp(e, extension, length) == 0;
        e += length + (e[length] == ',');
    }
    if (!known)
        return cli_usage_error("sample", "--%s %s: the extension must be one of: %s", option, path,
                               extensions);
    if (slash) {
        char directory[4096];
        snprintf(directory, sizeof directory, "%.*s", (int)(slash - path), path);
        struct stat info;
        if (directory[0] && (stat(directory, &info) != 0 || !S_ISDIR(info.st_mode)))
            return cli_fail("sample", cm_error_set(CM_ERR_IO, "--%s %s: no directory %s", option,
                                                   path, directory));
    }
    return CLI_OK;
}

/* The reference of the PNG: --ref (with --columns), else the model's training data; NULL with a
 * note when it cannot be opened (the PNG then shows the samples alone). */
static cm_data *open_reference(const cm_model *model, const char *ref, const char *columns) {
    const char *source = ref ? ref : model->data_source;
    cm_data *data = NULL;
    if (!source[0]) {
        fprintf(stderr, "cm sample: note: the model does not record its training data; the PNG "
                        "shows samples only (give --ref)\n");
        return NULL;
    }
    if (cm_data_open_with(&data, source, &(cm_data_options){.columns = columns}) != CM_OK) {
        fprintf(stderr, "cm sample: note: reference '%s' unavailable (%s); the PNG shows samples "
                        "only%s\n", source, cm_error_detail(), ref ? "" : " (give --ref)");
        cm_error_clear();
        return NULL;
    }
    if (cm_data_dim(data) != model->config.network.dim) {
        fprintf(stderr, "cm sample: note: reference '%s' has dimension %zu, the model %zu; the "
                        "PNG shows samples only\n", source, cm_data_dim(data),
                model->config.network.dim);
        cm_data_free(data);
        return NULL;
    }
    return data;
}

/* q-quantile of a copy of x[0..n) (n >= 1), sorted in scratch. */
static int compare_doubles(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}
static double quantile(double *scratch, const double *x, size_t n, double q) {
    memcpy(scratch, x, n * sizeof(double));
    qsort(scratch, n, sizeof(double), compare_doubles);
    return scratch[(size_t)(q * (double)(n - 1))];
}

/* The density of a gauss:/gmm: source on DENSITY_POINTS points spanning the robust range of
 * reference and samples (padded by a quarter on each side): 0 points for other sources. */
static size_t data_density(double *x, double *y, const cm_data *data, const double *reference,
                           size_t reference_count, const double *samples, size_t n) {
    cm_law *law = NULL;
    if (cm_law_from_data(&law, data) != CM_OK) {
        cm_error_clear();
        return 0;
    }
    size_t scratch_count = reference_count > n ? reference_count : n;
    double *scratch = cm_malloc(scratch_count, sizeof(double));
    size_t count = 0;
    if (scratch) {
        double low = fmin(quantile(scratch, reference, reference_count, 0.005),
                          quantile(scratch, samples, n, 0.005));
        double high = fmax(quantile(scratch, reference, reference_count, 0.995),
                           quantile(scratch, samples, n, 0.995));
        double pad = 0.25 * (high - low) + 1e-9;
        for (size_t i = 0; i < DENSITY_POINTS; i++)
            x[i] = low - pad + (high - low + 2 * pad) * (double)i / (DENSITY_POINTS - 1);
        if (isfinite(low) && isfinite(high) &&
            cm_law_log_density(law, DENSITY_LOG_SNR, x, DENSITY_POINTS, y) == CM_OK) {
            for (size_t i = 0; i < DENSITY_POINTS; i++) y[i] = exp(y[i]);
            count = DENSITY_POINTS;
        }
        cm_error_clear();
    }
    cm_free(scratch);
    cm_law_free(law);
    return count;
}

/* 1-D models: a histogram of the samples over one of the reference, with the data's density
 * when the source is a law. */
static cm_status write_histogram(const char *path, const cm_data *data, const double *reference,
                                 size_t reference_count, const double *samples, size_t n,
                                 const char *title) {
    double *density = cm_malloc(2 * DENSITY_POINTS, sizeof(double));
    if (!density) return cm_error_set(CM_ERR_NOMEM, "density curve");
    size_t shown = n < PNG_HISTOGRAM_MAX_SAMPLES ? n : PNG_HISTOGRAM_MAX_SAMPLES;
    size_t density_count = data && reference_count ? data_density(density, density + DENSITY_POINTS,
                                                                  data, reference, reference_count,
                                                                  samples, shown)
                                                   : 0;
    char full_title[320];
    snprintf(full_title, sizeof full_title, "%s%s", title,
             shown < n ? " (first 10^6 samples)" : "");
    cm_status status = cm_plot_histogram(NULL, path, reference, reference_count, samples, shown,
                                         density, density + DENSITY_POINTS, density_count,
                                         full_title);
    cm_free(density);
    return status;
}

/* The PNG of the samples: image models a grid of the first samples; 1-D models a histogram;
 * otherwise a scatter of the first two coordinates over fresh draws of the reference. */
static cm_status write_png(const char *path, const cm_model *model, const double *samples,
                           size_t n, const char *title, const char *ref, const char *columns) {
    const cm_network_config *net = &model->config.network;
    if (net->image_channels) {
        size_t shown = n < PNG_GRID_MAX_IMAGES ? n : PNG_GRID_MAX_IMAGES;
        return cm_image_write_grid(path, samples, shown, net->image_channels, net->image_height,
                                   net->image_width, (size_t)ceil(sqrt((double)shown)), 2);
    }
    size_t dim = net->dim;
    cm_data *data = open_reference(model, ref, columns);
    double *reference = NULL;
    size_t reference_count = 0;
    if (data) {
        size_t rows = cm_data_rows(data);
        reference_count = rows && rows < PNG_REFERENCE_POINTS ? rows : PNG_REFERENCE_POINTS;
        reference = cm_malloc(reference_count * dim, sizeof(double));
        if (reference) {
            cm_rng rng;
            cm_rng_init(&rng, 12345);
            cm_data_sample(data, &rng, reference_count, reference);
        } else {
            reference_count = 0;
        }
    }
    cm_status status =
        dim == 1 ? write_histogram(path, data, reference, reference_count, samples, n, title)
                 : cm_plot_scatter(NULL, path, reference, reference_count, samples, n, dim, title);
    cm_free(reference);
    cm_data_free(data);
    return status;
}

/* ---------------------------------------------------------------- warnings */

/* The steps of a Heun grid that get a correction (all but the last, to 0): their largest ratio
 * sigma / sigma' and their geometric mean ratio, (sigma_0 / sigma_{N-1})^(1 / (N - 1)). */
static int heun_ratios(double *largest, double *mean, const cm_diffusion_options *o) {
    double *grid = cm_malloc(o->steps + 1, sizeof(double));
    int ok = grid && cm_diffusion_grid(grid, o) == CM_OK;
    *largest = *mean = 1.0;
    for (size_t s = 0; ok && s + 2 <= o->steps; s++) *largest = fmax(*largest, grid[s] / grid[s + 1]);
    if (ok && o->steps >= 2) *mean = pow(grid[0] / grid[o->steps - 1], 1.0 / (double)(o->steps - 1));
    cm_free(grid);
    cm_error_clear();
    return ok;
}

static int heun_unstable(const cm_diffusion_options *o) {
    double largest, mean;
    return o->sampler == CM_DIFFUSION_HEUN && o->steps >= 2 && heun_ratios(&largest, &mean, o) &&
           (largest > HEUN_MAX_STEP_RATIO || mean > HEUN_MAX_MEAN_RATIO);
}

/* Heun with too few steps for its corrector (HEUN_MAX_*): a warning naming the steps and the
 * smallest step count that avoids the regime. */
static void warn_heun_steps(const cm_diffusion_options *o) {
    if (!heun_unstable(o)) return;
    double largest, mean;
    heun_ratios(&largest, &mean, o);
    cm_diffusion_options more = *o;
    while (more.steps < CM_DIFFUSION_MAX_STEPS && heun_unstable(&more)) more.steps++;
    fprintf(stderr, "cm sample: warning: heun with %zu steps on the %s grid (from sigma %g to %g: "
                    "a factor of %.3g per step on average, %.3g at most) is in the regime where "
                    "its corrector amplifies the predictor's error (measured on a dsm model: W1 "
                    "9-970x the noise floor, worse than ddim with the same steps; "
                    "docs/sampling.md); use --steps %zu or more, or --sampler ddim\n",
            o->steps, cm_grid_kind_name(o->grid), o->sigma_max, o->sigma_min, mean, largest,
            more.steps);
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

/* ---------------------------------------------------------------- the two kinds of model */

typedef struct {
    const char *out, *png, *ref, *columns;
    const char *sampler_name, *grid_name;
    size_t n, steps;
    uint64_t seed;
    int quiet, extrapolate;
} sample_request;

static void report_progress(void *context, size_t done, size_t total) {
    cli_progress_update(context, done, total);
}

/* Write the outputs and the summary line of a finished draw. */
static cm_status finish(const sample_request *r, const cm_model *model, const double *samples,
                        const char *title, double elapsed) {
    size_t dim = model->config.network.dim;
    if (r->out) CM_TRY(cm_matrix_write(r->out, samples, r->n, dim));
    if (r->png) CM_TRY(write_png(r->png, model, samples, r->n, title, r->ref, r->columns));
    if (!r->quiet) {
        fprintf(stderr, "cm sample: %zu samples (%s) in %.3f s", r->n, title, elapsed);
        if (r->out) fprintf(stderr, " -> %s", r->out);
        if (r->png) fprintf(stderr, " -> %s", r->png);
        fprintf(stderr, "\n");
    }
    return CM_OK;
}

/* A dsm model: a diffusion sampler over its denoiser. */
static int sample_denoiser(const cm_model *model, const sample_request *r, int has_levels) {
    const char *command = "sample";
    if (has_levels)
        return cli_usage_error(command, "--sigmas/--times apply to consistency models; a dsm model "
                               "takes --sampler and --steps");
    cm_diffusion_options o = cm_diffusion_options_for_model(model);
    if (cm_diffusion_sampler_parse(&o.sampler, r->sampler_name) != CM_OK ||
        cm_grid_kind_parse(&o.grid, r->grid_name) != CM_OK)
        return cli_usage_error(command, "%s", cm_error_detail());
    if (r->steps > CM_DIFFUSION_MAX_STEPS)
        return cli_usage_error(command, "--steps %zu: at most %d", r->steps, CM_DIFFUSION_MAX_STEPS);
    o.steps = r->steps;
    warn_heun_steps(&o);
    size_t dim = model->config.network.dim, nfe = 0;
    double *samples = cm_malloc(r->n * dim, sizeof(double));
    cm_status status = samples ? CM_OK : cm_error_set(CM_ERR_NOMEM, "%zu samples", r->n);
    double start = cli_seconds();
    if (status == CM_OK) status = cm_diffusion_sample_model(samples, model, &o, r->n, r->seed, &nfe);
    double elapsed = cli_seconds() - start;
    char title[256];
    snprintf(title, sizeof title, "dsm, %s, %zu steps (%s grid), NFE %zu",
             cm_diffusion_sampler_name(o.sampler), r->steps, cm_grid_kind_name(o.grid), nfe);
    if (status == CM_OK) status = finish(r, model, samples, title, elapsed);
    cm_free(samples);
    return status == CM_OK ? CLI_OK : cli_fail(command, status);
}

/* --times of an lhw model as its chain levels sigma_t (into sigmas). */
static int times_to_levels(cli_list *sigmas, const cli_list *times, const cm_model *model) {
    const char *command = "sample";
    if (model->config.method.kind != CM_METHOD_LHW)
        return cli_usage_error(command, "--times applies to lhw models (chain indices); this one "
                               "is %s: give noise levels with --sigmas",
                               cm_method_name(model->config.method.kind));
    size_t T = model->config.method.chain_T;
    for (size_t i = 0; i < times->count; i++) {
        double t = times->values[i];
        if (t != floor(t) || t < 1 || t > (double)T)
            return cli_usage_error(command, "--times: %g is not an integer in [1, T = %zu] (this "
                                   "model's chain)", t, T);
        sigmas->values[i] = model->schedule.sigma[(size_t)t];
    }
    sigmas->count = times->count;
    return CLI_OK;
}

/* Levels above the model's trained range: refused unless --extrapolate (then a warning). */
static int check_level_range(const cm_model *model, const cli_list *sigmas, int extrapolate,
                             int from_times) {
    const cm_method_config *c = &model->config.method;
    int lhw = c->kind == CM_METHOD_LHW;
    double top = lhw ? model->schedule.sigma[c->chain_T] : c->sigma_max;
    if (from_times || sigmas->count == 0 || sigmas->values[0] <= top * (1 + LEVEL_RANGE_TOLERANCE))
        return CLI_OK;
    if (!extrapolate) {
        if (lhw)
            return cli_usage_error("sample", "--sigmas: level %g is above this lhw model's largest "
                                   "chain level sigma_T = %.6g (T = %zu; it would be read as "
                                   "sigma_T): start at most there, or pass --extrapolate",
                                   sigmas->values[0], top, c->chain_T);
        return cli_usage_error("sample", "--sigmas: level %g is above the model's sigma_max = %g, "
                               "the largest level it was trained on; start at %g or below (e.g. "
                               "--sigmas %g,0.8), or pass --extrapolate to use the map outside "
                               "its training range", sigmas->values[0], top, top, top);
    }
    if (lhw)
        fprintf(stderr, "cm sample: warning: level %g is above sigma_T = %.6g: it is read as "
                        "sigma_T (t = %zu)\n", sigmas->values[0], top, c->chain_T);
    else
        fprintf(stderr, "cm sample: warning: level %g is above sigma_max = %g: the model was "
                        "trained up to there only and is extrapolated (--extrapolate)\n",
                sigmas->values[0], top);
    return CLI_OK;
}

/* A consistency model: [CM] Algorithm 1 over the levels given (one step by default). */
static int sample_consistency(const cm_model *model, const sample_request *r, cli_list *sigmas,
                              const cli_list *times) {
    const char *command = "sample";
    if (times->count) {
        int code = times_to_levels(sigmas, times, model);
        if (code != CLI_OK) return code;
    }
    int code = check_level_range(model, sigmas, r->extrapolate, times->count > 0);
    if (code != CLI_OK) return code;
    size_t dim = model->config.network.dim;
    double used[CM_SAMPLER_MAX_LEVELS];
    size_t used_count = 0;
    cm_status status = cm_sampler_levels(used, &used_count, model, sigmas->values, sigmas->count);
    if (status != CM_OK) return cli_fail(command, status);
    warn_off_grid(model, used, used_count);
    double *samples = cm_malloc(r->n * dim, sizeof(double));
    if (!samples)
        return cli_fail(command, cm_error_set(CM_ERR_NOMEM, "%zu samples of dimension %zu", r->n,
                                              dim));
    cli_progress bar;
    cli_progress_start(&bar, "cm sample:", !r->quiet);
    cm_sample_progress progress = {.report = report_progress, .context = &bar};
    double start = cli_seconds();
    status = cm_sample_with_progress(samples, model, sigmas->values, sigmas->count, r->n, r->seed,
                                     &progress);
    double elapsed = cli_seconds() - start;
    cli_progress_finish(&bar);
    char title[256];
    int length = snprintf(title, sizeof title, "%s, %zu step%s:",
                          cm_method_name(model->config.method.kind), used_count,
                          used_count > 1 ? "s" : "");
    for (size_t i = 0; i < used_count && length > 0 && (size_t)length < sizeof title - 16; i++)
        length += snprintf(title + length, sizeof title - (size_t)length, " %.3g", used[i]);
    if (status == CM_OK) status = finish(r, model, samples, title, elapsed);
    cm_free(samples);
    return status == CM_OK ? CLI_OK : cli_fail(command, status);
}

int cmd_sample(int argc, char **argv) {
    const char *command = "sample";
    const char *model_path = NULL;
    sample_request r = {.n = 10000, .steps = 18, .sampler_name = "heun", .grid_name = "karras"};
    size_t threads = 1;
    cli_list sigmas = {.count = 0}, times = {.count = 0};
    cli_option options[] = {
        {"model", OPT_STRING, &model_path, "model file, or a run directory DIR (DIR/model.safetensors)", 0, 1, 0},
        {"n", OPT_SIZE, &r.n, "number of samples (digits or e.g. 2e6)", 1, 0, 0},
        {"seed", OPT_U64, &r.seed, "seed of the sampling noise", 0, 0, 0},
        {"out", OPT_STRING, &r.out, "output file, .npy (float32) or .csv", 0, 0, 0},
        {"sigmas", OPT_LIST, &sigmas, "decreasing noise levels from at most the model's sigma_max, e.g. 10,0.8 (default: one step from sigma_max)", 0, 0, 0},
        {"times", OPT_LIST, &times, "lhw: decreasing chain indices t in [1, T], e.g. 100,40", 0, 0, 0},
        {"extrapolate", OPT_FLAG, &r.extrapolate, "allow a first level above the model's sigma_max (outside its training)", 0, 0, 0},
        {"sampler", OPT_STRING, &r.sampler_name, "dsm models: ddim (Euler) | heun | ddpm", 0, 0, 0},
        {"steps", OPT_SIZE, &r.steps, "dsm models: sampler steps N (heun: 2N - 1 network calls)", 1, 0, 0},
        {"grid", OPT_STRING, &r.grid_name, "dsm models: karras | lhw (geometric) noise levels", 0, 0, 0},
        {"png", OPT_STRING, &r.png, "figure: scatter over the data (first 2 coordinates), 1-D: histogram over the data's density, images: a grid", 0, 0, 0},
        {"ref", OPT_STRING, &r.ref, "reference data of the --png (default: the model's training data)", 0, 0, 0},
        {"columns", OPT_STRING, &r.columns, "columns of a .csv/.npy reference file: names, 0-based indices or ranges A-B", 0, 0, 0},
        {"threads", OPT_SIZE, &threads, "threads; results do not depend on it", 1, 0, 0},
        {"quiet", OPT_FLAG, &r.quiet, "no progress and no summary line (warnings are still printed)", 0, 0, 0},
    };
    int parsed = cli_parse(argc, argv, 2, options, sizeof options / sizeof options[0], command,
                           "Draw samples from a consistency model in one step, or in several with\n"
                           "--sigmas (VE noise levels as values; [CM] Algorithm 1). For lhw models the\n"
                           "levels are mapped to the nearest chain index, or given as --times.\n"
                           "A dsm model (a denoiser) is sampled with --sampler and --steps instead.\n"
                           "Levels above the model's sigma_max (cm info shows it) are refused unless\n"
                           "--extrapolate.");
    if (parsed != CLI_OK) return parsed;
    if (!r.out && !r.png) return cli_usage_error(command, "give --out and/or --png");
    if (sigmas.count && times.count) return cli_usage_error(command, "give --sigmas or --times, not both");
    if (r.n > ((size_t)1 << 28)) return cli_usage_error(command, "--n %zu: at most 2^28", r.n);
    if (threads > 64) return cli_usage_error(command, "--threads %zu: at most 64", threads);
    if ((r.ref || r.columns) && !r.png)
        return cli_usage_error(command, "--%s sets the reference of the --png; give --png too",
                               r.ref ? "ref" : "columns");
    int code = r.out ? check_output("out", r.out, "npy,csv") : CLI_OK;
    if (code == CLI_OK && r.png) code = check_output("png", r.png, "png");
    if (code != CLI_OK) return code;
    cli_set_threads(threads);
    cm_model model;
    cm_status status = cli_model_load(&model, model_path);
    if (status != CM_OK) return cli_fail(command, status);
    if (model.config.method.kind == CM_METHOD_DSM) {
        code = sample_denoiser(&model, &r, sigmas.count || times.count);
    } else {
        const char *denoiser_only[] = {"sampler", "steps", "grid"};
        for (size_t i = 0; i < sizeof denoiser_only / sizeof denoiser_only[0] && code == CLI_OK; i++)
            if (cli_option_seen(options, sizeof options / sizeof options[0], denoiser_only[i]))
                code = cli_usage_error(command, "--%s applies to dsm models; a %s model is sampled "
                                       "with --sigmas", denoiser_only[i],
                                       cm_method_name(model.config.method.kind));
        if (code == CLI_OK) code = sample_consistency(&model, &r, &sigmas, &times);
    }
    cm_model_free(&model);
    return code;
}
