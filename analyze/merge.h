/* shortv merge: the partial LC files of `calibrate --shard i/N`, one per
 * shard, joined into the file a single run of the sweep writes (the same
 * bytes apart from `created`). They must be one sweep's: the same model
 * (path and config hash), manifest, seed, limit, groups, aspect and --naive,
 * the same N and selection size; each shard once, none missing, and each
 * complete (every position of its shard present as a row or a skipped line). */
#ifndef SV_MERGE_H
#define SV_MERGE_H

#include <stddef.h>

#include "status.h"

/* Merges paths[0..n) into out (written atomically under out's writer lock). */
int sv_lc_merge(const char *const *paths, size_t n, const char *out, size_t *n_samples,
                sv_error *err);

#endif
