/* FLOPs of one prefill of the language model, counted as the ShortV paper
 * does (arXiv 2504.00502, used for its Table 1): 2 × multiply-adds of the decoder
 * layers only (no embeddings, norms, RoPE, softmax, lm_head, vision tower or
 * projector). With n = v + t tokens, h hidden width and m MLP width:
 *
 *   dense layer   2n(4h+3m)h + 4n²h       Q,K,V,O (4h² per row), SwiGLU MLP
 *                                         (3hm per row), QKᵀ and AV (2n²h each)
 *   ShortV layer  2t(4h+3m)h + 4vh² + 4t(t+v)h
 *                 text rows do everything; frozen visual rows only produce
 *                 K and V (2h² per row); only text rows are queries
 *   total         (L−N)·dense + N·ShortV  for N frozen layers of L
 *
 * Which layers are frozen does not matter, only how many. Freezing the text
 * group instead swaps the roles of v and t.
 *
 * The formula assumes K and V projections of width h, as in the paper's
 * Vicuna models (num_key_value_heads = num_attention_heads). A GQA model
 * (n_kv_heads < n_heads) projects K and V to h_kv = n_kv_heads·head_dim, so
 * each row of each layer, frozen or not, costs 4h(h − h_kv) FLOPs less than
 * counted here (Llama-3-8B: h_kv = h/4, about 10% of a dense layer). The
 * count deliberately keeps the paper's formula so that its numbers reproduce.
 *
 * Counts are doubles: exact integers up to 2^53 (about 9·10^15, far above
 * a 13B model's 82 TFLOPs at 2944 tokens) and never overflowing beyond. */
#ifndef SV_FLOPS_H
#define SV_FLOPS_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "llm.h"

/* Token counts are capped so that nobody mistakes a typo for a workload. */
#define SV_FLOPS_MAX_TOKENS (1 << 30)

typedef struct sv_flops {
    double dense;            /* all L layers dense */
    double shortv;           /* n_frozen layers frozen, the rest dense */
    double ratio;            /* shortv / dense */
    int n_layers, n_frozen;
    int64_t visual_tokens;   /* v */
    int64_t text_tokens;     /* t */
    sv_group group;          /* the rows frozen layers skip (visual in the paper) */
} sv_flops;

/* FLOPs one decoder layer executes, counted like the paper's but from what
 * runs (--profile): K and V projections for kv_rows rows (GQA width), Q, O and
 * the MLP for q_rows rows, and QKᵀ and AV over key_visits (query, key) pairs,
 * the causal triangle or sliding window the kernel sees. */
double sv_flops_executed(const sv_text_config *tc, double kv_rows, double q_rows,
                         double key_visits);

/* One layer's FLOPs for v visual and t text rows, dense or with `group` frozen. */
double sv_flops_dense_layer(const sv_text_config *tc, int64_t visual, int64_t text);
double sv_flops_frozen_layer(const sv_text_config *tc, int64_t visual, int64_t text,
                             sv_group group);

/* Dense and ShortV totals with n_frozen of the model's layers frozen.
 * Fails on negative or implausible token counts and n_frozen outside [0, L]. */
int sv_flops_count(const sv_config *cfg, int64_t visual, int64_t text, sv_group group,
                   int n_frozen, sv_flops *out, sv_error *err);

/* The same for an explicit set of frozen layers, which must be valid ids of
 * the model without duplicates (the count is what enters the formula). */
int sv_flops_for_layers(const sv_config *cfg, int64_t visual, int64_t text, sv_group group,
                        const int *layers, int n_layers_frozen, sv_flops *out, sv_error *err);

/* Per-layer breakdown: out[l] is layer l's FLOPs under modes[l] (NULL: all
 * dense). FREEZE costs a ShortV layer; ABLATE computes everything and then
 * drops it, so it costs a dense layer. out has cfg->text.n_layers entries. */
int sv_flops_per_layer(const sv_config *cfg, int64_t visual, int64_t text,
                       const sv_layer_mode *modes, sv_group group, double *out, sv_error *err);

/* "dense 8.5 TFLOPs -> ShortV 4.7 TFLOPs (55%)": the paper's precision
 * (one decimal, whole percent), in the largest unit that keeps dense >= 1. */
void sv_flops_summary(const sv_flops *f, char *out, size_t size);

/* Visual tokens of the largest image the model takes. LLaVA-1.5: the
 * tower's grid (cfg->view_tokens, 576). LLaVA-NeXT (anyres): the base view
 * plus one view per tile of the largest pinpoint, 5 × 576 = 2880 for 672x672
 * on a 336 tower, the count the ShortV paper uses. The model itself also
 * inserts one newline row per row of the tile map and drops the map's padded
 * rows (runtime/anyres.h: 2928 for a square image); pass the real count
 * explicitly (calibration files record it) to count those. */
int64_t sv_flops_max_visual_tokens(const sv_config *cfg);

#endif
