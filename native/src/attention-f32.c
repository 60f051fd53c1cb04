/*
 * Float32 register tiles for a prefill's attention (see attention-f32.h). Both products keep an
 * 8 x 32 block of the result in 16 zmm accumulators (tile_8x32): per step of the inner index, two vectors of
 * the right operand (32 packed keys, or 32 columns of a value row) and one broadcast value of the
 * left operand per row. Rows past `rows` repeat the last row's operand and are not stored, so a
 * short block costs a full one and needs no other code.
 */
#include "attention-f32.h"

#include <string.h>

#include "simd.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define TESSERA_X86 1
#include <immintrin.h>
#endif

#define R TESSERA_ATTENTION_ROWS

static int force_absent;

void tessera_attention_f32_force_absent(int absent) { force_absent = absent; }

int tessera_attention_f32_available(void) { return tessera_cpu_avx512() && !force_absent; }

size_t tessera_attention_keys_ld(int keys) { return ((size_t)keys + 31) / 32 * 32 + 16; }

static void pack_keys_scalar(const float *k, size_t ldk, int first, int keys, int head_dim, float *kt, size_t ldt) {
  for (int j = first; j < keys; j++) {
    const float *row = k + (size_t)j * ldk;
    for (int p = 0; p < head_dim; p++) kt[(size_t)p * ldt + j] = row[p];
  }
}

#ifdef TESSERA_X86
#define AVX512 __attribute__((target("avx512f")))

/* r[0..15] (16 rows of 16) transposed in registers: unpack pairs of rows, then 4x4 blocks inside
 * 128-bit lanes, then the lanes themselves. */
AVX512 static inline void transpose16(__m512 r[16]) {
  __m512 t[16], u[16];
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    u[i] = _mm512_shuffle_ps(t[i], t[i + 2], 0x44);
    u[i + 1] = _mm512_shuffle_ps(t[i], t[i + 2], 0xee);
    u[i + 2] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0x44);
    u[i + 3] = _mm512_shuffle_ps(t[i + 1], t[i + 3], 0xee);
  }
  for (int i = 0; i < 4; i++) {
    t[i] = _mm512_shuffle_f32x4(u[i], u[i + 4], 0x88);
    t[i + 4] = _mm512_shuffle_f32x4(u[i], u[i + 4], 0xdd);
    t[i + 8] = _mm512_shuffle_f32x4(u[i + 8], u[i + 12], 0x88);
    t[i + 12] = _mm512_shuffle_f32x4(u[i + 8], u[i + 12], 0xdd);
  }
  for (int i = 0; i < 8; i++) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0x88);
    r[i + 8] = _mm512_shuffle_f32x4(t[i], t[i + 8], 0xdd);
  }
}

/* Keys in blocks of 16 through transpose16; the last keys (fewer than 16) one by one. */
AVX512 static int pack_keys_avx512(const float *k, size_t ldk, int keys, int head_dim, float *kt, size_t ldt) {
  int j = 0;
  for (; j + 16 <= keys; j += 16) {
    for (int p = 0; p < head_dim; p += 16) {
      __m512 r[16];
      for (int i = 0; i < 16; i++) r[i] = _mm512_loadu_ps(k + (size_t)(j + i) * ldk + p);
      transpose16(r);
      for (int i = 0; i < 16; i++) _mm512_store_ps(kt + (size_t)(p + i) * ldt + j, r[i]);
    }
  }
  return j;
}

/* Row i's operand pointer: rows past the block's repeat its last row. */
#define ROW_PTR(base, ld, i, rows) ((base) + (size_t)((i) < (rows) ? (i) : (rows) - 1) * (ld))

/* One row's two accumulators gain x times the right operand's two vectors. */
#define FMA_ROW(i, x)                           \
  do {                                          \
    const __m512 x_ = _mm512_set1_ps(x);        \
    acc[2 * (i)] = _mm512_fmadd_ps(x_, b0, acc[2 * (i)]);         \
    acc[2 * (i) + 1] = _mm512_fmadd_ps(x_, b1, acc[2 * (i) + 1]); \
  } while (0)

