/* The checkpoint's image preprocessing: file -> the views the vision tower takes.
 *
 * LLaVA-1.5 gives one view per image (padded to a square or centre-cropped);
 * LLaVA-NeXT gives the base view (the whole image squashed to the tower's
 * size) and then its anyres tiles (runtime/anyres.h). */
#ifndef SV_PREPROCESS_H
#define SV_PREPROCESS_H

#include "anyres.h"
#include "config.h"
#include "image.h"

typedef struct sv_views {
    sv_aspect aspect;       /* pad, crop or anyres (never auto) */
    int n, size;            /* n views of size x size */
    sv_image *u8;           /* [n] the views' 8-bit pixels, before normalisation */
    float *pixels;          /* [n, 3, size, size] normalised with the checkpoint's mean/std */
    int image_w, image_h;   /* the original image */
    sv_anyres_plan plan;    /* aspect anyres: how the tiles were cut */
} sv_views;

/* The aspect a model takes: SV_ASPECT_AUTO becomes anyres for LLaVA-NeXT and
 * pad otherwise; pad or crop on a NeXT model, or anyres on another, fail. */
int sv_preprocess_aspect(const sv_config *cfg, sv_aspect requested, sv_aspect *out,
                         sv_error *err);

/* Visual rows a w x h image becomes in the prompt under a resolved aspect. */
size_t sv_visual_rows(const sv_config *cfg, sv_aspect aspect, int w, int h);

/* The same from the image file's header (no decoding); path names the file in
 * errors. An image whose rows exceed max_position_embeddings fails here. */
int sv_visual_rows_of_file(const sv_config *cfg, sv_aspect aspect, const char *path,
                           size_t *n_rows, sv_error *err);

/* Views of a decoded image (aspect resolved or AUTO); path names it in errors. */
int sv_preprocess_image(const sv_config *cfg, const sv_image *img, sv_aspect aspect,
                        const char *path, sv_views *out, sv_error *err);

/* Decodes `path` and makes its views. */
int sv_preprocess_file(const sv_config *cfg, const char *path, sv_aspect aspect, sv_views *out,
                       sv_error *err);
void sv_views_free(sv_views *v);

/* The pad colour LLaVA uses: tuple(int(x * 255) for x in image_mean). */
void sv_pad_colour(const sv_config *cfg, uint8_t fill[3]);

#endif
