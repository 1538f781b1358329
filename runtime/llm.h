/* LLaMA decoder under a per-layer token policy.
 *
 * A decoder layer gives every row a residual update: h += attn(h), h += mlp(h).
 * A policy says, per layer, which rows receive it (DESIGN.md, "The one idea"):
 *   DENSE   every row is updated;
 *   ABLATE  the group's updates are computed and then dropped (LC measurement);
 *   FREEZE  the group's rows skip Q, attention, O and the MLP (ShortV); they
 *           still provide keys and values. Same function as ABLATE, less work.
 * Rows of the group always write their K and V to the cache. */
#ifndef SV_LLM_H
#define SV_LLM_H

#include <stddef.h>

#include "context.h"

typedef enum { SV_LAYER_DENSE = 0, SV_LAYER_ABLATE, SV_LAYER_FREEZE } sv_layer_mode;

typedef struct sv_span {
    size_t start, end; /* absolute positions [start, end) */
} sv_span;

/* Token groups: the image's visual tokens, or every other position. */
typedef enum { SV_GROUP_VISUAL = 0, SV_GROUP_TEXT } sv_group;

typedef struct sv_policy {
    const sv_layer_mode *modes; /* [n_layers]; NULL: all dense */
    sv_group group;             /* the rows non-dense modes apply to */
    sv_span visual;             /* where the visual tokens are */
} sv_policy;

/* Token embeddings of ids into out [n, hidden]; ids are checked against the vocabulary. */
int sv_llm_embed_tokens(const sv_model *m, const int *ids, size_t n, float *out, sv_error *err);

/* Runs n new rows (embeddings [n, hidden]) at positions n_past .. n_past+n-1
 * through every layer, appends their K/V to the cache, advances n_past and
 * leaves the next-token logits of the last row in ctx->logits (an error if
 * they are not finite, see sv_llm_check_logits). */
int sv_llm_forward(sv_context *ctx, const float *embeds, size_t n, const sv_policy *policy,
                   sv_error *err);

/* The pieces sv_llm_forward is made of, for callers that restart mid-stack
 * (LC sweeps): layer l on the n rows held in ctx->x at positions pos0 ..
 * (policy supplies the group and may be NULL for DENSE); every row writes
 * its K and V, but only rows from out_from on compute and receive updates
 * (0: all rows); and the final norm + lm_head of one row of ctx->x into
 * ctx->logits. */
void sv_llm_layer(sv_context *ctx, int l, size_t n, size_t pos0, sv_layer_mode mode,
                  const sv_policy *policy, size_t out_from);
void sv_llm_logits(sv_context *ctx, size_t row);
/* Layers first .. L-1 on the n rows in ctx->x (positions pos0 ..) under the
 * policy. If inputs is given ([n_layers, n_ctx, hidden]), each layer's input
 * rows are saved there first, so that a later run can restart at any layer.
 * Afterwards only the last row of ctx->x holds the last layer's output: the
 * other rows provide that layer's K and V and skip the rest (nothing reads
 * their outputs). */
void sv_llm_run_layers(sv_context *ctx, int first, size_t n, size_t pos0,
                       const sv_policy *policy, float *inputs);
/* Non-finite numbers are errors, not values: fails if ctx->logits hold NaN or
 * Inf, naming the model and where they came from (the input rows, or the
 * first layer after which the last row was non-finite). sv_llm_forward
 * calls it; callers of the pieces above call it after sv_llm_logits. */
int sv_llm_check_logits(const sv_context *ctx, sv_error *err);

#endif
