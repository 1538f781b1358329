#include <stdlib.h>

#include "generate.h"

int sv_prefill(sv_context *ctx, const sv_prompt *p, const sv_encoded_image *image,
               const sv_policy *policy, sv_error *err) {
    const sv_model *m = ctx->m;
    float *embeds = sv_alloc_array(p->n, (size_t)m->cfg.text.hidden * sizeof(float), err,
                                   "prompt embeddings");
    if (!embeds) return SV_FAIL;
    ctx->n_past = 0;
    int rc = sv_prompt_embed(m, p, image, embeds, err);
    if (rc == SV_OK) rc = sv_llm_forward(ctx, embeds, p->n, policy, err);
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
