#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gnuplot.h"
#include "plot.h"

#define SCRIPT "plots.gp"

static const char *const group_colour[SV_N_GROUPS] = {"#1f77b4", "#d62728"};

/* One run of sv_plot_draw: what it draws and the gnuplot job drawing it. */
typedef struct plot_job {
    const sv_lc_data *d;
    const sv_layer_stats *st;
    sv_gnuplot gp;
    sv_heat_scale heat[SV_N_GROUPS];
    int has_zero[SV_N_GROUPS]; /* a mean or interval bound of the group is 0 */
} plot_job;

/* ---------------------------------------------------------------- data files */

/* layers_<g>.dat: one line per layer in layer order. */
static void write_layers(FILE *f, const sv_lc_data *d, const sv_layer_stats *s, int g) {
    fprintf(f, "# layer mean_lc std ci95_lo ci95_hi\n");
    for (int l = 0; l < s->n_layers; l++)
        fprintf(f, "%d %.10g %.10g %.10g %.10g\n", l, s->mean[l], d->std[g][l], s->ci_lo[l],
                s->ci_hi[l]);
}

/* ranking_<g>.dat: layers by ascending mean LC (the order a freeze config uses). */
static void write_ranking(FILE *f, const sv_lc_data *d, const sv_layer_stats *s, int g) {
    fprintf(f, "# rank layer mean_lc ci95_lo ci95_hi\n");
    for (int r = 0; r < s->n_layers; r++) {
        int l = d->order[g][r];
        fprintf(f, "%d %d %.10g %.10g %.10g\n", r + 1, l, s->mean[l], s->ci_lo[l], s->ci_hi[l]);
    }
}

/* lc_<g>.dat: gnuplot matrix, one row per layer, one column per sample. */
static void write_matrix(FILE *f, const sv_lc_data *d, int g) {
    int L = d->meta.n_layers;
    for (int l = 0; l < L; l++)
        for (size_t i = 0; i < d->n_samples; i++)
            fprintf(f, "%.10g%c", d->lc[g][i * (size_t)L + (size_t)l],
                    i + 1 < d->n_samples ? ' ' : '\n');
}

/* stability_<g>.dat: N and the share of resamples keeping the bottom-N set. */
static void write_stability(FILE *f, const sv_layer_stats *s) {
    fprintf(f, "# N share_of_resamples\n");
    for (int k = 1; k <= s->n_layers; k++) fprintf(f, "%d %.6f\n", k, s->bottom_stable[k]);
}

static int write_group_data(plot_job *job, int g, sv_error *err) {
    static const char *const kinds[] = {"layers", "ranking", "lc", "stability"};
    for (int k = 0; k < 4; k++) {
        char name[SV_GP_NAME_LEN];
        snprintf(name, sizeof name, "%s_%s.dat", kinds[k], sv_group_name(g));
        FILE *f = sv_gp_create(&job->gp, name, err);
        if (!f) return SV_FAIL;
        if (k == 0) write_layers(f, job->d, &job->st[g], g);
        if (k == 1) write_ranking(f, job->d, &job->st[g], g);
        if (k == 2) write_matrix(f, job->d, g);
        if (k == 3) write_stability(f, &job->st[g]);
        if (sv_gp_close(&job->gp, f, name, err)) return SV_FAIL;
    }
    return SV_OK;
}

/* ---------------------------------------------------------------- scales */

/* Decade at or below v > 0: log axes then start at a labelled tic. */
static double decade_below(double v) { return pow(10, floor(log10(v))); }

/* The floor of a log axis of means and intervals: the decade at or below the
 * smallest positive mean or lower bound of the groups in mask, one more if one
 * of them is 0 (drawn on the floor, apart from the smallest real value).
 * has_zero is set per group. */
static double interval_floor(plot_job *job, int mask) {
    double min_pos = INFINITY;
    for (int g = 0; g < SV_N_GROUPS; g++) {
        if (!job->d->lc[g] || !(mask >> g & 1)) continue;
        const sv_layer_stats *s = &job->st[g];
        for (int l = 0; l < s->n_layers; l++)
            for (int k = 0; k < 2; k++) {
                double v = k ? s->ci_lo[l] : s->mean[l];
                if (v > 0) min_pos = fmin(min_pos, v);
                else job->has_zero[g] = 1;
            }
    }
    int zero = (mask & 1 && job->has_zero[0]) || (mask & 2 && job->has_zero[1]);
    return isfinite(min_pos) ? decade_below(min_pos) / (zero ? 10 : 1) : 1e-12;
}

static int compare_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

