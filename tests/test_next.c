/* LLaVA-NeXT against the golden references (golden README, "LLaVA-NeXT"),
 * driven by next_golden.json so that every case and token-count example it
 * lists is checked: the anyres geometry of each example size, and for each
 * case the views' pixels (exact), each view's CLIP state and projector rows,
 * the packed layout (exact) and rows, prompt ids, logits and greedy ids; LC
 * on chelsea through `shortv calibrate`; ShortV = ablation on NeXT; freeze ->
 * generate; the Mistral decoder (template, sliding window); bad inputs. */
#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "generate.h"
#include "lcfile.h"
#include "metrics.h"
#include "testutil.h"

#define QUESTION "What is shown in this image?"
#define N_GREEDY 16

static cJSON *golden_json(void) {
    char *text = sv_read_file_bytes(golden_path("next_golden.json"), NULL);
    cJSON *root = cJSON_Parse(text);
    free(text);
    if (!root) fail_msg("next_golden.json: not valid JSON");
    return root;
}

static const cJSON *field(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) fail_msg("next_golden.json: no field '%s'", key);
    return v;
}

static int pair_at(const cJSON *o, const char *key, int i) {
    return cJSON_GetArrayItem(field(o, key), i)->valueint;
}

static const char *model_dir(const char *name) {
    char rel[256];
    snprintf(rel, sizeof rel, "models/%s", name);
    return golden_path(rel);
}

static sv_model *load_model(const char *dir) {
    sv_model *m;
    sv_error err;
    if (sv_model_load(&m, dir, &err)) fail_msg("%s", err.msg);
    return m;
}

/* ---------------------------------------------------------------- geometry */

/* ex: a token-count example (image_hw, hf_best_hw) or a case's preprocessing
 * (image_size_hw, best_resolution_hw). */
static void check_plan(const sv_config *cfg, const cJSON *ex, const char *what) {
    const char *size = cJSON_GetObjectItemCaseSensitive(ex, "image_hw") ? "image_hw"
                                                                         : "image_size_hw";
    int h = pair_at(ex, size, 0), w = pair_at(ex, size, 1);
    sv_anyres_plan p;
    sv_anyres_plan_image(cfg, w, h, &p);
    const char *best = cJSON_GetObjectItemCaseSensitive(ex, "hf_best_hw") ? "hf_best_hw"
                                                                           : "best_resolution_hw";
    printf("# %s %dx%d: best %dx%d, tiles %dx%d, resized %dx%d, kept %dx%d, %zu rows\n", what, w,
           h, p.best_w, p.best_h, p.rows, p.cols, p.resized_w, p.resized_h,
           p.kept_x1 - p.kept_x0, p.kept_y1 - p.kept_y0, sv_anyres_n_rows(&p));
    assert_int_equal(p.best_h, pair_at(ex, best, 0));
    assert_int_equal(p.best_w, pair_at(ex, best, 1));
    assert_int_equal(p.rows, pair_at(ex, "grid_rows_cols", 0));
    assert_int_equal(p.cols, pair_at(ex, "grid_rows_cols", 1));
    assert_int_equal(p.resized_h, pair_at(ex, "resized_hw", 0));
    assert_int_equal(p.resized_w, pair_at(ex, "resized_hw", 1));
}

static void test_token_counts(void **s) {
    (void)s;
    cJSON *root = golden_json();
    sv_model *m = load_model(model_dir("tiny-next"));
    const cJSON *ex;
    cJSON_ArrayForEach(ex, field(root, "token_count_examples")) {
        check_plan(&m->cfg, ex, "example");
        int h = pair_at(ex, "image_hw", 0), w = pair_at(ex, "image_hw", 1);
        sv_anyres_plan p;
        sv_anyres_plan_image(&m->cfg, w, h, &p);
        assert_int_equal(p.kept_y1 - p.kept_y0, pair_at(ex, "unpadded_hw", 0));
        assert_int_equal(p.kept_x1 - p.kept_x0, pair_at(ex, "unpadded_hw", 1));
        assert_int_equal(sv_visual_rows(&m->cfg, SV_ASPECT_ANYRES, w, h),
                         field(ex, "hf_n_visual")->valueint);
    }
    const cJSON *c;
    cJSON_ArrayForEach(c, field(root, "cases")) {
        const cJSON *pre = field(c, "preprocessing"), *unpad = field(c, "unpad");
        check_plan(&m->cfg, pre, field(c, "case")->valuestring);
        sv_anyres_plan p;
        sv_anyres_plan_image(&m->cfg, pair_at(pre, "image_size_hw", 1),
                             pair_at(pre, "image_size_hw", 0), &p);
        assert_int_equal(p.pad_top, pair_at(pre, "pad_top_bottom_left_right", 0));
        assert_int_equal(p.pad_left, pair_at(pre, "pad_top_bottom_left_right", 2));
        assert_int_equal(sv_anyres_n_views(&p), field(pre, "n_patches_incl_base")->valueint);
        assert_int_equal(p.kept_y0, pair_at(unpad, "kept_rows", 0));
        assert_int_equal(p.kept_y1, pair_at(unpad, "kept_rows", 1));
        assert_int_equal(p.kept_x0, pair_at(unpad, "kept_cols", 0));
        assert_int_equal(p.kept_x1, pair_at(unpad, "kept_cols", 1));
    }
    sv_model_free(m);
    cJSON_Delete(root);
}

