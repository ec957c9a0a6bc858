/* parallel.h: the library's threads: a small persistent pool that runs the data-parallel parts
 * of training and sampling (the two halves of a batch through the MLP, the optimiser's
 * element-wise loops) with a static partition, so that results never depend on which thread
 * ran which piece.
 *
 * Determinism: callers split work into a FIXED number of tasks that does not depend on the
 * thread count (cm_parallel_for runs task i on thread i mod threads); every task writes its own
 * outputs, and any sum across tasks is done afterwards in task order. So a result is the same
 * bit for bit with 1, 2 or 64 threads (see docs/performance.md).
 *
 * BLAS: while a cm_parallel_for with more than one thread runs, the linked OpenBLAS is held at
 * one thread (each task calls GEMM on its own core) and restored afterwards; outside, OpenBLAS
 * keeps whatever count the caller set. The pool is process-wide state (like OpenBLAS's own):
 * set it once at start-up from one thread, and do not nest cm_parallel_for calls.
 */
#ifndef CM_PARALLEL_H
#define CM_PARALLEL_H

#include <stddef.h>

#include "cm/status.h"

#define CM_PARALLEL_MAX_THREADS 64

/* Use `threads` threads (1..CM_PARALLEL_MAX_THREADS; 1 = no worker, everything on the caller's
 * thread, the default). Starts or stops workers. CM_ERR_INVALID out of range; CM_ERR_NOMEM (or
 * CM_ERR_UNSUPPORTED) if a thread cannot be started, in which case the pool keeps 1 thread. */
cm_status cm_parallel_set_threads(size_t threads);
size_t cm_parallel_threads(void);

/* run(context, i) for every i < tasks; task i runs on thread i % threads (thread 0 is the
 * caller). Returns when all tasks are done. Allocates nothing. */
typedef void (*cm_parallel_task)(void *context, size_t task);
void cm_parallel_for(cm_parallel_task run, void *context, size_t tasks);

/* cm_parallel_for if `work` (element operations, roughly) is worth handing tasks to other threads
 * (>= CM_PARALLEL_MIN_WORK), else the tasks in order on the caller's thread: the same results,
 * since a task's arithmetic does not depend on where it runs. A hand-off costs microseconds
 * (much more on a machine shared with other processes). */
#define CM_PARALLEL_MIN_WORK ((size_t)1 << 18)
void cm_parallel_for_sized(cm_parallel_task run, void *context, size_t tasks, size_t work);

/* Row range [*first, *end) of part `part` of `count` rows split into `parts` near-equal parts
 * (the first count % parts parts get one more). */
void cm_parallel_range(size_t *first, size_t *end, size_t count, size_t part, size_t parts);

#endif
