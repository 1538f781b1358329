/* CLIP ViT vision tower and the LLaVA projector. */
#ifndef SV_VISION_H
#define SV_VISION_H

#include "context.h"

/* pixels [3, S, S] (normalised) -> hidden state after cfg.n_vision_layers_run
 * encoder layers, [1 + n_patches, dv], CLS in row 0. Points into ctx (valid
 * until the next vision call). */
const float *sv_vision_features(sv_context *ctx, const float *pixels);

/* Features (CLS dropped for the "default" strategy) through the projector:
 * out [cfg.n_visual_tokens, hidden]. */
void sv_vision_project(sv_context *ctx, const float *features, float *out);

/* Both of the above: pixels -> the image's rows of the prompt embedding. */
void sv_encode_image(sv_context *ctx, const float *pixels, float *out);

#endif
