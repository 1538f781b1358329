/* Zip directory reading for torch.save archives (APPNOTE.TXT, sections 4.3.6-4.3.16;
 * torch writes them with miniz, caffe2/serialize/inline_container.cc). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "torch_zip.h"

enum {
    EOCD_SIG = 0x06054b50, EOCD_LEN = 22,
    LOC64_SIG = 0x07064b50, LOC64_LEN = 20,
    EOCD64_SIG = 0x06064b50, EOCD64_LEN = 56,
    CENTRAL_SIG = 0x02014b50, CENTRAL_LEN = 46,
    LOCAL_SIG = 0x04034b50, LOCAL_LEN = 30,
    ZIP64_EXTRA = 0x0001
};

static uint64_t rd(const unsigned char *p, int bytes) {
    uint64_t v = 0;
    for (int i = bytes - 1; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* An entry name fit for a one-line message: printable ASCII, '?' elsewhere. */
static const char *shown(const char *name, size_t len, char buf[128]) {
    size_t n = len < 120 ? len : 120;
    for (size_t i = 0; i < n; i++) buf[i] = name[i] >= 0x20 && name[i] < 0x7f ? name[i] : '?';
    snprintf(buf + n, 8, "%s", len > n ? "..." : "");
    return buf;
}

/* Where the central directory is, from the end records. */
typedef struct directory {
    uint64_t n, offset, size;
    uint64_t end; /* where the central directory must end: the first end record */
} directory;

static int find_eocd(const unsigned char *b, size_t size, const char *path, size_t *at,
                     sv_error *err) {
    if (size < EOCD_LEN) return sv_fail(err, "%s: %zu bytes: too short for a zip archive "
                                             "(truncated?)", path, size);
    size_t lowest = size - EOCD_LEN > 0xffff ? size - EOCD_LEN - 0xffff : 0;
    for (size_t p = size - EOCD_LEN + 1; p-- > lowest;)
        if (rd(b + p, 4) == EOCD_SIG && p + EOCD_LEN + rd(b + p + 20, 2) == size) {
            *at = p;
            return SV_OK;
        }
    if (size >= 2 && b[0] == 0x80 && b[1] == 0x02)
        return sv_fail(err, "%s: a legacy (pre-zip) torch file; re-save it with torch >= 1.6",
                       path);
    return sv_fail(err, "%s: not a zip archive: no end-of-directory record (truncated?)", path);
}

/* The zip64 end record, when the classic one has a field saturated. */
static int read_zip64_end(const unsigned char *b, size_t eocd, const char *path, directory *d,
                          sv_error *err) {
    if (eocd < LOC64_LEN || rd(b + eocd - LOC64_LEN, 4) != LOC64_SIG)
        return sv_fail(err, "%s: zip end record needs zip64 but has no zip64 locator", path);
    uint64_t at = rd(b + eocd - LOC64_LEN + 8, 8);
    if (at > eocd - LOC64_LEN || eocd - LOC64_LEN - at < EOCD64_LEN ||
        rd(b + at, 4) != EOCD64_SIG)
        return sv_fail(err, "%s: zip64 end record missing or outside the file", path);
    d->n = rd(b + at + 32, 8);
    d->size = rd(b + at + 40, 8);
    d->offset = rd(b + at + 48, 8);
    d->end = at;
    return SV_OK;
}

static int read_directory(const unsigned char *b, size_t size, const char *path, directory *d,
                          sv_error *err) {
    size_t eocd = 0;
    if (find_eocd(b, size, path, &eocd, err)) return SV_FAIL;
    const unsigned char *e = b + eocd;
    if (rd(e + 4, 2) != 0 || rd(e + 6, 2) != 0)
        return sv_fail(err, "%s: multi-disk zip archives are not supported", path);
    *d = (directory){rd(e + 10, 2), rd(e + 16, 4), rd(e + 12, 4), eocd};
    if ((d->n == 0xffff || d->offset == 0xffffffff || d->size == 0xffffffff) &&
        read_zip64_end(b, eocd, path, d, err))
        return SV_FAIL;
    if (d->offset > d->end || d->size > d->end - d->offset)
        return sv_fail(err, "%s: zip central directory lies outside the file (truncated?)", path);
    if (d->n > d->size / CENTRAL_LEN)
        return sv_fail(err, "%s: zip directory claims %llu entries in %llu bytes", path,
                       (unsigned long long)d->n, (unsigned long long)d->size);
    return SV_OK;
}

