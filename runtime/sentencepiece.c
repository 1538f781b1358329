/* SentencePiece BPE (sentencepiece.h). The message layout is
 * src/sentencepiece_model.proto; encoding follows src/normalizer.cc
 * (Normalizer::Normalize without a charsmap), src/bpe_model.cc (Model::Encode)
 * and the byte fallback of sentencepiece_processor.cc. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sentencepiece.h"

#define MAX_PIECES (1 << 24)
#define SPACE_SYMBOL "\xE2\x96\x81" /* U+2581, what escape_whitespaces turns ' ' into */

typedef struct {
    const char *s; /* into sv_spm.data */
    size_t len;
    float score;
    int type;
} spm_piece;

struct sv_spm {
    unsigned char *data; /* the file, which pieces point into */
    spm_piece *pieces;
    int n;
    int *slot;           /* open addressing, piece -> id + 1; 0 = empty */
    size_t mask;
    int has_unused;
    int unk, bos, eos, model_type;
    int byte_fallback, whitespace_suffix;
    int add_dummy_prefix, remove_extra_whitespaces, escape_whitespaces;
    const unsigned char *charsmap;
    size_t charsmap_len;
    char normalizer[64];
    int byte_id[256];
};

/* ------------------------------------------------------------------ protobuf wire format */

typedef struct {
    const unsigned char *p, *end;
} pb;

typedef struct {
    uint32_t field;
    int wire;                /* 0 varint, 1 fixed64, 2 length-delimited, 5 fixed32 */
    uint64_t v;              /* wire 0, 1, 5 */
    const unsigned char *b;  /* wire 2 */
    size_t len;
} pb_field;

static int pb_varint(pb *b, uint64_t *v) {
    *v = 0;
    for (int shift = 0; shift < 70 && b->p < b->end; shift += 7) {
        unsigned char c = *b->p++;
        *v |= (uint64_t)(c & 0x7f) << (shift < 64 ? shift : 63);
        if (!(c & 0x80)) return SV_OK;
    }
    return SV_FAIL;
}

static int pb_fixed(pb *b, int bytes, uint64_t *v) {
    if (b->end - b->p < bytes) return SV_FAIL;
    *v = 0;
    for (int i = bytes - 1; i >= 0; i--) *v = *v << 8 | b->p[i];
    b->p += bytes;
    return SV_OK;
}

/* The next field; SV_FAIL on a malformed or truncated one, or a group. */
static int pb_next(pb *b, pb_field *f) {
    uint64_t key;
    if (pb_varint(b, &key) || key >> 32 || (key >> 3) == 0) return SV_FAIL;
    f->field = (uint32_t)(key >> 3);
    f->wire = (int)(key & 7);
    switch (f->wire) {
    case 0: return pb_varint(b, &f->v);
    case 1: return pb_fixed(b, 8, &f->v);
    case 5: return pb_fixed(b, 4, &f->v);
    case 2:
        if (pb_varint(b, &f->v) || f->v > (uint64_t)(b->end - b->p)) return SV_FAIL;
        f->b = b->p, f->len = (size_t)f->v;
        b->p += f->len;
        return SV_OK;
    default: return SV_FAIL;
    }
}

/* ------------------------------------------------------------------ messages */

typedef struct {
    const char *path;
    sv_error *err;
} ctx;

static int bad(const ctx *c, const char *what) {
    return sv_fail(c->err, "%s: %s", c->path, what);
}

/* A known field must come with its wire type. */
static int want(const ctx *c, const pb_field *f, int wire, const char *name) {
    if (f->wire == wire) return SV_OK;
    return sv_fail(c->err, "%s: field %s has wire type %d, not %d", c->path, name, f->wire, wire);
}

static int parse_piece(sv_spm *s, const ctx *c, const unsigned char *b, size_t len) {
    spm_piece *p = &s->pieces[s->n];
    *p = (spm_piece){.type = SV_SPM_NORMAL};
    pb in = {b, b + len};
    pb_field f;
    int has_piece = 0;
    while (in.p < in.end) {
        if (pb_next(&in, &f)) return bad(c, "malformed piece message");
        if (f.field == 1) {
            if (want(c, &f, 2, "piece")) return SV_FAIL;
            p->s = (const char *)f.b, p->len = f.len, has_piece = 1;
        } else if (f.field == 2) {
            if (want(c, &f, 5, "score")) return SV_FAIL;
            uint32_t bits = (uint32_t)f.v;
            memcpy(&p->score, &bits, sizeof bits);
        } else if (f.field == 3) {
            if (want(c, &f, 0, "type")) return SV_FAIL;
            if (f.v < 1 || f.v > 6) return bad(c, "piece type outside 1..6");
            p->type = (int)f.v;
        }
    }
    if (!has_piece || p->len == 0) return bad(c, "a piece is empty");
    s->n++;
    return SV_OK;
}

