/*
 * Linear layers over bfloat16, float16 and int8 weights (see quant.h).
 *
 * Decode multiplies one row of x by every weight once per token, so it is bound by the bytes it
 * streams: a GEMV reads the narrow weight directly and widens it in registers (bf16: a 16-bit
 * shift; f16: F16C's vcvtph2ps; int8: sign extension and one scale per output row applied after
 * the sum), multiplying and summing in float32. The vector path is picked once from the running
 * CPU (AVX-512F+BW, else AVX2+FMA+F16C, else portable C), because the addon may be copied between
 * machines. AVX-512 BF16's vdpbf16ps and VNNI's int8 dot products are not used: both would round
 * the activations to bf16 or int8 as well, and decode is bound by the weight bytes, not by the
 * widening, so they would change the results without making it faster.
 *
 * Prefill (many rows of x) is compute bound: the float32 GEMM (gemm-f32.c) widens the weights
 * while it packs them into panels. Where it does not run (no AVX-512), blocks of weight rows are
 * widened to float32 into a scratch buffer and multiplied by OpenBLAS's sgemm, one extra pass.
 */
#include "quant.h"

#include <cblas.h>
#include <stdlib.h>
#include <string.h>

#include "ffn.h"
#include "gemm-bf16.h"
#include "gemm-f32.h"
#include "gemm-tiles.h"
#include "kernels.h"
#include "parallel.h"
#include "simd.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define TESSERA_X86 1
#include <immintrin.h>
#endif

typedef uint32_t __attribute__((may_alias)) u32_alias;

size_t tessera_quant_size(int kind) { return kind == TESSERA_QUANT_INT8 ? 1 : 2; }

/* ---- scalar conversions (the portable path, packing, and tails) ---- */

TESSERA_INLINE float bf16_to_f32(uint16_t h) {
  const uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, 4);
  return f;
}

TESSERA_INLINE uint16_t f32_to_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
  u += 0x7fffu + ((u >> 16) & 1u); /* round to nearest, ties to even */
  return (uint16_t)(u >> 16);
}

/* IEEE half <-> float by bit manipulation (F. Giesen's public-domain conversions, ties to even). */
TESSERA_INLINE float f16_to_f32(uint16_t h) {
  const uint32_t shifted_exp = 0x7c00u << 13;
  uint32_t u = (uint32_t)(h & 0x7fffu) << 13;
  const uint32_t exp = shifted_exp & u;
  u += (127u - 15u) << 23;
  float f;
  if (exp == shifted_exp) {
    u += (128u - 16u) << 23; /* Inf, NaN */
    memcpy(&f, &u, 4);
  } else if (exp == 0) {
    u += 1u << 23; /* zero, subnormal: renormalise through a float subtraction */
    memcpy(&f, &u, 4);
    f -= 6.103515625e-05f; /* 2^-14 */
  } else {
    memcpy(&f, &u, 4);
  }
  return (h & 0x8000u) ? -f : f;
}

TESSERA_INLINE uint16_t f32_to_f16(float value) {
  uint32_t u;
  memcpy(&u, &value, 4);
  const uint32_t sign = (u >> 16) & 0x8000u;
  u &= 0x7fffffffu;
  uint16_t o;
  if (u >= (127u + 16u) << 23) {
    o = u > 0x7f800000u ? 0x7e00 : 0x7c00; /* NaN stays NaN, too large is Inf */
  } else if (u < 113u << 23) {
    /* Subnormal or zero: adding 0.5 lines the half's subnormal bits up with the float's mantissa. */
    float f;
    memcpy(&f, &u, 4);
    f += 0.5f;
    uint32_t r;
    memcpy(&r, &f, 4);
    o = (uint16_t)(r - 0x3f000000u);
  } else {
    const uint32_t mant_odd = (u >> 13) & 1u;
    u += ((uint32_t)(15 - 127) << 23) + 0xfffu + mant_odd;
    o = (uint16_t)(u >> 13);
  }
  return (uint16_t)(o | sign);
}

/* ---- packing ---- */

