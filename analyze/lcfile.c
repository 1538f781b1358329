#include <errno.h>
#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atomic_file.h"
#include "lcfile.h"
#include "version.h"

#define FORMAT_NAME "shortv-lc"
#define FORMAT_VERSION 1
#define CHUNK_ROWS 16

static const char *const group_names[SV_N_GROUPS] = {"visual", "text"};
static const char *const row_ints[] = {"/samples/visual_start", "/samples/visual_end",
                                       "/samples/n_tokens"};
/* The per-sample strings a file may lack (written by an older shortv, or unknown: ""). */
enum { N_TEXTS = 3 };
static const char *const row_texts[N_TEXTS] = {"/samples/type", "/samples/question",
                                               "/samples/image"};

static char ***row_text(sv_lc_data *d, int k) {
    char ***texts[N_TEXTS] = {&d->types, &d->questions, &d->images};
    return texts[k];
}

const char *sv_group_name(int g) { return group_names[g]; }

/* A sweep's output: every row and skipped line so far, in memory; each change
 * rewrites the whole file (small: n_samples x n_layers doubles per group). */
struct sv_lcfile {
    char path[1024];
    sv_lc_data d;
    size_t cap, skip_cap; /* rows and skipped lines allocated in d */
    int64_t at;           /* position of the next row or skipped line */
    int at_finish;        /* sv_lcfile_write_at_finish */
    const char *question, *image; /* the next append's (sv_lcfile_text) */
};

/* HDF5 prints its error stack by default; library code must stay silent. */
static void silence_hdf5(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* ---------------------------------------------------------------- building a file image */

/* Object creation without modification times, so equal inputs give equal bytes. */
static hid_t untimed_plist(hid_t cls) {
    hid_t p = H5Pcreate(cls);
    H5Pset_obj_track_times(p, 0);
    return p;
}

static hid_t utf8_string_type(size_t len) {
    hid_t t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, len ? len : H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    return t;
}

/* Variable-length UTF-8, which h5py returns as str (fixed-length comes back as bytes). */
static int write_attr_string(hid_t obj, const char *name, const char *value) {
    hid_t t = utf8_string_type(0), s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, t, &value);
    H5Aclose(a), H5Sclose(s), H5Tclose(t);
    return rc < 0 ? SV_FAIL : SV_OK;
}

static int write_attr_int(hid_t obj, const char *name, int64_t value) {
    hid_t s = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(obj, name, H5T_STD_I64LE, s, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, H5T_NATIVE_INT64, &value);
    H5Aclose(a), H5Sclose(s);
    return rc < 0 ? SV_FAIL : SV_OK;
}

static void groups_string(int groups, char *out, size_t size) {
    out[0] = 0;
    for (int g = 0; g < SV_N_GROUPS; g++)
        if (groups >> g & 1)
            snprintf(out + strlen(out), size - strlen(out), "%s%s", out[0] ? "," : "",
                     group_names[g]);
}

static int write_meta(hid_t file, const sv_lc_data *d, int complete) {
    const sv_lc_meta *m = &d->meta;
    char groups[64];
    groups_string(m->groups, groups, sizeof groups);
    return write_attr_string(file, "format", FORMAT_NAME) ||
           write_attr_int(file, "format_version", FORMAT_VERSION) ||
           write_attr_string(file, "model", m->model) ||
           write_attr_string(file, "config_hash", m->config_hash) ||
           write_attr_string(file, "manifest", m->manifest) ||
           write_attr_int(file, "seed", m->seed) || write_attr_int(file, "limit", m->limit) ||
           write_attr_int(file, "n_layers", m->n_layers) ||
           write_attr_string(file, "groups", groups) ||
           write_attr_string(file, "aspect", m->aspect) ||
           write_attr_int(file, "naive", m->naive) ||
           write_attr_string(file, "metric", SV_LC_METRIC) ||
           write_attr_string(file, "position", SV_LC_POSITION) ||
           write_attr_string(file, "tool_version", "shortv " SHORTV_VERSION) ||
           write_attr_string(file, "created", d->created) ||
           write_attr_int(file, "complete", complete) ||
           (m->shards && (write_attr_int(file, "shard", m->shard) ||
                          write_attr_int(file, "shards", m->shards))) ||
           (d->partial && write_attr_int(file, "selected", d->selected));
}

/* A dataset of `rows` rows (cols values each; cols 0: 1-D) that h5py can still
 * extend along its first axis, as the files of earlier versions could. */
