/* Safetensors reading (mmap + validation) and writing.
 *
 * File layout (https://github.com/huggingface/safetensors): an unsigned
 * little-endian 64-bit header length N, N bytes of JSON mapping each tensor
 * name to {"dtype", "shape", "data_offsets": [begin, end]} (offsets relative
 * to the data region that follows the header), then the data region. */
#include <cjson/cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"
#include "safetensors.h"
#include "torch_bin.h"

/* One memory-mapped file; tensors point into it. */
typedef struct mapping {
    char *path;
    void *base;
    size_t size;
} mapping;

/* A tensor stored in a dtype the forward pass does not compute with (CLIP's
 * int64 position_ids, a float64 buffer): validated, then left out of the
 * table; kept by name so that a weight stored that way is reported as such. */
typedef struct unloadable {
    char *name;
    char dtype[12];
} unloadable;

struct sv_weights {
    mapping *files;     /* [n_files] */
    size_t n_files;
    sv_tensor *tensors; /* [n_tensors], sorted by name once opening succeeds */
    size_t n_tensors;
    unloadable *skipped; /* [n_skipped] */
    size_t n_skipped;
};

/* A tensor's byte range in the data region, for the tiling check. */
typedef struct span {
    uint64_t begin, end;
    const char *name;
} span;

enum { PATH_BYTES = 4096 };

/* ------------------------------------------------------------------ small helpers */

static int join_path(char *buf, const char *dir, const char *name, sv_error *err) {
    int n = snprintf(buf, PATH_BYTES, "%s/%s", dir, name);
    if (n < 0 || n >= PATH_BYTES) return sv_fail(err, "%s/%s: path too long", dir, name);
    return SV_OK;
}

static int file_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

