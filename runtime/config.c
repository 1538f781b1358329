#include <cjson/cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "llava_original.h"

/* Readers for optional numeric fields: absent or null keeps the default;
 * present with the wrong type is an error. */
static int get_int(const cJSON *obj, const char *key, int *out, const char *path,
                   const char *section, sv_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) return SV_OK;
    double d = cJSON_IsNumber(v) ? v->valuedouble : NAN;
    if (!(d == floor(d)))
        return sv_fail(err, "%s: %s%s must be an integer", path, section, key);
    if (!(fabs(d) < 1e9))
        return sv_fail(err, "%s: %s%s is %g, too large (at most 999999999)", path, section, key,
                       d);
    *out = (int)d;
    return SV_OK;
}

static int get_double(const cJSON *obj, const char *key, double *out, const char *path,
                      const char *section, sv_error *err) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    if (!v || cJSON_IsNull(v)) return SV_OK;
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble))
        return sv_fail(err, "%s: %s%s must be a number", path, section, key);
    *out = v->valuedouble;
    return SV_OK;
}

static const char *get_string(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return cJSON_IsString(v) ? v->valuestring : NULL;
}

static void text_defaults(sv_text_config *t, const char *model_type) {
    /* transformers LlamaConfig() */
    *t = (sv_text_config){.hidden = 4096, .n_layers = 32, .n_heads = 32, .n_kv_heads = 0,
                          .head_dim = 0, .inter = 11008, .vocab = 32000, .max_pos = 2048,
                          .rms_eps = 1e-6f, .rope_theta = 10000.0, .bos_id = 1, .eos_id = 2};
    if (model_type && strcmp(model_type, "mistral") == 0) {
        /* MistralConfig(): llava-hf configs omit the fields equal to these */
        t->inter = 14336, t->n_kv_heads = 8, t->max_pos = 4096 * 32, t->sliding_window = 4096;
    }
}

static void vision_defaults(sv_vision_config *v, int llava_default) {
    /* CLIPVisionConfig(); LlavaConfig substitutes CLIP ViT-L/14-336 when vision_config is absent */
    if (llava_default)
        *v = (sv_vision_config){1024, 24, 16, 4096, 336, 14, 3, 1e-5f};
    else
        *v = (sv_vision_config){768, 12, 12, 3072, 224, 32, 3, 1e-5f};
}

static int parse_text(sv_text_config *t, const cJSON *o, int top_vocab, const char *path,
                      sv_error *err) {
    const char *s = "text_config.";
    double eps = t->rms_eps;
    if (top_vocab > 0) t->vocab = top_vocab;
    if (get_int(o, "hidden_size", &t->hidden, path, s, err) ||
        get_int(o, "num_hidden_layers", &t->n_layers, path, s, err) ||
        get_int(o, "num_attention_heads", &t->n_heads, path, s, err) ||
        get_int(o, "num_key_value_heads", &t->n_kv_heads, path, s, err) ||
        get_int(o, "head_dim", &t->head_dim, path, s, err) ||
        get_int(o, "intermediate_size", &t->inter, path, s, err) ||
        get_int(o, "vocab_size", &t->vocab, path, s, err) ||
        get_int(o, "max_position_embeddings", &t->max_pos, path, s, err) ||
        get_int(o, "bos_token_id", &t->bos_id, path, s, err) ||
        get_int(o, "eos_token_id", &t->eos_id, path, s, err) ||
        get_double(o, "rms_norm_eps", &eps, path, s, err) ||
        get_double(o, "rope_theta", &t->rope_theta, path, s, err))
        return SV_FAIL;
    const char *type = get_string(o, "model_type");
    const cJSON *window = cJSON_GetObjectItemCaseSensitive(o, "sliding_window");
    if (type && strcmp(type, "mistral") == 0) {
        if (cJSON_IsNull(window)) t->sliding_window = 0;
        else if (get_int(o, "sliding_window", &t->sliding_window, path, s, err)) return SV_FAIL;
        if (t->sliding_window < 0)
            return sv_fail(err, "%s: text_config.sliding_window must be positive or null, got %d",
                           path, t->sliding_window);
    }
    t->rms_eps = (float)eps;
    const cJSON *scaling = cJSON_GetObjectItemCaseSensitive(o, "rope_scaling");
    if (scaling && !cJSON_IsNull(scaling))
        return sv_fail(err, "%s: text_config.rope_scaling is not supported", path);
    const char *act = get_string(o, "hidden_act");
    if (act && strcmp(act, "silu") != 0)
        return sv_fail(err, "%s: text_config.hidden_act '%s' is not supported (silu)", path, act);
    if (t->n_kv_heads == 0) t->n_kv_heads = t->n_heads;
    if (t->head_dim == 0 && t->n_heads > 0) t->head_dim = t->hidden / t->n_heads;
    return SV_OK;
}

