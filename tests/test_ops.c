/* Unit tests of the forward's building blocks against straightforward
 * double-precision implementations of the PyTorch expressions. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "attention.h"
#include "matmul.h"
#include "ops.h"
#include "rope.h"
#include "testutil.h"

/* deterministic values in [-1, 1) */
static void fill(float *x, size_t n, unsigned seed) {
    for (size_t i = 0; i < n; i++) {
        seed = seed * 1664525u + 1013904223u;
        x[i] = (float)((seed >> 8) / (double)(1u << 24) * 2.0 - 1.0);
    }
}

static void test_rmsnorm(void **state) {
    (void)state;
    enum { N = 3, D = 50 };
    float x[N * D], w[D], y[N * D], want[N * D];
    fill(x, N * D, 1);
    fill(w, D, 2);
    for (int r = 0; r < N; r++) {
        double ss = 0;
        for (int i = 0; i < D; i++) ss += (double)x[r * D + i] * x[r * D + i];
        for (int i = 0; i < D; i++)
            want[r * D + i] = (float)(x[r * D + i] / sqrt(ss / D + 1e-5) * w[i]);
    }
    sv_rmsnorm(NULL, x, w, y, N, D, 1e-5f);
    assert_close("rmsnorm", y, want, N * D, 1e-6f);
}

static void test_layernorm(void **state) {
    (void)state;
    enum { N = 2, D = 33 };
    float x[N * D], w[D], b[D], y[N * D], want[N * D];
    fill(x, N * D, 3);
    fill(w, D, 4);
    fill(b, D, 5);
    for (int r = 0; r < N; r++) {
        double mean = 0, var = 0;
        for (int i = 0; i < D; i++) mean += x[r * D + i];
        mean /= D;
        for (int i = 0; i < D; i++) var += pow(x[r * D + i] - mean, 2);
        var /= D; /* biased, as nn.LayerNorm */
        for (int i = 0; i < D; i++)
            want[r * D + i] = (float)((x[r * D + i] - mean) / sqrt(var + 1e-5) * w[i] + b[i]);
    }
    sv_layernorm(NULL, x, w, b, y, N, D, 1e-5f);
    assert_close("layernorm", y, want, N * D, 1e-6f);
}

static void test_activations(void **state) {
    (void)state;
    enum { N = 64 };
    float x[N], g[N], q[N], want_g[N], want_q[N], up[N], s[N], want_s[N];
    fill(x, N, 6);
    fill(up, N, 7);
    for (int i = 0; i < N; i++) {
        x[i] *= 4;
        want_g[i] = (float)(0.5 * x[i] * (1 + erf(x[i] / sqrt(2.0))));
        want_q[i] = (float)(x[i] / (1 + exp(-1.702 * x[i])));
        want_s[i] = (float)(x[i] / (1 + exp(-(double)x[i])) * up[i]);
    }
    memcpy(g, x, sizeof x);
    memcpy(q, x, sizeof x);
    memcpy(s, x, sizeof x);
    sv_gelu_erf(NULL, g, N);
    sv_quick_gelu(NULL, q, N);
    sv_swiglu(NULL, s, up, N);
    assert_close("gelu (erf)", g, want_g, N, 1e-6f);
    assert_close("quick_gelu", q, want_q, N, 1e-6f);
    assert_close("silu(gate)*up", s, want_s, N, 1e-6f);
}

/* HF apply_rotary_pos_emb: q*cos + rotate_half(q)*sin, rotate_half(x) = [-x2, x1]. */
static void test_rope(void **state) {
    (void)state;
    enum { N = 5, H = 3, HD = 8, POS0 = 1000 };
    float x[N * H * HD], want[N * H * HD];
    fill(x, N * H * HD, 8);
    for (int r = 0; r < N; r++)
        for (int h = 0; h < H; h++) {
            const float *v = x + (r * H + h) * HD;
            for (int d = 0; d < HD; d++) {
                int i = d % (HD / 2);
                double angle = (POS0 + r) / pow(10000.0, 2.0 * i / HD);
                double rot = d < HD / 2 ? -v[d + HD / 2] : v[d - HD / 2];
                want[(r * H + h) * HD + d] = (float)(v[d] * cos(angle) + rot * sin(angle));
            }
        }
    float *table = malloc(sizeof(float) * (POS0 + N) * HD);
    sv_rope_table(table, POS0 + N, HD, 10000.0);
    sv_rope(NULL, x, N, H, HD, H * HD, POS0, table);
    free(table);
    assert_close("rope (rotate_half form)", x, want, N * H * HD, 1e-6f);
}

