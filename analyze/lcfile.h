/* LC files: the HDF5 output of a calibration sweep (schema in README.md).
 *
 *   /lc/<group>          float64 [n_samples, n_layers]  per-sample LC (gzip, chunked)
 *   /lc/<group>_mean     float64 [n_layers]             written when complete
 *   /lc/<group>_std      float64 [n_layers]             sample std (ddof 1; 0 if n < 2)
 *   /order/<group>       int32   [n_layers]             layers by ascending mean LC
 *   /samples/id          UTF-8 strings [n_samples]
 *   /samples/type        UTF-8 strings [n_samples]  question types ("" if unknown; files
 *                        of shortv before this field lack it)
 *   /samples/question, /samples/image   UTF-8 strings [n_samples]  the manifest's question
 *                        and the image path calibrate opened ("" if unknown; absent in
 *                        files of shortv before them)
 *   /samples/visual_start, /samples/visual_end, /samples/n_tokens   int64 [n_samples]
 *   /skipped/line int64 [k], /skipped/reason UTF-8 strings [k]    (--skip-bad)
 *   root attributes: see sv_lc_meta, plus metric, position, tool_version, created, complete
 *   every dataset's attributes: dims ("sample,layer"), units where a number has
 *   one ("nats", "tokens") and description (one line)
 *
 * A partial file holds some of a sweep's samples, each at its position in the
 * sweep's selection (the manifest after --seed and --limit): a shard
 * (calibrate --shard i/N: the positions p with p % N == i) or the results an
 * MPI run finished ahead of their turn (<out>.pending). On top of the above:
 *   /samples/position int64 [n_samples], /skipped/position int64 [k] (-1: a
 *   manifest line that could not be read, not a position)
 *   root attributes selected (the selection's size), shard and shards (shards only)
 * Its `complete` stays 0: no reader takes it for a sweep; shortv merge joins
 * the shards into the file one run would have written.
 *
 * The file only ever goes from one consistent state to the next. A sweep keeps
 * its rows in memory and, after each sample, replaces the whole file: HDF5
 * builds it in memory and the bytes go to "<path>.tmp", fsync'd and renamed
 * over path (atomic_file.h). A kill, a full disk or a reader at any moment
 * sees the previous state or the next one, never half of one: an interrupted
 * sweep leaves a valid file with complete = 0 that --resume continues, and a
 * file that was there before a new sweep stays untouched until its first
 * sample is written. (Rewriting costs n_samples x n_layers doubles a sample:
 * tiny next to a forward pass.) One writer at a time is the caller's job
 * (writer_lock.h). */
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
    int naive;               /* --naive: agrees with the fast sweep to 1e-6, not bit for bit */
    int shard, shards;       /* --shard i/N; shards 0: the whole selection */
} sv_lc_meta;

const char *sv_group_name(int g); /* "visual", "text" */

typedef struct sv_lcfile sv_lcfile;
typedef struct sv_lc_data sv_lc_data;

/* A new sweep to path. Nothing is written until the first append (a file
 * already at path stays as it is until then); fails now if path's folder
 * cannot take the file. */
int sv_lcfile_create(sv_lcfile **out, const char *path, const sv_lc_meta *meta, sv_error *err);
/* Continues the sweep in path (read and validated as sv_lc_read does); its
 * metadata must equal meta (paths compared after resolving them). *n_done =
 * rows present. */
int sv_lcfile_resume(sv_lcfile **out, const char *path, const sv_lc_meta *meta, size_t *n_done,
                     sv_error *err);
/* The first argument in which two sweeps differ ("model", "seed", "--shard",
 * ..; paths compared after resolving them), or NULL if none. */
const char *sv_lc_meta_difference(const sv_lc_meta *a, const sv_lc_meta *b);
/* Appends and skips stay in memory until sv_lcfile_finish writes the file
 * once (merge; a sweep writes every sample). */
void sv_lcfile_write_at_finish(sv_lcfile *f);
/* Makes a new f partial: it stores positions, and `selected` (the selection's size). */
void sv_lcfile_partial(sv_lcfile *f, int64_t selected);
/* The position the next append or skip records (partial files store it). */
void sv_lcfile_at(sv_lcfile *f, int64_t position);
/* Rows and skipped lines so far (mean/std/order are not kept up to date). */
const sv_lc_data *sv_lcfile_data(const sv_lcfile *f);
/* The question and image path the next append records (borrowed until then;
 * not called, or NULL: "", unknown). */
void sv_lcfile_text(sv_lcfile *f, const char *question, const char *image);
/* Appends one sample's row (lc[g] = n_layers values, NULL for groups not swept;
 * type: its question type, NULL if unknown) and writes the file. On failure
 * (the reason from errno in err) the file keeps its previous state. */
int sv_lcfile_append(sv_lcfile *f, const char *id, const char *type, int64_t visual_start,
                     int64_t visual_end, int64_t n_tokens, const double *const lc[SV_N_GROUPS],
                     sv_error *err);
/* Appends row r of another file's data, with everything it records about the sample. */
int sv_lcfile_append_row(sv_lcfile *f, const sv_lc_data *from, size_t r, sv_error *err);
/* Records a manifest line skipped with --skip-bad; written with the next
 * append or the finish. */
int sv_lcfile_skip(sv_lcfile *f, int64_t line, const char *reason, sv_error *err);
/* Writes the file with means, stds and orders and complete = 1 (a sweep with
 * no row is an error and writes nothing); a partial file is written as it is.
 * f is freed either way. */
int sv_lcfile_finish(sv_lcfile *f, sv_error *err);
/* Frees f; the file keeps its last written state. */
void sv_lcfile_close(sv_lcfile *f);

/* A whole LC file read back. */
struct sv_lc_data {
    sv_lc_meta meta;
    int complete;
    size_t n_samples;
    char **ids;                     /* [n_samples] */
    char **types;                   /* [n_samples] question types ("" if unknown); NULL if
                                       no sample has one */
    char **questions, **images;     /* [n_samples] the same for questions and image paths */
    int64_t *visual_start, *visual_end, *n_tokens; /* [n_samples] */
    double *lc[SV_N_GROUPS];        /* [n_samples * n_layers], NULL if not swept */
    double *mean[SV_N_GROUPS], *std[SV_N_GROUPS]; /* [n_layers] */
    int32_t *order[SV_N_GROUPS];    /* [n_layers] */
    size_t n_skipped;               /* manifest lines skipped with --skip-bad */
    int64_t *skipped_line;          /* [n_skipped] */
    char **skipped_reason;          /* [n_skipped] */
    char tool_version[64], created[64];
    int partial;                    /* a partial file (above); then: */
    int64_t selected;               /* the selection's size */
    int64_t *position;              /* [n_samples] each row's position */
    int64_t *skipped_position;      /* [n_skipped] each skipped line's position, or -1 */
};

/* Reads and validates an LC file (a foreign or truncated HDF5 file is an error
 * naming it, as is an LC value that is not a finite number >= 0, a visual span
 * outside its prompt, or a file marked complete without samples). Incomplete
 * files are read too (complete = 0; mean/std/order are computed from the rows
 * present). */
int sv_lc_read(sv_lc_data *out, const char *path, sv_error *err);
void sv_lc_data_free(sv_lc_data *d);

/* Per-layer mean, sample std and ascending order of n rows of n_layers values. */
void sv_lc_summarise(const double *lc, size_t n, int n_layers, double *mean, double *std,
                     int32_t *order);

#endif
