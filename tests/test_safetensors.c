/* dtype conversions, safetensors reading/validation/writing, and the tiny-model
 * generator (checked against the reference checkpoint's sha256). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testutil.h"

#include "dtype.h"
#include "safetensors.h"

#define TINY_A_SHA256 "8aba236161f6d2ba4d44ef6fcf02e22e7d6f2b201e76cd5ae4e405cf2f4be68e"

static uint32_t bits_of(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    return x;
}

static float float_of(uint32_t x) {
    float f;
    memcpy(&f, &x, 4);
    return f;
}

/* ------------------------------------------------------------------ conversions */

static int f16_is_nan(uint16_t h) { return (h & 0x7c00) == 0x7c00 && (h & 0x03ff); }
static int bf16_is_nan(uint16_t h) { return (h & 0x7f80) == 0x7f80 && (h & 0x007f); }

static void test_f16_round_trip_all_patterns(void **state) {
    (void)state;
    for (uint32_t h = 0; h <= 0xffff; h++) {
        float f = sv_f16_to_f32((uint16_t)h);
        uint16_t back = sv_f32_to_f16(f);
        if (f16_is_nan((uint16_t)h)) {
            if (!isnan(f) || !f16_is_nan(back)) fail_msg("f16 NaN %04x -> %04x", h, back);
        } else if (back != h) {
            fail_msg("f16 %04x -> %g -> %04x", h, (double)f, back);
        }
    }
    assert_true(sv_f16_to_f32(0x0001) == 0x1p-24f); /* smallest subnormal */
    assert_true(sv_f16_to_f32(0x03ff) == 0x3ffp-24f);
    assert_true(sv_f16_to_f32(0x7bff) == 65504.0f);
    assert_true(isinf(sv_f16_to_f32(0xfc00)) && sv_f16_to_f32(0xfc00) < 0);
}

/* Between every pair of neighbouring f16 values: the midpoint goes to the even
 * one, anything just off the midpoint to the nearer one. */
static void test_f16_rounding_ties_and_edges(void **state) {
    (void)state;
    for (uint16_t h = 0; h < 0x7bff; h++) {
        for (int neg = 0; neg < 2; neg++) {
            uint16_t s = neg ? 0x8000 : 0, lo = (uint16_t)(s | h), hi = (uint16_t)(s | (h + 1));
            float a = sv_f16_to_f32(lo), b = sv_f16_to_f32(hi), mid = (a + b) / 2; /* exact */
            uint16_t even = (h & 1) ? hi : lo;
            if (sv_f32_to_f16(mid) != even) fail_msg("tie %g", (double)mid);
            if (sv_f32_to_f16(nextafterf(mid, a)) != lo) fail_msg("below tie %g", (double)mid);
            if (sv_f32_to_f16(nextafterf(mid, b)) != hi) fail_msg("above tie %g", (double)mid);
        }
    }
    assert_int_equal(sv_f32_to_f16(65519.99f), 0x7bff);
    assert_int_equal(sv_f32_to_f16(65520.0f), 0x7c00); /* tie with 65536 rounds to even = inf */
    assert_int_equal(sv_f32_to_f16(1e10f), 0x7c00);
    assert_int_equal(sv_f32_to_f16(-INFINITY), 0xfc00);
    assert_int_equal(sv_f32_to_f16(0x1p-25f), 0x0000); /* tie between 0 and 2^-24 */
    assert_int_equal(sv_f32_to_f16(nextafterf(0x1p-25f, 1)), 0x0001);
    assert_int_equal(sv_f32_to_f16(0x1p-130f), 0x0000); /* f32 subnormal */
    assert_int_equal(sv_f32_to_f16(-0.0f), 0x8000);
    assert_int_equal(sv_f32_to_f16(0x1.ffcp-15f), 0x0400); /* rounds up into the normals */
    assert_true(f16_is_nan(sv_f32_to_f16(NAN)));
    assert_true(f16_is_nan(sv_f32_to_f16(float_of(0x7f800001)))); /* payload only in low bits */
}