void tessera_quant_pack(int kind, const float *w, size_t rows, size_t cols, void *data, float *scales) {
  const size_t n = rows * cols;
  if (kind == TESSERA_QUANT_BF16) {
    uint16_t *d = data;
    for (size_t i = 0; i < n; i++) d[i] = f32_to_bf16(w[i]);
  } else if (kind == TESSERA_QUANT_F16) {
    uint16_t *d = data;
    for (size_t i = 0; i < n; i++) d[i] = f32_to_f16(w[i]);
  } else {
    int8_t *d = data;
    for (size_t r = 0; r < rows; r++) {
      const float *row = w + r * cols;
      float mx = 0.0f;
      for (size_t c = 0; c < cols; c++) mx = fabsf(row[c]) > mx ? fabsf(row[c]) : mx;
      /* Symmetric, one scale per output row: the scale multiplies the row's dot product once. */
      scales[r] = mx / 127.0f;
      const float inv = mx > 0.0f ? 127.0f / mx : 0.0f;
      for (size_t c = 0; c < cols; c++) {
        float q = nearbyintf(row[c] * inv);
        q = q > 127.0f ? 127.0f : (q < -127.0f ? -127.0f : q);
        d[r * cols + c] = (int8_t)q;
      }
    }
  }
}

/* ---- widening a run of weights to float32 (unpacking, and the GEMM's scratch blocks) ---- */

TESSERA_CLONES static void widen_bf16(const uint16_t *w, float *out, size_t n) {
  u32_alias *o = (u32_alias *)out;
  for (size_t i = 0; i < n; i++) o[i] = (uint32_t)w[i] << 16;
}

TESSERA_CLONES static void widen_int8(const int8_t *w, float scale, float *out, size_t n) {
  for (size_t i = 0; i < n; i++) out[i] = (float)w[i] * scale;
}

static void widen_f16_portable(const uint16_t *w, float *out, size_t n) {
  for (size_t i = 0; i < n; i++) out[i] = f16_to_f32(w[i]);
}

#ifdef TESSERA_X86
__attribute__((target("avx2,f16c"))) static void widen_f16_f16c(const uint16_t *w, float *out, size_t n) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(out + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + i))));
  for (; i < n; i++) out[i] = f16_to_f32(w[i]);
}
#endif

/* ---- dot products of x with runs of packed weight rows ---- */

/*
 * d[j] = x . (packed row j of w) for j in [0, count), rows `in` weights apart. Most vector paths
 * take four weight rows at a time (DOTS_VEC), so each load of x serves four rows and eight
 * accumulators keep the FMA pipes busy while the four weight streams are read; leftover rows take
 * the one-row loop, which sums each row in the same order, so a row's value does not depend on
 * where a thread's part begins. AVX-512 bf16 and f16 go one row at a time (below DOTS_VEC).
 */
typedef void (*dots_fn)(const float *x, const void *w, int in, size_t count, float *d);

/* The portable path: one row at a time, widened with CONV. */
#define DOTS_PORTABLE(NAME, T, CONV)                                                     \
  static void NAME(const float *x, const void *wv, int in, size_t count, float *d) {      \
    for (size_t r = 0; r < count; r++) {                                                 \
      const T *w = (const T *)wv + r * (size_t)in;                                       \
      float s = 0.0f;                                                                    \
      for (int k = 0; k < in; k++) s += x[k] * CONV(w[k]);                               \
      d[r] = s;                                                                          \
    }                                                                                    \
  }
#define TO_FLOAT(v) ((float)(v))
DOTS_PORTABLE(dots_bf16_portable, uint16_t, bf16_to_f32)
DOTS_PORTABLE(dots_f16_portable, uint16_t, f16_to_f32)
DOTS_PORTABLE(dots_int8_portable, int8_t, TO_FLOAT)
DOTS_PORTABLE(dots_f32_portable, float, TO_FLOAT)

/*
 * Bytes ahead of each weight row's read position that the vector loops prefetch. Four row
 * streams at once are more than the hardware prefetchers follow far enough ahead to cover the
 * memory latency of a virtual machine's DRAM: on Zen 5, 768 bytes left a thread at 17 GB/s and
 * 8 KiB brought it to the bandwidth a plain sequential read gets. Rows are contiguous, so the
 * lines fetched past a row's end are the next rows', read soon after.
 */
#define PREFETCH_AHEAD 8192

#ifdef TESSERA_X86
#define AVX512 __attribute__((target("avx512f,avx512bw")))
#define AVX2 __attribute__((target("avx2,fma,f16c")))

AVX512 static inline __m512 widen16_bf16(const uint16_t *p) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)p)), 16));
}
AVX512 static inline __m512 widen16_f16(const uint16_t *p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p));
}
AVX512 static inline __m512 widen16_int8(const int8_t *p) {
  return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p)));
}

