#include <stdlib.h>

#include "preprocess.h"

void sv_pad_colour(const sv_config *cfg, uint8_t fill[3]) {
    for (int c = 0; c < 3; c++) fill[c] = (uint8_t)(int)(cfg->image_mean[c] * 255.0f);
}

int sv_preprocess_file(const sv_config *cfg, const char *path, sv_aspect aspect, float **pixels,
                       sv_error *err) {
    *pixels = NULL;
    int size = cfg->vision.image_size;
    uint8_t fill[3];
    sv_pad_colour(cfg, fill);
    sv_image img = {0}, fitted = {0};
    if (sv_image_load(&img, path, 0, err)) return SV_FAIL;
    int rc = sv_image_fit(&img, aspect, size, fill, &fitted, err);
    sv_image_free(&img);
    if (rc) return SV_FAIL;
    *pixels = sv_alloc_array((size_t)3 * size * size, sizeof(float), err, path);
    if (*pixels) sv_image_normalize(&fitted, cfg->image_mean, cfg->image_std, *pixels);
    sv_image_free(&fitted);
    return *pixels ? SV_OK : SV_FAIL;
}
