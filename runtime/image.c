/* Image decoding to 8-bit RGB as Pillow 9.4's Image.open(f).convert('RGB') gives
 * it, and the LLaVA / CLIP preprocessing with Pillow's BICUBIC resampling
 * reproduced bit for bit (src/libImaging/Resample.c, ImagingResampleInner). */
#include <png.h> /* first: it brings its own <setjmp.h> */

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jpeglib.h>
#include <jerror.h>

#include "image.h"

/* ---------------------------------------------------------------- buffers */

static int image_alloc(sv_image *out, int w, int h, const char *what, sv_error *err) {
    *out = (sv_image){0};
    if (w <= 0 || h <= 0) return sv_fail(err, "%s: invalid image size %dx%d", what, w, h);
    size_t row = (size_t)w * 3;
    out->px = sv_alloc_array((size_t)h, row, err, what);
    if (!out->px) return SV_FAIL;
    out->w = w;
    out->h = h;
    return SV_OK;
}

int sv_image_alloc(sv_image *out, int w, int h, sv_error *err) {
    return image_alloc(out, w, h, "image", err);
}

void sv_image_free(sv_image *img) {
    if (!img) return;
    free(img->px);
    *img = (sv_image){0};
}

/* Runs on the header's dimensions, before any pixel memory exists, so a tiny
 * file that claims a huge image (a decompression bomb) costs nothing. */
static int check_dims(const char *path, uint64_t w, uint64_t h, int64_t max_pixels,
                      sv_error *err) {
    if (w == 0 || h == 0)
        return sv_fail(err, "%s: image has no pixels (%llux%llu)", path, (unsigned long long)w,
                       (unsigned long long)h);
    if (w > INT_MAX || h > INT_MAX || w * h > (uint64_t)max_pixels)
        return sv_fail(err, "%s: %llux%llu image exceeds the limit of %lld pixels "
                       "(decompression bomb?)", path, (unsigned long long)w,
                       (unsigned long long)h, (long long)max_pixels);
    return SV_OK;
}

/* ------------------------------------------------------------------- PNG */

typedef struct png_reader {
    const char *path;
    FILE *f;
    png_structp png;
    png_infop info;
    png_bytep *rows;
    int header_only;   /* stop after the size: out gets w and h, no pixels */
    char error[256];
    char warning[256]; /* libpng warns with the detail, then fails with a summary */
} png_reader;

static void png_on_error(png_structp png, png_const_charp msg) {
    png_reader *r = png_get_error_ptr(png);
    snprintf(r->error, sizeof r->error, "%s", msg);
    png_longjmp(png, 1);
}

/* Pillow ignores what libpng only warns about (sRGB profile quirks, bad
 * ancillary CRCs); the last warning is kept to explain a following error. */
static void png_on_warning(png_structp png, png_const_charp msg) {
    png_reader *r = png_get_error_ptr(png);
    snprintf(r->warning, sizeof r->warning, "%s", msg);
}

static void png_read_bytes(png_structp png, png_bytep data, size_t n) {
    png_reader *r = png_get_io_ptr(png);
    if (fread(data, 1, n, r->f) != n) png_error(png, ferror(r->f) ? "read error" : "file is truncated");
}

/* Pillow 9.4 opens 16-bit grey PNGs as mode "I" and convert('RGB') clips them
 * (Convert.c i2rgb): values above 255 become white instead of being scaled.
 * In place: sample i moves from bytes 2i..2i+1 to 3i..3i+2, so walk backwards. */
static void clip_gray16_to_rgb(uint8_t *px, size_t npix) {
    for (size_t i = npix; i-- > 0;) {
        unsigned v = (unsigned)px[2 * i] << 8 | px[2 * i + 1];
        uint8_t g = v > 255 ? 255 : (uint8_t)v;
        px[3 * i] = px[3 * i + 1] = px[3 * i + 2] = g;
    }
}

/* libpng transforms that give Pillow's convert('RGB'): palettes expanded with
 * tRNS ignored, grey replicated, alpha dropped (not composited), 16-bit colour
 * and grey+alpha reduced to their high byte (Pillow's ";16B" unpackers). The one
 * exception, 16-bit grey, is left as 2 bytes per pixel; returns whether it is. */
