/* Output files that appear complete or not at all: the data goes to
 * "<path>.tmp", which is synced to disk and renamed over path only when every
 * byte is written, and removed on any failure (whose reason, from errno, the
 * error gives: no space left, read-only file system, permission denied). */
#ifndef SV_ATOMIC_FILE_H
#define SV_ATOMIC_FILE_H

#include <stdio.h>

#include "status.h"

typedef struct sv_atomic_file {
    FILE *f;             /* write here */
    char path[4096];
    char tmp[4100];
} sv_atomic_file;

int sv_atomic_open(sv_atomic_file *a, const char *path, sv_error *err);
/* Closes and renames into place; on any write error the tmp file is removed. */
int sv_atomic_commit(sv_atomic_file *a, sv_error *err);
/* Closes and removes the tmp file. */
void sv_atomic_abort(sv_atomic_file *a);

/* The whole of a NUL-terminated text, atomically. */
int sv_write_text_atomic(const char *path, const char *text, sv_error *err);

#endif