/* int32 fields arrive as 64-bit two's complement varints. */
static int as_int32(uint64_t v) { return (int)(int32_t)(uint32_t)v; }

static int parse_trainer(sv_spm *s, const ctx *c, const unsigned char *b, size_t len) {
    pb in = {b, b + len};
    pb_field f;
    while (in.p < in.end) {
        if (pb_next(&in, &f)) return bad(c, "malformed trainer_spec");
        int *target = f.field == 3 ? &s->model_type : f.field == 35 ? &s->byte_fallback
                    : f.field == 24 ? &s->whitespace_suffix : f.field == 40 ? &s->unk
                    : f.field == 41 ? &s->bos : f.field == 42 ? &s->eos : NULL;
        if (!target) continue;
        if (want(c, &f, 0, "of trainer_spec")) return SV_FAIL;
        *target = as_int32(f.v);
    }
    return SV_OK;
}

static int parse_normalizer(sv_spm *s, const ctx *c, const unsigned char *b, size_t len) {
    pb in = {b, b + len};
    pb_field f;
    while (in.p < in.end) {
        if (pb_next(&in, &f)) return bad(c, "malformed normalizer_spec");
        if (f.field == 1 || f.field == 2) {
            if (want(c, &f, 2, "of normalizer_spec")) return SV_FAIL;
            if (f.field == 2) s->charsmap = f.b, s->charsmap_len = f.len;
            else snprintf(s->normalizer, sizeof s->normalizer, "%.*s",
                          (int)(f.len < 48 ? f.len : 48), (const char *)f.b);
        } else if (f.field >= 3 && f.field <= 5) {
            if (want(c, &f, 0, "of normalizer_spec")) return SV_FAIL;
            int *flag[] = {&s->add_dummy_prefix, &s->remove_extra_whitespaces,
                           &s->escape_whitespaces};
            *flag[f.field - 3] = f.v != 0;
        }
    }
    return SV_OK;
}

/* ModelProto: 1 pieces (repeated), 2 trainer_spec, 3 normalizer_spec. */
static int parse_model(sv_spm *s, const ctx *c, const unsigned char *b, size_t len) {
    pb in = {b, b + len};
    pb_field f;
    size_t count = 0;
    while (in.p < in.end) { /* first pass: count the pieces */
        if (pb_next(&in, &f)) return bad(c, "not a SentencePiece model (malformed protobuf)");
        if (f.field == 1) count++;
    }
    if (count == 0 || count > MAX_PIECES) return bad(c, "no pieces, or more than 2^24");
    if (!(s->pieces = sv_alloc_array(count, sizeof *s->pieces, c->err, c->path))) return SV_FAIL;
    in.p = b;
    while (in.p < in.end) {
        pb_next(&in, &f);
        int rc = SV_OK;
        if (f.field >= 1 && f.field <= 3 && want(c, &f, 2, "of ModelProto")) return SV_FAIL;
        if (f.field == 1) rc = parse_piece(s, c, f.b, f.len);
        else if (f.field == 2) rc = parse_trainer(s, c, f.b, f.len);
        else if (f.field == 3) rc = parse_normalizer(s, c, f.b, f.len);
        if (rc) return SV_FAIL;
    }
    return SV_OK;
}

/* ------------------------------------------------------------------ lookups */

