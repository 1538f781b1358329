/* Loading checkpoints: every supported dtype and layout gives the logits of
 * its f32 twin, and checkpoints that contradict their config.json are
 * refused with a message naming the file and the problem. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "generate.h"
#include "metrics.h"
#include "preprocess.h"
#include "testutil.h"
#include "vision.h"

/* Generates a tiny-a twin with extra tiny-model flags into build/tmp/<name>. */
static const char *make_twin(const char *name, const char *flags) {
    static char dir[1024];
    char cmd[2048], out[4096], err[4096];
    snprintf(dir, sizeof dir, "%s/model", scratch_dir(name));
    snprintf(cmd, sizeof cmd, "%s --out %s %s", build_path("tiny-model"), dir, flags);
    if (run_cmd(cmd, out, sizeof out, err, sizeof err) != 0) fail_msg("%s: %s", cmd, err);
    return dir;
}

/* Next-token logits of the golden prompt on the chelsea image, computed on
 * n_threads threads (0: one per CPU); malloc'd. */
static float *model_logits_threads(const char *dir, int n_threads) {
    sv_model *m;
    sv_context *ctx = NULL;
    sv_prompt p;
    sv_error err;
    sv_encoded_image image;
    const char *chelsea = golden_path("images/chelsea.png");
    if (sv_model_load(&m, dir, &err) ||
        sv_prompt_for_image(m, "What is shown in this image?", SV_TEMPLATE_AUTO, SV_ASPECT_AUTO,
                            chelsea, &p, &err) ||
        sv_context_new(&ctx, m, p.n, n_threads, &err) ||
        sv_encode_image_file(ctx, chelsea, SV_ASPECT_AUTO, &image, &err) ||
        sv_prefill(ctx, &p, &image, NULL, &err))
        fail_msg("%s", err.msg);
    size_t vocab = (size_t)m->cfg.text.vocab;
    float *logits = malloc(vocab * sizeof(float));
    memcpy(logits, ctx->logits, vocab * sizeof(float));
    sv_encoded_image_free(&image);
    sv_prompt_free(&p);
    sv_context_free(ctx);
    sv_model_free(m);
    return logits;
}

static float *model_logits(const char *dir) { return model_logits_threads(dir, 0); }

/* The panels of weight rows each thread multiplies are as wide as the thread
 * count allows (runtime/matmul.c), and OpenBLAS rounds a product's sums
 * differently for different panel widths: another thread count moves the
 * logits by float rounding only, bounded here by 2e-6 relative L2 (measured:
 * 2.6e-7 to 3.9e-7 on 2 and 3 threads). The same thread count gives the same
 * bits on every run. */
static void test_threads_same_logits(void **s) {
    (void)s;
    const char *bf16 = make_twin("twin_bf16_threads", "--dtype bf16");
    const char *dirs[2] = {tiny_model_dir(), bf16};
    for (int d = 0; d < 2; d++) {
        float *one = model_logits_threads(dirs[d], 1);
        for (int t = 2; t <= 3; t++) {
            float *many = model_logits_threads(dirs[d], t);
            float *again = model_logits_threads(dirs[d], t);
            double rel = sv_relative_l2(many, one, 32064);
            printf("# %s, %d threads vs 1: rel L2 %.3g, max|diff| %g\n", d ? "bf16" : "f32", t,
                   rel, (double)max_abs_diff(many, one, 32064));
            assert_true(rel <= 2e-6);
            assert_memory_equal(many, again, 32064 * sizeof(float));
            free(many), free(again);
        }
        free(one);
    }
}

static void check_twin(const char *name, const char *flags, double max_rel_l2) {
    float *want = model_logits(tiny_model_dir());
    float *got = model_logits(make_twin(name, flags));
    double rel = sv_relative_l2(got, want, 32064);
    printf("# %-32s logits rel L2 vs f32 twin %.3g (bound %.3g), max|diff| %.3g\n", flags, rel,
           max_rel_l2, (double)max_abs_diff(got, want, 32064));
    assert_true(rel <= max_rel_l2);
    free(want), free(got);
}

