/* cmd_data.c: `cm data`: export draws of any data source (built-in set, gauss:, gmm:, file
 * resampled, optionally some of its columns) to NPY or CSV. */
#include <stdio.h>

#include "cli.h"
#include "cm/alloc.h"
#include "cm/data.h"
#include "cm/io.h"

int cmd_data(int argc, char **argv) {
    const char *command = "data";
    const char *source = NULL, *out = NULL, *columns = NULL;
    size_t n = 10000;
    uint64_t seed = 0;
    cli_option options[] = {
        {"data", OPT_STRING, &source, "data source (see cm train --help)", 0, 1, 0},
        {"columns", OPT_STRING, &columns,
         "columns of a .csv/.npy --data file: header names, 0-based indices or ranges A-B "
         "(default all; docs/data.md)", 0, 0, 0},
        {"n", OPT_SIZE, &n, "number of points", 1, 0, 0},
        {"seed", OPT_U64, &seed, "seed", 0, 0, 0},
        {"out", OPT_STRING, &out, "output file, .npy (float32) or .csv", 0, 1, 0},
    };
    int parsed = cli_parse(argc, argv, 2, options, sizeof options / sizeof options[0], command,
                           "Export n draws of a data source (the DATA stream of the seed).");
    if (parsed != CLI_OK) return parsed;
    if (n > ((size_t)1 << 28)) return cli_usage_error(command, "--n %zu: at most 2^28", n);
    cm_data *data = NULL;
    cm_status status = cm_data_open_with(&data, source, &(cm_data_options){.columns = columns});
    if (status != CM_OK) return cli_fail(command, status);
    size_t dim = cm_data_dim(data);
    double *points = cm_malloc(n * dim, sizeof(double));
    status = points ? CM_OK : cm_error_set(CM_ERR_NOMEM, "%zu points of dimension %zu", n, dim);
    if (status == CM_OK) {
        cm_rng root, stream;
        cm_rng_init(&root, seed);
        cm_rng_fork(&stream, &root, CM_STREAM_DATA);
        cm_data_sample(data, &stream, n, points);
        status = cm_matrix_write(out, points, n, dim);
    }
    cm_free(points);
    cm_data_free(data);
    return status == CM_OK ? CLI_OK : cli_fail(command, status);
}
