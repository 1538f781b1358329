#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "freeze.h"

/* ---------------------------------------------------------------- loading */

/* The checks shared by freeze configs and --freeze-layers lists. */
static int check_layers(const int *layers, int n, int n_layers, const char *what, sv_error *err) {
    if (n == 0)
        return sv_fail(err, "%s: no frozen layers (an empty list would run the dense model)",
                       what);
    for (int i = 0; i < n; i++) {
        if (layers[i] < 0 || layers[i] >= n_layers)
            return sv_fail(err, "%s: layer %d is out of range [0, %d)", what, layers[i], n_layers);
        for (int j = 0; j < i; j++)
            if (layers[j] == layers[i])
                return sv_fail(err, "%s: layer %d is listed twice", what, layers[i]);
    }
    return SV_OK;
}

static int group_from_name(const char *name, sv_group *out) {
    for (int g = 0; g < SV_N_GROUPS; g++)
        if (strcmp(name, sv_group_name(g)) == 0) {
            *out = (sv_group)g;
            return SV_OK;
        }
    return SV_FAIL;
}

/* An integer-valued JSON number in [lo, hi]. */
static int json_int(const cJSON *v, int lo, int hi, int *out) {
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < lo ||
        v->valuedouble > hi)
        return SV_FAIL;
    *out = (int)v->valuedouble;
    return SV_OK;
}

static int read_header(const cJSON *root, const char *path, sv_freeze *out, sv_error *err) {
    const cJSON *format = cJSON_GetObjectItemCaseSensitive(root, "format");
    const cJSON *version = cJSON_GetObjectItemCaseSensitive(root, "version");
    const cJSON *group = cJSON_GetObjectItemCaseSensitive(root, "group");
    const cJSON *model = cJSON_GetObjectItemCaseSensitive(root, "model");
    int v;
    if (!cJSON_IsString(format) || strcmp(format->valuestring, SV_FREEZE_FORMAT))
        return sv_fail(err, "%s: not a shortv freeze config (format must be \"%s\")", path,
                       SV_FREEZE_FORMAT);
    if (json_int(version, 1, 1 << 30, &v) || v != SV_FREEZE_VERSION)
        return sv_fail(err, "%s: unsupported version (this shortv reads version %d)", path,
                       SV_FREEZE_VERSION);
    if (!cJSON_IsString(group) || group_from_name(group->valuestring, &out->group))
        return sv_fail(err, "%s: group must be \"visual\" or \"text\"", path);
    const cJSON *n_layers = cJSON_GetObjectItemCaseSensitive(model, "n_layers");
    const cJSON *hash = cJSON_GetObjectItemCaseSensitive(model, "config_hash");
    if (!cJSON_IsObject(model) || json_int(n_layers, 1, 1024, &out->n_layers))
        return sv_fail(err, "%s: model.n_layers must be an integer in [1, 1024]", path);
    if (!cJSON_IsString(hash) || strlen(hash->valuestring) != 16 ||
        strspn(hash->valuestring, "0123456789abcdef") != 16)
        return sv_fail(err, "%s: model.config_hash must be 16 hex digits", path);
    memcpy(out->config_hash, hash->valuestring, 17);
    return SV_OK;
}

static int read_frozen_layers(const cJSON *root, const char *path, sv_freeze *out, sv_error *err) {
    const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "frozen_layers");
    if (!cJSON_IsArray(list)) return sv_fail(err, "%s: frozen_layers must be a list", path);
    int n = cJSON_GetArraySize(list);
    if (n > out->n_layers)
        return sv_fail(err, "%s: frozen_layers lists %d layers but the model has %d", path, n,
                       out->n_layers);
    out->layers = sv_alloc_array(n ? (size_t)n : 1, sizeof(int), err, "frozen layers");
    if (!out->layers) return SV_FAIL;
    const cJSON *item;
    cJSON_ArrayForEach(item, list) {
        if (json_int(item, -(1 << 30), 1 << 30, &out->layers[out->n_frozen]))
            return sv_fail(err, "%s: frozen_layers[%d] is not an integer", path, out->n_frozen);
        out->n_frozen++;
    }
    char what[1100];
    snprintf(what, sizeof what, "%s: frozen_layers", path);
    return check_layers(out->layers, out->n_frozen, out->n_layers, what, err);
}