static int set_rgb8_transforms(png_structp png, png_infop info) {
    int type = png_get_color_type(png, info), depth = png_get_bit_depth(png, info);
    int gray16 = type == PNG_COLOR_TYPE_GRAY && depth == 16;
    if (type == PNG_COLOR_TYPE_PALETTE) png_set_palette_to_rgb(png);
    if (type == PNG_COLOR_TYPE_GRAY && depth < 8) png_set_expand_gray_1_2_4_to_8(png);
    if (!gray16) png_set_strip_16(png);
    png_set_strip_alpha(png);
    if (!gray16 && !(type & PNG_COLOR_MASK_COLOR)) png_set_gray_to_rgb(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    return gray16;
}

/* Everything that must survive a longjmp lives in *r (owned by the caller):
 * after an error this frame's locals are indeterminate and are not used. */
static int png_decode(png_reader *r, int64_t max_pixels, sv_image *out, sv_error *err) {
    if (setjmp(png_jmpbuf(r->png))) {
        if (r->warning[0])
            return sv_fail(err, "%s: invalid PNG: %s (%s)", r->path, r->error, r->warning);
        return sv_fail(err, "%s: invalid PNG: %s", r->path, r->error);
    }
    png_set_read_fn(r->png, r, png_read_bytes);
    /* Our own pixel limit replaces libpng's default 1e6-pixel side limit. */
    png_set_user_limits(r->png, PNG_UINT_31_MAX, PNG_UINT_31_MAX);
    png_read_info(r->png, r->info);
    png_uint_32 w = png_get_image_width(r->png, r->info), h = png_get_image_height(r->png, r->info);
    if (check_dims(r->path, w, h, max_pixels, err)) return SV_FAIL;
    if (r->header_only) {
        out->w = (int)w, out->h = (int)h;
        return SV_OK;
    }
    int gray16 = set_rgb8_transforms(r->png, r->info);
    size_t row_bytes = png_get_rowbytes(r->png, r->info);
    if (row_bytes != (size_t)w * (gray16 ? 2 : 3))
        return sv_fail(err, "%s: unsupported PNG layout (%zu bytes per row)", r->path, row_bytes);
    if (image_alloc(out, (int)w, (int)h, r->path, err)) return SV_FAIL;
    r->rows = sv_alloc_array(h, sizeof *r->rows, err, r->path);
    if (!r->rows) return SV_FAIL;
    for (png_uint_32 y = 0; y < h; y++) r->rows[y] = out->px + (size_t)y * row_bytes;
    png_read_image(r->png, r->rows);
    /* No png_read_end: like Pillow, accept a file whose chunks after the image
     * data are missing. */
    if (gray16) clip_gray16_to_rgb(out->px, (size_t)w * h);
    return SV_OK;
}

static int load_png(FILE *f, const char *path, int64_t max_pixels, int header_only,
                    sv_image *out, sv_error *err) {
    png_reader r = {.path = path, .f = f, .header_only = header_only};
    r.png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &r, png_on_error, png_on_warning);
    if (!r.png) return sv_fail(err, "%s: out of memory for the PNG decoder", path);
    r.info = png_create_info_struct(r.png);
    int rc = r.info ? png_decode(&r, max_pixels, out, err)
                    : sv_fail(err, "%s: out of memory for the PNG decoder", path);
    png_destroy_read_struct(&r.png, &r.info, NULL);
    free(r.rows);
    if (rc) sv_image_free(out);
    return rc;
}

/* ------------------------------------------------------------------ JPEG */

typedef struct jpeg_reader {
    struct jpeg_decompress_struct cinfo; /* first, so a j_common_ptr is a jpeg_reader* */
    struct jpeg_error_mgr jerr;
    jmp_buf jump;
    char error[JMSG_LENGTH_MAX];
} jpeg_reader;

static void jpeg_on_error(j_common_ptr cinfo) {
    jpeg_reader *r = (jpeg_reader *)(void *)cinfo;
    cinfo->err->format_message(cinfo, r->error);
    longjmp(r->jump, 1);
}

/* When the data stops early libjpeg only warns and paints the rest grey; Pillow
 * reports such a file as truncated, so those warnings are errors here. Other
 * warnings (e.g. extraneous bytes before a marker) are ignored, as in Pillow. */
static void jpeg_on_message(j_common_ptr cinfo, int level) {
    int code = cinfo->err->msg_code;
    if (level < 0 && (code == JWRN_JPEG_EOF || code == JWRN_HIT_MARKER)) jpeg_on_error(cinfo);
}

