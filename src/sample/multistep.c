/* multistep.c: two-time maps, the [JHMZ] sampler with [LFC]'s Langevin correction, their closed
 * forms on diagonal Gaussian data, and the greedy golden-section search of [CM] Algorithm 1's
 * levels (docs/sampling.md; see multistep.h for the formulas and what is our construction). */
#include "cm/multistep.h"

#include <math.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/evaluator.h"
#include "cm/schedule.h"
#include "cm/metrics.h"
#include "cm/minimise.h"
#include "cm/ot.h"
#include "cm/sampler.h"

double cm_ou_sigma(double t) { return sqrt(expm1(2.0 * t)); }
double cm_ou_time(double sigma) { return 0.5 * log1p(sigma * sigma); }

void cm_two_time_free(cm_two_time_map *map) {
    if (!map) return;
    if (map->release) map->release(map->context);
    *map = (cm_two_time_map){0};
}

/* ---- exact flow map of a law */

static cm_status law_map(void *context, const double *x, size_t n, double from, double to,
                         double *out) {
    const cm_law *law = context;
    size_t D = cm_law_dim(law);
    if (from == to) {
        memcpy(out, x, n * D * sizeof(double));
        return CM_OK;
    }
    /* VE -> VP at the start, flow in log-SNR, VP -> VE at the end (law.h) */
    double in_scale = 1.0 / sqrt(1.0 + from * from), out_scale = sqrt(1.0 + to * to);
    for (size_t k = 0; k < n * D; k++) out[k] = in_scale * x[k];
    CM_TRY(cm_law_flow(law, -2.0 * log(from), -2.0 * log(to), out, n, out, NULL, NULL));
    for (size_t k = 0; k < n * D; k++) out[k] *= out_scale;
    return CM_OK;
}

cm_status cm_two_time_from_law(cm_two_time_map *out, const cm_law *law) {
    *out = (cm_two_time_map){.map = law_map, .context = (void *)law, .dim = cm_law_dim(law)};
    return CM_OK;
}

/* ---- closed-form Gaussian map with a controlled error */

/* The error profile p(a) of cm_gaussian_map. */
static double error_profile(const cm_gaussian_map *g, double from) {
    return g->profile_scale > 0 ? fmin(1.0, from / g->profile_scale) : 1.0;
}

static cm_status gaussian_map(void *context, const double *x, size_t n, double from, double to,
                              double *out) {
    const cm_gaussian_map *g = context;
    double p = error_profile(g, from);
    for (size_t r = 0; r < n; r++)
        for (size_t i = 0; i < g->dim; i++) {
            double l = g->variances[i], m = g->mean[i];
            double ratio = sqrt((l + to * to) / (l + from * from));
            out[r * g->dim + i] = m + (1.0 + p * g->relative) * ratio * (x[r * g->dim + i] - m) +
                                  p * g->offset;
        }
    return CM_OK;
}

cm_status cm_two_time_gaussian(cm_two_time_map *out, const cm_gaussian_map *g) {
    for (size_t i = 0; i < g->dim; i++)
        if (!(g->variances[i] >= 0) || !isfinite(g->mean[i]))
            return cm_error_set(CM_ERR_INVALID, "Gaussian map: coordinate %zu (mean %g, variance "
                                "%g)", i, g->mean[i], g->variances[i]);
    *out = (cm_two_time_map){.map = gaussian_map, .context = (void *)g, .dim = g->dim};
    return CM_OK;
}

/* ---- a trained model as a two-time map: our construction from a one-time VE consistency model,
 * or a two-time (cd2) network directly */

/* One-time model: x0 = f(x, from) (full-chunk network calls, as the sampler's), then
 * x0 + (to / from)(x - x0). Two-time (cd2) model: the network's g(x, from, to) itself (keep = 0
 * below). to = 0 is read as the model's sigma_min, where both end. */