/* "--freeze-layers 11,10,9 runs these layers without the check", for a config
 * of visual layers (the only group --freeze-layers freezes); "" otherwise. */
static void bypass_hint(const sv_freeze *f, char *out, size_t size) {
    size_t n = 0;
    out[0] = '\0';
    if (f->group != SV_GROUP_VISUAL) return;
    n += (size_t)snprintf(out, size, "; --freeze-layers ");
    for (int i = 0; i < f->n_frozen && n < size; i++)
        n += (size_t)snprintf(out + n, size - n, "%s%d", i ? "," : "", f->layers[i]);
    if (n < size) snprintf(out + n, size - n, " runs these layers without the check");
}

static int check_model(const sv_freeze *f, const sv_config *cfg, const char *path, sv_error *err) {
    if (f->n_layers != cfg->text.n_layers)
        return sv_fail(err, "%s: made for a model with %d layers, but this model has %d", path,
                       f->n_layers, cfg->text.n_layers);
    if (!sv_config_hash_matches(cfg, f->config_hash)) {
        char hint[8192];
        bypass_hint(f, hint, sizeof hint);
        return sv_fail(err, "%s: made for another model (config hash %s, this model's is %s)%s",
                       path, f->config_hash, cfg->hash, hint);
    }
    return SV_OK;
}

int sv_freeze_load(const char *path, const sv_config *cfg, sv_freeze *out, sv_error *err) {
    memset(out, 0, sizeof *out);
    char *text = sv_read_file(path, NULL, err);
    if (!text) return SV_FAIL;
    cJSON *root = cJSON_Parse(text);
    free(text);
    int rc = SV_FAIL;
    if (!cJSON_IsObject(root))
        sv_fail(err, "%s: not a JSON object (malformed or truncated)", path);
    else if (read_header(root, path, out, err) == SV_OK &&
             read_frozen_layers(root, path, out, err) == SV_OK)
        rc = cfg ? check_model(out, cfg, path, err) : SV_OK;
    cJSON_Delete(root);
    if (rc) sv_freeze_free(out);
    return rc;
}

int sv_freeze_parse_layers(const char *list, int n_layers, sv_freeze *out, sv_error *err) {
    memset(out, 0, sizeof *out);
    out->group = SV_GROUP_VISUAL;
    out->n_layers = n_layers;
    out->layers = sv_alloc_array((size_t)n_layers + 1, sizeof(int), err, "frozen layers");
    if (!out->layers) return SV_FAIL;
    int rc = SV_OK;
    for (const char *p = list; *p && rc == SV_OK; out->n_frozen++) {
        char *end = (char *)p;
        long v = 0;
        errno = 0;
        if ((*p >= '0' && *p <= '9') || *p == '-') v = strtol(p, &end, 10); /* no spaces or '+' */
        if (end == p || errno || (*end && (*end != ',' || !end[1])))
            rc = sv_fail(err, "--freeze-layers: '%s' is not a comma-separated list of layer ids",
                         list);
        else if (v < 0 || v >= n_layers)
            rc = sv_fail(err, "--freeze-layers: layer %ld is out of range [0, %d)", v, n_layers);
        else if (out->n_frozen == n_layers) /* more ids than layers: one repeats */
            rc = sv_fail(err, "--freeze-layers: more ids than the model's %d layers", n_layers);
        else
            out->layers[out->n_frozen] = (int)v;
        p = *end ? end + 1 : end;
    }
    if (rc == SV_OK)
        rc = check_layers(out->layers, out->n_frozen, n_layers, "--freeze-layers", err);
    if (rc) sv_freeze_free(out);
    return rc;
}

int sv_freeze_fill_modes(const sv_freeze *f, sv_layer_mode *modes, int n_layers, sv_error *err) {
    if (n_layers != f->n_layers)
        return sv_fail(err, "freeze config is for %d layers, the model has %d", f->n_layers,
                       n_layers);
    for (int l = 0; l < n_layers; l++) modes[l] = SV_LAYER_DENSE;
    for (int i = 0; i < f->n_frozen; i++) modes[f->layers[i]] = SV_LAYER_FREEZE;
    return SV_OK;
}

