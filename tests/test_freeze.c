/* Freeze configs: --freeze-layers lists, loading and its validation, the
 * freeze command's selection rules on an LC file built to reproduce the
 * paper's LLaVA-1.5-7B layer list, the round trip, and bad input. */
#include <cjson/cJSON.h>
#include <hdf5.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "freeze.h"
#include "testutil.h"

#define MODEL_7B "models/configs/llava-1.5-7b"
#define MODEL_13B "models/configs/llava-1.5-13b"
#define N_SAMPLES 4

/* github.com/icip-cas/ShortV README: LLaVA-1.5-7B's replaced layers, ascending LC */
static const int paper_7b[19] = {31, 29, 30, 28, 0, 26, 27, 25, 24, 22,
                                 23, 21, 2,  3,  20, 18, 17, 12, 19};
#define PAPER_7B_LIST "31,29,30,28,0,26,27,25,24,22,23,21,2,3,20,18,17,12,19"

static sv_config load_config(const char *dir) {
    sv_config cfg;
    sv_error e;
    if (sv_config_load(&cfg, dir, &e)) fail_msg("%s", e.msg);
    return cfg;
}

/* Visual ranks: the paper's 19 layers first, then the others by id; layer
 * of rank r has mean visual LC (r+1)/100 (samples spread around it). Text LC
 * falls with the layer id. Every sample: 576 visual tokens of 640. */
static void lc_rows(int i, double *vis, double *txt) {
    int rank = 0, ranked[32] = {0};
    for (int k = 0; k < 19; k++) {
        vis[paper_7b[k]] = (rank++ + 1) / 100.0;
        ranked[paper_7b[k]] = 1;
    }
    for (int l = 0; l < 32; l++)
        if (!ranked[l]) vis[l] = (rank++ + 1) / 100.0;
    for (int l = 0; l < 32; l++) {
        vis[l] *= 1 + 0.1 * (i - 1.5);
        txt[l] = (32 - l) / 10.0;
    }
}

/* An LC file measured on `model` (recorded path and identity: `hash`, or the
 * model's own if NULL), finished or not. */
static void make_lc_hash(const char *path, const char *model, const char *hash, int groups,
                         int finish) {
    sv_config cfg = load_config(model);
    sv_lc_meta m = {
        .seed = 42, .limit = N_SAMPLES, .n_layers = cfg.text.n_layers, .groups = groups};
    snprintf(m.model, sizeof m.model, "%s", model);
    memcpy(m.config_hash, hash ? hash : cfg.hash, 17);
    strcpy(m.manifest, "calib/gqa40.jsonl");
    strcpy(m.aspect, "pad");
    sv_lcfile *f;
    sv_error e;
    if (sv_lcfile_create(&f, path, &m, &e)) fail_msg("%s", e.msg);
    for (int i = 0; i < N_SAMPLES; i++) {
        double vis[32], txt[32];
        const double *lc[SV_N_GROUPS] = {groups & 1 ? vis : NULL, groups & 2 ? txt : NULL};
        char id[16];
        lc_rows(i, vis, txt);
        snprintf(id, sizeof id, "q%d", i);
        if (sv_lcfile_append(f, id, NULL, 5, 581, 640, lc, &e)) fail_msg("%s", e.msg);
    }
    if (!finish) {
        sv_lcfile_close(f);
        return;
    }
    if (sv_lcfile_finish(f, &e)) fail_msg("%s", e.msg);
}

static void make_lc(const char *path, const char *model, int groups, int finish) {
    make_lc_hash(path, model, NULL, groups, finish);
}

/* ---------------------------------------------------------------- lists and loading */

