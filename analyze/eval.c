#include <cjson/cJSON.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "atomic_file.h"
#include "dispatch.h"
#include "eval.h"
#include "flops.h"
#include "freeze.h"
#include "generate.h"
#include "lcfile.h"
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
    /* the interval always holds p; clamping to it drops rounding (5.6e-17 for k = 0
     * read as a lower bound above the accuracy) */
    *low = fmin(p, fmax(0, centre - half)), *high = fmax(p, fmin(1, centre + half));
}

static double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

struct sv_evaluator {
    char manifest_path[1024];
    int max_new;
    sv_aspect aspect;
    sv_model *m;
    sv_context *ctx;
    sv_manifest manifest;
    sv_prompt *prompts;   /* [manifest.n] */
    sv_encoded_image image; /* the current sample's image */
    int *ids;             /* [max_new] generated ids */
    sv_world *world;      /* where the samples run (dispatch.h): p's, or */
    sv_world alone;       /* this process alone */
    sv_progress *progress;
    const volatile int *stop;
};

const sv_config *sv_evaluator_config(const sv_evaluator *e) { return &e->m->cfg; }
size_t sv_evaluator_n_samples(const sv_evaluator *e) { return e->manifest.n; }
const sv_sample *sv_evaluator_sample(const sv_evaluator *e, size_t i) {
    return &e->manifest.samples[i];
}

/* Every prompt, tokenised once; *longest is the longest's length. */
static int build_prompts(sv_evaluator *e, size_t *longest, sv_error *err) {
    e->prompts = calloc(e->manifest.n, sizeof *e->prompts);
    if (!e->prompts) return sv_fail(err, "eval: out of memory");
    *longest = 0;
    for (size_t i = 0; i < e->manifest.n; i++) {
        sv_error why;
        const sv_sample *smp = &e->manifest.samples[i];
        /* checked before any work: a run must not fail after minutes of it */
        if (!smp->answer)
            return sv_fail(err, "%s:%d: no answer to score against", e->manifest_path, smp->line);
        if (sv_prompt_for_image(e->m, smp->question, SV_TEMPLATE_AUTO, e->aspect, smp->image,
                                &e->prompts[i], &why))
            return sv_fail(err, "%s:%d: %s", e->manifest_path, smp->line, why.msg);
        if (e->prompts[i].n > *longest) *longest = e->prompts[i].n;
    }
    return SV_OK;
}

static int open_evaluator(sv_evaluator *e, const sv_eval_params *p, sv_error *err) {
    e->alone = (sv_world){0, 1, 0, 0};
    e->world = p->world ? p->world : &e->alone;
    e->progress = p->progress, e->stop = p->stop;
    snprintf(e->manifest_path, sizeof e->manifest_path, "%s", p->manifest);
    e->max_new = p->max_new;
    if (p->max_new < 1) return sv_fail(err, "eval: max_new must be at least 1");
    sv_model_params mp = {.vision_tower = p->vision_tower};
    if (sv_model_load_params(&e->m, p->model_dir, &mp, err) ||
        sv_preprocess_aspect(&e->m->cfg, p->aspect, &e->aspect, err) ||
        sv_manifest_load(&e->manifest, p->manifest, 0, err))
        return SV_FAIL;
    sv_manifest_select(&e->manifest, 0, 0, p->limit);
    if (e->manifest.n == 0) return sv_fail(err, "%s: holds no samples", p->manifest);
    size_t longest;
    if (build_prompts(e, &longest, err)) return SV_FAIL;
    e->ids = sv_alloc_array((size_t)p->max_new, sizeof(int), err, "eval");
    if (!e->ids) return SV_FAIL;
    return sv_context_new(&e->ctx, e->m, longest + (size_t)p->max_new, p->n_threads, err);
}

int sv_evaluator_open(sv_evaluator **out, const sv_eval_params *p, sv_error *err) {
    sv_evaluator *e = calloc(1, sizeof *e);
    *out = NULL;
    if (!e) return sv_fail(err, "eval: out of memory");
    if (open_evaluator(e, p, err)) {
        sv_evaluator_free(e);
        return SV_FAIL;
    }
    *out = e;
    return SV_OK;
}

void sv_evaluator_free(sv_evaluator *e) {
    if (!e) return;
    for (size_t i = 0; e->prompts && i < e->manifest.n; i++) sv_prompt_free(&e->prompts[i]);
    free(e->prompts), free(e->ids);
    sv_encoded_image_free(&e->image);
    sv_manifest_free(&e->manifest);
    sv_context_free(e->ctx);
    sv_model_free(e->m);
    free(e);
}

