#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "calibrate.h"
#include "dispatch.h"
#include "generate.h"
#include "lcfile.h"
#include "manifest.h"
#include "metrics.h"
#include "preprocess.h"
#include "vision.h"
#include "writer_lock.h"

/* Everything one sweep holds. */
typedef struct sweep {
    const sv_calib_params *p;
    sv_model *m;
    sv_context *ctx;
    sv_manifest manifest;
    sv_aspect aspect;         /* p->aspect resolved for the model */
    sv_prompt *prompts;       /* [manifest.n] */
    char **prompt_error;      /* [manifest.n] why a prompt could not be built (--skip-bad) */
    float *embeds;            /* [n_ctx, hidden] */
    float *inputs;            /* [n_layers, n_ctx, hidden] each layer's baseline input */
    double *log_orig, *log_abl; /* [vocab] */
    sv_layer_mode *modes;     /* [n_layers] */
    double *lc[SV_N_GROUPS];  /* [n_layers] one sample's row */
    double layer_rows, naive_layer_rows; /* work done here (sv_calib_stats) */
    sv_world *world;
    /* rank 0, the writer */
    sv_calib_stats *stats;
    sv_lcfile *f;             /* the output */
    sv_lcfile *pending;       /* <output>.pending, opened when first needed */
    char pending_path[1100];
    size_t placed;            /* positions placed in this run */
} sweep;

/* Tokenises every prompt up front: a bad sample is found now, not hours in,
 * and the context is sized once, for the longest. With --skip-bad a prompt
 * that fails is remembered and the sample skipped when the sweep reaches it;
 * otherwise the run stops here, before anything is written. */
static int build_prompts(sweep *s, size_t *longest, sv_error *err) {
    s->prompts = calloc(s->manifest.n, sizeof *s->prompts);
    s->prompt_error = calloc(s->manifest.n, sizeof *s->prompt_error);
    if (!s->prompts || !s->prompt_error) return sv_fail(err, "%s: out of memory", s->p->manifest);
    *longest = 1; /* a context of at least one position even if every prompt fails */
    for (size_t i = 0; i < s->manifest.n; i++) {
        const sv_sample *smp = &s->manifest.samples[i];
        sv_error why;
        if (sv_prompt_for_image(s->m, smp->question, SV_TEMPLATE_AUTO, s->aspect, smp->image,
                                &s->prompts[i], &why) == SV_OK) {
            if (s->prompts[i].n > *longest) *longest = s->prompts[i].n;
            continue;
        }
        if (!s->p->skip_bad) return sv_fail(err, "%s:%d: %s", s->p->manifest, smp->line, why.msg);
        sv_prompt_free(&s->prompts[i]);
        if (!(s->prompt_error[i] = strdup(why.msg)))
            return sv_fail(err, "%s: out of memory", s->p->manifest);
    }
    return SV_OK;
}

static int allocate(sweep *s, size_t n_ctx, sv_error *err) {
    const sv_config *c = &s->m->cfg;
    size_t h = (size_t)c->text.hidden, L = (size_t)c->text.n_layers, V = (size_t)c->text.vocab;
    if (sv_context_new(&s->ctx, s->m, n_ctx, s->p->n_threads, err)) return SV_FAIL;
    s->embeds = sv_alloc_array(n_ctx * h, sizeof(float), err, "sweep");
    s->inputs = s->embeds ? sv_alloc_array(L * n_ctx * h, sizeof(float), err, "sweep") : NULL;
    s->log_orig = s->inputs ? sv_alloc_array(V, sizeof(double), err, "sweep") : NULL;
    s->log_abl = s->log_orig ? sv_alloc_array(V, sizeof(double), err, "sweep") : NULL;
    s->modes = s->log_abl ? sv_alloc_array(L, sizeof *s->modes, err, "sweep") : NULL;
    s->lc[0] = s->modes ? sv_alloc_array(SV_N_GROUPS * L, sizeof(double), err, "sweep") : NULL;
    s->lc[1] = s->lc[0] ? s->lc[0] + L : NULL;
    return s->lc[0] ? SV_OK : SV_FAIL;
}

