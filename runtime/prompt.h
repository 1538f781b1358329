/* Prompts: conversation templates, tokenisation, and the expansion of the
 * single <image> placeholder into the image's visual tokens. The visual span
 * is recorded as data: later work ablates and freezes tokens by span. */
#ifndef SV_PROMPT_H
#define SV_PROMPT_H

#include <stddef.h>

#include "llm.h"
#include "model.h"
#include "vision.h"

/* AUTO: the model's own, mistral_instruct for a Mistral decoder, else vicuna_v1. */
typedef enum {
    SV_TEMPLATE_AUTO = -1,
    SV_TEMPLATE_VICUNA_V1,
    SV_TEMPLATE_MISTRAL_INSTRUCT,
    SV_TEMPLATE_RAW
} sv_template;

typedef struct sv_prompt {
    int *ids;        /* [n] with the image placeholder expanded */
    size_t n;
    sv_span visual;  /* positions of the visual tokens */
} sv_prompt;

/* "vicuna_v1", "mistral_instruct" or "raw" -> template; 0 on success. */
int sv_template_parse(const char *s, sv_template *out);
/* The template AUTO stands for with this model. */
sv_template sv_template_for_model(const sv_config *cfg);

/* Applies the template (vicuna_v1 and mistral_instruct put "<image>\n" before
 * a question that has no placeholder), tokenises with BOS, and expands the
 * placeholder into n_visual image ids (the image's rows: sv_visual_rows).
 * Zero or several placeholders are an error, and so is a prompt longer than
 * the model's max_position_embeddings. */
int sv_prompt_build(const sv_model *m, const char *text, sv_template tmpl, size_t n_visual,
                    sv_prompt *out, sv_error *err);
/* The same for a question about an image file, whose number of rows comes
 * from its header (sv_visual_rows_of_file): the prompt is known before the
 * image is decoded. */
int sv_prompt_for_image(const sv_model *m, const char *text, sv_template tmpl, sv_aspect aspect,
                        const char *image_path, sv_prompt *out, sv_error *err);
void sv_prompt_free(sv_prompt *p);

/* Prompt embeddings [n, hidden]: token embeddings, with the visual span
 * replaced by the image's rows (whose count must be the span's). */
int sv_prompt_embed(const sv_model *m, const sv_prompt *p, const sv_encoded_image *image,
                    float *out, sv_error *err);

#endif
