/* Where a long run is, on stderr, for calibrate, eval and study alike:
 *   a terminal      one line per finished sample, redrawn in place;
 *   anything else   (nohup, SLURM) one line every `every` seconds (the command's
 *                   own closing line says when it is done);
 *   json            one JSON object per finished sample and line:
 *                   {"what", "sample", "total", "elapsed", "eta", "rank"}
 *                   (seconds; eta null until a sample of this run is done).
 * The rate counts the samples of this run only (not those a --resume found
 * done); below one sample a second it is given as time per sample. Times are
 * h:mm:ss. Under MPI rank 0 reports for every rank. */
#ifndef SV_PROGRESS_H
#define SV_PROGRESS_H

#include <stddef.h>
#include <stdio.h>

typedef enum { SV_PROGRESS_AUTO = 0, SV_PROGRESS_JSON, SV_PROGRESS_NONE } sv_progress_format;

typedef struct sv_progress {
    const char *what;       /* the command, first on every line */
    FILE *out;
    int tty;                /* AUTO: out is a terminal */
    sv_progress_format format;
    double every;           /* AUTO off a terminal: seconds between lines */
    size_t total, done, resumed;
    double start, last_line;
} sv_progress;

/* "auto", "json" or "none"; 0 on success. */
int sv_progress_format_parse(const char *s, sv_progress_format *out);
/* Starts reporting on out (stderr in the CLI). */
void sv_progress_init(sv_progress *p, const char *what, FILE *out, sv_progress_format format,
                      double every);
/* The run's size: total samples, `resumed` of them already done. */
void sv_progress_begin(sv_progress *p, size_t total, size_t resumed);
/* One more sample done, by `rank` (0 without MPI). p may be NULL. */
void sv_progress_tick(sv_progress *p, int rank);
/* Ends the redrawn line on a terminal. p may be NULL. */
void sv_progress_end(sv_progress *p);

/* "1:02:03" into out (size >= 16); negative or not finite: "-". */
void sv_format_hms(double seconds, char *out, size_t size);

#endif
