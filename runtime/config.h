/* Model configuration: config.json (LlavaForConditionalGeneration) and
 * preprocessor_config.json, read with cJSON and validated.
 *
 * Fields missing from text_config take transformers' LlamaConfig defaults and
 * fields missing from vision_config take CLIPVisionConfig defaults (llava-hf's
 * 7B config.json omits the LLaMA sizes entirely). */
#ifndef SV_CONFIG_H
#define SV_CONFIG_H

#include <stdint.h>

#include "dtype.h"
#include "status.h"

typedef struct sv_text_config {
    int hidden;       /* hidden_size */
    int n_layers;     /* num_hidden_layers */
    int n_heads;      /* num_attention_heads */
    int n_kv_heads;   /* num_key_value_heads (GQA when < n_heads) */
    int head_dim;     /* head_dim, default hidden / n_heads */
    int inter;        /* intermediate_size (MLP width) */
    int vocab;        /* vocab_size */
    int max_pos;      /* max_position_embeddings */
    float rms_eps;    /* rms_norm_eps */
    double rope_theta;
    int sliding_window; /* Mistral: a query sees only the last sliding_window keys; 0: all */
    int bos_id, eos_id;
} sv_text_config;

typedef struct sv_vision_config {
    int hidden, n_layers, n_heads, inter;
    int image_size, patch_size, n_channels;
    float ln_eps;
} sv_vision_config;

/* LLaVA-NeXT's "anyres" tilings, [height, width] as in config.json; llava-v1.6 has 5. */
#define SV_MAX_PINPOINTS 64

typedef struct sv_config {
    sv_text_config text;
    sv_vision_config vision;
    int image_token_id;      /* image_token_index */
    int feature_layer;       /* vision_feature_layer as given (-2 for LLaVA-1.5) */
    int n_vision_layers_run; /* encoder layers actually needed for that feature layer */
    int keep_cls;            /* vision_feature_select_strategy "full" (1) or "default" (0) */
    int view_tokens;         /* rows one view (336x336 image) becomes: 576, 577 with CLS */
    /* LLaVA-NeXT (model_type llava_next or image_grid_pinpoints given): every image
     * is cut into tiles of one of the pinpoint sizes (runtime/anyres.h) */
    int anyres;
    int n_pinpoints;
    int pinpoints[SV_MAX_PINPOINTS][2]; /* [height, width], multiples of image_size */
    /* What the forward runtime cannot run (sv_config_check_runnable): biases in the
     * decoder's projections, a text model other than LLaMA or Mistral. */
    int text_bias;
    char text_model_type[32]; /* text_config.model_type; "" when not given */
    int has_dtype;           /* torch_dtype given (and then `dtype` holds it) */
    sv_dtype dtype;
    /* preprocessing (preprocessor_config.json; CLIP defaults if absent) */
    float image_mean[3], image_std[3];
    int crop_size;
    /* The model's identity, 16 hex digits, recorded in LC files, freeze configs,
     * studies and eval results: a hash of the architecture fields above (layers,
     * widths, heads, vocabulary, eps, RoPE, window, token ids, vision tower,
     * feature layer, pinpoints, layout), so a re-saved or re-indented config.json
     * of the same model keeps it. file_hash is FNV-1a 64 of config.json's bytes,
     * the identity shortv 0.1.0 recorded before; sv_config_hash_matches accepts
     * both so that its files stay usable with the same config.json. */
    char hash[17];
    char file_hash[17];
    /* The original LLaVA layout (llava_original.h): LlavaLlamaForCausalLM, the tower
     * in its own directory, prompts tokenised in chunks around the image */
    int original;
    char vision_tower[256];  /* mm_vision_tower as given: a hub id or a directory */
    int mm_hidden;           /* mm_hidden_size: the tower's width the projector expects */
    int tower_in_checkpoint; /* unfreeze_mm_vision_tower (LLaVA-1.6): the tuned tower is in
                                the model's checkpoint; the tower directory gives its config */
    int anyres_int_unpad;    /* anyres unpadding truncates (original) instead of rounding
                                to 7 digits first (transformers) */
} sv_config;

/* Reads DIR/config.json and DIR/preprocessor_config.json (optional). */
int sv_config_load(sv_config *cfg, const char *dir, sv_error *err);
/* The original layout's vision tower (DIR = its directory): the vision_config of
 * DIR/config.json (a CLIPModel; a CLIPVisionModel's own fields also do) replaces
 * the CLIP defaults, DIR/preprocessor_config.json the preprocessing ones. */
int sv_config_load_tower(sv_config *cfg, const char *dir, sv_error *err);
/* Parses config.json text; `path` names it in messages. Preprocessing fields get defaults. */
int sv_config_parse(sv_config *cfg, const char *json, const char *path, sv_error *err);
/* SV_FAIL, saying why, for a valid config of a model the forward runtime does not
 * run correctly (FLOPs counts and freeze configs still work with it). */
int sv_config_check_runnable(const sv_config *cfg, const char *path, sv_error *err);

/* Whether a recorded model identity (hash or, from older files, file_hash) is cfg's. */
int sv_config_hash_matches(const sv_config *cfg, const char *hash);

/* Reads a whole file into a NUL-terminated malloc'd buffer (also used for other JSON). */
char *sv_read_file(const char *path, size_t *len, sv_error *err);

#endif
