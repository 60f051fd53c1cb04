/*
 * The bf16-compute GEMM (see gemm-bf16.h), Goto-style: for each block of KC inner indices, rows of
 * A are packed into panels of MR rows and columns of B into panels of NR columns, both as bf16
 * pairs (two consecutive inner indices in one 32-bit lane, the layout vdpbf16ps multiplies). A
 * register-blocked MR x NR microkernel then keeps MR x 2 zmm accumulators and per pair of inner
 * indices loads two B vectors and broadcasts MR pairs of A. Threads split the column panels; each
 * packs its own copy of A (M x K values, small next to its share of the M x N x K products) so
 * a GEMM is a single parallel region.
 *
 * Rounding to bf16 is to nearest even (vcvtne2ps2bf16, which also reads float32 subnormals as
 * zero). int8 weights are exact in bf16 and their per-row scale multiplies the float32 sum; f16
 * weights are rounded to bf16 (10 mantissa bits to 7).
 */
/* syscall() for the AMX permission request. */
#define _DEFAULT_SOURCE
#include "gemm-bf16.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kernels.h"
#include "parallel.h"
#include "quant.h"
#include "gemm-tiles.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define TESSERA_X86 1
#include <cpuid.h>
#include <immintrin.h>
#endif

#if defined(TESSERA_X86) && defined(__linux__)
#define TESSERA_AMX 1
#include <sys/syscall.h>
#include <unistd.h>
#endif

/* ---- what the CPU and OS offer ---- */

static int force_absent;
static int precision_bf16;

static const char *probe_missing(void) {
#ifdef TESSERA_X86
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return "cpuid";
  if (!(c & (1u << 27))) return "OS support for AVX-512 register state (OSXSAVE)";
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  /* XMM, YMM, opmask, ZMM0-15 upper halves and ZMM16-31 must all be enabled by the OS. */
  if ((lo & 0xe6u) != 0xe6u) return "OS support for AVX-512 register state (XCR0)";
  if (__get_cpuid_max(0, NULL) < 7) return "avx512f";
  __cpuid_count(7, 0, a, b, c, d);
  if (!(b & (1u << 16))) return "avx512f";
  if (!(b & (1u << 30))) return "avx512bw";
  if (a < 1) return "avx512_bf16";
  __cpuid_count(7, 1, a, b, c, d);
  if (!(a & (1u << 5))) return "avx512_bf16";
  return NULL;
#else
  return "avx512_bf16 (not an x86-64 build)";
#endif
}

const char *tessera_bf16_missing(void) {
  static int probed;
  static const char *missing;
  if (!probed) {
    missing = probe_missing();
    probed = 1;
  }
  return force_absent ? "avx512_bf16" : missing;
}

/* AMX-BF16 with its tile state enabled by the OS, which hands it out per process on request. */
static int probe_amx(void) {
#ifdef TESSERA_AMX
  if (probe_missing() != NULL) return 0;
  unsigned a, b, c, d;
  __cpuid_count(7, 0, a, b, c, d);
  if (!(d & (1u << 22)) || !(d & (1u << 24))) return 0; /* amx-bf16, amx-tile */
  unsigned lo, hi;
  __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
  if ((lo & 0x60000u) != 0x60000u) return 0; /* XTILECFG and XTILEDATA */
  /* ARCH_REQ_XCOMP_PERM for XFEATURE_XTILEDATA (Linux 5.16+); refused on older kernels. */
  return syscall(SYS_arch_prctl, 0x1023, 18) == 0;
#else
  return 0;
#endif
}

static int amx_force_absent;

int tessera_amx_available(void) {
  static int probed, available;
  if (!probed) {
    available = probe_amx();
    probed = 1;
  }
  return available && !amx_force_absent && tessera_bf16_missing() == NULL;
}

void tessera_amx_force_absent(int absent) { amx_force_absent = absent; }

