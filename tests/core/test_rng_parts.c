/* test_rng_parts.c: cm_rng_normal_fill_f32_part (rng.h) gives, for every part, the same bits
 * as the whole cm_rng_normal_fill_f32, whatever the split and the generator's state (odd
 * position, a spare normal pending); what lets the trainer draw its noise on several threads
 * (docs/performance.md). Exact comparisons: the values must not change at all. */
#include "cm/rng.h"

#include <string.h>

#include "test.h"

#define PARTS_N 1001 /* odd: the last pair is cut */

/* The generator in several states: fresh fork, after an odd number of words, with a spare. */
static void prepare_state(cm_rng *rng, int state) {
    cm_rng root;
    cm_rng_init(&root, 20261122u);
    cm_rng_fork(rng, &root, 7u);
    if (state == 1) (void)cm_rng_u32(rng);    /* position 1: pairs straddle Philox blocks */
    if (state == 2) (void)cm_rng_normal(rng); /* a spare normal pending */
    if (state == 3) {
        (void)cm_rng_u32(rng);
        (void)cm_rng_normal(rng);
    }
}

static void test_parts_equal_whole(void) {
    static float whole[PARTS_N], parts[PARTS_N];
    const size_t splits[][4] = {{0, 1, 2, 3}, {0, 500, 501, 1000}, {0, 333, 667, 999},
                                {0, 0, 0, 1}, {0, 1, 1000, 1000}, {0, 2, 4, 6}};
    for (int state = 0; state < 4; state++) {
        cm_rng rng, copy;
        prepare_state(&rng, state);
        copy = rng;
        const cm_rng rng_start = rng;
        cm_rng_normal_fill_f32(&rng, whole, PARTS_N);
        for (size_t s = 0; s < sizeof splits / sizeof splits[0]; s++) {
            memset(parts, 0xff, sizeof parts);
            size_t cut[6] = {0, splits[s][1], splits[s][2], splits[s][3], PARTS_N, PARTS_N};
            for (int p = 4; p >= 0; p--) /* in reverse: parts must not depend on each other */
                cm_rng_normal_fill_f32_part(&copy, parts, cut[p], cut[p + 1]);
            CM_CHECK(copy.position == rng_start.position && copy.has_spare == rng_start.has_spare,
                     "state %d: a part fill must not advance the generator", state);
            int same = memcmp(whole, parts, sizeof whole) == 0;
            size_t first_diff = 0;
            while (!same && first_diff < PARTS_N &&
                   memcmp(&whole[first_diff], &parts[first_diff], sizeof(float)) == 0)
                first_diff++;
            CM_CHECK(same, "state %d split %zu: value %zu differs (%.9g vs %.9g)", state, s,
                     first_diff, first_diff < PARTS_N ? whole[first_diff] : 0.0f,
                     first_diff < PARTS_N ? parts[first_diff] : 0.0f);
        }
    }
}

/* Single values anywhere: out[i] alone equals the whole fill's out[i]. */
static void test_single_values(void) {
    static float whole[PARTS_N], one[PARTS_N];
    for (int state = 0; state < 4; state++) {
        cm_rng rng, copy;
        prepare_state(&rng, state);
        copy = rng;
        cm_rng_normal_fill_f32(&rng, whole, PARTS_N);
        int bad = 0;
        for (size_t i = 0; i < PARTS_N; i += 37) {
            cm_rng_normal_fill_f32_part(&copy, one, i, i + 1);
            if (memcmp(&one[i], &whole[i], sizeof(float)) != 0) bad++;
        }
        CM_CHECK(bad == 0, "state %d: %d single values differ from the whole fill", state, bad);
    }
}

/* A long fill from a fresh fork (the trainer's case: whole pairs from a block boundary, the
 * batched Philox path of rng.c) against value-by-value cm_rng_normal, in two parts. */
static void test_long_fill_matches_scalar(void) {
    enum { N = 100000 };
    static float fast[N];
    cm_rng root, rng;
    cm_rng_init(&root, cm_test_seed(11));
    cm_rng_fork(&rng, &root, 3u);
    cm_rng_normal_fill_f32_part(&rng, fast, 0, 40001);
    cm_rng_normal_fill_f32_part(&rng, fast, 40001, N);
    size_t bad = 0, first_bad = N;
    for (size_t i = 0; i < N; i++) {
        float scalar = (float)cm_rng_normal(&rng);
        if (memcmp(&scalar, &fast[i], sizeof scalar) != 0) {
            if (!bad) first_bad = i;
            bad++;
        }
    }
    CM_CHECK(bad == 0, "%zu of %d values differ from cm_rng_normal, first at %zu", bad, N,
             first_bad);
}

const cm_test_case cm_tests_rng_parts[] = {
    {"long_fill_matches_scalar", test_long_fill_matches_scalar},
    {"parts_equal_whole", test_parts_equal_whole},
    {"single_values", test_single_values},
    {NULL, NULL},
};
