#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "stats.h"

uint64_t sv_rng_next(sv_rng *r) {
    uint64_t z = (r->state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

uint64_t sv_rng_below(sv_rng *r, uint64_t n) {
    /* Reject the top partial block so every residue is equally likely. */
    uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do x = sv_rng_next(r);
    while (x >= limit);
    return x % n;
}

static int sign(double d) { return (d > 0) - (d < 0); }

double sv_kendall_tau_b(const double *x, const double *y, size_t n) {
    /* tau_b = (concordant - discordant) / sqrt((n0 - ties_x) (n0 - ties_y)),
     * a pair tied in both x and y counts in ties_x and in ties_y. */
    double concordant = 0, discordant = 0, ties_x = 0, ties_y = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            int s = sign(x[i] - x[j]) * sign(y[i] - y[j]);
            concordant += s > 0;
            discordant += s < 0;
            ties_x += x[i] == x[j];
            ties_y += y[i] == y[j];
        }
    double n0 = (double)n * ((double)n - 1) / 2;
    double denom = sqrt((n0 - ties_x) * (n0 - ties_y));
    return denom > 0 ? (concordant - discordant) / denom : NAN;
}

void sv_rank_layers(const double *value, int n, int32_t *order) {
    /* Insertion sort keeps equal values in layer order; layer counts are small. */
    for (int i = 0; i < n; i++) {
        int j = i;
        for (; j > 0 && value[order[j - 1]] > value[i]; j--) order[j] = order[j - 1];
        order[j] = i;
    }
}

int sv_distinct_strings(char *const *s, size_t n, const char **out, int max) {
    int k = 0;
    for (size_t i = 0; i < n; i++) {
        int seen = 0;
        for (int j = 0; j < k && !seen; j++) seen = !strcmp(out[j], s[i]);
        if (!seen && k < max) out[k++] = s[i];
    }
    return k;
}

double sv_percentile_sorted(const double *sorted, size_t n, double q) {
    double pos = q * (double)(n - 1);
    size_t i = (size_t)pos;
    if (i + 1 >= n) return sorted[n - 1];
    return sorted[i] + (pos - (double)i) * (sorted[i + 1] - sorted[i]);
}

static int compare_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* Mean of each layer over the rows listed in rows[0..n_rows). */
static void mean_of_rows(const double *lc, int n_layers, const size_t *rows, size_t n_rows,
                         double *mean) {
    memset(mean, 0, (size_t)n_layers * sizeof *mean);
    for (size_t k = 0; k < n_rows; k++)
        for (int l = 0; l < n_layers; l++) mean[l] += lc[rows[k] * (size_t)n_layers + l];
    for (int l = 0; l < n_layers; l++) mean[l] /= (double)n_rows;
}

/* Rank halves of even and odd rows: a deterministic split that needs no seed
 * and keeps any ordering of the manifest balanced between the halves. */
static double split_half_tau(const double *lc, size_t n, int n_layers, size_t *rows,
                             double *mean_a, double *mean_b) {
    if (n < 2) return NAN;
    size_t n_a = 0, n_b = 0;
    for (size_t i = 0; i < n; i += 2) rows[n_a++] = i;
    mean_of_rows(lc, n_layers, rows, n_a, mean_a);
    for (size_t i = 1; i < n; i += 2) rows[n_b++] = i;
    mean_of_rows(lc, n_layers, rows, n_b, mean_b);
    return sv_kendall_tau_b(mean_a, mean_b, (size_t)n_layers);
}

/* Adds 1 to stable[N] for each N whose bottom-N set in `order` equals that of the
 * full data: true exactly when the largest full-data rank among the first N is N-1. */
static void count_stable_bottoms(const int32_t *order, const int32_t *full_rank, int n_layers,
                                 double *stable) {
    int32_t max_rank = -1;
    for (int k = 0; k < n_layers; k++) {
        if (full_rank[order[k]] > max_rank) max_rank = full_rank[order[k]];
        stable[k + 1] += max_rank == k;
    }
}

typedef struct scratch {
    size_t *rows;       /* [n_samples] */
    double *boot;       /* [n_layers * n_boot] resample means, layer-major */
    double *mean_a, *mean_b; /* [n_layers] */
    int32_t *order, *full_rank; /* [n_layers] */
} scratch;

static void scratch_free(scratch *s) {
    free(s->rows), free(s->boot), free(s->mean_a), free(s->mean_b);
    free(s->order), free(s->full_rank);
}

static int scratch_alloc(scratch *s, size_t n, size_t n_layers, size_t n_boot, sv_error *err) {
    memset(s, 0, sizeof *s);
    s->rows = sv_alloc_array(n, sizeof *s->rows, err, "bootstrap rows");
    s->boot = s->rows ? sv_alloc_array(n_layers * n_boot, sizeof *s->boot, err, "bootstrap means")
                      : NULL;
    s->mean_a = s->boot ? sv_alloc_array(n_layers, sizeof(double), err, "half means") : NULL;
    s->mean_b = s->mean_a ? sv_alloc_array(n_layers, sizeof(double), err, "half means") : NULL;
    s->order = s->mean_b ? sv_alloc_array(n_layers, sizeof(int32_t), err, "ranking") : NULL;
    s->full_rank = s->order ? sv_alloc_array(n_layers, sizeof(int32_t), err, "ranking") : NULL;
    if (s->full_rank) return SV_OK;
    scratch_free(s);
    return SV_FAIL;
}

static int result_alloc(sv_layer_stats *out, size_t n_layers, sv_error *err) {
    out->mean = sv_alloc_array(n_layers, sizeof(double), err, "layer means");
    out->ci_lo = out->mean ? sv_alloc_array(n_layers, sizeof(double), err, "intervals") : NULL;
    out->ci_hi = out->ci_lo ? sv_alloc_array(n_layers, sizeof(double), err, "intervals") : NULL;
    out->bottom_stable =
        out->ci_hi ? sv_alloc_array(n_layers + 1, sizeof(double), err, "stability") : NULL;
    if (out->bottom_stable) return SV_OK;
    sv_layer_stats_free(out);
    return SV_FAIL;
}

static int check_input(const double *lc, size_t n, int n_layers, int n_boot, sv_error *err) {
    if (n == 0) return sv_fail(err, "no samples to compute statistics from");
    if (n_layers < 1) return sv_fail(err, "no layers to compute statistics for");
    if (n_boot < 1) return sv_fail(err, "the number of bootstrap resamples must be positive");
    if (n > SIZE_MAX / (size_t)n_layers) return sv_fail(err, "LC matrix size overflows");
    for (size_t i = 0; i < n * (size_t)n_layers; i++)
        if (!isfinite(lc[i]))
            return sv_fail(err, "LC of sample %zu, layer %zu is not a finite number",
                           i / (size_t)n_layers, i % (size_t)n_layers);
    return SV_OK;
}

/* Draws n_boot resamples; fills s->boot and the bottom-N stability counts. */
static void run_bootstrap(sv_layer_stats *out, const double *lc, scratch *s, uint64_t seed) {
    size_t n = out->n_samples, L = (size_t)out->n_layers;
    sv_rng rng = {seed};
    for (int b = 0; b < out->n_boot; b++) {
        for (size_t k = 0; k < n; k++) s->rows[k] = (size_t)sv_rng_below(&rng, n);
        mean_of_rows(lc, out->n_layers, s->rows, n, s->mean_a);
        for (size_t l = 0; l < L; l++) s->boot[l * (size_t)out->n_boot + (size_t)b] = s->mean_a[l];
        sv_rank_layers(s->mean_a, out->n_layers, s->order);
        count_stable_bottoms(s->order, s->full_rank, out->n_layers, out->bottom_stable);
    }
}

int sv_layer_stats_compute(sv_layer_stats *out, const double *lc, size_t n_samples, int n_layers,
                           int n_boot, uint64_t seed, sv_error *err) {
    memset(out, 0, sizeof *out);
    if (check_input(lc, n_samples, n_layers, n_boot, err)) return SV_FAIL;
    scratch s;
    if (scratch_alloc(&s, n_samples, (size_t)n_layers, (size_t)n_boot, err)) return SV_FAIL;
    if (result_alloc(out, (size_t)n_layers, err)) {
        scratch_free(&s);
        return SV_FAIL;
    }
    out->n_layers = n_layers, out->n_samples = n_samples, out->n_boot = n_boot;
    out->seed = seed;

    for (size_t k = 0; k < n_samples; k++) s.rows[k] = k;
    mean_of_rows(lc, n_layers, s.rows, n_samples, out->mean);
    sv_rank_layers(out->mean, n_layers, s.order);
    for (int k = 0; k < n_layers; k++) s.full_rank[s.order[k]] = k;

    run_bootstrap(out, lc, &s, seed);
    out->bottom_stable[0] = n_boot;
    for (int k = 0; k <= n_layers; k++) out->bottom_stable[k] /= n_boot;
    for (int l = 0; l < n_layers; l++) {
        double *col = s.boot + (size_t)l * (size_t)n_boot;
        qsort(col, (size_t)n_boot, sizeof *col, compare_double);
        out->ci_lo[l] = sv_percentile_sorted(col, (size_t)n_boot, 0.025);
        out->ci_hi[l] = sv_percentile_sorted(col, (size_t)n_boot, 0.975);
    }
    out->split_tau = split_half_tau(lc, n_samples, n_layers, s.rows, s.mean_a, s.mean_b);
    scratch_free(&s);
    return SV_OK;
}

void sv_layer_stats_free(sv_layer_stats *s) {
    free(s->mean), free(s->ci_lo), free(s->ci_hi), free(s->bottom_stable);
    memset(s, 0, sizeof *s);
}

int sv_lc_stats_compute(sv_layer_stats out[SV_N_GROUPS], const sv_lc_data *d, int n_boot,
                        uint64_t seed, sv_error *err) {
    memset(out, 0, SV_N_GROUPS * sizeof *out);
    for (int g = 0; g < SV_N_GROUPS; g++) {
        if (!d->lc[g]) continue;
        if (sv_layer_stats_compute(&out[g], d->lc[g], d->n_samples, d->meta.n_layers, n_boot, seed,
                                   err)) {
            sv_lc_stats_free(out);
            return SV_FAIL;
        }
    }
    return SV_OK;
}

void sv_lc_stats_free(sv_layer_stats s[SV_N_GROUPS]) {
    for (int g = 0; g < SV_N_GROUPS; g++) sv_layer_stats_free(&s[g]);
}

int sv_lc_stats_read(const char *path, int n_boot, uint64_t seed, sv_lc_data *d,
                     sv_layer_stats stats[SV_N_GROUPS], sv_error *err) {
    sv_error why;
    memset(stats, 0, SV_N_GROUPS * sizeof *stats);
    if (sv_lc_read(d, path, err)) return SV_FAIL;
    if (d->n_samples > 0 && sv_lc_stats_compute(stats, d, n_boot, seed, &why) == SV_OK)
        return SV_OK;
    if (d->n_samples == 0) sv_fail(err, "%s: the LC file holds no samples yet", path);
    else sv_fail(err, "%s: %s", path, why.msg);
    sv_lc_data_free(d);
    return SV_FAIL;
}