/* The paper's way (--naive): the whole forward again with group g ablated in
 * layer `target`; log-probabilities of the last position into out. */
static void run_naive(sweep *s, const sv_prompt *pr, int target, sv_group g, double *out) {
    const sv_config *c = &s->m->cfg;
    size_t h = (size_t)c->text.hidden, n = pr->n;
    memset(s->modes, 0, (size_t)c->text.n_layers * sizeof *s->modes);
    s->modes[target] = SV_LAYER_ABLATE;
    sv_policy policy = {s->modes, g, pr->visual};
    memcpy(s->ctx->x, s->embeds, n * h * sizeof(float));
    sv_llm_run_layers(s->ctx, 0, n, 0, &policy, NULL);
    sv_llm_logits(s->ctx, n - 1);
    sv_log_softmax(s->ctx->logits, c->text.vocab, out);
    s->layer_rows += (double)c->text.n_layers * (double)n;
}

/* The unablated pass, in two chunks split at the first visual position: the
 * restarted passes of the visual sweep then run their rows in exactly the
 * baseline's batches, so whatever they do not change stays bit-identical
 * (LC(L-1, visual) comes out exactly 0, as it must). Saves each layer's input. */
static int run_baseline(sweep *s, const sv_prompt *pr, sv_error *err) {
    const sv_config *c = &s->m->cfg;
    size_t h = (size_t)c->text.hidden, split = s->p->naive ? 0 : pr->visual.start;
    size_t chunks[3] = {0, split, pr->n};
    for (int k = 0; k < 2; k++) {
        size_t r0 = chunks[k], n = chunks[k + 1] - r0;
        if (!n) continue;
        memcpy(s->ctx->x, s->embeds + r0 * h, n * h * sizeof(float));
        /* inputs hold rows at their absolute positions */
        sv_llm_run_layers(s->ctx, 0, n, r0, NULL, s->inputs + r0 * h);
    }
    sv_llm_logits(s->ctx, pr->n - split - 1);
    sv_log_softmax(s->ctx->logits, c->text.vocab, s->log_orig);
    s->layer_rows += (double)c->text.n_layers * (double)pr->n;
    return sv_llm_check_logits(s->ctx, err);
}

static const float *layer_input(const sweep *s, int l) {
    return s->inputs + (size_t)l * s->ctx->n_ctx * s->m->cfg.text.hidden;
}

static int in_group(const sv_prompt *pr, sv_group g, size_t row) {
    int visual = row >= pr->visual.start && row < pr->visual.end;
    return g == SV_GROUP_VISUAL ? visual : !visual;
}

/* Rows [a, b) of layer l's baseline input into x, whose row 0 is row r0. */
static void copy_input_rows(const sweep *s, int l, size_t r0, size_t a, size_t b, float *x) {
    size_t h = (size_t)s->m->cfg.text.hidden;
    if (a < r0) a = r0;
    if (b > a) memcpy(x + (a - r0) * h, layer_input(s, l) + a * h, (b - a) * h * sizeof(float));
}

/* The restarted pass for group g ablated in layer l, which need not be run:
 * its output is known. The group's rows keep their input; every other row
 * gets the baseline's output, because its attention reads keys and values
 * made from the unchanged input, over the baseline's cache of the earlier
 * positions. Layers l+1.. then run on rows [r0, n), the baseline's batch for
 * the visual group, so the rows they do not change stay bit-identical. The
 * last position's log-probabilities into out. */