static int parse_vision(sv_vision_config *v, const cJSON *o, const char *path, sv_error *err) {
    const char *s = "vision_config.";
    double eps = v->ln_eps;
    if (get_int(o, "hidden_size", &v->hidden, path, s, err) ||
        get_int(o, "num_hidden_layers", &v->n_layers, path, s, err) ||
        get_int(o, "num_attention_heads", &v->n_heads, path, s, err) ||
        get_int(o, "intermediate_size", &v->inter, path, s, err) ||
        get_int(o, "image_size", &v->image_size, path, s, err) ||
        get_int(o, "patch_size", &v->patch_size, path, s, err) ||
        get_int(o, "num_channels", &v->n_channels, path, s, err) ||
        get_double(o, "layer_norm_eps", &eps, path, s, err))
        return SV_FAIL;
    v->ln_eps = (float)eps;
    const char *act = get_string(o, "hidden_act");
    if (act && strcmp(act, "quick_gelu") != 0)
        return sv_fail(err, "%s: vision_config.hidden_act '%s' is not supported (quick_gelu)",
                       path, act);
    return SV_OK;
}

static int check_positive(int v, const char *name, const char *path, sv_error *err) {
    if (v <= 0) return sv_fail(err, "%s: %s must be positive, got %d", path, name, v);
    return SV_OK;
}

/* Constants the maths divides by or takes powers of: 0, a negative or an
 * overflowing value (1e300 as a float) would make every output NaN. */
static int check_positive_real(double v, const char *name, const char *path, sv_error *err) {
    if (!(isfinite(v) && v > 0))
        return sv_fail(err, "%s: %s must be a positive number, got %g", path, name, v);
    return SV_OK;
}

