/* cmd_nfe.c: `cm nfe`: quality against the number of network evaluations (NFE), issue 5.
 *
 * Models mode (--model a,b --data SRC): for every model and every NFE budget k of --nfe, exact
 * W1 (with its noise floor, evaluate.h) of n samples, repeated over --seeds sample seeds
 * seed .. seed + S - 1 (each against the reference draws of its own seed):
 *   consistency models (lhw, ct, ict, cd, cd2): [CM] Algorithm 1 with k levels,
 *     levels[0] = sigma_max and the others chosen by the greedy grid and golden-section search of
 *     multistep.h on a held-out reference (sliced W1, samples drawn with seed + 1; the prefix of
 *     the k-level search is the search for fewer levels, so it runs once for the largest k, and
 *     once for all seeds);
 *   VE consistency models (ct, ict, cd, cd2) with --langevin: [LFC]'s correction, L unadjusted
 *     Langevin steps at sigma_min after the one-step sample and after the best multistep budget
 *     (NFE k + L), with the exact score of a gauss:/gmm: source or a dsm --score-model that
 *     standardises the data as the model does;
 *   VE consistency models, k >= 2, also "chain": the [JHMZ] sampler over the model's two-time
 *     map (multistep.h: our construction for ct, ict, cd; the network for cd2), k equal steps in
 *     OU time from sigma_max, for every overshoot delta of --delta ("end": jump to sigma_min);
 *   dsm models: DDIM (Euler, N = k), Heun (N = (k + 1) / 2 steps: 2N - 1 <= k calls) and DDPM
 *     (N = k) on the Karras grid of the model's sigma range;
 *   --exact-map (gauss:/gmm: sources): the [JHMZ] sampler over the law's exact flow map, k >= 1
 *     steps, every delta: what the sampler itself costs when the map is perfect.
 * Table of means over seeds (with their standard deviation) on stdout, tidy CSV (--csv, one row
 * per seed) and a log-log PNG (--png) of the mean W1 against NFE.
 *
 * Gaussian mode (--gaussian): closed forms of multistep.h on N(0.5 1, diag(l)) data, where every
 * map is affine: KL and W2 of the [JHMZ] sampler against its step count K for a constant eta
 * (isotropic l = 0.25 and an anisotropic spectrum l_i log-spaced in [0.01, 4]), the K needed for
 * a target KL as d grows beside log(d / eps) and d log(d / eps), and [LFC]'s one- versus
 * two-step W2 with flow maps perturbed by a constant offset or a linear (x-dependent) error.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cm/alloc.h"
#include "cm/data.h"
#include "cm/diffusion.h"
#include "cm/evaluate.h"
#include "cm/law.h"
#include "cm/model.h"
#include "cm/multistep.h"
#include "plot.h"
#include "cm/sampler.h"

#define NFE_MAX_MODELS 8
#define NFE_MAX_SEEDS 100
#define NFE_MAX_LANGEVIN 10000       /* Langevin steps of one correction */
#define NFE_MAX_DELTAS 16
#define NFE_MAX_DELTA 100.0          /* overshoot in OU time; beyond it every jump ends at t_end */
#define NFE_DELTA_END (-1.0)         /* "end": jump to sigma_end every step ([CM], multistep.h) */
#define NFE_TRANSFORM_TOLERANCE 1e-9 /* relative; same-seed runs on one source fit equal transforms */
#define NFE_PATH_MAX 1024
#define NFE_LANGEVIN_STEP 1e-3       /* default h (model units): measured, docs/sampling.md */
#define NFE_MAX_LANGEVIN_STEP 10.0

/* One measurement: a (model, sampler, NFE) cell at one sample seed. Rows of a cell are adjacent
 * and share `cell`. */
typedef struct {
    char model[128];
    const char *method;
    char sampler[32];
    size_t cell, nfe, steps, langevin_steps;
    double langevin_step, delta; /* NaN when the row has none */
    uint64_t seed;
    double w1, floor;
    char levels[512];
} nfe_row;

typedef struct {
    nfe_row *rows;
    size_t count, capacity, cells;
} nfe_table;

/* Short name of a model path: its directory's name (DIR/model.safetensors) or the file name. */
static void model_name(char *out, size_t capacity, const char *path) {
    char copy[NFE_PATH_MAX];
    snprintf(copy, sizeof copy, "%s", path);
    char *slash = strrchr(copy, '/');
    if (slash && strcmp(slash + 1, "model.safetensors") == 0) {
        *slash = '\0';
        slash = strrchr(copy, '/');
    }
    snprintf(out, capacity, "%.127s", slash ? slash + 1 : copy);
}

static cm_status evaluate_w1(double *w1, double *floor_value, const double *samples, size_t n,
                             size_t dim, const cm_data *reference, uint64_t seed) {
    cm_evaluate_options o = cm_evaluate_options_default();
    o.metrics = CM_METRIC_BIT(CM_METRIC_W1);
    o.seed = seed;
    o.floor_splits = 1; /* one floor per sample seed: the table repeats seeds, not floors */
    cm_evaluation_report report;
    CM_TRY(cm_evaluate_report(&report, samples, n, dim, reference, &o));
    *w1 = report.metric[CM_METRIC_W1].value;
    *floor_value = report.metric[CM_METRIC_W1].floor;
    return CM_OK;
}

static cm_status table_reserve(nfe_table *t, size_t more) {
    if (t->count + more <= t->capacity) return CM_OK;
    size_t capacity = t->capacity ? t->capacity : 64;
    while (capacity < t->count + more) capacity *= 2;
    nfe_row *rows = cm_malloc(capacity, sizeof *rows);
    if (!rows) return cm_error_set(CM_ERR_NOMEM, "table of %zu rows", capacity);
    if (t->count) memcpy(rows, t->rows, t->count * sizeof *rows);
    cm_free(t->rows);
    t->rows = rows, t->capacity = capacity;
    return CM_OK;
}

typedef struct {
    const double *nfe;
    size_t nfe_count, n, search_n, iterations, projections, seeds;
    uint64_t seed;
    const double *langevin;    /* Langevin step counts L (may be none) */
    size_t langevin_count;
    double langevin_step;
    const double *delta;       /* overshoots (NFE_DELTA_END: to the end) */
    size_t delta_count;
    int exact_map;             /* also the [JHMZ] sampler over the data law's exact flow map */
    int quiet;
} nfe_settings;

/* Draws n samples (original units) with one seed. */
typedef cm_status (*draw_fn)(void *context, double *samples, size_t n, uint64_t seed);

/* Measure one cell: `proto` (model, method, sampler, NFE, levels, ...) at the sample seeds
 * seed .. seed + seeds - 1, each evaluated against the reference draws of its own seed
 * (evaluate.h); samples with a non-finite value (a diverged sampler) get W1 = inf. *mean_w1
 * (may be NULL): the mean over seeds. */
