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

/* Everything one sweep holds. */
typedef struct sweep {
    const sv_calib_params *p;
    sv_model *m;
    sv_context *ctx;
    sv_manifest manifest;
    sv_aspect aspect;         /* p->aspect resolved for the model */
    sv_prompt *prompts;       /* [manifest.n] */
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

/* Tokenises every prompt up front (each image's row count from its header):
 * a bad sample fails now, not hours in, and the context is sized once, for
 * the longest. */
static int build_prompts(sweep *s, size_t *longest, sv_error *err) {
    s->prompts = calloc(s->manifest.n, sizeof *s->prompts);
    if (!s->prompts) return sv_fail(err, "%s: out of memory", s->p->manifest);
    *longest = 0;
    for (size_t i = 0; i < s->manifest.n; i++) {
        const sv_sample *smp = &s->manifest.samples[i];
        sv_error why;
        if (sv_prompt_for_image(s->m, smp->question, SV_TEMPLATE_AUTO, s->aspect, smp->image,
                                &s->prompts[i], &why))
            return sv_fail(err, "%s:%d: %s", s->p->manifest, smp->line, why.msg);
        if (s->prompts[i].n > *longest) *longest = s->prompts[i].n;
    }
    return SV_OK;
}

static int allocate(sweep *s, size_t n_ctx, sv_error *err) {
    const sv_config *c = &s->m->cfg;
    size_t h = (size_t)c->text.hidden, L = (size_t)c->text.n_layers, V = (size_t)c->text.vocab;
    if (sv_context_new(&s->ctx, s->m, n_ctx, err)) return SV_FAIL;
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
static void run_baseline(sweep *s, const sv_prompt *pr) {
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
}

static const float *layer_input(const sweep *s, int l) {
    return s->inputs + (size_t)l * s->ctx->n_ctx * s->m->cfg.text.hidden;
}

/* LC of every layer for one group of one sample (baseline already in log_orig). */
static void sweep_group(sweep *s, const sv_prompt *pr, sv_group g, double *lc) {
    int L = s->m->cfg.text.n_layers, V = s->m->cfg.text.vocab;
    size_t r0 = g == SV_GROUP_VISUAL ? pr->visual.start : 0;
    for (int l = 0; l < L; l++) {
        if (s->p->naive)
            run_from(s, pr, 0, 0, l, g, s->embeds, s->log_abl);
        else
            run_from(s, pr, l, r0, l, g, layer_input(s, l), s->log_abl);
        lc[l] = sv_kl_divergence(s->log_abl, s->log_orig, V);
    }
}

static int sweep_sample(sweep *s, size_t i, double *lc[SV_N_GROUPS], sv_error *err) {
    const sv_sample *smp = &s->manifest.samples[i];
    const sv_prompt *pr = &s->prompts[i];
    sv_encoded_image image;
    if (sv_encode_image_file(s->ctx, smp->image, s->aspect, &image, err)) return SV_FAIL;
    int rc = sv_prompt_embed(s->m, pr, &image, s->embeds, err);
    sv_encoded_image_free(&image);
    if (rc) return SV_FAIL;
    run_baseline(s, pr);
    for (int g = 0; g < SV_N_GROUPS; g++)
        if (s->p->groups >> g & 1) sweep_group(s, pr, (sv_group)g, lc[g]);
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
}

/* Opens the output: new, or resumed after checking that its rows are our first samples. */
static int open_output(sweep *s, sv_lcfile **f, size_t *done, sv_error *err) {
    sv_lc_meta meta;
    fill_meta(s, &meta);
    *done = 0;
    if (!s->p->resume) {
        if (sv_lcfile_create(f, s->p->output, &meta, err)) return SV_FAIL;
        for (size_t i = 0; i < s->manifest.n_bad; i++)
            if (sv_lcfile_skip(*f, s->manifest.bad[i].line, s->manifest.bad[i].reason, err))
                return SV_FAIL;
        return SV_OK;
    }
    if (sv_lcfile_resume(f, s->p->output, &meta, done, err)) return SV_FAIL;
    sv_lc_data prev;
    if (sv_lc_read(&prev, s->p->output, err)) return SV_FAIL;
    int same = prev.n_samples <= s->manifest.n;
    for (size_t i = 0; same && i < prev.n_samples; i++)
        same = strcmp(prev.ids[i], s->manifest.samples[i].id) == 0;
    sv_lc_data_free(&prev);
    if (!same)
        return sv_fail(err, "%s: its samples are not the first ones of %s with these arguments",
                       s->p->output, s->p->manifest);
    return SV_OK;
}

static int run_sweep(sweep *s, sv_error *err) {
    size_t longest = 0, done = 0, L = (size_t)s->m->cfg.text.n_layers;
    sv_lcfile *f = NULL;
    if (build_prompts(s, &longest, err) || allocate(s, longest, err) ||
        open_output(s, &f, &done, err)) {
        sv_lcfile_close(f);
        return SV_FAIL;
    }
    s->stats->n_resumed = done;
    double *rows = sv_alloc_array(SV_N_GROUPS * L, sizeof(double), err, "sweep");
    double *lc[SV_N_GROUPS] = {rows, rows ? rows + L : NULL};
    double start = now_seconds();
    int rc = rows ? SV_OK : SV_FAIL;
    for (size_t i = done; i < s->manifest.n && rc == SV_OK; i++) {
        const sv_prompt *pr = &s->prompts[i];
        const sv_sample *smp = &s->manifest.samples[i];
        const double *row[SV_N_GROUPS] = {lc[0], lc[1]};
        rc = sweep_sample(s, i, lc, err);
        if (rc == SV_OK)
            rc = sv_lcfile_append(f, smp->id, smp->type, (int64_t)pr->visual.start,
                                  (int64_t)pr->visual.end, (int64_t)pr->n, row, err);
        if (rc == SV_OK && s->p->progress) {
            sv_calib_progress pg = {i + 1, s->manifest.n, s->passes, now_seconds() - start, done};
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
    s->stats->n_samples = s->manifest.n;
    return sv_lcfile_finish(f, err);
}

int sv_calibrate(const sv_calib_params *p, sv_calib_stats *stats, sv_error *err) {
    if (!p->groups) return sv_fail(err, "calibrate: no token group to sweep");
    sweep s = {.p = p, .stats = stats};
    memset(stats, 0, sizeof *stats);
    sv_model_params mp = {.vision_tower = p->vision_tower};
    int rc = sv_model_load_params(&s.m, p->model_dir, &mp, err);
    if (rc == SV_OK) rc = sv_preprocess_aspect(&s.m->cfg, p->aspect, &s.aspect, err);
    if (rc == SV_OK) rc = sv_manifest_load(&s.manifest, p->manifest, p->skip_bad, err);
    if (rc == SV_OK) {
        stats->n_skipped = s.manifest.n_bad;
        sv_manifest_select(&s.manifest, (uint64_t)p->seed, p->seed >= 0, p->limit);
        rc = run_sweep(&s, err);
    }
    for (size_t i = 0; s.prompts && i < s.manifest.n; i++) sv_prompt_free(&s.prompts[i]);
    free(s.prompts), free(s.embeds), free(s.inputs);
    free(s.log_orig), free(s.log_abl), free(s.modes);
    sv_manifest_free(&s.manifest);
    sv_context_free(s.ctx);
    sv_model_free(s.m);
    return rc;
}
