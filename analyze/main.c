/* shortv command-line tool. Results go to stdout or files, messages to stderr;
 * every failure is one line "shortv: error: <file>: <what is wrong>" (exit
 * status 1, or 2 for a command line it cannot take); a run stopped by Ctrl-C
 * or SIGTERM says so in one line and exits 130. */
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "version.h"

typedef int (*command_fn)(int argc, char **argv, sv_error *err);

static const struct {
    const char *name, *summary;
    command_fn run;
} commands[] = {
    {"tokenize", "token ids of a text", cli_runtime_command},
    {"preprocess", "an image as the vision tower sees it (.npy)", cli_runtime_command},
    {"embed-image", "an image's visual tokens after the projector (.npy)", cli_runtime_command},
    {"logits", "next-token logits after an image and a prompt (.npy)", cli_runtime_command},
    {"generate", "greedy answer to a prompt about an image", cli_runtime_command},
    {"freeze", "choose the layers to freeze from an LC file -> freeze config", cli_freeze},
    {"flops", "dense vs ShortV FLOPs of a prefill, from config.json alone", cli_flops},
    {"plot", "gnuplot PNG/SVG plots of an LC file", cli_plot},
    {"report", "offline HTML report of an LC file (plots, ranking, trust)", cli_report},
    {"compare", "do two LC files rank the layers alike? (tau-b, shared lowest N)", cli_compare},
    {"calibrate", "LC sweep over a calibration manifest -> HDF5", cli_calibrate},
    {"merge", "the shards of a sweep (calibrate --shard) -> one LC file", cli_merge},
    {"export", "an LC file as CSV or JSON, for readers without HDF5", cli_export},
    {"eval", "accuracy of greedy answers on a manifest, dense or ShortV", cli_eval},
    {"study", "accuracy vs FLOPs of LC-ordered, random and reverse layer sets", cli_study},
};
#define N_COMMANDS (sizeof commands / sizeof *commands)

static void print_overview(FILE *f) {
    fprintf(f, "usage: shortv COMMAND [options]   (shortv help COMMAND, or COMMAND --help)\n\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "  %-12s %s\n  %-12s %s\n", "help", "this list, or a command's options",
            "version", "the version (also --version)");
}

static int find_command(const char *name) {
    for (size_t i = 0; i < N_COMMANDS; i++)
        if (strcmp(name, commands[i].name) == 0) return (int)i;
    return -1;
}

/* Exit status 2 with the one-line message for a command line shortv cannot take. */
static int usage_error(const char *name) {
    const char *names[N_COMMANDS + 3] = {"help", "version"};
    for (size_t i = 0; i < N_COMMANDS; i++) names[i + 2] = commands[i].name;
    const char *near = cli_closest(name, names);
    if (near)
        fprintf(stderr, "shortv: error: unknown command '%s' (did you mean %s?)\n", name, near);
    else
        fprintf(stderr, "shortv: error: unknown command '%s' (see shortv help)\n", name);
    return 2;
}

/* Exit status: 0 done, 1 failed, 2 a command line it cannot take, 130 stopped
 * by a signal (what a shell reports for Ctrl-C; not called an error). */
static int run(int c, int argc, char **argv) {
    sv_error err = {{0}};
    int rc = commands[c].run(argc, argv, &err);
    if (rc == SV_OK && cli_flush_stdout(&err) == SV_OK) return 0;
    if (rc == CLI_INTERRUPTED) {
        fprintf(stderr, "shortv: interrupted: %s\n", err.msg);
        return 130;
    }
    fprintf(stderr, "shortv: error: %s\n", err.msg);
    return rc == CLI_USAGE ? 2 : 1;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        print_overview(stderr);
        return 2;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || (!strcmp(cmd, "help") && argc == 2)) {
        print_overview(stdout);
        return cli_flush_stdout(&(sv_error){{0}}) == SV_OK ? 0 : 1;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("shortv %s\n", SHORTV_VERSION);
        return cli_flush_stdout(&(sv_error){{0}}) == SV_OK ? 0 : 1;
    }
    if (!strcmp(cmd, "help")) { /* shortv help COMMAND: its --help */
        int c = find_command(argv[2]);
        if (c < 0) return usage_error(argv[2]);
        char *help_argv[] = {argv[2], "--help", NULL};
        return run(c, 2, help_argv);
    }
    int c = find_command(cmd);
    return c < 0 ? usage_error(cmd) : run(c, argc - 1, argv + 1);
}
