#include <math.h>

#include "metrics.h"

void sv_log_softmax(const float *logits, int n, double *out) {
    double mx = -INFINITY, sum = 0;
    for (int i = 0; i < n; i++) mx = fmax(mx, logits[i]);
    for (int i = 0; i < n; i++) sum += exp(logits[i] - mx);
    double log_z = mx + log(sum);
    for (int i = 0; i < n; i++) out[i] = logits[i] - log_z;
}

double sv_kl_divergence(const double *log_p, const double *log_q, int n) {
    double kl = 0;
    for (int i = 0; i < n; i++) kl += exp(log_p[i]) * (log_p[i] - log_q[i]);
    /* rounding can leave -1e-17 for identical distributions; NaN stays NaN
     * (kl > 0 ? kl : 0 would turn it into a confident LC of 0) */
    return kl < 0 ? 0 : kl;
}

double sv_relative_l2(const float *a, const float *b, int n) {
    double num = 0, den = 0;
    for (int i = 0; i < n; i++) {
        num += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
        den += (double)b[i] * b[i];
    }
    return den > 0 ? sqrt(num / den) : sqrt(num);
}
