/* cmd_data.c: `cm data`: export draws of any data source (built-in set, gauss:, gmm:, file
 * resampled, optionally some of its columns, images) to NPY or CSV; for image sources also a
 * PNG grid of the first draws and their labels. Image draws are written as NPY [N, H, W] (one
 * channel) or [N, C, H, W], float32 in [0, 1]; as CSV, one flattened image per row. */
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cli.h"
#include "cm/alloc.h"
#include "cm/data.h"
#include "cm/image.h"
#include "cm/io.h"

#define DATA_GRID_MAX_IMAGES 1024 /* --png shows at most the first 1024 draws */
#define DATA_GRID_PADDING 2

/* The draws as an image array (NPY) or as rows (CSV). */
static cm_status write_points(const char *path, const double *points, size_t n,
                              const cm_data *data) {
    size_t channels, height, width;
    int image = cm_data_image_shape(data, &channels, &height, &width);
    const char *dot = strrchr(path, '.');
    if (!image || !dot || strcasecmp(dot, ".npy") != 0)
        return cm_matrix_write(path, points, n, cm_data_dim(data));
    size_t shape[4] = {n, channels, height, width};
    if (channels == 1) {
        shape[1] = height;
        shape[2] = width;
    }
    return cm_npy_write_f32_shape(path, points, shape, channels == 1 ? 3 : 4);
}

static cm_status write_labels(const char *path, const size_t *labels, size_t n) {
    double *values = cm_malloc(n, sizeof(double));
    if (!values) return cm_error_set(CM_ERR_NOMEM, "%zu labels", n);
    for (size_t i = 0; i < n; i++) values[i] = (double)labels[i];
    cm_status status = cm_matrix_write(path, values, n, 1);
    cm_free(values);
    return status;
}

static cm_status write_grid(const char *path, const double *points, size_t n, size_t columns,
                            const cm_data *data) {
    size_t channels, height, width;
    cm_data_image_shape(data, &channels, &height, &width);
    size_t shown = n < DATA_GRID_MAX_IMAGES ? n : DATA_GRID_MAX_IMAGES;
    if (columns == 0) columns = (size_t)ceil(sqrt((double)shown));
    return cm_image_write_grid(path, points, shown, channels, height, width, columns,
                               DATA_GRID_PADDING);
}

int cmd_data(int argc, char **argv) {
    const char *command = "data";
    const char *source = NULL, *out = NULL, *png = NULL, *labels_path = NULL, *columns = NULL;
    size_t n = 10000, grid_columns = 0;
    uint64_t seed = 0;
    cli_option options[] = {
        {"data", OPT_STRING, &source, "data source (see cm train --help); images: "
         "shapes[:size=S][,seed=N], fashion-mnist[:test], DIR/ of PNG files, .npy [N, H, W]", 0, 1,
         0},
        {"columns", OPT_STRING, &columns,
         "columns of a .csv/.npy --data file: header names, 0-based indices or ranges A-B "
         "(default all; docs/data.md)", 0, 0, 0},
        {"n", OPT_SIZE, &n, "number of points", 1, 0, 0},
        {"seed", OPT_U64, &seed, "seed", 0, 0, 0},
        {"out", OPT_STRING, &out, "output file, .npy (float32; images [N, H, W] or [N, C, H, W]) "
         "or .csv", 0, 0, 0},
        {"png", OPT_STRING, &png, "image sources: PNG grid of the first min(n, 1024) draws", 0, 0,
         0},
        {"grid-columns", OPT_SIZE, &grid_columns, "images per row of the --png grid (0: a square "
         "grid)", 0, 0, 0},
        {"labels", OPT_STRING, &labels_path, "labelled sources: the draws' classes, .npy or .csv "
         "(n x 1)", 0, 0, 0},
    };
    size_t count = sizeof options / sizeof options[0];
    int parsed = cli_parse(argc, argv, 2, options, count, command,
                           "Export n draws of a data source (the DATA stream of the seed).");
    if (parsed != CLI_OK) return parsed;
    if (n > ((size_t)1 << 28)) return cli_usage_error(command, "--n %zu: at most 2^28", n);
    if (!out && !png && !labels_path)
        return cli_usage_error(command, "--out is required (or --png / --labels)");
    cm_data *data = NULL;
    cm_status status = cm_data_open_with(&data, source, &(cm_data_options){.columns = columns});
    if (status != CM_OK) return cli_fail(command, status);
    int code = CLI_OK;
    size_t channels = 0;
    if (png && !cm_data_image_shape(data, &channels, NULL, NULL))
        code = cli_usage_error(command, "--png: '%s' is not an image source", source);
    else if (png && channels != 1 && channels != 3)
        code = cli_usage_error(command, "--png: images of %zu channels (a PNG grid needs 1 or 3)",
                               channels);
    else if (labels_path && cm_data_classes(data) == 0)
        code = cli_usage_error(command, "--labels: '%s' has no labels", source);
    size_t dim = cm_data_dim(data);
    double *points = code == CLI_OK ? cm_malloc(n * dim, sizeof(double)) : NULL;
    size_t *labels = code == CLI_OK ? cm_malloc(n, sizeof(size_t)) : NULL;
    status = code != CLI_OK || (points && labels)
                 ? CM_OK : cm_error_set(CM_ERR_NOMEM, "%zu points of dimension %zu", n, dim);
    if (code == CLI_OK && status == CM_OK) {
        cm_rng root, stream;
        cm_rng_init(&root, seed);
        cm_rng_fork(&stream, &root, CM_STREAM_DATA);
        cm_data_sample_labelled(data, &stream, n, points, labels);
        if (out) status = write_points(out, points, n, data);
        if (status == CM_OK && png) status = write_grid(png, points, n, grid_columns, data);
        if (status == CM_OK && labels_path) status = write_labels(labels_path, labels, n);
    }
    cm_free(labels);
    cm_free(points);
    cm_data_free(data);
    if (code != CLI_OK) return code;
    return status == CM_OK ? CLI_OK : cli_fail(command, status);
}