static int write_growing(hid_t file, const char *name, hid_t file_type, hid_t mem_type,
                         hsize_t rows, hsize_t cols, int gzip, const void *data) {
    int rank = cols ? 2 : 1;
    hsize_t dims[2] = {rows, cols}, maxdims[2] = {H5S_UNLIMITED, cols},
            chunk[2] = {CHUNK_ROWS, cols};
    hid_t space = H5Screate_simple(rank, dims, maxdims), dcpl = untimed_plist(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, rank, chunk);
    if (gzip) H5Pset_deflate(dcpl, 6);
    hid_t d = H5Dcreate2(file, name, file_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    herr_t rc = d < 0 ? -1 : 0;
    if (rc >= 0 && rows) rc = H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    H5Dclose(d), H5Pclose(dcpl), H5Sclose(space);
    return rc < 0 ? SV_FAIL : SV_OK;
}

static int write_vector(hid_t file, const char *name, hid_t file_type, hid_t mem_type,
                        hsize_t n, const void *data) {
    hid_t space = H5Screate_simple(1, &n, NULL), dcpl = untimed_plist(H5P_DATASET_CREATE);
    hid_t d = H5Dcreate2(file, name, file_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    herr_t rc = d < 0 ? -1 : H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    H5Dclose(d), H5Pclose(dcpl), H5Sclose(space);
    return rc < 0 ? SV_FAIL : SV_OK;
}

static int write_rows(hid_t file, const sv_lc_data *d) {
    hid_t gcpl = untimed_plist(H5P_GROUP_CREATE), str = utf8_string_type(0);
    const char *groups[] = {"/lc", "/order", "/samples", "/skipped"};
    const int64_t *ints[] = {d->visual_start, d->visual_end, d->n_tokens};
    hsize_t n = d->n_samples;
    int rc = SV_OK;
    for (size_t i = 0; i < 4 && rc == SV_OK; i++) {
        hid_t g = H5Gcreate2(file, groups[i], H5P_DEFAULT, gcpl, H5P_DEFAULT);
        rc = g < 0 ? SV_FAIL : SV_OK;
        H5Gclose(g);
    }
    for (int g = 0; g < SV_N_GROUPS && rc == SV_OK; g++) {
        char name[64];
        snprintf(name, sizeof name, "/lc/%s", group_names[g]);
        if (d->meta.groups >> g & 1)
            rc = write_growing(file, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, n,
                               (hsize_t)d->meta.n_layers, 1, d->lc[g]);
    }
    for (size_t i = 0; i < 3 && rc == SV_OK; i++)
        rc = write_growing(file, row_ints[i], H5T_STD_I64LE, H5T_NATIVE_INT64, n, 0, 0, ints[i]);
    if (rc == SV_OK) rc = write_growing(file, "/samples/id", str, str, n, 0, 0, d->ids);
    char **const texts[N_TEXTS] = {d->types, d->questions, d->images};
    for (int k = 0; k < N_TEXTS && rc == SV_OK; k++)
        rc = write_growing(file, row_texts[k], str, str, n, 0, 0, texts[k]);
    if (rc == SV_OK)
        rc = write_growing(file, "/skipped/line", H5T_STD_I64LE, H5T_NATIVE_INT64, d->n_skipped,
                           0, 0, d->skipped_line);
    if (rc == SV_OK)
        rc = write_growing(file, "/skipped/reason", str, str, d->n_skipped, 0, 0,
                           d->skipped_reason);
    if (rc == SV_OK && d->partial)
        rc = write_growing(file, "/samples/position", H5T_STD_I64LE, H5T_NATIVE_INT64, n, 0, 0,
                           d->position) ||
             write_growing(file, "/skipped/position", H5T_STD_I64LE, H5T_NATIVE_INT64,
                           d->n_skipped, 0, 0, d->skipped_position);
    H5Tclose(str), H5Pclose(gcpl);
    return rc;
}

void sv_lc_summarise(const double *lc, size_t n, int n_layers, double *mean, double *std,
                     int32_t *order) {
    for (int l = 0; l < n_layers; l++) {
        double s = 0, ss = 0;
        for (size_t i = 0; i < n; i++) s += lc[i * n_layers + l];
        mean[l] = n ? s / (double)n : NAN;
        for (size_t i = 0; i < n; i++) ss += pow(lc[i * n_layers + l] - mean[l], 2);
        std[l] = n > 1 ? sqrt(ss / (double)(n - 1)) : 0.0;
    }
    /* insertion sort: stable, so equal means keep layer order */
    for (int l = 0; l < n_layers; l++) {
        int j = l;
        for (; j > 0 && mean[order[j - 1]] > mean[l]; j--) order[j] = order[j - 1];
        order[j] = l;
    }
}

/* Means, stds and orders of every swept group (d's were summarised from its rows). */
static int write_summary(hid_t file, const sv_lc_data *d) {
    int rc = SV_OK;
    hsize_t L = (hsize_t)d->meta.n_layers;
    for (int g = 0; g < SV_N_GROUPS && rc == SV_OK; g++) {
        if (!(d->meta.groups >> g & 1)) continue;
        char name[64];
        snprintf(name, sizeof name, "/lc/%s_mean", group_names[g]);
        rc = write_vector(file, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, L, d->mean[g]);
        snprintf(name, sizeof name, "/lc/%s_std", group_names[g]);
        rc = rc || write_vector(file, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, L, d->std[g]);
        snprintf(name, sizeof name, "/order/%s", group_names[g]);
        rc = rc || write_vector(file, name, H5T_STD_I32LE, H5T_NATIVE_INT32, L, d->order[g]);
    }
    return rc;
}

/* What each dataset holds, stored with it (README "The LC file"): %s is a group name. */
static const struct dataset_doc {
    const char *path, *dims, *units, *description;
} dataset_docs[] = {
    {"/lc/%s", "sample,layer", "nats",
     "Layer Contribution: KL(p_ablated || p_orig) of the next-token distribution at the last "
     "prompt position, p_ablated with the %s tokens' updates in that layer dropped"},
    {"/lc/%s_mean", "layer", "nats", "mean over the samples of /lc/%s"},
    {"/lc/%s_std", "layer", "nats",
     "sample standard deviation (ddof 1) over the samples of /lc/%s; 0 for one sample"},
    {"/order/%s", "rank", NULL,
     "0-based layer indices by ascending mean LC of the %s tokens (ties in layer order)"},
    {"/samples/id", "sample", NULL, "the manifest's sample id"},
    {"/samples/type", "sample", NULL, "the manifest's question type; \"\" if it has none"},
    {"/samples/question", "sample", NULL, "the manifest's question; \"\" if unknown"},
    {"/samples/image", "sample", NULL,
     "the image file calibrate read: the manifest's path, relative ones joined to the "
     "manifest's folder as given; \"\" if unknown"},
    {"/samples/visual_start", "sample", "tokens", "first prompt position of the image's tokens"},
    {"/samples/visual_end", "sample", "tokens", "prompt position after the image's tokens"},
    {"/samples/n_tokens", "sample", "tokens", "prompt length with the image's tokens"},
    {"/samples/position", "sample", NULL,
     "0-based position of the sample in its sweep's selection (partial files)"},
    {"/skipped/line", "skipped", NULL, "1-based manifest line skipped with --skip-bad"},
    {"/skipped/reason", "skipped", NULL, "why the line was skipped"},
    {"/skipped/position", "skipped", NULL,
     "0-based position in the sweep's selection; -1: a line that could not be read"},
};

/* dims, units and description on each dataset the file holds. */
static int describe_datasets(hid_t file) {
    int rc = SV_OK;
    for (size_t i = 0; i < sizeof dataset_docs / sizeof *dataset_docs; i++) {
        const struct dataset_doc *doc = &dataset_docs[i];
        int per_group = strstr(doc->path, "%s") != NULL;
        for (int g = 0; g < (per_group ? SV_N_GROUPS : 1) && rc == SV_OK; g++) {
            char path[64], description[512];
            snprintf(path, sizeof path, doc->path, group_names[g]);
            if (H5Lexists(file, path, H5P_DEFAULT) <= 0) continue; /* not swept, or partial */
            snprintf(description, sizeof description, doc->description, group_names[g]);
            hid_t set = H5Dopen2(file, path, H5P_DEFAULT);
            rc = set < 0 || write_attr_string(set, "dims", doc->dims) ||
                 (doc->units && write_attr_string(set, "units", doc->units)) ||
                 write_attr_string(set, "description", description);
            H5Dclose(set);
        }
    }
    return rc;
}

/* The whole file, built in memory (HDF5's core driver, no backing store) and
 * returned as malloc'd bytes: HDF5 itself never writes to disk,
 * so a full disk or a kill mid-write cannot leave it a half-updated file;
 * the bytes go through sv_atomic_file instead, which reports errno. */
static int build_image(const sv_lcfile *f, int complete, void **image, size_t *size) {
    *image = NULL;
    silence_hdf5();
    hid_t fapl = H5Pcreate(H5P_FILE_ACCESS);
    H5Pset_fapl_core(fapl, 1 << 16, 0);
    hid_t file = H5Fcreate(f->path, H5F_ACC_TRUNC, H5P_DEFAULT, fapl);
    H5Pclose(fapl);
    if (file < 0) return SV_FAIL;
    int rc = write_meta(file, &f->d, complete) || write_rows(file, &f->d) ||
             (complete && write_summary(file, &f->d)) || describe_datasets(file) ||
             H5Fflush(file, H5F_SCOPE_GLOBAL) < 0;
    ssize_t n = rc ? -1 : H5Fget_file_image(file, NULL, 0);
    *image = n > 0 ? malloc((size_t)n) : NULL;
    if (!*image || H5Fget_file_image(file, *image, (size_t)n) != n) rc = SV_FAIL;
    H5Fclose(file);
    *size = rc ? 0 : (size_t)n;
    return rc ? SV_FAIL : SV_OK;
}

/* Replaces f->path with the current state, atomically: a reader, a kill or a
 * full disk sees the previous state or this one. */
static int save(sv_lcfile *f, int complete, sv_error *err) {
    void *image;
    size_t size;
    if (build_image(f, complete, &image, &size)) {
        free(image);
        return sv_fail(err, "%s: cannot build the HDF5 file (out of memory?)", f->path);
    }
    sv_atomic_file a;
    int rc = sv_atomic_open(&a, f->path, err);
    if (rc == SV_OK) {
        fwrite(image, 1, size, a.f);
        rc = sv_atomic_commit(&a, err);
    }
    free(image);
    return rc;
}

/* ---------------------------------------------------------------- create / resume / append */

/* Room for one more row (every per-row array of f->d grows together). */
static int reserve_row(sv_lcfile *f) {
    if (f->d.n_samples < f->cap) return SV_OK;
    size_t cap = f->cap ? 2 * f->cap : 16, L = (size_t)f->d.meta.n_layers;
    void **arrays[] = {(void **)&f->d.lc[0], (void **)&f->d.lc[1], (void **)&f->d.ids,
                       (void **)&f->d.types, (void **)&f->d.questions, (void **)&f->d.images,
                       (void **)&f->d.visual_start, (void **)&f->d.visual_end,
                       (void **)&f->d.n_tokens, (void **)&f->d.position};
    size_t sizes[] = {L * sizeof(double), L * sizeof(double), sizeof(char *), sizeof(char *),
                      sizeof(char *), sizeof(char *), sizeof(int64_t), sizeof(int64_t),
                      sizeof(int64_t), sizeof(int64_t)};
    for (int g = 0; g < SV_N_GROUPS; g++)
        if (!(f->d.meta.groups >> g & 1)) sizes[g] = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof *sizes; i++) {
        if (!sizes[i]) continue;
        void *p = realloc(*arrays[i], cap * sizes[i]);
        if (!p) return SV_FAIL;
        *arrays[i] = p;
    }
    f->cap = cap;
    return SV_OK;
}

static sv_lcfile *new_lcfile(const char *path) {
    sv_lcfile *f = calloc(1, sizeof *f);
    if (f) snprintf(f->path, sizeof f->path, "%s", path);
    return f;
}

int sv_lcfile_create(sv_lcfile **out, const char *path, const sv_lc_meta *meta, sv_error *err) {
    *out = NULL;
    /* nothing is written before the first sample, but a folder that cannot
     * take the file is better found now than after the first sample */
    sv_atomic_file probe;
    if (sv_atomic_open(&probe, path, err)) return SV_FAIL;
    sv_atomic_abort(&probe);
    sv_lcfile *f = new_lcfile(path);
    if (!f) return sv_fail(err, "%s: out of memory", path);
    f->d.meta = *meta;
    time_t now = time(NULL);
    strftime(f->d.created, sizeof f->d.created, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
    *out = f;
    return SV_OK;
}

/* Paths that name the same file, however typed (relative, trailing slash, links). */
static int same_path(const char *a, const char *b) {
    char ra[PATH_MAX], rb[PATH_MAX];
    return !strcmp(a, b) || (realpath(a, ra) && realpath(b, rb) && !strcmp(ra, rb));
}

const char *sv_lc_meta_difference(const sv_lc_meta *a, const sv_lc_meta *b) {
    if (!same_path(a->model, b->model)) return "model";
    if (strcmp(a->config_hash, b->config_hash) || a->n_layers != b->n_layers)
        return "model config.json";
    if (!same_path(a->manifest, b->manifest)) return "manifest";
    if (a->seed != b->seed) return "seed";
    if (a->limit != b->limit) return "limit";
    if (a->groups != b->groups) return "groups";
    if (strcmp(a->aspect, b->aspect)) return "aspect";
    if (a->naive != b->naive) return "--naive";
    if (a->shard != b->shard || a->shards != b->shards) return "--shard";
    return NULL;
}

/* "" for the strings a read left NULL (a file of an older shortv, or none known),
 * so that every row has them. */
static int unknown_texts(sv_lc_data *d) {
    for (int k = 0; k < N_TEXTS; k++) {
        char ***texts = row_text(d, k);
        if (*texts) continue;
        if (!(*texts = calloc(d->n_samples ? d->n_samples : 1, sizeof **texts))) return SV_FAIL;
        for (size_t i = 0; i < d->n_samples; i++)
            if (!((*texts)[i] = strdup(""))) return SV_FAIL;
    }
    return SV_OK;
}

int sv_lcfile_resume(sv_lcfile **out, const char *path, const sv_lc_meta *meta, size_t *n_done,
                     sv_error *err) {
    *out = NULL;
    sv_lcfile *f = new_lcfile(path);
    if (!f) return sv_fail(err, "%s: out of memory", path);
    if (sv_lc_read(&f->d, path, err)) {
        free(f);
        return SV_FAIL;
    }
    const char *diff = sv_lc_meta_difference(&f->d.meta, meta);
    if (diff) {
        sv_lcfile_close(f);
        return sv_fail(err, "%s: was made with another %s; --resume needs the same arguments "
                            "(model, manifest, seed, limit, groups, aspect, --naive, --shard)",
                       path, diff);
    }
    f->cap = f->d.n_samples;
    if (unknown_texts(&f->d)) {
        sv_lcfile_close(f);
        return sv_fail(err, "%s: out of memory", path);
    }
    f->skip_cap = f->d.n_skipped;
    *n_done = f->d.n_samples;
    *out = f;
    return SV_OK;
}

void sv_lcfile_partial(sv_lcfile *f, int64_t selected) {
    f->d.partial = 1;
    f->d.selected = selected;
}

void sv_lcfile_at(sv_lcfile *f, int64_t position) { f->at = position; }

void sv_lcfile_write_at_finish(sv_lcfile *f) { f->at_finish = 1; }

const sv_lc_data *sv_lcfile_data(const sv_lcfile *f) { return &f->d; }

void sv_lcfile_text(sv_lcfile *f, const char *question, const char *image) {
    f->question = question, f->image = image;
}

static void free_row_strings(sv_lc_data *d, size_t i) {
    free(d->ids[i]);
    for (int k = 0; k < N_TEXTS; k++) free((*row_text(d, k))[i]);
}

int sv_lcfile_append(sv_lcfile *f, const char *id, const char *type, int64_t visual_start,
                     int64_t visual_end, int64_t n_tokens, const double *const lc[SV_N_GROUPS],
                     sv_error *err) {
    sv_lc_data *d = &f->d;
    size_t i = d->n_samples, L = (size_t)d->meta.n_layers;
    if (reserve_row(f)) return sv_fail(err, "%s: out of memory", f->path);
    const char *texts[N_TEXTS] = {type, f->question, f->image};
    f->question = f->image = NULL;
    d->ids[i] = strdup(id);
    for (int k = 0; k < N_TEXTS; k++) (*row_text(d, k))[i] = strdup(texts[k] ? texts[k] : "");
    if (!d->ids[i] || !d->types[i] || !d->questions[i] || !d->images[i]) {
        free_row_strings(d, i);
        return sv_fail(err, "%s: out of memory", f->path);
    }
    d->visual_start[i] = visual_start, d->visual_end[i] = visual_end, d->n_tokens[i] = n_tokens;
    d->position[i] = f->at;
    for (int g = 0; g < SV_N_GROUPS; g++)
        if (d->meta.groups >> g & 1) memcpy(d->lc[g] + i * L, lc[g], L * sizeof(double));
    d->n_samples++;
    if (f->at_finish || save(f, 0, err) == SV_OK) return SV_OK;
    /* not on disk: the row is not kept either, so memory and file agree */
    d->n_samples--;
    free_row_strings(d, i);
    return SV_FAIL;
}

int sv_lcfile_append_row(sv_lcfile *f, const sv_lc_data *from, size_t r, sv_error *err) {
    size_t L = (size_t)from->meta.n_layers;
    const double *lc[SV_N_GROUPS];
    for (int g = 0; g < SV_N_GROUPS; g++) lc[g] = from->lc[g] ? from->lc[g] + r * L : NULL;
    sv_lcfile_text(f, from->questions ? from->questions[r] : NULL,
                   from->images ? from->images[r] : NULL);
    return sv_lcfile_append(f, from->ids[r], from->types ? from->types[r] : NULL,
                            from->visual_start[r], from->visual_end[r], from->n_tokens[r], lc,
                            err);
}

int sv_lcfile_skip(sv_lcfile *f, int64_t line, const char *reason, sv_error *err) {
    sv_lc_data *d = &f->d;
    if (d->n_skipped == f->skip_cap) {
        size_t cap = f->skip_cap ? 2 * f->skip_cap : 16;
        int64_t *lines = realloc(d->skipped_line, cap * sizeof *lines);
        if (lines) d->skipped_line = lines;
        int64_t *at = lines ? realloc(d->skipped_position, cap * sizeof *at) : NULL;
        if (at) d->skipped_position = at;
        char **reasons = at ? realloc(d->skipped_reason, cap * sizeof *reasons) : NULL;
        if (!reasons) return sv_fail(err, "%s: out of memory", f->path);
        d->skipped_reason = reasons, f->skip_cap = cap;
    }
    if (!(d->skipped_reason[d->n_skipped] = strdup(reason)))
        return sv_fail(err, "%s: out of memory", f->path);
    d->skipped_position[d->n_skipped] = f->at;
    d->skipped_line[d->n_skipped++] = line;
    return SV_OK;
}

/* mean/std/order of every swept group from the rows (allocated on first use). */
static int summarise(sv_lc_data *d) {
    int L = d->meta.n_layers;
    for (int g = 0; g < SV_N_GROUPS; g++) {
        if (!(d->meta.groups >> g & 1)) continue;
        if (!d->mean[g]) d->mean[g] = malloc((size_t)L * sizeof(double));
        if (!d->std[g]) d->std[g] = malloc((size_t)L * sizeof(double));
        if (!d->order[g]) d->order[g] = malloc((size_t)L * sizeof(int32_t));
        if (!d->mean[g] || !d->std[g] || !d->order[g]) return SV_FAIL;
        sv_lc_summarise(d->lc[g], d->n_samples, L, d->mean[g], d->std[g], d->order[g]);
    }
    return SV_OK;
}

int sv_lcfile_finish(sv_lcfile *f, sv_error *err) {
    int rc;
    if (f->d.n_samples == 0 && !f->d.partial) /* a shard may hold none */
        rc = sv_fail(err, "%s: no sample was measured (%zu skipped%s%s); nothing written",
                     f->path, f->d.n_skipped, f->d.n_skipped ? ", the first: " : "",
                     f->d.n_skipped ? f->d.skipped_reason[0] : "");
    else if (f->d.partial)
        rc = save(f, 0, err);
    else if (summarise(&f->d))
        rc = sv_fail(err, "%s: out of memory", f->path);
    else
        rc = save(f, 1, err);
    sv_lcfile_close(f);
    return rc;
}

void sv_lcfile_close(sv_lcfile *f) {
    if (!f) return;
    sv_lc_data_free(&f->d);
    free(f);
}

/* ---------------------------------------------------------------- reading */

static size_t rows_of(hid_t file, const char *name) {
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    if (d < 0) return 0;
    hid_t s = H5Dget_space(d);
    hsize_t dims[2] = {0, 0};
    H5Sget_simple_extent_dims(s, dims, NULL);
    H5Sclose(s), H5Dclose(d);
    return (size_t)dims[0];
}

static int read_matrix(hid_t file, const char *name, size_t rows, size_t cols, double *out) {
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    if (d < 0) return SV_FAIL;
    hid_t fspace = H5Dget_space(d);
    hsize_t start[2] = {0, 0}, count[2] = {rows, cols};
    hid_t mspace = H5Screate_simple(2, count, NULL);
    herr_t rc = H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL);
    if (rc >= 0 && rows) rc = H5Dread(d, H5T_NATIVE_DOUBLE, mspace, fspace, H5P_DEFAULT, out);
    H5Sclose(mspace), H5Sclose(fspace), H5Dclose(d);
    return rc < 0 ? SV_FAIL : SV_OK;
}

static int read_attr_string(hid_t obj, const char *name, char *out, size_t size) {
    out[0] = 0;
    if (H5Aexists(obj, name) <= 0) return SV_FAIL;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT), t = H5Aget_type(a);
    int rc = SV_FAIL;
    if (H5Tget_class(t) == H5T_STRING && H5Tis_variable_str(t) > 0) {
        char *value = NULL;
        hid_t mt = utf8_string_type(0);
        if (H5Aread(a, mt, &value) >= 0 && value) {
            snprintf(out, size, "%s", value);
            rc = SV_OK;
        }
        H5free_memory(value);
        H5Tclose(mt);
    }
    H5Tclose(t), H5Aclose(a);
    return rc;
}

