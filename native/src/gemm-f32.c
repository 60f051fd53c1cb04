/*
 * The float32 GEMM (see gemm-f32.h), Goto-style. Per block of MC rows of A, the rows are packed
 * once into panels of MR rows (inner index outermost), shared by all threads; the threads then
 * split B's column panels of NR columns. For each block of KC inner indices a thread packs a few
 * column panels (widening packed weights to float32 on the way) and multiplies each against every
 * row panel of A: a B panel (NR x KC floats, 32 KiB) stays in L1, A's block in L2, and an
 * MR x NR microkernel keeps 2 x MR zmm accumulators, loading two B vectors and broadcasting MR
 * values of A per inner index.
 *
 * Packed weights' prefill (quant.c) is what uses it: it widens bf16, f16 and int8 weights while it
 * packs them, where the alternative widens a block of weights to float32 in one pass and hands it
 * to OpenBLAS's sgemm in another. On float32 operands OpenBLAS's sgemm is as fast or faster, so the
 * float32 kernels keep it; the float32 path here is what the tests check the microkernel on.
 */
#include "gemm-f32.h"

#include <stdint.h>
#include <string.h>

#include "gemm-bf16.h"
#include "kernels.h"
#include "parallel.h"
#include "quant.h"
#include "simd.h"
#include "gemm-tiles.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define TESSERA_X86 1
#include <immintrin.h>
#endif

static int force_absent;

void tessera_gemm_f32_force_absent(int absent) { force_absent = absent; }

int tessera_gemm_f32_available(void) { return tessera_cpu_avx512() && !force_absent; }

#ifdef TESSERA_X86

#define MR 14
#define NR 32
#define KC 256
/* Rows of A per packed block: MC x KC floats (672 KiB) stay in the 1 MiB L2 beside four B panels. */
#define MC 672
/* Column panels a thread packs at a time for one block of inner indices. */
#define NCP 4

#define AVX512 __attribute__((target("avx512f,avx512bw,avx512vl,f16c,fma")))

static size_t elem_size(int kind) {
  return kind == TESSERA_BF16_B_F32 ? 4 : (kind == TESSERA_QUANT_INT8 ? 1 : 2);
}

/* 16 consecutive elements of a kind as float32 (int8 unscaled: the scale multiplies the sums). */
AVX512 static inline __m512 load16(int kind, const void *src) {
  switch (kind) {
    case TESSERA_QUANT_BF16:
      return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_loadu_si256(src)), 16));
    case TESSERA_QUANT_F16: return _mm512_cvtph_ps(_mm256_loadu_si256(src));
    case TESSERA_QUANT_INT8: return _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128(src)));
    default: return _mm512_loadu_ps(src);
  }
}

AVX512 static inline float load1(int kind, const void *src, size_t p) {
  return _mm512_cvtss_f32(load16(kind, (const char *)src + p * elem_size(kind)));
}

/*
 * A panel of R "rows" whose inner index is contiguous: row r's element p at src[r * rs + p] (in
 * elements), p < kc. dst[p * R + r]; rows past `count` are zero. 16 rows x 16 inner indices at a
 * time, transposed in registers.
 */
AVX512 static void pack_contiguous(int kind, const void *src, size_t rs, int count, int kc, float *dst, int R) {
  const size_t es = elem_size(kind);
  const int full = kc / 16 * 16;
  for (int g = 0; g < R; g += 16) {
    const int width = R - g < 16 ? R - g : 16;
    const __mmask16 store = (__mmask16)((1u << width) - 1);
    for (int p = 0; p < full; p += 16) {
      __m512i v[16];
      for (int r = 0; r < 16; r++)
        v[r] = g + r < count ? _mm512_castps_si512(load16(kind, (const char *)src + ((size_t)(g + r) * rs + p) * es))
                             : _mm512_setzero_si512();
      tessera_transpose16x16(v);
      for (int q = 0; q < 16; q++) _mm512_mask_storeu_epi32(dst + (size_t)(p + q) * R + g, store, v[q]);
    }
    for (int r = g; r < g + width; r++) {
      const char *row = (const char *)src + (size_t)r * rs * es;
      for (int p = full; p < kc; p++) dst[(size_t)p * R + r] = r < count ? load1(kind, row, (size_t)p) : 0.0f;
    }
  }
}