static void test_bf16_conversions(void **state) {
    (void)state;
    for (uint32_t h = 0; h <= 0xffff; h++) {
        float f = sv_bf16_to_f32((uint16_t)h);
        uint16_t back = sv_f32_to_bf16(f);
        if (bf16_is_nan((uint16_t)h) ? !isnan(f) || !bf16_is_nan(back) : back != h)
            fail_msg("bf16 %04x -> %04x", h, back);
        if ((h & 0x7fff) < 0x7f7f) { /* ties and near-ties up to the largest finite value */
            float a = f, b = sv_bf16_to_f32((uint16_t)(h + 1)), mid = a + (b - a) / 2; /* exact */
            uint16_t even = (h & 1) ? (uint16_t)(h + 1) : (uint16_t)h;
            if (sv_f32_to_bf16(mid) != even) fail_msg("bf16 tie above %04x", h);
            if (sv_f32_to_bf16(nextafterf(mid, b)) != (uint16_t)(h + 1))
                fail_msg("bf16 above tie %04x", h);
        }
    }
    assert_int_equal(sv_f32_to_bf16(1.0f + 0x1p-8f), 0x3f80);       /* tie -> even */
    assert_int_equal(sv_f32_to_bf16(1.0f + 3 * 0x1p-8f), 0x3f82);   /* tie -> even (up) */
    assert_int_equal(sv_f32_to_bf16(float_of(0x7f7fffff)), 0x7f80); /* overflow -> inf */
    assert_int_equal(sv_f32_to_bf16(-INFINITY), 0xff80);
    assert_true(bf16_is_nan(sv_f32_to_bf16(float_of(0x7f800001)))); /* must not become inf */
    assert_int_equal(sv_f32_to_bf16(float_of(0x00010000)), 0x0001); /* subnormal kept */
}

/* The bulk converters must agree with the scalar ones, from and to unaligned
 * buffers and for lengths that are not a multiple of the block size. */
static void test_bulk_conversions_unaligned(void **state) {
    (void)state;
    enum { N = 65536 + 7 };
    unsigned char *raw = malloc(4 * N + 1), *out = malloc(2 * N + 1);
    float *f = malloc(N * sizeof *f), *g = malloc(N * sizeof *g);
    for (sv_dtype t = SV_DTYPE_F16; t <= SV_DTYPE_BF16; t++) {
        for (size_t i = 0; i < N; i++) {
            uint16_t h = (uint16_t)i;
            memcpy(raw + 1 + 2 * i, &h, 2);
        }
        sv_to_f32(t, raw + 1, f, N);
        for (size_t i = 0; i < N; i++) {
            uint16_t h = (uint16_t)i;
            float want = t == SV_DTYPE_F16 ? sv_f16_to_f32(h) : sv_bf16_to_f32(h);
            if (bits_of(f[i]) != bits_of(want)) fail_msg("%s element %zu", sv_dtype_name(t), i);
        }
        sv_from_f32(t, f, out + 1, N);
        for (size_t i = 0; i < N; i++) {
            uint16_t h;
            memcpy(&h, out + 1 + 2 * i, 2);
            uint16_t want = t == SV_DTYPE_F16 ? sv_f32_to_f16(f[i]) : sv_f32_to_bf16(f[i]);
            if (h != want) fail_msg("%s store %zu", sv_dtype_name(t), i);
        }
    }
    memcpy(raw + 1, f, N * sizeof *f);
    sv_to_f32(SV_DTYPE_F32, raw + 1, g, N);
    assert_memory_equal(g, f, N * sizeof *f);
    assert_int_equal(sv_dtype_size(SV_DTYPE_BF16), 2);
    sv_dtype t;
    assert_int_equal(sv_dtype_parse("BF16", &t), 0);
    assert_int_equal(t, SV_DTYPE_BF16);
    assert_int_not_equal(sv_dtype_parse("bf16", &t), 0);
    free(raw), free(out), free(f), free(g);
}

/* ------------------------------------------------------------------ write + open */

static const float values[] = {-1.0f, -0.75f, -0.5f, 0.25f, 0.5f, 1.5f, 2.0f, 3.25f,
                               -2.5f, 0.125f, 7.0f, -0.0625f, 1.0f, 0.375f, 6.5f};

