/* shortv command-line tool. Results go to stdout or files, messages to stderr;
 * every failure is one line "shortv: error: <file>: <what is wrong>" and
 * exit status 1. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

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
    fprintf(f, "usage: shortv COMMAND [options]   (shortv COMMAND --help for details)\n\n");
    for (size_t i = 0; i < N_COMMANDS; i++)
        fprintf(f, "  %-12s %s\n", commands[i].name, commands[i].summary);
}

int main(int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
        print_overview(argc < 2 ? stderr : stdout);
        return argc < 2 ? 1 : 0;
    }
    for (size_t i = 0; i < N_COMMANDS; i++) {
        if (strcmp(argv[1], commands[i].name) != 0) continue;
        sv_error err = {{0}};
        if (commands[i].run(argc - 1, argv + 1, &err) == SV_OK && cli_flush_stdout(&err) == SV_OK)
            return 0;
        fprintf(stderr, "shortv: error: %s\n", err.msg);
        return 1;
    }
    fprintf(stderr, "shortv: error: unknown command '%s' (see shortv --help)\n", argv[1]);
    return 1;
}
