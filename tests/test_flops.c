/* The FLOPs model: the ShortV paper's Table 1 for its four models (configs in
 * models/configs, see the README there), the formula against numbers
 * worked out by hand, the per-layer breakdown, and the flops command's
 * output and errors. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "flops.h"
#include "testutil.h"

#define CONFIGS "models/configs/"

static sv_config load_config(const char *name) {
    sv_config cfg;
    sv_error e;
    char dir[256];
    snprintf(dir, sizeof dir, CONFIGS "%s", name);
    if (sv_config_load(&cfg, dir, &e)) fail_msg("%s", e.msg);
    return cfg;
}

/* Table 1 of arXiv 2504.00502 (Vanilla and ShortV rows); N from the same
 * table, which matches the replaced-layer lists of github.com/icip-cas/ShortV.
 * The paper prints TFLOPs to one decimal and the ratio to a whole percent. */
static const struct paper_row {
    const char *model;
    int visual, n_frozen;
    double dense_tflops, shortv_tflops;
    int percent;
} table1[] = {
    {"llava-1.5-7b", 576, 19, 8.5, 4.7, 55},
    {"llava-1.5-13b", 576, 24, 16.6, 9.1, 55},
    {"llava-next-7b", 2880, 19, 42.7, 21.6, 51},
    {"llava-next-13b", 2880, 24, 81.8, 41.0, 50},
};

/* The largest image's token count, as the flops command derives it. */
static int64_t max_visual(const char *name, const sv_config *cfg) {
    char path[256];
    sv_error e;
    int64_t v = 0;
    snprintf(path, sizeof path, CONFIGS "%s/config.json", name);
    char *json = sv_read_file(path, NULL, &e);
    sv_config parsed;
    if (!json || sv_config_parse(&parsed, json, path, &e)) fail_msg("%s", e.msg);
    free(json);
    v = sv_flops_max_visual_tokens(&parsed);
    assert_int_equal(v, sv_flops_max_visual_tokens(cfg));
    return v;
}

static void test_paper_table1(void **s) {
    (void)s;
    for (size_t i = 0; i < sizeof table1 / sizeof *table1; i++) {
        const struct paper_row *r = &table1[i];
        sv_config cfg = load_config(r->model);
        sv_flops f;
        sv_error e;
        assert_int_equal(max_visual(r->model, &cfg), r->visual);
        if (sv_flops_count(&cfg, r->visual, 64, SV_GROUP_VISUAL, r->n_frozen, &f, &e))
            fail_msg("%s", e.msg);
        printf("# %s: %.4f -> %.4f TFLOPs (%.2f%%)\n", r->model, f.dense / 1e12, f.shortv / 1e12,
               100 * f.ratio);
        assert_true(fabs(round(f.dense / 1e11) / 10 - r->dense_tflops) < 1e-9);
        assert_true(fabs(round(f.shortv / 1e11) / 10 - r->shortv_tflops) < 1e-9);
        assert_int_equal((int)lround(100 * f.ratio), r->percent);

        /* the command line, from the config alone, with V from the vision config */
        char args[512], want[128];
        snprintf(args, sizeof args, "flops -m " CONFIGS "%s -n %d", r->model, r->n_frozen);
        expect_success(args);
        snprintf(want, sizeof want, "dense %.1f TFLOPs -> ShortV %.1f TFLOPs (%d%%), %d of %d "
                 "layers frozen, V=%d T=64\n", r->dense_tflops, r->shortv_tflops, r->percent,
                 r->n_frozen, cfg.text.n_layers, r->visual);
        assert_true(strncmp(cli_out, want, strlen(want)) == 0);
    }
}

/* LLaVA-1.5-7B by hand: h = 4096, m = 11008 (LlamaConfig defaults: the
 * llava-hf file omits them), v = 576, t = 64, n = 640, 4h+3m = 49408.
 *   dense  = 2·640·49408·4096 + 4·640²·4096           = 265 751 101 440
 *   ShortV = 2·64·49408·4096 + 4·576·4096² + 4·64·640·4096 = 65 229 815 808 */
