/* runtime/image.c against Pillow 9.4 (golden preproc/ outputs) and against
 * libpng / libjpeg themselves: every PNG colour type and bit depth, JPEG RGB,
 * grey, CMYK and YCCK, and each kind of bad input. */
#include <png.h> /* first: it brings its own <setjmp.h> */

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>

#include "image.h"
#include "testutil.h"

static const uint8_t clip_fill[3] = {122, 116, 104}; /* int(255 * CLIP mean) */

/* Deterministic test pixels (a 32-bit LCG; the high bits are the good ones). */
static uint32_t lcg_state;
static unsigned lcg(unsigned bound) {
    lcg_state = lcg_state * 1664525u + 1013904223u;
    return (lcg_state >> 8) % bound;
}

static char *path_in(const char *dir, const char *name) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return path;
}

static size_t count_diffs(const uint8_t *a, const uint8_t *b, size_t n, int *max_diff) {
    size_t count = 0;
    *max_diff = 0;
    for (size_t i = 0; i < n; i++) {
        int d = abs((int)a[i] - (int)b[i]);
        if (d) count++;
        if (d > *max_diff) *max_diff = d;
    }
    return count;
}

static void load_ok(sv_image *img, const char *path) {
    sv_error err;
    if (sv_image_load(img, path, 0, &err)) fail_msg("%s", err.msg);
}

/* ------------------------------------------------ golden: Pillow pipelines */

typedef struct golden_case {
    const char *image;
    sv_aspect aspect;
} golden_case;

static const golden_case golden_cases[] = {
    {"chelsea", SV_ASPECT_PAD},      {"chelsea", SV_ASPECT_CROP},
    {"astronaut_sq", SV_ASPECT_PAD}, {"astronaut_sq", SV_ASPECT_CROP},
    {"coins_gray", SV_ASPECT_PAD},   {"coins_gray", SV_ASPECT_CROP},
    {"tiny_37x23", SV_ASPECT_PAD},   {"tiny_37x23", SV_ASPECT_CROP},
};

static void test_fit_matches_pillow(void **state) {
    const golden_case *gc = *state;
    char rel[256];
    snprintf(rel, sizeof rel, "images/%s.png", gc->image);
    sv_image img, fitted;
    load_ok(&img, golden_path(rel));
    sv_error err;
    assert_int_equal(sv_image_fit(&img, gc->aspect, 336, clip_fill, &fitted, &err), SV_OK);
    sv_npy want;
    snprintf(rel, sizeof rel, "preproc/%s.%s.resized_u8.npy", gc->image, sv_aspect_name(gc->aspect));
    golden_npy(&want, rel);
    assert_int_equal(want.type, SV_NPY_U1);
    assert_int_equal(want.count, (size_t)336 * 336 * 3);
    assert_int_equal(fitted.w, 336);
    assert_int_equal(fitted.h, 336);
    int max_diff;
    size_t diffs = count_diffs(fitted.px, want.data, want.count, &max_diff);
    printf("# %s %s (%dx%d): %zu of %zu values differ from Pillow (max |diff| %d)\n", gc->image,
           sv_aspect_name(gc->aspect), img.w, img.h, diffs, want.count, max_diff);
    /* Acceptance: at most one level on at most 0.1% of values. */
    assert_true(max_diff <= 1);
    assert_true(diffs * 1000 <= want.count);
    sv_npy_free(&want);
    sv_image_free(&fitted);
    sv_image_free(&img);
}

