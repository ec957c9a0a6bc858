/* parallel.c: the persistent thread pool of parallel.h.
 *
 * Workers wait for a new job number: first by spinning for a short while (a training step
 * starts several jobs a few microseconds apart, and waking a sleeping thread costs tens of
 * microseconds), then asleep on a condition variable (so an idle pool costs nothing). The caller
 * runs its own share of the tasks and then waits for the workers. Task i always goes to thread
 * i % threads: a static partition, no work stealing, so which thread computes what is fixed.
 */
#include "cm/parallel.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>

/* OpenBLAS's thread-count controls, weak so that any other CBLAS still links (then a no-op). */
extern int openblas_get_num_threads(void) __attribute__((weak));
extern void openblas_set_num_threads(int threads) __attribute__((weak));

/* Spins before a worker sleeps (a pause is some tens of cycles: of the order of a millisecond,
 * longer than the serial gaps of a training step, short enough to idle politely). */
#define CM_PARALLEL_SPINS (1 << 15)

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static struct {
    size_t threads; /* including the caller */
    pthread_t workers[CM_PARALLEL_MAX_THREADS];
    pthread_mutex_t lock;
    pthread_cond_t wake;
    atomic_ulong generation; /* job number; a change means "new job" (or stop) */
    atomic_size_t pending;   /* workers that have not finished the current job */
    int stop;                /* read under the lock or after a generation change */
    unsigned long start_generation; /* generation when the workers were started */
    cm_parallel_task run;
    void *context;
    size_t tasks;
} pool = {.threads = 1, .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static void *worker_main(void *argument) {
    size_t id = (size_t)(uintptr_t)argument;
    /* the job number when the pool was started: a job announced before this thread first
     * runs must still be seen as new */
    unsigned long seen = pool.start_generation;
    for (;;) {
        unsigned long now = seen;
        for (int spin = 0; spin < CM_PARALLEL_SPINS && now == seen; spin++) {
            cpu_relax();
            now = atomic_load_explicit(&pool.generation, memory_order_acquire);
        }
        if (now == seen) {
            pthread_mutex_lock(&pool.lock);
            while ((now = atomic_load_explicit(&pool.generation, memory_order_acquire)) == seen)
                pthread_cond_wait(&pool.wake, &pool.lock);
            pthread_mutex_unlock(&pool.lock);
        }
        seen = now;
        if (pool.stop) return NULL;
        for (size_t t = id; t < pool.tasks; t += pool.threads) pool.run(pool.context, t);
        atomic_fetch_sub_explicit(&pool.pending, 1, memory_order_acq_rel);
    }
}

/* Publish a job (or a stop) to every worker. */
static void announce(void) {
    pthread_mutex_lock(&pool.lock);
    atomic_fetch_add_explicit(&pool.generation, 1, memory_order_acq_rel);
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
}

static void stop_workers(void) {
    if (pool.threads <= 1) return;
    pool.stop = 1;
    announce();
    for (size_t i = 1; i < pool.threads; i++) pthread_join(pool.workers[i], NULL);
    pool.stop = 0;
    pool.threads = 1;
}

cm_status cm_parallel_set_threads(size_t threads) {
    if (threads < 1 || threads > CM_PARALLEL_MAX_THREADS)
        return cm_error_set(CM_ERR_INVALID, "threads %zu out of [1, %d]", threads,
                            CM_PARALLEL_MAX_THREADS);
    if (threads == pool.threads) return CM_OK;
    stop_workers();
    pool.tasks = 0;
    /* workers read pool.threads for their stride: set it before any starts */
    pool.threads = threads;
    pool.start_generation = atomic_load(&pool.generation);
    for (size_t i = 1; i < threads; i++) {
        if (pthread_create(&pool.workers[i], NULL, worker_main, (void *)(uintptr_t)i) != 0) {
            pool.threads = i; /* the ones started so far */
            stop_workers();
            return cm_error_set(CM_ERR_NOMEM, "cannot start thread %zu of %zu", i + 1, threads);
        }
    }
    return CM_OK;
}

size_t cm_parallel_threads(void) { return pool.threads; }

void cm_parallel_for(cm_parallel_task run, void *context, size_t tasks) {
    if (pool.threads <= 1 || tasks <= 1) {
        for (size_t t = 0; t < tasks; t++) run(context, t);
        return;
    }
    int blas_threads = openblas_get_num_threads ? openblas_get_num_threads() : 1;
    if (blas_threads > 1 && openblas_set_num_threads) openblas_set_num_threads(1);
    pool.run = run;
    pool.context = context;
    pool.tasks = tasks;
    atomic_store_explicit(&pool.pending, pool.threads - 1, memory_order_release);
    announce();
    for (size_t t = 0; t < tasks; t += pool.threads) run(context, t);
    for (unsigned spin = 0; atomic_load_explicit(&pool.pending, memory_order_acquire) != 0; spin++) {
        cpu_relax();
        if (spin % 4096 == 4095) sched_yield(); /* a worker may have lost its core */
    }
    if (blas_threads > 1 && openblas_set_num_threads) openblas_set_num_threads(blas_threads);
}

void cm_parallel_range(size_t *first, size_t *end, size_t count, size_t part, size_t parts) {
    size_t base = count / parts, extra = count % parts;
    *first = part * base + (part < extra ? part : extra);
    *end = *first + base + (part < extra ? 1 : 0);
}