static int read_attr_int(hid_t obj, const char *name, int64_t *out) {
    if (H5Aexists(obj, name) <= 0) return SV_FAIL;
    hid_t a = H5Aopen(obj, name, H5P_DEFAULT);
    herr_t rc = H5Aread(a, H5T_NATIVE_INT64, out);
    H5Aclose(a);
    return rc < 0 ? SV_FAIL : SV_OK;
}

static int parse_groups(const char *s, int *groups) {
    *groups = 0;
    char buf[64];
    snprintf(buf, sizeof buf, "%s", s);
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        int found = 0;
        for (int g = 0; g < SV_N_GROUPS; g++)
            if (strcmp(tok, group_names[g]) == 0) *groups |= 1 << g, found = 1;
        if (!found) return SV_FAIL;
    }
    return *groups ? SV_OK : SV_FAIL;
}

/* Opens path and reads the root attributes, rejecting files that are not LC files. */
static hid_t open_lc(const char *path, sv_lc_meta *m, int64_t *complete, sv_error *err) {
    silence_hdf5();
    FILE *probe = fopen(path, "rb");
    if (!probe) {
        sv_fail(err, "%s: cannot open (%s)", path, strerror(errno));
        return -1;
    }
    fclose(probe);
    hid_t file = H5Fopen(path, H5F_ACC_RDONLY, H5P_DEFAULT);
    if (file < 0) {
        sv_fail(err, "%s: not an HDF5 file, or truncated", path);
        return -1;
    }
    char format[32], groups[64];
    int64_t version = 0, n_layers = 0;
    memset(m, 0, sizeof *m);
    if (read_attr_string(file, "format", format, sizeof format) || strcmp(format, FORMAT_NAME) ||
        read_attr_int(file, "format_version", &version) || version != FORMAT_VERSION) {
        H5Fclose(file);
        sv_fail(err, "%s: not a shortv LC file (no format attribute '%s' version %d)", path,
                FORMAT_NAME, FORMAT_VERSION);
        return -1;
    }
    if (read_attr_string(file, "model", m->model, sizeof m->model) ||
        read_attr_string(file, "config_hash", m->config_hash, sizeof m->config_hash) ||
        read_attr_string(file, "manifest", m->manifest, sizeof m->manifest) ||
        read_attr_int(file, "seed", &m->seed) || read_attr_int(file, "limit", &m->limit) ||
        read_attr_int(file, "n_layers", &n_layers) || n_layers <= 0 || n_layers > 1024 ||
        read_attr_string(file, "groups", groups, sizeof groups) ||
        parse_groups(groups, &m->groups) ||
        read_attr_string(file, "aspect", m->aspect, sizeof m->aspect) ||
        read_attr_int(file, "complete", complete)) {
        H5Fclose(file);
        sv_fail(err, "%s: LC file with missing or invalid root attributes", path);
        return -1;
    }
    m->n_layers = (int)n_layers;
    int64_t shard = 0, shards = 0; /* only in shards */
    if (H5Aexists(file, "shards") > 0 &&
        (read_attr_int(file, "shard", &shard) || read_attr_int(file, "shards", &shards) ||
         shards < 1 || shards > 1 << 20 || shard < 0 || shard >= shards)) {
        H5Fclose(file);
        sv_fail(err, "%s: LC file with an invalid shard attribute", path);
        return -1;
    }
    m->shard = (int)shard, m->shards = (int)shards;
    int64_t naive = 0; /* absent from the files of shortv before it: fast sweeps */
    if (H5Aexists(file, "naive") > 0 && read_attr_int(file, "naive", &naive) == SV_OK)
        m->naive = naive != 0;
    return file;
}

