/* LLaMA BPE tokenizer from a Hugging Face tokenizer.json.
 *
 * Mirrors the tokenizers library (Rust core) on the files LLaMA/LLaVA
 * checkpoints ship: added tokens are cut out of the raw text first
 * (AddedVocabulary::find_matches), each text run between them is normalised
 * (Prepend "▁", Replace " " -> "▁") or, in older files, pre-tokenised by
 * Metaspace, and each word is merged by BPE rank with byte fallback
 * (BPE::merge_word, Word::merge_all). Comments name the Rust functions. */
#include <cjson/cJSON.h>
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sentencepiece.h"
#include "tokenizer.h"
#include "utf8.h"

#define MAX_NORM_STEPS 8
#define EMPTY_PAIR UINT64_MAX

typedef struct { char *s; size_t len; } piece;

typedef struct {
    piece content; /* the token's text */
    piece pattern; /* what is matched and decoded: content, normalised if `normalized` */
    int id;
    bool lstrip, rstrip, single_word, normalized, special;
} added_token;

typedef struct {
    uint64_t pair; /* left id << 32 | right id; EMPTY_PAIR for a free slot */
    int rank, merged;
} merge_entry;

/* A normaliser step: Replace(from -> to), or Prepend(to) when from.len == 0. */
typedef struct { piece from, to; } norm_step;

enum prepend_scheme { PREPEND_ALWAYS, PREPEND_FIRST, PREPEND_NEVER };

struct sv_tokenizer {
    piece *vocab;            /* (n_vocab) BPE pieces by id; the ids are exactly 0..n_vocab-1 */
    int n_vocab;
    int *vocab_slot;         /* (vocab_mask+1) open addressing, piece -> id + 1; 0 = empty */
    merge_entry *merge_slot; /* (merge_mask+1) open addressing, pair of ids -> merge */
    size_t vocab_mask, merge_mask;
    int byte_id[256];        /* id of "<0xXX>" when byte_fallback is on, else -1 */
    int unk;                 /* -1 when the model has no unk_token */
    bool fuse_unk;
    added_token *added;      /* (n_added) */
    int n_added;
    const piece **text_of;   /* (n_ids) decode text by id: added token, else vocab piece */
    bool *special;           /* (n_ids) skipped by decode */
    int n_ids;
    norm_step norm[MAX_NORM_STEPS];
    int n_norm;
    bool metaspace;          /* legacy files: a Metaspace pre-tokenizer */
    piece meta_repl;
    enum prepend_scheme meta_prepend;
    bool meta_split;
    int bos, eos;            /* -1 when not configured */
    bool add_bos, add_eos;
    sv_spm *spm;             /* a tokenizer.model, which then does the encoding; else NULL */
};

static const piece SPACE = {" ", 1}, METASPACE = {"\xE2\x96\x81", 3},
                   REPLACEMENT_CHAR = {"\xEF\xBF\xBD", 3};

/* ---- UTF-8, hashing, buffers ---- */

static uint64_t hash_bytes(const char *s, size_t n) { /* FNV-1a */
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static size_t table_size_for(size_t n) { /* a power of two, at most half full */
    size_t size = 16;
    while (size < 2 * n) size <<= 1;
    return size;
}

static int piece_copy(piece *out, const char *s, size_t n, sv_error *err) {
    if (!(out->s = sv_alloc_array(n + 1, 1, err, "tokenizer piece"))) return SV_FAIL;
    memcpy(out->s, s, n);
    out->len = n;
    return SV_OK;
}

/* A growable byte (or id) array, kept NUL-terminated. */
typedef struct { char *data; size_t len, cap; } buffer;

static int buffer_append(buffer *b, const void *data, size_t n, sv_error *err) {
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p) return sv_fail(err, "tokenizer: out of memory (%zu bytes)", cap);
        b->data = p, b->cap = cap;
    }
    if (n) memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = 0;
    return SV_OK;
}

static int push_id(buffer *ids, int id, sv_error *err) {
    return buffer_append(ids, &id, sizeof id, err);
}

/* Appends s with every `from` replaced by `to` (NormalizedString::replace). */
static int replace_into(buffer *out, const char *s, size_t n, const piece *from, const piece *to,
                        sv_error *err) {
    for (size_t i = 0; i < n;) {
        const char *hit = memmem(s + i, n - i, from->s, from->len);
        size_t stop = hit ? (size_t)(hit - s) : n;
        if (buffer_append(out, s + i, stop - i, err) ||
            (hit && buffer_append(out, to->s, to->len, err)))
            return SV_FAIL;
        i = hit ? stop + from->len : n;
    }
    return SV_OK;
}

/* ---- the two hash maps ---- */

/* The slot holding piece s, or the empty slot where it would go. */
static int *piece_slot(const sv_tokenizer *t, const char *s, size_t n) {
    for (size_t i = hash_bytes(s, n) & t->vocab_mask;; i = (i + 1) & t->vocab_mask) {
        int *slot = &t->vocab_slot[i];
        if (*slot == 0) return slot;
        const piece *p = &t->vocab[*slot - 1];
        if (p->len == n && memcmp(p->s, s, n) == 0) return slot;
    }
}

static int vocab_id(const sv_tokenizer *t, const char *s, size_t n) {
    return *piece_slot(t, s, n) - 1;
}

