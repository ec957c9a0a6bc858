/* alloc.h: the one allocation wrapper of the library.
 *
 * Every allocation in src/ goes through cm_malloc/cm_calloc/cm_free so that tests can make the
 * k-th allocation fail (cm_alloc_fail_after) and check that constructors return CM_ERR_NOMEM
 * and leak nothing (SQLite/libgit2 style). Sizes are checked for overflow (count * size).
 */
#ifndef CM_ALLOC_H
#define CM_ALLOC_H

#include <stddef.h>

/* malloc(count * size), or NULL on overflow or failure. Free with cm_free. */
void *cm_malloc(size_t count, size_t size);
/* calloc(count, size), or NULL on overflow or failure. Free with cm_free. */
void *cm_calloc(size_t count, size_t size);
/* free(pointer); NULL is allowed. */
void cm_free(void *pointer);

/* Testing hook: the next `successes` allocations succeed, every later one fails, until
 * cm_alloc_fail_after(-1) restores normal behaviour. Not thread-safe (tests only). */
void cm_alloc_fail_after(long successes);
/* Number of live allocations made through the wrapper (tests use it to detect leaks). */
long cm_alloc_live_count(void);

#endif
