/* cmd_nfe.c: `cm nfe`: quality against the number of network evaluations (NFE).
 *
 * Models mode (--model a,b --data SRC): for every model and every NFE budget k of --nfe, exact
 * W1 (with its noise floor, evaluate.h) of n samples, repeated over --seeds sample seeds
 * seed .. seed + S - 1 (each against the reference draws of its own seed), for every sampler the
 * model has: one step and [CM] Algorithm 1 with searched levels, [LFC]'s Langevin correction
 * (--langevin, with the exact score of a gauss:/gmm: source or a dsm --score-model), the [JHMZ]
 * chain over a VE model's two-time map with each overshoot of --delta, DDIM, Heun and DDPM for
 * dsm denoisers, and with --exact-map the [JHMZ] sampler over the data law's exact flow map
 * (cmd_nfe_rows.c). Table of means over seeds (with their standard deviation) on stdout, tidy
 * CSV (--csv, one row per seed) and a log-log PNG (--png) of the mean W1 against NFE
 * (cmd_nfe_table.c).
 * Gaussian mode (--gaussian): the closed forms of [JHMZ] and [LFC] on Gaussian data
 * (cmd_nfe_gaussian.c).
 * This file parses and checks the options and wires the parts together (nfe.h). Over R
 * processes (mpirun, an MPI build: dist.h) the (model, seed) items are split among them and the
 * values gathered; rank 0 prints and writes what a serial run does, with the same bits.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cm/alloc.h"
#include "cm/law.h"
#include "dist.h"
#include "nfe.h"

/* Every option of `cm nfe` with its default. */
typedef struct {
    const char *models, *data, *csv, *png, *score_model, *delta_text;
    cli_list nfe, dims, langevin;
    size_t n, search_n, iterations, projections, max_steps, seeds;
    uint64_t seed;
    double eta, kl_target, relative, offset, sigma_end, langevin_step;
    int quiet, gaussian, exact_map, allow_other_data;
} nfe_options;

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


/* ---- models mode */

/* A model measured against data it was not trained on gives numbers about the wrong law: refused
 * unless asked for (the stored source, when the model records one, must be the data's). */
static cm_status check_model_data(const cm_model *model, const char *path, const cm_data *data,
                                  int allow_other_data) {
    if (model->config.network.dim != cm_data_dim(data))
        return cm_error_set(CM_ERR_DIMENSION, "%s: dimension %zu, the data %zu", path,
                            model->config.network.dim, cm_data_dim(data));
    if (allow_other_data || !model->data_source[0] ||
        strcmp(model->data_source, cm_data_describe(data)) == 0)
        return CM_OK;
    return cm_error_set(CM_ERR_INVALID, "%s was trained on %s, not on --data %s (leave --data out "
                        "to measure against its own data, or pass --allow-other-data)", path,
                        model->data_source, cm_data_describe(data));
}

/* The cells of one model (at `path`) into the table, with the score of the correction when the
 * run has one and the model is a VE consistency model. */
static cm_status measure_model(nfe_table *table, const char *path, const cm_data *data,
                               const nfe_settings *s, const nfe_score_source *source,
                               const nfe_options *o) {
    const char *score_model = o->score_model;
    cm_model model;
    CM_TRY(cli_model_load(&model, path));
    size_t dim = model.config.network.dim;
    cm_status status = check_model_data(&model, path, data, o->allow_other_data);
    double *samples = status == CM_OK ? cm_malloc(s->n * dim, sizeof(double)) : NULL;
    if (status == CM_OK && !samples) status = cm_error_set(CM_ERR_NOMEM, "samples");
    char name[128];
    model_name(name, sizeof name, path);
    double start = cli_seconds();
    cm_method method = model.config.method.kind;
    cm_denoiser score = {0};
    cm_law *law = NULL;
    int corrected = status == CM_OK && s->langevin_count && cm_method_is_ve_consistency(method);
    if (corrected) status = nfe_score_for_model(&score, &law, source, &model, path, score_model);
    if (status == CM_OK)
        status = method == CM_METHOD_DSM
                     ? nfe_denoiser_rows(table, &model, name, data, s, samples)
                     : nfe_consistency_rows(table, &model, name, data, s, samples,
                                            corrected ? &score : NULL,
                                            source->has_dsm ? "dsm" : "exact");
    if (status == CM_OK) status = nfe_table_share(table, s);
    if (status == CM_OK && !s->quiet)
        fprintf(stderr, "cm nfe: %s (%s) measured in %.1f s\n", name, cm_method_name(method),
                cli_seconds() - start);
    cm_denoiser_free(&score);
    cm_law_free(law);
    cm_free(samples);
    cm_model_free(&model);
    return status;
}