static uint64_t pair_key(int left, int right) {
    return (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
}

/* The slot holding pair, or the empty slot where it would go. */
static merge_entry *merge_slot(const sv_tokenizer *t, uint64_t pair) {
    for (size_t i = (pair * 0x9E3779B97F4A7C15ull) >> 29 & t->merge_mask;;
         i = (i + 1) & t->merge_mask)
        if (t->merge_slot[i].pair == pair || t->merge_slot[i].pair == EMPTY_PAIR)
            return &t->merge_slot[i];
}

static const merge_entry *find_merge(const sv_tokenizer *t, int left, int right) {
    const merge_entry *e = merge_slot(t, pair_key(left, right));
    return e->pair == EMPTY_PAIR ? NULL : e;
}

/* ---- JSON ---- */

/* Reads and parses a whole JSON file; *missing tells "no such file" apart so
 * that an optional file can be skipped. */
static int read_json(const char *path, cJSON **out, bool *missing, sv_error *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) {
        *missing = errno == ENOENT;
        return sv_fail(err, "%s: cannot open: %s", path, strerror(errno));
    }
    buffer b = {0};
    char chunk[65536];
    size_t got;
    int rc = buffer_append(&b, "", 0, err);
    while (!rc && (got = fread(chunk, 1, sizeof chunk, f)) > 0)
        rc = buffer_append(&b, chunk, got, err);
    if (!rc && ferror(f)) rc = sv_fail(err, "%s: read error", path);
    fclose(f);
    const char *end = b.data;
    if (!rc && !(*out = cJSON_ParseWithLengthOpts(b.data, b.len, &end, 0)))
        rc = sv_fail(err, "%s: not valid JSON (error at byte %td)", path, end - b.data);
    free(b.data);
    return rc;
}

/* Where the fields being read sit, for error messages: "<path>: <where><key> ...". */
typedef struct { const char *path, *where; sv_error *err; } json_at;

static const cJSON *field(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsNull(v) ? NULL : v;
}

/* Optional fields: absent or null keeps *val, as serde defaults do. */
static int read_bool(json_at at, const cJSON *obj, const char *key, bool *val) {
    const cJSON *v = field(obj, key);
    if (v && !cJSON_IsBool(v))
        return sv_fail(at.err, "%s: %s%s is not true/false", at.path, at.where, key);
    if (v) *val = cJSON_IsTrue(v);
    return SV_OK;
}

/* Strings that steer splitting and normalisation must be whole UTF-8 (as the
 * tokenizers library's Rust strings are): text split at a partial character
 * could not be encoded. */
static int read_string(json_at at, const cJSON *obj, const char *key, const char **val) {
    const cJSON *v = field(obj, key);
    size_t bad;
    if (v && !cJSON_IsString(v))
        return sv_fail(at.err, "%s: %s%s is not a string", at.path, at.where, key);
    if (v && !sv_utf8_valid(v->valuestring, strlen(v->valuestring), &bad))
        return sv_fail(at.err, "%s: %s%s is not valid UTF-8 (at byte %zu)", at.path, at.where,
                       key, bad);
    if (v) *val = v->valuestring;
    return SV_OK;
}

static const char *type_of(const cJSON *obj) {
    const cJSON *type = field(obj, "type");
    return cJSON_IsString(type) ? type->valuestring : "(none)";
}

/* ---- loading the BPE model ---- */

static int load_vocab(sv_tokenizer *t, const cJSON *model, const char *path, sv_error *err) {
    const cJSON *vocab = field(model, "vocab"), *item;
    if (!cJSON_IsObject(vocab)) return sv_fail(err, "%s: model.vocab is not an object", path);
    t->n_vocab = cJSON_GetArraySize(vocab);
    t->vocab_mask = table_size_for((size_t)t->n_vocab) - 1;
    t->vocab = sv_alloc_array((size_t)t->n_vocab, sizeof *t->vocab, err, path);
    t->vocab_slot = sv_alloc_array(t->vocab_mask + 1, sizeof(int), err, path);
    if (!t->vocab || !t->vocab_slot) return SV_FAIL;
    cJSON_ArrayForEach(item, vocab) {
        const char *s = item->string;
        double d = cJSON_IsNumber(item) ? item->valuedouble : -1;
        /* Dense ids 0..n-1 keep the id -> piece table a plain array. */
        if (!(d >= 0 && d < t->n_vocab) || d != (int)d)
            return sv_fail(err, "%s: model.vocab[\"%s\"]: id is not an integer in [0, %d)", path, s,
                           t->n_vocab);
        int id = (int)d, *slot = piece_slot(t, s, strlen(s));
        if (t->vocab[id].s)
            return sv_fail(err, "%s: model.vocab: id %d given to both \"%s\" and \"%s\"", path, id,
                           t->vocab[id].s, s);
        if (*slot) return sv_fail(err, "%s: model.vocab: piece \"%s\" appears twice", path, s);
        if (piece_copy(&t->vocab[id], s, strlen(s), err)) return SV_FAIL;
        *slot = id + 1;
    }
    return SV_OK;
}

/* A merge is "left right" (older files) or ["left", "right"] (newer ones). */
static bool split_merge(const cJSON *m, piece *left, piece *right) {
    if (cJSON_IsString(m)) {
        char *space = strchr(m->valuestring, ' ');
        if (!space || strchr(space + 1, ' ')) return false;
        *left = (piece){m->valuestring, (size_t)(space - m->valuestring)};
        *right = (piece){space + 1, strlen(space + 1)};
        return true;
    }
    const cJSON *a = cJSON_GetArrayItem(m, 0), *b = cJSON_GetArrayItem(m, 1);
    if (!cJSON_IsArray(m) || cJSON_GetArraySize(m) != 2 || !cJSON_IsString(a) || !cJSON_IsString(b))
        return false;
    *left = (piece){a->valuestring, strlen(a->valuestring)};
    *right = (piece){b->valuestring, strlen(b->valuestring)};
    return true;
}

/* Merge rank = position in the list. Both pieces and the merged one must be
 * in the vocab (BPE::from_file refuses the file otherwise). */