/* ---------------------------------------------------------------- golden cases */

typedef struct next_case {
    const cJSON *json;
    char dir[256]; /* cases/<model>/<case>/ */
} next_case;

static void case_npy(sv_npy *out, const next_case *c, const char *file) {
    char rel[512];
    snprintf(rel, sizeof rel, "%s%s", c->dir, file);
    golden_npy(out, rel);
}

static void check_tensor(const next_case *c, const char *file, size_t offset, const float *got,
                         size_t n, float tol) {
    sv_npy want;
    char what[300];
    case_npy(&want, c, file);
    assert_true(offset + n <= want.count);
    snprintf(what, sizeof what, "%s%s[%zu:]", c->dir + 6, file, offset);
    assert_close(what, got, (const float *)want.data + offset, n, tol);
    sv_npy_free(&want);
}

static void check_ints(const next_case *c, const char *file, const int *got, size_t n) {
    sv_npy want;
    case_npy(&want, c, file);
    assert_int_equal(want.count, n);
    for (size_t i = 0; i < n; i++)
        if (((const int *)want.data)[i] != got[i])
            fail_msg("%s%s[%zu]: got %d want %d", c->dir, file, i, got[i],
                     ((const int *)want.data)[i]);
    sv_npy_free(&want);
}

/* The views' 8-bit pixels are Pillow's, exactly. */
static void check_views(const next_case *c, const sv_views *views) {
    sv_npy want;
    case_npy(&want, c, "patches_u8.npy");
    size_t plane = (size_t)views->size * views->size * 3;
    assert_int_equal(want.count, (size_t)views->n * plane);
    for (int i = 0; i < views->n; i++)
        if (memcmp(views->u8[i].px, (const uint8_t *)want.data + i * plane, plane) != 0)
            fail_msg("%s: view %d's pixels differ from Pillow's", c->dir, i);
    printf("# %s: %d views, pixels identical\n", c->dir, views->n);
    sv_npy_free(&want);
}

/* Each view's CLIP select-layer state and projector rows. */
static void check_view_features(const next_case *c, sv_context *ctx, const sv_views *views) {
    const sv_config *cfg = &ctx->m->cfg;
    size_t s = (size_t)cfg->view_tokens + 1, dv = (size_t)cfg->vision.hidden;
    size_t nv = (size_t)cfg->view_tokens, h = (size_t)cfg->text.hidden;
    size_t plane = (size_t)3 * views->size * views->size;
    float *rows = malloc(nv * h * sizeof(float));
    for (int i = 0; i < views->n; i++) {
        const float *f = sv_vision_features(ctx, views->pixels + i * plane);
        check_tensor(c, "np_vision_select_layer.npy", i * s * dv, f, s * dv, 1e-4f);
        sv_vision_project(ctx, f, rows);
        check_tensor(c, "np_patch_features.npy", i * nv * h, rows, nv * h, 1e-4f);
        check_tensor(c, "llamacpp_patch_features.npy", i * nv * h, rows, nv * h, 5e-3f);
    }
    free(rows);
}

static void check_layout(const next_case *c, const sv_encoded_image *image) {
    int *flat = malloc(image->n_rows * 4 * sizeof(int));
    for (size_t r = 0; r < image->n_rows; r++) {
        const sv_row_source *src = &image->sources[r];
        int *row = flat + 4 * r;
        row[0] = src->kind, row[1] = src->view, row[2] = src->y, row[3] = src->x;
    }
    check_ints(c, "np_visual_layout.npy", flat, image->n_rows * 4);
    free(flat);
}

