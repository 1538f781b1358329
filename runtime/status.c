#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include "status.h"

int sv_fail(sv_error *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return SV_FAIL;
}

void *sv_alloc_array(size_t n, size_t size, sv_error *err, const char *what) {
    if (size != 0 && n > SIZE_MAX / size) {
        sv_fail(err, "%s: size overflow (%zu x %zu bytes)", what, n, size);
        return NULL;
    }
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p) sv_fail(err, "%s: out of memory (%zu x %zu bytes)", what, n, size);
    return p;
}
