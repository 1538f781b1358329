#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "matmul.h"

int cli_usage_error(sv_error *err, const char *cmd, const char *what) {
    return sv_fail(err, "%s: %s (see shortv %s --help)", cmd, what, cmd);
}

void cli_getopt_start(void) {
    optind = 0;
    opterr = 0;
}

int cli_help_done(int rc, const char *usage) {
    if (rc != CLI_HELP) return 0;
    fputs(usage, stdout);
    return 1;
}

int cli_parse_int(const char *s, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (!*s || *end || v < 0 || v > 1 << 30) return SV_FAIL;
    *out = (int)v;
    return SV_OK;
}

int cli_parse_group(const char *s, sv_group *out) {
    if (!strcmp(s, "visual")) *out = SV_GROUP_VISUAL;
    else if (!strcmp(s, "text")) *out = SV_GROUP_TEXT;
    else return SV_FAIL;
    return SV_OK;
}

int cli_parse_double(const char *s, double *out) {
    char *end;
    double v = strtod(s, &end);
    if (!*s || *end || !isfinite(v)) return SV_FAIL;
    *out = v;
    return SV_OK;
}

int cli_threads(int requested) {
    int cpus = sv_cpu_count();
    if (requested > cpus) {
        fprintf(stderr, "shortv: note: -t %d capped at the %d online CPUs\n", requested, cpus);
        requested = cpus;
    }
    return requested;
}

int cli_flush_stdout(sv_error *err) {
    errno = 0;
    if (fflush(stdout) == 0 && !ferror(stdout)) return SV_OK;
    return sv_fail(err, "stdout: write failed (%s)", strerror(errno ? errno : EIO));
}

void cli_run_defaults(cli_run *r) { *r = (cli_run){.format = SV_PROGRESS_AUTO, .every = 60}; }

int cli_run_option(cli_run *r, int ch, const char *arg, const char *cmd, sv_error *err) {
    if (ch == CLI_OPT_PROGRESS && sv_progress_format_parse(arg, &r->format))
        return cli_usage_error(err, cmd, "--progress must be auto, json or none");
    if (ch == CLI_OPT_PROGRESS_EVERY && (cli_parse_double(arg, &r->every) || r->every <= 0))
        return cli_usage_error(err, cmd, "--progress-every needs a positive number of seconds");
    return SV_OK;
}

static volatile int interrupted;

static void on_interrupt(int sig) {
    (void)sig;
    interrupted++;
}

int cli_run_start(cli_run *r, const char *cmd, const volatile int **stop, sv_error *err) {
    if (sv_world_open(&r->world, err)) return SV_FAIL;
    *stop = &interrupted;
    if (r->world.rank != 0) return SV_OK; /* mpirun's SIGTERM ends the workers */
    struct sigaction sa = {.sa_handler = on_interrupt};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sv_progress_init(&r->progress, cmd, stderr, r->format, r->every);
    return SV_OK;
}

sv_progress *cli_run_progress(cli_run *r) { return r->world.rank == 0 ? &r->progress : NULL; }

int cli_run_end(cli_run *r, int rc) {
    int rank = r->world.rank;
    sv_world_close(&r->world);
    return rank == 0 ? rc : SV_OK;
}