static cm_status measure_cell(nfe_table *t, const nfe_row *proto, const cm_data *data,
                              const nfe_settings *s, double *samples, draw_fn draw, void *context,
                              double *mean_w1) {
    CM_TRY(table_reserve(t, s->seeds));
    size_t cell = t->cells++, dim = cm_data_dim(data);
    double sum = 0;
    for (size_t j = 0; j < s->seeds; j++) {
        uint64_t seed = s->seed + j;
        nfe_row *r = &t->rows[t->count];
        *r = *proto;
        r->cell = cell, r->seed = seed;
        CM_TRY(draw(context, samples, s->n, seed));
        int finite = 1;
        for (size_t i = 0; i < s->n * dim && finite; i++) finite = isfinite(samples[i]);
        if (!finite) /* a diverging sampler (a too large Langevin step): W1 = inf, floor as usual */
            memset(samples, 0, s->n * dim * sizeof(double));
        CM_TRY(evaluate_w1(&r->w1, &r->floor, samples, s->n, dim, data, seed));
        if (!finite) r->w1 = INFINITY;
        t->count++;
        sum += r->w1;
    }
    if (mean_w1) *mean_w1 = sum / (double)s->seeds;
    return CM_OK;
}

static nfe_row row_proto(const char *name, const char *method, const char *sampler, size_t nfe,
                         size_t steps) {
    nfe_row r = {.method = method, .nfe = nfe, .steps = steps, .langevin_step = NAN, .delta = NAN};
    snprintf(r.model, sizeof r.model, "%s", name);
    snprintf(r.sampler, sizeof r.sampler, "%s", sampler);
    return r;
}

/* ---- consistency models: [CM] Algorithm 1, then optionally [LFC]'s Langevin steps */

typedef struct {
    const cm_model *model;
    const double *levels;
    size_t k;
    const cm_denoiser *score; /* NULL: no correction */
    size_t langevin_steps;
    double langevin_step;
} cm_draw;

/* cm_sample with k levels; the correction runs in model units (where the score lives) at the
 * model's sigma_min, its noise on the stages after cm_sample's k (multistep.h). */
static cm_status draw_consistency(void *context, double *samples, size_t n, uint64_t seed) {
    const cm_draw *c = context;
    CM_TRY(cm_sample(samples, c->model, c->levels, c->k, n, seed));
    if (!c->score || !c->langevin_steps) return CM_OK;
    const cm_transform *transform = &c->model->transform;
    cm_transform_apply(transform, samples, n);
    CM_TRY(cm_langevin_correct(samples, n, c->score, c->model->config.method.sigma_min, c->langevin_steps,
                               c->langevin_step, seed, c->k));
    cm_transform_invert(transform, samples, n);
    return CM_OK;
}

static void levels_text(char *out, size_t capacity, const double *levels, size_t k) {
    size_t used = 0;
    out[0] = '\0';
    for (size_t j = 0; j < k && used + 16 < capacity; j++)
        used += (size_t)snprintf(out + used, capacity - used, "%s%.4g", j ? " " : "", levels[j]);
}

/* ---- the [JHMZ] sampler over the model's two-time map */

typedef struct {
    const cm_model *model;
    const cm_two_time_map *map;
    cm_jhmz_options options;
} chain_draw;

static cm_status draw_chain(void *context, double *samples, size_t n, uint64_t seed) {
    const chain_draw *c = context;
    CM_TRY(cm_jhmz_sample(samples, c->map, NULL, &c->options, n, seed));
    cm_transform_invert(&c->model->transform, samples, n);
    return CM_OK;
}

/* A chain row of k steps of size eta with overshoot delta (< 0: "end"): sampler chain,
 * chain-end or chain-d<delta>, and the levels column. */
static nfe_row chain_row(const char *name, const char *method, size_t k, double eta,
                         double delta) {
    char sampler[32];
    if (delta == 0) snprintf(sampler, sizeof sampler, "chain");
    else if (delta < 0) snprintf(sampler, sizeof sampler, "chain-end");
    else snprintf(sampler, sizeof sampler, "chain-d%g", delta);
    nfe_row r = row_proto(name, method, sampler, k, k);
    r.delta = delta;
    if (delta < 0) snprintf(r.levels, sizeof r.levels, "jhmz eta %.4g delta end", eta);
    else snprintf(r.levels, sizeof r.levels, "jhmz eta %.4g delta %g", eta, delta);
    return r;
}

/* VE consistency models (ct, ict, cd: our two-time construction; cd2: the network), k >= 2: the
 * [JHMZ] sampler with each overshoot delta, k steps of eta = (t(sigma_max) - t(sigma_min)) / k
 * in OU time (so it starts at sigma_max). delta = 0 chains with no fresh noise after the prior. */
static cm_status chain_rows(nfe_table *t, const cm_model *model, const char *name,
                            const cm_data *data, const nfe_settings *s, double *samples) {
    cm_method method = model->config.method.kind;
    if (!cm_method_is_ve_consistency(method)) return CM_OK;
    cm_two_time_map map;
    CM_TRY(cm_two_time_from_model(&map, model));
    cm_status status = CM_OK;
    double span = cm_ou_time(model->config.method.sigma_max) - cm_ou_time(model->config.method.sigma_min);
    for (size_t d = 0; d < s->delta_count && status == CM_OK; d++)
        for (size_t i = 0; i < s->nfe_count && status == CM_OK; i++) {
            size_t k = (size_t)s->nfe[i];
            if (k < 2) continue;
            double delta = s->delta[d];
            chain_draw c = {model, &map, cm_jhmz_options_default()};
            c.options.steps = k, c.options.eta = span / (double)k, c.options.delta = delta;
            c.options.sigma_end = model->config.method.sigma_min;
            nfe_row r = chain_row(name, cm_method_name(method), k, c.options.eta, delta);
            status = measure_cell(t, &r, data, s, samples, draw_chain, &c, NULL);
        }
    cm_two_time_free(&map);
    return status;
}

/* ---- the [JHMZ] sampler over the exact flow map of a gauss:/gmm: law (--exact-map) */

typedef struct {
    const cm_two_time_map *map;
    cm_jhmz_options options;
    const double *shift, *scale; /* the standardisation, undone on the samples */
    size_t dim;
} exact_draw;

static cm_status draw_exact(void *context, double *samples, size_t n, uint64_t seed) {
    const exact_draw *c = context;
    CM_TRY(cm_jhmz_sample(samples, c->map, NULL, &c->options, n, seed));
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < c->dim; j++)
            samples[i * c->dim + j] = samples[i * c->dim + j] * c->scale[j] + c->shift[j];
    return CM_OK;
}

/* The sampler's own error, with a perfect two-time map: the data law standardised as a trainer
 * would (its exact mean and per-coordinate std mapped to sigma_data), the exact flow map
 * (cm_two_time_from_law), the trainer's default sigma range, and every budget k >= 1 with every
 * overshoot of --delta (k = 1 is one jump, the same for all of them: one row). */
