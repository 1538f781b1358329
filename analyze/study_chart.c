/* What a study shows: the strategies compared at each N, in a sentence and in
 * the chart accuracy vs FLOPs ratio. */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lcfile.h"
#include "stats.h"
#include "study.h"

static const char *const colour[SV_N_STRATEGIES] = {"#444444", "#1f77b4", "#d62728", "#ff7f0e"};

static int compare_ints(const void *a, const void *b) {
    int x = *(const int *)a, y = *(const int *)b;
    return (x > y) - (x < y);
}

int sv_study_counts(const sv_study *s, int *counts, int max) {
    int n = 0;
    for (size_t r = 0; r < s->n_runs && n < max; r++)
        if (s->runs[r].strategy == SV_STRATEGY_LC) counts[n++] = s->runs[r].n_frozen;
    qsort(counts, (size_t)n, sizeof *counts, compare_ints);
    return n;
}

/* The per-sample score of the strategy at one N: a run's 0/1, or for random
 * the mean over its sets. */
static double sample_score(const sv_study *s, sv_strategy strategy, int n_frozen, size_t i) {
    double sum = 0;
    int runs = 0;
    for (size_t r = 0; r < s->n_runs; r++) {
        const sv_study_run *run = &s->runs[r];
        if (run->strategy == strategy && run->n_frozen == n_frozen)
            sum += run->correct[i], runs++;
    }
    return runs ? sum / runs : 0;
}

/* LC-ordered minus `other` at N, sample by sample (see sv_paired_difference);
 * set_variance: the variance of the strategy's mean over its layer sets. */
static sv_paired_difference paired_difference(const sv_study *s, int n_frozen,
                                              sv_strategy other, double set_variance) {
    size_t n = s->n_samples;
    double mean = 0, squares = 0; /* Welford: each difference is computed once */
    for (size_t i = 0; i < n; i++) {
        double d = sample_score(s, SV_STRATEGY_LC, n_frozen, i) -
                   sample_score(s, other, n_frozen, i);
        double step = d - mean;
        mean += step / (double)(i + 1);
        squares += step * (d - mean);
    }
    double se = sqrt((n > 1 ? squares / (double)(n - 1) / (double)n : 0) + set_variance);
    const double z = 1.959963984540054; /* the normal distribution's 97.5th percentile */
    return (sv_paired_difference){mean, mean - z * se, mean + z * se};
}

/* The sample variance (ddof 1) of the random sets' accuracies at N; 0 for one set. */
static double random_sets_variance(const sv_study *s, int n_frozen, double mean) {
    double squares = 0;
    int sets = 0;
    for (size_t r = 0; r < s->n_runs; r++) {
        const sv_study_run *run = &s->runs[r];
        if (run->strategy == SV_STRATEGY_RANDOM && run->n_frozen == n_frozen) {
            squares += (run->result.accuracy - mean) * (run->result.accuracy - mean);
            sets++;
        }
    }
    return sets > 1 ? squares / (sets - 1) : 0;
}

int sv_study_compare(const sv_study *s, int n_frozen, sv_study_comparison *c, sv_error *err) {
    *c = (sv_study_comparison){.n_frozen = n_frozen, .random_min = INFINITY,
                               .random_max = -INFINITY};
    for (size_t r = 0; r < s->n_runs; r++) {
        const sv_study_run *run = &s->runs[r];
        double acc = run->result.accuracy;
        if (run->strategy == SV_STRATEGY_DENSE) c->dense = &run->result;
        if (run->n_frozen != n_frozen) continue;
        if (run->strategy == SV_STRATEGY_LC) c->lc = &run->result;
        if (run->strategy == SV_STRATEGY_REVERSE) c->reverse = &run->result;
        if (run->strategy == SV_STRATEGY_RANDOM) {
            c->n_random++, c->random_mean += acc;
            c->random_min = fmin(c->random_min, acc), c->random_max = fmax(c->random_max, acc);
        }
    }
    if (!c->dense) return sv_fail(err, "study: no dense run to compare with");
    if (!c->lc) return sv_fail(err, "study: no LC-ordered run freezes %d layers", n_frozen);
    if (c->n_random) {
        c->random_mean /= c->n_random;
        c->vs_random = paired_difference(s, n_frozen, SV_STRATEGY_RANDOM,
                                         random_sets_variance(s, n_frozen, c->random_mean) /
                                             c->n_random);
    }
    if (c->reverse) c->vs_reverse = paired_difference(s, n_frozen, SV_STRATEGY_REVERSE, 0);
    c->flops_ratio = c->lc->flops_ratio;
    return SV_OK;
}