static void run_case(const next_case *c) {
    const cJSON *j = c->json;
    sv_model *m = load_model(model_dir(field(j, "model")->valuestring));
    const char *image = golden_path(field(j, "image")->valuestring);
    sv_error err;
    sv_prompt p;
    sv_context *ctx = NULL;
    sv_views views;
    sv_encoded_image enc;
    if (sv_prompt_for_image(m, QUESTION, SV_TEMPLATE_AUTO, SV_ASPECT_AUTO, image, &p, &err) ||
        sv_context_new(&ctx, m, p.n + N_GREEDY, 0, &err) ||
        sv_preprocess_file(&m->cfg, image, SV_ASPECT_AUTO, &views, &err))
        fail_msg("%s", err.msg);
    check_ints(c, "prompt_ids.npy", p.ids, p.n);
    assert_int_equal(p.visual.start, field(j, "image_token_first_index")->valueint);
    assert_int_equal(p.visual.end, field(j, "image_token_last_index")->valueint + 1);
    assert_int_equal(p.visual.end - p.visual.start, field(j, "n_visual_tokens")->valueint);
    check_views(c, &views);
    check_view_features(c, ctx, &views);
    if (sv_encode_image(ctx, &views, &enc, &err)) fail_msg("%s", err.msg);
    check_layout(c, &enc);
    size_t h = (size_t)m->cfg.text.hidden;
    check_tensor(c, "np_img_embd.npy", 0, enc.rows, enc.n_rows * h, 1e-4f);

    if (sv_prefill(ctx, &p, &enc, NULL, &err)) fail_msg("%s", err.msg);
    size_t vocab = (size_t)m->cfg.text.vocab;
    check_tensor(c, "np_logits.npy", 0, ctx->logits, vocab, 1e-4f);
    check_tensor(c, "llamacpp_logits.npy", 0, ctx->logits, vocab, 2e-3f);
    int ids[N_GREEDY], n = 0;
    if (sv_generate_greedy(ctx, N_GREEDY, ids, &n, NULL, NULL, &err)) fail_msg("%s", err.msg);
    check_ints(c, "np_greedy_ids.npy", ids, (size_t)n);
    check_ints(c, "llamacpp_greedy_ids.npy", ids, (size_t)n);

    sv_encoded_image_free(&enc);
    sv_views_free(&views);
    sv_prompt_free(&p);
    sv_context_free(ctx);
    sv_model_free(m);
}

static void test_golden_cases(void **s) {
    (void)s;
    cJSON *root = golden_json();
    const cJSON *j;
    int n = 0;
    cJSON_ArrayForEach(j, field(root, "cases")) {
        next_case c = {.json = j};
        snprintf(c.dir, sizeof c.dir, "cases/%s/%s/", field(j, "model")->valuestring,
                 field(j, "case")->valuestring);
        run_case(&c);
        n++;
    }
    assert_true(n >= 2);
    cJSON_Delete(root);
}

/* ---------------------------------------------------------------- LC, ShortV */

/* A folder with chelsea.png and a one-line manifest asking QUESTION about it. */
static const char *chelsea_data(const char *name) {
    const char *dir = scratch_dir(name);
    char cmd[4096];
    path_buf manifest;
    snprintf(cmd, sizeof cmd, "cp %s %s/", golden_path("images/chelsea.png"), dir);
    if (system(cmd) != 0) fail_msg("cannot copy chelsea.png to %s", dir);
    write_text(join(manifest, dir, "manifest.jsonl"),
               "{\"id\": \"chelsea\", \"image\": \"chelsea.png\", \"question\": \"" QUESTION "\"}\n");
    return dir;
}