static int load_merges(sv_tokenizer *t, const cJSON *model, const char *path, sv_error *err) {
    const cJSON *merges = field(model, "merges"), *m;
    if (!cJSON_IsArray(merges)) return sv_fail(err, "%s: model.merges is not an array", path);
    int rank = 0, rc = SV_OK;
    t->merge_mask = table_size_for((size_t)cJSON_GetArraySize(merges)) - 1;
    if (!(t->merge_slot = sv_alloc_array(t->merge_mask + 1, sizeof(merge_entry), err, path)))
        return SV_FAIL;
    for (size_t i = 0; i <= t->merge_mask; i++) t->merge_slot[i].pair = EMPTY_PAIR;
    buffer joined = {0};
    cJSON_ArrayForEach(m, merges) {
        piece l, r;
        if (!split_merge(m, &l, &r)) {
            rc = sv_fail(err, "%s: model.merges[%d] is not two pieces", path, rank);
            break;
        }
        joined.len = 0;
        if ((rc = buffer_append(&joined, l.s, l.len, err) ||
                  buffer_append(&joined, r.s, r.len, err)))
            break;
        const piece *parts[3] = {&l, &r, &(piece){joined.data, joined.len}};
        int ids[3];
        for (int k = 0; k < 3 && !rc; k++)
            if ((ids[k] = vocab_id(t, parts[k]->s, parts[k]->len)) < 0)
                rc = sv_fail(
                    err,
                    "%s: model.merges[%d] (\"%.*s\" + \"%.*s\"): \"%.*s\" is not in model.vocab",
                    path, rank, (int)l.len, l.s, (int)r.len, r.s, (int)parts[k]->len, parts[k]->s);
        if (rc) break;
        /* A repeated pair keeps its last rank, as Rust's HashMap collect does. */
        uint64_t pair = pair_key(ids[0], ids[1]);
        *merge_slot(t, pair) = (merge_entry){pair, rank++, ids[2]};
    }
    free(joined.data);
    return rc ? SV_FAIL : SV_OK;
}

static int load_model(sv_tokenizer *t, const cJSON *root, const char *path, sv_error *err) {
    const cJSON *model = field(root, "model");
    if (!cJSON_IsObject(model)) return sv_fail(err, "%s: no \"model\" object", path);
    if (strcmp(type_of(model), "BPE") != 0)
        return sv_fail(err, "%s: unsupported tokenizer model type '%s' (expected BPE)", path,
                       type_of(model));
    const char *prefix = NULL, *suffix = NULL, *unk = NULL;
    const cJSON *dropout = field(model, "dropout");
    bool byte_fallback = false;
    json_at at = {path, "model.", err};
    if (read_string(at, model, "continuing_subword_prefix", &prefix) ||
        read_string(at, model, "end_of_word_suffix", &suffix) ||
        read_string(at, model, "unk_token", &unk) ||
        read_bool(at, model, "byte_fallback", &byte_fallback) ||
        read_bool(at, model, "fuse_unk", &t->fuse_unk))
        return SV_FAIL;
    if ((prefix && *prefix) || (suffix && *suffix) || (dropout && dropout->valuedouble != 0))
        return sv_fail(err, "%s: BPE subword affixes and dropout are not supported", path);
    if (load_vocab(t, model, path, err) || load_merges(t, model, path, err)) return SV_FAIL;
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        t->byte_id[b] = byte_fallback ? vocab_id(t, name, 6) : -1;
    }
    if (unk && (t->unk = vocab_id(t, unk, strlen(unk))) < 0)
        return sv_fail(err, "%s: model.unk_token \"%s\" is not in model.vocab", path, unk);
    return SV_OK;
}

/* ---- normaliser, pre-tokenizer, added tokens ---- */

static int load_norm_step(sv_tokenizer *t, const cJSON *n, const char *path, sv_error *err) {
    const char *type = type_of(n), *from = NULL, *to = NULL;
    json_at at = {path, "normalizer.", err};
    if (t->n_norm == MAX_NORM_STEPS) return sv_fail(err, "%s: too many normalizer steps", path);
    if (!strcmp(type, "Prepend")) {
        from = "";
        if (read_string(at, n, "prepend", &to)) return SV_FAIL;
    } else if (!strcmp(type, "Replace")) {
        if (read_string(at, field(n, "pattern"), "String", &from) ||
            read_string(at, n, "content", &to))
            return SV_FAIL;
        if (from && !*from) from = NULL;
    } else {
        return sv_fail(err, "%s: unsupported normalizer '%s' (expected Prepend/Replace)", path,
                       type);
    }
    if (!from || !to)
        return sv_fail(err, "%s: normalizer %s: only non-empty string patterns are supported", path,
                       type);
    norm_step *s = &t->norm[t->n_norm++];
    return piece_copy(&s->from, from, strlen(from), err) || piece_copy(&s->to, to, strlen(to), err);
}

static int load_normalizer(sv_tokenizer *t, const cJSON *root, const char *path, sv_error *err) {
    const cJSON *norm = field(root, "normalizer"), *step;
    if (!norm) return SV_OK;
    if (strcmp(type_of(norm), "Sequence") != 0) return load_norm_step(t, norm, path, err);
    if (!cJSON_IsArray(field(norm, "normalizers")))
        return sv_fail(err, "%s: normalizer.normalizers is not an array", path);
    cJSON_ArrayForEach(step, field(norm, "normalizers")) {
        if (load_norm_step(t, step, path, err)) return SV_FAIL;
    }
    return SV_OK;
}

/* Metaspace (older LLaMA files): prepend_scheme, or in still older files the
 * add_prefix_space flag; `split` defaults to true. */
