/* theory_mixture1d.c: exact ideal consistency training for a 1-D Gaussian mixture
 * (docs/theory.md), on a grid: with the posterior X_0 | U_t = x = sum_j w_j(x) N(m_j(x), tau_j^2),
 *     f_t(x_g) = sum_j w_j(x_g) E_u[ f_{t-1}(a_t x_g + b_t (m_j(x_g) + tau_j u)) ],  u ~ N(0, 1),
 * with Gauss-Hermite nodes (quadrature.h) and a natural cubic spline of f_{t-1} on its own
 * uniform grid over the support of X_{t-1} (linear extrapolation with the end slope beyond it).
 * The law is read through law.h's diagonal components. Then
 *     W1(f_T(Y), X_1) = int_0^1 |F^-1_{f_T(Y)}(u) - F^-1_{X_1}(u)| du
 *                     = E_Y |f_T(Y) - Q_1(Phi(Y))|       when f_T is increasing,
 * by the trapezoid rule in y on [-QUADRATURE_HALFWIDTH, QUADRATURE_HALFWIDTH] (spectrally accurate
 * for smooth integrands on the line) on nodes refined where X_1's quantile function is steep
 * (between modes), each cell where the difference changes sign split at its linearly
 * interpolated root; the O(h^2) error the kinks of |.| leave is removed by Richardson
 * extrapolation against the rule on every other node. If f_T is not increasing on the nodes, the
 * law of f_T(Y) is taken as the weighted nodes, sorted. Mixture quantiles are solved by bisection
 * on log CDF or log survival function (whichever tail is smaller), so the tails keep their
 * relative accuracy. In 1-D the exact flow map is the monotone transport Phi_{T->1} = Q_1 o F_T,
 * and Phi' = p_T / p_1(Phi) (docs/theory.md).
 * Not done here: d > 1 (the grid would be exponential in d).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cm/alloc.h"
#include "cm/law.h"
#include "cm/quadrature.h"
#include "cm/theory.h"

/* Defaults (our choice, measured): with 1024 points w1_ideal changes under doubling by ~1e-7
 * relative for modes 8 stds apart at T = 30, ~6e-4 at T = 1600 (the grid error converges at
 * third order; refinement_change reports it for every run); 24 nodes integrate f_{t-1} exactly
 * up to degree 47 over a posterior of width b_t tau_j, far below f's scale (48 nodes change
 * nothing at 1e-10); 10 stds leave mass below 1e-23 outside the grid. */
#define GRID_POINTS_DEFAULT 1024
#define HERMITE_NODES_DEFAULT 24
#define HALFWIDTH_STDS_DEFAULT 10.0
#define QUANTILE_POINTS_PER_GRID 16
/* Y-quadrature on [-10, 10]: P(|Y| > 10) = 1.5e-23; cells are split until X_1's quantile moves
 * by at most 1/16 of its smallest component std per cell, at most 4096 parts per cell. */
#define QUADRATURE_HALFWIDTH 10.0
#define QUADRATURE_VALUE_STEP (1.0 / 16.0)
#define QUADRATURE_MAX_SUBCELLS 4096
/* Quantile bracket: component means -+ this many of the largest std (log CDF of a Gaussian is
 * accurate far beyond: the asymptotic series takes over at z < LOG_NDTR_ASYMPTOTIC). */
#define QUANTILE_BRACKET_STDS 40.0
#define QUANTILE_MAX_ITERATIONS 200
/* A Newton step this small (relative to 1 + |q|) means convergence: the next would be below
 * the rounding of the log tail itself. */
#define QUANTILE_STEP_TOLERANCE 1e-15
#define LOG_NDTR_ASYMPTOTIC -37.0
#define MAX_GRID_POINTS ((size_t)1 << 24)
/* Relative accuracy of a mixture tail probability (log-sum-exp of erfc, a few ulps), and the
 * accuracy asked of the transported point before its slope counts (grid_lipschitz). */
#define LIPSCHITZ_TAIL_PRECISION 1e-15
#define LIPSCHITZ_TOLERANCE 1e-8
#define LIPSCHITZ_SECANT_MARGIN 1.1
#define MAX_HERMITE_NODES 512
#define LOG_SQRT_2PI 0.91893853320467274178

cm_theory_grid_options cm_theory_grid_options_default(void) {
    cm_theory_grid_options o = {GRID_POINTS_DEFAULT, HERMITE_NODES_DEFAULT, HALFWIDTH_STDS_DEFAULT,
                                0, 1};
    return o;
}

