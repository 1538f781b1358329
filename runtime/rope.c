#include <math.h>

#include "rope.h"

void sv_rope_table(float *table, size_t n_pos, int hd, double theta) {
    int half = hd / 2;
    for (size_t pos = 0; pos < n_pos; pos++)
        for (int i = 0; i < half; i++) {
            double angle = (double)pos * pow(theta, -2.0 * i / hd);
            float *cs = table + (pos * half + i) * 2;
            cs[0] = (float)cos(angle), cs[1] = (float)sin(angle);
        }
}

typedef struct rope_args {
    float *x;
    int n_heads, hd;
    size_t row_stride, pos0;
    const float *table;
} rope_args;

static void rope_rows(void *arg, size_t r0, size_t r1, float *scratch) {
    (void)scratch;
    const rope_args *a = arg;
    int half = a->hd / 2;
    for (size_t r = r0; r < r1; r++) {
        const float *cs = a->table + (a->pos0 + r) * half * 2;
        for (int h = 0; h < a->n_heads; h++) {
            float *v = a->x + r * a->row_stride + (size_t)h * a->hd;
            for (int i = 0; i < half; i++) {
                float c = cs[2 * i], s = cs[2 * i + 1], x0 = v[i], x1 = v[i + half];
                v[i] = x0 * c - x1 * s;
                v[i + half] = x1 * c + x0 * s;
            }
        }
    }
}

void sv_rope(sv_pool *p, float *x, size_t n, int n_heads, int hd, size_t row_stride,
             size_t pos0, const float *table) {
    rope_args a = {x, n_heads, hd, row_stride, pos0, table};
    sv_pool_for(p, n, 16, rope_rows, &a);
}
