/*
 * What the two AVX-512 GEMMs (gemm-f32.c, gemm-bf16.c) share: their operands, the empty product,
 * the 16 x 16 transpose their packing uses (a row of a weight matrix is contiguous along the inner
 * index, a packed panel along the output columns) and the store of a finished register tile.
 */
#ifndef TESSERA_GEMM_TILES_H
#define TESSERA_GEMM_TILES_H

#include <stddef.h>

/* One product's operands as tessera_gemm_f32 and tessera_gemm_bf16 take them (see gemm-f32.h). */
struct tessera_gemm_operands {
  int m, n, k;
  const float *a;
  size_t a_rs, a_cs;
  int b_kind;
  const char *b;
  size_t b_ks, b_ns;
  const float *scales, *bias;
  size_t bias_len;
  float *c;
  size_t ldc;
};

/* tessera_gemm_f32 or tessera_gemm_bf16, for callers that pick one. */
typedef int (*tessera_gemm_fn)(int m, int n, int k, const float *a, size_t a_rs, size_t a_cs, int b_kind, const void *b,
                               size_t b_ks, size_t b_ns, const float *scales, const float *bias, size_t bias_len,
                               float *c, size_t ldc);

/* C [m, n] (row stride ldc) = bias (NULL: 0; one value or n): a product over an empty inner dimension. */
static inline void tessera_fill_bias(float *c, int m, int n, size_t ldc, const float *bias, size_t bias_len) {
  for (int i = 0; i < m; i++)
    for (int j = 0; j < n; j++) c[(size_t)i * ldc + j] = bias == NULL ? 0.0f : bias[bias_len == 1 ? 0 : j];
}

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#include <immintrin.h>

/* r[i] (i < 16) becomes column i of the 16 x 16 matrix of 32-bit lanes whose rows r held. */
__attribute__((target("avx512f"))) static inline void tessera_transpose16x16(__m512i r[16]) {
  __m512i t[16];
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  /* u[4g + c]: in each 128-bit lane L, column 4L + c of rows 4g .. 4g + 3. */
  __m512i u[16];
  for (int g = 0; g < 4; g++) {
    u[4 * g] = _mm512_unpacklo_epi64(t[4 * g], t[4 * g + 2]);
    u[4 * g + 1] = _mm512_unpackhi_epi64(t[4 * g], t[4 * g + 2]);
    u[4 * g + 2] = _mm512_unpacklo_epi64(t[4 * g + 1], t[4 * g + 3]);
    u[4 * g + 3] = _mm512_unpackhi_epi64(t[4 * g + 1], t[4 * g + 3]);
  }
  /* Per c, a 4 x 4 transpose of 128-bit lanes across u[c], u[4 + c], u[8 + c], u[12 + c]. */
  for (int c = 0; c < 4; c++) {
    const __m512i v0 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0x44), v1 = _mm512_shuffle_i32x4(u[c], u[4 + c], 0xee);
    const __m512i v2 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0x44), v3 = _mm512_shuffle_i32x4(u[8 + c], u[12 + c], 0xee);
    r[c] = _mm512_shuffle_i32x4(v0, v2, 0x88);
    r[4 + c] = _mm512_shuffle_i32x4(v0, v2, 0xdd);
    r[8 + c] = _mm512_shuffle_i32x4(v1, v3, 0x88);
    r[12 + c] = _mm512_shuffle_i32x4(v1, v3, 0xdd);
  }
}

/*
 * C[mr, nr] (nr <= 32) (=|+=) acc * scale[j] (+ bias on the first block of inner indices): row r's
 * two halves are acc[r][0] and acc[r][1]. `first`: the first block writes C (with the bias), later
 * ones add to it. scale: NULL or per column; bias: NULL, one value (bias_one) or per column.
 */
__attribute__((target("avx512f"))) static inline void tessera_store_tile(const __m512 (*acc)[2], int mr, int nr, float *c,
                                                                         size_t ldc, const float *scale, const float *bias,
                                                                         int bias_one, int first) {
  for (int h = 0; h < 2; h++) {
    const int cols = nr - 16 * h;
    if (cols <= 0) break;
    const __mmask16 mask = (__mmask16)(cols >= 16 ? 0xffffu : (1u << cols) - 1);
    const __m512 s = scale != NULL ? _mm512_maskz_loadu_ps(mask, scale + 16 * h) : _mm512_set1_ps(1.0f);
    __m512 add = _mm512_setzero_ps();
    if (first && bias != NULL) add = bias_one ? _mm512_set1_ps(bias[0]) : _mm512_maskz_loadu_ps(mask, bias + 16 * h);
    for (int r = 0; r < mr; r++) {
      float *cr = c + (size_t)r * ldc + 16 * h;
      const __m512 base = first ? add : _mm512_maskz_loadu_ps(mask, cr);
      _mm512_mask_storeu_ps(cr, mask, _mm512_fmadd_ps(acc[r][h], s, base));
    }
  }
}
#endif

#endif
