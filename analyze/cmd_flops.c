/* shortv flops: the paper's FLOPs count of one prefill, dense against ShortV,
 * from a config.json alone (no weights needed). */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "flops.h"
#include "freeze.h"

#define DEFAULT_TEXT_TOKENS 64

static const char usage[] =
    "usage: shortv flops (-m DIR | --config config.json) [--visual-tokens V] [--text-tokens T]\n"
    "                    [--freeze F.json | -n N] [--json]\n"
    "  FLOPs of one prefill of the language model (2 x multiply-adds, as the ShortV paper\n"
    "  counts), all layers dense against N layers with frozen visual tokens.\n"
    "  V defaults to the largest image the model takes (576 for LLaVA-1.5, 2880 for\n"
    "  LLaVA-NeXT's anyres), T to 64. --freeze takes N, the group and the model check from\n"
    "  a freeze config; -n N freezes any N visual layers (only the number matters).\n"
    "  --json prints one object with dense_flops, shortv_flops, ratio and the inputs.\n";

typedef struct options {
    const char *model_dir, *config_path, *freeze_path;
    int visual, text, n_frozen, json; /* visual, n_frozen: -1 when not given */
} options;

/* SV_OK, SV_FAIL, or CLI_HELP. */
static int parse_options(int argc, char **argv, options *o, sv_error *err) {
    enum { OPT_CONFIG = 256, OPT_VISUAL, OPT_TEXT, OPT_FREEZE, OPT_JSON, OPT_HELP };
    static const struct option longopts[] = {
        {"model", required_argument, 0, 'm'},
        {"config", required_argument, 0, OPT_CONFIG},
        {"visual-tokens", required_argument, 0, OPT_VISUAL},
        {"text-tokens", required_argument, 0, OPT_TEXT},
        {"freeze", required_argument, 0, OPT_FREEZE},
        {"json", no_argument, 0, OPT_JSON},
        {"help", no_argument, 0, OPT_HELP},
        {0, 0, 0, 0}};
    *o = (options){.visual = -1, .text = DEFAULT_TEXT_TOKENS, .n_frozen = -1};
    cli_getopt_start();
    int ch;
    while ((ch = cli_getopt(argc, argv, "m:n:h", longopts)) != -1) {
        switch (ch) {
        case 'm': o->model_dir = optarg; break;
        case OPT_CONFIG: o->config_path = optarg; break;
        case OPT_FREEZE: o->freeze_path = optarg; break;
        case OPT_JSON: o->json = 1; break;
        case OPT_VISUAL:
            if (cli_parse_int(optarg, &o->visual))
                return cli_usage_error(err, "flops", "--visual-tokens needs a non-negative number");
            break;
        case OPT_TEXT:
            if (cli_parse_int(optarg, &o->text))
                return cli_usage_error(err, "flops", "--text-tokens needs a non-negative number");
            break;
        case 'n':
            if (cli_parse_int(optarg, &o->n_frozen))
                return cli_usage_error(err, "flops", "-n needs a non-negative number");
            break;
        case 'h':
        case OPT_HELP: return CLI_HELP;
        default: return cli_bad_option(err, "flops", ch, argv, longopts);
        }
    }
    if (optind < argc) return cli_usage_error(err, "flops", "unexpected extra argument");
    if (!o->model_dir == !o->config_path)
        return cli_usage_error(err, "flops", "give exactly one of -m DIR and --config FILE");
    if (o->freeze_path && o->n_frozen >= 0)
        return cli_usage_error(err, "flops", "give at most one of --freeze and -n");
    return SV_OK;
}

/* Parses config.json (given directly or in the model folder) and derives the
 * largest image's visual token count. */
static int load_config(const options *o, char path[4096], sv_config *cfg, int64_t *max_visual,
                       sv_error *err) {
    if (o->config_path)
        snprintf(path, 4096, "%s", o->config_path);
    else
        snprintf(path, 4096, "%s/config.json", o->model_dir);
    char *json = sv_read_file(path, NULL, err);
    if (!json) return SV_FAIL;
    int rc = sv_config_parse(cfg, json, path, err);
    if (rc == SV_OK) *max_visual = sv_flops_max_visual_tokens(cfg);
    free(json);
    return rc;
}