static void test_formula_by_hand(void **s) {
    (void)s;
    sv_config cfg = load_config("llava-1.5-7b");
    assert_int_equal(cfg.text.hidden, 4096);
    assert_int_equal(cfg.text.inter, 11008);
    assert_int_equal(cfg.text.n_layers, 32);
    assert_true(sv_flops_dense_layer(&cfg.text, 576, 64) == 265751101440.0);
    assert_true(sv_flops_frozen_layer(&cfg.text, 576, 64, SV_GROUP_VISUAL) == 65229815808.0);
    /* freezing text rows swaps the roles: 2·576·49408·4096 + 4·64·4096² + 4·576·640·4096 */
    assert_true(sv_flops_frozen_layer(&cfg.text, 576, 64, SV_GROUP_TEXT) ==
                233136193536.0 + 4294967296.0 + 6039797760.0);

    sv_flops f;
    sv_error e;
    if (sv_flops_count(&cfg, 576, 64, SV_GROUP_VISUAL, 19, &f, &e)) fail_msg("%s", e.msg);
    assert_true(f.dense == 32 * 265751101440.0);
    assert_true(f.shortv == 13 * 265751101440.0 + 19 * 65229815808.0);
    assert_true(f.ratio == f.shortv / f.dense);

    /* N = 0: nothing saved; N = L: every layer a ShortV layer */
    if (sv_flops_count(&cfg, 576, 64, SV_GROUP_VISUAL, 0, &f, &e)) fail_msg("%s", e.msg);
    assert_true(f.ratio == 1.0);
    if (sv_flops_count(&cfg, 576, 64, SV_GROUP_VISUAL, 32, &f, &e)) fail_msg("%s", e.msg);
    assert_true(f.shortv == 32 * 65229815808.0);
    assert_true(fabs(f.ratio - 65229815808.0 / 265751101440.0) < 1e-15);

    /* no visual tokens: a frozen layer costs what a dense one does */
    assert_true(sv_flops_frozen_layer(&cfg.text, 0, 64, SV_GROUP_VISUAL) ==
                sv_flops_dense_layer(&cfg.text, 0, 64));
}

static void test_layer_sets_and_breakdown(void **s) {
    (void)s;
    sv_config cfg = load_config("llava-1.5-13b");
    const int paper[24] = {39, 32, 28, 36, 27, 37, 29, 30, 1,  38, 25, 31,
                           2,  26, 23, 34, 0,  33, 35, 22, 24, 21, 20, 17};
    sv_flops by_set, by_count;
    sv_error e;
    if (sv_flops_for_layers(&cfg, 576, 64, SV_GROUP_VISUAL, paper, 24, &by_set, &e) ||
        sv_flops_count(&cfg, 576, 64, SV_GROUP_VISUAL, 24, &by_count, &e))
        fail_msg("%s", e.msg);
    assert_true(by_set.shortv == by_count.shortv);

    const int dup[3] = {3, 7, 3}, range[2] = {3, 40}, negative[1] = {-1};
    assert_int_equal(sv_flops_for_layers(&cfg, 576, 64, SV_GROUP_VISUAL, dup, 3, &by_set, &e),
                     SV_FAIL);
    assert_non_null(strstr(e.msg, "layer 3 is listed twice"));
    assert_int_equal(sv_flops_for_layers(&cfg, 576, 64, SV_GROUP_VISUAL, range, 2, &by_set, &e),
                     SV_FAIL);
    assert_non_null(strstr(e.msg, "layer 40 is out of range"));
    assert_int_equal(
        sv_flops_for_layers(&cfg, 576, 64, SV_GROUP_VISUAL, negative, 1, &by_set, &e), SV_FAIL);

    /* per layer: FREEZE costs a ShortV layer, ABLATE and DENSE a dense one; the sum is the total */
    sv_layer_mode modes[40] = {0};
    double per_layer[40], sum = 0;
    for (int i = 0; i < 24; i++) modes[paper[i]] = SV_LAYER_FREEZE;
    modes[3] = SV_LAYER_ABLATE;
    if (sv_flops_per_layer(&cfg, 576, 64, modes, SV_GROUP_VISUAL, per_layer, &e))
        fail_msg("%s", e.msg);
    for (int l = 0; l < 40; l++) sum += per_layer[l];
    assert_true(fabs(sum - by_count.shortv) <= 1e-12 * sum);
    assert_true(per_layer[39] == sv_flops_frozen_layer(&cfg.text, 576, 64, SV_GROUP_VISUAL));
    assert_true(per_layer[3] == sv_flops_dense_layer(&cfg.text, 576, 64));
    if (sv_flops_per_layer(&cfg, 576, 64, NULL, SV_GROUP_VISUAL, per_layer, &e))
        fail_msg("%s", e.msg);
    assert_true(per_layer[39] == per_layer[3]);

    /* bad counts */
    assert_int_equal(sv_flops_count(&cfg, 576, 64, SV_GROUP_VISUAL, 41, &by_set, &e), SV_FAIL);
    assert_non_null(strstr(e.msg, "the model has 40 layers"));
    assert_int_equal(sv_flops_count(&cfg, -1, 64, SV_GROUP_VISUAL, 1, &by_set, &e), SV_FAIL);
    assert_int_equal(sv_flops_count(&cfg, 0, 0, SV_GROUP_VISUAL, 1, &by_set, &e), SV_FAIL);
}

