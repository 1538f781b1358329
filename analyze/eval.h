/* Evaluation: greedy answers to a manifest's questions, scored by normalised
 * exact match against its answers, dense or in ShortV mode, with FLOPs and
 * prefill time per sample. */
#ifndef SV_EVAL_H
#define SV_EVAL_H

#include <stddef.h>

#include "image.h"
#include "status.h"

typedef struct sv_eval_params {
    const char *model_dir, *manifest, *output;
    const char *freeze, *freeze_layers; /* ShortV mode, as logits/generate take it */
    int max_new;                        /* tokens generated per answer */
    size_t limit;                       /* 0: every sample */
    sv_aspect aspect;
} sv_eval_params;

typedef struct sv_eval_summary {
    size_t n, correct;
    double accuracy, ci_low, ci_high;   /* Wilson 95% interval */
    double flops_ratio;                 /* this run's prefill FLOPs / dense, mean over samples */
    double prefill_ms;                  /* mean */
} sv_eval_summary;

/* Runs the evaluation and writes RESULTS.json (atomically). */
int sv_eval(const sv_eval_params *p, sv_eval_summary *out, sv_error *err);

/* Lower case, punctuation dropped, whitespace collapsed and trimmed; in place. */
void sv_normalise_answer(char *s);

/* Wilson score interval for k successes in n trials at 95%. */
void sv_wilson_interval(size_t k, size_t n, double *low, double *high);

#endif