static cm_status exact_map_rows(nfe_table *t, const cm_data *data, const nfe_settings *s,
                                double *samples) {
    size_t d = cm_data_dim(data);
    cm_law *raw = NULL, *law = NULL;
    CM_TRY(cm_law_from_data(&raw, data));
    double *moments = cm_malloc(d * d + 2 * d, sizeof(double));
    if (!moments) {
        cm_law_free(raw);
        return cm_error_set(CM_ERR_NOMEM, "law moments (d = %zu)", d);
    }
    double *cov = moments, *shift = cov + d * d, *scale = shift + d;
    cm_law_moments(raw, shift, cov);
    for (size_t j = 0; j < d; j++) scale[j] = sqrt(cov[j * d + j]) / CM_SIGMA_DATA_DEFAULT;
    cm_status status = cm_law_standardise(&law, raw, shift, scale);
    cm_two_time_map map = {0};
    if (status == CM_OK) status = cm_two_time_from_law(&map, law);
    cm_train_config defaults = cm_train_config_default(CM_METHOD_ICT, d);
    double span = cm_ou_time(defaults.method.sigma_max) - cm_ou_time(defaults.method.sigma_min);
    for (size_t e = 0; e < s->delta_count && status == CM_OK; e++)
        for (size_t i = 0; i < s->nfe_count && status == CM_OK; i++) {
            size_t k = (size_t)s->nfe[i];
            double delta = s->delta[e];
            if (k == 1 && e > 0) continue;
            exact_draw c = {&map, cm_jhmz_options_default(), shift, scale, d};
            c.options.steps = k, c.options.eta = span / (double)k, c.options.delta = delta;
            c.options.sigma_end = defaults.method.sigma_min;
            nfe_row r = chain_row("exact-map", "law", k, c.options.eta, k == 1 ? 0.0 : delta);
            status = measure_cell(t, &r, data, s, samples, draw_exact, &c, NULL);
        }
    cm_two_time_free(&map);
    cm_law_free(law);
    cm_law_free(raw);
    cm_free(moments);
    return status;
}

/* Rows of one consistency model: searched levels for the largest budget, prefixes for the rest;
 * with a score, [LFC]'s correction after the one-step sample and after the best multistep one
 * (the budget k >= 2 with the lowest mean W1). */
static cm_status consistency_rows(nfe_table *t, const cm_model *model, const char *name,
                                  const cm_data *data, const nfe_settings *s, double *samples,
                                  const cm_denoiser *score, const char *score_name) {
    size_t dim = model->config.network.dim, max_k = 1;
    for (size_t i = 0; i < s->nfe_count; i++)
        if ((size_t)s->nfe[i] > max_k) max_k = (size_t)s->nfe[i];
    if (max_k > CM_SAMPLER_MAX_LEVELS) max_k = CM_SAMPLER_MAX_LEVELS;
    if (cm_method_is_distillation(model->config.method.kind) && max_k > model->config.method.cd_levels - 1)
        max_k = model->config.method.cd_levels - 1; /* searched on its grid: levels above sigma_min */
    double levels[CM_SAMPLER_MAX_LEVELS], distance;
    double *reference = cm_malloc(s->search_n * dim, sizeof(double));
    if (!reference) return cm_error_set(CM_ERR_NOMEM, "held-out reference");
    cm_rng held_out;
    cm_rng_init(&held_out, s->seed ^ 0x9e3779b97f4a7c15ull); /* not the EVAL stream of the seed */
    cm_data_sample(data, &held_out, s->search_n, reference);
    cm_status status = cm_multistep_search_levels(levels, &distance, model, max_k, reference,
                                                  s->search_n, s->search_n, s->projections,
                                                  s->iterations, s->seed + 1);
    cm_free(reference);
    CM_TRY(status);
    const char *method = cm_method_name(model->config.method.kind);
    size_t best_k = 0;
    double best = INFINITY;
    for (size_t i = 0; i < s->nfe_count; i++) {
        size_t k = (size_t)s->nfe[i];
        if (k > max_k) continue;
        cm_draw c = {model, levels, k, NULL, 0, 0};
        nfe_row r = row_proto(name, method, k == 1 ? "onestep" : "multistep", k, k);
        levels_text(r.levels, sizeof r.levels, levels, k);
        double mean;
        CM_TRY(measure_cell(t, &r, data, s, samples, draw_consistency, &c, &mean));
        if (k >= 2 && mean < best) best = mean, best_k = k;
    }
    for (int multi = 0; multi < 2 && score; multi++) {
        size_t k = multi ? best_k : 1;
        if (k == 0) continue; /* no multistep budget */
        for (size_t l = 0; l < s->langevin_count; l++) {
            size_t L = (size_t)s->langevin[l];
            cm_draw c = {model, levels, k, score, L, s->langevin_step};
            nfe_row r = row_proto(name, method, multi ? "multistep+lfc" : "onestep+lfc", k + L, k);
            r.langevin_steps = L, r.langevin_step = s->langevin_step;
            char text[384];
            levels_text(text, sizeof text, levels, k);
            snprintf(r.levels, sizeof r.levels, "%s; lfc %zu x h %g %s score", text, L,
                     s->langevin_step, score_name);
            CM_TRY(measure_cell(t, &r, data, s, samples, draw_consistency, &c, NULL));
        }
    }
    return chain_rows(t, model, name, data, s, samples);
}

/* ---- dsm models: DDIM, Heun, DDPM */

typedef struct {
    const cm_model *model;
    cm_diffusion_options options;
} dsm_draw;

static cm_status draw_dsm(void *context, double *samples, size_t n, uint64_t seed) {
    const dsm_draw *c = context;
    return cm_diffusion_sample_model(samples, c->model, &c->options, n, seed, NULL);
}

static cm_status denoiser_rows(nfe_table *t, const cm_model *model, const char *name,
                               const cm_data *data, const nfe_settings *s, double *samples) {
    const cm_diffusion_sampler samplers[3] = {CM_DIFFUSION_EULER, CM_DIFFUSION_HEUN,
                                              CM_DIFFUSION_DDPM};
    for (int m = 0; m < 3; m++)
        for (size_t i = 0, previous = 0; i < s->nfe_count; i++) {
            size_t k = (size_t)s->nfe[i];
            dsm_draw c = {model, cm_diffusion_options_for_model(model)};
            c.options.sampler = samplers[m];
            c.options.steps = samplers[m] == CM_DIFFUSION_HEUN ? (k + 1) / 2 : k;
            if (c.options.steps > CM_DIFFUSION_MAX_STEPS || c.options.steps == previous)
                continue; /* heun 1, 2 */
            previous = c.options.steps;
            size_t nfe = cm_diffusion_nfe(c.options.sampler, c.options.steps);
            nfe_row r = row_proto(name, "dsm", cm_diffusion_sampler_name(c.options.sampler), nfe,
                                  c.options.steps);
            snprintf(r.levels, sizeof r.levels, "karras %zu", c.options.steps);
            CM_TRY(measure_cell(t, &r, data, s, samples, draw_dsm, &c, NULL));
        }
    return CM_OK;
}

/* ---- output */

/* A cell's summary over its seeds: mean W1, its sample standard deviation (NaN for one seed),
 * mean floor. Returns the index of the cell's first row after this one. */