static void make_sources(sv_tensor_src *t, sv_dtype dtype) {
    t[0] = (sv_tensor_src){"w", dtype, 2, {3, 5}, values};
    t[1] = (sv_tensor_src){"b", dtype, 1, {7}, values + 3};
    t[2] = (sv_tensor_src){"s", dtype, 0, {0}, values + 10}; /* scalar */
    t[3] = (sv_tensor_src){"z", dtype, 2, {0, 4}, NULL};     /* empty */
}

static void test_write_then_open_every_dtype(void **state) {
    (void)state;
    char dir[512], path[600];
    snprintf(dir, sizeof dir, "%s", scratch_dir("st_roundtrip"));
    for (sv_dtype dtype = SV_DTYPE_F32; dtype <= SV_DTYPE_BF16; dtype++) {
        sv_tensor_src src[4];
        sv_error err;
        make_sources(src, dtype);
        snprintf(path, sizeof path, "%s/%s.safetensors", dir, sv_dtype_name(dtype));
        if (sv_safetensors_write(path, src, 4, &err)) fail_msg("%s", err.msg);
        char tmp[700];
        snprintf(tmp, sizeof tmp, "%s.tmp", path);
        assert_int_not_equal(access(tmp, F_OK), 0);
        sv_weights *w;
        if (sv_weights_open_file(&w, path, &err)) fail_msg("%s", err.msg);
        assert_int_equal(sv_weights_count(w), 4);
        static const char *const sorted[] = {"b", "s", "w", "z"};
        for (size_t i = 0; i < 4; i++) assert_string_equal(sv_weights_at(w, i)->name, sorted[i]);
        assert_null(sv_weights_at(w, 4));
        for (size_t i = 0; i < 4; i++) {
            const sv_tensor *t = sv_weights_find(w, src[i].name);
            assert_non_null(t);
            assert_int_equal(t->dtype, dtype);
            assert_int_equal(t->ndim, src[i].ndim);
            for (int d = 0; d < t->ndim; d++) assert_int_equal(t->shape[d], src[i].shape[d]);
            assert_string_equal(t->file, path);
            float got[16];
            sv_to_f32(t->dtype, t->data, got, t->count);
            if (t->count) assert_memory_equal(got, src[i].data, t->count * sizeof *got);
            assert_int_equal(t->count, i == 0 ? 15 : i == 1 ? 7 : i == 2 ? 1 : 0);
        }
        assert_null(sv_weights_find(w, "missing"));
        assert_null(sv_weights_find(w, ""));
        sv_weights_close(w);
    }
}

/* The header text and padding follow Python's json.dumps exactly. */
static void test_write_header_layout(void **state) {
    (void)state;
    char path[600];
    snprintf(path, sizeof path, "%s/h.safetensors", scratch_dir("st_header"));
    sv_tensor_src src[2] = {{"b.w", SV_DTYPE_F16, 2, {1, 2}, values},
                            {"a\"q", SV_DTYPE_F32, 1, {1}, values}};
    sv_error err;
    if (sv_safetensors_write(path, src, 2, &err)) fail_msg("%s", err.msg);
    static const char want[] =
        "{\"a\\\"q\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
        "\"b.w\":{\"dtype\":\"F16\",\"shape\":[1,2],\"data_offsets\":[4,8]},"
        "\"__metadata__\":{\"format\":\"pt\"}}";
    unsigned char buf[256] = {0};
    FILE *f = fopen(path, "rb");
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    size_t hlen = buf[0] | (size_t)buf[1] << 8;
    assert_int_equal(hlen % 8, 0);
    assert_true(hlen >= strlen(want) && hlen < strlen(want) + 8);
    assert_memory_equal(buf + 8, want, strlen(want));
    for (size_t i = 8 + strlen(want); i < 8 + hlen; i++) assert_int_equal(buf[i], ' ');
    assert_int_equal(n, 8 + hlen + 8);
}

