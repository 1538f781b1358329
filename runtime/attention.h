/* Scaled dot-product attention over a key/value buffer, multi-head with
 * grouped-query sharing (query head h reads KV head h / (n_heads / n_kv_heads)).
 *
 * The work is cut into tasks of one head and SV_ATTN_BLOCK query rows, spread
 * over the pool's threads; each task's scores live in its thread's scratch
 * (SV_ATTN_BLOCK x n_keys floats whatever the number of heads: memory stays
 * linear in the sequence length). */
#ifndef SV_ATTENTION_H
#define SV_ATTENTION_H

#include <stddef.h>

#include "threads.h"

#define SV_ATTN_BLOCK 128

typedef struct sv_attn_shape {
    int n_heads, n_kv_heads, head_dim;
    size_t q_stride;  /* floats between query rows (and output rows) */
    size_t kv_stride; /* floats between key rows (and value rows) */
    size_t window;    /* causal only: a query sees its last `window` keys (Mistral's
                         sliding window, as transformers masks it); 0: all */
} sv_attn_shape;

/* out[i] = softmax(q[i] · Kᵀ / sqrt(hd) + mask) · V for n query rows and
 * n_keys key rows. causal: query row i sits at absolute position q_pos0 + i
 * and sees keys 0 .. q_pos0 + i (the last s->window of them if set); otherwise it sees all keys. Output rows are
 * q_stride apart. The pool's scratch must hold SV_ATTN_BLOCK * n_keys floats
 * per thread. */
void sv_attention(const sv_attn_shape *s, const float *q, size_t n, const float *k,
                  const float *v, size_t n_keys, int causal, size_t q_pos0, float *out,
                  sv_pool *pool);

#endif