int sv_study_types(const sv_study *s, const char **types, int max) {
    return s->sample_types ? sv_distinct_strings(s->sample_types, s->n_samples, types, max) : 0;
}

double sv_study_type_accuracy(const sv_study *s, sv_strategy strategy, int n_frozen,
                              const char *type) {
    double correct = 0;
    size_t answered = 0;
    for (size_t r = 0; s->sample_types && r < s->n_runs; r++) {
        const sv_study_run *run = &s->runs[r];
        if (run->strategy != strategy || (strategy != SV_STRATEGY_DENSE &&
                                          run->n_frozen != n_frozen))
            continue;
        for (size_t i = 0; i < s->n_samples; i++)
            if (!strcmp(s->sample_types[i], type)) correct += run->correct[i], answered++;
    }
    return answered ? correct / (double)answered : NAN;
}

/* ---------------------------------------------------------------- the sentence */

/* Appends to out (size bytes in all) at *used, never past the end. */
static void __attribute__((format(printf, 4, 5)))
append(char *out, size_t size, size_t *used, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (*used < size) {
        int n = vsnprintf(out + *used, size - *used, fmt, ap);
        *used += n > 0 ? (size_t)n : 0;
    }
    va_end(ap);
}

/* A difference of accuracies in signed points, "+2.6"; with two decimals
 * where one would show a bound that is not zero as +0.0 or -0.0. */
static const char *points(double fraction, char buf[16]) {
    double p = 100 * fraction;
    snprintf(buf, 16, fabs(p) < 0.05 && p != 0 ? "%+.2f" : "%+.1f", p);
    return buf;
}

/* ", +2.6 points over random (95% interval +1.0 to +4.2)" */
static void append_difference(char *out, size_t size, size_t *used, const char *other,
                              const sv_paired_difference *d, int first) {
    char mean[16], low[16], high[16];
    append(out, size, used, ", %s points over %s (%s%s to %s)", points(d->mean, mean), other,
           first ? "95% interval " : "", points(d->low, low), points(d->high, high));
}

/* The verdict claims a lead only if LC-ordered beats every other strategy run,
 * and one beyond sampling noise only if every paired interval is above zero. */
static void verdict(const sv_study_comparison *c, char *out, size_t size, size_t *used) {
    double lc = c->lc->accuracy;
    double rnd = c->n_random ? c->random_mean : -INFINITY;
    double rev = c->reverse ? c->reverse->accuracy : -INFINITY;
    if (!isfinite(fmax(rnd, rev))) return;
    if (lc <= fmax(rnd, rev)) {
        append(out, size, used, ": LC-ordered does not lead; %s did as well or better",
               rnd >= lc && rev >= lc ? "random and reverse" : rnd >= lc ? "random" : "reverse");
        return;
    }
    int clear = (!c->n_random || c->vs_random.low > 0) && (!c->reverse || c->vs_reverse.low > 0);
    append(out, size, used, ": LC-ordered leads%s", clear ? " beyond sampling noise"
                                                         : ", but not beyond sampling noise");
    if (c->n_random) append_difference(out, size, used, "random", &c->vs_random, 1);
    if (c->reverse) append_difference(out, size, used, "reverse", &c->vs_reverse, !c->n_random);
}