static void test_normalize_matches_transformers(void **state) {
    (void)state;
    static const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
    static const float std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    sv_npy u8, want;
    golden_npy(&u8, "preproc/chelsea.pad.resized_u8.npy");
    golden_npy(&want, "preproc/chelsea.pad.pixel_values.npy");
    assert_int_equal(want.type, SV_NPY_F4);
    assert_int_equal(want.count, u8.count);
    sv_image img = {.w = 336, .h = 336, .px = u8.data};
    float *got = malloc(want.count * sizeof *got);
    assert_non_null(got);
    sv_image_normalize(&img, mean, std, got);
    size_t bit_diffs = 0;
    for (size_t i = 0; i < want.count; i++)
        bit_diffs += memcmp(&got[i], (float *)want.data + i, sizeof *got) != 0;
    printf("# chelsea pad pixel_values: %zu of %zu floats differ bitwise\n", bit_diffs, want.count);
    assert_int_equal(bit_diffs, 0);
    free(got);
    sv_npy_free(&u8);
    sv_npy_free(&want);
}

/* ------------------------------------------------ resize / fit properties */

static void fill_random(sv_image *img, uint32_t seed) {
    lcg_state = seed;
    for (size_t i = 0; i < (size_t)img->w * img->h * 3; i++) img->px[i] = (uint8_t)lcg(256);
}

static void test_resize_to_same_size_is_identity(void **state) {
    (void)state;
    sv_image img, out;
    sv_error err;
    assert_int_equal(sv_image_alloc(&img, 17, 9, &err), SV_OK);
    fill_random(&img, 7);
    assert_int_equal(sv_image_resize_bicubic(&img, 17, 9, &out, &err), SV_OK);
    assert_memory_equal(out.px, img.px, (size_t)17 * 9 * 3);
    sv_image_free(&out);
    sv_image_free(&img);
}

/* Short side already the target: transformers' resize is Pillow's identity,
 * so crop must be a plain centre crop. */
static void test_crop_without_resize_is_centre_crop(void **state) {
    (void)state;
    sv_image img, out;
    sv_error err;
    assert_int_equal(sv_image_alloc(&img, 40, 25, &err), SV_OK);
    fill_random(&img, 11);
    assert_int_equal(sv_image_fit(&img, SV_ASPECT_CROP, 25, clip_fill, &out, &err), SV_OK);
    for (int y = 0; y < 25; y++)
        assert_memory_equal(out.px + (size_t)y * 25 * 3, img.px + ((size_t)y * 40 + 7) * 3, 25 * 3);
    sv_image_free(&out);
    sv_image_free(&img);
}

static void test_bad_resize_arguments(void **state) {
    (void)state;
    sv_image img, out;
    sv_error err;
    assert_int_equal(sv_image_alloc(&img, 4, 4, &err), SV_OK);
    assert_int_equal(sv_image_resize_bicubic(&img, 0, 4, &out, &err), SV_FAIL);
    assert_null(out.px);
    assert_int_equal(sv_image_fit(&img, SV_ASPECT_PAD, 0, clip_fill, &out, &err), SV_FAIL);
    assert_null(out.px);
    assert_int_equal(sv_image_alloc(&out, 0, 3, &err), SV_FAIL);
    sv_image_free(&img);
}

static void test_aspect_names(void **state) {
    (void)state;
    sv_aspect a;
    assert_int_equal(sv_aspect_parse("pad", &a), SV_OK);
    assert_int_equal(a, SV_ASPECT_PAD);
    assert_int_equal(sv_aspect_parse("crop", &a), SV_OK);
    assert_int_equal(a, SV_ASPECT_CROP);
    assert_int_equal(sv_aspect_parse("squash", &a), SV_FAIL);
    assert_string_equal(sv_aspect_name(SV_ASPECT_PAD), "pad");
    assert_string_equal(sv_aspect_name(SV_ASPECT_CROP), "crop");
}

/* --------------------------------------------------------- PNG decoding */

enum { PW = 13, PH = 11 }; /* odd sizes exercise bit packing and all Adam7 passes */

typedef struct png_case {
    const char *name;
    int color_type, depth, interlace, trns;
} png_case;