static void run_after_ablation(sweep *s, const sv_prompt *pr, int l, size_t r0, sv_group g,
                               double *out) {
    const sv_config *c = &s->m->cfg;
    int L = c->text.n_layers;
    size_t h = (size_t)c->text.hidden, n = pr->n - r0, last = pr->n - 1;
    if (l == L - 1) { /* only the last row is read: its output is the baseline's or its input */
        if (!in_group(pr, g, last)) {
            memcpy(out, s->log_orig, (size_t)c->text.vocab * sizeof *out);
            return;
        }
        memcpy(s->ctx->x, layer_input(s, l) + last * h, h * sizeof(float));
        sv_llm_logits(s->ctx, 0);
        sv_log_softmax(s->ctx->logits, c->text.vocab, out);
        return;
    }
    int text_from = g == SV_GROUP_TEXT ? l : l + 1, visual_from = g == SV_GROUP_VISUAL ? l : l + 1;
    copy_input_rows(s, text_from, r0, r0, pr->visual.start, s->ctx->x);
    copy_input_rows(s, visual_from, r0, pr->visual.start, pr->visual.end, s->ctx->x);
    copy_input_rows(s, text_from, r0, pr->visual.end, pr->n, s->ctx->x);
    sv_llm_run_layers(s->ctx, l + 1, n, r0, NULL, NULL);
    sv_llm_logits(s->ctx, n - 1);
    sv_log_softmax(s->ctx->logits, c->text.vocab, out);
    s->layer_rows += (double)(L - l - 1) * (double)n;
}

/* LC of every layer for one group of one sample (baseline already in log_orig).
 * An LC that is not a finite number is an error, never a value to rank. */
static int sweep_group(sweep *s, const sv_prompt *pr, sv_group g, double *lc, sv_error *err) {
    int L = s->m->cfg.text.n_layers, V = s->m->cfg.text.vocab;
    size_t r0 = g == SV_GROUP_VISUAL ? pr->visual.start : 0;
    for (int l = 0; l < L; l++) {
        if (s->p->naive)
            run_naive(s, pr, l, g, s->log_abl);
        else
            run_after_ablation(s, pr, l, r0, g, s->log_abl);
        lc[l] = sv_kl_divergence(s->log_abl, s->log_orig, V);
        if (!isfinite(lc[l]))
            return sv_fail(err, "%s: LC of layer %d (%s tokens) is %g, not a finite number",
                           s->p->model_dir, l, sv_group_name(g), lc[l]);
    }
    return SV_OK;
}

static int sweep_sample(sweep *s, size_t i, double *lc[SV_N_GROUPS], sv_error *err) {
    const sv_sample *smp = &s->manifest.samples[i];
    const sv_prompt *pr = &s->prompts[i];
    sv_encoded_image image;
    if (sv_encode_image_file(s->ctx, smp->image, s->aspect, &image, err)) return SV_FAIL;
    int rc = sv_prompt_embed(s->m, pr, &image, s->embeds, err);
    sv_encoded_image_free(&image);
    if (rc || run_baseline(s, pr, err)) return SV_FAIL;
    for (int g = 0; g < SV_N_GROUPS; g++)
        if (s->p->groups >> g & 1 && sweep_group(s, pr, (sv_group)g, lc[g], err)) return SV_FAIL;
    double L = s->m->cfg.text.n_layers, groups = __builtin_popcount((unsigned)s->p->groups);
    s->naive_layer_rows += (1 + groups * L) * L * (double)pr->n;
    return SV_OK;
}

static void fill_meta(const sweep *s, sv_lc_meta *m) {
    memset(m, 0, sizeof *m);
    snprintf(m->model, sizeof m->model, "%s", s->p->model_dir);
    snprintf(m->config_hash, sizeof m->config_hash, "%s", s->m->cfg.hash);
    snprintf(m->manifest, sizeof m->manifest, "%s", s->p->manifest);
    snprintf(m->aspect, sizeof m->aspect, "%s", sv_aspect_name(s->aspect));
    m->seed = s->p->seed < 0 ? -1 : s->p->seed;
    m->limit = (int64_t)s->p->limit;
    m->n_layers = s->m->cfg.text.n_layers;
    m->groups = s->p->groups;
    m->naive = s->p->naive;
    m->shard = s->p->shard, m->shards = s->p->shards;
}

/* Whether position i of the selection belongs to this run (its shard). */
static int owned(const sweep *s, size_t i) {
    return !s->p->shards || i % (size_t)s->p->shards == (size_t)s->p->shard;
}

static int was_skipped(const sv_lc_data *d, int line) {
    for (size_t k = 0; k < d->n_skipped; k++)
        if (d->skipped_line[k] == line) return 1;
    return 0;
}