static uint64_t read_u64_le(const unsigned char *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* Why v is not a valid size or offset, or NULL if it is one (stored in *out).
 * cJSON keeps numbers as doubles, so integers above 2^53 cannot be told apart
 * from their neighbours and are refused rather than silently rounded. */
static const char *bad_uint(const cJSON *v, uint64_t *out) {
    if (!cJSON_IsNumber(v)) return "is not a number";
    double x = v->valuedouble;
    if (x < 0) return "is negative";
    if (x != floor(x)) return "is not an integer";
    if (x > 0x1p53) return "is too large";
    *out = (uint64_t)x;
    return NULL;
}

/* Sets *count to the product of the (non-negative) dimensions; returns 1 if
 * that overflows size_t. A zero dimension makes any product of the others
 * harmless, so it is looked for first. */
static int count_overflows(const int64_t *shape, int ndim, size_t *count) {
    *count = 0;
    for (int i = 0; i < ndim; i++)
        if (shape[i] == 0) return 0;
    *count = 1;
    for (int i = 0; i < ndim; i++) {
        if (*count > SIZE_MAX / (uint64_t)shape[i]) return 1;
        *count *= (size_t)shape[i];
    }
    return 0;
}

static int compare_tensor_names(const void *a, const void *b) {
    return strcmp(((const sv_tensor *)a)->name, ((const sv_tensor *)b)->name);
}

static int compare_spans(const void *a, const void *b) {
    const span *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    return (x->end > y->end) - (x->end < y->end);
}

static int compare_strings(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* ------------------------------------------------------------------ mapping files */

/* The size of the open file fd, which must be a non-empty regular file. */
static int mappable_size(int fd, const char *path, size_t *size, sv_error *err) {
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
        return sv_fail(err, "%s: not a regular file", path);
    if (st.st_size == 0) return sv_fail(err, "%s: empty file (truncated)", path);
    if ((uint64_t)st.st_size > SIZE_MAX) return sv_fail(err, "%s: file too large to map", path);
    *size = (size_t)st.st_size;
    return SV_OK;
}

/* Maps path read-only and appends it to w->files. */
static int map_file(sv_weights *w, const char *path, sv_error *err) {
    mapping *files = realloc(w->files, (w->n_files + 1) * sizeof *files);
    if (!files) return sv_fail(err, "%s: out of memory", path);
    w->files = files;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sv_fail(err, "%s: cannot open: %s", path, strerror(errno));
    size_t size = 0;
    int rc = mappable_size(fd, path, &size, err);
    void *base = rc == SV_OK ? mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    int map_errno = errno;
    close(fd); /* the mapping stays valid without the descriptor */
    if (rc != SV_OK) return SV_FAIL;
    if (base == MAP_FAILED) return sv_fail(err, "%s: cannot map: %s", path, strerror(map_errno));
    char *copy = strdup(path);
    if (!copy) {
        munmap(base, size);
        return sv_fail(err, "%s: out of memory", path);
    }
    w->files[w->n_files++] = (mapping){copy, base, size};
    return SV_OK;
}

/* ------------------------------------------------------------------ header entries */

/* *out and *esize for F32, F16 and BF16 (*loadable 1); the element size of the
 * other whole-byte dtypes, whose tensors are validated and skipped (*loadable 0). */
static int parse_dtype(const char *path, const char *name, const char *s, sv_dtype *out,
                       size_t *esize, int *loadable, sv_error *err) {
    static const struct { const char *name; size_t size; } skippable[] = {
        {"F64", 8}, {"C64", 8}, {"I64", 8}, {"U64", 8}, {"I32", 4}, {"U32", 4}, {"I16", 2},
        {"U16", 2}, {"I8", 1}, {"U8", 1}, {"BOOL", 1}, {"F8_E4M3", 1}, {"F8_E5M2", 1},
        {"F8_E8M0", 1}};
    static const char *const packed[] = {"F6_E2M3", "F6_E3M2", "F4"};
    *loadable = sv_dtype_parse(s, out) == 0;
    if (*loadable) {
        *esize = sv_dtype_size(*out);
        return SV_OK;
    }
    for (size_t i = 0; i < sizeof skippable / sizeof *skippable; i++)
        if (strcmp(s, skippable[i].name) == 0) {
            *esize = skippable[i].size;
            return SV_OK;
        }
    for (size_t i = 0; i < sizeof packed / sizeof *packed; i++)
        if (strcmp(s, packed[i]) == 0)
            return sv_fail(err, "%s: tensor '%s': unsupported packed dtype '%s'", path, name, s);
    return sv_fail(err, "%s: tensor '%s': unknown dtype '%s'", path, name, s);
}

/* Fills t->ndim, t->shape and t->count; *bytes = count * dtype size, every
 * product checked for overflow before it is formed. */
static int parse_shape(const char *path, const char *name, const cJSON *shape, size_t esize,
                       const char *dtype, sv_tensor *t, size_t *bytes, sv_error *err) {
    int ndim = cJSON_GetArraySize(shape);
    if (ndim > SV_TENSOR_MAX_DIMS)
        return sv_fail(err, "%s: tensor '%s': shape has %d dimensions, more than the %d supported",
                       path, name, ndim, SV_TENSOR_MAX_DIMS);
    t->ndim = 0;
    for (const cJSON *d = shape->child; d; d = d->next) {
        uint64_t v;
        const char *why = bad_uint(d, &v);
        if (why)
            return sv_fail(err, "%s: tensor '%s': shape[%d] %s", path, name, t->ndim, why);
        t->shape[t->ndim++] = (int64_t)v;
    }
    if (count_overflows(t->shape, t->ndim, &t->count))
        return sv_fail(err, "%s: tensor '%s': element count overflows", path, name);
    if (t->count > SIZE_MAX / esize)
        return sv_fail(err, "%s: tensor '%s': byte size overflows (%zu elements of %s)", path,
                       name, t->count, dtype);
    *bytes = t->count * esize;
    return SV_OK;
}

static int parse_offsets(const char *path, const char *name, const cJSON *offsets, size_t bytes,
                         size_t data_size, span *s, sv_error *err) {
    if (cJSON_GetArraySize(offsets) != 2)
        return sv_fail(err, "%s: tensor '%s': data_offsets must have 2 entries", path, name);
    const char *why = bad_uint(offsets->child, &s->begin);
    if (!why) why = bad_uint(offsets->child->next, &s->end);
    if (why) return sv_fail(err, "%s: tensor '%s': a data_offsets entry %s", path, name, why);
    if (s->begin > s->end || s->end - s->begin != bytes)
        return sv_fail(err, "%s: tensor '%s': data_offsets [%llu, %llu] do not match its shape "
                       "and dtype (%zu bytes expected)", path, name,
                       (unsigned long long)s->begin, (unsigned long long)s->end, bytes);
    if (s->end > data_size)
        return sv_fail(err, "%s: tensor '%s': data_offsets end at %llu, past the %zu-byte data "
                       "region (truncated file)", path, name, (unsigned long long)s->end,
                       data_size);
    s->name = name;
    return SV_OK;
}

/* Returns the member of obj called key if it has the wanted type; fails otherwise. */
static const cJSON *typed_member(const char *path, const cJSON *obj, const char *key,
                                 cJSON_bool (*is_type)(const cJSON *), const char *type_name,
                                 sv_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v) {
        sv_fail(err, "%s: tensor '%s': missing \"%s\"", path, obj->string, key);
        return NULL;
    }
    if (!is_type(v)) {
        sv_fail(err, "%s: tensor '%s': \"%s\" is not %s", path, obj->string, key, type_name);
        return NULL;
    }
    return v;
}

static int parse_entry(const char *path, const cJSON *e, size_t data_size, sv_tensor *t,
                       int *loadable, span *s, sv_error *err) {
    if (!cJSON_IsObject(e))
        return sv_fail(err, "%s: tensor '%s': entry is not a JSON object", path, e->string);
    const cJSON *dtype = typed_member(path, e, "dtype", cJSON_IsString, "a string", err);
    size_t esize = 0;
    if (!dtype ||
        parse_dtype(path, e->string, dtype->valuestring, &t->dtype, &esize, loadable, err))
        return SV_FAIL;
    const cJSON *shape = typed_member(path, e, "shape", cJSON_IsArray, "an array", err);
    size_t bytes = 0;
    if (!shape || parse_shape(path, e->string, shape, esize, dtype->valuestring, t, &bytes, err))
        return SV_FAIL;
    const cJSON *offsets = typed_member(path, e, "data_offsets", cJSON_IsArray, "an array", err);
    if (!offsets || parse_offsets(path, e->string, offsets, bytes, data_size, s, err))
        return SV_FAIL;
    return SV_OK;
}

/* ------------------------------------------------------------------ one file */

/* The tensors' byte ranges must tile [0, data_size) exactly: sorted by start,
 * each begins where the previous ended. Anything else is a corrupt or
 * hand-edited file, and unaccounted bytes could hide a wrong offset. */
static int check_tiling(const char *path, span *spans, size_t n, size_t data_size,
                        sv_error *err) {
    qsort(spans, n, sizeof *spans, compare_spans);
    uint64_t expected = 0;
    if (n && spans[0].begin != 0)
        return sv_fail(err, "%s: tensor data does not start at 0: first tensor '%s' begins at "
                       "%llu (gap)", path, spans[0].name, (unsigned long long)spans[0].begin);
    for (size_t i = 0; i < n; i++) {
        if (spans[i].begin > expected)
            return sv_fail(err, "%s: gap of %llu bytes between tensors '%s' and '%s'", path,
                           (unsigned long long)(spans[i].begin - expected), spans[i - 1].name,
                           spans[i].name);
        if (spans[i].begin < expected && !strcmp(spans[i - 1].name, spans[i].name))
            return sv_fail(err, "%s: duplicate tensor name '%s' in the header", path,
                           spans[i].name);
        if (spans[i].begin < expected)
            return sv_fail(err, "%s: tensors '%s' and '%s' overlap", path, spans[i - 1].name,
                           spans[i].name);
        expected = spans[i].end;
    }
    if (expected != data_size)
        return sv_fail(err, "%s: tensor data ends at byte %llu but the file's data region has "
                       "%zu bytes (trailing bytes not covered by any tensor)", path,
                       (unsigned long long)expected, data_size);
    return SV_OK;
}

/* Records a validated tensor of a dtype the forward pass does not use. */
static int skip_entry(sv_weights *w, const char *path, const cJSON *e, sv_error *err) {
    unloadable *grown = realloc(w->skipped, (w->n_skipped + 1) * sizeof *grown);
    if (!grown) return sv_fail(err, "%s: out of memory", path);
    w->skipped = grown;
    unloadable *u = &w->skipped[w->n_skipped];
    if (!(u->name = strdup(e->string))) return sv_fail(err, "%s: out of memory", path);
    snprintf(u->dtype, sizeof u->dtype, "%s",
             cJSON_GetObjectItemCaseSensitive(e, "dtype")->valuestring);
    w->n_skipped++;
    return SV_OK;
}

/* Parses the header JSON of m and appends its tensors to w. On failure the
 * tensors appended so far stay in w, to be freed by sv_weights_close. */
static int read_entries(sv_weights *w, const mapping *m, const cJSON *root, size_t data_offset,
                        sv_error *err) {
    size_t n = (size_t)cJSON_GetArraySize(root);
    /* + 1: never ask realloc for 0 bytes, whose result may be NULL. */
    sv_tensor *grown = realloc(w->tensors, (w->n_tensors + n + 1) * sizeof *grown);
    if (!grown) return sv_fail(err, "%s: out of memory", m->path);
    w->tensors = grown;
    span *spans = sv_alloc_array(n, sizeof *spans, err, m->path);
    if (!spans) return SV_FAIL;
    size_t n_spans = 0, data_size = m->size - data_offset;
    int rc = SV_OK;
    for (const cJSON *e = root->child; e && rc == SV_OK; e = e->next) {
        if (strcmp(e->string, "__metadata__") == 0) continue; /* free-form, not needed */
        sv_tensor t = {.file = m->path};
        int loadable = 1;
        rc = parse_entry(m->path, e, data_size, &t, &loadable, &spans[n_spans], err);
        if (rc == SV_OK && !loadable) {
            n_spans++;
            rc = skip_entry(w, m->path, e, err);
            continue;
        }
        if (rc == SV_OK && !(t.name = strdup(e->string)))
            rc = sv_fail(err, "%s: out of memory", m->path);
        if (rc == SV_OK) {
            t.data = (const unsigned char *)m->base + data_offset + spans[n_spans++].begin;
            w->tensors[w->n_tensors++] = t;
        }
    }
    if (rc == SV_OK) rc = check_tiling(m->path, spans, n_spans, data_size, err);
    free(spans);
    return rc;
}

static int parse_header(sv_weights *w, const mapping *m, sv_error *err) {
    const unsigned char *base = m->base;
    if (m->size < 8)
        return sv_fail(err, "%s: file is %zu bytes, shorter than the 8-byte header length "
                       "(truncated)", m->path, m->size);
    uint64_t header_len = read_u64_le(base);
    if (header_len > SV_SAFETENSORS_MAX_HEADER)
        return sv_fail(err, "%s: header length %llu exceeds the %zu-byte limit", m->path,
                       (unsigned long long)header_len, SV_SAFETENSORS_MAX_HEADER);
    if (header_len > m->size - 8)
        return sv_fail(err, "%s: header length %llu runs past the end of the %zu-byte file "
                       "(truncated)", m->path, (unsigned long long)header_len, m->size);
    const char *text = (const char *)base + 8, *end = NULL;
    cJSON *root = cJSON_ParseWithLengthOpts(text, (size_t)header_len, &end, 0);
    if (!root)
        return sv_fail(err, "%s: header is not valid JSON (error near byte %td of the header)",
                       m->path, end ? end - text : (ptrdiff_t)0);
    /* Only the space padding writers add may follow the JSON value. */
    while (end < text + header_len && *end && strchr(" \t\r\n", *end)) end++;
    int rc;
    if (end != text + header_len)
        rc = sv_fail(err, "%s: header has data after its JSON value", m->path);
    else if (!cJSON_IsObject(root))
        rc = sv_fail(err, "%s: header is not a JSON object", m->path);
    else
        rc = read_entries(w, m, root, 8 + (size_t)header_len, err);
    cJSON_Delete(root);
    return rc;
}

static int ends_with(const char *s, const char *suffix) {
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && strcmp(s + n - k, suffix) == 0;
}

/* A shard is a safetensors file or, named *.bin, a torch.save archive. */
static int load_file(sv_weights *w, const char *path, sv_error *err) {
    if (ends_with(path, ".bin")) return sv_torch_bin_read(w, path, err);
    if (map_file(w, path, err)) return SV_FAIL;
    return parse_header(w, &w->files[w->n_files - 1], err);
}

/* Sorts the tensors for bsearch and rejects a name given twice (in one
 * header, or in two shards). */
static int sort_and_check_unique(sv_weights *w, sv_error *err) {
    if (w->n_tensors) qsort(w->tensors, w->n_tensors, sizeof *w->tensors, compare_tensor_names);
    for (size_t i = 1; i < w->n_tensors; i++) {
        const sv_tensor *a = &w->tensors[i - 1], *b = &w->tensors[i];
        if (strcmp(a->name, b->name) != 0) continue;
        if (strcmp(a->file, b->file) == 0)
            return sv_fail(err, "%s: duplicate tensor name '%s'", a->file, a->name);
        return sv_fail(err, "%s: duplicate tensor name '%s' (also in %s)", a->file, a->name,
                       b->file);
    }
    return SV_OK;
}

/* ------------------------------------------------------------------ sharded index */

static int read_small_file(const char *path, char **text, size_t *len, sv_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) return sv_fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    int rc = SV_FAIL;
    *text = NULL;
    if (fstat(fileno(f), &st) != 0 || st.st_size < 0 ||
        (uint64_t)st.st_size > SV_SAFETENSORS_MAX_HEADER) {
        sv_fail(err, "%s: unreadable or larger than %zu bytes", path, SV_SAFETENSORS_MAX_HEADER);
    } else if (!(*text = malloc((size_t)st.st_size + 1))) {
        sv_fail(err, "%s: out of memory", path);
    } else if ((*len = fread(*text, 1, (size_t)st.st_size, f)) != (size_t)st.st_size) {
        sv_fail(err, "%s: read error", path);
    } else {
        rc = SV_OK;
    }
    fclose(f);
    if (rc != SV_OK) free(*text);
    return rc;
}

