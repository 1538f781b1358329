/* shortv plot LC.h5 -o DIR: gnuplot PNG and SVG plots of a calibration sweep. */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"
#include "plot.h"

static const char usage[] =
    "usage: shortv plot LC.h5 -o DIR [--boot N] [--seed S]\n"
    "Draws into DIR (created if its parent exists), each as PNG and SVG:\n"
    "  " SV_PLOT_MEAN ".*              mean LC per layer, visual and text, 95% intervals\n"
    "  " SV_PLOT_RANKING "<group>.*    layers sorted by mean LC with their intervals\n"
    "  " SV_PLOT_HEATMAP "<group>.*    LC of every layer and calibration sample\n"
    "  " SV_PLOT_STABILITY ".*   how often resampling keeps the N lowest layers\n"
    "plus the data files and plots.gp (rerun with: cd DIR && gnuplot plots.gp).\n"
    "  -o, --out DIR  output folder\n"
    "  --boot N       bootstrap resamples for the intervals (default 2000)\n"
    "  --seed S       bootstrap seed (default 0; the same seed gives the same numbers)\n"
    "Needs gnuplot (Debian/Ubuntu: apt-get install gnuplot-nox).\n";

int cli_plot(int argc, char **argv, sv_error *err) {
    enum { OPT_BOOT = 256, OPT_SEED, OPT_HELP };
    static const struct option longopts[] = {{"out", required_argument, NULL, 'o'},
                                             {"boot", required_argument, NULL, OPT_BOOT},
                                             {"seed", required_argument, NULL, OPT_SEED},
                                             {"help", no_argument, NULL, OPT_HELP},
                                             {NULL, 0, NULL, 0}};
    const char *out = NULL;
    int n_boot = SV_BOOT_DEFAULT, seed = SV_BOOT_SEED_DEFAULT, ch;
    cli_getopt_start();
    while ((ch = cli_getopt(argc, argv, "o:h", longopts)) != -1) {
        switch (ch) {
        case 'o': out = optarg; break;
        case OPT_BOOT:
            if (cli_parse_int(optarg, &n_boot) || n_boot < 1)
                return cli_usage_error(err, argv[0], "--boot needs a positive number");
            break;
        case OPT_SEED:
            if (cli_parse_int(optarg, &seed))
                return cli_usage_error(err, argv[0], "--seed needs a non-negative number");
            break;
        case 'h':
        case OPT_HELP: fputs(usage, stdout); return SV_OK;
        default: return cli_bad_option(err, argv[0], ch, argv, longopts);
        }
    }
    if (optind != argc - 1) return cli_usage_error(err, argv[0], "one LC.h5 file is required");
    if (!out) return cli_usage_error(err, argv[0], "-o DIR is required");
    sv_lc_data d;
    sv_layer_stats stats[SV_N_GROUPS];
    if (sv_lc_stats_read(argv[optind], n_boot, (uint64_t)seed, &d, stats, err)) return SV_FAIL;
    int rc = sv_plot_draw(&d, stats, argv[optind], out, err);
    sv_lc_stats_free(stats);
    sv_lc_data_free(&d);
    return rc;
}
