/* PyTorch checkpoints (pytorch_model.bin and its shards): torch.save's zip
 * archive (torch_zip.h) holding a pickled state dict (pickle.h). Each tensor
 * becomes an sv_tensor pointing into the memory-mapped storage entry, so
 * model.c binds .bin and .safetensors weights alike.
 *
 * Views: the element offset is applied; the view must be contiguous (as
 * state_dict() tensors are), since a strided one would need a copy where every
 * other weight is read in place: it is refused by name, and so is a view that
 * reaches past its storage. Tensors of storages other than F32, F16 and BF16
 * (CLIP's int64 position_ids buffer) are passed over: no model weight uses
 * them. */
#ifndef SV_TORCH_BIN_H
#define SV_TORCH_BIN_H

#include "safetensors.h"

/* Maps path into w and adds its tensors. */
int sv_torch_bin_read(sv_weights *w, const char *path, sv_error *err);

#endif
