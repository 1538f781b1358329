#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model.h"

#include "llava_original.h"

/* Tensor-name prefixes of the two llava-hf layouts (transformers < 4.52 and >= 4.52)
 * and of the original one (its tower's own checkpoint holds vision_model.*). */
typedef struct layout {
    const char *vision, *projector, *llm, *head; /* head: prefix of "lm_head" */
    const char *top;                             /* prefix of "image_newline" */
    const char *proj1, *proj2;                   /* the projector's two linears */
} layout;

static const layout old_layout = {"vision_tower.vision_model.", "multi_modal_projector.",
                                  "language_model.model.", "language_model.", "",
                                  "linear_1", "linear_2"};
static const layout new_layout = {"model.vision_tower.vision_model.",
                                  "model.multi_modal_projector.", "model.language_model.",
                                  "", "model.", "linear_1", "linear_2"};
static const layout original_layout = {"vision_model.", "model.mm_projector.", "model.", "",
                                       "model.", "0", "2"};

/* Binding state: the first failure is kept in err, later lookups are skipped.
 * Tensors are looked up in w, which lives in dir. */
typedef struct binder {
    sv_model *m;
    const sv_weights *w;
    const char *dir;
    sv_error *err;
    int failed;
} binder;

typedef struct owned_block {
    struct owned_block *next;
    float data[];
} owned_block;

static void format_shape(char *buf, size_t size, int ndim, const int64_t *shape) {
    size_t n = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && n < size; i++)
        n += (size_t)snprintf(buf + n, size - n, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (n < size) snprintf(buf + n, size - n, "]");
}

/* Looks up prefix+name and checks it against the shape config.json implies. */
static const sv_tensor *bind(binder *b, const char *prefix, const char *name, int ndim,
                             const int64_t *shape) {
    if (b->failed) return NULL;
    char full[512];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    const sv_tensor *t = sv_weights_find(b->w, full);
    if (!t) {
        const char *stored = sv_weights_unloadable_dtype(b->w, full);
        b->failed = 1;
        if (stored)
            sv_fail(b->err, "%s: tensor '%s' is stored as %s; weights must be F32, F16 or BF16",
                    b->dir, full, stored);
        else
            sv_fail(b->err, "%s: missing tensor '%s' (required by config.json)", b->dir, full);
        return NULL;
    }
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same) {
        char got[128], want[128];
        format_shape(got, sizeof got, t->ndim, t->shape);
        format_shape(want, sizeof want, ndim, shape);
        b->failed = 1;
        sv_fail(b->err, "%s: tensor '%s' has shape %s but config.json implies %s", t->file, full,
                got, want);
        return NULL;
    }
    return t;
}

/* An fp32 copy of a (small) tensor, owned by the model. */
static const float *bind_f32(binder *b, const char *prefix, const char *name, int ndim,
                             const int64_t *shape) {
    const sv_tensor *t = bind(b, prefix, name, ndim, shape);
    if (!t) return NULL;
    owned_block *blk = malloc(sizeof *blk + t->count * sizeof(float));
    if (!blk) {
        b->failed = 1;
        sv_fail(b->err, "%s: out of memory", b->m->dir);
        return NULL;
    }
    sv_to_f32(t->dtype, t->data, blk->data, t->count);
    blk->next = b->m->owned;
    b->m->owned = blk;
    return blk->data;
}

static const float *bind_vec(binder *b, const char *prefix, const char *name, int64_t d) {
    return bind_f32(b, prefix, name, 1, &d);
}

static sv_linear bind_linear(binder *b, const char *prefix, const char *name, int out, int in,
                             int has_bias) {
    char full[256];
    int64_t shape[2] = {out, in};
    sv_linear l = {.in = in, .out = out};
    snprintf(full, sizeof full, "%s.weight", name);
    l.w = bind(b, prefix, full, 2, shape);
    if (has_bias) {
        snprintf(full, sizeof full, "%s.bias", name);
        l.bias = bind_vec(b, prefix, full, out);
    }
    return l;
}

static sv_norm bind_norm(binder *b, const char *prefix, const char *name, int d, int has_bias) {
    char full[256];
    sv_norm n = {0};
    snprintf(full, sizeof full, "%s.weight", name);
    n.w = bind_vec(b, prefix, full, d);
    if (has_bias) {
        snprintf(full, sizeof full, "%s.bias", name);
        n.b = bind_vec(b, prefix, full, d);
    }
    return n;
}

static void bind_vision(binder *b, const char *vp) {
    sv_model *m = b->m;
    const sv_vision_config *v = &m->cfg.vision;
    int dv = v->hidden, p = v->patch_size, grid = v->image_size / p;
    int64_t patch_shape[4] = {dv, 3, p, p}, pos_shape[2] = {(int64_t)grid * grid + 1, dv};
    m->class_emb = bind_vec(b, vp, "embeddings.class_embedding", dv);
    m->patch.w = bind(b, vp, "embeddings.patch_embedding.weight", 4, patch_shape);
    m->patch.in = 3 * p * p;
    m->patch.out = dv;
    m->pos_emb = bind_f32(b, vp, "embeddings.position_embedding.weight", 2, pos_shape);
    m->pre_ln = bind_norm(b, vp, "pre_layrnorm", dv, 1);
    for (int i = 0; i < m->cfg.n_vision_layers_run; i++) {
        char lp[256];
        snprintf(lp, sizeof lp, "%sencoder.layers.%d.", vp, i);
        sv_vision_layer *L = &m->vlayers[i];
        L->ln1 = bind_norm(b, lp, "layer_norm1", dv, 1);
        L->ln2 = bind_norm(b, lp, "layer_norm2", dv, 1);
        L->q = bind_linear(b, lp, "self_attn.q_proj", dv, dv, 1);
        L->k = bind_linear(b, lp, "self_attn.k_proj", dv, dv, 1);
        L->v = bind_linear(b, lp, "self_attn.v_proj", dv, dv, 1);
        L->o = bind_linear(b, lp, "self_attn.out_proj", dv, dv, 1);
        L->fc1 = bind_linear(b, lp, "mlp.fc1", v->inter, dv, 1);
        L->fc2 = bind_linear(b, lp, "mlp.fc2", dv, v->inter, 1);
    }
}