static void test_write_failures(void **state) {
    (void)state;
    char path[600];
    sv_error err;
    sv_tensor_src dup[2] = {{"a", SV_DTYPE_F32, 1, {1}, values},
                            {"a", SV_DTYPE_F32, 1, {1}, values}};
    snprintf(path, sizeof path, "%s/d.safetensors", scratch_dir("st_write_fail"));
    assert_int_equal(sv_safetensors_write(path, dup, 2, &err), SV_FAIL);
    assert_non_null(strstr(err.msg, "duplicate"));
    assert_int_not_equal(access(path, F_OK), 0);
    snprintf(path, sizeof path, "%s/no/such/dir/x.safetensors", scratch_dir("st_write_fail"));
    assert_int_equal(sv_safetensors_write(path, dup, 1, &err), SV_FAIL);
    assert_non_null(strstr(err.msg, "no/such/dir"));
    sv_tensor_src neg = {"n", SV_DTYPE_F32, 1, {-1}, values};
    assert_int_equal(sv_safetensors_write(path, &neg, 1, &err), SV_FAIL);
    assert_non_null(strstr(err.msg, "negative"));
}

/* ------------------------------------------------------------------ malformed files */

/* A file with an 8-byte length of header_len, the header text, then data_len zeros. */
static void write_crafted(const char *path, uint64_t header_len, const char *header,
                          size_t data_len) {
    size_t text = strlen(header), n = 8 + text + data_len;
    unsigned char *buf = calloc(1, n);
    for (int i = 0; i < 8; i++) buf[i] = (unsigned char)(header_len >> (8 * i));
    memcpy(buf + 8, header, text);
    write_bytes(path, buf, n);
    free(buf);
}

static void expect_failure(const char *what, int rc, sv_weights *w, const sv_error *err,
                           const char *prefix, const char *needle) {
    if (rc != SV_FAIL || w) fail_msg("%s: opened although it should fail", what);
    if (strncmp(err->msg, prefix, strlen(prefix)) != 0 || !strstr(err->msg, needle))
        fail_msg("%s: message \"%s\" should start with %s and mention \"%s\"", what, err->msg,
                 prefix, needle);
    printf("# %-28s %s\n", what, err->msg + strlen(prefix));
}

static void expect_file_fails(const char *what, const char *path, const char *needle) {
    sv_weights *w = NULL;
    sv_error err = {{0}};
    int rc = sv_weights_open_file(&w, path, &err);
    expect_failure(what, rc, w, &err, path, needle);
}


/* CLIP checkpoints carry int64 position_ids: such tensors are validated like any
 * other, left out of the table, and known by name and dtype. */
static void test_integer_tensors_are_skipped(void **state) {
    (void)state;
    path_buf path;
    const char *header = "{\"pos\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,16]},"
                         "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[16,24]}}";
    join(path, scratch_dir("st_int"), "x.safetensors");
    write_crafted(path, strlen(header), header, 24);
    sv_weights *w;
    sv_error err;
    if (sv_weights_open_file(&w, path, &err)) fail_msg("%s", err.msg);
    assert_int_equal(sv_weights_count(w), 1);
    assert_non_null(sv_weights_find(w, "w"));
    assert_null(sv_weights_find(w, "pos"));
    assert_string_equal(sv_weights_unloadable_dtype(w, "pos"), "I64");
    assert_null(sv_weights_unloadable_dtype(w, "w"));
    sv_weights_close(w);
}

#define F32x2(off) "{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":" off "}"

typedef struct bad_header {
    const char *what, *header;
    size_t data_len;
    const char *needle;
} bad_header;

