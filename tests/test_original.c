/* The original LLaVA layout (issue 13): SentencePiece ids against the library's
 * (golden sentencepiece/spm_golden.json, every string), the chunked LLaVA
 * prompt, tiny-a written by torch.save (tests/fixtures/original, made by
 * scripts/original_layout.py) against the HF reference logits and greedy ids,
 * the same weights as safetensors shards, the tower directory rules, calibrate
 * and ShortV mode on it, and hostile .bin files. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#include "config.h"
#include "model.h"
#include "pickle.h"
#include "prompt.h"
#include "safetensors.h"
#include "tokenizer.h"

#define FIXTURE "tests/fixtures/original/llava-tiny-a"
#define TOWER "tests/fixtures/original/clip-tiny-a"
#define QUESTION "What is shown in this image?"

/* The fixture plus the golden tokenizer.model, linked into a scratch folder. */
static const char *model_dir(void) {
    static path_buf dir;
    static const char *const files[] = {"config.json", "tokenizer_config.json",
                                        "pytorch_model.bin.index.json",
                                        "pytorch_model-00001-of-00002.bin",
                                        "pytorch_model-00002-of-00002.bin"};
    char cwd[1024];
    path_buf src, dst;
    snprintf(dir, sizeof dir, "%s", scratch_dir("original_model"));
    assert_non_null(getcwd(cwd, sizeof cwd));
    for (size_t i = 0; i < sizeof files / sizeof *files; i++) {
        snprintf(src, sizeof src, "%s/" FIXTURE "/%s", cwd, files[i]);
        assert_int_equal(symlink(src, join(dst, dir, files[i])), 0);
    }
    snprintf(src, sizeof src, "%s", golden_path("sentencepiece/tokenizer.model"));
    if (src[0] != '/') snprintf(src, sizeof src, "%s/%s", cwd,
                                golden_path("sentencepiece/tokenizer.model"));
    assert_int_equal(symlink(src, join(dst, dir, "tokenizer.model")), 0);
    return dir;
}

static cJSON *spm_golden(void) {
    char *text = sv_read_file_bytes(golden_path("sentencepiece/spm_golden.json"), NULL);
    cJSON *root = cJSON_Parse(text);
    free(text);
    assert_non_null(root);
    return root;
}

static void expect_ids(const cJSON *want, const int *ids, size_t n, const char *what) {
    size_t k = (size_t)cJSON_GetArraySize(want), i = 0;
    const cJSON *w;
    if (k != n) fail_msg("%s: %zu ids, want %zu", what, n, k);
    cJSON_ArrayForEach(w, want) {
        if (ids[i] != w->valueint) fail_msg("%s: id %zu is %d, want %d", what, i, ids[i],
                                            w->valueint);
        i++;
    }
}

static void test_sentencepiece_golden(void **state) {
    (void)state;
    sv_tokenizer *t;
    sv_error err;
    if (sv_tokenizer_load(&t, model_dir(), &err)) fail_msg("%s", err.msg);
    cJSON *root = spm_golden(), *e;
    int n_strings = 0;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(root, "strings")) {
        int *ids;
        size_t n;
        const char *text = cJSON_GetObjectItem(e, "text")->valuestring;
        if (sv_tokenizer_encode(t, text, 1, &ids, &n, &err)) fail_msg("%s", err.msg);
        expect_ids(cJSON_GetObjectItem(e, "ids"), ids, n, text);
        free(ids);
        n_strings++;
    }
    printf("# %d strings, ids identical to the SentencePiece library's\n", n_strings);
    assert_true(n_strings >= 43);
    cJSON_Delete(root);
    sv_tokenizer_free(t);
}

static sv_model *load_original(const char *dir) {
    sv_model *m;
    sv_error err;
    sv_model_params p = {.vision_tower = TOWER};
    if (sv_model_load_params(&m, dir, &p, &err)) fail_msg("%s", err.msg);
    return m;
}

