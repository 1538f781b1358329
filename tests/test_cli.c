/* The shortv command line, end to end on tiny-a: the documented contract
 * (outputs equal the golden references), --help, and one-line errors with a
 * non-zero exit and no output file for bad input. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "testutil.h"

#define PROMPT "What is shown in this image?"

static void compare_npy(const char *path, const char *golden_rel, float tol) {
    sv_npy got, want;
    sv_error e;
    if (sv_npy_read(&got, path, &e)) fail_msg("%s", e.msg);
    golden_npy(&want, golden_rel);
    assert_int_equal(got.ndim, want.ndim);
    for (int i = 0; i < got.ndim; i++) assert_int_equal(got.shape[i], want.shape[i]);
    assert_close(golden_rel, got.data, want.data, got.count, tol);
    sv_npy_free(&got), sv_npy_free(&want);
}

static void test_tokenize(void **s) {
    (void)s;
    char args[2048];
    snprintf(args, sizeof args, "tokenize -m %s 'text</s>more text'", tiny_model_dir());
    expect_success(args);
    assert_string_equal(cli_out, "1 1426 2 901 1426\n");
    snprintf(args, sizeof args, "tokenize -m %s --no-bos ' '", tiny_model_dir());
    expect_success(args);
    assert_string_equal(cli_out, "259\n");
}

static void test_preprocess_and_embed(void **s) {
    (void)s;
    char args[4096], npy[1200];
    const char *dir = scratch_dir("cli_embed");
    snprintf(npy, sizeof npy, "%s/pixels.npy", dir);
    snprintf(args, sizeof args, "preprocess -m %s --image %s -o %s", tiny_model_dir(),
             golden_path("images/chelsea.png"), npy);
    expect_success(args);
    compare_npy(npy, "preproc/chelsea.pad.pixel_values.npy", 0.0f);
    snprintf(npy, sizeof npy, "%s/embd.npy", dir);
    snprintf(args, sizeof args, "embed-image -m %s --image %s --aspect crop -t 1 -o %s",
             tiny_model_dir(), golden_path("images/chelsea.png"), npy);
    expect_success(args);
    compare_npy(npy, "cases/tiny-a/chelsea_crop/np_img_embd.npy", 1e-4f);
}

static void test_logits_and_generate(void **s) {
    (void)s;
    char args[4096], npy[1200];
    const char *image = golden_path("images/synthetic_336.png");
    snprintf(npy, sizeof npy, "%s/logits.npy", scratch_dir("cli_logits"));
    snprintf(args, sizeof args, "logits -m %s --image %s -p '" PROMPT "' -o %s",
             tiny_model_dir(), image, npy);
    expect_success(args);
    compare_npy(npy, "cases/tiny-a/synthetic/np_logits.npy", 1e-4f);

    /* the raw template with the Vicuna text spelled out gives the same logits */
    snprintf(args, sizeof args,
             "logits -m %s --image %s --template raw -o %s -p \"A chat between a curious human and "
             "an artificial intelligence assistant. The assistant gives helpful, detailed, and "
             "polite answers to the human's questions. USER: <image>\n" PROMPT " ASSISTANT:\"",
             tiny_model_dir(), image, npy);
    expect_success(args);
    compare_npy(npy, "cases/tiny-a/synthetic/np_logits.npy", 1e-4f);

    snprintf(args, sizeof args, "generate -m %s --image %s -p '" PROMPT "' -n 16 --print-ids",
             tiny_model_dir(), image);
    expect_success(args);
    sv_npy want;
    golden_npy(&want, "cases/tiny-a/synthetic/np_greedy_ids.npy");
    char expected[1024] = "";
    for (size_t i = 0; i < want.count; i++)
        sprintf(expected + strlen(expected), "%s%d", i ? " " : "", ((int *)want.data)[i]);
    strcat(expected, "\n");
    assert_string_equal(cli_out, expected);
    sv_npy_free(&want);

    snprintf(args, sizeof args, "generate -m %s --image %s -p '" PROMPT "' -n 4",
             tiny_model_dir(), image);
    expect_success(args);
    assert_true(strlen(cli_out) > 1);
}

