/* bound.h: the terms of Theorem 1 of [LHW] (docs/theory.md) as numbers, and the T its corollary
 * asks for.
 *
 *     W_1( f_T(Y), X_1 ) <= C_1 L_f^3 d^{5/2} log^5 T / T + eps + eps_F,     Y ~ N(0, I_d)
 *
 * C_1 is an unspecified universal constant of the paper: it is a parameter here (default 1,
 * CM_BOUND_C1_DEFAULT) and every output that uses it says so. The rate term's shape
 * log^5 T / T is not monotone: it rises for T < e^5 (about 148.4) and falls after, so "the T
 * the corollary asks for" is read as the smallest T from which on the rate term stays at or
 * below the target (for all larger T too), found by bisection on the falling branch.
 */
#ifndef CM_BOUND_H
#define CM_BOUND_H

#include <stddef.h>

#include "cm/status.h"

/* C_1 of [LHW] Theorem 1 is unknown; 1 only makes the shape visible (docs/theory.md). */
#define CM_BOUND_C1_DEFAULT 1.0
/* log^5 T / T has its maximum at T = e^5 (derivative (5 - log T) log^4 T / T^2). */
#define CM_BOUND_RATE_PEAK_T 148.4131591025766

typedef struct {
    double T, d, lipschitz, eps, eps_F, C1; /* the inputs */
    double rate;  /* C_1 L_f^3 d^{5/2} log^5 T / T */
    double total; /* rate + eps + eps_F */
} cm_bound_terms;

/* The terms of Theorem 1 for T >= 2, d >= 1, lipschitz > 0, eps >= 0, eps_F >= 0, C1 > 0
 * (all finite). */
cm_status cm_bound_compute(cm_bound_terms *out, double T, double d, double lipschitz, double eps,
                           double eps_F, double C1);

/* The shape log^5 T / T (T >= 1). */
double cm_bound_rate_shape(double T);

/* The smallest real T >= 2 such that the rate term C_1 L_f^3 d^{5/2} log^5 T' / T' <= target for
 * every T' >= T (target > 0 finite). When the target is at least the rate's maximum, that is 2.
 * The corollary's choice is target = eps + eps_F, which makes W_1 <= 2 (eps + eps_F).
 * Solved by bisection in log T to relative precision 1e-12; *out may be astronomically large
 * (it is a double, not a size_t); CM_ERR_INVALID beyond 1e300. */
cm_status cm_bound_required_T(double *out, double target, double d, double lipschitz, double C1);

#endif
