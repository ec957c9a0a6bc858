/* parallel.c: the persistent thread pool of parallel.h.
 *
 * Workers wait for a new job: first by spinning for a short while (a training step starts
 * several jobs a few microseconds apart, and waking a sleeping thread costs tens of
 * microseconds), then asleep on a condition variable (so an idle pool costs nothing). Thread k
 * (the caller is 0) first claims tasks k, k + n, ... (a fixed assignment keeps each row block on
 * the core whose cache holds it), then any task still unclaimed; the caller returns once all
 * tasks are done. Which thread runs a task can therefore change, but what a task computes
 * cannot (the caller's split is fixed), so results do not change either; and a worker that the
 * system has descheduled (a machine shared with other jobs) never holds the caller up: the
 * caller runs the tasks it has not claimed.
 *
 * Publishing a job is a seqlock: the caller makes the job number odd, waits until no worker is
 * still inside the previous job's fields, writes the new ones, and makes the number even; a
 * worker marks itself active before reading the number and backs off while it is odd.
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
/* While spinning, give the core away this often (on a machine shared with other processes a
 * spinning thread would otherwise hold the core that the thread it waits for needs; measured
 * on such a machine: with the yields a job of two 140 us tasks took 195-220 us, without them
 * 190-360 us). */
#define CM_PARALLEL_YIELD_EVERY 1024

/* Tasks claimed by flag (the rest, rare, from a counter). */
#define CM_PARALLEL_CLAIMS 256

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
    atomic_ulong generation; /* job number, odd while the caller writes a job */
    atomic_int active;       /* workers reading the current job's fields */
    atomic_uchar claimed[CM_PARALLEL_CLAIMS]; /* tasks below CM_PARALLEL_CLAIMS: taken */
    atomic_size_t next;      /* tasks from CM_PARALLEL_CLAIMS on: next to take */
    atomic_size_t done;      /* tasks finished */
    int stop;                /* written before a publish, read after it */
    unsigned long start_generation; /* job number when the workers were started */
    cm_parallel_task run;
    void *context;
    size_t tasks;
} pool = {.threads = 1, .lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};

static void run_task(size_t t) {
    pool.run(pool.context, t);
    atomic_fetch_add_explicit(&pool.done, 1, memory_order_release);
}

/* Claim and run tasks of the current job until none is left: thread `self`'s own first. */
static void run_tasks(size_t self) {
    size_t flagged = pool.tasks < CM_PARALLEL_CLAIMS ? pool.tasks : CM_PARALLEL_CLAIMS;
    for (size_t t = self; t < flagged; t += pool.threads)
        if (!atomic_exchange(&pool.claimed[t], 1)) run_task(t);
    for (size_t t = 0; t < flagged; t++)
        if (!atomic_exchange(&pool.claimed[t], 1)) run_task(t);
    for (;;) {
        size_t t = CM_PARALLEL_CLAIMS + atomic_fetch_add(&pool.next, 1);
        if (t >= pool.tasks) return;
        run_task(t);
    }
}

/* A published job other than `seen`: the job number differs and is even. */
static int job_ready(unsigned long seen, unsigned long *out) {
    unsigned long now = atomic_load_explicit(&pool.generation, memory_order_acquire);
    *out = now;
    return now != seen && !(now & 1);
}

/* Wait for a published job other than `seen`: spin (yielding now and then), then sleep. */
static unsigned long wait_for_job(unsigned long seen) {
    unsigned long now;
    for (int spin = 0; spin < CM_PARALLEL_SPINS; spin++) {
        if (job_ready(seen, &now)) return now;
        cpu_relax();
        if (spin % CM_PARALLEL_YIELD_EVERY == CM_PARALLEL_YIELD_EVERY - 1) sched_yield();
    }
    pthread_mutex_lock(&pool.lock);
    while (!job_ready(seen, &now)) pthread_cond_wait(&pool.wake, &pool.lock);
    pthread_mutex_unlock(&pool.lock);
    return now;
}

