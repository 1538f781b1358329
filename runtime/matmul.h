/* Linear layers on weights kept in their stored dtype.
 *
 * Every matrix product goes through OpenBLAS sgemm, single-threaded inside the
 * pool's tasks (runtime/threads.h): the output columns are cut into panels of
 * weight rows and each task multiplies one panel. F32 weights are used in
 * place from the mapping; F16/BF16 panels are converted, a slice of input
 * columns at a time, by the task that uses them into its thread's scratch, so
 * conversion runs on every thread and the model is never copied to fp32 as a
 * whole. */
#ifndef SV_MATMUL_H
#define SV_MATMUL_H

#include <stddef.h>

#include "safetensors.h"
#include "threads.h"

/* The widest panel of weight rows (output columns) a task multiplies. Each
 * task's sgemm packs all of x again, so wide panels keep that copy small
 * next to the products (2048 rows: one float copied per 4096 FLOPs); a
 * layer is cut into at least one panel per thread (matmul.c, plan_panels). */
#define SV_MATMUL_PANEL_MAX 2048
/* floats of a converted F16/BF16 slice of a panel (32 MB): a 2048-row panel
 * of 4096 input columns in one piece, the 11008-wide down projection's in
 * three, so that no thread's scratch outgrows this however wide a layer's
 * input. Each slice after the first reads y back and adds to it: 8 MB slices
 * (in the L3 cache here between conversion and sgemm) measured 2-4% slower. */
#define SV_MATMUL_SLICE_FLOATS ((size_t)1 << 23)
/* up to this many rows of x, products are dot products, not sgemm (which
 * would copy every weight into its packed layout to use it this few times) */
#define SV_MATMUL_FEW_ROWS 4
/* at most this many products share one input in sv_linear_shared */
#define SV_MATMUL_MAX_SHARED 4

typedef struct sv_linear {
    const sv_tensor *w; /* [out, in], any supported dtype */
    const float *bias;  /* [out] fp32 or NULL */
    int in, out;
} sv_linear;

/* Floats of per-thread scratch that sv_linear_apply needs for F16/BF16
 * weights of `in` columns: one converted slice of a panel, or one row. */
size_t sv_linear_scratch(int in);

/* y[n, out] = x[n, in] · Wᵀ + bias       (nn.Linear). Rows of x are ldx apart,
 * rows of y ldy apart (>= in, >= out). The pool's scratch must hold
 * sv_linear_scratch(in) floats per thread (pool NULL: F32 weights only).
 *
 * The panel widths, so the bits of y, depend on the thread count (through
 * the panels each thread gets) but on nothing else: the same thread count
 * gives the same bits on every run, other counts differ by float rounding. */
void sv_linear_apply(const sv_linear *l, const float *x, size_t ldx, size_t n, float *y,
                     size_t ldy, sv_pool *pool);

/* One product of sv_linear_shared: y = x · l->Wᵀ + bias, rows ldy apart. */
typedef struct sv_product {
    const sv_linear *l;
    float *y;
    size_t ldy;
} sv_product;

/* Up to SV_MATMUL_MAX_SHARED products of the same x (Q|K|V, gate|up) as one
 * job: the panels are cut from all of their columns together, so they are
 * wider than each product's own would be (x is packed fewer times) and the
 * threads wait once instead of once a product. */
void sv_linear_shared(const sv_product *p, int count, const float *x, size_t ldx, size_t n,
                      sv_pool *pool);

/* Row `row` of a 2-D tensor as fp32 (embedding lookups). */
void sv_tensor_row(const sv_tensor *t, size_t row, float *out);

#endif
