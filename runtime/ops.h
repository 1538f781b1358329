/* Row-wise building blocks of the forward passes. Every function works on
 * n rows of d contiguous floats, in place unless an output is given. */
#ifndef SV_OPS_H
#define SV_OPS_H

#include <stddef.h>

/* y = x * rsqrt(mean(x^2) + eps) * w                      (LlamaRMSNorm) */
void sv_rmsnorm(const float *x, const float *w, float *y, size_t n, size_t d, float eps);
/* y = (x - mean) / sqrt(var + eps) * w + b, biased var      (nn.LayerNorm) */
void sv_layernorm(const float *x, const float *w, const float *b, float *y, size_t n, size_t d,
                  float eps);
/* x = x * sigmoid(1.702 x)                                   (CLIP quick_gelu) */
void sv_quick_gelu(float *x, size_t n);
/* x = 0.5 x (1 + erf(x / sqrt 2))                            (nn.GELU(), exact) */
void sv_gelu_erf(float *x, size_t n);
/* gate = silu(gate) * up                                     (LlamaMLP act_fn(gate) * up) */
void sv_swiglu(float *gate, const float *up, size_t n);
/* Rotary embedding, HF rotate_half form: dimension i pairs with i + hd/2,
 * angle = pos * theta^(-2i/hd). x holds n rows of n_heads * hd; row r is at
 * absolute position pos0 + r. */
void sv_rope(float *x, size_t n, int n_heads, int hd, size_t row_stride, int pos0, double theta);
/* x += y, n elements */
void sv_add(float *x, const float *y, size_t n);

#endif
