/* cmd_nfe_gaussian.c: `cm nfe --gaussian` (nfe.h): the closed forms of multistep.h on
 * N(0.5 1, diag(l)) data, where every map is affine and every output law Gaussian:
 *   A. KL and W2 of the [JHMZ] sampler against its step count K for a constant eta, with the
 *      exact flow map and with an erroneous one, chaining (delta = 0) or jumping to the end
 *      ([CM]), for an isotropic l = 0.25 and an anisotropic spectrum l_i log-spaced in
 *      [0.01, 4];
 *   B. the K needed for a target KL as d grows, beside log(d / eps) and d log(d / eps);
 *   C. [LFC]'s one- versus best two-step [CM] sampling (W2) with flow maps perturbed by a
 *      constant offset or a linear (x-dependent) error, constant or proportional to the level;
 *      the second level by the grid + golden-section search of minimise.h on log tau.
 * Tables on stdout, every number in the CSV, part A's KL curves in the PNG. Nothing is sampled.
 */
#include <math.h>
#include <stdio.h>

#include "cli.h"
#include "cm/alloc.h"
#include "cm/minimise.h"
#include "cm/multistep.h"
#include "nfe.h"
#include "plot.h"

#define GAUSS_MEAN 0.5                /* mean of every coordinate */
#define GAUSS_ISOTROPIC_VARIANCE 0.25 /* sigma_data^2 [CM] */
#define GAUSS_ANISOTROPIC_LOW 0.01
#define GAUSS_ANISOTROPIC_HIGH 4.0
#define GAUSS_KL_SHOWN 1e-14          /* the figure omits KL below this (rounding level) */
#define GAUSS_MAX_STEPS_SEARCHED 100000 /* part B: K searched up to this (or t = 300) */
#define LFC_SIGMA_MAX 80.0            /* [CM] sigma_max of the one-step sampler in part C */
#define LFC_GRID_POINTS 201           /* part C: grid on log tau, then golden section */
#define LFC_GOLDEN_EVALUATIONS 40     /* shrinks the bracket by 0.618^39, below 1e-8 */

/* Part A's figure: isotropic, smallest, middle and largest d; exact chaining and both erroneous
 * variants (static: too large for the stack of a CLI function, and drawn once). */
enum { FIGURE_CURVES = 12, FIGURE_POINTS = 64 };
typedef struct {
    double x[FIGURE_CURVES][FIGURE_POINTS], y[FIGURE_CURVES][FIGURE_POINTS];
    char labels[FIGURE_CURVES][96];
    cm_plot_series series[FIGURE_CURVES];
    size_t curves;
    size_t below_shown; /* KL values of the figure's curves under GAUSS_KL_SHOWN, not drawn */
} kl_figure;

/* The variances l of d coordinates: 0.25 each, or log-spaced in [0.01, 4]. */
static void spectrum(double *var, size_t d, int anisotropic) {
    for (size_t i = 0; i < d; i++)
        var[i] = !anisotropic ? GAUSS_ISOTROPIC_VARIANCE
                 : d == 1    ? sqrt(GAUSS_ANISOTROPIC_LOW * GAUSS_ANISOTROPIC_HIGH)
                             : GAUSS_ANISOTROPIC_LOW * pow(GAUSS_ANISOTROPIC_HIGH / GAUSS_ANISOTROPIC_LOW,
                                                           (double)i / (double)(d - 1));
}

static const char *spectrum_name(int anisotropic) {
    return anisotropic ? "anisotropic" : "isotropic";
}

/* ---- A: KL and W2 against the step count */

/* One row of table A: K = 1, 2, 4, ... up to max_steps for one map and one delta (erroneous:
 * 0 or 1; to_end: delta "end" instead of 0); its points into the figure's current curve when
 * `figure` is not NULL. */
