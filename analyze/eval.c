#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atomic_file.h"
#include "eval.h"
#include "flops.h"
#include "freeze.h"
#include "generate.h"
#include "manifest.h"
#include "preprocess.h"
#include "vision.h"

void sv_normalise_answer(char *s) {
    size_t w = 0;
    int space = 0;
    for (size_t r = 0; s[r]; r++) {
        unsigned char c = (unsigned char)s[r];
        if (isspace(c)) {
            space = w > 0;
        } else if (!ispunct(c)) {
            if (space) s[w++] = ' ';
            s[w++] = (char)tolower(c);
            space = 0;
        }
    }
    s[w] = 0;
}

void sv_wilson_interval(size_t k, size_t n, double *low, double *high) {
    if (n == 0) {
        *low = 0, *high = 1;
        return;
    }
    const double z = 1.959963984540054;
    double p = (double)k / (double)n, z2n = z * z / (double)n;
    double centre = (p + z2n / 2) / (1 + z2n);
    double half = z * sqrt(p * (1 - p) / (double)n + z2n / (4 * (double)n)) / (1 + z2n);
    *low = fmax(0, centre - half), *high = fmin(1, centre + half);
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

typedef struct evaluator {
    const sv_eval_params *p;
    sv_model *m;
    sv_context *ctx;
    sv_manifest manifest;
    sv_prompt *prompts;
    sv_layer_mode *modes;
    sv_group group;
    float *image_rows;
    int *ids;
    cJSON *samples;
    sv_eval_summary *sum;
    double flops_ratio_sum;
} evaluator;

/* The greedy answer to one sample, decoded and cut at the first newline. */
static int answer(evaluator *e, size_t i, char **text, double *prefill_ms, sv_error *err) {
    const sv_sample *smp = &e->manifest.samples[i];
    float *pixels;
    if (sv_preprocess_file(&e->m->cfg, smp->image, e->p->aspect, &pixels, err)) return SV_FAIL;
    sv_encode_image(e->ctx, pixels, e->image_rows);
    free(pixels);
    sv_policy policy = {e->modes, e->group, e->prompts[i].visual};
    double t0 = now_ms();
    if (sv_prefill(e->ctx, &e->prompts[i], e->image_rows, &policy, err)) return SV_FAIL;
    *prefill_ms = now_ms() - t0;
    int n = 0;
    if (sv_generate_greedy(e->ctx, e->p->max_new, e->ids, &n, NULL, NULL, err) ||
        sv_tokenizer_decode(e->m->tok, e->ids, (size_t)n, text, err))
        return SV_FAIL;
    char *nl = strchr(*text, '\n');
    if (nl) *nl = 0;
    return SV_OK;
}

/* Prefill FLOPs of this run over the dense ones, for this sample's token counts. */
static int flops_ratio(evaluator *e, size_t i, double *ratio, sv_error *err) {
    const sv_prompt *pr = &e->prompts[i];
    int64_t v = (int64_t)(pr->visual.end - pr->visual.start), t = (int64_t)pr->n - v;
    int n_frozen = 0;
    for (int l = 0; e->modes && l < e->m->cfg.text.n_layers; l++)
        n_frozen += e->modes[l] == SV_LAYER_FREEZE;
    sv_flops f;
    if (sv_flops_count(&e->m->cfg, v, t, e->group, n_frozen, &f, err)) return SV_FAIL;
    *ratio = f.ratio;
    return SV_OK;
}

static int score_sample(evaluator *e, size_t i, sv_error *err) {
    const sv_sample *smp = &e->manifest.samples[i];
    if (!smp->answer)
        return sv_fail(err, "%s:%d: no answer to score against", e->p->manifest, smp->line);
    char *pred = NULL, *want = strdup(smp->answer);
    double ms = 0, ratio = 1;
    int rc = want ? answer(e, i, &pred, &ms, err) : sv_fail(err, "eval: out of memory");
    if (rc == SV_OK) rc = flops_ratio(e, i, &ratio, err);
    if (rc == SV_OK) {
        char *norm = strdup(pred);
        if (norm) sv_normalise_answer(norm);
        sv_normalise_answer(want);
        int ok = norm && strcmp(norm, want) == 0;
        e->sum->correct += ok;
        e->sum->prefill_ms += ms;
        e->flops_ratio_sum += ratio;
        cJSON *s = cJSON_CreateObject();
        cJSON_AddStringToObject(s, "id", smp->id);
        cJSON_AddStringToObject(s, "question", smp->question);
        cJSON_AddStringToObject(s, "answer", smp->answer);
        cJSON_AddStringToObject(s, "prediction", pred);
        cJSON_AddBoolToObject(s, "correct", ok);
        cJSON_AddNumberToObject(s, "prefill_ms", ms);
        cJSON_AddItemToArray(e->samples, s);
        free(norm);
    }
    free(pred), free(want);
    return rc;
}

static int setup(evaluator *e, sv_error *err) {
    const sv_eval_params *p = e->p;
    if (sv_model_load(&e->m, p->model_dir, err) ||
        sv_freeze_options(p->freeze, p->freeze_layers, &e->m->cfg, &e->modes, &e->group, err) ||
        sv_manifest_load(&e->manifest, p->manifest, 0, err))
        return SV_FAIL;
    sv_manifest_select(&e->manifest, 0, 0, p->limit);
    e->prompts = calloc(e->manifest.n, sizeof *e->prompts);
    if (!e->prompts) return sv_fail(err, "eval: out of memory");
    size_t longest = 0;
    for (size_t i = 0; i < e->manifest.n; i++) {
        sv_error why;
        const sv_sample *smp = &e->manifest.samples[i];
        if (sv_prompt_build(e->m, smp->question, SV_TEMPLATE_VICUNA_V1, &e->prompts[i], &why))
            return sv_fail(err, "%s:%d: %s", p->manifest, smp->line, why.msg);
        if (e->prompts[i].n > longest) longest = e->prompts[i].n;
    }
    const sv_config *c = &e->m->cfg;
    e->image_rows = sv_alloc_array((size_t)c->n_visual_tokens * c->text.hidden, sizeof(float),
                                   err, "eval");
    e->ids = sv_alloc_array((size_t)p->max_new, sizeof(int), err, "eval");
    e->samples = cJSON_CreateArray();
    if (!e->image_rows || !e->ids || !e->samples) return SV_FAIL;
    return sv_context_new(&e->ctx, e->m, longest + (size_t)p->max_new, err);
}

static int write_results(evaluator *e, sv_error *err) {
    const sv_eval_summary *s = e->sum;
    cJSON *root = cJSON_CreateObject(), *freeze = cJSON_CreateArray();
    cJSON_AddStringToObject(root, "format", "shortv-eval");
    cJSON_AddNumberToObject(root, "version", 1);
    cJSON_AddStringToObject(root, "model", e->p->model_dir);
    cJSON_AddStringToObject(root, "config_hash", e->m->cfg.hash);
    cJSON_AddStringToObject(root, "manifest", e->p->manifest);
    for (int l = 0; e->modes && l < e->m->cfg.text.n_layers; l++)
        if (e->modes[l] == SV_LAYER_FREEZE) cJSON_AddItemToArray(freeze, cJSON_CreateNumber(l));
    cJSON_AddItemToObject(root, "frozen_layers", freeze);
    cJSON_AddStringToObject(root, "frozen_group", e->group == SV_GROUP_TEXT ? "text" : "visual");
    cJSON_AddNumberToObject(root, "n_samples", (double)s->n);
    cJSON_AddNumberToObject(root, "correct", (double)s->correct);
    cJSON_AddNumberToObject(root, "accuracy", s->accuracy);
    cJSON *ci = cJSON_AddArrayToObject(root, "accuracy_ci95");
    cJSON_AddItemToArray(ci, cJSON_CreateNumber(s->ci_low));
    cJSON_AddItemToArray(ci, cJSON_CreateNumber(s->ci_high));
    cJSON_AddNumberToObject(root, "flops_ratio", s->flops_ratio);
    cJSON_AddNumberToObject(root, "prefill_ms_mean", s->prefill_ms);
    cJSON_AddItemToObject(root, "samples", e->samples);
    e->samples = NULL;
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return sv_fail(err, "%s: out of memory", e->p->output);
    int rc = sv_write_text_atomic(e->p->output, text, err);
    free(text);
    return rc;
}

int sv_eval(const sv_eval_params *p, sv_eval_summary *sum, sv_error *err) {
    evaluator e = {.p = p, .sum = sum};
    memset(sum, 0, sizeof *sum);
    int rc = setup(&e, err);
    for (size_t i = 0; rc == SV_OK && i < e.manifest.n; i++) rc = score_sample(&e, i, err);
    if (rc == SV_OK) {
        sum->n = e.manifest.n;
        sum->accuracy = (double)sum->correct / (double)sum->n;
        sv_wilson_interval(sum->correct, sum->n, &sum->ci_low, &sum->ci_high);
        sum->prefill_ms /= (double)sum->n;
        sum->flops_ratio = e.flops_ratio_sum / (double)sum->n;
        rc = write_results(&e, err);
    }
    for (size_t i = 0; e.prompts && i < e.manifest.n; i++) sv_prompt_free(&e.prompts[i]);
    free(e.prompts), free(e.modes), free(e.image_rows), free(e.ids);
    cJSON_Delete(e.samples);
    sv_manifest_free(&e.manifest);
    sv_context_free(e.ctx);
    sv_model_free(e.m);
    return rc;
}
