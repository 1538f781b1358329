/* Tests of runtime/tokenizer.
 *
 * The reference is the Hugging Face tokenizers library (Rust core): the golden
 * ids on tiny-a come from tokenizer_golden.json, and the expected ids and
 * texts of the small hand-written tokenizer.json files below were produced by
 * the same library (its Node binding, encode without special tokens / decode
 * skipping them) on exactly these files. */
#include <cjson/cJSON.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "testutil.h"
#include "tokenizer.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof *(a))

static sv_tokenizer *load_ok(const char *dir) {
    sv_tokenizer *t = NULL;
    sv_error err;
    if (sv_tokenizer_load(&t, dir, &err)) fail_msg("%s", err.msg);
    return t;
}

static void print_ids(const char *label, const int *ids, size_t n) {
    printf("#   %s (%zu):", label, n);
    for (size_t i = 0; i < n && i < 40; i++) printf(" %d", ids[i]);
    printf("%s\n", n > 40 ? " ..." : "");
}

/* Index of the first difference, or -1 when equal. */
static long first_mismatch(const int *got, size_t n_got, const int *want, size_t n_want) {
    for (size_t i = 0; i < n_got || i < n_want; i++)
        if (i >= n_got || i >= n_want || got[i] != want[i]) return (long)i;
    return -1;
}

static void expect_ids(const sv_tokenizer *t, const char *text, int add_bos, const int *want,
                       size_t n_want) {
    int *ids;
    size_t n;
    sv_error err;
    if (sv_tokenizer_encode(t, text, add_bos, &ids, &n, &err))
        fail_msg("encode \"%s\": %s", text, err.msg);
    long at = first_mismatch(ids, n, want, n_want);
    if (at >= 0) {
        printf("# encode \"%s\" (add_bos %d): first mismatch at index %ld\n", text, add_bos, at);
        print_ids("got ", ids, n);
        print_ids("want", want, n_want);
    }
    free(ids);
    assert_int_equal(at, -1);
}

#define EXPECT_IDS(t, text, add_bos, ...)                                                   \
    do {                                                                                    \
        const int want_[] = {__VA_ARGS__};                                                  \
        expect_ids(t, text, add_bos, want_, ARRAY_LEN(want_));                              \
    } while (0)

static void expect_decode(const sv_tokenizer *t, const int *ids, size_t n, const char *want) {
    char *text;
    sv_error err;
    if (sv_tokenizer_decode(t, ids, n, &text, &err)) fail_msg("decode: %s", err.msg);
    if (strcmp(text, want) != 0) printf("# decode: got \"%s\", want \"%s\"\n", text, want);
    assert_string_equal(text, want);
    free(text);
}

#define EXPECT_DECODE(t, want, ...)                                                         \
    do {                                                                                    \
        const int ids_[] = {__VA_ARGS__};                                                   \
        expect_decode(t, ids_, ARRAY_LEN(ids_), want);                                      \
    } while (0)

/* ---- tiny-a (the LLaMA-2 vocabulary) against the golden ids ---- */

static cJSON *golden_strings(cJSON **root) {
    FILE *f = fopen(golden_path("tokenizer_golden.json"), "rb");
    assert_non_null(f);
    static char buf[1 << 20];
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    *root = cJSON_Parse(buf);
    assert_non_null(*root);
    cJSON *strings = cJSON_GetObjectItem(*root, "strings");
    assert_true(cJSON_IsArray(strings));
    return strings;
}

/* The ids of a golden entry, into ids[cap]; returns how many. */
static size_t golden_ids(const cJSON *entry, int *ids, size_t cap) {
    const cJSON *id;
    size_t n = 0;
    cJSON_ArrayForEach(id, cJSON_GetObjectItem(entry, "ids")) {
        if (n == cap) fail_msg("golden entry has more than %zu ids", cap);
        ids[n++] = id->valueint;
    }
    return n;
}

