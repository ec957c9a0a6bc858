/* test_rng.c: Philox4x32-10 known answers (Random123 kat_vectors), fork independence,
 * and the moments of the uniform and normal draws within sample-size tolerances. */
#include "cm/rng.h"

#include <math.h>
#include <string.h>

#include "test.h"

static void test_philox_known_answers(void) {
    /* Random123 kat_vectors: counter, key -> output */
    const uint32_t cases[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d,
         0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09,
         0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int c = 0; c < 3; c++) {
        uint32_t out[4];
        cm_philox4x32(out, cases[c], cases[c] + 4);
        for (int i = 0; i < 4; i++)
            CM_CHECK(out[i] == cases[c][6 + i], "case %d word %d: %08x, expected %08x", c, i, out[i],
                     cases[c][6 + i]);
    }
}

static void test_same_seed_same_stream(void) {
    cm_rng a, b;
    cm_rng_init(&a, 42);
    cm_rng_init(&b, 42);
    for (int i = 0; i < 1000; i++) CM_CHECK(cm_rng_u32(&a) == cm_rng_u32(&b), "draw %d differs", i);
    cm_rng_init(&b, 43);
    cm_rng_init(&a, 42);
    int equal = 0;
    for (int i = 0; i < 1000; i++) equal += cm_rng_u32(&a) == cm_rng_u32(&b);
    CM_CHECK(equal < 5, "seeds 42 and 43 agree on %d of 1000 words", equal);
}

static void test_fork_streams_differ_and_are_stable(void) {
    cm_rng root, child_a, child_b, child_a_again;
    cm_rng_init(&root, 7);
    cm_rng_fork(&child_a, &root, 1);
    cm_rng_fork(&child_b, &root, 2);
    cm_rng_u32(&root); /* the parent's position does not change its children */
    cm_rng_fork(&child_a_again, &root, 1);
    int equal = 0;
    for (int i = 0; i < 1000; i++) {
        uint32_t a = cm_rng_u32(&child_a);
        equal += a == cm_rng_u32(&child_b);
        CM_CHECK(a == cm_rng_u32(&child_a_again), "fork not reproducible at draw %d", i);
    }
    CM_CHECK(equal < 5, "children 1 and 2 agree on %d of 1000 words", equal);
}

static void test_uniform_and_normal_moments(void) {
    cm_rng rng;
    cm_rng_init(&rng, cm_test_seed(2024));
    const int n = 200000;
    double sum = 0, sum2 = 0, nsum = 0, nsum2 = 0, nsum4 = 0;
    double min = 1, max = 0;
    for (int i = 0; i < n; i++) {
        double u = cm_rng_uniform(&rng);
        sum += u;
        sum2 += u * u;
        if (u < min) min = u;
        if (u > max) max = u;
        double z = cm_rng_normal(&rng);
        nsum += z;
        nsum2 += z * z;
        nsum4 += z * z * z * z;
    }
    CM_CHECK(min > 0 && max < 1, "uniform left (0, 1): min %g max %g", min, max);
    /* 5-sigma tolerances: sd of the mean of U is sqrt(1/12 / n); of mean Z^2 is sqrt(2 / n). */
    CM_CHECK_CLOSE(sum / n, 0.5, 5 * sqrt(1.0 / 12 / n), "uniform mean");
    CM_CHECK_CLOSE(sum2 / n, 1.0 / 3, 5 * sqrt(4.0 / 45 / n), "uniform second moment");
    CM_CHECK_CLOSE(nsum / n, 0.0, 5 * sqrt(1.0 / n), "normal mean");
    CM_CHECK_CLOSE(nsum2 / n, 1.0, 5 * sqrt(2.0 / n), "normal variance");
    CM_CHECK_CLOSE(nsum4 / n, 3.0, 5 * sqrt(96.0 / n), "normal fourth moment");
}

static void test_below_is_unbiased(void) {
    cm_rng rng;
    cm_rng_init(&rng, cm_test_seed(5));
    int counts[3] = {0, 0, 0};
    const int n = 30000;
    for (int i = 0; i < n; i++) {
        uint64_t v = cm_rng_below(&rng, 3);
        CM_CHECK(v < 3, "below(3) gave %llu", (unsigned long long)v);
        if (v < 3) counts[v]++;
    }
    for (int k = 0; k < 3; k++)
        CM_CHECK_CLOSE(counts[k], n / 3.0, 5 * sqrt(n * (1.0 / 3) * (2.0 / 3)), "count of value");
}

const cm_test_case cm_tests_rng[] = {
    {"philox_known_answers", test_philox_known_answers},
    {"same_seed_same_stream", test_same_seed_same_stream},
    {"fork_streams_differ_and_are_stable", test_fork_streams_differ_and_are_stable},
    {"uniform_and_normal_moments", test_uniform_and_normal_moments},
    {"below_is_unbiased", test_below_is_unbiased},
    {NULL, NULL},
};
