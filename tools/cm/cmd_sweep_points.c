/* cmd_sweep_points.c: one point of `cm sweep` (sweep.h), by kind:
 *   gaussian: ideal consistency training in closed form on N(0, var I_d) or a log-spaced
 *     spectrum (theory.h): W1 where it is closed, else its upper bound W2;
 *   mixture1d: the exact grid recursion on a two-mode 1-D mixture (theory.h), with the exact
 *     map's Lipschitz constant by learned.h's 1-D slope;
 *   learned: [LHW]'s learned consistency training with closed-form fits (learned.h), its
 *     eps and eps_F, beside ideal CT's W1 on the same law;
 *   width: an lhw network of the given width trained on the law, measured by learned.h.
 * Every number comes from the library; this file only sets up the law and the options.
 */
#include <math.h>
#include <stdio.h>

#include "cm/alloc.h"
#include "cm/data.h"
#include "cm/law.h"
#include "cm/learned.h"
#include "cm/schedule.h"
#include "cm/theory.h"
#include "cm/train.h"
#include "sweep.h"

/* The d variances of a point's Gaussian (caller frees): var each, or with the aniso spectrum
 * var 10^-2 .. var 10^2 log-spaced. */
static cm_status point_variances(double **out, const sweep_point *pt) {
    size_t d = (size_t)pt->p[P_D];
    double *variances = cm_malloc(d, sizeof(double));
    if (!variances) return cm_error_set(CM_ERR_NOMEM, "sweep: variances");
    for (size_t i = 0; i < d; i++)
        variances[i] = pt->p[P_VAR] * (pt->p[P_SPECTRUM] > 0 && d > 1
                                           ? pow(10.0, -2.0 + 4.0 * (double)i / (double)(d - 1))
                                           : 1.0);
    *out = variances;
    return CM_OK;
}

static cm_status run_gaussian(sweep_point *pt) {
    size_t d = (size_t)pt->p[P_D];
    double *variances;
    CM_TRY(point_variances(&variances, pt));
    cm_theory_gaussian_result g;
    cm_status status = cm_theory_gaussian(&g, d, variances, (size_t)pt->p[P_T], pt->p[P_C0],
                                          pt->p[P_C1]);
    cm_free(variances);
    if (status != CM_OK) return status;
    /* W1 where closed; otherwise its upper bound W2 (stated in the CSV's error_kind column) */
    pt->error = isfinite(g.w1_ideal) ? g.w1_ideal : g.w2_ideal;
    pt->w1_ideal = g.w1_ideal;
    pt->w2 = g.w2_ideal;
    pt->w1_lower = g.w1_ideal_lower;
    return CM_OK;
}

static cm_status mixture_law(cm_law **out, double sep, double std) {
    const double weights[2] = {1, 1}, means[2] = {-sep / 2, sep / 2}, stds[2] = {std, std};
    return cm_law_mixture_isotropic(out, 1, 2, weights, means, stds);
}

static cm_status run_mixture1d(sweep_point *pt, const sweep_settings *s) {
    cm_law *law = NULL;
    CM_TRY(mixture_law(&law, pt->p[P_SEP], s->std));
    cm_theory_mixture1d_result m;
    size_t T = (size_t)pt->p[P_T];
    cm_status status = cm_theory_mixture1d(&m, law, T, pt->p[P_C0], pt->p[P_C1], NULL);
    /* L_f by learned.h's exact 1-D slope (noise-side grid over [-6, 6] and data-side grid) */
    cm_lhw_schedule schedule = {0};
    double *grid = cm_malloc(CM_LEARNED_GRID_POINTS, sizeof(double));
    if (status == CM_OK && !grid) status = cm_error_set(CM_ERR_NOMEM, "sweep: grid");
    if (status == CM_OK) status = cm_lhw_schedule_init(&schedule, T, pt->p[P_C0], pt->p[P_C1]);
    if (status == CM_OK) {
        for (size_t k = 0; k < CM_LEARNED_GRID_POINTS; k++)
            grid[k] = CM_LEARNED_GRID_HALFWIDTH *
                      (2.0 * (double)k / (double)(CM_LEARNED_GRID_POINTS - 1) - 1.0);
        status = cm_learned_lipschitz_exact(&pt->lipschitz_exact, law,
                                            cm_lhw_schedule_log_snr(&schedule, T),
                                            cm_lhw_schedule_log_snr(&schedule, 1), grid,
                                            CM_LEARNED_GRID_POINTS);
    }
    cm_lhw_schedule_free(&schedule);
    cm_free(grid);
    cm_law_free(law);
    if (status != CM_OK) return status;
    pt->error = pt->w1_ideal = m.w1_ideal;
    pt->w1_ddim = m.w1_ddim;
    pt->lipschitz_theory = m.lipschitz; /* theory.h's own estimate, for comparison */
    return CM_OK;
}

/* The law of a point: a 1-D two-mode mixture when sep > 0, else N(0, var I_d) (the learned and
 * width kinds have no spectrum). */
