/* cmd_nfe_table.c: the measurements of `cm nfe` (nfe.h): one cell, a (model, sampler, NFE)
 * triple, is measured at every sample seed as exact W1 against fresh reference draws of the same
 * seed, beside its noise floor (evaluate.h); then the table of means over seeds on stdout, the
 * tidy CSV (one row per seed) and the log-log PNG of mean W1 against NFE. What is sampled is
 * the business of cmd_nfe_rows.c; this file only measures and writes. Over several processes
 * (nfe.h) it measures this process's seeds and gathers the others' values with the
 * communicator's share_rows: each (model, seed) item a block of rows.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/evaluate.h"
#include "nfe.h"
#include "plot.h"

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

/* Items [*first, *end) of this process. */
static void own_items(size_t *first, size_t *end, const nfe_settings *s) {
    cm_comm_block_range(first, end, s->comm, s->item_count);
}

int nfe_measures_model(const nfe_settings *s) {
    size_t first, end, model_first = s->slot * s->seeds;
    own_items(&first, &end, s);
    return first < model_first + s->seeds && model_first < end;
}

cm_status nfe_measure_cell(nfe_table *t, const nfe_row *proto, const cm_data *data,
                           const nfe_settings *s, double *samples, nfe_draw_fn draw,
                           void *context) {
    CM_TRY(table_reserve(t, s->seeds));
    size_t cell = t->cells++, dim = cm_data_dim(data), first, end;
    own_items(&first, &end, s);
    for (size_t j = 0; j < s->seeds; j++) {
        uint64_t seed = s->seed + j;
        size_t item = s->slot * s->seeds + j;
        nfe_row *r = &t->rows[t->count];
        *r = *proto;
        r->cell = cell, r->seed = seed;
        if (item < first || item >= end) { /* another process's: nfe_table_share */
            r->w1 = r->floor = NAN;
            t->count++;
            continue;
        }
        CM_TRY(draw(context, samples, s->n, seed));
        int finite = 1;
        for (size_t i = 0; i < s->n * dim && finite; i++) finite = isfinite(samples[i]);
        if (!finite) /* a diverging sampler (a too large Langevin step): W1 = inf, floor as usual */
            memset(samples, 0, s->n * dim * sizeof(double));
        CM_TRY(evaluate_w1(&r->w1, &r->floor, samples, s->n, dim, data, seed));
        if (!finite) r->w1 = INFINITY;
        t->count++;
    }
    return CM_OK;
}

/* Rows [t->shared, t->count), cells of s->seeds rows each, gathered item by item: block b of the
 * share is item b, the current model's items holding one row of (W1, floor) per cell. */
cm_status nfe_table_share(nfe_table *t, const nfe_settings *s) {
    size_t from = t->shared, cells = (t->count - from) / s->seeds, model_first = s->slot * s->seeds;
    t->shared = t->count;
    if (s->comm->size == 1 || cells == 0) return CM_OK;
    double *values = cm_malloc(s->seeds * cells * 2, sizeof(double));
    size_t *row_first = cm_malloc(s->item_count + 1, sizeof(size_t));
    cm_status status = CM_OK;
    if (!values || !row_first) status = cm_error_set(CM_ERR_NOMEM, "nfe: %zu rows", cells);
    for (size_t b = 0; status == CM_OK && b <= s->item_count; b++) {
        size_t within = b < model_first ? 0 : b - model_first;
        row_first[b] = (within < s->seeds ? within : s->seeds) * cells;
    }
    for (size_t j = 0; status == CM_OK && j < s->seeds; j++)
        for (size_t c = 0; c < cells; c++) {
            const nfe_row *r = &t->rows[from + c * s->seeds + j];
            values[(j * cells + c) * 2] = r->w1, values[(j * cells + c) * 2 + 1] = r->floor;
        }
    if (status == CM_OK)
        status = s->comm->share_rows(s->comm, values, row_first, s->item_count, 2);
    for (size_t j = 0; status == CM_OK && j < s->seeds; j++)
        for (size_t c = 0; c < cells; c++) {
            nfe_row *r = &t->rows[from + c * s->seeds + j];
            r->w1 = values[(j * cells + c) * 2], r->floor = values[(j * cells + c) * 2 + 1];
        }
    cm_free(values);
    cm_free(row_first);
    return status;
}

/* One block with rows: the current model's first item, `count` rows of one value. */
cm_status nfe_share_levels(double *levels, size_t count, const nfe_settings *s) {
    if (s->comm->size == 1) return CM_OK;
    size_t *row_first = cm_malloc(s->item_count + 1, sizeof(size_t));
    if (!row_first) return cm_error_set(CM_ERR_NOMEM, "nfe: levels");
    for (size_t b = 0; b <= s->item_count; b++) row_first[b] = b > s->slot * s->seeds ? count : 0;
    cm_status status = s->comm->share_rows(s->comm, levels, row_first, s->item_count, 1);
    cm_free(row_first);
    return status;
}

double nfe_cell_mean(const nfe_table *t, size_t first) {
    double sum = 0;
    size_t last = first;
    for (; last < t->count && t->rows[last].cell == t->rows[first].cell; last++)
        sum += t->rows[last].w1;
    return sum / (double)(last - first);
}

nfe_row nfe_row_proto(const char *name, const char *method, const char *sampler, size_t nfe,
                      size_t steps) {
    nfe_row r = {.method = method, .nfe = nfe, .steps = steps, .langevin_step = NAN, .delta = NAN};
    snprintf(r.model, sizeof r.model, "%s", name);
    snprintf(r.sampler, sizeof r.sampler, "%s", sampler);
    return r;
}

void nfe_levels_text(char *out, size_t capacity, const double *levels, size_t k) {
    size_t used = 0;
    out[0] = '\0';
    for (size_t j = 0; j < k && used + 16 < capacity; j++)
        used += (size_t)snprintf(out + used, capacity - used, "%s%.4g", j ? " " : "", levels[j]);
}

void nfe_table_free(nfe_table *t) {
    cm_free(t->rows);
    *t = (nfe_table){0};
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

void nfe_print_table(const nfe_table *t, const nfe_settings *s) {
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

cm_status nfe_write_csv(const char *path, const nfe_table *t, const char *data) {
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
cm_status nfe_write_png(const char *path, const nfe_table *t, const char *title) {
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
