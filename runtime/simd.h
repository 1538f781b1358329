/* Hot loops are compiled three times, for x86-64 in general, for x86-64-v3
 * (AVX2, FMA) and for x86-64-v4 (AVX-512), and the dynamic loader picks the
 * clone the CPU runs (GCC's target_clones, an ifunc resolved from cpuid at
 * load time). The build stays portable; the machine it runs on decides. Only
 * loops the compiler can vectorise without reassociating floating-point sums
 * are marked, and ISO C mode forbids contracting a*b+c into an FMA: every
 * clone computes the same bits. */
#ifndef SV_SIMD_H
#define SV_SIMD_H

/* GCC only: Clang 14 (Debian 12) names the ifunc "<function>.ifunc", which
 * calls from other files cannot link to (make CC=clang: undefined sv_to_f32),
 * so a Clang build runs the default clone. */
#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__) && !defined(__clang__)
#define SV_VECTOR_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define SV_VECTOR_CLONES
#endif

#endif
