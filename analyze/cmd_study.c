/* shortv study: accuracy of LC-ordered, reverse and random layer sets at the
 * same FLOPs, with progress and a summary. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cli.h"
#include "study.h"

static const char usage[] =
    "usage: shortv study -m DIR [--vision-tower DIR] --lc LC.h5 --data MANIFEST [--counts 2,4,6,8] [--random-sets 3]\n"
    "                    [--seed S] [--group visual|text] [--limit N] [-n MAX_NEW_TOKENS]\n"
    "                    [--aspect pad|crop|anyres] [-t N] -o OUTDIR\n"
    "  Does freezing the lowest-LC layers cost less accuracy than random layers or the\n"
    "  highest-LC layers, at the same FLOPs? For every count N it evaluates (as shortv eval)\n"
    "  the N layers of lowest mean LC in LC.h5, the N of highest, and --random-sets random\n"
    "  N-subsets (seeded with --seed, default 0), plus the dense model, on the same samples.\n"
    "  Writes OUTDIR/study.json (every run: strategy, N, layers, accuracy with its Wilson\n"
    "  95% interval, which samples it got right, FLOPs ratio, prefill ms) and the chart\n"
    "  OUTDIR/" SV_STUDY_CHART ".png/.svg, and prints per N how far LC-ordered leads, with\n"
    "  95% intervals (paired over the samples, and for random counting the spread between\n"
    "  its sets). OUTDIR is created if its parent exists.\n"
    "  Needs gnuplot (apt-get install gnuplot-nox).\n" CLI_PROGRESS_USAGE;

/* "2,4,6" into counts; SV_FAIL unless it is a list of positive numbers. */
static int parse_counts(const char *s, int *counts, int *n) {
    char buf[512];
    if (snprintf(buf, sizeof buf, "%s", s) >= (int)sizeof buf || !*buf ||
        buf[strlen(buf) - 1] == ',')
        return SV_FAIL;
    *n = 0;
    for (char *save, *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if (*n == SV_STUDY_MAX_COUNTS || cli_parse_int(tok, &counts[*n]) || counts[*n] < 1)
            return SV_FAIL;
        (*n)++;
    }
    return *n ? SV_OK : SV_FAIL;
}

typedef struct options {
    sv_study_params p;
    int counts[SV_STUDY_MAX_COUNTS];
    int threads;
    cli_run run;
} options;

