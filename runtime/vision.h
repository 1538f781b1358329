/* CLIP ViT vision tower and the LLaVA projector: an image's views become the
 * rows that replace its placeholder in the prompt. */
#ifndef SV_VISION_H
#define SV_VISION_H

#include "anyres.h"
#include "context.h"
#include "preprocess.h"

/* pixels [3, S, S] (one normalised view) -> hidden state after
 * cfg.n_vision_layers_run encoder layers, [1 + n_patches, dv], CLS in row 0.
 * Points into ctx (valid until the next vision call). */
const float *sv_vision_features(sv_context *ctx, const float *pixels);

/* Features (CLS dropped for the "default" strategy) through the projector:
 * out [cfg.view_tokens, hidden]. */
void sv_vision_project(sv_context *ctx, const float *features, float *out);

/* An image as prompt rows. One view (LLaVA-1.5): its projector rows. Anyres
 * (LLaVA-NeXT): the base view's rows, then the unpadded tile map row by row,
 * each row followed by image_newline (sources says which is which). */
typedef struct sv_encoded_image {
    size_t n_rows;
    float *rows;              /* [n_rows, hidden] */
    int n_views;
    sv_row_source *sources;   /* [n_rows], anyres only (NULL: row i is token i of view 0) */
} sv_encoded_image;

int sv_encode_image(sv_context *ctx, const sv_views *views, sv_encoded_image *out,
                    sv_error *err);
/* Both steps for an image file: preprocess (aspect may be AUTO) and encode. */
int sv_encode_image_file(sv_context *ctx, const char *path, sv_aspect aspect,
                         sv_encoded_image *out, sv_error *err);
void sv_encoded_image_free(sv_encoded_image *e);

#endif
