/* The zip container of torch.save (PyTorch >= 1.6): a directory of stored
 * (uncompressed) entries, "<archive>/data.pkl" plus "<archive>/data/<key>"
 * for each storage, read in place from a memory-mapped file.
 *
 * Everything in the directory is hostile until checked: the end-of-directory
 * records (zip64 too: 7B shards pass 4 GB), each entry's local header, that
 * every entry's bytes lie inside the file, that no two entries overlap, that
 * entries are stored rather than compressed and not encrypted. CRCs are not
 * checked: that would read every byte of a multi-GB shard at open. */
#ifndef SV_TORCH_ZIP_H
#define SV_TORCH_ZIP_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

typedef struct sv_zip_entry {
    const char *name; /* into the mapping, not NUL-terminated */
    size_t name_len;
    const unsigned char *data;
    size_t size;
} sv_zip_entry;

typedef struct sv_zip {
    sv_zip_entry *entries; /* [n], sorted by name */
    size_t n;
} sv_zip;

/* Reads the directory of the size-byte file at base; path names it in messages. */
int sv_zip_open(sv_zip *z, const unsigned char *base, size_t size, const char *path,
                sv_error *err);
void sv_zip_close(sv_zip *z);
/* The entry called name (NUL-terminated), or NULL. */
const sv_zip_entry *sv_zip_find(const sv_zip *z, const char *name);

#endif
