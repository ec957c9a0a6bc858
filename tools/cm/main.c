/* main.c: the cm command line: dispatch to one cmd_<name>.c per subcommand; `cm --help` lists
 * the commands and every training method (cm_method_summary). Started by an MPI launcher (an MPI
 * build; dist.h), train, sweep and nfe run over the processes and the other commands refuse more
 * than one; MPI is finalised (or the job aborted) on every path. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "dist.h"

#include "cm/train.h"
#include "cm/version.h"

static void usage(FILE *stream) {
    fprintf(stream,
            "cm %s: consistency models, trained and measured on a CPU\n\n"
            "usage: cm <command> [options]    (cm <command> --help for each)\n\n"
            "commands:\n"
            "  train    train a model (--method below) on built-in, law, file or image data\n"
            "  sample   one-step or multistep samples from a trained model (NPY/CSV, PNG)\n"
            "  info     what a model file or run directory holds, and the command that made it\n"
            "  export   a trained model as one dependency-free C file (its sampler included)\n"
            "  data     export samples of a built-in data source (NPY/CSV)\n"
            "  eval     distance of samples to a reference, with the noise floor\n"
            "  nfe      quality against network evaluations (consistency vs diffusion samplers)\n"
            "  theory   consistency training measured on exact laws (gaussian, mixture1d, ...)\n"
            "  sweep    theory-lab sweeps: CSV, fitted log-log slopes, PNG\n"
            "  classifier  train or test the image classifier of the image metrics\n\n"
            "several processes: mpirun -np R build-mpi/cm train|sweep|nfe ... (make MPI=1) gives\n"
            "the files of one process (docs/distributed.md)\n\n"
            "methods (cm train --method NAME; docs/training.md):\n",
            CM_VERSION);
    for (int m = 0; m < CM_METHOD_COUNT; m++)
        fprintf(stream, "  %-8s %s\n", cm_method_name((cm_method)m), cm_method_summary((cm_method)m));
}

/* Commands that split their work over the processes of an MPI job (docs/distributed.md). */
static int runs_distributed(const char *command) {
    return !strcmp(command, "train") || !strcmp(command, "sweep") || !strcmp(command, "nfe");
}

static int dispatch(int argc, char **argv) {
    int writer = cli_dist_rank() == 0;
    if (argc < 2) {
        if (writer) usage(stderr);
        return CLI_USAGE_ERROR;
    }
    const char *command = argv[1];
    if (strcmp(command, "--help") == 0 || strcmp(command, "-h") == 0 || strcmp(command, "help") == 0) {
        if (writer) usage(stdout);
        return CLI_OK;
    }
    if (strcmp(command, "--version") == 0) {
        if (writer) printf("cm %s\n", CM_VERSION);
        return CLI_OK;
    }
    if (cli_dist_size() > 1 && !runs_distributed(command)) {
        if (writer)
            fprintf(stderr, "cm: error: cm %s runs as one process, not %zu (train, sweep and nfe "
                            "use several: docs/distributed.md)\n", command, cli_dist_size());
        return CLI_USAGE_ERROR;
    }
    int status;
    if (strcmp(command, "train") == 0) status = cmd_train(argc, argv);
    else if (strcmp(command, "sample") == 0) status = cmd_sample(argc, argv);
    else if (strcmp(command, "info") == 0) status = cmd_info(argc, argv);
    else if (strcmp(command, "export") == 0) status = cmd_export(argc, argv);
    else if (strcmp(command, "data") == 0) status = cmd_data(argc, argv);
    else if (strcmp(command, "eval") == 0) status = cmd_eval(argc, argv);
    else if (strcmp(command, "nfe") == 0) status = cmd_nfe(argc, argv);
    else if (strcmp(command, "theory") == 0) status = cmd_theory(argc, argv);
    else if (strcmp(command, "sweep") == 0) status = cmd_sweep(argc, argv);
    else if (strcmp(command, "classifier") == 0) status = cmd_classifier(argc, argv);
    else {
        if (writer) fprintf(stderr, "cm: error: unknown command '%s' (see cm --help)\n", command);
        return CLI_USAGE_ERROR;
    }
    return status == CLI_HELP_SHOWN ? CLI_OK : status;
}

int main(int argc, char **argv) {
    int status = cli_dist_start(&argc, &argv);
    if (status != CLI_OK) return status;
    return cli_dist_end(dispatch(argc, argv));
}