void sv_freeze_free(sv_freeze *f) {
    free(f->layers);
    memset(f, 0, sizeof *f);
}

int sv_freeze_options(const char *path, const char *list, const sv_config *cfg,
                      sv_layer_mode **modes, sv_group *group, sv_error *err) {
    *modes = NULL;
    *group = SV_GROUP_VISUAL;
    if (!path && !list) return SV_OK;
    if (path && list) return sv_fail(err, "give --freeze or --freeze-layers, not both");
    sv_freeze f;
    int rc = path ? sv_freeze_load(path, cfg, &f, err)
                  : sv_freeze_parse_layers(list, cfg->text.n_layers, &f, err);
    if (rc) return SV_FAIL;
    *group = f.group;
    *modes = sv_alloc_array((size_t)cfg->text.n_layers, sizeof **modes, err, "freeze");
    rc = *modes ? sv_freeze_fill_modes(&f, *modes, cfg->text.n_layers, err) : SV_FAIL;
    sv_freeze_free(&f);
    return rc;
}

/* ---------------------------------------------------------------- selection */

const char *sv_select_rule_name(sv_select_rule r) {
    static const char *const names[] = {"count", "flops_ratio", "max_lc"};
    return names[r];
}

/* Rounded mean visual span and text length of the calibration samples. */
static int calibration_tokens(const sv_lc_data *lc, const char *path, int64_t *visual,
                              int64_t *text, sv_error *err) {
    double v = 0, n = 0;
    for (size_t i = 0; i < lc->n_samples; i++) {
        if (lc->visual_start[i] < 0 || lc->visual_end[i] < lc->visual_start[i] ||
            lc->n_tokens[i] < lc->visual_end[i])
            return sv_fail(err, "%s: sample %zu has an impossible visual span [%lld, %lld) "
                           "in %lld tokens", path, i, (long long)lc->visual_start[i],
                           (long long)lc->visual_end[i], (long long)lc->n_tokens[i]);
        v += (double)(lc->visual_end[i] - lc->visual_start[i]);
        n += (double)lc->n_tokens[i];
    }
    *visual = llround(v / (double)lc->n_samples);
    *text = llround(n / (double)lc->n_samples) - *visual;
    return SV_OK;
}

static int check_lc_file(const sv_lc_data *lc, const char *path, const sv_config *cfg,
                         sv_group group, sv_error *err) {
    if (!(lc->meta.groups >> group & 1))
        return sv_fail(err, "%s: the sweep did not measure the %s group (calibrate --groups)",
                       path, sv_group_name(group));
    if (!lc->complete)
        return sv_fail(err, "%s: the sweep is incomplete (%zu samples so far); finish it with "
                       "calibrate --resume", path, lc->n_samples);
    if (lc->n_samples == 0) return sv_fail(err, "%s: holds no samples", path);
    if (!sv_config_hash_matches(cfg, lc->meta.config_hash) ||
        lc->meta.n_layers != cfg->text.n_layers)
        return sv_fail(err, "%s: was measured on another model (config hash %s, %d layers; "
                       "the model given has %s, %d layers)", path, lc->meta.config_hash,
                       lc->meta.n_layers, cfg->hash, cfg->text.n_layers);
    return SV_OK;
}

/* The largest N whose FLOPs ratio stays >= r (the ratio falls as N grows). */
static int select_by_flops(const sv_config *cfg, int64_t v, int64_t t, sv_group group, double r,
                           int *n, sv_error *err) {
    sv_flops f;
    *n = 0;
    for (int k = 1; k <= cfg->text.n_layers; k++) {
        if (sv_flops_count(cfg, v, t, group, k, &f, err)) return SV_FAIL;
        if (f.ratio < r) break;
        *n = k;
    }
    return SV_OK;
}

