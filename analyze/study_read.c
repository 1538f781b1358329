/* Reading a study.json back (shortv report --study), validated field by field:
 * every error names the file and the field. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lcfile.h"
#include "study.h"

/* Where a field is, for error messages: the file and the path inside it. */
typedef struct reader {
    const char *path;
    char where[64]; /* "runs[3]." or "" */
} reader;

static const cJSON *member(const cJSON *o, const char *key) {
    return cJSON_GetObjectItemCaseSensitive(o, key);
}

static int get_number(const reader *rd, const cJSON *o, const char *key, double lo, double hi,
                      double *out, sv_error *err) {
    const cJSON *v = member(o, key);
    if (!cJSON_IsNumber(v) || !(v->valuedouble >= lo && v->valuedouble <= hi))
        return sv_fail(err, "%s: %s%s must be a number in [%g, %g]", rd->path, rd->where, key,
                       lo, hi);
    *out = v->valuedouble;
    return SV_OK;
}

static int get_int(const reader *rd, const cJSON *o, const char *key, int lo, int hi, int *out,
                   sv_error *err) {
    double v;
    if (get_number(rd, o, key, lo, hi, &v, err)) return SV_FAIL;
    if (v != floor(v))
        return sv_fail(err, "%s: %s%s must be a whole number", rd->path, rd->where, key);
    *out = (int)v;
    return SV_OK;
}

static int get_string(const reader *rd, const cJSON *o, const char *key, char *out, size_t size,
                      sv_error *err) {
    const cJSON *v = member(o, key);
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= size)
        return sv_fail(err, "%s: %s%s must be a string (shorter than %zu bytes)", rd->path,
                       rd->where, key, size);
    memcpy(out, v->valuestring, strlen(v->valuestring) + 1);
    return SV_OK;
}

/* One of names[0 .. n), by name. */
static int get_enum(const reader *rd, const cJSON *o, const char *key, const char *(*name)(int),
                    int n, int *out, sv_error *err) {
    char s[32];
    if (get_string(rd, o, key, s, sizeof s, err)) return SV_FAIL;
    for (*out = 0; *out < n; (*out)++)
        if (!strcmp(s, name(*out))) return SV_OK;
    return sv_fail(err, "%s: %s%s \"%s\" is not one of the known values", rd->path, rd->where,
                   key, s);
}

static const char *strategy_name(int s) { return sv_strategy_name((sv_strategy)s); }

static int read_header(const reader *rd, const cJSON *root, sv_study *s, sv_error *err) {
    const cJSON *format = member(root, "format"), *model = member(root, "model");
    double version, seed, n_samples;
    int group;
    if (!cJSON_IsString(format) || strcmp(format->valuestring, SV_STUDY_FORMAT))
        return sv_fail(err, "%s: not a shortv study (format must be \"" SV_STUDY_FORMAT "\")",
                       rd->path);
    if (get_number(rd, root, "version", 0, 1e9, &version, err)) return SV_FAIL;
    if (version != SV_STUDY_VERSION)
        return sv_fail(err, "%s: version %g is not supported (this tool reads %d)", rd->path,
                       version, SV_STUDY_VERSION);
    if (!cJSON_IsObject(model)) return sv_fail(err, "%s: model must be an object", rd->path);
    reader m = {rd->path, "model."};
    if (get_string(&m, model, "path", s->model, sizeof s->model, err) ||
        get_string(&m, model, "config_hash", s->config_hash, sizeof s->config_hash, err) ||
        get_int(&m, model, "n_layers", 1, 1 << 20, &s->n_layers, err) ||
        get_enum(rd, root, "group", sv_group_name, SV_N_GROUPS, &group, err) ||
        get_string(rd, root, "lc_file", s->lc_file, sizeof s->lc_file, err) ||
        get_string(rd, root, "manifest", s->manifest, sizeof s->manifest, err) ||
        get_number(rd, root, "n_samples", 1, 1e15, &n_samples, err) ||
        get_int(rd, root, "max_new_tokens", 1, 1 << 20, &s->max_new, err) ||
        get_number(rd, root, "seed", 0, 0x1p53, &seed, err) ||
        get_int(rd, root, "random_sets", 0, SV_STUDY_MAX_RANDOM_SETS, &s->random_sets, err))
        return SV_FAIL;
    s->group = (sv_group)group, s->seed = (uint64_t)seed, s->n_samples = (size_t)n_samples;
    return SV_OK;
}

