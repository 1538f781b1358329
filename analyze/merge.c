#include <stdlib.h>
#include <string.h>

#include "lcfile.h"
#include "merge.h"
#include "writer_lock.h"

/* The shards, read; by_shard[i] is the file of shard i. */
typedef struct merge {
    const char *const *paths;
    size_t n;
    sv_lc_data *d;          /* [n] */
    size_t *by_shard;       /* [shards] index into d, or n if none yet */
} merge;

/* Shard k against shard 0: the same sweep, another shard. */
static int check_same_sweep(const merge *m, size_t k, sv_error *err) {
    const sv_lc_data *a = &m->d[0], *b = &m->d[k];
    sv_lc_meta am = a->meta;
    am.shard = b->meta.shard; /* the one difference allowed */
    const char *diff = sv_lc_meta_difference(&am, &b->meta);
    if (diff)
        return sv_fail(err, "%s: from another sweep than %s (its %s differs)", m->paths[k],
                       m->paths[0], !strcmp(diff, "--shard") ? "shard count" : diff);
    if (a->selected != b->selected)
        return sv_fail(err, "%s: from another sweep than %s (%lld samples, not %lld)",
                       m->paths[k], m->paths[0], (long long)b->selected, (long long)a->selected);
    if (a->n_skipped && b->n_skipped && a->skipped_position[0] < 0 &&
        (b->skipped_position[0] >= 0 || b->skipped_line[0] != a->skipped_line[0]))
        return sv_fail(err, "%s: from another sweep than %s (other unreadable manifest lines)",
                       m->paths[k], m->paths[0]);
    return SV_OK;
}

/* Where position p is in d: row r (*skip 0) or skipped line r (*skip 1); SV_FAIL if absent. */
static int find_position(const sv_lc_data *d, int64_t p, size_t *r, int *skip) {
    for (*r = 0; *r < d->n_samples; (*r)++)
        if (d->position[*r] == p) return *skip = 0, SV_OK;
    for (*r = 0; *r < d->n_skipped; (*r)++)
        if (d->skipped_position[*r] == p) return *skip = 1, SV_OK;
    return SV_FAIL;
}

/* Each position of shard k's share exactly once, and nothing else. */
static int check_complete(const merge *m, size_t k, sv_error *err) {
    const sv_lc_data *d = &m->d[k];
    int64_t N = d->meta.shards, have = 0, want = 0;
    for (int64_t p = d->meta.shard; p < d->selected; p += N, want++) {
        size_t r;
        int skip;
        have += find_position(d, p, &r, &skip) == SV_OK;
    }
    size_t entries = d->n_samples, bad = 0;
    for (size_t r = 0; r < d->n_skipped; r++) bad += d->skipped_position[r] < 0;
    entries += d->n_skipped - bad;
    if (have < want)
        return sv_fail(err, "%s: shard %d/%d is incomplete (%lld of its %lld samples); "
                       "calibrate --shard %d/%d --resume finishes it", m->paths[k],
                       d->meta.shard, d->meta.shards, (long long)have, (long long)want,
                       d->meta.shard, d->meta.shards);
    if ((int64_t)entries != want)
        return sv_fail(err, "%s: holds positions that are not shard %d/%d's, or one twice",
                       m->paths[k], d->meta.shard, d->meta.shards);
    return SV_OK;
}

static int read_shards(merge *m, sv_error *err) {
    for (size_t k = 0; k < m->n; k++) {
        if (sv_lc_read(&m->d[k], m->paths[k], err)) return SV_FAIL;
        const sv_lc_data *d = &m->d[k];
        if (!d->partial || !d->meta.shards)
            return sv_fail(err, "%s: not a shard (made without calibrate --shard)", m->paths[k]);
        if (k == 0 && !(m->by_shard = malloc((size_t)d->meta.shards * sizeof *m->by_shard)))
            return sv_fail(err, "%s: out of memory", m->paths[k]);
        for (int i = 0; k == 0 && i < d->meta.shards; i++) m->by_shard[i] = m->n;
        if ((k && check_same_sweep(m, k, err)) || check_complete(m, k, err)) return SV_FAIL;
        size_t *slot = &m->by_shard[d->meta.shard];
        if (*slot != m->n)
            return sv_fail(err, "%s: shard %d/%d is also %s", m->paths[k], d->meta.shard,
                           d->meta.shards, m->paths[*slot]);
        *slot = k;
    }
    for (int i = 0; i < m->d[0].meta.shards; i++)
        if (m->by_shard[i] == m->n)
            return sv_fail(err, "%s: its sweep's shard %d/%d is missing (none of the %zu files holds it)",
                           m->paths[0], i, m->d[0].meta.shards, m->n);
    return SV_OK;
}

/* Position p's row or skipped line into f, from its shard's file. */
static int put_position(const merge *m, sv_lcfile *f, int64_t p, sv_error *err) {
    const sv_lc_data *d = &m->d[m->by_shard[p % m->d[0].meta.shards]];
    size_t r;
    int skip;
    find_position(d, p, &r, &skip); /* check_complete found it */
    if (skip) return sv_lcfile_skip(f, d->skipped_line[r], d->skipped_reason[r], err);
    return sv_lcfile_append_row(f, d, r, err);
}

/* The file one run writes: the unreadable manifest lines, then every position in order. */
static int write_merged(const merge *m, const char *out, sv_error *err) {
    const sv_lc_data *first = &m->d[0];
    sv_lc_meta meta = first->meta;
    meta.shard = meta.shards = 0;
    sv_lcfile *f;
    if (sv_lcfile_create(&f, out, &meta, err)) return SV_FAIL;
    sv_lcfile_write_at_finish(f);
    int rc = SV_OK;
    for (size_t r = 0; rc == SV_OK && r < first->n_skipped && first->skipped_position[r] < 0; r++)
        rc = sv_lcfile_skip(f, first->skipped_line[r], first->skipped_reason[r], err);
    for (int64_t p = 0; rc == SV_OK && p < first->selected; p++) rc = put_position(m, f, p, err);
    if (rc == SV_OK) return sv_lcfile_finish(f, err);
    sv_lcfile_close(f);
    return SV_FAIL;
}

int sv_lc_merge(const char *const *paths, size_t n, const char *out, size_t *n_samples,
                sv_error *err) {
    if (n == 0) return sv_fail(err, "merge: no shard files");
    merge m = {paths, n, calloc(n, sizeof(sv_lc_data)), NULL};
    if (!m.d) return sv_fail(err, "%s: out of memory", out);
    sv_writer_lock *lock = NULL;
    int rc = sv_writer_lock_take(&lock, out, err);
    if (rc == SV_OK) rc = read_shards(&m, err);
    if (rc == SV_OK) rc = write_merged(&m, out, err);
    *n_samples = 0;
    for (size_t k = 0; k < n; k++) {
        *n_samples += rc == SV_OK ? m.d[k].n_samples : 0;
        sv_lc_data_free(&m.d[k]);
    }
    free(m.d), free(m.by_shard);
    sv_writer_lock_release(lock);
    return rc;
}
