/* shortv calibrate: the LC sweep from the command line, with progress. */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "calibrate.h"
#include "cli.h"
#include "lcfile.h"

static const char usage[] =
    "usage: shortv calibrate -m DIR [--vision-tower DIR] --data MANIFEST [--groups visual,text] [--limit N]\n"
    "                        [--seed S] [--aspect pad|crop|anyres] [-t N] -o LC.h5 [--resume]\n"
    "                        [--skip-bad] [--naive]\n"
    "  Measures every decoder layer's Layer Contribution, KL(p_ablated||p_orig) at the last\n"
    "  prompt position, for the chosen token groups, and writes one HDF5 row per sample.\n"
    "  MANIFEST: JSON Lines {\"id\", \"image\", \"question\", \"answer\"?} or LLaVA conversation\n"
    "  JSON. --seed S shuffles deterministically before --limit (default: manifest order).\n"
    "  --resume continues an interrupted sweep made with the same arguments. --skip-bad\n"
    "  skips (and records) bad manifest lines instead of failing. --naive recomputes every\n"
    "  pass from scratch, as the paper's code does, for measuring the saving.\n";

static int parse_groups(const char *s, int *groups) {
    char buf[64];
    snprintf(buf, sizeof buf, "%s", s);
    *groups = 0;
    for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
        int g = !strcmp(tok, "visual") ? 0 : !strcmp(tok, "text") ? 1 : -1;
        if (g < 0) return SV_FAIL;
        *groups |= 1 << g;
    }
    return *groups ? SV_OK : SV_FAIL;
}

static void print_progress(const sv_calib_progress *p, void *user) {
    (void)user;
    size_t run = p->sample - p->resumed, left = p->n_samples - p->sample;
    double rate = p->elapsed > 0 ? (double)run / p->elapsed : 0;
    fprintf(stderr, "\rcalibrate: sample %zu/%zu, %zu passes, %.2f samples/s, ETA %.0f s   ",
            p->sample, p->n_samples, p->passes, rate, rate > 0 ? (double)left / rate : 0);
    if (!left) fputc('\n', stderr);
}

static volatile int interrupted;

static void on_interrupt(int sig) {
    (void)sig;
    interrupted = 1;
}

/* Ctrl-C or a polite kill finishes the current sample and leaves a resumable file. */
static void stop_on_signals(void) {
    struct sigaction sa = {.sa_handler = on_interrupt};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

int cli_calibrate(int argc, char **argv, sv_error *err) {
    enum { OPT_DATA = 256, OPT_GROUPS, OPT_LIMIT, OPT_SEED, OPT_ASPECT, OPT_RESUME, OPT_SKIP,
           OPT_NAIVE, OPT_HELP, OPT_VISION_TOWER };
    static const struct option longopts[] = {
        {"model", required_argument, 0, 'm'},   {"vision-tower", required_argument, 0, OPT_VISION_TOWER},
          {"data", required_argument, 0, OPT_DATA},
        {"groups", required_argument, 0, OPT_GROUPS}, {"limit", required_argument, 0, OPT_LIMIT},
        {"seed", required_argument, 0, OPT_SEED}, {"aspect", required_argument, 0, OPT_ASPECT},
        {"threads", required_argument, 0, 't'}, {"output", required_argument, 0, 'o'},
        {"resume", no_argument, 0, OPT_RESUME}, {"skip-bad", no_argument, 0, OPT_SKIP},
        {"naive", no_argument, 0, OPT_NAIVE},   {"help", no_argument, 0, OPT_HELP},
        {0, 0, 0, 0}};
    sv_calib_params p = {.groups = 3, .seed = -1, .aspect = SV_ASPECT_AUTO};
    int threads = 0, limit = 0, seed, ch;
    cli_getopt_start();
    while ((ch = getopt_long(argc, argv, "m:t:o:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'm': p.model_dir = optarg; break;
        case OPT_VISION_TOWER: p.vision_tower = optarg; break;
        case 'o': p.output = optarg; break;
        case OPT_DATA: p.manifest = optarg; break;
        case OPT_GROUPS:
            if (parse_groups(optarg, &p.groups))
                return cli_usage_error(err, "calibrate", "--groups takes visual, text or visual,text");
            break;
        case OPT_LIMIT:
            if (cli_parse_int(optarg, &limit) || limit < 1)
                return cli_usage_error(err, "calibrate", "--limit needs a positive number");
            p.limit = (size_t)limit;
            break;
        case OPT_SEED:
            if (cli_parse_int(optarg, &seed))
                return cli_usage_error(err, "calibrate", "--seed needs a non-negative number");
            p.seed = seed;
            break;
        case OPT_ASPECT:
            if (sv_aspect_parse(optarg, &p.aspect))
                return cli_usage_error(err, "calibrate", "--aspect must be pad, crop or anyres");
            break;
        case 't':
            if (cli_parse_int(optarg, &threads) || threads < 1)
                return cli_usage_error(err, "calibrate", "-t needs a positive number");
            break;
        case OPT_RESUME: p.resume = 1; break;
        case OPT_SKIP: p.skip_bad = 1; break;
        case OPT_NAIVE: p.naive = 1; break;
        case 'h':
        case OPT_HELP: fputs(usage, stdout); return SV_OK;
        default: return cli_usage_error(err, "calibrate", "unknown option or missing value");
        }
    }
    if (optind < argc) return cli_usage_error(err, "calibrate", "unexpected extra argument");
    if (!p.model_dir || !p.manifest || !p.output)
        return cli_usage_error(err, "calibrate", "-m DIR, --data MANIFEST and -o LC.h5 are required");
    p.n_threads = cli_threads(threads);
    if (isatty(STDERR_FILENO)) p.progress = print_progress;
    p.stop = &interrupted;
    stop_on_signals();
    sv_calib_stats st;
    if (sv_calibrate(&p, &st, err)) return SV_FAIL;
    fprintf(stderr,
            "calibrate: %zu samples (%zu resumed, %zu manifest lines skipped) -> %s; decoder work "
            "%.3g layer-rows, %.2f of the naive sweep's\n",
            st.n_samples, st.n_resumed, st.n_skipped, p.output, st.layer_rows,
            st.naive_layer_rows > 0 ? st.layer_rows / st.naive_layer_rows : 0.0);
    return SV_OK;
}
