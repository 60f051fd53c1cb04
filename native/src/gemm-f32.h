/*
 * A float32 GEMM register-blocked for AVX-512 (gemm-f32.c), with B read from float32 or from
 * packed bf16, f16 or int8 weights, widened while they are packed into panels: a packed model's
 * prefill makes no float32 copy of its weights.
 */
#ifndef TESSERA_GEMM_F32_H
#define TESSERA_GEMM_F32_H

#include <stddef.h>

/* 1 when this CPU and OS run it (AVX-512F); else 0 and callers use OpenBLAS. */
int tessera_gemm_f32_available(void);

/* Tests: pretend the CPU lacks AVX-512 (1), or look at the real CPU again (0). */
void tessera_gemm_f32_force_absent(int absent);

/*
 * C [m, n] (row stride ldc) = A . B * scale[j] + bias, summed in float32.
 * A(i, p) = a[i * a_rs + p * a_cs] (a_rs or a_cs is 1). B(p, j) = b[p * b_ks + j * b_ns] in
 * b_kind's element type (gemm-bf16.h's kinds; packed kinds are stored [n, k]: b_ks = 1, b_ns = k;
 * float32 either way). scales: int8's per output column (else NULL); bias: NULL, 1 value, or n
 * values. Returns 0 when tessera_gemm_f32_available() is 0 or a buffer cannot be allocated; C
 * may then be partly written and the caller computes all of it another way.
 */
int tessera_gemm_f32(int m, int n, int k, const float *a, size_t a_rs, size_t a_cs, int b_kind, const void *b,
                     size_t b_ks, size_t b_ns, const float *scales, const float *bias, size_t bias_len, float *c,
                     size_t ldc);

#endif