void tessera_bf16_force_absent(int absent) {
  force_absent = absent;
  if (absent) precision_bf16 = 0;
}

int tessera_matmul_precision(void) { return precision_bf16; }

int tessera_set_matmul_precision(int bf16) {
  if (bf16 && tessera_bf16_missing() != NULL) return 0;
  precision_bf16 = bf16 != 0;
  return 1;
}

#ifdef TESSERA_X86

#define MR 12
#define NR 32
/* Inner indices per block: an NR-column panel of B (NR * KC bf16 = 32 KiB) stays in L1. */
#define KC 512
/* Rows of A per packed block (all inner indices): a 512-token prefill packs A once. */
#define MC 576
/* Column panels of B packed at a time (NCP * NR * KC bf16 = 128 KiB; the C tile MC x 128 floats). */
#define NCP 4

#define BF16 __attribute__((target("avx512f,avx512bw,avx512bf16,avx512vl,f16c,fma")))

BF16 static inline uint16_t round_bf16(float f) {
  uint32_t u;
  memcpy(&u, &f, 4);
  if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40);
  if ((u & 0x7f800000u) == 0) u &= 0x80000000u; /* subnormals read as zero, like vcvtne2ps2bf16 */
  u += 0x7fffu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

/* Element p of a B-kind array as bf16 bits. */
BF16 static inline uint16_t elem_bf16(int kind, const void *src, size_t p) {
  switch (kind) {
    case TESSERA_QUANT_BF16: return ((const uint16_t *)src)[p];
    case TESSERA_QUANT_F16: return round_bf16(_cvtsh_ss(((const uint16_t *)src)[p]));
    case TESSERA_QUANT_INT8: return round_bf16((float)((const int8_t *)src)[p]);
    default: return round_bf16(((const float *)src)[p]);
  }
}

static size_t elem_size(int kind) {
  return kind == TESSERA_BF16_B_F32 ? 4 : (kind == TESSERA_QUANT_INT8 ? 1 : 2);
}

/* 32 consecutive elements as bf16, in order (two per 32-bit lane, the lower index in the low half). */
BF16 static inline __m512i load32_bf16(int kind, const void *src) {
  switch (kind) {
    case TESSERA_QUANT_BF16: return _mm512_loadu_si512(src);
    case TESSERA_QUANT_F16: {
      const uint16_t *p = src;
      return (__m512i)_mm512_cvtne2ps_pbh(_mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)(p + 16))),
                                          _mm512_cvtph_ps(_mm256_loadu_si256((const __m256i *)p)));
    }
    case TESSERA_QUANT_INT8: {
      const int8_t *p = src;
      return (__m512i)_mm512_cvtne2ps_pbh(
          _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)(p + 16)))),
          _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)p))));
    }
    default: {
      const float *p = src;
      return (__m512i)_mm512_cvtne2ps_pbh(_mm512_loadu_ps(p + 16), _mm512_loadu_ps(p));
    }
  }
}

/*
 * Panel of R "rows" whose inner index is contiguous: row r's element p at src[r * rs + p] (in
 * elements), p in [0, kc). dst[q * R + r] = the pair (2q, 2q + 1); rows past `count` and the odd
 * tail's second half are zero.
 */
