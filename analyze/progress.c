#include <math.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "progress.h"

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

int sv_progress_format_parse(const char *s, sv_progress_format *out) {
    static const char *const names[] = {"auto", "json", "none"};
    for (int i = 0; i < 3; i++)
        if (!strcmp(s, names[i])) {
            *out = (sv_progress_format)i;
            return 0;
        }
    return -1;
}

void sv_format_hms(double seconds, char *out, size_t size) {
    if (!(seconds >= 0) || !isfinite(seconds) || seconds > 1e9) {
        snprintf(out, size, "-");
        return;
    }
    long s = lround(seconds);
    snprintf(out, size, "%ld:%02ld:%02ld", s / 3600, s / 60 % 60, s % 60);
}

void sv_progress_init(sv_progress *p, const char *what, FILE *out, sv_progress_format format,
                      double every) {
    *p = (sv_progress){.what = what, .out = out, .format = format, .every = every};
    p->tty = isatty(fileno(out));
}

void sv_progress_begin(sv_progress *p, size_t total, size_t resumed) {
    p->total = total, p->done = p->resumed = resumed;
    p->start = p->last_line = now();
}

/* Seconds per sample of this run so far; 0 before the first. */
static double seconds_per_sample(const sv_progress *p, double elapsed) {
    size_t run = p->done - p->resumed;
    return run ? elapsed / (double)run : 0;
}

/* "2.50 samples/s" or, below one a second, "0:01:40 per sample". */
static void format_rate(double per_sample, char *out, size_t size) {
    if (per_sample <= 0) {
        snprintf(out, size, "rate -");
    } else if (per_sample < 1) {
        snprintf(out, size, "%.2f samples/s", 1 / per_sample);
    } else {
        char hms[32];
        sv_format_hms(per_sample, hms, sizeof hms);
        snprintf(out, size, "%s per sample", hms);
    }
}

static void print_text(sv_progress *p, double elapsed, double eta) {
    char rate[64], spent[32], left[32];
    format_rate(seconds_per_sample(p, elapsed), rate, sizeof rate);
    sv_format_hms(elapsed, spent, sizeof spent);
    sv_format_hms(eta, left, sizeof left);
    fprintf(p->out, "%s%s: sample %zu/%zu, %s, elapsed %s, ETA %s%s", p->tty ? "\r" : "",
            p->what, p->done, p->total, rate, spent, left, p->tty ? "   " : "\n");
    fflush(p->out);
}

void sv_progress_tick(sv_progress *p, int rank) {
    if (!p || p->format == SV_PROGRESS_NONE) return;
    p->done++;
    double t = now(), elapsed = t - p->start, per = seconds_per_sample(p, elapsed);
    double eta = per > 0 ? per * (double)(p->total - p->done) : -1;
    if (p->format == SV_PROGRESS_JSON) {
        fprintf(p->out, "{\"what\": \"%s\", \"sample\": %zu, \"total\": %zu, \"elapsed\": %.3f, ",
                p->what, p->done, p->total, elapsed);
        if (eta >= 0) fprintf(p->out, "\"eta\": %.3f, \"rank\": %d}\n", eta, rank);
        else fprintf(p->out, "\"eta\": null, \"rank\": %d}\n", rank);
        fflush(p->out);
    } else if (p->tty || t - p->last_line >= p->every) {
        print_text(p, elapsed, eta);
        p->last_line = t;
    }
}

void sv_progress_end(sv_progress *p) {
    if (p && p->format == SV_PROGRESS_AUTO && p->tty && p->done > p->resumed) fputc('\n', p->out);
}