/* Where a resumed sweep continues: its rows must be the first samples of its
 * positions with these arguments, in order, apart from the ones it records as
 * skipped. */
static int resume_point(const sweep *s, const sv_lc_data *d, size_t *next, sv_error *err) {
    size_t r = 0, i = 0;
    for (; i < s->manifest.n; i++) {
        const sv_sample *smp = &s->manifest.samples[i];
        if (!owned(s, i)) continue;
        if (r < d->n_samples && strcmp(d->ids[r], smp->id) == 0) r++;
        else if (!was_skipped(d, smp->line)) break;
    }
    *next = i;
    if (r < d->n_samples)
        return sv_fail(err, "%s: its samples are not the first ones of %s with these arguments",
                       s->p->output, s->p->manifest);
    return SV_OK;
}

/* A new partial file for a shard or the pending results, else a new LC file. */
static int create_file(const sweep *s, sv_lcfile **f, const char *path, int partial,
                       sv_error *err) {
    sv_lc_meta meta;
    fill_meta(s, &meta);
    if (sv_lcfile_create(f, path, &meta, err)) return SV_FAIL;
    if (partial) sv_lcfile_partial(*f, (int64_t)s->manifest.n);
    return SV_OK;
}

/* Opens the output: new, or resumed (*next: the first position still to run,
 * *done: rows already in the file), and the pending results of a resumed MPI
 * run if there are any (with no output yet, when the first sample was among
 * the ones lost). A new sweep drops an old sweep's pending results. */
static int open_output(sweep *s, size_t *next, size_t *done, sv_error *err) {
    sv_lc_meta meta;
    fill_meta(s, &meta);
    *next = *done = 0;
    snprintf(s->pending_path, sizeof s->pending_path, "%s.pending", s->p->output);
    int pending = access(s->pending_path, F_OK) == 0;
    if (!s->p->resume) remove(s->pending_path);
    if (s->p->resume && (!pending || access(s->p->output, F_OK) == 0)) {
        if (sv_lcfile_resume(&s->f, s->p->output, &meta, done, err) ||
            resume_point(s, sv_lcfile_data(s->f), next, err))
            return SV_FAIL;
    } else {
        if (create_file(s, &s->f, s->p->output, s->p->shards > 0, err)) return SV_FAIL;
        sv_lcfile_at(s->f, -1); /* manifest lines that could not be read have no position */
        for (size_t i = 0; i < s->manifest.n_bad; i++)
            if (sv_lcfile_skip(s->f, s->manifest.bad[i].line, s->manifest.bad[i].reason, err))
                return SV_FAIL;
    }
    size_t held;
    if (!s->p->resume || !pending) return SV_OK;
    if (sv_lcfile_resume(&s->pending, s->pending_path, &meta, &held, err)) return SV_FAIL;
    if (!sv_lcfile_data(s->pending)->partial)
        return sv_fail(err, "%s: not a partial LC file", s->pending_path);
    return SV_OK;
}

/* Sample i's outcome as it travels from the rank that ran it to the writer:
 * this head, then the row (the swept groups' n_layers values each, visual
 * first) or, when --skip-bad skipped it, the reason (no NUL). */
typedef struct result_head {
    int64_t skipped;
    int64_t visual_start, visual_end, n_tokens;
    double layer_rows, naive_layer_rows;    /* the work it took */
} result_head;

static size_t row_bytes(const sweep *s) {
    size_t groups = (size_t)__builtin_popcount((unsigned)s->p->groups);
    return groups * (size_t)s->m->cfg.text.n_layers * sizeof(double);
}

/* dispatch's run: one sample. A sample that fails is an error naming its
 * manifest line, or with --skip-bad a skipped result. */
