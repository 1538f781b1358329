#include <stdlib.h>
#include <string.h>

#include "attention.h"
#include "ops.h"
#include "vision.h"

/* Unfolds the image into one row per patch, (channel, y, x) order within a
 * row and patches row-major over the grid, so that the stride-p convolution
 * without bias is one matrix product with the [dv, 3*p*p] kernel. */
static void unfold_patches(const float *pixels, int size, int p, float *patches) {
    int grid = size / p;
    for (int gy = 0; gy < grid; gy++)
        for (int gx = 0; gx < grid; gx++) {
            float *row = patches + ((size_t)gy * grid + gx) * 3 * p * p;
            for (int c = 0; c < 3; c++)
                for (int y = 0; y < p; y++) {
                    const float *src = pixels + ((size_t)c * size + gy * p + y) * size + gx * p;
                    memcpy(row + ((size_t)c * p + y) * p, src, (size_t)p * sizeof(float));
                }
        }
}

/* embeddings: [CLS, patch_0 .. patch_{P-1}] + position embeddings, then pre_layrnorm */
static void embed_image(sv_context *ctx, const float *pixels, size_t s) {
    const sv_model *m = ctx->m;
    const sv_vision_config *v = &m->cfg.vision;
    size_t dv = (size_t)v->hidden;
    unfold_patches(pixels, v->image_size, v->patch_size, ctx->patches);
    memcpy(ctx->vxn, m->class_emb, dv * sizeof(float));
    sv_linear_apply(&m->patch, ctx->patches, m->patch.in, s - 1, ctx->vxn + dv, dv,
                    ctx->pool);
    sv_add(ctx->pool, ctx->vxn, m->pos_emb, s * dv);
    sv_layernorm(ctx->pool, ctx->vxn, m->pre_ln.w, m->pre_ln.b, ctx->vx, s, dv, v->ln_eps);
}

/* x += out_proj(attn(ln1(x)));  x += fc2(quick_gelu(fc1(ln2(x))))   (CLIPEncoderLayer) */
static void encoder_layer(sv_context *ctx, const sv_vision_layer *L, size_t s) {
    const sv_vision_config *v = &ctx->m->cfg.vision;
    size_t dv = (size_t)v->hidden;
    sv_layernorm(ctx->pool, ctx->vx, L->ln1.w, L->ln1.b, ctx->vxn, s, dv, v->ln_eps);
    sv_product qkv[3] = {{&L->q, ctx->vq, dv}, {&L->k, ctx->vk, dv}, {&L->v, ctx->vv, dv}};
    sv_linear_shared(qkv, 3, ctx->vxn, dv, s, ctx->pool);
    sv_attn_shape shape = {v->n_heads, v->n_heads, v->hidden / v->n_heads, dv, dv, 0};
    sv_attention(&shape, ctx->vq, s, ctx->vk, ctx->vv, s, 0, 0, ctx->vatt, ctx->pool);
    sv_linear_apply(&L->o, ctx->vatt, dv, s, ctx->vxn, dv, ctx->pool);
    sv_add(ctx->pool, ctx->vx, ctx->vxn, s * dv);

    sv_layernorm(ctx->pool, ctx->vx, L->ln2.w, L->ln2.b, ctx->vxn, s, dv, v->ln_eps);
    sv_linear_apply(&L->fc1, ctx->vxn, dv, s, ctx->vmlp, (size_t)v->inter, ctx->pool);
    sv_quick_gelu(ctx->pool, ctx->vmlp, s * (size_t)v->inter);
    sv_linear_apply(&L->fc2, ctx->vmlp, (size_t)v->inter, s, ctx->vxn, dv, ctx->pool);
    sv_add(ctx->pool, ctx->vx, ctx->vxn, s * dv);
}

const float *sv_vision_features(sv_context *ctx, const float *pixels) {
    const sv_config *cfg = &ctx->m->cfg;
    int grid = cfg->vision.image_size / cfg->vision.patch_size;
    size_t s = (size_t)grid * grid + 1;
    embed_image(ctx, pixels, s);
    for (int i = 0; i < cfg->n_vision_layers_run; i++)
        encoder_layer(ctx, &ctx->m->vlayers[i], s);
    return ctx->vx;
}

