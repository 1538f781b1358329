/* Calibration manifests: JSON Lines ({"id", "image", "question", "answer"?}
 * per line) or LLaVA conversation JSON (a list of {"id", "image",
 * "conversations": [{"from": "human", "value": "<image>\n..."}, ...]}, first
 * human turn). Image paths are relative to the manifest's folder unless
 * absolute; each must exist. */
#ifndef SV_MANIFEST_H
#define SV_MANIFEST_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

typedef struct sv_sample {
    char *id;
    char *image;     /* resolved path */
    char *question;
    char *answer;    /* NULL if absent */
    char *type;      /* question type ("type" of a JSONL line), NULL if absent */
    int line;        /* 1-based line (JSONL) or entry number (JSON list) */
} sv_sample;

typedef struct sv_bad_line {
    int line;
    char *reason;
} sv_bad_line;

typedef struct sv_manifest {
    sv_sample *samples;
    size_t n;
    sv_bad_line *bad;  /* lines skipped with skip_bad */
    size_t n_bad;
} sv_manifest;

/* Loads path. A bad line (broken JSON, no image, missing image file, no
 * question, an id, question, answer, type or image that is not valid UTF-8
 * or holds \u0000) is an error naming the file and line, unless skip_bad, in
 * which case it is recorded in bad[] and skipped. */
int sv_manifest_load(sv_manifest *out, const char *path, int skip_bad, sv_error *err);
void sv_manifest_free(sv_manifest *m);

/* Deterministic Fisher-Yates shuffle (splitmix64 seeded with seed), then keep
 * the first `limit` samples (0: all). */
void sv_manifest_select(sv_manifest *m, uint64_t seed, int shuffle, size_t limit);

#endif
