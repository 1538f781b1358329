#include <math.h>

#include "ops.h"
#include "simd.h"

/* Arguments of one op over a range of rows or elements. */
typedef struct op_args {
    const float *x, *w, *b;
    float *y;
    size_t d;
    float eps;
} op_args;

/* Rows per task: enough that a task is worth a thread's wake-up. */
static size_t rows_grain(size_t d) { return d >= 16384 ? 1 : 16384 / d; }
#define ELEMENT_GRAIN 16384

static void rmsnorm_rows(void *arg, size_t r0, size_t r1, float *scratch) {
    (void)scratch;
    const op_args *a = arg;
    size_t d = a->d;
    for (size_t r = r0; r < r1; r++) {
        const float *x = a->x + r * d;
        float *y = a->y + r * d;
        double ss = 0;
        for (size_t i = 0; i < d; i++) ss += (double)x[i] * x[i];
        float scale = (float)(1.0 / sqrt(ss / (double)d + a->eps));
        for (size_t i = 0; i < d; i++) y[i] = x[i] * scale * a->w[i];
    }
}

void sv_rmsnorm(sv_pool *p, const float *x, const float *w, float *y, size_t n, size_t d,
                float eps) {
    op_args a = {x, w, NULL, y, d, eps};
    sv_pool_for(p, n, rows_grain(d), rmsnorm_rows, &a);
}

static void layernorm_rows(void *arg, size_t r0, size_t r1, float *scratch) {
    (void)scratch;
    const op_args *a = arg;
    size_t d = a->d;
    for (size_t r = r0; r < r1; r++) {
        const float *x = a->x + r * d;
        float *y = a->y + r * d;
        double mean = 0, var = 0;
        for (size_t i = 0; i < d; i++) mean += x[i];
        mean /= (double)d;
        for (size_t i = 0; i < d; i++) var += (x[i] - mean) * (x[i] - mean);
        double inv = 1.0 / sqrt(var / (double)d + a->eps);
        for (size_t i = 0; i < d; i++) y[i] = (float)((x[i] - mean) * inv) * a->w[i] + a->b[i];
    }
}

void sv_layernorm(sv_pool *p, const float *x, const float *w, const float *b, float *y,
                  size_t n, size_t d, float eps) {
    op_args a = {x, w, b, y, d, eps};
    sv_pool_for(p, n, rows_grain(d), layernorm_rows, &a);
}

SV_VECTOR_CLONES
static void quick_gelu_range(void *arg, size_t i0, size_t i1, float *scratch) {
    (void)scratch;
    float *x = ((const op_args *)arg)->y;
    for (size_t i = i0; i < i1; i++) x[i] = x[i] / (1.0f + sv_expf(-1.702f * x[i]));
}

void sv_quick_gelu(sv_pool *p, float *x, size_t n) {
    op_args a = {.y = x};
    sv_pool_for(p, n, ELEMENT_GRAIN, quick_gelu_range, &a);
}

static void gelu_erf_range(void *arg, size_t i0, size_t i1, float *scratch) {
    (void)scratch;
    float *x = ((const op_args *)arg)->y;
    for (size_t i = i0; i < i1; i++) x[i] = (float)(0.5 * x[i] * (1.0 + erf(x[i] * M_SQRT1_2)));
}

void sv_gelu_erf(sv_pool *p, float *x, size_t n) {
    op_args a = {.y = x};
    sv_pool_for(p, n, ELEMENT_GRAIN, gelu_erf_range, &a);
}

SV_VECTOR_CLONES
static void swiglu_range(void *arg, size_t i0, size_t i1, float *scratch) {
    (void)scratch;
    const op_args *a = arg;
    float *g = a->y;
    for (size_t i = i0; i < i1; i++) g[i] = g[i] / (1.0f + sv_expf(-g[i])) * a->x[i];
}

void sv_swiglu(sv_pool *p, float *gate, const float *up, size_t n) {
    op_args a = {.x = up, .y = gate};
    sv_pool_for(p, n, ELEMENT_GRAIN, swiglu_range, &a);
}

SV_VECTOR_CLONES
static void add_range(void *arg, size_t i0, size_t i1, float *scratch) {
    (void)scratch;
    const op_args *a = arg;
    for (size_t i = i0; i < i1; i++) a->y[i] += a->x[i];
}

void sv_add(sv_pool *p, float *x, const float *y, size_t n) {
    op_args a = {.x = y, .y = x};
    sv_pool_for(p, n, ELEMENT_GRAIN, add_range, &a);
}