static const png_case png_cases[] = {
    {"gray1", PNG_COLOR_TYPE_GRAY, 1, 0, 0},
    {"gray2", PNG_COLOR_TYPE_GRAY, 2, 0, 0},
    {"gray4", PNG_COLOR_TYPE_GRAY, 4, 0, 0},
    {"gray8", PNG_COLOR_TYPE_GRAY, 8, 0, 0},
    {"gray8_trns", PNG_COLOR_TYPE_GRAY, 8, 0, 1},
    {"gray16", PNG_COLOR_TYPE_GRAY, 16, 0, 0},
    {"gray16_interlaced", PNG_COLOR_TYPE_GRAY, 16, 1, 0},
    {"gray_alpha8", PNG_COLOR_TYPE_GRAY_ALPHA, 8, 0, 0},
    {"gray_alpha16", PNG_COLOR_TYPE_GRAY_ALPHA, 16, 0, 0},
    {"rgb8", PNG_COLOR_TYPE_RGB, 8, 0, 0},
    {"rgb8_trns", PNG_COLOR_TYPE_RGB, 8, 0, 1},
    {"rgb8_interlaced", PNG_COLOR_TYPE_RGB, 8, 1, 0},
    {"rgb16", PNG_COLOR_TYPE_RGB, 16, 0, 0},
    {"rgba8", PNG_COLOR_TYPE_RGB_ALPHA, 8, 0, 0},
    {"rgba8_interlaced", PNG_COLOR_TYPE_RGB_ALPHA, 8, 1, 0},
    {"rgba16", PNG_COLOR_TYPE_RGB_ALPHA, 16, 0, 0},
    {"palette1", PNG_COLOR_TYPE_PALETTE, 1, 0, 0},
    {"palette4_trns", PNG_COLOR_TYPE_PALETTE, 4, 0, 1},
    {"palette8_trns", PNG_COLOR_TYPE_PALETTE, 8, 0, 1},
    {"palette8_interlaced", PNG_COLOR_TYPE_PALETTE, 8, 1, 1},
};

static int png_channels(int color_type) {
    switch (color_type) {
    case PNG_COLOR_TYPE_GRAY_ALPHA: return 2;
    case PNG_COLOR_TYPE_RGB: return 3;
    case PNG_COLOR_TYPE_RGB_ALPHA: return 4;
    default: return 1;
    }
}

/* Samples in 0 .. 2^depth-1; for 16-bit grey, half are below 256 so that
 * both sides of Pillow's clip are seen. */
static void make_samples(const png_case *pc, uint16_t *s, size_t n, int npal) {
    unsigned bound = pc->color_type == PNG_COLOR_TYPE_PALETTE ? (unsigned)npal : 1u << pc->depth;
    for (size_t i = 0; i < n; i++) {
        s[i] = (uint16_t)lcg(bound);
        if (pc->depth == 16 && i % 2) s[i] = (uint16_t)lcg(256);
    }
}

static void pack_row(const uint16_t *s, size_t n, int depth, uint8_t *row) {
    if (depth >= 8) {
        for (size_t i = 0; i < n; i++) {
            if (depth == 16) *row++ = (uint8_t)(s[i] >> 8);
            *row++ = (uint8_t)s[i];
        }
        return;
    }
    memset(row, 0, (n * depth + 7) / 8);
    for (size_t i = 0; i < n; i++)
        row[i * depth / 8] |= (uint8_t)(s[i] << (8 - depth - (int)(i * depth % 8)));
}

