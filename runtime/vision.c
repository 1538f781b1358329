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
                    ctx->mm_scratch);
    sv_add(ctx->vxn, m->pos_emb, s * dv);
    sv_layernorm(ctx->vxn, m->pre_ln.w, m->pre_ln.b, ctx->vx, s, dv, v->ln_eps);
}

/* x += out_proj(attn(ln1(x)));  x += fc2(quick_gelu(fc1(ln2(x))))   (CLIPEncoderLayer) */
static void encoder_layer(sv_context *ctx, const sv_vision_layer *L, size_t s) {
    const sv_vision_config *v = &ctx->m->cfg.vision;
    size_t dv = (size_t)v->hidden;
    float *scratch = ctx->mm_scratch;
    sv_layernorm(ctx->vx, L->ln1.w, L->ln1.b, ctx->vxn, s, dv, v->ln_eps);
    sv_linear_apply(&L->q, ctx->vxn, dv, s, ctx->vq, dv, scratch);
    sv_linear_apply(&L->k, ctx->vxn, dv, s, ctx->vk, dv, scratch);
    sv_linear_apply(&L->v, ctx->vxn, dv, s, ctx->vv, dv, scratch);
    sv_attn_shape shape = {v->n_heads, v->n_heads, v->hidden / v->n_heads, dv, dv};
    sv_attention(&shape, ctx->vq, s, ctx->vk, ctx->vv, s, 0, 0, ctx->vatt, ctx->scores);
    sv_linear_apply(&L->o, ctx->vatt, dv, s, ctx->vxn, dv, scratch);
    sv_add(ctx->vx, ctx->vxn, s * dv);

    sv_layernorm(ctx->vx, L->ln2.w, L->ln2.b, ctx->vxn, s, dv, v->ln_eps);
    sv_linear_apply(&L->fc1, ctx->vxn, dv, s, ctx->vmlp, (size_t)v->inter, scratch);
    sv_quick_gelu(ctx->vmlp, s * (size_t)v->inter);
    sv_linear_apply(&L->fc2, ctx->vmlp, (size_t)v->inter, s, ctx->vxn, dv, scratch);
    sv_add(ctx->vx, ctx->vxn, s * dv);
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
    size_t n = (size_t)m->cfg.n_visual_tokens;
    const float *f = m->cfg.keep_cls ? features : features + dv;
    sv_linear_apply(&m->proj1, f, dv, n, ctx->vproj, h, ctx->mm_scratch);
    sv_gelu_erf(ctx->vproj, n * h);
    sv_linear_apply(&m->proj2, ctx->vproj, h, n, out, h, ctx->mm_scratch);
}

void sv_encode_image(sv_context *ctx, const float *pixels, float *out) {
    sv_vision_project(ctx, sv_vision_features(ctx, pixels), out);
}
