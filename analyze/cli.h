/* Shared pieces of the shortv subcommands (analyze/cmd_*.c, dispatched by main.c).
 * A subcommand gets argv with argv[0] = its name, prints results to stdout or
 * files and returns SV_OK, or SV_FAIL with the message main prints as
 * "shortv: error: <message>" (exit 1), CLI_USAGE for a command line it cannot
 * take (exit 2) or CLI_INTERRUPTED when a signal stopped it (exit 130, no
 * "error:"). --help prints the usage and returns SV_OK. */
#ifndef SV_CLI_H
#define SV_CLI_H

#include <getopt.h>

#include "llm.h"
#include "progress.h"
#include "status.h"
#include "world.h"

#define CLI_USAGE (-2)
#define CLI_INTERRUPTED (-3)

/* "<cmd>: <what> (see shortv <cmd> --help)"; returns CLI_USAGE. */
int cli_usage_error(sv_error *err, const char *cmd, const char *what);
/* getopt_long, but a long option must be spelled out in full (getopt_long takes any
 * unambiguous prefix, so a llama.cpp user's --temp would become --template), and a
 * missing value comes back as ':'. Anything refused comes back as '?' or ':' for
 * cli_bad_option. */
int cli_getopt(int argc, char **argv, const char *shortopts, const struct option *longopts);
/* For a getopt loop's default branch: names the option cli_getopt refused, and
 * the one meant where it is close; returns CLI_USAGE. */
int cli_bad_option(sv_error *err, const char *cmd, int ch, char **argv,
                   const struct option *longopts);
/* The closest of names[] (NULL-terminated) to s if it is plausibly a typo of it
 * (a prefix of it or at most two edits away), else NULL. */
const char *cli_closest(const char *s, const char *const *names);
/* Before a getopt_long loop: parsing restarts from scratch (glibc needs optind = 0
 * for that, so that one process can parse several command lines, as the tests
 * do) and getopt prints nothing (the caller reports errors as one line). */
void cli_getopt_start(void);
/* Non-negative decimal integer (up to 2^30); 0 on success. */
int cli_parse_int(const char *s, int *out);
/* Finite number; 0 on success. */
int cli_parse_double(const char *s, double *out);
/* -t N: the threads a context runs on, capped at the online CPUs (more only
 * contend for them: -t 1000 ran 6x slower) with a note on stderr; 0 (not
 * given) stays 0, one per online CPU. */
int cli_threads(int requested);
/* "visual" or "text"; 0 on success. */
int cli_parse_group(const char *s, sv_group *out);

/* Output that did not reach its destination (a full disk, /dev/full) is a
 * failure, not a success with a truncated result: flushes stdout and fails
 * if any write to it failed. main calls it after every command. */
int cli_flush_stdout(sv_error *err);

/* calibrate, eval and study: --progress auto|json|none and --progress-every
 * SECONDS (getopt values CLI_OPT_PROGRESS*, above every command's own). */
#define CLI_OPT_PROGRESS 1000
#define CLI_OPT_PROGRESS_EVERY 1001
#define CLI_PROGRESS_LONGOPTS                                      \
    {"progress", required_argument, 0, CLI_OPT_PROGRESS},         \
    {"progress-every", required_argument, 0, CLI_OPT_PROGRESS_EVERY}
#define CLI_PROGRESS_USAGE                                                                   \
    "  --progress auto|json|none: auto is a line per sample on a terminal, else one every\n" \
    "  --progress-every SECONDS (60); json is one object per sample. Under mpirun -np K\n"  \
    "  rank 0 hands the samples to the other ranks and writes the results (README).\n"

/* A long command's run: its MPI world, its progress on stderr (rank 0) and
 * the signals that stop it. */
typedef struct cli_run {
    sv_world world;
    sv_progress progress;
    sv_progress_format format;
    double every;
} cli_run;

/* Defaults before option parsing. */
void cli_run_defaults(cli_run *r);
/* Takes a --progress option (ch one of CLI_OPT_PROGRESS*); SV_FAIL on a bad value. */
int cli_run_option(cli_run *r, int ch, const char *arg, const char *cmd, sv_error *err);
/* After parsing: joins the MPI world; rank 0 reports progress as `cmd` and
 * counts SIGINT and SIGTERM in *stop (calibrate.h says what they do). */
int cli_run_start(cli_run *r, const char *cmd, const volatile int **stop, sv_error *err);
/* The progress to report to (NULL on ranks other than 0). */
sv_progress *cli_run_progress(cli_run *r);
/* Leaves the world. Returns rc on rank 0 (CLI_INTERRUPTED for a failure after a
 * SIGINT or SIGTERM); the others return SV_OK, since rank 0 reports every
 * rank's failures (one message, not K). */
int cli_run_end(cli_run *r, int rc);

/* What a subcommand's option parser returns for --help, besides SV_OK and SV_FAIL. */
#define CLI_HELP 1
/* When rc is CLI_HELP: prints usage to stdout and returns 1 (the subcommand is done). */
int cli_help_done(int rc, const char *usage);

/* tokenize, preprocess, embed-image, logits, generate (cmd_runtime.c) */
int cli_runtime_command(int argc, char **argv, sv_error *err);
/* freeze (cmd_freeze.c), flops (cmd_flops.c) */
int cli_freeze(int argc, char **argv, sv_error *err);
int cli_flops(int argc, char **argv, sv_error *err);
/* plot (cmd_plot.c), report (cmd_report.c) */
int cli_plot(int argc, char **argv, sv_error *err);
int cli_report(int argc, char **argv, sv_error *err);
int cli_calibrate(int argc, char **argv, sv_error *err);
int cli_merge(int argc, char **argv, sv_error *err);
int cli_export(int argc, char **argv, sv_error *err);
int cli_eval(int argc, char **argv, sv_error *err);
int cli_study(int argc, char **argv, sv_error *err);
int cli_compare(int argc, char **argv, sv_error *err);

#endif