/* One central entry as read, before its local header is checked. */
typedef struct raw_entry {
    const char *name;
    size_t name_len;
    uint64_t size, local, data, end; /* local header offset, data [data, end) */
} raw_entry;

/* Sizes and offset saturated at 0xffffffff come from the zip64 extra field. */
static int apply_zip64(const unsigned char *extra, size_t len, uint64_t *vals[3],
                       const char *what, sv_error *err) {
    for (size_t p = 0; p + 4 <= len;) {
        uint64_t id = rd(extra + p, 2), n = rd(extra + p + 2, 2);
        if (n > len - p - 4) break;
        if (id == ZIP64_EXTRA) {
            size_t q = p + 4;
            for (int i = 0; i < 3; i++) {
                if (*vals[i] != 0xffffffff) continue;
                if (q + 8 > p + 4 + n) return sv_fail(err, "%s: zip64 field too short", what);
                *vals[i] = rd(extra + q, 8);
                q += 8;
            }
            return SV_OK;
        }
        p += 4 + n;
    }
    for (int i = 0; i < 3; i++)
        if (*vals[i] == 0xffffffff) return sv_fail(err, "%s: zip64 field missing", what);
    return SV_OK;
}

static int read_central(const unsigned char *b, const directory *d, uint64_t *pos, raw_entry *r,
                        const char *path, sv_error *err) {
    uint64_t at = *pos, limit = d->offset + d->size;
    if (limit - at < CENTRAL_LEN || rd(b + at, 4) != CENTRAL_SIG)
        return sv_fail(err, "%s: zip central directory entry at byte %llu is malformed", path,
                       (unsigned long long)at);
    const unsigned char *c = b + at;
    uint64_t flags = rd(c + 8, 2), method = rd(c + 10, 2), csize = rd(c + 20, 4);
    uint64_t name_len = rd(c + 28, 2), extra_len = rd(c + 30, 2), comment_len = rd(c + 32, 2);
    if (limit - at - CENTRAL_LEN < name_len + extra_len + comment_len)
        return sv_fail(err, "%s: zip central directory entry at byte %llu runs past the "
                            "directory", path, (unsigned long long)at);
    *r = (raw_entry){.name = (const char *)c + CENTRAL_LEN, .name_len = name_len,
                     .size = rd(c + 24, 4), .local = rd(c + 42, 4)};
    char what[4096 + 256], buf[128];
    snprintf(what, sizeof what, "%s: zip entry '%s'", path, shown(r->name, name_len, buf));
    if (apply_zip64(c + CENTRAL_LEN + name_len, extra_len,
                    (uint64_t *[]){&r->size, &csize, &r->local}, what, err))
        return SV_FAIL;
    if (method != 0)
        return sv_fail(err, "%s is compressed (method %llu); torch.save stores entries "
                            "uncompressed", what, (unsigned long long)method);
    if (flags & 1) return sv_fail(err, "%s is encrypted", what);
    if (csize != r->size)
        return sv_fail(err, "%s: stored size %llu differs from its size %llu", what,
                       (unsigned long long)csize, (unsigned long long)r->size);
    *pos = at + CENTRAL_LEN + name_len + extra_len + comment_len;
    return SV_OK;
}

/* The local header repeats the name; the data follows it and must end before
 * the central directory. */