/* The 1-D law of X_0: k components with normalised log weights, means and variances (borrowed
 * from the cm_law, law.h). */
typedef struct {
    size_t k;
    const double *log_weights, *means, *variances;
} mixture;

/* The mixture of a 1-D law with diagonal components; CM_ERR_DIMENSION otherwise. */
static cm_status mixture_of(mixture *out, const cm_law *law) {
    const double *log_weights, *means, *variances;
    if (cm_law_dim(law) != 1 ||
        cm_law_diagonal_components(law, &log_weights, &means, &variances) != CM_OK) {
        cm_error_clear();
        return cm_error_set(CM_ERR_DIMENSION, "mixture1d: the law has dimension %zu, needs 1",
                            cm_law_dim(law));
    }
    *out = (mixture){cm_law_components(law), log_weights, means, variances};
    return CM_OK;
}

/* ---------------------------------------------------------------- normal and mixture tails */

/* log Phi(z), accurate in both tails. */
static double log_ndtr(double z) {
    if (z > 0.0) return log1p(-0.5 * erfc(z / sqrt(2.0)));
    if (z > LOG_NDTR_ASYMPTOTIC) return log(0.5 * erfc(-z / sqrt(2.0)));
    double z2 = z * z; /* Mills ratio series: Phi(z) = phi(z)/|z| (1 - 1/z^2 + 3/z^4 - ...) */
    return -0.5 * z2 - log(-z) - LOG_SQRT_2PI + log1p(-1.0 / z2 + 3.0 / (z2 * z2));
}

/* A 1-D mixture sum_j exp(log_w_j) N(mu_j, sd_j^2), sd_j > 0 (the law of some X_t). */
typedef struct {
    size_t k;
    const double *log_w;
    double *mu, *sd;
} mix1;

static double log_sum_exp(const double *v, size_t n) {
    double largest = -INFINITY, sum = 0.0;
    for (size_t i = 0; i < n; i++) largest = fmax(largest, v[i]);
    if (largest == -INFINITY) return largest;
    for (size_t i = 0; i < n; i++) sum += exp(v[i] - largest);
    return largest + log(sum);
}

/* log F(q) (upper = 0) or log S(q) = log(1 - F(q)) (upper = 1); terms: k scratch. */
static double mix_log_tail(const mix1 *m, double q, int upper, double *terms) {
    for (size_t j = 0; j < m->k; j++) {
        double z = (q - m->mu[j]) / m->sd[j];
        terms[j] = m->log_w[j] + log_ndtr(upper ? -z : z);
    }
    return log_sum_exp(terms, m->k);
}

static double mix_log_pdf(const mix1 *m, double q, double *terms) {
    for (size_t j = 0; j < m->k; j++) {
        double z = (q - m->mu[j]) / m->sd[j];
        terms[j] = m->log_w[j] - 0.5 * z * z - log(m->sd[j]) - LOG_SQRT_2PI;
    }
    return log_sum_exp(terms, m->k);
}

/* The q with log F(q) = log_p (upper = 0) or log S(q) = log_p (upper = 1): Newton's method on
 * the log tail (slope p / F, or -p / S), kept inside a bracket that every evaluation narrows and
 * replaced by bisection when it would leave it (flat CDF between far modes, underflowing
 * density); stops when a step or the bracket reaches rounding. */
static double mix_quantile(const mix1 *m, double log_p, int upper, double *terms) {
    double lo = INFINITY, hi = -INFINITY, widest = 0.0;
    for (size_t j = 0; j < m->k; j++) {
        lo = fmin(lo, m->mu[j]);
        hi = fmax(hi, m->mu[j]);
        widest = fmax(widest, m->sd[j]);
    }
    lo -= QUANTILE_BRACKET_STDS * widest;
    hi += QUANTILE_BRACKET_STDS * widest;
    double q = 0.5 * (lo + hi);
    for (int i = 0; i < QUANTILE_MAX_ITERATIONS; i++) {
        double value = mix_log_tail(m, q, upper, terms), residual = value - log_p;
        if (residual == 0.0) return q;
        if (upper ? residual > 0.0 : residual < 0.0) lo = q; /* q is left of the quantile */
        else hi = q;
        double slope = exp(mix_log_pdf(m, q, terms) - value) * (upper ? -1.0 : 1.0);
        double next = q - residual / slope;
        if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
        if (next <= lo || next >= hi) return q; /* the bracket is down to adjacent doubles */
        if (fabs(next - q) <= QUANTILE_STEP_TOLERANCE * (1.0 + fabs(q))) return next;
        q = next;
    }
    return q;
}

