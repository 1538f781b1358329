/* Drawing with gnuplot as a child process: a job writes data files and one
 * script into a folder, gnuplot renders every plot as PNG (pngcairo) and SVG,
 * and the plots are published only once all of them exist.
 *
 * The script renders to hidden ".tmp-<stem>.<ext>" names (gnuplot gets
 * outprefix='.tmp-'), which sv_gp_finish renames to "<stem>.<ext>" after
 * checking that every one was written, so a failed run never leaves a plot
 * that looks complete. Without outprefix the script writes the final names:
 * `cd DIR && gnuplot SCRIPT` redraws them by hand.
 *
 * A job only knows the files it wrote itself; it is not thread-safe. */
#ifndef SV_GNUPLOT_H
#define SV_GNUPLOT_H

#include <stdio.h>

#include "status.h"

#define SV_GP_MAX_FILES 32
#define SV_GP_NAME_LEN 64

typedef struct sv_gnuplot {
    const char *dir;
    char script[SV_GP_NAME_LEN];            /* file name of the script in dir */
    int created_dir;                        /* dir was made by this job */
    char written[SV_GP_MAX_FILES][SV_GP_NAME_LEN]; /* data files and script, for clean-up */
    int n_written;
    char plots[SV_GP_MAX_FILES][SV_GP_NAME_LEN];   /* stems, each rendered in every format */
    int n_plots;
} sv_gnuplot;

/* Starts a job drawing into dir, which is created if its parent exists. */
int sv_gp_open(sv_gnuplot *g, const char *dir, const char *script, sv_error *err);

/* Creates dir/name for writing and remembers it for clean-up. */
FILE *sv_gp_create(sv_gnuplot *g, const char *name, sv_error *err);
/* Closes a file from sv_gp_create; a write error anywhere is reported here. */
int sv_gp_close(sv_gnuplot *g, FILE *f, const char *name, sv_error *err);

/* Creates the script, with a header saying what draws it and how to rerun it
 * and the `term(ext)` terminal setting every plot uses. */
FILE *sv_gp_create_script(sv_gnuplot *g, const char *what, sv_error *err);
/* A gnuplot single-quoted string literal. */
void sv_gp_string(FILE *f, const char *s);
/* Starts one plot: a loop that renders its body once per format, with fresh
 * settings, a light grid and a boxed key at the top left. */
void sv_gp_begin_plot(sv_gnuplot *g, FILE *f, const char *stem);
void sv_gp_end_plot(FILE *f);

/* Ends the job. If rc is SV_OK, runs gnuplot in dir and publishes the plots.
 * On any failure (rc or gnuplot's) it removes the temporary renderings and,
 * unless gnuplot ran and rejected the script (the error then points to it),
 * the data files and script, and dir if the job created it. Plots already
 * published stay: they are complete. Returns the final status; err holds the
 * message of the first failure. A missing gnuplot is an error saying how to
 * install it. */
int sv_gp_finish(sv_gnuplot *g, int rc, sv_error *err);

#endif