/* Sample i's image through the vision tower and projector, into e->image. */
static int encode_image(sv_evaluator *e, size_t i, sv_error *err) {
    sv_encoded_image_free(&e->image);
    return sv_encode_image_file(e->ctx, e->manifest.samples[i].image, e->aspect, &e->image, err);
}

/* The greedy answer to sample i under a layer set, decoded and cut at the first newline. */
static int answer(sv_evaluator *e, const sv_eval_set *set, size_t i, char **text,
                  double *prefill_ms, sv_error *err) {
    sv_policy policy = {set->modes, set->group, e->prompts[i].visual};
    double t0 = now_ms();
    if (sv_prefill(e->ctx, &e->prompts[i], &e->image, &policy, err)) return SV_FAIL;
    *prefill_ms = now_ms() - t0;
    int n = 0;
    if (sv_generate_greedy(e->ctx, e->max_new, e->ids, &n, NULL, NULL, err) ||
        sv_tokenizer_decode(e->m->tok, e->ids, (size_t)n, text, err))
        return SV_FAIL;
    char *nl = strchr(*text, '\n');
    if (nl) *nl = 0;
    return SV_OK;
}

/* Prefill FLOPs of the set over the dense ones, for sample i's token counts. */
static int flops_ratio(const sv_evaluator *e, const sv_eval_set *set, size_t i, double *ratio,
                       sv_error *err) {
    const sv_prompt *pr = &e->prompts[i];
    int64_t v = (int64_t)(pr->visual.end - pr->visual.start), t = (int64_t)pr->n - v;
    int n_frozen = 0;
    for (int l = 0; set->modes && l < e->m->cfg.text.n_layers; l++)
        n_frozen += set->modes[l] == SV_LAYER_FREEZE;
    sv_flops f;
    if (sv_flops_count(&e->m->cfg, v, t, set->group, n_frozen, &f, err)) return SV_FAIL;
    *ratio = f.ratio;
    return SV_OK;
}

/* Whether a prediction matches the reference answer after normalisation. */
static int matches(const char *prediction, const char *reference, sv_error *err) {
    char *a = strdup(prediction), *b = strdup(reference);
    int ok = -1;
    if (a && b) {
        sv_normalise_answer(a), sv_normalise_answer(b);
        ok = strcmp(a, b) == 0;
    }
    free(a), free(b);
    return ok < 0 ? sv_fail(err, "eval: out of memory") : ok;
}

/* One sv_evaluator_run call. */
typedef struct eval_run {
    sv_evaluator *e;
    const sv_eval_set *sets;
    size_t n_sets;
    sv_eval_answer_fn on_answer;
    void *user;
    sv_eval_summary *sums;  /* [n_sets] sums over the samples so far */
} eval_run;

/* One set's answer to a sample as it travels to rank 0: this head, then the
 * prediction's bytes (no NUL). */
typedef struct answer_head {
    int64_t correct, length;
    double prefill_ms, flops_ratio;
} answer_head;

/* Appends an answer to the growing result buffer *buf of *size bytes. */
static int add_answer(unsigned char **buf, size_t *size, const answer_head *h, const char *pred,
                      sv_error *err) {
    unsigned char *b = realloc(*buf, *size + sizeof *h + (size_t)h->length);
    if (!b) return sv_fail(err, "eval: out of memory");
    memcpy(b + *size, h, sizeof *h);
    memcpy(b + *size + sizeof *h, pred, (size_t)h->length);
    *buf = b, *size += sizeof *h + (size_t)h->length;
    return SV_OK;
}

/* Sample i answered under set s, appended to the result. */
static int score(sv_evaluator *e, const sv_eval_set *set, size_t i, unsigned char **buf,
                 size_t *size, sv_error *err) {
    char *pred = NULL;
    answer_head h = {0, 0, 0, 1};
    int rc = answer(e, set, i, &pred, &h.prefill_ms, err);
    if (rc == SV_OK) rc = flops_ratio(e, set, i, &h.flops_ratio, err);
    int ok = rc == SV_OK ? matches(pred, e->manifest.samples[i].answer, err) : SV_FAIL;
    if (ok >= 0) {
        h.correct = ok, h.length = (int64_t)strlen(pred);
        rc = add_answer(buf, size, &h, pred, err);
    } else {
        rc = SV_FAIL;
    }
    free(pred);
    return rc;
}

/* dispatch's run: sample i under every set. */
static int run_sample(void *user, size_t i, void **out, size_t *size, sv_error *err) {
    const eval_run *r = user;
    unsigned char *buf = NULL;
    *size = 0;
    int rc = encode_image(r->e, i, err);
    for (size_t s = 0; rc == SV_OK && s < r->n_sets; s++)
        rc = score(r->e, &r->sets[s], i, &buf, size, err);
    if (rc) free(buf);
    *out = rc ? NULL : buf;
    return rc;
}

