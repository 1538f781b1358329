#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "freeze.h"
#include "stats.h"
#include "study.h"

static const char *const strategy_names[SV_N_STRATEGIES] = {"dense", "lc", "reverse", "random"};

const char *sv_strategy_name(sv_strategy s) {
    return (unsigned)s < SV_N_STRATEGIES ? strategy_names[s] : "?";
}

void sv_study_free(sv_study *s) {
    for (size_t r = 0; s->runs && r < s->n_runs; r++) {
        free(s->runs[r].layers);
        free(s->runs[r].correct);
    }
    free(s->runs);
    for (size_t i = 0; s->sample_types && i < s->n_samples; i++) free(s->sample_types[i]);
    free(s->sample_types);
    s->runs = NULL, s->sample_types = NULL;
    s->n_runs = 0;
}

/* ---------------------------------------------------------------- layer sets */

static int check_counts(const sv_study_params *p, int n_layers, sv_error *err) {
    if (p->n_counts < 1 || p->n_counts > SV_STUDY_MAX_COUNTS)
        return sv_fail(err, "study: between 1 and %d counts of layers to freeze are needed",
                       SV_STUDY_MAX_COUNTS);
    if (p->random_sets < 0 || p->random_sets > SV_STUDY_MAX_RANDOM_SETS)
        return sv_fail(err, "study: random sets must be between 0 and %d",
                       SV_STUDY_MAX_RANDOM_SETS);
    for (int i = 0; i < p->n_counts; i++) {
        if (p->counts[i] < 1 || p->counts[i] > n_layers)
            return sv_fail(err, "study: count %d is not between 1 and the model's %d decoder "
                           "layers", p->counts[i], n_layers);
        for (int j = 0; j < i; j++)
            if (p->counts[j] == p->counts[i])
                return sv_fail(err, "study: count %d is given twice", p->counts[i]);
    }
    return SV_OK;
}

