/* shortv study end to end on tiny-a (its answers are noise, so the mechanics
 * are checked: the layer sets of every strategy, the seeding, the FLOPs
 * ratios, study.json, the chart, report --study), its bad input, and the
 * demo's pipeline (scripts/demo.sh) on a few samples of the bundled model. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flops.h"
#include "lcfile.h"
#include "model.h"
#include "prompt.h"
#include "stats.h"
#include "study.h"
#include "testutil.h"

#define QUESTION "What is shown in this image?"
#define BUNDLED_MODEL "models/synth-llava"
/* The blind, text-only guesser's accuracy on the synthetic questions, as the
 * README reports it: each type's most common training answer. */
#define TEXT_ONLY_BASELINE 0.283

static void __attribute__((format(printf, 1, 2))) run_ok(const char *fmt, ...) {
    char args[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    expect_success(args);
}

static void __attribute__((format(printf, 3, 4)))
run_error(const char *names, const char *what, const char *fmt, ...) {
    char args[8192];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    expect_error(args, names, what);
}

static cJSON *read_json(const char *path) {
    size_t len;
    char *text = sv_read_file_bytes(path, &len);
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j) fail_msg("%s: not valid JSON", path);
    return j;
}

static const cJSON *get(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) fail_msg("no '%s'", key);
    return v;
}

static double number(const cJSON *o, const char *key) {
    const cJSON *v = get(o, key);
    if (!cJSON_IsNumber(v)) fail_msg("'%s' is not a number", key);
    return v->valuedouble;
}

/* The layers of a run as ints; returns how many. */
static int layers_of(const cJSON *run, int *out, int max) {
    const cJSON *list = get(run, "layers"), *v;
    int n = 0;
    cJSON_ArrayForEach(v, list) {
        if (n == max) fail_msg("too many layers");
        out[n++] = v->valueint;
    }
    return n;
}

/* ---------------------------------------------------------------- fixtures */

/* Two samples of the golden images, an LC file of tiny-a on them. */
static const char *tiny_setup(path_buf manifest, path_buf lc) {
    static path_buf dir;
    char cmd[8192];
    snprintf(dir, sizeof dir, "%s", scratch_dir("study"));
    snprintf(cmd, sizeof cmd, "cp %s %s %s/", golden_path("images/chelsea.png"),
             golden_path("images/synthetic_336.png"), dir);
    assert_int_equal(system(cmd), 0);
    join(manifest, dir, "m.jsonl"), join(lc, dir, "lc.h5");
    write_text(manifest,
               "{\"id\": \"a\", \"image\": \"chelsea.png\", \"question\": \"" QUESTION "\", "
               "\"answer\": \"cat\", \"type\": \"animal\"}\n"
               "{\"id\": \"b\", \"image\": \"synthetic_336.png\", \"question\": \"" QUESTION
               "\", \"answer\": \"shapes\", \"type\": \"<scene>\"}\n");
    run_ok("calibrate -m %s --data %s --groups visual -o %s", tiny_model_dir(), manifest, lc);
    return dir;
}

/* The FLOPs ratio with n of tiny-a's layers frozen, for the prompt of both
 * samples (each asks QUESTION about one image: the same token counts). */
static double expected_ratio(int n) {
    sv_model *m;
    sv_prompt p;
    sv_flops f;
    sv_error e;
    if (sv_model_load(&m, tiny_model_dir(), &e) ||
        sv_prompt_build(m, QUESTION, SV_TEMPLATE_VICUNA_V1, (size_t)m->cfg.view_tokens, &p, &e))
        fail_msg("%s", e.msg);
    int64_t v = (int64_t)(p.visual.end - p.visual.start);
    if (sv_flops_count(&m->cfg, v, (int64_t)p.n - v, SV_GROUP_VISUAL, n, &f, &e))
        fail_msg("%s", e.msg);
    sv_prompt_free(&p);
    sv_model_free(m);
    return f.ratio;
}

/* Random set k of n layers out of L, as study.h documents it. */
static void documented_random_set(uint64_t seed, int n, int k, int L, int *out) {
    sv_rng rng = {seed ^ (uint64_t)n << 32 ^ (uint64_t)k};
    int pool[64], in[64] = {0};
    for (int l = 0; l < L; l++) pool[l] = l;
    for (int i = 0; i < n; i++) {
        int j = i + (int)sv_rng_below(&rng, (uint64_t)(L - i)), t = pool[i];
        pool[i] = pool[j], pool[j] = t;
        in[pool[i]] = 1;
    }
    for (int l = 0, i = 0; l < L; l++)
        if (in[l]) out[i++] = l;
}