static cm_status point_law(cm_law **out, const sweep_point *pt, const sweep_settings *s) {
    if (pt->p[P_SEP] > 0) return mixture_law(out, pt->p[P_SEP], s->std);
    double *variances;
    CM_TRY(point_variances(&variances, pt));
    cm_status status = cm_law_gaussian_diagonal(out, (size_t)pt->p[P_D], NULL, variances);
    cm_free(variances);
    return status;
}

/* W1 of ideal CT on the law of a learned point (theory.h): the grid recursion for a mixture, the
 * closed form (or its upper bound) for a Gaussian. */
static cm_status ideal_beside_learned(sweep_point *pt, const cm_law *law,
                                      const cm_learned_options *o) {
    if (pt->p[P_SEP] > 0) {
        cm_theory_mixture1d_result m;
        CM_TRY(cm_theory_mixture1d(&m, law, o->T, o->c0, o->c1, NULL));
        pt->w1_ideal = m.w1_ideal;
        return CM_OK;
    }
    double *variances;
    CM_TRY(point_variances(&variances, pt));
    cm_theory_gaussian_result g;
    cm_status status = cm_theory_gaussian(&g, (size_t)pt->p[P_D], variances, o->T, o->c0, o->c1);
    if (status == CM_OK) pt->w1_ideal = isfinite(g.w1_ideal) ? g.w1_ideal : g.w1_ideal_upper;
    cm_free(variances);
    return status;
}

static cm_status run_learned(sweep_point *pt, const sweep_settings *s) {
    cm_law *law = NULL;
    CM_TRY(point_law(&law, pt, s));
    cm_learned_options o = cm_learned_options_default();
    o.T = (size_t)pt->p[P_T];
    o.c0 = pt->p[P_C0];
    o.c1 = pt->p[P_C1];
    o.n = (size_t)pt->p[P_N];
    o.n_eval = s->n_eval;
    o.seed = s->seed;
    cm_status status = cm_learned_class_parse(&o.function_class, s->class_name);
    cm_learned *chain = NULL;
    cm_learned_result r;
    if (status == CM_OK) status = cm_learned_alloc(&chain, law, &o);
    if (status == CM_OK) status = cm_learned_run(chain, &r, NULL);
    if (status == CM_OK) status = ideal_beside_learned(pt, law, &o);
    if (status == CM_OK) {
        pt->error = isfinite(r.w1_learned_closed) ? r.w1_learned_closed : r.w1_learned;
        pt->w1_floor = isfinite(r.w1_learned_closed) ? 0.0 : r.w1_floor;
        pt->eps = r.eps_l1;
        pt->eps_F = r.eps_f_l1;
        pt->lipschitz = r.lipschitz_learned;
        pt->lipschitz_exact = r.lipschitz_exact;
    }
    cm_learned_free(chain);
    cm_law_free(law);
    return status;
}

static cm_status run_width(sweep_point *pt, const sweep_settings *s) {
    char source[128];
    if (pt->p[P_SEP] > 0)
        snprintf(source, sizeof source, "gmm:d=1,k=2,sep=%.17g,std=%.17g", pt->p[P_SEP], s->std);
    else
        snprintf(source, sizeof source, "gauss:d=%zu,std=%.17g", (size_t)pt->p[P_D],
                 sqrt(pt->p[P_VAR]));
    cm_data *data = NULL;
    CM_TRY(cm_data_open(&data, source));
    cm_train_config config = cm_train_config_default(CM_METHOD_LHW, cm_data_dim(data));
    config.steps = s->steps;
    config.method.chain_T = (size_t)pt->p[P_T];
    config.method.c0 = pt->p[P_C0];
    config.method.c1 = pt->p[P_C1];
    config.seed = s->seed;
    cm_trainer *trainer = NULL;
    cm_law *law = NULL;
    cm_status status = cm_network_config_set(&config.network, "width", pt->p[P_WIDTH]);
    if (status == CM_OK) status = cm_trainer_init(&trainer, &config, data);
    for (size_t k = 0; status == CM_OK && k < s->steps; k++) {
        cm_train_report report;
        status = cm_trainer_step(trainer, &report);
    }
    if (status == CM_OK) status = cm_law_from_data(&law, data);
    cm_network_diagnostics r;
    if (status == CM_OK)
        status = cm_learned_network(&r, NULL, NULL, cm_trainer_model(trainer), law, 2000, 16,
                                    s->seed);
    if (status == CM_OK) {
        pt->error = r.w1;
        pt->w1_floor = r.w1_floor;
        pt->lipschitz = r.lipschitz_learned;
        pt->lipschitz_exact = r.lipschitz_exact;
        pt->gap_total = r.gap_total;
        pt->gap_exact_total = r.gap_exact_total;
    }
    cm_law_free(law);
    cm_trainer_free(trainer);
    cm_data_free(data);
    return status;
}

cm_status sweep_measure_point(sweep_point *pt, sweep_kind kind, const sweep_settings *s) {
    switch (kind) {
    case SWEEP_GAUSSIAN: return run_gaussian(pt);
    case SWEEP_MIXTURE1D: return run_mixture1d(pt, s);
    case SWEEP_LEARNED: return run_learned(pt, s);
    case SWEEP_WIDTH: return run_width(pt, s);
    }
    return cm_error_set(CM_ERR_INVALID, "sweep: kind %d", (int)kind);
}