/* Impossible values are rejected here, before anything is sized from them. */
static int validate(const sv_config *c, const char *path, sv_error *err) {
    const sv_text_config *t = &c->text;
    const sv_vision_config *v = &c->vision;
    if (check_positive(t->n_layers, "text_config.num_hidden_layers", path, err) ||
        check_positive(t->hidden, "text_config.hidden_size", path, err) ||
        check_positive(t->n_heads, "text_config.num_attention_heads", path, err) ||
        check_positive(t->n_kv_heads, "text_config.num_key_value_heads", path, err) ||
        check_positive(t->head_dim, "text_config.head_dim", path, err) ||
        check_positive(t->inter, "text_config.intermediate_size", path, err) ||
        check_positive(t->vocab, "text_config.vocab_size", path, err) ||
        check_positive(t->max_pos, "text_config.max_position_embeddings", path, err) ||
        check_positive(v->n_layers, "vision_config.num_hidden_layers", path, err) ||
        check_positive(v->hidden, "vision_config.hidden_size", path, err) ||
        check_positive(v->n_heads, "vision_config.num_attention_heads", path, err) ||
        check_positive(v->inter, "vision_config.intermediate_size", path, err) ||
        check_positive(v->image_size, "vision_config.image_size", path, err) ||
        check_positive(v->patch_size, "vision_config.patch_size", path, err) ||
        check_positive_real(t->rms_eps, "text_config.rms_norm_eps", path, err) ||
        check_positive_real(t->rope_theta, "text_config.rope_theta", path, err) ||
        check_positive_real(v->ln_eps, "vision_config.layer_norm_eps", path, err))
        return SV_FAIL;
    if (t->hidden % t->n_heads)
        return sv_fail(err, "%s: text_config.hidden_size %d is not divisible by num_attention_heads %d",
                       path, t->hidden, t->n_heads);
    if (t->n_heads % t->n_kv_heads)
        return sv_fail(err, "%s: text_config.num_key_value_heads %d does not divide num_attention_heads %d",
                       path, t->n_kv_heads, t->n_heads);
    if (t->head_dim % 2)
        return sv_fail(err, "%s: text_config.head_dim %d must be even for RoPE", path, t->head_dim);
    if (v->hidden % v->n_heads)
        return sv_fail(err, "%s: vision_config.hidden_size %d is not divisible by num_attention_heads %d",
                       path, v->hidden, v->n_heads);
    if (v->n_channels != 3)
        return sv_fail(err, "%s: vision_config.num_channels must be 3, got %d", path, v->n_channels);
    if (v->image_size % v->patch_size || v->image_size / v->patch_size > 1024)
        return sv_fail(err, "%s: vision_config.image_size %d is not a multiple of patch_size %d",
                       path, v->image_size, v->patch_size);
    if (t->hidden > 65536 || t->inter > 1 << 20 || t->n_layers > 1024 || t->vocab > 1 << 24 ||
        v->hidden > 65536 || v->inter > 1 << 20 || v->n_layers > 1024)
        return sv_fail(err, "%s: model sizes are implausibly large", path);
    if (c->feature_layer < -(v->n_layers + 1) || c->feature_layer > v->n_layers)
        return sv_fail(err, "%s: vision_feature_layer %d is out of range for %d vision layers",
                       path, c->feature_layer, v->n_layers);
    for (int i = 0; i < c->n_pinpoints; i++)
        if (c->pinpoints[i][0] % v->image_size || c->pinpoints[i][1] % v->image_size)
            return sv_fail(err, "%s: image_grid_pinpoints[%d] = [%d, %d] is not a multiple of "
                                "the tile size %d (vision_config.image_size)", path, i,
                           c->pinpoints[i][0], c->pinpoints[i][1], v->image_size);
    if (c->anyres && c->keep_cls)
        return sv_fail(err, "%s: vision_feature_select_strategy 'full' with image_grid_pinpoints: "
                            "LLaVA-NeXT's tile map needs the CLS row dropped ('default')", path);
    if (!c->original && (c->image_token_id < 0 || c->image_token_id >= t->vocab))
        return sv_fail(err, "%s: image_token_index %d is outside the vocabulary (%d)", path,
                       c->image_token_id, t->vocab);
    return SV_OK;
}

static int parse_dtype(sv_config *c, const cJSON *root, const char *path, sv_error *err) {
    const char *d = get_string(root, "torch_dtype");
    static const char *const torch[] = {"float32", "float16", "bfloat16"};
    static const sv_dtype types[] = {SV_DTYPE_F32, SV_DTYPE_F16, SV_DTYPE_BF16};
    c->has_dtype = 0;
    if (!d) return SV_OK;
    for (int i = 0; i < 3; i++)
        if (strcmp(d, torch[i]) == 0) {
            c->dtype = types[i];
            c->has_dtype = 1;
            return SV_OK;
        }
    return sv_fail(err, "%s: torch_dtype '%s' is not supported", path, d);
}

/* image_grid_pinpoints: a list of [height, width]; LlavaNextConfig's default if absent. */
static int parse_pinpoints(sv_config *c, const cJSON *list, const char *path, sv_error *err) {
    static const int hf_default[5][2] = {{336, 672}, {672, 336}, {672, 672}, {1008, 336},
                                         {336, 1008}};
    if (!list || cJSON_IsNull(list)) {
        c->n_pinpoints = 5;
        memcpy(c->pinpoints, hf_default, sizeof hf_default);
        return SV_OK;
    }
    int n = cJSON_IsArray(list) ? cJSON_GetArraySize(list) : 0;
    if (n < 1 || n > SV_MAX_PINPOINTS)
        return sv_fail(err, "%s: image_grid_pinpoints must be a list of 1 to %d [height, width] "
                            "pairs", path, SV_MAX_PINPOINTS);
    for (int i = 0; i < n; i++) {
        const cJSON *p = cJSON_GetArrayItem(list, i);
        for (int k = 0; k < 2; k++) {
            const cJSON *x = cJSON_IsArray(p) && cJSON_GetArraySize(p) == 2
                                 ? cJSON_GetArrayItem(p, k) : NULL;
            double d = cJSON_IsNumber(x) ? x->valuedouble : 0;
            if (!(d == floor(d) && d >= 1 && d <= 1 << 16))
                return sv_fail(err, "%s: image_grid_pinpoints[%d] must be [height, width] with "
                                    "integer sizes from 1 to 65536", path, i);
            c->pinpoints[i][k] = (int)d;
        }
    }
    c->n_pinpoints = n;
    return SV_OK;
}

