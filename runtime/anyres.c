#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "anyres.h"

/* select_best_resolution: scale into each pinpoint keeping the aspect; the
 * effective resolution is what survives of the original's pixels. */
static void best_pinpoint(const sv_config *cfg, int w, int h, int *best_w, int *best_h) {
    int64_t best_eff = -1, best_waste = 0;
    for (int i = 0; i < cfg->n_pinpoints; i++) {
        int ph = cfg->pinpoints[i][0], pw = cfg->pinpoints[i][1];
        double s = fmin((double)pw / w, (double)ph / h);
        int64_t eff = (int64_t)(w * s) * (int64_t)(h * s);
        if (eff > (int64_t)w * h) eff = (int64_t)w * h;
        int64_t waste = (int64_t)pw * ph - eff;
        if (eff > best_eff || (eff == best_eff && waste < best_waste)) {
            best_eff = eff, best_waste = waste;
            *best_w = pw, *best_h = ph;
        }
    }
}

/* Python's int(round(x, 7)): round to 7 decimals, correctly rounded from the
 * binary value as Python does (glibc's printf rounds the same way), then
 * truncate. unpad_image needs it: 300·(672/451) is 446.9999999…, which is 447. */
static int int_round7(double x) {
    char buf[64];
    snprintf(buf, sizeof buf, "%.7f", x);
    return (int)strtod(buf, NULL);
}

static int int_trunc(double x) { return (int)x; }

void sv_anyres_plan_image(const sv_config *cfg, int w, int h, sv_anyres_plan *p) {
    int size = cfg->vision.image_size;
    *p = (sv_anyres_plan){.image_w = w, .image_h = h, .grid = size / cfg->vision.patch_size};
    best_pinpoint(cfg, w, h, &p->best_w, &p->best_h);
    /* get_patch_output_size */
    double sw = (double)p->best_w / w, sh = (double)p->best_h / h;
    if (sw < sh) {
        p->resized_w = p->best_w;
        p->resized_h = (int)fmin(ceil(h * sw), p->best_h);
    } else {
        p->resized_h = p->best_h;
        p->resized_w = (int)fmin(ceil(w * sh), p->best_w);
    }
    p->pad_left = (p->best_w - p->resized_w) / 2;
    p->pad_top = (p->best_h - p->resized_h) / 2;
    p->rows = p->best_h / size, p->cols = p->best_w / size;
    /* unpad_image on the (rows·grid) x (cols·grid) feature map with the original (h, w) */
    int map_h = p->rows * p->grid, map_w = p->cols * p->grid;
    p->kept_y0 = 0, p->kept_y1 = map_h, p->kept_x0 = 0, p->kept_x1 = map_w;
    /* the original code (llava/mm_utils.py unpad_image) truncates with plain int() */
    int (*to_int)(double) = cfg->anyres_int_unpad ? int_trunc : int_round7;
    if ((double)w / h > (double)map_w / map_h) {
        int new_h = to_int(h * ((double)map_w / w));
        int pad = (map_h - new_h) / 2;
        p->kept_y0 = pad, p->kept_y1 = map_h - pad;
    } else {
        int new_w = to_int(w * ((double)map_h / h));
        int pad = (map_w - new_w) / 2;
        p->kept_x0 = pad, p->kept_x1 = map_w - pad;
    }
}

int sv_anyres_n_views(const sv_anyres_plan *p) { return 1 + p->rows * p->cols; }

size_t sv_anyres_n_rows(const sv_anyres_plan *p) {
    size_t kh = (size_t)(p->kept_y1 - p->kept_y0), kw = (size_t)(p->kept_x1 - p->kept_x0);
    return (size_t)p->grid * p->grid + kh * (kw + 1);
}

void sv_anyres_layout(const sv_anyres_plan *p, sv_row_source *out) {
    int g = p->grid;
    size_t r = 0;
    for (int y = 0; y < g; y++)
        for (int x = 0; x < g; x++) out[r++] = (sv_row_source){SV_ROW_BASE, 0, y, x};
    for (int Y = p->kept_y0; Y < p->kept_y1; Y++) {
        for (int X = p->kept_x0; X < p->kept_x1; X++)
            out[r++] = (sv_row_source){SV_ROW_TILE, 1 + (Y / g) * p->cols + X / g, Y % g, X % g};
        out[r++] = (sv_row_source){SV_ROW_NEWLINE, -1, Y, -1};
    }
}
