#include <math.h>
#include <stdio.h>
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
    double axis_floor; /* log axes start here; LC values at or below it are drawn on it */
    int has_zero[SV_N_GROUPS]; /* a value of the group is 0 (or below from rounding) */
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

/* ---------------------------------------------------------------- the script */

static void track_min(double v, double *min_pos, int *has_zero) {
    if (v > 0 && v < *min_pos) *min_pos = v;
    if (v <= 0) *has_zero = 1;
}

/* The decade below the smallest positive LC, mean or interval bound: the floor
 * of log axes, where values of 0 are drawn.
 * Sets job->has_zero. */
static double log_floor(plot_job *job) {
    double min_pos = INFINITY;
    size_t L = (size_t)job->d->meta.n_layers;
    for (int g = 0; g < SV_N_GROUPS; g++) {
        if (!job->d->lc[g]) continue;
        const sv_layer_stats *s = &job->st[g];
        for (size_t i = 0; i < job->d->n_samples * L; i++)
            track_min(job->d->lc[g][i], &min_pos, &job->has_zero[g]);
        for (size_t l = 0; l < L; l++) {
            track_min(s->mean[l], &min_pos, &job->has_zero[g]);
            track_min(s->ci_lo[l], &min_pos, &job->has_zero[g]);
        }
    }
    /* a whole decade below, so that the axis starts at a labelled tic */
    return isfinite(min_pos) ? pow(10, floor(log10(min_pos)) - 1) : 1e-12;
}

/* Appended to the label of a log axis on which values of 0 sit at the floor. */
static const char *zero_note(int has_zero) {
    return has_zero ? " (LC = 0 drawn at the bottom)" : "";
}

/* The LC-specific definitions every plot of the script uses. */
static void script_definitions(FILE *f, const plot_job *job) {
    const char *model = strrchr(job->d->meta.model, '/');
    model = model && model[1] ? model + 1 : job->d->meta.model;
    fprintf(f, "lc_floor = %.6g  # LC values of 0 (or below this) are drawn on the axis floor\n",
            job->axis_floor);
    fprintf(f, "clamp(v) = v > lc_floor ? v : lc_floor\n");
    fprintf(f, "source = ");
    sv_gp_string(f, model);
    fprintf(f, ".', %zu samples%s'\n", job->d->n_samples,
            job->d->complete ? "" : " (INCOMPLETE sweep)");
}

/* Tics every `step` layers or samples, so that labels never overlap. */
static int tic_step(int count, int max_labels) {
    return count <= max_labels ? 1 : (count + max_labels - 1) / max_labels;
}

static void plot_mean(FILE *f, plot_job *job) {
    int L = job->d->meta.n_layers;
    sv_gp_begin_plot(&job->gp, f, SV_PLOT_MEAN);
    fprintf(f, "set title 'Mean layer contribution per layer, 95%% bootstrap intervals  "
               "('.source.')'\n");
    fprintf(f, "set xlabel 'layer'\nset ylabel 'mean LC = KL(p_ablated || p_orig), log scale%s'\n",
            zero_note(job->has_zero[0] || job->has_zero[1]));
    fprintf(f, "set logscale y\nset format y \"%%g\"\nset yrange [lc_floor:*]\n");
    fprintf(f, "set xrange [-0.5:%d.5]\nset xtics %d\n", L - 1, tic_step(L, 40));
    fprintf(f, "plot ");
    for (int g = 0, first = 1; g < SV_N_GROUPS; g++) {
        if (!job->d->lc[g]) continue;
        fprintf(f, "%s'layers_%s.dat' using 1:(clamp($2)):(clamp($4)):(clamp($5)) "
                   "with yerrorlines lw 2 pt 7 ps 0.8 lc rgb '%s' title '%s tokens'",
                first ? "" : ", \\\n     ", sv_group_name(g), group_colour[g], sv_group_name(g));
        first = 0;
    }
    fprintf(f, "\n");
    sv_gp_end_plot(f);
}

