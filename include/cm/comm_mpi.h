/* comm_mpi.h: the communicator of comm.h over an MPI communicator: data-parallel training in
 * several processes with the bits of one (docs/distributed.md). Only in builds made with
 * `make MPI=1` (which define CM_HAVE_MPI); this header includes <mpi.h>.
 *
 * The caller owns MPI: it calls MPI_Init_thread (MPI_THREAD_FUNNELED is enough: only the thread
 * that calls the trainer calls MPI; the pool's threads only add) before cm_comm_mpi_create, and
 * MPI_Finalize after cm_comm_mpi_free. The communicator works on a duplicate of the given one
 * with MPI_ERRORS_RETURN, so MPI failures come back as CM_ERR_IO with MPI's message. A process
 * whose call fails leaves its peers waiting in the next collective: a program must then end the
 * job (MPI_Abort), which the library never does. A process that dies is noticed by the launcher
 * (Open MPI's mpirun ends the whole job with a non-zero status). reduce_blocks needs a block on
 * every process; share_rows does not (a process without blocks gives no rows), so it also
 * shares per-item results of work split with cm_comm_block_range over items.
 */
#ifndef CM_COMM_MPI_H
#define CM_COMM_MPI_H

#include <mpi.h>
#include <stddef.h>

#include "cm/comm.h"
#include "cm/status.h"

/* A cm_comm whose rank and size are those of `communicator` (borrowed: it is duplicated).
 * *out is owned by the caller: cm_comm_mpi_free (collective, like the creation). The first
 * reduce_blocks allocates a receive buffer of `count` floats, kept for the next calls (a
 * process that receives nodes of the tree needs one beside its blocks' gradients). */
cm_status cm_comm_mpi_create(cm_comm **out, MPI_Comm communicator);
void cm_comm_mpi_free(cm_comm *comm);

/* What the calls of a communicator cost since its creation (or the last reset): wall time inside
 * each kind of call (including the wait for slower processes), and the tree's messages. */
typedef struct {
    size_t reductions, shares, agreements; /* calls of reduce_blocks, share_rows, any */
    double reduce_seconds;    /* in reduce_blocks: subtrees, tree levels and broadcast */
    double tree_seconds;      /* of which: the cross-process levels (sends, receives, adds) */
    double broadcast_seconds; /* of which: the broadcast of the sum from rank 0 */
    double share_seconds, any_seconds;
    size_t tree_messages_sent;  /* nodes this process sent (at most one per level per call) */
    size_t tree_bytes_sent, tree_bytes_received;
} cm_comm_mpi_stats;

/* The statistics of a communicator made by cm_comm_mpi_create (zero for any other). */
void cm_comm_mpi_stats_get(cm_comm_mpi_stats *out, const cm_comm *comm);
void cm_comm_mpi_stats_reset(cm_comm *comm);

#endif