/*
 * One row's or four rows' sums: two accumulators a row over steps of 2 x LANES, then one step of
 * LANES into the first, the pair added and reduced, then the scalar tail. The one-row and the
 * four-row loops are the same arithmetic per row; the tails' explicit fused multiply-adds keep it
 * so when the compiler vectorises the four rows' tails together (it would otherwise be free to
 * contract one and not the other).
 */
#define DOTS_VEC(NAME, ATTR, T, VEC, LANES, ZERO, LOAD, FMA, ADD, REDUCE, WIDEN, CONV)                     \
  ATTR static void NAME(const float *x, const void *wv, int in, size_t count, float *d) {                 \
    const T *w = wv;                                                                                    \
    size_t r = 0;                                                                                       \
    for (; r + 4 <= count; r += 4) {                                                                    \
      const T *w0 = w + r * (size_t)in, *w1 = w0 + in, *w2 = w1 + in, *w3 = w2 + in;                   \
      VEC a0 = ZERO(), b0 = ZERO(), a1 = ZERO(), b1 = ZERO(), a2 = ZERO(), b2 = ZERO(), a3 = ZERO(),     \
          b3 = ZERO();                                                                                  \
      int k = 0;                                                                                        \
      for (; k + 2 * (LANES) <= in; k += 2 * (LANES)) {                                                 \
        _mm_prefetch((const char *)(w0 + k) + PREFETCH_AHEAD, _MM_HINT_T0);                             \
        _mm_prefetch((const char *)(w1 + k) + PREFETCH_AHEAD, _MM_HINT_T0);                             \
        _mm_prefetch((const char *)(w2 + k) + PREFETCH_AHEAD, _MM_HINT_T0);                             \
        _mm_prefetch((const char *)(w3 + k) + PREFETCH_AHEAD, _MM_HINT_T0);                             \
        const VEC x0 = LOAD(x + k), x1 = LOAD(x + k + (LANES));                                         \
        a0 = FMA(WIDEN(w0 + k), x0, a0);                                                                \
        b0 = FMA(WIDEN(w0 + k + (LANES)), x1, b0);                                                      \
        a1 = FMA(WIDEN(w1 + k), x0, a1);                                                                \
        b1 = FMA(WIDEN(w1 + k + (LANES)), x1, b1);                                                      \
        a2 = FMA(WIDEN(w2 + k), x0, a2);                                                                \
        b2 = FMA(WIDEN(w2 + k + (LANES)), x1, b2);                                                      \
        a3 = FMA(WIDEN(w3 + k), x0, a3);                                                                \
        b3 = FMA(WIDEN(w3 + k + (LANES)), x1, b3);                                                      \
      }                                                                                                 \
      if (k + (LANES) <= in) {                                                                          \
        const VEC x0 = LOAD(x + k);                                                                     \
        a0 = FMA(WIDEN(w0 + k), x0, a0);                                                                \
        a1 = FMA(WIDEN(w1 + k), x0, a1);                                                                \
        a2 = FMA(WIDEN(w2 + k), x0, a2);                                                                \
        a3 = FMA(WIDEN(w3 + k), x0, a3);                                                                \
        k += (LANES);                                                                                   \
      }                                                                                                 \
      float s0 = REDUCE(ADD(a0, b0)), s1 = REDUCE(ADD(a1, b1)), s2 = REDUCE(ADD(a2, b2)),               \
            s3 = REDUCE(ADD(a3, b3));                                                                   \
      for (; k < in; k++) {                                                                             \
        s0 = __builtin_fmaf(x[k], CONV(w0[k]), s0);                                                       \
        s1 = __builtin_fmaf(x[k], CONV(w1[k]), s1);                                                       \
        s2 = __builtin_fmaf(x[k], CONV(w2[k]), s2);                                                       \
        s3 = __builtin_fmaf(x[k], CONV(w3[k]), s3);                                                       \
      }                                                                                                 \
      d[r] = s0;                                                                                        \
      d[r + 1] = s1;                                                                                    \
      d[r + 2] = s2;                                                                                    \
      d[r + 3] = s3;                                                                                    \
    }                                                                                                   \
    for (; r < count; r++) {                                                                            \
      const T *w0 = w + r * (size_t)in;                                                                 \
      VEC a0 = ZERO(), b0 = ZERO();                                                                     \
      int k = 0;                                                                                        \
      for (; k + 2 * (LANES) <= in; k += 2 * (LANES)) {                                                 \
        a0 = FMA(WIDEN(w0 + k), LOAD(x + k), a0);                                                       \
        b0 = FMA(WIDEN(w0 + k + (LANES)), LOAD(x + k + (LANES)), b0);                                   \
      }                                                                                                 \
      if (k + (LANES) <= in) {                                                                          \
        a0 = FMA(WIDEN(w0 + k), LOAD(x + k), a0);                                                       \
        k += (LANES);                                                                                   \
      }                                                                                                 \
      float s0 = REDUCE(ADD(a0, b0));                                                                   \
      for (; k < in; k++) s0 = __builtin_fmaf(x[k], CONV(w0[k]), s0);                                     \
      d[r] = s0;                                                                                        \
    }                                                                                                   \
  }

