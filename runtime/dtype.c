/* F32 / F16 / BF16 conversions.
 *
 * Bit manipulation on integers (plus one exact float product), so results do
 * not depend on the floating-point environment (rounding mode, FTZ/DAZ).
 * sv_to_f32 is on the matmul path for weight tiles: its F16/BF16 loops run over
 * branch-free element functions in fixed-size blocks, which gcc and clang
 * vectorise at -O2. */
#include <string.h>

#include "dtype.h"
#include "simd.h"

/* Stored checkpoints are little-endian and we read them in place. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "shortv reads little-endian weight files in place; big-endian hosts are not supported"
#endif

static const char *const dtype_names[] = {"F32", "F16", "BF16"};

size_t sv_dtype_size(sv_dtype t) { return t == SV_DTYPE_F32 ? 4 : 2; }

const char *sv_dtype_name(sv_dtype t) { return dtype_names[t]; }

int sv_dtype_parse(const char *name, sv_dtype *out) {
    for (int t = 0; t < 3; t++) {
        if (strcmp(name, dtype_names[t]) == 0) {
            *out = (sv_dtype)t;
            return 0;
        }
    }
    return -1;
}

static inline uint32_t f32_bits(float f) {
    uint32_t x;
    memcpy(&x, &f, 4);
    return x;
}

static inline float bits_f32(uint32_t x) {
    float f;
    memcpy(&f, &x, 4);
    return f;
}

/* Rounds the integer m >> shift to nearest, ties to even (1 <= shift <= 31). */
static inline uint32_t shift_round_even(uint32_t m, int shift) {
    uint32_t r = m >> shift;
    uint32_t rem = m & ((1u << shift) - 1);
    uint32_t half = 1u << (shift - 1);
    return r + (rem > half || (rem == half && (r & 1)));
}

static inline float f16_to_f32(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t em = h & 0x7fffu; /* exponent and mantissa */
    uint32_t normal = (em << 13) + 0x38000000u;  /* exponent bias 15 -> 127 */
    uint32_t inf_nan = (em << 13) | 0x7f800000u; /* keeps the NaN payload */
    /* A subnormal is em * 2^-24; the product is exact since em < 2^10. */
    uint32_t subnormal = f32_bits((float)em * 0x1p-24f);
    /* Selected with masks rather than branches so that the loops vectorise. */
    uint32_t is_inf_nan = 0u - (uint32_t)(em >= 0x7c00);
    uint32_t is_subnormal = 0u - (uint32_t)(em < 0x0400);
    uint32_t mag = (inf_nan & is_inf_nan) | (subnormal & is_subnormal) |
                   (normal & ~(is_inf_nan | is_subnormal));
    return bits_f32(sign | mag);
}

float sv_f16_to_f32(uint16_t h) { return f16_to_f32(h); }

uint16_t sv_f32_to_f16(float f) {
    uint32_t x = f32_bits(f);
    uint16_t sign = (uint16_t)((x >> 16) & 0x8000);
    uint32_t a = x & 0x7fffffffu;
    if (a > 0x7f800000u) /* NaN: quiet it so a payload lost to truncation cannot make inf */
        return (uint16_t)(sign | 0x7e00 | ((a >> 13) & 0x1ff));
    if (a >= 0x477ff000u) /* >= 65520, the tie between 65504 and 65536, rounds to inf */
        return (uint16_t)(sign | 0x7c00);
    if (a >= 0x38800000u) { /* normal in f16 (>= 2^-14): rebias, round 13 bits away */
        /* A carry out of the mantissa correctly bumps the exponent. */
        return (uint16_t)(sign | shift_round_even(a - 0x38000000u, 13));
    }
    /* f16 subnormal: the value in units of 2^-24 is m * 2^(e - 126). */
    int e = (int)(a >> 23);
    int shift = 126 - e;
    if (shift > 24) /* below 2^-25 (a tie at exactly 2^-25 goes to even 0) */
        return sign;
    uint32_t m = (a & 0x7fffffu) | 0x800000u;
    return (uint16_t)(sign | shift_round_even(m, shift));
}

static inline float bf16_to_f32(uint16_t h) { return bits_f32((uint32_t)h << 16); }

float sv_bf16_to_f32(uint16_t h) { return bf16_to_f32(h); }

uint16_t sv_f32_to_bf16(float f) {
    uint32_t x = f32_bits(f);
    if ((x & 0x7fffffffu) > 0x7f800000u) /* NaN: keep it NaN by setting the quiet bit */
        return (uint16_t)((x >> 16) | 0x0040);
    /* Adding 0x7fff plus the kept LSB rounds to nearest even; overflow gives inf. */
    return (uint16_t)((x + 0x7fffu + ((x >> 16) & 1)) >> 16);
}

/* One loop over the whole run, restrict-qualified, with no calls and unaligned
 * loads through memcpy, so that gcc (-fvect-cost-model=dynamic, see the
 * Makefile) and clang vectorise it, remainder included. always_inline with a
 * constant t: each call below is its own loop with the dtype test gone, and
 * each is compiled into every clone of sv_to_f32 (runtime/simd.h). */
static inline __attribute__((always_inline)) void
half_run_to_f32(sv_dtype t, const unsigned char *restrict src, float *restrict dst, size_t n) {
    for (size_t i = 0; i < n; i++) {
        uint16_t h;
        memcpy(&h, src + 2 * i, 2);
        dst[i] = t == SV_DTYPE_BF16 ? bf16_to_f32(h) : f16_to_f32(h);
    }
}

SV_VECTOR_CLONES
void sv_to_f32(sv_dtype t, const void *src, float *dst, size_t n) {
    if (n == 0) return; /* src and dst may then be NULL, which memcpy forbids */
    if (t == SV_DTYPE_F32)
        memcpy(dst, src, n * 4);
    else if (t == SV_DTYPE_BF16)
        half_run_to_f32(SV_DTYPE_BF16, src, dst, n);
    else
        half_run_to_f32(SV_DTYPE_F16, src, dst, n);
}

/* Used when writing files, not on a hot path, so it stays element by element. */
void sv_from_f32(sv_dtype t, const float *src, void *dst, size_t n) {
    unsigned char *d = dst;
    if (n == 0) return;
    if (t == SV_DTYPE_F32) {
        memcpy(d, src, n * 4);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint16_t h = t == SV_DTYPE_F16 ? sv_f32_to_f16(src[i]) : sv_f32_to_bf16(src[i]);
        memcpy(d + 2 * i, &h, 2);
    }
}
