/* shortv merge: the shards of a sweep (calibrate --shard i/N) into one LC file. */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"
#include "merge.h"

static const char usage[] =
    "usage: shortv merge SHARD.h5 SHARD.h5 ... -o LC.h5\n"
    "  Joins the partial LC files of calibrate --shard I/N (one per shard, any order) into\n"
    "  the file one calibrate run of the same sweep writes. Refuses files of different\n"
    "  sweeps (model, manifest, seed, limit, groups, aspect), a shard given twice, a missing\n"
    "  shard and an unfinished one, naming the file.\n";

int cli_merge(int argc, char **argv, sv_error *err) {
    static const struct option longopts[] = {{"output", required_argument, 0, 'o'},
                                             {"help", no_argument, 0, 'h'}, {0, 0, 0, 0}};
    const char *out = NULL;
    int ch;
    cli_getopt_start();
    while ((ch = cli_getopt(argc, argv, "o:h", longopts)) != -1) {
        switch (ch) {
        case 'o': out = optarg; break;
        case 'h': fputs(usage, stdout); return SV_OK;
        default: return cli_bad_option(err, "merge", ch, argv, longopts);
        }
    }
    if (!out || optind == argc)
        return cli_usage_error(err, "merge", "shard files and -o LC.h5 are required");
    size_t n;
    if (sv_lc_merge((const char *const *)argv + optind, (size_t)(argc - optind), out, &n, err))
        return SV_FAIL;
    fprintf(stderr, "merge: %d shards, %zu samples -> %s\n", argc - optind, n, out);
    return SV_OK;
}
