/* Evaluation: greedy answers to a manifest's questions, scored by normalised
 * exact match against its answers, dense or in ShortV mode, with FLOPs and
 * prefill time per sample.
 *
 * sv_eval is `shortv eval`: one layer set, RESULTS.json. An sv_evaluator
 * evaluates several layer sets over the same samples (shortv study): the
 * model, the prompts and each sample's encoded image are shared, and every
 * set answers a sample before the next sample is read, so that the sets'
 * prefill times are measured under the same conditions. */
#ifndef SV_EVAL_H
#define SV_EVAL_H

#include <stddef.h>

#include "config.h"
#include "image.h"
#include "llm.h"
#include "manifest.h"
#include "progress.h"
#include "status.h"
#include "world.h"

typedef struct sv_eval_params {
    const char *model_dir, *manifest, *output;
    const char *vision_tower;           /* original layout: the CLIP tower directory */
    const char *freeze, *freeze_layers; /* ShortV mode, as logits/generate take it (sv_eval) */
    int max_new;                        /* tokens generated per answer */
    size_t limit;                       /* 0: every sample, else the manifest's first `limit` */
    sv_aspect aspect;
    int n_threads;                      /* <= 0: one per online CPU */
    sv_world *world;                    /* NULL: this process alone; else every rank calls
                                           and the samples spread over them (dispatch.h);
                                           rank 0 gets the answers and writes */
    sv_progress *progress;              /* may be NULL */
    const volatile int *stop;           /* may be NULL: SIGINTs so far (dispatch.h) */
} sv_eval_params;

typedef struct sv_eval_summary {
    size_t n, correct;
    double accuracy, ci_low, ci_high;   /* Wilson 95% interval */
    double flops_ratio;                 /* this run's prefill FLOPs / dense, mean over samples */
    double prefill_ms;                  /* mean */
} sv_eval_summary;

/* Runs the evaluation and writes RESULTS.json (atomically). */
int sv_eval(const sv_eval_params *p, sv_eval_summary *out, sv_error *err);

/* One layer set: modes[l] for every decoder layer (NULL: dense) and the group
 * that frozen layers skip. */
typedef struct sv_eval_set {
    const sv_layer_mode *modes;
    sv_group group;
} sv_eval_set;

/* One answer, as sv_evaluator_run reports it. */
typedef struct sv_eval_answer {
    size_t set, sample;                 /* indices into the sets and the samples */
    size_t n_sets, n_samples;
    const sv_sample *item;
    const char *prediction;             /* decoded, cut at the first newline */
    int correct;
    double prefill_ms;
} sv_eval_answer;

/* Called after every answer; a non-zero return stops the run with an error. */
typedef int (*sv_eval_answer_fn)(const sv_eval_answer *a, void *user);

typedef struct sv_evaluator sv_evaluator;

/* Loads the model and the manifest (model_dir, manifest, max_new, limit and
 * aspect of p) and tokenises every prompt. Every sample needs an answer.
 * Under MPI the caller makes the ranks agree (sv_world_agree) before
 * sv_evaluator_run, whatever failed on which rank. */
int sv_evaluator_open(sv_evaluator **out, const sv_eval_params *p, sv_error *err);
const sv_config *sv_evaluator_config(const sv_evaluator *e);
size_t sv_evaluator_n_samples(const sv_evaluator *e);
const sv_sample *sv_evaluator_sample(const sv_evaluator *e, size_t i);
/* Evaluates n_sets layer sets over every sample; out has n_sets entries.
 * on_answer may be NULL. Under MPI every rank calls it and only rank 0 sees
 * answers and sums (in sample order, as one process gives them). */
int sv_evaluator_run(sv_evaluator *e, const sv_eval_set *sets, size_t n_sets,
                     sv_eval_answer_fn on_answer, void *user, sv_eval_summary *out,
                     sv_error *err);
void sv_evaluator_free(sv_evaluator *e);

/* Lower case, punctuation dropped, whitespace collapsed and trimmed; in place. */
void sv_normalise_answer(char *s);

/* Wilson score interval for k successes in n trials at 95%. */
void sv_wilson_interval(size_t k, size_t n, double *low, double *high);

#endif