static void golden_ids_match(void **state) {
    (void)state;
    sv_tokenizer *t = load_ok(golden_path("models/tiny-a"));
    cJSON *root, *s, *strings = golden_strings(&root);
    int total = 0, bad = 0;
    cJSON_ArrayForEach(s, strings) {
        const char *text = cJSON_GetObjectItem(s, "text")->valuestring;
        int want[512], *got;
        size_t n_want = golden_ids(s, want, ARRAY_LEN(want)), n_got;
        sv_error err;
        if (sv_tokenizer_encode(t, text, -1, &got, &n_got, &err)) fail_msg("%s", err.msg);
        long at = first_mismatch(got, n_got, want, n_want);
        if (at >= 0 && bad++ == 0) {
            printf("# golden \"%s\": first mismatch at index %ld\n", text, at);
            print_ids("got ", got, n_got);
            print_ids("want", want, n_want);
        }
        free(got);
        total++;
    }
    printf("# golden: %d of %d strings give the reference ids\n", total - bad, total);
    cJSON_Delete(root);
    sv_tokenizer_free(t);
    assert_true(total >= 30);
    assert_int_equal(bad, 0);
}

/* Past the leading BOS: <unk>, <s>, </s> or an added token of tiny-a. */
static bool has_special_id(const int *ids, size_t n) {
    for (size_t i = 1; i < n; i++)
        if (ids[i] <= 2 || ids[i] >= 32000) return true;
    return false;
}

/* Decoding gives back the text, except where HF's decoder does not: skipped
 * special tokens and a literal "▁" (which decodes as a space). */
static void golden_decode_round_trip(void **state) {
    (void)state;
    sv_tokenizer *t = load_ok(golden_path("models/tiny-a"));
    cJSON *root, *s, *strings = golden_strings(&root);
    int checked = 0;
    cJSON_ArrayForEach(s, strings) {
        const char *text = cJSON_GetObjectItem(s, "text")->valuestring;
        int ids[512];
        size_t n = golden_ids(s, ids, ARRAY_LEN(ids));
        if (has_special_id(ids, n) || strstr(text, "▁")) continue;
        expect_decode(t, ids, n, text);
        checked++;
    }
    printf("# decode round trip: %d golden strings\n", checked);
    cJSON_Delete(root);
    EXPECT_DECODE(t, "text more text", 1, 1426, 2, 901, 1426);
    EXPECT_DECODE(t, " and ", 1, 0, 29871, 322, 29871, 32001);
    EXPECT_DECODE(t, "USER:  \nWhat", 1, 3148, 1001, 29901, 29871, 32000, 29871, 13, 5618);
    EXPECT_DECODE(t, "  literal U+2581", 1, 259, 16333, 501, 29974, 29906, 29945, 29947, 29896);
    EXPECT_DECODE(t, "", 1);
    EXPECT_DECODE(t, "");
    int nul_ids[] = {1, 3, 319, 3}; /* <s> <0x00> ▁A <0x00> */
    char *text;
    size_t len;
    sv_error err;
    assert_int_equal(sv_tokenizer_decode_bytes(t, nul_ids, 4, &text, &len, &err), SV_OK);
    assert_int_equal(len, 4);
    assert_memory_equal(text, "\0 A\0", 5);
    free(text);
    sv_tokenizer_free(t);
}

static void bos_override_and_lookups(void **state) {
    (void)state;
    sv_tokenizer *t = load_ok(golden_path("models/tiny-a"));
    EXPECT_IDS(t, "Hello world!", -1, 1, 15043, 3186, 29991);
    EXPECT_IDS(t, "Hello world!", 1, 1, 15043, 3186, 29991);
    EXPECT_IDS(t, "Hello world!", 0, 15043, 3186, 29991);
    int *ids;
    size_t n;
    sv_error err;
    assert_int_equal(sv_tokenizer_encode(t, "", 0, &ids, &n, &err), SV_OK);
    assert_int_equal(n, 0);
    free(ids);
    assert_int_equal(sv_tokenizer_bos(t), 1);
    assert_int_equal(sv_tokenizer_eos(t), 2);
    assert_int_equal(sv_tokenizer_size(t), 32002);
    assert_int_equal(sv_tokenizer_id(t, "<image>"), 32000);
    assert_int_equal(sv_tokenizer_id(t, "▁the"), 278);
    assert_int_equal(sv_tokenizer_id(t, "no such piece"), -1);
    sv_tokenizer_free(t);
}

/* ---- small hand-written tokenizers ---- */

/* Parts of a tokenizer.json, written with ' for " to stay readable; NULL
 * takes the default. The vocab has byte pieces for é (C3 A9) and \n only. */
typedef struct {
    const char *model_type, *model_flags, *vocab, *merges, *added, *normalizer, *pre_tokenizer;
} tok_spec;