static cm_status measure_exact_map(nfe_table *table, const cm_data *data, const nfe_settings *s) {
    double start = cli_seconds();
    double *samples = cm_malloc(s->n * cm_data_dim(data), sizeof(double));
    cm_status status = samples ? nfe_exact_map_rows(table, data, s, samples)
                               : cm_error_set(CM_ERR_NOMEM, "samples");
    if (status == CM_OK) status = nfe_table_share(table, s);
    if (status == CM_OK && !s->quiet)
        fprintf(stderr, "cm nfe: exact flow map measured in %.1f s\n", cli_seconds() - start);
    cm_free(samples);
    return status;
}

/* Every model of paths[count] (then the exact map), and on rank 0 the table, CSV and figure. */
static cm_status measure_and_write(char **paths, size_t count, const cm_data *data,
                                   const nfe_settings *settings, const nfe_score_source *source,
                                   const nfe_options *o) {
    nfe_table table = {0};
    cm_status status = CM_OK;
    nfe_settings each = *settings, *s = &each;
    each.item_count = (count + (settings->exact_map ? 1 : 0)) * settings->seeds;
    for (size_t m = 0; m < count && status == CM_OK; m++) {
        each.slot = m;
        status = measure_model(&table, paths[m], data, s, source, o);
    }
    each.slot = count;
    if (status == CM_OK && s->exact_map) status = measure_exact_map(&table, data, s);
    if (cli_dist_rank() != 0) {
        nfe_table_free(&table);
        return status;
    }
    if (status == CM_OK) nfe_print_table(&table, s);
    if (status == CM_OK && o->csv) status = nfe_write_csv(o->csv, &table, cm_data_describe(data));
    char title[256];
    snprintf(title, sizeof title, "W1 against NFE on %s (n = %zu, %zu seed%s)",
             cm_data_describe(data), s->n, s->seeds, s->seeds == 1 ? "" : "s");
    if (status == CM_OK && o->png) status = nfe_write_png(o->png, &table, title);
    nfe_table_free(&table);
    return status;
}

/* The models of --model (a,b,...; "" with --exact-map alone) into paths[*count] (pointing into
 * list[capacity]), the data of --data (*data, owned by the caller) and the score of the
 * correction (*source). Returns a CLI exit code. */
static int open_models_mode(char **paths, size_t *count, char *list, size_t capacity,
                            cm_data **data, nfe_score_source *source, const nfe_options *o,
                            const nfe_settings *s) {
    const char *command = "nfe", *models = o->models ? o->models : "";
    if (strlen(models) >= capacity) return cli_usage_error(command, "--model list too long");
    snprintf(list, capacity, "%s", models);
    for (char *save = NULL, *p = strtok_r(list, ",", &save); p; p = strtok_r(NULL, ",", &save)) {
        if (*count == NFE_MAX_MODELS)
            return cli_usage_error(command, "at most %d models", NFE_MAX_MODELS);
        paths[(*count)++] = p;
    }
    if (*count == 0 && !s->exact_map) return cli_usage_error(command, "--model: no model given");
    /* --data defaults to the first model's own training data */
    char own_data[CM_MODEL_DATA_SOURCE_MAX] = "";
    if (!o->data && *count) {
        cm_model first;
        cm_status loaded = cli_model_load(&first, paths[0]);
        if (loaded != CM_OK) return cli_fail(command, loaded);
        snprintf(own_data, sizeof own_data, "%s", first.data_source);
        cm_model_free(&first);
        if (!own_data[0])
            return cli_usage_error(command, "%s does not record its data: give --data", paths[0]);
    }
    const char *source_text = o->data ? o->data : own_data;
    cm_status status = cm_data_open(data, source_text);
    if (status != CM_OK) return cli_fail(command, status);
    cm_law *law = NULL;
    if (s->exact_map && cm_law_from_data(&law, *data) != CM_OK) {
        cm_error_clear();
        return cli_usage_error(command, "--exact-map needs a gauss: or gmm: source (a law known "
                               "exactly), not %s", source_text);
    }
    cm_law_free(law);
    return s->langevin_count ? nfe_score_source_open(source, o->score_model, *data) : CLI_OK;
}