static void *worker_main(void *argument) {
    size_t self = (size_t)(uintptr_t)argument;
    /* the job number when the pool was started: a job published before this thread first
     * runs must still be seen as new */
    unsigned long seen = pool.start_generation;
    for (;;) {
        unsigned long ready = wait_for_job(seen);
        atomic_fetch_add(&pool.active, 1); /* then check the number again (seq_cst: see top) */
        if (atomic_load(&pool.generation) != ready) { /* the caller began the next job */
            atomic_fetch_sub(&pool.active, 1);
            continue;
        }
        seen = ready;
        if (pool.stop) {
            atomic_fetch_sub(&pool.active, 1);
            return NULL;
        }
        run_tasks(self);
        atomic_fetch_sub(&pool.active, 1);
    }
}

/* Publish a job (or a stop): the fields are written between the odd and the even number. */
static void publish(cm_parallel_task run, void *context, size_t tasks, int stop) {
    atomic_fetch_add(&pool.generation, 1); /* odd */
    while (atomic_load(&pool.active) != 0) cpu_relax();
    pool.run = run;
    pool.context = context;
    pool.tasks = tasks;
    pool.stop = stop;
    for (size_t t = 0; t < tasks && t < CM_PARALLEL_CLAIMS; t++) atomic_store(&pool.claimed[t], 0);
    atomic_store(&pool.next, 0);
    atomic_store(&pool.done, 0);
    pthread_mutex_lock(&pool.lock);
    atomic_fetch_add(&pool.generation, 1); /* even: published */
    pthread_cond_broadcast(&pool.wake);
    pthread_mutex_unlock(&pool.lock);
}

static void stop_workers(void) {
    if (pool.threads <= 1) return;
    publish(NULL, NULL, 0, 1);
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
    pool.start_generation = atomic_load(&pool.generation);
    for (size_t i = 1; i < threads; i++) {
        if (pthread_create(&pool.workers[i], NULL, worker_main, (void *)(uintptr_t)i) != 0) {
            pool.threads = i; /* the ones started so far */
            stop_workers();
            return cm_error_set(CM_ERR_NOMEM, "cannot start thread %zu of %zu", i + 1, threads);
        }
        pool.threads = i + 1;
    }
    return CM_OK;
}

size_t cm_parallel_threads(void) { return pool.threads; }

/* Every task runs with OpenBLAS on one thread, on the pool or on the caller alone: OpenBLAS's
 * threaded products round differently, so a row block would otherwise get other bits when it
 * runs alone (one block, one pool thread, one process's single block of several) than among
 * others. Returns OpenBLAS's count to restore (0: nothing to restore). */
static int pin_blas(void) {
    int blas_threads = openblas_get_num_threads ? openblas_get_num_threads() : 1;
    if (blas_threads <= 1 || !openblas_set_num_threads) return 0;
    openblas_set_num_threads(1);
    return blas_threads;
}

static void unpin_blas(int blas_threads) {
    if (blas_threads > 1) openblas_set_num_threads(blas_threads);
}

static void run_inline(cm_parallel_task run, void *context, size_t tasks) {
    int blas_threads = pin_blas();
    for (size_t t = 0; t < tasks; t++) run(context, t);
    unpin_blas(blas_threads);
}

void cm_parallel_for(cm_parallel_task run, void *context, size_t tasks) {
    if (pool.threads <= 1 || tasks <= 1) {
        run_inline(run, context, tasks);
        return;
    }
    int blas_threads = pin_blas();
    publish(run, context, tasks, 0);
    run_tasks(0);
    for (unsigned spin = 0; atomic_load_explicit(&pool.done, memory_order_acquire) != tasks; spin++) {
        cpu_relax();
        /* a worker running a task may have lost its core to another process: let it have ours */
        if (spin % CM_PARALLEL_YIELD_EVERY == CM_PARALLEL_YIELD_EVERY - 1) sched_yield();
    }
    unpin_blas(blas_threads);
}

void cm_parallel_for_sized(cm_parallel_task run, void *context, size_t tasks, size_t work) {
    if (work >= CM_PARALLEL_MIN_WORK) {
        cm_parallel_for(run, context, tasks);
        return;
    }
    run_inline(run, context, tasks);
}

void cm_parallel_range(size_t *first, size_t *end, size_t count, size_t part, size_t parts) {
    size_t base = count / parts, extra = count % parts;
    *first = part * base + (part < extra ? part : extra);
    *end = *first + base + (part < extra ? 1 : 0);
}
