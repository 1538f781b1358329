#include <stdlib.h>

#include "attention.h"
#include "context.h"
#include "rope.h"

/* Hands out consecutive slices of one buffer; first called with base NULL to
 * measure, then again to assign. */
typedef struct carver {
    float *base;
    size_t used;
} carver;

static float *carve(carver *c, size_t n) {
    float *p = c->base ? c->base + c->used : NULL;
    c->used += (n + 15) & ~(size_t)15; /* keep slices 64-byte aligned */
    return p;
}

static void layout_buffers(sv_context *ctx, carver *c) {
    const sv_config *cfg = &ctx->m->cfg;
    const sv_text_config *t = &cfg->text;
    const sv_vision_config *v = &cfg->vision;
    size_t n = ctx->n_ctx, kvd = (size_t)t->n_kv_heads * t->head_dim;
    size_t qd = (size_t)t->n_heads * t->head_dim, p = (size_t)v->patch_size;
    size_t n_patches = (size_t)(v->image_size / v->patch_size) * (v->image_size / v->patch_size);
    size_t s = n_patches + 1;
    ctx->k_cache = carve(c, (size_t)t->n_layers * n * kvd);
    ctx->v_cache = carve(c, (size_t)t->n_layers * n * kvd);
    ctx->x = carve(c, n * t->hidden);
    ctx->xn = carve(c, n * t->hidden);
    ctx->q = carve(c, n * qd);
    ctx->att = carve(c, n * qd);
    ctx->delta = carve(c, n * t->hidden);
    ctx->packed = carve(c, n * t->hidden);
    ctx->gate = carve(c, n * t->inter);
    ctx->up = carve(c, n * t->inter);
    ctx->logits = carve(c, (size_t)t->vocab);
    ctx->vx = carve(c, s * v->hidden);
    ctx->vxn = carve(c, s * v->hidden);
    ctx->vq = carve(c, s * v->hidden);
    ctx->vk = carve(c, s * v->hidden);
    ctx->vv = carve(c, s * v->hidden);
    ctx->vatt = carve(c, s * v->hidden);
    ctx->vmlp = carve(c, s * v->inter);
    ctx->vproj = carve(c, s * t->hidden);
    ctx->patches = carve(c, n_patches * 3 * p * p);
    ctx->rope = carve(c, n * (size_t)t->head_dim);
}

static int max_int(int a, int b) { return a > b ? a : b; }

/* The widest input of the model's linear layers (sv_linear_scratch). */
static int widest_linear_input(const sv_config *c) {
    const sv_text_config *t = &c->text;
    const sv_vision_config *v = &c->vision;
    int text = max_int(max_int(t->hidden, t->inter), t->n_heads * t->head_dim);
    int vision = max_int(max_int(v->hidden, v->inter), 3 * v->patch_size * v->patch_size);
    return max_int(text, vision);
}

/* Each thread's scratch: a converted weight panel or one block's attention
 * scores. An F32 model never converts, and the pages of the panel's share
 * are then never touched (so never resident). */
static size_t thread_scratch(const sv_context *ctx) {
    const sv_vision_config *v = &ctx->m->cfg.vision;
    size_t grid = (size_t)(v->image_size / v->patch_size), s = grid * grid + 1;
    size_t keys = ctx->n_ctx > s ? ctx->n_ctx : s;
    size_t panel = sv_linear_scratch(widest_linear_input(&ctx->m->cfg));
    return SV_ATTN_BLOCK * keys > panel ? SV_ATTN_BLOCK * keys : panel;
}

int sv_context_new(sv_context **out, const sv_model *m, size_t n_ctx, int n_threads,
                   sv_error *err) {
    *out = NULL;
    if (n_ctx == 0 || n_ctx > (size_t)m->cfg.text.max_pos)
        return sv_fail(err, "%s: sequence length %zu exceeds max_position_embeddings %d", m->dir,
                       n_ctx, m->cfg.text.max_pos);
    sv_context *ctx = calloc(1, sizeof *ctx);
    if (!ctx) return sv_fail(err, "%s: out of memory", m->dir);
    ctx->m = m;
    ctx->n_ctx = n_ctx;
    carver c = {0};
    layout_buffers(ctx, &c);
    c = (carver){.base = sv_alloc_array(c.used, sizeof(float), err, "activation arena")};
    if (!c.base) {
        free(ctx);
        return SV_FAIL;
    }
    layout_buffers(ctx, &c);
    ctx->arena = c.base;
    const sv_text_config *t = &m->cfg.text;
    sv_rope_table(ctx->rope, n_ctx, t->head_dim, t->rope_theta);
    if (!(ctx->prefix_ids = sv_alloc_array(n_ctx, sizeof(int), err, "prefix ids"))) {
        sv_context_free(ctx);
        return SV_FAIL;
    }
    if (sv_pool_new(&ctx->pool, n_threads, thread_scratch(ctx), err)) {
        sv_context_free(ctx);
        return SV_FAIL;
    }
    *out = ctx;
    return SV_OK;
}

void sv_context_free(sv_context *ctx) {
    if (!ctx) return;
    sv_pool_free(ctx->pool);
    free(ctx->prefix_ids);
    free(ctx->arena);
    free(ctx);
}