static cm_status model_two_time(void *context, const double *x, size_t n, double from, double to,
                                double *out) {
    cm_evaluator *evaluator = context;
    const cm_model *model = cm_evaluator_model(evaluator);
    const cm_method_config *method = &model->config.method;
    int two_time = method->kind == CM_METHOD_CD2;
    if (two_time && to < method->sigma_min) to = method->sigma_min;
    cm_coefficients c = two_time ? cm_consistency_two_time(from, to, method->sigma_data)
                                 : cm_model_coefficients(model, from);
    double keep = two_time ? 0.0 : to / from;
    cm_evaluator_apply_f64(evaluator, out, x, n, c);
    if (keep != 0.0)
        for (size_t k = 0; k < n * model->config.network.dim; k++)
            out[k] = out[k] + keep * (x[k] - out[k]);
    return CM_OK;
}

static void model_map_release(void *context) { cm_evaluator_free(context); }

cm_status cm_two_time_from_model(cm_two_time_map *out, const cm_model *model) {
    *out = (cm_two_time_map){0};
    cm_method method = model->config.method.kind;
    if (!cm_method_is_ve_consistency(method))
        return cm_error_set(CM_ERR_INVALID, "a two-time map needs a VE consistency model "
                            "(ct, ict, cd, cd2), not %s", cm_method_name(method));
    cm_evaluator *evaluator;
    cm_evaluator_options options = cm_evaluator_options_for(model);
    CM_TRY(cm_evaluator_alloc(&evaluator, model, &options));
    *out = (cm_two_time_map){.map = model_two_time, .context = evaluator,
                             .release = model_map_release, .dim = model->config.network.dim};
    return CM_OK;
}

/* ---- the [JHMZ] sampler and the [LFC] correction */

cm_jhmz_options cm_jhmz_options_default(void) {
    return (cm_jhmz_options){.steps = 4, .eta = 0.5, .delta = 0.0,
                             .sigma_end = 0.002, /* [CM] sigma_min */
                             .langevin_steps = 0, .langevin_step = 1e-3};
}

static cm_status check_options(const cm_jhmz_options *o) {
    if (o->steps < 1 || o->steps > 100000)
        return cm_error_set(CM_ERR_INVALID, "steps %zu out of [1, 1e5]", o->steps);
    if (!(o->eta > 0) || !isfinite(o->eta) || !isfinite(o->delta))
        return cm_error_set(CM_ERR_INVALID, "eta %g must be > 0, delta %g finite", o->eta, o->delta);
    if (!(o->sigma_end > 0) || !isfinite(o->sigma_end))
        return cm_error_set(CM_ERR_INVALID, "sigma_end %g must be > 0", o->sigma_end);
    if (o->langevin_steps && (!(o->langevin_step > 0) || !isfinite(o->langevin_step)))
        return cm_error_set(CM_ERR_INVALID, "Langevin step %g must be > 0", o->langevin_step);
    if (cm_ou_time(o->sigma_end) + (double)o->steps * o->eta > 300)
        return cm_error_set(CM_ERR_INVALID, "start time t_end + K eta above 300 (sigma overflows)");
    return CM_OK;
}

/* The levels of step k: from sigma(t), jump to sigma(s), re-noise to sigma(t'). */
static void step_levels(const cm_jhmz_options *o, size_t k, double *from, double *jump,
                        double *next) {
    double t_end = cm_ou_time(o->sigma_end), T = t_end + (double)o->steps * o->eta;
    double t = T - (double)k * o->eta, t_next = k + 1 == o->steps ? t_end : t - o->eta;
    double s = o->delta < 0 ? t_end : t_next - o->delta;
    if (s < t_end) s = t_end;
    *from = cm_ou_sigma(t);
    *jump = s <= t_end ? o->sigma_end : cm_ou_sigma(s);
    *next = t_next <= t_end ? o->sigma_end : cm_ou_sigma(t_next);
}

static void stage_noise(double *z, const cm_rng *stream, size_t stage, size_t n, size_t D) {
    cm_rng stage_rng;
    cm_rng_fork(&stage_rng, stream, stage);
    for (size_t i = 0; i < n; i++) {
        cm_rng point;
        cm_rng_fork(&point, &stage_rng, i);
        cm_rng_normal_fill_f64(&point, z + i * D, D);
    }
}

