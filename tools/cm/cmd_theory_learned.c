/* cmd_theory_learned.c: `cm theory learned`, `cm theory bound` and `cm theory network`: [LHW]
 * consistency learning with closed-form fits and its measured error terms (learned.h), the terms
 * of Theorem 1 (bound.h), and the same diagnostics for a trained [LHW] network
 * (docs/theory.md). */
#include <math.h>
#include <stdio.h>

#include "cli.h"
#include "cm/alloc.h"
#include "cm/bound.h"
#include "cm/data.h"
#include "cm/law.h"
#include "cm/learned.h"
#include "cm/model.h"
#include "cm/schedule.h"
#include "cm/theory.h"

static void json_number(const char *key, double value) {
    if (isfinite(value)) printf(", \"%s\": %.10g", key, value);
    else printf(", \"%s\": null", key);
}

/* Ideal-CT W1 of the same law where the theory module has it (a single Gaussian with diagonal
 * moments, or a 1-D mixture); NaN otherwise. */
static cm_status ideal_w1(double *out, const cm_law *law, size_t T, double c0, double c1) {
    *out = NAN;
    size_t d = cm_law_dim(law);
    if (cm_law_components(law) == 1) {
        double *moments = cm_malloc(d + d * d + d, sizeof(double));
        if (!moments) return cm_error_set(CM_ERR_NOMEM, "ideal W1");
        double *mean = moments, *cov = mean + d, *var = cov + d * d;
        cm_law_moments(law, mean, cov);
        for (size_t i = 0; i < d; i++) var[i] = cov[i * d + i];
        cm_theory_gaussian_result g;
        cm_status status = cm_theory_gaussian_mean(&g, d, mean, var, T, c0, c1);
        if (status == CM_OK) *out = g.w1_ideal;
        cm_free(moments);
        return status;
    }
    if (d == 1) {
        cm_theory_mixture1d_result m;
        CM_TRY(cm_theory_mixture1d(&m, law, T, c0, c1, NULL));
        *out = m.w1_ideal;
    }
    return CM_OK;
}

static int write_steps_csv(const char *path, const cm_learned_step *steps, size_t T) {
    FILE *file = fopen(path, "w");
    if (!file) return 0;
    fprintf(file, "t,eps_l1,eps_rms,eps_f_l1,eps_f_rms,eps_f_mc_noise\n");
    for (size_t t = 2; t <= T; t++) {
        const cm_learned_step *s = &steps[t - 2];
        fprintf(file, "%zu,%.10g,%.10g,%.10g,%.10g,%.10g\n", s->t, s->eps_l1, s->eps_rms,
                s->eps_f_l1, s->eps_f_rms, s->eps_f_mc_noise);
    }
    return fclose(file) == 0;
}