static void test_anyres_token_count(void **s) {
    (void)s;
    sv_config cfg;
    sv_error e;
    /* a 2x3 grid of 336 tiles is the largest: 576 * (1 + 6) */
    assert_int_equal(
        sv_config_parse(&cfg, "{\"vocab_size\": 32064, \"image_grid_pinpoints\": [[672, 1008], [336, 336]]}",
                        "c.json", &e),
        SV_OK);
    assert_int_equal(sv_flops_max_visual_tokens(&cfg), 576 * 7);
    assert_int_equal(sv_config_parse(&cfg, "{\"vocab_size\": 32064}", "c.json", &e), SV_OK);
    assert_int_equal(sv_flops_max_visual_tokens(&cfg), 576);
    /* model_type llava_next without pinpoints: LlavaNextConfig's five, 2x2 the largest */
    assert_int_equal(sv_config_parse(&cfg, "{\"vocab_size\": 32064, \"model_type\": \"llava_next\"}", "c.json", &e),
                     SV_OK);
    assert_int_equal(sv_flops_max_visual_tokens(&cfg), 576 * 5);
    const char *bad[] = {"{\"image_grid_pinpoints\": [[672]]}",
                         "{\"image_grid_pinpoints\": [[672, -336]]}",
                         "{\"image_grid_pinpoints\": [[672, 33.5]]}",
                         "{\"image_grid_pinpoints\": [[672, 500]]}",
                         "{\"image_grid_pinpoints\": 672}", "{\"image_grid_pinpoints\": []}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(sv_config_parse(&cfg, bad[i], "c.json", &e), SV_FAIL);
        assert_non_null(strstr(e.msg, "c.json: image_grid_pinpoints"));
    }
}

static double json_number(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v)) fail_msg("--json output has no number '%s': %s", key, cli_out);
    return v->valuedouble;
}

static void test_cli_json_and_options(void **s) {
    (void)s;
    expect_success("flops --config " CONFIGS "llava-1.5-7b/config.json -n 19 --json");
    cJSON *o = cJSON_Parse(cli_out);
    assert_non_null(o);
    assert_true(json_number(o, "dense_flops") == 32 * 265751101440.0);
    assert_true(json_number(o, "shortv_flops") == 13 * 265751101440.0 + 19 * 65229815808.0);
    assert_true(fabs(json_number(o, "ratio") - 0.552) < 1e-3);
    assert_true(json_number(o, "visual_tokens") == 576 && json_number(o, "text_tokens") == 64);
    assert_true(json_number(o, "n_frozen") == 19 && json_number(o, "n_layers") == 32);
    assert_non_null(strstr(cli_out, "\"dense_flops\":8504035246080,")); /* a plain number */
    cJSON_Delete(o);

    /* defaults: nothing frozen, ratio 1; explicit token counts */
    expect_success("flops -m " CONFIGS "llava-1.5-7b");
    assert_non_null(strstr(cli_out, "(100%), 0 of 32 layers frozen, V=576 T=64"));
    expect_success("flops -m " CONFIGS "llava-1.5-7b -n 32 --visual-tokens 1000 --text-tokens 7");
    assert_non_null(strstr(cli_out, "32 of 32 layers frozen, V=1000 T=7"));
    expect_success("flops --help");
    assert_non_null(strstr(cli_out, "usage: shortv flops"));
}

/* A freeze config for a model, by hand (test_freeze covers the writer). */
static void write_freeze(const char *path, const char *hash, int n_layers, const char *layers) {
    char text[1024];
    snprintf(text, sizeof text,
             "{\"format\": \"shortv-freeze\", \"version\": 1, \"group\": \"visual\", "
             "\"model\": {\"config_hash\": \"%s\", \"n_layers\": %d}, \"frozen_layers\": [%s]}",
             hash, n_layers, layers);
    write_text(path, text);
}