static uint64_t hash_bytes(const char *s, size_t n) { /* FNV-1a */
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static int *slot_of(const sv_spm *s, const char *p, size_t n) {
    for (size_t i = hash_bytes(p, n) & s->mask;; i = (i + 1) & s->mask) {
        int *slot = &s->slot[i];
        if (*slot == 0) return slot;
        const spm_piece *q = &s->pieces[*slot - 1];
        if (q->len == n && memcmp(q->s, p, n) == 0) return slot;
    }
}

static int lookup(const sv_spm *s, const char *p, size_t n) { return *slot_of(s, p, n) - 1; }

/* bpe_model.cc merges only into pieces_: normal, user-defined and unused pieces. */
static int mergeable(const sv_spm *s, const char *p, size_t n) {
    int id = lookup(s, p, n);
    if (id < 0) return -1;
    int t = s->pieces[id].type;
    return t == SV_SPM_NORMAL || t == SV_SPM_USER_DEFINED || t == SV_SPM_UNUSED ? id : -1;
}

static int build_table(sv_spm *s, const ctx *c) {
    size_t size = 16;
    while (size < 2 * (size_t)s->n) size <<= 1;
    s->mask = size - 1;
    if (!(s->slot = sv_alloc_array(size, sizeof *s->slot, c->err, c->path))) return SV_FAIL;
    for (int i = 0; i < s->n; i++) {
        int *slot = slot_of(s, s->pieces[i].s, s->pieces[i].len);
        if (*slot) return sv_fail(c->err, "%s: piece %d repeats piece %d", c->path, i, *slot - 1);
        *slot = i + 1;
        s->has_unused |= s->pieces[i].type == SV_SPM_UNUSED;
    }
    return SV_OK;
}

/* ------------------------------------------------------------------ validation */

static int check_id(const sv_spm *s, const ctx *c, int id, const char *name, int optional) {
    if ((optional && id == -1) || (id >= 0 && id < s->n)) return SV_OK;
    return sv_fail(c->err, "%s: trainer_spec.%s %d is not a piece id (0..%d)", c->path, name, id,
                   s->n - 1);
}

static int check_model(sv_spm *s, const ctx *c) {
    if (s->model_type != 2)
        return sv_fail(c->err, "%s: model_type %d is not supported (BPE, 2; unigram is 1)",
                       c->path, s->model_type);
    if (s->charsmap_len)
        return sv_fail(c->err, "%s: normalizer '%s' is not supported (identity only: no "
                               "precompiled_charsmap)", c->path, s->normalizer);
    if (s->whitespace_suffix)
        return bad(c, "treat_whitespace_as_suffix is not supported");
    for (int i = 0; i < s->n; i++)
        if (s->pieces[i].type == SV_SPM_USER_DEFINED)
            return sv_fail(c->err, "%s: user-defined piece %d is not supported", c->path, i);
    if (check_id(s, c, s->unk, "unk_id", 0) || check_id(s, c, s->bos, "bos_id", 1) ||
        check_id(s, c, s->eos, "eos_id", 1))
        return SV_FAIL;
    if (s->pieces[s->unk].type != SV_SPM_UNKNOWN)
        return sv_fail(c->err, "%s: unk_id %d is not an unknown-type piece", c->path, s->unk);
    for (int b = 0; b < 256; b++) {
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", b);
        s->byte_id[b] = s->byte_fallback ? lookup(s, name, 6) : -1;
        if (s->byte_fallback && (s->byte_id[b] < 0 || s->pieces[s->byte_id[b]].type != SV_SPM_BYTE))
            return sv_fail(c->err, "%s: byte_fallback is on but byte piece %s is missing", c->path,
                           name);
    }
    return SV_OK;
}

int sv_spm_parse(sv_spm **out, const unsigned char *data, size_t n, const char *path,
                 sv_error *err) {
    *out = NULL;
    ctx c = {path, err};
    sv_spm *s = sv_alloc_array(1, sizeof *s, err, path);
    if (!s) return SV_FAIL;
    /* proto2 defaults */
    s->model_type = 1, s->unk = 0, s->bos = 1, s->eos = 2;
    s->add_dummy_prefix = s->remove_extra_whitespaces = s->escape_whitespaces = 1;
    snprintf(s->normalizer, sizeof s->normalizer, "(unnamed)");
    if (!(s->data = malloc(n + 1))) {
        free(s);
        return sv_fail(err, "%s: out of memory", path);
    }
    memcpy(s->data, data, n);
    if (parse_model(s, &c, s->data, n) || build_table(s, &c) || check_model(s, &c)) {
        sv_spm_free(s);
        return SV_FAIL;
    }
    *out = s;
    return SV_OK;
}

int sv_spm_load(sv_spm **out, const char *path, sv_error *err) {
    *out = NULL;
    FILE *f = fopen(path, "rb");
    if (!f) return sv_fail(err, "%s: cannot open", path);
    unsigned char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && n < (1L << 30) &&
        fseek(f, 0, SEEK_SET) == 0)
        buf = malloc((size_t)n + 1);
    int rc = buf && fread(buf, 1, (size_t)n, f) == (size_t)n ? SV_OK
                                                              : sv_fail(err, "%s: cannot read", path);
    fclose(f);
    if (rc == SV_OK) rc = sv_spm_parse(out, buf, (size_t)n, path, err);
    free(buf);
    return rc;
}

void sv_spm_free(sv_spm *s) {
    if (!s) return;
    free(s->data);
    free(s->pieces);
    free(s->slot);
    free(s);
}

