/* The restricted unpickler (pickle.h). The opcodes and their arguments are
 * those of CPython's Lib/pickle.py (protocols 2-5); what torch.save writes for
 * a tensor is torch/_tensor.py __reduce_ex__ -> _rebuild_tensor_v2(storage,
 * storage_offset, size, stride, requires_grad, backward_hooks), the storage
 * coming from the persistent id ('storage', <type>, key, location, numel)
 * (torch/serialization.py _save). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pickle.h"

#define MAX_MEMO ((size_t)1 << 20)
#define MAX_OBJECTS ((size_t)1 << 21)

typedef enum { O_NONE, O_BOOL, O_INT, O_STR, O_TUPLE, O_LIST, O_DICT, O_GLOBAL, O_STORAGE,
               O_TENSOR, O_MARK } kind;

typedef struct obj {
    kind kind;
    int depth;                 /* nesting: 0 for scalars */
    int64_t i;                 /* INT, BOOL; GLOBAL: index into allowed[]; STORAGE: numel */
    const char *s;             /* STR (into the pickle, not NUL-terminated) */
    size_t len;
    struct obj **items;        /* TUPLE, LIST; DICT: key, value, key, value, ...;
                                  STORAGE: {type GLOBAL, key STR} */
    size_t n, cap;
    sv_pickle_tensor *tensor;  /* TENSOR */
    struct obj *next_alloc;    /* every object, for freeing */
} obj;

/* The globals a state dict needs. Storage types of other dtypes are known by
 * name so that their tensors (CLIP's int64 position_ids) can be passed over. */
typedef enum { G_ORDERED_DICT, G_REBUILD_TENSOR, G_STORAGE } global_role;

static const struct {
    const char *module, *name;
    global_role role;
    int supported;
    sv_dtype dtype;
} allowed[] = {
    {"collections", "OrderedDict", G_ORDERED_DICT, 0, SV_DTYPE_F32},
    {"torch._utils", "_rebuild_tensor_v2", G_REBUILD_TENSOR, 0, SV_DTYPE_F32},
    {"torch", "FloatStorage", G_STORAGE, 1, SV_DTYPE_F32},
    {"torch", "HalfStorage", G_STORAGE, 1, SV_DTYPE_F16},
    {"torch", "BFloat16Storage", G_STORAGE, 1, SV_DTYPE_BF16},
    {"torch", "DoubleStorage", G_STORAGE, 0, SV_DTYPE_F32},
    {"torch", "LongStorage", G_STORAGE, 0, SV_DTYPE_F32},
    {"torch", "IntStorage", G_STORAGE, 0, SV_DTYPE_F32},
    {"torch", "ShortStorage", G_STORAGE, 0, SV_DTYPE_F32},
    {"torch", "CharStorage", G_STORAGE, 0, SV_DTYPE_F32},
    {"torch", "ByteStorage", G_STORAGE, 0, SV_DTYPE_F32},
    {"torch", "BoolStorage", G_STORAGE, 0, SV_DTYPE_F32},
};
#define N_ALLOWED (sizeof allowed / sizeof *allowed)

typedef struct machine {
    const unsigned char *start, *p, *end;
    const char *path;
    sv_error *err;
    obj **stack;
    size_t sp, stack_cap;
    obj **memo;
    size_t memo_cap, memo_len; /* memo_len: entries stored, as len(memo) */
    obj *all;
    size_t n_objs;
} machine;

static obj mark_obj = {.kind = O_MARK};

/* ------------------------------------------------------------------ objects */

static int fail_at(machine *m, const char *what) {
    return sv_fail(m->err, "%s: byte %td: %s", m->path, m->p - m->start - 1, what);
}

static obj *new_obj(machine *m, kind k) {
    if (m->n_objs >= MAX_OBJECTS) {
        fail_at(m, "more than 2^21 objects (a pickle bomb?)");
        return NULL;
    }
    obj *o = calloc(1, sizeof *o);
    if (!o) {
        sv_fail(m->err, "%s: out of memory", m->path);
        return NULL;
    }
    o->kind = k;
    o->next_alloc = m->all;
    m->all = o;
    m->n_objs++;
    return o;
}