static const tok_spec DEFAULT_SPEC = {
    .model_type = "BPE",
    .model_flags = "'unk_token':'<unk>','fuse_unk':true,'byte_fallback':true",
    .vocab = "{'<unk>':0,'<s>':1,'</s>':2,'▁':3,'a':4,'b':5,'c':6,'ab':7,'bc':8,'abc':9,"
             "'▁a':10,'▁ab':11,'aa':12,'<0xC3>':13,'<0xA9>':14,'<0x0A>':15,'▁▁':16}",
    .merges = "[]",
    .added = "[{'id':0,'content':'<unk>','special':true},{'id':1,'content':'<s>','special':true},"
             "{'id':2,'content':'</s>','special':true}]",
    .normalizer = "{'type':'Sequence','normalizers':[{'type':'Prepend','prepend':'▁'},"
                  "{'type':'Replace','pattern':{'String':' '},'content':'▁'}]}",
    .pre_tokenizer = "null",
};

static void write_json(const char *dir, const char *name, const char *text) {
    char path[1100];
    static char json[8192];
    snprintf(json, sizeof json, "%s", text);
    for (char *c = json; *c; c++)
        if (*c == '\'') *c = '"';
    snprintf(path, sizeof path, "%s/%s", dir, name);
    write_text(path, json);
}

/* Writes tokenizer.json (and tokenizer_config.json unless config is NULL)
 * into a fresh scratch folder named `name`; returns the folder. */
static const char *write_tokenizer(const char *name, tok_spec s, const char *config) {
    static char dir[1024], json[8192];
    const tok_spec d = DEFAULT_SPEC;
    snprintf(dir, sizeof dir, "%s", scratch_dir(name));
    snprintf(json, sizeof json,
             "{'version':'1.0','added_tokens':%s,'normalizer':%s,'pre_tokenizer':%s,"
             "'model':{'type':'%s',%s,'vocab':%s,'merges':%s}}",
             s.added ? s.added : d.added, s.normalizer ? s.normalizer : d.normalizer,
             s.pre_tokenizer ? s.pre_tokenizer : d.pre_tokenizer,
             s.model_type ? s.model_type : d.model_type,
             s.model_flags ? s.model_flags : d.model_flags, s.vocab ? s.vocab : d.vocab,
             s.merges ? s.merges : d.merges);
    write_json(dir, "tokenizer.json", json);
    if (config) write_json(dir, "tokenizer_config.json", config);
    return dir;
}

static sv_tokenizer *small_tokenizer(const char *name, tok_spec spec) {
    return load_ok(write_tokenizer(name, spec, NULL));
}

/* "abc" becomes "▁abc"; which pairs merge depends only on the merge ranks. */
static void merges_follow_rank(void **state) {
    (void)state;
    const char *orders[] = {
        "['b c','a b','▁ a','▁a b']",
        "['a b','b c','▁ a','▁a b']",
        "['▁ a','▁a b','b c','a b']",
        "[['▁','a'],['▁a','b'],['b','c'],['a','b']]", /* the newer pair form */
    };
    const int want[][3] = {{10, 8}, {3, 7, 6}, {11, 6}, {11, 6}}; /* ▁a bc, ▁ ab c, ▁ab c */
    for (size_t i = 0; i < ARRAY_LEN(orders); i++) {
        sv_tokenizer *t = small_tokenizer("tok_merges", (tok_spec){.merges = orders[i]});
        expect_ids(t, "abc", 0, want[i], want[i][2] ? 3 : 2);
        sv_tokenizer_free(t);
    }
    /* Equal ranks merge leftmost first: ▁ aa a, not ▁ a aa. */
    sv_tokenizer *t = small_tokenizer("tok_merges", (tok_spec){.merges = "['a a']"});
    EXPECT_IDS(t, "aaa", 0, 3, 12, 4);
    sv_tokenizer_free(t);
}