/* Collects the weight_map's shard names, sorted and without repeats, so each
 * shard is mapped once however many tensors name it. */
static int unique_shards(const char *index_path, const cJSON *map, const char ***out,
                         size_t *n_out, sv_error *err) {
    size_t n = 0;
    const char **names = sv_alloc_array((size_t)cJSON_GetArraySize(map), sizeof *names, err,
                                        index_path);
    if (!names) return SV_FAIL;
    for (const cJSON *e = map->child; e; e = e->next) {
        int bad = !cJSON_IsString(e);
        /* Shard names come from the file: refuse anything that could leave the
         * directory (conservatively, any ".."). */
        if (bad || e->valuestring[0] == '/' || strstr(e->valuestring, "..")) {
            free(names);
            return sv_fail(err, "%s: weight_map entry '%s' %s", index_path, e->string,
                           bad ? "is not a string"
                               : "names a shard outside the checkpoint directory");
        }
        names[n++] = e->valuestring;
    }
    if (n) qsort(names, n, sizeof *names, compare_strings);
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (kept == 0 || strcmp(names[kept - 1], names[i]) != 0) names[kept++] = names[i];
    *out = names;
    *n_out = kept;
    return SV_OK;
}

/* Every tensor the index lists must be in the shard it names. Shard i of the
 * sorted unique list is w->files[i], so comparing path pointers suffices. */