/* SV_OK, SV_FAIL, or CLI_HELP. */
static int parse_options(int argc, char **argv, options *o, sv_error *err) {
    enum { OPT_LC = 256, OPT_DATA, OPT_COUNTS, OPT_SETS, OPT_SEED, OPT_GROUP, OPT_LIMIT,
           OPT_ASPECT, OPT_HELP, OPT_VISION_TOWER };
    static const struct option longopts[] = {
        {"model", required_argument, 0, 'm'},   {"vision-tower", required_argument, 0, OPT_VISION_TOWER},
             {"lc", required_argument, 0, OPT_LC},
        {"data", required_argument, 0, OPT_DATA},  {"counts", required_argument, 0, OPT_COUNTS},
        {"random-sets", required_argument, 0, OPT_SETS},
        {"seed", required_argument, 0, OPT_SEED},  {"group", required_argument, 0, OPT_GROUP},
        {"limit", required_argument, 0, OPT_LIMIT},
        {"max-new-tokens", required_argument, 0, 'n'},
        {"aspect", required_argument, 0, OPT_ASPECT}, {"threads", required_argument, 0, 't'},
        {"output", required_argument, 0, 'o'},     {"help", no_argument, 0, OPT_HELP},
        CLI_PROGRESS_LONGOPTS, {0, 0, 0, 0}};
    static const int default_counts[] = {2, 4, 6, 8};
    sv_study_params *p = &o->p;
    *o = (options){.p = {.random_sets = 3, .max_new = 8, .aspect = SV_ASPECT_AUTO}};
    memcpy(o->counts, default_counts, sizeof default_counts);
    p->n_counts = 4;
    cli_run_defaults(&o->run);
    int v, ch;
    cli_getopt_start();
    while ((ch = cli_getopt(argc, argv, "m:n:t:o:h", longopts)) != -1) {
        switch (ch) {
        case 'm': p->model_dir = optarg; break;
        case OPT_VISION_TOWER: p->vision_tower = optarg; break;
        case 'o': p->out_dir = optarg; break;
        case OPT_LC: p->lc_path = optarg; break;
        case OPT_DATA: p->manifest = optarg; break;
        case OPT_COUNTS:
            if (parse_counts(optarg, o->counts, &p->n_counts))
                return cli_usage_error(err, "study", "--counts takes positive numbers, e.g. 2,4,6");
            break;
        case OPT_SETS:
            if (cli_parse_int(optarg, &p->random_sets))
                return cli_usage_error(err, "study", "--random-sets needs a number >= 0");
            break;
        case OPT_SEED:
            if (cli_parse_int(optarg, &v))
                return cli_usage_error(err, "study", "--seed needs a non-negative number");
            p->seed = (uint64_t)v;
            break;
        case OPT_GROUP:
            if (cli_parse_group(optarg, &p->group))
                return cli_usage_error(err, "study", "--group must be visual or text");
            break;
        case OPT_LIMIT:
            if (cli_parse_int(optarg, &v) || v < 1)
                return cli_usage_error(err, "study", "--limit needs a positive number");
            p->limit = (size_t)v;
            break;
        case 'n':
            if (cli_parse_int(optarg, &p->max_new) || p->max_new < 1)
                return cli_usage_error(err, "study", "-n needs a positive number");
            break;
        case OPT_ASPECT:
            if (sv_aspect_parse(optarg, &p->aspect))
                return cli_usage_error(err, "study", "--aspect must be pad, crop or anyres");
            break;
        case 't':
            if (cli_parse_int(optarg, &o->threads) || o->threads < 1)
                return cli_usage_error(err, "study", "-t needs a positive number");
            break;
        case CLI_OPT_PROGRESS:
        case CLI_OPT_PROGRESS_EVERY:
            if (cli_run_option(&o->run, ch, optarg, "study", err)) return CLI_USAGE;
            break;
        case 'h':
        case OPT_HELP: return CLI_HELP;
        default: return cli_bad_option(err, "study", ch, argv, longopts);
        }
    }
    if (optind < argc) return cli_usage_error(err, "study", "unexpected extra argument");
    if (!p->model_dir || !p->lc_path || !p->manifest || !p->out_dir)
        return cli_usage_error(err, "study", "-m DIR, --lc LC.h5, --data MANIFEST and -o OUTDIR "
                                             "are required");
    p->counts = o->counts;
    return SV_OK;
}

static double seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* One sentence per N on stderr. */
static void print_summary(const sv_study *s) {
    int counts[SV_STUDY_MAX_COUNTS];
    int n = sv_study_counts(s, counts, SV_STUDY_MAX_COUNTS);
    for (int i = 0; i < n; i++) {
        sv_study_comparison c;
        char line[1024];
        if (sv_study_compare(s, counts[i], &c, NULL)) continue;
        sv_study_sentence(&c, line, sizeof line);
        fprintf(stderr, "  %s\n", line);
    }
}

int cli_study(int argc, char **argv, sv_error *err) {
    options o;
    int rc = parse_options(argc, argv, &o, err);
    if (cli_help_done(rc, usage)) return SV_OK;
    if (rc != SV_OK) return rc;
    o.p.n_threads = cli_threads(o.threads);
    if (cli_run_start(&o.run, "study", &o.p.stop, err)) return SV_FAIL;
    o.p.world = &o.run.world;
    o.p.progress = cli_run_progress(&o.run);
    double start = seconds();
    sv_study s;
    rc = sv_run_study(&o.p, &s, err);
    if (rc != SV_OK || o.run.world.rank != 0) return cli_run_end(&o.run, rc);
    fprintf(stderr, "study: %zu runs on %zu samples in %.0f s -> %s/" SV_STUDY_JSON ", %s/"
                    SV_STUDY_CHART ".png/.svg\n",
            s.n_runs, s.n_samples, seconds() - start, o.p.out_dir, o.p.out_dir);
    print_summary(&s);
    sv_study_free(&s);
    return cli_run_end(&o.run, SV_OK);
}
