/* Prefill and greedy decoding with the KV cache. */
#ifndef SV_GENERATE_H
#define SV_GENERATE_H

#include "prompt.h"

/* Runs the prompt (token embeddings with the image rows spliced in) from an
 * empty cache; the next-token logits are left in ctx->logits. The rows before
 * the image run as a chunk of their own, and are not run again when the
 * context's cache already holds them (ctx->prefix_len). */
int sv_prefill(sv_context *ctx, const sv_prompt *p, const sv_encoded_image *image,
               const sv_policy *policy, sv_error *err);

/* Index of the largest logit, the first on ties. */
int sv_argmax(const float *logits, int n);

/* Called with each generated token; return non-zero to stop early. */
typedef int (*sv_token_fn)(int id, void *user);

/* Greedy continuation after sv_prefill: up to max_new tokens, stopping after
 * EOS (which is included). Writes the ids to out (room for max_new) and their
 * count to *n_out. */
int sv_generate_greedy(sv_context *ctx, int max_new, int *out, int *n_out, sv_token_fn on_token,
                       void *user, sv_error *err);

#endif
