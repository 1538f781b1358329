/* Calibration sweeps end to end through `shortv calibrate` on tiny-a: the
 * golden LC values, fast sweep = naive sweep, LC(L-1, visual) = 0 exactly,
 * deterministic sample selection, the same bytes from the same inputs, resume
 * after an interruption, and the manifest's bad lines. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lcfile.h"
#include "testutil.h"

#define QUESTION "What is shown in this image?"

static char out[1 << 14], err[1 << 14];

static int calibrate(const char *args) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "%s calibrate -m %s %s", shortv_bin(), tiny_model_dir(), args);
    return run_cmd(cmd, out, sizeof out, err, sizeof err);
}

static void must_calibrate(const char *args) {
    if (calibrate(args) != 0) fail_msg("calibrate %s: %s", args, err);
}

static void read_lc(sv_lc_data *d, const char *path) {
    sv_error e;
    if (sv_lc_read(d, path, &e)) fail_msg("%s", e.msg);
}

static void test_golden_lc(void **s) {
    (void)s;
    const char *dir = calib_data_dir("calib_golden", "{\"id\": \"synthetic\", \"image\": "
                                               "\"synthetic_336.png\", \"question\": \"" QUESTION
                                               "\"}\n");
    char args[4096], lc[1200];
    snprintf(lc, sizeof lc, "%s/lc.h5", dir);
    snprintf(args, sizeof args, "--data %s/manifest.jsonl -o %s", dir, lc);
    must_calibrate(args);
    sv_lc_data d;
    sv_npy golden;
    read_lc(&d, lc);
    golden_npy(&golden, "lc_golden.npy");
    assert_int_equal(d.complete, 1);
    assert_int_equal(d.n_samples, 1);
    assert_int_equal(d.visual_start[0], 35);
    assert_int_equal(d.visual_end[0], 611);
    int L = d.meta.n_layers;
    for (int g = 0; g < 2; g++)
        for (int l = 0; l < L; l++) {
            double want = ((double *)golden.data)[g * L + l], got = d.lc[g][l];
            printf("# LC(%d, %s) %.9f golden %.9f\n", l, sv_group_name(g), got, want);
            if (want == 0) assert_true(got == 0.0); /* LC(L-1, visual): exactly */
            else assert_true(fabs(got - want) <= 1e-4 * want);
        }
    sv_npy_free(&golden);
    sv_lc_data_free(&d);
}

static const char two_samples[] =
    "{\"id\": \"a\", \"image\": \"synthetic_336.png\", \"question\": \"" QUESTION "\"}\n"
    "\n"
    "{\"id\": 7, \"image\": \"chelsea.png\", \"question\": \"What animal is this?\", "
    "\"answer\": \"cat\"}\n";

static void test_fast_equals_naive(void **s) {
    (void)s;
    const char *dir = calib_data_dir("calib_naive", two_samples);
    char args[4096], fast[1200], naive[1200];
    snprintf(fast, sizeof fast, "%s/fast.h5", dir);
    snprintf(naive, sizeof naive, "%s/naive.h5", dir);
    snprintf(args, sizeof args, "--data %s/manifest.jsonl -o %s", dir, fast);
    must_calibrate(args);
    snprintf(args, sizeof args, "--data %s/manifest.jsonl -o %s --naive", dir, naive);
    must_calibrate(args);
    printf("# %s", err);
    sv_lc_data a, b;
    read_lc(&a, fast);
    read_lc(&b, naive);
    assert_int_equal(a.n_samples, 2);
    assert_string_equal(a.ids[1], "7");
    for (int g = 0; g < 2; g++)
        for (size_t i = 0; i < 2 * (size_t)a.meta.n_layers; i++)
            assert_true(fabs(a.lc[g][i] - b.lc[g][i]) <= 1e-6 * fmax(b.lc[g][i], 1e-3));
    sv_lc_data_free(&a), sv_lc_data_free(&b);
}

/* Two runs with the same inputs write the same bytes, but for the `created`
 * timestamp (DESIGN: reproducible by default). */
