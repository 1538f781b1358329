/* Shared pieces of the shortv subcommands (analyze/cmd_*.c, dispatched by main.c).
 * A subcommand gets argv with argv[0] = its name, prints results to stdout or
 * files and returns SV_OK, or SV_FAIL with the message main prints as
 * "shortv: error: <message>". --help prints the usage and returns SV_OK. */
#ifndef SV_CLI_H
#define SV_CLI_H

#include "llm.h"
#include "status.h"

/* "<cmd>: <what> (see shortv <cmd> --help)" */
int cli_usage_error(sv_error *err, const char *cmd, const char *what);
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
int cli_eval(int argc, char **argv, sv_error *err);
int cli_study(int argc, char **argv, sv_error *err);
int cli_compare(int argc, char **argv, sv_error *err);

#endif