/* Naive attention: one head at a time, full score matrix, in double. Causal
 * with s->window: key j is seen by the query at position p iff
 * p - window < j <= p (transformers' sliding_window_overlay). */
static void naive_attention(const sv_attn_shape *s, const float *q, size_t n, const float *k,
                            const float *v, size_t m, int causal, size_t pos0, float *out) {
    int group = s->n_heads / s->n_kv_heads, hd = s->head_dim;
    double *p = malloc(m * sizeof(double));
    for (int h = 0; h < s->n_heads; h++)
        for (size_t i = 0; i < n; i++) {
            const float *qi = q + i * s->q_stride + (size_t)h * hd;
            size_t visible = causal ? pos0 + i + 1 : m, first = 0;
            if (causal && s->window && visible > s->window) first = visible - s->window;
            double mx = -INFINITY, sum = 0;
            for (size_t j = first; j < visible; j++) {
                const float *kj = k + j * s->kv_stride + (size_t)(h / group) * hd;
                double d = 0;
                for (int t = 0; t < hd; t++) d += (double)qi[t] * kj[t];
                p[j] = d / sqrt(hd);
                mx = fmax(mx, p[j]);
            }
            for (size_t j = first; j < visible; j++) sum += (p[j] = exp(p[j] - mx));
            for (int t = 0; t < hd; t++) {
                double acc = 0;
                for (size_t j = first; j < visible; j++)
                    acc += p[j] / sum * v[j * s->kv_stride + (size_t)(h / group) * hd + t];
                out[i * s->q_stride + (size_t)h * hd + t] = (float)acc;
            }
        }
    free(p);
}

/* GQA (4 query heads on 2 KV heads), causal, with more query rows than one
 * block and an offset into the cache, as in a chunked prefill. */
static void test_attention_gqa(void **state) {
    (void)state;
    enum { H = 4, KV = 2, HD = 8, M = 150, N = 100, POS0 = M - N };
    sv_attn_shape s = {H, KV, HD, H * HD, KV * HD, 0};
    float *q = malloc(sizeof(float) * N * H * HD), *k = malloc(sizeof(float) * M * KV * HD);
    float *v = malloc(sizeof(float) * M * KV * HD), *out = malloc(sizeof(float) * N * H * HD);
    float *want = malloc(sizeof(float) * N * H * HD);
    sv_pool *pool;
    sv_error err;
    if (sv_pool_new(&pool, 2, SV_ATTN_BLOCK * M, &err)) fail_msg("%s", err.msg);
    fill(q, N * H * HD, 9);
    fill(k, M * KV * HD, 10);
    fill(v, M * KV * HD, 11);
    for (int i = 0; i < N * H * HD; i++) q[i] *= 3;
    sv_attention(&s, q, N, k, v, M, 1, POS0, out, pool);
    naive_attention(&s, q, N, k, v, M, 1, POS0, want);
    assert_close("attention causal GQA", out, want, N * H * HD, 1e-5f);
    sv_attention(&s, q, N, k, v, M, 0, 0, out, pool);
    naive_attention(&s, q, N, k, v, M, 0, 0, want);
    assert_close("attention full", out, want, N * H * HD, 1e-5f);
    /* Mistral's sliding window: one key, a window inside a block, across blocks,
     * and wider than the sequence (the same as none) */
    static const size_t windows[] = {1, 7, 90, 1000};
    for (size_t w = 0; w < sizeof windows / sizeof *windows; w++) {
        char what[64];
        s.window = windows[w];
        sv_attention(&s, q, N, k, v, M, 1, POS0, out, pool);
        naive_attention(&s, q, N, k, v, M, 1, POS0, want);
        snprintf(what, sizeof what, "attention sliding window %zu", windows[w]);
        assert_close(what, out, want, N * H * HD, 1e-5f);
    }
    free(q), free(k), free(v), free(out), free(want);
    sv_pool_free(pool);
}