static int select_count(const sv_freeze_plan *p, const sv_config *cfg, int64_t v, int64_t t,
                        int *n, sv_error *err) {
    const double *mean = p->lc->mean[p->group];
    const int32_t *order = p->lc->order[p->group];
    int L = p->lc->meta.n_layers;
    *n = 0;
    switch (p->rule) {
    case SV_SELECT_COUNT:
        if (!(p->value >= 1 && p->value <= L && p->value == floor(p->value)))
            return sv_fail(err, "freeze: -n %g must be between 1 and the model's %d layers",
                           p->value, L);
        *n = (int)p->value;
        return SV_OK;
    case SV_SELECT_FLOPS_RATIO:
        if (!(p->value > 0 && p->value <= 1))
            return sv_fail(err, "freeze: --flops-ratio %g must be in (0, 1] (the share of "
                           "FLOPs kept)", p->value);
        if (select_by_flops(cfg, v, t, p->group, p->value, n, err)) return SV_FAIL;
        if (*n == 0)
            return sv_fail(err, "freeze: --flops-ratio %g freezes no layer (one frozen layer "
                           "already goes below it)", p->value);
        return SV_OK;
    case SV_SELECT_MAX_LC:
        if (!isfinite(p->value)) return sv_fail(err, "freeze: --max-lc must be a finite number");
        while (*n < L && mean[order[*n]] <= p->value) (*n)++;
        if (*n == 0)
            return sv_fail(err, "freeze: no layer has mean %s LC <= %g (the lowest is %g)",
                           sv_group_name(p->group), p->value, mean[order[0]]);
        return SV_OK;
    }
    return sv_fail(err, "freeze: unknown selection rule %d", (int)p->rule);
}

int sv_freeze_plan_make(sv_freeze_plan *p, const sv_lc_data *lc, const char *lc_path,
                        const sv_config *cfg, sv_group group, sv_select_rule rule, double value,
                        sv_error *err) {
    *p = (sv_freeze_plan){.lc = lc, .lc_path = lc_path, .group = group, .rule = rule,
                          .value = value};
    int64_t v = 0, t = 0;
    if (check_lc_file(lc, lc_path, cfg, group, err) ||
        calibration_tokens(lc, lc_path, &v, &t, err) ||
        select_count(p, cfg, v, t, &p->n_frozen, err))
        return SV_FAIL;
    return sv_flops_count(cfg, v, t, group, p->n_frozen, &p->flops, err);
}

/* ---------------------------------------------------------------- writing */

/* cJSON adders that record any allocation failure in *ok, so that a config
 * is never written with a field silently missing. */
static void add_item(cJSON *o, const char *key, cJSON *item, int *ok) {
    if (!item || !o || !cJSON_AddItemToObject(o, key, item)) {
        cJSON_Delete(item);
        *ok = 0;
    }
}
static void add_number(cJSON *o, const char *key, double v, int *ok) {
    if (!cJSON_AddNumberToObject(o, key, v)) *ok = 0;
}
static void add_string(cJSON *o, const char *key, const char *v, int *ok) {
    if (!cJSON_AddStringToObject(o, key, v)) *ok = 0;
}
static void append_number(cJSON *a, double v, int *ok) {
    cJSON *n = cJSON_CreateNumber(v);
    if (!n || !a || !cJSON_AddItemToArray(a, n)) {
        cJSON_Delete(n);
        *ok = 0;
    }
}

/* The LC file's identity of the model, which is its config's (sv_freeze_plan_make
 * checked), so that the config and its LC file always agree (report --freeze). */
static cJSON *model_json(const sv_freeze_plan *p, int *ok) {
    const sv_lc_meta *m = &p->lc->meta;
    cJSON *o = cJSON_CreateObject();
    add_string(o, "path", p->model_path ? p->model_path : m->model, ok);
    add_string(o, "config_hash", m->config_hash, ok);
    add_number(o, "n_layers", m->n_layers, ok);
    return o;
}

static cJSON *frozen_layers_json(const sv_freeze_plan *p, int *ok) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; i < p->n_frozen; i++) append_number(a, p->lc->order[p->group][i], ok);
    return a;
}