/* a*b/255 rounded to nearest for a, b in 0..255: Pillow's MULDIV255. */
static int muldiv255(int a, int b) {
    int t = a * b + 128;
    return ((t >> 8) + t) >> 8;
}

/* Pillow reads every 4-channel JPEG as Adobe's inverted CMYK ("CMYK;I":
 * C = 255 - stored) and converts as Convert.c cmyk2rgb: R = 255-K - C(255-K)/255. */
static void inverted_cmyk_to_rgb(const uint8_t *in, uint8_t *out, int w) {
    for (int x = 0; x < w; x++, in += 4, out += 3) {
        int not_k = in[3];
        for (int c = 0; c < 3; c++) out[c] = (uint8_t)(not_k - muldiv255(255 - in[c], not_k));
    }
}

static int jpeg_decode(jpeg_reader *r, FILE *f, const char *path, int64_t max_pixels,
                       int header_only, sv_image *out, sv_error *err) {
    struct jpeg_decompress_struct *ci = &r->cinfo;
    if (setjmp(r->jump)) return sv_fail(err, "%s: invalid JPEG: %s", path, r->error);
    jpeg_create_decompress(ci);
    jpeg_stdio_src(ci, f);
    jpeg_read_header(ci, TRUE);
    if (check_dims(path, ci->image_width, ci->image_height, max_pixels, err)) return SV_FAIL;
    if (header_only) {
        out->w = (int)ci->image_width, out->h = (int)ci->image_height;
        return SV_OK;
    }
    /* libjpeg replicates grey itself, exactly as Pillow's L -> RGB does. */
    int cmyk = ci->num_components == 4;
    ci->out_color_space = cmyk ? JCS_CMYK : JCS_RGB;
    jpeg_start_decompress(ci);
    if (ci->output_components != (cmyk ? 4 : 3))
        return sv_fail(err, "%s: unsupported JPEG with %d components", path, ci->num_components);
    int w = (int)ci->output_width;
    if (image_alloc(out, w, (int)ci->output_height, path, err)) return SV_FAIL;
    /* From libjpeg's pool, so jpeg_destroy frees it on every path. */
    JSAMPARRAY cmyk_row = cmyk ? ci->mem->alloc_sarray((j_common_ptr)ci, JPOOL_IMAGE,
                                                       (JDIMENSION)w * 4, 1)
                               : NULL;
    while (ci->output_scanline < ci->output_height) {
        uint8_t *dst = out->px + (size_t)ci->output_scanline * w * 3;
        JSAMPROW row = cmyk ? cmyk_row[0] : dst;
        jpeg_read_scanlines(ci, &row, 1);
        if (cmyk) inverted_cmyk_to_rgb(row, dst, w);
    }
    /* No jpeg_finish_decompress: the pixels are complete; what follows is not needed. */
    return SV_OK;
}

static int load_jpeg(FILE *f, const char *path, int64_t max_pixels, int header_only,
                     sv_image *out, sv_error *err) {
    jpeg_reader r = {0};
    r.cinfo.err = jpeg_std_error(&r.jerr);
    r.jerr.error_exit = jpeg_on_error;
    r.jerr.emit_message = jpeg_on_message;
    int rc = jpeg_decode(&r, f, path, max_pixels, header_only, out, err);
    jpeg_destroy_decompress(&r.cinfo); /* safe if create never ran: cinfo is zeroed */
    if (rc) sv_image_free(out);
    return rc;
}

/* ---------------------------------------------------------------- loading */

static int load_image(sv_image *out, const char *path, int64_t max_pixels, int header_only,
                      sv_error *err) {
    static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    static const uint8_t jpeg_magic[3] = {0xff, 0xd8, 0xff};
    *out = (sv_image){0};
    if (max_pixels <= 0) max_pixels = SV_IMAGE_MAX_PIXELS;
    FILE *f = fopen(path, "rb");
    if (!f) return sv_fail(err, "%s: cannot open: %s", path, strerror(errno));
    uint8_t magic[8];
    size_t n = fread(magic, 1, sizeof magic, f);
    int rc;
    if (ferror(f)) {
        rc = sv_fail(err, "%s: cannot read: %s", path, strerror(errno));
    } else if (n == sizeof png_magic && memcmp(magic, png_magic, n) == 0) {
        rewind(f);
        rc = load_png(f, path, max_pixels, header_only, out, err);
    } else if (n >= sizeof jpeg_magic && memcmp(magic, jpeg_magic, sizeof jpeg_magic) == 0) {
        rewind(f);
        rc = load_jpeg(f, path, max_pixels, header_only, out, err);
    } else {
        rc = sv_fail(err, "%s: not a PNG or JPEG file", path);
    }
    fclose(f);
    return rc;
}