int cmd_theory_learned(int argc, char **argv) {
    const char *command = "theory learned";
    const char *source = "gauss:d=1,std=1", *class_name = "affine", *csv = NULL;
    cm_learned_options o = cm_learned_options_default();
    double C1 = CM_BOUND_C1_DEFAULT;
    int json = 0;
    cli_option options[] = {
        {"data", OPT_STRING, &source, "law: gauss:... or gmm:... (data.h grammar)", 0, 0, 0},
        {"T", OPT_SIZE, &o.T, "chain length", 2, 0, 0},
        {"c0", OPT_DOUBLE, &o.c0, "schedule constant c0 ([LHW], docs/math.md)", 1e-9, 0, 0},
        {"c1", OPT_DOUBLE, &o.c1, "schedule constant c1", 1e-9, 0, 0},
        {"class", OPT_STRING, &class_name, "function class: affine or rff", 0, 0, 0},
        {"n", OPT_SIZE, &o.n, "pairs per step (0 = population fit, affine only)", 0, 0, 0},
        {"best-factor", OPT_SIZE, &o.best_factor, "rff: best-in-class fit on this many times n",
         1, 0, 0},
        {"eval", OPT_SIZE, &o.n_eval, "X_t points per step for eps and eps_F", 2, 0, 0},
        {"posterior", OPT_SIZE, &o.n_posterior, "posterior draws per point for f*_t (rff, d > 1)",
         2, 0, 0},
        {"features", OPT_SIZE, &o.features, "rff: number of random Fourier features", 1, 0, 0},
        {"bandwidth", OPT_DOUBLE, &o.bandwidth, "rff: length scale / data scale", 1e-9, 0, 0},
        {"ridge", OPT_DOUBLE, &o.ridge, "rff: ridge per sample", 0, 0, 0},
        {"w1-points", OPT_SIZE, &o.w1_points, "points of the exact-OT W1 (0 = skip)", 0, 0, 0},
        {"lipschitz-points", OPT_SIZE, &o.lipschitz_points, "points of the Lipschitz estimates",
         0, 0, 0},
        {"C1", OPT_DOUBLE, &C1, "the unknown constant of Theorem 1 (a parameter)", 1e-300, 0, 0},
        {"seed", OPT_U64, &o.seed, "seed", 0, 0, 0},
        {"csv", OPT_STRING, &csv, "write the per-step terms here", 0, 0, 0},
        {"json", OPT_FLAG, &json, "one JSON line instead of the table", 0, 0, 0},
    };
    int parsed = cli_parse(argc, argv, 3, options, sizeof options / sizeof options[0], command,
                           "[LHW] sequential consistency learning with a function class fitted in\n"
                           "closed form per step on an exact law, and the terms of Theorem 1\n"
                           "measured: eps, eps_F (L1 and RMS), L_f, W1 of f_T(Y) vs X_1.");
    if (parsed != CLI_OK) return parsed;
    if (cm_learned_class_parse(&o.function_class, class_name) != CM_OK)
        return cli_usage_error(command, "--class: %s", cm_error_detail());
    if (o.T > 100000) return cli_usage_error(command, "--T %zu: at most 100000", o.T);
    cm_data *data = NULL;
    cm_law *law = NULL;
    cm_status status = cm_data_open(&data, source);
    if (status != CM_OK) return cli_usage_error(command, "--data: %s", cm_error_detail());
    status = cm_law_from_data(&law, data);
    cm_data_free(data);
    if (status != CM_OK) return cli_usage_error(command, "--data: %s", cm_error_detail());
    cm_learned *chain = NULL;
    cm_learned_result r;
    cm_learned_step *steps = cm_malloc(o.T, sizeof *steps);
    double w1_ideal = NAN;
    cm_bound_terms bound = {0};
    if (!steps) status = CM_ERR_NOMEM;
    if (status == CM_OK) status = cm_learned_alloc(&chain, law, &o);
    if (status == CM_OK) status = cm_learned_run(chain, &r, steps);
    if (status == CM_OK) status = ideal_w1(&w1_ideal, law, o.T, o.c0, o.c1);
    if (status == CM_OK && isfinite(r.lipschitz_exact))
        status = cm_bound_compute(&bound, (double)o.T, (double)r.d, fmax(r.lipschitz_exact, 1e-300),
                                  r.eps_l1, r.eps_f_l1, C1);
    if (status == CM_OK && csv && !write_steps_csv(csv, steps, o.T))
        status = cm_error_set(CM_ERR_IO, "cannot write '%.200s'", csv);
    if (status == CM_OK && json) {
        printf("{\"data\": \"%s\", \"T\": %zu, \"d\": %zu, \"class\": \"%s\", \"n\": %zu, "
               "\"seed\": %llu", source, o.T, r.d, class_name, o.n, (unsigned long long)o.seed);
        json_number("w1_learned", r.w1_learned);
        json_number("w1_floor", r.w1_floor);
        json_number("w1_learned_closed", r.w1_learned_closed);
        json_number("w2_learned_closed", r.w2_learned_closed);
        json_number("w1_ideal", w1_ideal);
        json_number("eps_l1", r.eps_l1);
        json_number("eps_rms", r.eps_rms);
        json_number("eps_f_l1", r.eps_f_l1);
        json_number("eps_f_rms", r.eps_f_rms);
        json_number("eps_l1_se", r.eps_l1_se);
        json_number("eps_f_l1_se", r.eps_f_l1_se);
        json_number("eps_f_mc_noise", r.eps_f_mc_noise);
        json_number("lipschitz_learned", r.lipschitz_learned);
        json_number("lipschitz_exact", r.lipschitz_exact);
        json_number("bound_rate", bound.rate);
        json_number("bound_total", bound.total);
        json_number("C1", C1);
        printf(", \"C1_known\": false}\n");
    } else if (status == CM_OK) {
        printf("law %s, d %zu, T %zu (c0 %g, c1 %g), class %s (P = %zu per coordinate), n %zu, "
               "seed %llu\n", source, r.d, o.T, o.c0, o.c1, class_name, r.P, o.n,
               (unsigned long long)o.seed);
        printf("%-44s %12s\n", "quantity", "value");
        printf("%-44s %12.6g   (floor %.6g: X_1 vs X_1, %zu points)\n",
               "W1(f_T(Y), X_1), exact OT", r.w1_learned, r.w1_floor, o.w1_points);
        if (isfinite(r.w1_learned_closed))
            printf("%-44s %12.6g\n", "W1(f_T(Y), X_1), closed form", r.w1_learned_closed);
        if (isfinite(r.w2_learned_closed))
            printf("%-44s %12.6g\n", "W2(f_T(Y), X_1), closed form", r.w2_learned_closed);
        if (isfinite(w1_ideal))
            printf("%-44s %12.6g\n", "W1 of ideal CT (eps = eps_F = 0)", w1_ideal);
        else
            printf("%-44s %12s   (exact ideal CT: Gaussians and 1-D mixtures only)\n",
                   "W1 of ideal CT (eps = eps_F = 0)", "n/a");
        printf("%-44s %12.6g   (+- %.2g; RMS form %.6g)\n", "eps   = sum_t E|f_t - f^F_t|",
               r.eps_l1, r.eps_l1_se, r.eps_rms);
        printf("%-44s %12.6g   (+- %.2g; RMS form %.6g; MC noise %.2g)\n",
               "eps_F = sum_t E|f^F_t - f*_t|", r.eps_f_l1, r.eps_f_l1_se, r.eps_f_rms,
               r.eps_f_mc_noise);
        if (isfinite(w1_ideal))
            printf("%-44s %12.6g\n", "W1 ideal + eps + eps_F", w1_ideal + r.eps_l1 + r.eps_f_l1);
        printf("%-44s %12.6g\n", "L_f of the learned f_T", r.lipschitz_learned);
        printf("%-44s %12.6g\n", "L_f of the exact map Phi_{T->1}", r.lipschitz_exact);
        if (bound.T > 0)
            printf("%-44s %12.6g   (C_1 = %g is UNKNOWN: a parameter)\n",
                   "Theorem 1: C_1 L_f^3 d^2.5 log^5 T / T", bound.rate, C1);
    }
    if (status == CM_OK && csv && !json) printf("per-step terms: %s\n", csv);
    cm_free(steps);
    cm_learned_free(chain);
    cm_law_free(law);
    return status == CM_OK ? CLI_OK : cli_fail(command, status);
}