static size_t cell_summary(const nfe_table *t, size_t first, double *mean, double *sd,
                           double *floor_mean) {
    size_t last = first;
    double sum = 0, floor_sum = 0;
    while (last < t->count && t->rows[last].cell == t->rows[first].cell) {
        sum += t->rows[last].w1, floor_sum += t->rows[last].floor;
        last++;
    }
    double count = (double)(last - first), squares = 0;
    *mean = sum / count, *floor_mean = floor_sum / count;
    for (size_t i = first; i < last; i++) squares += (t->rows[i].w1 - *mean) * (t->rows[i].w1 - *mean);
    *sd = last - first > 1 ? sqrt(squares / (count - 1)) : NAN;
    return last;
}

static void print_table(const nfe_table *t, const nfe_settings *s) {
    printf("W1: mean over %zu sample seed%s (%llu..%llu); sd: standard deviation over the seeds; "
           "floor: mean floor\n", s->seeds, s->seeds == 1 ? "" : "s", (unsigned long long)s->seed,
           (unsigned long long)(s->seed + s->seeds - 1));
    printf("%-16s %-7s %-14s %5s %10s %8s %10s %8s  %s\n", "model", "method", "sampler", "NFE",
           "W1", "sd", "floor", "W1/floor", "levels");
    for (size_t i = 0; i < t->count;) {
        const nfe_row *r = &t->rows[i];
        double mean, sd, floor_mean;
        i = cell_summary(t, i, &mean, &sd, &floor_mean);
        char sd_text[32] = "-"; /* one seed: no spread */
        if (!isnan(sd)) snprintf(sd_text, sizeof sd_text, "%.4f", sd);
        printf("%-16s %-7s %-14s %5zu %10.4f %8s %10.4f %8.2f  %s\n", r->model, r->method,
               r->sampler, r->nfe, mean, sd_text, floor_mean, mean / floor_mean, r->levels);
    }
}

/* An optional number: empty when NaN. */
static void csv_number(FILE *f, double value) {
    if (!isnan(value)) fprintf(f, "%.6g", value);
    fputc(',', f);
}

/* A text field, quoted (RFC 4180) when it holds a comma or a quote (gmm:d=2,k=3,...). */
static void csv_text(FILE *f, const char *text, char after) {
    if (strpbrk(text, ",\"\n")) {
        fputc('"', f);
        for (const char *c = text; *c; c++) {
            if (*c == '"') fputc('"', f);
            fputc(*c, f);
        }
        fputc('"', f);
    } else {
        fputs(text, f);
    }
    fputc(after, f);
}

static cm_status write_csv(const char *path, const nfe_table *t, const char *data) {
    FILE *f = fopen(path, "w");
    if (!f) return cm_error_set(CM_ERR_IO, "%s: cannot write", path);
    fprintf(f, "model,method,sampler,data,nfe,steps,langevin_steps,langevin_step,delta,seed,w1,"
               "w1_floor,levels\n");
    for (size_t i = 0; i < t->count; i++) {
        const nfe_row *r = &t->rows[i];
        csv_text(f, r->model, ',');
        fprintf(f, "%s,%s,", r->method, r->sampler);
        csv_text(f, data, ',');
        fprintf(f, "%zu,%zu,%zu,", r->nfe, r->steps, r->langevin_steps);
        csv_number(f, r->langevin_step);
        if (r->delta < 0) fprintf(f, "end,");
        else csv_number(f, r->delta);
        fprintf(f, "%llu,%.6g,%.6g,", (unsigned long long)r->seed, r->w1, r->floor);
        csv_text(f, r->levels, '\n');
    }
    return fclose(f) == 0 ? CM_OK : cm_error_set(CM_ERR_IO, "%s: write failed", path);
}

/* One series per (model, sampler) in table order through the cells' mean W1 ("onestep" joins
 * "multistep"), and the mean floor as a dashed line. A figure holds 16 series (plot.h), so at
 * most 15 and the floor; later series are left out (said on stderr). */
static cm_status write_png(const char *path, const nfe_table *t, const char *title) {
    enum { MAX_SERIES = 15, MAX_POINTS = 256 };
    static double x[MAX_SERIES][MAX_POINTS], y[MAX_SERIES][MAX_POINTS];
    static char labels[MAX_SERIES][160];
    cm_plot_series series[MAX_SERIES + 1];
    size_t count = 0, min_nfe = SIZE_MAX, max_nfe = 0, cells = 0, left_out = 0;
    double floor_sum = 0;
    for (size_t i = 0; i < t->count;) {
        const nfe_row *r = &t->rows[i];
        double mean, sd, floor_mean;
        i = cell_summary(t, i, &mean, &sd, &floor_mean);
        const char *kind = strcmp(r->sampler, "onestep") == 0 ? "multistep" : r->sampler;
        char label[160];
        snprintf(label, sizeof label, "%s %s", r->model, kind);
        size_t k = 0;
        while (k < count && strcmp(labels[k], label) != 0) k++;
        if (k == count) {
            if (count == MAX_SERIES) {
                left_out++;
                continue;
            }
            snprintf(labels[count], sizeof labels[count], "%s", label);
            series[count] = (cm_plot_series){.x = x[count], .y = y[count], .n = 0,
                                             .label = labels[count], .style = 0};
            count++;
        }
        if (series[k].n == MAX_POINTS || !isfinite(mean)) continue; /* diverged: not drawn */
        x[k][series[k].n] = (double)r->nfe;
        y[k][series[k].n++] = mean;
        floor_sum += floor_mean, cells++;
        if (r->nfe < min_nfe) min_nfe = r->nfe;
        if (r->nfe > max_nfe) max_nfe = r->nfe;
    }
    if (left_out)
        fprintf(stderr, "cm nfe: %s shows the first %d series (model, sampler); %zu cells of "
                "later ones are only in the table and CSV\n", path, MAX_SERIES, left_out);
    if (count == 0) return CM_OK;
    static double fx[2], fy[2];
    fx[0] = (double)min_nfe, fx[1] = (double)max_nfe;
    fy[0] = fy[1] = floor_sum / (double)cells;
    series[count++] = (cm_plot_series){.x = fx, .y = fy, .n = 2, .label = "noise floor", .style = 1};
    return cm_plot_loglog_png(path, series, count, title, "NFE (network evaluations)",
                              "exact W1 (mean over seeds)");
}

/* ---- the score of the correction */

typedef struct {
    cm_law *law;              /* exact law of a gauss:/gmm: source (original units), or NULL */
    cm_model dsm;             /* --score-model, when given */
    int has_dsm;
    cm_denoiser dsm_denoiser;
} score_source;

static void score_source_free(score_source *source) {
    if (source->has_dsm) {
        cm_denoiser_free(&source->dsm_denoiser);
        cm_model_free(&source->dsm);
    }
    cm_law_free(source->law);
    *source = (score_source){0};
}

/* The score in `model`'s units: the dsm model's denoiser (refused unless its transform equals the
 * model's: same data, same seed), or the exact law standardised with the model's transform
 * (*law_out owns it). */