#define DOTS512(NAME, T, WIDEN, CONV)                                                                   \
  DOTS_VEC(NAME, AVX512, T, __m512, 16, _mm512_setzero_ps, _mm512_loadu_ps, _mm512_fmadd_ps, _mm512_add_ps, \
           _mm512_reduce_add_ps, WIDEN, CONV)
DOTS512(dots_bf16_widen_avx512, uint16_t, widen16_bf16, bf16_to_f32)
DOTS512(dots_int8_avx512, int8_t, widen16_int8, TO_FLOAT)
DOTS512(dots_f32_avx512, float, _mm512_loadu_ps, TO_FLOAT)

/*
 * bfloat16 rows take 32 weights in one 64-byte load: a bf16 is the top half of a float32, so the
 * even-indexed weights are the load shifted left by 16 bits and the odd ones the load with its low
 * halves cleared, and they meet x's even and odd values, deinterleaved once per call (per block of
 * 32: 16 even values, then 16 odd). And one row at a time: a single sequential stream per thread,
 * which the prefetchers follow better than four. Against the four-row loop above (32-byte loads
 * widened by a cross-lane vpmovzxwd), a decode step's bf16 GEMVs streamed ~25% more bytes a second.
 * A row's sums: four vectors over blocks of 64, then one block of 32, 16 widened values and the
 * scalar tail, always in that order. x longer than BF16_EO_MAX_IN takes the four-row loop.
 */
#define BF16_EO_MAX_IN 8192

AVX512 static inline void bf16_eo_block(const uint16_t *w, const float *xeo, __m512 *even, __m512 *odd) {
  const __m512i v = _mm512_loadu_si512((const void *)w);
  *even = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(v, 16)), _mm512_loadu_ps(xeo), *even);
  *odd = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(v, _mm512_set1_epi32((int)0xFFFF0000u))),
                         _mm512_loadu_ps(xeo + 16), *odd);
}

AVX512 static void dots_bf16_avx512(const float *x, const void *wv, int in, size_t count, float *d) {
  if (in > BF16_EO_MAX_IN) {
    dots_bf16_widen_avx512(x, wv, in, count, d);
    return;
  }
  const uint16_t *w = wv;
  const int blocks = in / 32;
  float xeo[BF16_EO_MAX_IN];
  const __m512i evens = _mm512_set_epi32(30, 28, 26, 24, 22, 20, 18, 16, 14, 12, 10, 8, 6, 4, 2, 0);
  const __m512i odds = _mm512_set_epi32(31, 29, 27, 25, 23, 21, 19, 17, 15, 13, 11, 9, 7, 5, 3, 1);
  for (int b = 0; b < blocks; b++) {
    const __m512 lo = _mm512_loadu_ps(x + 32 * b), hi = _mm512_loadu_ps(x + 32 * b + 16);
    _mm512_storeu_ps(xeo + 32 * b, _mm512_permutex2var_ps(lo, evens, hi));
    _mm512_storeu_ps(xeo + 32 * b + 16, _mm512_permutex2var_ps(lo, odds, hi));
  }
  for (size_t r = 0; r < count; r++) {
    const uint16_t *row = w + r * (size_t)in;
    __m512 e0 = _mm512_setzero_ps(), o0 = e0, e1 = e0, o1 = e0;
    int k = 0;
    for (; k + 64 <= in; k += 64) {
      _mm_prefetch((const char *)(row + k) + PREFETCH_AHEAD, _MM_HINT_T0);
      _mm_prefetch((const char *)(row + k) + PREFETCH_AHEAD + 64, _MM_HINT_T0);
      bf16_eo_block(row + k, xeo + k, &e0, &o0);
      bf16_eo_block(row + k + 32, xeo + k + 32, &e1, &o1);
    }
    if (k + 32 <= in) {
      bf16_eo_block(row + k, xeo + k, &e0, &o0);
      k += 32;
    }
    if (k + 16 <= in) {
      e1 = _mm512_fmadd_ps(widen16_bf16(row + k), _mm512_loadu_ps(x + k), e1);
      k += 16;
    }
    float sum = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(e0, o0), _mm512_add_ps(e1, o1)));
    for (; k < in; k++) sum = __builtin_fmaf(x[k], bf16_to_f32(row[k]), sum);
    d[r] = sum;
  }
}

