/* Per-sequence state: the KV cache and every activation buffer, carved from
 * one allocation sized once from the model and the sequence length, and the
 * thread pool that runs its work (runtime/threads.h). A context is used by one
 * caller at a time; several contexts may share a model. */
#ifndef SV_CONTEXT_H
#define SV_CONTEXT_H

#include <stddef.h>

#include "model.h"
#include "threads.h"

typedef struct sv_context {
    const sv_model *m;
    size_t n_ctx;        /* positions the KV cache holds */
    size_t n_past;       /* positions already in the KV cache */
    /* language model */
    float *k_cache;      /* [n_layers, n_ctx, kv_heads * hd] */
    float *v_cache;      /* [n_layers, n_ctx, kv_heads * hd] */
    float *x;            /* [n_ctx, hidden]  residual stream of the rows being run */
    float *xn;           /* [n_ctx, hidden]  normalised input of a sub-layer */
    float *q;            /* [n_ctx, heads * hd] */
    float *att;          /* [n_ctx, heads * hd] attention output before o_proj */
    float *delta;        /* [n_ctx, hidden]  a sub-layer's residual update (packed rows) */
    float *packed;       /* [n_ctx, hidden]  the input rows that compute an update, packed */
    float *gate, *up;    /* [n_ctx, inter] */
    float *logits;       /* [vocab] */
    /* vision tower, S = 1 + n_patches rows */
    float *vx, *vxn;     /* [S, dv] */
    float *vq, *vk, *vv, *vatt; /* [S, dv] */
    float *vmlp;         /* [S, v_inter] */
    float *vproj;        /* [S, hidden] projector intermediate */
    float *patches;      /* [n_patches, 3 * p * p] */
    float *rope;         /* [n_ctx, hd / 2, 2] RoPE's cos and sin per position */
    float *arena;
    /* KV rows [0, prefix_len) of every layer hold a dense prefill of the ids
     * prefix_ids[0 .. prefix_len): sv_prefill reuses them for a prompt that
     * starts the same way (the template's text before the image) */
    int *prefix_ids;     /* [n_ctx] */
    size_t prefix_len;
    sv_pool *pool;       /* its threads; their scratch holds a weight panel or attention scores */
    /* optional, set by the caller: the seconds each decoder layer takes and the
     * FLOPs it executes (sv_flops_executed) are added to layer_seconds[l] and
     * layer_flops[l] ([n_layers] each) */
    double *layer_seconds, *layer_flops;
    /* where the latest sv_llm_run_layers first saw NaN or Inf, for the error
     * sv_llm_check_logits gives: SV_FINITE, SV_NONFINITE_INPUT or a layer index */
    int nonfinite_at;
} sv_context;

#define SV_FINITE (-1)
#define SV_NONFINITE_INPUT (-2)

/* n_ctx: the longest sequence (prompt + generated tokens) this context will run;
 * n_threads: the threads its work is spread over (<= 0: one per online CPU). */
int sv_context_new(sv_context **out, const sv_model *m, size_t n_ctx, int n_threads,
                   sv_error *err);
void sv_context_free(sv_context *ctx);

#endif
