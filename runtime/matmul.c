#include <cblas.h>
#include <stdint.h>
#include <string.h>

#include "matmul.h"
#include "simd.h"

static int usable_in_place(const sv_tensor *t) {
    return t->dtype == SV_DTYPE_F32 && ((uintptr_t)t->data % sizeof(float)) == 0;
}

typedef struct linear_job {
    const sv_linear *l;
    const float *x;
    size_t ldx, n;
    float *y;
    size_t ldy;
    int panel; /* weight rows per task */
} linear_job;

/* Σ a[k]·b[k] in eight float lanes, written out so that the loop vectorises
 * (one accumulator would pin the order of the additions); fixed order, so
 * the same bits on every run and thread count. */
SV_VECTOR_CLONES
static float dot(const float *restrict a, const float *restrict b, int n) {
    float lane[8] = {0};
    int k = 0;
    for (; k + 8 <= n; k += 8)
        for (int i = 0; i < 8; i++) lane[i] += a[k + i] * b[k + i];
    for (; k < n; k++) lane[0] += a[k] * b[k];
    return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

/* The panel for a few rows of x (decoding a token, the last layer's one row):
 * sgemm would pack every weight to use it once or twice, so each weight row is
 * converted (if it is not f32) into the thread's scratch and dotted with the
 * rows of x while it is in cache. */
static void linear_panel_few_rows(const linear_job *j, int r0, int rows, float *scratch) {
    const sv_linear *l = j->l;
    size_t esize = sv_dtype_size(l->w->dtype);
    for (int c = 0; c < rows; c++) {
        const char *src = (const char *)l->w->data + (size_t)(r0 + c) * l->in * esize;
        const float *w = (const float *)src;
        if (!usable_in_place(l->w)) {
            sv_to_f32(l->w->dtype, src, scratch, (size_t)l->in);
            w = scratch;
        }
        float bias = l->bias ? l->bias[r0 + c] : 0.0f;
        for (size_t r = 0; r < j->n; r++)
            j->y[r * j->ldy + (size_t)(r0 + c)] = dot(j->x + r * j->ldx, w, l->in) + bias;
    }
}

/* y[:, r0:r0+rows] = x · W[r0:r0+rows]ᵀ (+ bias) for one panel of weight rows. */
static void linear_panel(void *arg, size_t task, float *scratch) {
    const linear_job *j = arg;
    const sv_linear *l = j->l;
    int r0 = (int)task * j->panel, rows = l->out - r0 < j->panel ? l->out - r0 : j->panel;
    if (j->n <= SV_MATMUL_FEW_ROWS) {
        linear_panel_few_rows(j, r0, rows, scratch);
        return;
    }
    const float *w;
    if (usable_in_place(l->w)) {
        w = (const float *)l->w->data + (size_t)r0 * l->in;
    } else {
        size_t esize = sv_dtype_size(l->w->dtype);
        sv_to_f32(l->w->dtype, (const char *)l->w->data + (size_t)r0 * l->in * esize, scratch,
                  (size_t)rows * l->in);
        w = scratch;
    }
    /* With a bias, y starts as the bias and sgemm adds to it (beta 1), which
     * spares OpenBLAS its pass that zeroes y (beta 0) and us a pass adding
     * the bias afterwards. */
    float *y = j->y + r0;
    if (l->bias)
        for (size_t r = 0; r < j->n; r++) memcpy(y + r * j->ldy, l->bias + r0, rows * sizeof *y);
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)j->n, rows, l->in, 1.0f, j->x,
                (int)j->ldx, w, l->in, l->bias ? 1.0f : 0.0f, y, (int)j->ldy);
}

/* Weight rows per task: the task count a multiple of 8, so that 2, 4 or 8
 * threads share a layer evenly (11008 columns: 16 panels of 688), with panels
 * of 512 to 1023 rows rounded up to whole 16-row blocks of the sgemm kernels;
 * layers with fewer than 8 x 512 columns (the vision tower's 1024) take 256,
 * so that 4 threads share them. Not a function of the thread count: every
 * output column is computed by the same sgemm call shape however many threads
 * there are, so the results are the same bits on any number of threads. */
static int panel_rows(const sv_linear *l) {
    if (l->out < 8 * SV_MATMUL_PANEL) return SV_MATMUL_PANEL / 2;
    int tasks = 8 * (l->out / (8 * SV_MATMUL_PANEL));
    int rows = (l->out + tasks - 1) / tasks;
    return (rows + 15) & ~15;
}

size_t sv_linear_scratch(int in) { return 2 * (size_t)SV_MATMUL_PANEL * (size_t)in; }

void sv_linear_apply(const sv_linear *l, const float *x, size_t ldx, size_t n, float *y,
                     size_t ldy, sv_pool *pool) {
    if (n == 0) return;
    linear_job j = {l, x, ldx, n, y, ldy, panel_rows(l)};
    sv_pool_run(pool, (size_t)(l->out + j.panel - 1) / (size_t)j.panel, linear_panel, &j);
}

void sv_tensor_row(const sv_tensor *t, size_t row, float *out) {
    size_t cols = t->count / (size_t)t->shape[0];
    size_t esize = sv_dtype_size(t->dtype);
    sv_to_f32(t->dtype, (const char *)t->data + row * cols * esize, out, cols);
}