int sv_plot_heat_scale(const sv_lc_data *d, int g, sv_heat_scale *out, sv_error *err) {
    size_t n = d->n_samples * (size_t)d->meta.n_layers, n_pos = 0;
    *out = (sv_heat_scale){.floor = 1e-12, .top = 1e-11, .n_cells = n};
    double *pos = sv_alloc_array(n ? n : 1, sizeof *pos, err, "heatmap colour scale");
    if (!pos) return SV_FAIL;
    for (size_t i = 0; i < n; i++) {
        if (d->lc[g][i] > 0) pos[n_pos++] = d->lc[g][i];
        else out->n_zero++;
    }
    if (n_pos) {
        qsort(pos, n_pos, sizeof *pos, compare_double);
        out->floor = decade_below(sv_percentile_sorted(pos, n_pos, 0.01));
        out->top = fmax(pos[n_pos - 1], 10 * out->floor);
        for (size_t i = 0; i < n_pos && pos[i] < out->floor; i++) out->n_below++;
    }
    free(pos);
    return SV_OK;
}

/* ---------------------------------------------------------------- the script */

/* Each group's look, told apart by marker and dash as well as colour, so that
 * the charts read in greyscale: visual solid with circles, text dashed with
 * triangles (error bars stay solid). */
static const int group_marker[SV_N_GROUPS] = {7, 9}, group_dash[SV_N_GROUPS] = {1, 2};

/* One group as a series: its colour and marker; with its dash and key title
 * unless it only draws error bars. */
static void series_style(FILE *f, int g, int line) {
    fprintf(f, " lw 2.5 pt %d ps 1.3 lc rgb '%s'", group_marker[g], group_colour[g]);
    if (line) fprintf(f, " dt %d title '%s tokens'", group_dash[g], sv_group_name(g));
    else fputs(" notitle", f);
}

/* Appended to an axis label whose values of 0 are drawn at the floor. */
static const char *zero_note(int has_zero) {
    return has_zero ? " (0 drawn at the bottom)" : "";
}

/* Tics every `step` layers or samples, so that labels never overlap. */
static int tic_step(int count, int max_labels) {
    return count <= max_labels ? 1 : (count + max_labels - 1) / max_labels;
}

/* A log y axis from `floor` labelled 10^{k}, values at or below it clamped onto it. */
static void log_y_axis(FILE *f, double floor) {
    fprintf(f, "set logscale y\nset format y '10^{%%L}'\nset yrange [%.6g:*]\n", floor);
    fprintf(f, "clamp(v) = v > %.6g ? v : %.6g\n", floor, floor);
}

static void plot_mean(FILE *f, plot_job *job) {
    int L = job->d->meta.n_layers;
    double floor = interval_floor(job, 3);
    sv_gp_begin_plot(&job->gp, f, SV_PLOT_MEAN);
    fprintf(f, "set xlabel 'layer'\nset ylabel 'mean LC = KL(p_{ablated} || p_{orig})%s'\n",
            zero_note(job->has_zero[0] || job->has_zero[1]));
    log_y_axis(f, floor);
    fprintf(f, "set xrange [-0.5:%d.5]\nset xtics %d\n", L - 1, tic_step(L, 20));
    fprintf(f, "set key tmargin center horizontal noopaque nobox\nplot ");
    for (int g = 0, first = 1; g < SV_N_GROUPS; g++) {
        if (!job->d->lc[g]) continue;
        fprintf(f, "%s'layers_%s.dat' using 1:(clamp($2)):(clamp($4)):(clamp($5)) "
                   "with yerrorbars", first ? "" : ", \\\n     ", sv_group_name(g));
        series_style(f, g, 0);
        fprintf(f, ", \\\n     '' using 1:(clamp($2)) with linespoints");
        series_style(f, g, 1);
        first = 0;
    }
    fprintf(f, "\n");
    sv_gp_end_plot(f);
}

/* The group's layers in ascending mean LC, as points with their intervals on
 * the group's own log axis (a bar's length on a log axis depends on where the
 * axis starts, so no bars). */
static void plot_ranking(FILE *f, plot_job *job, int g) {
    char stem[SV_GP_NAME_LEN];
    int L = job->d->meta.n_layers;
    double floor = interval_floor(job, 1 << g);
    snprintf(stem, sizeof stem, "%s%s", SV_PLOT_RANKING, sv_group_name(g));
    sv_gp_begin_plot(&job->gp, f, stem);
    fprintf(f, "set xlabel 'layer, in ascending order of mean %s LC'\n", sv_group_name(g));
    fprintf(f, "set ylabel 'mean %s LC%s'\n", sv_group_name(g), zero_note(job->has_zero[g]));
    log_y_axis(f, floor);
    fprintf(f, "set xrange [-0.7:%d.7]\nset xtics scale 0%s\nunset key\n", L - 1,
            L > 24 ? " rotate by 90 right font ',14'" : "");
    fprintf(f, "plot 'ranking_%s.dat' using 0:(clamp($3)):(clamp($4)):(clamp($5)):xtic(2) "
               "with yerrorbars", sv_group_name(g));
    series_style(f, g, 0);
    fprintf(f, "\n");
    sv_gp_end_plot(f);
}