/* Appends child to a container, keeping its nesting depth bounded. */
static int add_item(machine *m, obj *o, obj *child) {
    if (child->depth + 1 > o->depth) o->depth = child->depth + 1;
    if (o->depth > SV_PICKLE_MAX_DEPTH)
        return fail_at(m, "objects nested deeper than " "32 levels (a pickle bomb?)");
    if (o->n == o->cap) {
        size_t cap = o->cap ? 2 * o->cap : 4;
        obj **items = realloc(o->items, cap * sizeof *items);
        if (!items) return sv_fail(m->err, "%s: out of memory", m->path);
        o->items = items, o->cap = cap;
    }
    o->items[o->n++] = child;
    return SV_OK;
}

static int push(machine *m, obj *o) {
    if (!o) return SV_FAIL;
    if (m->sp == m->stack_cap) {
        size_t cap = m->stack_cap ? 2 * m->stack_cap : 64;
        obj **s = realloc(m->stack, cap * sizeof *s);
        if (!s) return sv_fail(m->err, "%s: out of memory", m->path);
        m->stack = s, m->stack_cap = cap;
    }
    m->stack[m->sp++] = o;
    return SV_OK;
}

static obj *pop(machine *m) {
    if (m->sp == 0 || m->stack[m->sp - 1] == &mark_obj) {
        fail_at(m, "stack underflow");
        return NULL;
    }
    return m->stack[--m->sp];
}

static obj *top(machine *m) {
    if (m->sp == 0 || m->stack[m->sp - 1] == &mark_obj) {
        fail_at(m, "stack underflow");
        return NULL;
    }
    return m->stack[m->sp - 1];
}

/* Index of the topmost mark; SIZE_MAX (and an error) if there is none. */
static size_t find_mark(machine *m) {
    for (size_t i = m->sp; i-- > 0;)
        if (m->stack[i] == &mark_obj) return i;
    fail_at(m, "no mark on the stack");
    return SIZE_MAX;
}

/* ------------------------------------------------------------------ operands */

static int take(machine *m, size_t n, const unsigned char **out) {
    if ((size_t)(m->end - m->p) < n) return fail_at(m, "operand runs past the end (truncated)");
    *out = m->p;
    m->p += n;
    return SV_OK;
}

static int take_le(machine *m, int bytes, uint64_t *v) {
    const unsigned char *b = NULL;
    if (take(m, (size_t)bytes, &b)) return SV_FAIL;
    *v = 0;
    for (int i = bytes - 1; i >= 0; i--) *v = *v << 8 | b[i];
    return SV_OK;
}

static int push_int(machine *m, int64_t v) {
    obj *o = new_obj(m, O_INT);
    if (o) o->i = v;
    return push(m, o);
}

/* LONG1: n little-endian two's-complement bytes; a state dict needs at most 8. */
static int op_long1(machine *m) {
    uint64_t n, v = 0;
    const unsigned char *b = NULL;
    if (take_le(m, 1, &n) || take(m, n, &b)) return SV_FAIL;
    if (n > 8) return fail_at(m, "integer wider than 64 bits");
    for (size_t i = n; i-- > 0;) v = v << 8 | b[i];
    if (n > 0 && n < 8 && (b[n - 1] & 0x80)) v |= ~(uint64_t)0 << (8 * n);
    return push_int(m, (int64_t)v);
}

static int op_string(machine *m, int len_bytes) {
    uint64_t n;
    const unsigned char *b = NULL;
    if (take_le(m, len_bytes, &n) || take(m, n, &b)) return SV_FAIL;
    obj *o = new_obj(m, O_STR);
    if (o) o->s = (const char *)b, o->len = n;
    return push(m, o);
}

/* ------------------------------------------------------------------ globals */

