/* cmd_nfe_rows.c: the cells `cm nfe` measures for one model (nfe.h), each a sampler at an NFE
 * budget:
 *   consistency models (lhw, ct, ict, cd, cd2): [CM] Algorithm 1 with k levels, levels[0] =
 *     sigma_max and the others chosen by the greedy grid and golden-section search of
 *     multistep.h on a held-out reference (sliced W1, samples drawn with seed + 1; the prefix of
 *     the k-level search is the search for fewer levels, so it runs once for the largest k, and
 *     once for all seeds); with a score, [LFC]'s correction: L unadjusted Langevin steps at
 *     sigma_min after the one-step sample and after the best multistep budget (NFE k + L);
 *   VE consistency models, k >= 2, also "chain": the [JHMZ] sampler over the model's two-time
 *     map (multistep.h: our construction for ct, ict, cd; the network for cd2), k equal steps in
 *     OU time from sigma_max, for every overshoot delta ("end": jump to sigma_min);
 *   dsm models: DDIM (Euler, N = k), Heun (N = (k + 1) / 2 steps: 2N - 1 <= k calls) and DDPM
 *     (N = k) on the Karras grid of the model's sigma range;
 *   --exact-map (gauss:/gmm: sources): the [JHMZ] sampler over the law's exact flow map, k >= 1
 *     steps, every delta: what the sampler itself costs when the map is perfect.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/multistep.h"
#include "cm/sampler.h"
#include "nfe.h"

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
    nfe_row r = nfe_row_proto(name, method, sampler, k, k);
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
            status = nfe_measure_cell(t, &r, data, s, samples, draw_chain, &c);
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
cm_status nfe_exact_map_rows(nfe_table *t, const cm_data *data, const nfe_settings *s,
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
            status = nfe_measure_cell(t, &r, data, s, samples, draw_exact, &c);
        }
    cm_two_time_free(&map);
    cm_law_free(law);
    cm_law_free(raw);
    cm_free(moments);
    return status;
}

/* ---- the rows of a consistency model */

/* The levels of [CM] Algorithm 1 for the largest budget (*max_k of them: the largest --nfe,
 * at most CM_SAMPLER_MAX_LEVELS, for cd and cd2 at most the levels of their grid above
 * sigma_min), searched against a held-out reference of search_n draws by the processes that
 * measure the model, and shared with the others. */
static cm_status search_levels(double *levels, size_t *max_k, const cm_model *model,
                               const cm_data *data, const nfe_settings *s) {
    size_t dim = model->config.network.dim, k = 1;
    for (size_t i = 0; i < s->nfe_count; i++)
        if ((size_t)s->nfe[i] > k) k = (size_t)s->nfe[i];
    if (k > CM_SAMPLER_MAX_LEVELS) k = CM_SAMPLER_MAX_LEVELS;
    if (cm_method_is_distillation(model->config.method.kind) && k > model->config.method.cd_levels - 1)
        k = model->config.method.cd_levels - 1; /* searched on its grid: levels above sigma_min */
    *max_k = k;
    if (!nfe_measures_model(s)) return nfe_share_levels(levels, k, s);
    double distance, *reference = cm_malloc(s->search_n * dim, sizeof(double));
    if (!reference) return cm_error_set(CM_ERR_NOMEM, "held-out reference");
    cm_rng held_out;
    cm_rng_init(&held_out, s->seed ^ 0x9e3779b97f4a7c15ull); /* not the EVAL stream of the seed */
    cm_data_sample(data, &held_out, s->search_n, reference);
    cm_status status = cm_multistep_search_levels(levels, &distance, model, k, reference,
                                                  s->search_n, s->search_n, s->projections,
                                                  s->iterations, s->seed + 1);
    cm_free(reference);
    CM_TRY(status);
    return nfe_share_levels(levels, k, s);
}

/* [LFC]'s correction with every Langevin count after k of the searched levels. */
static cm_status lfc_rows(nfe_table *t, const cm_model *model, const char *name,
                          const cm_data *data, const nfe_settings *s, double *samples,
                          const double *levels, size_t k, const cm_denoiser *score,
                          const char *score_name) {
    const char *method = cm_method_name(model->config.method.kind);
    for (size_t l = 0; l < s->langevin_count; l++) {
        size_t L = (size_t)s->langevin[l];
        cm_draw c = {model, levels, k, score, L, s->langevin_step};
        nfe_row r = nfe_row_proto(name, method, k > 1 ? "multistep+lfc" : "onestep+lfc", k + L, k);
        r.langevin_steps = L, r.langevin_step = s->langevin_step;
        char text[384];
        nfe_levels_text(text, sizeof text, levels, k);
        snprintf(r.levels, sizeof r.levels, "%s; lfc %zu x h %g %s score", text, L,
                 s->langevin_step, score_name);
        CM_TRY(nfe_measure_cell(t, &r, data, s, samples, draw_consistency, &c));
    }
    return CM_OK;
}

/* Rows of one consistency model: searched levels for the largest budget, prefixes for the rest;
 * with a score, [LFC]'s correction after the one-step sample and after the best multistep one
 * (the budget k >= 2 with the lowest mean W1 over the seeds: all processes' seeds, shared). */
cm_status nfe_consistency_rows(nfe_table *t, const cm_model *model, const char *name,
                               const cm_data *data, const nfe_settings *s, double *samples,
                               const cm_denoiser *score, const char *score_name) {
    double levels[CM_SAMPLER_MAX_LEVELS] = {0};
    size_t max_k;
    CM_TRY(search_levels(levels, &max_k, model, data, s));
    const char *method = cm_method_name(model->config.method.kind);
    size_t first_row = t->count;
    for (size_t i = 0; i < s->nfe_count; i++) {
        size_t k = (size_t)s->nfe[i];
        if (k > max_k) continue;
        cm_draw c = {model, levels, k, NULL, 0, 0};
        nfe_row r = nfe_row_proto(name, method, k == 1 ? "onestep" : "multistep", k, k);
        nfe_levels_text(r.levels, sizeof r.levels, levels, k);
        CM_TRY(nfe_measure_cell(t, &r, data, s, samples, draw_consistency, &c));
    }
    size_t best_k = 0;
    double best = INFINITY;
    if (score) CM_TRY(nfe_table_share(t, s));
    for (size_t i = first_row; score && i < t->count; i += s->seeds) {
        double mean = nfe_cell_mean(t, i);
        if (t->rows[i].steps >= 2 && mean < best) best = mean, best_k = t->rows[i].steps;
    }
    if (score) {
        CM_TRY(lfc_rows(t, model, name, data, s, samples, levels, 1, score, score_name));
        if (best_k) /* a multistep budget was measured */
            CM_TRY(lfc_rows(t, model, name, data, s, samples, levels, best_k, score, score_name));
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

cm_status nfe_denoiser_rows(nfe_table *t, const cm_model *model, const char *name,
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
            nfe_row r = nfe_row_proto(name, "dsm", cm_diffusion_sampler_name(c.options.sampler), nfe,
                                  c.options.steps);
            snprintf(r.levels, sizeof r.levels, "karras %zu", c.options.steps);
            CM_TRY(nfe_measure_cell(t, &r, data, s, samples, draw_dsm, &c));
        }
    return CM_OK;
}