/* Q(Phi(y)) of the mixture: the quantile at the normal level of y, from the smaller tail. */
static double mix_quantile_normal(const mix1 *m, double y, double *terms) {
    return y <= 0.0 ? mix_quantile(m, log_ndtr(y), 0, terms)
                    : mix_quantile(m, log_ndtr(-y), 1, terms);
}

/* Q_to(F_from(x)): the monotone transport between two 1-D mixtures. */
static double mix_transport(const mix1 *from, const mix1 *to, double x, double *terms) {
    double lower = mix_log_tail(from, x, 0, terms), upper = mix_log_tail(from, x, 1, terms);
    return lower <= upper ? mix_quantile(to, lower, 0, terms) : mix_quantile(to, upper, 1, terms);
}

/* ---------------------------------------------------------------- natural cubic splines */

typedef struct {
    size_t n;
    double x0, h, inverse_h;
    double *f, *m2; /* values and second derivatives at x0 + i h */
} spline;

/* Natural spline: m2[0] = m2[n-1] = 0 and m2[i-1] + 4 m2[i] + m2[i+1] = 6 (f[i+1] - 2 f[i] +
 * f[i-1]) / h^2, by the Thomas algorithm (c: n scratch). */
static void spline_fit(spline *s, double *c) {
    size_t n = s->n;
    s->m2[0] = s->m2[n - 1] = 0.0;
    if (n < 3) return;
    double scale = 6.0 / (s->h * s->h), previous_c = 0.0, previous_d = 0.0;
    for (size_t i = 1; i + 1 < n; i++) {
        double rhs = scale * (s->f[i + 1] - 2.0 * s->f[i] + s->f[i - 1]);
        double pivot = 4.0 - previous_c;
        c[i] = 1.0 / pivot;
        s->m2[i] = (rhs - previous_d) / pivot;
        previous_c = c[i];
        previous_d = s->m2[i];
    }
    for (size_t i = n - 2; i >= 1; i--) {
        s->m2[i] -= c[i] * s->m2[i + 1];
        if (i == 1) break;
    }
}

static double spline_eval(const spline *s, double y) {
    double u = (y - s->x0) * s->inverse_h, h = s->h;
    size_t n = s->n;
    if (u <= 0.0) {
        double slope = (s->f[1] - s->f[0]) / h - h * (2.0 * s->m2[0] + s->m2[1]) / 6.0;
        return s->f[0] + slope * (y - s->x0);
    }
    if (u >= (double)(n - 1)) {
        double slope =
            (s->f[n - 1] - s->f[n - 2]) / h + h * (s->m2[n - 2] + 2.0 * s->m2[n - 1]) / 6.0;
        return s->f[n - 1] + slope * (y - (s->x0 + (double)(n - 1) * h));
    }
    size_t i = (size_t)u;
    if (i > n - 2) i = n - 2;
    double b = u - (double)i, a = 1.0 - b;
    return a * s->f[i] + b * s->f[i + 1] +
           ((a * a * a - a) * s->m2[i] + (b * b * b - b) * s->m2[i + 1]) * h * h / 6.0;
}

/* ---------------------------------------------------------------- the recursion */

/* The posterior of X_0 given X_t = x for the 1-D law, with everything that depends on t only
 * computed once per t: per component, log pi_j - log(v_j) / 2, 1 / (2 v_j), sqrt(abar) m_j, the
 * gain sqrt(abar) l_j / v_j and the posterior std tau_j = sqrt(l_j (1 - abar) / v_j). */
typedef struct {
    size_t k;
    double *base, *half_precision, *centre, *gain, *tau; /* k each, caller storage (5 k) */
} posterior_table;

static void posterior_prepare(posterior_table *p, const mixture *law, double abar,
                              double one_minus) {
    double root = sqrt(abar);
    for (size_t j = 0; j < p->k; j++) {
        double l = law->variances[j], v = abar * l + one_minus;
        p->base[j] = law->log_weights[j] - 0.5 * log(v);
        p->half_precision[j] = 0.5 / v;
        p->centre[j] = root * law->means[j];
        p->gain[j] = root * l / v;
        p->tau[j] = sqrt(l * (one_minus / v));
    }
}

/* Normalised weights w[K] (by log-sum-exp) and posterior means m[K] at x. */
static void posterior_at(const posterior_table *p, const mixture *law, double x, double *w,
                         double *m) {
    double largest = -INFINITY, sum = 0.0;
    for (size_t j = 0; j < p->k; j++) {
        double r = x - p->centre[j];
        w[j] = p->base[j] - p->half_precision[j] * r * r;
        m[j] = law->means[j] + p->gain[j] * r;
        if (w[j] > largest) largest = w[j];
    }
    for (size_t j = 0; j < p->k; j++) {
        w[j] = exp(w[j] - largest);
        sum += w[j];
    }
    for (size_t j = 0; j < p->k; j++) w[j] /= sum;
}

