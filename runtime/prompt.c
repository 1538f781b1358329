#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "prompt.h"

#define IMAGE_PLACEHOLDER "<image>"

/* LLaVA's conv_vicuna_v1 system message */
static const char vicuna_system[] =
    "A chat between a curious human and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the human's questions.";

static const char *const template_names[] = {"vicuna_v1", "mistral_instruct", "raw"};

int sv_template_parse(const char *s, sv_template *out) {
    for (int t = SV_TEMPLATE_VICUNA_V1; t <= SV_TEMPLATE_RAW; t++)
        if (strcmp(s, template_names[t]) == 0) {
            *out = (sv_template)t;
            return SV_OK;
        }
    return SV_FAIL;
}

sv_template sv_template_for_model(const sv_config *cfg) {
    return strcmp(cfg->text_model_type, "mistral") == 0 ? SV_TEMPLATE_MISTRAL_INSTRUCT
                                                        : SV_TEMPLATE_VICUNA_V1;
}

/* vicuna_v1: system + " USER: " + message + " ASSISTANT:"; mistral_instruct
 * (llava-v1.6-mistral): "[INST] " + message + " [/INST]". */
static char *apply_template(const char *text, sv_template tmpl, sv_error *err) {
    const char *lead = strstr(text, IMAGE_PLACEHOLDER) ? "" : IMAGE_PLACEHOLDER "\n";
    size_t n = strlen(vicuna_system) + strlen(lead) + strlen(text) + 32;
    char *s = malloc(n);
    if (!s) {
        sv_fail(err, "prompt: out of memory");
        return NULL;
    }
    if (tmpl == SV_TEMPLATE_RAW) snprintf(s, n, "%s", text);
    else if (tmpl == SV_TEMPLATE_MISTRAL_INSTRUCT) snprintf(s, n, "[INST] %s%s [/INST]", lead, text);
    else snprintf(s, n, "%s USER: %s%s ASSISTANT:", vicuna_system, lead, text);
    return s;
}

/* Replaces the one placeholder id by n_visual copies and records the span. */
static int expand_image(const int *ids, size_t n, int image_id, size_t n_visual, sv_prompt *out,
                        sv_error *err) {
    size_t count = 0, at = 0;
    for (size_t i = 0; i < n; i++)
        if (ids[i] == image_id) count++, at = i;
    if (count != 1)
        return sv_fail(err, "prompt: contains %zu %s placeholders; exactly one is required",
                       count, IMAGE_PLACEHOLDER);
    out->n = n - 1 + n_visual;
    out->ids = sv_alloc_array(out->n, sizeof(int), err, "prompt");
    if (!out->ids) return SV_FAIL;
    memcpy(out->ids, ids, at * sizeof(int));
    for (size_t i = 0; i < n_visual; i++) out->ids[at + i] = image_id;
    memcpy(out->ids + at + n_visual, ids + at + 1, (n - at - 1) * sizeof(int));
    out->visual = (sv_span){at, at + n_visual};
    return SV_OK;
}

/* The original code's tokenizer_image_token (llava/mm_utils.py): the text is
 * split at each placeholder, every chunk tokenised on its own (so each gets
 * its own dummy prefix), BOS kept on the first chunk only, and the image id
 * put between chunks. Its tokenizer knows no <image> token. */
static int encode_chunks(const sv_model *m, char *full, int **ids, size_t *n, sv_error *err) {
    int *all = NULL;
    size_t len = 0;
    int rc = SV_OK;
    for (char *chunk = full, *next; chunk && rc == SV_OK; chunk = next) {
        if ((next = strstr(chunk, IMAGE_PLACEHOLDER))) *next = 0;
        int *part = NULL;
        size_t k = 0;
        rc = sv_tokenizer_encode(m->tok, chunk, chunk == full ? -1 : 0, &part, &k, err);
        int *grown = rc ? NULL : realloc(all, (len + k + 1) * sizeof *all);
        if (!rc && !grown) rc = sv_fail(err, "prompt: out of memory");
        if (grown) {
            all = grown;
            memcpy(all + len, part, k * sizeof *all);
            len += k;
            if (next) all[len++] = m->cfg.image_token_id, next += strlen(IMAGE_PLACEHOLDER);
        }
        free(part);
    }
    if (rc) return free(all), SV_FAIL;
    *ids = all, *n = len;
    return SV_OK;
}

int sv_prompt_build(const sv_model *m, const char *text, sv_template tmpl, size_t n_visual,
                    sv_prompt *out, sv_error *err) {
    memset(out, 0, sizeof *out);
    if (tmpl == SV_TEMPLATE_AUTO) tmpl = sv_template_for_model(&m->cfg);
    char *full = apply_template(text, tmpl, err);
    if (!full) return SV_FAIL;
    int *ids = NULL;
    size_t n = 0;
    int rc = m->cfg.original ? encode_chunks(m, full, &ids, &n, err)
                             : sv_tokenizer_encode(m->tok, full, 1, &ids, &n, err);
    free(full);
    if (rc == SV_OK)
        rc = expand_image(ids, n, m->cfg.image_token_id, n_visual, out, err);
    free(ids);
    if (rc == SV_OK && out->n > (size_t)m->cfg.text.max_pos) {
        rc = sv_fail(err, "the prompt is %zu positions with the image's %zu visual tokens, more "
                     "than the model's context (max_position_embeddings %d)", out->n, n_visual,
                     m->cfg.text.max_pos);
        sv_prompt_free(out);
    }
    return rc;
}

int sv_prompt_for_image(const sv_model *m, const char *text, sv_template tmpl, sv_aspect aspect,
                        const char *image_path, sv_prompt *out, sv_error *err) {
    size_t n_visual;
    memset(out, 0, sizeof *out);
    if (sv_visual_rows_of_file(&m->cfg, aspect, image_path, &n_visual, err)) return SV_FAIL;
    return sv_prompt_build(m, text, tmpl, n_visual, out, err);
}

void sv_prompt_free(sv_prompt *p) {
    free(p->ids);
    p->ids = NULL;
}

int sv_prompt_embed(const sv_model *m, const sv_prompt *p, const sv_encoded_image *image,
                    float *out, sv_error *err) {
    size_t h = (size_t)m->cfg.text.hidden, vs = p->visual.start, ve = p->visual.end;
    if (image->n_rows != ve - vs)
        return sv_fail(err, "prompt: the image has %zu rows but the prompt was built for %zu "
                            "(did the image file change?)", image->n_rows, ve - vs);
    if (sv_llm_embed_tokens(m, p->ids, vs, out, err) ||
        sv_llm_embed_tokens(m, p->ids + ve, p->n - ve, out + ve * h, err))
        return SV_FAIL;
    memcpy(out + vs * h, image->rows, (ve - vs) * h * sizeof(float));
    return SV_OK;
}
