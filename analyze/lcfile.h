/* LC files: the HDF5 output of a calibration sweep (schema in README.md).
 *
 *   /lc/<group>          float64 [n_samples, n_layers]  per-sample LC (gzip, chunked)
 *   /lc/<group>_mean     float64 [n_layers]             written when complete
 *   /lc/<group>_std      float64 [n_layers]             sample std (ddof 1; 0 if n < 2)
 *   /order/<group>       int32   [n_layers]             layers by ascending mean LC
 *   /samples/id          UTF-8 strings [n_samples]
 *   /samples/type        UTF-8 strings [n_samples]  question types ("" if unknown; files
 *                        of shortv before this field lack it)
 *   /samples/visual_start, /samples/visual_end, /samples/n_tokens   int64 [n_samples]
 *   /skipped/line int64 [k], /skipped/reason UTF-8 strings [k]    (--skip-bad)
 *   root attributes: see sv_lc_meta, plus metric, position, tool_version, created, complete
 *
 * Rows are appended and flushed one sample at a time, so an interrupted sweep
 * leaves a valid file with complete = 0 that --resume continues. */
#ifndef SV_LCFILE_H
#define SV_LCFILE_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define SV_LC_METRIC "KL(p_ablated||p_orig)"
#define SV_LC_POSITION "last"
#define SV_N_GROUPS 2 /* index 0 visual, 1 text (sv_group) */

/* What a sweep was run on; stored as root attributes and compared on --resume. */
typedef struct sv_lc_meta {
    char model[1024];        /* model path as given */
    char config_hash[17];    /* sv_config.hash */
    char manifest[1024];     /* manifest path as given */
    int64_t seed;            /* shuffle seed; -1: manifest order */
    int64_t limit;           /* --limit, 0: all */
    int n_layers;
    int groups;              /* bit g set: group g swept */
    char aspect[8];          /* "pad" or "crop" */
} sv_lc_meta;

const char *sv_group_name(int g); /* "visual", "text" */

typedef struct sv_lcfile sv_lcfile;

/* Creates (truncates) path for a new sweep. */
int sv_lcfile_create(sv_lcfile **out, const char *path, const sv_lc_meta *meta, sv_error *err);
/* Reopens an interrupted sweep; its metadata must equal meta. *n_done = rows present. */
int sv_lcfile_resume(sv_lcfile **out, const char *path, const sv_lc_meta *meta, size_t *n_done,
                     sv_error *err);
/* Appends one sample's row (lc[g] = n_layers values, NULL for groups not swept;
 * type: its question type, NULL if unknown) and flushes. */
int sv_lcfile_append(sv_lcfile *f, const char *id, const char *type, int64_t visual_start,
                     int64_t visual_end, int64_t n_tokens, const double *const lc[SV_N_GROUPS],
                     sv_error *err);
/* Records a manifest line skipped with --skip-bad. */
int sv_lcfile_skip(sv_lcfile *f, int64_t line, const char *reason, sv_error *err);
/* Writes means, stds and orders, sets complete = 1, closes. f is freed either way. */
int sv_lcfile_finish(sv_lcfile *f, sv_error *err);
/* Closes without finishing (the file stays incomplete). */
void sv_lcfile_close(sv_lcfile *f);

/* A whole LC file read back. */
typedef struct sv_lc_data {
    sv_lc_meta meta;
    int complete;
    size_t n_samples;
    char **ids;                     /* [n_samples] */
    char **types;                   /* [n_samples] question types ("" if unknown); NULL if
                                       no sample has one */
    int64_t *visual_start, *visual_end, *n_tokens; /* [n_samples] */
    double *lc[SV_N_GROUPS];        /* [n_samples * n_layers], NULL if not swept */
    double *mean[SV_N_GROUPS], *std[SV_N_GROUPS]; /* [n_layers] */
    int32_t *order[SV_N_GROUPS];    /* [n_layers] */
    size_t n_skipped;               /* manifest lines skipped with --skip-bad */
    int64_t *skipped_line;          /* [n_skipped] */
    char **skipped_reason;          /* [n_skipped] */
    char tool_version[64], created[64];
} sv_lc_data;

/* Reads and validates an LC file (a foreign or truncated HDF5 file is an error
 * naming it). Incomplete files are read too (complete = 0; mean/std/order are
 * computed from the rows present). */
int sv_lc_read(sv_lc_data *out, const char *path, sv_error *err);
void sv_lc_data_free(sv_lc_data *d);

/* Per-layer mean, sample std and ascending order of n rows of n_layers values. */
void sv_lc_summarise(const double *lc, size_t n, int n_layers, double *mean, double *std,
                     int32_t *order);

#endif
