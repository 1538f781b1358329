/* Prompts: conversation templates, tokenisation, and the expansion of the
 * single <image> placeholder into the image's visual tokens. The visual span
 * is recorded as data: later work ablates and freezes tokens by span. */
#ifndef SV_PROMPT_H
#define SV_PROMPT_H

#include <stddef.h>

#include "llm.h"
#include "model.h"

typedef enum { SV_TEMPLATE_VICUNA_V1, SV_TEMPLATE_RAW } sv_template;

typedef struct sv_prompt {
    int *ids;        /* [n] with the image placeholder expanded */
    size_t n;
    sv_span visual;  /* positions of the visual tokens */
} sv_prompt;

/* "vicuna_v1" or "raw" -> template; 0 on success. */
int sv_template_parse(const char *s, sv_template *out);

/* Applies the template (vicuna_v1 prepends "<image>\n" to a question that has
 * no placeholder), tokenises with BOS, and expands the placeholder. Zero or
 * several placeholders are an error. */
int sv_prompt_build(const sv_model *m, const char *text, sv_template tmpl, sv_prompt *out,
                    sv_error *err);
void sv_prompt_free(sv_prompt *p);

/* Prompt embeddings [n, hidden]: token embeddings, with the visual span
 * replaced by image_rows [n_visual, hidden]. */
int sv_prompt_embed(const sv_model *m, const sv_prompt *p, const float *image_rows, float *out,
                    sv_error *err);

#endif
