/* law_flow.c: the exact probability-flow map Phi_{lambda_from -> lambda_to} of a cm_law (docs/math.md,
 * [LHW]): the log-SNR ODE dx/dlambda = ( sqrt(abar) D(x; lambda) - abar x ) / 2 with the
 * exact denoiser, integrated per point by the Dormand-Prince 5(4) pair (Dormand and Prince,
 * J. Comput. Appl. Math. 6, 1980; the FSAL form of Hairer, Norsett and Wanner, Solving ODEs I,
 * section II.5) with local error control on the 5th-order solution; and for a single Gaussian
 * (K = 1) the closed form of docs/theory.md, which the integrator is tested against.
 *
 * In lambda the ODE is not stiff for a Gaussian: the Jacobian's eigenvalues are
 * abar (abar l / v - 1) / 2 in [-1/2, 0], so the step size is set by accuracy only.
 * Each point has its own step control; one workspace per call, nothing allocated in the loop.
 */
#include <math.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/law.h"
#include "data/law_internal.h"

/* Defaults (our choice): a 5th-order pair at relative 1e-10 reaches the ~1e-8 global accuracy
 * the tests ask of the map; the step cap keeps a pathological point from running forever. */
#define FLOW_RELATIVE_TOLERANCE 1e-10
#define FLOW_ABSOLUTE_TOLERANCE 1e-12
#define FLOW_MAX_STEPS 100000
/* Step-size controller (Hairer-Norsett-Wanner II.4): safety factor and the bounds of the
 * ratio of successive steps; the first step is FLOW_FIRST_STEP in lambda (or the whole span). */
#define FLOW_SAFETY 0.9
#define FLOW_MIN_FACTOR 0.2
#define FLOW_MAX_FACTOR 5.0
#define FLOW_FIRST_STEP 0.05

cm_law_flow_options cm_law_flow_options_default(void) {
    cm_law_flow_options o = {FLOW_RELATIVE_TOLERANCE, FLOW_ABSOLUTE_TOLERANCE, FLOW_MAX_STEPS, 0};
    return o;
}

/* Dormand-Prince 5(4) tableau. */
static const double C[7] = {0.0, 1.0 / 5, 3.0 / 10, 4.0 / 5, 8.0 / 9, 1.0, 1.0};
static const double A[7][6] = {
    {0},
    {1.0 / 5},
    {3.0 / 40, 9.0 / 40},
    {44.0 / 45, -56.0 / 15, 32.0 / 9},
    {19372.0 / 6561, -25360.0 / 2187, 64448.0 / 6561, -212.0 / 729},
    {9017.0 / 3168, -355.0 / 33, 46732.0 / 5247, 49.0 / 176, -5103.0 / 18656},
    {35.0 / 384, 0.0, 500.0 / 1113, 125.0 / 192, -2187.0 / 6784, 11.0 / 84},
};
/* 5th-order weights minus 4th-order weights: the local error estimate. */
static const double E[7] = {71.0 / 57600, 0.0, -71.0 / 16695, 71.0 / 1920,
                            -17253.0 / 339200, 22.0 / 525, -1.0 / 40};

typedef struct {
    const cm_law *law;
    double *k[7];    /* stage derivatives, d each */
    double *stage;   /* d: the point a stage is evaluated at */
    double *next;    /* d: the 5th-order solution of a trial step */
    double *scratch; /* cm_law_scratch_size */
    size_t calls;
} flow_work;

/* out = dx/dlambda at (lambda, x). */
static void velocity(flow_work *w, double lambda, const double *x, double *out) {
    size_t d = w->law->d;
    double abar, one_minus;
    cm_law_abar(lambda, &abar, &one_minus);
    cm_law_denoise_point(w->law, lambda, x, out, NULL, w->scratch);
    double root = sqrt(abar);
    for (size_t i = 0; i < d; i++) out[i] = 0.5 * (root * out[i] - abar * x[i]);
    w->calls++;
}