static const bad_header bad_headers[] = {
    {"not JSON", "{\"a\": ", 0, "not valid JSON"},
    {"not an object", "[1, 2]", 0, "not a JSON object"},
    {"data after the JSON", "{} x", 0, "after its JSON value"},
    {"entry not an object", "{\"a\":5}", 0, "tensor 'a': entry is not a JSON object"},
    {"no dtype", "{\"a\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8, "missing \"dtype\""},
    {"dtype not a string", "{\"a\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
     "\"dtype\" is not a string"},
    {"no shape", "{\"a\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8, "missing \"shape\""},
    {"shape not an array", "{\"a\":{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}}", 8,
     "\"shape\" is not an array"},
    {"no data_offsets", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8,
     "missing \"data_offsets\""},
    {"data_offsets not an array", "{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":0}}",
     8, "\"data_offsets\" is not an array"},
    {"data_offsets of 1", "{\"a\":" F32x2("[8]") "}", 8, "2 entries"},
    {"unknown dtype", "{\"a\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8,
     "unknown dtype 'Q7'"},
    {"packed dtype", "{\"a\":{\"dtype\":\"F4\",\"shape\":[2],\"data_offsets\":[0,1]}}", 1,
     "unsupported packed dtype 'F4'"},
    {"I64 of the wrong size", "{\"a\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[0,8]}}",
     8, "do not match its shape and dtype (16 bytes expected)"},
    {"negative dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8,
     "shape[0] is negative"},
    {"non-integer dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,2.5],\"data_offsets\":[0,8]}}",
     8, "shape[1] is not an integer"},
    {"string dim", "{\"a\":{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}}", 8,
     "shape[0] is not a number"},
    {"too many dims",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,2],\"data_offsets\":[0,8]}}", 8,
     "9 dimensions"},
    {"element count overflow",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[1099511627776,1099511627776],\"data_offsets\":[0,8]}}",
     8, "element count overflows"},
    {"byte size overflow",
     "{\"a\":{\"dtype\":\"F32\",\"shape\":[2147483648,2147483648],\"data_offsets\":[0,8]}}", 8,
     "byte size overflows"},
    {"offsets vs size", "{\"a\":" F32x2("[0,4]") "}", 4, "do not match"},
    {"offsets reversed", "{\"a\":" F32x2("[8,0]") "}", 8, "do not match"},
    {"negative offset", "{\"a\":" F32x2("[-8,0]") "}", 8, "data_offsets entry is negative"},
    {"fractional offset", "{\"a\":" F32x2("[0,8.5]") "}", 8, "not an integer"},
    {"overlap", "{\"a\":" F32x2("[0,8]") ",\"b\":" F32x2("[4,12]") "}", 12, "overlap"},
    {"gap", "{\"a\":" F32x2("[0,8]") ",\"b\":" F32x2("[12,20]") "}", 20, "gap"},
    {"not starting at 0", "{\"a\":" F32x2("[4,12]") "}", 12, "does not start at 0"},
    {"trailing bytes", "{\"a\":" F32x2("[0,8]") "}", 12, "trailing bytes"},
    {"data truncated", "{\"a\":" F32x2("[0,8]") "}", 4, "truncated"},
    {"duplicate name", "{\"a\":" F32x2("[0,8]") ",\"a\":" F32x2("[8,16]") "}", 16,
     "duplicate tensor name 'a'"},
    /* the same key twice with the same offsets was reported as an overlap */
    {"duplicate key", "{\"a\":" F32x2("[0,8]") ",\"a\":" F32x2("[0,8]") "}", 8,
     "duplicate tensor name 'a'"},
};

static void test_malformed_headers(void **state) {
    (void)state;
    char path[600];
    snprintf(path, sizeof path, "%s/bad.safetensors", scratch_dir("st_bad"));
    for (size_t i = 0; i < sizeof bad_headers / sizeof *bad_headers; i++) {
        const bad_header *b = &bad_headers[i];
        write_crafted(path, strlen(b->header), b->header, b->data_len);
        expect_file_fails(b->what, path, b->needle);
    }
}

static void test_malformed_lengths(void **state) {
    (void)state;
    char path[600];
    snprintf(path, sizeof path, "%s/bad.safetensors", scratch_dir("st_bad_len"));
    write_bytes(path, "\x10\0\0", 3);
    expect_file_fails("file under 8 bytes", path, "shorter than the 8-byte header length");
    write_crafted(path, 1000, "{}", 0);
    expect_file_fails("header beyond the file", path, "runs past the end");
    write_crafted(path, SV_SAFETENSORS_MAX_HEADER + 1, "{}", 0);
    expect_file_fails("header above 100 MB", path, "limit");
    write_crafted(path, 0, "", 0);
    expect_file_fails("empty header", path, "not valid JSON");
    expect_file_fails("missing file", "build/no/such.safetensors", "cannot open");
}