/* A float32 panel stored across: row r's element p at src[p * ks + r], r < count. */
AVX512 static void pack_strided(const float *src, size_t ks, int count, int kc, float *dst, int R) {
  for (int p = 0; p < kc; p++) {
    const float *x = src + (size_t)p * ks;
    for (int g = 0; g < R; g += 16) {
      const int width = R - g < 16 ? R - g : 16;
      const int valid = count - g < 0 ? 0 : (count - g < width ? count - g : width);
      const __mmask16 load = (__mmask16)((1u << valid) - 1), store = (__mmask16)((1u << width) - 1);
      _mm512_mask_storeu_ps(dst + (size_t)p * R + g, store, _mm512_maskz_loadu_ps(load, x + g));
    }
  }
}

/*
 * C[mr, nr] (=|+=) the panels' product * scale[j] (+ bias on the first block). `first`: the
 * first block of inner indices writes C (with the bias), later ones add to it.
 */
AVX512 static void microkernel(int kc, const float *ap, const float *bp, int mr, int nr, float *c, size_t ldc,
                               const float *scale, const float *bias, int bias_one, int first) {
  __m512 acc[MR][2];
#pragma GCC unroll 14
  for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int q = 0; q < kc; q++) {
    const __m512 b0 = _mm512_load_ps(bp + (size_t)q * NR), b1 = _mm512_load_ps(bp + (size_t)q * NR + 16);
#pragma GCC unroll 14
    for (int r = 0; r < MR; r++) {
      const __m512 a = _mm512_set1_ps(ap[(size_t)q * MR + r]);
      acc[r][0] = _mm512_fmadd_ps(a, b0, acc[r][0]);
      acc[r][1] = _mm512_fmadd_ps(a, b1, acc[r][1]);
    }
  }
  tessera_store_tile((const __m512(*)[2])acc, mr, nr, c, ldc, scale, bias, bias_one, first);
}

struct gemm_job {
  struct tessera_gemm_operands o;
  int ic, mc;    /* the block of rows of A being multiplied */
  float *ap;     /* its panels: block pc of inner indices at ap + mc_pad * pc, row panel i after i * MR * kc */
  size_t mc_pad; /* mc rounded up to MR */
  volatile int failed;
};

/* Row panels [begin, end) of the current block of A, every block of inner indices. */
AVX512 static void pack_a_part(void *ctx, size_t begin, size_t end) {
  const struct gemm_job *g = ctx;
  for (size_t panel = begin; panel < end; panel++) {
    const int i = (int)panel * MR, count = g->mc - i < MR ? g->mc - i : MR;
    const size_t row = (size_t)(g->ic + i);
    for (int pc = 0; pc < g->o.k; pc += KC) {
      const int kc = g->o.k - pc < KC ? g->o.k - pc : KC;
      float *dst = g->ap + g->mc_pad * (size_t)pc + panel * MR * (size_t)kc;
      if (g->o.a_cs == 1)
        pack_contiguous(TESSERA_BF16_B_F32, g->o.a + row * g->o.a_rs + pc, g->o.a_rs, count, kc, dst, MR);
      else
        pack_strided(g->o.a + row * g->o.a_rs + (size_t)pc * g->o.a_cs, g->o.a_cs, count, kc, dst, MR);
    }
  }
}

