/* shortv eval: answer normalisation, the Wilson interval, and the command on
 * tiny-a (its answers are noise, so the mechanics are what is checked; the
 * bundled trained model's accuracy is checked by the demo test). */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "eval.h"
#include "testutil.h"

static void test_normalise(void **s) {
    (void)s;
    char a[] = "  Two.\n", b[] = "Left-of  the CIRCLE!", c[] = "", d[] = " , ";
    sv_normalise_answer(a);
    sv_normalise_answer(b);
    sv_normalise_answer(c);
    sv_normalise_answer(d);
    assert_string_equal(a, "two");
    assert_string_equal(b, "leftof the circle");
    assert_string_equal(c, "");
    assert_string_equal(d, "");
}

static void test_wilson(void **s) {
    (void)s;
    double lo, hi;
    sv_wilson_interval(50, 100, &lo, &hi); /* statsmodels proportion_confint(50, 100, method="wilson") */
    assert_true(fabs(lo - 0.4038315) < 1e-6 && fabs(hi - 0.5961685) < 1e-6);
    /* all wrong or all right: the bound at the accuracy is exact, so that readers
     * checking low <= accuracy <= high accept it (k = 0 of 3 gave low = 5.6e-17) */
    for (size_t n = 1; n < 700; n++) {
        sv_wilson_interval(0, n, &lo, &hi);
        assert_true(lo == 0 && hi > 0);
        sv_wilson_interval(n, n, &lo, &hi);
        assert_true(hi == 1 && lo < 1);
    }
    sv_wilson_interval(0, 10, &lo, &hi);
    assert_true(fabs(hi - 0.2775328) < 1e-6);
    sv_wilson_interval(10, 10, &lo, &hi);
    assert_true(fabs(lo - 0.7224672) < 1e-6);
}

static char out[1 << 14], err[1 << 14];

static cJSON *run_eval(const char *dir, const char *extra) {
    char cmd[8192], path[1200];
    snprintf(path, sizeof path, "%s/results.json", dir);
    snprintf(cmd, sizeof cmd, "%s eval -m %s --data %s/m.jsonl -n 4 -o %s %s", shortv_bin(),
             tiny_model_dir(), dir, path, extra);
    if (run_cmd(cmd, out, sizeof out, err, sizeof err) != 0) fail_msg("%s: %s", cmd, err);
    printf("# %s", err);
    sv_error e;
    char *text = sv_read_file(path, NULL, &e);
    if (!text) fail_msg("%s", e.msg);
    cJSON *r = cJSON_Parse(text);
    free(text);
    assert_non_null(r);
    return r;
}

static double number(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!cJSON_IsNumber(v)) fail_msg("no number '%s' in the results", key);
    return v->valuedouble;
}

static void test_eval_command(void **s) {
    (void)s;
    const char *dir = scratch_dir("eval");
    char cmd[4096], path[1200];
    snprintf(cmd, sizeof cmd, "cp %s %s/", golden_path("images/chelsea.png"), dir);
    assert_int_equal(system(cmd), 0);
    snprintf(path, sizeof path, "%s/m.jsonl", dir);
    write_text(path, "{\"id\": \"a\", \"image\": \"chelsea.png\", \"question\": \"What is it?\", \"answer\": \"cat\"}\n"
                     "{\"id\": \"b\", \"image\": \"chelsea.png\", \"question\": \"Colour?\", \"answer\": \"Brown.\"}\n");
    cJSON *dense = run_eval(dir, "");
    assert_true(number(dense, "n_samples") == 2);
    assert_true(number(dense, "flops_ratio") == 1);
    assert_true(number(dense, "prefill_ms_mean") > 0);
    const cJSON *samples = cJSON_GetObjectItemCaseSensitive(dense, "samples");
    assert_int_equal(cJSON_GetArraySize(samples), 2);
    assert_true(cJSON_IsString(cJSON_GetObjectItemCaseSensitive(cJSON_GetArrayItem(samples, 0),
                                                                 "prediction")));
    cJSON *frozen = run_eval(dir, "--freeze-layers 1,2");
    double ratio = number(frozen, "flops_ratio");
    printf("# frozen layers 1,2 of 4: prefill FLOPs ratio %.3f\n", ratio);
    assert_true(ratio > 0.4 && ratio < 0.7);
    assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(frozen, "frozen_layers")), 2);
    cJSON_Delete(dense), cJSON_Delete(frozen);

    /* a sample without an answer cannot be scored */
    write_text(path, "{\"id\": \"a\", \"image\": \"chelsea.png\", \"question\": \"What is it?\"}\n");
    snprintf(cmd, sizeof cmd, "%s eval -m %s --data %s -o %s/r2.json", shortv_bin(),
             tiny_model_dir(), path, dir);
    assert_int_equal(run_cmd(cmd, out, sizeof out, err, sizeof err), 1);
    printf("# %s", err);
    assert_non_null(strstr(err, "m.jsonl:1: no answer"));
    snprintf(path, sizeof path, "%s/r2.json", dir);
    assert_null(fopen(path, "r"));
}

