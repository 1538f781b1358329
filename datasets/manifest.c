#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "manifest.h"
#include "utf8.h"

/* Modified UTF-8's NUL: never valid UTF-8, so it cannot be a real character. */
#define NUL_MARK "\xC0\x80"

/* Loading state shared by both formats. */
typedef struct loader {
    sv_manifest *m;
    const char *path;
    char dir[4096];   /* the manifest's folder, for relative image paths */
    int skip_bad;
    size_t cap, bad_cap;
    sv_error *err;
} loader;

static char *dup_or_null(const char *s) { return s ? strdup(s) : NULL; }

static void free_sample(sv_sample *s) {
    free(s->id), free(s->image), free(s->question), free(s->answer), free(s->type);
}

/* Either fails the load or records the line as skipped. */
static int bad_line(loader *ld, int line, const char *reason) {
    if (!ld->skip_bad) return sv_fail(ld->err, "%s:%d: %s", ld->path, line, reason);
    if (ld->m->n_bad == ld->bad_cap) {
        size_t cap = ld->bad_cap ? 2 * ld->bad_cap : 16;
        sv_bad_line *b = realloc(ld->m->bad, cap * sizeof *b);
        if (!b) return sv_fail(ld->err, "%s: out of memory", ld->path);
        ld->m->bad = b, ld->bad_cap = cap;
    }
    char *r = strdup(reason);
    if (!r) return sv_fail(ld->err, "%s: out of memory", ld->path);
    ld->m->bad[ld->m->n_bad++] = (sv_bad_line){line, r};
    return SV_OK;
}

static int push_sample(loader *ld, sv_sample s) {
    if (ld->m->n == ld->cap) {
        size_t cap = ld->cap ? 2 * ld->cap : 64;
        sv_sample *p = realloc(ld->m->samples, cap * sizeof *p);
        if (!p) {
            free_sample(&s);
            return sv_fail(ld->err, "%s: out of memory", ld->path);
        }
        ld->m->samples = p, ld->cap = cap;
    }
    ld->m->samples[ld->m->n++] = s;
    return SV_OK;
}

static char *resolve_image(const loader *ld, const char *image) {
    size_t n = strlen(ld->dir) + strlen(image) + 2;
    char *p = malloc(n);
    if (p) snprintf(p, n, "%s%s", image[0] == '/' ? "" : ld->dir, image);
    return p;
}

/* An id may be a string or a number; absent ids become "line-N". */
static char *sample_id(const cJSON *obj, int line) {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(obj, "id");
    char buf[64];
    if (cJSON_IsString(id)) return strdup(id->valuestring);
    if (cJSON_IsNumber(id)) snprintf(buf, sizeof buf, "%.17g", id->valuedouble);
    else snprintf(buf, sizeof buf, "line-%d", line);
    return strdup(buf);
}

/* cJSON decodes "\u0000" into a NUL that silently ends the C string. Before
 * parsing, each such escape in a string becomes NUL_MARK three times (the
 * escape's 6 bytes), which check_text then finds and names. */
static void mark_nul_escapes(char *text) {
    int in_string = 0;
    for (char *p = text; *p; p++) {
        if (*p == '\n') {
            in_string = 0; /* a string never spans lines: a broken line stays alone */
        } else if (*p == '"') {
            in_string = !in_string;
        } else if (in_string && *p == '\\') {
            if (strncmp(p + 1, "u0000", 5) == 0) memcpy(p, NUL_MARK NUL_MARK NUL_MARK, 6), p += 5;
            else if (p[1]) p++; /* the escaped character, which may be a quote */
        }
    }
}

/* Strings that end up in the LC file (HDF5 UTF-8, read by h5py) and the
 * tokenizer must be whole UTF-8 without NUL: the reason if not, else NULL. */
static const char *check_text(const char *field, const char *s, char *reason, size_t size) {
    size_t bad;
    if (!s) return NULL;
    if (strstr(s, NUL_MARK)) snprintf(reason, size, "%s holds \\u0000 (NUL)", field);
    else if (!sv_utf8_valid(s, strlen(s), &bad))
        snprintf(reason, size, "%s is not valid UTF-8 (at byte %zu)", field, bad);
    else return NULL;
    return reason;
}