static void test_parse_layers(void **s) {
    (void)s;
    sv_freeze f;
    sv_error e;
    assert_int_equal(sv_freeze_parse_layers("31,29,7", 32, &f, &e), SV_OK);
    assert_int_equal(f.n_frozen, 3);
    assert_int_equal(f.layers[0], 31);
    assert_int_equal(f.layers[2], 7);
    assert_int_equal(f.group, SV_GROUP_VISUAL);
    sv_layer_mode modes[32];
    assert_int_equal(sv_freeze_fill_modes(&f, modes, 32, &e), SV_OK);
    for (int l = 0; l < 32; l++)
        assert_int_equal(modes[l], l == 31 || l == 29 || l == 7 ? SV_LAYER_FREEZE : SV_LAYER_DENSE);
    assert_int_equal(sv_freeze_fill_modes(&f, modes, 40, &e), SV_FAIL);
    sv_freeze_free(&f);

    static const struct { const char *list, *why; } bad[] = {
        {"", "no frozen layers"},          {"31,29,31", "layer 31 is listed twice"},
        {"32", "layer 32 is out of range"}, {"-1", "layer -1 is out of range"},
        {"3,,4", "not a comma-separated"}, {"3,", "not a comma-separated"},
        {"3.5", "not a comma-separated"},  {"x", "not a comma-separated"},
        {" 3", "not a comma-separated"},   {"+3", "not a comma-separated"},
        {"99999999999999999999", "not a comma-separated"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        assert_int_equal(sv_freeze_parse_layers(bad[i].list, 32, &f, &e), SV_FAIL);
        if (!strstr(e.msg, bad[i].why))
            fail_msg("'%s': '%s' lacks '%s'", bad[i].list, e.msg, bad[i].why);
        assert_null(f.layers);
    }
}

/* Writes a freeze config with the given fields spliced in. */
static void write_config(const char *path, const char *format, const char *version,
                         const char *group, const char *hash, const char *n_layers,
                         const char *layers) {
    char text[2048];
    snprintf(text, sizeof text,
             "{\"format\": %s, \"version\": %s, \"group\": %s, \"model\": {\"config_hash\": %s, "
             "\"n_layers\": %s}, \"frozen_layers\": %s}",
             format, version, group, hash, n_layers, layers);
    write_text(path, text);
}

static void test_load_validation(void **s) {
    (void)s;
    sv_config cfg = load_config(MODEL_7B), other = load_config(MODEL_13B);
    char path[1200], hash[32];
    snprintf(path, sizeof path, "%s/f.json", scratch_dir("freeze_load"));
    snprintf(hash, sizeof hash, "\"%s\"", cfg.hash);
    sv_freeze f;
    sv_error e;

    write_config(path, "\"shortv-freeze\"", "1", "\"visual\"", hash, "32", "[31, 29, 7]");
    assert_int_equal(sv_freeze_load(path, &cfg, &f, &e), SV_OK);
    assert_int_equal(f.n_frozen, 3);
    assert_int_equal(f.layers[1], 29);
    assert_string_equal(f.config_hash, cfg.hash);
    sv_freeze_free(&f);
    assert_int_equal(sv_freeze_load(path, NULL, &f, &e), SV_OK); /* no model check */
    sv_freeze_free(&f);
    /* a config from another model: 40 layers / another hash with the same layer count */
    assert_int_equal(sv_freeze_load(path, &other, &f, &e), SV_FAIL);
    assert_non_null(strstr(e.msg, "made for a model with 32 layers, but this model has 40"));
    write_config(path, "\"shortv-freeze\"", "1", "\"visual\"", "\"0123456789abcdef\"", "32",
                 "[1]");
    assert_int_equal(sv_freeze_load(path, &cfg, &f, &e), SV_FAIL);
    assert_non_null(strstr(e.msg, "made for another model (config hash 0123456789abcdef"));

    static const struct {
        const char *format, *version, *group, *hash, *n_layers, *layers, *why;
    } bad[] = {
        {"\"shortv-lc\"", "1", "\"visual\"", NULL, "32", "[1]", "not a shortv freeze config"},
        {"\"shortv-freeze\"", "2", "\"visual\"", NULL, "32", "[1]", "unsupported version"},
        {"\"shortv-freeze\"", "\"1\"", "\"visual\"", NULL, "32", "[1]", "unsupported version"},
        {"\"shortv-freeze\"", "1", "\"audio\"", NULL, "32", "[1]", "group must be"},
        {"\"shortv-freeze\"", "1", "\"visual\"", "\"xyz\"", "32", "[1]", "config_hash must be"},
        {"\"shortv-freeze\"", "1", "\"visual\"", NULL, "0", "[1]", "n_layers must be"},
        {"\"shortv-freeze\"", "1", "\"visual\"", NULL, "32", "[]", "no frozen layers"},
        {"\"shortv-freeze\"", "1", "\"visual\"", NULL, "32", "[32]", "layer 32 is out of range"},
        {"\"shortv-freeze\"", "1", "\"visual\"", NULL, "32", "[-1]", "layer -1 is out of range"},
        {"\"shortv-freeze\"", "1", "\"visual\"", NULL, "32", "[3, 4, 3]", "layer 3 is listed twice"},
        {"\"shortv-freeze\"", "1", "\"visual\"", NULL, "32", "[3, 4.5]", "frozen_layers[1] is not an integer"},
        {"\"shortv-freeze\"", "1", "\"visual\"", NULL, "32", "[\"3\"]", "frozen_layers[0] is not an integer"},
        {"\"shortv-freeze\"", "1", "\"visual\"", NULL, "32", "[true]", "frozen_layers[0] is not an integer"},
        {"\"shortv-freeze\"", "1", "\"visual\"", NULL, "32", "\"31,29\"", "frozen_layers must be a list"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        write_config(path, bad[i].format, bad[i].version, bad[i].group,
                     bad[i].hash ? bad[i].hash : hash, bad[i].n_layers, bad[i].layers);
        assert_int_equal(sv_freeze_load(path, &cfg, &f, &e), SV_FAIL);
        if (!strstr(e.msg, bad[i].why) || !strstr(e.msg, path))
            fail_msg("case %zu: '%s' lacks the path or '%s'", i, e.msg, bad[i].why);
        assert_null(f.layers);
    }
    write_text(path, "{\"format\": \"shortv-freeze\", \"version\": 1, \"gro");
    assert_int_equal(sv_freeze_load(path, &cfg, &f, &e), SV_FAIL);
    assert_non_null(strstr(e.msg, "malformed or truncated"));
    write_text(path, "[1, 2]");
    assert_int_equal(sv_freeze_load(path, &cfg, &f, &e), SV_FAIL);
    assert_int_equal(sv_freeze_load("no/such/f.json", &cfg, &f, &e), SV_FAIL);
    assert_non_null(strstr(e.msg, "no/such/f.json: cannot open"));
}

/* ---------------------------------------------------------------- model identity */

/* LLaVA-1.5-7B's config.json (models/configs) as another tool might
 * re-save it: other key order and indentation, defaults written out, fields
 * that change nothing (names, versions, dtype) added or changed. */
static const char resaved_7b[] =
    "{\"vocab_size\":32064,\"vision_feature_select_strategy\":\"default\","
    "\"vision_feature_layer\":-2,\"transformers_version\":\"4.99.0\","
    "\"torch_dtype\":\"bfloat16\",\"model_type\":\"llava\",\"image_token_index\":32000,\n"
    "  \"text_config\": {\"vocab_size\": 32064, \"rms_norm_eps\": 1e-5, \"model_type\": \"llama\",\n"
    "      \"max_position_embeddings\": 4096, \"hidden_size\": 4096, \"num_hidden_layers\": 32,\n"
    "      \"num_attention_heads\": 32, \"intermediate_size\": 11008, \"rope_theta\": 10000.0},\n"
    "  \"vision_config\": {\"patch_size\": 14, \"num_hidden_layers\": 24, \"image_size\": 336,\n"
    "      \"num_attention_heads\": 16, \"intermediate_size\": 4096, \"hidden_size\": 1024},\n"
    "  \"projector_hidden_act\": \"gelu\", \"_name_or_path\": \"elsewhere/llava\"}\n";

static sv_config parse_config(const char *json) {
    sv_config cfg;
    sv_error e;
    if (sv_config_parse(&cfg, json, "config.json", &e)) fail_msg("%s", e.msg);
    return cfg;
}

/* A re-saved config.json keeps the model's identity; a field that changes the
 * computation changes it; freeze configs follow, and ones that recorded the
 * byte hash of shortv 0.1.0 still match the config.json they were made with. */
static void test_identity(void **s) {
    (void)s;
    sv_config cfg = load_config(MODEL_7B), resaved = parse_config(resaved_7b);
    assert_string_equal(resaved.hash, cfg.hash);
    assert_string_not_equal(resaved.file_hash, cfg.file_hash);
    static const struct { const char *from, *to; } changes[] = {
        {"\"vocab_size\": 32064", "\"vocab_size\": 32128"},
        {"\"rope_theta\": 10000.0", "\"rope_theta\": 20000.0"},
        {"\"num_hidden_layers\": 24", "\"num_hidden_layers\": 23"},
        {"\"vision_feature_layer\":-2", "\"vision_feature_layer\":-1"},
        {"\"rms_norm_eps\": 1e-5", "\"rms_norm_eps\": 1e-6"},
    };
    for (size_t i = 0; i < sizeof changes / sizeof *changes; i++) {
        char json[sizeof resaved_7b + 16];
        const char *at = strstr(resaved_7b, changes[i].from);
        assert_non_null(at);
        snprintf(json, sizeof json, "%.*s%s%s", (int)(at - resaved_7b), resaved_7b,
                 changes[i].to, at + strlen(changes[i].from));
        sv_config other = parse_config(json);
        if (!strcmp(other.hash, cfg.hash)) fail_msg("'%s' kept the identity", changes[i].to);
    }

    char path[1200], hash[32];
    snprintf(path, sizeof path, "%s/f.json", scratch_dir("freeze_identity"));
    sv_freeze f;
    sv_error e;
    snprintf(hash, sizeof hash, "\"%s\"", cfg.hash);
    write_config(path, "\"shortv-freeze\"", "1", "\"visual\"", hash, "32", "[31, 29, 7]");
    assert_int_equal(sv_freeze_load(path, &resaved, &f, &e), SV_OK);
    sv_freeze_free(&f);
    snprintf(hash, sizeof hash, "\"%s\"", cfg.file_hash); /* a config of shortv 0.1.0 */
    write_config(path, "\"shortv-freeze\"", "1", "\"visual\"", hash, "32", "[31, 29, 7]");
    assert_int_equal(sv_freeze_load(path, &cfg, &f, &e), SV_OK);
    sv_freeze_free(&f);
    assert_int_equal(sv_freeze_load(path, &resaved, &f, &e), SV_FAIL);
    assert_non_null(strstr(e.msg, "made for another model"));
    assert_non_null(strstr(e.msg, "--freeze-layers 31,29,7 runs these layers without the check"));
    write_config(path, "\"shortv-freeze\"", "1", "\"text\"", hash, "32", "[31, 29, 7]");
    assert_int_equal(sv_freeze_load(path, &resaved, &f, &e), SV_FAIL);
    assert_null(strstr(e.msg, "--freeze-layers")); /* it freezes visual tokens only */

    /* freeze on an LC file of shortv 0.1.0: accepted, and its config keeps the
     * LC file's identity, so that report --freeze pairs them */
    char lc[1200], args[4096];
    snprintf(lc, sizeof lc, "%s/old.h5", scratch_dir("freeze_identity_lc"));
    make_lc_hash(lc, MODEL_7B, cfg.file_hash, 1, 1);
    snprintf(args, sizeof args, "freeze %s -n 3 -o %s", lc, path);
    expect_success(args);
    assert_int_equal(sv_freeze_load(path, &cfg, &f, &e), SV_OK);
    assert_string_equal(f.config_hash, cfg.file_hash);
    sv_freeze_free(&f);
}

/* ---------------------------------------------------------------- the freeze command */

static double number_at(const cJSON *root, const char *object, const char *key) {
    const cJSON *o = object ? cJSON_GetObjectItemCaseSensitive(root, object) : root;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v))
        fail_msg("freeze config has no number %s.%s", object ? object : "", key);
    return v->valuedouble;
}