/* Every model loads, was trained on the data and (with --langevin) has its score: checked before
 * the measurements, so that a refusal ends every process alike, before any collective call. */
static int check_models(char **paths, size_t count, const cm_data *data, const nfe_settings *s,
                        const nfe_score_source *source, const nfe_options *o) {
    for (size_t m = 0; m < count; m++) {
        cm_model model;
        cm_status status = cli_model_load(&model, paths[m]);
        if (status == CM_OK) status = check_model_data(&model, paths[m], data, o->allow_other_data);
        if (status == CM_OK && s->langevin_count &&
            cm_method_is_ve_consistency(model.config.method.kind)) {
            cm_denoiser score = {0};
            cm_law *law = NULL;
            status = nfe_score_for_model(&score, &law, source, &model, paths[m], o->score_model);
            cm_denoiser_free(&score);
            cm_law_free(law);
        }
        cm_model_free(&model);
        if (status != CM_OK) return cli_fail("nfe", status);
    }
    return CLI_OK;
}

/* The models mode: its inputs opened and checked on every process, which agree that all could
 * before the measurements start; then measure_and_write. */
static int models_mode(const nfe_options *o, const nfe_settings *s) {
    char list[4096], *paths[NFE_MAX_MODELS];
    size_t model_count = 0;
    cm_data *data = NULL;
    nfe_score_source source = {0};
    int code = open_models_mode(paths, &model_count, list, sizeof list, &data, &source, o, s);
    if (code == CLI_OK) code = check_models(paths, model_count, data, s, &source, o);
    code = cli_dist_agree(code);
    if (code == CLI_OK) {
        cli_dist_collective(1);
        cm_status status = measure_and_write(paths, model_count, data, s, &source, o);
        code = status == CM_OK ? CLI_OK : cli_fail("nfe", status);
    }
    nfe_score_source_free(&source);
    cm_data_free(data);
    return code;
}

/* ---- options */

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


/* An integer list: every value an integer in [1, high]. */
static int check_integers(const cli_list *list, const char *name, double high) {
    for (size_t i = 0; i < list->count; i++)
        if (list->values[i] != floor(list->values[i]) || list->values[i] > high)
            return cli_usage_error("nfe", "--%s: %g is not an integer in [1, %g]", name,
                                   list->values[i], high);
    return CLI_OK;
}

/* The limits of every mode's options. */
static int check_options(const nfe_options *o) {
    const char *command = "nfe";
    int code;
    if ((code = check_integers(&o->nfe, "nfe", 4096)) != CLI_OK ||
        (code = check_integers(&o->dims, "dims", 65536)) != CLI_OK ||
        (code = check_integers(&o->langevin, "langevin", NFE_MAX_LANGEVIN)) != CLI_OK)
        return code;
    if (o->n > 100000 || o->search_n > 100000)
        return cli_usage_error(command, "--n and --search-n: at most 100000");
    if (o->seeds > NFE_MAX_SEEDS)
        return cli_usage_error(command, "--seeds %zu: at most %d", o->seeds, NFE_MAX_SEEDS);
    if (!(o->langevin_step <= NFE_MAX_LANGEVIN_STEP))
        return cli_usage_error(command, "--langevin-step %g: at most %g", o->langevin_step,
                               NFE_MAX_LANGEVIN_STEP);
    if (o->iterations > 200) return cli_usage_error(command, "--iterations %zu: at most 200", o->iterations);
    if (o->projections > 100000) return cli_usage_error(command, "--projections: at most 100000");
    if (o->max_steps > 4096) return cli_usage_error(command, "--max-steps %zu: at most 4096", o->max_steps);
    return CLI_OK;
}