int cmd_theory_bound(int argc, char **argv) {
    const char *command = "theory bound";
    double T = 1000, d = 1, L = 1, eps = 0, eps_F = 0, C1 = CM_BOUND_C1_DEFAULT, target = 0;
    int json = 0;
    cli_option options[] = {
        {"T", OPT_DOUBLE, &T, "chain length", 2, 0, 0},
        {"d", OPT_DOUBLE, &d, "dimension", 1, 0, 0},
        {"L", OPT_DOUBLE, &L, "Lipschitz constant L_f of the flow maps", 1e-300, 0, 0},
        {"eps", OPT_DOUBLE, &eps, "summed optimisation / finite-sample error", 0, 0, 0},
        {"eps-F", OPT_DOUBLE, &eps_F, "summed function-class error", 0, 0, 0},
        {"C1", OPT_DOUBLE, &C1, "the unknown universal constant of Theorem 1", 1e-300, 0, 0},
        {"target", OPT_DOUBLE, &target,
         "rate-term target of the corollary (0 = eps + eps_F)", 0, 0, 0},
        {"json", OPT_FLAG, &json, "one JSON line instead of the table", 0, 0, 0},
    };
    int parsed = cli_parse(argc, argv, 3, options, sizeof options / sizeof options[0], command,
                           "The terms of [LHW] Theorem 1: W1 <= C_1 L_f^3 d^(5/2) log^5 T / T + eps +\n"
                           "eps_F, and the T its corollary asks for. C_1 is unknown (a parameter).");
    if (parsed != CLI_OK) return parsed;
    cm_bound_terms b;
    cm_status status = cm_bound_compute(&b, T, d, L, eps, eps_F, C1);
    if (status != CM_OK) return cli_usage_error(command, "%s", cm_error_detail());
    double goal = target > 0 ? target : eps + eps_F, required = NAN;
    if (goal > 0 && cm_bound_required_T(&required, goal, d, L, C1) != CM_OK) required = INFINITY;
    if (json) {
        printf("{\"T\": %.17g, \"d\": %.17g, \"L\": %.17g", T, d, L);
        json_number("eps", eps);
        json_number("eps_F", eps_F);
        json_number("C1", C1);
        printf(", \"C1_known\": false");
        json_number("rate", b.rate);
        json_number("total", b.total);
        json_number("target", goal);
        json_number("required_T", required);
        printf("}\n");
        return CLI_OK;
    }
    printf("[LHW] Theorem 1 with C_1 = %g (UNKNOWN universal constant: a parameter, not a value "
           "from the paper)\n", C1);
    printf("  rate term  C_1 L_f^3 d^2.5 log^5 T / T  = %.6g   (T %g, d %g, L_f %g)\n", b.rate, T,
           d, L);
    printf("  eps                                     = %.6g\n", eps);
    printf("  eps_F                                   = %.6g\n", eps_F);
    printf("  bound on W1(f_T(Y), X_1)                = %.6g\n", b.total);
    if (goal > 0) {
        if (isfinite(required))
            printf("  T with rate term <= %.6g for all larger T: %.6g\n", goal, required);
        else
            printf("  T with rate term <= %.6g: beyond 1e300\n", goal);
        printf("  (log^5 T / T rises until T = e^5 = 148.4 and falls after: the T given is the "
               "smallest from which on the rate stays below the target)\n");
    }
    return CLI_OK;
}

