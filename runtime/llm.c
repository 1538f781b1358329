#include <math.h>
#include <string.h>
#include <time.h>

#include "attention.h"
#include "flops.h"
#include "llm.h"
#include "ops.h"
#include "rope.h"

/* A run of consecutive rows of the batch. */
typedef struct rows {
    size_t start, end;
} rows;

/* Rows of the batch in at most two runs, in order. Rows that compute an
 * update are "packed": run k's rows sit consecutively after run k-1's, so
 * that every projection is one matrix product whatever the runs. */
typedef struct row_set {
    rows run[2];
    int n_runs;
    size_t count;
} row_set;

static void add_run(row_set *s, size_t start, size_t end) {
    if (end <= start) return;
    s->run[s->n_runs++] = (rows){start, end};
    s->count += end - start;
}

/* The batch rows [0, n) (positions pos0 ..) that are not in the group. */
static row_set rows_outside_group(const sv_policy *p, size_t pos0, size_t n) {
    size_t vs = p->visual.start > pos0 ? p->visual.start - pos0 : 0;
    size_t ve = p->visual.end > pos0 ? p->visual.end - pos0 : 0;
    vs = vs < n ? vs : n;
    ve = ve < n ? (ve > vs ? ve : vs) : n;
    row_set s = {0};
    if (p->group == SV_GROUP_TEXT) {
        add_run(&s, vs, ve);
    } else {
        add_run(&s, 0, vs);
        add_run(&s, ve, n);
    }
    return s;
}

/* The rows of s from batch row `from` on. */
static row_set rows_from(const row_set *s, size_t from) {
    row_set out = {0};
    for (int k = 0; k < s->n_runs; k++)
        add_run(&out, s->run[k].start > from ? s->run[k].start : from, s->run[k].end);
    return out;
}

/* Which rows compute a sub-layer's update and which rows receive it: under
 * the mode, and only rows from out_from on (the earlier ones just provide K, V). */
static void plan_rows(sv_layer_mode mode, const sv_policy *p, size_t pos0, size_t n,
                      size_t out_from, row_set *compute, row_set *update) {
    row_set all = {0};
    add_run(&all, 0, n);
    *compute = *update = all;
    if (mode != SV_LAYER_DENSE) *update = rows_outside_group(p, pos0, n);
    if (mode == SV_LAYER_FREEZE) *compute = *update;
    *compute = rows_from(compute, out_from);
    *update = rows_from(update, out_from);
}

/* Position of batch row r among the packed rows of s (r must be in s). */
static size_t packed_index(const row_set *s, size_t r) {
    size_t off = 0;
    for (int k = 0; k < s->n_runs; k++) {
        if (r < s->run[k].end) return off + r - s->run[k].start;
        off += s->run[k].end - s->run[k].start;
    }
    return off;
}

/* src rows of s, packed: a single run is used in place, two are copied to dst. */
static const float *pack_rows(const float *src, const row_set *s, size_t d, float *dst) {
    if (s->n_runs == 1) return src + s->run[0].start * d;
    size_t off = 0;
    for (int k = 0; k < s->n_runs; k++) {
        size_t len = s->run[k].end - s->run[k].start;
        memcpy(dst + off * d, src + s->run[k].start * d, len * d * sizeof(float));
        off += len;
    }
    return dst;
}

/* x[r] += delta[packed r] for the rows r that receive the update. */
static void add_update(sv_pool *pool, float *x, const float *delta, size_t d,
                       const row_set *compute, const row_set *update) {
    for (int k = 0; k < update->n_runs; k++) {
        rows r = update->run[k];
        sv_add(pool, x + r.start * d, delta + packed_index(compute, r.start) * d, (r.end - r.start) * d);
    }
}

/* K and V of every row go to the cache at pos0.., K rotated. In a layer
 * that updates every row, Q (into ctx->q) is made in the same job: the three
 * products share their input, so its panels are wider (sv_linear_shared). */