BF16 static void pack_contiguous(int kind, const void *src, size_t rs, int count, int kc, uint32_t *dst, int R) {
  const size_t es = elem_size(kind);
  const int pairs = (kc + 1) / 2;
  if (R % 16 == 0) {
    /* 16 rows x 32 inner indices at a time: 16 vectors of pairs, transposed in registers. */
    const int full = kc / 32 * 32;
    for (int g = 0; g < R; g += 16) {
      for (int p = 0; p < full; p += 32) {
        __m512i v[16];
        for (int r = 0; r < 16; r++)
          v[r] = g + r < count ? load32_bf16(kind, (const char *)src + ((size_t)(g + r) * rs + p) * es)
                               : _mm512_setzero_si512();
        tessera_transpose16x16(v);
        for (int q = 0; q < 16; q++) _mm512_storeu_si512(dst + (size_t)(p / 2 + q) * R + g, v[q]);
      }
      for (int r = g; r < g + 16; r++) {
        const char *row = (const char *)src + (size_t)r * rs * es;
        for (int p = full; p < kc; p += 2) {
          const uint32_t lo = r < count ? elem_bf16(kind, row, (size_t)p) : 0;
          const uint32_t hi = r < count && p + 1 < kc ? elem_bf16(kind, row, (size_t)p + 1) : 0;
          dst[(size_t)(p / 2) * R + r] = lo | hi << 16;
        }
      }
    }
    return;
  }
  const __m512i stride = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                            _mm512_set1_epi32(R));
  for (int r = 0; r < R; r++) {
    if (r >= count) {
      for (int q = 0; q < pairs; q++) dst[(size_t)q * R + r] = 0;
      continue;
    }
    const char *row = (const char *)src + (size_t)r * rs * es;
    int p = 0;
    for (; p + 32 <= kc; p += 32)
      _mm512_i32scatter_epi32(dst + (size_t)(p / 2) * R + r, stride, load32_bf16(kind, row + p * es), 4);
    for (; p < kc; p += 2) {
      const uint32_t lo = elem_bf16(kind, row, (size_t)p);
      const uint32_t hi = p + 1 < kc ? elem_bf16(kind, row, (size_t)p + 1) : 0;
      dst[(size_t)(p / 2) * R + r] = lo | hi << 16;
    }
  }
}

/*
 * Panel of R float32 "rows" stored across: row r's element p at src[p * ks + r], r < count.
 * Two inner indices are converted together and interleaved into pairs.
 */
BF16 static void pack_strided(const float *src, size_t ks, int count, int kc, uint32_t *dst, int R) {
  const __m512i interleave = _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22,
                                              6, 21, 5, 20, 4, 19, 3, 18, 2, 17, 1, 16, 0);
  for (int p = 0; p < kc; p += 2) {
    const float *x = src + (size_t)p * ks, *y = src + (size_t)(p + 1) * ks;
    for (int g = 0; g < R; g += 16) {
      const int width = R - g < 16 ? R - g : 16;
      const int valid = count - g < 0 ? 0 : (count - g < width ? count - g : width);
      const __mmask16 load = (__mmask16)((1u << valid) - 1), store = (__mmask16)((1u << width) - 1);
      const __m512 vx = _mm512_maskz_loadu_ps(load, x + g);
      const __m512 vy = p + 1 < kc ? _mm512_maskz_loadu_ps(load, y + g) : _mm512_setzero_ps();
      const __m512i v = _mm512_permutexvar_epi16(interleave, (__m512i)_mm512_cvtne2ps_pbh(vy, vx));
      _mm512_mask_storeu_epi32(dst + (size_t)(p / 2) * R + g, store, v);
    }
  }
}

/*
 * C[mr, nr] (=|+=) the panels' product * scale[j] (+ bias on the first block). `first`: the
 * first block of inner indices writes C (with the bias), later ones add to it.
 */
BF16 static void microkernel(int pairs, const uint32_t *ap, const uint32_t *bp, int mr, int nr, float *c,
                             size_t ldc, const float *scale, const float *bias, int bias_one, int first) {
  __m512 acc[MR][2];
#pragma GCC unroll 12
  for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
  for (int q = 0; q < pairs; q++) {
    const __m512bh b0 = (__m512bh)_mm512_load_si512(bp + (size_t)q * NR);
    const __m512bh b1 = (__m512bh)_mm512_load_si512(bp + (size_t)q * NR + 16);
#pragma GCC unroll 12
    for (int r = 0; r < MR; r++) {
      const __m512bh a = (__m512bh)_mm512_set1_epi32((int)ap[(size_t)q * MR + r]);
      acc[r][0] = _mm512_dpbf16_ps(acc[r][0], a, b0);
      acc[r][1] = _mm512_dpbf16_ps(acc[r][1], a, b1);
    }
  }
  tessera_store_tile((const __m512(*)[2])acc, mr, nr, c, ldc, scale, bias, bias_one, first);
}