cm_status cm_jhmz_sample(double *out, const cm_two_time_map *map, const cm_denoiser *score,
                         const cm_jhmz_options *o, size_t n, uint64_t seed) {
    CM_TRY(check_options(o));
    if (n == 0) return cm_error_set(CM_ERR_INVALID, "number of samples must be >= 1");
    if (o->langevin_steps && (!score || score->dim != map->dim))
        return cm_error_set(CM_ERR_INVALID, "the Langevin correction needs a score of dimension %zu",
                            map->dim);
    size_t D = map->dim;
    double *work = cm_malloc(2 * n * D, sizeof(double));
    if (!work) return cm_error_set(CM_ERR_NOMEM, "sampler work (%zu points)", n);
    double *z = work, *y = work + n * D;
    cm_rng root, stream;
    cm_rng_init(&root, seed);
    cm_rng_fork(&stream, &root, CM_STREAM_SAMPLE);
    double from, jump, next;
    step_levels(o, 0, &from, &jump, &next);
    stage_noise(out, &stream, 0, n, D);
    double prior = sqrt(1.0 + from * from); /* VP N(0, I) in VE units */
    for (size_t k = 0; k < n * D; k++) out[k] *= prior;
    cm_status status = CM_OK;
    for (size_t k = 0; k < o->steps && status == CM_OK; k++) {
        step_levels(o, k, &from, &jump, &next);
        status = map->map(map->context, out, n, from, jump, y);
        memcpy(out, y, n * D * sizeof(double));
        if (status == CM_OK && next > jump) {
            double add = sqrt(next * next - jump * jump);
            stage_noise(z, &stream, k + 1, n, D);
            for (size_t i = 0; i < n * D; i++) out[i] += add * z[i];
        }
    }
    cm_free(work);
    if (status == CM_OK && o->langevin_steps)
        status = cm_langevin_correct(out, n, score, o->sigma_end, o->langevin_steps,
                                     o->langevin_step, seed, o->steps + 1);
    return status;
}

cm_status cm_langevin_correct(double *x, size_t n, const cm_denoiser *score, double sigma,
                              size_t steps, double step, uint64_t seed, size_t first_stage) {
    if (steps == 0) return CM_OK;
    if (!score) return cm_error_set(CM_ERR_INVALID, "the Langevin correction needs a score");
    if (!(sigma > 0) || !isfinite(sigma) || !(step > 0) || !isfinite(step))
        return cm_error_set(CM_ERR_INVALID, "Langevin level %g and step %g must be finite and > 0",
                            sigma, step);
    if (n == 0) return cm_error_set(CM_ERR_INVALID, "number of samples must be >= 1");
    size_t D = score->dim;
    double *work = cm_malloc(2 * n * D + n, sizeof(double));
    if (!work) return cm_error_set(CM_ERR_NOMEM, "Langevin work (%zu points)", n);
    double *z = work, *y = work + n * D, *level = y + n * D;
    cm_rng root, stream;
    cm_rng_init(&root, seed);
    cm_rng_fork(&stream, &root, CM_STREAM_SAMPLE);
    cm_status status = CM_OK;
    for (size_t j = 0; j < steps && status == CM_OK; j++) {
        for (size_t r = 0; r < n; r++) level[r] = sigma;
        status = cm_denoiser_score(score, x, level, n, y);
        stage_noise(z, &stream, first_stage + j, n, D);
        for (size_t i = 0; i < n * D && status == CM_OK; i++)
            x[i] += step * y[i] + sqrt(2.0 * step) * z[i];
    }
    cm_free(work);
    return status;
}

/* ---- closed forms on diagonal Gaussian data */

/* One coordinate through g(., a, b): mean and variance of the image of N(mu, v). */
static void gaussian_step(double *mu, double *v, const cm_gaussian_map *g, size_t i, double a,
                          double b) {
    double l = g->variances[i], m = g->mean[i], p = error_profile(g, a);
    double slope = (1.0 + p * g->relative) * sqrt((l + b * b) / (l + a * a));
    *mu = m + slope * (*mu - m) + p * g->offset;
    *v = slope * slope * *v;
}

