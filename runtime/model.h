/* A loaded LLaVA model: configuration, memory-mapped weights bound to their
 * roles (shapes checked against config.json), and the tokenizer. Both the
 * llava-hf layout and the original one (llava_original.h) load.
 *
 * Weight matrices stay in the mapping in their stored dtype. Vectors and small
 * tables (norm weights, biases, class and position embeddings) are converted
 * once to fp32 at load time. A model is read-only after loading and may be
 * shared by several contexts (one per thread). */
#ifndef SV_MODEL_H
#define SV_MODEL_H

#include "config.h"
#include "matmul.h"
#include "safetensors.h"
#include "tokenizer.h"

typedef struct sv_norm {
    const float *w; /* [d] */
    const float *b; /* [d], NULL for RMSNorm */
} sv_norm;

typedef struct sv_vision_layer {
    sv_norm ln1, ln2;                 /* layer_norm1, layer_norm2 */
    sv_linear q, k, v, o;             /* [dv, dv] each, with bias */
    sv_linear fc1, fc2;               /* [inter, dv], [dv, inter] */
} sv_vision_layer;

typedef struct sv_decoder_layer {
    sv_norm attn_norm, mlp_norm;      /* input_layernorm, post_attention_layernorm */
    sv_linear q;                      /* [heads * hd, hidden] */
    sv_linear k, v;                   /* [kv_heads * hd, hidden] */
    sv_linear o;                      /* [hidden, heads * hd] */
    sv_linear gate, up, down;         /* [inter, hidden] x2, [hidden, inter] */
} sv_decoder_layer;

typedef struct sv_model {
    sv_config cfg;
    char *dir;
    sv_weights *weights;
    sv_weights *tower_weights;        /* original layout: the CLIP tower's own; else NULL */
    char *tower_dir;                  /* original layout: where the tower was read from */
    sv_tokenizer *tok;
    /* vision tower (CLIP ViT) */
    const float *class_emb;           /* [dv] */
    sv_linear patch;                  /* conv [dv, 3, p, p] as a linear over flattened patches */
    const float *pos_emb;             /* [1 + n_patches, dv] */
    sv_norm pre_ln;                   /* pre_layrnorm */
    sv_vision_layer *vlayers;         /* [cfg.n_vision_layers_run] */
    /* projector (mlp2x_gelu) */
    sv_linear proj1, proj2;           /* [hidden, dv], [hidden, hidden] */
    const float *image_newline;       /* [hidden], LLaVA-NeXT: ends each row of the tile map */
    /* language model (LLaMA) */
    const sv_tensor *embed;           /* embed_tokens [vocab, hidden] */
    sv_decoder_layer *layers;             /* [text.n_layers] */
    sv_norm final_norm;
    sv_linear lm_head;                /* [vocab, hidden] */
    void *owned;                      /* fp32 copies of the small tensors (a list) */
} sv_model;

typedef struct sv_model_params {
    /* The original layout's CLIP tower directory, overriding config.json's
     * mm_vision_tower; NULL: use that (it must then be a directory). */
    const char *vision_tower;
} sv_model_params;

sv_model_params sv_model_default_params(void);
int sv_model_load_params(sv_model **out, const char *dir, const sv_model_params *p,
                         sv_error *err);
/* With the default params. */
int sv_model_load(sv_model **out, const char *dir, sv_error *err);
void sv_model_free(sv_model *m);

#endif
