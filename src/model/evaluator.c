/* evaluator.c: a model evaluated on any number of rows (evaluator.h): chunk buffers, one network
 * workspace per row block, and the pool job that runs a chunk's blocks through
 * cm_consistency_forward (consistency.h) in float or double. */
#include "cm/evaluator.h"

#include <string.h>

#include "cm/alloc.h"
#include "cm/parallel.h"

struct cm_evaluator {
    const cm_model *model; /* borrowed */
    cm_evaluator_options options;
    size_t dim, levels;
    cm_network_workspace **workspaces; /* [blocks] */
    void *block;                       /* owns the chunk buffers below (float or double) */
    void *x, *x_in, *F_out, *out, *coef;
    double *params_f64; /* f64: a double copy of the model's weights, made at allocation */
    size_t rows; /* rows of the chunk being evaluated (the job's argument) */
};

cm_evaluator_options cm_evaluator_options_default(void) {
    return (cm_evaluator_options){.chunk = CM_EVALUATOR_CHUNK, .blocks = CM_EVALUATOR_BLOCKS,
                                  .pad = 1, .f64 = 0};
}

cm_evaluator_options cm_evaluator_options_for(const cm_model *model) {
    cm_evaluator_options o = cm_evaluator_options_default();
    if (cm_network_config_of(model->network)->type->exact_rows) {
        o.chunk = CM_EVALUATOR_EXACT_CHUNK;
        o.pad = 0;
    }
    return o;
}

void cm_evaluator_free(cm_evaluator *e) {
    if (!e) return;
    if (e->workspaces)
        for (size_t b = 0; b < e->options.blocks; b++) cm_network_workspace_free(e->workspaces[b]);
    cm_free(e->workspaces);
    cm_free(e->block);
    cm_free(e->params_f64);
    cm_free(e);
}

const cm_model *cm_evaluator_model(const cm_evaluator *e) { return e->model; }

static cm_status alloc_buffers(cm_evaluator *e) {
    size_t R = e->options.chunk, D = e->dim, size = e->options.f64 ? sizeof(double) : sizeof(float);
    size_t values = 4 * R * D + CM_COEFFICIENT_COUNT(R, e->levels);
    char *p = e->block = cm_malloc(values, size);
    e->workspaces = cm_calloc(e->options.blocks, sizeof *e->workspaces);
    if (!e->block || !e->workspaces)
        return cm_error_set(CM_ERR_NOMEM, "evaluator buffers for %zu rows", R);
    e->x = p, p += R * D * size;
    e->x_in = p, p += R * D * size;
    e->F_out = p, p += R * D * size;
    e->out = p, p += R * D * size;
    e->coef = p;
    if (e->options.f64) {
        size_t P = cm_network_param_count(e->model->network);
        e->params_f64 = cm_malloc(P, sizeof(double));
        if (!e->params_f64) return cm_error_set(CM_ERR_NOMEM, "evaluator: double weights");
        for (size_t k = 0; k < P; k++) e->params_f64[k] = e->model->params[k];
    }
    size_t largest = (R + e->options.blocks - 1) / e->options.blocks;
    for (size_t b = 0; b < e->options.blocks; b++) {
        cm_status status = e->options.f64
                               ? cm_network_workspace_alloc_f64(&e->workspaces[b],
                                                                e->model->network, largest)
                               : cm_network_workspace_alloc(&e->workspaces[b], e->model->network,
                                                            largest);
        CM_TRY(status);
    }
    return CM_OK;
}

cm_status cm_evaluator_alloc(cm_evaluator **out, const cm_model *model,
                             const cm_evaluator_options *options) {
    *out = NULL;
    cm_evaluator_options o = options ? *options : cm_evaluator_options_default();
    if (o.chunk < 1 || o.chunk > ((size_t)1 << 24) || o.blocks < 1 || o.blocks > o.chunk)
        return cm_error_set(CM_ERR_INVALID, "evaluator: chunk %zu and blocks %zu (need 1 <= "
                            "blocks <= chunk <= 2^24)", o.chunk, o.blocks);
    cm_evaluator *e = cm_calloc(1, sizeof *e);
    if (!e) return cm_error_set(CM_ERR_NOMEM, "evaluator");
    e->model = model;
    e->options = o;
    e->dim = model->config.network.dim;
    e->levels = model->config.network.noise_levels;
    cm_status status = alloc_buffers(e);
    if (status != CM_OK) {
        cm_evaluator_free(e);
        return status;
    }
    *out = e;
    return CM_OK;
}