static int run_item(void *user, size_t i, void **out, size_t *size, sv_error *err) {
    sweep *s = user;
    const sv_sample *smp = &s->manifest.samples[i];
    const sv_prompt *pr = &s->prompts[i];
    double rows = s->layer_rows, naive = s->naive_layer_rows;
    sv_error why;
    int rc = s->prompt_error[i] ? sv_fail(&why, "%s", s->prompt_error[i])
                                : sweep_sample(s, i, s->lc, &why);
    if (rc && !s->p->skip_bad) return sv_fail(err, "%s:%d: %s", s->p->manifest, smp->line, why.msg);
    result_head h = {rc != SV_OK, 0, 0, 0, s->layer_rows - rows, s->naive_layer_rows - naive};
    if (!rc) h.visual_start = (int64_t)pr->visual.start, h.visual_end = (int64_t)pr->visual.end,
             h.n_tokens = (int64_t)pr->n;
    size_t body = rc ? strlen(why.msg) : row_bytes(s), L = (size_t)s->m->cfg.text.n_layers;
    unsigned char *r = malloc(sizeof h + body);
    if (!r) return sv_fail(err, "%s:%d: out of memory", s->p->manifest, smp->line);
    memcpy(r, &h, sizeof h);
    if (rc) memcpy(r + sizeof h, why.msg, body);
    for (int g = 0, at = 0; !rc && g < SV_N_GROUPS; g++)
        if (s->p->groups >> g & 1) memcpy(r + sizeof h + L * sizeof(double) * at++, s->lc[g],
                                          L * sizeof(double));
    *out = r, *size = sizeof h + body;
    return SV_OK;
}

/* Puts a result into f at position i: a row, or a skipped line. */
static int put_result(const sweep *s, sv_lcfile *f, size_t i, const void *result, size_t size,
                      sv_error *err) {
    const sv_sample *smp = &s->manifest.samples[i];
    result_head h;
    size_t L = (size_t)s->m->cfg.text.n_layers;
    if (size < sizeof h) return sv_fail(err, "%s:%d: a short result", s->p->manifest, smp->line);
    memcpy(&h, result, sizeof h);
    const char *body = (const char *)result + sizeof h;
    sv_lcfile_at(f, (int64_t)i);
    if (h.skipped) {
        char reason[SV_ERROR_MAX];
        snprintf(reason, sizeof reason, "%.*s", (int)(size - sizeof h), body);
        return sv_lcfile_skip(f, smp->line, reason, err);
    }
    if (size != sizeof h + row_bytes(s))
        return sv_fail(err, "%s:%d: a result of the wrong size", s->p->manifest, smp->line);
    double *row = malloc(row_bytes(s) ? row_bytes(s) : 1); /* body may be unaligned */
    if (!row) return sv_fail(err, "%s: out of memory", s->p->output);
    memcpy(row, body, row_bytes(s));
    const double *lc[SV_N_GROUPS] = {NULL, NULL};
    for (int g = 0, at = 0; g < SV_N_GROUPS; g++)
        if (s->p->groups >> g & 1) lc[g] = row + L * (size_t)at++;
    sv_lcfile_text(f, smp->question, smp->image);
    int rc = sv_lcfile_append(f, smp->id, smp->type, h.visual_start, h.visual_end, h.n_tokens,
                              lc, err);
    free(row);
    return rc;
}

/* A pending result (from <output>.pending) in the same form as a fresh one. */
static int pending_result(const sweep *s, size_t i, void **out, size_t *size, sv_error *err) {
    const sv_lc_data *d = sv_lcfile_data(s->pending);
    size_t L = (size_t)d->meta.n_layers;
    for (size_t k = 0; k < d->n_skipped; k++) {
        if (d->skipped_position[k] != (int64_t)i) continue;
        size_t n = strlen(d->skipped_reason[k]);
        result_head h = {.skipped = 1};
        if (!(*out = malloc(sizeof h + n))) return sv_fail(err, "%s: out of memory", s->p->output);
        memcpy(*out, &h, sizeof h), memcpy((char *)*out + sizeof h, d->skipped_reason[k], n);
        *size = sizeof h + n;
        return SV_OK;
    }
    for (size_t r = 0; r < d->n_samples; r++) {
        if (d->position[r] != (int64_t)i) continue;
        result_head h = {0, d->visual_start[r], d->visual_end[r], d->n_tokens[r], 0, 0};
        unsigned char *b = malloc(sizeof h + row_bytes(s));
        if (!b) return sv_fail(err, "%s: out of memory", s->p->output);
        memcpy(b, &h, sizeof h);
        for (int g = 0, at = 0; g < SV_N_GROUPS; g++)
            if (d->lc[g]) memcpy(b + sizeof h + L * sizeof(double) * at++, d->lc[g] + r * L,
                                 L * sizeof(double));
        *out = b, *size = sizeof h + row_bytes(s);
        return SV_OK;
    }
    return sv_fail(err, "%s: position %zu is not there", s->pending_path, i);
}