static void project_qkv(sv_context *ctx, const sv_decoder_layer *L, int l, size_t n,
                        size_t pos0, int with_q) {
    const sv_text_config *t = &ctx->m->cfg.text;
    size_t h = (size_t)t->hidden, qd = (size_t)t->n_heads * t->head_dim;
    size_t kvd = (size_t)t->n_kv_heads * t->head_dim;
    float *k = ctx->k_cache + ((size_t)l * ctx->n_ctx + pos0) * kvd;
    float *v = ctx->v_cache + ((size_t)l * ctx->n_ctx + pos0) * kvd;
    sv_product p[3] = {{&L->k, k, kvd}, {&L->v, v, kvd}, {&L->q, ctx->q, qd}};
    sv_linear_shared(p, with_q ? 3 : 2, ctx->xn, h, n, ctx->pool);
    sv_rope(ctx->pool, k, n, t->n_kv_heads, t->head_dim, kvd, pos0, ctx->rope);
}

/* delta = o_proj(attn(q_proj(xn), K, V)) for the packed rows of c; Q is
 * already in ctx->q if q_ready (project_qkv). */
static void attention_update(sv_context *ctx, const sv_decoder_layer *L, int l, size_t pos0,
                             const row_set *c, int q_ready) {
    const sv_text_config *t = &ctx->m->cfg.text;
    size_t h = (size_t)t->hidden, qd = (size_t)t->n_heads * t->head_dim;
    size_t kvd = (size_t)t->n_kv_heads * t->head_dim;
    if (!q_ready)
        sv_linear_apply(&L->q, pack_rows(ctx->xn, c, h, ctx->packed), h, c->count, ctx->q, qd,
                        ctx->pool);
    sv_attn_shape shape = {t->n_heads, t->n_kv_heads, t->head_dim, qd, kvd,
                           (size_t)t->sliding_window};
    size_t off = 0;
    for (int k = 0; k < c->n_runs; k++) {
        rows r = c->run[k];
        size_t n = r.end - r.start;
        sv_rope(ctx->pool, ctx->q + off * qd, n, t->n_heads, t->head_dim, qd, pos0 + r.start,
                ctx->rope);
        sv_attention(&shape, ctx->q + off * qd, n, ctx->k_cache + (size_t)l * ctx->n_ctx * kvd,
                     ctx->v_cache + (size_t)l * ctx->n_ctx * kvd, pos0 + r.end, 1,
                     pos0 + r.start, ctx->att + off * qd, ctx->pool);
        off += n;
    }
    sv_linear_apply(&L->o, ctx->att, qd, c->count, ctx->delta, h, ctx->pool);
}

/* delta = down(silu(gate(xn)) * up(xn)), xn = post_attention_layernorm(x), for the packed rows of c. */
static void mlp_update(sv_context *ctx, const sv_decoder_layer *L, const row_set *c) {
    const sv_text_config *t = &ctx->m->cfg.text;
    size_t h = (size_t)t->hidden, m = (size_t)t->inter, off = 0;
    for (int k = 0; k < c->n_runs; k++) {
        rows r = c->run[k];
        sv_rmsnorm(ctx->pool, ctx->x + r.start * h, L->mlp_norm.w, ctx->packed + off * h, r.end - r.start,
                   h, t->rms_eps);
        off += r.end - r.start;
    }
    sv_product p[2] = {{&L->gate, ctx->gate, m}, {&L->up, ctx->up, m}};
    sv_linear_shared(p, 2, ctx->packed, h, c->count, ctx->pool);
    sv_swiglu(ctx->pool, ctx->gate, ctx->up, c->count * m);
    sv_linear_apply(&L->down, ctx->gate, m, c->count, ctx->delta, h, ctx->pool);
}

/* (query, key) pairs the attention of the rows of c computes. */
static double key_visits(const row_set *c, size_t pos0, size_t window) {
    double visits = 0;
    for (int k = 0; k < c->n_runs; k++)
        for (size_t r = c->run[k].start; r < c->run[k].end; r++) {
            size_t keys = pos0 + r + 1;
            visits += (double)(window && keys > window ? window : keys);
        }
    return visits;
}

