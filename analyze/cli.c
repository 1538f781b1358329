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
    sv_fail(err, "%s: %s (see shortv %s --help)", cmd, what, cmd);
    return CLI_USAGE;
}

/* The text of the option cli_getopt last refused for not being spelled out. */
static char partial_option[128];

/* The option element getopt_long just consumed (its value may have been the next one). */
static const char *consumed_option(char **argv) {
    return optarg && optind >= 2 && optarg == argv[optind - 1] ? argv[optind - 2]
                                                                : argv[optind - 1];
}

int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts) {
    char opts[64];
    snprintf(opts, sizeof opts, ":%s", shortopts); /* ':' first: a missing value is ':' */
    int index = -1;
    partial_option[0] = 0;
    optopt = 0;
    int ch = getopt_long(argc, argv, opts, longopts, &index);
    if (ch == -1 || ch == '?' || ch == ':' || index < 0) return ch;
    const char *typed = consumed_option(argv);
    size_t len = strcspn(typed + 2, "=");
    if (strncmp(typed, "--", 2) == 0 &&
        (len != strlen(longopts[index].name) || strncmp(typed + 2, longopts[index].name, len))) {
        snprintf(partial_option, sizeof partial_option, "%.*s", (int)len + 2, typed);
        return '?';
    }
    return ch;
}

/* Edit distance of a and b, capped: anything above 3 is 3. */
static int edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 32 || lb > 32) return 3;
    int d[33][33];
    for (size_t i = 0; i <= la; i++) d[i][0] = (int)i;
    for (size_t j = 0; j <= lb; j++) d[0][j] = (int)j;
    for (size_t i = 1; i <= la; i++)
        for (size_t j = 1; j <= lb; j++) {
            int sub = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            int del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
            d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
    return d[la][lb] < 3 ? d[la][lb] : 3;
}

const char *cli_closest(const char *s, const char *const *names) {
    const char *best = NULL;
    int best_d = 3;
    for (size_t i = 0; names[i]; i++) {
        int prefix = *s && strncmp(names[i], s, strlen(s)) == 0;
        int d = prefix ? 1 : edit_distance(s, names[i]);
        if (d < best_d) best = names[i], best_d = d;
    }
    return best;
}

/* The option as typed that getopt refused (argv[optind - 1] for a long one). */
static void refused_option(char **argv, char *out, size_t size) {
    if (partial_option[0])
        snprintf(out, size, "%s", partial_option);
    else if (optopt > 0 && optopt < 256)
        snprintf(out, size, "-%c", optopt);
    else
        snprintf(out, size, "%.*s", (int)strcspn(argv[optind - 1], "="), argv[optind - 1]);
}

int cli_bad_option(sv_error *err, const char *cmd, int ch, char **argv,
                   const struct option *longopts) {
    char typed[128], what[256];
    refused_option(argv, typed, sizeof typed);
    const char *names[64];
    size_t n = 0;
    for (; longopts[n].name && n + 1 < sizeof names / sizeof *names; n++) names[n] = longopts[n].name;
    names[n] = NULL;
    const char *near = strncmp(typed, "--", 2) == 0 ? cli_closest(typed + 2, names) : NULL;
    if (ch == ':')
        snprintf(what, sizeof what, "%s needs a value", typed);
    else if (near)
        snprintf(what, sizeof what, "unknown option %s (did you mean --%s?)", typed, near);
    else
        snprintf(what, sizeof what, "unknown option %s", typed);
    return cli_usage_error(err, cmd, what);
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
    if (rank != 0) return SV_OK;
    return rc != SV_OK && interrupted ? CLI_INTERRUPTED : rc;
}