/* dispatch's place (rank 0, in sample order): each set's answer to sample i
 * into its sums and to on_answer. */
static int place_sample(void *user, size_t i, const void *result, size_t size, sv_error *err) {
    const eval_run *r = user;
    sv_evaluator *e = r->e;
    const unsigned char *at = result, *end = at + size;
    for (size_t s = 0; s < r->n_sets; s++) {
        answer_head h;
        if ((size_t)(end - at) < sizeof h) return sv_fail(err, "eval: a short result");
        memcpy(&h, at, sizeof h);
        at += sizeof h;
        if (h.length < 0 || (size_t)(end - at) < (size_t)h.length)
            return sv_fail(err, "eval: a short result");
        char *pred = strndup((const char *)at, (size_t)h.length);
        if (!pred) return sv_fail(err, "eval: out of memory");
        at += h.length;
        sv_eval_summary *sum = &r->sums[s];
        sum->correct += (size_t)h.correct, sum->prefill_ms += h.prefill_ms;
        sum->flops_ratio += h.flops_ratio;
        sv_eval_answer a = {s, i, r->n_sets, e->manifest.n, &e->manifest.samples[i], pred,
                            (int)h.correct, h.prefill_ms};
        int stop = r->on_answer && r->on_answer(&a, r->user);
        free(pred);
        if (stop) return sv_fail(err, "eval: stopped");
    }
    return SV_OK;
}

/* Turns the sums over n samples into means and the interval. */
static void finish_summary(sv_eval_summary *sum, size_t n) {
    sum->n = n;
    sum->accuracy = (double)sum->correct / (double)n;
    sv_wilson_interval(sum->correct, n, &sum->ci_low, &sum->ci_high);
    sum->prefill_ms /= (double)n;
    sum->flops_ratio /= (double)n;
}

int sv_evaluator_run(sv_evaluator *e, const sv_eval_set *sets, size_t n_sets,
                     sv_eval_answer_fn on_answer, void *user, sv_eval_summary *out,
                     sv_error *err) {
    eval_run r = {e, sets, n_sets, on_answer, user, out};
    size_t n = e->manifest.n;
    size_t *items = sv_alloc_array(n, sizeof *items, err, "eval");
    if (!items) return SV_FAIL;
    for (size_t i = 0; i < n; i++) items[i] = i;
    memset(out, 0, n_sets * sizeof *out);
    if (e->progress) sv_progress_begin(e->progress, n, 0);
    sv_dispatch d = {e->world, items, NULL, n, {run_sample, place_sample, NULL}, &r,
                     e->progress, e->stop};
    int rc = sv_dispatch_run(&d, err);
    sv_progress_end(e->progress);
    free(items);
    if (rc == SV_DISPATCH_STOPPED) return sv_fail(err, "%s: interrupted; nothing written",
                                                  e->manifest_path);
    for (size_t s = 0; rc == SV_OK && s < n_sets; s++) finish_summary(&out[s], n);
    return rc;
}

/* ---------------------------------------------------------------- shortv eval */

/* Every sample's record in RESULTS.json. */
static int record_answer(const sv_eval_answer *a, void *user) {
    cJSON *s = cJSON_CreateObject();
    if (!s || !cJSON_AddItemToArray((cJSON *)user, s)) {
        cJSON_Delete(s);
        return 1;
    }
    int ok = cJSON_AddStringToObject(s, "id", a->item->id) &&
             cJSON_AddStringToObject(s, "question", a->item->question) &&
             cJSON_AddStringToObject(s, "answer", a->item->answer) &&
             (!a->item->type || cJSON_AddStringToObject(s, "type", a->item->type)) &&
             cJSON_AddStringToObject(s, "prediction", a->prediction) &&
             cJSON_AddBoolToObject(s, "correct", a->correct) &&
             cJSON_AddNumberToObject(s, "prefill_ms", a->prefill_ms);
    return !ok;
}

/* {"TYPE": {"n", "correct", "accuracy", "accuracy_ci95"}, ...} over the
 * samples that have a type, in order of first appearance; NULL on failure. */