/* With typed questions (the bundled set), RESULTS.json breaks the accuracy down
 * by type: the counts agree with the samples' own records. */
static void test_eval_by_type(void **s) {
    (void)s;
    const char *dir = scratch_dir("eval_types");
    char cmd[4096], path[1200];
    snprintf(path, sizeof path, "%s/results.json", dir);
    snprintf(cmd, sizeof cmd, "%s eval -m models/synth-llava --data datasets/synth-vqa/eval.jsonl "
             "--limit 12 -n 4 -o %s", shortv_bin(), path);
    if (run_cmd(cmd, out, sizeof out, err, sizeof err) != 0) fail_msg("%s: %s", cmd, err);
    sv_error e;
    char *text = sv_read_file(path, NULL, &e);
    if (!text) fail_msg("%s", e.msg);
    cJSON *r = cJSON_Parse(text), *t;
    free(text);
    const cJSON *by = cJSON_GetObjectItemCaseSensitive(r, "by_type"), *smp;
    assert_int_equal(cJSON_GetArraySize(by), 6); /* the 12 first questions: 2 of each type */
    cJSON_ArrayForEach(t, by) {
        int n = 0, k = 0;
        cJSON_ArrayForEach(smp, cJSON_GetObjectItemCaseSensitive(r, "samples")) {
            const cJSON *type = cJSON_GetObjectItemCaseSensitive(smp, "type");
            if (strcmp(type->valuestring, t->string)) continue;
            n++, k += cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(smp, "correct"));
        }
        printf("# %s: %g of %g\n", t->string, number(t, "correct"), number(t, "n"));
        assert_true(number(t, "n") == n && n == 2 && number(t, "correct") == k);
        assert_float_equal(number(t, "accuracy"), k / 2.0, 1e-12);
    }
    cJSON_Delete(r);

    /* a type that is not a string is refused, naming the line */
    snprintf(path, sizeof path, "%s/m.jsonl", dir);
    snprintf(cmd, sizeof cmd, "cp %s %s/", golden_path("images/chelsea.png"), dir);
    assert_int_equal(system(cmd), 0);
    write_text(path, "{\"image\": \"chelsea.png\", \"question\": \"Q?\", \"answer\": \"a\", "
                     "\"type\": 3}\n");
    snprintf(cmd, sizeof cmd, "%s eval -m %s --data %s -o %s/r.json", shortv_bin(),
             tiny_model_dir(), path, dir);
    assert_int_equal(run_cmd(cmd, out, sizeof out, err, sizeof err), 1);
    printf("# %s", err);
    assert_non_null(strstr(err, "m.jsonl:1: type must be a string"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_normalise),
        cmocka_unit_test(test_wilson),
        cmocka_unit_test(test_eval_by_type),
        cmocka_unit_test(test_eval_command),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
