/* cmd_eval.c: `cm eval`: sliced W1 (and exact W1 in 1-D) of samples against a reference
 * source or file, beside the noise floor (see cm/evaluate.h). */
#include <math.h>
#include <stdio.h>

#include "cli.h"
#include "cm/alloc.h"
#include "cm/data.h"
#include "cm/evaluate.h"
#include "cm/io.h"

int cmd_eval(int argc, char **argv) {
    const char *command = "eval";
    const char *samples_path = NULL, *reference_source = NULL;
    size_t projections = CM_EVALUATE_PROJECTIONS_DEFAULT;
    uint64_t seed = 0;
    int json = 0;
    cli_option options[] = {
        {"samples", OPT_STRING, &samples_path, "samples file (.npy or .csv)", 0, 1, 0},
        {"ref", OPT_STRING, &reference_source, "reference: a data source or a file", 0, 1, 0},
        {"projections", OPT_SIZE, &projections, "random directions of the sliced distance", 1, 0, 0},
        {"seed", OPT_U64, &seed, "seed of the reference draws and directions", 0, 0, 0},
        {"json", OPT_FLAG, &json, "one JSON line instead of the table", 0, 0, 0},
    };
    int parsed = cli_parse(argc, argv, 2, options, sizeof options / sizeof options[0], command,
                           "Distance of samples to a reference, beside its noise floor (the same\n"
                           "distance between two independent reference samples of the same size).");
    if (parsed != CLI_OK) return parsed;
    if (projections > 100000) return cli_usage_error(command, "--projections %zu: at most 100000", projections);
    double *samples = NULL;
    size_t n = 0, dim = 0;
    cm_data *reference = NULL;
    cm_status status = cm_matrix_read(&samples, &n, &dim, samples_path);
    if (status == CM_OK) status = cm_data_open(&reference, reference_source);
    cm_evaluation e;
    if (status == CM_OK) status = cm_evaluate(&e, samples, n, dim, reference, projections, seed);
    if (status == CM_OK) {
        if (json) {
            printf("{\"samples\": \"%s\", \"ref\": \"%s\", \"n\": %zu, \"dim\": %zu, "
                   "\"projections\": %zu, \"seed\": %llu, \"sw1\": %.6g, \"sw1_floor\": %.6g, "
                   "\"sw1_ratio\": %.4g",
                   samples_path, cm_data_describe(reference), e.n, e.dim, e.projections,
                   (unsigned long long)seed, e.sliced_w1, e.sliced_w1_floor,
                   e.sliced_w1 / e.sliced_w1_floor);
            if (dim == 1) printf(", \"w1\": %.6g, \"w1_floor\": %.6g", e.w1, e.w1_floor);
            printf("}\n");
        } else {
            printf("samples    %s (%zu used of %zu, dimension %zu)\n", samples_path, e.n, n, dim);
            printf("reference  %s\n", cm_data_describe(reference));
            printf("%-22s %12s %12s %8s\n", "metric", "value", "floor", "ratio");
            printf("%-22s %12.6g %12.6g %8.3g\n", "sliced W1", e.sliced_w1, e.sliced_w1_floor,
                   e.sliced_w1 / e.sliced_w1_floor);
            if (dim == 1)
                printf("%-22s %12.6g %12.6g %8.3g\n", "W1 (exact, 1-D)", e.w1, e.w1_floor,
                       e.w1 / e.w1_floor);
            printf("(%zu projections, seed %llu; floor = same metric between two independent "
                   "reference samples of size %zu)\n",
                   e.projections, (unsigned long long)seed, e.n);
        }
    }
    cm_free(samples);
    cm_data_free(reference);
    return status == CM_OK ? CLI_OK : cli_fail(command, status);
}
