/* shortv freeze: picks the layers to freeze from an LC file and writes a
 * freeze config (JSON) or the paper's REPLACED_LAYERS line. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "atomic_file.h"
#include "cli.h"
#include "freeze.h"

static const char usage[] =
    "usage: shortv freeze LC.h5 (-n N | --flops-ratio R | --max-lc X) [--group visual|text]\n"
    "                     [-m DIR | --config config.json] [-o F.json] [--format json|env]\n"
    "  Freezes the layers of lowest mean LC: the N lowest (-n), as many as keep\n"
    "  ShortV/dense FLOPs >= R (--flops-ratio, R in (0,1]), or all with mean LC <= X\n"
    "  (--max-lc). The model's config.json is read from the path the LC file records,\n"
    "  or from -m/--config, and must be the one the LC file was measured on.\n"
    "  --format json (default) writes a freeze config; env writes the shell line\n"
    "  export REPLACED_LAYERS=... (the layer list for the paper's code).\n"
    "  Without -o, or with -o -, the output goes to stdout.\n";

typedef struct options {
    const char *lc_path, *out, *model_dir, *config_path;
    sv_group group;
    sv_select_rule rule;
    double value;
    int n_rules, env;
} options;

static int set_rule(options *o, sv_select_rule rule, const char *arg, sv_error *err) {
    static const char *const what[] = {"-n needs a whole number",
                                       "--flops-ratio needs a number",
                                       "--max-lc needs a number"};
    int n;
    if (rule == SV_SELECT_COUNT ? cli_parse_int(arg, &n) : cli_parse_double(arg, &o->value))
        return cli_usage_error(err, "freeze", what[rule]);
    if (rule == SV_SELECT_COUNT) o->value = n;
    o->rule = rule;
    o->n_rules++;
    return SV_OK;
}

/* SV_OK, SV_FAIL, or CLI_HELP. */
static int parse_options(int argc, char **argv, options *o, sv_error *err) {
    enum { OPT_RATIO = 256, OPT_MAX_LC, OPT_GROUP, OPT_FORMAT, OPT_CONFIG, OPT_HELP };
    static const struct option longopts[] = {
        {"flops-ratio", required_argument, 0, OPT_RATIO},
        {"max-lc", required_argument, 0, OPT_MAX_LC},
        {"group", required_argument, 0, OPT_GROUP},
        {"format", required_argument, 0, OPT_FORMAT},
        {"model", required_argument, 0, 'm'},
        {"config", required_argument, 0, OPT_CONFIG},
        {"output", required_argument, 0, 'o'},
        {"help", no_argument, 0, OPT_HELP},
        {0, 0, 0, 0}};
    *o = (options){.group = SV_GROUP_VISUAL};
    cli_getopt_start();
    int ch, rc = SV_OK;
    while (rc == SV_OK && (ch = cli_getopt(argc, argv, "n:o:m:h", longopts)) != -1) {
        switch (ch) {
        case 'n': rc = set_rule(o, SV_SELECT_COUNT, optarg, err); break;
        case OPT_RATIO: rc = set_rule(o, SV_SELECT_FLOPS_RATIO, optarg, err); break;
        case OPT_MAX_LC: rc = set_rule(o, SV_SELECT_MAX_LC, optarg, err); break;
        case 'o': o->out = optarg; break;
        case 'm': o->model_dir = optarg; break;
        case OPT_CONFIG: o->config_path = optarg; break;
        case OPT_GROUP:
            if (cli_parse_group(optarg, &o->group))
                return cli_usage_error(err, "freeze", "--group must be visual or text");
            break;
        case OPT_FORMAT:
            if (strcmp(optarg, "json") && strcmp(optarg, "env"))
                return cli_usage_error(err, "freeze", "--format must be json or env");
            o->env = strcmp(optarg, "env") == 0;
            break;
        case 'h':
        case OPT_HELP: return CLI_HELP;
        default: return cli_bad_option(err, "freeze", ch, argv, longopts);
        }
    }
    if (rc) return rc;
    if (optind < argc) o->lc_path = argv[optind++];
    if (optind < argc) return cli_usage_error(err, "freeze", "unexpected extra argument");
    if (!o->lc_path) return cli_usage_error(err, "freeze", "LC.h5 is required");
    if (o->n_rules != 1)
        return cli_usage_error(err, "freeze",
                               "give exactly one of -n, --flops-ratio and --max-lc");
    if (o->model_dir && o->config_path)
        return cli_usage_error(err, "freeze", "give at most one of -m and --config");
    return SV_OK;
}