/* Task `s` of a chunk: row block s through the consistency function. */
static void run_block(void *context, size_t s) {
    cm_evaluator *e = context;
    size_t first, end, R = e->options.chunk, D = e->dim;
    cm_parallel_range(&first, &end, e->rows, s, e->options.blocks);
    if (end == first) return;
    if (e->options.f64) {
        double *x = e->x, *x_in = e->x_in, *F_out = e->F_out, *out = e->out;
        cm_coefficient_rows_f64 coef = cm_coefficient_rows_offset_f64(
            cm_coefficient_rows_view_f64(e->coef, R, e->levels), first);
        cm_consistency_forward_f64(out + first * D, x_in + first * D, F_out + first * D,
                                   e->model->network, e->params_f64, e->workspaces[s],
                                   x + first * D, coef, end - first);
        return;
    }
    float *x = e->x, *x_in = e->x_in, *F_out = e->F_out, *out = e->out;
    cm_coefficient_rows coef =
        cm_coefficient_rows_offset(cm_coefficient_rows_view(e->coef, R, e->levels), first);
    cm_consistency_forward(out + first * D, x_in + first * D, F_out + first * D,
                           e->model->network, e->model->params, e->workspaces[s], x + first * D,
                           coef, end - first);
}

/* Evaluate the chunk held in e->x (rows rows, coefficients already stored). */
static void run_chunk(cm_evaluator *e, size_t rows) {
    e->rows = rows;
    if (e->options.blocks == 1) run_block(e, 0);
    else cm_parallel_for(run_block, e, e->options.blocks);
}

/* Rows of this chunk and rows the network sees (the full chunk when padding). */
static size_t chunk_rows(const cm_evaluator *e, size_t n, size_t first, size_t *evaluated) {
    size_t rows = n - first < e->options.chunk ? n - first : e->options.chunk;
    *evaluated = e->options.pad ? e->options.chunk : rows;
    return rows;
}

/* x rows [0, rows) of the chunk from `from` (float or double source), zero padding after. */
static void load_rows(cm_evaluator *e, const void *from, int from_f64, size_t rows, size_t total) {
    size_t D = e->dim;
    if (e->options.f64) {
        double *x = e->x;
        for (size_t k = 0; k < rows * D; k++)
            x[k] = from_f64 ? ((const double *)from)[k] : (double)((const float *)from)[k];
        memset(x + rows * D, 0, (total - rows) * D * sizeof(double));
        return;
    }
    float *x = e->x;
    for (size_t k = 0; k < rows * D; k++)
        x[k] = from_f64 ? (float)((const double *)from)[k] : ((const float *)from)[k];
    memset(x + rows * D, 0, (total - rows) * D * sizeof(float));
}

static void store_coefficients(cm_evaluator *e, size_t r, cm_coefficients c) {
    size_t R = e->options.chunk;
    if (e->options.f64)
        cm_coefficient_rows_store_f64(cm_coefficient_rows_view_f64(e->coef, R, e->levels), r, c);
    else
        cm_coefficient_rows_store(cm_coefficient_rows_view(e->coef, R, e->levels), r, c);
}

static double out_value(const cm_evaluator *e, size_t k) {
    return e->options.f64 ? ((const double *)e->out)[k] : (double)((const float *)e->out)[k];
}

void cm_evaluator_apply(cm_evaluator *e, float *out, const float *x, size_t n, cm_coefficients c) {
    size_t D = e->dim, evaluated;
    for (size_t r = 0; r < e->options.chunk; r++) store_coefficients(e, r, c);
    for (size_t first = 0; first < n; first += e->options.chunk) {
        size_t rows = chunk_rows(e, n, first, &evaluated);
        load_rows(e, x + first * D, 0, rows, evaluated);
        run_chunk(e, evaluated);
        if (e->options.f64)
            for (size_t k = 0; k < rows * D; k++) out[first * D + k] = (float)out_value(e, k);
        else
            memcpy(out + first * D, e->out, rows * D * sizeof(float));
    }
}

void cm_evaluator_apply_f64(cm_evaluator *e, double *out, const double *x, size_t n,
                            cm_coefficients c) {
    size_t D = e->dim, evaluated;
    for (size_t r = 0; r < e->options.chunk; r++) store_coefficients(e, r, c);
    for (size_t first = 0; first < n; first += e->options.chunk) {
        size_t rows = chunk_rows(e, n, first, &evaluated);
        load_rows(e, x + first * D, 1, rows, evaluated);
        run_chunk(e, evaluated);
        for (size_t k = 0; k < rows * D; k++) out[first * D + k] = out_value(e, k);
    }
}

void cm_evaluator_denoise(cm_evaluator *e, double *out, const double *x, const double *sigma,
                          size_t n) {
    size_t D = e->dim, evaluated;
    double sd = e->model->config.method.sigma_data;
    for (size_t first = 0; first < n; first += e->options.chunk) {
        size_t rows = chunk_rows(e, n, first, &evaluated);
        /* rows with sigma 0 (and padding) get sigma 1: finite coefficients, output discarded */
        for (size_t r = 0; r < evaluated; r++) {
            double s = r < rows && sigma[first + r] > 0 ? sigma[first + r] : 1.0;
            store_coefficients(e, r, cm_consistency_ve(s, sd, 0.0));
        }
        load_rows(e, x + first * D, 1, rows, evaluated);
        run_chunk(e, evaluated);
        for (size_t r = 0; r < rows; r++)
            for (size_t i = 0; i < D; i++) {
                size_t k = (first + r) * D + i;
                out[k] = sigma[first + r] > 0 ? out_value(e, r * D + i) : x[k];
            }
    }
}