/* tokenizer_image_token: one -200 between chunks tokenised on their own. */
static void test_chunked_prompt(void **state) {
    (void)state;
    sv_model *m = load_original(model_dir());
    cJSON *root = spm_golden(), *lp = cJSON_GetObjectItem(root, "llava_prompt");
    sv_prompt p;
    sv_error err;
    if (sv_prompt_build(m, cJSON_GetObjectItem(lp, "text")->valuestring, SV_TEMPLATE_RAW, 1, &p,
                        &err))
        fail_msg("%s", err.msg);
    expect_ids(cJSON_GetObjectItem(lp, "llava_input_ids"), p.ids, p.n, "llava prompt");
    assert_int_equal(p.visual.start,
                     cJSON_GetObjectItem(lp, "image_token_position")->valueint);
    sv_prompt_free(&p);
    cJSON_Delete(root);
    sv_model_free(m);
}

/* Logits of the first 32000 entries and greedy ids as the llava-hf run's. */
static void check_case(const char *dir, const char *name, const char *image, const char *aspect) {
    char args[4096], rel[256];
    const char *out = join((path_buf){0}, scratch_dir("original_logits"), "logits.npy");
    snprintf(args, sizeof args, "logits -m %s --vision-tower " TOWER " --image %s --aspect %s "
             "-p '" QUESTION "' -o %s", dir, golden_path(image), aspect, out);
    expect_success(args);
    sv_npy got, want, ids;
    sv_error err;
    if (sv_npy_read(&got, out, &err)) fail_msg("%s", err.msg);
    snprintf(rel, sizeof rel, "cases/tiny-a/%s/np_logits.npy", name);
    golden_npy(&want, rel);
    assert_int_equal(got.count, 32000);
    float diff = max_abs_diff(got.data, want.data, 32000);
    printf("# %s: logits max |diff| %.3g over the first 32000 entries\n", name, diff);
    assert_true(diff <= 1e-4f);
    snprintf(args, sizeof args, "generate -m %s --vision-tower " TOWER " --image %s --aspect %s "
             "-p '" QUESTION "' -n 16 --print-ids", dir, golden_path(image), aspect);
    expect_success(args);
    snprintf(rel, sizeof rel, "cases/tiny-a/%s/np_greedy_ids.npy", name);
    golden_npy(&ids, rel);
    char want_ids[512] = "";
    for (size_t i = 0; i < ids.count; i++)
        snprintf(want_ids + strlen(want_ids), sizeof want_ids - strlen(want_ids), "%s%d",
                 i ? " " : "", ((const int32_t *)ids.data)[i]);
    if (strncmp(cli_out, want_ids, strlen(want_ids)))
        fail_msg("%s: greedy ids %s, want %s", name, cli_out, want_ids);
    sv_npy_free(&got), sv_npy_free(&want), sv_npy_free(&ids);
}

static void test_golden_cases(void **state) {
    (void)state;
    const char *dir = model_dir();
    check_case(dir, "synthetic", "images/synthetic_336.png", "pad");
    check_case(dir, "chelsea_pad", "images/chelsea.png", "pad");
    check_case(dir, "chelsea_crop", "images/chelsea.png", "crop");
}

