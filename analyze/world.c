#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "world.h"

/* Set by the launchers that start MPI ranks: OpenMPI's mpirun, PMIx (srun
 * --mpi=pmix, OpenMPI 5) and Hydra/PMI (MPICH, srun --mpi=pmi2). A process
 * started any other way is a world of one and never touches MPI. */
static int started_by_launcher(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMIX_RANK") || getenv("PMI_RANK");
}

#ifdef SV_HAVE_MPI
#include <mpi.h>

int sv_world_open(sv_world *w, sv_error *err) {
    *w = (sv_world){0, 1, 0, 0};
    if (!started_by_launcher()) return SV_OK;
    if (MPI_Init(NULL, NULL) != MPI_SUCCESS) return sv_fail(err, "MPI_Init failed");
    w->mpi = 1;
    /* errors come back as codes, reported like any other */
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
    MPI_Comm_rank(MPI_COMM_WORLD, &w->rank);
    MPI_Comm_size(MPI_COMM_WORLD, &w->size);
    return SV_OK;
}

void sv_world_close(sv_world *w) {
    if (w->mpi && w->abandoned) MPI_Abort(MPI_COMM_WORLD, 1);
    if (w->mpi) MPI_Finalize();
    w->mpi = 0;
}

static int mpi_fail(sv_error *err, const char *what, int code) {
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(code, text, &len);
    return sv_fail(err, "MPI %s failed: %.*s", what, len, text);
}

int sv_world_send(const sv_world *w, int to, int tag, const void *data, size_t size,
                  sv_error *err) {
    (void)w;
    if (size > (size_t)1 << 30) return sv_fail(err, "MPI message of %zu bytes is too large", size);
    int rc = MPI_Send(data, (int)size, MPI_BYTE, to, tag, MPI_COMM_WORLD);
    return rc == MPI_SUCCESS ? SV_OK : mpi_fail(err, "send", rc);
}

int sv_world_recv(const sv_world *w, int *from, int *tag, void **data, size_t *size,
                  const volatile int *stop, int stop_at, sv_error *err) {
    (void)w;
    MPI_Status st;
    int ready = 0, count = 0, rc;
    while (!ready) {
        if (stop && *stop >= stop_at) return SV_FAIL;
        if ((rc = MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &ready, &st)))
            return mpi_fail(err, "probe", rc);
        if (!ready) nanosleep(&(struct timespec){0, 2000000}, NULL); /* 2 ms */
    }
    MPI_Get_count(&st, MPI_BYTE, &count);
    *data = malloc(count ? (size_t)count : 1);
    if (!*data) return sv_fail(err, "out of memory for an MPI message of %d bytes", count);
    rc = MPI_Recv(*data, count, MPI_BYTE, st.MPI_SOURCE, st.MPI_TAG, MPI_COMM_WORLD,
                  MPI_STATUS_IGNORE);
    if (rc != MPI_SUCCESS) {
        free(*data);
        return mpi_fail(err, "receive", rc);
    }
    *from = st.MPI_SOURCE, *tag = st.MPI_TAG, *size = (size_t)count;
    return SV_OK;
}

int sv_world_agree(const sv_world *w, int rc, sv_error *err) {
    if (w->size == 1) return rc;
    sv_error mine = {{0}};
    if (rc) snprintf(mine.msg, sizeof mine.msg, "%s", err->msg);
    sv_error *all = w->rank == 0 ? calloc((size_t)w->size, sizeof *all) : NULL;
    int any = rc != SV_OK;
    MPI_Gather(&mine, (int)sizeof mine, MPI_BYTE, all, (int)sizeof mine, MPI_BYTE, 0,
               MPI_COMM_WORLD);
    MPI_Allreduce(MPI_IN_PLACE, &any, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    for (int r = 1; all && !rc && r < w->size; r++)
        if (all[r].msg[0]) {
            snprintf(err->msg, sizeof err->msg, "rank %d: %.1000s", r, all[r].msg);
            break;
        }
    free(all);
    return any ? SV_FAIL : SV_OK;
}

#else /* a build without MPI */

int sv_world_open(sv_world *w, sv_error *err) {
    *w = (sv_world){0, 1, 0, 0};
    if (started_by_launcher())
        return sv_fail(err, "this shortv was built without MPI, so mpirun would run the same "
                            "work in every process; install libopenmpi-dev (scripts/"
                            "install-deps.sh) and rebuild, or run it without mpirun");
    return SV_OK;
}

void sv_world_close(sv_world *w) { (void)w; }

int sv_world_send(const sv_world *w, int to, int tag, const void *data, size_t size,
                  sv_error *err) {
    (void)w, (void)to, (void)tag, (void)data, (void)size;
    return sv_fail(err, "no MPI in this build");
}

int sv_world_recv(const sv_world *w, int *from, int *tag, void **data, size_t *size,
                  const volatile int *stop, int stop_at, sv_error *err) {
    (void)w, (void)from, (void)tag, (void)data, (void)size, (void)stop, (void)stop_at;
    return sv_fail(err, "no MPI in this build");
}

int sv_world_agree(const sv_world *w, int rc, sv_error *err) {
    (void)w, (void)err;
    return rc;
}

#endif