/* The number of complete rows: a sample counts once every dataset holds it. */
static size_t complete_rows(hid_t file, const sv_lc_meta *m) {
    size_t n = rows_of(file, "/samples/id");
    for (int i = 0; i < 3; i++) {
        size_t r = rows_of(file, row_ints[i]);
        n = r < n ? r : n;
    }
    for (int g = 0; g < SV_N_GROUPS; g++) {
        char name[64];
        snprintf(name, sizeof name, "/lc/%s", group_names[g]);
        if (m->groups >> g & 1) {
            size_t r = rows_of(file, name);
            n = r < n ? r : n;
        }
    }
    return n;
}

static int read_ints(hid_t file, const char *name, size_t n, int64_t *out) {
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    if (d < 0) return SV_FAIL;
    hid_t fspace = H5Dget_space(d);
    hsize_t start = 0, count = n;
    hid_t mspace = H5Screate_simple(1, &count, NULL);
    herr_t rc = H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &start, NULL, &count, NULL);
    if (rc >= 0 && n) rc = H5Dread(d, H5T_NATIVE_INT64, mspace, fspace, H5P_DEFAULT, out);
    H5Sclose(mspace), H5Sclose(fspace), H5Dclose(d);
    return rc < 0 ? SV_FAIL : SV_OK;
}