static void test_calibrate_lc(void **s) {
    (void)s;
    const char *dir = chelsea_data("next_calib");
    char args[8192];
    path_buf lc, manifest, freeze;
    join(lc, dir, "lc.h5");
    join(manifest, dir, "manifest.jsonl");
    join(freeze, dir, "freeze.json");
    snprintf(args, sizeof args, "calibrate -m %s --data %s -o %s", model_dir("tiny-next"),
             manifest, lc);
    expect_success(args);
    sv_lc_data d;
    sv_npy golden;
    sv_error e;
    if (sv_lc_read(&d, lc, &e)) fail_msg("%s", e.msg);
    golden_npy(&golden, "lc_next_golden.npy");
    assert_string_equal(d.meta.aspect, "anyres");
    assert_int_equal(d.visual_start[0], 35);
    assert_int_equal(d.visual_end[0], 35 + 1464);
    int L = d.meta.n_layers;
    for (int g = 0; g < 2; g++)
        for (int l = 0; l < L; l++) {
            double want = ((double *)golden.data)[g * L + l], got = d.lc[g][l];
            printf("# LC(%d, %s) %.9f golden %.9f\n", l, g ? "text" : "visual", got, want);
            if (want == 0) assert_true(got == 0.0);
            else assert_true(fabs(got - want) <= 1e-4 * want);
        }
    sv_npy_free(&golden);
    sv_lc_data_free(&d);

    /* freeze -> generate in ShortV mode, end to end on the NeXT model */
    snprintf(args, sizeof args, "freeze %s -n 2 -o %s", lc, freeze);
    expect_success(args);
    snprintf(args, sizeof args, "generate -m %s --image %s -p \"" QUESTION "\" -n 4 --print-ids "
             "--freeze %s", model_dir("tiny-next"), golden_path("images/chelsea.png"), freeze);
    expect_success(args);
    printf("# ShortV generate: %s", cli_out);
    assert_true(strlen(cli_out) > 1);
}

/* Logits of the chelsea prompt with the layers in `which` under `mode`. */
static void policy_logits(sv_context *ctx, const sv_prompt *p, const sv_encoded_image *enc,
                          unsigned which, sv_layer_mode mode, sv_group g, float *out) {
    sv_layer_mode modes[64] = {0};
    int L = ctx->m->cfg.text.n_layers;
    for (int l = 0; l < L; l++) modes[l] = (which >> l & 1) ? mode : SV_LAYER_DENSE;
    sv_policy policy = {modes, g, p->visual};
    sv_error err;
    if (sv_prefill(ctx, p, enc, &policy, &err)) fail_msg("%s", err.msg);
    memcpy(out, ctx->logits, (size_t)ctx->m->cfg.text.vocab * sizeof(float));
}

static void test_shortv_equals_ablation(void **s) {
    (void)s;
    sv_model *m = load_model(model_dir("tiny-next"));
    const char *image = golden_path("images/chelsea.png");
    sv_error err;
    sv_prompt p;
    sv_context *ctx = NULL;
    sv_encoded_image enc;
    if (sv_prompt_for_image(m, QUESTION, SV_TEMPLATE_AUTO, SV_ASPECT_AUTO, image, &p, &err) ||
        sv_context_new(&ctx, m, p.n, 0, &err) ||
        sv_encode_image_file(ctx, image, SV_ASPECT_AUTO, &enc, &err))
        fail_msg("%s", err.msg);
    size_t V = (size_t)m->cfg.text.vocab;
    float *dense = malloc(V * sizeof(float)), *frozen = malloc(V * sizeof(float));
    float *ablated = malloc(V * sizeof(float));
    policy_logits(ctx, &p, &enc, 0, SV_LAYER_DENSE, SV_GROUP_VISUAL, dense);
    const unsigned sets[] = {0x1, 0x6, 0xF};
    for (size_t i = 0; i < sizeof sets / sizeof *sets; i++) {
        policy_logits(ctx, &p, &enc, sets[i], SV_LAYER_FREEZE, SV_GROUP_VISUAL, frozen);
        policy_logits(ctx, &p, &enc, sets[i], SV_LAYER_ABLATE, SV_GROUP_VISUAL, ablated);
        double rel = sv_relative_l2(frozen, ablated, V), moved = sv_relative_l2(ablated, dense, V);
        printf("# layers 0x%x: frozen vs ablated rel L2 %.2g (vs dense %.2g)\n", sets[i], rel,
               moved);
        assert_true(rel <= 1e-5);
        assert_true(moved > 1e-3);
    }
    free(dense), free(frozen), free(ablated);
    sv_encoded_image_free(&enc);
    sv_prompt_free(&p);
    sv_context_free(ctx);
    sv_model_free(m);
}

/* ---------------------------------------------------------------- the CLI */