static void byte_fallback_and_unk(void **state) {
    (void)state;
    sv_tokenizer *t = small_tokenizer("tok_small", (tok_spec){0});
    EXPECT_IDS(t, "é", 0, 3, 13, 14);       /* <0xC3> <0xA9> */
    EXPECT_IDS(t, "a\n", 0, 3, 4, 15);      /* <0x0A> */
    EXPECT_IDS(t, "üüa", 0, 3, 0, 4);       /* no <0xBC>: unk, fused */
    EXPECT_IDS(t, "üé", 0, 3, 13, 14, 0);   /* HF puts a pending unk after later bytes */
    EXPECT_IDS(t, "", 1, 1);
    EXPECT_IDS(t, " ", 1, 1, 3, 3);
    sv_tokenizer_free(t);
    t = small_tokenizer("tok_nofuse", (tok_spec){.model_flags = "'unk_token':'<unk>'"});
    EXPECT_IDS(t, "üüa", 0, 3, 0, 0, 4);
    EXPECT_IDS(t, "éa", 0, 3, 0, 4);        /* byte_fallback off */
    sv_tokenizer_free(t);
}

static void decode_pieces_bytes_and_specials(void **state) {
    (void)state;
    sv_tokenizer *t = small_tokenizer("tok_small", (tok_spec){0});
    EXPECT_DECODE(t, "é", 3, 13, 14);
    EXPECT_DECODE(t, "a éb", 1, 10, 3, 13, 2, 14, 5); /* the byte run goes on across </s> */
    EXPECT_DECODE(t, "\uFFFD", 13);                   /* a lone lead byte */
    EXPECT_DECODE(t, "\uFFFD\uFFFD\uFFFDa", 13, 13, 14, 4); /* every byte of a bad run */
    EXPECT_DECODE(t, " ab", 16, 7);                   /* only one leading space is stripped */
    EXPECT_DECODE(t, "\n", 15);
    int bad[] = {4, 17};
    char *text;
    sv_error err;
    assert_int_equal(sv_tokenizer_decode(t, bad, 2, &text, &err), SV_FAIL);
    assert_null(text);
    assert_non_null(strstr(err.msg, "17"));
    sv_tokenizer_free(t);
}

/* lstrip/rstrip take the spaces beside a token, single_word needs it to
 * stand alone, normalized tokens are found in normalised text. */
static void added_token_flags(void **state) {
    (void)state;
    const char *added = "[{'id':1,'content':'<s>','special':true},"
                        "{'id':2,'content':'</s>','special':true},"
                        "{'id':17,'content':'<x>','lstrip':true,'special':true},"
                        "{'id':18,'content':'<y>','rstrip':true,'special':true},"
                        "{'id':19,'content':'<x>>','special':false},"
                        "{'id':20,'content':'cab','normalized':true,'special':false},"
                        "{'id':21,'content':'bb','single_word':true,'special':false}]";
    sv_tokenizer *t = small_tokenizer("tok_added", (tok_spec){.added = added, .merges = "['▁ a']"});
    EXPECT_IDS(t, "a  <x> a", 0, 10, 17, 3, 10);
    EXPECT_IDS(t, "a <y>  a", 0, 10, 3, 18, 10);
    EXPECT_IDS(t, "a <x>> a", 0, 10, 3, 19, 3, 10); /* the longest token wins */
    EXPECT_IDS(t, "a cab", 0, 10, 20);              /* "▁cab" in "▁a▁cab" */
    EXPECT_IDS(t, "acab", 0, 10, 6, 4, 5);
    EXPECT_IDS(t, "a bb a", 0, 10, 3, 21, 3, 10);
    EXPECT_IDS(t, "abb", 0, 10, 5, 5);
    EXPECT_IDS(t, "a</s>a", 0, 10, 2, 10);
    EXPECT_IDS(t, "a\u00A0 <x>a", 0, 10, 17, 10);   /* lstrip takes Unicode spaces */
    EXPECT_IDS(t, "a<y>\u3000 a", 0, 10, 18, 10);   /* and so does rstrip */
    assert_int_equal(sv_tokenizer_size(t), 22);
    assert_int_equal(sv_tokenizer_id(t, "<x>>"), 19);
    EXPECT_DECODE(t, "a<x>> cab", 10, 17, 19, 20); /* as in HF, 20 decodes as "▁cab" */
    sv_tokenizer_free(t);
}