/* The same tensors as two safetensors shards with an index load and run alike. */
static void test_safetensors_shards(void **state) {
    (void)state;
    const char *src = model_dir();
    const char *dir = scratch_dir("original_safetensors");
    sv_weights *w;
    sv_error err;
    path_buf p, q;
    if (sv_weights_open(&w, src, &err)) fail_msg("%s", err.msg);
    size_t n = sv_weights_count(w);
    sv_tensor_src *t = calloc(n, sizeof *t);
    float **data = calloc(n, sizeof *data);
    FILE *index = fopen(join(p, dir, "model.safetensors.index.json"), "w");
    fprintf(index, "{\"weight_map\": {");
    for (size_t i = 0; i < n; i++) {
        const sv_tensor *x = sv_weights_at(w, i);
        data[i] = malloc((x->count + 1) * sizeof(float));
        sv_to_f32(x->dtype, x->data, data[i], x->count);
        t[i] = (sv_tensor_src){x->name, x->dtype, x->ndim, {0}, data[i]};
        memcpy(t[i].shape, x->shape, sizeof t[i].shape);
        fprintf(index, "%s\"%s\": \"model-0000%d-of-00002.safetensors\"", i ? ", " : "",
                x->name, i < n / 2 ? 1 : 2);
    }
    fprintf(index, "}}\n");
    fclose(index);
    if (sv_safetensors_write(join(p, dir, "model-00001-of-00002.safetensors"), t, n / 2, &err) ||
        sv_safetensors_write(join(p, dir, "model-00002-of-00002.safetensors"), t + n / 2,
                             n - n / 2, &err))
        fail_msg("%s", err.msg);
    const char *const links[] = {"config.json", "tokenizer.model", "tokenizer_config.json"};
    for (int i = 0; i < 3; i++) {
        char target[4096];
        ssize_t k = readlink(join(p, src, links[i]), target, sizeof target - 1);
        assert_true(k > 0);
        target[k] = 0;
        assert_int_equal(symlink(target, join(q, dir, links[i])), 0);
    }
    for (size_t i = 0; i < n; i++) free(data[i]);
    free(data), free(t);
    sv_weights_close(w);
    check_case(dir, "synthetic", "images/synthetic_336.png", "pad");
}

/* mm_vision_tower: a directory is used; a hub id needs --vision-tower. */
static void test_tower_directory(void **state) {
    (void)state;
    const char *dir = model_dir();
    char args[4096], cwd[1024];
    const char *npy = join((path_buf){0}, scratch_dir("original_tower"), "pixels.npy");
    snprintf(args, sizeof args, "preprocess -m %s --image %s -o %s", dir,
             golden_path("images/chelsea.png"), npy);
    expect_error(args, "config.json", "--vision-tower DIR");
    snprintf(args, sizeof args, "logits -m %s --vision-tower /nonexistent --image %s -p x -o %s",
             dir, golden_path("images/chelsea.png"), npy);
    expect_error(args, "/nonexistent", "not a directory");
    /* a config naming the tower by path */
    path_buf p;
    char *text = sv_read_file_bytes(FIXTURE "/config.json", NULL);
    cJSON *cfg = cJSON_Parse(text);
    assert_non_null(getcwd(cwd, sizeof cwd));
    snprintf(args, sizeof args, "%s/" TOWER, cwd);
    cJSON_ReplaceItemInObject(cfg, "mm_vision_tower", cJSON_CreateString(args));
    char *out = cJSON_Print(cfg);
    unlink(join(p, dir, "config.json"));
    write_text(p, out);
    free(out), free(text);
    cJSON_Delete(cfg);
    snprintf(args, sizeof args, "preprocess -m %s --image %s -o %s", dir,
             golden_path("images/chelsea.png"), npy);
    expect_success(args);
}

/* Options the runtime does not implement are refused by name. */
static void test_refused_options(void **state) {
    (void)state;
    static const struct { const char *key, *json, *what; } cases[] = {
        {"mm_use_im_start_end", "true", "mm_use_im_start_end"},
        {"mm_projector_type", "\"linear\"", "mm_projector_type linear"},
        {"mm_vision_select_feature", "\"cls_patch\"", "mm_vision_select_feature cls_patch"},
        {"image_aspect_ratio", "\"square\"", "image_aspect_ratio square"},
        {"mm_patch_merge_type", "\"spatial\"", "mm_patch_merge_type spatial"},
        {"mm_vision_tower", "null", "mm_vision_tower"},
    };
    char *text = sv_read_file_bytes(FIXTURE "/config.json", NULL);
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        cJSON *cfg = cJSON_Parse(text);
        cJSON_DeleteItemFromObject(cfg, cases[i].key);
        cJSON_AddItemToObject(cfg, cases[i].key, cJSON_Parse(cases[i].json));
        char *json = cJSON_Print(cfg);
        sv_config c;
        sv_error err = {{0}};
        assert_int_equal(sv_config_parse(&c, json, "config.json", &err), SV_FAIL);
        printf("# %s\n", err.msg);
        if (!strstr(err.msg, cases[i].what)) fail_msg("\"%s\" should say %s", err.msg,
                                                      cases[i].what);
        free(json);
        cJSON_Delete(cfg);
    }
    free(text);
}