static int resolve_global(machine *m, const char *mod, size_t mod_len, const char *name,
                          size_t name_len) {
    for (size_t i = 0; i < N_ALLOWED; i++)
        if (strlen(allowed[i].module) == mod_len && !memcmp(allowed[i].module, mod, mod_len) &&
            strlen(allowed[i].name) == name_len && !memcmp(allowed[i].name, name, name_len)) {
            obj *o = new_obj(m, O_GLOBAL);
            if (o) o->i = (int64_t)i;
            return push(m, o);
        }
    char shown[160];
    int k = snprintf(shown, sizeof shown, "%.*s.%.*s", (int)(mod_len < 64 ? mod_len : 64), mod,
                     (int)(name_len < 64 ? name_len : 64), name);
    for (int i = 0; i < k && i < (int)sizeof shown; i++)
        if ((unsigned char)shown[i] < 0x20 || (unsigned char)shown[i] >= 0x7f) shown[i] = '?';
    return sv_fail(m->err, "%s: global '%s' is not allowed: a state dict needs only "
                           "collections.OrderedDict, torch._utils._rebuild_tensor_v2 and "
                           "torch.*Storage", m->path, shown);
}

/* GLOBAL: "module\nname\n" */
static int op_global(machine *m) {
    const unsigned char *mod = m->p, *nl1 = memchr(m->p, '\n', (size_t)(m->end - m->p));
    const unsigned char *nl2 = nl1 ? memchr(nl1 + 1, '\n', (size_t)(m->end - nl1 - 1)) : NULL;
    if (!nl2) return fail_at(m, "GLOBAL operand runs past the end (truncated)");
    m->p = nl2 + 1;
    return resolve_global(m, (const char *)mod, (size_t)(nl1 - mod), (const char *)nl1 + 1,
                          (size_t)(nl2 - nl1 - 1));
}

static int op_stack_global(machine *m) {
    obj *name = pop(m), *mod = name ? pop(m) : NULL;
    if (!mod) return SV_FAIL;
    if (mod->kind != O_STR || name->kind != O_STR)
        return fail_at(m, "STACK_GLOBAL needs two strings");
    return resolve_global(m, mod->s, mod->len, name->s, name->len);
}

/* ------------------------------------------------------------------ containers */

static int op_tuple_n(machine *m, size_t n) {
    if (m->sp < n) return fail_at(m, "stack underflow");
    obj *t = new_obj(m, O_TUPLE);
    if (!t) return SV_FAIL;
    for (size_t i = m->sp - n; i < m->sp; i++) {
        if (m->stack[i] == &mark_obj) return fail_at(m, "stack underflow");
        if (add_item(m, t, m->stack[i])) return SV_FAIL;
    }
    m->sp -= n;
    return push(m, t);
}

static int op_tuple_from_mark(machine *m) {
    size_t mark = find_mark(m);
    if (mark == SIZE_MAX) return SV_FAIL;
    obj *t = new_obj(m, O_TUPLE);
    if (!t) return SV_FAIL;
    for (size_t i = mark + 1; i < m->sp; i++)
        if (add_item(m, t, m->stack[i])) return SV_FAIL;
    m->sp = mark;
    return push(m, t);
}

/* APPEND(S) and SETITEM(S): the items above index `from` go into the container below it. */
static int fill_container(machine *m, size_t from, kind want, int per_item) {
    if (from == 0) return fail_at(m, "stack underflow");
    obj *c = m->stack[from - 1];
    if (c == &mark_obj || c->kind != want)
        return fail_at(m, want == O_DICT ? "SETITEM(S) on something that is not a dict"
                                         : "APPEND(S) on something that is not a list");
    if ((m->sp - from) % (size_t)per_item) return fail_at(m, "SETITEMS with an odd item count");
    for (size_t i = from; i < m->sp; i++)
        if (add_item(m, c, m->stack[i])) return SV_FAIL;
    m->sp = from;
    return SV_OK;
}

