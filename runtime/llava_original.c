#include <math.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "llava_original.h"

/* IMAGE_TOKEN_INDEX of llava/constants.py: the placeholder id in the original
 * code's input_ids, outside the 32000-piece vocabulary. */
#define ORIGINAL_IMAGE_TOKEN (-200)

int sv_original_is(const cJSON *root) {
    const cJSON *a;
    cJSON_ArrayForEach(a, cJSON_GetObjectItemCaseSensitive(root, "architectures"))
        if (cJSON_IsString(a) && strcmp(a->valuestring, "LlavaLlamaForCausalLM") == 0) return 1;
    return 0;
}

static const char *string_field(const cJSON *root, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

/* A string field that must be absent or one of the accepted values. */
static int check_choice(const cJSON *root, const char *key, const char *const *ok, int n_ok,
                        const char *path, sv_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) return SV_OK;
    for (int i = 0; cJSON_IsString(v) && i < n_ok; i++)
        if (strcmp(v->valuestring, ok[i]) == 0) return SV_OK;
    return sv_fail(err, "%s: %s %s is not supported (%s%s%s)", path, key,
                   cJSON_IsString(v) ? v->valuestring : "(not a string)", ok[0],
                   n_ok > 1 ? " or " : "", n_ok > 1 ? ok[1] : "");
}

/* The options the forward runtime does not implement, refused by name. */
static int check_options(const cJSON *root, int anyres, const char *path, sv_error *err) {
    static const char *const projector[] = {"mlp2x_gelu"}, *const feature[] = {"patch"},
                             *const aspect[] = {"pad", "anyres"};
    static const char *const merge_flat[] = {"flat"}, *const merge_unpad[] = {"spatial_unpad"};
    if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "mm_use_im_start_end")))
        return sv_fail(err, "%s: mm_use_im_start_end true is not supported (the image between "
                            "<im_start> and <im_end> tokens)", path);
    if (!string_field(root, "mm_projector_type"))
        return sv_fail(err, "%s: mm_projector_type is missing (mlp2x_gelu)", path);
    return check_choice(root, "mm_projector_type", projector, 1, path, err) ||
           check_choice(root, "mm_vision_select_feature", feature, 1, path, err) ||
           check_choice(root, "image_aspect_ratio", aspect, 2, path, err) ||
           check_choice(root, "mm_patch_merge_type", anyres ? merge_unpad : merge_flat, 1, path,
                        err) ? SV_FAIL : SV_OK;
}

static int get_int(const cJSON *root, const char *key, int *out, const char *path,
                   sv_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(root, key);
    if (!v || cJSON_IsNull(v)) return SV_OK;
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || fabs(v->valuedouble) > 1e9)
        return sv_fail(err, "%s: %s must be an integer", path, key);
    *out = (int)v->valuedouble;
    return SV_OK;
}

/* The original code reads each pinpoint as (width, height)
 * (llava/mm_utils.py select_best_resolution); sv_config keeps [height, width]. */
static int anyres_pinpoints(sv_config *c, const cJSON *root, const char *path, sv_error *err) {
    if (!cJSON_IsArray(cJSON_GetObjectItemCaseSensitive(root, "image_grid_pinpoints")))
        return sv_fail(err, "%s: image_aspect_ratio anyres needs image_grid_pinpoints", path);
    for (int i = 0; i < c->n_pinpoints; i++) {
        int w = c->pinpoints[i][0];
        c->pinpoints[i][0] = c->pinpoints[i][1];
        c->pinpoints[i][1] = w;
    }
    c->anyres_int_unpad = 1; /* unpad_image truncates with int() */
    return SV_OK;
}

int sv_original_parse(sv_config *c, const cJSON *root, const char *path, sv_error *err) {
    const char *aspect = string_field(root, "image_aspect_ratio");
    int anyres = aspect && strcmp(aspect, "anyres") == 0;
    if (check_options(root, anyres, path, err)) return SV_FAIL;
    const char *tower = string_field(root, "mm_vision_tower");
    if (!tower || !tower[0] || strlen(tower) >= sizeof c->vision_tower)
        return sv_fail(err, "%s: mm_vision_tower must name the CLIP tower (a hub id or a "
                            "directory)", path);
    snprintf(c->vision_tower, sizeof c->vision_tower, "%s", tower);
    c->original = 1;
    c->image_token_id = ORIGINAL_IMAGE_TOKEN;
    c->keep_cls = 0;
    c->feature_layer = -2;
    c->mm_hidden = c->vision.hidden;
    /* builder.py loads the tower from its directory, but with this flag the
     * checkpoint's (fine-tuned) copy is loaded over it */
    c->tower_in_checkpoint =
        cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(root, "unfreeze_mm_vision_tower"));
    if (get_int(root, "mm_vision_select_layer", &c->feature_layer, path, err) ||
        get_int(root, "mm_hidden_size", &c->mm_hidden, path, err))
        return SV_FAIL;
    /* the llava-hf reading of image_grid_pinpoints already ran; only the aspect
     * setting decides anyres here, as in the original code */
    c->anyres = anyres;
    return anyres ? anyres_pinpoints(c, root, path, err) : SV_OK;
}

static int tower_dir(const sv_config *c, const char *config_path, const char *override,
                     char *out, size_t size, sv_error *err) {
    struct stat st;
    const char *dir = override ? override : c->vision_tower;
    if (override && (stat(override, &st) != 0 || !S_ISDIR(st.st_mode)))
        return sv_fail(err, "--vision-tower %s: not a directory", override);
    if (!override && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)))
        return sv_fail(err, "%s: mm_vision_tower '%s' is not a directory here (a hub id?): "
                            "download that CLIP release and give its directory with "
                            "--vision-tower DIR", config_path, c->vision_tower);
    if ((size_t)snprintf(out, size, "%s", dir) >= size)
        return sv_fail(err, "%s: vision tower path too long", dir);
    return SV_OK;
}

int sv_config_load_with_tower(sv_config *c, const char *dir, const char *override,
                              char *out, size_t size, sv_error *err) {
    char config_path[4096];
    snprintf(config_path, sizeof config_path, "%s/config.json", dir);
    if (size) out[0] = 0;
    if (sv_config_load(c, dir, err)) return SV_FAIL;
    if (!c->original) return SV_OK;
    return tower_dir(c, config_path, override, out, size, err) ||
           sv_config_load_tower(c, out, err) ? SV_FAIL : SV_OK;
}
