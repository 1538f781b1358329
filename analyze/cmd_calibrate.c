/* shortv calibrate: the LC sweep from the command line, with progress, on one
 * process or under mpirun, whole or one shard. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "calibrate.h"
#include "cli.h"
#include "lcfile.h"

static const char usage[] =
    "usage: shortv calibrate -m DIR [--vision-tower DIR] --data MANIFEST [--groups visual,text] [--limit N]\n"
    "                        [--seed S] [--aspect pad|crop|anyres] [-t N] -o LC.h5 [--resume | --force]\n"
    "                        [--skip-bad] [--naive] [--shard I/N] [--progress auto|json|none]\n"
    "                        [--progress-every SECONDS]\n"
    "  Measures every decoder layer's Layer Contribution, KL(p_ablated||p_orig) at the last\n"
    "  prompt position, for the chosen token groups, and writes one HDF5 row per sample.\n"
    "  MANIFEST: JSON Lines {\"id\", \"image\", \"question\", \"answer\"?} or LLaVA conversation\n"
    "  JSON. --seed S shuffles deterministically before --limit (default: manifest order).\n"
    "  --resume continues an interrupted sweep made with the same arguments; an existing\n"
    "  LC.h5 is otherwise replaced only with --force. --skip-bad\n"
    "  skips (and records) bad manifest lines instead of failing. --naive recomputes every\n"
    "  pass from scratch, as the paper's code does, for measuring the saving. --shard I/N\n"
    "  sweeps the samples at positions I, I+N, I+2N, .. (0 <= I < N) into a partial file;\n"
    "  shortv merge joins the N of them into the file one run writes.\n" CLI_PROGRESS_USAGE;

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

/* "i/N" with 0 <= i < N. */
static int parse_shard(const char *s, int *shard, int *shards) {
    char buf[64];
    snprintf(buf, sizeof buf, "%s", s);
    char *slash = strchr(buf, '/');
    if (!slash) return SV_FAIL;
    *slash = 0;
    if (cli_parse_int(buf, shard) || cli_parse_int(slash + 1, shards)) return SV_FAIL;
    return *shards >= 1 && *shard < *shards ? SV_OK : SV_FAIL;
}

int cli_calibrate(int argc, char **argv, sv_error *err) {
    enum { OPT_DATA = 256, OPT_GROUPS, OPT_LIMIT, OPT_SEED, OPT_ASPECT, OPT_RESUME, OPT_SKIP,
           OPT_NAIVE, OPT_HELP, OPT_VISION_TOWER, OPT_SHARD, OPT_FORCE };
    static const struct option longopts[] = {
        {"model", required_argument, 0, 'm'},   {"vision-tower", required_argument, 0, OPT_VISION_TOWER},
          {"data", required_argument, 0, OPT_DATA},
        {"groups", required_argument, 0, OPT_GROUPS}, {"limit", required_argument, 0, OPT_LIMIT},
        {"seed", required_argument, 0, OPT_SEED}, {"aspect", required_argument, 0, OPT_ASPECT},
        {"threads", required_argument, 0, 't'}, {"output", required_argument, 0, 'o'},
        {"resume", no_argument, 0, OPT_RESUME}, {"skip-bad", no_argument, 0, OPT_SKIP},
        {"naive", no_argument, 0, OPT_NAIVE},   {"help", no_argument, 0, OPT_HELP},
        {"force", no_argument, 0, OPT_FORCE},
        {"shard", required_argument, 0, OPT_SHARD}, CLI_PROGRESS_LONGOPTS,
        {0, 0, 0, 0}};
    sv_calib_params p = {.groups = 3, .seed = -1, .aspect = SV_ASPECT_AUTO};
    int threads = 0, limit = 0, seed, ch;
    cli_run run;
    cli_run_defaults(&run);
    cli_getopt_start();
    while ((ch = cli_getopt(argc, argv, "m:t:o:h", longopts)) != -1) {
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
        case OPT_FORCE: p.force = 1; break;
        case OPT_SHARD:
            if (parse_shard(optarg, &p.shard, &p.shards))
                return cli_usage_error(err, "calibrate", "--shard takes I/N with 0 <= I < N");
            break;
        case CLI_OPT_PROGRESS:
        case CLI_OPT_PROGRESS_EVERY:
            if (cli_run_option(&run, ch, optarg, "calibrate", err)) return CLI_USAGE;
            break;
        case 'h':
        case OPT_HELP: fputs(usage, stdout); return SV_OK;
        default: return cli_bad_option(err, "calibrate", ch, argv, longopts);
        }
    }
    if (optind < argc) return cli_usage_error(err, "calibrate", "unexpected extra argument");
    if (!p.model_dir || !p.manifest || !p.output)
        return cli_usage_error(err, "calibrate", "-m DIR, --data MANIFEST and -o LC.h5 are required");
    p.n_threads = cli_threads(threads);
    if (cli_run_start(&run, "calibrate", &p.stop, err)) return SV_FAIL;
    p.world = &run.world;
    p.progress = cli_run_progress(&run);
    sv_calib_stats st;
    int rc = sv_calibrate(&p, &st, err);
    if (rc == SV_OK && run.world.rank == 0)
        fprintf(stderr,
                "calibrate: %zu samples (%zu resumed, %zu manifest lines skipped) -> %s; decoder "
                "work %.3g layer-rows, %.2f of the naive sweep's\n",
                st.n_samples, st.n_resumed, st.n_skipped, p.output, st.layer_rows,
                st.naive_layer_rows > 0 ? st.layer_rows / st.naive_layer_rows : 0.0);
    return cli_run_end(&run, rc);
}