static int op_fill_from_mark(machine *m, kind want, int per_item) {
    size_t mark = find_mark(m);
    if (mark == SIZE_MAX) return SV_FAIL;
    memmove(m->stack + mark, m->stack + mark + 1, (m->sp - mark - 1) * sizeof *m->stack);
    m->sp--;
    return fill_container(m, mark, want, per_item);
}

static int op_fill_n(machine *m, kind want, size_t n) {
    if (m->sp < n) return fail_at(m, "stack underflow");
    for (size_t i = m->sp - n; i < m->sp; i++)
        if (m->stack[i] == &mark_obj) return fail_at(m, "stack underflow");
    return fill_container(m, m->sp - n, want, (int)n);
}

/* ------------------------------------------------------------------ memo */

static int memo_put(machine *m, uint64_t index) {
    obj *o = top(m);
    if (!o) return SV_FAIL;
    if (index >= MAX_MEMO) return fail_at(m, "memo index beyond 2^20 (a pickle bomb?)");
    if (index >= m->memo_cap) {
        size_t cap = m->memo_cap ? m->memo_cap : 64;
        while (cap <= index) cap *= 2;
        obj **memo = realloc(m->memo, cap * sizeof *memo);
        if (!memo) return sv_fail(m->err, "%s: out of memory", m->path);
        memset(memo + m->memo_cap, 0, (cap - m->memo_cap) * sizeof *memo);
        m->memo = memo, m->memo_cap = cap;
    }
    if (!m->memo[index]) m->memo_len++;
    m->memo[index] = o;
    return SV_OK;
}

static int memo_get(machine *m, uint64_t index) {
    if (index >= m->memo_cap || !m->memo[index]) return fail_at(m, "memo entry never stored");
    return push(m, m->memo[index]);
}

/* ------------------------------------------------------------------ torch */

static int is_int(const obj *o, int64_t min) { return o->kind == O_INT && o->i >= min; }

/* BINPERSID with ('storage', <storage type>, key, location, numel). */
static int op_persistent(machine *m) {
    obj *pid = pop(m);
    if (!pid) return SV_FAIL;
    obj **f = pid->items;
    if (pid->kind != O_TUPLE || pid->n != 5 || f[0]->kind != O_STR || f[0]->len != 7 ||
        memcmp(f[0]->s, "storage", 7) || f[1]->kind != O_GLOBAL ||
        allowed[f[1]->i].role != G_STORAGE || f[2]->kind != O_STR || f[3]->kind != O_STR ||
        !is_int(f[4], 0))
        return fail_at(m, "persistent id is not ('storage', <storage type>, key, location, "
                          "numel)");
    obj *s = new_obj(m, O_STORAGE);
    if (!s) return SV_FAIL;
    s->i = f[4]->i;
    if (add_item(m, s, f[1]) || add_item(m, s, f[2])) return SV_FAIL;
    return push(m, s);
}

static char *copy_str(machine *m, const obj *s) {
    if (memchr(s->s, 0, s->len)) {
        fail_at(m, "string holds a NUL byte");
        return NULL;
    }
    char *c = malloc(s->len + 1);
    if (!c) {
        sv_fail(m->err, "%s: out of memory", m->path);
        return NULL;
    }
    memcpy(c, s->s, s->len);
    c[s->len] = 0;
    return c;
}

/* size or stride: a tuple of at most SV_TENSOR_MAX_DIMS non-negative ints. */
static int dims(const obj *t, int64_t *out, int *ndim) {
    if (t->kind != O_TUPLE || t->n > SV_TENSOR_MAX_DIMS) return SV_FAIL;
    for (size_t i = 0; i < t->n; i++) {
        if (!is_int(t->items[i], 0)) return SV_FAIL;
        out[i] = t->items[i]->i;
    }
    *ndim = (int)t->n;
    return SV_OK;
}

/* _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad,
 * backward_hooks[, metadata]) */