static int check_local(const unsigned char *b, const directory *d, raw_entry *r,
                       const char *path, sv_error *err) {
    char buf[128];
    const char *name = shown(r->name, r->name_len, buf);
    uint64_t at = r->local, limit = d->offset;
    if (at > limit || limit - at < LOCAL_LEN || rd(b + at, 4) != LOCAL_SIG)
        return sv_fail(err, "%s: zip entry '%s' points outside the archive's data (offset "
                            "%llu)", path, name, (unsigned long long)at);
    uint64_t name_len = rd(b + at + 26, 2), extra_len = rd(b + at + 28, 2);
    r->data = at + LOCAL_LEN + name_len + extra_len;
    if (name_len != r->name_len || r->data > limit ||
        memcmp(b + at + LOCAL_LEN, r->name, name_len) != 0)
        return sv_fail(err, "%s: zip entry '%s': local header does not match the directory",
                       path, name);
    if (r->size > limit - r->data)
        return sv_fail(err, "%s: zip entry '%s' (%llu bytes at %llu) runs past the archive's "
                            "data (truncated?)", path, name, (unsigned long long)r->size,
                       (unsigned long long)r->data);
    r->end = r->data + r->size;
    return SV_OK;
}

static int by_local(const void *a, const void *b) {
    const raw_entry *x = a, *y = b;
    return (x->local > y->local) - (x->local < y->local);
}

static int name_cmp(const char *a, size_t an, const char *b, size_t bn) {
    int c = memcmp(a, b, an < bn ? an : bn);
    return c ? c : (an > bn) - (an < bn);
}

static int by_name(const void *a, const void *b) {
    const sv_zip_entry *x = a, *y = b;
    return name_cmp(x->name, x->name_len, y->name, y->name_len);
}

/* Entries sharing bytes would let one storage alias another's data or the pickle. */
static int check_disjoint(raw_entry *r, size_t n, const char *path, sv_error *err) {
    if (n) qsort(r, n, sizeof *r, by_local);
    char a[128], b[128];
    for (size_t i = 1; i < n; i++)
        if (r[i].local < r[i - 1].end)
            return sv_fail(err, "%s: zip entries '%s' and '%s' overlap", path,
                           shown(r[i - 1].name, r[i - 1].name_len, a),
                           shown(r[i].name, r[i].name_len, b));
    return SV_OK;
}

static int fill_entries(sv_zip *z, const unsigned char *base, const raw_entry *r, size_t n,
                        const char *path, sv_error *err) {
    for (size_t i = 0; i < n; i++)
        z->entries[i] = (sv_zip_entry){r[i].name, r[i].name_len, base + r[i].data, r[i].size};
    z->n = n;
    if (n) qsort(z->entries, n, sizeof *z->entries, by_name);
    char buf[128];
    for (size_t i = 1; i < n; i++)
        if (by_name(&z->entries[i - 1], &z->entries[i]) == 0)
            return sv_fail(err, "%s: zip entry '%s' appears twice", path,
                           shown(z->entries[i].name, z->entries[i].name_len, buf));
    return SV_OK;
}

int sv_zip_open(sv_zip *z, const unsigned char *base, size_t size, const char *path,
                sv_error *err) {
    *z = (sv_zip){0};
    directory d = {0};
    if (read_directory(base, size, path, &d, err)) return SV_FAIL;
    raw_entry *r = sv_alloc_array((size_t)d.n + 1, sizeof *r, err, path);
    z->entries = sv_alloc_array((size_t)d.n + 1, sizeof *z->entries, err, path);
    int rc = r && z->entries ? SV_OK : SV_FAIL;
    uint64_t pos = d.offset;
    for (size_t i = 0; i < d.n && rc == SV_OK; i++)
        rc = read_central(base, &d, &pos, &r[i], path, err) ||
             check_local(base, &d, &r[i], path, err);
    if (rc == SV_OK) rc = check_disjoint(r, (size_t)d.n, path, err);
    if (rc == SV_OK) rc = fill_entries(z, base, r, (size_t)d.n, path, err);
    free(r);
    if (rc != SV_OK) sv_zip_close(z);
    return rc ? SV_FAIL : SV_OK;
}

void sv_zip_close(sv_zip *z) {
    free(z->entries);
    *z = (sv_zip){0};
}

const sv_zip_entry *sv_zip_find(const sv_zip *z, const char *name) {
    sv_zip_entry key = {name, strlen(name), NULL, 0};
    return z->n ? bsearch(&key, z->entries, z->n, sizeof key, by_name) : NULL;
}