static void write_png(const char *path, const png_case *pc, const uint16_t *samples,
                      const png_color *palette, int npal) {
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, NULL, NULL, NULL);
    png_infop info = png_create_info_struct(png);
    png_init_io(png, f);
    png_set_IHDR(png, info, PW, PH, pc->depth, pc->color_type,
                 pc->interlace ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    png_byte alphas[256];
    for (int i = 0; i < 256; i++) alphas[i] = (png_byte)(i * 37);
    png_color_16 trns_colour = {.red = samples[0], .green = samples[1], .blue = samples[2],
                                .gray = samples[0]};
    if (pc->color_type == PNG_COLOR_TYPE_PALETTE) png_set_PLTE(png, info, palette, npal);
    if (pc->trns && pc->color_type == PNG_COLOR_TYPE_PALETTE)
        png_set_tRNS(png, info, alphas, npal, NULL);
    else if (pc->trns)
        png_set_tRNS(png, info, NULL, 0, &trns_colour);
    png_write_info(png, info);
    int ch = png_channels(pc->color_type);
    size_t row_bytes = ((size_t)PW * ch * pc->depth + 7) / 8;
    uint8_t *rows = calloc(PH, row_bytes);
    png_bytep row_ptrs[PH];
    for (int y = 0; y < PH; y++) {
        row_ptrs[y] = rows + y * row_bytes;
        pack_row(samples + (size_t)y * PW * ch, (size_t)PW * ch, pc->depth, row_ptrs[y]);
    }
    png_write_image(png, row_ptrs);
    png_write_end(png, NULL);
    png_destroy_write_struct(&png, &info);
    free(rows);
    fclose(f);
}

/* What Pillow 9.4's convert('RGB') gives for one pixel of the source samples:
 * low-depth grey scaled to 0..255 ("L;2" etc.), 16-bit grey clipped (mode I,
 * i2rgb), other 16-bit data its high byte, alpha and tRNS ignored. */
static void pillow_rgb(const png_case *pc, const uint16_t *px, const png_color *palette,
                       uint8_t rgb[3]) {
    int ch = png_channels(pc->color_type);
    if (pc->color_type == PNG_COLOR_TYPE_PALETTE) {
        rgb[0] = palette[px[0]].red, rgb[1] = palette[px[0]].green, rgb[2] = palette[px[0]].blue;
        return;
    }
    for (int c = 0; c < 3; c++) {
        unsigned v = px[ch >= 3 ? c : 0];
        if (pc->depth < 8) v = v * 255 / ((1u << pc->depth) - 1);
        else if (pc->depth == 16 && ch == 1) v = v > 255 ? 255 : v;
        else if (pc->depth == 16) v >>= 8;
        rgb[c] = (uint8_t)v;
    }
}

static void test_png_mode(void **state) {
    const png_case *pc = *state;
    int ch = png_channels(pc->color_type);
    int npal = pc->color_type == PNG_COLOR_TYPE_PALETTE ? 1 << (pc->depth < 8 ? pc->depth : 7) : 0;
    png_color palette[256];
    lcg_state = 1234;
    for (int i = 0; i < npal; i++)
        palette[i] = (png_color){(png_byte)lcg(256), (png_byte)lcg(256), (png_byte)lcg(256)};
    uint16_t samples[PW * PH * 4];
    make_samples(pc, samples, (size_t)PW * PH * ch, npal);
    char name[64];
    snprintf(name, sizeof name, "%s.png", pc->name);
    const char *path = path_in(scratch_dir("image_png"), name);
    write_png(path, pc, samples, palette, npal);

    sv_image img;
    load_ok(&img, path);
    assert_int_equal(img.w, PW);
    assert_int_equal(img.h, PH);
    for (int i = 0; i < PW * PH; i++) {
        uint8_t want[3];
        pillow_rgb(pc, samples + (size_t)i * ch, palette, want);
        if (memcmp(img.px + 3 * i, want, 3) != 0)
            fail_msg("%s: pixel %d is (%d,%d,%d), want (%d,%d,%d)", pc->name, i, img.px[3 * i],
                     img.px[3 * i + 1], img.px[3 * i + 2], want[0], want[1], want[2]);
    }
    sv_image_free(&img);
}

/* -------------------------------------------------------- JPEG decoding */

enum { JW = 40, JH = 24 };

