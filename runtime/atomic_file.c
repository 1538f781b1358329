#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <unistd.h>

#include "atomic_file.h"

int sv_atomic_open(sv_atomic_file *a, const char *path, sv_error *err) {
    a->f = NULL;
    if (snprintf(a->path, sizeof a->path, "%s", path) >= (int)sizeof a->path)
        return sv_fail(err, "%s: path too long", path);
    snprintf(a->tmp, sizeof a->tmp, "%s.tmp", path);
    if (!(a->f = fopen(a->tmp, "wb")))
        return sv_fail(err, "%s: cannot create %s (%s)", path, a->tmp, strerror(errno));
    return SV_OK;
}

/* The rename is only durable once the folder's entry is on disk too. Some
 * file systems cannot fsync a folder; the data itself is already synced. */
static void sync_folder(const char *path) {
    char copy[4096];
    snprintf(copy, sizeof copy, "%s", path);
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    if (fd < 0) return;
    fsync(fd);
    close(fd);
}

int sv_atomic_commit(sv_atomic_file *a, sv_error *err) {
    /* a write error (ENOSPC, EIO) shows at the latest when the buffer is
     * flushed or synced; errno then holds its reason */
    int failed = fflush(a->f) != 0 || ferror(a->f) || fsync(fileno(a->f)) != 0;
    int saved = errno;
    if (fclose(a->f) != 0 && !failed) failed = 1, saved = errno;
    a->f = NULL;
    if (!failed && rename(a->tmp, a->path) != 0) failed = 1, saved = errno;
    if (!failed) {
        sync_folder(a->path);
        return SV_OK;
    }
    remove(a->tmp);
    return sv_fail(err, "%s: write failed (%s)", a->path, strerror(saved ? saved : EIO));
}

void sv_atomic_abort(sv_atomic_file *a) {
    if (a->f) fclose(a->f);
    a->f = NULL;
    remove(a->tmp);
}

int sv_write_text_atomic(const char *path, const char *text, sv_error *err) {
    sv_atomic_file a;
    if (sv_atomic_open(&a, path, err)) return SV_FAIL;
    fputs(text, a.f);
    return sv_atomic_commit(&a, err);
}