/* cm theory network on a VE consistency model (ct, ict, cd, cd2; images too): the consistency gap
 * E||f(x0 + s_{i+1} z, s_{i+1}) - f(x0 + s_i z, s_i)|| over the model's Karras grid of `levels`
 * levels (cm_consistency_gap_ve), beside the exact consistency function's on the same pairs for
 * gauss: and gmm: sources (else "n/a": no exact law). */
static int theory_network_ve(const char *command, const char *model_path, const cm_model *model,
                             size_t n, size_t levels, uint64_t seed, const char *csv, int json) {
    const cm_method_config *m = &model->config.method;
    cm_data *data = NULL;
    cm_law *law = NULL;
    cm_status status = cm_data_open(&data, model->data_source);
    if (status == CM_OK && cm_law_from_data(&law, data) != CM_OK) law = NULL, cm_error_clear();
    double *sigma = cm_malloc(4 * levels, sizeof(double));
    double *gap = sigma ? sigma + levels : NULL, *se = gap ? gap + levels : NULL;
    double *exact = se ? se + levels : NULL;
    if (status == CM_OK && !sigma) status = cm_error_set(CM_ERR_NOMEM, "%zu levels", levels);
    if (status == CM_OK) status = cm_karras_grid(sigma, levels, m->sigma_min, m->sigma_max, m->rho);
    if (status == CM_OK)
        status = cm_consistency_gap_ve(gap, se, exact, model, data, law, sigma, levels, n, seed);
    FILE *file = status == CM_OK && csv ? fopen(csv, "w") : NULL;
    if (status == CM_OK && csv && !file) status = cm_error_set(CM_ERR_IO, "cannot write '%.200s'", csv);
    double total = 0.0, total_exact = 0.0;
    for (size_t i = 0; status == CM_OK && i + 1 < levels; i++)
        total += gap[i], total_exact += exact[i];
    if (file) {
        fprintf(file, "sigma,sigma_next,gap,gap_se,gap_exact_function\n");
        for (size_t i = 0; i + 1 < levels; i++)
            fprintf(file, "%.10g,%.10g,%.10g,%.10g,%.10g\n", sigma[i], sigma[i + 1], gap[i], se[i],
                    exact[i]);
        if (fclose(file) != 0) status = cm_error_set(CM_ERR_IO, "cannot write '%.200s'", csv);
    }
    if (status == CM_OK && json) {
        printf("{\"model\": \"%s\", \"data\": \"%s\", \"method\": \"%s\", \"levels\": %zu, "
               "\"n\": %zu, \"seed\": %llu", model_path, model->data_source,
               cm_method_name(m->kind), levels, n, (unsigned long long)seed);
        json_number("gap_total", total);
        json_number("gap_exact_total", law ? total_exact : NAN);
        printf("}\n");
    } else if (status == CM_OK) {
        printf("model %s (%s on %s), %zu pairs (x0, z) per level, seed %llu\n", model_path,
               cm_method_name(m->kind), model->data_source, n, (unsigned long long)seed);
        printf("consistency gap E|f(x0 + s' z, s') - f(x0 + s z, s)| on the Karras grid (model "
               "units%s):\n", model->config.network.image_channels ? ": pixels as 2 x - 1" : "");
        printf("  %10s %10s %12s %10s %14s\n", "s", "s'", "gap", "std err", "exact f*");
        for (size_t i = 0; i + 1 < levels; i++) {
            printf("  %10.4g %10.4g %12.5g %10.2g ", sigma[i], sigma[i + 1], gap[i], se[i]);
            if (law) printf("%14.5g\n", exact[i]);
            else printf("%14s\n", "n/a");
        }
        printf("  total %.6g", total);
        if (law) printf("   (the exact consistency function on the same pairs: %.6g)", total_exact);
        else printf("   (no exact law for %s: the exact function's gap is not available)",
                    model->data_source);
        printf("\n");
        if (csv) printf("consistency gap by level: %s\n", csv);
    }
    cm_free(sigma);
    cm_law_free(law);
    cm_data_free(data);
    return status == CM_OK ? CLI_OK : cli_fail(command, status);
}

