/* test_tree.c: the schedule of the tree of comm.h over processes (src/dist/tree.h, white-box),
 * played for every process of R in one address space, as comm_mpi.c plays it over MPI:
 * - the root equals cm_comm_tree_sum over all blocks bit for bit, for every block count 1..40 and
 *   every R <= blocks (powers of two or not, R dividing the block count or not), on values of
 *   wide range so that another order of the additions gives other bits (checked: a left-to-right
 *   sum differs);
 * - every pair of the tree is summed exactly once: in a subtree, by one ADD, or by one SEND
 *   matched by one RECEIVE of its peer; a process never reads a block it does not own;
 * - a process sends and receives at most one node per level (at most ceil(log2 blocks) each);
 * - cm_comm_tree_owner inverts cm_comm_block_range.
 */
#include <stdlib.h>
#include <string.h>

#include "cm/comm.h"
#include "cm/parallel.h"
#include "cm/rng.h"
#include "dist/tree.h"
#include "test.h"

#define MAX_BLOCKS 40
#define MAX_PROCESSES 9
#define COUNT 48 /* elements per gradient */

/* Block b's gradient: values of random sign over 20 binades, so that the order of additions
 * shows in the bits. */
static void fill_block(float *out, uint64_t seed, size_t b) {
    cm_rng root, rng;
    cm_rng_init(&root, seed);
    cm_rng_fork(&rng, &root, b);
    for (size_t i = 0; i < COUNT; i++)
        out[i] = (float)(cm_rng_normal(&rng) * ldexp(1.0, (int)cm_rng_below(&rng, 20) - 10));
}

static void test_owner_inverts_block_range(void) {
    for (size_t blocks = 1; blocks <= MAX_BLOCKS; blocks++)
        for (size_t R = 1; R <= blocks && R <= MAX_PROCESSES; R++)
            for (size_t p = 0; p < R; p++) {
                size_t first, end;
                cm_parallel_range(&first, &end, blocks, p, R);
                CM_CHECK(end > first, "blocks %zu R %zu: process %zu owns nothing", blocks, R, p);
                for (size_t b = first; b < end; b++)
                    CM_CHECK(cm_comm_tree_owner(b, blocks, R) == p,
                             "blocks %zu R %zu: block %zu owner %zu, expected %zu", blocks, R, b,
                             cm_comm_tree_owner(b, blocks, R), p);
            }
}

/* The blocks of each simulated process: its own copies of its blocks, NULL elsewhere. */
typedef struct {
    float *storage;                  /* [MAX_PROCESSES][MAX_BLOCKS][COUNT] */
    float *gradients[MAX_PROCESSES][MAX_BLOCKS];
    float mailbox[MAX_BLOCKS][COUNT]; /* the node sent for the pair whose left block is b */
    size_t posted[MAX_BLOCKS];
} processes;

static void setup(processes *w, size_t blocks, size_t R, uint64_t seed) {
    memset(w->gradients, 0, sizeof w->gradients);
    for (size_t p = 0; p < R; p++) {
        size_t first, end;
        cm_parallel_range(&first, &end, blocks, p, R);
        for (size_t b = first; b < end; b++) {
            w->gradients[p][b] = w->storage + (p * MAX_BLOCKS + b) * COUNT;
            fill_block(w->gradients[p][b], seed, b);
        }
    }
}

/* One level: every process's sends (into the mailbox), then its receives and adds. Returns the
 * pairs summed at this level; counts each process's sends and receives. */
static size_t play_level(processes *w, size_t blocks, size_t R, size_t stride,
                         size_t sends[], size_t receives[]) {
    size_t summed = 0;
    memset(w->posted, 0, sizeof w->posted);
    for (size_t b = 0; b + stride < blocks; b += 2 * stride)
        for (size_t p = 0; p < R; p++) {
            size_t peer = SIZE_MAX;
            if (cm_comm_tree_role(&peer, b, stride, blocks, p, R) != CM_TREE_SEND) continue;
            CM_CHECK(w->gradients[p][b + stride] != NULL, "process %zu sends a block it lacks", p);
            CM_CHECK(cm_comm_tree_owner(b, blocks, R) == peer, "send to the wrong process");
            memcpy(w->mailbox[b], w->gradients[p][b + stride], sizeof w->mailbox[b]);
            w->posted[b]++;
            sends[p]++;
        }
    for (size_t b = 0; b + stride < blocks; b += 2 * stride) {
        size_t roles = 0, receivers = 0;
        for (size_t p = 0; p < R; p++) {
            size_t peer = SIZE_MAX;
            cm_comm_tree_role_kind role = cm_comm_tree_role(&peer, b, stride, blocks, p, R);
            if (role == CM_TREE_ADD) {
                float *pair[2] = {w->gradients[p][b], w->gradients[p][b + stride]};
                CM_CHECK(pair[0] && pair[1], "process %zu adds a block it lacks", p);
                if (pair[0] && pair[1]) cm_comm_tree_sum(pair, 0, 2, COUNT);
                roles++;
            } else if (role == CM_TREE_RECEIVE) {
                float *pair[2] = {w->gradients[p][b], w->mailbox[b]};
                CM_CHECK(w->posted[b] == 1 && cm_comm_tree_owner(b + stride, blocks, R) == peer,
                         "blocks %zu R %zu: receive of pair (%zu, %zu) without its send", blocks,
                         R, b, b + stride);
                if (pair[0]) cm_comm_tree_sum(pair, 0, 2, COUNT);
                roles++, receivers++;
                receives[p]++;
            }
        }
        CM_CHECK(roles <= 1 && w->posted[b] == receivers,
                 "blocks %zu R %zu stride %zu: pair %zu has %zu roles, %zu sends, %zu receives",
                 blocks, R, stride, b, roles, w->posted[b], receivers);
        summed += roles;
    }
    return summed;
}