static const char *string_at(const cJSON *root, const char *object, const char *key) {
    const cJSON *o = object ? cJSON_GetObjectItemCaseSensitive(root, object) : root;
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsString(v))
        fail_msg("freeze config has no string %s.%s", object ? object : "", key);
    return v->valuestring;
}

static void check_paper_config(const char *path, const char *rule, double value) {
    sv_config cfg = load_config(MODEL_7B);
    sv_freeze f;
    sv_error e;
    if (sv_freeze_load(path, &cfg, &f, &e)) fail_msg("%s", e.msg);
    assert_int_equal(f.n_frozen, 19);
    assert_memory_equal(f.layers, paper_7b, sizeof paper_7b);
    sv_freeze_free(&f);

    char *text = sv_read_file(path, NULL, &e);
    cJSON *root = cJSON_Parse(text);
    free(text);
    assert_non_null(root);
    assert_string_equal(string_at(root, NULL, "format"), "shortv-freeze");
    assert_true(number_at(root, NULL, "version") == 1);
    assert_string_equal(string_at(root, NULL, "group"), "visual");
    char model_path[PATH_MAX];
    assert_non_null(realpath(MODEL_7B, model_path)); /* absolute: usable from anywhere */
    assert_string_equal(string_at(root, "model", "path"), model_path);
    assert_string_equal(string_at(root, "model", "config_hash"), cfg.hash);
    assert_string_equal(string_at(root, "selection", "rule"), rule);
    assert_true(number_at(root, "selection", "value") == value);
    assert_true(number_at(root, "flops", "visual_tokens") == 576);
    assert_true(number_at(root, "flops", "text_tokens") == 64);
    assert_true(fabs(number_at(root, "flops", "dense") / 1e12 - 8.504) < 1e-3);
    assert_true(fabs(number_at(root, "flops", "ratio") - 0.552) < 1e-3);
    assert_true(number_at(root, "calibration", "n_samples") == N_SAMPLES);
    assert_true(number_at(root, "calibration", "seed") == 42);
    assert_string_equal(string_at(root, "calibration", "manifest"), "calib/gqa40.jsonl");
    const cJSON *ranking = cJSON_GetObjectItemCaseSensitive(root, "ranking");
    assert_int_equal(cJSON_GetArraySize(ranking), 32);
    const cJSON *first = cJSON_GetArrayItem(ranking, 0), *last = cJSON_GetArrayItem(ranking, 31);
    assert_true(number_at(first, NULL, "layer") == 31);
    assert_true(fabs(number_at(first, NULL, "mean_lc") - 0.01) < 1e-12);
    assert_true(number_at(first, NULL, "std_lc") > 0);
    assert_true(number_at(last, NULL, "layer") == 16);
    cJSON_Delete(root);
}