/* Writes a quality-100 JPEG from samples with `in_space`'s component count. */
static void write_jpeg(const char *path, const uint8_t *samples, int w, int h, J_COLOR_SPACE in_space,
                       J_COLOR_SPACE file_space, int quality) {
    static const int components[] = {[JCS_GRAYSCALE] = 1, [JCS_RGB] = 3, [JCS_CMYK] = 4};
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr jerr;
    c.err = jpeg_std_error(&jerr);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = components[in_space];
    c.in_color_space = in_space;
    jpeg_set_defaults(&c);
    jpeg_set_colorspace(&c, file_space);
    jpeg_set_quality(&c, quality, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)samples + (size_t)c.next_scanline * w * c.input_components;
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    fclose(f);
}

/* libjpeg's own decoding of the file into out_space (the reference). */
static uint8_t *libjpeg_decode(const char *path, J_COLOR_SPACE out_space) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    struct jpeg_decompress_struct d;
    struct jpeg_error_mgr jerr;
    d.err = jpeg_std_error(&jerr);
    jpeg_create_decompress(&d);
    jpeg_stdio_src(&d, f);
    jpeg_read_header(&d, TRUE);
    d.out_color_space = out_space;
    jpeg_start_decompress(&d);
    size_t row = (size_t)d.output_width * d.output_components;
    uint8_t *px = malloc(row * d.output_height);
    while (d.output_scanline < d.output_height) {
        JSAMPROW r = px + row * d.output_scanline;
        jpeg_read_scanlines(&d, &r, 1);
    }
    jpeg_finish_decompress(&d);
    jpeg_destroy_decompress(&d);
    fclose(f);
    return px;
}

/* Smooth content, so quality 100 reproduces it closely. */
static void gradient(uint8_t *s, int channels) {
    for (int y = 0; y < JH; y++)
        for (int x = 0; x < JW; x++)
            for (int c = 0; c < channels; c++)
                s[((size_t)y * JW + x) * channels + c] = (uint8_t)(20 + 3 * x + 2 * y + 20 * c);
}

static void assert_near_source(const char *what, const uint8_t *got, const uint8_t *want, int tol) {
    int max_diff;
    count_diffs(got, want, (size_t)JW * JH * 3, &max_diff);
    printf("# %s: max |decoded - source| %d (tol %d)\n", what, max_diff, tol);
    assert_true(max_diff <= tol);
}

static void test_jpeg_rgb(void **state) {
    (void)state;
    uint8_t src[JW * JH * 3];
    gradient(src, 3);
    const char *path = path_in(scratch_dir("image_jpeg"), "rgb.jpg");
    write_jpeg(path, src, JW, JH, JCS_RGB, JCS_YCbCr, 100);
    sv_image img;
    load_ok(&img, path);
    uint8_t *ref = libjpeg_decode(path, JCS_RGB);
    assert_memory_equal(img.px, ref, sizeof src);
    assert_near_source("jpeg rgb", img.px, src, 4);
    free(ref);
    sv_image_free(&img);
}

static void test_jpeg_gray(void **state) {
    (void)state;
    uint8_t src[JW * JH], src_rgb[JW * JH * 3], want[JW * JH * 3];
    gradient(src, 1);
    const char *path = path_in(scratch_dir("image_jpeg"), "gray.jpg");
    write_jpeg(path, src, JW, JH, JCS_GRAYSCALE, JCS_GRAYSCALE, 100);
    uint8_t *ref = libjpeg_decode(path, JCS_GRAYSCALE);
    for (int i = 0; i < JW * JH; i++) {
        memset(want + 3 * i, ref[i], 3);
        memset(src_rgb + 3 * i, src[i], 3);
    }
    sv_image img;
    load_ok(&img, path);
    assert_memory_equal(img.px, want, sizeof want);
    assert_near_source("jpeg gray", img.px, src_rgb, 2);
    free(ref);
    sv_image_free(&img);
}

/* Pillow reads 4-channel JPEGs as inverted (Adobe) CMYK and its cmyk2rgb then
 * works out to R = round(stored_C * stored_K / 255). */
