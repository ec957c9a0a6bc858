/* cmd_sample.c: `cm sample`: one-step or multistep samples from a trained model ([CM]
 * Algorithm 1; docs/sampling.md), or from a dsm denoiser with a diffusion sampler (DDIM, Heun,
 * DDPM; diffusion.h), written as NPY or CSV, optionally drawn over the training data in a PNG
 * (a scatter of the first two coordinates; 1-D data as a histogram over the data's density;
 * image models as a grid of images).
 * Image models: the samples are the model's outputs mapped back to pixels by its transform
 * (x = 0.5 + 0.5 x_model), clipped to [0, 1] (the clipped values are counted on stderr), written
 * as NPY [N, H, W] / [N, C, H, W] (which cm eval and every image reader take); --nearest puts
 * beside each sample of the grid its nearest training image (pixel L2), found in the model's
 * data source (or --ref), so that a reader sees whether samples copy their training set.
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
#include "cm/image_metrics.h"
#include "cm/io.h"
#include "cm/law.h"
#include "cm/model.h"
#include "plot.h"
#include "cm/sampler.h"
#include "cm/schedule.h"

#define PNG_REFERENCE_POINTS 5000
#define PNG_GRID_MAX_IMAGES 256       /* image models: the first 256 samples in the grid */
#define PNG_GRID_PADDING 2
#define NEAREST_MAX_PAIRS 128         /* --nearest: the first 128 samples, each with its match */
#define NEAREST_CHUNK 4096            /* training images compared per block */
#define NEAREST_LAW_DRAWS 10000       /* --nearest on a law (shapes): this many fresh draws */
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

/* ---------------------------------------------------------------- images */

/* Clip the n x D pixel values to [0, 1] in place and say how many were outside (NaN stays NaN:
 * it has no nearest pixel value; the grid then refuses it). */
static void clip_pixels(double *samples, size_t count, int quiet) {
    size_t below = 0, above = 0, not_finite = 0;
    for (size_t i = 0; i < count; i++) {
        if (isnan(samples[i])) not_finite++;
        else if (samples[i] < 0.0) samples[i] = 0.0, below++;
        else if (samples[i] > 1.0) samples[i] = 1.0, above++;
    }
    if (!quiet)
        fprintf(stderr, "cm sample: pixels: %zu of %zu values (%.3g %%) were outside [0, 1] and "
                        "were clipped to it (%zu below 0, %zu above 1)\n", below + above, count,
                100.0 * (double)(below + above) / (double)(count ? count : 1), below, above);
    if (not_finite)
        fprintf(stderr, "cm sample: warning: %zu pixel values are NaN (left as they are)\n",
                not_finite);
}

/* The nearest image of `data` to each of the n images (pixel L2): a stored set's rows all, in
 * blocks of NEAREST_CHUNK; a law's first NEAREST_LAW_DRAWS draws of the DATA stream of seed 0.
 * nearest[n, D] receives the images, distance[n] the distances; *searched the number compared.
 * Ties: the first image. */
static cm_status nearest_images(double *nearest, double *distance, size_t *searched,
                                const cm_data *data, const double *images, size_t n, size_t D) {
    size_t rows = cm_data_rows(data), total = rows ? rows : NEAREST_LAW_DRAWS;
    size_t chunk = total < NEAREST_CHUNK ? total : NEAREST_CHUNK;
    double *block = cm_malloc(chunk * D + n, sizeof(double));
    size_t *index = cm_malloc(n, sizeof(size_t));
    cm_status status = block && index ? CM_OK : cm_error_set(CM_ERR_NOMEM, "--nearest: %zu "
                                                             "images", chunk);
    double *block_distance = block ? block + chunk * D : NULL;
    cm_rng root, stream;
    cm_rng_init(&root, 0);
    cm_rng_fork(&stream, &root, CM_STREAM_DATA);
    for (size_t i = 0; i < n; i++) distance[i] = INFINITY;
    for (size_t first = 0; status == CM_OK && first < total; first += chunk) {
        size_t count = total - first < chunk ? total - first : chunk;
        if (rows) cm_data_copy_rows(data, first, count, block);
        else cm_data_sample(data, &stream, count, block);
        status = cm_nearest_distances(block_distance, index, images, n, block, count, D);
        for (size_t i = 0; status == CM_OK && i < n; i++)
            if (block_distance[i] < distance[i]) {
                distance[i] = block_distance[i];
                memcpy(nearest + i * D, block + index[i] * D, D * sizeof(double));
            }
    }
    *searched = total;
    cm_free(block);
    cm_free(index);
    return status;
}

