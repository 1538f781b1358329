#include <cjson/cJSON.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "export.h"

/* ---------------------------------------------------------------- CSV */

/* An RFC 4180 field: quoted, with quotes doubled, if it holds a separator,
 * a quote or a line break. */
static void csv_field(FILE *out, const char *s) {
    if (!s[strcspn(s, ",\"\r\n")]) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"') fputc('"', out);
        fputc(*s, out);
    }
    fputc('"', out);
}

int sv_lc_export_csv(FILE *out, const sv_lc_data *d, const char *source, sv_error *err) {
    (void)source, (void)err; /* nothing is allocated */
    size_t L = (size_t)d->meta.n_layers;
    fputs("sample,id,layer", out);
    for (int g = 0; g < SV_N_GROUPS; g++)
        if (d->lc[g]) fprintf(out, ",%s", sv_group_name(g));
    fputc('\n', out);
    for (size_t i = 0; i < d->n_samples; i++)
        for (size_t l = 0; l < L; l++) {
            fprintf(out, "%zu,", i);
            csv_field(out, d->ids[i]);
            fprintf(out, ",%zu", l);
            for (int g = 0; g < SV_N_GROUPS; g++)
                if (d->lc[g]) fprintf(out, ",%.17g", d->lc[g][i * L + l]);
            fputc('\n', out);
        }
    return SV_OK;
}

/* ---------------------------------------------------------------- JSON */

/* Numbers are written as raw text: cJSON's own printing keeps only 15 digits
 * when they read back as a value within an epsilon of the double, not equal to it. */
static cJSON *number(double v) {
    char text[32];
    if (!isfinite(v)) return cJSON_CreateNull();
    snprintf(text, sizeof text, "%.17g", v);
    return cJSON_CreateRaw(text);
}

static cJSON *integer(int64_t v) {
    char text[32];
    snprintf(text, sizeof text, "%" PRId64, v);
    return cJSON_CreateRaw(text);
}

static cJSON *string_or_null(const char *const *texts, size_t i) {
    return texts ? cJSON_CreateString(texts[i]) : cJSON_CreateNull();
}

/* Adds item to o under key (to the array o if key is NULL), taking it over;
 * a failure (item NULL: out of memory) clears *ok and frees item. */
static cJSON *put(cJSON *o, const char *key, cJSON *item, int *ok) {
    int added = item && (key ? cJSON_AddItemToObject(o, key, item) : cJSON_AddItemToArray(o, item));
    if (!added) cJSON_Delete(item), *ok = 0;
    return added ? item : NULL;
}

static cJSON *meta_json(const sv_lc_data *d, const char *source, int *ok) {
    const sv_lc_meta *m = &d->meta;
    cJSON *o = cJSON_CreateObject();
    put(o, "source", cJSON_CreateString(source), ok);
    put(o, "model", cJSON_CreateString(m->model), ok);
    put(o, "config_hash", cJSON_CreateString(m->config_hash), ok);
    put(o, "manifest", cJSON_CreateString(m->manifest), ok);
    put(o, "seed", integer(m->seed), ok);
    put(o, "limit", integer(m->limit), ok);
    put(o, "n_layers", integer(m->n_layers), ok);
    cJSON *groups = put(o, "groups", cJSON_CreateArray(), ok);
    for (int g = 0; g < SV_N_GROUPS && groups; g++)
        if (m->groups >> g & 1) put(groups, NULL, cJSON_CreateString(sv_group_name(g)), ok);
    put(o, "aspect", cJSON_CreateString(m->aspect), ok);
    put(o, "naive", cJSON_CreateBool(m->naive), ok);
    put(o, "metric", cJSON_CreateString(SV_LC_METRIC), ok);
    put(o, "position", cJSON_CreateString(SV_LC_POSITION), ok);
    put(o, "units", cJSON_CreateString("nats"), ok);
    put(o, "tool_version", cJSON_CreateString(d->tool_version), ok);
    put(o, "created", cJSON_CreateString(d->created), ok);
    put(o, "complete", cJSON_CreateBool(d->complete), ok);
    put(o, "partial", cJSON_CreateBool(d->partial), ok);
    if (d->partial) put(o, "selected", integer(d->selected), ok);
    if (m->shards) put(o, "shard", integer(m->shard), ok), put(o, "shards", integer(m->shards), ok);
    return o;
}

