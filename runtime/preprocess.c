#include <stdlib.h>
#include <string.h>

#include "preprocess.h"

void sv_pad_colour(const sv_config *cfg, uint8_t fill[3]) {
    for (int c = 0; c < 3; c++) fill[c] = (uint8_t)(int)(cfg->image_mean[c] * 255.0f);
}

int sv_preprocess_aspect(const sv_config *cfg, sv_aspect requested, sv_aspect *out,
                         sv_error *err) {
    sv_aspect own = cfg->anyres ? SV_ASPECT_ANYRES : SV_ASPECT_PAD;
    if (requested == SV_ASPECT_AUTO) requested = own;
    if ((requested == SV_ASPECT_ANYRES) != (own == SV_ASPECT_ANYRES))
        return sv_fail(err, "--aspect %s does not apply to this model: %s", sv_aspect_name(requested),
                       cfg->anyres ? "LLaVA-NeXT takes anyres tiles only"
                                   : "anyres needs a LLaVA-NeXT model (image_grid_pinpoints)");
    *out = requested;
    return SV_OK;
}

size_t sv_visual_rows(const sv_config *cfg, sv_aspect aspect, int w, int h) {
    if (aspect != SV_ASPECT_ANYRES) return (size_t)cfg->view_tokens;
    sv_anyres_plan plan;
    sv_anyres_plan_image(cfg, w, h, &plan);
    return sv_anyres_n_rows(&plan);
}

/* Checked before any pixel memory: the pinpoints may be large enough that a
 * canvas of tiles would not fit in memory, and the prompt could never run. */
static int check_rows_fit(const sv_config *cfg, const char *path, int w, int h, size_t rows,
                          sv_error *err) {
    if (rows > (size_t)cfg->text.max_pos)
        return sv_fail(err, "%s: a %dx%d image becomes %zu visual tokens, more than the "
                            "model's max_position_embeddings (%d)", path, w, h, rows,
                       cfg->text.max_pos);
    return SV_OK;
}

int sv_visual_rows_of_file(const sv_config *cfg, sv_aspect aspect, const char *path,
                           size_t *n_rows, sv_error *err) {
    int w, h;
    if (sv_preprocess_aspect(cfg, aspect, &aspect, err) || sv_image_probe(path, &w, &h, err))
        return SV_FAIL;
    *n_rows = sv_visual_rows(cfg, aspect, w, h);
    return check_rows_fit(cfg, path, w, h, *n_rows, err);
}

/* The image resized (aspect kept) into the plan's pinpoint on a black canvas. */
static int anyres_canvas(const sv_image *img, const sv_anyres_plan *p, sv_image *canvas,
                         sv_error *err) {
    sv_image resized;
    if (sv_image_resize_bicubic(img, p->resized_w, p->resized_h, &resized, err)) return SV_FAIL;
    int rc = sv_image_alloc(canvas, p->best_w, p->best_h, err);
    if (rc == SV_OK) {
        memset(canvas->px, 0, (size_t)p->best_w * p->best_h * 3);
        size_t row = (size_t)resized.w * 3;
        for (int y = 0; y < resized.h; y++)
            memcpy(canvas->px + ((size_t)(p->pad_top + y) * p->best_w + p->pad_left) * 3,
                   resized.px + (size_t)y * row, row);
    }
    sv_image_free(&resized);
    return rc;
}

/* views[1..]: the canvas cut into size x size tiles, row-major. */
static int cut_tiles(const sv_image *canvas, int size, sv_image *views, int n_tiles,
                     sv_error *err) {
    int cols = canvas->w / size;
    for (int t = 0; t < n_tiles; t++) {
        if (sv_image_alloc(&views[t], size, size, err)) return SV_FAIL;
        int y0 = t / cols * size, x0 = t % cols * size;
        for (int y = 0; y < size; y++)
            memcpy(views[t].px + (size_t)y * size * 3,
                   canvas->px + ((size_t)(y0 + y) * canvas->w + x0) * 3, (size_t)size * 3);
    }
    return SV_OK;
}

/* LlavaNextImageProcessor.get_image_patches: base view, then the tiles. */
static int anyres_views(const sv_config *cfg, const sv_image *img, sv_views *v, sv_error *err) {
    sv_anyres_plan_image(cfg, img->w, img->h, &v->plan);
    v->n = sv_anyres_n_views(&v->plan);
    v->u8 = calloc((size_t)v->n, sizeof *v->u8);
    if (!v->u8) return sv_fail(err, "preprocess: out of memory");
    sv_image canvas;
    if (sv_image_resize_bicubic(img, v->size, v->size, &v->u8[0], err) ||
        anyres_canvas(img, &v->plan, &canvas, err))
        return SV_FAIL;
    int rc = cut_tiles(&canvas, v->size, v->u8 + 1, v->n - 1, err);
    sv_image_free(&canvas);
    return rc;
}

static int make_views(const sv_config *cfg, const sv_image *img, sv_views *v, sv_error *err) {
    if (v->aspect == SV_ASPECT_ANYRES) return anyres_views(cfg, img, v, err);
    uint8_t fill[3];
    sv_pad_colour(cfg, fill);
    v->n = 1;
    v->u8 = calloc(1, sizeof *v->u8);
    if (!v->u8) return sv_fail(err, "preprocess: out of memory");
    return sv_image_fit(img, v->aspect, v->size, fill, &v->u8[0], err);
}

int sv_preprocess_image(const sv_config *cfg, const sv_image *img, sv_aspect aspect,
                        const char *path, sv_views *out, sv_error *err) {
    memset(out, 0, sizeof *out);
    out->size = cfg->vision.image_size;
    out->image_w = img->w, out->image_h = img->h;
    if (sv_preprocess_aspect(cfg, aspect, &out->aspect, err) ||
        check_rows_fit(cfg, path, img->w, img->h, sv_visual_rows(cfg, out->aspect, img->w, img->h),
                       err) ||
        make_views(cfg, img, out, err))
        goto fail;
    size_t plane = (size_t)3 * out->size * out->size;
    out->pixels = sv_alloc_array((size_t)out->n * plane, sizeof(float), err, path);
    if (!out->pixels) goto fail;
    for (int i = 0; i < out->n; i++)
        sv_image_normalize(&out->u8[i], cfg->image_mean, cfg->image_std, out->pixels + i * plane);
    return SV_OK;
fail:
    sv_views_free(out);
    return SV_FAIL;
}

int sv_preprocess_file(const sv_config *cfg, const char *path, sv_aspect aspect, sv_views *out,
                       sv_error *err) {
    memset(out, 0, sizeof *out);
    sv_image img;
    if (sv_image_load(&img, path, 0, err)) return SV_FAIL;
    int rc = sv_preprocess_image(cfg, &img, aspect, path, out, err);
    sv_image_free(&img);
    return rc;
}

void sv_views_free(sv_views *v) {
    for (int i = 0; v->u8 && i < v->n; i++) sv_image_free(&v->u8[i]);
    free(v->u8);
    free(v->pixels);
    v->u8 = NULL, v->pixels = NULL;
}