static void cmyk_case(const char *file, J_COLOR_SPACE file_space) {
    uint8_t src[JW * JH * 4], src_rgb[JW * JH * 3], want[JW * JH * 3];
    gradient(src, 4);
    const char *path = path_in(scratch_dir("image_jpeg"), file);
    write_jpeg(path, src, JW, JH, JCS_CMYK, file_space, 100);
    uint8_t *ref = libjpeg_decode(path, JCS_CMYK);
    for (int i = 0; i < JW * JH; i++)
        for (int c = 0; c < 3; c++) {
            want[3 * i + c] = (uint8_t)lround(ref[4 * i + c] * ref[4 * i + 3] / 255.0);
            src_rgb[3 * i + c] = (uint8_t)lround(src[4 * i + c] * src[4 * i + 3] / 255.0);
        }
    sv_image img;
    load_ok(&img, path);
    assert_memory_equal(img.px, want, sizeof want);
    assert_near_source(file, img.px, src_rgb, 4);
    free(ref);
    sv_image_free(&img);
}

static void test_jpeg_cmyk(void **state) {
    (void)state;
    cmyk_case("cmyk.jpg", JCS_CMYK);
}

static void test_jpeg_ycck(void **state) {
    (void)state;
    cmyk_case("ycck.jpg", JCS_YCCK);
}

/* ------------------------------------------------------------ bad input */

static void expect_load_failure(const char *path, int64_t max_pixels, const char *reason) {
    sv_image img = {.w = 1, .h = 1, .px = (uint8_t *)"stale"};
    sv_error err = {{0}};
    assert_int_equal(sv_image_load(&img, path, max_pixels, &err), SV_FAIL);
    printf("# %s\n", err.msg);
    assert_null(img.px);
    if (!strstr(err.msg, path)) fail_msg("message does not name the file: %s", err.msg);
    if (!strstr(err.msg, reason)) fail_msg("message does not say \"%s\": %s", reason, err.msg);
}

static uint8_t *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    rewind(f);
    uint8_t *data = malloc(*n);
    assert_int_equal(fread(data, 1, *n, f), *n);
    fclose(f);
    return data;
}

static uint32_t crc32_bytes(uint32_t crc, const uint8_t *p, size_t n) {
    crc = ~crc;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int b = 0; b < 8; b++) crc = crc >> 1 ^ (0xedb88320u & -(crc & 1));
    }
    return ~crc;
}

static uint8_t *put_be32(uint8_t *p, uint32_t v) {
    p[0] = (uint8_t)(v >> 24), p[1] = (uint8_t)(v >> 16), p[2] = (uint8_t)(v >> 8), p[3] = (uint8_t)v;
    return p + 4;
}

static uint8_t *put_chunk(uint8_t *p, const char *type, const uint8_t *data, uint32_t n) {
    p = put_be32(p, n);
    memcpy(p, type, 4);
    if (n) memcpy(p + 4, data, n);
    uint32_t crc = crc32_bytes(0, p, 4 + n);
    return put_be32(p + 4 + n, crc);
}

/* A PNG whose IHDR claims w x h, followed by a token IDAT: libpng accepts
 * the header, so only our own checks can stop it. */
static void write_png_header_only(const char *path, uint32_t w, uint32_t h) {
    uint8_t buf[128], ihdr[13] = {0}, idat[8] = {0};
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    put_be32(put_be32(ihdr, w), h);
    ihdr[8] = 8, ihdr[9] = PNG_COLOR_TYPE_RGB;
    memcpy(buf, sig, 8);
    uint8_t *p = put_chunk(buf + 8, "IHDR", ihdr, 13);
    p = put_chunk(p, "IDAT", idat, sizeof idat);
    p = put_chunk(p, "IEND", NULL, 0);
    write_bytes(path, buf, (size_t)(p - buf));
}

static void write_noise_png(const char *path) {
    static const png_case rgb = {"noise", PNG_COLOR_TYPE_RGB, 8, 0, 0};
    uint16_t s[PW * PH * 3];
    lcg_state = 99;
    for (size_t i = 0; i < sizeof s / sizeof *s; i++) s[i] = (uint16_t)lcg(256);
    write_png(path, &rgb, s, NULL, 0);
}