static void test_freeze_rules(void **s) {
    (void)s;
    char dir[1024], lc[1200], json[1200], args[4096];
    snprintf(dir, sizeof dir, "%s", scratch_dir("freeze_rules"));
    snprintf(lc, sizeof lc, "%s/lc.h5", dir);
    snprintf(json, sizeof json, "%s/freeze.json", dir);
    make_lc(lc, MODEL_7B, 3, 1);

    snprintf(args, sizeof args, "freeze %s -n 19 -o %s", lc, json);
    expect_success(args);
    assert_non_null(strstr(cli_err, "19 of 32 layers frozen (visual tokens): dense 8.5 TFLOPs -> "
                                "ShortV 4.7 TFLOPs (55%)"));
    check_paper_config(json, "count", 19);
    /* R = 0.55 keeps 55.2% with 19 layers; a 20th would go to 52.8% */
    snprintf(args, sizeof args, "freeze %s --flops-ratio 0.55 -o %s", lc, json);
    expect_success(args);
    check_paper_config(json, "flops_ratio", 0.55);
    snprintf(args, sizeof args, "freeze %s --max-lc 0.195 --group visual -o %s", lc, json);
    expect_success(args);
    check_paper_config(json, "max_lc", 0.195);
    snprintf(args, sizeof args, "flops -m %s --freeze %s", MODEL_7B, json);
    expect_success(args);
    assert_non_null(strstr(cli_out, "dense 8.5 TFLOPs -> ShortV 4.7 TFLOPs (55%)"));

    /* the paper's environment-variable form, to a file and to stdout */
    char env[1200];
    snprintf(env, sizeof env, "%s/layers.env", dir);
    snprintf(args, sizeof args, "freeze %s -n 19 --format env -o %s", lc, env);
    expect_success(args);
    char *text = sv_read_file(env, NULL, &(sv_error){0});
    assert_string_equal(text, "export REPLACED_LAYERS=" PAPER_7B_LIST "\n");
    free(text);
    snprintf(args, sizeof args, "freeze %s -n 19 --format env", lc);
    expect_success(args);
    assert_string_equal(cli_out, "export REPLACED_LAYERS=" PAPER_7B_LIST "\n");
    snprintf(args, sizeof args, "freeze %s -n 3 --format env -o - --group text", lc);
    expect_success(args);
    assert_string_equal(cli_out, "export REPLACED_LAYERS=31,30,29\n");

    /* text group round trip; -m given explicitly */
    snprintf(args, sizeof args, "freeze %s -n 3 --group text -m %s -o %s", lc, MODEL_7B, json);
    expect_success(args);
    sv_config cfg = load_config(MODEL_7B);
    sv_freeze f;
    sv_error e;
    if (sv_freeze_load(json, &cfg, &f, &e)) fail_msg("%s", e.msg);
    assert_int_equal(f.group, SV_GROUP_TEXT);
    assert_int_equal(f.n_frozen, 3);
    assert_int_equal(f.layers[0], 31);
    assert_int_equal(f.layers[2], 29);
    sv_freeze_free(&f);
    expect_success("freeze --help");
    assert_non_null(strstr(cli_out, "usage: shortv freeze"));
}