/* calibrate, freeze and ShortV mode on the original layout; a freeze config
 * is bound to config.json's bytes, so the llava-hf layout refuses it. */
static void test_calibrate_and_shortv(void **state) {
    (void)state;
    const char *dir = model_dir(), *tmp = scratch_dir("original_calibrate");
    path_buf manifest, lc, freeze;
    char args[4096], line[8192], image[4096];
    /* image paths are relative to the manifest's folder: give it absolute */
    assert_non_null(realpath(golden_path("images/synthetic_336.png"), image));
    snprintf(line, sizeof line, "{\"id\": \"a\", \"image\": \"%s\", \"question\": \"" QUESTION
             "\"}\n", image);
    write_text(join(manifest, tmp, "m.jsonl"), line);
    snprintf(args, sizeof args, "calibrate -m %s --vision-tower " TOWER " --data %s -o %s", dir,
             manifest, join(lc, tmp, "lc.h5"));
    expect_success(args);
    snprintf(args, sizeof args, "freeze %s -n 2 -o %s", lc, join(freeze, tmp, "f.json"));
    expect_success(args);
    snprintf(args, sizeof args, "generate -m %s --vision-tower " TOWER " --image %s -p '"
             QUESTION "' -n 4 --freeze %s", dir, golden_path("images/synthetic_336.png"), freeze);
    expect_success(args);
    snprintf(args, sizeof args, "generate -m %s --image %s -p '" QUESTION "' -n 4 --freeze %s",
             tiny_model_dir(), golden_path("images/synthetic_336.png"), freeze);
    expect_error(args, "f.json", "config hash");
}

/* ------------------------------------------------------------------ hostile .bin files */

/* A zip of stored entries as torch writes it; `method` marks every entry. */
typedef struct { const char *name; const void *data; size_t size; } zip_item;

static void put(FILE *f, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; i++) fputc((int)(v >> (8 * i) & 0xff), f);
}

static void write_zip(const char *path, const zip_item *items, int n, int method) {
    FILE *f = fopen(path, "wb");
    long offsets[8];
    for (int i = 0; i < n; i++) {
        offsets[i] = ftell(f);
        put(f, 0x04034b50, 4), put(f, 20, 2), put(f, 0, 2), put(f, (uint64_t)method, 2);
        put(f, 0, 8), put(f, items[i].size, 4), put(f, items[i].size, 4);
        put(f, strlen(items[i].name), 2), put(f, 0, 2);
        fputs(items[i].name, f);
        fwrite(items[i].data, 1, items[i].size, f);
    }
    long cd = ftell(f);
    for (int i = 0; i < n; i++) {
        put(f, 0x02014b50, 4), put(f, 20, 2), put(f, 20, 2), put(f, 0, 2);
        put(f, (uint64_t)method, 2), put(f, 0, 8), put(f, items[i].size, 4);
        put(f, items[i].size, 4), put(f, strlen(items[i].name), 2), put(f, 0, 6);
        put(f, 0, 2), put(f, 0, 4), put(f, (uint64_t)offsets[i], 4);
        fputs(items[i].name, f);
    }
    long end = ftell(f);
    put(f, 0x06054b50, 4), put(f, 0, 4), put(f, (uint64_t)n, 2), put(f, (uint64_t)n, 2);
    put(f, (uint64_t)(end - cd), 4), put(f, (uint64_t)cd, 4), put(f, 0, 2);
    fclose(f);
}

/* Pickle text with its length (it holds NUL bytes). */
typedef struct { const char *s; size_t n; } bytes;
#define B(lit) ((bytes){lit, sizeof lit - 1})

static size_t append(char *out, size_t n, bytes b) {
    memcpy(out + n, b.s, b.n);
    return n + b.n;
}

/* A one-tensor state dict {'w': HalfStorage view} as torch.save pickles it,
 * with numel, offset and (shape, stride) spliced in. */