static cm_status score_for_model(cm_denoiser *out, cm_law **law_out, const score_source *source,
                                 const cm_model *model, const char *model_path,
                                 const char *score_path) {
    *law_out = NULL;
    const cm_transform *a = &model->transform;
    if (source->has_dsm) {
        const cm_transform *b = &source->dsm.transform;
        if (b->dim != a->dim)
            return cm_error_set(CM_ERR_DIMENSION, "--score-model %s: dimension %zu, %s %zu",
                                score_path, b->dim, model_path, a->dim);
        for (size_t i = 0; i < a->dim; i++) {
            double unit = fmax(fabs(a->scale[i]), fabs(b->scale[i]));
            if (fabs(a->shift[i] - b->shift[i]) > NFE_TRANSFORM_TOLERANCE * unit ||
                fabs(a->scale[i] - b->scale[i]) > NFE_TRANSFORM_TOLERANCE * unit)
                return cm_error_set(CM_ERR_INVALID,
                                    "--score-model %s standardises the data differently from %s "
                                    "(coordinate %zu: shift %.9g vs %.9g, scale %.9g vs %.9g): "
                                    "train both on the same data with the same seed",
                                    score_path, model_path, i, b->shift[i], a->shift[i],
                                    b->scale[i], a->scale[i]);
        }
        *out = source->dsm_denoiser;
        out->release = NULL; /* borrowed from the source */
        return CM_OK;
    }
    CM_TRY(cm_law_standardise(law_out, source->law, a->shift, a->scale));
    return cm_denoiser_from_law(out, *law_out);
}