/* --gaussian: refuses the options of the models mode, then the closed forms. */
static int gaussian_mode(const nfe_options *o, const cli_option *options, size_t count) {
    const char *command = "nfe";
    if (o->models || o->data) return cli_usage_error(command, "--gaussian takes no --model or --data");
    const char *model_only[] = {"seeds", "langevin", "langevin-step", "score-model", "delta",
                                "exact-map", "allow-other-data"};
    for (size_t k = 0; k < sizeof model_only / sizeof model_only[0]; k++)
        if (cli_option_seen(options, count, model_only[k]))
            return cli_usage_error(command, "--%s applies to models, not --gaussian", model_only[k]);
    if (!(o->eta < 50)) return cli_usage_error(command, "--eta %g: at most 50", o->eta);
    if (!(o->sigma_end < 10)) return cli_usage_error(command, "--sigma-end %g: below 10", o->sigma_end);
    nfe_gaussian_settings g = {o->dims.values, o->dims.count, o->max_steps, o->eta, o->kl_target,
                               o->sigma_end, o->relative, o->offset};
    return nfe_gaussian_mode(&g, o->csv, o->png);
}

/* The models mode's settings from the options (deltas: the parsed --delta). */
static int models_settings(const nfe_options *o, const cli_option *options, size_t count,
                           const double *deltas, size_t delta_count) {
    const char *command = "nfe";
    if (!o->models && !o->exact_map)
        return cli_usage_error(command, "give --model (or --exact-map with --data), or --gaussian");
    if (!o->models && !o->data) return cli_usage_error(command, "--exact-map alone needs --data");
    if (!o->langevin.count && (cli_option_seen(options, count, "langevin-step") ||
                               cli_option_seen(options, count, "score-model")))
        return cli_usage_error(command, "--langevin-step and --score-model need --langevin");
    nfe_settings s = {.nfe = o->nfe.values, .nfe_count = o->nfe.count, .n = o->n,
                      .search_n = o->search_n, .iterations = o->iterations,
                      .projections = o->projections, .seeds = o->seeds, .seed = o->seed,
                      .langevin = o->langevin.values, .langevin_count = o->langevin.count,
                      .langevin_step = o->langevin_step, .delta = deltas,
                      .delta_count = delta_count, .exact_map = o->exact_map,
                      .quiet = o->quiet || cli_dist_rank() != 0, .comm = cli_dist_comm()};
    return models_mode(o, &s);
}