int sv_spm_size(const sv_spm *s) { return s->n; }
const char *sv_spm_piece(const sv_spm *s, int id, size_t *len) {
    *len = s->pieces[id].len;
    return s->pieces[id].s;
}
sv_spm_type sv_spm_type_of(const sv_spm *s, int id) { return (sv_spm_type)s->pieces[id].type; }
int sv_spm_bos(const sv_spm *s) { return s->bos; }
int sv_spm_eos(const sv_spm *s) { return s->eos; }

/* ------------------------------------------------------------------ encoding */

/* A growable array of ints. */
typedef struct {
    int *v;
    size_t n, cap;
} ints;

static int ints_push(ints *a, int x, sv_error *err) {
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 64;
        int *v = realloc(a->v, cap * sizeof *v);
        if (!v) return sv_fail(err, "tokenizer.model: out of memory");
        a->v = v, a->cap = cap;
    }
    a->v[a->n++] = x;
    return SV_OK;
}

/* Normalizer::Normalize with the identity map: the dummy prefix, spaces made
 * U+2581, and with remove_extra_whitespaces leading, trailing and repeated
 * spaces dropped. Text that is all spaces (or empty) normalises to nothing. */
static char *normalize(const sv_spm *s, const char *t, size_t n, size_t *out_len, sv_error *err) {
    char *out = malloc(3 * n + 4), *o = out;
    if (!out) {
        sv_fail(err, "tokenizer.model: out of memory");
        return NULL;
    }
    size_t i = 0;
    if (s->remove_extra_whitespaces)
        while (i < n && t[i] == ' ') i++;
    if (i < n) {
        const char *space = s->escape_whitespaces ? SPACE_SYMBOL : " ";
        size_t space_len = strlen(space);
        int prev_space = s->remove_extra_whitespaces;
        if (s->add_dummy_prefix) memcpy(o, space, space_len), o += space_len;
        for (; i < n; i++) {
            if (t[i] == ' ' && prev_space) continue;
            if (t[i] == ' ') memcpy(o, space, space_len), o += space_len;
            else *o++ = t[i];
            prev_space = t[i] == ' ' && s->remove_extra_whitespaces;
        }
        while (s->remove_extra_whitespaces && o - out >= (ptrdiff_t)space_len &&
               memcmp(o - space_len, space, space_len) == 0)
            o -= space_len;
    }
    *out_len = (size_t)(o - out);
    return out;
}

typedef struct {
    size_t start, len; /* bytes of the normalised text; len 0 once merged away */
    int prev, next;
} symbol;

typedef struct {
    float score;
    int left, right;
    size_t size;
} pair;

/* bpe_model.cc's agenda order: higher score first, then the leftmost. */
static int pair_before(const pair *a, const pair *b) {
    return a->score > b->score || (a->score == b->score && a->left < b->left);
}

typedef struct {
    pair *h;
    size_t n, cap;
} agenda;

static int agenda_push(agenda *a, pair p, sv_error *err) {
    if (a->n == a->cap) {
        size_t cap = a->cap ? 2 * a->cap : 64;
        pair *h = realloc(a->h, cap * sizeof *h);
        if (!h) return sv_fail(err, "tokenizer.model: out of memory");
        a->h = h, a->cap = cap;
    }
    size_t i = a->n++;
    for (; i > 0 && pair_before(&p, &a->h[(i - 1) / 2]); i = (i - 1) / 2) a->h[i] = a->h[(i - 1) / 2];
    a->h[i] = p;
    return SV_OK;
}

static pair agenda_pop(agenda *a) {
    pair top = a->h[0], last = a->h[--a->n];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= a->n) break;
        if (c + 1 < a->n && pair_before(&a->h[c + 1], &a->h[c])) c++;
        if (!pair_before(&a->h[c], &last)) break;
        a->h[i] = a->h[c];
        i = c;
    }
    if (a->n) a->h[i] = last;
    return top;
}

/* The state of one encode: the text, its symbols, the agenda, and for unused
 * pieces the split each was last made from (rev_merge, for resegmenting). */
typedef struct {
    const sv_spm *s;
    const char *text;
    symbol *sym;
    agenda ag;
    size_t (*rev)[4]; /* [n pieces]: left start, len, right start, len; NULL: no unused pieces */
    sv_error *err;
} encoder;