static void write_noise_jpeg(const char *path) {
    uint8_t src[JW * JH * 3];
    lcg_state = 5;
    for (size_t i = 0; i < sizeof src; i++) src[i] = (uint8_t)lcg(256);
    write_jpeg(path, src, JW, JH, JCS_RGB, JCS_YCbCr, 95);
}

/* Offset of the SOF0 segment of a libjpeg baseline file (walking the markers). */
static size_t jpeg_sof0(const uint8_t *d, size_t n) {
    for (size_t pos = 2; pos + 4 <= n; pos += 2 + ((size_t)d[pos + 2] << 8 | d[pos + 3]))
        if (d[pos] == 0xff && d[pos + 1] == 0xc0) return pos;
    fail_msg("no SOF0 marker");
    return 0;
}

static void write_jpeg_claiming(const char *path, const char *from, unsigned w, unsigned h) {
    size_t n;
    uint8_t *d = read_all(from, &n);
    size_t sof = jpeg_sof0(d, n);
    d[sof + 5] = (uint8_t)(h >> 8), d[sof + 6] = (uint8_t)h;
    d[sof + 7] = (uint8_t)(w >> 8), d[sof + 8] = (uint8_t)w;
    write_bytes(path, d, n);
    free(d);
}

static void test_missing_and_unreadable(void **state) {
    (void)state;
    const char *dir = scratch_dir("image_bad");
    char path[1024];
    snprintf(path, sizeof path, "%s/no_such.png", dir);
    expect_load_failure(path, 0, "cannot open");
    expect_load_failure(dir, 0, "cannot read");
}

static void test_not_an_image(void **state) {
    (void)state;
    const char *dir = scratch_dir("image_bad");
    char text[1024], empty[1024], gif[1024];
    snprintf(text, sizeof text, "%s/notes.png", dir);
    snprintf(empty, sizeof empty, "%s/empty.jpg", dir);
    snprintf(gif, sizeof gif, "%s/anim.png", dir);
    write_text(text, "this is not an image\n");
    write_bytes(empty, "", 0);
    write_text(gif, "GIF89a\x01\x00\x01\x00");
    expect_load_failure(text, 0, "not a PNG or JPEG");
    expect_load_failure(empty, 0, "not a PNG or JPEG");
    expect_load_failure(gif, 0, "not a PNG or JPEG");
}

static void test_truncated_and_corrupt_png(void **state) {
    (void)state;
    const char *dir = scratch_dir("image_bad");
    char good[1024], cut[1024], corrupt[1024];
    snprintf(good, sizeof good, "%s/good.png", dir);
    snprintf(cut, sizeof cut, "%s/cut.png", dir);
    snprintf(corrupt, sizeof corrupt, "%s/corrupt.png", dir);
    write_noise_png(good);
    size_t n;
    uint8_t *d = read_all(good, &n);
    write_bytes(cut, d, n * 2 / 3);
    expect_load_failure(cut, 0, "truncated");
    d[n / 2] ^= 0x55; /* inside the compressed pixels */
    write_bytes(corrupt, d, n);
    free(d);
    expect_load_failure(corrupt, 0, "invalid PNG");
}

static void test_truncated_jpeg(void **state) {
    (void)state;
    const char *dir = scratch_dir("image_bad");
    char good[1024], cut[1024];
    snprintf(good, sizeof good, "%s/good.jpg", dir);
    snprintf(cut, sizeof cut, "%s/cut.jpg", dir);
    write_noise_jpeg(good);
    size_t n;
    uint8_t *d = read_all(good, &n);
    write_bytes(cut, d, n * 2 / 3);
    free(d);
    expect_load_failure(cut, 0, "Premature end of JPEG file");
}