static void test_cli_freeze_file(void **s) {
    (void)s;
    sv_config cfg = load_config("llava-1.5-7b");
    char path[1200], args[2048];
    snprintf(path, sizeof path, "%s/freeze.json", scratch_dir("flops_freeze"));
    write_freeze(path, cfg.hash, 32, "31,29,30,28,0,26,27,25,24,22,23,21,2,3,20,18,17,12,19");
    snprintf(args, sizeof args, "flops -m " CONFIGS "llava-1.5-7b --freeze %s", path);
    expect_success(args);
    assert_non_null(strstr(cli_out, "dense 8.5 TFLOPs -> ShortV 4.7 TFLOPs (55%), 19 of 32"));
    snprintf(args, sizeof args, "flops -m " CONFIGS "llava-1.5-7b --freeze %s --json", path);
    expect_success(args);
    assert_non_null(strstr(cli_out, "\"frozen_layers\":[31,29,30,28,0,"));

    /* the same file against another model (13B: other hash, 40 layers) */
    snprintf(args, sizeof args, "flops -m " CONFIGS "llava-1.5-13b --freeze %s", path);
    expect_error(args, path, "made for a model with 32 layers");
    /* same layer count, other config (NeXT-7B has the 7B's sizes) */
    snprintf(args, sizeof args, "flops -m " CONFIGS "llava-next-7b --freeze %s", path);
    expect_error(args, path, "made for another model");
}

static void test_cli_bad_input(void **s) {
    (void)s;
    char dir[1024], path[1200], args[2048];
    snprintf(dir, sizeof dir, "%s", scratch_dir("flops_bad")); /* scratch paths are recycled */
    expect_error("flops -m " CONFIGS "llava-1.5-7b -n 33", "flops",
                 "33 frozen layers requested but the model has 32 layers");
    expect_error("flops -m " CONFIGS "llava-1.5-7b -n -1", "flops", "-n needs a non-negative");
    expect_error("flops -m " CONFIGS "llava-1.5-7b --visual-tokens x", "flops", "--visual-tokens");
    expect_error("flops -m " CONFIGS "llava-1.5-7b --visual-tokens 0 --text-tokens 0", "flops",
                 "no tokens");
    expect_error("flops -n 3", "flops", "exactly one of -m DIR and --config");
    expect_error("flops -m a --config b", "flops", "exactly one of -m DIR and --config");
    expect_error("flops -m " CONFIGS "llava-1.5-7b -n 3 --freeze f.json", "flops",
                 "at most one of --freeze and -n");
    expect_error("flops -m " CONFIGS "llava-1.5-7b --bogus", "flops", "unknown option");

    snprintf(args, sizeof args, "flops -m %s/missing -n 3", dir);
    expect_error(args, "missing/config.json", "cannot open");
    snprintf(path, sizeof path, "%s/impossible.json", dir);
    write_text(path, "{\"text_config\": {\"hidden_size\": 4096, \"num_attention_heads\": 30}}");
    snprintf(args, sizeof args, "flops --config %s -n 3", path);
    expect_error(args, path, "not divisible by num_attention_heads");
    write_text(path, "{\"text_config\": {\"num_hidden_layers\": 0}}");
    expect_error(args, path, "num_hidden_layers must be positive");
    write_text(path, "{\"text_config\": {\"num_hidden_layers\": 32");
    expect_error(args, path, "not valid JSON");
    write_text(path, "{\"vocab_size\": 32064, \"image_grid_pinpoints\": [[672, \"wide\"]]}");
    expect_error(args, path, "image_grid_pinpoints");
    snprintf(args, sizeof args, "flops -m " CONFIGS "llava-1.5-7b --freeze %s/none.json", dir);
    expect_error(args, "none.json", "cannot open");
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paper_table1),
        cmocka_unit_test(test_formula_by_hand),
        cmocka_unit_test(test_layer_sets_and_breakdown),
        cmocka_unit_test(test_anyres_token_count),
        cmocka_unit_test(test_cli_json_and_options),
        cmocka_unit_test(test_cli_freeze_file),
        cmocka_unit_test(test_cli_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
