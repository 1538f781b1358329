#include <string.h>
#include <time.h>

#include "attention.h"
#include "llm.h"
#include "ops.h"

/* A run of consecutive rows (relative to the batch) that gets some work. */
typedef struct rows {
    size_t start, end;
} rows;

/* The batch rows [0, n) (positions pos0 ..) that are not in the group: at
 * most two runs. */
static int rows_outside_group(const sv_policy *p, size_t pos0, size_t n, rows out[2]) {
    size_t vs = p->visual.start > pos0 ? p->visual.start - pos0 : 0;
    size_t ve = p->visual.end > pos0 ? p->visual.end - pos0 : 0;
    vs = vs < n ? vs : n;
    ve = ve < n ? ve : n;
    int k = 0;
    if (p->group == SV_GROUP_TEXT) {
        if (ve > vs) out[k++] = (rows){vs, ve};
    } else {
        if (vs > 0) out[k++] = (rows){0, vs};
        if (ve < n) out[k++] = (rows){ve > vs ? ve : vs, n};
    }
    return k;
}

/* Which rows compute a sub-layer's update and which rows receive it. */
static void plan_rows(sv_layer_mode mode, const sv_policy *p, size_t pos0, size_t n,
                      rows compute[2], int *n_compute, rows update[2], int *n_update) {
    if (mode == SV_LAYER_DENSE) {
        compute[0] = update[0] = (rows){0, n};
        *n_compute = *n_update = 1;
        return;
    }
    *n_update = rows_outside_group(p, pos0, n, update);
    if (mode == SV_LAYER_FREEZE) {
        memcpy(compute, update, sizeof(rows) * 2);
        *n_compute = *n_update;
    } else {
        compute[0] = (rows){0, n};
        *n_compute = 1;
    }
}

static void add_rows(float *x, const float *delta, size_t d, const rows *r, int k) {
    for (int i = 0; i < k; i++)
        sv_add(x + r[i].start * d, delta + r[i].start * d, (r[i].end - r[i].start) * d);
}

/* K and V of every row go to the cache at pos0.., K rotated. */
static void write_kv(sv_context *ctx, const sv_decoder_layer *L, int l, size_t n, size_t pos0) {
    const sv_text_config *t = &ctx->m->cfg.text;
    size_t h = (size_t)t->hidden, kvd = (size_t)t->n_kv_heads * t->head_dim;
    float *k = ctx->k_cache + ((size_t)l * ctx->n_ctx + pos0) * kvd;
    float *v = ctx->v_cache + ((size_t)l * ctx->n_ctx + pos0) * kvd;
    sv_linear_apply(&L->k, ctx->xn, h, n, k, kvd, ctx->mm_scratch);
    sv_linear_apply(&L->v, ctx->xn, h, n, v, kvd, ctx->mm_scratch);
    sv_rope(k, n, t->n_kv_heads, t->head_dim, kvd, (int)pos0, t->rope_theta);
}

/* delta[r] = o_proj(attn(q_proj(xn[r]), K, V)) for the rows r of one run. */
static void attend_rows(sv_context *ctx, const sv_decoder_layer *L, int l, size_t pos0, rows r) {
    const sv_text_config *t = &ctx->m->cfg.text;
    size_t h = (size_t)t->hidden, qd = (size_t)t->n_heads * t->head_dim;
    size_t kvd = (size_t)t->n_kv_heads * t->head_dim, n = r.end - r.start;
    float *q = ctx->q + r.start * qd, *att = ctx->att + r.start * qd;
    sv_linear_apply(&L->q, ctx->xn + r.start * h, h, n, q, qd, ctx->mm_scratch);
    sv_rope(q, n, t->n_heads, t->head_dim, qd, (int)(pos0 + r.start), t->rope_theta);
    sv_attn_shape shape = {t->n_heads, t->n_kv_heads, t->head_dim, qd, kvd};
    size_t keys = pos0 + r.end;
    sv_attention(&shape, q, n, ctx->k_cache + (size_t)l * ctx->n_ctx * kvd,
                 ctx->v_cache + (size_t)l * ctx->n_ctx * kvd, keys, 1, pos0 + r.start, att,
                 ctx->scores);
    sv_linear_apply(&L->o, att, qd, n, ctx->delta + r.start * h, h, ctx->mm_scratch);
}

