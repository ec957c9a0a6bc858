/* io_file.c: whole-file reads with a size limit and crash-safe writes (see io.h).
 *
 * Reads go through POSIX open/read so that regular files, pipes and /dev/stdin work alike; the
 * size limit is enforced while reading, before the buffer grows past it. Writes go to a
 * temporary file `.NAME.tmpXXXXXX` in the target's directory (mkstemp), are fsync'ed and then
 * renamed over the target, so readers see either the old file or the complete new one; on any
 * failure the temporary file is removed and the old file is left as it was. A new file gets
 * mode 0644 and a replaced file keeps its mode (reading the umask is not thread-safe).
 */
#include "cm/io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cm/alloc.h"

/* Grow *buffer (holding `used` bytes) to `capacity` bytes; the old buffer is freed. */
static cm_status grow_buffer(char **buffer, size_t used, size_t capacity, const char *path) {
    char *bigger = cm_malloc(capacity, 1);
    if (!bigger) return cm_error_set(CM_ERR_NOMEM, "%s: cannot allocate %zu bytes", path, capacity);
    if (used) memcpy(bigger, *buffer, used);
    cm_free(*buffer);
    *buffer = bigger;
    return CM_OK;
}

/* Capacity for `want` bytes plus the spare byte, capped at max_bytes + 1 and SIZE_MAX. */
static size_t capped_capacity(uint64_t want, uint64_t max_bytes) {
    uint64_t limit = max_bytes < (uint64_t)SIZE_MAX - 1 ? max_bytes + 1 : (uint64_t)SIZE_MAX;
    want = want < (uint64_t)SIZE_MAX - 1 ? want + 1 : (uint64_t)SIZE_MAX;
    return (size_t)(want < limit ? want : limit);
}

/* Read everything from `fd` into a cm_malloc'ed buffer with one spare byte, set to '\0'.
 * `hint` is the expected size (exact for regular files, so they need a single allocation). */
static cm_status read_fd(char **out, size_t *out_size, int fd, size_t hint, uint64_t max_bytes,
                         const char *path) {
    size_t capacity = capped_capacity(hint ? hint : 65536, max_bytes), used = 0;
    char *buffer = NULL;
    cm_status status = grow_buffer(&buffer, 0, capacity, path);
    while (status == CM_OK) {
        int full = used == capacity - 1;
        char probe; /* when full, one byte tells end of file from more data */
        ssize_t got = full ? read(fd, &probe, 1) : read(fd, buffer + used, capacity - 1 - used);
        if (got < 0 && errno == EINTR) continue;
        if (got < 0) status = cm_error_set(CM_ERR_IO, "%s: read failed: %s", path, strerror(errno));
        if (got <= 0) break;
        if (full && used >= max_bytes) {
            status = cm_error_set(CM_ERR_FORMAT, "%s: larger than the limit of %llu bytes", path,
                                  (unsigned long long)max_bytes);
        } else if (full) {
            size_t bigger = capped_capacity((uint64_t)used * 2, max_bytes);
            status = grow_buffer(&buffer, used, bigger, path);
            capacity = bigger;
            if (status == CM_OK) buffer[used] = probe;
            used += 1;
        } else {
            used += (size_t)got;
        }
    }
    if (status != CM_OK) {
        cm_free(buffer);
        return status;
    }
    buffer[used] = '\0';
    *out = buffer;
    *out_size = used;
    return CM_OK;
}