/*
 * float16 rows one at a time too (see dots_bf16_avx512; a decode step's f16 GEMVs took ~6-10% less
 * time than in the four-row loop): 64 weights a step, widened 16 at a time into four sums, then
 * 16-value steps into the first and the scalar tail. int8 keeps the four-row loop, which measured
 * as fast or faster in a model than one row at a time, widened or read 64 bytes a load.
 */
#define DOTS1_512(NAME, T, WIDEN, CONV)                                                                  \
  AVX512 static void NAME(const float *x, const void *wv, int in, size_t count, float *d) {               \
    for (size_t r = 0; r < count; r++) {                                                                \
      const T *row = (const T *)wv + r * (size_t)in;                                                    \
      __m512 s0 = _mm512_setzero_ps(), s1 = s0, s2 = s0, s3 = s0;                                       \
      int k = 0;                                                                                        \
      for (; k + 64 <= in; k += 64) {                                                                   \
        for (size_t at = 0; at < 64 * sizeof(T); at += 64)                                              \
          _mm_prefetch((const char *)(row + k) + PREFETCH_AHEAD + at, _MM_HINT_T0);                     \
        s0 = _mm512_fmadd_ps(WIDEN(row + k), _mm512_loadu_ps(x + k), s0);                               \
        s1 = _mm512_fmadd_ps(WIDEN(row + k + 16), _mm512_loadu_ps(x + k + 16), s1);                     \
        s2 = _mm512_fmadd_ps(WIDEN(row + k + 32), _mm512_loadu_ps(x + k + 32), s2);                     \
        s3 = _mm512_fmadd_ps(WIDEN(row + k + 48), _mm512_loadu_ps(x + k + 48), s3);                     \
      }                                                                                                 \
      for (; k + 16 <= in; k += 16) s0 = _mm512_fmadd_ps(WIDEN(row + k), _mm512_loadu_ps(x + k), s0);   \
      float sum = _mm512_reduce_add_ps(_mm512_add_ps(_mm512_add_ps(s0, s1), _mm512_add_ps(s2, s3)));    \
      for (; k < in; k++) sum = __builtin_fmaf(x[k], CONV(row[k]), sum);                                \
      d[r] = sum;                                                                                       \
    }                                                                                                   \
  }
DOTS1_512(dots_f16_avx512, uint16_t, widen16_f16, f16_to_f32)


AVX2 static inline float hsum256(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

AVX2 static inline __m256 widen8_bf16(const uint16_t *p) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p)), 16));
}
AVX2 static inline __m256 widen8_f16(const uint16_t *p) { return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)p)); }
AVX2 static inline __m256 widen8_int8(const int8_t *p) {
  return _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_loadl_epi64((const __m128i *)p)));
}

#define DOTS256(NAME, T, WIDEN, CONV)                                                                   \
  DOTS_VEC(NAME, AVX2, T, __m256, 8, _mm256_setzero_ps, _mm256_loadu_ps, _mm256_fmadd_ps, _mm256_add_ps,   \
           hsum256, WIDEN, CONV)
DOTS256(dots_bf16_avx2, uint16_t, widen8_bf16, bf16_to_f32)
DOTS256(dots_f16_avx2, uint16_t, widen8_f16, f16_to_f32)
DOTS256(dots_int8_avx2, int8_t, widen8_int8, TO_FLOAT)
DOTS256(dots_f32_avx2, float, _mm256_loadu_ps, TO_FLOAT)
#endif

/* ---- the vector path for this CPU ---- */

enum { ISA_PORTABLE = 0, ISA_AVX2 = 1, ISA_AVX512 = 2 };
static const char *const ISA_NAMES[] = {"portable", "avx2", "avx512"};
static int isa = -1;