int sv_image_load(sv_image *out, const char *path, int64_t max_pixels, sv_error *err) {
    return load_image(out, path, max_pixels, 0, err);
}

int sv_image_probe(const char *path, int *w, int *h, sv_error *err) {
    sv_image header;
    if (load_image(&header, path, 0, 1, err)) return SV_FAIL;
    *w = header.w, *h = header.h;
    return SV_OK;
}

/* ------------------------------------------------------- Pillow BICUBIC */

/* Pillow's 8-bit fixed point: 8 bits of result, 2 bits of headroom for the
 * filter's negative lobes and overshoot, the rest fraction. */
#define PRECISION_BITS (32 - 8 - 2)

/* Filter taps of one axis for output samples [first, first + n). */
typedef struct filter_taps {
    int ksize;   /* stride of k: the most taps any sample can have */
    int *lo;     /* [n] first input index */
    int *len;    /* [n] number of taps */
    int32_t *k;  /* [n][ksize] weights, PRECISION_BITS fraction bits */
} filter_taps;

static void filter_taps_free(filter_taps *t) {
    free(t->lo);
    free(t->len);
    free(t->k);
}

/* Keys' cubic convolution kernel with a = -0.5 (Pillow's bicubic_filter). */
static double bicubic_kernel(double x) {
    const double a = -0.5;
    if (x < 0.0) x = -x;
    if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0) return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

/* Normalised weights in double, then to fixed point rounding half away from
 * zero: Resample.c precompute_coeffs + normalize_coeffs_8bpc, step for step. */
static void sample_taps(int in_size, double scale, double filterscale, double support, int o,
                        double *w, int *lo_out, int *len_out, int32_t *k) {
    double center = (o + 0.5) * scale;
    double ss = 1.0 / filterscale;
    /* Pillow truncates with (int) and then clamps; clamping first in double
     * gives the same numbers without overflowing int. */
    double lo_d = center - support + 0.5, hi_d = center + support + 0.5;
    int lo = lo_d <= 0.0 ? 0 : (int)lo_d;
    int hi = hi_d >= in_size ? in_size : (int)hi_d;
    int len = hi - lo;
    double sum = 0.0;
    for (int i = 0; i < len; i++) {
        w[i] = bicubic_kernel((i + lo - center + 0.5) * ss);
        sum += w[i];
    }
    for (int i = 0; i < len; i++) {
        double v = sum != 0.0 ? w[i] / sum : w[i];
        k[i] = (int32_t)(v < 0 ? -0.5 + v * (1 << PRECISION_BITS) : 0.5 + v * (1 << PRECISION_BITS));
    }
    *lo_out = lo;
    *len_out = len;
}

static int filter_taps_init(filter_taps *t, int in_size, int out_size, int first, int n,
                            sv_error *err) {
    *t = (filter_taps){0};
    /* Pillow takes the source extent from a float box. */
    double scale = (double)(float)in_size / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale; /* widen the kernel when shrinking */
    double support = 2.0 * filterscale;
    double ksize = ceil(support) * 2 + 1;
    if (ksize > INT_MAX) return sv_fail(err, "resize %d -> %d: filter too wide", in_size, out_size);
    t->ksize = (int)ksize;
    t->lo = sv_alloc_array((size_t)n, sizeof *t->lo, err, "resize taps");
    t->len = sv_alloc_array((size_t)n, sizeof *t->len, err, "resize taps");
    t->k = sv_alloc_array((size_t)n, (size_t)t->ksize * sizeof *t->k, err, "resize taps");
    double *w = sv_alloc_array((size_t)t->ksize, sizeof *w, err, "resize taps");
    int ok = t->lo && t->len && t->k && w;
    for (int i = 0; ok && i < n; i++)
        sample_taps(in_size, scale, filterscale, support, first + i, w, &t->lo[i], &t->len[i],
                    &t->k[(size_t)i * t->ksize]);
    free(w);
    if (ok) return SV_OK;
    filter_taps_free(t);
    return SV_FAIL;
}

/* (2^(P-1) + sum) >> P, clipped to 0..255 (Pillow's clip8). */
static uint8_t clip8(int64_t sum) {
    if (sum < 0) return 0;
    sum >>= PRECISION_BITS;
    return sum > 255 ? 255 : (uint8_t)sum;
}