static void test_help(void **s) {
    (void)s;
    const char *cmds[] = {"tokenize", "preprocess", "embed-image", "logits", "generate"};
    for (size_t i = 0; i < sizeof cmds / sizeof *cmds; i++) {
        char args[256];
        snprintf(args, sizeof args, "%s --help", cmds[i]);
        expect_success(args);
        assert_non_null(strstr(cli_out, cmds[i]));
    }
    expect_success("--help");
    expect_error("frobnicate", "frobnicate", "unknown command");
    expect_error("logits --bogus", "logits", "unknown option --bogus");
    /* version, help, and the command lines shortv cannot take: exit 2, named */
    expect_success("--version");
    assert_non_null(strstr(cli_out, "shortv 0."));
    expect_success("version");
    expect_success("help generate");
    assert_non_null(strstr(cli_out, "usage: shortv generate"));
    assert_non_null(strstr(cli_out, "--template"));
    expect_success("tokenize --help");
    assert_null(strstr(cli_out, "--template")); /* only the options it takes */
    expect_error("calibrat", "calibrat", "did you mean calibrate?");
    expect_error("help frob", "frob", "unknown command");
    expect_error("generate -m m --image i -p p --temp 0.7", "--temp",
                 "did you mean --template?"); /* a prefix is not taken for the option */
    expect_error("generate -m m --image i -p p extra", "generate",
                 "unexpected extra argument 'extra'");
    expect_error("tokenize -m m --image i text", "--image", "does not apply to tokenize");
    expect_error("logits -m m -t", "-t", "needs a value");
    expect_error("calibrate -m m --data d -o o --limt 3", "--limt", "did you mean --limit?");
}

static void test_bad_input(void **s) {
    (void)s;
    char args[4096], path[1200];
    const char *tiny = tiny_model_dir(), *image = golden_path("images/synthetic_336.png");
    const char *dir = scratch_dir("cli_bad");

    snprintf(args, sizeof args, "logits -m %s --image %s --template raw -p 'no image here' -o %s/x.npy",
             tiny, image, dir);
    expect_error(args, "prompt", "contains 0 <image>");
    snprintf(args, sizeof args, "logits -m %s --image %s -p 'two <image> <image>' -o %s/x.npy",
             tiny, image, dir);
    expect_error(args, "prompt", "contains 2 <image>");

    snprintf(path, sizeof path, "%s/no/such/folder/logits.npy", dir);
    snprintf(args, sizeof args, "logits -m %s --image %s -p hi -o %s", tiny, image, path);
    expect_error(args, path, "cannot create");
    assert_int_not_equal(access(path, F_OK), 0);

    /* a truncated PNG */
    snprintf(path, sizeof path, "%s/truncated.png", dir);
    char *png = sv_read_file(image, NULL, &(sv_error){0});
    write_bytes(path, png, 300);
    free(png);
    snprintf(args, sizeof args, "logits -m %s --image %s -p hi -o %s/t.npy", tiny, path, dir);
    expect_error(args, path, "");
    snprintf(args, sizeof args, "%s/t.npy", dir);
    assert_int_not_equal(access(args, F_OK), 0);

    snprintf(args, sizeof args, "generate -m %s/missing --image %s -p hi", dir, image);
    expect_error(args, "missing/config.json", "cannot open");
    snprintf(args, sizeof args, "generate -m %s -p hi", tiny);
    expect_error(args, "generate", "--image FILE is required");
}

/* `shortv ARGS` with stdout on /dev/full: exit 1 with the write error, never a silent 0. */
static void expect_stdout_error(const char *args) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd, "(%s %s >/dev/full)", shortv_bin(), args);
    check_cli_error(run_cmd(cmd, cli_out, sizeof cli_out, cli_err, sizeof cli_err), "stdout",
                    "write failed (No space left on device)");
}

static void test_output_and_limits(void **s) {
    (void)s;
    char args[8192], lc[1200], dir[1024]; /* calib_data_dir's buffer is reused by run_cmd */
    snprintf(dir, sizeof dir, "%s", calib_data_dir("cli_limits", "{\"id\": \"a\", \"image\": "
                                                  "\"chelsea.png\", \"question\": \"Q?\"}\n"));
    snprintf(lc, sizeof lc, "%s/lc.h5", dir);
    snprintf(args, sizeof args, "calibrate -m %s --data %s/manifest.jsonl --groups visual -o %s",
             tiny_model_dir(), dir, lc);
    expect_success(args);
    snprintf(args, sizeof args, "tokenize -m %s hello", tiny_model_dir());
    expect_stdout_error(args);
    snprintf(args, sizeof args, "freeze %s -n 2", lc);
    expect_stdout_error(args);
    snprintf(args, sizeof args, "compare %s %s", lc, lc);
    expect_stdout_error(args);
    snprintf(args, sizeof args, "generate -m %s --image %s/chelsea.png -p Q -n 2", tiny_model_dir(),
             dir);
    expect_stdout_error(args);
    /* -n beyond the context is the option's fault, and says what fits */
    snprintf(args, sizeof args, "generate -m %s --image %s/chelsea.png -p Q -n 100000",
             tiny_model_dir(), dir);
    expect_error(args, "-n 100000", "exceed the model's context of 2048 positions; -n ");
    /* more threads than CPUs only contend: capped, with a note */
    snprintf(args, sizeof args, "generate -m %s --image %s/chelsea.png -p Q -n 1 -t 100000",
             tiny_model_dir(), dir);
    expect_success(args);
    printf("# %s", cli_err);
    assert_non_null(strstr(cli_err, "note: -t 100000 capped at the"));
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tokenize),
        cmocka_unit_test(test_preprocess_and_embed),
        cmocka_unit_test(test_logits_and_generate),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_output_and_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
