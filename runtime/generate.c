#include <stdlib.h>
#include <string.h>

#include "generate.h"

/* Whether the policy leaves the text before the image as a dense model has it:
 * it freezes or ablates only the visual rows, or nothing. */
static int prefix_is_dense(const sv_policy *policy, int n_layers) {
    if (!policy || !policy->modes || policy->group == SV_GROUP_VISUAL) return 1;
    for (int l = 0; l < n_layers; l++)
        if (policy->modes[l] != SV_LAYER_DENSE) return 0;
    return 1;
}

/* The text before the image (the template's system prompt) is the same for
 * every sample, and its K and V do not depend on what follows (causal
 * attention) nor on a visual-group policy: it is computed once and its cache
 * rows reused while they last. It always runs as its own chunk, so the result
 * is the same bits whether it is reused or not. */
int sv_prefill(sv_context *ctx, const sv_prompt *p, const sv_encoded_image *image,
               const sv_policy *policy, sv_error *err) {
    const sv_model *m = ctx->m;
    size_t h = (size_t)m->cfg.text.hidden, split = p->visual.start;
    int dense = prefix_is_dense(policy, m->cfg.text.n_layers);
    int reuse = dense && split > 0 && ctx->prefix_len == split &&
                memcmp(ctx->prefix_ids, p->ids, split * sizeof(int)) == 0;
    float *embeds = sv_alloc_array(p->n, h * sizeof(float), err, "prompt embeddings");
    if (!embeds) return SV_FAIL;
    int rc = sv_prompt_embed(m, p, image, embeds, err);
    ctx->n_past = reuse ? split : 0;
    if (rc == SV_OK && !reuse && split > 0) {
        rc = sv_llm_forward(ctx, embeds, split, policy, err);
        if (rc == SV_OK && dense) {
            memcpy(ctx->prefix_ids, p->ids, split * sizeof(int));
            ctx->prefix_len = split;
        }
    }
    if (rc == SV_OK) rc = sv_llm_forward(ctx, embeds + split * h, p->n - split, policy, err);
    free(embeds);
    return rc;
}

int sv_argmax(const float *logits, int n) {
    int best = 0;
    for (int i = 1; i < n; i++)
        if (logits[i] > logits[best]) best = i;
    return best;
}

int sv_generate_greedy(sv_context *ctx, int max_new, int *out, int *n_out, sv_token_fn on_token,
                       void *user, sv_error *err) {
    const sv_model *m = ctx->m;
    int vocab = m->cfg.text.vocab, eos = m->cfg.text.eos_id;
    float *embed = sv_alloc_array((size_t)m->cfg.text.hidden, sizeof(float), err, "embedding");
    if (!embed) return SV_FAIL;
    int rc = SV_OK;
    *n_out = 0;
    while (*n_out < max_new) {
        int id = sv_argmax(ctx->logits, vocab);
        out[(*n_out)++] = id;
        if ((on_token && on_token(id, user)) || id == eos || *n_out == max_new) break;
        if ((rc = sv_llm_embed_tokens(m, &id, 1, embed, err)) ||
            (rc = sv_llm_forward(ctx, embed, 1, NULL, err)))
            break;
    }
    free(embed);
    return rc;
}