struct gemm_job {
  struct tessera_gemm_operands o;
  volatile int failed;
};

BF16 static void gemm_part(void *ctx, size_t begin, size_t end) {
  struct gemm_job *g = ctx;
  const size_t es = elem_size(g->o.b_kind);
  const int k_pairs = (g->o.k + 1) / 2;
  /* All of an MC-row block of A (every inner index) is packed once; block pc's pairs start at pair pc/2. */
  const size_t a_words = (size_t)MC * (size_t)k_pairs;
  int slot = -1;
  uint32_t *ap = tessera_claim_buffer(sizeof(uint32_t) * (a_words + NCP * NR * KC / 2), &slot);
  if (ap == NULL) {
    g->failed = 1;
    return;
  }
  uint32_t *bp = ap + a_words; /* a_words is a multiple of 16: bp stays 64-byte aligned */
  for (int ic = 0; ic < g->o.m; ic += MC) {
    const int mc = g->o.m - ic < MC ? g->o.m - ic : MC;
    const size_t mc_pad = (size_t)(mc + MR - 1) / MR * MR;
    for (int pc = 0; pc < g->o.k; pc += KC) {
      const int kc = g->o.k - pc < KC ? g->o.k - pc : KC, pairs = (kc + 1) / 2;
      for (int i = 0; i < mc; i += MR) {
        const int count = mc - i < MR ? mc - i : MR;
        const size_t row = (size_t)(ic + i);
        uint32_t *dst = ap + mc_pad * (size_t)(pc / 2) + (size_t)(i / MR) * pairs * MR;
        if (g->o.a_cs == 1)
          pack_contiguous(TESSERA_BF16_B_F32, g->o.a + row * g->o.a_rs + pc, g->o.a_rs, count, kc, dst, MR);
        else
          pack_strided(g->o.a + row * g->o.a_rs + (size_t)pc * g->o.a_cs, g->o.a_cs, count, kc, dst, MR);
      }
    }
    /*
     * Per chunk of column panels, every block of inner indices in turn: the chunk's C tile stays in
     * cache between the blocks that add to it.
     */
    for (size_t jc = begin; jc < end; jc += NCP) {
      const size_t np = end - jc < NCP ? end - jc : NCP;
      for (int pc = 0; pc < g->o.k; pc += KC) {
        const int kc = g->o.k - pc < KC ? g->o.k - pc : KC, pairs = (kc + 1) / 2;
        const int first = pc == 0;
        for (size_t jp = 0; jp < np; jp++) {
          const size_t j0 = (jc + jp) * NR;
          const int count = g->o.n - (int)j0 < NR ? g->o.n - (int)j0 : NR;
          uint32_t *dst = bp + jp * pairs * NR;
          if (g->o.b_ks == 1)
            pack_contiguous(g->o.b_kind, g->o.b + (j0 * g->o.b_ns + pc) * es, g->o.b_ns, count, kc, dst, NR);
          else
            pack_strided((const float *)g->o.b + (size_t)pc * g->o.b_ks + j0, g->o.b_ks, count, kc, dst, NR);
        }
        for (size_t jp = 0; jp < np; jp++) {
          const size_t j0 = (jc + jp) * NR;
          const int nr = g->o.n - (int)j0 < NR ? g->o.n - (int)j0 : NR;
          const float *scale = g->o.scales != NULL ? g->o.scales + j0 : NULL;
          const int bias_one = g->o.bias_len == 1;
          const float *bias = g->o.bias == NULL ? NULL : (bias_one ? g->o.bias : g->o.bias + j0);
          const uint32_t *a_block = ap + mc_pad * (size_t)(pc / 2);
          for (int i = 0; i < mc; i += MR) {
            const int mr = mc - i < MR ? mc - i : MR;
            microkernel(pairs, a_block + (size_t)(i / MR) * pairs * MR, bp + jp * pairs * NR, mr, nr,
                        g->o.c + (size_t)(ic + i) * g->o.ldc + j0, g->o.ldc, scale, bias, bias_one, first);
          }
        }
      }
    }
  }
  tessera_release_buffer(ap, slot);
}