cm_status cm_file_read_all(void **out, size_t *out_size, const char *path, uint64_t max_bytes) {
    *out = NULL;
    *out_size = 0;
    int fd = open(path, O_RDONLY);
    if (fd < 0) return cm_error_set(CM_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat info;
    cm_status status = CM_OK;
    size_t hint = 0;
    if (fstat(fd, &info) != 0) {
        status = cm_error_set(CM_ERR_IO, "%s: cannot stat: %s", path, strerror(errno));
    } else if (S_ISDIR(info.st_mode)) {
        status = cm_error_set(CM_ERR_IO, "%s: is a directory", path);
    } else if (S_ISREG(info.st_mode)) {
        if ((uint64_t)info.st_size > max_bytes)
            status = cm_error_set(CM_ERR_FORMAT, "%s: file is %llu bytes, over the limit of %llu",
                                  path, (unsigned long long)info.st_size,
                                  (unsigned long long)max_bytes);
        hint = (size_t)info.st_size;
    }
    char *buffer = NULL;
    if (status == CM_OK) status = read_fd(&buffer, out_size, fd, hint, max_bytes, path);
    close(fd);
    if (status == CM_OK) *out = buffer;
    return status;
}

/* "dir/.base.tmpXXXXXX" for "dir/base" (cm_malloc'ed), or NULL when out of memory. */
static char *temporary_template(const char *path) {
    const char *slash = strrchr(path, '/');
    size_t dir_length = slash ? (size_t)(slash - path) + 1 : 0;
    const char *base = path + dir_length;
    size_t length = dir_length + 1 + strlen(base) + strlen(".tmpXXXXXX") + 1;
    char *name = cm_malloc(length, 1);
    if (!name) return NULL;
    memcpy(name, path, dir_length);
    name[dir_length] = '.';
    strcpy(name + dir_length + 1, base);
    strcat(name, ".tmpXXXXXX");
    return name;
}

static cm_status write_all(int fd, const void *bytes, size_t size, const char *path) {
    const char *cursor = bytes;
    while (size > 0) {
        ssize_t wrote = write(fd, cursor, size);
        if (wrote < 0 && errno == EINTR) continue;
        if (wrote <= 0)
            return cm_error_set(CM_ERR_IO, "%s: write failed: %s", path,
                                wrote < 0 ? strerror(errno) : "no progress");
        cursor += wrote;
        size -= (size_t)wrote;
    }
    return CM_OK;
}

/* Make the rename durable; best effort (some file systems refuse fsync on directories). */
static void sync_directory(const char *path) {
    const char *slash = strrchr(path, '/');
    char directory[4096] = ".";
    if (slash) {
        size_t length = slash == path ? 1 : (size_t)(slash - path);
        if (length >= sizeof directory) return;
        memcpy(directory, path, length);
        directory[length] = '\0';
    }
    int fd = open(directory, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return;
    (void)fsync(fd);
    close(fd);
}

cm_status cm_file_write_atomic(const char *path, const void *bytes, size_t size) {
    const char *slash = strrchr(path, '/');
    if (path[0] == '\0' || (slash && slash[1] == '\0'))
        return cm_error_set(CM_ERR_INVALID, "%s: not a file name", path);
    char *temporary = temporary_template(path);
    if (!temporary) return cm_error_set(CM_ERR_NOMEM, "%s: cannot allocate a file name", path);
    int fd = mkstemp(temporary);
    if (fd < 0) {
        cm_status status = cm_error_set(CM_ERR_IO, "%s: cannot create a temporary file: %s", path,
                                        strerror(errno));
        cm_free(temporary);
        return status;
    }
    struct stat existing;
    mode_t mode = stat(path, &existing) == 0 ? existing.st_mode & 07777 : 0644;
    cm_status status = write_all(fd, bytes, size, path);
    if (status == CM_OK && fchmod(fd, mode) != 0)
        status = cm_error_set(CM_ERR_IO, "%s: cannot set mode: %s", path, strerror(errno));
    if (status == CM_OK && fsync(fd) != 0)
        status = cm_error_set(CM_ERR_IO, "%s: fsync failed: %s", path, strerror(errno));
    if (close(fd) != 0 && status == CM_OK)
        status = cm_error_set(CM_ERR_IO, "%s: close failed: %s", path, strerror(errno));
    if (status == CM_OK && rename(temporary, path) != 0)
        status = cm_error_set(CM_ERR_IO, "%s: cannot rename the temporary file into place: %s",
                              path, strerror(errno));
    if (status != CM_OK) unlink(temporary);
    else sync_directory(path);
    cm_free(temporary);
    return status;
}
