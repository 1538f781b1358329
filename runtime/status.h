/* Error reporting shared by every runtime module.
 *
 * Library functions never print or exit: they return 0 on success and
 * SV_FAIL (-1) on error, after writing a one-line message that names the file,
 * tensor or field at fault into an sv_error supplied by the caller. */
#ifndef SV_STATUS_H
#define SV_STATUS_H

#define SV_OK 0
#define SV_FAIL (-1)
#define SV_ERROR_MAX 1024

typedef struct sv_error {
    char msg[SV_ERROR_MAX];
} sv_error;

/* Formats the message into err (if non-NULL) and returns SV_FAIL, so that
 * `return sv_fail(err, "%s: bad header", path);` reads as one statement. */
int sv_fail(sv_error *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Allocation helpers that report failure through err instead of crashing.
 * sv_alloc_array checks n*size for overflow first. */
void *sv_alloc_array(size_t n, size_t size, sv_error *err, const char *what);

#endif