#ifdef TESSERA_AMX

/*
 * The AMX path. A is packed once, shared, as bf16 rows (ld = k rounded up to 32, plus 32 so that
 * the 16 rows a tile load reads do not fall into one cache set). Each part packs B for a group of
 * NCP column panels of NR = 32 over all of k, in the pairs layout above (pair q of column c at word
 * q * 32 + c, a tile's "VNNI" rows). A 32 x 32 block of C is four accumulator tiles (0-3); per 32
 * inner indices it loads two A tiles (4, 5: rows 0-15 and 16-31) and two B tiles (6, 7: columns
 * 0-15 and 16-31) and issues four tile products. The tiles are stored to a scratch block and the
 * epilogue (scale, bias) writes C, so the whole of k is summed in the tiles.
 */
#define AMX __attribute__((target("avx512f,avx512bw,avx512bf16,avx512vl,f16c,fma,amx-tile,amx-bf16")))
#define AMX_MB 32

struct amx_tile_config {
  uint8_t palette, start_row, reserved[14];
  uint16_t colsb[16];
  uint8_t rows[16];
} __attribute__((packed));

struct amx_job {
  struct gemm_job *g;
  uint16_t *a;     /* [m rounded up to AMX_MB][ld] bf16 */
  size_t ld;       /* in bf16 elements */
  int k_pairs_pad; /* k rounded up to 32, in pairs */
};

/* Every tile 16 rows of 64 bytes: A tiles 16 x 32 bf16, B tiles 16 pairs x 16 columns, C 16 x 16 floats. */
static const struct amx_tile_config tile_config __attribute__((aligned(64))) = {
    .palette = 1,
    .colsb = {64, 64, 64, 64, 64, 64, 64, 64},
    .rows = {16, 16, 16, 16, 16, 16, 16, 16},
};

/* A constant in memory: GCC's _tile_loadconfig tells the compiler it reads only the first 8 bytes,
 * so stores to a local configuration may be dropped. */
AMX void tessera_amx_begin(void) { _tile_loadconfig(&tile_config); }

/* Gives the tile state back: a thread holding it saves 8 KiB more at each context switch. */
AMX void tessera_amx_end(void) { _tile_release(); }

/*
 * block [32, 32] (row stride ldb floats) = A [32 rows, 2 * pairs] (bf16, row stride a_ld) times one
 * panel of NR columns (pairs x NR words); pairs is a multiple of 16.
 */
AMX static inline void amx_block(const uint16_t *a, size_t a_ld, const uint32_t *b, int pairs, float *block,
                                 size_t ldb) {
  const uint16_t *a1 = a + 16 * a_ld;
  _tile_zero(0);
  _tile_zero(1);
  _tile_zero(2);
  _tile_zero(3);
  for (int q = 0; q < pairs; q += 16) {
    _tile_loadd(4, a + 2 * q, a_ld * 2);
    _tile_loadd(5, a1 + 2 * q, a_ld * 2);
    _tile_loadd(6, b + (size_t)q * NR, NR * 4);
    _tile_loadd(7, b + (size_t)q * NR + 16, NR * 4);
    _tile_dpbf16ps(0, 4, 6);
    _tile_dpbf16ps(1, 4, 7);
    _tile_dpbf16ps(2, 5, 6);
    _tile_dpbf16ps(3, 5, 7);
  }
  _tile_stored(0, block, ldb * 4);
  _tile_stored(1, block + 16, ldb * 4);
  _tile_stored(2, block + 16 * ldb, ldb * 4);
  _tile_stored(3, block + 16 * ldb + 16, ldb * 4);
}