/* ---------------------------------------------------------------- tiny-a */

static void check_run_sets(const cJSON *runs, const sv_lc_data *d, uint64_t seed) {
    const int L = d->meta.n_layers, counts[] = {1, 3}, sets = 2;
    assert_int_equal(cJSON_GetArraySize(runs), 1 + 2 * (2 + sets));
    const cJSON *dense = cJSON_GetArrayItem(runs, 0);
    assert_string_equal(get(dense, "strategy")->valuestring, "dense");
    assert_true(number(dense, "flops_ratio") == 1);
    int i = 1, got[64], want[64];
    for (int c = 0; c < 2; c++) {
        int n = counts[c];
        const cJSON *lc = cJSON_GetArrayItem(runs, i++), *rev = cJSON_GetArrayItem(runs, i++);
        assert_string_equal(get(lc, "strategy")->valuestring, "lc");
        assert_string_equal(get(rev, "strategy")->valuestring, "reverse");
        assert_int_equal(layers_of(lc, got, 64), n);
        for (int r = 0; r < n; r++) assert_int_equal(got[r], d->order[0][r]);
        assert_int_equal(layers_of(rev, got, 64), n);
        for (int r = 0; r < n; r++) assert_int_equal(got[r], d->order[0][L - 1 - r]);
        double ratio = number(lc, "flops_ratio");
        assert_float_equal(ratio, expected_ratio(n), 1e-12);
        assert_true(number(rev, "flops_ratio") == ratio);
        for (int k = 0; k < sets; k++) {
            const cJSON *r = cJSON_GetArrayItem(runs, i++);
            assert_string_equal(get(r, "strategy")->valuestring, "random");
            assert_int_equal(number(r, "set"), k);
            assert_int_equal(layers_of(r, got, 64), n);
            documented_random_set(seed, n, k, L, want);
            assert_memory_equal(got, want, (size_t)n * sizeof *got);
            assert_true(number(r, "flops_ratio") == ratio);
        }
    }
}

static void check_accuracy_fields(const cJSON *runs) {
    const cJSON *r;
    cJSON_ArrayForEach(r, runs) {
        double n = number(r, "n"), k = number(r, "correct"), acc = number(r, "accuracy");
        const cJSON *ci = get(r, "accuracy_ci95");
        const char *answers = get(r, "answers_correct")->valuestring;
        assert_true(n == 2 && k >= 0 && k <= n);
        assert_int_equal(strlen(answers), 2);
        assert_int_equal(strspn(answers, "01"), 2);
        assert_int_equal((answers[0] == '1') + (answers[1] == '1'), k);
        assert_float_equal(acc, k / n, 1e-12);
        assert_true(cJSON_GetArrayItem(ci, 0)->valuedouble <= acc);
        assert_true(cJSON_GetArrayItem(ci, 1)->valuedouble >= acc);
        assert_true(number(r, "prefill_ms") > 0);
    }
}

static void expect_chart(const char *dir) {
    path_buf p;
    size_t len;
    char *png = sv_read_file_bytes(join(p, dir, "accuracy_vs_flops.png"), &len);
    assert_true(len > 8 && memcmp(png, "\x89PNG\r\n\x1a\n", 8) == 0);
    free(png);
    char *svg = sv_read_file_bytes(join(p, dir, "accuracy_vs_flops.svg"), &len);
    assert_non_null(strstr(svg, "<svg"));
    free(svg);
    assert_false(exists(join(p, dir, ".tmp-accuracy_vs_flops.png")));
    assert_true(exists(join(p, dir, "study.gp")));
}

