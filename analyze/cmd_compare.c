/* shortv compare: how alike two calibrations rank the layers (compare.h). */
#include <cjson/cJSON.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "compare.h"
#include "llm.h"

static const char usage[] =
    "usage: shortv compare A.h5 B.h5 [--group visual|text] [--json]\n"
    "  Do two calibrations of the same model (other samples, another dataset, another\n"
    "  seed) rank its layers alike? For each token group swept in both (or --group):\n"
    "  Kendall's tau-b between the two mean-LC vectors, both rankings, and for every N\n"
    "  how many of the N lowest-LC layers (what freeze -n N picks) the two share.\n"
    "  --json prints one object instead: {\"a\", \"b\", \"groups\": {\"visual\": {\"tau_b\",\n"
    "  \"order_a\", \"order_b\", \"shared\": [shared by the N lowest, N = 1 ..]}}}.\n";

typedef struct options {
    const char *a, *b;
    int group; /* -1: every group in both files */
    int json;
} options;

/* SV_OK, SV_FAIL, or CLI_HELP. */
static int parse_options(int argc, char **argv, options *o, sv_error *err) {
    enum { OPT_GROUP = 256, OPT_JSON, OPT_HELP };
    static const struct option longopts[] = {{"group", required_argument, 0, OPT_GROUP},
                                             {"json", no_argument, 0, OPT_JSON},
                                             {"help", no_argument, 0, OPT_HELP},
                                             {0, 0, 0, 0}};
    *o = (options){.group = -1};
    cli_getopt_start();
    int ch;
    sv_group group;
    while ((ch = cli_getopt(argc, argv, "h", longopts)) != -1) {
        switch (ch) {
        case OPT_GROUP:
            if (cli_parse_group(optarg, &group))
                return cli_usage_error(err, "compare", "--group must be visual or text");
            o->group = (int)group;
            break;
        case OPT_JSON: o->json = 1; break;
        case 'h':
        case OPT_HELP: return CLI_HELP;
        default: return cli_bad_option(err, "compare", ch, argv, longopts);
        }
    }
    if (argc - optind != 2) return cli_usage_error(err, "compare", "give two LC files");
    o->a = argv[optind], o->b = argv[optind + 1];
    return SV_OK;
}

static void print_order(const char *name, const int32_t *order, int L) {
    printf("  %s:", name);
    for (int i = 0; i < L; i++) printf(" %d", order[i]);
    printf("   (ascending mean LC)\n");
}

static void print_comparison(const char *group, const sv_lc_comparison *c) {
    printf("%s tokens: Kendall tau-b %.3f between the two rankings of %d layers\n", group,
           c->tau_b, c->n_layers);
    print_order("A", c->order_a, c->n_layers);
    print_order("B", c->order_b, c->n_layers);
    printf("  N lowest shared:");
    for (int n = 1; n <= c->n_layers; n++) printf(" %d/%d", c->shared[n], n);
    printf("\n");
}

static cJSON *order_json(const int32_t *order, int n) {
    cJSON *a = cJSON_CreateArray();
    for (int i = 0; a && i < n; i++) cJSON_AddItemToArray(a, cJSON_CreateNumber(order[i]));
    return a;
}

static void add_comparison_json(cJSON *groups, const char *group, const sv_lc_comparison *c) {
    cJSON *g = cJSON_AddObjectToObject(groups, group);
    if (!g) return;
    if (isnan(c->tau_b)) cJSON_AddNullToObject(g, "tau_b");
    else cJSON_AddNumberToObject(g, "tau_b", c->tau_b);
    cJSON_AddItemToObject(g, "order_a", order_json(c->order_a, c->n_layers));
    cJSON_AddItemToObject(g, "order_b", order_json(c->order_b, c->n_layers));
    cJSON_AddItemToObject(g, "shared", cJSON_CreateIntArray(c->shared + 1, c->n_layers));
}

/* Compares every requested group; prints text as it goes, or fills groups (JSON). */
static int compare_groups(const options *o, const sv_lc_data *a, const sv_lc_data *b,
                          cJSON *groups, sv_error *err) {
    int compared = 0;
    for (int g = 0; g < SV_N_GROUPS; g++) {
        if (o->group >= 0 ? g != o->group : !(a->mean[g] && b->mean[g])) continue;
        sv_lc_comparison c;
        if (sv_lc_compare(a, o->a, b, o->b, g, &c, err)) return SV_FAIL;
        if (groups) add_comparison_json(groups, sv_group_name(g), &c);
        else print_comparison(sv_group_name(g), &c);
        sv_lc_comparison_free(&c);
        compared++;
    }
    if (!compared)
        return sv_fail(err, "%s and %s: no token group was swept in both", o->a, o->b);
    return SV_OK;
}

int cli_compare(int argc, char **argv, sv_error *err) {
    options o;
    int rc = parse_options(argc, argv, &o, err);
    if (cli_help_done(rc, usage)) return SV_OK;
    if (rc != SV_OK) return rc;
    sv_lc_data a, b;
    if (sv_lc_read(&a, o.a, err)) return SV_FAIL;
    if (sv_lc_read(&b, o.b, err)) {
        sv_lc_data_free(&a);
        return SV_FAIL;
    }
    cJSON *root = o.json ? cJSON_CreateObject() : NULL;
    cJSON *groups = root && cJSON_AddStringToObject(root, "a", o.a) &&
                            cJSON_AddStringToObject(root, "b", o.b)
                        ? cJSON_AddObjectToObject(root, "groups")
                        : NULL;
    rc = o.json && !groups ? sv_fail(err, "compare: out of memory")
                           : compare_groups(&o, &a, &b, groups, err);
    char *text = rc == SV_OK && root ? cJSON_Print(root) : NULL;
    if (text) printf("%s\n", text);
    free(text);
    cJSON_Delete(root);
    sv_lc_data_free(&a), sv_lc_data_free(&b);
    return rc;
}
