#include <assert.h>
#include <cblas.h>
#include <stdint.h>
#include <string.h>

#include "matmul.h"
#include "simd.h"

static int usable_in_place(const sv_tensor *t) {
    return t->dtype == SV_DTYPE_F32 && ((uintptr_t)t->data % sizeof(float)) == 0;
}

/* The products of one sv_linear_shared call, each cut into panels of weight
 * rows: task t is panel t - first[k] of product k. */
typedef struct linear_job {
    const sv_product *p;
    const float *x;
    size_t ldx, n;
    int panel[SV_MATMUL_MAX_SHARED];        /* weight rows per task */
    size_t first[SV_MATMUL_MAX_SHARED + 1]; /* each product's first task; the count */
} linear_job;

/* Σ a[k]·b[k] in eight float lanes, written out so that the loop vectorises
 * (one accumulator would pin the order of the additions); fixed order, so
 * the same bits on every run. */
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
static void linear_panel_few_rows(const linear_job *j, const sv_product *p, int r0, int rows,
                                  float *scratch) {
    const sv_linear *l = p->l;
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
            p->y[r * p->ldy + (size_t)(r0 + c)] = dot(j->x + r * j->ldx, w, l->in) + bias;
    }
}

_Static_assert(SV_MATMUL_SLICE_FLOATS / SV_MATMUL_PANEL_MAX >= 256,
               "a slice of the widest panel holds at least 256 input columns");

/* Input columns per slice of a converted panel of `rows` weight rows: the
 * slice fills at most SV_MATMUL_SLICE_FLOATS, in whole 256-column steps. */
static int slice_columns(int rows, int in) {
    int cols = (int)(SV_MATMUL_SLICE_FLOATS / (size_t)rows) & ~255;
    return cols < in ? cols : in;
}

/* y[:, r0:r0+rows] = x · W[r0:r0+rows]ᵀ (+ bias) for one panel of one product.
 * F32 weights are multiplied in place. Others are converted into the thread's
 * scratch a slice of input columns at a time (SV_MATMUL_SLICE_FLOATS) and
 * each slice's product is added to y; x is still packed once a panel in all,
 * each slice packing its own columns of it. */
static void linear_panel(void *arg, size_t task, float *scratch) {
    const linear_job *j = arg;
    int k = 0;
    while (task >= j->first[k + 1]) k++;
    const sv_product *p = &j->p[k];
    const sv_linear *l = p->l;
    int r0 = (int)(task - j->first[k]) * j->panel[k];
    int rows = l->out - r0 < j->panel[k] ? l->out - r0 : j->panel[k];
    if (j->n <= SV_MATMUL_FEW_ROWS) {
        linear_panel_few_rows(j, p, r0, rows, scratch);
        return;
    }
    /* With a bias, y starts as the bias and sgemm adds to it (beta 1), which
     * spares OpenBLAS its pass that zeroes y (beta 0) and us a pass adding
     * the bias afterwards. */
    float *y = p->y + r0;
    if (l->bias)
        for (size_t r = 0; r < j->n; r++) memcpy(y + r * p->ldy, l->bias + r0, rows * sizeof *y);
    float beta = l->bias ? 1.0f : 0.0f;
    if (usable_in_place(l->w)) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)j->n, rows, l->in, 1.0f, j->x,
                    (int)j->ldx, (const float *)l->w->data + (size_t)r0 * l->in, l->in, beta, y,
                    (int)p->ldy);
        return;
    }
    size_t esize = sv_dtype_size(l->w->dtype);
    int step = slice_columns(rows, l->in);
    for (int c0 = 0; c0 < l->in; c0 += step, beta = 1.0f) {
        int cols = l->in - c0 < step ? l->in - c0 : step;
        for (int r = 0; r < rows; r++)
            sv_to_f32(l->w->dtype,
                      (const char *)l->w->data + ((size_t)(r0 + r) * l->in + c0) * esize,
                      scratch + (size_t)r * cols, (size_t)cols);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)j->n, rows, cols, 1.0f,
                    j->x + c0, (int)j->ldx, scratch, cols, beta, y, (int)p->ldy);
    }
}

static size_t ceil_div(size_t a, size_t b) { return (a + b - 1) / b; }

/* Cuts each product into equal panels of weight rows (rounded up to whole
 * 16-row blocks of the sgemm kernels) of at most SV_MATMUL_PANEL_MAX rows,
 * the fewest whose task count the threads share evenly: 7B on 2 threads,
 * Q|K|V in 6 tasks of 2048 rows, gate|up in 12 of 1840, O and down in 2 of
 * 2048, CLIP's q|k|v in 6 of 512 (3 of 1024 would keep one thread idle for a
 * third of the time). */
static void plan_panels(linear_job *j, int count, int threads) {
    size_t total = 0;
    for (int k = 0; k < count; k++) total += (size_t)j->p[k].l->out;
    for (size_t m = ceil_div(total, (size_t)threads * SV_MATMUL_PANEL_MAX);; m++) {
        size_t target = ceil_div(total, (size_t)threads * m);
        for (int k = 0; k < count; k++) {
            size_t out = (size_t)j->p[k].l->out, rows = ceil_div(out, ceil_div(out, target));
            j->panel[k] = (int)((rows + 15) & ~(size_t)15);
            j->first[k + 1] = j->first[k] + ceil_div(out, (size_t)j->panel[k]);
        }
        if (j->first[count] % (size_t)threads == 0 || target <= 16) return;
    }
}

size_t sv_linear_scratch(int in) {
    size_t panel = (size_t)SV_MATMUL_PANEL_MAX * (size_t)in;
    size_t slice = panel < SV_MATMUL_SLICE_FLOATS ? panel : SV_MATMUL_SLICE_FLOATS;
    return (size_t)in > slice ? (size_t)in : slice;
}

void sv_linear_shared(const sv_product *p, int count, const float *x, size_t ldx, size_t n,
                      sv_pool *pool) {
    assert(count <= SV_MATMUL_MAX_SHARED);
    if (n == 0 || count == 0) return;
    linear_job j = {.p = p, .x = x, .ldx = ldx, .n = n};
    plan_panels(&j, count, sv_pool_threads(pool));
    sv_pool_run(pool, j.first[count], linear_panel, &j);
}

void sv_linear_apply(const sv_linear *l, const float *x, size_t ldx, size_t n, float *y,
                     size_t ldy, sv_pool *pool) {
    sv_product p = {l, y, ldy};
    sv_linear_shared(&p, 1, x, ldx, n, pool);
}

void sv_tensor_row(const sv_tensor *t, size_t row, float *out) {
    size_t cols = t->count / (size_t)t->shape[0];
    size_t esize = sv_dtype_size(t->dtype);
    sv_to_f32(t->dtype, (const char *)t->data + row * cols * esize, out, cols);
}