static int load_pre_tokenizer(sv_tokenizer *t, const cJSON *root, const char *path, sv_error *err) {
    const cJSON *pre = field(root, "pre_tokenizer");
    if (!pre) return SV_OK;
    if (strcmp(type_of(pre), "Metaspace") != 0)
        return sv_fail(err, "%s: unsupported pre_tokenizer '%s' (only Metaspace)", path,
                       type_of(pre));
    const char *repl = METASPACE.s, *scheme = NULL;
    bool add_prefix_space = true;
    json_at at = {path, "pre_tokenizer.", err};
    t->metaspace = t->meta_split = true;
    if (read_string(at, pre, "replacement", &repl) ||
        read_string(at, pre, "prepend_scheme", &scheme) ||
        read_bool(at, pre, "add_prefix_space", &add_prefix_space) ||
        read_bool(at, pre, "split", &t->meta_split))
        return SV_FAIL;
    if (!scheme) t->meta_prepend = add_prefix_space ? PREPEND_ALWAYS : PREPEND_NEVER;
    else if (!strcmp(scheme, "always")) t->meta_prepend = PREPEND_ALWAYS;
    else if (!strcmp(scheme, "first")) t->meta_prepend = PREPEND_FIRST;
    else if (!strcmp(scheme, "never")) t->meta_prepend = PREPEND_NEVER;
    else return sv_fail(err, "%s: unknown Metaspace prepend_scheme '%s'", path, scheme);
    if (!*repl) return sv_fail(err, "%s: Metaspace replacement is empty", path);
    return piece_copy(&t->meta_repl, repl, strlen(repl), err);
}

static int normalize(const sv_tokenizer *t, const char *s, size_t n, buffer *out, sv_error *err);

static int load_added_token(sv_tokenizer *t, added_token *a, const cJSON *obj, int index,
                            const char *path, sv_error *err) {
    char where[48];
    snprintf(where, sizeof where, "added_tokens[%d].", index);
    json_at at = {path, where, err};
    const char *content = NULL;
    const cJSON *id = field(obj, "id");
    if (read_string(at, obj, "content", &content) || read_bool(at, obj, "lstrip", &a->lstrip) ||
        read_bool(at, obj, "rstrip", &a->rstrip) ||
        read_bool(at, obj, "single_word", &a->single_word) ||
        read_bool(at, obj, "normalized", &a->normalized) ||
        read_bool(at, obj, "special", &a->special))
        return SV_FAIL;
    if (!content || !*content)
        return sv_fail(err, "%s: %scontent is missing or empty", path, where);
    /* AddedVocabulary::add_tokens ignores the file's id: a token keeps the id
     * its text already has, else it takes the next one. Files that disagree
     * are refused, so that our ids never differ from HF's. */
    if ((a->id = sv_tokenizer_id(t, content)) < 0) a->id = t->n_ids++;
    if (!cJSON_IsNumber(id) || id->valuedouble != a->id)
        return sv_fail(err, "%s: %sid of \"%s\" is not %d, the id the tokenizers library gives it",
                       path, where, content, a->id);
    if (piece_copy(&a->content, content, strlen(content), err)) return SV_FAIL;
    if (!a->normalized) return piece_copy(&a->pattern, content, a->content.len, err);
    /* HF looks for these in normalised text, by their normalised form. */
    buffer b = {0};
    int rc = normalize(t, content, a->content.len, &b, err);
    a->pattern = (piece){b.data, b.len};
    return !rc && !b.len ? sv_fail(err, "%s: %scontent normalises to nothing", path, where) : rc;
}

/* Added tokens extend the id space past the vocab. An id inside the vocab
 * keeps its piece for BPE but decodes as the added token, as
 * AddedVocabulary::id_to_token answers first. Like HF, that is a normalized
 * token's normalised form, which then no longer counts as special. */
static int load_added_tokens(sv_tokenizer *t, const cJSON *root, const char *path, sv_error *err) {
    const cJSON *list = field(root, "added_tokens"), *obj;
    if (list && !cJSON_IsArray(list)) return sv_fail(err, "%s: added_tokens is not an array", path);
    t->n_ids = t->n_vocab;
    if (!(t->added = sv_alloc_array((size_t)cJSON_GetArraySize(list), sizeof *t->added, err, path)))
        return SV_FAIL;
    cJSON_ArrayForEach(obj, list) {
        added_token *a = &t->added[t->n_added++];
        if (!cJSON_IsObject(obj))
            return sv_fail(err, "%s: added_tokens[%d] is not an object", path, t->n_added - 1);
        if (load_added_token(t, a, obj, t->n_added - 1, path, err)) return SV_FAIL;
    }
    t->text_of = sv_alloc_array((size_t)t->n_ids, sizeof *t->text_of, err, path);
    t->special = sv_alloc_array((size_t)t->n_ids, sizeof *t->special, err, path);
    if (!t->text_of || !t->special) return SV_FAIL;
    for (int i = 0; i < t->n_vocab; i++) t->text_of[i] = &t->vocab[i];
    for (const added_token *a = t->added; a < t->added + t->n_added; a++) {
        t->text_of[a->id] = &a->pattern;
        t->special[a->id] = a->special && a->pattern.len == a->content.len &&
                            memcmp(a->pattern.s, a->content.s, a->content.len) == 0;
    }
    return SV_OK;
}

/* ---- tokenizer_config.json ---- */

static int join_path(char *buf, size_t size, const char *dir, const char *name, sv_error *err) {
    if ((size_t)snprintf(buf, size, "%s/%s", dir, name) >= size)
        return sv_fail(err, "%s/%s: path too long", dir, name);
    return SV_OK;
}

/* bos_token / eos_token (a string, an AddedToken object or null) -> *id;
 * an error if the flag asks for the token but there is none. */