/* Caller storage of 5 k doubles for a table. */
static void posterior_table_at(posterior_table *p, size_t k, double *storage) {
    p->k = k;
    p->base = storage;
    p->half_precision = storage + k;
    p->centre = storage + 2 * k;
    p->gain = storage + 3 * k;
    p->tau = storage + 4 * k;
}

/* Grid of X_t: the outer component means -+ halfwidth component stds. */
static void grid_for(spline *s, const mixture *law, double abar, double one_minus, double halfwidth,
                     size_t n) {
    double lo = INFINITY, hi = -INFINITY;
    for (size_t j = 0; j < law->k; j++) {
        double c = sqrt(abar) * law->means[j], sd = sqrt(abar * law->variances[j] + one_minus);
        lo = fmin(lo, c - halfwidth * sd);
        hi = fmax(hi, c + halfwidth * sd);
    }
    s->n = n;
    s->x0 = lo;
    s->h = (hi - lo) / (double)(n - 1);
    s->inverse_h = 1.0 / s->h;
}

typedef struct {
    size_t n, q, k;
    double *nodes, *weights;   /* q each */
    double *w, *m;             /* k each */
    posterior_table posterior; /* 5 k */
    spline a, b;               /* f_{t-1}, f_t: n values and second derivatives each */
    double *c;                 /* n: spline scratch */
} recursion_work;

/* f_T on the grid of X_T, into *result (points into w's storage). */
static void ideal_ct(const mixture *law, const cm_lhw_schedule *s, double halfwidth,
                     recursion_work *w, spline **result) {
    spline *previous = &w->a, *current = &w->b;
    grid_for(previous, law, exp(s->log_abar[1]), s->one_minus_abar[1], halfwidth, w->n);
    for (size_t g = 0; g < w->n; g++) previous->f[g] = previous->x0 + (double)g * previous->h;
    spline_fit(previous, w->c); /* f_1 = identity: all m2 = 0 */
    for (size_t t = 2; t <= s->T; t++) {
        double a, b, abar = exp(s->log_abar[t]), one_minus = s->one_minus_abar[t];
        cm_theory_ddim_coefficients(s, t, &a, &b);
        grid_for(current, law, abar, one_minus, halfwidth, w->n);
        posterior_prepare(&w->posterior, law, abar, one_minus);
        for (size_t g = 0; g < w->n; g++) {
            double x = current->x0 + (double)g * current->h, value = 0.0;
            posterior_at(&w->posterior, law, x, w->w, w->m);
            for (size_t j = 0; j < law->k; j++) {
                if (w->w[j] == 0.0) continue;
                double centre = a * x + b * w->m[j], spread = b * w->posterior.tau[j], e = 0.0;
                for (size_t i = 0; i < w->q; i++)
                    e += w->weights[i] * spline_eval(previous, centre + spread * w->nodes[i]);
                value += w->w[j] * e;
            }
            current->f[g] = value;
        }
        spline_fit(current, w->c);
        spline *swap = previous;
        previous = current;
        current = swap;
    }
    *result = previous;
}

static cm_status recursion_alloc(recursion_work *w, size_t n, size_t q, size_t k) {
    memset(w, 0, sizeof *w);
    w->n = n;
    w->q = q;
    w->k = k;
    size_t gh = cm_quadrature_gauss_hermite_work(q);
    w->nodes = cm_malloc(2 * q + 7 * k + 5 * n + gh, sizeof(double));
    if (!w->nodes) return cm_error_set(CM_ERR_NOMEM, "mixture1d: grid of %zu points", n);
    w->weights = w->nodes + q;
    w->w = w->weights + q;
    w->m = w->w + k;
    posterior_table_at(&w->posterior, k, w->m + k);
    w->a.f = w->m + 6 * k;
    w->a.m2 = w->a.f + n;
    w->b.f = w->a.m2 + n;
    w->b.m2 = w->b.f + n;
    w->c = w->b.m2 + n;
    return cm_quadrature_gauss_hermite(w->nodes, w->weights, q, w->c + n);
}

/* ---------------------------------------------------------------- W1 by quantiles */

typedef struct {
    double value, weight;
} weighted;