/* Older LLaMA files: no normaliser, a Metaspace pre-tokenizer instead. */
static void metaspace_pre_tokenizer(void **state) {
    (void)state;
    tok_spec spec = {.normalizer = "null", .merges = "['▁ a','▁a b','a b']"};
    spec.pre_tokenizer = "{'type':'Metaspace','replacement':'▁','prepend_scheme':'first','split':false}";
    sv_tokenizer *t = small_tokenizer("tok_meta", spec);
    EXPECT_IDS(t, "ab ab", 0, 11, 11);
    EXPECT_IDS(t, "</s>ab ab", 0, 2, 7, 11); /* "first": no ▁ after a token */
    EXPECT_IDS(t, " ab", 0, 11);
    sv_tokenizer_free(t);
    spec.pre_tokenizer = "{'type':'Metaspace','replacement':'▁','add_prefix_space':true}";
    t = small_tokenizer("tok_meta", spec);
    EXPECT_IDS(t, "</s>ab  ab", 0, 2, 11, 3, 11);
    sv_tokenizer_free(t);
}

static void config_flags(void **state) {
    (void)state;
    sv_tokenizer *t =
        load_ok(write_tokenizer("tok_nobos", (tok_spec){0}, "{'add_bos_token':false}"));
    EXPECT_IDS(t, "a", -1, 3, 4);
    EXPECT_IDS(t, "a", 1, 1, 3, 4);
    sv_tokenizer_free(t);
    const char *eos = "{'add_eos_token':true,'bos_token':{'content':'<s>'},'eos_token':'</s>'}";
    t = load_ok(write_tokenizer("tok_eos", (tok_spec){0}, eos));
    EXPECT_IDS(t, "a", -1, 1, 3, 4, 2);
    EXPECT_IDS(t, "a", 0, 3, 4, 2);
    sv_tokenizer_free(t);
}

/* ---- bad input: a clear error naming the file, nothing allocated ---- */

static void expect_load_error(const char *dir, const char *file, const char *what) {
    sv_tokenizer *t = (sv_tokenizer *)&t;
    sv_error err = {{0}};
    int rc = sv_tokenizer_load(&t, dir, &err);
    printf("# %s\n", err.msg);
    assert_int_equal(rc, SV_FAIL);
    assert_null(t);
    if (!strstr(err.msg, file) || !strstr(err.msg, what))
        fail_msg("error \"%s\" should name %s and say \"%s\"", err.msg, file, what);
}

static void bad_tokenizer_files(void **state) {
    (void)state;
    expect_load_error("build/tmp/no_such_dir", "tokenizer.json", "cannot open");
    const char *dir = scratch_dir("tok_bad");
    write_json(dir, "tokenizer.json", "{'model': {'type': 'BPE', ");
    expect_load_error(dir, "tokenizer.json", "not valid JSON");
    static const struct {
        tok_spec spec;
        const char *what;
    } cases[] = {
        {{.model_type = "Unigram"}, "unsupported tokenizer model type 'Unigram' (expected BPE)"},
        {{.vocab = "['a', 'b']"}, "model.vocab is not an object"},
        {{.vocab = "{'<unk>':0,'a':2}"}, "model.vocab[\"a\"]: id is not an integer in [0, 2)"},
        {{.vocab = "{'<unk>':0,'a':0.5}"}, "id is not an integer"},
        {{.vocab = "{'<unk>':0,'a':0}"}, "id 0 given to both"},
        {{.vocab = "{'<unk>':0,'a':1,'a':2}"}, "piece \"a\" appears twice"},
        {{.merges = "['a z']"}, "\"z\" is not in model.vocab"},
        {{.merges = "['a c']"}, "\"ac\" is not in model.vocab"},
        {{.merges = "['abc']"}, "model.merges[0] is not two pieces"},
        {{.merges = "{}"}, "model.merges is not an array"},
        {{.normalizer = "{'type':'NFKC'}"}, "unsupported normalizer 'NFKC'"},
        {{.pre_tokenizer = "{'type':'ByteLevel'}"}, "unsupported pre_tokenizer 'ByteLevel'"},
        {{.added = "[{'id':99,'content':'<x>'}]"}, "added_tokens[0].id of \"<x>\" is not 17"},
        {{.added = "[{'id':17,'content':'ab'}]"}, "added_tokens[0].id of \"ab\" is not 7"},
        {{.added = "[{'id':17,'content':''}]"}, "added_tokens[0].content is missing or empty"},
        /* found by make fuzz: text split at a partial character looped for ever */
        {{.added = "[{'id':17,'content':'\xE2\x96'}]"}, "added_tokens[0].content is not valid UTF-8"},
        {{.model_flags = "'fuse_unk':'yes'"}, "model.fuse_unk is not true/false"},
        {{.model_flags = "'unk_token':'<nope>'"}, "unk_token \"<nope>\" is not in model.vocab"},
    };
    for (size_t i = 0; i < ARRAY_LEN(cases); i++)
        expect_load_error(write_tokenizer("tok_bad", cases[i].spec, NULL), "tokenizer.json",
                          cases[i].what);
    static const char *const configs[][2] = {
        {"{'add_bos_token': tru", "not valid JSON"},
        {"{'add_bos_token': 'yes'}", "add_bos_token is not true/false"},
        {"{'bos_token': '<begin>'}", "\"<begin>\" is not in the vocabulary"},
        {"[]", "not a JSON object"},
    };
    for (size_t i = 0; i < ARRAY_LEN(configs); i++)
        expect_load_error(write_tokenizer("tok_bad", (tok_spec){0}, configs[i][0]),
                          "tokenizer_config.json", configs[i][1]);
}

