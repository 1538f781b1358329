/* Images: decoding (PNG via libpng, JPEG via libjpeg-turbo) to 8-bit RGB, and
 * the LLaVA / CLIP preprocessing, reproducing Pillow's BICUBIC resampling
 * exactly (the model was trained on Pillow's output). */
#ifndef SV_IMAGE_H
#define SV_IMAGE_H

#include <stdint.h>

#include "status.h"

/* Pillow refuses images above 2 x 89478485 pixels as decompression bombs. */
#define SV_IMAGE_MAX_PIXELS ((int64_t)178956970)

typedef struct sv_image {
    int w, h;
    uint8_t *px; /* h rows of w RGB triplets */
} sv_image;

/* How an image becomes the tower's views: pad or crop to one square view
 * (LLaVA-1.5), or anyres tiles (LLaVA-NeXT, runtime/anyres.h). AUTO: the
 * model's own (sv_preprocess_aspect). */
typedef enum { SV_ASPECT_AUTO = -1, SV_ASPECT_PAD, SV_ASPECT_CROP, SV_ASPECT_ANYRES } sv_aspect;

/* Decodes PNG or JPEG (by content, not extension) as Pillow's convert('RGB')
 * would: gray replicated, palette expanded, alpha dropped (not composited),
 * 16-bit reduced to 8 (the high byte; 16-bit grey is clipped at 255, as Pillow
 * 9.4 does), CMYK/YCCK JPEG through Pillow's CMYK -> RGB. Truncated files,
 * 0x0 images and images over max_pixels (checked from the header, before any
 * pixel memory) fail. max_pixels <= 0 means SV_IMAGE_MAX_PIXELS. On failure
 * *out is left empty. */
int sv_image_load(sv_image *out, const char *path, int64_t max_pixels, sv_error *err);
/* The size of an image from its header alone (the checks of sv_image_load
 * that need no pixels): how many visual tokens it becomes is known early. */
int sv_image_probe(const char *path, int *w, int *h, sv_error *err);
int sv_image_alloc(sv_image *out, int w, int h, sv_error *err);
void sv_image_free(sv_image *img);

/* Pillow Image.resize((out_w, out_h), BICUBIC) on an 8-bit RGB image. */
int sv_image_resize_bicubic(const sv_image *in, int out_w, int out_h, sv_image *out,
                            sv_error *err);

/* "pad", "crop" or "anyres" -> aspect; 0 on success. */
int sv_aspect_parse(const char *s, sv_aspect *out);
const char *sv_aspect_name(sv_aspect a);

/* size x size 8-bit image (aspect pad or crop). pad (LLaVA-1.5): square canvas of side max(w,h)
 * filled with `fill`, image pasted at ((side-w)/2, (side-h)/2), then resized.
 * crop (CLIPImageProcessor): shortest edge -> size (long edge truncated as
 * transformers does), then centre crop. */
int sv_image_fit(const sv_image *in, sv_aspect aspect, int size, const uint8_t fill[3],
                 sv_image *out, sv_error *err);

/* chw[c][y][x] = (px/255.0f - mean[c]) / std[c], float32 [3, h, w]. */
void sv_image_normalize(const sv_image *img, const float mean[3], const float std[3],
                        float *chw);

#endif