static cJSON *accuracy_by_type(const cJSON *samples) {
    cJSON *by = cJSON_CreateObject();
    const cJSON *s;
    cJSON_ArrayForEach(s, samples) {
        const cJSON *type = cJSON_GetObjectItemCaseSensitive(s, "type");
        if (!by || !cJSON_IsString(type)) continue;
        cJSON *t = cJSON_GetObjectItemCaseSensitive(by, type->valuestring);
        if (!t && (!(t = cJSON_AddObjectToObject(by, type->valuestring)) ||
                   !cJSON_AddNumberToObject(t, "n", 0) || !cJSON_AddNumberToObject(t, "correct", 0)))
            break;
        cJSON *n = cJSON_GetObjectItemCaseSensitive(t, "n");
        cJSON *k = cJSON_GetObjectItemCaseSensitive(t, "correct");
        cJSON_SetNumberValue(n, n->valuedouble + 1);
        cJSON_SetNumberValue(k, k->valuedouble +
                                    cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(s, "correct")));
    }
    cJSON *t;
    cJSON_ArrayForEach(t, by) {
        double n = cJSON_GetObjectItemCaseSensitive(t, "n")->valuedouble;
        double k = cJSON_GetObjectItemCaseSensitive(t, "correct")->valuedouble, ci[2];
        sv_wilson_interval((size_t)k, (size_t)n, &ci[0], &ci[1]);
        if (!cJSON_AddNumberToObject(t, "accuracy", k / n) ||
            !cJSON_AddItemToObject(t, "accuracy_ci95", cJSON_CreateDoubleArray(ci, 2))) {
            cJSON_Delete(by);
            return NULL;
        }
    }
    return by;
}

static int write_results(const sv_evaluator *e, const sv_eval_params *p, const sv_eval_set *set,
                         const sv_eval_summary *s, cJSON *samples, sv_error *err) {
    cJSON *root = cJSON_CreateObject(), *freeze = cJSON_CreateArray();
    cJSON_AddStringToObject(root, "format", "shortv-eval");
    cJSON_AddNumberToObject(root, "version", 1);
    cJSON_AddStringToObject(root, "model", p->model_dir);
    cJSON_AddStringToObject(root, "config_hash", e->m->cfg.hash);
    cJSON_AddStringToObject(root, "manifest", p->manifest);
    for (int l = 0; set->modes && l < e->m->cfg.text.n_layers; l++)
        if (set->modes[l] == SV_LAYER_FREEZE) cJSON_AddItemToArray(freeze, cJSON_CreateNumber(l));
    cJSON_AddItemToObject(root, "frozen_layers", freeze);
    cJSON_AddStringToObject(root, "frozen_group", sv_group_name(set->group));
    cJSON_AddNumberToObject(root, "n_samples", (double)s->n);
    cJSON_AddNumberToObject(root, "correct", (double)s->correct);
    cJSON_AddNumberToObject(root, "accuracy", s->accuracy);
    cJSON *ci = cJSON_AddArrayToObject(root, "accuracy_ci95");
    cJSON_AddItemToArray(ci, cJSON_CreateNumber(s->ci_low));
    cJSON_AddItemToArray(ci, cJSON_CreateNumber(s->ci_high));
    cJSON_AddNumberToObject(root, "flops_ratio", s->flops_ratio);
    cJSON_AddNumberToObject(root, "prefill_ms_mean", s->prefill_ms);
    cJSON_AddItemToObject(root, "by_type", accuracy_by_type(samples));
    cJSON_AddItemReferenceToObject(root, "samples", samples);
    char *text = cJSON_Print(root);
    cJSON_Delete(root);
    if (!text) return sv_fail(err, "%s: out of memory", p->output);
    int rc = sv_write_text_atomic(p->output, text, err);
    free(text);
    return rc;
}

int sv_eval(const sv_eval_params *p, sv_eval_summary *sum, sv_error *err) {
    sv_evaluator *e = NULL;
    sv_eval_set set = {NULL, SV_GROUP_VISUAL};
    sv_layer_mode *modes = NULL;
    cJSON *samples = cJSON_CreateArray();
    memset(sum, 0, sizeof *sum);
    int rc = samples ? sv_evaluator_open(&e, p, err) : sv_fail(err, "eval: out of memory");
    if (rc == SV_OK)
        rc = sv_freeze_options(p->freeze, p->freeze_layers, &e->m->cfg, &modes, &set.group, err);
    set.modes = modes;
    if (p->world) rc = sv_world_agree(p->world, rc, err); /* every rank, whatever failed */
    if (rc == SV_OK) rc = sv_evaluator_run(e, &set, 1, record_answer, samples, sum, err);
    if (rc == SV_OK && (!p->world || p->world->rank == 0))
        rc = write_results(e, p, &set, sum, samples, err);
    cJSON_Delete(samples);
    free(modes);
    sv_evaluator_free(e);
    return rc;
}
