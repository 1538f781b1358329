/* shortv eval: accuracy of greedy answers on a manifest, dense or ShortV. */
#include <getopt.h>
#include <stdio.h>

#include "cli.h"
#include "eval.h"

static const char usage[] =
    "usage: shortv eval -m DIR [--vision-tower DIR] --data MANIFEST [--freeze F.json | --freeze-layers L,L,..]\n"
    "                   [-n MAX_NEW_TOKENS] [--limit N] [--aspect pad|crop|anyres] [-t N] -o RESULTS.json\n"
    "  Answers every question greedily (Vicuna v1 template), scores normalised exact match\n"
    "  (lower case, punctuation dropped) against the manifest's answers, and writes the\n"
    "  accuracy with a Wilson 95% interval, the prefill FLOPs ratio to the dense model and\n"
    "  the mean prefill time, plus every sample's prediction, to RESULTS.json; with\n"
    "  typed questions (a \"type\" on each manifest line), the accuracy per type too.\n"
    CLI_PROGRESS_USAGE;

int cli_eval(int argc, char **argv, sv_error *err) {
    enum { OPT_DATA = 256, OPT_FREEZE, OPT_FREEZE_LAYERS, OPT_LIMIT, OPT_ASPECT, OPT_HELP, OPT_VISION_TOWER };
    static const struct option longopts[] = {
        {"model", required_argument, 0, 'm'},   {"vision-tower", required_argument, 0, OPT_VISION_TOWER},
            {"data", required_argument, 0, OPT_DATA},
        {"freeze", required_argument, 0, OPT_FREEZE},
        {"freeze-layers", required_argument, 0, OPT_FREEZE_LAYERS},
        {"max-new-tokens", required_argument, 0, 'n'}, {"limit", required_argument, 0, OPT_LIMIT},
        {"aspect", required_argument, 0, OPT_ASPECT}, {"threads", required_argument, 0, 't'},
        {"output", required_argument, 0, 'o'},    {"help", no_argument, 0, OPT_HELP},
        CLI_PROGRESS_LONGOPTS, {0, 0, 0, 0}};
    sv_eval_params p = {.max_new = 8, .aspect = SV_ASPECT_AUTO};
    int threads = 0, limit = 0, ch;
    cli_run run;
    cli_run_defaults(&run);
    cli_getopt_start();
    while ((ch = cli_getopt(argc, argv, "m:n:t:o:h", longopts)) != -1) {
        switch (ch) {
        case 'm': p.model_dir = optarg; break;
        case OPT_VISION_TOWER: p.vision_tower = optarg; break;
        case 'o': p.output = optarg; break;
        case OPT_DATA: p.manifest = optarg; break;
        case OPT_FREEZE: p.freeze = optarg; break;
        case OPT_FREEZE_LAYERS: p.freeze_layers = optarg; break;
        case 'n':
            if (cli_parse_int(optarg, &p.max_new) || p.max_new < 1)
                return cli_usage_error(err, "eval", "-n needs a positive number");
            break;
        case OPT_LIMIT:
            if (cli_parse_int(optarg, &limit) || limit < 1)
                return cli_usage_error(err, "eval", "--limit needs a positive number");
            p.limit = (size_t)limit;
            break;
        case OPT_ASPECT:
            if (sv_aspect_parse(optarg, &p.aspect))
                return cli_usage_error(err, "eval", "--aspect must be pad, crop or anyres");
            break;
        case 't':
            if (cli_parse_int(optarg, &threads) || threads < 1)
                return cli_usage_error(err, "eval", "-t needs a positive number");
            break;
        case CLI_OPT_PROGRESS:
        case CLI_OPT_PROGRESS_EVERY:
            if (cli_run_option(&run, ch, optarg, "eval", err)) return CLI_USAGE;
            break;
        case 'h':
        case OPT_HELP: fputs(usage, stdout); return SV_OK;
        default: return cli_bad_option(err, "eval", ch, argv, longopts);
        }
    }
    if (optind < argc) return cli_usage_error(err, "eval", "unexpected extra argument");
    if (!p.model_dir || !p.manifest || !p.output)
        return cli_usage_error(err, "eval", "-m DIR, --data MANIFEST and -o RESULTS.json are required");
    p.n_threads = cli_threads(threads);
    if (cli_run_start(&run, "eval", &p.stop, err)) return SV_FAIL;
    p.world = &run.world;
    p.progress = cli_run_progress(&run);
    sv_eval_summary s;
    int rc = sv_eval(&p, &s, err);
    if (rc == SV_OK && run.world.rank == 0)
        fprintf(stderr, "eval: %zu/%zu correct, accuracy %.3f [%.3f, %.3f], prefill FLOPs %.3f of dense, "
                    "%.2f ms prefill -> %s\n",
            s.correct, s.n, s.accuracy, s.ci_low, s.ci_high, s.flops_ratio, s.prefill_ms, p.output);
    return cli_run_end(&run, rc);
}