static void test_cli_image_commands(void **s) {
    (void)s;
    const char *dir = scratch_dir("next_cli");
    char args[8192];
    path_buf views, rows;
    snprintf(args, sizeof args, "preprocess -m %s --image %s -o %s", model_dir("tiny-next"),
             golden_path("images/chelsea.png"), join(views, dir, "views.npy"));
    expect_success(args);
    sv_npy v;
    sv_error e;
    if (sv_npy_read(&v, views, &e)) fail_msg("%s", e.msg);
    assert_int_equal(v.ndim, 4);
    assert_int_equal(v.shape[0], 3);
    assert_int_equal(v.shape[1], 3);
    sv_npy_free(&v);
    snprintf(args, sizeof args, "embed-image -m %s --image %s -o %s", model_dir("tiny-next"),
             golden_path("images/chelsea.png"), join(rows, dir, "rows.npy"));
    expect_success(args);
    if (sv_npy_read(&v, rows, &e)) fail_msg("%s", e.msg);
    assert_int_equal(v.shape[0], 1464);
    sv_npy want;
    golden_npy(&want, "cases/tiny-next/chelsea/np_img_embd.npy");
    assert_close("embed-image rows", v.data, want.data, want.count, 1e-4f);
    sv_npy_free(&want);
    sv_npy_free(&v);
    /* pad/crop belong to LLaVA-1.5 */
    snprintf(args, sizeof args, "embed-image -m %s --image %s --aspect pad -o %s",
             model_dir("tiny-next"), golden_path("images/chelsea.png"), rows);
    expect_error(args, "--aspect pad", "LLaVA-NeXT takes anyres tiles only");
}

/* ---------------------------------------------------------------- variants */

/* A copy of tiny-next in build/tmp/NAME: config.json with each `from` replaced
 * by its `to` (n pairs), the other files symlinked. */
static const char *variant(const char *name, const char *const *edits, int n) {
    static char dir[1024];
    char cmd[4096];
    path_buf path;
    const char *src = model_dir("tiny-next");
    snprintf(dir, sizeof dir, "%s", scratch_dir(name));
    snprintf(cmd, sizeof cmd, "for f in %s/*; do ln -s \"$(realpath $f)\" %s/; done", src, dir);
    if (system(cmd) != 0) fail_msg("cannot link %s", src);
    char *json = sv_read_file_bytes(join(path, src, "config.json"), NULL);
    for (int i = 0; i < n; i++) {
        const char *from = edits[2 * i], *to = edits[2 * i + 1];
        char *at = strstr(json, from);
        if (!at) fail_msg("'%s' not in tiny-next's config.json", from);
        char *edited = malloc(strlen(json) + strlen(to) + 1);
        sprintf(edited, "%.*s%s%s", (int)(at - json), json, to, at + strlen(from));
        free(json);
        json = edited;
    }
    join(path, dir, "config.json");
    unlink(path);
    write_text(path, json);
    free(json);
    return dir;
}

/* Last-position logits of the chelsea prompt; the prompt's ids into *p. */
static float *chelsea_logits(const char *dir, sv_prompt *p) {
    sv_model *m = load_model(dir);
    const char *image = golden_path("images/chelsea.png");
    sv_error err;
    sv_context *ctx = NULL;
    sv_encoded_image enc;
    if (sv_prompt_for_image(m, QUESTION, SV_TEMPLATE_AUTO, SV_ASPECT_AUTO, image, p, &err) ||
        sv_context_new(&ctx, m, p->n, 0, &err) ||
        sv_encode_image_file(ctx, image, SV_ASPECT_AUTO, &enc, &err) ||
        sv_prefill(ctx, p, &enc, NULL, &err))
        fail_msg("%s", err.msg);
    float *logits = malloc((size_t)m->cfg.text.vocab * sizeof(float));
    memcpy(logits, ctx->logits, (size_t)m->cfg.text.vocab * sizeof(float));
    sv_encoded_image_free(&enc);
    sv_context_free(ctx);
    sv_model_free(m);
    return logits;
}

/* tiny-next's decoder declared Mistral: the same weights, so the same numbers as
 * LLaMA where no window applies; mistral_instruct by default; a sliding window
 * shorter than the prompt changes the result, one longer does not. */