AMX void tessera_amx_multiply(const uint16_t *a, size_t a_ld, const uint32_t *panels, int panel_count, int panel_k,
                              int k, float *c, size_t ldc) {
  const size_t stride = (size_t)(panel_k + 31) / 32 * 16 * NR;
  const int pairs = (k + 31) / 32 * 16;
  for (int t = 0; t < panel_count; t++) amx_block(a, a_ld, panels + (size_t)t * stride, pairs, c + (size_t)t * NR, ldc);
}

AMX void tessera_amx_pack_rows(const float *src, size_t ld, int rows, int cols, uint16_t *dst, size_t dst_ld) {
  for (int i = 0; i < rows; i++) {
    const float *row = src + (size_t)i * ld;
    uint16_t *out = dst + (size_t)i * dst_ld;
    int p = 0;
    for (; p + 32 <= cols; p += 32) _mm512_storeu_si512(out + p, load32_bf16(TESSERA_BF16_B_F32, row + p));
    for (; p < cols; p++) out[p] = round_bf16(row[p]);
    memset(out + cols, 0, (dst_ld - (size_t)cols) * 2);
  }
}

AMX void tessera_amx_pack_panels(const float *src, size_t ks, size_t ns, int k, int n, uint32_t *dst) {
  const int pairs = (k + 31) / 32 * 16, true_pairs = (k + 1) / 2;
  for (int j0 = 0; j0 < n; j0 += NR) {
    const int count = n - j0 < NR ? n - j0 : NR;
    if (ks == 1)
      pack_contiguous(TESSERA_BF16_B_F32, src + (size_t)j0 * ns, ns, count, k, dst, NR);
    else
      pack_strided(src + (size_t)j0 * ns, ks, count, k, dst, NR);
    memset(dst + (size_t)true_pairs * NR, 0, (size_t)(pairs - true_pairs) * NR * 4);
    dst += (size_t)pairs * NR;
  }
}

AMX static void amx_pack_a(void *ctx, size_t begin, size_t end) {
  struct amx_job *job = ctx;
  const struct gemm_job *g = job->g;
  const size_t real = end < (size_t)g->o.m ? end : (size_t)g->o.m;
  if (begin < real) tessera_amx_pack_rows(g->o.a + begin * g->o.a_rs, g->o.a_rs, (int)(real - begin), g->o.k, job->a + begin * job->ld, job->ld);
  for (size_t i = real > begin ? real : begin; i < end; i++) memset(job->a + i * job->ld, 0, job->ld * 2);
}

/* A strided A (its rows across memory): pack pairs of inner indices, 16 rows at a time, then scatter. */
AMX static void amx_pack_a_strided(void *ctx, size_t begin, size_t end) {
  struct amx_job *job = ctx;
  const struct gemm_job *g = job->g;
  /* begin/end count blocks of 16 rows. */
  for (size_t blk = begin; blk < end; blk++) {
    const int r0 = (int)blk * 16;
    const int count = g->o.m - r0 < 16 ? (g->o.m - r0 < 0 ? 0 : g->o.m - r0) : 16;
    uint32_t words[16 * 16] __attribute__((aligned(64)));
    const int pairs = job->k_pairs_pad;
    for (int q0 = 0; q0 < pairs; q0 += 16) {
      const int kc = g->o.k - 2 * q0 < 32 ? (g->o.k - 2 * q0 < 0 ? 0 : g->o.k - 2 * q0) : 32;
      /* words[q * 16 + r]: pair q0 + q of row r0 + r. */
      if (kc > 0) pack_strided(g->o.a + (size_t)r0 * g->o.a_rs + (size_t)(2 * q0) * g->o.a_cs, g->o.a_cs, count, kc, words, 16);
      for (int q = (kc + 1) / 2; q < 16; q++) memset(words + q * 16, 0, 64);
      for (int r = 0; r < 16; r++) {
        uint32_t *dst = (uint32_t *)(job->a + (size_t)(r0 + r) * job->ld) + q0;
        for (int q = 0; q < 16; q++) dst[q] = r < count ? words[q * 16 + r] : 0;
      }
    }
    for (int r = 0; r < 16; r++) {
      uint16_t *row = job->a + (size_t)(r0 + r) * job->ld;
      memset(row + 2 * (size_t)pairs, 0, (job->ld - 2 * (size_t)pairs) * 2);
    }
  }
}