/* dispatch's place: the result of position i into the output, in its turn
 * (NULL: it waits in the pending file). */
static int place_item(void *user, size_t i, const void *result, size_t size, sv_error *err) {
    sweep *s = user;
    void *mine = NULL;
    if (!result && pending_result(s, i, &mine, &size, err)) return SV_FAIL;
    const result_head *h = result ? result : mine;
    sv_calib_stats *st = s->stats;
    sv_error why;
    int rc = put_result(s, s->f, i, result ? result : mine, size, &why);
    if (rc == SV_OK) {
        st->layer_rows += h->layer_rows, st->naive_layer_rows += h->naive_layer_rows;
        s->placed++;
    } else {
        rc = sv_fail(err, "%.900s; the %zu samples before are kept and --resume continues",
                     why.msg, sv_lcfile_data(s->f)->n_samples);
    }
    free(mine);
    return rc;
}

/* dispatch's hold: a result that came before its turn goes to the pending
 * file at once, so that it outlives a run that dies before its turn. */
static int hold_item(void *user, size_t i, const void *result, size_t size, sv_error *err) {
    sweep *s = user;
    if (!s->pending && create_file(s, &s->pending, s->pending_path, 1, err)) return SV_FAIL;
    return put_result(s, s->pending, i, result, size, err);
}

/* Whether pending holds a result for position i. */
static int is_pending(const sweep *s, size_t i) {
    const sv_lc_data *d = s->pending ? sv_lcfile_data(s->pending) : NULL;
    for (size_t k = 0; d && k < d->n_samples + d->n_skipped; k++)
        if ((k < d->n_samples ? d->position[k] : d->skipped_position[k - d->n_samples]) ==
            (int64_t)i)
            return 1;
    return 0;
}

/* Rank 0's list of positions to place from `next` on, and which of them wait
 * in the pending file; the progress counts every position of this run. */
static int plan_items(sweep *s, size_t next, size_t **items, unsigned char **done, size_t *n,
                      sv_error *err) {
    size_t all = 0, before = 0, held = 0;
    *n = 0;
    *items = sv_alloc_array(s->manifest.n + 1, sizeof **items, err, "sweep");
    *done = *items ? sv_alloc_array(s->manifest.n + 1, 1, err, "sweep") : NULL;
    if (!*done) return SV_FAIL;
    for (size_t i = 0; i < s->manifest.n; i++) {
        if (!owned(s, i)) continue;
        all++;
        if (i < next) {
            before++;
            continue;
        }
        (*done)[*n] = (unsigned char)is_pending(s, i);
        held += (*done)[*n];
        (*items)[(*n)++] = i;
    }
    if (s->p->progress) sv_progress_begin(s->p->progress, all, before + held);
    return SV_OK;
}

/* Every position through dispatch; rank 0 ends with the finished file, or a
 * resumable one when stopped. */
static int run_items(sweep *s, size_t next, sv_error *err) {
    size_t *items = NULL, n = 0;
    unsigned char *done = NULL;
    int rank0 = s->world->rank == 0;
    if (rank0 && plan_items(s, next, &items, &done, &n, err)) return SV_FAIL;
    sv_dispatch d = {s->world, items, done, n, {run_item, place_item, hold_item}, s,
                     s->p->progress, s->p->stop};
    int rc = sv_dispatch_run(&d, err);
    free(items), free(done);
    sv_progress_end(s->p->progress);
    if (!rank0 || rc == SV_FAIL) return rc;
    if (rc == SV_DISPATCH_STOPPED)
        return sv_fail(err, "%s: interrupted after %zu of %zu samples; --resume continues",
                       s->p->output, s->placed + next, s->manifest.n);
    s->stats->n_samples = sv_lcfile_data(s->f)->n_samples;
    s->stats->n_skipped = sv_lcfile_data(s->f)->n_skipped;
    rc = sv_lcfile_finish(s->f, err);
    s->f = NULL;
    if (rc == SV_OK && s->pending) remove(s->pending_path); /* every result is in the output */
    return rc;
}