/* The first n strings of a 1-D UTF-8 string dataset, each strdup'd into out. */
static int read_strings(hid_t file, const char *name, size_t n, char **out) {
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    if (d < 0) return SV_FAIL;
    hid_t str = utf8_string_type(0), fspace = H5Dget_space(d);
    hsize_t start = 0, count = n;
    hid_t mspace = H5Screate_simple(1, &count, NULL);
    char **raw = calloc(n ? n : 1, sizeof *raw);
    herr_t rc = raw ? H5Sselect_hyperslab(fspace, H5S_SELECT_SET, &start, NULL, &count, NULL) : -1;
    if (rc >= 0 && n) rc = H5Dread(d, str, mspace, fspace, H5P_DEFAULT, raw);
    for (size_t i = 0; rc >= 0 && i < n; i++)
        if (!(out[i] = strdup(raw[i] ? raw[i] : ""))) rc = -1;
    if (raw && n) H5Dvlen_reclaim(str, mspace, H5P_DEFAULT, raw);
    free(raw);
    H5Sclose(mspace), H5Sclose(fspace), H5Tclose(str), H5Dclose(d);
    return rc < 0 ? SV_FAIL : SV_OK;
}

/* Each of row_texts into d, left NULL if the file lacks it or every string is "". */
static int read_texts(hid_t file, sv_lc_data *d) {
    size_t n = d->n_samples;
    for (int k = 0; k < N_TEXTS; k++) {
        char ***texts = row_text(d, k);
        size_t known = 0;
        if (!H5Lexists(file, row_texts[k], H5P_DEFAULT) || rows_of(file, row_texts[k]) < n)
            continue;
        if (!(*texts = calloc(n ? n : 1, sizeof **texts)) ||
            read_strings(file, row_texts[k], n, *texts))
            return SV_FAIL;
        for (size_t i = 0; i < n; i++) known += (*texts)[i][0] != '\0';
        if (known) continue;
        for (size_t i = 0; i < n; i++) free((*texts)[i]);
        free(*texts);
        *texts = NULL;
    }
    return SV_OK;
}

