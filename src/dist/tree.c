/* tree.c: the schedule of the tree of comm.h over processes with contiguous block ranges
 * (tree.h): who owns a block, the role of a process in each pair of the tree, and the sums of a
 * process's complete subtrees. No communication here: implementations (comm_mpi.c) move the
 * nodes; tests/dist/test_tree.c plays the schedule for every process in one and checks the bits.
 */
#include "dist/tree.h"

#include "cm/comm.h"
#include "cm/parallel.h"

size_t cm_comm_tree_owner(size_t block, size_t blocks, size_t processes) {
    size_t base = blocks / processes, extra = blocks % processes, larger = base + 1;
    if (block < extra * larger) return block / larger; /* the first `extra` ranges hold one more */
    return extra + (block - extra * larger) / base;
}

cm_comm_tree_role_kind cm_comm_tree_role(size_t *peer, size_t b, size_t stride, size_t blocks,
                                         size_t rank, size_t processes) {
    size_t first, end, parent_end = b + 2 * stride < blocks ? b + 2 * stride : blocks;
    cm_parallel_range(&first, &end, blocks, rank, processes);
    if (b >= first && parent_end <= end) return CM_TREE_NONE; /* inside a complete subtree */
    size_t left = cm_comm_tree_owner(b, blocks, processes);
    size_t right = cm_comm_tree_owner(b + stride, blocks, processes);
    if (left == rank && right == rank) return CM_TREE_ADD;
    if (left == rank) {
        *peer = right;
        return CM_TREE_RECEIVE;
    }
    if (right == rank) {
        *peer = left;
        return CM_TREE_SEND;
    }
    return CM_TREE_NONE;
}

void cm_comm_tree_sum_subtrees(float *const *gradients, size_t first, size_t end, size_t blocks,
                               size_t count) {
    size_t b = first;
    while (b < end) {
        /* Grow node (b, s) while its parent (b, 2 s) starts at b and stays inside the range;
         * once b + s reaches the last block the node is [b, blocks) at every larger s. */
        size_t s = 1;
        while (b % (2 * s) == 0 && b + s < blocks &&
               (b + 2 * s < blocks ? b + 2 * s : blocks) <= end)
            s *= 2;
        size_t node_end = b + s < blocks ? b + s : blocks;
        cm_comm_tree_sum(gradients, b, node_end, count);
        b = node_end;
    }
}