/* MaybeAddNewSymbolPair */
static int add_pair(encoder *e, int left, int right) {
    if (left < 0 || right < 0) return SV_OK;
    const symbol *l = &e->sym[left], *r = &e->sym[right];
    int id = mergeable(e->s, e->text + l->start, l->len + r->len);
    if (id < 0) return SV_OK;
    if (e->rev && e->s->pieces[id].type == SV_SPM_UNUSED)
        memcpy(e->rev[id], (size_t[4]){l->start, l->len, r->start, r->len}, sizeof e->rev[id]);
    return agenda_push(&e->ag, (pair){e->s->pieces[id].score, left, right, l->len + r->len},
                       e->err);
}

static int merge_all(encoder *e, int n_sym) {
    for (int i = 0; i + 1 < n_sym; i++)
        if (add_pair(e, i, i + 1)) return SV_FAIL;
    while (e->ag.n) {
        pair p = agenda_pop(&e->ag);
        symbol *l = &e->sym[p.left], *r = &e->sym[p.right];
        if (!l->len || !r->len || l->len + r->len != p.size) continue; /* stale */
        l->len += r->len;
        r->len = 0;
        l->next = r->next;
        if (r->next >= 0) e->sym[r->next].prev = p.left;
        if (add_pair(e, l->prev, p.left) || add_pair(e, p.left, l->next)) return SV_FAIL;
    }
    return SV_OK;
}

/* Unknown text becomes its bytes when byte_fallback is on. */
static int emit(encoder *e, size_t start, size_t len, ints *out) {
    const sv_spm *s = e->s;
    int id = lookup(s, e->text + start, len);
    if (id >= 0 && id != s->unk) return ints_push(out, id, e->err);
    if (!s->byte_fallback) return ints_push(out, s->unk, e->err);
    for (size_t i = 0; i < len; i++)
        if (ints_push(out, s->byte_id[(unsigned char)e->text[start + i]], e->err)) return SV_FAIL;
    return SV_OK;
}

/* resegment: an unused piece is split back into the pieces it was merged
 * from, with an explicit stack (a split is always shorter, so it ends). */
static int resegment(encoder *e, size_t start, size_t len, ints *out) {
    ints stack = {0};
    int rc = ints_push(&stack, (int)start, e->err) || ints_push(&stack, (int)len, e->err);
    while (!rc && stack.n) {
        size_t l = (size_t)stack.v[--stack.n], st = (size_t)stack.v[--stack.n];
        int id = lookup(e->s, e->text + st, l);
        const size_t *split = e->rev && id >= 0 && e->s->pieces[id].type == SV_SPM_UNUSED &&
                                      e->rev[id][1] ? e->rev[id] : NULL;
        if (!split) rc = emit(e, st, l, out);
        else rc = ints_push(&stack, (int)split[2], e->err) ||
                  ints_push(&stack, (int)split[3], e->err) ||
                  ints_push(&stack, (int)split[0], e->err) ||
                  ints_push(&stack, (int)split[1], e->err);
    }
    free(stack.v);
    return rc ? SV_FAIL : SV_OK;
}

static int encode_normalized(encoder *e, size_t n, ints *out) {
    int n_sym = 0, rc = SV_OK;
    for (size_t i = 0; i < n; n_sym++) { /* one symbol per UTF-8 character */
        unsigned char c = (unsigned char)e->text[i];
        size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
        if (len > n - i) len = n - i;
        e->sym[n_sym] = (symbol){i, len, n_sym - 1, i + len < n ? n_sym + 1 : -1};
        i += len;
    }
    rc = merge_all(e, n_sym);
    for (int i = 0; rc == SV_OK && n_sym && i >= 0; i = e->sym[i].next)
        rc = resegment(e, e->sym[i].start, e->sym[i].len, out);
    return rc;
}

int sv_spm_encode(const sv_spm *s, const char *text, size_t n, int **ids, size_t *n_ids,
                  sv_error *err) {
    *ids = NULL, *n_ids = 0;
    if (n > (1u << 28)) return sv_fail(err, "tokenizer.model: text longer than 256 MB");
    size_t len = 0;
    char *norm = normalize(s, text, n, &len, err);
    if (!norm) return SV_FAIL;
    encoder e = {s, norm, sv_alloc_array(len + 1, sizeof *e.sym, err, "tokenizer.model"),
                 {0}, NULL, err};
    if (s->has_unused && e.sym)
        e.rev = sv_alloc_array((size_t)s->n, sizeof *e.rev, err, "tokenizer.model");
    ints out = {0};
    int rc = e.sym && (!s->has_unused || e.rev) ? encode_normalized(&e, len, &out) : SV_FAIL;
    free(e.sym), free(e.ag.h), free(e.rev), free(norm);
    if (rc) return free(out.v), SV_FAIL;
    *ids = out.v, *n_ids = out.n;
    return SV_OK;
}