/* Column panels [begin, end) against the current block of A. */
AVX512 static void multiply_part(void *ctx, size_t begin, size_t end) {
  struct gemm_job *g = ctx;
  const size_t es = elem_size(g->o.b_kind);
  int slot = -1;
  float *bp = tessera_claim_buffer(sizeof(float) * NCP * NR * KC, &slot);
  if (bp == NULL) {
    g->failed = 1;
    return;
  }
  const int bias_one = g->o.bias_len == 1;
  for (size_t jc = begin; jc < end; jc += NCP) {
    const size_t np = end - jc < NCP ? end - jc : NCP;
    for (int pc = 0; pc < g->o.k; pc += KC) {
      const int kc = g->o.k - pc < KC ? g->o.k - pc : KC;
      for (size_t jp = 0; jp < np; jp++) {
        const size_t j0 = (jc + jp) * NR;
        const int count = g->o.n - (int)j0 < NR ? g->o.n - (int)j0 : NR;
        float *dst = bp + jp * NR * (size_t)kc;
        if (g->o.b_ks == 1)
          pack_contiguous(g->o.b_kind, g->o.b + (j0 * g->o.b_ns + pc) * es, g->o.b_ns, count, kc, dst, NR);
        else
          pack_strided((const float *)g->o.b + (size_t)pc * g->o.b_ks + j0 * g->o.b_ns, g->o.b_ks, count, kc, dst, NR);
      }
      const float *a_block = g->ap + g->mc_pad * (size_t)pc;
      for (size_t jp = 0; jp < np; jp++) {
        const size_t j0 = (jc + jp) * NR;
        const int nr = g->o.n - (int)j0 < NR ? g->o.n - (int)j0 : NR;
        const float *scale = g->o.scales != NULL ? g->o.scales + j0 : NULL;
        const float *bias = g->o.bias == NULL ? NULL : (bias_one ? g->o.bias : g->o.bias + j0);
        for (int i = 0; i < g->mc; i += MR) {
          const int mr = g->mc - i < MR ? g->mc - i : MR;
          microkernel(kc, a_block + (size_t)(i / MR) * MR * kc, bp + jp * NR * (size_t)kc, mr, nr,
                      g->o.c + (size_t)(g->ic + i) * g->o.ldc + j0, g->o.ldc, scale, bias, bias_one, pc == 0);
        }
      }
    }
  }
  tessera_release_buffer(bp, slot);
}

#endif

int tessera_gemm_f32(int m, int n, int k, const float *a, size_t a_rs, size_t a_cs, int b_kind, const void *b,
                     size_t b_ks, size_t b_ns, const float *scales, const float *bias, size_t bias_len, float *c,
                     size_t ldc) {
  if (!tessera_gemm_f32_available()) return 0;
#ifdef TESSERA_X86
  if (m <= 0 || n <= 0) return 1;
  if (k == 0) {
    tessera_fill_bias(c, m, n, ldc, bias, bias_len);
    return 1;
  }
  struct gemm_job g = {{m, n, k, a, a_rs, a_cs, b_kind, b, b_ks, b_ns, scales, bias, bias_len, c, ldc}, 0, 0, NULL, 0, 0};
  const int block_rows = m < MC ? m : MC;
  int slot = -1;
  g.ap = tessera_claim_buffer(sizeof(float) * (size_t)(block_rows + MR - 1) / MR * MR * (size_t)k, &slot);
  if (g.ap == NULL) return 0;
  const int threads = tessera_threads();
  const size_t panels = ((size_t)n + NR - 1) / NR;
  for (int ic = 0; ic < m && !g.failed; ic += MC) {
    g.ic = ic;
    g.mc = m - ic < MC ? m - ic : MC;
    g.mc_pad = (size_t)(g.mc + MR - 1) / MR * MR;
    /* About 64K values of A a part, and enough products a part (about 16M) to repay starting it. */
    const size_t row_panels = g.mc_pad / MR;
    tessera_parallel_for(row_panels, 1 + ((size_t)64 << 10) / ((size_t)MR * k), threads, pack_a_part, &g);
    const size_t per_panel = (size_t)g.mc * (size_t)k * NR;
    const size_t grain = per_panel >= (16u << 20) ? 1 : (16u << 20) / per_panel + 1;
    tessera_parallel_for(panels, grain, threads, multiply_part, &g);
  }
  tessera_release_buffer(g.ap, slot);
  return !g.failed;
#else
  return 0;
#endif
}