static void test_same_inputs_same_bytes(void **s) {
    (void)s;
    const char *dir = calib_data_dir("calib_bytes", "{\"id\": \"a\", \"image\": \"chelsea.png\", "
                                              "\"question\": \"" QUESTION "\"}\n");
    char args[4096], path[2][1200];
    for (int k = 0; k < 2; k++) {
        snprintf(path[k], sizeof path[k], "%s/run%d.h5", dir, k);
        snprintf(args, sizeof args, "--data %s/manifest.jsonl -o %s", dir, path[k]);
        must_calibrate(args);
        if (k == 0) sleep(1); /* so that the timestamps differ and the check below bites */
    }
    size_t differ = assert_same_lc_bytes(path[0], path[1]);
    printf("# two runs: %zu bytes differ, all in the created timestamp\n", differ);
    assert_true(differ > 0); /* the runs were a second apart: the check above bites */
}

/* 24 samples; SIGINT part-way, then --resume: the same file as one full run. */
static void test_resume_after_interrupt(void **s) {
    (void)s;
    char lines[1 << 14] = "", args[4096], full[1200], cut[1200], cmd[8192];
    for (int i = 0; i < 24; i++)
        sprintf(lines + strlen(lines), "{\"id\": \"s%d\", \"image\": \"%s\", \"question\": \"Q%d?\"}\n",
                i, i % 2 ? "chelsea.png" : "synthetic_336.png", i);
    const char *dir = calib_data_dir("calib_resume", lines);
    snprintf(full, sizeof full, "%s/full.h5", dir);
    snprintf(cut, sizeof cut, "%s/cut.h5", dir);
    snprintf(args, sizeof args, "--data %s/manifest.jsonl --seed 3 --limit 20 --groups visual -o %s",
             dir, full);
    must_calibrate(args);
    /* the interrupted run writes cut.h5 with identical arguments */
    snprintf(cmd, sizeof cmd,
             "(%s calibrate -m %s --data %s/manifest.jsonl --seed 3 --limit 20 --groups visual "
             "-o %s & pid=$!; sleep 1; kill -INT $pid; wait $pid; echo \"exit $?\")",
             shortv_bin(), tiny_model_dir(), dir, cut);
    int rc = run_cmd(cmd, out, sizeof out, err, sizeof err);
    printf("# interrupted run: exit %d: %s", rc, err);
    sv_lc_data part, a, b;
    read_lc(&part, cut);
    printf("# %zu of 20 samples done before the interruption\n", part.n_samples);
    assert_int_equal(rc, 0);
    if (!part.complete) { /* stopped by Ctrl-C: exit 130, said in one line that is no error */
        assert_non_null(strstr(out, "exit 130"));
        assert_non_null(strstr(err, "shortv: interrupted: "));
        assert_null(strstr(err, "error"));
    }
    sv_lc_data_free(&part);
    snprintf(args, sizeof args,
             "--data %s/manifest.jsonl --seed 3 --limit 20 --groups visual -o %s --resume", dir, cut);
    must_calibrate(args);
    read_lc(&a, full);
    read_lc(&b, cut);
    assert_int_equal(b.complete, 1);
    assert_int_equal(a.n_samples, b.n_samples);
    for (size_t i = 0; i < a.n_samples; i++) assert_string_equal(a.ids[i], b.ids[i]);
    assert_memory_equal(a.lc[0], b.lc[0], a.n_samples * a.meta.n_layers * sizeof(double));
    assert_null(b.lc[1]);
    /* --seed 3 picks a shuffled subset, the same every time */
    assert_string_not_equal(a.ids[0], "s0");
    sv_lc_data_free(&a), sv_lc_data_free(&b);

    snprintf(args, sizeof args,
             "--data %s/manifest.jsonl --seed 4 --limit 20 --groups visual -o %s --resume", dir, cut);
    assert_int_equal(calibrate(args), 1);
    printf("# %s", err);
    assert_non_null(strstr(err, "--resume needs the same"));
}

