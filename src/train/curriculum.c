/* curriculum.c: discretisation curricula of [CM] CT and [iCT] and the [iCT] lognormal level
 * distribution ([CM], [iCT], docs/math.md). */
#include <math.h>

#include "cm/train.h"

size_t cm_ct_levels(size_t k, size_t K, size_t s0, size_t s1) {
    double s0d = (double)s0, s1d = (double)s1;
    double fraction = K ? (double)k / (double)K : 1.0;
    double inner = fraction * ((s1d + 1) * (s1d + 1) - s0d * s0d) + s0d * s0d;
    return (size_t)ceil(sqrt(inner) - 1.0) + 1;
}

double cm_ct_target_decay(size_t levels, size_t s0, double mu0) {
    return exp((double)s0 * log(mu0) / (double)levels);
}

size_t cm_ict_levels(size_t k, size_t K, size_t s0, size_t s1) {
    size_t ratio = s1 / s0;
    size_t log2_ratio = 0;
    while (ratio >> (log2_ratio + 1)) log2_ratio++; /* floor(log2(floor(s1 / s0))) */
    size_t K_prime = K / (log2_ratio + 1);
    if (K_prime == 0) K_prime = 1;
    size_t doublings = k / K_prime;
    size_t levels = s1;
    if (doublings < 63 && (s0 << doublings) >> doublings == s0 && (s0 << doublings) < s1)
        levels = s0 << doublings;
    return levels + 1;
}

void cm_ict_level_probabilities(double *out, const double *sigma, size_t N, double p_mean,
                                double p_std) {
    double total = 0.0, scale = 1.0 / (sqrt(2.0) * p_std);
    for (size_t i = 0; i + 1 < N; i++) {
        out[i] = erf((log(sigma[i + 1]) - p_mean) * scale) - erf((log(sigma[i]) - p_mean) * scale);
        total += out[i];
    }
    for (size_t i = 0; i + 1 < N; i++) out[i] /= total;
}

size_t cm_lhw_stage(size_t k, size_t K, size_t T) {
    size_t t = 2 + (size_t)((double)k * (double)(T - 1) / (double)K);
    return t > T ? T : t;
}