static int rebuild_tensor(machine *m, const obj *args) {
    obj **a = args->items;
    int ndim = 0, nstride = -1;
    sv_pickle_tensor t = {0};
    if (args->n < 6 || args->n > 7 || a[0]->kind != O_STORAGE || !is_int(a[1], 0) ||
        dims(a[2], t.shape, &ndim) || dims(a[3], t.stride, &nstride) || ndim != nstride ||
        a[4]->kind != O_BOOL || a[5]->kind != O_DICT || a[5]->n != 0)
        return fail_at(m, "_rebuild_tensor_v2 arguments are not (storage, offset, size, "
                          "stride, requires_grad, {})");
    const obj *type = a[0]->items[0];
    t.storage_type = allowed[type->i].name;
    t.supported = allowed[type->i].supported;
    t.dtype = allowed[type->i].dtype;
    t.storage_numel = a[0]->i;
    t.offset = a[1]->i;
    t.ndim = ndim;
    obj *o = new_obj(m, O_TENSOR);
    if (!o || !(o->tensor = malloc(sizeof t))) return o ? sv_fail(m->err, "%s: out of memory",
                                                                   m->path) : SV_FAIL;
    if (!(t.storage_key = copy_str(m, a[0]->items[1]))) return SV_FAIL;
    *o->tensor = t;
    return push(m, o);
}

static int op_reduce(machine *m) {
    obj *args = pop(m), *f = args ? pop(m) : NULL;
    if (!f) return SV_FAIL;
    if (f->kind != O_GLOBAL || args->kind != O_TUPLE)
        return fail_at(m, "REDUCE needs a global and an argument tuple");
    switch (allowed[f->i].role) {
    case G_ORDERED_DICT:
        if (args->n) return fail_at(m, "OrderedDict called with arguments");
        return push(m, new_obj(m, O_DICT));
    case G_REBUILD_TENSOR: return rebuild_tensor(m, args);
    default: return fail_at(m, "a storage type is called");
    }
}

/* BUILD on an OrderedDict sets attributes (state_dict's _metadata: module
 * versions), which loading does not need. */
static int op_build(machine *m) {
    obj *state = pop(m), *o = state ? top(m) : NULL;
    if (!o) return SV_FAIL;
    if (o->kind != O_DICT || (state->kind != O_DICT && state->kind != O_NONE))
        return fail_at(m, "BUILD on something other than an OrderedDict");
    return SV_OK;
}

/* ------------------------------------------------------------------ the machine */

static int step(machine *m, unsigned char op, int *stop) {
    uint64_t v;
    switch (op) {
    case 0x80:
        if (take_le(m, 1, &v)) return SV_FAIL;
        return v < 2 || v > 5 ? fail_at(m, "pickle protocol is not 2 to 5") : SV_OK;
    case 0x95: return take_le(m, 8, &v); /* FRAME: a length hint */
    case '.': *stop = 1; return SV_OK;
    case '(': return push(m, &mark_obj);
    case '}': return push(m, new_obj(m, O_DICT));
    case ']': return push(m, new_obj(m, O_LIST));
    case ')': return push(m, new_obj(m, O_TUPLE));
    case 't': return op_tuple_from_mark(m);
    case 0x85: case 0x86: case 0x87: return op_tuple_n(m, (size_t)(op - 0x84));
    case 'J': return take_le(m, 4, &v) || push_int(m, (int32_t)(uint32_t)v);
    case 'K': return take_le(m, 1, &v) || push_int(m, (int64_t)v);
    case 'M': return take_le(m, 2, &v) || push_int(m, (int64_t)v);
    case 0x8a: return op_long1(m);
    case 'N': return push(m, new_obj(m, O_NONE));
    case 0x88: case 0x89: {
        obj *o = new_obj(m, O_BOOL);
        if (o) o->i = op == 0x88;
        return push(m, o);
    }
    case 'X': return op_string(m, 4);
    case 0x8c: return op_string(m, 1);
    case 0x8d: return op_string(m, 8);
    case 'c': return op_global(m);
    case 0x93: return op_stack_global(m);
    case 'q': return take_le(m, 1, &v) || memo_put(m, v);
    case 'r': return take_le(m, 4, &v) || memo_put(m, v);
    case 0x94: return memo_put(m, m->memo_len); /* MEMOIZE */
    case 'h': return take_le(m, 1, &v) || memo_get(m, v);
    case 'j': return take_le(m, 4, &v) || memo_get(m, v);
    case 'R': return op_reduce(m);
    case 'b': return op_build(m);
    case 's': return op_fill_n(m, O_DICT, 2);
    case 'u': return op_fill_from_mark(m, O_DICT, 2);
    case 'a': return op_fill_n(m, O_LIST, 1);
    case 'e': return op_fill_from_mark(m, O_LIST, 1);
    case 'Q': return op_persistent(m);
    default: {
        char what[96];
        snprintf(what, sizeof what, "opcode 0x%02x is not one a state dict uses", op);
        return fail_at(m, what);
    }
    }
}