void sv_study_sentence(const sv_study_comparison *c, char *out, size_t size) {
    size_t used = 0;
    if (size) out[0] = '\0';
    append(out, size, &used, "At N=%d (%.0f%% of dense prefill FLOPs) LC-ordered keeps %.1f%%",
           c->n_frozen, 100 * c->flops_ratio, 100 * c->lc->accuracy);
    if (c->n_random)
        append(out, size, &used, " vs %.1f%% for random (mean of %d set%s, %.1f-%.1f%%)",
               100 * c->random_mean, c->n_random, c->n_random == 1 ? "" : "s",
               100 * c->random_min, 100 * c->random_max);
    if (c->reverse)
        append(out, size, &used, "%s %.1f%% for reverse", c->n_random ? " and" : " vs",
               100 * c->reverse->accuracy);
    append(out, size, &used, " (dense %.1f%%)", 100 * c->dense->accuracy);
    verdict(c, out, size, &used);
    append(out, size, &used, ".");
}

/* ---------------------------------------------------------------- the chart */

/* study_<strategy>.dat, one line per N in ascending order:
 *   dense, lc, reverse  N flops_ratio accuracy% ci95_low% ci95_high%   (dense: N = 0)
 *   random              N flops_ratio mean% min% max%                  (over the sets)
 * *n_points is the number of lines written. */
static void write_points(FILE *f, const sv_study *s, sv_strategy strategy, const int *counts,
                         int n_counts, int *n_points) {
    *n_points = 0;
    fprintf(f, strategy == SV_STRATEGY_RANDOM ? "# N flops_ratio mean min max\n"
                                              : "# N flops_ratio accuracy ci95_lo ci95_hi\n");
    for (int i = 0; i < n_counts; i++) {
        sv_study_comparison c;
        if (sv_study_compare(s, counts[i], &c, NULL)) continue;
        const sv_eval_summary *e = strategy == SV_STRATEGY_DENSE ? c.dense
                                   : strategy == SV_STRATEGY_LC  ? c.lc
                                                                 : c.reverse;
        if (strategy == SV_STRATEGY_RANDOM && c.n_random)
            fprintf(f, "%d %.6f %.4f %.4f %.4f\n", c.n_frozen, c.flops_ratio,
                    100 * c.random_mean, 100 * c.random_min, 100 * c.random_max);
        else if (strategy != SV_STRATEGY_RANDOM && e)
            fprintf(f, "%d %.6f %.4f %.4f %.4f\n", e == c.dense ? 0 : c.n_frozen,
                    e->flops_ratio, 100 * e->accuracy, 100 * e->ci_low, 100 * e->ci_high);
        else
            continue;
        (*n_points)++;
        if (strategy == SV_STRATEGY_DENSE) break; /* one dense point, whatever the N */
    }
}

static const char *const series_title[SV_N_STRATEGIES] = {
    "dense model", "lowest LC (ShortV)", "highest LC (reverse)", "random (mean, min-max)"};

/* Writes study_<strategy>.dat; *has_data tells whether it holds any point. */
static int write_series(const sv_study *s, sv_gnuplot *gp, sv_strategy strategy,
                        const int *counts, int n_counts, int *has_data, sv_error *err) {
    char name[SV_GP_NAME_LEN];
    snprintf(name, sizeof name, "study_%s.dat", sv_strategy_name(strategy));
    FILE *f = sv_gp_create(gp, name, err);
    if (!f) return SV_FAIL;
    write_points(f, s, strategy, counts, n_counts, has_data);
    return sv_gp_close(gp, f, name, err);
}

/* The x axis starts at the 0.05 step below the smallest FLOPs ratio. */
static double x_floor(const sv_study *s) {
    double lo = 1;
    for (size_t r = 0; r < s->n_runs; r++) lo = fmin(lo, s->runs[r].result.flops_ratio);
    return fmax(0, floor((lo - 0.05) * 20) / 20);
}

/* The y axis (percent) starts at the 10-point step at least 2 points below the
 * lowest interval drawn, so that gaps of a few points stay visible. */
static double y_floor(const sv_study *s) {
    double lo = 1;
    for (size_t r = 0; r < s->n_runs; r++) lo = fmin(lo, s->runs[r].result.ci_low);
    return fmax(0, floor((100 * lo - 2) / 10) * 10);
}