static void test_study_on_tiny(void **s) {
    (void)s;
    path_buf manifest, lc, out, again, p;
    const char *dir = tiny_setup(manifest, lc);
    join(out, dir, "out"), join(again, dir, "again");
    const char *args = "study -m %s --lc %s --data %s --counts 3,1 --random-sets 2 --seed 7 "
                       "-n 2 -o %s";
    run_ok(args, tiny_model_dir(), lc, manifest, out);
    printf("# %s", cli_err);
    assert_non_null(strstr(cli_err, "At N=1"));
    cJSON *study = read_json(join(p, out, "study.json"));
    assert_string_equal(get(study, "format")->valuestring, "shortv-study");
    assert_int_equal(number(get(study, "model"), "n_layers"), 4);
    sv_lc_data d;
    sv_error e;
    if (sv_lc_read(&d, lc, &e)) fail_msg("%s", e.msg);
    const cJSON *runs = get(study, "runs");
    check_run_sets(runs, &d, 7);
    check_accuracy_fields(runs);
    expect_chart(out);
    const cJSON *types = get(study, "sample_types");
    assert_int_equal(cJSON_GetArraySize(types), 2);
    assert_string_equal(cJSON_GetArrayItem(types, 1)->valuestring, "<scene>");

    /* the same seed gives the same layer sets */
    run_ok(args, tiny_model_dir(), lc, manifest, again);
    cJSON *twin = read_json(join(p, again, "study.json"));
    check_run_sets(get(twin, "runs"), &d, 7);
    cJSON_Delete(twin);

    /* the report shows the chart, a sentence per N and every run */
    run_ok("report %s --study %s/study.json -o %s/report --boot 50", lc, out, dir);
    size_t len;
    char *html = sv_read_file_bytes(join(p, dir, "report/index.html"), &len);
    static const char *const want[] = {"Freeze study", "<img src=\"accuracy_vs_flops.svg\"",
                                       "At N=1 (", "At N=3 (", "for random (mean of 2 sets",
                                       "<td class=\"l\">random #2</td><td>3</td>",
                                       "Accuracy by question type", "<td class=\"l\">&lt;scene&gt;"};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++)
        if (!strstr(html, want[i])) fail_msg("index.html lacks '%s'", want[i]);
    free(html);
    expect_chart(join(p, dir, "report"));
    cJSON_Delete(study);
    sv_lc_data_free(&d);
}

/* ---------------------------------------------------------------- paired comparison */

/* A study built by hand: 8 samples, LC-ordered right on 6, two random sets on
 * 4 each, reverse on 2. The paired differences, worked out by hand:
 *   vs random (mean of the sets, both 4/8, so no spread between the sets to add):
 *     d = 0 .5 .5 1 0 .5 0 -.5, mean .25, sample
 *     variance 1.5/7, so .25 +/- 1.959964 * sqrt(1.5/7/8) = [-.070774, .570774]
 *   vs reverse: d = 1 1 1 1 0 0 0 0, mean .5, variance 2/7: [.129602, .870398] */
