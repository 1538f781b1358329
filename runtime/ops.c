#include <math.h>

#include "ops.h"

void sv_rmsnorm(const float *x, const float *w, float *y, size_t n, size_t d, float eps) {
    for (size_t r = 0; r < n; r++, x += d, y += d) {
        double ss = 0;
        for (size_t i = 0; i < d; i++) ss += (double)x[i] * x[i];
        float scale = (float)(1.0 / sqrt(ss / (double)d + eps));
        for (size_t i = 0; i < d; i++) y[i] = x[i] * scale * w[i];
    }
}

void sv_layernorm(const float *x, const float *w, const float *b, float *y, size_t n, size_t d,
                  float eps) {
    for (size_t r = 0; r < n; r++, x += d, y += d) {
        double mean = 0, var = 0;
        for (size_t i = 0; i < d; i++) mean += x[i];
        mean /= (double)d;
        for (size_t i = 0; i < d; i++) var += (x[i] - mean) * (x[i] - mean);
        double inv = 1.0 / sqrt(var / (double)d + eps);
        for (size_t i = 0; i < d; i++) y[i] = (float)((x[i] - mean) * inv) * w[i] + b[i];
    }
}

void sv_quick_gelu(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = x[i] / (1.0f + expf(-1.702f * x[i]));
}

void sv_gelu_erf(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = (float)(0.5 * x[i] * (1.0 + erf(x[i] * M_SQRT1_2)));
}

void sv_swiglu(float *gate, const float *up, size_t n) {
    for (size_t i = 0; i < n; i++) gate[i] = gate[i] / (1.0f + expf(-gate[i])) * up[i];
}

void sv_rope(float *x, size_t n, int n_heads, int hd, size_t row_stride, int pos0, double theta) {
    int half = hd / 2;
    for (size_t r = 0; r < n; r++) {
        double pos = (double)pos0 + (double)r;
        for (int i = 0; i < half; i++) {
            double angle = pos * pow(theta, -2.0 * i / hd);
            float c = (float)cos(angle), s = (float)sin(angle);
            for (int h = 0; h < n_heads; h++) {
                float *v = x + r * row_stride + (size_t)h * hd;
                float a = v[i], b = v[i + half];
                v[i] = a * c - b * s;
                v[i + half] = b * c + a * s;
            }
        }
    }
}

void sv_add(float *x, const float *y, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] += y[i];
}
