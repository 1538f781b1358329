#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "npy.h"

static const char *const descr_of[] = {"<f4", "<f8", "<i4", "|u1"};

size_t sv_npy_type_size(sv_npy_type type) {
    static const size_t sizes[] = {4, 8, 4, 1};
    return sizes[type];
}

static int type_from_descr(const char *header, sv_npy_type *type) {
    const char *d = strstr(header, "'descr':");
    if (!d) return SV_FAIL;
    d = strchr(d + 8, '\'');
    if (!d) return SV_FAIL;
    for (int t = 0; t < 4; t++) {
        size_t n = strlen(descr_of[t]);
        if (strncmp(d + 1, descr_of[t], n) == 0 && d[1 + n] == '\'') {
            *type = (sv_npy_type)t;
            return SV_OK;
        }
    }
    if (strncmp(d + 1, "<u1'", 4) == 0) { *type = SV_NPY_U1; return SV_OK; }
    return SV_FAIL;
}

static int parse_shape(const char *header, sv_npy *a) {
    const char *s = strstr(header, "'shape':");
    if (!s || !(s = strchr(s, '('))) return SV_FAIL;
    s++;
    a->ndim = 0;
    a->count = 1;
    while (*s && *s != ')') {
        char *end;
        long long v = strtoll(s, &end, 10);
        if (end == s) { s++; continue; } /* skip ',' and spaces */
        if (v < 0 || a->ndim == SV_NPY_MAX_DIMS) return SV_FAIL;
        if (v != 0 && a->count > ((size_t)1 << 40) / (size_t)v) return SV_FAIL;
        a->shape[a->ndim++] = v;
        a->count *= (size_t)v;
        s = end;
    }
    return *s == ')' ? SV_OK : SV_FAIL;
}

int sv_npy_read(sv_npy *out, const char *path, sv_error *err) {
    memset(out, 0, sizeof *out);
    FILE *f = fopen(path, "rb");
    if (!f) return sv_fail(err, "%s: cannot open", path);
    unsigned char pre[10];
    char header[4096];
    int rc = SV_FAIL;
    if (fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0 || pre[6] != 1) {
        sv_fail(err, "%s: not a NumPy 1.0 .npy file", path);
        goto done;
    }
    size_t hlen = (size_t)pre[8] | (size_t)pre[9] << 8;
    if (hlen >= sizeof header || fread(header, 1, hlen, f) != hlen) {
        sv_fail(err, "%s: truncated .npy header", path);
        goto done;
    }
    header[hlen] = 0;
    if (strstr(header, "'fortran_order': True")) {
        sv_fail(err, "%s: Fortran-order arrays are not supported", path);
        goto done;
    }
    if (type_from_descr(header, &out->type) || parse_shape(header, out)) {
        sv_fail(err, "%s: unsupported dtype or shape in .npy header", path);
        goto done;
    }
    size_t bytes = out->count * sv_npy_type_size(out->type);
    out->data = malloc(bytes ? bytes : 1);
    if (!out->data) {
        sv_fail(err, "%s: out of memory", path);
        goto done;
    }
    if (fread(out->data, 1, bytes, f) != bytes) {
        sv_fail(err, "%s: truncated .npy data", path);
        goto done;
    }
    rc = SV_OK;
done:
    fclose(f);
    if (rc) sv_npy_free(out);
    return rc;
}

void sv_npy_free(sv_npy *a) {
    free(a->data);
    a->data = NULL;
}

int sv_npy_write(const char *path, sv_npy_type type, int ndim,
                 const int64_t *shape, const void *data, sv_error *err) {
    char header[256];
    int n = snprintf(header, sizeof header, "{'descr': '%s', 'fortran_order': False, 'shape': (",
                     descr_of[type]);
    size_t count = 1;
    for (int i = 0; i < ndim; i++) {
        n += snprintf(header + n, sizeof header - (size_t)n, "%lld%s", (long long)shape[i],
                      ndim == 1 ? "," : (i + 1 < ndim ? ", " : ""));
        count *= (size_t)shape[i];
    }
    n += snprintf(header + n, sizeof header - (size_t)n, "), }");
    /* pad with spaces so that magic(6)+version(2)+len(2)+header+'\n' is a multiple of 64 */
    size_t total = 10 + (size_t)n + 1;
    size_t pad = (64 - total % 64) % 64;
    memset(header + n, ' ', pad);
    header[n + pad] = '\n';
    size_t hlen = (size_t)n + pad + 1;

    sv_atomic_file a;
    if (sv_atomic_open(&a, path, err)) return SV_FAIL;
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0,
                             (unsigned char)(hlen & 0xff), (unsigned char)(hlen >> 8)};
    fwrite(pre, 1, 10, a.f);
    fwrite(header, 1, hlen, a.f);
    fwrite(data, 1, count * sv_npy_type_size(type), a.f);
    return sv_atomic_commit(&a, err);
}
