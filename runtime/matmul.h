/* Linear layers on weights kept in their stored dtype.
 *
 * Every matrix product goes through OpenBLAS sgemm, single-threaded inside the
 * pool's tasks (runtime/threads.h): the output columns are cut into panels of
 * weight rows and each task multiplies one panel. F32 weights are used in
 * place from the mapping; F16/BF16 panels are converted by the task that uses
 * them into its thread's scratch, so conversion runs on every thread and the
 * model is never copied to fp32 as a whole. */
#ifndef SV_MATMUL_H
#define SV_MATMUL_H

#include <stddef.h>

#include "safetensors.h"
#include "threads.h"

/* floats of per-thread scratch sv_linear_apply needs (one converted panel) */
#define SV_MATMUL_SCRATCH ((size_t)1 << 20)
/* weight rows (output columns) per task */
#define SV_MATMUL_PANEL 256
/* up to this many rows of x, products are dot products, not sgemm (which
 * would copy every weight into its packed layout to use it this few times) */
#define SV_MATMUL_FEW_ROWS 4

typedef struct sv_linear {
    const sv_tensor *w; /* [out, in], any supported dtype */
    const float *bias;  /* [out] fp32 or NULL */
    int in, out;
} sv_linear;

/* y[n, out] = x[n, in] · Wᵀ + bias       (nn.Linear). Rows of x are ldx apart,
 * rows of y ldy apart (>= in, >= out). The pool's scratch must hold
 * SV_MATMUL_SCRATCH floats per thread (pool NULL: F32 weights only). */
void sv_linear_apply(const sv_linear *l, const float *x, size_t ldx, size_t n, float *y,
                     size_t ldy, sv_pool *pool);

/* Row `row` of a 2-D tensor as fp32 (embedding lookups). */
void sv_tensor_row(const sv_tensor *t, size_t row, float *out);

#endif
