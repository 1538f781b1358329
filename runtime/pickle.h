/* A restricted unpickler for the data.pkl of a torch.save'd state dict.
 *
 * A pickle is a program: a general unpickler imports and calls whatever it
 * names, so a checkpoint from the internet could run os.system. This one knows
 * the opcodes of protocols 2-5 that build plain data, and exactly the globals
 * torch.save writes for a state dict: collections.OrderedDict,
 * torch._utils._rebuild_tensor_v2 and the torch.*Storage types (through
 * persistent ids). Any other global is refused by name, before anything runs.
 * Nothing is called: the result is a list of tensor records.
 *
 * Pickle bombs are bounded: memo indices below the pickle's length, nesting at
 * most SV_PICKLE_MAX_DEPTH, and objects are shared, never copied, so work and
 * memory stay linear in the pickle's size. */
#ifndef SV_PICKLE_H
#define SV_PICKLE_H

#include <stddef.h>
#include <stdint.h>

#include "dtype.h"
#include "safetensors.h"
#include "status.h"

#define SV_PICKLE_MAX_DEPTH 32
#define SV_PICKLE_MAX_BYTES ((size_t)1 << 30)

/* One entry of the state dict: a view (offset, shape, strides, in elements)
 * of a storage that lives in the archive as data/<storage_key>. */
typedef struct sv_pickle_tensor {
    char *name;
    char *storage_key;
    const char *storage_type; /* "HalfStorage", ... (static) */
    int supported;            /* storage of F32, F16 or BF16 (then dtype holds it) */
    sv_dtype dtype;
    int64_t storage_numel;    /* elements, from the persistent id */
    int64_t offset;
    int ndim;
    int64_t shape[SV_TENSOR_MAX_DIMS], stride[SV_TENSOR_MAX_DIMS];
} sv_pickle_tensor;

/* Unpickles a state dict (a dict or OrderedDict of name -> tensor). path names
 * the pickle in messages. On success *out holds *n records (free with
 * sv_pickle_tensors_free). */
int sv_pickle_state_dict(const unsigned char *data, size_t len, const char *path,
                         sv_pickle_tensor **out, size_t *n, sv_error *err);
void sv_pickle_tensors_free(sv_pickle_tensor *t, size_t n);

#endif