static size_t tensor_pickle(char *out, bytes numel, bytes offset, bytes shape_stride) {
    size_t n = append(out, 0, B("\x80\x02" "ccollections\nOrderedDict\n)R(X\x01\x00\x00\x00w"
                                "ctorch._utils\n_rebuild_tensor_v2\n((X\x07\x00\x00\x00storage"
                                "ctorch\nHalfStorage\nX\x01\x00\x00\x00" "0X\x03\x00\x00\x00"
                                "cpu"));
    n = append(out, n, numel);
    n = append(out, n, B("tQ"));
    n = append(out, n, offset);
    n = append(out, n, shape_stride);
    return append(out, n, B("\x89" "ccollections\nOrderedDict\n)RtRu."));
}

static void expect_bin_error(const char *name, const void *pkl, size_t pkl_len,
                             const void *storage, size_t storage_len, int method,
                             const char *what) {
    const char *dir = scratch_dir("original_hostile");
    path_buf path;
    zip_item items[2] = {{"archive/data.pkl", pkl, pkl_len},
                         {"archive/data/0", storage, storage_len}};
    write_zip(join(path, dir, "pytorch_model.bin"), items, storage ? 2 : 1, method);
    sv_weights *w = NULL;
    sv_error err = {{0}};
    int rc = sv_weights_open(&w, dir, &err);
    printf("# %s: %s\n", name, err.msg);
    if (rc != SV_FAIL || w) fail_msg("%s: accepted", name);
    if (!strstr(err.msg, "pytorch_model.bin") || !strstr(err.msg, what) || strchr(err.msg, '\n'))
        fail_msg("%s: \"%s\" should name the file and say \"%s\"", name, err.msg, what);
}

static void test_hostile_bin(void **state) {
    (void)state;
    static const char system_call[] = "\x80\x02" "cposix\nsystem\nX\x02\x00\x00\x00lsq\x00\x85R.";
    static const char stack_global[] = "\x80\x04\x8c\x08" "builtins\x8c\x04" "eval\x93.";
    static const char memo[] = "\x80\x02}r\xff\xff\xff\x7f.";
    static const char truncated[] = "\x80\x02}q\x00(X\x05\x00\x00\x00";
    char deep[256], pkl[512];
    uint16_t half[8] = {0};
    size_t n = 0;
    n += (size_t)snprintf(deep, sizeof deep, "\x80\x02)");
    for (int i = 0; i < 40; i++) deep[n++] = (char)0x85; /* TUPLE1, 40 deep */
    deep[n++] = '.';
    expect_bin_error("os.system", system_call, sizeof system_call - 1, NULL, 0, 0,
                     "global 'posix.system' is not allowed");
    expect_bin_error("builtins.eval", stack_global, sizeof stack_global - 1, NULL, 0, 0,
                     "global 'builtins.eval' is not allowed");
    expect_bin_error("huge memo", memo, sizeof memo - 1, NULL, 0, 0, "memo index");
    expect_bin_error("deep nesting", deep, n, NULL, 0, 0, "nested deeper");
    expect_bin_error("truncated pickle", truncated, sizeof truncated - 1, NULL, 0, 0,
                     "truncated");
    n = tensor_pickle(pkl, B("K\x04"), B("K\x00"), B("K\x08\x85K\x01\x85"));
    expect_bin_error("view past its storage", pkl, n, half, 8, 0, "reaches past its storage");
    expect_bin_error("storage smaller than numel", pkl, n, half, 4, 0, "has 4 bytes");
    n = tensor_pickle(pkl, B("K\x08"), B("K\x00"), B("K\x02K\x04\x86K\x01K\x02\x86"));
    expect_bin_error("strided view", pkl, n, half, 16, 0, "non-contiguous");
    n = tensor_pickle(pkl, B("K\x08"), B("K\x00"),
                      B("\x8a\x08\x00\x00\x00\x00\x00\x00\x00\x40\x8a\x08\x00\x00\x00\x00"
                        "\x00\x00\x00\x40\x86K\x01K\x01\x86"));
    expect_bin_error("absurd shape", pkl, n, half, 16, 0, "overflows");
    n = tensor_pickle(pkl, B("K\x08"), B("K\x00"), B("K\x08\x85K\x01\x85"));
    expect_bin_error("compressed entry", pkl, n, half, 16, 8, "compressed");
}