static int best_isa(void) {
#ifdef TESSERA_X86
  if (tessera_cpu_avx512()) return ISA_AVX512;
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) return ISA_AVX2;
#endif
  return ISA_PORTABLE;
}

static int current_isa(void) {
  if (isa < 0) isa = best_isa();
  return isa;
}

const char *tessera_quant_isa(void) { return ISA_NAMES[current_isa()]; }

/* Used by tests to check every path on one machine: a path the CPU lacks is refused (returns 0). */
int tessera_quant_use_isa(const char *name) {
  for (int i = 0; i < 3; i++) {
    if (strcmp(name, ISA_NAMES[i]) == 0 && i <= best_isa()) {
      isa = i;
      return 1;
    }
  }
  return 0;
}

static dots_fn dots_for(int kind) {
  static const dots_fn portable[] = {dots_bf16_portable, dots_f16_portable, dots_int8_portable};
#ifdef TESSERA_X86
  static const dots_fn avx2[] = {dots_bf16_avx2, dots_f16_avx2, dots_int8_avx2};
  static const dots_fn avx512[] = {dots_bf16_avx512, dots_f16_avx512, dots_int8_avx512};
  switch (current_isa()) {
    case ISA_AVX512: return avx512[kind];
    case ISA_AVX2: return avx2[kind];
    default: break;
  }
#endif
  return portable[kind];
}

static dots_fn dots_f32_for(void) {
#ifdef TESSERA_X86
  switch (current_isa()) {
    case ISA_AVX512: return dots_f32_avx512;
    case ISA_AVX2: return dots_f32_avx2;
    default: break;
  }
#endif
  return dots_f32_portable;
}

/* Rows [r0, r0 + count) of a packed weight as float32 into out. */
static void widen_rows(int kind, const void *w, const float *scales, size_t r0, size_t count, size_t cols,
                       float *out) {
  if (kind == TESSERA_QUANT_BF16) {
    widen_bf16((const uint16_t *)w + r0 * cols, out, count * cols);
  } else if (kind == TESSERA_QUANT_F16) {
#ifdef TESSERA_X86
    if (current_isa() != ISA_PORTABLE) {
      widen_f16_f16c((const uint16_t *)w + r0 * cols, out, count * cols);
      return;
    }
#endif
    widen_f16_portable((const uint16_t *)w + r0 * cols, out, count * cols);
  } else {
    for (size_t r = 0; r < count; r++)
      widen_int8((const int8_t *)w + (r0 + r) * cols, scales[r0 + r], out + r * cols, cols);
  }
}

void tessera_quant_unpack(int kind, const void *data, const float *scales, size_t rows, size_t cols, float *out) {
  widen_rows(kind, data, scales, 0, rows, cols, out);
}

/* ---- GEMV: few rows of x, split over the output rows ---- */

/* Up to this many rows of x each weight row is read once and dotted with every row (from L1). */
#define GEMV_MAX_ROWS 4
/*
 * At least this many weights per thread: a pooled worker polling for work joins a call within a
 * microsecond or two (parallel.c), about what streaming 16K weights takes, so every layer's GEMV
 * is split, down to a Mamba mixer's x and dt projections.
 */
#define GEMV_GRAIN_WEIGHTS (16u << 10)

struct gemv_args {
  const float *x;
  int rows, in, n;
  const char *w;
  size_t row_bytes;
  const float *scales, *bias;
  size_t bias_step; /* 1: a bias per output; 0: one for all (a broadcast scalar) */
  float *out;
  dots_fn dots;
};

/*
 * Weight bytes a run of rows takes through the rows of x before the next run: with several rows
 * of x, each run is read from memory once and from L1 by the others.
 */
#define GEMV_RUN_BYTES (24u << 10)

static void gemv_part(void *ctx, size_t begin, size_t end) {
  const struct gemv_args *a = ctx;
  size_t run = end - begin;
  if (a->rows > 1) {
    run = GEMV_RUN_BYTES / (a->row_bytes > 0 ? a->row_bytes : 1) & ~(size_t)3;
    if (run < 4) run = 4;
  }
  for (size_t r0 = begin; r0 < end; r0 += run) {
    const size_t count = end - r0 < run ? end - r0 : run;
    for (int i = 0; i < a->rows; i++) {
      float *o = a->out + (size_t)i * a->n;
      a->dots(a->x + (size_t)i * a->in, a->w + r0 * a->row_bytes, a->in, count, o + r0);
      if (a->scales != NULL || a->bias != NULL) {
        for (size_t r = r0; r < r0 + count; r++) {
          const float scale = a->scales != NULL ? a->scales[r] : 1.0f;
          o[r] = o[r] * scale + (a->bias != NULL ? a->bias[r * a->bias_step] : 0.0f);
        }
      }
    }
  }
}