#define FMA_ROWS(a, at)                                                                         \
  do {                                                                                          \
    FMA_ROW(0, a[0][at]); FMA_ROW(1, a[1][at]); FMA_ROW(2, a[2][at]); FMA_ROW(3, a[3][at]);     \
    FMA_ROW(4, a[4][at]); FMA_ROW(5, a[5][at]); FMA_ROW(6, a[6][at]); FMA_ROW(7, a[7][at]);     \
  } while (0)

/* c[i][0..32) = Σ_{t < depth} a[i][t] · b[t * ldb + 0..32) for the rows a[i], stored for i < rows. */
AVX512 static inline void tile_8x32(const float *a[R], const float *b, size_t ldb, int depth, int rows, float *c,
                                    size_t ldc) {
  __m512 acc[2 * R];
  for (int i = 0; i < 2 * R; i++) acc[i] = _mm512_setzero_ps();
  for (int t = 0; t < depth; t++, b += ldb) {
    const __m512 b0 = _mm512_loadu_ps(b), b1 = _mm512_loadu_ps(b + 16);
    FMA_ROWS(a, t);
  }
  for (int i = 0; i < rows; i++) {
    _mm512_storeu_ps(c + (size_t)i * ldc, acc[2 * i]);
    _mm512_storeu_ps(c + (size_t)i * ldc + 16, acc[2 * i + 1]);
  }
}

AVX512 static void scores_avx512(const float *q, size_t ldq, int rows, const float *kt, size_t ldt, int head_dim,
                                 int n, float *s, size_t lds) {
  const float *qr[R];
  for (int i = 0; i < R; i++) qr[i] = ROW_PTR(q, ldq, i, rows);
  for (int j = 0; j < n; j += 32) tile_8x32(qr, kt + j, ldt, head_dim, rows, s + j, lds);
}

AVX512 static void context_avx512(const float *p, size_t ldp, int rows, int n, const float *v, size_t ldv,
                                  int head_dim, float *o, size_t ldo) {
  const float *pr[R];
  for (int i = 0; i < R; i++) pr[i] = ROW_PTR(p, ldp, i, rows);
  int c = 0;
  for (; c + 32 <= head_dim; c += 32) tile_8x32(pr, v + c, ldv, n, rows, o + c, ldo);
  if (c < head_dim) { /* the last 16 columns: head_dim is a multiple of 16 */
    __m512 acc[R];
    for (int a = 0; a < R; a++) acc[a] = _mm512_setzero_ps();
    const float *vp = v + c;
    for (int j = 0; j < n; j++, vp += ldv) {
      const __m512 b0 = _mm512_loadu_ps(vp);
      for (int i = 0; i < R; i++) acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(pr[i][j]), b0, acc[i]);
    }
    for (int i = 0; i < rows; i++) _mm512_storeu_ps(o + (size_t)i * ldo + c, acc[i]);
  }
}
#endif

void tessera_attention_pack_keys(const float *k, size_t ldk, int keys, int head_dim, float *kt, size_t ldt) {
  int packed = 0;
#ifdef TESSERA_X86
  packed = pack_keys_avx512(k, ldk, keys, head_dim, kt, ldt);
#endif
  pack_keys_scalar(k, ldk, packed, keys, head_dim, kt, ldt);
  for (int p = 0; p < head_dim; p++) memset(kt + (size_t)p * ldt + keys, 0, sizeof(float) * (ldt - (size_t)keys));
}

void tessera_attention_scores(const float *q, size_t ldq, int rows, const float *kt, size_t ldt, int head_dim, int n,
                              float *s, size_t lds) {
#ifdef TESSERA_X86
  scores_avx512(q, ldq, rows, kt, ldt, head_dim, n, s, lds);
#endif
}

void tessera_attention_context(const float *p, size_t ldp, int rows, int n, const float *v, size_t ldv, int head_dim,
                               float *o, size_t ldo) {
#ifdef TESSERA_X86
  context_avx512(p, ldp, rows, n, v, ldv, head_dim, o, ldo);
#endif
}