int cmd_theory_network(int argc, char **argv) {
    const char *command = "theory network";
    const char *model_path = NULL, *csv = NULL;
    size_t n = 2000, lipschitz_points = 64, levels = 18;
    uint64_t seed = 1;
    int json = 0;
    cli_option options[] = {
        {"model", OPT_STRING, &model_path, "an [LHW] model trained on a gauss: or gmm: source, or a ct, ict, cd or cd2 model on any data (images too)", 0,
         1, 0},
        {"n", OPT_SIZE, &n, "samples in the W1 and per step of the gap", 2, 0, 0},
        {"lipschitz-points", OPT_SIZE, &lipschitz_points, "points of the Lipschitz estimates", 0,
         0, 0},
        {"levels", OPT_SIZE, &levels, "ct, ict, cd, cd2: levels of the Karras grid of the gap", 2, 0, 0},
        {"seed", OPT_U64, &seed, "seed", 0, 0, 0},
        {"csv", OPT_STRING, &csv, "write the consistency gap by t (by level) here", 0, 0, 0},
        {"json", OPT_FLAG, &json, "one JSON line instead of the table", 0, 0, 0},
    };
    int parsed = cli_parse(argc, argv, 3, options, sizeof options / sizeof options[0], command,
                           "Theorem 1's quantities for a trained [LHW] network: W1 of one-step\n"
                           "samples vs X_1 (exact OT, with the floor), L_f of its noise-to-data map,\n"
                           "and the consistency gap E|f(U_t, t) - f(U_{t-1}, t-1)| by t.\n"
                           "A ct, ict, cd or cd2 model (any data, images too): the consistency gap\n"
                           "by level on the Karras grid of its range, beside the exact consistency\n"
                           "function's on the same pairs when the data have an exact law.");
    if (parsed != CLI_OK) return parsed;
    if (n > 10000) return cli_usage_error(command, "--n %zu: at most 10000", n);
    if (levels > 1000) return cli_usage_error(command, "--levels %zu: at most 1000", levels);
    cm_model model;
    cm_status status = cli_model_load(&model, model_path);
    if (status != CM_OK) return cli_fail(command, status);
    cm_method kind = model.config.method.kind;
    if (kind == CM_METHOD_CT || kind == CM_METHOD_ICT || kind == CM_METHOD_CD ||
        kind == CM_METHOD_CD2) {
        int code = theory_network_ve(command, model_path, &model, n, levels, seed, csv, json);
        cm_model_free(&model);
        return code;
    }
    cm_data *data = NULL;
    cm_law *law = NULL;
    double *gap = NULL;
    cm_network_diagnostics r;
    if (model.config.method.kind != CM_METHOD_LHW)
        status = cm_error_set(CM_ERR_INVALID, "'%s' is a %s model (a denoiser): cm theory network "
                              "takes lhw, ct, ict, cd and cd2 models", model_path,
                              cm_method_name(model.config.method.kind));
    if (status == CM_OK) status = cm_data_open(&data, model.data_source);
    if (status == CM_OK) status = cm_law_from_data(&law, data);
    if (status == CM_OK) {
        gap = cm_malloc(2 * (model.config.method.chain_T + 1), sizeof(double));
        if (!gap) status = CM_ERR_NOMEM;
    }
    double *gap_exact = gap ? gap + model.config.method.chain_T + 1 : NULL;
    if (status == CM_OK)
        status = cm_learned_network(&r, gap, gap_exact, &model, law, n, lipschitz_points, seed);
    if (status == CM_OK && csv) {
        FILE *file = fopen(csv, "w");
        if (!file) status = cm_error_set(CM_ERR_IO, "cannot write '%.200s'", csv);
        else {
            fprintf(file, "t,gap,gap_exact_map\n");
            for (size_t t = 2; t <= r.T; t++)
                fprintf(file, "%zu,%.10g,%.10g\n", t, gap[t], gap_exact[t]);
            if (fclose(file) != 0) status = cm_error_set(CM_ERR_IO, "cannot write '%.200s'", csv);
        }
    }
    if (status == CM_OK && json) {
        printf("{\"model\": \"%s\", \"data\": \"%s\", \"T\": %zu, \"n\": %zu, \"seed\": %llu",
               model_path, model.data_source, r.T, n, (unsigned long long)seed);
        json_number("w1", r.w1);
        json_number("w1_floor", r.w1_floor);
        json_number("lipschitz_learned", r.lipschitz_learned);
        json_number("lipschitz_exact", r.lipschitz_exact);
        json_number("gap_total", r.gap_total);
        json_number("gap_exact_total", r.gap_exact_total);
        printf("}\n");
    } else if (status == CM_OK) {
        printf("model %s (data %s, T %zu), %zu points, seed %llu\n", model_path,
               model.data_source, r.T, n, (unsigned long long)seed);
        printf("W1(one-step samples, X_1), exact OT   %.6g   (floor %.6g)\n", r.w1, r.w1_floor);
        printf("L_f of f(., T) (standardised units)   %.6g\n", r.lipschitz_learned);
        printf("L_f of the exact Phi_{T->1}           %.6g\n", r.lipschitz_exact);
        printf("sum_t E|f(U_t,t) - f(U_{t-1},t-1)|    %.6g   (exact Phi_{t->1} on the same pairs: "
               "%.6g)\n", r.gap_total, r.gap_exact_total);
        if (csv) printf("consistency gap by t: %s\n", csv);
    }
    cm_free(gap);
    cm_law_free(law);
    cm_data_free(data);
    cm_model_free(&model);
    return status == CM_OK ? CLI_OK : cli_fail(command, status);
}
