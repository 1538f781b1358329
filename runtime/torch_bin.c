/* torch.save archives into sv_weights (torch_bin.h). The archive holds
 * "<name>/data.pkl", "<name>/data/<key>" per storage and small records such as
 * "<name>/version" and "<name>/byteorder" (torch/serialization.py _save). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pickle.h"
#include "torch_bin.h"
#include "torch_zip.h"

/* The archive's one "<name>/data.pkl"; *prefix_len = strlen("<name>/"). */
static const sv_zip_entry *find_pickle(const sv_zip *z, const char *path, size_t *prefix_len,
                                       sv_error *err) {
    const sv_zip_entry *found = NULL;
    for (size_t i = 0; i < z->n; i++) {
        const sv_zip_entry *e = &z->entries[i];
        const char *slash = memchr(e->name, '/', e->name_len);
        if (!slash || (size_t)(e->name + e->name_len - slash) != 9 || memcmp(slash, "/data.pkl", 9))
            continue;
        if (found) {
            sv_fail(err, "%s: more than one data.pkl in the archive", path);
            return NULL;
        }
        found = e;
        *prefix_len = (size_t)(slash - e->name) + 1;
    }
    if (!found) sv_fail(err, "%s: no <archive>/data.pkl: not a torch.save checkpoint", path);
    return found;
}

/* torch >= 1.10 records the byte order; storages are read as little-endian. */
static int check_byteorder(const sv_zip *z, const char *prefix, const char *path,
                           sv_error *err) {
    char name[512];
    snprintf(name, sizeof name, "%sbyteorder", prefix);
    const sv_zip_entry *e = sv_zip_find(z, name);
    if (e && !(e->size == 6 && memcmp(e->data, "little", 6) == 0))
        return sv_fail(err, "%s: storages are not little-endian (%s)", path, name);
    return SV_OK;
}

/* Element count of shape, or 0 with *overflow set. */
static uint64_t element_count(const sv_pickle_tensor *t, int *overflow) {
    uint64_t count = 1;
    *overflow = 0;
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] == 0) return 0;
    for (int i = 0; i < t->ndim; i++) {
        if (count > (uint64_t)INT64_MAX / (uint64_t)t->shape[i]) return *overflow = 1, 0;
        count *= (uint64_t)t->shape[i];
    }
    return count;
}

/* Row-major strides, ignoring dimensions of size 1 (torch's own contiguity rule). */
static int is_contiguous(const sv_pickle_tensor *t) {
    int64_t expected = 1;
    for (int i = t->ndim - 1; i >= 0; i--) {
        if (t->shape[i] != 1 && t->stride[i] != expected) return 0;
        expected *= t->shape[i];
    }
    return 1;
}

static void format_dims(char *buf, size_t size, const int64_t *d, int n) {
    size_t k = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < n && k < size; i++)
        k += (size_t)snprintf(buf + k, size - k, "%s%" PRId64, i ? ", " : "", d[i]);
    if (k < size) snprintf(buf + k, size - k, "]");
}

/* The storage entry holds exactly numel elements and the view lies inside it. */
static int check_view(const sv_pickle_tensor *t, const sv_zip_entry *e, uint64_t count,
                      const char *path, sv_error *err) {
    size_t esize = sv_dtype_size(t->dtype);
    uint64_t numel = (uint64_t)t->storage_numel;
    if (numel > SIZE_MAX / esize || numel * esize != e->size)
        return sv_fail(err, "%s: storage '%s' of tensor '%s' has %zu bytes, not the %" PRIu64
                            " elements of %s its record gives", path, t->storage_key, t->name,
                       e->size, numel, sv_dtype_name(t->dtype));
    if (count && !is_contiguous(t)) {
        char shape[160], stride[160];
        format_dims(shape, sizeof shape, t->shape, t->ndim);
        format_dims(stride, sizeof stride, t->stride, t->ndim);
        return sv_fail(err, "%s: tensor '%s' is a non-contiguous view (shape %s, strides %s); "
                            "save it with .contiguous()", path, t->name, shape, stride);
    }
    if (count && ((uint64_t)t->offset > numel || count > numel - (uint64_t)t->offset))
        return sv_fail(err, "%s: tensor '%s' (%" PRIu64 " elements from offset %" PRId64
                            ") reaches past its storage '%s' of %" PRIu64 " elements", path,
                       t->name, count, t->offset, t->storage_key, numel);
    return SV_OK;
}

static int add_tensor(sv_weights *w, const sv_zip *z, const char *prefix,
                      const sv_pickle_tensor *t, const char *file, sv_error *err) {
    char entry_name[512];
    int overflow;
    uint64_t count = element_count(t, &overflow);
    if (overflow) return sv_fail(err, "%s: tensor '%s': element count overflows", file, t->name);
    if (strchr(t->storage_key, '/') ||
        (size_t)snprintf(entry_name, sizeof entry_name, "%sdata/%s", prefix, t->storage_key) >=
            sizeof entry_name)
        return sv_fail(err, "%s: tensor '%s': bad storage key", file, t->name);
    const sv_zip_entry *e = sv_zip_find(z, entry_name);
    if (!e) return sv_fail(err, "%s: tensor '%s': storage entry %s is missing", file, t->name,
                           entry_name);
    if (check_view(t, e, count, file, err)) return SV_FAIL;
    sv_tensor out = {.name = t->name, .dtype = t->dtype, .ndim = t->ndim, .count = count,
                     .data = e->data + (size_t)t->offset * sv_dtype_size(t->dtype),
                     .file = file};
    memcpy(out.shape, t->shape, sizeof out.shape);
    return sv_weights_add(w, &out, err);
}

static int add_all(sv_weights *w, const sv_zip *z, const char *file, sv_error *err) {
    size_t prefix_len = 0;
    const sv_zip_entry *pkl = find_pickle(z, file, &prefix_len, err);
    char prefix[256], pkl_path[4096 + 300];
    if (!pkl) return SV_FAIL;
    if (prefix_len >= sizeof prefix) return sv_fail(err, "%s: archive name too long", file);
    memcpy(prefix, pkl->name, prefix_len);
    prefix[prefix_len] = 0;
    snprintf(pkl_path, sizeof pkl_path, "%s: %.*sdata.pkl", file, (int)prefix_len, prefix);
    sv_pickle_tensor *t = NULL;
    size_t n = 0;
    if (check_byteorder(z, prefix, file, err) ||
        sv_pickle_state_dict(pkl->data, pkl->size, pkl_path, &t, &n, err))
        return SV_FAIL;
    int rc = SV_OK;
    for (size_t i = 0; i < n && rc == SV_OK; i++)
        if (t[i].supported) rc = add_tensor(w, z, prefix, &t[i], file, err);
    sv_pickle_tensors_free(t, n);
    return rc;
}

int sv_torch_bin_read(sv_weights *w, const char *path, sv_error *err) {
    const unsigned char *base;
    const char *file;
    size_t size;
    sv_zip z;
    if (sv_weights_map(w, path, &base, &size, &file, err) ||
        sv_zip_open(&z, base, size, file, err))
        return SV_FAIL;
    int rc = add_all(w, &z, file, err);
    sv_zip_close(&z);
    return rc;
}
