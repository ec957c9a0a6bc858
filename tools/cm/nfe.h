/* nfe.h: what the files of `cm nfe` share (private to tools/cm): the table of measurements and
 * how a cell of it is measured (cmd_nfe_table.c), the rows of each kind of model
 * (cmd_nfe_rows.c), the score of [LFC]'s correction (cmd_nfe_score.c) and the closed forms on
 * Gaussian data (cmd_nfe_gaussian.c). cmd_nfe.c parses the options and wires these together.
 * Over R processes (dist.h) the work item is a (model, sample seed) pair: every process walks
 * every model's cells in the same order, measures the seeds of its own items and leaves the
 * others' rows empty until nfe_table_share fills them; the level search of a model runs on the
 * processes that measure it and its levels are shared, so every process builds the same rows.
 */
#ifndef CM_TOOLS_NFE_H
#define CM_TOOLS_NFE_H

#include <stddef.h>
#include <stdint.h>

#include "cm/comm.h"
#include "cm/data.h"
#include "cm/diffusion.h"
#include "cm/law.h"
#include "cm/model.h"

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

/* The rows measured so far (owned: nfe_table_free); rows [0, shared) hold every process's
 * values. */
typedef struct {
    nfe_row *rows;
    size_t count, capacity, cells, shared;
} nfe_table;

/* What the models mode measures (borrowed arrays). */
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
    /* The processes: item slot * seeds + j (seed index j of the slot-th model, the exact map
     * last) of item_count is measured by the process whose cm_comm_block_range holds it. */
    const cm_comm *comm;
    size_t item_count, slot;
} nfe_settings;

/* ---- cmd_nfe_table.c */

/* Draws n samples (original units) with one seed. */
typedef cm_status (*nfe_draw_fn)(void *context, double *samples, size_t n, uint64_t seed);

/* A row of `method`'s `sampler` at `nfe` evaluations of `steps` steps, no Langevin, no delta. */
nfe_row nfe_row_proto(const char *name, const char *method, const char *sampler, size_t nfe,
                      size_t steps);
/* Levels as text ("10 0.5985 ...") into out[capacity]. */
void nfe_levels_text(char *out, size_t capacity, const double *levels, size_t k);
/* Measure one cell: `proto` at the sample seeds seed .. seed + seeds - 1, each evaluated against
 * the reference draws of its own seed (evaluate.h); samples with a non-finite value (a diverged
 * sampler) get W1 = inf. samples: n x d caller storage. Seeds of another process's items get
 * rows with W1 and floor NaN, filled by nfe_table_share. */
cm_status nfe_measure_cell(nfe_table *t, const nfe_row *proto, const cm_data *data,
                           const nfe_settings *s, double *samples, nfe_draw_fn draw,
                           void *context);
/* The mean W1 over the seeds of the cell whose first row is `first`. */
double nfe_cell_mean(const nfe_table *t, size_t first);
/* 1 when this process measures some seed of the current model (s->slot). */
int nfe_measures_model(const nfe_settings *s);
/* Every process's W1 and floor of rows [t->shared, t->count), which are the current model's
 * (a collective call: every process at the same point; nothing with one process). */
cm_status nfe_table_share(nfe_table *t, const nfe_settings *s);
/* levels[count] of the process measuring the current model's first seed, on every process. */
cm_status nfe_share_levels(double *levels, size_t count, const nfe_settings *s);
void nfe_table_free(nfe_table *t);

/* The table of cell means on stdout; the tidy CSV (one row per seed); the log-log PNG. */
void nfe_print_table(const nfe_table *t, const nfe_settings *s);
cm_status nfe_write_csv(const char *path, const nfe_table *t, const char *data);
cm_status nfe_write_png(const char *path, const nfe_table *t, const char *title);

/* ---- cmd_nfe_rows.c: the cells of one model (or of the exact flow map) */

/* Consistency models: one step and [CM] Algorithm 1 with searched levels; with a score (may be
 * NULL), [LFC]'s correction; VE models also the [JHMZ] chain over their two-time map. */
cm_status nfe_consistency_rows(nfe_table *t, const cm_model *model, const char *name,
                               const cm_data *data, const nfe_settings *s, double *samples,
                               const cm_denoiser *score, const char *score_name);
/* dsm models: DDIM (Euler), Heun and DDPM at every budget. */
cm_status nfe_denoiser_rows(nfe_table *t, const cm_model *model, const char *name,
                            const cm_data *data, const nfe_settings *s, double *samples);
/* --exact-map: the [JHMZ] sampler over the exact flow map of a gauss:/gmm: source. */
cm_status nfe_exact_map_rows(nfe_table *t, const cm_data *data, const nfe_settings *s,
                             double *samples);

/* ---- cmd_nfe_score.c: the score of [LFC]'s correction */

typedef struct {
    cm_law *law;              /* exact law of a gauss:/gmm: source (original units), or NULL */
    cm_model dsm;             /* --score-model, when given */
    int has_dsm;
    cm_denoiser dsm_denoiser;
} nfe_score_source;

/* The score source of a run: the dsm model at score_path (may be NULL) or the exact law of
 * `data`. Returns a CLI exit code (printing the error); CLI_OK fills *out. */
int nfe_score_source_open(nfe_score_source *out, const char *score_path, const cm_data *data);
void nfe_score_source_free(nfe_score_source *source);
/* The score in `model`'s units: the dsm model's denoiser (refused unless its transform equals
 * the model's: same data, same seed), or the exact law standardised with the model's transform
 * (*law_out owns it). */
cm_status nfe_score_for_model(cm_denoiser *out, cm_law **law_out, const nfe_score_source *source,
                              const cm_model *model, const char *model_path,
                              const char *score_path);

/* ---- cmd_nfe_gaussian.c: --gaussian */

typedef struct {
    const double *dims;
    size_t dim_count, max_steps;
    double eta, kl_target, sigma_end, relative, offset;
} nfe_gaussian_settings;

/* The three tables of the Gaussian mode on stdout, the CSV and the figure; a CLI exit code. */
int nfe_gaussian_mode(const nfe_gaussian_settings *g, const char *csv, const char *png);

#endif