/* delta[r] = down(silu(gate(xn[r])) * up(xn[r])) for the rows r of one run. */
static void mlp_rows(sv_context *ctx, const sv_decoder_layer *L, rows r) {
    const sv_text_config *t = &ctx->m->cfg.text;
    size_t h = (size_t)t->hidden, m = (size_t)t->inter, n = r.end - r.start;
    float *gate = ctx->gate + r.start * m, *up = ctx->up + r.start * m;
    sv_rmsnorm(ctx->x + r.start * h, L->mlp_norm.w, ctx->xn + r.start * h, n, h, t->rms_eps);
    sv_linear_apply(&L->gate, ctx->xn + r.start * h, h, n, gate, m, ctx->mm_scratch);
    sv_linear_apply(&L->up, ctx->xn + r.start * h, h, n, up, m, ctx->mm_scratch);
    sv_swiglu(gate, up, n * m);
    sv_linear_apply(&L->down, gate, m, n, ctx->delta + r.start * h, h, ctx->mm_scratch);
}

void sv_llm_layer(sv_context *ctx, int l, size_t n, size_t pos0, sv_layer_mode mode,
                  const sv_policy *policy) {
    const sv_decoder_layer *L = &ctx->m->layers[l];
    const sv_text_config *t = &ctx->m->cfg.text;
    size_t h = (size_t)t->hidden;
    rows compute[2], update[2];
    int n_compute, n_update;
    plan_rows(mode, policy, pos0, n, compute, &n_compute, update, &n_update);

    /* h += attn(input_layernorm(h)) */
    sv_rmsnorm(ctx->x, L->attn_norm.w, ctx->xn, n, h, t->rms_eps);
    write_kv(ctx, L, l, n, pos0);
    for (int i = 0; i < n_compute; i++) attend_rows(ctx, L, l, pos0, compute[i]);
    add_rows(ctx->x, ctx->delta, h, update, n_update);

    /* h += mlp(post_attention_layernorm(h)) */
    for (int i = 0; i < n_compute; i++) mlp_rows(ctx, L, compute[i]);
    add_rows(ctx->x, ctx->delta, h, update, n_update);
}

void sv_llm_logits(sv_context *ctx, size_t row) {
    const sv_model *m = ctx->m;
    size_t h = (size_t)m->cfg.text.hidden;
    sv_rmsnorm(ctx->x + row * h, m->final_norm.w, ctx->xn, 1, h, m->cfg.text.rms_eps);
    sv_linear_apply(&m->lm_head, ctx->xn, h, 1, ctx->logits, (size_t)m->cfg.text.vocab,
                    ctx->mm_scratch);
}

int sv_llm_embed_tokens(const sv_model *m, const int *ids, size_t n, float *out, sv_error *err) {
    size_t h = (size_t)m->cfg.text.hidden;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] < 0 || ids[i] >= m->cfg.text.vocab)
            return sv_fail(err, "%s: token id %d at position %zu is outside the vocabulary (%d)",
                           m->dir, ids[i], i, m->cfg.text.vocab);
        sv_tensor_row(m->embed, (size_t)ids[i], out + i * h);
    }
    return SV_OK;
}

static double seconds_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

void sv_llm_run_layers(sv_context *ctx, int first, size_t n, size_t pos0,
                       const sv_policy *policy, float *inputs) {
    const sv_text_config *t = &ctx->m->cfg.text;
    size_t rows_bytes = n * (size_t)t->hidden * sizeof(float);
    for (int l = first; l < t->n_layers; l++) {
        if (inputs) memcpy(inputs + (size_t)l * ctx->n_ctx * t->hidden, ctx->x, rows_bytes);
        sv_layer_mode mode = policy && policy->modes ? policy->modes[l] : SV_LAYER_DENSE;
        double t0 = ctx->layer_seconds ? seconds_now() : 0;
        sv_llm_layer(ctx, l, n, pos0, mode, policy);
        if (ctx->layer_seconds) ctx->layer_seconds[l] += seconds_now() - t0;
    }
}

int sv_llm_forward(sv_context *ctx, const float *embeds, size_t n, const sv_policy *policy,
                   sv_error *err) {
    const sv_text_config *t = &ctx->m->cfg.text;
    if (n == 0) return sv_fail(err, "%s: empty input", ctx->m->dir);
    if (n > ctx->n_ctx - ctx->n_past)
        return sv_fail(err, "%s: sequence of %zu positions exceeds the context (%zu)",
                       ctx->m->dir, ctx->n_past + n, ctx->n_ctx);
    memcpy(ctx->x, embeds, n * (size_t)t->hidden * sizeof(float));
    sv_llm_run_layers(ctx, 0, n, ctx->n_past, policy, NULL);
    ctx->n_past += n;
    sv_llm_logits(ctx, n - 1);
    return SV_OK;
}