static int read_layers(const reader *rd, const cJSON *list, sv_study_run *r, int n_layers,
                       sv_error *err) {
    if (!cJSON_IsArray(list) || cJSON_GetArraySize(list) != r->n_frozen)
        return sv_fail(err, "%s: %slayers must list n_frozen = %d layers", rd->path, rd->where,
                       r->n_frozen);
    if (r->n_frozen && !(r->layers = sv_alloc_array((size_t)r->n_frozen, sizeof *r->layers, err,
                                                    rd->path)))
        return SV_FAIL;
    for (int i = 0; i < r->n_frozen; i++) {
        const cJSON *v = cJSON_GetArrayItem(list, i);
        double l = cJSON_IsNumber(v) ? v->valuedouble : -1;
        if (l != floor(l) || l < 0 || l >= n_layers)
            return sv_fail(err, "%s: %slayers[%d] is not a layer of this %d-layer model",
                           rd->path, rd->where, i, n_layers);
        r->layers[i] = (int)l;
        for (int j = 0; j < i; j++)
            if (r->layers[j] == r->layers[i])
                return sv_fail(err, "%s: %slayers lists layer %d twice", rd->path, rd->where,
                               r->layers[i]);
    }
    return SV_OK;
}

static int read_result(const reader *rd, const cJSON *o, sv_eval_summary *e, sv_error *err) {
    const cJSON *ci = member(o, "accuracy_ci95");
    double n, correct;
    if (get_number(rd, o, "n", 1, 1e15, &n, err) ||
        get_number(rd, o, "correct", 0, n, &correct, err) ||
        get_number(rd, o, "accuracy", 0, 1, &e->accuracy, err) ||
        get_number(rd, o, "flops_ratio", 0, 1, &e->flops_ratio, err) ||
        get_number(rd, o, "prefill_ms", 0, 1e12, &e->prefill_ms, err))
        return SV_FAIL;
    e->n = (size_t)n, e->correct = (size_t)correct;
    const cJSON *lo = cJSON_GetArrayItem(ci, 0), *hi = cJSON_GetArrayItem(ci, 1);
    if (cJSON_GetArraySize(ci) != 2 || !cJSON_IsNumber(lo) || !cJSON_IsNumber(hi) ||
        !(lo->valuedouble >= 0 && lo->valuedouble <= e->accuracy &&
          hi->valuedouble >= e->accuracy && hi->valuedouble <= 1))
        return sv_fail(err, "%s: %saccuracy_ci95 must be [low, high] around the accuracy",
                       rd->path, rd->where);
    e->ci_low = lo->valuedouble, e->ci_high = hi->valuedouble;
    return SV_OK;
}

/* answers_correct: n_samples characters '0' or '1', as many '1' as correct. */
static int read_answers(const reader *rd, const cJSON *o, sv_study_run *r, size_t n_samples,
                        sv_error *err) {
    const cJSON *v = member(o, "answers_correct");
    const char *text = cJSON_IsString(v) ? v->valuestring : NULL;
    if (r->result.n != n_samples)
        return sv_fail(err, "%s: %sn must be n_samples (%zu): every run answers every sample",
                       rd->path, rd->where, n_samples);
    if (!text || strlen(text) != n_samples || strspn(text, "01") != n_samples)
        return sv_fail(err, "%s: %sanswers_correct must be a string of %zu characters 0 or 1",
                       rd->path, rd->where, n_samples);
    if (!(r->correct = sv_alloc_array(n_samples, sizeof *r->correct, err, rd->path)))
        return SV_FAIL;
    size_t right = 0;
    for (size_t i = 0; i < n_samples; i++) right += r->correct[i] = text[i] == '1';
    if (right != r->result.correct)
        return sv_fail(err, "%s: %sanswers_correct has %zu answers right, correct says %zu",
                       rd->path, rd->where, right, r->result.correct);
    return SV_OK;
}

