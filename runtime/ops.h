/* Row-wise building blocks of the forward passes. Every function works on
 * n rows of d contiguous floats, in place unless an output is given, and
 * spreads its rows over the pool's threads (pool NULL: the calling thread). */
#ifndef SV_OPS_H
#define SV_OPS_H

#include <stddef.h>
#include <string.h>

#include "threads.h"

/* y = x * rsqrt(mean(x^2) + eps) * w                      (LlamaRMSNorm) */
void sv_rmsnorm(sv_pool *p, const float *x, const float *w, float *y, size_t n, size_t d,
                float eps);
/* y = (x - mean) / sqrt(var + eps) * w + b, biased var      (nn.LayerNorm) */
void sv_layernorm(sv_pool *p, const float *x, const float *w, const float *b, float *y,
                  size_t n, size_t d, float eps);
/* x = x * sigmoid(1.702 x)                                   (CLIP quick_gelu) */
void sv_quick_gelu(sv_pool *p, float *x, size_t n);
/* x = 0.5 x (1 + erf(x / sqrt 2))                            (nn.GELU(), exact) */
void sv_gelu_erf(sv_pool *p, float *x, size_t n);
/* gate = silu(gate) * up                                     (LlamaMLP act_fn(gate) * up) */
void sv_swiglu(sv_pool *p, float *gate, const float *up, size_t n);
/* x += y, n elements */
void sv_add(sv_pool *p, float *x, const float *y, size_t n);

/* e^x in float, within 2 ulp of expf for |x| < 87 (Cephes' polynomial after
 * reducing by ln 2; below -87 it returns about 1e-38 where expf underflows to
 * 0, which no softmax or sigmoid here can tell apart; above 88, e^88). NaN and
 * infinities give NaN, so that broken activations stay detectable. Written
 * without branches or library calls so that loops over it vectorise. */
static inline float sv_expf(float x) {
    float given = x;
    x = x > -87.0f ? x : -87.0f; /* NaN too: the conversion to int below needs a number */
    x = x < 88.0f ? x : 88.0f;
    /* n = round(x / ln 2) by the 1.5·2^23 trick: round to nearest, vectorisable */
    float n = (x * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
    float r = x - n * 0.693359375f + n * 2.12194440e-4f; /* ln 2 split in two */
    float y = 1.9875691500e-4f;
    y = y * r + 1.3981999507e-3f;
    y = y * r + 8.3334519073e-3f;
    y = y * r + 4.1665795894e-2f;
    y = y * r + 1.6666665459e-1f;
    y = y * r + 5.0000001201e-1f;
    y = y * r * r + r + 1.0f;
    int bits = ((int)n + 127) << 23; /* 2^n as a float's bits */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return y * scale + (given - given); /* + 0, or NaN for NaN and infinities */
}

#endif
