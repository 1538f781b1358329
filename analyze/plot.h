/* Plots of an LC file, drawn by gnuplot run as a child process.
 *
 * sv_plot_draw writes into DIR the data files and the script (plots.gp, which
 * `cd DIR && gnuplot plots.gp` reruns) and then, each as .png (pngcairo) and .svg:
 *   mean_lc             mean LC per layer of every swept group, log scale, 95% bootstrap
 *                       intervals as error bars (the paper's Figure 2)
 *   ranking_<group>     layers sorted by mean LC, bars with the intervals
 *   heatmap_<group>     LC of every layer (y) and sample (x), log colour scale
 *   bottom_n_stability  share of bootstrap resamples whose N lowest layers are the
 *                       full data's N lowest, for every N
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

/* Draws every plot of d (read from lc_path) into dir, which is created if its
 * parent exists (and removed again on failure if it was created here);
 * stats[g] holds the statistics of each swept group g. */
int sv_plot_draw(const sv_lc_data *d, const sv_layer_stats stats[SV_N_GROUPS],
                 const char *lc_path, const char *dir, sv_error *err);

#endif