static int print_json(const char *config_path, const sv_config *cfg, const sv_flops *f,
                      const sv_freeze *fz, sv_error *err) {
    const int n_fields = fz ? 13 : 12; /* checked below: an allocation failure drops a field */
    cJSON *root = cJSON_CreateObject(), *layers = fz ? cJSON_CreateArray() : NULL;
    cJSON_AddStringToObject(root, "config", config_path);
    cJSON_AddStringToObject(root, "config_hash", cfg->hash);
    cJSON_AddNumberToObject(root, "hidden", cfg->text.hidden);
    cJSON_AddNumberToObject(root, "intermediate", cfg->text.inter);
    cJSON_AddNumberToObject(root, "n_layers", f->n_layers);
    cJSON_AddNumberToObject(root, "n_frozen", f->n_frozen);
    cJSON_AddStringToObject(root, "group", sv_group_name(f->group));
    cJSON_AddNumberToObject(root, "visual_tokens", (double)f->visual_tokens);
    cJSON_AddNumberToObject(root, "text_tokens", (double)f->text_tokens);
    for (int i = 0; fz && i < fz->n_frozen; i++)
        cJSON_AddItemToArray(layers, cJSON_CreateNumber(fz->layers[i]));
    if (layers && (cJSON_GetArraySize(layers) != fz->n_frozen ||
                   !cJSON_AddItemToObject(root, "frozen_layers", layers)))
        cJSON_Delete(layers);
    cJSON_AddNumberToObject(root, "dense_flops", f->dense);
    cJSON_AddNumberToObject(root, "shortv_flops", f->shortv);
    cJSON_AddNumberToObject(root, "ratio", f->ratio);
    char *text = cJSON_GetArraySize(root) == n_fields ? cJSON_PrintUnformatted(root) : NULL;
    cJSON_Delete(root);
    if (!text) return sv_fail(err, "flops: out of memory");
    printf("%s\n", text);
    free(text);
    return SV_OK;
}

static int run(const options *o, sv_error *err) {
    sv_config cfg;
    sv_freeze fz = {0};
    sv_flops f;
    int64_t max_visual;
    char path[4096];
    if (load_config(o, path, &cfg, &max_visual, err)) return SV_FAIL;
    if (o->freeze_path && sv_freeze_load(o->freeze_path, &cfg, &fz, err)) return SV_FAIL;
    int64_t visual = o->visual >= 0 ? o->visual : max_visual;
    int rc = o->freeze_path
                 ? sv_flops_for_layers(&cfg, visual, o->text, fz.group, fz.layers, fz.n_frozen,
                                       &f, err)
                 : sv_flops_count(&cfg, visual, o->text, SV_GROUP_VISUAL,
                                  o->n_frozen >= 0 ? o->n_frozen : 0, &f, err);
    if (rc == SV_OK && o->json) {
        rc = print_json(path, &cfg, &f, o->freeze_path ? &fz : NULL, err);
    } else if (rc == SV_OK) {
        char summary[256];
        sv_flops_summary(&f, summary, sizeof summary);
        printf("%s, %d of %d layers frozen%s, V=%lld T=%lld\n", summary, f.n_frozen,
               f.n_layers, f.group == SV_GROUP_TEXT ? " (text tokens)" : "",
               (long long)f.visual_tokens, (long long)f.text_tokens);
        printf("dense %.0f FLOPs, ShortV %.0f FLOPs, ratio %.4f\n", f.dense, f.shortv, f.ratio);
    }
    sv_freeze_free(&fz);
    return rc;
}

int cli_flops(int argc, char **argv, sv_error *err) {
    options o;
    int rc = parse_options(argc, argv, &o, err);
    if (cli_help_done(rc, usage)) return SV_OK;
    return rc == SV_OK ? run(&o, err) : rc;
}
