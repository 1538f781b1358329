#include <hdf5.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lcfile.h"
#include "version.h"

#define FORMAT_NAME "shortv-lc"
#define FORMAT_VERSION 1
#define CHUNK_ROWS 16

static const char *const group_names[SV_N_GROUPS] = {"visual", "text"};
static const char *const row_ints[] = {"/samples/visual_start", "/samples/visual_end",
                                       "/samples/n_tokens"};

const char *sv_group_name(int g) { return group_names[g]; }

struct sv_lcfile {
    hid_t file;
    char path[1024];
    sv_lc_meta meta;
    size_t n_rows;
    int marked_incomplete; /* complete = 0 has been written */
};

/* HDF5 prints its error stack by default; library code must stay silent. */
static void silence_hdf5(void) { H5Eset_auto2(H5E_DEFAULT, NULL, NULL); }

/* ---------------------------------------------------------------- writing helpers */

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
    if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
    hid_t a = H5Acreate2(obj, name, t, s, H5P_DEFAULT, H5P_DEFAULT);
    herr_t rc = a < 0 ? -1 : H5Awrite(a, t, &value);
    H5Aclose(a), H5Sclose(s), H5Tclose(t);
    return rc < 0 ? SV_FAIL : SV_OK;
}

static int write_attr_int(hid_t obj, const char *name, int64_t value) {
    hid_t s = H5Screate(H5S_SCALAR);
    if (H5Aexists(obj, name) > 0) H5Adelete(obj, name);
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

static int write_meta(hid_t file, const sv_lc_meta *m) {
    char groups[64], created[64];
    time_t now = time(NULL);
    strftime(created, sizeof created, "%Y-%m-%dT%H:%M:%SZ", gmtime(&now));
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
           write_attr_string(file, "metric", SV_LC_METRIC) ||
           write_attr_string(file, "position", SV_LC_POSITION) ||
           write_attr_string(file, "tool_version", "shortv " SHORTV_VERSION) ||
           write_attr_string(file, "created", created) || write_attr_int(file, "complete", 0);
}

/* An empty dataset that grows along its first axis. cols 0: 1-D. */
static int create_growing(hid_t file, const char *name, hid_t type, hsize_t cols, int gzip) {
    int rank = cols ? 2 : 1;
    hsize_t dims[2] = {0, cols}, maxdims[2] = {H5S_UNLIMITED, cols}, chunk[2] = {CHUNK_ROWS, cols};
    hid_t space = H5Screate_simple(rank, dims, maxdims), dcpl = untimed_plist(H5P_DATASET_CREATE);
    H5Pset_chunk(dcpl, rank, chunk);
    if (gzip) H5Pset_deflate(dcpl, 6);
    hid_t d = H5Dcreate2(file, name, type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    H5Pclose(dcpl), H5Sclose(space);
    if (d < 0) return SV_FAIL;
    H5Dclose(d);
    return SV_OK;
}

static int create_layout(hid_t file, const sv_lc_meta *m) {
    hid_t gcpl = untimed_plist(H5P_GROUP_CREATE), str = utf8_string_type(0);
    const char *groups[] = {"/lc", "/order", "/samples", "/skipped"};
    int rc = SV_OK;
    for (size_t i = 0; i < 4 && rc == SV_OK; i++) {
        hid_t g = H5Gcreate2(file, groups[i], H5P_DEFAULT, gcpl, H5P_DEFAULT);
        rc = g < 0 ? SV_FAIL : SV_OK;
        H5Gclose(g);
    }
    for (int g = 0; g < SV_N_GROUPS && rc == SV_OK; g++) {
        char name[64];
        snprintf(name, sizeof name, "/lc/%s", group_names[g]);
        if (m->groups >> g & 1) rc = create_growing(file, name, H5T_IEEE_F64LE, m->n_layers, 1);
    }
    for (size_t i = 0; i < 3 && rc == SV_OK; i++)
        rc = create_growing(file, row_ints[i], H5T_STD_I64LE, 0, 0);
    if (rc == SV_OK) rc = create_growing(file, "/samples/id", str, 0, 0);
    if (rc == SV_OK) rc = create_growing(file, "/samples/type", str, 0, 0);
    if (rc == SV_OK) rc = create_growing(file, "/skipped/line", H5T_STD_I64LE, 0, 0);
    if (rc == SV_OK) rc = create_growing(file, "/skipped/reason", str, 0, 0);
    H5Tclose(str), H5Pclose(gcpl);
    return rc;
}

/* Writes row `row` (cols values, or one scalar when cols == 0) of a growing dataset. */
static int write_row(hid_t file, const char *name, hid_t mem_type, size_t row, hsize_t cols,
                     const void *data) {
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    if (d < 0) return SV_FAIL;
    int rank = cols ? 2 : 1;
    hsize_t size[2] = {row + 1, cols}, start[2] = {row, 0}, count[2] = {1, cols};
    herr_t rc = H5Dset_extent(d, size);
    hid_t fspace = H5Dget_space(d), mspace = H5Screate_simple(rank, count, NULL);
    if (rc >= 0) rc = H5Sselect_hyperslab(fspace, H5S_SELECT_SET, start, NULL, count, NULL);
    if (rc >= 0) rc = H5Dwrite(d, mem_type, mspace, fspace, H5P_DEFAULT, data);
    H5Sclose(mspace), H5Sclose(fspace), H5Dclose(d);
    return rc < 0 ? SV_FAIL : SV_OK;
}

static size_t rows_of(hid_t file, const char *name) {
    hid_t d = H5Dopen2(file, name, H5P_DEFAULT);
    if (d < 0) return 0;
    hid_t s = H5Dget_space(d);
    hsize_t dims[2] = {0, 0};
    H5Sget_simple_extent_dims(s, dims, NULL);
    H5Sclose(s), H5Dclose(d);
    return (size_t)dims[0];
}

/* ---------------------------------------------------------------- create / resume / append */

int sv_lcfile_create(sv_lcfile **out, const char *path, const sv_lc_meta *meta, sv_error *err) {
    silence_hdf5();
    *out = NULL;
    sv_lcfile *f = calloc(1, sizeof *f);
    if (!f) return sv_fail(err, "%s: out of memory", path);
    snprintf(f->path, sizeof f->path, "%s", path);
    f->meta = *meta;
    f->marked_incomplete = 1;
    f->file = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    if (f->file < 0) {
        free(f);
        return sv_fail(err, "%s: cannot create (does the folder exist?)", path);
    }
    if (write_meta(f->file, meta) || create_layout(f->file, meta) ||
        H5Fflush(f->file, H5F_SCOPE_GLOBAL) < 0) {
        sv_lcfile_close(f);
        remove(path);
        return sv_fail(err, "%s: cannot write the HDF5 layout", path);
    }
    *out = f;
    return SV_OK;
}

int sv_lcfile_append(sv_lcfile *f, const char *id, const char *type, int64_t visual_start,
                     int64_t visual_end, int64_t n_tokens, const double *const lc[SV_N_GROUPS],
                     sv_error *err) {
    int64_t ints[3] = {visual_start, visual_end, n_tokens};
    const char *type_text = type ? type : "";
    /* a finished file being extended again stops claiming to be complete */
    if (!f->marked_incomplete && write_attr_int(f->file, "complete", 0))
        return sv_fail(err, "%s: cannot update the complete flag", f->path);
    f->marked_incomplete = 1;
    hid_t str = utf8_string_type(0);
    int rc = SV_OK;
    for (int g = 0; g < SV_N_GROUPS && rc == SV_OK; g++) {
        char name[64];
        snprintf(name, sizeof name, "/lc/%s", group_names[g]);
        if (f->meta.groups >> g & 1)
            rc = write_row(f->file, name, H5T_NATIVE_DOUBLE, f->n_rows, f->meta.n_layers, lc[g]);
    }
    for (int i = 0; i < 3 && rc == SV_OK; i++)
        rc = write_row(f->file, row_ints[i], H5T_NATIVE_INT64, f->n_rows, 0, &ints[i]);
    if (rc == SV_OK) rc = write_row(f->file, "/samples/type", str, f->n_rows, 0, &type_text);
    /* the id goes last: a row counts as present once its id is written */
    if (rc == SV_OK) rc = write_row(f->file, "/samples/id", str, f->n_rows, 0, &id);
    H5Tclose(str);
    if (rc == SV_OK && H5Fflush(f->file, H5F_SCOPE_GLOBAL) < 0) rc = SV_FAIL;
    if (rc) return sv_fail(err, "%s: cannot append sample '%s'", f->path, id);
    f->n_rows++;
    return SV_OK;
}

int sv_lcfile_skip(sv_lcfile *f, int64_t line, const char *reason, sv_error *err) {
    size_t row = rows_of(f->file, "/skipped/reason");
    hid_t str = utf8_string_type(0);
    int rc = write_row(f->file, "/skipped/line", H5T_NATIVE_INT64, row, 0, &line) ||
             write_row(f->file, "/skipped/reason", str, row, 0, &reason) ||
             H5Fflush(f->file, H5F_SCOPE_GLOBAL) < 0;
    H5Tclose(str);
    return rc ? sv_fail(err, "%s: cannot record skipped line %lld", f->path, (long long)line)
              : SV_OK;
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

static int write_vector(hid_t file, const char *name, hid_t file_type, hid_t mem_type,
                        hsize_t n, const void *data) {
    hid_t space = H5Screate_simple(1, &n, NULL), dcpl = untimed_plist(H5P_DATASET_CREATE);
    if (H5Lexists(file, name, H5P_DEFAULT) > 0) H5Ldelete(file, name, H5P_DEFAULT);
    hid_t d = H5Dcreate2(file, name, file_type, space, H5P_DEFAULT, dcpl, H5P_DEFAULT);
    herr_t rc = d < 0 ? -1 : H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
    H5Dclose(d), H5Pclose(dcpl), H5Sclose(space);
    return rc < 0 ? SV_FAIL : SV_OK;
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

static int write_summary(sv_lcfile *f, int g) {
    int L = f->meta.n_layers;
    size_t n = f->n_rows;
    double *lc = malloc((n ? n : 1) * L * sizeof(double)), *mean = malloc(L * sizeof(double)),
           *std = malloc(L * sizeof(double));
    int32_t *order = malloc(L * sizeof(int32_t));
    char name[64];
    snprintf(name, sizeof name, "/lc/%s", group_names[g]);
    int rc = !lc || !mean || !std || !order || read_matrix(f->file, name, n, L, lc);
    if (rc == SV_OK) {
        sv_lc_summarise(lc, n, L, mean, std, order);
        snprintf(name, sizeof name, "/lc/%s_mean", group_names[g]);
        rc = write_vector(f->file, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, L, mean);
        snprintf(name, sizeof name, "/lc/%s_std", group_names[g]);
        rc = rc || write_vector(f->file, name, H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, L, std);
        snprintf(name, sizeof name, "/order/%s", group_names[g]);
        rc = rc || write_vector(f->file, name, H5T_STD_I32LE, H5T_NATIVE_INT32, L, order);
    }
    free(lc), free(mean), free(std), free(order);
    return rc ? SV_FAIL : SV_OK;
}

int sv_lcfile_finish(sv_lcfile *f, sv_error *err) {
    int rc = SV_OK;
    for (int g = 0; g < SV_N_GROUPS && rc == SV_OK; g++)
        if (f->meta.groups >> g & 1) rc = write_summary(f, g);
    if (rc == SV_OK) rc = write_attr_int(f->file, "complete", 1);
    if (rc == SV_OK && H5Fflush(f->file, H5F_SCOPE_GLOBAL) < 0) rc = SV_FAIL;
    if (rc) sv_fail(err, "%s: cannot write the summary", f->path);
    sv_lcfile_close(f);
    return rc;
}

void sv_lcfile_close(sv_lcfile *f) {
    if (!f) return;
    if (f->file >= 0) H5Fclose(f->file);
    free(f);
}

/* ---------------------------------------------------------------- reading */

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
static hid_t open_lc(const char *path, unsigned mode, sv_lc_meta *m, int64_t *complete,
                     sv_error *err) {
    silence_hdf5();
    FILE *probe = fopen(path, "rb");
    if (!probe) {
        sv_fail(err, "%s: cannot open", path);
        return -1;
    }
    fclose(probe);
    hid_t file = H5Fopen(path, mode, H5P_DEFAULT);
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

static int same_meta(const sv_lc_meta *a, const sv_lc_meta *b) {
    return !strcmp(a->model, b->model) && !strcmp(a->config_hash, b->config_hash) &&
           !strcmp(a->manifest, b->manifest) && a->seed == b->seed && a->limit == b->limit &&
           a->n_layers == b->n_layers && a->groups == b->groups && !strcmp(a->aspect, b->aspect);
}

int sv_lcfile_resume(sv_lcfile **out, const char *path, const sv_lc_meta *meta, size_t *n_done,
                     sv_error *err) {
    *out = NULL;
    sv_lc_meta found;
    int64_t complete;
    hid_t file = open_lc(path, H5F_ACC_RDWR, &found, &complete, err);
    if (file < 0) return SV_FAIL;
    if (!same_meta(&found, meta)) {
        H5Fclose(file);
        return sv_fail(err, "%s: was made with other arguments (model, manifest, seed, limit, "
                            "groups or aspect); --resume needs the same ones", path);
    }
    sv_lcfile *f = calloc(1, sizeof *f);
    if (!f) {
        H5Fclose(file);
        return sv_fail(err, "%s: out of memory", path);
    }
    snprintf(f->path, sizeof f->path, "%s", path);
    f->file = file;
    f->meta = *meta;
    f->n_rows = *n_done = complete_rows(file, meta);
    if (!H5Lexists(file, "/samples/type", H5P_DEFAULT)) { /* a file of an older shortv */
        hid_t str = utf8_string_type(0);
        int rc = create_growing(file, "/samples/type", str, 0, 0);
        H5Tclose(str);
        if (rc) {
            sv_lcfile_close(f);
            return sv_fail(err, "%s: cannot add /samples/type", path);
        }
    }
    f->marked_incomplete = !complete;
    *out = f;
    return SV_OK;
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

/* /samples/type into d->types, left NULL if the file has none or all are "". */
static int read_types(hid_t file, sv_lc_data *d) {
    size_t n = d->n_samples, known = 0;
    if (!H5Lexists(file, "/samples/type", H5P_DEFAULT) || rows_of(file, "/samples/type") < n)
        return SV_OK;
    if (!(d->types = calloc(n ? n : 1, sizeof *d->types)) ||
        read_strings(file, "/samples/type", n, d->types))
        return SV_FAIL;
    for (size_t i = 0; i < n; i++) known += d->types[i][0] != '\0';
    if (!known) {
        for (size_t i = 0; i < n; i++) free(d->types[i]);
        free(d->types);
        d->types = NULL;
    }
    return SV_OK;
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

int sv_lc_read(sv_lc_data *d, const char *path, sv_error *err) {
    memset(d, 0, sizeof *d);
    int64_t complete;
    hid_t file = open_lc(path, H5F_ACC_RDONLY, &d->meta, &complete, err);
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
    if (!rc) rc = read_types(file, d);
    for (int g = 0; g < SV_N_GROUPS && !rc; g++)
        if (d->meta.groups >> g & 1) rc = read_group(file, d, g);
    H5Fclose(file);
    if (rc) {
        sv_lc_data_free(d);
        return sv_fail(err, "%s: LC file is damaged (cannot read its datasets)", path);
    }
    return SV_OK;
}

void sv_lc_data_free(sv_lc_data *d) {
    for (size_t i = 0; d->ids && i < d->n_samples; i++) free(d->ids[i]);
    for (size_t i = 0; d->types && i < d->n_samples; i++) free(d->types[i]);
    free(d->ids), free(d->types);
    for (size_t i = 0; d->skipped_reason && i < d->n_skipped; i++) free(d->skipped_reason[i]);
    free(d->skipped_reason), free(d->skipped_line);
    free(d->visual_start), free(d->visual_end), free(d->n_tokens);
    for (int g = 0; g < SV_N_GROUPS; g++) free(d->lc[g]), free(d->mean[g]), free(d->std[g]), free(d->order[g]);
    memset(d, 0, sizeof *d);
}