static void test_metadata_and_empty_files_accepted(void **state) {
    (void)state;
    char path[600];
    snprintf(path, sizeof path, "%s/ok.safetensors", scratch_dir("st_ok"));
    const char *header = "{\"__metadata__\":{\"format\":\"pt\",\"x\":\"y\"},\"a\":" F32x2("[0,8]")
                         "}      ";
    write_crafted(path, strlen(header), header, 8);
    sv_weights *w;
    sv_error err;
    if (sv_weights_open_file(&w, path, &err)) fail_msg("%s", err.msg);
    assert_int_equal(sv_weights_count(w), 1);
    assert_null(sv_weights_find(w, "__metadata__"));
    sv_weights_close(w);
    write_crafted(path, 2, "{}", 0);
    if (sv_weights_open_file(&w, path, &err)) fail_msg("%s", err.msg);
    assert_int_equal(sv_weights_count(w), 0);
    assert_null(sv_weights_find(w, "a"));
    sv_weights_close(w);
}

/* ------------------------------------------------------------------ sharded index */

static void write_shard(const char *dir, const char *file, const char *const *names, size_t n) {
    char path[700];
    sv_tensor_src src[4];
    sv_error err;
    for (size_t i = 0; i < n; i++) src[i] = (sv_tensor_src){names[i], SV_DTYPE_F32, 1, {2}, values};
    snprintf(path, sizeof path, "%s/%s", dir, file);
    if (sv_safetensors_write(path, src, n, &err)) fail_msg("%s", err.msg);
}

static void write_index(const char *dir, const char *text) {
    char path[700];
    snprintf(path, sizeof path, "%s/model.safetensors.index.json", dir);
    write_text(path, text);
}

static void expect_dir_fails(const char *what, const char *dir, const char *needle) {
    sv_weights *w = NULL;
    sv_error err = {{0}};
    int rc = sv_weights_open(&w, dir, &err);
    expect_failure(what, rc, w, &err, dir, needle);
}

#define INDEX(map) "{\"metadata\":{\"total_size\":24},\"weight_map\":{" map "}}"

static void test_sharded_index(void **state) {
    (void)state;
    char dir[512];
    snprintf(dir, sizeof dir, "%s", scratch_dir("st_index"));
    expect_dir_fails("empty directory", dir, "no model.safetensors");
    write_shard(dir, "s1.safetensors", (const char *const[]){"a", "b", "c"}, 3);
    write_shard(dir, "s2.safetensors", (const char *const[]){"d"}, 1);

    /* Three tensors name s1: it must be mapped once, or they would be duplicates. */
    write_index(dir, INDEX("\"c\":\"s1.safetensors\",\"a\":\"s1.safetensors\","
                           "\"d\":\"s2.safetensors\",\"b\":\"s1.safetensors\""));
    sv_weights *w;
    sv_error err;
    if (sv_weights_open(&w, dir, &err)) fail_msg("%s", err.msg);
    assert_int_equal(sv_weights_count(w), 4);
    assert_non_null(strstr(sv_weights_find(w, "d")->file, "s2.safetensors"));
    assert_non_null(strstr(sv_weights_find(w, "a")->file, "s1.safetensors"));
    sv_weights_close(w);

    write_index(dir, "{\"weight_map\": ");
    expect_dir_fails("index not JSON", dir, "not valid JSON");
    write_index(dir, "{\"metadata\":{}}");
    expect_dir_fails("index without weight_map", dir, "weight_map");
    write_index(dir, INDEX("\"a\":\"../s1.safetensors\""));
    expect_dir_fails("shard path with ..", dir, "outside the checkpoint directory");
    write_index(dir, INDEX("\"a\":\"/etc/passwd\""));
    expect_dir_fails("absolute shard path", dir, "outside the checkpoint directory");
    write_index(dir, INDEX("\"a\":7"));
    expect_dir_fails("shard not a string", dir, "not a string");
    write_index(dir, INDEX("\"a\":\"s1.safetensors\",\"e\":\"s3.safetensors\""));
    expect_dir_fails("missing shard", dir, "s3.safetensors is missing");
    write_index(dir, INDEX("\"a\":\"s1.safetensors\",\"x\":\"s1.safetensors\""));
    expect_dir_fails("tensor absent from shard", dir, "'x' is listed in shard s1.safetensors");
    write_index(dir, INDEX("\"a\":\"s2.safetensors\",\"d\":\"s2.safetensors\""));
    expect_dir_fails("tensor in another shard", dir, "absent");
    write_shard(dir, "s3.safetensors", (const char *const[]){"a"}, 1);
    write_index(dir, INDEX("\"a\":\"s1.safetensors\",\"e\":\"s3.safetensors\""));
    expect_dir_fails("same tensor in two shards", dir, "duplicate tensor name 'a'");

    /* A bad shard reports the shard's own path. */
    char bad[700];
    snprintf(bad, sizeof bad, "%s/s3.safetensors", dir);
    write_crafted(bad, 2, "{}", 4);
    write_index(dir, INDEX("\"a\":\"s1.safetensors\",\"e\":\"s3.safetensors\""));
    expect_dir_fails("corrupt shard", dir, "s3.safetensors: tensor data ends");
}