/* The finished state dict, as tensor records in pickle order. */
static int collect(machine *m, const obj *d, sv_pickle_tensor **out, size_t *n) {
    if (d->kind != O_DICT) return sv_fail(m->err, "%s: the pickle is not a state dict (a dict "
                                                  "of tensors)", m->path);
    size_t count = d->n / 2, kept = 0;
    sv_pickle_tensor *t = sv_alloc_array(count + 1, sizeof *t, m->err, m->path);
    if (!t) return SV_FAIL;
    int rc = SV_OK;
    for (size_t i = 0; i < count && rc == SV_OK; i++) {
        const obj *key = d->items[2 * i], *val = d->items[2 * i + 1];
        if (key->kind != O_STR || val->kind != O_TENSOR) {
            rc = sv_fail(m->err, "%s: state dict entry %zu is not a name and a tensor", m->path,
                         i);
            break;
        }
        t[kept] = *val->tensor;
        if (!(t[kept].name = copy_str(m, key))) {
            rc = SV_FAIL;
        } else if (!(t[kept].storage_key = strdup(val->tensor->storage_key))) {
            free(t[kept].name);
            rc = sv_fail(m->err, "%s: out of memory", m->path);
        } else {
            kept++;
        }
    }
    if (rc != SV_OK) {
        sv_pickle_tensors_free(t, kept);
        return SV_FAIL;
    }
    *out = t, *n = kept;
    return SV_OK;
}

static void machine_free(machine *m) {
    for (obj *o = m->all; o;) {
        obj *next = o->next_alloc;
        if (o->tensor) free(o->tensor->storage_key);
        free(o->tensor);
        free(o->items);
        free(o);
        o = next;
    }
    free(m->stack);
    free(m->memo);
}

int sv_pickle_state_dict(const unsigned char *data, size_t len, const char *path,
                         sv_pickle_tensor **out, size_t *n, sv_error *err) {
    *out = NULL, *n = 0;
    if (len > SV_PICKLE_MAX_BYTES)
        return sv_fail(err, "%s: %zu bytes of pickle, more than the %zu-byte limit", path, len,
                       SV_PICKLE_MAX_BYTES);
    machine m = {.start = data, .p = data, .end = data + len, .path = path, .err = err};
    int stop = 0, rc = SV_OK;
    while (rc == SV_OK && !stop) {
        if (m.p == m.end) {
            rc = sv_fail(err, "%s: pickle ends without STOP (truncated)", path);
            break;
        }
        rc = step(&m, *m.p++, &stop);
    }
    if (rc == SV_OK && m.sp != 1)
        rc = sv_fail(err, "%s: pickle leaves %zu objects on the stack, not 1", path, m.sp);
    if (rc == SV_OK && m.stack[0] == &mark_obj)
        rc = sv_fail(err, "%s: pickle leaves a mark on the stack", path);
    if (rc == SV_OK) rc = collect(&m, m.stack[0], out, n);
    machine_free(&m);
    return rc ? SV_FAIL : SV_OK;
}

void sv_pickle_tensors_free(sv_pickle_tensor *t, size_t n) {
    for (size_t i = 0; t && i < n; i++) free(t[i].name), free(t[i].storage_key);
    free(t);
}