static int check_index_entries(const sv_weights *w, const char *index_path, const cJSON *map,
                               const char **shards, size_t n_shards, sv_error *err) {
    for (const cJSON *e = map->child; e; e = e->next) {
        const char **shard = bsearch(&e->valuestring, shards, n_shards, sizeof *shards,
                                     compare_strings);
        const sv_tensor *t = sv_weights_find(w, e->string);
        if (!t || t->file != w->files[shard - shards].path)
            return sv_fail(err, "%s: tensor '%s' is listed in shard %s but absent from it",
                           index_path, e->string, e->valuestring);
    }
    return SV_OK;
}

static int load_shards(sv_weights *w, const char *dir, const char *index_path,
                       const cJSON *root, sv_error *err) {
    const cJSON *map = cJSON_GetObjectItemCaseSensitive(root, "weight_map");
    if (!cJSON_IsObject(map)) return sv_fail(err, "%s: no \"weight_map\" object", index_path);
    const char **shards = NULL;
    size_t n_shards = 0;
    if (unique_shards(index_path, map, &shards, &n_shards, err)) return SV_FAIL;
    int rc = SV_OK;
    for (size_t i = 0; i < n_shards && rc == SV_OK; i++) {
        char path[PATH_BYTES];
        rc = join_path(path, dir, shards[i], err);
        if (rc == SV_OK && !file_exists(path))
            rc = sv_fail(err, "%s: shard file %s is missing", index_path, path);
        if (rc == SV_OK) rc = load_file(w, path, err);
    }
    if (rc == SV_OK) rc = sort_and_check_unique(w, err);
    if (rc == SV_OK) rc = check_index_entries(w, index_path, map, shards, n_shards, err);
    free(shards);
    return rc;
}

