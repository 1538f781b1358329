/* shortv report LC.h5 [--freeze F.json] -o DIR: DIR/index.html with the plots,
 * the ranking tables, how far the ranking can be trusted and the FLOPs summary. */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"
#include "plot.h"
#include "report.h"

static const char usage[] =
    "usage: shortv report LC.h5 [--freeze F.json] -o DIR [--boot N] [--seed S]\n"
    "Writes DIR/index.html (works offline; open it in a browser) and the plots of\n"
    "`shortv plot` next to it: mean LC per layer, each group's ranking with 95%\n"
    "bootstrap intervals, the split-half Kendall tau (were there enough calibration\n"
    "samples?), bottom-N stability and the calibration's provenance.\n"
    "  -o, --out DIR    output folder (created if its parent exists)\n"
    "  --freeze F.json  a freeze config made from this LC file: its frozen layers and FLOPs\n"
    "  --boot N         bootstrap resamples for the intervals (default 2000)\n"
    "  --seed S         bootstrap seed (default 0; the same seed gives the same numbers)\n"
    "Needs gnuplot (Debian/Ubuntu: apt-get install gnuplot-nox).\n";

typedef struct options {
    const char *lc, *out, *freeze;
    int n_boot, seed;
} options;

/* SV_OK, SV_FAIL, or 1 for --help. */
static int parse_options(int argc, char **argv, options *o, sv_error *err) {
    enum { OPT_FREEZE = 256, OPT_BOOT, OPT_SEED, OPT_HELP };
    static const struct option longopts[] = {{"out", required_argument, NULL, 'o'},
                                             {"freeze", required_argument, NULL, OPT_FREEZE},
                                             {"boot", required_argument, NULL, OPT_BOOT},
                                             {"seed", required_argument, NULL, OPT_SEED},
                                             {"help", no_argument, NULL, OPT_HELP},
                                             {NULL, 0, NULL, 0}};
    *o = (options){.n_boot = SV_BOOT_DEFAULT, .seed = SV_BOOT_SEED_DEFAULT};
    int ch;
    optind = 0; /* glibc: full re-initialisation */
    opterr = 0;
    while ((ch = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'o': o->out = optarg; break;
        case OPT_FREEZE: o->freeze = optarg; break;
        case OPT_BOOT:
            if (cli_parse_int(optarg, &o->n_boot) || o->n_boot < 1)
                return cli_usage_error(err, argv[0], "--boot needs a positive number");
            break;
        case OPT_SEED:
            if (cli_parse_int(optarg, &o->seed))
                return cli_usage_error(err, argv[0], "--seed needs a non-negative number");
            break;
        case 'h':
        case OPT_HELP: return 1;
        default: return cli_usage_error(err, argv[0], "unknown option or missing value");
        }
    }
    if (optind != argc - 1) return cli_usage_error(err, argv[0], "one LC.h5 file is required");
    if (!o->out) return cli_usage_error(err, argv[0], "-o DIR is required");
    o->lc = argv[optind];
    return SV_OK;
}

int cli_report(int argc, char **argv, sv_error *err) {
    options o;
    int rc = parse_options(argc, argv, &o, err);
    if (rc == 1) {
        fputs(usage, stdout);
        return SV_OK;
    }
    if (rc != SV_OK) return rc;
    sv_lc_data d;
    sv_layer_stats stats[SV_N_GROUPS];
    sv_report_freeze freeze;
    if (sv_lc_stats_read(o.lc, o.n_boot, (uint64_t)o.seed, &d, stats, err)) return SV_FAIL;
    /* the freeze config is checked before anything is drawn */
    rc = o.freeze ? sv_report_freeze_read(&freeze, o.freeze, &d, err) : SV_OK;
    if (rc == SV_OK) {
        rc = sv_plot_draw(&d, stats, o.lc, o.out, err);
        if (rc == SV_OK)
            rc = sv_report_write(&d, stats, o.lc, o.freeze ? &freeze : NULL, o.out, err);
        if (o.freeze) sv_report_freeze_free(&freeze);
    }
    sv_lc_stats_free(stats);
    sv_lc_data_free(&d);
    return rc;
}