/* Truncated and rewired archives: the real fixture shard, cut or patched. */
static void test_broken_archives(void **state) {
    (void)state;
    size_t len;
    unsigned char *bin = (unsigned char *)sv_read_file_bytes(TOWER "/pytorch_model.bin", &len);
    const char *dir = scratch_dir("original_broken");
    path_buf path;
    sv_weights *w;
    sv_error err = {{0}};
    join(path, dir, "pytorch_model.bin");
    write_bytes(path, bin, len / 2);
    assert_int_equal(sv_weights_open(&w, dir, &err), SV_FAIL);
    printf("# truncated: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "truncated"));
    /* every central entry's local-header offset pointed past the data */
    for (size_t i = 0; i + 46 <= len; i++)
        if (!memcmp(bin + i, "PK\x01\x02", 4)) memset(bin + i + 42, 0x7f, 4);
    write_bytes(path, bin, len);
    assert_int_equal(sv_weights_open(&w, dir, &err), SV_FAIL);
    printf("# outside: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "points outside"));
    free(bin);
}

/* Overlapping entries: the second's local header sits inside the first's data. */
static void test_overlapping_entries(void **state) {
    (void)state;
    char inner[64] = {0};
    int k = snprintf(inner, sizeof inner, "PK\x03\x04");
    inner[k + 22] = 14; /* name length */
    memcpy(inner + k + 26, "archive/data/0", 14);
    const char *dir = scratch_dir("original_overlap");
    path_buf path;
    zip_item items[1] = {{"archive/data.pkl", inner, (size_t)k + 26 + 14}};
    write_zip(join(path, dir, "pytorch_model.bin"), items, 1, 0);
    /* add a second central entry pointing at the local header inside data.pkl */
    size_t len;
    unsigned char *z = (unsigned char *)sv_read_file_bytes(path, &len);
    size_t cd = len - 22 - (46 + 16), local = 30 + 16;
    unsigned char *out = malloc(len + 46 + 14);
    memcpy(out, z, cd + 46 + 16);
    unsigned char *e = out + cd + 46 + 16;
    memcpy(e, z + cd, 46);
    e[20] = e[21] = e[22] = e[23] = e[24] = e[25] = e[26] = e[27] = 0;
    e[28] = 14, e[29] = 0;
    e[42] = (unsigned char)local, e[43] = e[44] = e[45] = 0;
    memcpy(e + 46, "archive/data/0", 14);
    memcpy(e + 60, z + len - 22, 22);
    e[60 + 8] = e[60 + 10] = 2;
    unsigned cd_size = 2 * 46 + 16 + 14;
    memcpy(e + 60 + 12, &cd_size, 4);
    write_bytes(path, out, len + 46 + 14);
    sv_weights *w;
    sv_error err = {{0}};
    assert_int_equal(sv_weights_open(&w, dir, &err), SV_FAIL);
    printf("# overlap: %s\n", err.msg);
    assert_non_null(strstr(err.msg, "overlap"));
    free(z), free(out);
}

static void test_tokenize_double_dash(void **state) {
    (void)state;
    char args[1024];
    snprintf(args, sizeof args, "tokenize -m %s -- --help", model_dir());
    expect_success(args);
    assert_string_equal(cli_out, "1 1192 8477\n"); /* sp.encode("--help") = ▁-- help */
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sentencepiece_golden), cmocka_unit_test(test_chunked_prompt),
        cmocka_unit_test(test_golden_cases),         cmocka_unit_test(test_safetensors_shards),
        cmocka_unit_test(test_tower_directory),      cmocka_unit_test(test_refused_options),
        cmocka_unit_test(test_calibrate_and_shortv), cmocka_unit_test(test_hostile_bin),
        cmocka_unit_test(test_broken_archives),      cmocka_unit_test(test_overlapping_entries),
        cmocka_unit_test(test_tokenize_double_dash),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