static int config_token(const sv_tokenizer *t, const cJSON *cfg, const char *key, const char *name,
                        bool wanted, int *id, const char *path, sv_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(cfg, key);
    if (cJSON_IsObject(v)) v = field(v, "content");
    if (cJSON_IsString(v)) name = v->valuestring;
    else if (cJSON_IsNull(v)) name = NULL;
    else if (v) return sv_fail(err, "%s: %s is not a token string", path, key);
    if ((*id = name ? sv_tokenizer_id(t, name) : -1) < 0 && wanted)
        return sv_fail(err, "%s: %s: token \"%s\" is not in the vocabulary", path, key,
                       name ? name : "null");
    return SV_OK;
}

/* Transformers rebuilds the post-processor from these flags, so they, not
 * tokenizer.json's TemplateProcessing, decide BOS/EOS. A missing file means
 * the LlamaTokenizer defaults. */
static int load_config(sv_tokenizer *t, const char *dir, sv_error *err) {
    char path[4096];
    cJSON *cfg = NULL;
    bool missing = false;
    json_at at = {path, "", err};
    t->add_bos = true;
    if (join_path(path, sizeof path, dir, "tokenizer_config.json", err) ||
        (read_json(path, &cfg, &missing, err) && !missing))
        return SV_FAIL;
    int rc = SV_OK;
    if (cfg && !cJSON_IsObject(cfg))
        rc = sv_fail(err, "%s: not a JSON object", path);
    else if (read_bool(at, cfg, "add_bos_token", &t->add_bos) ||
             read_bool(at, cfg, "add_eos_token", &t->add_eos) ||
             config_token(t, cfg, "bos_token", "<s>", t->add_bos, &t->bos, path, err) ||
             config_token(t, cfg, "eos_token", "</s>", t->add_eos, &t->eos, path, err))
        rc = SV_FAIL;
    cJSON_Delete(cfg);
    return rc;
}

/* tokenizer.model (the original releases): its pieces are the vocabulary for
 * decoding and lookups; SentencePiece's own rules encode (sentencepiece.h). */
static int load_sentencepiece(sv_tokenizer *t, const char *path, sv_error *err) {
    if (sv_spm_load(&t->spm, path, err)) return SV_FAIL;
    t->n_vocab = t->n_ids = sv_spm_size(t->spm);
    t->vocab_mask = table_size_for((size_t)t->n_vocab) - 1;
    t->vocab = sv_alloc_array((size_t)t->n_vocab, sizeof *t->vocab, err, path);
    t->vocab_slot = sv_alloc_array(t->vocab_mask + 1, sizeof(int), err, path);
    t->text_of = sv_alloc_array((size_t)t->n_ids, sizeof *t->text_of, err, path);
    t->special = sv_alloc_array((size_t)t->n_ids, sizeof *t->special, err, path);
    if (!t->vocab || !t->vocab_slot || !t->text_of || !t->special) return SV_FAIL;
    for (int id = 0; id < t->n_vocab; id++) {
        size_t len;
        const char *s = sv_spm_piece(t->spm, id, &len);
        sv_spm_type type = sv_spm_type_of(t->spm, id);
        if (piece_copy(&t->vocab[id], s, len, err)) return SV_FAIL;
        *piece_slot(t, s, len) = id + 1; /* pieces are unique (sv_spm_parse checks) */
        t->text_of[id] = &t->vocab[id];
        t->special[id] = type == SV_SPM_CONTROL || type == SV_SPM_UNKNOWN;
    }
    return SV_OK;
}

static int load_model_file(sv_tokenizer **out, const char *dir, sv_error *err) {
    char path[4096];
    if (join_path(path, sizeof path, dir, "tokenizer.model", err)) return SV_FAIL;
    FILE *probe = fopen(path, "rb");
    if (!probe) return sv_fail(err, "%s: cannot open tokenizer.json or tokenizer.model", dir);
    fclose(probe);
    sv_tokenizer *t = sv_alloc_array(1, sizeof *t, err, path);
    if (!t) return SV_FAIL;
    t->unk = t->bos = t->eos = -1;
    if (load_sentencepiece(t, path, err) || load_config(t, dir, err)) {
        sv_tokenizer_free(t);
        return SV_FAIL;
    }
    *out = t;
    return SV_OK;
}

int sv_tokenizer_load(sv_tokenizer **out, const char *dir, sv_error *err) {
    char path[4096];
    cJSON *root;
    bool missing = false;
    *out = NULL;
    if (join_path(path, sizeof path, dir, "tokenizer.json", err)) return SV_FAIL;
    if (read_json(path, &root, &missing, err))
        return missing ? load_model_file(out, dir, err) : SV_FAIL;
    sv_tokenizer *t = sv_alloc_array(1, sizeof *t, err, path);
    int rc = t ? SV_OK : SV_FAIL;
    if (t) {
        t->unk = t->bos = t->eos = -1;
        if (!cJSON_IsObject(root))
            rc = sv_fail(err, "%s: not a JSON object", path);
        else if (load_model(t, root, path, err) || load_normalizer(t, root, path, err) ||
                 load_pre_tokenizer(t, root, path, err) || load_added_tokens(t, root, path, err) ||
                 load_config(t, dir, err))
            rc = SV_FAIL;
    }
    cJSON_Delete(root);
    if (rc) sv_tokenizer_free(t);
    else *out = t;
    return rc;
}

