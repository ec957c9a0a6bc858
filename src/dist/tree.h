/* tree.h (private to src/dist): the tree of comm.h split over processes that own contiguous
 * block ranges (cm_comm_block_range), as a schedule any implementation of reduce_blocks follows.
 *
 * A node (b, s) of the tree, b a multiple of s (a power of two), is the sum of blocks
 * [b, min(b + s, blocks)); the pair (b, b + s), b a multiple of 2 s and b + s < blocks, makes node
 * (b, 2 s) = node (b, s) + node (b + s, s). Node (b, s) is held by the owner of block b. A process
 * first sums its complete subtrees (nodes lying inside its range: cm_comm_tree_sum_subtrees),
 * then walks the levels s = 1, 2, 4, ... in order and plays its role in each remaining pair
 * (cm_comm_tree_role): add two nodes it holds, receive the right node from its owner and add it,
 * or send its right node to the left node's owner. The root (0, .) ends on the owner of block 0
 * (rank 0). Every addition is the single-process tree's, with the same operands: the same bits.
 * A process plays at most one receive and one send per level (the pairs of a level are disjoint
 * intervals, and only the pairs around its two range ends cross processes).
 */
#ifndef CM_DIST_TREE_H
#define CM_DIST_TREE_H

#include <stddef.h>

typedef enum {
    CM_TREE_NONE,    /* the pair does not involve this process, or was summed in a subtree */
    CM_TREE_ADD,     /* both nodes held here: add the right into the left */
    CM_TREE_RECEIVE, /* the left node held here: receive the right from *peer and add it */
    CM_TREE_SEND,    /* the right node held here: send it to *peer */
} cm_comm_tree_role_kind;

/* The process of `processes` that owns block `block` of `blocks` (the inverse of
 * cm_parallel_range; requires processes <= blocks). */
size_t cm_comm_tree_owner(size_t block, size_t blocks, size_t processes);

/* The role of process `rank` in the pair (b, b + stride) (b a multiple of 2 stride,
 * b + stride < blocks) once its complete subtrees are summed; *peer is the other process for
 * CM_TREE_RECEIVE and CM_TREE_SEND. */
cm_comm_tree_role_kind cm_comm_tree_role(size_t *peer, size_t b, size_t stride, size_t blocks,
                                         size_t rank, size_t processes);

/* Sum the complete subtrees of blocks [first, end): the largest nodes of the tree over `blocks`
 * that lie inside the range, each with cm_comm_tree_sum (node (b, s) lands in gradients[b]). */
void cm_comm_tree_sum_subtrees(float *const *gradients, size_t first, size_t end, size_t blocks,
                               size_t count);

#endif