/* Records what sv_config_check_runnable refuses (text: text_config, or the root). */
static void note_unrunnable(sv_config *c, const cJSON *root, const cJSON *text) {
    const char *text_type = get_string(text, "model_type");
    c->text_bias = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(text, "attention_bias")) ||
                   cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(text, "mlp_bias"));
    snprintf(c->text_model_type, sizeof c->text_model_type, "%s",
             text != root && text_type ? text_type : "");
}

int sv_config_check_runnable(const sv_config *c, const char *path, sv_error *err) {
    const char *t = c->text_model_type;
    if (c->text_bias)
        return sv_fail(err, "%s: text_config has attention_bias or mlp_bias: the decoder runs "
                            "LLaMA's bias-free projections only", path);
    if (t[0] && strcmp(t, "llama") && strcmp(t, "mistral"))
        return sv_fail(err, "%s: text_config.model_type '%s' is not supported (llama, mistral)",
                       path, t);
    return SV_OK;
}

static int parse_llava(sv_config *c, const cJSON *root, const char *path, sv_error *err) {
    const cJSON *tc = cJSON_GetObjectItemCaseSensitive(root, "text_config");
    const cJSON *vc = cJSON_GetObjectItemCaseSensitive(root, "vision_config");
    if ((tc && !cJSON_IsObject(tc)) || (vc && !cJSON_IsObject(vc)))
        return sv_fail(err, "%s: text_config and vision_config must be objects", path);
    int top_vocab = 0;
    text_defaults(&c->text, get_string(tc ? tc : root, "model_type"));
    vision_defaults(&c->vision, vc == NULL);
    c->image_token_id = 32000;
    c->feature_layer = -2;
    if (get_int(root, "vocab_size", &top_vocab, path, "", err) ||
        get_int(root, "image_token_index", &c->image_token_id, path, "", err) ||
        get_int(root, "vision_feature_layer", &c->feature_layer, path, "", err) ||
        parse_text(&c->text, tc ? tc : root, top_vocab, path, err) ||
        (vc && parse_vision(&c->vision, vc, path, err)) || parse_dtype(c, root, path, err))
        return SV_FAIL;
    const char *strategy = get_string(root, "vision_feature_select_strategy");
    if (strategy && strcmp(strategy, "default") && strcmp(strategy, "full"))
        return sv_fail(err, "%s: vision_feature_select_strategy '%s' is not supported", path,
                       strategy);
    c->keep_cls = strategy && strcmp(strategy, "full") == 0;
    const cJSON *pinpoints = cJSON_GetObjectItemCaseSensitive(root, "image_grid_pinpoints");
    const char *type = get_string(root, "model_type");
    c->anyres = (pinpoints && !cJSON_IsNull(pinpoints)) || (type && !strcmp(type, "llava_next"));
    if (c->anyres && parse_pinpoints(c, pinpoints, path, err)) return SV_FAIL;
    note_unrunnable(c, root, tc ? tc : root);
    const char *act = get_string(root, "projector_hidden_act");
    if (act && strcmp(act, "gelu") != 0)
        return sv_fail(err, "%s: projector_hidden_act '%s' is not supported (gelu)", path, act);
    return sv_original_is(root) ? sv_original_parse(c, root, path, err) : SV_OK;
}

static void derive(sv_config *c) {
    const sv_vision_config *v = &c->vision;
    int grid = v->image_size / v->patch_size;
    /* hidden_states[0] is the embedding output, so index k means k layers run */
    c->n_vision_layers_run = c->feature_layer < 0 ? v->n_layers + 1 + c->feature_layer
                                                  : c->feature_layer;
    c->view_tokens = grid * grid + (c->keep_cls ? 1 : 0);
    static const float mean[3] = {0.48145466f, 0.4578275f, 0.40821073f};
    static const float std[3] = {0.26862954f, 0.26130258f, 0.27577711f};
    memcpy(c->image_mean, mean, sizeof mean);
    memcpy(c->image_std, std, sizeof std);
    c->crop_size = v->image_size;
}