int cmd_nfe(int argc, char **argv) {
    const char *command = "nfe";
    nfe_options o = {.delta_text = "0", .nfe = {.values = {1, 2, 4, 8, 16}, .count = 5},
                     .dims = {.values = {1, 4, 16, 64, 256}, .count = 5}, .n = 2000,
                     .search_n = 1000, .iterations = 10, .projections = 128, .max_steps = 32,
                     .seeds = 3, .eta = 0.5, .kl_target = 1e-3, .relative = 0.02,
                     .sigma_end = 0.002, .langevin_step = NFE_LANGEVIN_STEP};
    cli_option options[] = {
        {"model", OPT_STRING, &o.models, "trained model(s), comma-separated (a,b,...)", 0, 0, 0},
        {"data", OPT_STRING, &o.data, "data source of the reference (default: the first model's training data; others are refused)", 0, 0, 0},
        {"allow-other-data", OPT_FLAG, &o.allow_other_data, "measure models against --data they were not trained on", 0, 0, 0},
        {"nfe", OPT_LIST, &o.nfe, "NFE budgets (integers)", 0, 0, 0},
        {"n", OPT_SIZE, &o.n, "samples per measurement (and reference points)", 2, 0, 0},
        {"seed", OPT_U64, &o.seed, "first sample seed; the level search and held-out draws", 0, 0, 0},
        {"seeds", OPT_SIZE, &o.seeds, "sample seeds per cell: seed .. seed + seeds - 1 (1..100)", 1, 0, 0},
        {"search-n", OPT_SIZE, &o.search_n, "level search: samples and held-out reference points", 2, 0, 0},
        {"iterations", OPT_SIZE, &o.iterations, "level search: evaluations per level (5-point grid, then golden section; cd, cd2: every level of their grid)", 2, 0, 0},
        {"projections", OPT_SIZE, &o.projections, "level search: sliced-W1 directions (0: exact W1)", 0, 0, 0},
        {"langevin", OPT_LIST, &o.langevin, "[LFC] correction: Langevin step counts L (NFE + L; default none)", 0, 0, 0},
        {"langevin-step", OPT_DOUBLE, &o.langevin_step, "[LFC] Langevin step h in model units (docs/sampling.md)", 1e-300, 0, 0},
        {"score-model", OPT_STRING, &o.score_model, "dsm model giving the score (same data and seed); default: exact law of gauss:/gmm:", 0, 0, 0},
        {"delta", OPT_STRING, &o.delta_text, "[JHMZ] overshoots of the chain rows: numbers >= 0 or 'end'", 0, 0, 0},
        {"exact-map", OPT_FLAG, &o.exact_map, "also the [JHMZ] sampler over the exact flow map of a gauss:/gmm: source", 0, 0, 0},
        {"csv", OPT_STRING, &o.csv, "tidy CSV of every measurement (one row per seed)", 0, 0, 0},
        {"png", OPT_STRING, &o.png, "log-log figure (W1 vs NFE; --gaussian: KL vs steps)", 0, 0, 0},
        {"gaussian", OPT_FLAG, &o.gaussian, "closed forms on Gaussian data instead of models", 0, 0, 0},
        {"dims", OPT_LIST, &o.dims, "--gaussian: dimensions d", 0, 0, 0},
        {"eta", OPT_DOUBLE, &o.eta, "--gaussian: constant step in OU time", 1e-6, 0, 0},
        {"max-steps", OPT_SIZE, &o.max_steps, "--gaussian: largest K of the KL table (doubling from 1)", 1, 0, 0},
        {"kl-target", OPT_DOUBLE, &o.kl_target, "--gaussian: target KL (eps^2) of the step count", 1e-300, 0, 0},
        {"relative", OPT_DOUBLE, &o.relative, "--gaussian: linear error of the erroneous map", -0.5, 0, 0},
        {"offset", OPT_DOUBLE, &o.offset, "--gaussian: constant offset of the erroneous map", -1e3, 0, 0},
        {"sigma-end", OPT_DOUBLE, &o.sigma_end, "--gaussian: final noise level ([CM] sigma_min)", 1e-9, 0, 0},
        {"quiet", OPT_FLAG, &o.quiet, "no progress on stderr", 0, 0, 0},
    };
    size_t count = sizeof options / sizeof options[0];
    int parsed = cli_parse(argc, argv, 2, options, count, command,
                           "Quality against the number of network evaluations: exact W1 (with its\n"
                           "noise floor, mean over seeds) of consistency models (one step, [CM]\n"
                           "Algorithm 1 with searched levels, [LFC]'s Langevin correction, the\n"
                           "[JHMZ] chain with overshoot) and of dsm denoisers (DDIM, Heun, DDPM) at\n"
                           "NFE budgets; or, with --gaussian, the closed forms of [JHMZ]/[LFC]\n"
                           "multistep sampling on Gaussian data (docs/sampling.md).");
    if (parsed != CLI_OK) return parsed;
    int code = check_options(&o);
    if (code != CLI_OK) return code;
    double deltas[NFE_MAX_DELTAS];
    size_t delta_count = 0;
    if ((code = parse_deltas(deltas, &delta_count, o.delta_text, command)) != CLI_OK) return code;
    if (o.gaussian) /* closed forms, quickly done: rank 0 alone */
        return cli_dist_rank() == 0 ? gaussian_mode(&o, options, count) : CLI_OK;
    return models_settings(&o, options, count, deltas, delta_count);
}