static cJSON *selection_json(const sv_freeze_plan *p, int *ok) {
    cJSON *o = cJSON_CreateObject();
    add_string(o, "rule", sv_select_rule_name(p->rule), ok);
    add_number(o, "value", p->value, ok);
    return o;
}

static cJSON *ranking_json(const sv_freeze_plan *p, int *ok) {
    cJSON *ranking = cJSON_CreateArray();
    const double *mean = p->lc->mean[p->group], *std = p->lc->std[p->group];
    const int32_t *order = p->lc->order[p->group];
    for (int i = 0; i < p->lc->meta.n_layers; i++) {
        cJSON *row = cJSON_CreateObject();
        add_number(row, "layer", order[i], ok);
        add_number(row, "mean_lc", mean[order[i]], ok);
        add_number(row, "std_lc", std[order[i]], ok);
        if (!row || !ranking || !cJSON_AddItemToArray(ranking, row)) {
            cJSON_Delete(row);
            *ok = 0;
        }
    }
    return ranking;
}

static cJSON *flops_json(const sv_flops *f, int *ok) {
    cJSON *o = cJSON_CreateObject();
    add_number(o, "dense", f->dense, ok);
    add_number(o, "shortv", f->shortv, ok);
    add_number(o, "ratio", f->ratio, ok);
    add_number(o, "visual_tokens", (double)f->visual_tokens, ok);
    add_number(o, "text_tokens", (double)f->text_tokens, ok);
    return o;
}

static cJSON *calibration_json(const sv_freeze_plan *p, int *ok) {
    const sv_lc_data *lc = p->lc;
    cJSON *o = cJSON_CreateObject();
    add_string(o, "lc_file", p->lc_path, ok);
    add_string(o, "manifest", lc->meta.manifest, ok);
    add_number(o, "n_samples", (double)lc->n_samples, ok);
    add_number(o, "seed", (double)lc->meta.seed, ok);
    add_number(o, "limit", (double)lc->meta.limit, ok);
    add_string(o, "aspect", lc->meta.aspect, ok);
    add_string(o, "metric", SV_LC_METRIC, ok);
    add_string(o, "tool_version", lc->tool_version, ok);
    add_string(o, "created", lc->created, ok);
    return o;
}

/* cJSON_Print's text plus a final newline. */
static char *print_with_newline(const cJSON *root) {
    char *text = cJSON_Print(root);
    if (!text) return NULL;
    size_t len = strlen(text);
    char *out = realloc(text, len + 2);
    if (!out) {
        free(text);
        return NULL;
    }
    memcpy(out + len, "\n", 2);
    return out;
}

char *sv_freeze_plan_json(const sv_freeze_plan *p, sv_error *err) {
    int ok = 1;
    cJSON *root = cJSON_CreateObject();
    add_string(root, "format", SV_FREEZE_FORMAT, &ok);
    add_number(root, "version", SV_FREEZE_VERSION, &ok);
    add_item(root, "model", model_json(p, &ok), &ok);
    add_string(root, "group", sv_group_name(p->group), &ok);
    add_item(root, "frozen_layers", frozen_layers_json(p, &ok), &ok);
    add_item(root, "selection", selection_json(p, &ok), &ok);
    add_item(root, "flops", flops_json(&p->flops, &ok), &ok);
    add_item(root, "ranking", ranking_json(p, &ok), &ok);
    add_item(root, "calibration", calibration_json(p, &ok), &ok);
    char *text = ok ? print_with_newline(root) : NULL;
    cJSON_Delete(root);
    if (!text) sv_fail(err, "freeze: out of memory");
    return text;
}

char *sv_freeze_plan_env(const sv_freeze_plan *p, sv_error *err) {
    size_t size = 32 + 12 * (size_t)p->n_frozen, len;
    char *out = sv_alloc_array(size, 1, err, "REPLACED_LAYERS line");
    if (!out) return NULL;
    len = (size_t)snprintf(out, size, "export REPLACED_LAYERS=");
    for (int i = 0; i < p->n_frozen; i++)
        len += (size_t)snprintf(out + len, size - len, "%s%d", i ? "," : "",
                                (int)p->lc->order[p->group][i]);
    snprintf(out + len, size - len, "\n");
    return out;
}

