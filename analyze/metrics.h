/* Divergences between next-token distributions, in double precision. */
#ifndef SV_METRICS_H
#define SV_METRICS_H

/* out[i] = log softmax(logits)[i] */
void sv_log_softmax(const float *logits, int n, double *out);

/* KL(p || q) = Σ p (log p − log q) from log-probabilities (natural log);
 * NaN if either holds NaN. */
double sv_kl_divergence(const double *log_p, const double *log_q, int n);

/* ||a − b||₂ / ||b||₂ */
double sv_relative_l2(const float *a, const float *b, int n);

#endif