static int models_mode(const char *models, const char *data_source, const nfe_settings *s,
                       const char *score_model, const char *csv, const char *png) {
    const char *command = "nfe";
    char list[4096];
    if (strlen(models) >= sizeof list) return cli_usage_error(command, "--model list too long");
    snprintf(list, sizeof list, "%s", models); /* "" with --exact-map alone */
    char *paths[NFE_MAX_MODELS];
    size_t model_count = 0;
    for (char *save = NULL, *p = strtok_r(list, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        if (model_count == NFE_MAX_MODELS)
            return cli_usage_error(command, "at most %d models", NFE_MAX_MODELS);
        paths[model_count++] = p;
    }
    if (model_count == 0 && !s->exact_map) return cli_usage_error(command, "--model: no model given");
    cm_data *data = NULL;
    cm_status status = cm_data_open(&data, data_source);
    if (status != CM_OK) return cli_fail(command, status);
    if (s->exact_map) {
        cm_law *law = NULL;
        if (cm_law_from_data(&law, data) != CM_OK) {
            cm_error_clear();
            cm_data_free(data);
            return cli_usage_error(command, "--exact-map needs a gauss: or gmm: source (a law known "
                                   "exactly), not %s", data_source);
        }
        cm_law_free(law);
    }
    score_source source = {0};
    if (s->langevin_count && score_model) {
        status = cm_model_load(&source.dsm, score_model);
        if (status != CM_OK) {
            cm_data_free(data);
            return cli_fail(command, status);
        }
        source.has_dsm = 1;
        if (source.dsm.config.method.kind != CM_METHOD_DSM) {
            const char *method = cm_method_name(source.dsm.config.method.kind);
            score_source_free(&source);
            cm_data_free(data);
            return cli_usage_error(command, "--score-model %s is a %s model, not a dsm denoiser",
                                   score_model, method);
        }
        status = cm_denoiser_from_model(&source.dsm_denoiser, &source.dsm);
        if (status != CM_OK) {
            cm_model_free(&source.dsm);
            cm_data_free(data);
            return cli_fail(command, status);
        }
    } else if (s->langevin_count && cm_law_from_data(&source.law, data) != CM_OK) {
        cm_error_clear();
        cm_data_free(data);
        return cli_usage_error(command, "--langevin needs a score: --score-model DSM (a dsm model "
                               "trained on this data with the same seed), or a gauss:/gmm: "
                               "source (exact score)");
    }
    static nfe_table table;
    table = (nfe_table){0};
    double *samples = NULL;
    for (size_t m = 0; m < model_count && status == CM_OK; m++) {
        cm_model model;
        status = cm_model_load(&model, paths[m]);
        if (status != CM_OK) break;
        size_t dim = model.config.network.dim;
        if (dim != cm_data_dim(data))
            status = cm_error_set(CM_ERR_DIMENSION, "%s: dimension %zu, the data %zu", paths[m],
                                  dim, cm_data_dim(data));
        cm_free(samples);
        samples = status == CM_OK ? cm_malloc(s->n * dim, sizeof(double)) : NULL;
        if (status == CM_OK && !samples) status = cm_error_set(CM_ERR_NOMEM, "samples");
        char name[128];
        model_name(name, sizeof name, paths[m]);
        double start = cli_seconds();
        cm_method method = model.config.method.kind;
        cm_denoiser score = {0};
        cm_law *law = NULL;
        int corrected = status == CM_OK && s->langevin_count && cm_method_is_ve_consistency(method);
        if (corrected)
            status = score_for_model(&score, &law, &source, &model, paths[m], score_model);
        if (status == CM_OK)
            status = method == CM_METHOD_DSM
                         ? denoiser_rows(&table, &model, name, data, s, samples)
                         : consistency_rows(&table, &model, name, data, s, samples,
                                            corrected ? &score : NULL,
                                            source.has_dsm ? "dsm" : "exact");
        if (status == CM_OK && !s->quiet)
            fprintf(stderr, "cm nfe: %s (%s) measured in %.1f s\n", name, cm_method_name(method),
                    cli_seconds() - start);
        cm_denoiser_free(&score);
        cm_law_free(law);
        cm_model_free(&model);
    }
    if (status == CM_OK && s->exact_map) {
        double start = cli_seconds();
        cm_free(samples);
        samples = cm_malloc(s->n * cm_data_dim(data), sizeof(double));
        status = samples ? exact_map_rows(&table, data, s, samples)
                         : cm_error_set(CM_ERR_NOMEM, "samples");
        if (status == CM_OK && !s->quiet)
            fprintf(stderr, "cm nfe: exact flow map measured in %.1f s\n", cli_seconds() - start);
    }
    cm_free(samples);
    score_source_free(&source);
    if (status == CM_OK) print_table(&table, s);
    if (status == CM_OK && csv) status = write_csv(csv, &table, cm_data_describe(data));
    char title[256];
    snprintf(title, sizeof title, "W1 against NFE on %s (n = %zu, %zu seed%s)",
             cm_data_describe(data), s->n, s->seeds, s->seeds == 1 ? "" : "s");
    if (status == CM_OK && png) status = write_png(png, &table, title);
    cm_free(table.rows);
    table = (nfe_table){0};
    cm_data_free(data);
    return status == CM_OK ? CLI_OK : cli_fail(command, status);
}

/* ---- Gaussian mode */

#define GAUSS_MEAN 0.5              /* mean of every coordinate */
#define GAUSS_ISOTROPIC_VARIANCE 0.25 /* sigma_data^2 [CM] */
#define GAUSS_ANISOTROPIC_LOW 0.01
#define GAUSS_ANISOTROPIC_HIGH 4.0
#define GAUSS_KL_SHOWN 1e-14        /* the figure omits KL below this (rounding level) */
#define LFC_SIGMA_MAX 80.0           /* [CM] sigma_max of the one-step sampler in part C */

static void spectrum(double *var, size_t d, int anisotropic) {
    for (size_t i = 0; i < d; i++)
        var[i] = !anisotropic ? GAUSS_ISOTROPIC_VARIANCE
                 : d == 1    ? sqrt(GAUSS_ANISOTROPIC_LOW * GAUSS_ANISOTROPIC_HIGH)
                             : GAUSS_ANISOTROPIC_LOW * pow(GAUSS_ANISOTROPIC_HIGH / GAUSS_ANISOTROPIC_LOW,
                                                           (double)i / (double)(d - 1));
}

typedef struct {
    const double *dims;
    size_t dim_count, max_steps;
    double eta, kl_target, sigma_end, relative, offset;
} gauss_settings;

static int gaussian_mode(const gauss_settings *g, const char *csv, const char *png) {
    const char *command = "nfe";
    size_t max_d = 1;
    for (size_t i = 0; i < g->dim_count; i++)
        if ((size_t)g->dims[i] > max_d) max_d = (size_t)g->dims[i];
    double *mean = cm_malloc(max_d, sizeof(double)), *var = cm_malloc(max_d, sizeof(double));
    FILE *f = csv ? fopen(csv, "w") : NULL;
    if (!mean || !var || (csv && !f)) {
        cm_free(mean), cm_free(var);
        if (f) fclose(f);
        return cli_fail(command, cm_error_set(csv && !f ? CM_ERR_IO : CM_ERR_NOMEM, "%s",
                                              csv && !f ? csv : "Gaussian mode buffers"));
    }
    for (size_t i = 0; i < max_d; i++) mean[i] = GAUSS_MEAN;
    if (f) fprintf(f, "part,spectrum,d,map,delta,steps,T,tau,error_size,kl,w2\n");
    /* A: KL and W2 against K */
    enum { MAX_CURVES = 12, MAX_POINTS = 64 };
    static double cx[MAX_CURVES][MAX_POINTS], cy[MAX_CURVES][MAX_POINTS];
    static char clabel[MAX_CURVES][96];
    cm_plot_series series[MAX_CURVES];
    size_t curves = 0;
    const char *maps[2] = {"exact", "erroneous"};
    const double deltas[2] = {0.0, -1.0}; /* chaining; jump to the end ([CM]) */
    printf("A. [JHMZ] sampler on N(%.2g 1, diag l), eta = %g, sigma_end = %g: KL(output || X_end) "
           "against steps K (T = t_end + K eta)\n", GAUSS_MEAN, g->eta, g->sigma_end);
    printf("   erroneous map: g = Phi + relative error %g of the linear part + offset %g per coordinate\n",
           g->relative, g->offset);
    printf("%-12s %5s %-9s %-8s", "spectrum", "d", "map", "delta");
    for (size_t K = 1; K <= g->max_steps; K *= 2) printf(" %9s%-3zu", "K=", K);
    printf("\n");
    cm_status status = CM_OK;
    for (int aniso = 0; aniso < 2 && status == CM_OK; aniso++)
        for (size_t di = 0; di < g->dim_count && status == CM_OK; di++) {
            size_t d = (size_t)g->dims[di];
            spectrum(var, d, aniso);
            for (int m = 0; m < 2; m++)
                for (int dl = 0; dl < 2; dl++) {
                    cm_gaussian_map map = {d, mean, var, m ? g->relative : 0.0, m ? g->offset : 0.0, 0.0};
                    printf("%-12s %5zu %-9s %-8s", aniso ? "anisotropic" : "isotropic", d, maps[m],
                           dl ? "to-end" : "0");
                    /* the figure: isotropic, smallest, middle and largest d; exact chaining and
                     * both erroneous variants */
                    int shown_d = di == 0 || di == g->dim_count / 2 || di + 1 == g->dim_count;
                    int curve = !aniso && shown_d && (m == 1 || dl == 0) && curves < MAX_CURVES;
                    if (curve) {
                        snprintf(clabel[curves], sizeof clabel[curves], "d=%zu %s%s", d, maps[m],
                                 dl ? " to-end" : "");
                        series[curves] = (cm_plot_series){.x = cx[curves], .y = cy[curves], .n = 0,
                                                          .label = clabel[curves], .style = m};
                    }
                    for (size_t K = 1; K <= g->max_steps && status == CM_OK; K *= 2) {
                        cm_jhmz_options o = cm_jhmz_options_default();
                        o.steps = K, o.eta = g->eta, o.delta = deltas[dl], o.sigma_end = g->sigma_end;
                        double kl, w2;
                        status = cm_jhmz_gaussian_error(&kl, &w2, &map, &o);
                        printf(" %12.4g", kl);
                        double T = cm_ou_time(o.sigma_end) + (double)K * o.eta;
                        if (f)
                            fprintf(f, "kl_vs_steps,%s,%zu,%s,%s,%zu,%.6g,,,%.9g,%.9g\n",
                                    aniso ? "anisotropic" : "isotropic", d, maps[m],
                                    dl ? "to-end" : "0", K, T, kl, w2);
                        if (curve && series[curves].n < MAX_POINTS && kl > GAUSS_KL_SHOWN) {
                            cx[curves][series[curves].n] = (double)K;
                            cy[curves][series[curves].n++] = kl;
                        }
                    }
                    printf("\n");
                    if (curve) curves++;
                }
        }
    /* B: steps for a target KL with the exact map (chaining), against d */
    printf("\nB. Steps K for KL <= %g (exact map, delta = 0, eta = %g), beside the shapes of [JHMZ]\n",
           g->kl_target, g->eta);
    printf("%-12s %5s %6s %14s %14s %16s\n", "spectrum", "d", "K", "log(d/eps)", "K/log(d/eps)",
           "K/(d log(d/eps))");
    double eps = sqrt(g->kl_target);
    for (int aniso = 0; aniso < 2 && status == CM_OK; aniso++)
        for (size_t di = 0; di < g->dim_count && status == CM_OK; di++) {
            size_t d = (size_t)g->dims[di], K = 0;
            spectrum(var, d, aniso);
            cm_gaussian_map map = {d, mean, var, 0.0, 0.0, 0.0};
            for (size_t k = 1; k <= 100000 && status == CM_OK; k++) {
                cm_jhmz_options o = cm_jhmz_options_default();
                o.steps = k, o.eta = g->eta, o.delta = 0.0, o.sigma_end = g->sigma_end;
                double kl, w2;
                if (cm_ou_time(o.sigma_end) + (double)k * o.eta > 300) break;
                status = cm_jhmz_gaussian_error(&kl, &w2, &map, &o);
                if (kl <= g->kl_target) {
                    K = k;
                    break;
                }
            }
            double shape = log((double)d / eps);
            printf("%-12s %5zu %6zu %14.3f %14.3f %16.4f\n", aniso ? "anisotropic" : "isotropic", d,
                   K, shape, (double)K / shape, (double)K / ((double)d * shape));
            if (f)
                fprintf(f, "steps_for_target,%s,%zu,exact,0,%zu,,,,%.9g,\n",
                        aniso ? "anisotropic" : "isotropic", d, K, g->kl_target);
        }
    /* C: [LFC] one- versus two-step [CM] sampling with perturbed flow maps, d = 2 isotropic */
    printf("\nC. [LFC]: W2 of [CM] one-step vs best two-step sampling (tau by golden section on "
           "log tau), N(%.2g 1, %.2g I) in d = 2, sigma_max %g\n", GAUSS_MEAN, GAUSS_ISOTROPIC_VARIANCE,
           LFC_SIGMA_MAX);
    printf("   error constant, or 'propto': size x sigma / %g at the map's start level sigma\n", LFC_SIGMA_MAX);
    printf("%-17s %10s %12s %12s %10s %8s\n", "error", "size", "W2 1-step", "W2 2-step", "tau*",
           "helps");
    spectrum(var, 2, 0);
    const double sizes[4] = {0.0, 0.01, 0.05, 0.2};
    for (int profile = 0; profile < 2 && status == CM_OK; profile++)
    for (int kind = 0; kind < 2 && status == CM_OK; kind++)
        for (int si = 0; si < 4 && status == CM_OK; si++) {
            cm_gaussian_map map = {2, mean, var, kind ? sizes[si] : 0.0, kind ? 0.0 : sizes[si],
                                   profile ? LFC_SIGMA_MAX : 0.0};
            double target[2] = {var[0] + g->sigma_end * g->sigma_end, var[1] + g->sigma_end * g->sigma_end};
            double m[2], v[2], levels[2] = {LFC_SIGMA_MAX, 1.0};
            /* W2 of N(m, diag v) against N(mean, diag target) */
#define W2_OF(out)                                                                         \
    do {                                                                                   \
        double acc = 0;                                                                    \
        for (int i = 0; i < 2; i++)                                                        \
            acc += (m[i] - mean[i]) * (m[i] - mean[i]) +                                   \
                   (sqrt(v[i]) - sqrt(target[i])) * (sqrt(v[i]) - sqrt(target[i]));        \
        (out) = sqrt(acc);                                                                 \
    } while (0)
            double one, best = INFINITY, best_tau = NAN;
            status = cm_cm_gaussian(m, v, &map, levels, 1, g->sigma_end);
            W2_OF(one);
            double lo = log(g->sigma_end * 1.01), hi = log(LFC_SIGMA_MAX * 0.999), golden = 0.5 * (sqrt(5.0) - 1);
            for (int grid = 0; grid <= 200 && status == CM_OK; grid++) { /* a grid, then refine */
                levels[1] = exp(lo + (hi - lo) * grid / 200.0);
                status = cm_cm_gaussian(m, v, &map, levels, 2, g->sigma_end);
                double w;
                W2_OF(w);
                if (w < best) best = w, best_tau = levels[1];
            }
            double a = fmax(lo, log(best_tau) - (hi - lo) / 200);
            double b = fmin(hi, log(best_tau) + (hi - lo) / 200);
            for (int it = 0; it < 40 && status == CM_OK; it++) {
                double p = b - golden * (b - a), q = a + golden * (b - a), wp, wq;
                levels[1] = exp(p);
                status = cm_cm_gaussian(m, v, &map, levels, 2, g->sigma_end);
                W2_OF(wp);
                levels[1] = exp(q);
                if (status == CM_OK) status = cm_cm_gaussian(m, v, &map, levels, 2, g->sigma_end);
                W2_OF(wq);
                if (wp < wq) b = q; else a = p;
                double w = fmin(wp, wq);
                if (w < best) best = w, best_tau = exp(wp < wq ? p : q);
            }
#undef W2_OF
            const char *name = kind ? (profile ? "linear-propto" : "linear")
                                    : (profile ? "offset-propto" : "offset");
            printf("%-17s %10.3g %12.5g %12.5g %10.4g %8s\n", name, sizes[si], one, best, best_tau,
                   best < one * (1 - 1e-6) ? "yes" : "no");
            if (f) {
                fprintf(f, "lfc,isotropic,2,%s,,1,,,%.6g,,%.9g\n", name, sizes[si], one);
                fprintf(f, "lfc,isotropic,2,%s,,2,,%.9g,%.6g,,%.9g\n", name, best_tau, sizes[si],
                        best);
            }
        }
    if (f && fclose(f) != 0 && status == CM_OK)
        status = cm_error_set(CM_ERR_IO, "%s: write failed", csv);
    if (status == CM_OK && png && curves) {
        char title[160];
        snprintf(title, sizeof title, "[JHMZ] sampler on Gaussians: KL vs steps (eta %g)", g->eta);
        status = cm_plot_loglog_png(png, series, curves, title, "steps K", "KL(output || target)");
    }
    cm_free(mean);
    cm_free(var);
    return status == CM_OK ? CLI_OK : cli_fail(command, status);
}

/* --delta: comma-separated overshoots, each a finite number in [0, NFE_MAX_DELTA] or "end". */
static int parse_deltas(double *out, size_t *count, const char *text, const char *command) {
    char copy[512];
    if (strlen(text) >= sizeof copy) return cli_usage_error(command, "--delta: list too long");
    snprintf(copy, sizeof copy, "%s", text);
    *count = 0;
    for (char *save = NULL, *p = strtok_r(copy, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        if (*count == NFE_MAX_DELTAS)
            return cli_usage_error(command, "--delta: at most %d values", NFE_MAX_DELTAS);
        if (strcmp(p, "end") == 0) {
            out[(*count)++] = NFE_DELTA_END;
            continue;
        }
        char *end;
        double value = strtod(p, &end);
        if (end == p || *end != '\0' || !isfinite(value) || value < 0 || value > NFE_MAX_DELTA)
            return cli_usage_error(command, "--delta: '%s' is not a number in [0, %g] or 'end' "
                                   "(jump to sigma_min every step)", p, NFE_MAX_DELTA);
        out[(*count)++] = value;
    }
    if (*count == 0) return cli_usage_error(command, "--delta: no value given");
    return CLI_OK;
}

int cmd_nfe(int argc, char **argv) {
    const char *command = "nfe";
    const char *models = NULL, *data = NULL, *csv = NULL, *png = NULL, *score_model = NULL;
    const char *delta_text = "0";
    cli_list nfe = {.values = {1, 2, 4, 8, 16}, .count = 5};
    cli_list dims = {.values = {1, 4, 16, 64, 256}, .count = 5};
    cli_list langevin = {.count = 0};
    size_t n = 2000, search_n = 1000, iterations = 10, projections = 128, max_steps = 32;
    size_t seeds = 3;
    uint64_t seed = 0;
    double eta = 0.5, kl_target = 1e-3, relative = 0.02, offset = 0.0, sigma_end = 0.002;
    double langevin_step = NFE_LANGEVIN_STEP;
    int quiet = 0, gaussian = 0, exact_map = 0;
    cli_option options[] = {
        {"model", OPT_STRING, &models, "trained model(s), comma-separated (a,b,...)", 0, 0, 0},
        {"data", OPT_STRING, &data, "data source of the reference (the models' training data)", 0, 0, 0},
        {"nfe", OPT_LIST, &nfe, "NFE budgets (integers)", 0, 0, 0},
        {"n", OPT_SIZE, &n, "samples per measurement (and reference points)", 2, 0, 0},
        {"seed", OPT_U64, &seed, "first sample seed; the level search and held-out draws", 0, 0, 0},
        {"seeds", OPT_SIZE, &seeds, "sample seeds per cell: seed .. seed + seeds - 1 (1..100)", 1, 0, 0},
        {"search-n", OPT_SIZE, &search_n, "level search: samples and held-out reference points", 2, 0, 0},
        {"iterations", OPT_SIZE, &iterations, "level search: evaluations per level (5-point grid, then golden section; cd, cd2: every level of their grid)", 2, 0, 0},
        {"projections", OPT_SIZE, &projections, "level search: sliced-W1 directions (0: exact W1)", 0, 0, 0},
        {"langevin", OPT_LIST, &langevin, "[LFC] correction: Langevin step counts L (NFE + L; default none)", 0, 0, 0},
        {"langevin-step", OPT_DOUBLE, &langevin_step, "[LFC] Langevin step h in model units (docs/sampling.md)", 1e-300, 0, 0},
        {"score-model", OPT_STRING, &score_model, "dsm model giving the score (same data and seed); default: exact law of gauss:/gmm:", 0, 0, 0},
        {"delta", OPT_STRING, &delta_text, "[JHMZ] overshoots of the chain rows: numbers >= 0 or 'end'", 0, 0, 0},
        {"exact-map", OPT_FLAG, &exact_map, "also the [JHMZ] sampler over the exact flow map of a gauss:/gmm: source", 0, 0, 0},
        {"csv", OPT_STRING, &csv, "tidy CSV of every measurement (one row per seed)", 0, 0, 0},
        {"png", OPT_STRING, &png, "log-log figure (W1 vs NFE; --gaussian: KL vs steps)", 0, 0, 0},
        {"gaussian", OPT_FLAG, &gaussian, "closed forms on Gaussian data instead of models", 0, 0, 0},
        {"dims", OPT_LIST, &dims, "--gaussian: dimensions d", 0, 0, 0},
        {"eta", OPT_DOUBLE, &eta, "--gaussian: constant step in OU time", 1e-6, 0, 0},
        {"max-steps", OPT_SIZE, &max_steps, "--gaussian: largest K of the KL table (doubling from 1)", 1, 0, 0},
        {"kl-target", OPT_DOUBLE, &kl_target, "--gaussian: target KL (eps^2) of the step count", 1e-300, 0, 0},
        {"relative", OPT_DOUBLE, &relative, "--gaussian: linear error of the erroneous map", -0.5, 0, 0},
        {"offset", OPT_DOUBLE, &offset, "--gaussian: constant offset of the erroneous map", -1e3, 0, 0},
        {"sigma-end", OPT_DOUBLE, &sigma_end, "--gaussian: final noise level ([CM] sigma_min)", 1e-9, 0, 0},
        {"quiet", OPT_FLAG, &quiet, "no progress on stderr", 0, 0, 0},
    };
    int parsed = cli_parse(argc, argv, 2, options, sizeof options / sizeof options[0], command,
                           "Quality against the number of network evaluations: exact W1 (with its\n"
                           "noise floor, mean over seeds) of consistency models (one step, [CM]\n"
                           "Algorithm 1 with searched levels, [LFC]'s Langevin correction, the\n"
                           "[JHMZ] chain with overshoot) and of dsm denoisers (DDIM, Heun, DDPM) at\n"
                           "NFE budgets; or, with --gaussian, the closed forms of [JHMZ]/[LFC]\n"
                           "multistep sampling on Gaussian data (docs/sampling.md).");
    if (parsed != CLI_OK) return parsed;
    for (size_t i = 0; i < nfe.count; i++)
        if (nfe.values[i] != floor(nfe.values[i]) || nfe.values[i] > 4096)
            return cli_usage_error(command, "--nfe: %g is not an integer in [1, 4096]", nfe.values[i]);
    for (size_t i = 0; i < dims.count; i++)
        if (dims.values[i] != floor(dims.values[i]) || dims.values[i] > 65536)
            return cli_usage_error(command, "--dims: %g is not an integer in [1, 65536]", dims.values[i]);
    for (size_t i = 0; i < langevin.count; i++)
        if (langevin.values[i] != floor(langevin.values[i]) || langevin.values[i] > NFE_MAX_LANGEVIN)
            return cli_usage_error(command, "--langevin: %g is not an integer in [1, %d]",
                                   langevin.values[i], NFE_MAX_LANGEVIN);
    if (n > 100000 || search_n > 100000)
        return cli_usage_error(command, "--n and --search-n: at most 100000");
    if (seeds > NFE_MAX_SEEDS)
        return cli_usage_error(command, "--seeds %zu: at most %d", seeds, NFE_MAX_SEEDS);
    if (!(langevin_step <= NFE_MAX_LANGEVIN_STEP))
        return cli_usage_error(command, "--langevin-step %g: at most %g", langevin_step,
                               NFE_MAX_LANGEVIN_STEP);
    if (iterations > 200) return cli_usage_error(command, "--iterations %zu: at most 200", iterations);
    if (projections > 100000) return cli_usage_error(command, "--projections: at most 100000");
    if (max_steps > 4096) return cli_usage_error(command, "--max-steps %zu: at most 4096", max_steps);
    double deltas[NFE_MAX_DELTAS];
    size_t delta_count = 0;
    int delta_parsed = parse_deltas(deltas, &delta_count, delta_text, command);
    if (delta_parsed != CLI_OK) return delta_parsed;
    if (gaussian) {
        if (models || data) return cli_usage_error(command, "--gaussian takes no --model or --data");
        const char *model_only[] = {"seeds", "langevin", "langevin-step", "score-model", "delta",
                                    "exact-map"};
        for (size_t k = 0; k < sizeof model_only / sizeof model_only[0]; k++)
            if (cli_option_seen(options, sizeof options / sizeof options[0], model_only[k]))
                return cli_usage_error(command, "--%s applies to models, not --gaussian",
                                       model_only[k]);
        if (!(eta < 50)) return cli_usage_error(command, "--eta %g: at most 50", eta);
        if (!(sigma_end < 10)) return cli_usage_error(command, "--sigma-end %g: below 10", sigma_end);
        gauss_settings g = {dims.values, dims.count, max_steps, eta, kl_target, sigma_end,
                            relative, offset};
        return gaussian_mode(&g, csv, png);
    }
    if ((!models && !exact_map) || !data)
        return cli_usage_error(command, "give --model (or --exact-map) and --data (or --gaussian)");
    if (!langevin.count && (cli_option_seen(options, sizeof options / sizeof options[0], "langevin-step") ||
                            cli_option_seen(options, sizeof options / sizeof options[0], "score-model")))
        return cli_usage_error(command, "--langevin-step and --score-model need --langevin");
    nfe_settings s = {.nfe = nfe.values, .nfe_count = nfe.count, .n = n, .search_n = search_n,
                      .iterations = iterations, .projections = projections, .seeds = seeds,
                      .seed = seed, .langevin = langevin.values, .langevin_count = langevin.count,
                      .langevin_step = langevin_step, .delta = deltas, .delta_count = delta_count,
                      .exact_map = exact_map, .quiet = quiet};
    return models_mode(models ? models : "", data, &s, score_model, csv, png);
}