/* Integrate one point x (in place) from lambda0 to lambda1. */
static cm_status flow_point(flow_work *w, double lambda0, double lambda1, double *x,
                            const cm_law_flow_options *o, cm_law_flow_stats *stats) {
    size_t d = w->law->d;
    double span = lambda1 - lambda0, direction = span > 0 ? 1.0 : -1.0;
    double h = direction * fmin(fabs(span), FLOW_FIRST_STEP), lambda = lambda0;
    size_t attempts = 0;
    velocity(w, lambda, x, w->k[0]);
    while (direction * (lambda1 - lambda) > 0.0) {
        if (attempts++ >= o->max_steps)
            return cm_error_set(CM_ERR_INVALID, "flow map: %zu steps without reaching lambda "
                                "%g (at %g)", o->max_steps, lambda1, lambda);
        int last = direction * (lambda + h - lambda1) >= 0.0;
        if (last) h = lambda1 - lambda;
        for (int s = 1; s < 7; s++) {
            for (size_t i = 0; i < d; i++) {
                double sum = 0.0;
                for (int r = 0; r < s; r++) sum += A[s][r] * w->k[r][i];
                w->stage[i] = x[i] + h * sum;
            }
            velocity(w, lambda + C[s] * h, w->stage, w->k[s]);
        }
        memcpy(w->next, w->stage, d * sizeof(double)); /* stage 7 is at the 5th-order point */
        double error = 0.0;
        for (size_t i = 0; i < d; i++) {
            double e = 0.0;
            for (int s = 0; s < 7; s++) e += E[s] * w->k[s][i];
            double scale = o->absolute_tolerance +
                           o->relative_tolerance * fmax(fabs(x[i]), fabs(w->next[i]));
            e = h * e / scale;
            error += e * e;
        }
        error = sqrt(error / (double)d);
        if (error <= 1.0) {
            lambda = last ? lambda1 : lambda + h;
            memcpy(x, w->next, d * sizeof(double));
            memcpy(w->k[0], w->k[6], d * sizeof(double)); /* first same as last */
            stats->steps++;
            double factor = error > 0.0 ? FLOW_SAFETY * pow(error, -0.2) : FLOW_MAX_FACTOR;
            h *= fmin(FLOW_MAX_FACTOR, fmax(FLOW_MIN_FACTOR, factor));
        } else {
            stats->rejected++;
            double factor = isfinite(error) ? FLOW_SAFETY * pow(error, -0.2) : FLOW_MIN_FACTOR;
            h *= fmax(FLOW_MIN_FACTOR, fmin(1.0, factor));
        }
    }
    for (size_t i = 0; i < d; i++)
        if (!isfinite(x[i]))
            return cm_error_set(CM_ERR_NONFINITE, "flow map: coordinate %zu is %g", i, x[i]);
    return CM_OK;
}

/* K = 1: Phi(x) = sqrt(abar_to) m + U diag(sqrt(v_to / v_from)) U' (x - sqrt(abar_from) m). */
static void flow_closed_form(const cm_law *law, double lambda0, double lambda1, const double *x,
                             size_t n, double *out, double *r, double *y) {
    size_t d = law->d;
    double a0, o0, a1, o1;
    cm_law_abar(lambda0, &a0, &o0);
    cm_law_abar(lambda1, &a1, &o1);
    const double *m = law->means, *l = law->eigenvalues;
    for (size_t p = 0; p < n; p++) {
        const double *xp = x + p * d;
        double *op = out + p * d;
        for (size_t i = 0; i < d; i++) r[i] = xp[i] - sqrt(a0) * m[i];
        cm_law_to_eigen(law, r, y);
        for (size_t i = 0; i < d; i++) y[i] *= sqrt((a1 * l[i] + o1) / (a0 * l[i] + o0));
        for (size_t i = 0; i < d; i++) r[i] = sqrt(a1) * m[i];
        cm_law_from_eigen_add(law, y, r);
        memcpy(op, r, d * sizeof(double));
    }
}

cm_status cm_law_flow(const cm_law *law, double lambda_from, double lambda_to, const double *x,
                      size_t n, double *out, const cm_law_flow_options *options,
                      cm_law_flow_stats *stats) {
    if (!law || (n && (!x || !out))) return cm_error_set(CM_ERR_INVALID, "flow map: NULL argument");
    if (!isfinite(lambda_from) || !isfinite(lambda_to))
        return cm_error_set(CM_ERR_NONFINITE, "flow map: lambda %g -> %g", lambda_from, lambda_to);
    if (fabs(lambda_from) > CM_LAW_MAX_ABS_LAMBDA || fabs(lambda_to) > CM_LAW_MAX_ABS_LAMBDA)
        return cm_error_set(CM_ERR_INVALID, "flow map: |lambda| beyond %g", CM_LAW_MAX_ABS_LAMBDA);
    cm_law_flow_options o = options ? *options : cm_law_flow_options_default();
    if (!(o.relative_tolerance > 0.0) || !(o.absolute_tolerance > 0.0) || o.max_steps == 0)
        return cm_error_set(CM_ERR_INVALID, "flow map: tolerances %g, %g and max_steps %zu must "
                            "be > 0", o.relative_tolerance, o.absolute_tolerance, o.max_steps);
    cm_law_flow_stats local = {0, 0, 0};
    size_t d = law->d;
    for (size_t i = 0; i < n * d; i++)
        if (!isfinite(x[i]))
            return cm_error_set(CM_ERR_NONFINITE, "flow map: point %zu coordinate %zu is %g",
                                i / d, i % d, x[i]);
    size_t scratch = cm_law_scratch_size(law);
    double *memory = cm_malloc(9 * d + scratch, sizeof(double));
    if (!memory) return cm_error_set(CM_ERR_NOMEM, "flow map: workspace for d = %zu", d);
    cm_status status = CM_OK;
    if (law->k == 1 && !o.force_ode) {
        flow_closed_form(law, lambda_from, lambda_to, x, n, out, memory, memory + d);
    } else {
        flow_work w = {.law = law, .stage = memory + 7 * d, .next = memory + 8 * d,
                       .scratch = memory + 9 * d, .calls = 0};
        for (int s = 0; s < 7; s++) w.k[s] = memory + (size_t)s * d;
        if (x != out) memmove(out, x, n * d * sizeof(double));
        for (size_t p = 0; p < n && status == CM_OK; p++)
            if (lambda_from != lambda_to)
                status = flow_point(&w, lambda_from, lambda_to, out + p * d, &o, &local);
        local.denoiser_calls = w.calls;
    }
    cm_free(memory);
    if (stats) *stats = local;
    return status;
}
