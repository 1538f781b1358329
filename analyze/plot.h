/* Plots of an LC file, drawn by gnuplot run as a child process.
 *
 * sv_plot_draw writes into DIR the data files and the script (plots.gp, which
 * `cd DIR && gnuplot plots.gp` reruns) and then, each as .png (pngcairo) and .svg:
 *   mean_lc             mean LC per layer of every swept group, log scale, 95% bootstrap
 *                       intervals as error bars (the paper's Figure 2)
 *   ranking_<group>     layers sorted by mean LC, points with the intervals, on the
 *                       group's own log axis
 *   heatmap_<group>     LC of every layer (y) and sample (x), cells drawn as rectangles,
 *                       the group's own log colour scale (sv_plot_heat_scale)
 *   bottom_n_stability  share of bootstrap resamples whose N lowest layers are the
 *                       full data's N lowest, for every N
 * The figures carry no titles (the report's captions say what they show), large
 * fonts for use at paper size, 10^{k} tics on log axes and one marker and dash
 * pattern per group, so that they read in greyscale.
 * gnuplot renders to hidden temporary names that are renamed only once every
 * plot exists, so a failed run never leaves a plot that looks complete. */
#ifndef SV_PLOT_H
#define SV_PLOT_H

#include "lcfile.h"
#include "stats.h"

#define SV_PLOT_MEAN "mean_lc"
#define SV_PLOT_RANKING "ranking_"   /* + group name */
#define SV_PLOT_HEATMAP "heatmap_"   /* + group name */
#define SV_PLOT_STABILITY "bottom_n_stability"

/* A group's heatmap colour scale, log from `floor` to `top` (its largest LC). The
 * floor is the decade at or below the 1st percentile of the group's positive
 * values, so that neither its zeros (the last layer's visual LC) nor a few tiny
 * values take most of the palette; n_zero cells are 0 and n_below others are
 * below the floor, all drawn in the floor's colour. */
typedef struct sv_heat_scale {
    double floor, top;
    size_t n_cells, n_zero, n_below;
} sv_heat_scale;
int sv_plot_heat_scale(const sv_lc_data *d, int g, sv_heat_scale *out, sv_error *err);

/* Draws every plot of d (read from lc_path) into dir, which is created if its
 * parent exists (and removed again on failure if it was created here);
 * stats[g] holds the statistics of each swept group g. */
int sv_plot_draw(const sv_lc_data *d, const sv_layer_stats stats[SV_N_GROUPS],
                 const char *lc_path, const char *dir, sv_error *err);

#endif
