#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "writer_lock.h"

struct sv_writer_lock {
    int fd;
    char path[4200];
};

/* The holder's pid, as it wrote it in the lock file (0 if unknown). */
static long holder_pid(int fd) {
    char buf[32] = {0};
    ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
    return n > 0 ? strtol(buf, NULL, 10) : 0;
}

/* Locked fd still names the file at path: the previous holder may have removed
 * it between our open and our flock, leaving us a lock nobody else can see. */
static int still_linked(int fd, const char *path) {
    struct stat a, b;
    return fstat(fd, &a) == 0 && stat(path, &b) == 0 && a.st_dev == b.st_dev &&
           a.st_ino == b.st_ino;
}

int sv_writer_lock_take(sv_writer_lock **out, const char *path, sv_error *err) {
    *out = NULL;
    sv_writer_lock *l = calloc(1, sizeof *l);
    if (!l) return sv_fail(err, "%s: out of memory", path);
    snprintf(l->path, sizeof l->path, "%s.lock", path);
    for (;;) {
        l->fd = open(l->path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
        if (l->fd < 0) {
            int e = errno;
            free(l);
            return sv_fail(err, "%s: cannot create its lock file %s.lock (%s)", path, path,
                           strerror(e));
        }
        if (flock(l->fd, LOCK_EX | LOCK_NB) != 0) {
            int e = errno;
            long pid = e == EWOULDBLOCK ? holder_pid(l->fd) : 0;
            close(l->fd);
            free(l);
            if (e != EWOULDBLOCK)
                return sv_fail(err, "%s: cannot lock %s.lock (%s)", path, path, strerror(e));
            if (pid > 0)
                return sv_fail(err, "%s: another process (pid %ld) is writing it", path, pid);
            return sv_fail(err, "%s: another process is writing it", path);
        }
        if (still_linked(l->fd, l->path)) break;
        close(l->fd);
    }
    /* the pid only serves a refused writer's message: failing to write it costs nothing else */
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(l->fd, 0) == 0) (void)!pwrite(l->fd, pid, (size_t)n, 0);
    *out = l;
    return SV_OK;
}

void sv_writer_lock_release(sv_writer_lock *l) {
    if (!l) return;
    unlink(l->path); /* while still holding it: see still_linked */
    close(l->fd);
    free(l);
}