static int load_index(sv_weights *w, const char *dir, const char *index_path, sv_error *err) {
    char *text = NULL;
    size_t len = 0;
    if (read_small_file(index_path, &text, &len, err)) return SV_FAIL;
    cJSON *root = cJSON_ParseWithLength(text, len);
    free(text);
    if (!root) return sv_fail(err, "%s: not valid JSON", index_path);
    int rc = load_shards(w, dir, index_path, root, err);
    cJSON_Delete(root);
    return rc;
}

/* ------------------------------------------------------------------ public: reading */

static int open_with(sv_weights **out, const char *dir, const char *path, int is_index,
                     sv_error *err) {
    *out = NULL;
    sv_weights *w = calloc(1, sizeof *w);
    if (!w) return sv_fail(err, "%s: out of memory", path);
    int rc = is_index ? load_index(w, dir, path, err) : load_file(w, path, err);
    if (rc == SV_OK && !is_index) rc = sort_and_check_unique(w, err);
    if (rc != SV_OK) {
        sv_weights_close(w);
        return SV_FAIL;
    }
    *out = w;
    return SV_OK;
}

int sv_weights_open_file(sv_weights **out, const char *path, sv_error *err) {
    return open_with(out, NULL, path, 0, err);
}

int sv_weights_open(sv_weights **out, const char *dir, sv_error *err) {
    /* in this order of preference, as transformers' from_pretrained */
    static const struct { const char *name; int is_index; } files[] = {
        {"model.safetensors", 0}, {"model.safetensors.index.json", 1},
        {"pytorch_model.bin", 0}, {"pytorch_model.bin.index.json", 1}};
    *out = NULL;
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        char path[PATH_BYTES];
        if (join_path(path, dir, files[i].name, err)) return SV_FAIL;
        if (file_exists(path)) return open_with(out, dir, path, files[i].is_index, err);
    }
    return sv_fail(err, "%s: no model.safetensors, pytorch_model.bin or their .index.json", dir);
}