/* --nearest: the grid of the first samples, each followed by its nearest training image (even
 * columns samples, odd columns their matches), and the distances on stderr. */
static cm_status write_nearest_grid(const char *path, const cm_model *model,
                                    const double *samples, size_t n, const char *ref) {
    const cm_network_config *net = &model->config.network;
    const char *source = ref ? ref : model->data_source;
    size_t D = net->dim, shown = n < NEAREST_MAX_PAIRS ? n : NEAREST_MAX_PAIRS, C, H, W;
    if (!source[0])
        return cm_error_set(CM_ERR_INVALID, "--nearest: the model does not record its training "
                            "data; give it with --ref");
    cm_data *data = NULL;
    CM_TRY(cm_data_open(&data, source));
    cm_status status = CM_OK;
    if (!cm_data_image_shape(data, &C, &H, &W) || C != net->image_channels ||
        H != net->image_height || W != net->image_width)
        status = cm_error_set(CM_ERR_INVALID, "--nearest: '%s' does not hold images of %zu x %zu "
                              "x %zu (the model's)", source, net->image_channels,
                              net->image_height, net->image_width);
    double *pairs = status == CM_OK ? cm_malloc(2 * shown * D + 2 * shown, sizeof(double)) : NULL;
    if (status == CM_OK && !pairs) status = cm_error_set(CM_ERR_NOMEM, "--nearest: %zu images", shown);
    double *nearest = pairs ? pairs + shown * D : NULL, *distance = nearest ? nearest + shown * D : NULL;
    double *sorted = distance ? distance + shown : NULL;
    size_t searched = 0;
    if (status == CM_OK) status = nearest_images(nearest, distance, &searched, data, samples, shown, D);
    if (status == CM_OK) {
        memcpy(sorted, distance, shown * sizeof(double));
        qsort(sorted, shown, sizeof(double), compare_doubles);
        fprintf(stderr, "cm sample: --nearest: pixel L2 distance of the first %zu samples to their "
                        "nearest of %zu training images (%s%s): min %.4g, median %.4g, max %.4g\n",
                shown, searched, cm_data_rows(data) ? "all of " : "fresh draws of ",
                cm_data_describe(data), sorted[0], sorted[shown / 2], sorted[shown - 1]);
        double *grid = cm_malloc(2 * shown * D, sizeof(double));
        if (!grid) status = cm_error_set(CM_ERR_NOMEM, "--nearest: the grid");
        for (size_t i = 0; grid && i < shown; i++) {
            memcpy(grid + 2 * i * D, samples + i * D, D * sizeof(double));
            memcpy(grid + (2 * i + 1) * D, nearest + i * D, D * sizeof(double));
        }
        if (grid)
            status = cm_image_write_grid(path, grid, 2 * shown, net->image_channels,
                                         net->image_height, net->image_width,
                                         2 * (size_t)ceil(sqrt((double)shown)), PNG_GRID_PADDING);
        cm_free(grid);
    }
    cm_free(pairs);
    cm_data_free(data);
    return status;
}

/* The PNG of the samples: image models a grid of the first samples (with --nearest, each beside
 * its nearest training image); 1-D models a histogram; otherwise a scatter of the first two
 * coordinates over fresh draws of the reference. */
