#include <cblas.h>
#include <math.h>

#include "attention.h"
#include "ops.h"
#include "simd.h"

enum { EXP_BLOCK = 64 };

/* exp(s[i] - mx) in place for one block of EXP_BLOCK entries, and their sum in
 * eight float lanes, written out so that the loop vectorises at full width
 * (one accumulator would pin the order of the additions). Each lane adds 8
 * terms, so the block's sum is within 10 float roundings of exact.
 * always_inline: compiled into each clone of its caller. */
static inline __attribute__((always_inline)) float exp_block(float *restrict s, float mx) {
    float lane[8] = {0};
    for (int i = 0; i < EXP_BLOCK; i += 8)
        for (int k = 0; k < 8; k++) {
            s[i + k] = sv_expf(s[i + k] - mx);
            lane[k] += s[i + k];
        }
    return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

/* exp(s[j] - mx) in place over [lo, hi), and their sum: blocks summed in
 * float lanes, the blocks' sums in double, so the relative error stays near
 * 10 float roundings however many keys there are. */
SV_VECTOR_CLONES
static double exp_and_sum(float *s, size_t lo, size_t hi, float mx) {
    double sum = 0;
    size_t j = lo;
    for (; j + EXP_BLOCK <= hi; j += EXP_BLOCK) sum += exp_block(s + j, mx);
    for (; j < hi; j++) {
        s[j] = sv_expf(s[j] - mx);
        sum += s[j];
    }
    return sum;
}

/* The largest of s[lo..hi) (-inf if empty; NaN entries are passed over here
 * and show up in the exponentials). Eight lanes: max is exact, so the order
 * does not matter, and the loop vectorises. */
SV_VECTOR_CLONES
static float row_max(const float *s, size_t lo, size_t hi) {
    float lane[8];
    for (int k = 0; k < 8; k++) lane[k] = -INFINITY;
    size_t j = lo;
    for (; j + 8 <= hi; j += 8)
        for (int k = 0; k < 8; k++) lane[k] = s[j + k] > lane[k] ? s[j + k] : lane[k];
    for (; j < hi; j++) lane[0] = s[j] > lane[0] ? s[j] : lane[0];
    float mx = lane[0];
    for (int k = 1; k < 8; k++) mx = lane[k] > mx ? lane[k] : mx;
    return mx;
}

/* Softmax of each of `rows` rows over its entries [lo[r], hi[r]) (the rest are
 * masked and set to 0). Max-subtracted. */
static void softmax_rows(float *scores, size_t rows, size_t ld, const size_t *lo,
                         const size_t *hi) {
    for (size_t r = 0; r < rows; r++) {
        float *s = scores + r * ld;
        float mx = row_max(s, lo[r], hi[r]);
        float inv = (float)(1.0 / exp_and_sum(s, lo[r], hi[r], mx));
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

typedef struct attn_job {
    const sv_attn_shape *s;
    const float *q, *k, *v;
    size_t n, n_keys, q_pos0, n_blocks;
    int causal;
    float *out;
} attn_job;

/* Task t: head t / n_blocks, query block t % n_blocks. */
static void attend_task(void *arg, size_t t, float *scores) {
    const attn_job *j = arg;
    const sv_attn_shape *s = j->s;
    int h = (int)(t / j->n_blocks), group = s->n_heads / s->n_kv_heads;
    size_t i0 = (t % j->n_blocks) * SV_ATTN_BLOCK;
    size_t rows = j->n - i0 < SV_ATTN_BLOCK ? j->n - i0 : SV_ATTN_BLOCK;
    size_t qoff = (size_t)h * s->head_dim, kvoff = (size_t)(h / group) * s->head_dim;
    attend_block(s, j->q + qoff, j->k + kvoff, j->v + kvoff, j->n_keys, j->causal, j->q_pos0,
                 i0, rows, j->out + qoff, scores);
}

void sv_attention(const sv_attn_shape *s, const float *q, size_t n, const float *k,
                  const float *v, size_t n_keys, int causal, size_t q_pos0, float *out,
                  sv_pool *pool) {
    size_t n_blocks = (n + SV_ATTN_BLOCK - 1) / SV_ATTN_BLOCK;
    attn_job j = {s, q, k, v, n, n_keys, q_pos0, n_blocks, causal, out};
    sv_pool_run(pool, (size_t)s->n_heads * n_blocks, attend_task, &j);
}
