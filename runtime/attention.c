#include <cblas.h>
#include <math.h>

#include "attention.h"

/* Softmax of each of `rows` rows over its entries [lo[r], hi[r]) (the rest are
 * masked and set to 0). Max-subtracted, accumulated in double. */
static void softmax_rows(float *scores, size_t rows, size_t ld, const size_t *lo,
                         const size_t *hi) {
    for (size_t r = 0; r < rows; r++) {
        float *s = scores + r * ld;
        float mx = -INFINITY;
        for (size_t j = lo[r]; j < hi[r]; j++) mx = s[j] > mx ? s[j] : mx;
        double sum = 0;
        for (size_t j = lo[r]; j < hi[r]; j++) {
            s[j] = expf(s[j] - mx);
            sum += s[j];
        }
        float inv = (float)(1.0 / sum);
        for (size_t j = 0; j < lo[r]; j++) s[j] = 0.0f;
        for (size_t j = lo[r]; j < hi[r]; j++) s[j] *= inv;
        for (size_t j = hi[r]; j < ld; j++) s[j] = 0.0f;
    }
}

/* One head, one block of query rows [i0, i0+rows): scores over the keys
 * [k0, m) that some row of the block sees. */
static void attend_block(const sv_attn_shape *s, const float *q, const float *k, const float *v,
                         size_t n_keys, int causal, size_t q_pos0, size_t i0, size_t rows,
                         float *out, float *scores) {
    size_t lo[SV_ATTN_BLOCK], hi[SV_ATTN_BLOCK];
    size_t m = causal ? q_pos0 + i0 + rows : n_keys;
    if (m > n_keys) m = n_keys;
    size_t k0 = m;
    for (size_t r = 0; r < rows; r++) {
        size_t pos = q_pos0 + i0 + r, first = 0;
        if (causal && s->window && pos + 1 > s->window) first = pos + 1 - s->window;
        size_t horizon = causal ? pos + 1 : n_keys;
        hi[r] = horizon < m ? horizon : m;
        lo[r] = first;
        if (first < k0) k0 = first;
    }
    for (size_t r = 0; r < rows; r++) lo[r] -= k0, hi[r] -= k0;
    size_t width = m - k0;
    float scale = 1.0f / sqrtf((float)s->head_dim);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)rows, (int)width, s->head_dim,
                scale, q + i0 * s->q_stride, (int)s->q_stride, k + k0 * s->kv_stride,
                (int)s->kv_stride, 0.0f, scores, (int)width);
    softmax_rows(scores, rows, width, lo, hi);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)rows, s->head_dim, (int)width,
                1.0f, scores, (int)width, v + k0 * s->kv_stride, (int)s->kv_stride, 0.0f,
                out + i0 * s->q_stride, (int)s->q_stride);
}

void sv_attention(const sv_attn_shape *s, const float *q, size_t n, const float *k,
                  const float *v, size_t n_keys, int causal, size_t q_pos0, float *out,
                  float *scores) {
    int group = s->n_heads / s->n_kv_heads;
    for (int h = 0; h < s->n_heads; h++) {
        size_t qoff = (size_t)h * s->head_dim;
        size_t kvoff = (size_t)(h / group) * s->head_dim;
        for (size_t i0 = 0; i0 < n; i0 += SV_ATTN_BLOCK) {
            size_t rows = n - i0 < SV_ATTN_BLOCK ? n - i0 : SV_ATTN_BLOCK;
            attend_block(s, q + qoff, k + kvoff, v + kvoff, n_keys, causal, q_pos0, i0, rows,
                         out + qoff, scores);
        }
    }
}