static cm_status kl_row(const nfe_gaussian_settings *g, const cm_gaussian_map *map, int aniso,
                        int erroneous, int to_end, FILE *f, kl_figure *figure) {
    const char *map_name = erroneous ? "erroneous" : "exact", *delta_name = to_end ? "to-end" : "0";
    printf("%-12s %5zu %-9s %-8s", spectrum_name(aniso), map->dim, map_name, delta_name);
    cm_status status = CM_OK;
    for (size_t K = 1; K <= g->max_steps && status == CM_OK; K *= 2) {
        cm_jhmz_options o = cm_jhmz_options_default();
        o.steps = K, o.eta = g->eta, o.delta = to_end ? NFE_DELTA_END : 0.0;
        o.sigma_end = g->sigma_end;
        double kl, w2;
        status = cm_jhmz_gaussian_error(&kl, &w2, map, &o);
        printf(" %12.4g", kl);
        double T = cm_ou_time(o.sigma_end) + (double)K * o.eta;
        if (f)
            fprintf(f, "kl_vs_steps,%s,%zu,%s,%s,%zu,%.6g,,,%.9g,%.9g\n", spectrum_name(aniso),
                    map->dim, map_name, delta_name, K, T, kl, w2);
        size_t c = figure ? figure->curves : 0;
        if (figure && figure->series[c].n < FIGURE_POINTS && kl > GAUSS_KL_SHOWN) {
            figure->x[c][figure->series[c].n] = (double)K;
            figure->y[c][figure->series[c].n++] = kl;
        } else if (figure) {
            figure->below_shown++;
        }
    }
    printf("\n");
    return status;
}

static cm_status part_kl_against_steps(const nfe_gaussian_settings *g, double *mean, double *var,
                                       FILE *f, kl_figure *figure) {
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
            int shown_d = di == 0 || di == g->dim_count / 2 || di + 1 == g->dim_count;
            for (int m = 0; m < 2; m++)
                for (int dl = 0; dl < 2; dl++) {
                    cm_gaussian_map map = {d, mean, var, m ? g->relative : 0.0, m ? g->offset : 0.0, 0.0};
                    size_t c = figure->curves;
                    int curve = !aniso && shown_d && (m == 1 || dl == 0) && c < FIGURE_CURVES;
                    if (curve) {
                        snprintf(figure->labels[c], sizeof figure->labels[c], "d=%zu %s%s", d,
                                 m ? "erroneous" : "exact", dl ? " to-end" : "");
                        figure->series[c] = (cm_plot_series){.x = figure->x[c], .y = figure->y[c],
                                                             .n = 0, .label = figure->labels[c],
                                                             .style = m};
                    }
                    status = kl_row(g, &map, aniso, m, dl, f, curve ? figure : NULL);
                    if (curve) figure->curves++;
                }
        }
    return status;
}

/* ---- B: the step count for a target KL */

/* The least K whose KL with the exact map (chaining) is at most kl_target; 0 if none up to
 * GAUSS_MAX_STEPS_SEARCHED or before the start time passes 300 (sigma overflows). */
static cm_status steps_for_target(size_t *out, const nfe_gaussian_settings *g,
                                  const cm_gaussian_map *map) {
    *out = 0;
    for (size_t k = 1; k <= GAUSS_MAX_STEPS_SEARCHED; k++) {
        cm_jhmz_options o = cm_jhmz_options_default();
        o.steps = k, o.eta = g->eta, o.delta = 0.0, o.sigma_end = g->sigma_end;
        double kl, w2;
        if (cm_ou_time(o.sigma_end) + (double)k * o.eta > 300) break;
        CM_TRY(cm_jhmz_gaussian_error(&kl, &w2, map, &o));
        if (kl <= g->kl_target) {
            *out = k;
            break;
        }
    }
    return CM_OK;
}

static cm_status part_steps_for_target(const nfe_gaussian_settings *g, double *mean, double *var,
                                       FILE *f) {
    printf("\nB. Steps K for KL <= %g (exact map, delta = 0, eta = %g), beside the shapes of [JHMZ]\n",
           g->kl_target, g->eta);
    printf("%-12s %5s %6s %14s %14s %16s\n", "spectrum", "d", "K", "log(d/eps)", "K/log(d/eps)",
           "K/(d log(d/eps))");
    double eps = sqrt(g->kl_target);
    for (int aniso = 0; aniso < 2; aniso++)
        for (size_t di = 0; di < g->dim_count; di++) {
            size_t d = (size_t)g->dims[di], K;
            spectrum(var, d, aniso);
            cm_gaussian_map map = {d, mean, var, 0.0, 0.0, 0.0};
            CM_TRY(steps_for_target(&K, g, &map));
            double shape = log((double)d / eps);
            printf("%-12s %5zu %6zu %14.3f %14.3f %16.4f\n", spectrum_name(aniso), d, K, shape,
                   (double)K / shape, (double)K / ((double)d * shape));
            if (f)
                fprintf(f, "steps_for_target,%s,%zu,exact,0,%zu,,,,%.9g,\n", spectrum_name(aniso),
                        d, K, g->kl_target);
        }
    return CM_OK;
}

/* ---- C: [LFC] one- versus two-step sampling with perturbed maps */

typedef struct {
    const cm_gaussian_map *map;
    double sigma_end;
} two_step;

