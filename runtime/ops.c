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

/* Σ x[i] and Σ (x[i] - c)² in double, in four lanes written out so that the
 * loops vectorise (one accumulator would pin the order of the additions). */
SV_VECTOR_CLONES
static double sum(const float *x, size_t d) {
    double lane[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= d; i += 4)
        for (int k = 0; k < 4; k++) lane[k] += x[i + k];
    for (; i < d; i++) lane[0] += x[i];
    return (lane[0] + lane[1]) + (lane[2] + lane[3]);
}

SV_VECTOR_CLONES
static double sum_sq_dev(const float *x, size_t d, double c) {
    double lane[4] = {0, 0, 0, 0};
    size_t i = 0;
    for (; i + 4 <= d; i += 4)
        for (int k = 0; k < 4; k++) lane[k] += (x[i + k] - c) * (x[i + k] - c);
    for (; i < d; i++) lane[0] += (x[i] - c) * (x[i] - c);
    return (lane[0] + lane[1]) + (lane[2] + lane[3]);
}

static void rmsnorm_rows(void *arg, size_t r0, size_t r1, float *scratch) {
    (void)scratch;
    const op_args *a = arg;
    size_t d = a->d;
    for (size_t r = r0; r < r1; r++) {
        const float *x = a->x + r * d;
        float *y = a->y + r * d;
        float scale = (float)(1.0 / sqrt(sum_sq_dev(x, d, 0.0) / (double)d + a->eps));
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
        double mean = sum(x, d) / (double)d;
        double inv = 1.0 / sqrt(sum_sq_dev(x, d, mean) / (double)d + a->eps);
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