/* A partial file's size and positions (d->partial stays 0 for other files). */
static int read_positions(hid_t file, sv_lc_data *d) {
    if (H5Aexists(file, "selected") <= 0) return SV_OK;
    size_t n = d->n_samples, k = d->n_skipped;
    d->partial = 1;
    d->position = malloc((n ? n : 1) * sizeof(int64_t));
    d->skipped_position = malloc((k ? k : 1) * sizeof(int64_t));
    if (!d->position || !d->skipped_position || read_attr_int(file, "selected", &d->selected) ||
        rows_of(file, "/samples/position") < n || rows_of(file, "/skipped/position") < k)
        return SV_FAIL;
    return read_ints(file, "/samples/position", n, d->position) ||
           read_ints(file, "/skipped/position", k, d->skipped_position);
}

static int read_group(hid_t file, sv_lc_data *d, int g) {
    int L = d->meta.n_layers;
    size_t n = d->n_samples;
    char name[64];
    d->lc[g] = malloc((n ? n : 1) * L * sizeof(double));
    d->mean[g] = malloc(L * sizeof(double));
    d->std[g] = malloc(L * sizeof(double));
    d->order[g] = malloc(L * sizeof(int32_t));
    if (!d->lc[g] || !d->mean[g] || !d->std[g] || !d->order[g]) return SV_FAIL;
    snprintf(name, sizeof name, "/lc/%s", group_names[g]);
    if (read_matrix(file, name, n, L, d->lc[g])) return SV_FAIL;
    /* recomputed rather than read, so incomplete files get them too */
    sv_lc_summarise(d->lc[g], n, L, d->mean[g], d->std[g], d->order[g]);
    return SV_OK;
}