static int compare_weighted(const void *a, const void *b) {
    double x = ((const weighted *)a)->value, y = ((const weighted *)b)->value;
    return (x > y) - (x < y);
}

/* E_Y |F(Y) - G(Y)| by the trapezoid rule on every stride-th node y (density phi at each; m odd
 * so that stride 2 ends on the last node), each cell where F - G changes sign split at the
 * linear root into two triangles. */
static double trapezoid(const double *F, const double *G, const double *y, const double *phi,
                        size_t m, size_t stride) {
    double sum = 0.0;
    for (size_t i = 0; i + stride < m; i += stride) {
        size_t j = i + stride;
        double e0 = F[i] - G[i], e1 = F[j] - G[j], left = 1.0, right = 1.0;
        if ((e0 > 0.0) != (e1 > 0.0) && e0 != 0.0 && e1 != 0.0) {
            left = e0 / (e0 - e1); /* the root's fraction of the cell */
            right = 1.0 - left;
        }
        sum += 0.5 * (y[j] - y[i]) * (phi[i] * fabs(e0) * left + phi[j] * fabs(e1) * right);
    }
    return sum;
}

typedef struct {
    size_t m;
    double *y, *phi, *p, *G, *F; /* nodes, N(0,1) density, node weights, X_1 quantiles at
                                  * Phi(y), map values */
    weighted *sorted;
} quadrature;

/* W1 between the law of F(Y) (F at the nodes) and X_1 (quantiles G at the nodes' levels). If F
 * is not non-decreasing: sort (value, weight) pairs and take X_1's quantile at each pair's
 * mid-level (from the smaller tail). */
static double w1_quantiles(const quadrature *qd, const mix1 *target, double *terms,
                           int *monotone) {
    size_t m = qd->m;
    const double *F = qd->F;
    *monotone = 1;
    for (size_t i = 1; i < m; i++)
        if (F[i] < F[i - 1]) *monotone = 0;
    if (*monotone) /* Richardson: both rules' errors are c h^2 + o(h^2) on nested meshes */
        return (4.0 * trapezoid(F, qd->G, qd->y, qd->phi, m, 1) -
                trapezoid(F, qd->G, qd->y, qd->phi, m, 2)) / 3.0;
    weighted *sorted = qd->sorted;
    for (size_t i = 0; i < m; i++) sorted[i] = (weighted){F[i], qd->p[i]};
    qsort(sorted, m, sizeof *sorted, compare_weighted);
    double below = 0.0, total = 0.0, sum = 0.0;
    for (size_t i = 0; i < m; i++) total += sorted[i].weight;
    for (size_t i = 0; i < m; i++) {
        double lower = below + 0.5 * sorted[i].weight, upper = total - lower;
        double q = lower <= upper ? mix_quantile(target, log(lower / total), 0, terms)
                                  : mix_quantile(target, log(upper / total), 1, terms);
        sum += sorted[i].weight * fabs(sorted[i].value - q);
        below += sorted[i].weight;
    }
    return sum / total;
}

/* Sub-cells of the base cell [y, y + h] whose X_1 quantiles differ by delta (at least 1). */
static size_t subcells(double g0, double g1, double delta) {
    double n = ceil(fabs(g1 - g0) / delta);
    return n < 1.0 ? 1 : n > (double)QUADRATURE_MAX_SUBCELLS ? QUADRATURE_MAX_SUBCELLS : (size_t)n;
}

/* Nodes: m uniform on [-QUADRATURE_HALFWIDTH, QUADRATURE_HALFWIDTH], each cell split evenly so
 * that X_1's quantile G moves by at most delta = QUADRATURE_VALUE_STEP x the smallest component
 * std of X_1 per sub-cell: the quantile function is steep where X_1 has little mass (between
 * modes), and every map compared with it (which approximates the same transport) is steep
 * there too. Every sub-cell is then halved, so that the even nodes form a nested coarse mesh
 * (for Richardson extrapolation). Node weights p (for the sorted path) are phi * width. */