void sv_tokenizer_free(sv_tokenizer *t) {
    if (!t) return;
    for (int i = 0; t->vocab && i < t->n_vocab; i++) free(t->vocab[i].s);
    for (int i = 0; i < t->n_added; i++) free(t->added[i].content.s), free(t->added[i].pattern.s);
    for (int i = 0; i < t->n_norm; i++) free(t->norm[i].from.s), free(t->norm[i].to.s);
    sv_spm_free(t->spm);
    void *owned[] = {t->vocab,   t->vocab_slot, t->merge_slot,  t->added,
                     t->text_of, t->special,    t->meta_repl.s, t};
    for (size_t i = 0; i < sizeof owned / sizeof *owned; i++) free(owned[i]);
}

/* ---- encoding: added tokens and normalisation ---- */

/* The normaliser steps in order; Prepend leaves an empty string empty, as
 * NormalizedString::prepend does. */
static int normalize(const sv_tokenizer *t, const char *s, size_t n, buffer *out, sv_error *err) {
    buffer cur = {0};
    int rc = buffer_append(&cur, s, n, err);
    for (const norm_step *step = t->norm; step < t->norm + t->n_norm && !rc; step++) {
        bool prepend = step->from.len == 0;
        if (prepend && !cur.len) continue;
        buffer next = {0};
        if (prepend)
            rc = buffer_append(&next, step->to.s, step->to.len, err) ||
                 buffer_append(&next, cur.data, cur.len, err);
        else
            rc = replace_into(&next, cur.data, cur.len, &step->from, &step->to, err);
        free(cur.data);
        cur = next;
    }
    if (rc) free(cur.data);
    else *out = cur;
    return rc ? SV_FAIL : SV_OK;
}

