/* SentencePiece BPE models (tokenizer.model of the original LLaMA/LLaVA
 * releases): the protobuf ModelProto parsed by hand, and encoding exactly as
 * the SentencePiece library's bpe_model.cc does it.
 *
 * Hand-written rather than libprotobuf-c: that needs the .proto compiled by
 * protoc-c into generated code for three messages of which we read nine
 * fields; the wire format needed here (varints, length-delimited fields,
 * fixed32 floats) is a hundred lines, all of it bounds-checked and fuzzed.
 *
 * Supported: model_type BPE, byte_fallback, the identity normaliser (empty
 * precompiled_charsmap) with its add_dummy_prefix, remove_extra_whitespaces and
 * escape_whitespaces rules. Refused by name: other model types and normalisers,
 * user-defined pieces, treat_whitespace_as_suffix. */
#ifndef SV_SENTENCEPIECE_H
#define SV_SENTENCEPIECE_H

#include <stddef.h>

#include "status.h"

/* ModelProto.SentencePiece.Type */
typedef enum { SV_SPM_NORMAL = 1, SV_SPM_UNKNOWN = 2, SV_SPM_CONTROL = 3,
               SV_SPM_USER_DEFINED = 4, SV_SPM_BYTE = 6, SV_SPM_UNUSED = 5 } sv_spm_type;

typedef struct sv_spm sv_spm;

/* Parses the n bytes of a tokenizer.model; path names it in messages. */
int sv_spm_parse(sv_spm **out, const unsigned char *data, size_t n, const char *path,
                 sv_error *err);
int sv_spm_load(sv_spm **out, const char *path, sv_error *err);
void sv_spm_free(sv_spm *s);

int sv_spm_size(const sv_spm *s);
/* Piece text of id (0 <= id < size), not NUL-terminated: *len bytes. */
const char *sv_spm_piece(const sv_spm *s, int id, size_t *len);
sv_spm_type sv_spm_type_of(const sv_spm *s, int id);
int sv_spm_bos(const sv_spm *s); /* trainer_spec.bos_id; -1 if none */
int sv_spm_eos(const sv_spm *s);

/* sp.encode(text): no BOS/EOS. text (n bytes) must be valid UTF-8. *ids is
 * malloc'd. */
int sv_spm_encode(const sv_spm *s, const char *text, size_t n, int **ids, size_t *n_ids,
                  sv_error *err);

#endif