/* Runs a GEMV over the pool, split over output rows from GEMV_GRAIN_WEIGHTS weights a thread. */
static void gemv(struct gemv_args *a) {
  const size_t grain = a->in > 0 ? GEMV_GRAIN_WEIGHTS / (size_t)a->in + 1 : (size_t)a->n;
  const struct tessera_region reads = {a->w, a->row_bytes * (size_t)a->n};
  tessera_parallel_stream((size_t)a->n, grain, tessera_threads(), gemv_part, a, &reads, 1);
}

/* ---- GEMM: widen blocks of weight rows, then sgemm ---- */

/*
 * Floats in the GEMM's scratch block (16 MiB): whole projection matrices of models like
 * Llama-small in one sgemm, an LM head in a few. It is a scratch buffer kept between calls
 * (tessera_claim_buffer), so its pages are not faulted in again on every call.
 */
#define GEMM_BLOCK_FLOATS (1u << 22)

struct widen_args {
  int kind;
  const void *w;
  const float *scales;
  size_t r0, cols;
  float *out;
};

static void widen_part(void *ctx, size_t begin, size_t end) {
  const struct widen_args *a = ctx;
  widen_rows(a->kind, a->w, a->scales, a->r0 + begin, end - begin, a->cols, a->out + begin * a->cols);
}

/* out [rows, n] = x . w^T + bias (no activation). Returns 0 when the scratch block cannot be allocated. */
static int quant_affine(const float *x, int rows, int in, int kind, const void *w, const float *scales,
                        const float *bias, float *out, int n) {
  if (rows == 0 || n == 0) return 1;
  const int threads = tessera_threads();
  if (rows <= GEMV_MAX_ROWS) {
    struct gemv_args a = {x, rows, in, n, w, (size_t)in * tessera_quant_size(kind),
                          kind == TESSERA_QUANT_INT8 ? scales : NULL, bias, 1, out, dots_for(kind)};
    gemv(&a);
    return 1;
  }
  /* Both GEMMs read the packed weights while they pack their panels, so no block is widened
   * first: the opt-in bf16 compute rounds them to bf16 (int8 exactly), the float32 one widens them. */
  const int bf16 = tessera_matmul_precision();
  const tessera_gemm_fn gemm = bf16 ? tessera_gemm_bf16 : tessera_gemm_f32;
  if (gemm(rows, n, in, x, (size_t)in, 1, kind, w, 1, (size_t)in, kind == TESSERA_QUANT_INT8 ? scales : NULL, bias,
           bias != NULL ? (size_t)n : 0, out, (size_t)n))
    return 1;
  /* The bf16 GEMM fails only out of memory (the precision is bf16 only where it runs). */
  if (bf16) return 0;
  size_t block = in > 0 ? GEMM_BLOCK_FLOATS / (size_t)in : (size_t)n;
  if (block < 16) block = 16;
  if (block > (size_t)n) block = (size_t)n;
  int slot = -1;
  float *scratch = tessera_claim_buffer(sizeof(float) * block * (size_t)(in > 0 ? in : 1), &slot);
  if (scratch == NULL) return 0;
  for (size_t r0 = 0; r0 < (size_t)n; r0 += block) {
    const size_t count = (size_t)n - r0 < block ? (size_t)n - r0 : block;
    struct widen_args wa = {kind, w, scales, r0, (size_t)in, scratch};
    tessera_parallel_for(count, 64, threads, widen_part, &wa);
    tessera_pool_rest();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, rows, (int)count, in, 1.0f, x, in, scratch, in, 0.0f,
                out + r0, n);
  }
  tessera_release_buffer(scratch, slot);
  if (bias != NULL) {
    for (int i = 0; i < rows; i++) {
      float *o = out + (size_t)i * n;
      for (int j = 0; j < n; j++) o[j] += bias[j];
    }
  }
  return 1;
}

int tessera_quant_linear(const float *x, int rows, int in, int kind, const void *w, const float *scales,
                         const float *bias, float *out, int n, int act) {
  if (!quant_affine(x, rows, in, kind, w, scales, bias, out, n)) return 0;
  if (act != TESSERA_FFN_IDENTITY) tessera_ffn_activation(act, out, NULL, out, (size_t)rows * n);
  return 1;
}