static void test_freeze_bad_input(void **s) {
    (void)s;
    char dir[1024], lc[1200], path[1200], args[4096];
    snprintf(dir, sizeof dir, "%s", scratch_dir("freeze_bad"));
    snprintf(lc, sizeof lc, "%s/lc.h5", dir);
    make_lc(lc, MODEL_7B, 1, 1);

    snprintf(args, sizeof args, "freeze %s -n 33", lc);
    expect_error(args, "freeze", "-n 33 must be between 1 and the model's 32 layers");
    snprintf(args, sizeof args, "freeze %s -n 0", lc);
    expect_error(args, "freeze", "-n 0 must be between 1");
    snprintf(args, sizeof args, "freeze %s --flops-ratio 0", lc);
    expect_error(args, "freeze", "--flops-ratio 0 must be in (0, 1]");
    snprintf(args, sizeof args, "freeze %s --flops-ratio 1.5", lc);
    expect_error(args, "freeze", "--flops-ratio 1.5 must be in (0, 1]");
    snprintf(args, sizeof args, "freeze %s --flops-ratio 1", lc);
    expect_error(args, "freeze", "freezes no layer");
    snprintf(args, sizeof args, "freeze %s --max-lc 0.001", lc);
    expect_error(args, "freeze", "no layer has mean visual LC <= 0.001");
    snprintf(args, sizeof args, "freeze %s -o x.json", lc);
    expect_error(args, "freeze", "exactly one of -n, --flops-ratio and --max-lc");
    snprintf(args, sizeof args, "freeze %s -n 3 --max-lc 1", lc);
    expect_error(args, "freeze", "exactly one of -n, --flops-ratio and --max-lc");
    expect_error("freeze -n 3", "freeze", "LC.h5 is required");
    snprintf(args, sizeof args, "freeze %s -n 3 --group text", lc);
    expect_error(args, lc, "did not measure the text group");
    snprintf(args, sizeof args, "freeze %s -n 3 --format yaml", lc);
    expect_error(args, "freeze", "--format must be json or env");

    /* an LC file of another model than -m, and one whose model cannot be found */
    snprintf(args, sizeof args, "freeze %s -n 3 -m %s", lc, MODEL_13B);
    expect_error(args, lc, "measured on another model");
    snprintf(args, sizeof args, "freeze %s -n 3 --config %s/config.json", lc,
             "models/configs/llava-next-7b");
    expect_error(args, lc, "measured on another model");
    snprintf(path, sizeof path, "%s/moved", dir);
    snprintf(args, sizeof args, "mkdir -p %s && cp %s/config.json %s/", path, MODEL_7B, path);
    assert_int_equal(system(args), 0);
    snprintf(path, sizeof path, "%s/lc_moved.h5", dir);
    char moved[1200];
    snprintf(moved, sizeof moved, "%s/moved", dir);
    make_lc(path, moved, 1, 1);
    snprintf(args, sizeof args, "rm -r %s", moved);
    assert_int_equal(system(args), 0);
    snprintf(args, sizeof args, "freeze %s -n 3", path);
    expect_error(args, "give it with -m DIR", "cannot read the config");
    snprintf(args, sizeof args, "freeze %s -n 3 -m %s --format env", path, MODEL_7B);
    expect_success(args);

    /* missing, truncated, foreign and unfinished LC files */
    snprintf(args, sizeof args, "freeze %s/none.h5 -n 3", dir);
    expect_error(args, "none.h5", "cannot open");
    snprintf(path, sizeof path, "%s/truncated.h5", dir);
    size_t len;
    char *bytes = sv_read_file(lc, &len, &(sv_error){0});
    write_bytes(path, bytes, len / 3);
    free(bytes);
    snprintf(args, sizeof args, "freeze %s -n 3", path);
    expect_error(args, path, "");
    snprintf(path, sizeof path, "%s/foreign.h5", dir);
    hid_t h = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    assert_true(h >= 0);
    H5Fclose(h);
    snprintf(args, sizeof args, "freeze %s -n 3", path);
    expect_error(args, path, "not a shortv LC file");
    snprintf(path, sizeof path, "%s/not_hdf5.h5", dir);
    write_text(path, "{\"format\": \"shortv-freeze\"}");
    snprintf(args, sizeof args, "freeze %s -n 3", path);
    expect_error(args, path, "not an HDF5 file");
    snprintf(path, sizeof path, "%s/unfinished.h5", dir);
    make_lc(path, MODEL_7B, 1, 0);
    snprintf(args, sizeof args, "freeze %s -n 3", path);
    expect_error(args, path, "incomplete");

    /* an output folder that does not exist: an error and no file, not even a .tmp */
    snprintf(path, sizeof path, "%s/no/such/folder/f.json", dir);
    snprintf(args, sizeof args, "freeze %s -n 3 -o %s", lc, path);
    expect_error(args, path, "cannot create");
    assert_int_not_equal(access(path, F_OK), 0);
    strcat(path, ".tmp");
    assert_int_not_equal(access(path, F_OK), 0);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_layers),
        cmocka_unit_test(test_load_validation),
        cmocka_unit_test(test_identity),
        cmocka_unit_test(test_freeze_rules),
        cmocka_unit_test(test_freeze_bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