AMX static void amx_epilogue(const float *block, int mr, int nr, float *c, size_t ldc, const float *scale,
                             const float *bias, int bias_one) {
  for (int h = 0; h < 2; h++) {
    const int cols = nr - 16 * h;
    if (cols <= 0) break;
    const __mmask16 mask = (__mmask16)(cols >= 16 ? 0xffffu : (1u << cols) - 1);
    const __m512 s = scale != NULL ? _mm512_maskz_loadu_ps(mask, scale + 16 * h) : _mm512_set1_ps(1.0f);
    const __m512 add = bias == NULL ? _mm512_setzero_ps()
                                    : (bias_one ? _mm512_set1_ps(bias[0]) : _mm512_maskz_loadu_ps(mask, bias + 16 * h));
    for (int r = 0; r < mr; r++)
      _mm512_mask_storeu_ps(c + (size_t)r * ldc + 16 * h, mask,
                            _mm512_fmadd_ps(_mm512_load_ps(block + r * NR + 16 * h), s, add));
  }
}

AMX static void amx_part(void *ctx, size_t begin, size_t end) {
  struct amx_job *job = ctx;
  struct gemm_job *g = job->g;
  const size_t es = elem_size(g->o.b_kind);
  const int pairs = job->k_pairs_pad, true_pairs = (g->o.k + 1) / 2;
  const size_t panel_words = (size_t)pairs * NR;
  int slot = -1;
  uint32_t *bp = tessera_claim_buffer(sizeof(uint32_t) * NCP * panel_words, &slot);
  if (bp == NULL) {
    g->failed = 1;
    return;
  }
  tessera_amx_begin();
  float block[AMX_MB * NR] __attribute__((aligned(64)));
  for (size_t jc = begin; jc < end; jc += NCP) {
    const size_t np = end - jc < NCP ? end - jc : NCP;
    for (size_t jp = 0; jp < np; jp++) {
      const size_t j0 = (jc + jp) * NR;
      const int count = g->o.n - (int)j0 < NR ? g->o.n - (int)j0 : NR;
      uint32_t *dst = bp + jp * panel_words;
      if (g->o.b_ks == 1)
        pack_contiguous(g->o.b_kind, g->o.b + j0 * g->o.b_ns * es, g->o.b_ns, count, g->o.k, dst, NR);
      else
        pack_strided((const float *)g->o.b + j0, g->o.b_ks, count, g->o.k, dst, NR);
      memset(dst + (size_t)true_pairs * NR, 0, (size_t)(pairs - true_pairs) * NR * 4);
    }
    for (int i = 0; i < g->o.m; i += AMX_MB) {
      const int mr = g->o.m - i < AMX_MB ? g->o.m - i : AMX_MB;
      const uint16_t *a0 = job->a + (size_t)i * job->ld;
      for (size_t jp = 0; jp < np; jp++) {
        const size_t j0 = (jc + jp) * NR;
        const uint32_t *b = bp + jp * panel_words;
        amx_block(a0, job->ld, b, pairs, block, NR);
        const int nr = g->o.n - (int)j0 < NR ? g->o.n - (int)j0 : NR;
        const int bias_one = g->o.bias_len == 1;
        const float *bias = g->o.bias == NULL ? NULL : (bias_one ? g->o.bias : g->o.bias + j0);
        amx_epilogue(block, mr, nr, g->o.c + (size_t)i * g->o.ldc + j0, g->o.ldc, g->o.scales != NULL ? g->o.scales + j0 : NULL,
                     bias, bias_one);
      }
    }
  }
  tessera_amx_end();
  tessera_release_buffer(bp, slot);
}