static void test_empty_images(void **state) {
    (void)state;
    const char *dir = scratch_dir("image_bad");
    char png0[1024], good[1024], jpg0[1024];
    snprintf(png0, sizeof png0, "%s/zero.png", dir);
    snprintf(good, sizeof good, "%s/good.jpg", dir);
    snprintf(jpg0, sizeof jpg0, "%s/zero.jpg", dir);
    write_png_header_only(png0, 0, 0);
    expect_load_failure(png0, 0, "is zero");
    write_noise_jpeg(good);
    write_jpeg_claiming(jpg0, good, 0, 0);
    expect_load_failure(jpg0, 0, "Empty JPEG image");
}

static void test_decompression_bombs(void **state) {
    (void)state;
    const char *dir = scratch_dir("image_bad");
    char png[1024], good[1024], jpg[1024], small[1024];
    snprintf(png, sizeof png, "%s/bomb.png", dir);
    snprintf(good, sizeof good, "%s/good.jpg", dir);
    snprintf(jpg, sizeof jpg, "%s/bomb.jpg", dir);
    snprintf(small, sizeof small, "%s/small.png", dir);
    write_png_header_only(png, 20000, 20000); /* 1.2 GB of pixels from a 70-byte file */
    expect_load_failure(png, 0, "exceeds the limit of 178956970 pixels");
    write_noise_jpeg(good);
    write_jpeg_claiming(jpg, good, 60000, 60000);
    expect_load_failure(jpg, 0, "exceeds the limit of 178956970 pixels");
    /* The limit is inclusive: exactly max_pixels decodes. */
    write_noise_png(small);
    expect_load_failure(small, PW * PH - 1, "exceeds the limit");
    sv_image img;
    sv_error err;
    assert_int_equal(sv_image_load(&img, small, PW * PH, &err), SV_OK);
    sv_image_free(&img);
}

/* One TAP line per golden case and per PNG mode, named after it. */
static struct CMUnitTest case_test(const char *name, CMUnitTestFunction f, const void *state) {
    return (struct CMUnitTest){.name = name, .test_func = f, .initial_state = (void *)state};
}

int main(void) {
    static struct CMUnitTest tests[64];
    static char golden_names[8][64];
    size_t n = 0;
    for (size_t i = 0; i < sizeof golden_cases / sizeof *golden_cases; i++) {
        snprintf(golden_names[i], sizeof golden_names[i], "fit_matches_pillow_%s_%s",
                 golden_cases[i].image, sv_aspect_name(golden_cases[i].aspect));
        tests[n++] = case_test(golden_names[i], test_fit_matches_pillow, &golden_cases[i]);
    }
    for (size_t i = 0; i < sizeof png_cases / sizeof *png_cases; i++)
        tests[n++] = case_test(png_cases[i].name, test_png_mode, &png_cases[i]);
    const struct CMUnitTest fixed[] = {
        cmocka_unit_test(test_normalize_matches_transformers),
        cmocka_unit_test(test_resize_to_same_size_is_identity),
        cmocka_unit_test(test_crop_without_resize_is_centre_crop),
        cmocka_unit_test(test_bad_resize_arguments),
        cmocka_unit_test(test_aspect_names),
        cmocka_unit_test(test_jpeg_rgb),
        cmocka_unit_test(test_jpeg_gray),
        cmocka_unit_test(test_jpeg_cmyk),
        cmocka_unit_test(test_jpeg_ycck),
        cmocka_unit_test(test_missing_and_unreadable),
        cmocka_unit_test(test_not_an_image),
        cmocka_unit_test(test_truncated_and_corrupt_png),
        cmocka_unit_test(test_truncated_jpeg),
        cmocka_unit_test(test_empty_images),
        cmocka_unit_test(test_decompression_bombs),
    };
    for (size_t i = 0; i < sizeof fixed / sizeof *fixed; i++) tests[n++] = fixed[i];
    return _cmocka_run_group_tests("image", tests, n, NULL, NULL);
}