static void test_mistral_decoder(void **s) {
    (void)s;
    const char *no_window[] = {"\"model_type\": \"llama\"",
                               "\"model_type\": \"mistral\", \"sliding_window\": null"};
    const char *wide[] = {"\"model_type\": \"llama\"",
                          "\"model_type\": \"mistral\", \"sliding_window\": 4096"};
    const char *narrow[] = {"\"model_type\": \"llama\"",
                            "\"model_type\": \"mistral\", \"sliding_window\": 512"};
    sv_prompt pa, pb, pc, vicuna;
    float *a = chelsea_logits(variant("next_mistral", no_window, 1), &pa);
    float *b = chelsea_logits(variant("next_mistral_wide", wide, 1), &pb);
    float *c = chelsea_logits(variant("next_mistral_narrow", narrow, 1), &pc);
    free(chelsea_logits(model_dir("tiny-next"), &vicuna));

    /* the default template is the text "[INST] <image>\n{question} [/INST]" */
    sv_model *m = load_model(model_dir("tiny-next"));
    sv_prompt raw;
    sv_error err;
    if (sv_prompt_build(m, "[INST] <image>\n" QUESTION " [/INST]", SV_TEMPLATE_RAW, 1464, &raw,
                        &err))
        fail_msg("%s", err.msg);
    assert_int_equal(pa.n, raw.n);
    assert_memory_equal(pa.ids, raw.ids, raw.n * sizeof(int));
    assert_int_equal(pa.visual.start, 5); /* BOS, "[INST]" in 3 pieces, "▁" */
    assert_true(pa.n < vicuna.n);
    sv_prompt_free(&raw);
    sv_model_free(m);

    size_t V = 32064;
    assert_int_equal(pa.n, pb.n);
    float diff_wide = max_abs_diff(a, b, V), diff_narrow = max_abs_diff(a, c, V);
    printf("# Mistral decoder, %zu positions: window 4096 vs none %g, window 512 vs none %g\n",
           pa.n, (double)diff_wide, (double)diff_narrow);
    assert_true(diff_wide == 0);
    assert_true(diff_narrow > 1e-3);
    free(a), free(b), free(c);
    sv_prompt_free(&pa), sv_prompt_free(&pb), sv_prompt_free(&pc), sv_prompt_free(&vicuna);
}

static void test_bad_next_inputs(void **s) {
    (void)s;
    char args[8192];
    /* the image's rows do not fit the positions the model has */
    const char *short_ctx[] = {"\"max_position_embeddings\": 4096",
                               "\"max_position_embeddings\": 1000"};
    snprintf(args, sizeof args, "logits -m %s --image %s -p hi -o %s/x.npy",
             variant("next_short", short_ctx, 1), golden_path("images/chelsea.png"),
             scratch_dir("next_short_out"));
    expect_error(args, "chelsea.png", "becomes 1464 visual tokens, more than the model's "
                                      "max_position_embeddings (1000)");

    /* image_newline of the wrong width */
    const char *dir = variant("next_newline", NULL, 0);
    sv_weights *w;
    sv_error err;
    path_buf src, dst;
    if (sv_weights_open_file(&w, join(src, model_dir("tiny-next"), "model.safetensors"), &err))
        fail_msg("%s", err.msg);
    size_t n = sv_weights_count(w);
    sv_tensor_src *t = calloc(n, sizeof *t);
    for (size_t i = 0; i < n; i++) {
        const sv_tensor *x = sv_weights_at(w, i);
        t[i] = (sv_tensor_src){x->name, x->dtype, x->ndim, {0}, (const float *)x->data};
        memcpy(t[i].shape, x->shape, sizeof x->shape);
        if (strcmp(x->name, "image_newline") == 0) t[i].shape[0] = 32;
    }
    join(dst, dir, "model.safetensors");
    unlink(dst);
    if (sv_safetensors_write(dst, t, n, &err)) fail_msg("%s", err.msg);
    sv_model *m = NULL;
    assert_int_equal(sv_model_load(&m, dir, &err), SV_FAIL);
    printf("# %s\n", err.msg);
    assert_non_null(strstr(err.msg, "tensor 'image_newline' has shape [32] but config.json "
                                    "implies [64]"));
    free(t);
    sv_weights_close(w);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_token_counts),
        cmocka_unit_test(test_golden_cases),
        cmocka_unit_test(test_calibrate_lc),
        cmocka_unit_test(test_shortv_equals_ablation),
        cmocka_unit_test(test_cli_image_commands),
        cmocka_unit_test(test_mistral_decoder),
        cmocka_unit_test(test_bad_next_inputs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
