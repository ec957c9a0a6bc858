/* bench/allocations.h: every allocation of the process counted, by defining glibc's allocation
 * entry points in the benchmark program (the dynamic linker then binds every library's calls,
 * libdnnl's and libstdc++'s included, to these), which pass on to glibc's own (__libc_*).
 * bench_allocations_aligned counts posix_memalign, aligned_alloc and memalign alone: oneDNN's
 * packing and scratch buffers. Include in exactly one file of a program; glibc only.
 */
#ifndef CM_BENCH_ALLOCATIONS_H
#define CM_BENCH_ALLOCATIONS_H

#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>

static atomic_long bench_allocations_all, bench_allocations_aligned;

#if defined(__GLIBC__)
extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *pointer, size_t size);
extern void *__libc_memalign(size_t alignment, size_t size);

void *malloc(size_t size) {
    atomic_fetch_add(&bench_allocations_all, 1);
    return __libc_malloc(size);
}
void *calloc(size_t count, size_t size) {
    atomic_fetch_add(&bench_allocations_all, 1);
    return __libc_calloc(count, size);
}
void *realloc(void *pointer, size_t size) {
    atomic_fetch_add(&bench_allocations_all, 1);
    return __libc_realloc(pointer, size);
}
static void *bench_aligned(size_t alignment, size_t size) {
    atomic_fetch_add(&bench_allocations_all, 1);
    atomic_fetch_add(&bench_allocations_aligned, 1);
    return __libc_memalign(alignment, size);
}
int posix_memalign(void **out, size_t alignment, size_t size) {
    void *pointer = bench_aligned(alignment, size);
    if (!pointer) return ENOMEM;
    *out = pointer;
    return 0;
}
void *aligned_alloc(size_t alignment, size_t size) { return bench_aligned(alignment, size); }
void *memalign(size_t alignment, size_t size) { return bench_aligned(alignment, size); }
#endif

#endif
