/* Rotary position embedding (LLaMA), HF rotate_half form: dimension i of a
 * head pairs with i + hd/2 and turns by pos · theta^(-2i/hd).
 *
 * The angles depend only on the position, so a context computes their cosines
 * and sines once (sv_rope_table) instead of hd/2 pow, cos and sin calls per
 * row and projection. */
#ifndef SV_ROPE_H
#define SV_ROPE_H

#include <stddef.h>

#include "threads.h"

/* table [n_pos][hd/2][2]: cos and sin of pos · theta^(-2i/hd), each computed
 * in double and rounded to float. */
void sv_rope_table(float *table, size_t n_pos, int hd, double theta);

/* Rotates n rows of n_heads heads of hd floats (rows row_stride apart); row r
 * is at absolute position pos0 + r, which the table must cover. */
void sv_rope(sv_pool *p, float *x, size_t n, int n_heads, int hd, size_t row_stride,
             size_t pos0, const float *table);

#endif