void sv_llm_layer(sv_context *ctx, int l, size_t n, size_t pos0, sv_layer_mode mode,
                  const sv_policy *policy, size_t out_from) {
    const sv_decoder_layer *L = &ctx->m->layers[l];
    const sv_text_config *t = &ctx->m->cfg.text;
    size_t h = (size_t)t->hidden;
    row_set compute, update;
    plan_rows(mode, policy, pos0, n, out_from, &compute, &update);

    /* h += attn(input_layernorm(h)) */
    sv_rmsnorm(ctx->pool, ctx->x, L->attn_norm.w, ctx->xn, n, h, t->rms_eps);
    int every_row = compute.count == n;
    project_qkv(ctx, L, l, n, pos0, every_row);
    if (compute.count) attention_update(ctx, L, l, pos0, &compute, every_row);
    add_update(ctx->pool, ctx->x, ctx->delta, h, &compute, &update);

    /* h += mlp(post_attention_layernorm(h)) */
    if (compute.count) mlp_update(ctx, L, &compute);
    add_update(ctx->pool, ctx->x, ctx->delta, h, &compute, &update);
    if (ctx->layer_flops)
        ctx->layer_flops[l] += sv_flops_executed(
            t, (double)n, (double)compute.count,
            key_visits(&compute, pos0, (size_t)t->sliding_window));
}

void sv_llm_logits(sv_context *ctx, size_t row) {
    const sv_model *m = ctx->m;
    size_t h = (size_t)m->cfg.text.hidden;
    sv_rmsnorm(ctx->pool, ctx->x + row * h, m->final_norm.w, ctx->xn, 1, h, m->cfg.text.rms_eps);
    sv_linear_apply(&m->lm_head, ctx->xn, h, 1, ctx->logits, (size_t)m->cfg.text.vocab,
                    ctx->pool);
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

static int all_finite(const float *x, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i])) return 0;
    return 1;
}

void sv_llm_run_layers(sv_context *ctx, int first, size_t n, size_t pos0,
                       const sv_policy *policy, float *inputs) {
    const sv_text_config *t = &ctx->m->cfg.text;
    size_t h = (size_t)t->hidden, rows_bytes = n * h * sizeof(float);
    ctx->nonfinite_at = all_finite(ctx->x, n * h) ? SV_FINITE : SV_NONFINITE_INPUT;
    if (pos0 < ctx->prefix_len) ctx->prefix_len = pos0; /* those K and V rows change */
    for (int l = first; l < t->n_layers; l++) {
        if (inputs) memcpy(inputs + (size_t)l * ctx->n_ctx * t->hidden, ctx->x, rows_bytes);
        sv_layer_mode mode = policy && policy->modes ? policy->modes[l] : SV_LAYER_DENSE;
        double t0 = ctx->layer_seconds ? seconds_now() : 0;
        /* nothing reads the last layer's outputs but the last row's (the others'
         * K and V are in the cache): the other rows skip Q, O and the MLP there */
        sv_llm_layer(ctx, l, n, pos0, mode, policy, l == t->n_layers - 1 ? n - 1 : 0);
        if (ctx->layer_seconds) ctx->layer_seconds[l] += seconds_now() - t0;
        /* the last row is the one whose logits are read: one row a layer is cheap */
        if (ctx->nonfinite_at == SV_FINITE && !all_finite(ctx->x + (n - 1) * h, h))
            ctx->nonfinite_at = l;
    }
}

int sv_llm_check_logits(const sv_context *ctx, sv_error *err) {
    const sv_model *m = ctx->m;
    if (all_finite(ctx->logits, (size_t)m->cfg.text.vocab)) return SV_OK;
    if (ctx->nonfinite_at == SV_NONFINITE_INPUT)
        return sv_fail(err, "%s: NaN or Inf logits: the decoder's input rows already hold NaN "
                       "or Inf (token embeddings, or the vision tower and projector)", m->dir);
    if (ctx->nonfinite_at >= 0)
        return sv_fail(err, "%s: NaN or Inf logits: the last position turns NaN or Inf in "
                       "decoder layer %d (its weights, rms_norm_eps, rope_theta)", m->dir,
                       ctx->nonfinite_at);
    return sv_fail(err, "%s: NaN or Inf logits from a finite last hidden state (the final "
                   "norm or lm_head weights)", m->dir);
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
    return sv_llm_check_logits(ctx, err);
}