int sv_weights_map(sv_weights *w, const char *path, const unsigned char **base, size_t *size,
                   const char **stored_path, sv_error *err) {
    if (map_file(w, path, err)) return SV_FAIL;
    const mapping *m = &w->files[w->n_files - 1];
    *base = m->base, *size = m->size, *stored_path = m->path;
    return SV_OK;
}

int sv_weights_add(sv_weights *w, const sv_tensor *t, sv_error *err) {
    sv_tensor *grown = realloc(w->tensors, (w->n_tensors + 1) * sizeof *grown);
    if (!grown) return sv_fail(err, "%s: out of memory", t->file);
    w->tensors = grown;
    w->tensors[w->n_tensors] = *t;
    if (!(w->tensors[w->n_tensors].name = strdup(t->name)))
        return sv_fail(err, "%s: out of memory", t->file);
    w->n_tensors++;
    return SV_OK;
}

void sv_weights_close(sv_weights *w) {
    if (!w) return;
    for (size_t i = 0; i < w->n_tensors; i++) free(w->tensors[i].name);
    for (size_t i = 0; i < w->n_skipped; i++) free(w->skipped[i].name);
    free(w->skipped);
    for (size_t i = 0; i < w->n_files; i++) {
        munmap(w->files[i].base, w->files[i].size);
        free(w->files[i].path);
    }
    free(w->tensors);
    free(w->files);
    free(w);
}