/* Rust's char::is_whitespace (Unicode White_Space), which lstrip/rstrip use. */
static bool is_white_space(uint32_t c) {
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

/* single_word's test, Rust's is_alphanumeric() || '_': exact for ASCII; any
 * other non-space character counts as alphanumeric (true of letters and
 * digits, not of non-ASCII punctuation or symbols). */
static bool is_word_char(uint32_t c) {
    return c < 0x80 ? c == '_' || isalnum((int)c) : !is_white_space(c);
}

/* The character of s that ends at byte p > 0; *start gets where it begins. */
static uint32_t char_before(const char *s, size_t p, size_t *start) {
    uint32_t cp;
    size_t i = p - 1;
    while (i > 0 && ((unsigned char)s[i] & 0xC0) == 0x80) i--;
    sv_utf8_decode(s + i, p - i, &cp);
    *start = i;
    return cp;
}

/* The leftmost-longest added token of the given kind at or after `from`, as
 * HF's aho-corasick search finds it; a single_word token glued to a word is
 * passed over and the search resumes after it. */
static const added_token *next_added_token(const sv_tokenizer *t, const char *s, size_t n,
                                           size_t from, bool normalized, size_t *start) {
    for (size_t p = from; p < n;) {
        const added_token *best = NULL;
        for (const added_token *a = t->added; a < t->added + t->n_added; a++)
            if (a->normalized == normalized && a->pattern.len <= n - p &&
                (!best || a->pattern.len > best->pattern.len) &&
                memcmp(s + p, a->pattern.s, a->pattern.len) == 0)
                best = a;
        if (!best) {
            p++;
            continue;
        }
        size_t end = p + best->pattern.len, before;
        uint32_t next;
        bool glued = (p > 0 && is_word_char(char_before(s, p, &before))) ||
                     (end < n && sv_utf8_decode(s + end, n - end, &next) && is_word_char(next));
        if (!best->single_word || !glued) return *start = p, best;
        p = end;
    }
    return NULL;
}

static int encode_run(const sv_tokenizer *t, const char *s, size_t n, bool normalized,
                      bool at_start, buffer *ids, sv_error *err);

/* Cuts s at added tokens (AddedVocabulary::find_matches; lstrip/rstrip take
 * the whitespace beside the token with it) and encodes the runs between. */
static int split_on_added(const sv_tokenizer *t, const char *s, size_t n, bool normalized,
                          bool at_start, buffer *ids, sv_error *err) {
    size_t done = 0, start, before, len;
    const added_token *a;
    uint32_t c;
    while ((a = next_added_token(t, s, n, done, normalized, &start))) {
        size_t end = start + a->pattern.len;
        while (a->lstrip && start > done && is_white_space(char_before(s, start, &before)))
            start = before;
        while (a->rstrip && end < n && (len = sv_utf8_decode(s + end, n - end, &c)) &&
               is_white_space(c))
            end += len;
        if (encode_run(t, s + done, start - done, normalized, at_start && done == 0, ids, err) ||
            push_id(ids, a->id, err))
            return SV_FAIL;
        done = end;
    }
    return encode_run(t, s + done, n - done, normalized, at_start && done == 0, ids, err);
}

/* ---- encoding: BPE on one word ---- */

typedef struct {
    int id, prev, next; /* prev/next: neighbouring live symbols, -1 at the ends */
    size_t len;         /* bytes covered; 0 once merged into its left neighbour */
} symbol;

typedef struct { int rank, pos, merged; } merge_cand; /* the pair at symbol pos -> id merged */

static void add_symbol(symbol *sym, int *k, int id, size_t len) {
    sym[*k] = (symbol){id, *k - 1, -1, len};
    if (*k > 0) sym[*k - 1].next = *k;
    (*k)++;
}

/* BPE::merge_word: a symbol per character the vocab has, else one per byte
 * ("<0xXX>") if the vocab has them all, else unk (a run fused when fuse_unk).
 * Returns the number of symbols. */
static int word_symbols(const sv_tokenizer *t, const char *s, size_t n, symbol *sym) {
    int k = 0;
    size_t unk_len = 0; /* a pending unk symbol, not yet added */
    uint32_t cp;
    for (size_t i = 0, c; i < n; i += c) {
        c = sv_utf8_decode(s + i, n - i, &cp);
        int id = vocab_id(t, s + i, c);
        bool bytes_known = true;
        for (size_t b = 0; b < c; b++) bytes_known &= t->byte_id[(unsigned char)s[i + b]] >= 0;
        if (id >= 0) {
            if (unk_len) add_symbol(sym, &k, t->unk, unk_len);
            unk_len = 0;
            add_symbol(sym, &k, id, c);
        } else if (bytes_known) { /* HF adds a pending unk only later, after these bytes */
            for (size_t b = 0; b < c; b++)
                add_symbol(sym, &k, t->byte_id[(unsigned char)s[i + b]], 1);
        } else if (t->unk >= 0) {
            if (unk_len && !t->fuse_unk) add_symbol(sym, &k, t->unk, unk_len), unk_len = 0;
            unk_len += c;
        }
    }
    if (unk_len) add_symbol(sym, &k, t->unk, unk_len);
    return k;
}

static bool cand_before(merge_cand a, merge_cand b) {
    return a.rank != b.rank ? a.rank < b.rank : a.pos < b.pos;
}

static void heap_push(merge_cand *h, size_t *n, merge_cand c) {
    size_t i = (*n)++;
    for (; i > 0 && cand_before(c, h[(i - 1) / 2]); i = (i - 1) / 2) h[i] = h[(i - 1) / 2];
    h[i] = c;
}

static merge_cand heap_pop(merge_cand *h, size_t *n) {
    merge_cand top = h[0], last = h[--*n];
    size_t i = 0, child;
    for (; (child = 2 * i + 1) < *n; i = child) {
        if (child + 1 < *n && cand_before(h[child + 1], h[child])) child++;
        if (!cand_before(h[child], last)) break;
        h[i] = h[child];
    }
    h[i] = last;
    return top;
}

static void queue_pair(const sv_tokenizer *t, const symbol *sym, int pos, merge_cand *heap,
                       size_t *hn) {
    const merge_entry *e = find_merge(t, sym[pos].id, sym[sym[pos].next].id);
    if (e) heap_push(heap, hn, (merge_cand){e->rank, pos, e->merged});
}

/* Word::merge_all: merge the pair of lowest rank (leftmost on ties) until
 * none is left. Queue entries go stale when a neighbour merged first; they
 * are recognised and dropped when popped. At most 3k entries are queued:
 * k - 1 at the start and two per merge. */
static void merge_all(const sv_tokenizer *t, symbol *sym, int k, merge_cand *heap) {
    size_t hn = 0;
    for (int i = 0; i + 1 < k; i++) queue_pair(t, sym, i, heap, &hn);
    while (hn) {
        merge_cand top = heap_pop(heap, &hn);
        symbol *left = &sym[top.pos];
        if (left->len == 0 || left->next < 0) continue;
        symbol *right = &sym[left->next];
        const merge_entry *e = find_merge(t, left->id, right->id);
        if (!e || e->merged != top.merged) continue;
        left->id = top.merged;
        left->len += right->len;
        left->next = right->next;
        right->len = 0;
        if (left->next >= 0) sym[left->next].prev = top.pos;
        if (left->prev >= 0) queue_pair(t, sym, left->prev, heap, &hn);
        if (left->next >= 0) queue_pair(t, sym, top.pos, heap, &hn);
    }
}

static int bpe_encode(const sv_tokenizer *t, const char *s, size_t n, buffer *ids, sv_error *err) {
    if (n > INT32_MAX / 4) return sv_fail(err, "tokenizer: a word of %zu bytes is too long", n);
    symbol *sym = sv_alloc_array(n, sizeof *sym, err, "tokenizer: BPE symbols");
    merge_cand *heap =
        sym ? sv_alloc_array(3 * n, sizeof *heap, err, "tokenizer: BPE queue") : NULL;
    int rc = heap ? SV_OK : SV_FAIL;
    if (!rc) {
        int k = word_symbols(t, s, n, sym);
        merge_all(t, sym, k, heap);
        for (int i = k ? 0 : -1; i >= 0 && !rc; i = sym[i].next) rc = push_id(ids, sym[i].id, err);
    }
    free(sym);
    free(heap);
    return rc;
}

/* Metaspace::pre_tokenize: spaces become the replacement, which is also
 * prepended ("first": only to the run at the very start of the text), and
 * with split the text is cut before each replacement (MergedWithNext). */
static int encode_words(const sv_tokenizer *t, const char *s, size_t n, bool at_start, buffer *ids,
                        sv_error *err) {
    if (!t->metaspace) return bpe_encode(t, s, n, ids, err);
    const piece *r = &t->meta_repl;
    bool starts = s[0] == ' ' || (n >= r->len && memcmp(s, r->s, r->len) == 0);
    bool prepend = !starts && (t->meta_prepend == PREPEND_ALWAYS ||
                               (t->meta_prepend == PREPEND_FIRST && at_start));
    buffer w = {0};
    int rc = (prepend && buffer_append(&w, r->s, r->len, err)) ||
             replace_into(&w, s, n, &SPACE, r, err);
    for (size_t word = 0, p = 0; !rc && word < w.len; p += r->len) {
        const char *hit =
            t->meta_split && p < w.len ? memmem(w.data + p, w.len - p, r->s, r->len) : NULL;
        p = hit ? (size_t)(hit - w.data) : w.len;
        if (p > word) rc = bpe_encode(t, w.data + word, p - word, ids, err);
        word = p;
    }
    free(w.data);
    return rc ? SV_FAIL : SV_OK;
}

/* A raw run is normalised, then cut again at normalized added tokens; a
 * normalised run goes on to pre-tokenisation and BPE. */
static int encode_run(const sv_tokenizer *t, const char *s, size_t n, bool normalized,
                      bool at_start, buffer *ids, sv_error *err) {
    if (n == 0) return SV_OK;
    if (normalized) return encode_words(t, s, n, at_start, ids, err);
    buffer norm = {0};
    int rc = normalize(t, s, n, &norm, err) ||
             split_on_added(t, norm.data, norm.len, true, at_start, ids, err);
    free(norm.data);
    return rc ? SV_FAIL : SV_OK;
}

/* SentencePiece never matches special-token text: "<s>" is three characters to it. */
static int encode_spm(const sv_tokenizer *t, const char *text, size_t len, buffer *out,
                      sv_error *err) {
    int *ids = NULL;
    size_t n = 0;
    int rc = sv_spm_encode(t->spm, text, len, &ids, &n, err) ||
             buffer_append(out, ids, n * sizeof *ids, err);
    free(ids);
    return rc ? SV_FAIL : SV_OK;
}

int sv_tokenizer_encode(const sv_tokenizer *t, const char *text, int add_bos, int **ids, size_t *n,
                        sv_error *err) {
    size_t len = strlen(text), bad;
    bool bos = add_bos < 0 ? t->add_bos : add_bos != 0;
    *ids = NULL;
    *n = 0;
    if (!sv_utf8_valid(text, len, &bad))
        return sv_fail(err, "tokenizer: text is not valid UTF-8 (at byte %zu)", bad);
    if (bos && t->bos < 0)
        return sv_fail(err, "tokenizer: BOS requested but there is no BOS token");
    buffer out = {0};
    if (buffer_append(&out, "", 0, err) || (bos && push_id(&out, t->bos, err)) ||
        (t->spm ? encode_spm(t, text, len, &out, err)
                : split_on_added(t, text, len, false, true, &out, err)) ||
        (t->add_eos && push_id(&out, t->eos, err)))
        return free(out.data), SV_FAIL;
    *ids = (int *)(void *)out.data;
    *n = out.len / sizeof(int);
    return SV_OK;
}

/* ---- decoding ---- */

/* The ByteFallback decoder's test: "<0xXX>" gives byte XX, else -1. */
static int byte_of(const piece *p) {
    if (p->len != 6 || memcmp(p->s, "<0x", 3) != 0 || p->s[5] != '>' ||
        !isxdigit((unsigned char)p->s[3]) || !isxdigit((unsigned char)p->s[4]))
        return -1;
    char hex[3] = {p->s[3], p->s[4], 0};
    return (int)strtol(hex, NULL, 16);
}

/* Ends a run of byte tokens: valid UTF-8 stands, otherwise every byte of the
 * run becomes U+FFFD (decoders::ByteFallback). */
static int end_byte_run(buffer *out, size_t run_start, sv_error *err) {
    size_t n = out->len - run_start, bad;
    if (sv_utf8_valid(out->data + run_start, n, &bad)) return SV_OK;
    out->len = run_start;
    for (size_t i = 0; i < n; i++)
        if (buffer_append(out, REPLACEMENT_CHAR.s, REPLACEMENT_CHAR.len, err)) return SV_FAIL;
    return SV_OK;
}

/* The LLaMA decoder chain: Replace("▁" -> " "), ByteFallback, Fuse, then
 * Strip one leading space; special tokens are skipped first. */
int sv_tokenizer_decode_bytes(const sv_tokenizer *t, const int *ids, size_t n, char **text,
                              size_t *len, sv_error *err) {
    buffer out = {0};
    size_t run_start = SIZE_MAX; /* start of the current run of byte tokens, SIZE_MAX if none */
    int rc = buffer_append(&out, "", 0, err);
    *text = NULL;
    for (size_t i = 0; i < n && !rc; i++) {
        if (ids[i] < 0 || ids[i] >= t->n_ids) {
            rc = sv_fail(err, "tokenizer: cannot decode id %d (ids[%zu]; %d ids)", ids[i], i,
                         t->n_ids);
            break;
        }
        if (t->special[ids[i]]) continue;
        const piece *p = t->text_of[ids[i]];
        int byte = byte_of(p);
        if (byte >= 0) {
            if (run_start == SIZE_MAX) run_start = out.len;
            rc = buffer_append(&out, &(unsigned char){(unsigned char)byte}, 1, err);
            continue;
        }
        if (run_start != SIZE_MAX) rc = end_byte_run(&out, run_start, err);
        run_start = SIZE_MAX;
        if (!rc) rc = replace_into(&out, p->s, p->len, &METASPACE, &SPACE, err);
    }
    if (!rc && run_start != SIZE_MAX) rc = end_byte_run(&out, run_start, err);
    if (rc) return free(out.data), SV_FAIL;
    if (out.data[0] == ' ') memmove(out.data, out.data + 1, out.len--); /* moves the NUL too */
    *text = out.data;
    *len = out.len;
    return SV_OK;
}

int sv_tokenizer_decode(const sv_tokenizer *t, const int *ids, size_t n, char **text,
                        sv_error *err) {
    size_t len;
    return sv_tokenizer_decode_bytes(t, ids, n, text, &len, err);
}

/* ---- lookups ---- */

int sv_tokenizer_id(const sv_tokenizer *t, const char *text) {
    size_t n = strlen(text);
    for (const added_token *a = t->added; a < t->added + t->n_added; a++)
        if (a->content.len == n && memcmp(a->content.s, text, n) == 0) return a->id;
    return vocab_id(t, text, n);
}

int sv_tokenizer_bos(const sv_tokenizer *t) { return t->bos; }
int sv_tokenizer_eos(const sv_tokenizer *t) { return t->eos; }
int sv_tokenizer_size(const sv_tokenizer *t) { return t->n_ids; }
