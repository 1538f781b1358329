/* LLaMA tokenizer from a Hugging Face tokenizer.json (or a SentencePiece
 * tokenizer.model): BPE with byte fallback, the "▁" prepend normaliser, and added special tokens
 * (<s>, </s>, <unk>, <image>, ...) matched verbatim in the text. */
#ifndef SV_TOKENIZER_H
#define SV_TOKENIZER_H

#include <stddef.h>

#include "status.h"

typedef struct sv_tokenizer sv_tokenizer;

/* Reads DIR/tokenizer.json or, when there is none, DIR/tokenizer.model (a
 * SentencePiece BPE model, sentencepiece.h, which then does the encoding and
 * never matches special-token text), and, if present, DIR/tokenizer_config.json
 * (add_bos_token, default true). The result is read-only: encode, decode and
 * the lookups may run on it from several threads at once. */
int sv_tokenizer_load(sv_tokenizer **out, const char *dir, sv_error *err);
void sv_tokenizer_free(sv_tokenizer *t);

/* add_bos: 1 adds BOS, 0 does not, -1 follows tokenizer_config.json (EOS is
 * appended when that file sets add_eos_token). text must be valid UTF-8.
 * *ids is malloc'd; the caller frees it. */
int sv_tokenizer_encode(const sv_tokenizer *t, const char *text, int add_bos,
                        int **ids, size_t *n, sv_error *err);

/* Text of a sequence of ids as the HF decoder gives it (▁ -> space, byte
 * fallback pieces fused into UTF-8, one leading space stripped, special
 * tokens skipped). *text is malloc'd. */
int sv_tokenizer_decode(const sv_tokenizer *t, const int *ids, size_t n, char **text,
                        sv_error *err);
/* The same, also giving the length in bytes: a <0x00> byte token decodes to
 * a NUL byte, where the C string view of *text stops early. */
int sv_tokenizer_decode_bytes(const sv_tokenizer *t, const int *ids, size_t n, char **text,
                              size_t *len, sv_error *err);

int sv_tokenizer_id(const sv_tokenizer *t, const char *piece); /* -1 if unknown */
int sv_tokenizer_bos(const sv_tokenizer *t);
int sv_tokenizer_eos(const sv_tokenizer *t);
int sv_tokenizer_size(const sv_tokenizer *t); /* number of ids incl. added tokens */

#endif
