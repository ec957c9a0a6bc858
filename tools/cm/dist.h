/* dist.h: the processes of one cm command (docs/distributed.md). A build made with `make MPI=1`
 * and started by an MPI launcher (mpirun, srun: recognised by the variables it sets) runs as R
 * processes over MPI_COMM_WORLD; started alone, or built without MPI=1, it is one process and
 * never touches MPI. cm train trains data-parallel (the communicator of comm_mpi.h), cm sweep
 * and cm nfe split their items; the other commands refuse R > 1. Rank 0 alone writes files and
 * prints results, help and usage errors (every process parses the same arguments); a runtime
 * error is printed by the process that meets it, with its rank.
 *
 * The rule that keeps a job from hanging: a command agrees on its setup (cli_dist_agree, which
 * every process reaches whatever failed) before its first collective call; from then on
 * (cli_dist_collective(1)) a failing process ends the whole job with MPI_Abort, since its peers
 * may be waiting for it inside a collective call. Where every process is known to stop at the
 * same point (a signal agreed on, a loss that is not finite everywhere), the command says so
 * (cli_dist_collective(0)) and the processes end normally. The state is the process's, as MPI's
 * is: a file-scope record set once by cli_dist_start.
 */
#ifndef CM_TOOLS_DIST_H
#define CM_TOOLS_DIST_H

#include <stddef.h>

#include "cm/comm.h"

/* main: initialise MPI (MPI_THREAD_FUNNELED: the pool's threads never call MPI) when started by
 * a launcher, and make the communicator of MPI_COMM_WORLD. Returns a CLI exit code (printing
 * the error). */
int cli_dist_start(int *argc, char ***argv);
/* main, on every path: finalise MPI, or end the job with MPI_Abort(code) when this process failed
 * while its peers may be inside a collective call. Returns `code`. */
int cli_dist_end(int code);

size_t cli_dist_rank(void);
size_t cli_dist_size(void);
/* The communicator of the job: cm_comm_single() for one process (borrowed, lives until
 * cli_dist_end). */
const cm_comm *cli_dist_comm(void);

/* The largest of every process's `code` (a collective call: every process calls it at the same
 * point). One process: `code`. */
int cli_dist_agree(int code);
/* 1: collective calls are under way, so a failure ends the job (MPI_Abort); 0: every process
 * ends together. */
void cli_dist_collective(int active);

/* The communicator's costs per step (several processes, MPI build) as one line into
 * out[capacity]; "" otherwise. */
void cli_dist_cost_text(char *out, size_t capacity, size_t steps);

#endif