static cm_status quadrature_alloc(quadrature *qd, size_t m, const mix1 *x1, double *terms) {
    memset(qd, 0, sizeof *qd);
    double h = 2.0 * QUADRATURE_HALFWIDTH / (double)(m - 1), delta = INFINITY;
    for (size_t j = 0; j < x1->k; j++) delta = fmin(delta, QUADRATURE_VALUE_STEP * x1->sd[j]);
    double *base = cm_malloc(m, sizeof(double));
    if (!base) return cm_error_set(CM_ERR_NOMEM, "mixture1d: %zu quadrature points", m);
    size_t total = 1;
    for (size_t i = 0; i < m; i++) {
        base[i] = mix_quantile_normal(x1, -QUADRATURE_HALFWIDTH + (double)i * h, terms);
        if (i) total += 2 * subcells(base[i - 1], base[i], delta);
    }
    qd->m = total;
    qd->y = cm_malloc(5 * total, sizeof(double));
    qd->sorted = cm_malloc(total, sizeof(weighted));
    if (!qd->y || !qd->sorted) {
        cm_free(base);
        cm_free(qd->y);
        cm_free(qd->sorted);
        return cm_error_set(CM_ERR_NOMEM, "mixture1d: %zu quadrature points", total);
    }
    qd->phi = qd->y + total;
    qd->p = qd->phi + total;
    qd->G = qd->p + total;
    qd->F = qd->G + total;
    size_t n = 0;
    for (size_t i = 0; i + 1 < m; i++) {
        double y0 = -QUADRATURE_HALFWIDTH + (double)i * h;
        size_t parts = 2 * subcells(base[i], base[i + 1], delta); /* even: nested halves */
        qd->y[n] = y0;
        qd->G[n++] = base[i];
        for (size_t k = 1; k < parts; k++) {
            qd->y[n] = y0 + h * (double)k / (double)parts;
            qd->G[n] = mix_quantile_normal(x1, qd->y[n], terms);
            n++;
        }
    }
    qd->y[n] = QUADRATURE_HALFWIDTH;
    qd->G[n++] = base[m - 1];
    cm_free(base);
    double mass = 0.0;
    for (size_t i = 0; i < total; i++) qd->phi[i] = exp(-0.5 * qd->y[i] * qd->y[i] - LOG_SQRT_2PI);
    for (size_t i = 0; i < total; i++) {
        double width = (i + 1 < total ? qd->y[i + 1] - qd->y[i] : 0.0) +
                       (i ? qd->y[i] - qd->y[i - 1] : 0.0);
        qd->p[i] = 0.5 * width * qd->phi[i];
        mass += qd->p[i];
    }
    for (size_t i = 0; i < total; i++) { /* the rule's mass is 1 - 1.5e-23: renormalise */
        qd->p[i] /= mass;
        qd->phi[i] /= mass;
    }
    return CM_OK;
}

static void quadrature_free(quadrature *qd) {
    cm_free(qd->y);
    cm_free(qd->sorted);
}

/* The law of X_t as a mix1 (mu, sd: k each, caller storage). */
static void law_at(mix1 *out, const mixture *law, double abar, double one_minus, double *mu,
                   double *sd) {
    out->k = law->k;
    out->log_w = law->log_weights;
    out->mu = mu;
    out->sd = sd;
    for (size_t j = 0; j < law->k; j++) {
        mu[j] = sqrt(abar) * law->means[j];
        sd[j] = sqrt(abar * law->variances[j] + one_minus);
    }
}

/* w1_ideal at one discretisation. */
static cm_status ideal_w1(double *out, int *monotone, const mixture *law, const cm_lhw_schedule *s,
                          size_t n, size_t q, size_t m, double halfwidth, const mix1 *x1,
                          double *terms) {
    recursion_work w;
    quadrature qd;
    cm_status status = recursion_alloc(&w, n, q, law->k);
    if (status == CM_OK) status = quadrature_alloc(&qd, m, x1, terms);
    if (status == CM_OK) {
        spline *fT;
        ideal_ct(law, s, halfwidth, &w, &fT);
        for (size_t i = 0; i < qd.m; i++) qd.F[i] = spline_eval(fT, qd.y[i]);
        *out = w1_quantiles(&qd, x1, terms, monotone);
        quadrature_free(&qd);
    }
    cm_free(w.nodes);
    return status;
}

static cm_status check_options(const cm_theory_grid_options *o) {
    if (o->grid_points < 4 || o->grid_points > MAX_GRID_POINTS)
        return cm_error_set(CM_ERR_INVALID, "mixture1d: grid_points %zu not in 4..%zu",
                            o->grid_points, MAX_GRID_POINTS);
    if (o->hermite_nodes < 1 || o->hermite_nodes > MAX_HERMITE_NODES)
        return cm_error_set(CM_ERR_INVALID, "mixture1d: hermite_nodes %zu not in 1..%d",
                            o->hermite_nodes, MAX_HERMITE_NODES);
    if (!(o->halfwidth_stds >= 1.0) || !(o->halfwidth_stds <= 40.0))
        return cm_error_set(CM_ERR_INVALID, "mixture1d: halfwidth_stds %g not in [1, 40]",
                            o->halfwidth_stds);
    if (o->quantile_points > MAX_GRID_POINTS * QUANTILE_POINTS_PER_GRID)
        return cm_error_set(CM_ERR_INVALID, "mixture1d: quantile_points %zu", o->quantile_points);
    return CM_OK;
}