/* sv_expf against exp in double over the range the forward passes use. */
static void test_expf(void **state) {
    (void)state;
    double worst = 0;
    for (float x = -87.0f; x <= 88.0f; x += 0.0037f) {
        double want = exp((double)x), rel = fabs(sv_expf(x) - want) / want;
        if (rel > worst) worst = rel;
    }
    printf("# sv_expf: max relative error %.3g on [-87, 88] (float's ulp: 6e-8 to 1.2e-7)\n",
           worst);
    assert_true(worst < 2.5e-7);
    assert_true(sv_expf(-1000.0f) < 1e-37f && sv_expf(0.0f) == 1.0f);
    assert_true(isnan(sv_expf(NAN)) && isnan(sv_expf(INFINITY)));
}

/* Every op gives the same bits on a pool of 2 threads as on the calling thread alone. */
static void test_ops_threaded(void **state) {
    (void)state;
    enum { N = 300, D = 96 };
    static float x[N * D], w[D], b[D], y1[N * D], y2[N * D], a1[N * D], a2[N * D];
    fill(x, N * D, 12);
    fill(w, D, 13);
    fill(b, D, 14);
    sv_pool *pool;
    sv_error err;
    if (sv_pool_new(&pool, 2, 16, &err)) fail_msg("%s", err.msg);
    sv_rmsnorm(NULL, x, w, y1, N, D, 1e-5f);
    sv_rmsnorm(pool, x, w, y2, N, D, 1e-5f);
    assert_memory_equal(y1, y2, sizeof y1);
    sv_layernorm(NULL, x, w, b, y1, N, D, 1e-5f);
    sv_layernorm(pool, x, w, b, y2, N, D, 1e-5f);
    assert_memory_equal(y1, y2, sizeof y1);
    memcpy(a1, x, sizeof x), memcpy(a2, x, sizeof x);
    sv_quick_gelu(NULL, a1, N * D), sv_quick_gelu(pool, a2, N * D);
    sv_swiglu(NULL, a1, y1, N * D), sv_swiglu(pool, a2, y1, N * D);
    sv_gelu_erf(NULL, a1, N * D), sv_gelu_erf(pool, a2, N * D);
    sv_add(NULL, a1, x, N * D), sv_add(pool, a2, x, N * D);
    assert_memory_equal(a1, a2, sizeof a1);
    sv_pool_free(pool);
}

/* sv_linear_shared of `count` products of one x [n, in] (outs[k] columns
 * each, the second with a bias) against double-precision x·Wᵀ + b, the
 * weights stored as `dtype`; y's rows are wider than the product and the
 * columns past it must stay untouched. */
