#include <cblas.h>
#include <stdint.h>
#include <string.h>

#include "matmul.h"

static int usable_in_place(const sv_tensor *t) {
    return t->dtype == SV_DTYPE_F32 && ((uintptr_t)t->data % sizeof(float)) == 0;
}

/* y[:, c0:c0+rows] = x · W[c0:c0+rows]ᵀ for one tile of weight rows. */
static void gemm_rows(const float *x, size_t ldx, size_t n, const float *w, int in, int rows,
                      float *y, size_t ldy) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)n, rows, in, 1.0f, x, (int)ldx, w,
                in, 0.0f, y, (int)ldy);
}

void sv_linear_apply(const sv_linear *l, const float *x, size_t ldx, size_t n, float *y,
                     size_t ldy, float *scratch) {
    if (n == 0) return;
    if (usable_in_place(l->w)) {
        gemm_rows(x, ldx, n, l->w->data, l->in, l->out, y, ldy);
    } else {
        size_t esize = sv_dtype_size(l->w->dtype);
        int tile = (int)(SV_MATMUL_SCRATCH / (size_t)l->in);
        if (tile < 1) tile = 1;
        for (int r0 = 0; r0 < l->out; r0 += tile) {
            int rows = l->out - r0 < tile ? l->out - r0 : tile;
            const char *src = (const char *)l->w->data + (size_t)r0 * l->in * esize;
            sv_to_f32(l->w->dtype, src, scratch, (size_t)rows * l->in);
            gemm_rows(x, ldx, n, scratch, l->in, rows, y + r0, ldy);
        }
    }
    if (l->bias)
        for (size_t r = 0; r < n; r++) {
            float *yr = y + r * ldy;
            for (int j = 0; j < l->out; j++) yr[j] += l->bias[j];
        }
}

void sv_tensor_row(const sv_tensor *t, size_t row, float *out) {
    size_t cols = t->count / (size_t)t->shape[0];
    size_t esize = sv_dtype_size(t->dtype);
    sv_to_f32(t->dtype, (const char *)t->data + row * cols * esize, out, cols);
}

void sv_set_threads(int n) {
    if (n > 0) openblas_set_num_threads(n);
}
