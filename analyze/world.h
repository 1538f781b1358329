/* The processes of one run: this process alone, or the ranks that mpirun (or
 * srun) started, joined through MPI. Only this file knows MPI; a build without
 * it (no mpicc at build time) runs every command in one process and refuses to
 * run under mpirun instead of running K copies of the same sweep.
 *
 * Messages are tagged byte buffers. Receiving sleeps between polls: OpenMPI's
 * blocking receive spins on a core, which the thread pool of a rank sharing
 * the node (runtime/threads.h) would then lose. */
#ifndef SV_WORLD_H
#define SV_WORLD_H

#include <stddef.h>

#include "status.h"

typedef struct sv_world {
    int rank, size; /* 0 and 1 without MPI */
    int mpi;        /* MPI_Init was called (MPI_Finalize is due) */
    int abandoned;  /* rank 0 stopped waiting for ranks still at work */
} sv_world;

/* Joins the MPI job if this process was started by an MPI launcher, else
 * makes a world of one. */
int sv_world_open(sv_world *w, sv_error *err);
/* Leaves it: MPI_Finalize, which waits for every rank, or MPI_Abort, which
 * ends them, once rank 0 has abandoned them. */
void sv_world_close(sv_world *w);

/* Sends size bytes to rank `to`. */
int sv_world_send(const sv_world *w, int to, int tag, const void *data, size_t size,
                  sv_error *err);
/* The next message from any rank, into *data (malloc'd; the caller frees it).
 * Gives up with SV_FAIL, err untouched, once *stop reaches stop_at (stop may
 * be NULL). */
int sv_world_recv(const sv_world *w, int *from, int *tag, void **data, size_t *size,
                  const volatile int *stop, int stop_at, sv_error *err);

/* Every rank's rc in one: SV_OK on every rank if all passed rc == SV_OK, else
 * SV_FAIL on every rank; rank 0's err then holds the first failure's message
 * (a worker's prefixed with its rank). A world of one returns rc as it is. */
int sv_world_agree(const sv_world *w, int rc, sv_error *err);

#endif