static int compare_ints(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

/* Random set k of n layers out of L: a partial Fisher-Yates shuffle, sorted. */
static void random_layers(uint64_t seed, int n, int k, int L, int *out) {
    sv_rng rng = {seed ^ (uint64_t)n << 32 ^ (uint64_t)k};
    int pool[L]; /* L <= 1024 (config.c) */
    for (int l = 0; l < L; l++) pool[l] = l;
    for (int i = 0; i < n; i++) {
        int j = i + (int)sv_rng_below(&rng, (uint64_t)(L - i));
        int t = pool[i];
        pool[i] = pool[j], pool[j] = t;
        out[i] = pool[i];
    }
    qsort(out, (size_t)n, sizeof *out, compare_ints);
}

/* The next run of the study, with room for n layers and every sample's answer. */
static sv_study_run *add_run(sv_study *s, sv_strategy strategy, int n, int set, sv_error *err) {
    sv_study_run *r = &s->runs[s->n_runs++];
    *r = (sv_study_run){.strategy = strategy, .n_frozen = n, .set = set};
    if (n > 0 && !(r->layers = sv_alloc_array((size_t)n, sizeof *r->layers, err, "study")))
        return NULL;
    r->correct = sv_alloc_array(s->n_samples, sizeof *r->correct, err, "study");
    return r->correct ? r : NULL;
}

/* Dense, then for each count in ascending order: the lowest-LC layers, the
 * highest, the random sets. */
static int plan_runs(sv_study *s, const sv_study_params *p, const int32_t *order, sv_error *err) {
    int L = s->n_layers, counts[SV_STUDY_MAX_COUNTS];
    size_t n_runs = 1 + (size_t)p->n_counts * (2 + (size_t)p->random_sets);
    memcpy(counts, p->counts, (size_t)p->n_counts * sizeof *counts);
    qsort(counts, (size_t)p->n_counts, sizeof *counts, compare_ints);
    if (!(s->runs = sv_alloc_array(n_runs, sizeof *s->runs, err, "study"))) return SV_FAIL;
    if (!add_run(s, SV_STRATEGY_DENSE, 0, 0, err)) return SV_FAIL;
    for (int c = 0; c < p->n_counts; c++) {
        int n = counts[c];
        sv_study_run *lc = add_run(s, SV_STRATEGY_LC, n, 0, err);
        sv_study_run *rev = lc ? add_run(s, SV_STRATEGY_REVERSE, n, 0, err) : NULL;
        if (!rev) return SV_FAIL;
        for (int i = 0; i < n; i++) lc->layers[i] = order[i], rev->layers[i] = order[L - 1 - i];
        for (int k = 0; k < p->random_sets; k++) {
            sv_study_run *r = add_run(s, SV_STRATEGY_RANDOM, n, k, err);
            if (!r) return SV_FAIL;
            random_layers(p->seed, n, k, L, r->layers);
        }
    }
    return SV_OK;
}

/* ---------------------------------------------------------------- running */

/* The per-layer modes of every run, for the evaluator. */
static int run_sets(const sv_study *s, sv_eval_set *sets, sv_layer_mode *modes, sv_error *err) {
    int L = s->n_layers;
    for (size_t r = 0; r < s->n_runs; r++) {
        const sv_study_run *run = &s->runs[r];
        sets[r] = (sv_eval_set){NULL, s->group};
        if (run->n_frozen == 0) continue;
        sv_freeze f = {.group = s->group, .n_layers = L, .n_frozen = run->n_frozen,
                       .layers = run->layers};
        if (sv_freeze_fill_modes(&f, modes + r * (size_t)L, L, err)) return SV_FAIL;
        sets[r].modes = modes + r * (size_t)L;
    }
    return SV_OK;
}

/* The evaluator's callback: keeps each answer's score. */
static int keep_answer(const sv_eval_answer *a, void *user) {
    sv_study *study = user;
    study->runs[a->set].correct[a->sample] = (unsigned char)(a->correct != 0);
    return 0;
}

static int evaluate_runs(sv_study *s, sv_evaluator *e, sv_error *err) {
    size_t L = (size_t)s->n_layers;
    sv_eval_set *sets = sv_alloc_array(s->n_runs, sizeof *sets, err, "study");
    sv_layer_mode *modes = sv_alloc_array(s->n_runs * L, sizeof *modes, err, "study");
    sv_eval_summary *sums = sv_alloc_array(s->n_runs, sizeof *sums, err, "study");
    int rc = sets && modes && sums ? run_sets(s, sets, modes, err) : SV_FAIL;
    if (rc == SV_OK) rc = sv_evaluator_run(e, sets, s->n_runs, keep_answer, s, sums, err);
    for (size_t r = 0; rc == SV_OK && r < s->n_runs; r++) s->runs[r].result = sums[r];
    free(sets), free(modes), free(sums);
    return rc;
}

/* The samples' question types, if every sample has one. */
static int keep_types(sv_study *s, const sv_evaluator *e, sv_error *err) {
    for (size_t i = 0; i < s->n_samples; i++)
        if (!sv_evaluator_sample(e, i)->type) return SV_OK;
    s->sample_types = sv_alloc_array(s->n_samples, sizeof *s->sample_types, err, "study");
    for (size_t i = 0; s->sample_types && i < s->n_samples; i++)
        if (!(s->sample_types[i] = strdup(sv_evaluator_sample(e, i)->type)))
            return sv_fail(err, "study: out of memory");
    return s->sample_types ? SV_OK : SV_FAIL;
}

/* Reads the LC file, loads the model and the samples, checks that they belong
 * together and plans the runs; *e is the open evaluator. */
static int prepare(sv_study *s, const sv_study_params *p, sv_evaluator **e, sv_error *err) {
    sv_lc_data lc;
    sv_eval_params ep = {.model_dir = p->model_dir, .vision_tower = p->vision_tower,
                         .manifest = p->manifest, .max_new = p->max_new, .limit = p->limit,
                         .aspect = p->aspect, .n_threads = p->n_threads, .world = p->world,
                         .progress = p->progress, .stop = p->stop};
    if (sv_lc_read(&lc, p->lc_path, err)) return SV_FAIL;
    int rc = sv_evaluator_open(e, &ep, err);
    const sv_config *cfg = rc == SV_OK ? sv_evaluator_config(*e) : NULL;
    if (rc == SV_OK) rc = check_counts(p, cfg->text.n_layers, err);
    sv_freeze_plan plan; /* checks the LC file: complete, the group swept, this model */
    if (rc == SV_OK)
        rc = sv_freeze_plan_make(&plan, &lc, p->lc_path, cfg, p->group, SV_SELECT_COUNT,
                                 p->counts[0], err);
    if (rc == SV_OK) {
        snprintf(s->model, sizeof s->model, "%s", p->model_dir);
        snprintf(s->config_hash, sizeof s->config_hash, "%s", cfg->hash);
        snprintf(s->lc_file, sizeof s->lc_file, "%s", p->lc_path);
        snprintf(s->manifest, sizeof s->manifest, "%s", p->manifest);
        s->n_layers = cfg->text.n_layers, s->group = p->group, s->seed = p->seed;
        s->random_sets = p->random_sets, s->max_new = p->max_new;
        s->n_samples = sv_evaluator_n_samples(*e);
        rc = keep_types(s, *e, err);
        if (rc == SV_OK) rc = plan_runs(s, p, lc.order[p->group], err);
    }
    sv_lc_data_free(&lc);
    return rc;
}

/* ---------------------------------------------------------------- study.json */

static cJSON *int_array(const int *v, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++)
        if (!cJSON_AddItemToArray(a, cJSON_CreateNumber(v[i]))) {
            cJSON_Delete(a);
            return NULL;
        }
    return a;
}

/* Adds item to o under key, taking it over; false (and item freed) on failure. */
static int add_owned(cJSON *o, const char *key, cJSON *item) {
    if (item && cJSON_AddItemToObject(o, key, item)) return 1;
    cJSON_Delete(item);
    return 0;
}