static cm_status write_png(const char *path, const cm_model *model, const double *samples,
                           size_t n, const char *title, const char *ref, const char *columns,
                           int nearest) {
    const cm_network_config *net = &model->config.network;
    if (net->image_channels && nearest) return write_nearest_grid(path, model, samples, n, ref);
    if (net->image_channels) {
        size_t shown = n < PNG_GRID_MAX_IMAGES ? n : PNG_GRID_MAX_IMAGES;
        return cm_image_write_grid(path, samples, shown, net->image_channels, net->image_height,
                                   net->image_width, (size_t)ceil(sqrt((double)shown)),
                                   PNG_GRID_PADDING);
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
    int quiet, extrapolate, nearest;
} sample_request;

static void report_progress(void *context, size_t done, size_t total) {
    cli_progress_update(context, done, total);
}

/* The samples as NPY or CSV; an image model's NPY as [N, H, W] (one channel) or [N, C, H, W]. */
static cm_status write_samples(const char *path, const cm_model *model, const double *samples,
                               size_t n) {
    const cm_network_config *net = &model->config.network;
    const char *dot = strrchr(path, '.');
    if (!net->image_channels || !dot || strcmp(dot, ".npy") != 0)
        return cm_matrix_write(path, samples, n, net->dim);
    int gray = net->image_channels == 1;
    size_t shape[4] = {n, net->image_channels, net->image_height, net->image_width};
    if (gray) shape[1] = net->image_height, shape[2] = net->image_width;
    return cm_npy_write_f32_shape(path, samples, shape, gray ? 3 : 4);
}

/* Write the outputs and the summary line of a finished draw (an image model's pixels clipped
 * first). */
static cm_status finish(const sample_request *r, const cm_model *model, double *samples,
                        const char *title, double elapsed) {
    const cm_network_config *net = &model->config.network;
    if (net->image_channels) clip_pixels(samples, r->n * net->dim, r->quiet);
    if (r->out) CM_TRY(write_samples(r->out, model, samples, r->n));
    if (r->png)
        CM_TRY(write_png(r->png, model, samples, r->n, title, r->ref, r->columns, r->nearest));
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
        {"png", OPT_STRING, &r.png, "figure: scatter over the data (first 2 coordinates), 1-D: histogram over the data's density, images: a grid of the first 256", 0, 0, 0},
        {"nearest", OPT_FLAG, &r.nearest, "image models: the --png grid shows the first 128 samples, each followed by its nearest training image (pixel L2; the model's data, or --ref; a law: 10000 fresh draws)", 0, 0, 0},
        {"ref", OPT_STRING, &r.ref, "reference data of the --png (default: the model's training data); image models: the images --nearest searches", 0, 0, 0},
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
                           "--extrapolate.\n"
                           "Image models: the outputs mapped back to pixels by the model's transform,\n"
                           "clipped to [0, 1] (the clipped values counted on stderr); .npy files are\n"
                           "[N, H, W] (one channel) or [N, C, H, W], .csv one flattened image a row.");
    if (parsed != CLI_OK) return parsed;
    if (!r.out && !r.png) return cli_usage_error(command, "give --out and/or --png");
    if (sigmas.count && times.count) return cli_usage_error(command, "give --sigmas or --times, not both");
    if (r.n > ((size_t)1 << 28)) return cli_usage_error(command, "--n %zu: at most 2^28", r.n);
    if (threads > 64) return cli_usage_error(command, "--threads %zu: at most 64", threads);
    if ((r.ref || r.columns || r.nearest) && !r.png)
        return cli_usage_error(command, "--%s applies to the --png figure; give --png too",
                               r.ref ? "ref" : r.columns ? "columns" : "nearest");
    int code = r.out ? check_output("out", r.out, "npy,csv") : CLI_OK;
    if (code == CLI_OK && r.png) code = check_output("png", r.png, "png");
    if (code != CLI_OK) return code;
    cli_set_threads(threads);
    cm_model model;
    cm_status status = cli_model_load(&model, model_path);
    if (status != CM_OK) return cli_fail(command, status);
    if (r.nearest && !model.config.network.image_channels)
        code = cli_usage_error(command, "--nearest applies to image models; %s models points of "
                               "dimension %zu (%s)", model_path, model.config.network.dim,
                               model.data_source[0] ? model.data_source : "data not recorded");
    else if (model.config.method.kind == CM_METHOD_DSM) {
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