static cJSON *samples_json(const sv_lc_data *d, int *ok) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && *ok && i < d->n_samples; i++) {
        cJSON *s = put(a, NULL, cJSON_CreateObject(), ok);
        if (!s) break;
        put(s, "id", cJSON_CreateString(d->ids[i]), ok);
        put(s, "type", string_or_null((const char *const *)d->types, i), ok);
        put(s, "question", string_or_null((const char *const *)d->questions, i), ok);
        put(s, "image", string_or_null((const char *const *)d->images, i), ok);
        put(s, "visual_start", integer(d->visual_start[i]), ok);
        put(s, "visual_end", integer(d->visual_end[i]), ok);
        put(s, "n_tokens", integer(d->n_tokens[i]), ok);
        if (d->partial) put(s, "position", integer(d->position[i]), ok);
    }
    return a;
}

static cJSON *skipped_json(const sv_lc_data *d, int *ok) {
    cJSON *a = cJSON_CreateArray();
    for (size_t k = 0; a && *ok && k < d->n_skipped; k++) {
        cJSON *s = put(a, NULL, cJSON_CreateObject(), ok);
        if (!s) break;
        put(s, "line", integer(d->skipped_line[k]), ok);
        put(s, "reason", cJSON_CreateString(d->skipped_reason[k]), ok);
        if (d->partial) put(s, "position", integer(d->skipped_position[k]), ok);
    }
    return a;
}

/* n values of v (doubles, or int32 if ints) as an array. */
static cJSON *vector(const double *v, const int32_t *ints, size_t n, int *ok) {
    cJSON *a = cJSON_CreateArray();
    for (size_t i = 0; a && *ok && i < n; i++)
        put(a, NULL, ints ? integer(ints[i]) : number(v[i]), ok);
    return a;
}

/* {"lc": {group: rows}, "mean", "std", "order": {group: per layer}} into root. */
static void per_group_json(cJSON *root, const sv_lc_data *d, int *ok) {
    size_t L = (size_t)d->meta.n_layers;
    cJSON *lc = put(root, "lc", cJSON_CreateObject(), ok);
    cJSON *mean = put(root, "mean", cJSON_CreateObject(), ok);
    cJSON *std = put(root, "std", cJSON_CreateObject(), ok);
    cJSON *order = put(root, "order", cJSON_CreateObject(), ok);
    for (int g = 0; g < SV_N_GROUPS && *ok; g++) {
        if (!d->lc[g]) continue;
        const char *name = sv_group_name(g);
        cJSON *rows = put(lc, name, cJSON_CreateArray(), ok);
        for (size_t i = 0; rows && *ok && i < d->n_samples; i++)
            put(rows, NULL, vector(d->lc[g] + i * L, NULL, L, ok), ok);
        put(mean, name, vector(d->mean[g], NULL, L, ok), ok);
        put(std, name, vector(d->std[g], NULL, L, ok), ok);
        put(order, name, vector(NULL, d->order[g], L, ok), ok);
    }
}

int sv_lc_export_json(FILE *out, const sv_lc_data *d, const char *source, sv_error *err) {
    int ok = 1;
    cJSON *root = cJSON_CreateObject();
    put(root, "meta", meta_json(d, source, &ok), &ok);
    put(root, "samples", samples_json(d, &ok), &ok);
    per_group_json(root, d, &ok);
    put(root, "skipped", skipped_json(d, &ok), &ok);
    char *text = root && ok ? cJSON_Print(root) : NULL;
    cJSON_Delete(root);
    if (!text) return sv_fail(err, "%s: out of memory while exporting it as JSON", source);
    fputs(text, out);
    fputc('\n', out);
    free(text);
    return SV_OK;
}