static void fnv1a_hex(const char *s, size_t n, char out[17]) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

/* The model's identity: FNV-1a 64 of a canonical text of every parsed field
 * that changes what the model computes, so that key order, indentation, fields
 * given at their default value and fields that change nothing (torch_dtype,
 * which only changes the last bits; names, _name_or_path, transformers_version)
 * leave it alone. Preprocessing (preprocessor_config.json) is not part of it:
 * `freeze --config` and `flops` read config.json alone. Bump the "arch-1" tag
 * if a field is added, so that old and new identities never collide by
 * accident. */
static void architecture_hash(sv_config *c) {
    const sv_text_config *t = &c->text;
    const sv_vision_config *v = &c->vision;
    char text[1024 + SV_MAX_PINPOINTS * 16]; /* ints of at most 10 digits: never cut */
    size_t n = (size_t)snprintf(
        text, sizeof text,
        "shortv-arch-1 text %d %d %d %d %d %d %d %d %.9g %.17g %d %d %d %d vision %d %d %d %d "
        "%d %d %d %.9g image_token %d feature_layer %d keep_cls %d original %d %d %d %d "
        "anyres %d",
        t->hidden, t->n_layers, t->n_heads, t->n_kv_heads, t->head_dim, t->inter, t->vocab,
        t->max_pos, (double)t->rms_eps, t->rope_theta, t->sliding_window, t->bos_id, t->eos_id,
        c->text_bias, v->hidden, v->n_layers, v->n_heads, v->inter, v->image_size,
        v->patch_size, v->n_channels, (double)v->ln_eps, c->image_token_id, c->feature_layer,
        c->keep_cls, c->original, c->mm_hidden, c->tower_in_checkpoint, c->anyres_int_unpad,
        c->anyres);
    for (int i = 0; c->anyres && i < c->n_pinpoints; i++)
        n += (size_t)snprintf(text + n, sizeof text - n, " %dx%d", c->pinpoints[i][0],
                              c->pinpoints[i][1]);
    fnv1a_hex(text, n, c->hash);
}

int sv_config_hash_matches(const sv_config *c, const char *hash) {
    return strcmp(hash, c->hash) == 0 || strcmp(hash, c->file_hash) == 0;
}

/* The first key that appears twice in one object of the tree, or NULL. cJSON
 * would read the first of the two where Python's json (transformers) keeps
 * the last: the model would silently differ, so such a file is refused. */
static const char *duplicate_key(const cJSON *node) {
    for (const cJSON *a = node->child; a; a = a->next) {
        if (cJSON_IsObject(node))
            for (const cJSON *b = a->next; b; b = b->next)
                if (strcmp(a->string, b->string) == 0) return a->string;
        const char *inner = duplicate_key(a);
        if (inner) return inner;
    }
    return NULL;
}

int sv_config_parse(sv_config *c, const char *json, const char *path, sv_error *err) {
    memset(c, 0, sizeof *c);
    cJSON *root = cJSON_Parse(json);
    if (!root) return sv_fail(err, "%s: not valid JSON", path);
    int rc = SV_FAIL;
    const char *dup = duplicate_key(root);
    if (!cJSON_IsObject(root)) {
        sv_fail(err, "%s: not a JSON object", path);
    } else if (dup) {
        sv_fail(err, "%s: key '%s' appears twice in one object (Python would take the last, "
                "this reader the first): remove one", path, dup);
    } else if (parse_llava(c, root, path, err) == SV_OK &&
               validate(c, path, err) == SV_OK) { /* derive divides by the patch size */
        derive(c);
        architecture_hash(c);
        rc = SV_OK;
    }
    cJSON_Delete(root);
    fnv1a_hex(json, strlen(json), c->file_hash);
    return rc;
}

static int parse_float3(const cJSON *o, const char *key, float out[3], const char *path,
                        sv_error *err) {
    const cJSON *a = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!a) return SV_OK;
    if (!cJSON_IsArray(a) || cJSON_GetArraySize(a) != 3)
        return sv_fail(err, "%s: %s must be a list of 3 numbers", path, key);
    for (int i = 0; i < 3; i++) {
        const cJSON *x = cJSON_GetArrayItem(a, i);
        if (!cJSON_IsNumber(x) || !isfinite(x->valuedouble))
            return sv_fail(err, "%s: %s must be a list of 3 numbers", path, key);
        out[i] = (float)x->valuedouble;
    }
    return SV_OK;
}

