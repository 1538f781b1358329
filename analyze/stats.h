/* How far a layer ranking can be trusted: bootstrap intervals of each layer's
 * mean LC, Kendall's tau-b between two rankings, the split-half check and the
 * stability of the bottom-N layer sets under resampling.
 *
 * Everything sampled comes from a seeded splitmix64 generator, so the same
 * input and seed give the same numbers on every machine. */
#ifndef SV_STATS_H
#define SV_STATS_H

#include <stddef.h>
#include <stdint.h>

#include "lcfile.h"
#include "status.h"

#define SV_BOOT_DEFAULT 2000
#define SV_BOOT_SEED_DEFAULT 0

/* splitmix64 (Steele, Lea, Flood 2014; the reference code of xoshiro's authors). */
typedef struct sv_rng {
    uint64_t state;
} sv_rng;

uint64_t sv_rng_next(sv_rng *r);
/* Uniform integer in [0, n), n > 0, without modulo bias. */
uint64_t sv_rng_below(sv_rng *r, uint64_t n);

/* Kendall's tau-b of paired values x[i], y[i] (ties handled as in scipy.stats.kendalltau);
 * NaN when n < 2 or either side is constant. O(n^2): meant for layer counts. */
double sv_kendall_tau_b(const double *x, const double *y, size_t n);

/* Layers by ascending value, ties by lower layer index: the order used for every
 * ranking compared here. order has n entries. */
void sv_rank_layers(const double *value, int n, int32_t *order);

/* The trust statistics of one group's LC matrix. */
typedef struct sv_layer_stats {
    int n_layers;
    size_t n_samples;
    int n_boot;
    uint64_t seed;       /* of the resampling */
    double *mean;        /* [n_layers] mean over all samples */
    double *ci_lo;       /* [n_layers] 2.5th percentile of the bootstrap means */
    double *ci_hi;       /* [n_layers] 97.5th percentile */
    double *bottom_stable; /* [n_layers + 1] index N: share of resamples whose N lowest layers
                              are the same set as the full data's (1 for N = 0 and N = L) */
    double split_tau;    /* tau-b between the rankings of the even and the odd rows; NaN if n < 2 */
} sv_layer_stats;

/* lc: n_samples rows of n_layers values (row-major). Resamples n_samples rows
 * with replacement n_boot times. Percentiles interpolate linearly between order
 * statistics (numpy's default). */
int sv_layer_stats_compute(sv_layer_stats *out, const double *lc, size_t n_samples, int n_layers,
                           int n_boot, uint64_t seed, sv_error *err);
void sv_layer_stats_free(sv_layer_stats *s);

/* The statistics of every group swept in d (entries of other groups stay zeroed). */
int sv_lc_stats_compute(sv_layer_stats out[SV_N_GROUPS], const sv_lc_data *d, int n_boot,
                        uint64_t seed, sv_error *err);
void sv_lc_stats_free(sv_layer_stats s[SV_N_GROUPS]);
/* Reads the LC file at path into *d and computes stats of its groups; an error names
 * path. On failure nothing is left to free. */
int sv_lc_stats_read(const char *path, int n_boot, uint64_t seed, sv_lc_data *d,
                     sv_layer_stats stats[SV_N_GROUPS], sv_error *err);

/* The distinct strings of s[0 .. n) in order of first appearance (pointers into s),
 * at most max; returns how many. For grouping samples by question type. */
int sv_distinct_strings(char *const *s, size_t n, const char **out, int max);

/* Percentile q in [0, 1] of n sorted values, linear interpolation. */
double sv_percentile_sorted(const double *sorted, size_t n, double q);

#endif