static void expect_manifest_error(const char *name, const char *lines, const char *what) {
    const char *dir = calib_data_dir(name, lines);
    char args[4096];
    snprintf(args, sizeof args, "--data %s/manifest.jsonl -o %s/lc.h5", dir, dir);
    assert_int_equal(calibrate(args), 1);
    printf("# %s", err);
    if (!strstr(err, "manifest.jsonl:") || !strstr(err, what))
        fail_msg("'%s' should name the manifest line and say '%s'", err, what);
}

static void test_bad_manifest_lines(void **s) {
    (void)s;
    expect_manifest_error("calib_noimage", "{\"id\": 1, \"question\": \"q\"}\n", ":1: no image");
    expect_manifest_error("calib_missing",
                          "{\"id\": 1, \"image\": \"synthetic_336.png\", \"question\": \"q\"}\n"
                          "{\"id\": 2, \"image\": \"gone.png\", \"question\": \"q\"}\n",
                          ":2: image");
    expect_manifest_error("calib_json", "{\"id\": 1, \"image\": \"synthetic_336.png\", \"q\n",
                          ":1: not a JSON object");

    /* --skip-bad: skipped, counted, recorded */
    const char *dir = calib_data_dir("calib_skip", "{\"id\": 1, \"question\": \"q\"}\n"
                                             "{\"id\": 2, \"image\": \"chelsea.png\", "
                                             "\"question\": \"q\"}\n");
    char args[4096], lc[1200];
    snprintf(lc, sizeof lc, "%s/lc.h5", dir);
    snprintf(args, sizeof args, "--data %s/manifest.jsonl -o %s --skip-bad --groups text", dir, lc);
    must_calibrate(args);
    sv_lc_data d;
    read_lc(&d, lc);
    assert_int_equal(d.n_samples, 1);
    assert_int_equal(d.n_skipped, 1);
    sv_lc_data_free(&d);
}

/* Every per-sample failure names its manifest line; --skip-bad skips and records each,
 * and --resume walks past the recorded skips. */
static void test_skip_bad_covers_every_sample_failure(void **s) {
    (void)s;
    char long_q[8192] = "";
    for (int i = 0; i < 2000; i++) strcat(long_q, "a ");
    static const char good[] = "{\"id\": \"ok\", \"image\": \"chelsea.png\", \"question\": \"Q?\"}\n";
    char bad[5][8400], want[5][64] = {"bad.png", "more than the model's context",
                                      "question is not valid UTF-8", "2 <image> placeholders",
                                      "id holds \\u0000 (NUL)"};
    snprintf(bad[0], sizeof bad[0], "{\"id\": \"img\", \"image\": \"bad.png\", \"question\": \"Q?\"}\n");
    snprintf(bad[1], sizeof bad[1], "{\"id\": \"long\", \"image\": \"chelsea.png\", \"question\": \"%s\"}\n", long_q);
    snprintf(bad[2], sizeof bad[2], "{\"id\": \"utf8\", \"image\": \"chelsea.png\", \"question\": \"Q\xff?\"}\n");
    snprintf(bad[3], sizeof bad[3], "{\"id\": \"two\", \"image\": \"chelsea.png\", \"question\": \"<image> and <image>\"}\n");
    snprintf(bad[4], sizeof bad[4], "{\"id\": \"a\\u0000b\", \"image\": \"chelsea.png\", \"question\": \"Q?\"}\n");
    char lines[1 << 16], args[4096], lc[1200], path[1200];
    for (int k = 0; k < 5; k++) {
        snprintf(lines, sizeof lines, "%s%s", good, bad[k]);
        const char *dir = calib_data_dir("calib_bad_sample", lines);
        snprintf(path, sizeof path, "%s/bad.png", dir);
        write_text(path, "not a png");
        snprintf(args, sizeof args, "--data %s/manifest.jsonl -o %s/lc.h5", dir, dir);
        assert_int_equal(calibrate(args), 1);
        printf("# %s", err);
        if (!strstr(err, "manifest.jsonl:2: ") || !strstr(err, want[k]) || strstr(err, "models/"))
            fail_msg("'%s' should name manifest.jsonl:2 and say '%s'", err, want[k]);
    }
    snprintf(lines, sizeof lines, "%s%s%s%s%s%s", good, bad[0], bad[1], bad[2], bad[3], bad[4]);
    const char *dir = calib_data_dir("calib_bad_samples", lines);
    snprintf(path, sizeof path, "%s/bad.png", dir);
    write_text(path, "not a png");
    snprintf(lc, sizeof lc, "%s/lc.h5", dir);
    snprintf(args, sizeof args, "--data %s/manifest.jsonl -o %s --skip-bad --groups text", dir, lc);
    must_calibrate(args);
    sv_lc_data d;
    read_lc(&d, lc);
    assert_int_equal(d.n_samples, 1);
    assert_int_equal(d.n_skipped, 5);
    for (int k = 0; k < 5; k++) {
        int found = 0;
        for (size_t j = 0; j < d.n_skipped; j++)
            found |= d.skipped_line[j] == k + 2 && strstr(d.skipped_reason[j], want[k]) != NULL;
        if (!found) fail_msg("line %d should be recorded as skipped: %s", k + 2, want[k]);
    }
    sv_lc_data_free(&d);
    /* resuming the finished file walks past the five skips and rewrites the same file */
    snprintf(path, sizeof path, "%s/again.h5", dir);
    char cmd[2600];
    snprintf(cmd, sizeof cmd, "cp %s %s", lc, path);
    assert_int_equal(system(cmd), 0);
    snprintf(args, sizeof args, "--data %s/manifest.jsonl -o %s --skip-bad --groups text --resume",
             dir, path);
    must_calibrate(args);
    assert_same_lc_bytes(lc, path);
    /* the model path as typed differently names the same model; --naive does not match */
    snprintf(cmd, sizeof cmd, "%s calibrate -m %s/ --data %s/manifest.jsonl -o %s --skip-bad "
             "--groups text --resume", shortv_bin(), tiny_model_dir(), dir, path);
    if (run_cmd(cmd, out, sizeof out, err, sizeof err)) fail_msg("%s", err);
    strcat(args, " --naive");
    assert_int_equal(calibrate(args), 1);
    printf("# %s", err);
    assert_non_null(strstr(err, "another --naive"));
}