static void check_linear(sv_dtype dtype, size_t n, int threads, int in, const int *outs,
                         int count) {
    enum { PAD = 5 };
    float *x = malloc(n * (size_t)in * sizeof(float)), *bias = malloc((size_t)outs[1] * sizeof(float));
    float *w[SV_MATMUL_MAX_SHARED], *stored[SV_MATMUL_MAX_SHARED], *y[SV_MATMUL_MAX_SHARED];
    uint16_t *half[SV_MATMUL_MAX_SHARED];
    sv_tensor t[SV_MATMUL_MAX_SHARED];
    sv_linear l[SV_MATMUL_MAX_SHARED];
    sv_product p[SV_MATMUL_MAX_SHARED];
    fill(x, n * (size_t)in, 21);
    fill(bias, (size_t)outs[1], 22);
    for (int k = 0; k < count; k++) {
        size_t weights = (size_t)outs[k] * (size_t)in, ldy = (size_t)outs[k] + PAD;
        w[k] = malloc(weights * sizeof(float)), stored[k] = malloc(weights * sizeof(float));
        half[k] = malloc(weights * sizeof(uint16_t)), y[k] = malloc(n * ldy * sizeof(float));
        fill(w[k], weights, 23 + (unsigned)k);
        const void *data = w[k];
        if (dtype != SV_DTYPE_F32) sv_from_f32(dtype, w[k], half[k], weights), data = half[k];
        sv_to_f32(dtype, data, stored[k], weights); /* the weights as stored */
        t[k] = (sv_tensor){.dtype = dtype, .ndim = 2, .shape = {outs[k], in}, .count = weights,
                           .data = data};
        l[k] = (sv_linear){&t[k], k == 1 ? bias : NULL, in, outs[k]};
        p[k] = (sv_product){&l[k], y[k], ldy};
        for (size_t i = 0; i < n * ldy; i++) y[k][i] = 7.0f;
    }
    sv_pool *pool;
    sv_error err;
    if (sv_pool_new(&pool, threads, sv_linear_scratch(in), &err)) fail_msg("%s", err.msg);
    sv_linear_shared(p, count, x, (size_t)in, n, pool);
    sv_pool_free(pool);
    for (int k = 0; k < count; k++) {
        for (size_t r = 0; r < n; r++)
            for (int c = 0; c < outs[k] + PAD; c++) {
                float got = y[k][r * p[k].ldy + (size_t)c];
                if (c >= outs[k]) {
                    assert_true(got == 7.0f);
                    continue;
                }
                const float *xr = x + r * (size_t)in, *wc = stored[k] + (size_t)c * (size_t)in;
                double want = k == 1 ? bias[c] : 0.0, mag = fabs(want);
                for (int i = 0; i < in; i++) {
                    want += (double)xr[i] * wc[i];
                    mag += fabs((double)xr[i] * wc[i]);
                }
                /* float32 sums of `in` products: within `in` roundings of their magnitudes */
                if (fabs(got - want) > in * 6e-8 * mag)
                    fail_msg("%s, %zu rows, %d threads: y%d[%zu][%d] = %.9g, want %.9g",
                             sv_dtype_name(dtype), n, threads, k, r, c, (double)got, want);
            }
        free(w[k]), free(stored[k]), free(half[k]), free(y[k]);
    }
    free(x), free(bias);
}

/* Three products of one x (uneven widths, as Q|K|V with grouped K/V heads) in
 * every stored dtype, on the sgemm path and the few-rows path, on 1 to 3
 * threads, so in panels of different widths. */
static void test_linear_shared(void **state) {
    (void)state;
    const int outs[3] = {70, 20, 33};
    sv_dtype dtypes[3] = {SV_DTYPE_F32, SV_DTYPE_BF16, SV_DTYPE_F16};
    size_t rows[2] = {3, 37};
    for (int d = 0; d < 3; d++)
        for (int r = 0; r < 2; r++)
            for (int threads = 1; threads <= 3; threads++)
                check_linear(dtypes[d], rows[r], threads, 96, outs, 3);
}

/* One thread multiplies the [2032, 4100] product as one panel, more than a
 * converted slice holds (SV_MATMUL_SLICE_FLOATS, 2032 x 4096): bf16 and f16
 * weights are converted and multiplied in slices of 4096 and 4 columns. */
static void test_linear_sliced(void **state) {
    (void)state;
    const int outs[2] = {2032, 16};
    check_linear(SV_DTYPE_BF16, 37, 1, 4100, outs, 2);
    check_linear(SV_DTYPE_F16, 37, 1, 4100, outs, 2);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rmsnorm),     cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_activations), cmocka_unit_test(test_rope),
        cmocka_unit_test(test_attention_gqa), cmocka_unit_test(test_expf),
        cmocka_unit_test(test_ops_threaded), cmocka_unit_test(test_linear_shared),
        cmocka_unit_test(test_linear_sliced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