/* ------------------------------------------------------------------ tiny-model */

static void run_tiny_model(const char *args) {
    char cmd[2048], err[4096];
    snprintf(cmd, sizeof cmd, "%s %s", build_path("tiny-model"), args);
    int rc = run_cmd(cmd, NULL, 0, err, sizeof err);
    if (rc != 0) fail_msg("%s: exit %d: %s", cmd, rc, err);
}

static void test_tiny_model_matches_reference(void **state) {
    (void)state;
    char dir[512], cmd[1200], out[4096];
    snprintf(dir, sizeof dir, "%s/tiny-a", scratch_dir("tiny_model"));
    snprintf(cmd, sizeof cmd, "--out %s", dir);
    run_tiny_model(cmd);
    snprintf(cmd, sizeof cmd, "sha256sum %s/model.safetensors", dir);
    assert_int_equal(run_cmd(cmd, out, sizeof out, NULL, 0), 0);
    printf("# %s", out);
    if (strncmp(out, TINY_A_SHA256, 64) != 0) fail_msg("model.safetensors sha256 %.64s", out);
    static const char *const same[] = {"config.json", "preprocessor_config.json",
                                       "processor_config.json", "generation_config.json",
                                       "tokenizer_config.json"};
    for (size_t i = 0; i < sizeof same / sizeof *same; i++) {
        char rel[256];
        snprintf(rel, sizeof rel, "models/tiny-a/%s", same[i]);
        snprintf(cmd, sizeof cmd, "cmp %s %s/%s", golden_path(rel), dir, same[i]);
        if (run_cmd(cmd, out, sizeof out, NULL, 0) != 0) fail_msg("%s differs: %s", same[i], out);
    }
}

/* The newer transformers name of a tensor. */
static void new_name(const char *old, char *out, size_t size) {
    static const char *const map[][2] = {
        {"language_model.model.", "model.language_model."},
        {"language_model.lm_head.", "lm_head."},
        {"vision_tower.", "model.vision_tower."},
        {"multi_modal_projector.", "model.multi_modal_projector."}};
    for (size_t i = 0; i < 4; i++) {
        size_t n = strlen(map[i][0]);
        if (strncmp(old, map[i][0], n) == 0) {
            snprintf(out, size, "%s%s", map[i][1], old + n);
            return;
        }
    }
    fail_msg("unexpected tensor name %s", old);
}

/* Generates ROOT/f32 and ROOT/twin (tiny-model ARGS) and checks that every
 * tensor of the twin, stored as dtype, is its f32 counterpart rounded to dtype.
 * Returns how many values the rounding changed. */