/* crop_size is an int in old files and {"height", "width"} in newer ones. */
static int parse_crop(const cJSON *o, int *size, const char *path, sv_error *err) {
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(o, "crop_size");
    if (!c) return SV_OK;
    if (cJSON_IsObject(c)) {
        int h = 0, w = 0;
        if (get_int(c, "height", &h, path, "crop_size.", err) ||
            get_int(c, "width", &w, path, "crop_size.", err))
            return SV_FAIL;
        if (h != w) return sv_fail(err, "%s: non-square crop_size %dx%d is not supported", path, w, h);
        *size = h;
    } else if (get_int(o, "crop_size", size, path, "", err)) {
        return SV_FAIL;
    }
    return SV_OK;
}

static int parse_preprocessor(sv_config *c, const char *json, const char *path, sv_error *err) {
    cJSON *root = cJSON_Parse(json);
    if (!root || !cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return sv_fail(err, "%s: not a valid JSON object", path);
    }
    int rc = parse_float3(root, "image_mean", c->image_mean, path, err) ||
             parse_float3(root, "image_std", c->image_std, path, err) ||
             parse_crop(root, &c->crop_size, path, err);
    cJSON_Delete(root);
    if (rc) return SV_FAIL;
    for (int i = 0; i < 3; i++)
        if (!(c->image_std[i] > 0) || !(c->image_mean[i] >= 0 && c->image_mean[i] <= 1))
            return sv_fail(err, "%s: image_mean must be in [0,1] and image_std positive", path);
    if (c->crop_size != c->vision.image_size)
        return sv_fail(err, "%s: crop_size %d differs from the vision tower's image_size %d", path,
                       c->crop_size, c->vision.image_size);
    return SV_OK;
}

char *sv_read_file(const char *path, size_t *len, sv_error *err) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        sv_fail(err, "%s: cannot open", path);
        return NULL;
    }
    char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0)
        buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        sv_fail(err, "%s: cannot read", path);
        free(buf);
        buf = NULL;
    } else {
        buf[n] = 0;
        if (len) *len = (size_t)n;
    }
    fclose(f);
    return buf;
}

/* DIR/preprocessor_config.json, if there is one (CLIP's defaults otherwise). */
static int load_preprocessor(sv_config *c, const char *dir, sv_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/preprocessor_config.json", dir);
    FILE *probe = fopen(path, "rb");
    if (!probe) return SV_OK;
    fclose(probe);
    char *json = sv_read_file(path, NULL, err);
    if (!json) return SV_FAIL;
    int rc = parse_preprocessor(c, json, path, err);
    free(json);
    return rc;
}

int sv_config_load(sv_config *c, const char *dir, sv_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *json = sv_read_file(path, NULL, err);
    if (!json) return SV_FAIL;
    int rc = sv_config_parse(c, json, path, err);
    free(json);
    if (rc) return rc;
    /* the original layout's preprocessing is its tower's (sv_config_load_tower) */
    return c->original ? SV_OK : load_preprocessor(c, dir, err);
}

int sv_config_load_tower(sv_config *c, const char *dir, sv_error *err) {
    char path[4096];
    snprintf(path, sizeof path, "%s/config.json", dir);
    char *json = sv_read_file(path, NULL, err);
    if (!json) return SV_FAIL;
    cJSON *root = cJSON_Parse(json);
    free(json);
    const cJSON *vc = cJSON_GetObjectItemCaseSensitive(root, "vision_config");
    int rc = SV_OK;
    vision_defaults(&c->vision, 0);
    if (!cJSON_IsObject(root))
        rc = sv_fail(err, "%s: not a JSON object", path);
    else if (parse_vision(&c->vision, cJSON_IsObject(vc) ? vc : root, path, err) ||
             validate(c, path, err))
        rc = SV_FAIL;
    else if (c->mm_hidden != c->vision.hidden)
        rc = sv_fail(err, "%s: the tower's hidden_size %d is not the model's mm_hidden_size %d",
                     path, c->vision.hidden, c->mm_hidden);
    cJSON_Delete(root);
    if (rc) return rc;
    derive(c);
    return load_preprocessor(c, dir, err);
}
