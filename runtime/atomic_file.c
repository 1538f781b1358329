#include <errno.h>
#include <string.h>

#include "atomic_file.h"

int sv_atomic_open(sv_atomic_file *a, const char *path, sv_error *err) {
    a->f = NULL;
    if (snprintf(a->path, sizeof a->path, "%s", path) >= (int)sizeof a->path)
        return sv_fail(err, "%s: path too long", path);
    snprintf(a->tmp, sizeof a->tmp, "%s.tmp", path);
    if (!(a->f = fopen(a->tmp, "wb")))
        return sv_fail(err, "%s: cannot create (%s)", path, strerror(errno));
    return SV_OK;
}

int sv_atomic_commit(sv_atomic_file *a, sv_error *err) {
    int ok = !ferror(a->f);
    int saved = errno;
    if (fclose(a->f) != 0 && ok) ok = 0, saved = errno;
    a->f = NULL;
    if (ok && rename(a->tmp, a->path) != 0) ok = 0, saved = errno;
    if (ok) return SV_OK;
    remove(a->tmp);
    return sv_fail(err, "%s: write failed (%s)", a->path, strerror(saved));
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