/* linear_2(gelu(linear_1(f)))   (LlavaMultiModalProjector) */
void sv_vision_project(sv_context *ctx, const float *features, float *out) {
    const sv_model *m = ctx->m;
    size_t dv = (size_t)m->cfg.vision.hidden, h = (size_t)m->cfg.text.hidden;
    size_t n = (size_t)m->cfg.view_tokens;
    const float *f = m->cfg.keep_cls ? features : features + dv;
    sv_linear_apply(&m->proj1, f, dv, n, ctx->vproj, h, ctx->pool);
    sv_gelu_erf(ctx->pool, ctx->vproj, n * h);
    sv_linear_apply(&m->proj2, ctx->vproj, h, n, out, h, ctx->pool);
}

/* Every view through the tower and the projector: out [n_views, view_tokens, hidden]. */
static void project_views(sv_context *ctx, const sv_views *views, float *out) {
    size_t plane = (size_t)3 * views->size * views->size;
    size_t per_view = (size_t)ctx->m->cfg.view_tokens * ctx->m->cfg.text.hidden;
    for (int i = 0; i < views->n; i++)
        sv_vision_project(ctx, sv_vision_features(ctx, views->pixels + i * plane),
                          out + i * per_view);
}

/* LlavaNextForConditionalGeneration.pack_image_features: each row copied from
 * its view's features or from image_newline. */
static void pack_rows(const sv_model *m, const sv_encoded_image *e, int grid, const float *feats,
                      float *out) {
    size_t h = (size_t)m->cfg.text.hidden, per_view = (size_t)m->cfg.view_tokens * h;
    for (size_t r = 0; r < e->n_rows; r++) {
        const sv_row_source *src = &e->sources[r];
        const float *row = src->kind == SV_ROW_NEWLINE
                               ? m->image_newline
                               : feats + src->view * per_view + ((size_t)src->y * grid + src->x) * h;
        memcpy(out + r * h, row, h * sizeof(float));
    }
}

static int encode_anyres(sv_context *ctx, const sv_views *views, sv_encoded_image *e,
                         sv_error *err) {
    const sv_config *cfg = &ctx->m->cfg;
    size_t h = (size_t)cfg->text.hidden;
    e->n_rows = sv_anyres_n_rows(&views->plan);
    e->sources = sv_alloc_array(e->n_rows, sizeof *e->sources, err, "image layout");
    e->rows = e->sources ? sv_alloc_array(e->n_rows * h, sizeof(float), err, "image rows") : NULL;
    float *feats = e->rows ? sv_alloc_array((size_t)views->n * cfg->view_tokens * h,
                                            sizeof(float), err, "view features")
                           : NULL;
    if (!feats) return SV_FAIL;
    sv_anyres_layout(&views->plan, e->sources);
    project_views(ctx, views, feats);
    pack_rows(ctx->m, e, views->plan.grid, feats, e->rows);
    free(feats);
    return SV_OK;
}

int sv_encode_image(sv_context *ctx, const sv_views *views, sv_encoded_image *out,
                    sv_error *err) {
    const sv_config *cfg = &ctx->m->cfg;
    memset(out, 0, sizeof *out);
    out->n_views = views->n;
    if (views->size != cfg->vision.image_size)
        return sv_fail(err, "%s: views of %d pixels, the tower takes %d", ctx->m->dir, views->size,
                       cfg->vision.image_size);
    int rc;
    if (views->aspect == SV_ASPECT_ANYRES) {
        rc = encode_anyres(ctx, views, out, err);
    } else {
        out->n_rows = (size_t)cfg->view_tokens;
        out->rows = sv_alloc_array(out->n_rows * cfg->text.hidden, sizeof(float), err,
                                   "image rows");
        if ((rc = out->rows ? SV_OK : SV_FAIL) == SV_OK) project_views(ctx, views, out->rows);
    }
    if (rc) sv_encoded_image_free(out);
    return rc;
}

int sv_encode_image_file(sv_context *ctx, const char *path, sv_aspect aspect,
                         sv_encoded_image *out, sv_error *err) {
    sv_views views;
    memset(out, 0, sizeof *out);
    if (sv_preprocess_file(&ctx->m->cfg, path, aspect, &views, err)) return SV_FAIL;
    int rc = sv_encode_image(ctx, &views, out, err);
    sv_views_free(&views);
    return rc;
}

void sv_encoded_image_free(sv_encoded_image *e) {
    free(e->rows);
    free(e->sources);
    e->rows = NULL, e->sources = NULL;
}