static void test_paired_comparison(void **s) {
    (void)s;
    static const char *const answers[] = {"11111111", "11111100", "10101100", "11001001",
                                          "00001100"};
    static const sv_strategy strategy[] = {SV_STRATEGY_DENSE, SV_STRATEGY_LC,
                                           SV_STRATEGY_RANDOM, SV_STRATEGY_RANDOM,
                                           SV_STRATEGY_REVERSE};
    unsigned char correct[5][8];
    sv_study_run runs[5];
    for (int r = 0; r < 5; r++) {
        size_t k = 0;
        for (int i = 0; i < 8; i++) k += correct[r][i] = answers[r][i] == '1';
        runs[r] = (sv_study_run){.strategy = strategy[r], .n_frozen = r ? 2 : 0,
                                 .set = r == 3, .correct = correct[r],
                                 .result = {.n = 8, .correct = k, .accuracy = k / 8.0,
                                            .flops_ratio = r ? 0.8 : 1}};
    }
    sv_study study = {.n_layers = 4, .n_samples = 8, .n_runs = 5, .runs = runs};
    sv_study_comparison c;
    sv_error e;
    if (sv_study_compare(&study, 2, &c, &e)) fail_msg("%s", e.msg);
    assert_float_equal(c.random_mean, 0.5, 1e-12);
    assert_float_equal(c.vs_random.mean, 0.25, 1e-12);
    assert_float_equal(c.vs_random.low, -0.070774, 1e-6);
    assert_float_equal(c.vs_random.high, 0.570774, 1e-6);
    assert_float_equal(c.vs_reverse.mean, 0.5, 1e-12);
    assert_float_equal(c.vs_reverse.low, 0.129602, 1e-6);
    assert_float_equal(c.vs_reverse.high, 0.870398, 1e-6);
    char line[1024];
    sv_study_sentence(&c, line, sizeof line);
    printf("# %s\n", line);
    assert_non_null(strstr(line, "leads, but not beyond sampling noise, +25.0 points over random "
                                 "(95% interval -7.1 to +57.1), +50.0 points over reverse "
                                 "(+13.0 to +87.0)."));
    /* accuracy by type: samples 0-3 are "a", 4-7 "b"; lc 1111|1100, random sets
     * 1010|1100 and 1100|1001 (mean (2+2)/8 and (2+2)/8), reverse 0000|1100 */
    char *types[8] = {"a", "a", "a", "a", "b", "b", "b", "b"};
    study.sample_types = types;
    const char *names[4];
    assert_int_equal(sv_study_types(&study, names, 4), 2);
    assert_string_equal(names[1], "b");
    assert_float_equal(sv_study_type_accuracy(&study, SV_STRATEGY_LC, 2, "a"), 1.0, 1e-12);
    assert_float_equal(sv_study_type_accuracy(&study, SV_STRATEGY_LC, 2, "b"), 0.5, 1e-12);
    assert_float_equal(sv_study_type_accuracy(&study, SV_STRATEGY_RANDOM, 2, "a"), 0.5, 1e-12);
    assert_float_equal(sv_study_type_accuracy(&study, SV_STRATEGY_RANDOM, 2, "b"), 0.5, 1e-12);
    assert_float_equal(sv_study_type_accuracy(&study, SV_STRATEGY_REVERSE, 2, "a"), 0.0, 1e-12);
    assert_float_equal(sv_study_type_accuracy(&study, SV_STRATEGY_DENSE, 2, "b"), 1.0, 1e-12);
    assert_true(isnan(sv_study_type_accuracy(&study, SV_STRATEGY_LC, 3, "a")));
    study.sample_types = NULL;

    /* random sets of different accuracy: their spread widens the interval. With
     * set #2 = 11001101 (5/8): d = 0 .5 .5 1 0 0 0 -.5, mean .1875, variance 47/224;
     * the sets' accuracies .5 and .625 have variance 1/128, over 2 sets 1/256:
     * .1875 +/- 1.959964 * sqrt(47/224/8 + 1/256) = [-.152733, .527733] */
    static const unsigned char set2[8] = {1, 1, 0, 0, 1, 1, 0, 1};
    memcpy(correct[3], set2, sizeof set2);
    runs[3].result.correct = 5, runs[3].result.accuracy = 5 / 8.0;
    if (sv_study_compare(&study, 2, &c, &e)) fail_msg("%s", e.msg);
    assert_float_equal(c.vs_random.mean, 0.1875, 1e-12);
    assert_float_equal(c.vs_random.low, -0.152733, 1e-6);
    assert_float_equal(c.vs_random.high, 0.527733, 1e-6);
    /* without the random sets, the lead over reverse alone is clear */
    study.runs[2].n_frozen = study.runs[3].n_frozen = 3;
    if (sv_study_compare(&study, 2, &c, &e)) fail_msg("%s", e.msg);
    sv_study_sentence(&c, line, sizeof line);
    assert_non_null(strstr(line, "leads beyond sampling noise, +50.0 points over reverse "
                                 "(95% interval +13.0 to +87.0)."));
}

/* ---------------------------------------------------------------- bad input */