/* log sup of Phi' = p_T(x) / p_1(Phi(x)), Phi = Q_1 o F_T, from two grids:
 *  - the data side: nodes z over the support of X_1, x = Q_T(F_1(z)), log p_T(x) - log p_1(z).
 *    Well conditioned everywhere (X_T has no gaps), and it resolves the narrow peak of Phi'
 *    that sits where X_1 has little mass (between modes), which the noise side meets in a
 *    tiny interval of x.
 *  - the noise side: nodes x over the support of X_T, with Phi(x) from the smaller tail of F_T,
 *    skipping nodes where Phi(x) is not determined in double precision (F_T(x) is known to about
 *    LIPSCHITZ_TAIL_PRECISION relative, which moves Phi(x) by that times min(F, 1 - F) /
 *    p_1(Phi(x)); where this exceeds LIPSCHITZ_TOLERANCE (1 + |Phi|), X_1's CDF is flat to
 *    double precision). Secant slopes between consecutive determined nodes are lower bounds of
 *    the sup too (mean value theorem); if one exceeds every point value by more than
 *    LIPSCHITZ_SECANT_MARGIN, the peak is narrower than both grids: *resolved = 0. */
static double grid_log_lipschitz(const spline *noise, const spline *data, const mix1 *xT,
                                 const mix1 *x1, double *terms, int *resolved) {
    double nodes = -INFINITY, secants = -INFINITY, last_x = NAN, last_phi = NAN;
    for (size_t g = 0; g < data->n; g++) {
        double z = data->x0 + (double)g * data->h;
        double lower = mix_log_tail(x1, z, 0, terms), upper = mix_log_tail(x1, z, 1, terms);
        double x = lower <= upper ? mix_quantile(xT, lower, 0, terms)
                                  : mix_quantile(xT, upper, 1, terms);
        nodes = fmax(nodes, mix_log_pdf(xT, x, terms) - mix_log_pdf(x1, z, terms));
    }
    for (size_t g = 0; g < noise->n; g++) {
        double x = noise->x0 + (double)g * noise->h;
        double lower = mix_log_tail(xT, x, 0, terms), upper = mix_log_tail(xT, x, 1, terms);
        double phi = lower <= upper ? mix_quantile(x1, lower, 0, terms)
                                    : mix_quantile(x1, upper, 1, terms);
        double log_density = mix_log_pdf(x1, phi, terms);
        double spread = LIPSCHITZ_TAIL_PRECISION * exp(fmin(lower, upper) - log_density);
        if (!(spread <= LIPSCHITZ_TOLERANCE * (1.0 + fabs(phi)))) continue;
        nodes = fmax(nodes, mix_log_pdf(xT, x, terms) - log_density);
        if (isfinite(last_x) && phi > last_phi)
            secants = fmax(secants, log((phi - last_phi) / (x - last_x)));
        last_x = x;
        last_phi = phi;
    }
    *resolved = !(secants > nodes + log(LIPSCHITZ_SECANT_MARGIN));
    return fmax(nodes, secants);
}

/* The exact map Q_1 o F_T on the nodes, the DDIM chain, and the Lipschitz constant. */
static cm_status reference_maps(cm_theory_mixture1d_result *out, const mixture *law,
                                const cm_lhw_schedule *s, const cm_theory_grid_options *o,
                                size_t m, const mix1 *x1, const mix1 *xT, double *terms) {
    quadrature qd;
    CM_TRY(quadrature_alloc(&qd, m, x1, terms));
    size_t k = law->k;
    double *w = cm_malloc(7 * k, sizeof(double));
    if (!w) {
        quadrature_free(&qd);
        return cm_error_set(CM_ERR_NOMEM, "mixture1d: posterior");
    }
    double *mean = w + k;
    posterior_table table;
    posterior_table_at(&table, k, mean + k);
    int monotone;
    for (size_t i = 0; i < qd.m; i++) qd.F[i] = mix_transport(xT, x1, qd.y[i], terms);
    out->w1_exact_map = w1_quantiles(&qd, x1, terms, &monotone);
    for (size_t i = 0; i < qd.m; i++) qd.F[i] = qd.y[i];
    for (size_t t = s->T; t >= 2; t--) { /* x_{t-1} = a_t x + b_t D_t(x) */
        double a, b, abar = exp(s->log_abar[t]), one_minus = s->one_minus_abar[t];
        cm_theory_ddim_coefficients(s, t, &a, &b);
        posterior_prepare(&table, law, abar, one_minus);
        for (size_t i = 0; i < qd.m; i++) {
            posterior_at(&table, law, qd.F[i], w, mean);
            double den = 0.0;
            for (size_t j = 0; j < k; j++) den += w[j] * mean[j];
            qd.F[i] = a * qd.F[i] + b * den;
        }
    }
    out->w1_ddim = w1_quantiles(&qd, x1, terms, &monotone);
    spline noise, data;
    grid_for(&noise, law, exp(s->log_abar[s->T]), s->one_minus_abar[s->T], o->halfwidth_stds,
             o->grid_points);
    grid_for(&data, law, exp(s->log_abar[1]), s->one_minus_abar[1], o->halfwidth_stds,
             o->grid_points);
    out->log_lipschitz = grid_log_lipschitz(&noise, &data, xT, x1, terms,
                                            &out->lipschitz_resolved);
    out->lipschitz = exp(out->log_lipschitz);
    cm_free(w);
    quadrature_free(&qd);
    return CM_OK;
}

