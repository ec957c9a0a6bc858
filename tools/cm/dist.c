/* dist.c: the processes of one cm command (dist.h): MPI's start and end, the rank and the
 * communicator, the agreement on a setup's exit code. Without CM_HAVE_MPI (a plain build) every
 * function is the one-process case and nothing of MPI is compiled. In an MPI build a process
 * started without a launcher does not initialise MPI either, so it behaves as the plain build.
 */
#include "dist.h"

#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

#ifdef CM_HAVE_MPI
#include <mpi.h>

#include "cm/comm_mpi.h"
#endif

static struct {
    size_t rank, size;
    int mpi;        /* MPI initialised by cli_dist_start */
    int collective; /* a failure now ends the job with MPI_Abort */
    cm_comm *comm;  /* the MPI communicator (owned), NULL for one process */
} job = {0, 1, 0, 0, NULL};

size_t cli_dist_rank(void) { return job.rank; }
size_t cli_dist_size(void) { return job.size; }
const cm_comm *cli_dist_comm(void) { return job.comm ? job.comm : cm_comm_single(); }
void cli_dist_collective(int active) { job.collective = active; }

#ifdef CM_HAVE_MPI

/* Started by an MPI launcher: Open MPI's mpirun, MPICH's or Intel's hydra, Slurm's srun with
 * PMI-2 or PMIx set one of these. */
static int started_by_launcher(void) {
    const char *names[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMI_RANK", "PMIX_RANK"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (getenv(names[i])) return 1;
    return 0;
}

int cli_dist_start(int *argc, char ***argv) {
    if (!started_by_launcher()) return CLI_OK;
    int provided = 0;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "cm: error: MPI_Init_thread failed\n");
        return CLI_RUNTIME_ERROR;
    }
    job.mpi = 1;
    if (provided < MPI_THREAD_FUNNELED) {
        fprintf(stderr, "cm: error: this MPI gives thread level %d; cm's threads need "
                        "MPI_THREAD_FUNNELED\n", provided);
        MPI_Abort(MPI_COMM_WORLD, CLI_RUNTIME_ERROR);
    }
    if (cm_comm_mpi_create(&job.comm, MPI_COMM_WORLD) != CM_OK) {
        fprintf(stderr, "cm: error: %s\n", cm_error_detail());
        MPI_Abort(MPI_COMM_WORLD, CLI_RUNTIME_ERROR);
    }
    job.rank = job.comm->rank;
    job.size = job.comm->size;
    return CLI_OK;
}

int cli_dist_end(int code) {
    if (!job.mpi) return code;
    if (job.size > 1 && code != CLI_OK && job.collective) {
        fflush(stdout);
        fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, code); /* the peers may wait for this process: end them */
    }
    cm_comm_mpi_free(job.comm);
    job.comm = NULL;
    MPI_Finalize();
    return code;
}

int cli_dist_agree(int code) {
    if (job.size == 1) return code;
    int largest = code;
    /* MPI_COMM_WORLD's handler is MPI_ERRORS_ARE_FATAL: a failure here ends the job */
    MPI_Allreduce(&code, &largest, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return largest;
}

void cli_dist_cost_text(char *out, size_t capacity, size_t steps) {
    out[0] = '\0';
    if (job.size == 1 || steps == 0) return;
    cm_comm_mpi_stats s;
    cm_comm_mpi_stats_get(&s, job.comm);
    double per_step = 1e3 / (double)steps;
    snprintf(out, capacity, "rank %zu of %zu: reduction %.3g ms/step (tree %.3g, broadcast %.3g), "
             "loss rows %.3g ms/step, agreements %.3g ms/step; tree nodes sent %.3g MB/step, "
             "received %.3g MB/step", job.rank, job.size, s.reduce_seconds * per_step,
             s.tree_seconds * per_step, s.broadcast_seconds * per_step,
             s.share_seconds * per_step, s.any_seconds * per_step,
             1e-6 * (double)s.tree_bytes_sent / (double)steps,
             1e-6 * (double)s.tree_bytes_received / (double)steps);
}

#else

int cli_dist_start(int *argc, char ***argv) { return CLI_OK; }
int cli_dist_end(int code) { return code; }
int cli_dist_agree(int code) { return code; }
void cli_dist_cost_text(char *out, size_t capacity, size_t steps) {
    if (capacity) out[0] = '\0';
}

#endif