static int compare_name_to_tensor(const void *key, const void *t) {
    return strcmp(key, ((const sv_tensor *)t)->name);
}

const sv_tensor *sv_weights_find(const sv_weights *w, const char *name) {
    if (!w->n_tensors) return NULL;
    return bsearch(name, w->tensors, w->n_tensors, sizeof *w->tensors, compare_name_to_tensor);
}

size_t sv_weights_count(const sv_weights *w) { return w->n_tensors; }

const char *sv_weights_unloadable_dtype(const sv_weights *w, const char *name) {
    for (size_t i = 0; i < w->n_skipped; i++)
        if (strcmp(w->skipped[i].name, name) == 0) return w->skipped[i].dtype;
    return NULL;
}

const sv_tensor *sv_weights_at(const sv_weights *w, size_t i) {
    return i < w->n_tensors ? &w->tensors[i] : NULL;
}

/* ------------------------------------------------------------------ writing */

typedef struct write_entry {
    const sv_tensor_src *src;
    size_t count, bytes;
} write_entry;

static int compare_entry_names(const void *a, const void *b) {
    return strcmp(((const write_entry *)a)->src->name, ((const write_entry *)b)->src->name);
}

static int describe_source(const char *path, const sv_tensor_src *t, write_entry *e,
                           sv_error *err) {
    if (!t->name) return sv_fail(err, "%s: a tensor has no name", path);
    if (t->ndim < 0 || t->ndim > SV_TENSOR_MAX_DIMS)
        return sv_fail(err, "%s: tensor '%s': ndim %d out of range", path, t->name, t->ndim);
    for (int i = 0; i < t->ndim; i++)
        if (t->shape[i] < 0)
            return sv_fail(err, "%s: tensor '%s': shape[%d] is negative", path, t->name, i);
    e->src = t;
    if (count_overflows(t->shape, t->ndim, &e->count) ||
        e->count > SIZE_MAX / sv_dtype_size(t->dtype))
        return sv_fail(err, "%s: tensor '%s': size overflows", path, t->name);
    if (e->count && !t->data) return sv_fail(err, "%s: tensor '%s': no data", path, t->name);
    e->bytes = e->count * sv_dtype_size(t->dtype);
    return SV_OK;
}

/* Writes s as a JSON string the way Python's json.dumps does for ASCII text
 * (UTF-8 passes through unescaped, which is equally valid JSON). */
static void put_json_string(FILE *f, const char *s) {
    static const char controls[] = "\b\f\n\r\t", short_forms[] = "bfnrt";
    fputc('"', f);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        const char *c = *p < 0x20 ? strchr(controls, *p) : NULL;
        if (*p == '"' || *p == '\\') fprintf(f, "\\%c", *p);
        else if (c) fprintf(f, "\\%c", short_forms[c - controls]);
        else if (*p < 0x20) fprintf(f, "\\u%04x", *p);
        else fputc(*p, f);
    }
    fputc('"', f);
}