static void bind_llm(binder *b, const layout *lay) {
    sv_model *m = b->m;
    const sv_text_config *t = &m->cfg.text;
    int h = t->hidden, qd = t->n_heads * t->head_dim, kvd = t->n_kv_heads * t->head_dim;
    int64_t embed_shape[2] = {t->vocab, h};
    m->proj1 = bind_linear(b, lay->projector, lay->proj1, h, m->cfg.vision.hidden, 1);
    m->proj2 = bind_linear(b, lay->projector, lay->proj2, h, h, 1);
    if (m->cfg.anyres) m->image_newline = bind_vec(b, lay->top, "image_newline", h);
    m->embed = bind(b, lay->llm, "embed_tokens.weight", 2, embed_shape);
    for (int i = 0; i < t->n_layers; i++) {
        char lp[256];
        snprintf(lp, sizeof lp, "%slayers.%d.", lay->llm, i);
        sv_decoder_layer *L = &m->layers[i];
        L->attn_norm = bind_norm(b, lp, "input_layernorm", h, 0);
        L->mlp_norm = bind_norm(b, lp, "post_attention_layernorm", h, 0);
        L->q = bind_linear(b, lp, "self_attn.q_proj", qd, h, 0);
        L->k = bind_linear(b, lp, "self_attn.k_proj", kvd, h, 0);
        L->v = bind_linear(b, lp, "self_attn.v_proj", kvd, h, 0);
        L->o = bind_linear(b, lp, "self_attn.o_proj", h, qd, 0);
        L->gate = bind_linear(b, lp, "mlp.gate_proj", t->inter, h, 0);
        L->up = bind_linear(b, lp, "mlp.up_proj", t->inter, h, 0);
        L->down = bind_linear(b, lp, "mlp.down_proj", h, t->inter, 0);
    }
    m->final_norm = bind_norm(b, lay->llm, "norm", h, 0);
    m->lm_head = bind_linear(b, lay->head, "lm_head", t->vocab, h, 0);
}

static const layout *layout_of(const sv_model *m) {
    if (m->cfg.original) return &original_layout;
    return sv_weights_find(m->weights, "model.language_model.embed_tokens.weight") ? &new_layout
                                                                                  : &old_layout;
}

static int bind_all(sv_model *m, sv_error *err) {
    const layout *lay = layout_of(m);
    m->vlayers = sv_alloc_array((size_t)m->cfg.n_vision_layers_run + 1, sizeof *m->vlayers, err,
                                m->dir);
    m->layers = sv_alloc_array((size_t)m->cfg.text.n_layers, sizeof *m->layers, err, m->dir);
    if (!m->vlayers || !m->layers) return SV_FAIL;
    int own_tower = m->tower_weights && !m->cfg.tower_in_checkpoint;
    binder b = {m, own_tower ? m->tower_weights : m->weights, own_tower ? m->tower_dir : m->dir,
                err, 0};
    bind_vision(&b, m->cfg.tower_in_checkpoint ? "model.vision_tower.vision_tower.vision_model."
                                               : lay->vision);
    b.w = m->weights, b.dir = m->dir;
    bind_llm(&b, lay);
    return b.failed ? SV_FAIL : SV_OK;
}

/* config.json; for the original layout also the tower's config and weights. */
static int load_config(sv_model *m, const char *override, sv_error *err) {
    char tower[4096];
    if (sv_config_load_with_tower(&m->cfg, m->dir, override, tower, sizeof tower, err))
        return SV_FAIL;
    if (!m->cfg.original) return SV_OK;
    if (!(m->tower_dir = strdup(tower))) return sv_fail(err, "%s: out of memory", tower);
    return m->cfg.tower_in_checkpoint ? SV_OK : sv_weights_open(&m->tower_weights, tower, err);
}

sv_model_params sv_model_default_params(void) { return (sv_model_params){NULL}; }

int sv_model_load_params(sv_model **out, const char *dir, const sv_model_params *p,
                         sv_error *err) {
    *out = NULL;
    sv_model *m = calloc(1, sizeof *m);
    if (!m || !(m->dir = strdup(dir))) {
        free(m);
        return sv_fail(err, "%s: out of memory", dir);
    }
    char config_path[4096];
    snprintf(config_path, sizeof config_path, "%s/config.json", dir);
    if (load_config(m, p->vision_tower, err) ||
        sv_config_check_runnable(&m->cfg, config_path, err) ||
        sv_weights_open(&m->weights, dir, err) || bind_all(m, err) ||
        sv_tokenizer_load(&m->tok, dir, err)) {
        sv_model_free(m);
        return SV_FAIL;
    }
    *out = m;
    return SV_OK;
}

int sv_model_load(sv_model **out, const char *dir, sv_error *err) {
    sv_model_params p = sv_model_default_params();
    return sv_model_load_params(out, dir, &p, err);
}

void sv_model_free(sv_model *m) {
    if (!m) return;
    for (owned_block *b = m->owned; b;) {
        owned_block *next = b->next;
        free(b);
        b = next;
    }
    sv_tokenizer_free(m->tok);
    sv_weights_close(m->weights);
    sv_weights_close(m->tower_weights);
    free(m->tower_dir);
    free(m->vlayers);
    free(m->layers);
    free(m->dir);
    free(m);
}
