/* Stored weight dtypes and their conversion to the fp32 we compute in. */
#ifndef SV_DTYPE_H
#define SV_DTYPE_H

#include <stddef.h>
#include <stdint.h>

typedef enum { SV_DTYPE_F32, SV_DTYPE_F16, SV_DTYPE_BF16 } sv_dtype;

size_t sv_dtype_size(sv_dtype t);           /* 4, 2, 2 */
const char *sv_dtype_name(sv_dtype t);      /* "F32", "F16", "BF16" (safetensors spelling) */
int sv_dtype_parse(const char *name, sv_dtype *out); /* 0 on success */

/* dst[i] = src[i] as fp32. src need not be aligned. */
void sv_to_f32(sv_dtype t, const void *src, float *dst, size_t n);
/* dst[i] = src[i] rounded to t (round to nearest even; NaN stays NaN). */
void sv_from_f32(sv_dtype t, const float *src, void *dst, size_t n);

float sv_f16_to_f32(uint16_t h);
uint16_t sv_f32_to_f16(float f);
float sv_bf16_to_f32(uint16_t h);
uint16_t sv_f32_to_bf16(float f);

#endif