static void test_bad_input(void **s) {
    (void)s;
    path_buf manifest, lc, out, other, p;
    const char *dir = tiny_setup(manifest, lc);
    join(out, dir, "out"), join(other, dir, "other.h5");
    const char *m = tiny_model_dir();
    run_error("count 5", "4 decoder layers", "study -m %s --lc %s --data %s --counts 5 -o %s", m,
              lc, manifest, out);
    run_error("count 1", "twice", "study -m %s --lc %s --data %s --counts 1,1 -o %s", m, lc,
              manifest, out);
    run_error("--counts", "positive", "study -m %s --lc %s --data %s --counts 2,x -o %s", m, lc,
              manifest, out);
    run_error("missing.h5", "", "study -m %s --lc %s/missing.h5 --data %s --counts 1 -o %s", m,
              dir, manifest, out);
    run_error("missing.jsonl", "", "study -m %s --lc %s --data %s/missing.jsonl --counts 1 -o %s",
              m, lc, dir, out);
    run_error("no/such", "parent folder does not exist",
              "study -m %s --lc %s --data %s --counts 1 -o %s/no/such", m, lc, manifest, dir);
    run_error("--lc", "required", "study -m %s --data %s -o %s", m, manifest, out);
    assert_false(exists(out)); /* nothing was created by a failed run */

    /* an LC file of another model */
    sv_lc_meta meta = {.seed = -1, .n_layers = 4, .groups = 1};
    strcpy(meta.model, "elsewhere"), strcpy(meta.config_hash, "00112233aabbccdd");
    strcpy(meta.manifest, "m.jsonl"), strcpy(meta.aspect, "pad");
    sv_lcfile *f;
    sv_error e;
    double row[4] = {0.1, 0.2, 0.3, 0};
    const double *rows[2] = {row, NULL};
    if (sv_lcfile_create(&f, other, &meta, &e) || sv_lcfile_append(f, "x", NULL, 1, 3, 5, rows, &e) ||
        sv_lcfile_finish(f, &e))
        fail_msg("%s", e.msg);
    run_error("other.h5", "another model", "study -m %s --lc %s --data %s --counts 1 -o %s", m,
              other, manifest, out);

    /* report --study: a study of another model, a file that is not a study */
    run_ok("study -m %s --lc %s --data %s --counts 1 --random-sets 0 --limit 1 -n 1 -o %s", m, lc,
           manifest, out);
    run_error("study.json", "LC file's model", "report %s --study %s/study.json -o %s/r", other,
              out, dir);
    run_error("m.jsonl", "not a shortv study", "report %s --study %s -o %s/r", lc, manifest, dir);
    write_text(join(p, dir, "s.json"), "{\"format\": \"shortv-study\", \"version\": 1}");
    run_error("s.json", "version", "report %s --study %s -o %s/r", lc, p, dir);
    /* per-sample answers that do not match the run's count of correct answers */
    path_buf study_path;
    cJSON *study = read_json(join(study_path, out, "study.json"));
    cJSON *dense = cJSON_GetArrayItem(get(study, "runs"), 0);
    const char *lying = number(dense, "correct") ? "0" : "1";
    cJSON_ReplaceItemInObject(dense, "answers_correct", cJSON_CreateString(lying));
    char *text = cJSON_Print(study);
    write_text(join(p, dir, "lying.json"), text);
    free(text);
    cJSON_Delete(study);
    run_error("lying.json", "runs[0].answers_correct", "report %s --study %s -o %s/r", lc, p,
              dir);
    /* sample types that do not match the samples */
    study = read_json(study_path);
    cJSON_ReplaceItemInObject(study, "sample_types", cJSON_CreateArray());
    text = cJSON_Print(study);
    write_text(join(p, dir, "types.json"), text);
    free(text);
    cJSON_Delete(study);
    run_error("types.json", "sample_types", "report %s --study %s -o %s/r", lc, p, dir);
    assert_false(exists(join(p, dir, "r")));
}

/* ---------------------------------------------------------------- the demo */

/* scripts/demo.sh on a few samples of the bundled model: every output is
 * there, and the dense model clearly beats a guesser that never sees the image
 * (the lower end of its 95% interval above the guesser's accuracy). */
static void test_demo_pipeline(void **s) {
    (void)s;
    if (!exists(BUNDLED_MODEL "/config.json")) fail_msg("%s is missing", BUNDLED_MODEL);
    path_buf out, p;
    char cmd[8192], o[1 << 14], e[1 << 14];
    snprintf(out, sizeof out, "%s", scratch_dir("study_demo"));
    snprintf(cmd, sizeof cmd, "BUILD=%s OUT=%s CALIB_LIMIT=8 LIMIT=60 COUNTS=4 RANDOM_SETS=1 "
             "THREADS=1 bash scripts/demo.sh", build_path(""), out);
    if (run_cmd(cmd, o, sizeof o, e, sizeof e) != 0) fail_msg("%s: %s", cmd, e);
    static const char *const files[] = {"lc.h5", "mean_lc.png", "freeze-4.json",
                                        "study/study.json", "accuracy_vs_flops.svg", "index.html"};
    for (size_t i = 0; i < sizeof files / sizeof *files; i++)
        if (!exists(join(p, out, files[i]))) fail_msg("demo wrote no %s", files[i]);
    cJSON *study = read_json(join(p, out, "study/study.json"));
    const cJSON *dense = cJSON_GetArrayItem(get(study, "runs"), 0);
    double acc = number(dense, "accuracy");
    double low = cJSON_GetArrayItem(get(dense, "accuracy_ci95"), 0)->valuedouble;
    printf("# bundled model, 60 eval samples: dense accuracy %.3f, 95%% interval from %.3f "
           "(text-only baseline %.3f)\n", acc, low, TEXT_ONLY_BASELINE);
    assert_string_equal(get(dense, "strategy")->valuestring, "dense");
    assert_true(low > TEXT_ONLY_BASELINE);
    cJSON_Delete(study);
    /* the bundled sets have question types: the report breaks LC and accuracy down by them */
    size_t len;
    char *html = sv_read_file_bytes(join(p, out, "index.html"), &len);
    assert_non_null(strstr(html, "Mean LC by question type"));
    assert_non_null(strstr(html, "Accuracy by question type"));
    free(html);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paired_comparison),
        cmocka_unit_test(test_study_on_tiny),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_demo_pipeline),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