/* Each rank gets ready: every prompt tokenised, the sample buffers on the
 * ranks that compute, the output on the one that writes. */
static int prepare(sweep *s, size_t *next, sv_error *err) {
    size_t longest = 0, done = 0;
    int writes = s->world->rank == 0, computes = s->world->size == 1 || !writes;
    int rc = build_prompts(s, &longest, err);
    if (rc == SV_OK && computes) rc = allocate(s, longest, err);
    if (rc == SV_OK && writes) rc = open_output(s, next, &done, err);
    s->stats->n_resumed = done;
    return rc;
}

static int run_sweep(sweep *s, sv_error *err) {
    size_t next = 0;
    int rc = prepare(s, &next, err);
    /* one rank that cannot start stops them all, with its reason on rank 0 */
    if (sv_world_agree(s->world, rc, err)) return SV_FAIL;
    return run_items(s, next, err);
}

/* A new sweep over an existing LC file replaces it only when asked to: hours of
 * results must not go to a repeated command line. */
static int check_not_replacing(const sv_calib_params *p, sv_error *err) {
    if (p->resume || p->force || access(p->output, F_OK) != 0) return SV_OK;
    sv_lc_data d;
    sv_error why;
    int finished = sv_lc_read(&d, p->output, &why) == SV_OK && d.complete;
    if (finished) sv_lc_data_free(&d);
    return sv_fail(err, "%s: already holds %s; --resume continues a sweep, --force replaces it",
                   p->output, finished ? "a finished sweep" : "an unfinished sweep or another file");
}

int sv_calibrate(const sv_calib_params *p, sv_calib_stats *stats, sv_error *err) {
    sv_world alone = {0, 1, 0, 0};
    if (!p->groups) return sv_fail(err, "calibrate: no token group to sweep");
    if (p->shards && (p->shard < 0 || p->shard >= p->shards))
        return sv_fail(err, "calibrate: shard %d of %d does not exist", p->shard, p->shards);
    sweep s = {.p = p, .stats = stats, .world = p->world ? p->world : &alone};
    memset(stats, 0, sizeof *stats);
    /* before anything else: a second writer must not even load the model */
    sv_writer_lock *lock = NULL;
    int rc = s.world->rank == 0 ? sv_writer_lock_take(&lock, p->output, err) : SV_OK;
    if (rc == SV_OK && s.world->rank == 0) rc = check_not_replacing(p, err);
    sv_model_params mp = {.vision_tower = p->vision_tower};
    if (rc == SV_OK) rc = sv_model_load_params(&s.m, p->model_dir, &mp, err);
    if (rc == SV_OK) rc = sv_preprocess_aspect(&s.m->cfg, p->aspect, &s.aspect, err);
    if (rc == SV_OK) rc = sv_manifest_load(&s.manifest, p->manifest, p->skip_bad, err);
    if (rc == SV_OK) sv_manifest_select(&s.manifest, (uint64_t)p->seed, p->seed >= 0, p->limit);
    rc = rc == SV_OK ? run_sweep(&s, err) : sv_world_agree(s.world, rc, err);
    sv_lcfile_close(s.f); /* still open: stopped or failed, and resumable */
    sv_lcfile_close(s.pending);
    for (size_t i = 0; s.prompts && i < s.manifest.n; i++) sv_prompt_free(&s.prompts[i]);
    for (size_t i = 0; s.prompt_error && i < s.manifest.n; i++) free(s.prompt_error[i]);
    free(s.prompts), free(s.prompt_error), free(s.embeds), free(s.inputs);
    free(s.log_orig), free(s.log_abl), free(s.modes), free(s.lc[0]);
    sv_manifest_free(&s.manifest);
    sv_context_free(s.ctx);
    sv_model_free(s.m);
    sv_writer_lock_release(lock);
    return rc;
}