static int amx_gemm(struct gemm_job *g) {
  const int m_pad = (g->o.m + AMX_MB - 1) / AMX_MB * AMX_MB;
  const int k_pad = (g->o.k + 31) / 32 * 32;
  struct amx_job job = {g, NULL, (size_t)k_pad + 32, k_pad / 2};
  int slot = -1;
  job.a = tessera_claim_buffer(sizeof(uint16_t) * (size_t)m_pad * job.ld, &slot);
  if (job.a == NULL) return 0;
  const int threads = tessera_threads();
  /* About 32 K values per part: a prefill's A is packed on every thread. */
  const size_t row_grain = 1 + ((size_t)32 << 10) / job.ld;
  if (g->o.a_cs == 1)
    tessera_parallel_for((size_t)m_pad, row_grain, threads, amx_pack_a, &job);
  else
    tessera_parallel_for((size_t)m_pad / 16, 1 + row_grain / 16, threads, amx_pack_a_strided, &job);
  const size_t panels = ((size_t)g->o.n + NR - 1) / NR;
  /* A part is at least a group of NCP panels, and about 16M multiply-adds (tens of microseconds). */
  const size_t per_panel = (size_t)m_pad * (size_t)k_pad * NR;
  size_t grain = per_panel >= (16u << 20) ? 1 : (16u << 20) / per_panel + 1;
  grain = (grain + NCP - 1) / NCP * NCP;
  tessera_parallel_for(panels, grain, threads, amx_part, &job);
  tessera_release_buffer(job.a, slot);
  return !g->failed;
}

#endif

#endif

int tessera_gemm_bf16(int m, int n, int k, const float *a, size_t a_rs, size_t a_cs, int b_kind, const void *b,
                      size_t b_ks, size_t b_ns, const float *scales, const float *bias, size_t bias_len, float *c,
                      size_t ldc) {
  if (tessera_bf16_missing() != NULL) return 0;
#ifdef TESSERA_X86
  if (m <= 0 || n <= 0) return 1;
  if (k == 0) {
    tessera_fill_bias(c, m, n, ldc, bias, bias_len);
    return 1;
  }
  struct gemm_job g = {{m, n, k, a, a_rs, a_cs, b_kind, b, b_ks, b_ns, scales, bias, bias_len, c, ldc}, 0};
#ifdef TESSERA_AMX
  if (tessera_amx_available()) return amx_gemm(&g);
#endif
  const size_t panels = ((size_t)n + NR - 1) / NR;
  /* Enough products per thread (about 16M multiply-adds) to repay starting it. */
  const size_t per_panel = (size_t)m * (size_t)k * NR;
  const size_t grain = per_panel >= (16u << 20) ? 1 : (16u << 20) / per_panel + 1;
  tessera_parallel_for(panels, grain, tessera_threads(), gemm_part, &g);
  return !g.failed;
#else
  return 0;
#endif
}

#ifndef TESSERA_AMX
/* Without AMX tessera_amx_available() is 0 and these are never called. */
void tessera_amx_begin(void) { abort(); }
void tessera_amx_end(void) { abort(); }
void tessera_amx_pack_rows(const float *src, size_t ld, int rows, int cols, uint16_t *dst, size_t dst_ld) { abort(); }
void tessera_amx_pack_panels(const float *src, size_t ks, size_t ns, int k, int n, uint32_t *dst) { abort(); }
void tessera_amx_multiply(const uint16_t *a, size_t a_ld, const uint32_t *panels, int panel_count, int panel_k, int k,
                          float *c, size_t ldc) {
  abort();
}
#endif
