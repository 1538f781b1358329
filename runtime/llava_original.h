/* The original LLaVA releases (liuhaotian/llava-v1.5-7b, llava-v1.6-vicuna-*):
 * config.json with architectures LlavaLlamaForCausalLM, the LLaMA fields at the
 * top level and LLaVA's own mm_* fields (llava/model/llava_arch.py,
 * llava/model/multimodal_encoder/builder.py); the CLIP tower in a directory of
 * its own that mm_vision_tower names.
 *
 * Implemented: mm_projector_type mlp2x_gelu, mm_vision_select_feature patch,
 * mm_use_im_start_end false, image_aspect_ratio pad or anyres (with
 * mm_patch_merge_type spatial_unpad); anything else is refused by name. */
#ifndef SV_LLAVA_ORIGINAL_H
#define SV_LLAVA_ORIGINAL_H

#include <cjson/cJSON.h>
#include <stddef.h>

#include "config.h"

/* 1 if config.json's root describes an original release. */
int sv_original_is(const cJSON *root);

/* Reads the mm_* fields into c (the LLaMA fields are read as for llava-hf):
 * c->original, the feature layer, anyres and its pinpoints turned into
 * [height, width], c->vision_tower. */
int sv_original_parse(sv_config *c, const cJSON *root, const char *path, sv_error *err);

/* sv_config_load, and for an original release the tower's config too
 * (sv_config_load_tower), its directory written to tower_dir ("" otherwise):
 * `override` (--vision-tower) if given, else mm_vision_tower when it names an
 * existing directory; a hub id is an error that says which option to give. */
int sv_config_load_with_tower(sv_config *c, const char *dir, const char *override,
                              char *tower_dir, size_t size, sv_error *err);

#endif