/* Pairs of the tree that the complete subtrees of all processes sum. */
static size_t subtree_pairs(size_t blocks, size_t R) {
    size_t pairs = 0;
    for (size_t stride = 1; stride < blocks; stride *= 2)
        for (size_t b = 0; b + stride < blocks; b += 2 * stride)
            for (size_t p = 0; p < R; p++) {
                size_t first, end, parent_end = b + 2 * stride < blocks ? b + 2 * stride : blocks;
                cm_parallel_range(&first, &end, blocks, p, R);
                pairs += b >= first && parent_end <= end;
            }
    return pairs;
}

static void test_schedule_gives_the_single_process_bits(void) {
    uint64_t seed = cm_test_seed(20250611);
    processes *w = calloc(1, sizeof *w);
    float *reference_storage = malloc(MAX_BLOCKS * COUNT * sizeof(float));
    w->storage = malloc((size_t)MAX_PROCESSES * MAX_BLOCKS * COUNT * sizeof(float));
    size_t order_shows = 0;
    for (size_t blocks = 1; blocks <= MAX_BLOCKS; blocks++) {
        float *reference[MAX_BLOCKS];
        float sequential[COUNT] = {0};
        for (size_t b = 0; b < blocks; b++) {
            reference[b] = reference_storage + b * COUNT;
            fill_block(reference[b], seed, b);
            for (size_t i = 0; i < COUNT; i++) sequential[i] += reference[b][i];
        }
        cm_comm_tree_sum(reference, 0, blocks, COUNT);
        order_shows += memcmp(sequential, reference[0], sizeof sequential) != 0;
        size_t levels = 0, pairs = blocks - 1;
        while (((size_t)1 << levels) < blocks) levels++;
        for (size_t R = 1; R <= blocks && R <= MAX_PROCESSES; R++) {
            size_t sends[MAX_PROCESSES] = {0}, receives[MAX_PROCESSES] = {0};
            setup(w, blocks, R, seed);
            for (size_t p = 0; p < R; p++) {
                size_t first, end;
                cm_parallel_range(&first, &end, blocks, p, R);
                cm_comm_tree_sum_subtrees(w->gradients[p], first, end, blocks, COUNT);
            }
            size_t summed = subtree_pairs(blocks, R);
            for (size_t stride = 1, level = 0; stride < blocks; stride *= 2, level++) {
                size_t before_sends[MAX_PROCESSES], before_receives[MAX_PROCESSES];
                memcpy(before_sends, sends, sizeof sends);
                memcpy(before_receives, receives, sizeof receives);
                summed += play_level(w, blocks, R, stride, sends, receives);
                for (size_t p = 0; p < R; p++)
                    CM_CHECK(sends[p] - before_sends[p] <= 1 && receives[p] - before_receives[p] <= 1,
                             "blocks %zu R %zu level %zu: process %zu sends %zu, receives %zu",
                             blocks, R, level, p, sends[p] - before_sends[p],
                             receives[p] - before_receives[p]);
            }
            CM_CHECK(summed == pairs, "blocks %zu R %zu: %zu pairs summed, the tree has %zu",
                     blocks, R, summed, pairs);
            CM_CHECK(memcmp(w->gradients[0][0], reference[0], COUNT * sizeof(float)) == 0,
                     "blocks %zu R %zu: the root differs from the single-process tree", blocks, R);
            for (size_t p = 0; p < R; p++)
                CM_CHECK(sends[p] <= levels && receives[p] <= levels,
                         "blocks %zu R %zu: process %zu sends %zu, receives %zu (> %zu levels)",
                         blocks, R, p, sends[p], receives[p], levels);
            CM_CHECK(sends[0] == 0, "blocks %zu R %zu: rank 0 sends", blocks, R);
        }
    }
    CM_CHECK(order_shows >= MAX_BLOCKS - 3,
             "a left-to-right sum equals the tree sum for %zu of %d block counts: the values "
             "do not show the order", MAX_BLOCKS - order_shows, MAX_BLOCKS);
    free(w->storage);
    free(w);
    free(reference_storage);
}

const cm_test_case cm_tests_tree[] = {
    {"owner_inverts_block_range", test_owner_inverts_block_range},
    {"schedule_gives_the_single_process_bits", test_schedule_gives_the_single_process_bits},
    {NULL, NULL},
};