/* The header byte for byte as the reference writer makes it, i.e. Python's
 * json.dumps(header, separators=(",", ":")) with the tensors in sorted order
 * and "__metadata__" last, then space padded to a multiple of 8 bytes so that
 * the data region starts aligned. */
static int build_header(const char *path, const write_entry *entries, size_t n, char **text,
                        size_t *len, sv_error *err) {
    FILE *f = open_memstream(text, len);
    if (!f) return sv_fail(err, "%s: out of memory", path);
    uint64_t offset = 0;
    fputc('{', f);
    for (size_t i = 0; i < n; i++) {
        const sv_tensor_src *t = entries[i].src;
        put_json_string(f, t->name);
        fprintf(f, ":{\"dtype\":\"%s\",\"shape\":[", sv_dtype_name(t->dtype));
        for (int d = 0; d < t->ndim; d++) fprintf(f, "%s%" PRId64, d ? "," : "", t->shape[d]);
        fprintf(f, "],\"data_offsets\":[%" PRIu64 ",%" PRIu64 "]},", offset,
                offset + entries[i].bytes);
        offset += entries[i].bytes;
    }
    fputs("\"__metadata__\":{\"format\":\"pt\"}}", f);
    while (ftell(f) % 8) fputc(' ', f);
    int failed = ferror(f);
    if (fclose(f) != 0 || failed) {
        free(*text);
        *text = NULL;
        return sv_fail(err, "%s: out of memory", path);
    }
    return SV_OK;
}

static int write_tensor_data(FILE *f, const write_entry *e) {
    enum { CHUNK = 4096 };
    unsigned char buf[CHUNK * 4];
    size_t esize = sv_dtype_size(e->src->dtype);
    for (size_t i = 0; i < e->count; i += CHUNK) {
        size_t k = e->count - i < CHUNK ? e->count - i : CHUNK;
        sv_from_f32(e->src->dtype, e->src->data + i, buf, k);
        if (fwrite(buf, esize, k, f) != k) return SV_FAIL;
    }
    return SV_OK;
}

/* Atomically (atomic_file.h): a reader never sees half a file. */
static int write_atomically(const char *path, const char *header, size_t header_len,
                            const write_entry *entries, size_t n, sv_error *err) {
    sv_atomic_file a;
    if (sv_atomic_open(&a, path, err)) return SV_FAIL;
    unsigned char len_le[8];
    for (int i = 0; i < 8; i++) len_le[i] = (unsigned char)((uint64_t)header_len >> (8 * i));
    int ok = fwrite(len_le, 1, 8, a.f) == 8 && fwrite(header, 1, header_len, a.f) == header_len;
    for (size_t i = 0; ok && i < n; i++) ok = write_tensor_data(a.f, &entries[i]) == SV_OK;
    if (!ok) {
        sv_atomic_abort(&a);
        return sv_fail(err, "%s: write failed (%s)", path, strerror(errno));
    }
    return sv_atomic_commit(&a, err);
}

int sv_safetensors_write(const char *path, const sv_tensor_src *tensors, size_t n,
                         sv_error *err) {
    write_entry *entries = sv_alloc_array(n, sizeof *entries, err, path);
    if (!entries) return SV_FAIL;
    int rc = SV_OK;
    for (size_t i = 0; i < n && rc == SV_OK; i++)
        rc = describe_source(path, &tensors[i], &entries[i], err);
    if (rc == SV_OK && n) qsort(entries, n, sizeof *entries, compare_entry_names);
    for (size_t i = 1; i < n && rc == SV_OK; i++)
        if (strcmp(entries[i - 1].src->name, entries[i].src->name) == 0)
            rc = sv_fail(err, "%s: duplicate tensor name '%s'", path, entries[i].src->name);
    char *header = NULL;
    size_t header_len = 0;
    if (rc == SV_OK) rc = build_header(path, entries, n, &header, &header_len, err);
    if (rc == SV_OK) rc = write_atomically(path, header, header_len, entries, n, err);
    free(header);
    free(entries);
    return rc;
}
