#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "calibrate.h"
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
    sv_calib_stats *stats;
    size_t passes;
} sweep;

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* One sample's prompt (the image's row count from its header), refused if the
 * model's context cannot hold it. */
static int build_prompt(const sweep *s, const sv_sample *smp, sv_prompt *pr, sv_error *err) {
    if (sv_prompt_for_image(s->m, smp->question, SV_TEMPLATE_AUTO, s->aspect, smp->image, pr,
                            err))
        return SV_FAIL;
    int max = s->m->cfg.text.max_pos;
    if (pr->n > (size_t)max)
        return sv_fail(err, "the prompt is %zu positions with the image's %zu visual tokens, "
                       "more than the model's context (max_position_embeddings %d)", pr->n,
                       pr->visual.end - pr->visual.start, max);
    return SV_OK;
}

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
        if (build_prompt(s, smp, &s->prompts[i], &why) == SV_OK) {
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
    return s->modes ? SV_OK : SV_FAIL;
}

/* Runs layers `first`.. on rows [r0, n) of the prompt, whose positions
 * before r0 are already in the KV cache, with group g ablated in layer
 * `target` (dense elsewhere); log-probabilities of the last position into out. */
static void run_from(sweep *s, const sv_prompt *pr, int first, size_t r0, int target, sv_group g,
                     const float *x, double *out) {
    const sv_config *c = &s->m->cfg;
    size_t h = (size_t)c->text.hidden, n = pr->n - r0;
    memset(s->modes, 0, (size_t)c->text.n_layers * sizeof *s->modes);
    s->modes[target] = SV_LAYER_ABLATE;
    sv_policy policy = {s->modes, g, pr->visual};
    memcpy(s->ctx->x, x + r0 * h, n * h * sizeof(float));
    sv_llm_run_layers(s->ctx, first, n, r0, &policy, NULL);
    sv_llm_logits(s->ctx, n - 1);
    sv_log_softmax(s->ctx->logits, c->text.vocab, out);
    s->passes++;
    s->stats->layer_rows += (double)(c->text.n_layers - first) * (double)n;
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
    s->passes++;
    s->stats->layer_rows += (double)c->text.n_layers * (double)pr->n;
    return sv_llm_check_logits(s->ctx, err);
}

static const float *layer_input(const sweep *s, int l) {
    return s->inputs + (size_t)l * s->ctx->n_ctx * s->m->cfg.text.hidden;
}

/* LC of every layer for one group of one sample (baseline already in log_orig).
 * An LC that is not a finite number is an error, never a value to rank. */