/* No title (the report's caption and the study's summary say what it shows);
 * every strategy has its own marker and dash as well as colour, so that the
 * chart reads in greyscale; error bars stay solid. */
static void write_script(FILE *f, const sv_study *s, sv_gnuplot *gp,
                         const int has_data[SV_N_STRATEGIES], const sv_eval_summary *dense) {
    fprintf(f, "dense_acc = %.4f\n", 100 * dense->accuracy);
    fprintf(f, "dx = %.4f  # the strategies' points at one N are drawn slightly apart\n",
            (1 - x_floor(s)) / 250);
    sv_gp_begin_plot(gp, f, SV_STUDY_CHART);
    fprintf(f, "set xlabel 'prefill FLOPs of the decoder, share of dense'\n");
    fprintf(f, "set ylabel 'accuracy (%%), 95%% Wilson interval'\n");
    fprintf(f, "set xrange [%.2f:1.02]\nset yrange [%g:100]\n", x_floor(s), y_floor(s));
    fprintf(f, "set key below box noopaque height 1 maxcols 2\n"
               "set bmargin 8  # room for the x label above the key\n");
    static const int point[SV_N_STRATEGIES] = {13, 7, 9, 5}, dash[SV_N_STRATEGIES] = {3, 1, 2, 4};
    fprintf(f, "plot dense_acc with lines dt %d lw 2 lc rgb '%s' "
               "title sprintf('%s (%%.1f%%%%)', dense_acc), \\\n"
               "     'study_dense.dat' using 2:3:4:5 with yerrorbars lw 2 pt %d ps 1.5 "
               "lc rgb '%s' notitle",
            dash[0], colour[0], series_title[0], point[0], colour[0]);
    static const char *const shift[SV_N_STRATEGIES] = {"", "2", "($2-dx)", "($2+dx)"};
    for (int k = SV_STRATEGY_LC; k < SV_N_STRATEGIES; k++)
        if (has_data[k])
            fprintf(f, ", \\\n     'study_%s.dat' using %s:3:4:5 with yerrorbars lw 2 pt %d "
                       "ps 1.3 lc rgb '%s' notitle, \\\n"
                       "     '' using %s:3 with linespoints lw 2.5 dt %d pt %d ps 1.3 "
                       "lc rgb '%s' title '%s'",
                    sv_strategy_name(k), shift[k], point[k], colour[k], shift[k], dash[k],
                    point[k], colour[k], series_title[k]);
    fprintf(f, ", \\\n     'study_lc.dat' using 2:(%g):(sprintf('N=%%d', $1)) with labels "
               "tc rgb '#555555' notitle\n", y_floor(s) + 0.03 * (100 - y_floor(s)));
    sv_gp_end_plot(f);
}

int sv_study_chart_write(const sv_study *s, sv_gnuplot *gp, sv_error *err) {
    int counts[SV_STUDY_MAX_COUNTS], has_data[SV_N_STRATEGIES] = {0};
    int n_counts = sv_study_counts(s, counts, SV_STUDY_MAX_COUNTS);
    sv_study_comparison c;
    if (n_counts == 0) return sv_fail(err, "study: no LC-ordered run to draw");
    if (sv_study_compare(s, counts[0], &c, err)) return SV_FAIL;
    for (int k = 0; k < SV_N_STRATEGIES; k++)
        if (write_series(s, gp, (sv_strategy)k, counts, n_counts, &has_data[k], err))
            return SV_FAIL;
    FILE *f = sv_gp_create_script(gp, "Accuracy vs FLOPs of a freeze study, written by shortv "
                                      "study", err);
    if (!f) return SV_FAIL;
    write_script(f, s, gp, has_data, c.dense);
    return sv_gp_close(gp, f, SV_STUDY_SCRIPT, err);
}

int sv_study_draw(const sv_study *s, const char *dir, sv_error *err) {
    sv_gnuplot gp;
    if (sv_gp_open(&gp, dir, SV_STUDY_SCRIPT, err)) return SV_FAIL;
    return sv_gp_finish(&gp, sv_study_chart_write(s, &gp, err), err);
}
