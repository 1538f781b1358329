/* The checkpoint's image preprocessing: file -> pixel tensor the vision tower takes. */
#ifndef SV_PREPROCESS_H
#define SV_PREPROCESS_H

#include "config.h"
#include "image.h"

/* Decodes `path`, fits it to the tower's image size (pad or crop) and
 * normalises with the checkpoint's mean and std. *pixels is malloc'd
 * float32 [3, S, S]. */
int sv_preprocess_file(const sv_config *cfg, const char *path, sv_aspect aspect, float **pixels,
                       sv_error *err);

/* The pad colour LLaVA uses: tuple(int(x * 255) for x in image_mean). */
void sv_pad_colour(const sv_config *cfg, uint8_t fill[3]);

#endif