/* Cells drawn as rectangles (`pixels`), not as one bitmap that a browser would
 * smooth into gradients between layers and samples that are not in the data;
 * gnuplot marks them shape-rendering='crispEdges' in the SVG. */
static void plot_heatmap(FILE *f, plot_job *job, int g) {
    char stem[SV_GP_NAME_LEN];
    int L = job->d->meta.n_layers;
    const sv_heat_scale *h = &job->heat[g];
    snprintf(stem, sizeof stem, "%s%s", SV_PLOT_HEATMAP, sv_group_name(g));
    sv_gp_begin_plot(&job->gp, f, stem);
    fprintf(f, "set xlabel 'calibration sample'\nset ylabel 'layer'\n");
    fprintf(f, "set cblabel '%s LC'\n", sv_group_name(g));
    fprintf(f, "set logscale cb\nset format cb '10^{%%L}'\nset cbrange [%.6g:%.6g]\n"
               "set mcbtics 1\n", h->floor, h->top);
    fprintf(f, "set grid noxtics noytics\nunset key\n");
    fprintf(f, "set palette defined (0 '#440154', 1 '#3b528b', 2 '#21918c', 3 '#5ec962', "
               "4 '#fde725')\n");
    fprintf(f, "set xrange [-0.5:%zu.5]\nset yrange [-0.5:%d.5]\nset xtics %d\nset ytics %d\n",
            job->d->n_samples - 1, L - 1, tic_step((int)job->d->n_samples, 20),
            tic_step(L, 16));
    fprintf(f, "clamp(v) = v > %.6g ? v : %.6g\n", h->floor, h->floor);
    /* gnuplot's images need a 2 x 2 grid at least; smaller ones are drawn cell by cell */
    if (job->d->n_samples >= 2 && L >= 2)
        fprintf(f, "plot 'lc_%s.dat' matrix using 1:2:(clamp($3)) with image pixels\n",
                sv_group_name(g));
    else
        fprintf(f, "plot 'lc_%s.dat' matrix using 1:2:(0.5):(0.5):(clamp($3)) "
                   "with boxxyerror fs solid 1 noborder lc palette\n", sv_group_name(g));
    sv_gp_end_plot(f);
}

static void plot_stability(FILE *f, plot_job *job) {
    int L = job->d->meta.n_layers;
    sv_gp_begin_plot(&job->gp, f, SV_PLOT_STABILITY);
    fprintf(f, "set xlabel 'N, the number of lowest-LC layers'\n");
    fprintf(f, "set ylabel 'resamples with the same N lowest (%%)'\n");
    fprintf(f, "set yrange [0:105]\nset xrange [0.5:%d.5]\nset xtics %d\n", L, tic_step(L, 20));
    fprintf(f, "set key bottom right box opaque\nplot ");
    for (int g = 0, first = 1; g < SV_N_GROUPS; g++) {
        if (!job->d->lc[g]) continue;
        fprintf(f, "%s'stability_%s.dat' using 1:($2*100) with linespoints",
                first ? "" : ", \\\n     ", sv_group_name(g));
        series_style(f, g, 1);
        first = 0;
    }
    fprintf(f, "\n");
    sv_gp_end_plot(f);
}

static int write_script(plot_job *job, sv_error *err) {
    FILE *f = sv_gp_create_script(&job->gp, "Plots of an LC file, written by shortv plot", err);
    if (!f) return SV_FAIL;
    plot_mean(f, job);
    for (int g = 0; g < SV_N_GROUPS; g++)
        if (job->d->lc[g]) plot_ranking(f, job, g);
    for (int g = 0; g < SV_N_GROUPS; g++)
        if (job->d->lc[g]) plot_heatmap(f, job, g);
    plot_stability(f, job);
    return sv_gp_close(&job->gp, f, SCRIPT, err);
}

int sv_plot_draw(const sv_lc_data *d, const sv_layer_stats stats[SV_N_GROUPS],
                 const char *lc_path, const char *dir, sv_error *err) {
    if (d->n_samples == 0) return sv_fail(err, "%s: the LC file holds no samples yet", lc_path);
    plot_job job = {.d = d, .st = stats};
    for (int g = 0; g < SV_N_GROUPS; g++)
        if (d->lc[g] && sv_plot_heat_scale(d, g, &job.heat[g], err)) return SV_FAIL;
    if (sv_gp_open(&job.gp, dir, SCRIPT, err)) return SV_FAIL;
    int rc = SV_OK;
    for (int g = 0; g < SV_N_GROUPS && rc == SV_OK; g++)
        if (d->lc[g]) rc = write_group_data(&job, g, err);
    if (rc == SV_OK) rc = write_script(&job, err);
    return sv_gp_finish(&job.gp, rc, err);
}
