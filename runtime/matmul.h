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

/* weight rows (output columns) per task that matmul.c's panel_rows starts from.
 * Each task's sgemm packs all of x again, so wide panels keep that copy small
 * next to the products (512 rows: one float copied per 1024 FLOPs). */
#define SV_MATMUL_PANEL 512
/* up to this many rows of x, products are dot products, not sgemm (which
 * would copy every weight into its packed layout to use it this few times) */
#define SV_MATMUL_FEW_ROWS 4

typedef struct sv_linear {
    const sv_tensor *w; /* [out, in], any supported dtype */
    const float *bias;  /* [out] fp32 or NULL */
    int in, out;
} sv_linear;

/* Floats of per-thread scratch that sv_linear_apply needs for F16/BF16
 * weights of `in` columns: one converted panel. */
size_t sv_linear_scratch(int in);

/* y[n, out] = x[n, in] · Wᵀ + bias       (nn.Linear). Rows of x are ldx apart,
 * rows of y ldy apart (>= in, >= out). The pool's scratch must hold
 * sv_linear_scratch(in) floats per thread (pool NULL: F32 weights only). */
void sv_linear_apply(const sv_linear *l, const float *x, size_t ldx, size_t n, float *y,
                     size_t ldy, sv_pool *pool);

/* Row `row` of a 2-D tensor as fp32 (embedding lookups). */
void sv_tensor_row(const sv_tensor *t, size_t row, float *out);

#endif
