/*
 * An opt-in bfloat16-compute GEMM (AVX-512 BF16's vdpbf16ps, float32 accumulation): both operands
 * are rounded to bf16 while they are packed, each product of two bf16 values is exact in float32,
 * and the sums are float32. It trades about 3 significant digits of the inputs for up to twice
 * the multiply rate of float32 FMA. Used only when asked for (setMatmulPrecision('bfloat16')).
 */
#ifndef TESSERA_GEMM_BF16_H
#define TESSERA_GEMM_BF16_H

#include <stddef.h>
#include <stdint.h>

/* B operand kinds: the packed-weight kinds of quant.h (0 bf16, 1 f16, 2 int8), and float32. */
#define TESSERA_BF16_B_F32 3

/*
 * NULL when this CPU and OS can run the bf16 GEMM, else the name of what is missing
 * ("avx512f", "avx512bw", "avx512_bf16", or the OS's AVX-512 register state).
 */
const char *tessera_bf16_missing(void);

/* Tests: pretend the CPU lacks AVX512_BF16 (1) or look at the real CPU again (0). */
void tessera_bf16_force_absent(int absent);

/*
 * 1 when the bf16 GEMM runs on AMX tiles (Intel's AMX-BF16, enabled by the OS for this process),
 * which multiply a 16x32 by a 32x16 block per instruction; else it uses vdpbf16ps. Both round the
 * same inputs to bf16 and accumulate in float32, in a different order.
 */
int tessera_amx_available(void);

/* Tests: take the vdpbf16ps path on an AMX machine (1) or use AMX again where present (0). */
void tessera_amx_force_absent(int absent);

/*
 * Building blocks of bf16-compute kernels on AMX, for use only where tessera_amx_available(). A
 * thread calls tessera_amx_begin() before tessera_amx_multiply and tessera_amx_end() after.
 *
 * tessera_amx_pack_rows: dst[i * dst_ld + p] = bf16(src[i * ld + p]) for i < rows, p < cols, and
 * zero for p in [cols, dst_ld) (dst_ld: at least cols rounded up to 32).
 * tessera_amx_pack_panels: B [k, n] with B(p, j) = src[p * ks + j * ns] (ks or ns is 1) as panels
 * of 32 columns in the tiles' pair layout, panel t at dst + t * 16 * k32 words (k32: k rounded
 * up to 32), zero past k and n.
 * tessera_amx_multiply: C [32, 32 * panel_count] (row stride ldc) = A [32 rows, k] (packed rows,
 * row stride a_ld, zero past k) times the first k rows of panels packed with panel_k >= k rows;
 * every entry of the 32 rows is written.
 */
void tessera_amx_begin(void);
void tessera_amx_end(void);
void tessera_amx_pack_rows(const float *src, size_t ld, int rows, int cols, uint16_t *dst, size_t dst_ld);
void tessera_amx_pack_panels(const float *src, size_t ks, size_t ns, int k, int n, uint32_t *dst);
void tessera_amx_multiply(const uint16_t *a, size_t a_ld, const uint32_t *panels, int panel_count, int panel_k, int k,
                          float *c, size_t ldc);

/* The matmul precision the float32 matmul and packed prefill kernels use: 0 float32, 1 bfloat16. */
int tessera_matmul_precision(void);

/* Products (m*n*k) from which the float32 kernels use the bf16 GEMM when opted in (below, packing costs more than it saves). */
#define TESSERA_BF16_MIN_PRODUCTS ((size_t)1 << 20)

/* Set it; returns 0 (and leaves it) when bfloat16 is asked for and tessera_bf16_missing() is not NULL. */
int tessera_set_matmul_precision(int bf16);

/*
 * C [m, n] (row stride ldc) = A . B * scale[j] + bias, rounding A and B to bf16.
 * A(i, p) = a[i * a_rs + p * a_cs] (float32). B(p, j) = b[p * b_ks + j * b_ns] in b_kind's
 * element type (packed kinds are stored [n, k]: b_ks = 1, b_ns = k). scales: int8's per output
 * column (else NULL); bias: NULL, 1 value, or n values. Returns 0 when a buffer cannot be
 * allocated or the CPU lacks the instructions (nothing is written then).
 */
int tessera_gemm_bf16(int m, int n, int k, const float *a, size_t a_rs, size_t a_cs, int b_kind, const void *b,
                      size_t b_ks, size_t b_ns, const float *scales, const float *bias, size_t bias_len, float *c,
                      size_t ldc);

#endif
