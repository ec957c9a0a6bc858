/* image_dir.c: an image set from a folder of PNG files (image.h: cm_image_read_png_dir).
 *
 * The folder's PNG files (names ending in .png in any case, hidden names skipped), sorted by
 * name in byte order so that the set does not depend on the file system's listing order. A
 * folder without PNG files but with sub-folders holding some is a labelled set: one class per
 * such sub-folder, in sorted order, named after it (the layout torchvision's ImageFolder reads).
 * Every image must have the size and channel count of the first; the set keeps bytes. Symbolic
 * links are followed; deeper levels of folders are not searched.
 */
#include "cm/image.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cm/alloc.h"
#include "cm/io.h"

/* Growing list of owned strings, each with a tag (the class of a file). */
typedef struct {
    char **items;
    size_t *tags;
    size_t count, capacity;
} name_list;

static void list_free(name_list *list) {
    for (size_t i = 0; list->items && i < list->count; i++) cm_free(list->items[i]);
    cm_free(list->items);
    cm_free(list->tags);
    memset(list, 0, sizeof *list);
}

/* Append a copy of text with its tag. */
static cm_status list_push(name_list *list, const char *text, size_t tag) {
    if (list->count == list->capacity) {
        size_t capacity = list->capacity ? 2 * list->capacity : 64;
        char **items = cm_malloc(capacity, sizeof *items);
        size_t *tags = cm_malloc(capacity, sizeof *tags);
        if (!items || !tags) {
            cm_free(items);
            cm_free(tags);
            return cm_error_set(CM_ERR_NOMEM, "image folder: cannot list %zu names", capacity);
        }
        if (list->count) {
            memcpy(items, list->items, list->count * sizeof *items);
            memcpy(tags, list->tags, list->count * sizeof *tags);
        }
        cm_free(list->items);
        cm_free(list->tags);
        list->items = items;
        list->tags = tags;
        list->capacity = capacity;
    }
    size_t length = strlen(text);
    char *copy = cm_malloc(length + 1, 1);
    if (!copy) return cm_error_set(CM_ERR_NOMEM, "image folder: cannot copy a name");
    memcpy(copy, text, length + 1);
    list->items[list->count] = copy;
    list->tags[list->count++] = tag;
    return CM_OK;
}