static int read_run(const reader *rd, const cJSON *o, sv_study_run *r, int n_layers,
                    size_t n_samples, sv_error *err) {
    int strategy;
    if (!cJSON_IsObject(o)) return sv_fail(err, "%s: %s must be an object", rd->path, rd->where);
    if (get_enum(rd, o, "strategy", strategy_name, SV_N_STRATEGIES, &strategy, err) ||
        get_int(rd, o, "n_frozen", 0, n_layers, &r->n_frozen, err) ||
        get_int(rd, o, "set", 0, SV_STUDY_MAX_RANDOM_SETS, &r->set, err))
        return SV_FAIL;
    r->strategy = (sv_strategy)strategy;
    if ((r->strategy == SV_STRATEGY_DENSE) != (r->n_frozen == 0))
        return sv_fail(err, "%s: %sn_frozen must be 0 for the dense run and only for it",
                       rd->path, rd->where);
    if (read_layers(rd, member(o, "layers"), r, n_layers, err) ||
        read_result(rd, o, &r->result, err))
        return SV_FAIL;
    return read_answers(rd, o, r, n_samples, err);
}

/* sample_types, if present: n_samples strings. */
static int read_types(const reader *rd, const cJSON *types, sv_study *s, sv_error *err) {
    if (!types) return SV_OK;
    if (!cJSON_IsArray(types) || (size_t)cJSON_GetArraySize(types) != s->n_samples)
        return sv_fail(err, "%s: sample_types must list n_samples (%zu) types", rd->path,
                       s->n_samples);
    if (!(s->sample_types = sv_alloc_array(s->n_samples, sizeof *s->sample_types, err,
                                           rd->path)))
        return SV_FAIL;
    size_t i = 0;
    const cJSON *t;
    cJSON_ArrayForEach(t, types) {
        if (!cJSON_IsString(t))
            return sv_fail(err, "%s: sample_types[%zu] must be a string", rd->path, i);
        if (!(s->sample_types[i++] = strdup(t->valuestring)))
            return sv_fail(err, "%s: out of memory", rd->path);
    }
    return SV_OK;
}

static int read_runs(const reader *rd, const cJSON *runs, sv_study *s, sv_error *err) {
    int n = cJSON_IsArray(runs) ? cJSON_GetArraySize(runs) : 0, has_dense = 0;
    if (n < 1) return sv_fail(err, "%s: runs must be a non-empty array", rd->path);
    if (!(s->runs = calloc((size_t)n, sizeof *s->runs)))
        return sv_fail(err, "%s: out of memory", rd->path);
    for (int i = 0; i < n; i++) {
        reader r = {rd->path, ""};
        snprintf(r.where, sizeof r.where, "runs[%d].", i);
        s->n_runs++;
        if (read_run(&r, cJSON_GetArrayItem(runs, i), &s->runs[i], s->n_layers, s->n_samples,
                     err))
            return SV_FAIL;
        has_dense |= s->runs[i].strategy == SV_STRATEGY_DENSE;
    }
    if (!has_dense) return sv_fail(err, "%s: runs has no dense run to compare with", rd->path);
    return SV_OK;
}

int sv_study_read(const char *path, sv_study *s, sv_error *err) {
    memset(s, 0, sizeof *s);
    char *text = sv_read_file(path, NULL, err);
    if (!text) return SV_FAIL;
    cJSON *root = cJSON_Parse(text);
    free(text);
    reader rd = {path, ""};
    int rc = cJSON_IsObject(root) ? SV_OK : sv_fail(err, "%s: not valid JSON", path);
    if (rc == SV_OK) rc = read_header(&rd, root, s, err);
    if (rc == SV_OK) rc = read_types(&rd, member(root, "sample_types"), s, err);
    if (rc == SV_OK) rc = read_runs(&rd, member(root, "runs"), s, err);
    cJSON_Delete(root);
    if (rc != SV_OK) sv_study_free(s);
    return rc;
}