/* Horizontal pass over `rows` rows of RGB pixels; strides in bytes. */
static void resample_horizontal(const uint8_t *src, size_t src_stride, int rows,
                                const filter_taps *t, int n, uint8_t *dst, size_t dst_stride) {
    for (int y = 0; y < rows; y++) {
        const uint8_t *s = src + (size_t)y * src_stride;
        uint8_t *d = dst + (size_t)y * dst_stride;
        for (int x = 0; x < n; x++) {
            const int32_t *k = &t->k[(size_t)x * t->ksize];
            const uint8_t *p = s + (size_t)t->lo[x] * 3;
            int64_t sum[3] = {1 << (PRECISION_BITS - 1), 1 << (PRECISION_BITS - 1),
                              1 << (PRECISION_BITS - 1)};
            for (int i = 0; i < t->len[x]; i++)
                for (int c = 0; c < 3; c++) sum[c] += (int64_t)p[3 * i + c] * k[i];
            for (int c = 0; c < 3; c++) d[3 * x + c] = clip8(sum[c]);
        }
    }
}

/* Vertical pass; src row 0 is input row `row0` (the taps index input rows). */
static void resample_vertical(const uint8_t *src, size_t src_stride, int row0, int cols,
                              const filter_taps *t, int n, uint8_t *dst, size_t dst_stride) {
    for (int y = 0; y < n; y++) {
        const int32_t *k = &t->k[(size_t)y * t->ksize];
        const uint8_t *s = src + (size_t)(t->lo[y] - row0) * src_stride;
        uint8_t *d = dst + (size_t)y * dst_stride;
        for (size_t b = 0; b < (size_t)cols * 3; b++) {
            int64_t sum = 1 << (PRECISION_BITS - 1);
            for (int i = 0; i < t->len[y]; i++) sum += (int64_t)s[(size_t)i * src_stride + b] * k[i];
            d[b] = clip8(sum);
        }
    }
}

/* Writes the window (x0, y0, win->w, win->h) of Pillow's resize of `in` to
 * out_w x out_h into win. Every output sample depends only on its own taps,
 * so computing just the window (e.g. a centre crop) gives the same bytes as
 * resizing everything. As in Pillow: horizontal pass first, over only the
 * input rows the vertical pass reads, into an 8-bit intermediate; an axis
 * whose size does not change is not resampled. */
static int resize_window(const sv_image *in, int out_w, int out_h, int x0, int y0,
                         sv_image *win, sv_error *err) {
    int need_h = out_w != in->w, need_v = out_h != in->h;
    size_t in_stride = (size_t)in->w * 3, win_stride = (size_t)win->w * 3;
    filter_taps th = {0}, tv = {0};
    uint8_t *mid = NULL;
    int rc = SV_FAIL;
    int row0 = y0, rows = win->h; /* input rows feeding the window */
    if (need_v) {
        if (filter_taps_init(&tv, in->h, out_h, y0, win->h, err)) goto done;
        row0 = tv.lo[0];
        rows = tv.lo[win->h - 1] + tv.len[win->h - 1] - row0;
    }
    const uint8_t *src = in->px + (size_t)row0 * in_stride + (need_h ? 0 : (size_t)x0 * 3);
    size_t src_stride = in_stride;
    if (need_h) {
        if (filter_taps_init(&th, in->w, out_w, x0, win->w, err)) goto done;
        uint8_t *dst = win->px;
        if (need_v && !(dst = mid = sv_alloc_array((size_t)rows, win_stride, err, "resize")))
            goto done;
        resample_horizontal(src, src_stride, rows, &th, win->w, dst, win_stride);
        src = dst;
        src_stride = win_stride;
    }
    if (need_v) {
        resample_vertical(src, src_stride, row0, win->w, &tv, win->h, win->px, win_stride);
    } else if (!need_h) {
        for (int y = 0; y < win->h; y++)
            memcpy(win->px + (size_t)y * win_stride, src + (size_t)y * src_stride, win_stride);
    }
    rc = SV_OK;
done:
    free(mid);
    filter_taps_free(&th);
    filter_taps_free(&tv);
    return rc;
}

