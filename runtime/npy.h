/* NumPy .npy format 1.0 files (little-endian, C order) for results and
 * reference data. Writes are atomic: data goes to "<path>.tmp" and is renamed
 * into place only when complete, so a failed run never leaves a file that
 * looks finished. */
#ifndef SV_NPY_H
#define SV_NPY_H

#include <stddef.h>
#include <stdint.h>

#include "status.h"

#define SV_NPY_MAX_DIMS 8

typedef enum { SV_NPY_F4, SV_NPY_F8, SV_NPY_I4, SV_NPY_U1 } sv_npy_type;

typedef struct sv_npy {
    sv_npy_type type;
    int ndim;
    int64_t shape[SV_NPY_MAX_DIMS];
    size_t count; /* product of shape */
    void *data;   /* count elements of type, malloc'd */
} sv_npy;

int sv_npy_read(sv_npy *out, const char *path, sv_error *err);
void sv_npy_free(sv_npy *a);
int sv_npy_write(const char *path, sv_npy_type type, int ndim,
                 const int64_t *shape, const void *data, sv_error *err);
size_t sv_npy_type_size(sv_npy_type type);

#endif