/* L exact ULA steps with the score of N(m, l + s^2): x <- x + h (m - x) / (l + s^2) + sqrt(2h) z. */
static void gaussian_langevin(double *mu, double *v, double m, double w, size_t steps, double h) {
    double c = 1.0 - h / w;
    for (size_t j = 0; j < steps; j++) {
        *mu = m + c * (*mu - m);
        *v = c * c * *v + 2.0 * h;
    }
}

cm_status cm_jhmz_gaussian(double *out_mean, double *out_variances, const cm_gaussian_map *g,
                           const cm_jhmz_options *o) {
    CM_TRY(check_options(o));
    double from, jump, next;
    for (size_t i = 0; i < g->dim; i++) {
        step_levels(o, 0, &from, &jump, &next);
        double mu = 0.0, v = 1.0 + from * from;
        for (size_t k = 0; k < o->steps; k++) {
            step_levels(o, k, &from, &jump, &next);
            gaussian_step(&mu, &v, g, i, from, jump);
            if (next > jump) v += next * next - jump * jump;
        }
        gaussian_langevin(&mu, &v, g->mean[i], g->variances[i] + o->sigma_end * o->sigma_end,
                          o->langevin_steps, o->langevin_step);
        out_mean[i] = mu, out_variances[i] = v;
    }
    return CM_OK;
}

/* KL and squared W2 of N(mu, v) against N(m, w) in one dimension. */
static void gaussian_1d_error(double *kl, double *w2_squared, double mu, double v, double m,
                              double w) {
    double dm = mu - m, x = (v - w) / w; /* v / w - 1 - log(v / w) = x - log1p(x), >= 0 */
    *kl = 0.5 * (x - log1p(x) + dm * dm / w);
    double ds = sqrt(v) - sqrt(w);
    *w2_squared = dm * dm + ds * ds;
}

/* KL and W2 of the output law N(moments[0..d), diag(moments[d..2d))) against the target
 * N(mean, diag(variances + sigma_end^2)): sums over coordinates of the 1-D closed forms. */
static void gaussian_error(double *kl, double *w2, const cm_gaussian_map *g,
                           const double *moments, double sigma_end) {
    double total_kl = 0.0, total_w2 = 0.0;
    for (size_t i = 0; i < g->dim; i++) {
        double k, w;
        gaussian_1d_error(&k, &w, moments[i], moments[g->dim + i], g->mean[i],
                          g->variances[i] + sigma_end * sigma_end);
        total_kl += k, total_w2 += w;
    }
    *kl = total_kl, *w2 = sqrt(total_w2);
}

cm_status cm_jhmz_gaussian_error(double *kl, double *w2, const cm_gaussian_map *g,
                                 const cm_jhmz_options *o) {
    double *moments = cm_malloc(2 * g->dim, sizeof(double));
    if (!moments) return cm_error_set(CM_ERR_NOMEM, "moments");
    cm_status status = cm_jhmz_gaussian(moments, moments + g->dim, g, o);
    if (status == CM_OK) gaussian_error(kl, w2, g, moments, o->sigma_end);
    else *kl = *w2 = 0.0;
    cm_free(moments);
    return status;
}

cm_status cm_cm_gaussian(double *out_mean, double *out_variances, const cm_gaussian_map *g,
                         const double *levels, size_t count, double sigma_end) {
    if (count < 1) return cm_error_set(CM_ERR_INVALID, "need at least one level");
    for (size_t k = 0; k < count; k++)
        if (!(levels[k] > sigma_end) || (k && !(levels[k] < levels[k - 1])))
            return cm_error_set(CM_ERR_INVALID, "levels must decrease and stay above %g", sigma_end);
    for (size_t i = 0; i < g->dim; i++) {
        double mu = 0.0, v = levels[0] * levels[0];
        for (size_t k = 0; k < count; k++) {
            if (k) v += levels[k] * levels[k] - sigma_end * sigma_end;
            gaussian_step(&mu, &v, g, i, levels[k], sigma_end);
        }
        out_mean[i] = mu, out_variances[i] = v;
    }
    return CM_OK;
}

