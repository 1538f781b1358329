/* shortv report LC.h5 [--freeze F.json] [--study study.json] -o DIR: DIR/index.html
 * with the plots, the ranking tables, how far the ranking can be trusted, the
 * FLOPs summary and the freeze study's accuracy vs FLOPs. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "plot.h"
#include "report.h"

static const char usage[] =
    "usage: shortv report LC.h5 [--freeze F.json] [--study study.json] -o DIR [--boot N]\n"
    "                    [--seed S]\n"
    "Writes DIR/index.html (works offline; open it in a browser) and the plots of\n"
    "`shortv plot` next to it: mean LC per layer, each group's ranking with 95%\n"
    "bootstrap intervals, the split-half Kendall tau (were there enough calibration\n"
    "samples?), bottom-N stability and the calibration's provenance.\n"
    "  -o, --out DIR    output folder (created if its parent exists)\n"
    "  --freeze F.json  a freeze config made from this LC file: its frozen layers and FLOPs\n"
    "  --study S.json   a shortv study on this model: its accuracy vs FLOPs chart, a sentence\n"
    "                   per N comparing LC-ordered with random and reverse, every run's numbers\n"
    "  --boot N         bootstrap resamples for the intervals (default 2000)\n"
    "  --seed S         bootstrap seed (default 0; the same seed gives the same numbers)\n"
    "Needs gnuplot (Debian/Ubuntu: apt-get install gnuplot-nox).\n";

typedef struct options {
    const char *lc, *out, *freeze, *study;
    int n_boot, seed;
} options;

/* SV_OK, SV_FAIL, or CLI_HELP. */
static int parse_options(int argc, char **argv, options *o, sv_error *err) {
    enum { OPT_FREEZE = 256, OPT_STUDY, OPT_BOOT, OPT_SEED, OPT_HELP };
    static const struct option longopts[] = {{"out", required_argument, NULL, 'o'},
                                             {"freeze", required_argument, NULL, OPT_FREEZE},
                                             {"study", required_argument, NULL, OPT_STUDY},
                                             {"boot", required_argument, NULL, OPT_BOOT},
                                             {"seed", required_argument, NULL, OPT_SEED},
                                             {"help", no_argument, NULL, OPT_HELP},
                                             {NULL, 0, NULL, 0}};
    *o = (options){.n_boot = SV_BOOT_DEFAULT, .seed = SV_BOOT_SEED_DEFAULT};
    int ch;
    cli_getopt_start();
    while ((ch = cli_getopt(argc, argv, "o:h", longopts)) != -1) {
        switch (ch) {
        case 'o': o->out = optarg; break;
        case OPT_FREEZE: o->freeze = optarg; break;
        case OPT_STUDY: o->study = optarg; break;
        case OPT_BOOT:
            if (cli_parse_int(optarg, &o->n_boot) || o->n_boot < 1)
                return cli_usage_error(err, argv[0], "--boot needs a positive number");
            break;
        case OPT_SEED:
            if (cli_parse_int(optarg, &o->seed))
                return cli_usage_error(err, argv[0], "--seed needs a non-negative number");
            break;
        case 'h':
        case OPT_HELP: return CLI_HELP;
        default: return cli_bad_option(err, argv[0], ch, argv, longopts);
        }
    }
    if (optind != argc - 1) return cli_usage_error(err, argv[0], "one LC.h5 file is required");
    if (!o->out) return cli_usage_error(err, argv[0], "-o DIR is required");
    o->lc = argv[optind];
    return SV_OK;
}

/* The study, read and checked against the calibration; SV_OK with nothing read
 * if no --study was given. */
static int read_study(const options *o, const sv_lc_data *d, sv_study *s, sv_error *err) {
    memset(s, 0, sizeof *s);
    if (!o->study) return SV_OK;
    if (sv_study_read(o->study, s, err)) return SV_FAIL;
    if (sv_report_study_check(s, o->study, d, err) == SV_OK) return SV_OK;
    sv_study_free(s);
    return SV_FAIL;
}

/* The plots, the study's chart and the page, once every input has been checked. */
static int draw_and_write(const options *o, const sv_lc_data *d,
                          const sv_layer_stats stats[SV_N_GROUPS], const sv_report_freeze *freeze,
                          const sv_study *study, sv_error *err) {
    if (sv_plot_draw(d, stats, o->lc, o->out, err)) return SV_FAIL;
    if (study && sv_study_draw(study, o->out, err)) return SV_FAIL;
    if (sv_report_write(d, stats, o->lc, freeze, study, o->out, err)) return SV_FAIL;
    fprintf(stderr, "report: %s/index.html\n", o->out);
    return SV_OK;
}

int cli_report(int argc, char **argv, sv_error *err) {
    options o;
    int rc = parse_options(argc, argv, &o, err);
    if (cli_help_done(rc, usage)) return SV_OK;
    if (rc != SV_OK) return rc;
    sv_lc_data d;
    sv_layer_stats stats[SV_N_GROUPS];
    sv_report_freeze freeze;
    sv_study study;
    if (sv_lc_stats_read(o.lc, o.n_boot, (uint64_t)o.seed, &d, stats, err)) return SV_FAIL;
    /* the freeze config and the study are checked before anything is drawn */
    rc = o.freeze ? sv_report_freeze_read(&freeze, o.freeze, &d, err) : SV_OK;
    if (rc == SV_OK) {
        rc = read_study(&o, &d, &study, err);
        if (rc == SV_OK)
            rc = draw_and_write(&o, &d, stats, o.freeze ? &freeze : NULL,
                                o.study ? &study : NULL, err);
        sv_study_free(&study);
        if (o.freeze) sv_report_freeze_free(&freeze);
    }
    sv_lc_stats_free(stats);
    sv_lc_data_free(&d);
    return rc;
}
