/* LLaVA-NeXT's "anyres" image geometry, exactly as transformers computes it
 * (LlavaNextImageProcessor and LlavaNextForConditionalGeneration; the golden
 * README's "LLaVA-NeXT" section works through examples):
 *
 *   best pinpoint [h, w]  the tiling that keeps the most of the image's pixels
 *                         (ties: the least padding, then the first listed)
 *   resize                aspect kept, long side to the pinpoint, the other ceil'd
 *   pad                   zeros around it, centred, the odd pixel bottom/right
 *   tiles                 (h/S) x (w/S) views of S x S, row-major, after the base view
 *   feature map           the tiles' G x G token grids side by side: (h/S·G) x (w/S·G)
 *   unpad                 the map's rows (or columns) that only saw padding are cut
 *   rows                  base view's G² tokens, then each kept map row + one newline
 *
 * Original checkpoints (cfg->anyres_int_unpad) differ in one rule: unpad
 * truncates with int() where transformers rounds to 7 digits first; their
 * (width, height) pinpoints are stored as [height, width] by llava_original.c.
 *
 * Everything here is arithmetic on sizes: it never touches pixels or features,
 * so the token count of an image is known from its header alone. */
#ifndef SV_ANYRES_H
#define SV_ANYRES_H

#include <stddef.h>
#include <stdint.h>

#include "config.h"

typedef struct sv_anyres_plan {
    int image_w, image_h;       /* the original image */
    int best_w, best_h;         /* the chosen pinpoint */
    int resized_w, resized_h;   /* the image resized into it */
    int pad_left, pad_top;      /* where the resized image sits in the pinpoint canvas */
    int rows, cols;             /* tiles of the tower's size, row-major */
    int grid;                   /* tokens per tile side (image_size / patch_size) */
    int kept_y0, kept_y1;       /* kept rows [y0, y1) of the (rows·grid) x (cols·grid) map */
    int kept_x0, kept_x1;       /* kept columns [x0, x1) */
} sv_anyres_plan;

/* The plan for a w x h image under cfg's pinpoints (cfg->anyres must be set). */
void sv_anyres_plan_image(const sv_config *cfg, int w, int h, sv_anyres_plan *out);

/* Views the image becomes: the base view plus the tiles. */
int sv_anyres_n_views(const sv_anyres_plan *p);

/* Visual rows in the prompt: grid² + kept_rows · (kept_cols + 1). */
size_t sv_anyres_n_rows(const sv_anyres_plan *p);

/* Where each visual row comes from, in prompt order. */
typedef enum { SV_ROW_BASE = 0, SV_ROW_TILE = 1, SV_ROW_NEWLINE = 2 } sv_row_kind;

typedef struct sv_row_source {
    int32_t kind;   /* sv_row_kind */
    int32_t view;   /* 0 for the base view, 1.. for tiles, -1 for a newline */
    int32_t y, x;   /* token position in its view's grid; a newline: its map row, x -1 */
} sv_row_source;

/* out[sv_anyres_n_rows(p)]: the source of every visual row. */
void sv_anyres_layout(const sv_anyres_plan *p, sv_row_source *out);

#endif