static int sweep_group(sweep *s, const sv_prompt *pr, sv_group g, double *lc, sv_error *err) {
    int L = s->m->cfg.text.n_layers, V = s->m->cfg.text.vocab;
    size_t r0 = g == SV_GROUP_VISUAL ? pr->visual.start : 0;
    for (int l = 0; l < L; l++) {
        if (s->p->naive)
            run_from(s, pr, 0, 0, l, g, s->embeds, s->log_abl);
        else
            run_from(s, pr, l, r0, l, g, layer_input(s, l), s->log_abl);
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
    s->stats->naive_layer_rows += (1 + groups * L) * L * (double)pr->n;
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
}

static int was_skipped(const sv_lc_data *d, int line) {
    for (size_t k = 0; k < d->n_skipped; k++)
        if (d->skipped_line[k] == line) return 1;
    return 0;
}

/* Where a resumed sweep continues: its rows must be the first samples with
 * these arguments, in order, apart from the ones it records as skipped. */
static int resume_point(const sweep *s, const sv_lc_data *d, size_t *next, sv_error *err) {
    size_t r = 0, i = 0;
    for (; i < s->manifest.n; i++) {
        const sv_sample *smp = &s->manifest.samples[i];
        if (r < d->n_samples && strcmp(d->ids[r], smp->id) == 0) r++;
        else if (!was_skipped(d, smp->line)) break;
    }
    *next = i;
    if (r < d->n_samples)
        return sv_fail(err, "%s: its samples are not the first ones of %s with these arguments",
                       s->p->output, s->p->manifest);
    return SV_OK;
}

/* Opens the output: new, or resumed (*next: the first sample still to run,
 * *done: rows already in the file). */
static int open_output(sweep *s, sv_lcfile **f, size_t *next, size_t *done, sv_error *err) {
    sv_lc_meta meta;
    fill_meta(s, &meta);
    *next = *done = 0;
    if (!s->p->resume) {
        if (sv_lcfile_create(f, s->p->output, &meta, err)) return SV_FAIL;
        for (size_t i = 0; i < s->manifest.n_bad; i++)
            if (sv_lcfile_skip(*f, s->manifest.bad[i].line, s->manifest.bad[i].reason, err))
                return SV_FAIL;
        return SV_OK;
    }
    if (sv_lcfile_resume(f, s->p->output, &meta, done, err)) return SV_FAIL;
    return resume_point(s, sv_lcfile_data(*f), next, err);
}

/* One sample into the file; with --skip-bad a sample that fails is recorded
 * instead. Either way the error names the manifest line. */
static int run_sample(sweep *s, sv_lcfile *f, size_t i, double *lc[SV_N_GROUPS], sv_error *err) {
    const sv_sample *smp = &s->manifest.samples[i];
    const sv_prompt *pr = &s->prompts[i];
    const double *row[SV_N_GROUPS] = {lc[0], lc[1]};
    sv_error why;
    if (s->prompt_error[i]) {
        snprintf(why.msg, sizeof why.msg, "%s", s->prompt_error[i]);
    } else if (sweep_sample(s, i, lc, &why) == SV_OK) {
        if (sv_lcfile_append(f, smp->id, smp->type, (int64_t)pr->visual.start,
                             (int64_t)pr->visual.end, (int64_t)pr->n, row, &why) == SV_OK)
            return SV_OK;
        return sv_fail(err, "%.900s; the %zu samples before are kept and --resume continues",
                       why.msg, sv_lcfile_data(f)->n_samples);
    }
    if (!s->p->skip_bad) return sv_fail(err, "%s:%d: %s", s->p->manifest, smp->line, why.msg);
    return sv_lcfile_skip(f, smp->line, why.msg, err);
}

static int run_sweep(sweep *s, sv_error *err) {
    size_t longest = 0, next = 0, done = 0, L = (size_t)s->m->cfg.text.n_layers;
    sv_lcfile *f = NULL;
    if (build_prompts(s, &longest, err) || allocate(s, longest, err) ||
        open_output(s, &f, &next, &done, err)) {
        sv_lcfile_close(f);
        return SV_FAIL;
    }
    s->stats->n_resumed = done;
    double *rows = sv_alloc_array(SV_N_GROUPS * L, sizeof(double), err, "sweep");
    double *lc[SV_N_GROUPS] = {rows, rows ? rows + L : NULL};
    double start = now_seconds();
    int rc = rows ? SV_OK : SV_FAIL;
    for (size_t i = next; i < s->manifest.n && rc == SV_OK; i++) {
        rc = run_sample(s, f, i, lc, err);
        if (rc == SV_OK && s->p->progress) {
            sv_calib_progress pg = {i + 1, s->manifest.n, s->passes, now_seconds() - start, next};
            s->p->progress(&pg, s->p->user);
        }
        if (rc == SV_OK && s->p->stop && *s->p->stop && i + 1 < s->manifest.n)
            rc = sv_fail(err, "%s: interrupted after %zu of %zu samples; --resume continues",
                         s->p->output, i + 1, s->manifest.n);
    }
    free(rows);
    if (rc) {
        sv_lcfile_close(f); /* stays incomplete, resumable */
        return SV_FAIL;
    }
    s->stats->n_samples = sv_lcfile_data(f)->n_samples;
    s->stats->n_skipped = sv_lcfile_data(f)->n_skipped;
    return sv_lcfile_finish(f, err);
}

int sv_calibrate(const sv_calib_params *p, sv_calib_stats *stats, sv_error *err) {
    if (!p->groups) return sv_fail(err, "calibrate: no token group to sweep");
    sweep s = {.p = p, .stats = stats};
    memset(stats, 0, sizeof *stats);
    /* before anything else: a second writer must not even load the model */
    sv_writer_lock *lock;
    if (sv_writer_lock_take(&lock, p->output, err)) return SV_FAIL;
    sv_model_params mp = {.vision_tower = p->vision_tower};
    int rc = sv_model_load_params(&s.m, p->model_dir, &mp, err);
    if (rc == SV_OK) rc = sv_preprocess_aspect(&s.m->cfg, p->aspect, &s.aspect, err);
    if (rc == SV_OK) rc = sv_manifest_load(&s.manifest, p->manifest, p->skip_bad, err);
    if (rc == SV_OK) {
        sv_manifest_select(&s.manifest, (uint64_t)p->seed, p->seed >= 0, p->limit);
        rc = run_sweep(&s, err);
    }
    for (size_t i = 0; s.prompts && i < s.manifest.n; i++) sv_prompt_free(&s.prompts[i]);
    for (size_t i = 0; s.prompt_error && i < s.manifest.n; i++) free(s.prompt_error[i]);
    free(s.prompts), free(s.prompt_error), free(s.embeds), free(s.inputs);
    free(s.log_orig), free(s.log_abl), free(s.modes);
    sv_manifest_free(&s.manifest);
    sv_context_free(s.ctx);
    sv_model_free(s.m);
    sv_writer_lock_release(lock);
    return rc;
}