int sv_image_resize_bicubic(const sv_image *in, int out_w, int out_h, sv_image *out,
                            sv_error *err) {
    *out = (sv_image){0};
    if (!in->px || in->w <= 0 || in->h <= 0)
        return sv_fail(err, "resize: empty input image (%dx%d)", in->w, in->h);
    if (image_alloc(out, out_w, out_h, "resize", err)) return SV_FAIL;
    if (resize_window(in, out_w, out_h, 0, 0, out, err)) {
        sv_image_free(out);
        return SV_FAIL;
    }
    return SV_OK;
}

/* ------------------------------------------------------- preprocessing */

static const char *const aspect_names[] = {"pad", "crop", "anyres"};

int sv_aspect_parse(const char *s, sv_aspect *out) {
    for (int a = SV_ASPECT_PAD; a <= SV_ASPECT_ANYRES; a++)
        if (strcmp(s, aspect_names[a]) == 0) {
            *out = (sv_aspect)a;
            return SV_OK;
        }
    return SV_FAIL;
}

const char *sv_aspect_name(sv_aspect a) {
    return a >= SV_ASPECT_PAD && a <= SV_ASPECT_ANYRES ? aspect_names[a] : "auto";
}

/* LLaVA's expand2square: the image centred on a fill-coloured square. */
static int pad_to_square(const sv_image *in, const uint8_t fill[3], sv_image *out,
                         sv_error *err) {
    int side = in->w > in->h ? in->w : in->h;
    if (image_alloc(out, side, side, "pad to square", err)) return SV_FAIL;
    size_t npix = (size_t)side * side;
    for (size_t i = 0; i < npix; i++) memcpy(out->px + 3 * i, fill, 3);
    int left = (side - in->w) / 2, top = (side - in->h) / 2;
    size_t row = (size_t)in->w * 3;
    for (int y = 0; y < in->h; y++)
        memcpy(out->px + ((size_t)(top + y) * side + left) * 3, in->px + (size_t)y * row, row);
    return SV_OK;
}

/* CLIPImageProcessor: shortest edge -> size, long edge int(size * long / short)
 * (transformers' get_resize_output_image_size), then the centre size x size
 * window at ((W - size) // 2, (H - size) // 2). */
static int resize_and_centre_crop(const sv_image *in, int size, sv_image *out, sv_error *err) {
    int portrait = in->w <= in->h;
    int64_t lng = portrait ? in->h : in->w, shrt = portrait ? in->w : in->h;
    double scaled_long = (double)((int64_t)size * lng) / (double)shrt;
    if (scaled_long > INT_MAX)
        return sv_fail(err, "crop: %dx%d image is too elongated to resize", in->w, in->h);
    int new_long = (int)scaled_long;
    int new_w = portrait ? size : new_long, new_h = portrait ? new_long : size;
    if (image_alloc(out, size, size, "crop", err)) return SV_FAIL;
    if (resize_window(in, new_w, new_h, (new_w - size) / 2, (new_h - size) / 2, out, err)) {
        sv_image_free(out);
        return SV_FAIL;
    }
    return SV_OK;
}

int sv_image_fit(const sv_image *in, sv_aspect aspect, int size, const uint8_t fill[3],
                 sv_image *out, sv_error *err) {
    *out = (sv_image){0};
    if (!in->px || in->w <= 0 || in->h <= 0)
        return sv_fail(err, "fit: empty input image (%dx%d)", in->w, in->h);
    if (size <= 0) return sv_fail(err, "fit: invalid target size %d", size);
    if (aspect != SV_ASPECT_PAD && aspect != SV_ASPECT_CROP)
        return sv_fail(err, "fit: aspect %s is not pad or crop", sv_aspect_name(aspect));
    if (aspect == SV_ASPECT_CROP) return resize_and_centre_crop(in, size, out, err);
    sv_image square;
    if (pad_to_square(in, fill, &square, err)) return SV_FAIL;
    int rc = sv_image_resize_bicubic(&square, size, size, out, err);
    sv_image_free(&square);
    return rc;
}

/* transformers rescales in float32 (u8 / 255.0f; multiplying by 1/255 is 1 ulp
 * off for some values) and normalises as (x - mean) / std, a true division. */
void sv_image_normalize(const sv_image *img, const float mean[3], const float std[3],
                        float *chw) {
    size_t npix = (size_t)img->w * img->h;
    for (int c = 0; c < 3; c++) {
        float *plane = chw + (size_t)c * npix;
        for (size_t i = 0; i < npix; i++) {
            float x = (float)img->px[3 * i + c] / 255.0f;
            plane[i] = (x - mean[c]) / std[c];
        }
    }
}