/* W2 of [CM] Algorithm 1 with levels (LFC_SIGMA_MAX, exp(log_tau)). */
static cm_status two_step_w2(double *out, void *context, double log_tau) {
    const two_step *c = context;
    double levels[2] = {LFC_SIGMA_MAX, exp(log_tau)}, kl;
    return cm_cm_gaussian_error(&kl, out, c->map, levels, 2, c->sigma_end);
}

/* One row of table C: the one-step W2 and the best two-step W2 with its tau. */
static cm_status lfc_row(const nfe_gaussian_settings *g, const cm_gaussian_map *map,
                         const char *name, double size, FILE *f) {
    double one, best, log_tau, kl, level = LFC_SIGMA_MAX;
    CM_TRY(cm_cm_gaussian_error(&kl, &one, map, &level, 1, g->sigma_end));
    two_step c = {map, g->sigma_end};
    CM_TRY(cm_minimise_grid_golden(&log_tau, &best, two_step_w2, &c, log(g->sigma_end * 1.01),
                                   log(LFC_SIGMA_MAX * 0.999), LFC_GRID_POINTS,
                                   LFC_GOLDEN_EVALUATIONS));
    double tau = exp(log_tau);
    printf("%-17s %10.3g %12.5g %12.5g %10.4g %8s\n", name, size, one, best, tau,
           best < one * (1 - 1e-6) ? "yes" : "no");
    if (f) {
        fprintf(f, "lfc,isotropic,2,%s,,1,,,%.6g,,%.9g\n", name, size, one);
        fprintf(f, "lfc,isotropic,2,%s,,2,,%.9g,%.6g,,%.9g\n", name, tau, size, best);
    }
    return CM_OK;
}

static cm_status part_lfc(const nfe_gaussian_settings *g, double *mean, double *var, FILE *f) {
    printf("\nC. [LFC]: W2 of [CM] one-step vs best two-step sampling (tau by golden section on "
           "log tau), N(%.2g 1, %.2g I) in d = 2, sigma_max %g\n", GAUSS_MEAN,
           GAUSS_ISOTROPIC_VARIANCE, LFC_SIGMA_MAX);
    printf("   error constant, or 'propto': size x sigma / %g at the map's start level sigma\n",
           LFC_SIGMA_MAX);
    printf("%-17s %10s %12s %12s %10s %8s\n", "error", "size", "W2 1-step", "W2 2-step", "tau*",
           "helps");
    spectrum(var, 2, 0);
    const double sizes[4] = {0.0, 0.01, 0.05, 0.2};
    const char *names[2][2] = {{"offset", "linear"}, {"offset-propto", "linear-propto"}};
    for (int profile = 0; profile < 2; profile++)
        for (int kind = 0; kind < 2; kind++)
            for (int si = 0; si < 4; si++) {
                cm_gaussian_map map = {2, mean, var, kind ? sizes[si] : 0.0,
                                       kind ? 0.0 : sizes[si], profile ? LFC_SIGMA_MAX : 0.0};
                CM_TRY(lfc_row(g, &map, names[profile][kind], sizes[si], f));
            }
    return CM_OK;
}

int nfe_gaussian_mode(const nfe_gaussian_settings *g, const char *csv, const char *png) {
    const char *command = "nfe";
    size_t max_d = 2; /* part C is in d = 2 */
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
    static kl_figure figure;
    figure.curves = 0;
    figure.below_shown = 0;
    cm_status status = part_kl_against_steps(g, mean, var, f, &figure);
    if (status == CM_OK) status = part_steps_for_target(g, mean, var, f);
    if (status == CM_OK) status = part_lfc(g, mean, var, f);
    if (f && fclose(f) != 0 && status == CM_OK)
        status = cm_error_set(CM_ERR_IO, "%s: write failed", csv);
    if (status == CM_OK && png && figure.curves) {
        char title[160];
        snprintf(title, sizeof title, "[JHMZ] sampler on Gaussians: KL vs steps (eta %g)", g->eta);
        status = cm_plot_loglog_png(png, figure.series, figure.curves, title, "steps K",
                                    "KL(output || target)");
        if (status == CM_OK && figure.below_shown)
            fprintf(stderr, "cm nfe: note: %s: %zu KL value(s) below %g (the rounding level of "
                            "the closed forms) are not drawn; the table and CSV hold them\n", png,
                    figure.below_shown, GAUSS_KL_SHOWN);
    }
    cm_free(mean);
    cm_free(var);
    return status == CM_OK ? CLI_OK : cli_fail(command, status);
}
