/* One writer per output file: an exclusive flock(2) on "<path>.lock", taken
 * before the writer touches anything else, so that a second process writing
 * the same file is refused at once instead of truncating the first one's
 * work. The kernel drops the lock when its holder dies (even by kill -9), so
 * a stale .lock file never blocks anyone; the holder removes it on release. */
#ifndef SV_WRITER_LOCK_H
#define SV_WRITER_LOCK_H

#include "status.h"

typedef struct sv_writer_lock sv_writer_lock;

/* Takes the lock for path, or fails at once naming the process that holds it
 * (or the reason the lock file cannot be made: a missing folder, permissions,
 * a read-only file system). */
int sv_writer_lock_take(sv_writer_lock **out, const char *path, sv_error *err);
/* Releases it and removes the lock file. NULL is fine. */
void sv_writer_lock_release(sv_writer_lock *lock);

#endif