static void test_llava_conversation_json(void **s) {
    (void)s;
    const char *dir = calib_data_dir("calib_llava", "");
    char path[1200], args[4096];
    snprintf(path, sizeof path, "%s/conv.json", dir);
    write_text(path, "[{\"id\": \"c1\", \"image\": \"synthetic_336.png\", \"conversations\": ["
                     "{\"from\": \"human\", \"value\": \"<image>\\n" QUESTION "\"},"
                     "{\"from\": \"gpt\", \"value\": \"A pattern.\"}]}]");
    snprintf(args, sizeof args, "--data %s -o %s/lc.h5 --groups visual", path, dir);
    must_calibrate(args);
    /* the same prompt as the golden case: the same LC */
    sv_lc_data d;
    sv_npy golden;
    snprintf(path, sizeof path, "%s/lc.h5", dir);
    read_lc(&d, path);
    golden_npy(&golden, "lc_golden.npy");
    assert_true(fabs(d.lc[0][0] - ((double *)golden.data)[0]) < 1e-4 * ((double *)golden.data)[0]);
    sv_npy_free(&golden);
    sv_lc_data_free(&d);

    snprintf(args, sizeof args, "--data %s/none.json -o %s/x.h5", dir, dir);
    assert_int_equal(calibrate(args), 1);
    snprintf(args, sizeof args, "--data %s/conv.json -o %s/no/dir/x.h5", dir, dir);
    assert_int_equal(calibrate(args), 1);
    assert_non_null(strstr(err, "cannot create"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_lc),
        cmocka_unit_test(test_fast_equals_naive),
        cmocka_unit_test(test_same_inputs_same_bytes),
        cmocka_unit_test(test_resume_after_interrupt),
        cmocka_unit_test(test_bad_manifest_lines),
        cmocka_unit_test(test_skip_bad_covers_every_sample_failure),
        cmocka_unit_test(test_llava_conversation_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