int tessera_quant_gated_linear(const float *x, int rows, int in, int kind, const void *wg, const float *sg,
                               const void *wu, const float *su, const float *bg, const float *bu, float *out,
                               int n, int act) {
  float *up = malloc(sizeof(float) * ((size_t)rows * n + 1));
  if (up == NULL) return 0;
  const struct tessera_linear_map maps[2] = {{kind, wg, sg, bg, out, n}, {kind, wu, su, bu, up, n}};
  const int ok = tessera_linear_many(x, rows, in, maps, 2);
  if (ok) tessera_ffn_activation(act, out, up, out, (size_t)rows * n);
  free(up);
  return ok;
}

void tessera_gemv_f32(const float *x, int in, const float *w, const float *bias, size_t bias_len, float *out, int n) {
  if (n <= 0) return;
  struct gemv_args a = {x, 1, in, n, (const char *)w, sizeof(float) * (size_t)in, NULL, bias, bias_len == 1 ? 0 : 1,
                        out, dots_f32_for()};
  gemv(&a);
}

size_t tessera_linear_row_bytes(const struct tessera_linear_map *m, int in) {
  return (size_t)in * (m->kind >= 0 ? tessera_quant_size(m->kind) : sizeof(float));
}

/* A map's GEMV for one row of x. */
static struct gemv_args map_gemv(const float *x, int in, const struct tessera_linear_map *m) {
  return (struct gemv_args){x, 1, in, m->n, m->w, tessera_linear_row_bytes(m, in),
                            m->kind == TESSERA_QUANT_INT8 ? m->scales : NULL, m->bias, 1, m->out,
                            m->kind >= 0 ? dots_for(m->kind) : dots_f32_for()};
}

void tessera_linear_rows(const float *x, int in, const struct tessera_linear_map *m, size_t begin, size_t end) {
  struct gemv_args a = map_gemv(x, in, m);
  if (begin < end) gemv_part(&a, begin, end);
}

/* The maps of one tessera_linear_many call, as GEMVs, and where each one's rows start in the joint split. */
struct many_args {
  struct gemv_args gemv[TESSERA_LINEAR_MANY_MAX];
  size_t start[TESSERA_LINEAR_MANY_MAX + 1];
  int count;
};

static void many_part(void *ctx, size_t begin, size_t end) {
  struct many_args *a = ctx;
  for (int j = 0; j < a->count; j++) {
    const size_t lo = begin > a->start[j] ? begin : a->start[j];
    const size_t hi = end < a->start[j + 1] ? end : a->start[j + 1];
    if (lo < hi) gemv_part(&a->gemv[j], lo - a->start[j], hi - a->start[j]);
  }
}

int tessera_linear_many(const float *x, int rows, int in, const struct tessera_linear_map *maps, int count) {
  if (count < 0 || count > TESSERA_LINEAR_MANY_MAX) return 0;
  if (rows != 1) {
    for (int j = 0; j < count; j++) {
      const struct tessera_linear_map *m = &maps[j];
      if (m->kind < 0) {
        tessera_linear(x, in, m->w, m->bias, m->out, rows, m->n, in);
      } else if (!tessera_quant_linear(x, rows, in, m->kind, m->w, m->scales, m->bias, m->out, m->n, TESSERA_FFN_IDENTITY)) {
        return 0;
      }
    }
    return 1;
  }
  struct many_args a = {.count = count};
  for (int j = 0; j < count; j++) {
    a.gemv[j] = map_gemv(x, in, &maps[j]);
    a.start[j + 1] = a.start[j] + (size_t)maps[j].n;
  }
  const size_t grain = in > 0 ? GEMV_GRAIN_WEIGHTS / (size_t)in + 1 : a.start[count];
  _Static_assert(TESSERA_LINEAR_MANY_MAX <= TESSERA_REGIONS_MAX, "every map's weight is a region the pool reads ahead");
  struct tessera_region reads[TESSERA_LINEAR_MANY_MAX];
  for (int j = 0; j < count; j++) reads[j] = (struct tessera_region){maps[j].w, a.gemv[j].row_bytes * (size_t)maps[j].n};
  tessera_parallel_stream(a.start[count], grain, tessera_threads(), many_part, &a, reads, count);
  return 1;
}