static int is_png_name(const char *name) {
    size_t n = strlen(name);
    return n > 4 && name[n - 4] == '.' && tolower((unsigned char)name[n - 3]) == 'p' &&
           tolower((unsigned char)name[n - 2]) == 'n' && tolower((unsigned char)name[n - 1]) == 'g';
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* "dir/name", cm_malloc'ed, or NULL. */
static char *join(const char *dir, const char *name) {
    size_t a = strlen(dir), b = strlen(name);
    char *path = cm_malloc(a + b + 2, 1);
    if (!path) return NULL;
    memcpy(path, dir, a);
    path[a] = '/';
    memcpy(path + a + 1, name, b + 1);
    return path;
}

/* The paths of dir's PNG files (tagged `tag`) and, when folders is not NULL, the names of its
 * sub-folders; names sorted. New entries are appended to pngs, which may hold earlier ones. */
static cm_status scan(name_list *pngs, name_list *folders, const char *dir, size_t tag) {
    DIR *handle = opendir(dir);
    if (!handle) return cm_error_set(CM_ERR_IO, "%s: cannot open the folder: %s", dir,
                                     strerror(errno));
    size_t first = pngs->count;
    cm_status status = CM_OK;
    for (struct dirent *entry; status == CM_OK && (entry = readdir(handle));) {
        if (entry->d_name[0] == '.') continue;
        char *path = join(dir, entry->d_name);
        struct stat info;
        if (!path) status = cm_error_set(CM_ERR_NOMEM, "%s: cannot list the folder", dir);
        else if (stat(path, &info) != 0) status = CM_OK; /* a dangling link: not an image */
        else if (S_ISREG(info.st_mode) && is_png_name(entry->d_name))
            status = list_push(pngs, path, tag);
        else if (S_ISDIR(info.st_mode) && folders)
            status = list_push(folders, entry->d_name, 0);
        cm_free(path);
    }
    closedir(handle);
    if (status != CM_OK) return status;
    if (pngs->count > first) /* an empty list has no array: qsort must not see NULL */
        qsort(pngs->items + first, pngs->count - first, sizeof *pngs->items, compare_names);
    if (folders && folders->count)
        qsort(folders->items, folders->count, sizeof *folders->items, compare_names);
    return CM_OK;
}

/* The files to read (tagged with their class) and, for a labelled folder, the class names. */
static cm_status collect(name_list *files, name_list *classes, const char *dir) {
    name_list folders = {0};
    cm_status status = scan(files, &folders, dir, 0);
    int labelled = files->count == 0; /* PNG files at the top: sub-folders are ignored */
    for (size_t k = 0; status == CM_OK && labelled && k < folders.count; k++) {
        char *sub = join(dir, folders.items[k]);
        if (!sub) status = cm_error_set(CM_ERR_NOMEM, "%s: cannot list the folder", dir);
        size_t before = files->count;
        if (status == CM_OK) status = scan(files, NULL, sub, classes->count);
        if (status == CM_OK && files->count > before)
            status = list_push(classes, folders.items[k], 0);
        cm_free(sub);
    }
    list_free(&folders);
    return status;
}

static cm_status read_png_file(cm_image_set *out, const char *path) {
    void *bytes = NULL;
    size_t size = 0;
    CM_TRY(cm_file_read_all(&bytes, &size, path, CM_IMAGE_MAX_BYTES));
    cm_status status = cm_png_parse(out, bytes, size, path);
    cm_free(bytes);
    return status;
}

/* Read every file into set->bytes; the first fixes the size and channel count. */
static cm_status fill(cm_image_set *set, const name_list *files) {
    cm_image_set image;
    CM_TRY(read_png_file(&image, files->items[0]));
    set->count = files->count;
    set->channels = image.channels;
    set->height = image.height;
    set->width = image.width;
    size_t dim = cm_image_set_dim(set);
    cm_status status = CM_OK;
    if ((uint64_t)set->count > CM_IMAGE_MAX_BYTES / dim)
        status = cm_error_set(CM_ERR_FORMAT, "%s: %zu images of %zu bytes, over the limit of %llu",
                              files->items[0], set->count, dim,
                              (unsigned long long)CM_IMAGE_MAX_BYTES);
    else if (!(set->bytes = cm_malloc(set->count, dim)))
        status = cm_error_set(CM_ERR_NOMEM, "cannot allocate %zu images of %zu bytes", set->count,
                              dim);
    for (size_t i = 0; status == CM_OK && i < set->count; i++) {
        if (i > 0) status = read_png_file(&image, files->items[i]);
        if (status != CM_OK) break;
        if (image.channels != set->channels || image.height != set->height ||
            image.width != set->width)
            status = cm_error_set(CM_ERR_DIMENSION, "%s: %zu x %zu with %zu channel(s), but %s is "
                                  "%zu x %zu with %zu: all images of a folder must agree",
                                  files->items[i], image.width, image.height, image.channels,
                                  files->items[0], set->width, set->height, set->channels);
        else
            memcpy(set->bytes + i * dim, image.bytes, dim);
        cm_image_set_free(&image);
    }
    cm_image_set_free(&image); /* the first image when the loop did not run; else a no-op */
    return status;
}

cm_status cm_image_read_png_dir(cm_image_set *out, const char *path) {
    name_list files = {0}, classes = {0};
    cm_image_set set = {0};
    memset(out, 0, sizeof *out);
    cm_status status = collect(&files, &classes, path);
    if (status == CM_OK && files.count == 0)
        status = cm_error_set(CM_ERR_FORMAT, "%s: no PNG files (*.png) in the folder nor in its "
                              "sub-folders", path);
    if (status == CM_OK) status = fill(&set, &files);
    if (status == CM_OK && classes.count) {
        set.labels = cm_malloc(files.count, sizeof(size_t));
        if (!set.labels) status = cm_error_set(CM_ERR_NOMEM, "%s: cannot allocate labels", path);
        for (size_t i = 0; status == CM_OK && i < files.count; i++) set.labels[i] = files.tags[i];
        if (status == CM_OK) { /* the set takes the class names over */
            set.classes = classes.count;
            set.class_names = classes.items;
            classes.items = NULL;
            classes.count = 0;
        }
    }
    list_free(&files);
    list_free(&classes);
    if (status != CM_OK) {
        cm_image_set_free(&set);
        return status;
    }
    *out = set;
    return CM_OK;
}