/* What every reader (freeze, compare, report, plot, study, export, --resume) relies on:
 * LC values are KL divergences, finite and >= 0 (a NaN would sort as a layer
 * to freeze); each visual span lies inside its prompt; a complete sweep holds
 * samples. */
static int validate(const sv_lc_data *d, const char *path, sv_error *err) {
    size_t L = (size_t)d->meta.n_layers;
    if (d->complete && d->n_samples == 0)
        return sv_fail(err, "%s: marked complete but holds no samples", path);
    if (d->partial && (d->complete || d->selected < 0))
        return sv_fail(err, "%s: a partial LC file marked complete or of a negative size", path);
    for (size_t i = 0; d->partial && i < d->n_samples + d->n_skipped; i++) {
        int64_t at = i < d->n_samples ? d->position[i] : d->skipped_position[i - d->n_samples];
        if (at < (i < d->n_samples ? 0 : -1) || at >= d->selected)
            return sv_fail(err, "%s: position %lld is outside its sweep's %lld samples", path,
                           (long long)at, (long long)d->selected);
    }
    for (size_t i = 0; i < d->n_samples; i++) {
        if (!(0 <= d->visual_start[i] && d->visual_start[i] <= d->visual_end[i] &&
              d->visual_end[i] <= d->n_tokens[i]))
            return sv_fail(err, "%s: sample '%s' has a visual span [%lld, %lld) outside its "
                           "%lld tokens", path, d->ids[i], (long long)d->visual_start[i],
                           (long long)d->visual_end[i], (long long)d->n_tokens[i]);
        for (int g = 0; g < SV_N_GROUPS; g++)
            for (size_t l = 0; d->lc[g] && l < L; l++) {
                double v = d->lc[g][i * L + l];
                if (!(isfinite(v) && v >= 0))
                    return sv_fail(err, "%s: /lc/%s holds %g for sample '%s', layer %zu (an LC "
                                   "must be a finite number >= 0)", path, group_names[g], v,
                                   d->ids[i], l);
            }
    }
    return SV_OK;
}