cm_status cm_theory_mixture1d(cm_theory_mixture1d_result *out, const cm_law *source, size_t T,
                              double c0, double c1, const cm_theory_grid_options *options) {
    if (!out || !source) return cm_error_set(CM_ERR_INVALID, "mixture1d: NULL argument");
    mixture mix;
    CM_TRY(mixture_of(&mix, source));
    const mixture *law = &mix;
    cm_theory_grid_options o = options ? *options : cm_theory_grid_options_default();
    CM_TRY(check_options(&o));
    size_t m = o.quantile_points ? o.quantile_points : QUANTILE_POINTS_PER_GRID * o.grid_points;
    if (m < 16) m = 16;
    cm_lhw_schedule s;
    CM_TRY(cm_lhw_schedule_init(&s, T, c0, c1));
    size_t k = law->k;
    double *memory = cm_malloc(5 * k, sizeof(double));
    if (!memory) {
        cm_lhw_schedule_free(&s);
        return cm_error_set(CM_ERR_NOMEM, "mixture1d: %zu components", k);
    }
    double *terms = memory + 4 * k;
    mix1 x1, xT;
    law_at(&x1, law, exp(s.log_abar[1]), s.one_minus_abar[1], memory, memory + k);
    law_at(&xT, law, exp(s.log_abar[T]), s.one_minus_abar[T], memory + 2 * k, memory + 3 * k);
    out->abar_T = exp(s.log_abar[T]);
    out->refinement_change = NAN;
    cm_status status = ideal_w1(&out->w1_ideal, &out->monotone, law, &s, o.grid_points,
                                o.hermite_nodes, m, o.halfwidth_stds, &x1, terms);
    if (status == CM_OK && o.refine) {
        double refined;
        int monotone;
        status = ideal_w1(&refined, &monotone, law, &s, 2 * o.grid_points, 2 * o.hermite_nodes,
                          2 * m, o.halfwidth_stds, &x1, terms);
        if (status == CM_OK) out->refinement_change = fabs(refined - out->w1_ideal);
    }
    if (status == CM_OK) status = reference_maps(out, law, &s, &o, m, &x1, &xT, terms);
    cm_free(memory);
    cm_lhw_schedule_free(&s);
    return status;
}

cm_status cm_theory_mixture1d_ideal_map(double *out, const cm_law *source, size_t T, double c0,
                                        double c1, const cm_theory_grid_options *options,
                                        const double *x, size_t n) {
    if (!out || !source || (n && !x))
        return cm_error_set(CM_ERR_INVALID, "mixture1d: NULL argument");
    mixture mix;
    CM_TRY(mixture_of(&mix, source));
    const mixture *law = &mix;
    cm_theory_grid_options o = options ? *options : cm_theory_grid_options_default();
    CM_TRY(check_options(&o));
    cm_lhw_schedule s;
    CM_TRY(cm_lhw_schedule_init(&s, T, c0, c1));
    recursion_work w;
    cm_status status = recursion_alloc(&w, o.grid_points, o.hermite_nodes, law->k);
    if (status == CM_OK) {
        spline *fT;
        ideal_ct(law, &s, o.halfwidth_stds, &w, &fT);
        for (size_t i = 0; i < n; i++) out[i] = spline_eval(fT, x[i]);
    }
    cm_free(w.nodes);
    cm_lhw_schedule_free(&s);
    return status;
}