cm_status cm_cm_gaussian_error(double *kl, double *w2, const cm_gaussian_map *g,
                               const double *levels, size_t count, double sigma_end) {
    double *moments = cm_malloc(2 * g->dim, sizeof(double));
    if (!moments) return cm_error_set(CM_ERR_NOMEM, "moments");
    cm_status status = cm_cm_gaussian(moments, moments + g->dim, g, levels, count, sigma_end);
    if (status == CM_OK) gaussian_error(kl, w2, g, moments, sigma_end);
    cm_free(moments);
    return status;
}

/* ---- level search for [CM] Algorithm 1 */

/* VE levels keep at least this gap in log sigma from each other and from sigma_min, so that the
 * greedy search always leaves room for the levels still to come. */
#define SEARCH_LOG_GAP 1e-3
#define SEARCH_GRID_POINTS 5 /* first pass of each level's search: a grid in log sigma */

typedef struct {
    const cm_model *model;
    const double *reference;
    size_t m, n, projections;
    uint64_t seed;
    double *samples;
} search_context;

static cm_status distance_at(double *out, search_context *s, const double *levels, size_t count) {
    size_t D = s->model->config.network.dim;
    cm_status status = cm_sample(s->samples, s->model, levels, count, s->n, s->seed);
    if (status == CM_ERR_INVALID) { /* levels that snap together (lhw): not a candidate */
        cm_error_clear();
        *out = HUGE_VAL;
        return CM_OK;
    }
    CM_TRY(status);
    if (s->projections)
        return cm_metrics_sliced_w1(out, s->samples, s->n, s->reference, s->m, D, s->projections,
                                    s->seed + 1);
    return cm_ot_wasserstein(out, s->samples, s->n, s->reference, s->m, D, CM_OT_W1);
}

/* The distance with levels[0..k) fixed and levels[k] = exp(log_level). */
typedef struct {
    search_context *search;
    double *levels;
    size_t k;
} level_objective;

static cm_status distance_at_log_level(double *out, void *context, double log_level) {
    level_objective *o = context;
    o->levels[o->k] = exp(log_level);
    return distance_at(out, o->search, o->levels, o->k + 1);
}

/* Level k (levels[0..k) fixed) minimising the distance over log sigma in [lo, hi], with
 * `iterations` evaluations (minimise.h): a grid of min(SEARCH_GRID_POINTS, iterations) points
 * from lo to hi (lo: a second step from just above sigma_min, nearly the one-step sample), then
 * golden-section search with the rest in the two grid cells around the best point. The distance
 * of a trained model is not unimodal in the level (moons, cd2: minima near 2.8 and near 0.02
 * with a worse middle, docs/sampling.md), so golden section alone can settle in the worse
 * basin. The best level evaluated wins. */
static cm_status search_one_level(double *out, search_context *s, double *levels, size_t k,
                                  double lo, double hi, size_t iterations) {
    size_t grid = iterations < SEARCH_GRID_POINTS ? iterations : SEARCH_GRID_POINTS;
    if (grid < 1) grid = 1;
    level_objective objective = {s, levels, k};
    double best_at;
    CM_TRY(cm_minimise_grid_golden(&best_at, NULL, distance_at_log_level, &objective, lo, hi,
                                   grid, iterations > grid ? iterations - grid : 0));
    *out = exp(best_at);
    levels[k] = *out;
    return CM_OK;
}

/* cd, cd2: level k among the levels of the fixed Karras grid the model was distilled on (below
 * levels[k - 1], above sigma_min, leaving one grid level for each of the count - 1 - k levels
 * still to come), every one evaluated. A distilled model has seen only those N levels, and with
 * the default embedding (frequencies up to 1000 on c_noise = log(sigma) / 4) a level between
 * two of them is an input it never met: measured on moons (cd2), a second step from 9.99 gave
 * W1 0.119 and from 9 0.170, against 0.102 from the grid level 10 or one step. */