static void plot_ranking(FILE *f, plot_job *job, int g) {
    char stem[SV_GP_NAME_LEN];
    int L = job->d->meta.n_layers;
    snprintf(stem, sizeof stem, "%s%s", SV_PLOT_RANKING, sv_group_name(g));
    sv_gp_begin_plot(&job->gp, f, stem);
    fprintf(f, "set title 'Layers ranked by mean %s LC, lowest (first to freeze) on the left  "
               "('.source.')'\n", sv_group_name(g));
    fprintf(f, "set xlabel 'layer, in ascending order of mean LC'\n");
    fprintf(f, "set ylabel 'mean %s LC with 95%% bootstrap interval, log scale%s'\n",
            sv_group_name(g), zero_note(job->has_zero[g]));
    fprintf(f, "set logscale y\nset format y \"%%g\"\nset yrange [lc_floor:*]\n");
    fprintf(f, "set xrange [-0.7:%d.7]\nset boxwidth 0.7\n", L - 1);
    fprintf(f, "set style fill solid 0.6 border -1\nset xtics scale 0%s\nunset key\n",
            L > 40 ? " rotate by 90 right font ',8'" : "");
    /* the interval as a capped vector: yerrorbars leave a gap around the mean */
    fprintf(f, "plot 'ranking_%s.dat' using 0:(clamp($3)):xtic(2) with boxes lc rgb '%s', \\\n"
               "     '' using 0:(clamp($4)):(0):(clamp($5) - clamp($4)) "
               "with vectors heads size screen 0.006,90 lw 1.5 lc rgb 'black'\n",
            sv_group_name(g), group_colour[g]);
    sv_gp_end_plot(f);
}

static void plot_heatmap(FILE *f, plot_job *job, int g) {
    char stem[SV_GP_NAME_LEN];
    int L = job->d->meta.n_layers;
    snprintf(stem, sizeof stem, "%s%s", SV_PLOT_HEATMAP, sv_group_name(g));
    sv_gp_begin_plot(&job->gp, f, stem);
    fprintf(f, "set title 'LC of %s tokens per layer and calibration sample  ('.source.')'\n",
            sv_group_name(g));
    fprintf(f, "set xlabel 'calibration sample'\nset ylabel 'layer'\n");
    fprintf(f, "set cblabel 'log10 LC%s'\nset cbrange [log10(lc_floor):*]\n",
            zero_note(job->has_zero[g]));
    fprintf(f, "set grid noxtics noytics\nunset key\n");
    fprintf(f, "set palette defined (0 '#440154', 1 '#3b528b', 2 '#21918c', 3 '#5ec962', "
               "4 '#fde725')\n");
    fprintf(f, "set xrange [-0.5:%zu.5]\nset yrange [-0.5:%d.5]\nset xtics %d\nset ytics %d\n",
            job->d->n_samples - 1, L - 1, tic_step((int)job->d->n_samples, 20),
            tic_step(L, 32));
    /* gnuplot's images need a 2 x 2 grid at least; smaller ones are drawn cell by cell */
    if (job->d->n_samples >= 2 && L >= 2)
        fprintf(f, "plot 'lc_%s.dat' matrix using 1:2:(log10(clamp($3))) with image\n",
                sv_group_name(g));
    else
        fprintf(f, "plot 'lc_%s.dat' matrix using 1:2:(0.5):(0.5):(log10(clamp($3))) "
                   "with boxxyerror fs solid 1 noborder lc palette\n", sv_group_name(g));
    sv_gp_end_plot(f);
}

static void plot_stability(FILE *f, plot_job *job) {
    int L = job->d->meta.n_layers;
    sv_gp_begin_plot(&job->gp, f, SV_PLOT_STABILITY);
    fprintf(f, "set title 'Does the set of the N lowest-LC layers survive resampling the "
               "calibration set?  ('.source.')'\n");
    fprintf(f, "set xlabel 'N (number of layers to freeze)'\n");
    fprintf(f, "set ylabel 'share of bootstrap resamples with the same N lowest layers'\n");
    fprintf(f, "set yrange [0:1.05]\nset xrange [0.5:%d.5]\nset xtics %d\n", L,
            tic_step(L, 40));
    fprintf(f, "set key bottom right box opaque\nplot ");
    for (int g = 0, first = 1; g < SV_N_GROUPS; g++) {
        if (!job->d->lc[g]) continue;
        fprintf(f, "%s'stability_%s.dat' using 1:2 with linespoints lw 2 pt 7 ps 0.8 "
                   "lc rgb '%s' title '%s tokens'",
                first ? "" : ", \\\n     ", sv_group_name(g), group_colour[g], sv_group_name(g));
        first = 0;
    }
    fprintf(f, "\n");
    sv_gp_end_plot(f);
}

static int write_script(plot_job *job, sv_error *err) {
    FILE *f = sv_gp_create_script(&job->gp, "Plots of an LC file, written by shortv plot", err);
    if (!f) return SV_FAIL;
    script_definitions(f, job);
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
    if (sv_gp_open(&job.gp, dir, SCRIPT, err)) return SV_FAIL;
    job.axis_floor = log_floor(&job);
    int rc = SV_OK;
    for (int g = 0; g < SV_N_GROUPS && rc == SV_OK; g++)
        if (d->lc[g]) rc = write_group_data(&job, g, err);
    if (rc == SV_OK) rc = write_script(&job, err);
    return sv_gp_finish(&job.gp, rc, err);
}
