/* The freeze study: does freezing the visual tokens in the lowest-LC layers
 * cost less accuracy than freezing random layers, or the highest-LC layers,
 * at the same FLOPs? (Only the number of frozen layers sets the FLOPs.)
 *
 * For every count N it evaluates, on the same samples, the layer sets
 *   lc       the N layers of lowest mean LC (what `shortv freeze -n N` picks)
 *   reverse  the N layers of highest mean LC
 *   random   random_sets random N-subsets; set k of N is drawn by a partial
 *            Fisher-Yates shuffle from splitmix64 seeded with
 *            seed ^ (N << 32) ^ k, so it does not depend on the other counts
 * plus the dense model as the reference, and writes OUT/study.json and the
 * chart accuracy vs FLOPs ratio (OUT/accuracy_vs_flops.png, .svg).
 *
 * study.json: {"format": "shortv-study", "version": 1,
 *   "model": {"path", "config_hash", "n_layers"}, "group", "lc_file", "manifest",
 *   "n_samples", "max_new_tokens", "seed", "random_sets", "sample_types"?: [...],
 *   "runs": [{"strategy": "dense"|"lc"|"reverse"|"random", "n_frozen", "set",
 *             "layers": [...], "n", "correct", "accuracy", "accuracy_ci95": [lo, hi],
 *             "answers_correct": "0110...", "flops_ratio", "prefill_ms"}, ...]}
 * Layers are listed lc: ascending LC, reverse: descending LC, random: ascending id.
 * answers_correct has one character per sample, in manifest order: '1' if the
 * run answered it correctly. Every run answers the same samples, so runs can be
 * compared sample by sample (sv_study_compare). sample_types, present when
 * every manifest line has a "type", gives each sample's question type in the
 * same order, so accuracies can be broken down by type (sv_study_type_accuracy). */
#ifndef SV_STUDY_H
#define SV_STUDY_H

#include <stddef.h>
#include <stdint.h>

#include "eval.h"
#include "gnuplot.h"

#define SV_STUDY_FORMAT "shortv-study"
#define SV_STUDY_VERSION 2 /* 2: answers_correct */
#define SV_STUDY_JSON "study.json"
#define SV_STUDY_CHART "accuracy_vs_flops" /* .png and .svg */
#define SV_STUDY_SCRIPT "study.gp"
#define SV_STUDY_MAX_COUNTS 64
#define SV_STUDY_MAX_RANDOM_SETS 100

typedef enum {
    SV_STRATEGY_DENSE = 0,
    SV_STRATEGY_LC,
    SV_STRATEGY_REVERSE,
    SV_STRATEGY_RANDOM
} sv_strategy;
#define SV_N_STRATEGIES 4
const char *sv_strategy_name(sv_strategy s); /* "dense", "lc", "reverse", "random" */

typedef struct sv_study_params {
    const char *model_dir, *lc_path, *manifest, *out_dir;
    const char *vision_tower; /* original layout: the CLIP tower directory */
    const int *counts;      /* the N to study, each in [1, n_layers], distinct */
    int n_counts;
    int random_sets;        /* random subsets per N, >= 0 */
    uint64_t seed;          /* study.json stores it as a JSON number: exact below 2^53 */
    sv_group group;         /* the rows frozen layers skip (and whose LC ranks the layers) */
    size_t limit;           /* 0: every sample */
    int max_new;
    sv_aspect aspect;
    int n_threads;  /* <= 0: one per online CPU */
    sv_world *world;            /* as sv_eval_params: rank 0 writes */
    sv_progress *progress;      /* may be NULL */
    const volatile int *stop;   /* may be NULL */
} sv_study_params;

/* One layer set and how it did. */
typedef struct sv_study_run {
    sv_strategy strategy;
    int n_frozen;
    int set;                /* random: which set of this N (0 ..); else 0 */
    int *layers;            /* [n_frozen] */
    unsigned char *correct; /* [n_samples] 1 where the answer was right */
    sv_eval_summary result;
} sv_study_run;

typedef struct sv_study {
    char model[1024], config_hash[17], lc_file[1024], manifest[1024];
    int n_layers;
    sv_group group;
    uint64_t seed;
    int random_sets, max_new;
    size_t n_samples;
    char **sample_types;    /* [n_samples] question types, or NULL */
    size_t n_runs;
    sv_study_run *runs;     /* dense first, then per N: lc, reverse, random sets */
} sv_study;

/* Runs the study and writes OUT/study.json and the chart; OUT is created if
 * its parent exists. Under MPI every rank calls it, the samples spread over
 * them, and rank 0 writes (the other ranks' *out is left empty). The LC file must be a complete sweep of the group made
 * with this model (config hash and layer count). */
int sv_run_study(const sv_study_params *p, sv_study *out, sv_error *err);

/* Reads and validates a study.json. */
int sv_study_read(const char *path, sv_study *out, sv_error *err);
void sv_study_free(sv_study *s);

/* Draws the chart accuracy vs FLOPs ratio into dir, created if its parent
 * exists (its data files and study.gp stay next to it). */
int sv_study_draw(const sv_study *s, const char *dir, sv_error *err);
/* The same into an open gnuplot job, which the caller finishes. */
int sv_study_chart_write(const sv_study *s, sv_gnuplot *gp, sv_error *err);

/* The counts studied, ascending; returns how many (at most max). */
int sv_study_counts(const sv_study *s, int *counts, int max);

/* LC-ordered minus another strategy, in accuracy (fractions), sample by
 * sample: the mean of the per-sample differences (the difference of the
 * accuracies) and its 95% interval, mean +/- 1.96 standard errors (normal
 * approximation). The standard error of the per-sample differences is that
 * of a difference of paired proportions: narrower than comparing two runs'
 * own intervals, because both runs answer the same questions. Against random,
 * the sets are a sample too: the variance of the sets' accuracies (ddof 1)
 * over the number of sets is added to the squared standard error, so a lead
 * that another draw of sets could undo is not called clear. With one random
 * set that spread cannot be estimated and only the samples' part is there. */
typedef struct sv_paired_difference {
    double mean, low, high;
} sv_paired_difference;

/* How the strategies did at one N (pointers into the study). */
typedef struct sv_study_comparison {
    int n_frozen;
    double flops_ratio;                 /* of the lc run */
    const sv_eval_summary *dense, *lc;
    const sv_eval_summary *reverse;     /* NULL if not run */
    int n_random;                       /* random sets run */
    double random_mean, random_min, random_max; /* their accuracies */
    sv_paired_difference vs_random;     /* lc minus the mean of the random sets (if run) */
    sv_paired_difference vs_reverse;    /* lc minus reverse (if run) */
} sv_study_comparison;

/* The distinct sample types in order of first appearance; returns how many
 * (at most max; 0 without types). */
int sv_study_types(const sv_study *s, const char **types, int max);
/* Accuracy of a strategy at N (for random, the mean over its sets; N is
 * ignored for dense) on the samples of one type; NaN if none was run. */
double sv_study_type_accuracy(const sv_study *s, sv_strategy strategy, int n_frozen,
                              const char *type);

/* SV_FAIL if the study has no dense run or no lc run at n_frozen. */
int sv_study_compare(const sv_study *s, int n_frozen, sv_study_comparison *out, sv_error *err);
/* One plain-text sentence comparing LC-ordered with random and reverse at that
 * N, with a verdict that claims no more than the numbers show: a lead "beyond
 * sampling noise" only if LC-ordered beats every other strategy and each
 * interval (sv_paired_difference) lies above zero. */
void sv_study_sentence(const sv_study_comparison *c, char *out, size_t size);

#endif