/* Validates and adds one sample given its fields; question NULL = missing. */
static int add_sample(loader *ld, const cJSON *obj, int line, const char *question,
                      const char *answer) {
    const cJSON *image = cJSON_GetObjectItemCaseSensitive(obj, "image");
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(obj, "id");
    char reason[4400];
    if (!cJSON_IsString(image) || !image->valuestring[0]) return bad_line(ld, line, "no image");
    if (!question) return bad_line(ld, line, "no question");
    const cJSON *type = cJSON_GetObjectItemCaseSensitive(obj, "type");
    if (type && !cJSON_IsString(type)) return bad_line(ld, line, "type must be a string");
    const char *why =
        check_text("id", cJSON_IsString(id) ? id->valuestring : NULL, reason, sizeof reason);
    if (!why) why = check_text("question", question, reason, sizeof reason);
    if (!why) why = check_text("answer", answer, reason, sizeof reason);
    if (!why) why = check_text("type", type ? type->valuestring : NULL, reason, sizeof reason);
    if (!why) why = check_text("image", image->valuestring, reason, sizeof reason);
    if (why) return bad_line(ld, line, why);
    sv_sample s = {.line = line};
    s.image = resolve_image(ld, image->valuestring);
    if (s.image && access(s.image, R_OK) != 0) {
        snprintf(reason, sizeof reason, "image '%s' not found", s.image);
        free(s.image);
        return bad_line(ld, line, reason);
    }
    s.id = sample_id(obj, line);
    s.question = strdup(question);
    s.answer = dup_or_null(answer);
    s.type = dup_or_null(type ? type->valuestring : NULL);
    if (!s.image || !s.id || !s.question || (answer && !s.answer) || (type && !s.type)) {
        free_sample(&s);
        return sv_fail(ld->err, "%s: out of memory", ld->path);
    }
    return push_sample(ld, s);
}

static const char *string_field(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static int load_jsonl_line(loader *ld, const char *text, int line) {
    cJSON *obj = cJSON_Parse(text);
    int rc;
    if (!cJSON_IsObject(obj)) rc = bad_line(ld, line, "not a JSON object");
    else rc = add_sample(ld, obj, line, string_field(obj, "question"), string_field(obj, "answer"));
    cJSON_Delete(obj);
    return rc;
}

static int load_jsonl(loader *ld, char *text) {
    int line = 0;
    for (char *p = text; p && *p;) {
        char *nl = strchr(p, '\n');
        if (nl) *nl = 0;
        line++;
        if (strspn(p, " \t\r") != strlen(p) && load_jsonl_line(ld, p, line)) return SV_FAIL;
        p = nl ? nl + 1 : NULL;
    }
    return SV_OK;
}

/* value of the first {"from": "human"} turn */
static const char *first_human_turn(const cJSON *entry) {
    const cJSON *turns = cJSON_GetObjectItemCaseSensitive(entry, "conversations"), *t;
    cJSON_ArrayForEach(t, turns) {
        const char *from = string_field(t, "from");
        if (from && strcmp(from, "human") == 0) return string_field(t, "value");
    }
    return NULL;
}

static int load_llava_json(loader *ld, const char *text) {
    cJSON *list = cJSON_Parse(text), *entry;
    if (!cJSON_IsArray(list)) {
        cJSON_Delete(list);
        return sv_fail(ld->err, "%s: not valid JSON (a list of LLaVA conversations)", ld->path);
    }
    int rc = SV_OK, k = 0;
    cJSON_ArrayForEach(entry, list) {
        k++;
        rc = cJSON_IsObject(entry) ? add_sample(ld, entry, k, first_human_turn(entry), NULL)
                                   : bad_line(ld, k, "not a JSON object");
        if (rc) break;
    }
    cJSON_Delete(list);
    return rc;
}

int sv_manifest_load(sv_manifest *out, const char *path, int skip_bad, sv_error *err) {
    memset(out, 0, sizeof *out);
    loader ld = {.m = out, .path = path, .skip_bad = skip_bad, .err = err};
    const char *slash = strrchr(path, '/');
    snprintf(ld.dir, sizeof ld.dir, "%.*s", slash ? (int)(slash - path + 1) : 0, path);
    char *text = sv_read_file(path, NULL, err);
    if (!text) return SV_FAIL;
    mark_nul_escapes(text);
    const char *first = text + strspn(text, " \t\r\n");
    int rc = *first == '[' ? load_llava_json(&ld, text) : load_jsonl(&ld, text);
    free(text);
    if (rc == SV_OK && out->n == 0) rc = sv_fail(err, "%s: no usable samples", path);
    if (rc) sv_manifest_free(out);
    return rc;
}

void sv_manifest_free(sv_manifest *m) {
    for (size_t i = 0; i < m->n; i++) free_sample(&m->samples[i]);
    for (size_t i = 0; i < m->n_bad; i++) free(m->bad[i].reason);
    free(m->samples), free(m->bad);
    memset(m, 0, sizeof *m);
}

static uint64_t splitmix64(uint64_t *state) {
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

void sv_manifest_select(sv_manifest *m, uint64_t seed, int shuffle, size_t limit) {
    if (shuffle)
        for (size_t i = m->n; i > 1; i--) {
            size_t j = (size_t)(splitmix64(&seed) % i);
            sv_sample t = m->samples[i - 1];
            m->samples[i - 1] = m->samples[j];
            m->samples[j] = t;
        }
    if (limit && limit < m->n) {
        for (size_t i = limit; i < m->n; i++) free_sample(&m->samples[i]);
        m->n = limit;
    }
}