/* The model's config: -m or --config if given, else the folder the LC file names. */
static int load_model_config(const options *o, const sv_lc_data *lc, sv_config *cfg,
                             sv_error *err) {
    if (o->config_path) {
        char *json = sv_read_file(o->config_path, NULL, err);
        if (!json) return SV_FAIL;
        int rc = sv_config_parse(cfg, json, o->config_path, err);
        free(json);
        return rc;
    }
    if (o->model_dir) return sv_config_load(cfg, o->model_dir, err);
    if (sv_config_load(cfg, lc->meta.model, err) == SV_OK) return SV_OK;
    char why[SV_ERROR_MAX];
    snprintf(why, sizeof why, "%s", err->msg);
    return sv_fail(err, "%s: cannot read the config of the model it was measured on (%.600s); "
                   "give it with -m DIR or --config FILE", o->lc_path, why);
}

/* The model folder as an absolute path for model.path, so that the config names
 * its model wherever it is read: -m, the folder of --config, or the LC file's
 * (whose path is relative to where calibrate ran); as recorded if it cannot be
 * resolved (a --config file outside any model folder still gives its folder). */
static void absolute_model_path(const options *o, const sv_lc_data *lc, char *out) {
    char dir[PATH_MAX];
    const char *slash = o->config_path ? strrchr(o->config_path, '/') : NULL;
    if (o->config_path)
        snprintf(dir, sizeof dir, "%.*s", slash ? (int)(slash - o->config_path) : 1,
                 slash ? o->config_path : ".");
    else
        snprintf(dir, sizeof dir, "%s", o->model_dir ? o->model_dir : lc->meta.model);
    if (!realpath(dir[0] ? dir : "/", out)) snprintf(out, PATH_MAX, "%s", dir);
}

static int write_output(const options *o, const char *text, sv_error *err) {
    if (!o->out || strcmp(o->out, "-") == 0) {
        fputs(text, stdout);
        return cli_flush_stdout(err); /* before the summary says it worked */
    }
    return sv_write_text_atomic(o->out, text, err);
}

static int run(const options *o, sv_error *err) {
    sv_lc_data lc;
    sv_config cfg;
    sv_freeze_plan plan;
    char model_path[PATH_MAX];
    if (sv_lc_read(&lc, o->lc_path, err)) return SV_FAIL;
    int rc = load_model_config(o, &lc, &cfg, err);
    if (rc == SV_OK)
        rc = sv_freeze_plan_make(&plan, &lc, o->lc_path, &cfg, o->group, o->rule, o->value, err);
    if (rc == SV_OK) {
        absolute_model_path(o, &lc, model_path);
        plan.model_path = model_path;
    }
    char *text = NULL;
    if (rc == SV_OK) {
        text = o->env ? sv_freeze_plan_env(&plan, err) : sv_freeze_plan_json(&plan, err);
        rc = text ? write_output(o, text, err) : SV_FAIL;
    }
    if (rc == SV_OK) {
        char summary[256];
        sv_flops_summary(&plan.flops, summary, sizeof summary);
        fprintf(stderr, "shortv freeze: %d of %d layers frozen (%s tokens): %s\n", plan.n_frozen,
                lc.meta.n_layers, sv_group_name(o->group), summary);
    }
    free(text);
    sv_lc_data_free(&lc);
    return rc;
}

int cli_freeze(int argc, char **argv, sv_error *err) {
    options o;
    int rc = parse_options(argc, argv, &o, err);
    if (cli_help_done(rc, usage)) return SV_OK;
    return rc == SV_OK ? run(&o, err) : rc;
}