int sv_lc_read(sv_lc_data *d, const char *path, sv_error *err) {
    memset(d, 0, sizeof *d);
    int64_t complete;
    hid_t file = open_lc(path, &d->meta, &complete, err);
    if (file < 0) return SV_FAIL;
    d->complete = (int)complete;
    read_attr_string(file, "tool_version", d->tool_version, sizeof d->tool_version);
    read_attr_string(file, "created", d->created, sizeof d->created);
    size_t n = d->n_samples = complete_rows(file, &d->meta);
    size_t k = d->n_skipped = rows_of(file, "/skipped/line");
    d->ids = calloc(n ? n : 1, sizeof *d->ids);
    d->visual_start = malloc((n ? n : 1) * sizeof(int64_t));
    d->visual_end = malloc((n ? n : 1) * sizeof(int64_t));
    d->n_tokens = malloc((n ? n : 1) * sizeof(int64_t));
    d->skipped_line = malloc((k ? k : 1) * sizeof(int64_t));
    d->skipped_reason = calloc(k ? k : 1, sizeof *d->skipped_reason);
    int rc = !d->ids || !d->visual_start || !d->visual_end || !d->n_tokens ||
             !d->skipped_line || !d->skipped_reason ||
             read_strings(file, "/samples/id", n, d->ids) ||
             read_ints(file, "/skipped/line", k, d->skipped_line) ||
             read_strings(file, "/skipped/reason", k, d->skipped_reason) || read_ints(file, row_ints[0], n, d->visual_start) ||
             read_ints(file, row_ints[1], n, d->visual_end) ||
             read_ints(file, row_ints[2], n, d->n_tokens);
    if (!rc) rc = read_texts(file, d);
    if (!rc) rc = read_positions(file, d);
    for (int g = 0; g < SV_N_GROUPS && !rc; g++)
        if (d->meta.groups >> g & 1) rc = read_group(file, d, g);
    H5Fclose(file);
    if (rc) {
        sv_lc_data_free(d);
        return sv_fail(err, "%s: LC file is damaged (cannot read its datasets)", path);
    }
    if (validate(d, path, err)) {
        sv_lc_data_free(d);
        return SV_FAIL;
    }
    return SV_OK;
}

void sv_lc_data_free(sv_lc_data *d) {
    for (size_t i = 0; d->ids && i < d->n_samples; i++) free(d->ids[i]);
    free(d->ids);
    for (int k = 0; k < N_TEXTS; k++) {
        char **texts = *row_text(d, k);
        for (size_t i = 0; texts && i < d->n_samples; i++) free(texts[i]);
        free(texts);
    }
    for (size_t i = 0; d->skipped_reason && i < d->n_skipped; i++) free(d->skipped_reason[i]);
    free(d->skipped_reason), free(d->skipped_line);
    free(d->visual_start), free(d->visual_end), free(d->n_tokens);
    free(d->position), free(d->skipped_position);
    for (int g = 0; g < SV_N_GROUPS; g++) free(d->lc[g]), free(d->mean[g]), free(d->std[g]), free(d->order[g]);
    memset(d, 0, sizeof *d);
}