static cm_status search_grid_level(double *out, search_context *s, double *levels, size_t k,
                                   size_t count) {
    const cm_method_config *c = &s->model->config.method;
    size_t N = c->cd_levels;
    double *grid = cm_malloc(N, sizeof(double)), best = HUGE_VAL, best_level = 0.0;
    if (!grid) return cm_error_set(CM_ERR_NOMEM, "level grid");
    cm_status status = cm_karras_grid(grid, N, c->sigma_min, c->sigma_max, c->rho); /* ascending */
    for (size_t j = 1 + (count - 1 - k); j < N && status == CM_OK; j++) {
        if (!(grid[j] < levels[k - 1] * (1.0 - 1e-12))) break;
        double value;
        levels[k] = grid[j];
        status = distance_at(&value, s, levels, k + 1);
        if (status == CM_OK && value < best) best = value, best_level = grid[j];
    }
    cm_free(grid);
    CM_TRY(status);
    if (best == HUGE_VAL)
        return cm_error_set(CM_ERR_INVALID, "no level of the %zu-level grid below %g for %zu levels",
                            N, levels[k - 1], count);
    *out = best_level;
    levels[k] = best_level;
    return CM_OK;
}

cm_status cm_multistep_search_levels(double *levels, double *out_distance, const cm_model *model,
                                     size_t count, const double *reference, size_t m, size_t n,
                                     size_t projections, size_t iterations, uint64_t seed) {
    if (count < 1 || count > CM_SAMPLER_MAX_LEVELS)
        return cm_error_set(CM_ERR_INVALID, "level count %zu out of [1, %d]", count,
                            CM_SAMPLER_MAX_LEVELS);
    if (n < 2 || m < 2) return cm_error_set(CM_ERR_INVALID, "need at least 2 samples and references");
    size_t D = model->config.network.dim, used_count;
    int is_lhw = model->config.method.kind == CM_METHOD_LHW;
    if (is_lhw && count + 1 > model->config.method.chain_T)
        return cm_error_set(CM_ERR_INVALID, "%zu levels need a chain of more than T = %zu indices",
                            count, model->config.method.chain_T);
    CM_TRY(cm_sampler_levels(levels, &used_count, model, NULL, 0));
    search_context s = {model, reference, m, n, projections, seed, cm_malloc(n * D, sizeof(double))};
    if (!s.samples) return cm_error_set(CM_ERR_NOMEM, "search samples");
    cm_status status = distance_at(out_distance, &s, levels, 1);
    for (size_t k = 1; k < count && status == CM_OK; k++) {
        /* VE: anywhere in (sigma_min, previous level). lhw: a chain index below the previous
         * one that leaves room for the count - 1 - k levels still to come (t >= 2 each). */
        double lo = log(model->config.method.sigma_min) + (double)(count - k) * SEARCH_LOG_GAP;
        double hi = log(levels[k - 1]) - SEARCH_LOG_GAP;
        if (is_lhw) {
            size_t previous = cm_lhw_schedule_nearest(&model->schedule, levels[k - 1]);
            lo = log(model->schedule.sigma[2 + (count - 1 - k)]);
            hi = log(model->schedule.sigma[previous - 1]);
        }
        if (hi < lo && hi > lo - 1e-9) hi = lo; /* the previous level at its low end: rounding */
        if (!(hi >= lo)) {
            status = cm_error_set(CM_ERR_INVALID, "no room below level %g for %zu levels",
                                  levels[k - 1], count);
            break;
        }
        status = cm_method_is_distillation(model->config.method.kind)
                     ? search_grid_level(&levels[k], &s, levels, k, count)
                     : search_one_level(&levels[k], &s, levels, k, lo, hi, iterations);
        if (is_lhw && status == CM_OK) { /* snap, and keep the chain indices decreasing */
            double used[CM_SAMPLER_MAX_LEVELS];
            if (cm_sampler_levels(used, &used_count, model, levels, k + 1) != CM_OK) {
                cm_error_clear();
                levels[k] = model->schedule.sigma[cm_lhw_schedule_nearest(&model->schedule,
                                                                          levels[k - 1]) - 1];
            }
        }
        if (status == CM_OK) status = distance_at(out_distance, &s, levels, k + 1);
    }
    cm_free(s.samples);
    return status;
}