/* "0110...": one character per sample, '1' where the answer was right. */
static cJSON *answers_json(const unsigned char *correct, size_t n) {
    char *text = malloc(n + 1);
    if (!text) return NULL;
    for (size_t i = 0; i < n; i++) text[i] = correct[i] ? '1' : '0';
    text[n] = '\0';
    cJSON *s = cJSON_CreateString(text);
    free(text);
    return s;
}

static cJSON *run_json(const sv_study_run *r, size_t n_samples) {
    const sv_eval_summary *e = &r->result;
    cJSON *o = cJSON_CreateObject();
    double ci[2] = {e->ci_low, e->ci_high};
    int ok = o && cJSON_AddStringToObject(o, "strategy", sv_strategy_name(r->strategy)) &&
             cJSON_AddNumberToObject(o, "n_frozen", r->n_frozen) &&
             cJSON_AddNumberToObject(o, "set", r->set) &&
             add_owned(o, "layers", int_array(r->layers, r->n_frozen)) &&
             cJSON_AddNumberToObject(o, "n", (double)e->n) &&
             cJSON_AddNumberToObject(o, "correct", (double)e->correct) &&
             cJSON_AddNumberToObject(o, "accuracy", e->accuracy) &&
             add_owned(o, "accuracy_ci95", cJSON_CreateDoubleArray(ci, 2)) &&
             add_owned(o, "answers_correct", answers_json(r->correct, n_samples)) &&
             cJSON_AddNumberToObject(o, "flops_ratio", e->flops_ratio) &&
             cJSON_AddNumberToObject(o, "prefill_ms", e->prefill_ms);
    if (ok) return o;
    cJSON_Delete(o);
    return NULL;
}

static cJSON *study_json(const sv_study *s) {
    cJSON *root = cJSON_CreateObject();
    int ok = root && cJSON_AddStringToObject(root, "format", SV_STUDY_FORMAT) &&
             cJSON_AddNumberToObject(root, "version", SV_STUDY_VERSION);
    cJSON *model = ok ? cJSON_AddObjectToObject(root, "model") : NULL;
    ok = model && cJSON_AddStringToObject(model, "path", s->model) &&
         cJSON_AddStringToObject(model, "config_hash", s->config_hash) &&
         cJSON_AddNumberToObject(model, "n_layers", s->n_layers) &&
         cJSON_AddStringToObject(root, "group", sv_group_name(s->group)) &&
         cJSON_AddStringToObject(root, "lc_file", s->lc_file) &&
         cJSON_AddStringToObject(root, "manifest", s->manifest) &&
         cJSON_AddNumberToObject(root, "n_samples", (double)s->n_samples) &&
         cJSON_AddNumberToObject(root, "max_new_tokens", s->max_new) &&
         cJSON_AddNumberToObject(root, "seed", (double)s->seed) &&
         cJSON_AddNumberToObject(root, "random_sets", s->random_sets);
    if (ok && s->sample_types)
        ok = add_owned(root, "sample_types",
                       cJSON_CreateStringArray((const char *const *)s->sample_types,
                                               (int)s->n_samples));
    cJSON *runs = ok ? cJSON_AddArrayToObject(root, "runs") : NULL;
    ok = runs != NULL;
    for (size_t r = 0; ok && r < s->n_runs; r++)
        ok = cJSON_AddItemToArray(runs, run_json(&s->runs[r], s->n_samples));
    if (ok) return root;
    cJSON_Delete(root);
    return NULL;
}

static int write_study_json(const sv_study *s, const char *dir, sv_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, SV_STUDY_JSON);
    cJSON *root = study_json(s);
    char *text = root ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    int rc = text ? sv_write_text_atomic(path, text, err) : sv_fail(err, "%s: out of memory", path);
    free(text);
    return rc;
}

int sv_run_study(const sv_study_params *p, sv_study *s, sv_error *err) {
    sv_evaluator *e = NULL;
    sv_gnuplot gp;
    memset(s, 0, sizeof *s);
    int writes = !p->world || p->world->rank == 0;
    int rc = prepare(s, p, &e, err);
    /* the output folder is made before the long part, so that a bad one fails at once */
    if (rc == SV_OK && writes) rc = sv_gp_open(&gp, p->out_dir, SV_STUDY_SCRIPT, err);
    int opened = rc == SV_OK && writes;
    if (p->world) rc = sv_world_agree(p->world, rc, err); /* every rank, whatever failed */
    if (rc == SV_OK) rc = evaluate_runs(s, e, err);
    sv_evaluator_free(e);
    if (!opened) {
        sv_study_free(s);
        return rc == SV_OK && !writes ? SV_OK : SV_FAIL;
    }
    /* study.json first: a chart that fails to draw must not lose the results */
    if (rc == SV_OK) rc = write_study_json(s, p->out_dir, err);
    if (rc == SV_OK) rc = sv_study_chart_write(s, &gp, err);
    rc = sv_gp_finish(&gp, rc, err);
    if (rc != SV_OK) sv_study_free(s);
    return rc;
}