static size_t check_twin(const char *root, const char *args, sv_dtype dtype, int new_names) {
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "--out %s/f32", root);
    run_tiny_model(cmd);
    snprintf(cmd, sizeof cmd, "--out %s/twin %s", root, args);
    run_tiny_model(cmd);
    sv_weights *ref, *twin;
    sv_error err;
    snprintf(cmd, sizeof cmd, "%s/f32", root);
    if (sv_weights_open(&ref, cmd, &err)) fail_msg("%s", err.msg);
    snprintf(cmd, sizeof cmd, "%s/twin", root);
    if (sv_weights_open(&twin, cmd, &err)) fail_msg("%s", err.msg);
    assert_int_equal(sv_weights_count(ref), sv_weights_count(twin));
    size_t changed = 0;
    for (size_t i = 0; i < sv_weights_count(ref); i++) {
        const sv_tensor *a = sv_weights_at(ref, i);
        char name[256];
        if (new_names) new_name(a->name, name, sizeof name);
        else snprintf(name, sizeof name, "%s", a->name);
        const sv_tensor *b = sv_weights_find(twin, name);
        if (!b) fail_msg("%s missing from the %s twin", name, sv_dtype_name(dtype));
        assert_int_equal(a->dtype, SV_DTYPE_F32);
        assert_int_equal(b->dtype, dtype);
        assert_int_equal(a->ndim, b->ndim);
        assert_memory_equal(a->shape, b->shape, (size_t)a->ndim * sizeof *a->shape);
        float *x = malloc(a->count * sizeof *x), *y = malloc(a->count * sizeof *y);
        uint16_t rounded;
        sv_to_f32(a->dtype, a->data, x, a->count);
        sv_to_f32(b->dtype, b->data, y, b->count);
        for (size_t k = 0; k < a->count; k++) {
            float want;
            sv_from_f32(dtype, &x[k], &rounded, 1);
            sv_to_f32(dtype, &rounded, &want, 1);
            if (bits_of(y[k]) != bits_of(want))
                fail_msg("%s[%zu]: %g is not %s(%g)", name, k, (double)y[k],
                         sv_dtype_name(dtype), (double)x[k]);
            changed += bits_of(want) != bits_of(x[k]);
        }
        free(x), free(y);
    }
    sv_weights_close(ref);
    sv_weights_close(twin);
    return changed;
}

static void test_tiny_model_bf16_shards_new_prefix(void **state) {
    (void)state;
    char root[512], shard[700];
    snprintf(root, sizeof root, "%s", scratch_dir("tiny_model_bf16"));
    assert_true(check_twin(root, "--dtype bf16 --shards 3 --prefix new", SV_DTYPE_BF16, 1) > 0);
    snprintf(shard, sizeof shard, "%s/twin/model-00003-of-00003.safetensors", root);
    assert_int_equal(access(shard, R_OK), 0);
}

/* Every weight is an fp16 value, so the f16 twin holds exactly the same numbers. */
static void test_tiny_model_f16_is_exact(void **state) {
    (void)state;
    char root[512];
    snprintf(root, sizeof root, "%s", scratch_dir("tiny_model_f16"));
    assert_int_equal(check_twin(root, "--dtype f16 --shards 2", SV_DTYPE_F16, 0), 0);
}

static void test_tiny_model_usage_errors(void **state) {
    (void)state;
    static const char *const bad[] = {"", "--out", "--out x --dtype f8", "--out x --shards 0",
                                      "--out x --text 64,4,4,3,160", "--out x --vision 32,4",
                                      "--out x --bogus 1"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        char cmd[1200], err[4096];
        snprintf(cmd, sizeof cmd, "%s %s", build_path("tiny-model"), bad[i]);
        assert_int_equal(run_cmd(cmd, NULL, 0, err, sizeof err), 1);
        if (strncmp(err, "tiny-model: error: ", 19) != 0) fail_msg("%s: stderr %s", cmd, err);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_integer_tensors_are_skipped),
        cmocka_unit_test(test_f16_round_trip_all_patterns),
        cmocka_unit_test(test_f16_rounding_ties_and_edges),
        cmocka_unit_test(test_bf16_conversions),
        cmocka_unit_test(test_bulk_conversions_unaligned),
        cmocka_unit_test(test_write_then_open_every_dtype),
        cmocka_unit_test(test_write_header_layout),
        cmocka_unit_test(test_write_failures),
        cmocka_unit_test(test_malformed_headers),
        cmocka_unit_test(test_malformed_lengths),
        cmocka_unit_test(test_metadata_and_empty_files_accepted),
        cmocka_unit_test(test_sharded_index),
        cmocka_unit_test(test_tiny_model_matches_reference),
        cmocka_unit_test(test_tiny_model_bf16_shards_new_prefix),
        cmocka_unit_test(test_tiny_model_f16_is_exact),
        cmocka_unit_test(test_tiny_model_usage_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
