/* Safetensors checkpoints: memory-mapped, validated, kept in their stored dtype.
 *
 * A checkpoint is DIR/model.safetensors or DIR/model.safetensors.index.json
 * with its shards, else the same with PyTorch's pytorch_model.bin (torch_bin.h).
 * Every header is treated as hostile: the header length, the JSON, each dtype, shape and data offset are checked before any tensor is
 * handed out (offsets must tile [0, data size) exactly: no gap, no overlap). */
#ifndef SV_SAFETENSORS_H
#define SV_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "dtype.h"
#include "status.h"

#define SV_TENSOR_MAX_DIMS 8
#define SV_SAFETENSORS_MAX_HEADER ((size_t)100 * 1000 * 1000)

typedef struct sv_tensor {
    char *name;
    sv_dtype dtype;
    int ndim;
    int64_t shape[SV_TENSOR_MAX_DIMS];
    size_t count;       /* number of elements */
    const void *data;   /* into the read-only mapping; may be unaligned */
    const char *file;   /* the file it lives in, for messages */
} sv_tensor;

typedef struct sv_weights sv_weights;

/* Opens a checkpoint directory (single file or sharded index). */
int sv_weights_open(sv_weights **out, const char *dir, sv_error *err);
/* Opens one .safetensors file. */
int sv_weights_open_file(sv_weights **out, const char *path, sv_error *err);
void sv_weights_close(sv_weights *w);

/* NULL if absent. Lookup is by exact name. Tensors of dtypes other than F32,
 * F16 and BF16 (int64 position_ids, say) are validated but not in the table. */
const sv_tensor *sv_weights_find(const sv_weights *w, const char *name);
/* The stored dtype ("I64", ...) of such a left-out tensor, NULL if none has the name. */
const char *sv_weights_unloadable_dtype(const sv_weights *w, const char *name);
size_t sv_weights_count(const sv_weights *w);
const sv_tensor *sv_weights_at(const sv_weights *w, size_t i);

/* For readers of other checkpoint formats (torch_bin.h) filling the same table:
 * maps path read-only until sv_weights_close (*stored_path: its name as tensors'
 * `file` must give it), and adds a copy of t (its name copied, data not). */
int sv_weights_map(sv_weights *w, const char *path, const unsigned char **base, size_t *size,
                   const char **stored_path, sv_error *err);
int sv_weights_add(sv_weights *w, const sv_tensor *t, sv_error *err);

/* Writing (test models, exports). Data is given in fp32 and stored as dtype. */
typedef struct sv_tensor_src {
    const char *name;
    sv_dtype dtype;
    int ndim;
    int64_t shape[SV_TENSOR_MAX_DIMS];
    const float *data;
} sv_tensor_src;

/* Writes one file: tensors sorted by name, header JSON padded with spaces to a
 * multiple of 8 bytes, "__metadata__": {"format": "pt"}. Atomic (tmp + rename). */
int sv_safetensors_write(const char *path, const sv_tensor_src *tensors, size_t n,
                         sv_error *err);

#endif