/* tiny-a's weights are fp16 values, so f16 storage is exact: same numbers. */
static void test_f16_twin(void **s) { (void)s; check_twin("twin_f16", "--dtype f16", 1e-6); }
static void test_f32_sharded_new_prefix(void **s) {
    (void)s;
    check_twin("twin_f32_new", "--shards 3 --prefix new", 1e-6);
}
/* bf16 keeps 8 significant bits: weights move by up to 2^-9 relative, and
 * four layers of that move the logits by about a percent. */
static void test_bf16_sharded_twin(void **s) {
    (void)s;
    check_twin("twin_bf16", "--dtype bf16 --shards 2 --prefix new", 2e-2);
}

/* ---------------------------------------------------------------- bad checkpoints */

/* A copy of tiny-a whose config.json has `from` replaced by `to`; the weights
 * and tokenizer are symlinked. */
static const char *patched_model(const char *name, const char *src, const char *from,
                                 const char *to) {
    static char dir[1024];
    char cmd[4096], path[1200];
    snprintf(dir, sizeof dir, "%s", scratch_dir(name));
    snprintf(cmd, sizeof cmd, "for f in %s/*; do ln -s \"$(realpath $f)\" %s/; done", src, dir);
    if (system(cmd) != 0) fail_msg("cannot link %s", src);
    snprintf(path, sizeof path, "%s/config.json", src);
    sv_error err;
    char *json = sv_read_file(path, NULL, &err);
    if (!json) fail_msg("%s", err.msg);
    char *at = strstr(json, from);
    if (!at) fail_msg("'%s' not in %s", from, path);
    char *patched = malloc(strlen(json) + strlen(to) + 1);
    sprintf(patched, "%.*s%s%s", (int)(at - json), json, to, at + strlen(from));
    snprintf(path, sizeof path, "%s/config.json", dir);
    unlink(path);
    write_text(path, patched);
    free(json), free(patched);
    return dir;
}

static void expect_load_error(const char *dir, const char *file, const char *what) {
    sv_model *m = NULL;
    sv_error err = {{0}};
    assert_int_equal(sv_model_load(&m, dir, &err), SV_FAIL);
    assert_null(m);
    printf("# %s\n", err.msg);
    if (!strstr(err.msg, file) || !strstr(err.msg, what))
        fail_msg("message '%s' should name '%s' and say '%s'", err.msg, file, what);
}

/* A config.json edit and what the refusal must say. */
typedef struct config_edit {
    const char *name, *from, *to, *what;
} config_edit;

static void test_impossible_config(void **s) {
    (void)s;
    static const config_edit edits[] = {
        {"cfg_layers", "\"num_hidden_layers\": 4,\n    \"num_key",
         "\"num_hidden_layers\": 0,\n    \"num_key", "num_hidden_layers must be positive"},
        {"cfg_heads", "\"num_attention_heads\": 4,\n    \"num_hidden",
         "\"num_attention_heads\": 5,\n    \"num_hidden", "not divisible by num_attention_heads"},
        {"cfg_kv", "\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3",
         "does not divide num_attention_heads"},
        {"cfg_json", "\"architectures\"", "architectures\"", "not valid JSON"},
        /* LLaVA-NeXT settings over LLaVA-1.5 weights: its newline row is missing */
        {"cfg_next", "\"architectures\"",
         "\"image_grid_pinpoints\": [[336, 672], [672, 336]],\n  \"architectures\"",
         "missing tensor 'image_newline'"},
        {"cfg_pinpoint", "\"architectures\"",
         "\"image_grid_pinpoints\": [[336, 600]],\n  \"architectures\"",
         "[336, 600] is not a multiple of the tile size 336"},
        {"cfg_pinpoints_empty", "\"architectures\"", "\"image_grid_pinpoints\": [],\n  \"architectures\"",
         "image_grid_pinpoints must be a list of 1 to 64"},
        {"cfg_next_full", "\"vision_feature_select_strategy\": \"default\"",
         "\"vision_feature_select_strategy\": \"full\", \"image_grid_pinpoints\": [[336, 672]]",
         "'full' with image_grid_pinpoints"},
        /* models the forward runtime would run wrongly: refused, not run as LLaVA-1.5 */
        {"cfg_bias", "\"attention_bias\": false", "\"attention_bias\": true", "attention_bias"},
        {"cfg_qwen", "\"model_type\": \"llama\"", "\"model_type\": \"qwen2\"",
         "model_type 'qwen2' is not supported"},
        /* found by make fuzz: a zero patch size was divided by before it was checked */
        {"cfg_patch", "\"patch_size\": 14", "\"patch_size\": 0",
         "vision_config.patch_size must be positive"},
        /* constants that would make every output NaN */
        {"cfg_eps", "\"rms_norm_eps\": 1e-05", "\"rms_norm_eps\": -1",
         "text_config.rms_norm_eps must be a positive number, got -1"},
        {"cfg_theta", "\"rope_theta\": 10000.0", "\"rope_theta\": 0",
         "text_config.rope_theta must be a positive number, got 0"},
        {"cfg_ln_eps", "\"layer_norm_eps\": 1e-05", "\"layer_norm_eps\": 1e300",
         "vision_config.layer_norm_eps must be a positive number, got inf"},
        {"cfg_large", "\"intermediate_size\": 160", "\"intermediate_size\": 1e10",
         "text_config.intermediate_size is 1e+10, too large"},
        /* Python's json keeps the last of two equal keys, cJSON the first */
        {"cfg_dup", "\"rope_theta\": 10000.0", "\"rope_theta\": 10000.0, \"rope_theta\": 1e6",
         "key 'rope_theta' appears twice"},
    };
    for (size_t i = 0; i < sizeof edits / sizeof *edits; i++) {
        const config_edit *e = &edits[i];
        expect_load_error(patched_model(e->name, tiny_model_dir(), e->from, e->to), "config.json",
                          e->what);
    }
}

