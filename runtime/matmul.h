/* Linear layers on weights kept in their stored dtype.
 *
 * All matrix products go through OpenBLAS sgemm. F32 weights are used in place
 * from the mapping; F16/BF16 weights are converted a tile of rows at a time
 * into a scratch buffer, so the model is never copied to fp32 as a whole. */
#ifndef SV_MATMUL_H
#define SV_MATMUL_H

#include <stddef.h>

#include "safetensors.h"

/* floats of scratch a caller provides to sv_linear_apply */
#define SV_MATMUL_SCRATCH ((size_t)1 << 20)

typedef struct sv_linear {
    const sv_tensor *w; /* [out, in], any supported dtype */
    const float *bias;  /* [out] fp32 or NULL */
    int in, out;
} sv_linear;

/* y[n, out] = x[n, in] · Wᵀ + bias       (nn.Linear). Rows of x are ldx apart,
 * rows of y ldy apart (>= in, >= out). */
void sv_linear_apply(const sv_linear *l, const float *x, size_t ldx, size_t n, float *y,
                     size_t ldy, float *scratch);

/* Row `row` of a 2-D tensor as fp32 (embedding lookups). */
void sv_tensor_row(const sv_tensor *t, size_t row, float *out);

/* Threads OpenBLAS may use (the -t flag). */
void sv_set_threads(int n);

#endif