static void bad_text(void **state) {
    (void)state;
    sv_tokenizer *t = small_tokenizer("tok_small", (tok_spec){0});
    int *ids = (int *)&ids;
    size_t n = 7;
    sv_error err;
    assert_int_equal(sv_tokenizer_encode(t, "ok \xC3(", 1, &ids, &n, &err), SV_FAIL);
    assert_null(ids);
    assert_int_equal(n, 0);
    assert_non_null(strstr(err.msg, "not valid UTF-8 (at byte 3)"));
    const char surrogate[] = "\xED\xA0\x80";
    assert_int_equal(sv_tokenizer_encode(t, surrogate, 1, &ids, &n, &err), SV_FAIL);
    sv_tokenizer_free(t);
}

/* ---- speed: merging must stay near-linear in the word length ---- */

static double seconds_to_encode(const sv_tokenizer *t, const char *text, size_t *n_ids) {
    struct timespec a, b;
    int *ids;
    sv_error err;
    clock_gettime(CLOCK_MONOTONIC, &a);
    if (sv_tokenizer_encode(t, text, 1, &ids, n_ids, &err)) fail_msg("%s", err.msg);
    clock_gettime(CLOCK_MONOTONIC, &b);
    char *back;
    if (sv_tokenizer_decode(t, ids, *n_ids, &back, &err)) fail_msg("%s", err.msg);
    assert_string_equal(back, text); /* long texts round-trip too */
    free(back);
    free(ids);
    return (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
}

static void long_text_is_fast(void **state) {
    (void)state;
    sv_tokenizer *t = load_ok(golden_path("models/tiny-a"));
    enum { LEN = 20000 };
    static char prose[LEN + 1], word[LEN + 1], same[LEN + 1];
    static const char sentence[] = "The quick brown fox jumps over the lazy dog; été 日本 42!\n";
    while (strlen(prose) + strlen(sentence) <= LEN) strcat(prose, sentence);
    for (size_t i = 0; i < LEN; i++) {
        word[i] = (char)('a' + (i * 7 + i / 26) % 26); /* one 20k-letter word */
        same[i] = 'A';
    }
    const char *texts[] = {prose, word, same};
    const char *names[] = {"prose", "one long word", "one repeated letter"};
    for (size_t i = 0; i < ARRAY_LEN(texts); i++) {
        size_t n;
        double s = seconds_to_encode(t, texts[i], &n);
        printf("# %s: %zu bytes -> %zu ids in %.3f s\n", names[i], strlen(texts[i]), n, s);
        assert_true(s < 2.0); /* a quadratic merge would take minutes */
    }
    sv_tokenizer_free(t);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(golden_ids_match),
        cmocka_unit_test(golden_decode_round_trip),
        cmocka_unit_test(bos_override_and_lookups),
        cmocka_unit_test(merges_follow_rank),
        cmocka_unit_test(byte_fallback_and_unk),
        cmocka_unit_test(decode_pieces_bytes_and_specials),
        cmocka_unit_test(added_token_flags),
        cmocka_unit_test(metaspace_pre_tokenizer),
        cmocka_unit_test(config_flags),
        cmocka_unit_test(bad_tokenizer_files),
        cmocka_unit_test(bad_text),
        cmocka_unit_test(long_text_is_fast),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