static void test_tensor_contradicts_config(void **s) {
    (void)s;
    const char *tiny = tiny_model_dir();
    expect_load_error(patched_model("cfg_inter", tiny, "\"intermediate_size\": 160",
                                    "\"intermediate_size\": 161"),
                      "model.safetensors", "has shape [160, 64] but config.json implies [161, 64]");
}

/* Published checkpoints often store another dtype than config.json's torch_dtype
 * (transformers casts on load): the stored one is used as it is. */
static void test_stored_dtype_differs_from_config(void **s) {
    (void)s;
    const char *f16 = make_twin("twin_f16_for_dtype", "--dtype f16");
    float *want = model_logits(f16);
    float *got = model_logits(patched_model("cfg_dtype", f16,
                                            "\"torch_dtype\": \"float16\",\n  \"vision",
                                            "\"torch_dtype\": \"bfloat16\",\n  \"vision"));
    assert_true(max_abs_diff(got, want, 32064) == 0);
    free(want), free(got);
}

static void test_missing_tensor_is_named(void **s) {
    (void)s;
    const char *dropped = "language_model.model.layers.2.mlp.up_proj.weight";
    sv_weights *w;
    sv_error err;
    char src[1200], dst[1200];
    snprintf(src, sizeof src, "%s/model.safetensors", tiny_model_dir());
    if (sv_weights_open_file(&w, src, &err)) fail_msg("%s", err.msg);
    size_t n = sv_weights_count(w), k = 0;
    sv_tensor_src *keep = calloc(n, sizeof *keep);
    for (size_t i = 0; i < n; i++) {
        const sv_tensor *t = sv_weights_at(w, i);
        if (strcmp(t->name, dropped) == 0) continue;
        keep[k] = (sv_tensor_src){t->name, t->dtype, t->ndim, {0}, (const float *)t->data};
        memcpy(keep[k].shape, t->shape, sizeof t->shape);
        k++;
    }
    assert_int_equal(k, n - 1);
    const char *dir = patched_model("missing_tensor", tiny_model_dir(), "{", "{");
    snprintf(dst, sizeof dst, "%s/model.safetensors", dir);
    unlink(dst);
    if (sv_safetensors_write(dst, keep, k, &err)) fail_msg("%s", err.msg);
    expect_load_error(dir, "missing tensor", dropped);
    free(keep);
    sv_weights_close(w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_threads_same_logits),
        cmocka_unit_test(test_f16_twin),
        cmocka_unit_test(test_f32_sharded_new_prefix),
        cmocka_unit_test(test_bf16_sharded_twin),
        cmocka_unit_test(test_impossible_config),
        cmocka_unit_test(test_tensor_contradicts_config),
        cmocka_unit_test(test_stored_dtype_differs_from_config),
        cmocka_unit_test(test_missing_tensor_is_named),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
