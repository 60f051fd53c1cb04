/*
 * The Mamba selective scan, one implementation for the scan kernel and the whole-mixer kernel:
 *   h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t;   y_t = C_t . h_t + D u_t   (then y_t SiLU(z_t))
 * BLOCK channels at a time, vectorised across channels rather than state elements: each step's
 * exp, update and C.h accumulation are then plain vector ops with no horizontal sums, and the
 * block's state stays in L1. (batch, channel block) tasks split across threads.
 *
 * On AVX-512 the same loops are also written with intrinsics (below): the generic ones keep each
 * step's decays in memory between their exp and the update, these keep them in registers, and
 * vscalefps applies exp's 2^n. The arithmetic is the same, so the paths agree to float32 rounding.
 */
#include "kernels.h"
#include "simd.h"

#include <string.h>

#include "parallel.h"

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define TESSERA_X86 1
#include <immintrin.h>
#endif

#define BLOCK 16
#define MAX_STATE 256

/* One block of channels as a GCC vector: one zmm on AVX-512, split into halves or quarters elsewhere. */
typedef float block_vec __attribute__((vector_size(BLOCK * sizeof(float))));

/* Block vectors are only passed to always-inlined helpers, so GCC's note that a vector
 * argument's ABI differs between the clones' targets concerns no real call. */
#pragma GCC diagnostic ignored "-Wpsabi"

TESSERA_INLINE block_vec load_block(const float *p) {
  block_vec v;
  memcpy(&v, p, sizeof v);
  return v;
}

TESSERA_INLINE void store_block(float *p, block_vec v) { memcpy(p, &v, sizeof v); }

/* Scan the (batch, channel block) tasks [first, last). */
TESSERA_CLONES static void scan_tasks(void *ctx, size_t first, size_t last) {
  const struct tessera_scan *s = ctx;
  const int len = s->len, dim = s->dim, nstate = s->nstate;
  const int nblocks = (dim + BLOCK - 1) / BLOCK;
  float h[MAX_STATE * BLOCK], a[MAX_STATE * BLOCK], decay[MAX_STATE * BLOCK];
  for (int task = (int)first; task < (int)last; task++) {
    const int b = task / nblocks, d0 = (task % nblocks) * BLOCK;
    const int nd = dim - d0 < BLOCK ? dim - d0 : BLOCK;
    /* Lanes past the last channel run on zeros (delta = 0 keeps them inert) and are not stored. */
    for (int n = 0; n < nstate; n++) {
      for (int j = 0; j < BLOCK; j++) {
        const size_t at = ((size_t)b * dim + d0 + j) * nstate + n;
        a[n * BLOCK + j] = j < nd ? s->A[(size_t)(d0 + j) * nstate + n] : 0.0f;
        h[n * BLOCK + j] = j < nd && s->h0 != NULL ? s->h0[at] : 0.0f;
      }
    }
    for (int t = 0; t < len; t++) {
      const size_t row = (size_t)b * len + t;
      const float *bt = s->Bm + row * s->bc_stride, *ct = s->Cm + row * s->bc_stride;
      const float *ut = s->u + row * dim + d0;
      float dt[BLOCK], dtu[BLOCK], acc[BLOCK];
      for (int j = 0; j < BLOCK; j++) {
        dt[j] = j < nd ? s->delta[row * dim + d0 + j] : 0.0f;
        dtu[j] = j < nd ? dt[j] * ut[j] : 0.0f;
      }
      /* The decays first, in a loop of their own: the exp is the costly part and vectorises alone. */
      for (int n = 0; n < nstate; n++) {
#pragma omp simd
        for (int j = 0; j < BLOCK; j++) decay[n * BLOCK + j] = tessera_expf(dt[j] * a[n * BLOCK + j]);
      }
      /* C.h in two running sums: with one, each state's FMA would wait on the previous state's. */
      const block_vec dtu_v = load_block(dtu);
      block_vec acc0 = {0}, acc1 = {0};
      int n = 0;
      for (; n + 1 < nstate; n += 2) {
        const block_vec h0 = load_block(decay + n * BLOCK) * load_block(h + n * BLOCK) + dtu_v * bt[n];
        const block_vec h1 = load_block(decay + (n + 1) * BLOCK) * load_block(h + (n + 1) * BLOCK) + dtu_v * bt[n + 1];
        store_block(h + n * BLOCK, h0);
        store_block(h + (n + 1) * BLOCK, h1);
        acc0 += ct[n] * h0;
        acc1 += ct[n + 1] * h1;
      }
      if (n < nstate) {
        const block_vec h0 = load_block(decay + n * BLOCK) * load_block(h + n * BLOCK) + dtu_v * bt[n];
        store_block(h + n * BLOCK, h0);
        acc0 += ct[n] * h0;
      }
      store_block(acc, acc0 + acc1);
      float *yt = s->y + row * dim + d0;
      if (s->z != NULL) {
        const float *zt = s->z + row * s->z_stride + d0;
        for (int j = 0; j < nd; j++) yt[j] = (acc[j] + s->D[d0 + j] * ut[j]) * tessera_siluf(zt[j]);
      } else {
        for (int j = 0; j < nd; j++) yt[j] = acc[j] + s->D[d0 + j] * ut[j];
      }
    }
    for (int n = 0; n < nstate; n++) {
      for (int j = 0; j < nd; j++) s->h_out[((size_t)b * dim + d0 + j) * nstate + n] = h[n * BLOCK + j];
    }
  }
}

/* The body of step_tasks for a state size known at compile time where it is constant. */
TESSERA_INLINE void step_task(const struct tessera_scan *s, size_t task, const int nstate) {
  const size_t dim = (size_t)s->dim, b = task / dim, d = task % dim;
  const float *bt = s->Bm + b * s->bc_stride, *ct = s->Cm + b * s->bc_stride;
  const float *a = s->A + d * nstate;
  const float *h0 = s->h0 != NULL ? s->h0 + task * nstate : NULL;
  float *h = s->h_out + task * nstate;
  const float dt = s->delta[task], u = s->u[task], dtu = dt * u;
  /* exp in a loop of its own and no branch inside the update: GCC vectorises neither a loop
   * whose body selects on h0 nor one that composes the exp with the reduction. */
  float decay[MAX_STATE];
#pragma omp simd
  for (int n = 0; n < nstate; n++) decay[n] = h0 != NULL ? tessera_expf(dt * a[n]) : 0.0f;
  const float *past = h0 != NULL ? h0 : decay; /* decay is all zeros when there is no h0 */
  float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
  for (int n = 0; n < nstate; n++) {
    const float hn = decay[n] * past[n] + dtu * bt[n];
    h[n] = hn;
    acc += ct[n] * hn;
  }
  s->y[task] = acc + s->D[d] * u; /* the gate comes after, over all channels at once */
}

/* A decode step's y *= SiLU(z) over the (batch, channel) tasks [first, last), when z is given. */
TESSERA_CLONES static void gate_steps(const struct tessera_scan *s, size_t first, size_t last) {
  if (s->z == NULL) return;
  /* One batch row's run of channels at a time, so the loop vectorises. */
  const size_t dim = (size_t)s->dim;
  for (size_t task = first; task < last;) {
    const size_t b = task / dim, end = (b + 1) * dim < last ? (b + 1) * dim : last;
    const float *z = s->z + b * s->z_stride;
    float *y = s->y + b * dim;
#pragma omp simd
    for (size_t d = task - b * dim; d < end - b * dim; d++) y[d] *= tessera_siluf(z[d]);
    task = end;
  }
}

/*
 * One token (decode): nothing to carry from step to step, so each channel's N states are one
 * contiguous vector, read from h0 and A and written to h_out in their stored [dim, N] order.
 * N = 16 (Mamba's usual state size) gets a loop of fixed length: one AVX-512 vector, no remainder.
 */
TESSERA_CLONES static void step_tasks(void *ctx, size_t first, size_t last) {
  const struct tessera_scan *s = ctx;
  if (s->nstate == 16) {
    for (size_t task = first; task < last; task++) step_task(s, task, 16);
  } else {
    for (size_t task = first; task < last; task++) step_task(s, task, s->nstate);
  }
  gate_steps(s, first, last);
}

/* ---- the same loops on AVX-512 ---- */

static int avx512_force_absent;

void tessera_scan_avx512_force_absent(int absent) { avx512_force_absent = absent; }

#ifdef TESSERA_X86
#define AVX512 __attribute__((target("avx512f")))

/*
 * tessera_expf on 16 lanes: the same reduction and polynomial, with 2^n applied by vscalefps (n is
 * at least -126 after the clamp, so the product is the one the exponent bits give); 0 below the
 * clamp, infinity above it, NaN through.
 */
AVX512 static inline __m512 exp16(__m512 x) {
  const __m512 hi = _mm512_set1_ps(88.3762626647949f), lo = _mm512_set1_ps(-87.3365447505531f);
  /* max/min return their second operand when either is NaN, so a NaN x stays NaN. */
  const __m512 xc = _mm512_min_ps(hi, _mm512_max_ps(lo, x));
  const __m512 fx = _mm512_roundscale_ps(_mm512_mul_ps(xc, _mm512_set1_ps(1.44269504088896341f)),
                                         _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m512 r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(0.693359375f), xc);
  r = _mm512_fnmadd_ps(fx, _mm512_set1_ps(-2.12194440e-4f), r);
  __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(1.9875691500e-4f), r, _mm512_set1_ps(1.3981999507e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(8.3334519073e-3f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(4.1665795894e-2f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(1.6666665459e-1f));
  p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(5.0000001201e-1f));
  const __m512 y = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
  __m512 e = _mm512_scalef_ps(y, fx);
  e = _mm512_mask_mov_ps(e, _mm512_cmp_ps_mask(x, lo, _CMP_LT_OQ), _mm512_setzero_ps());
  return _mm512_mask_mov_ps(e, _mm512_cmp_ps_mask(x, hi, _CMP_GT_OQ), _mm512_set1_ps(INFINITY));
}

/* x / (1 + e^-x), as tessera_siluf. */
AVX512 static inline __m512 silu16(__m512 x) {
  return _mm512_div_ps(x, _mm512_add_ps(_mm512_set1_ps(1.0f), exp16(_mm512_sub_ps(_mm512_setzero_ps(), x))));
}

/*
 * The live lanes of 16 floats at p, zeros elsewhere. A whole block takes a plain load: masked
 * ones, issued once per step at a stride of one row, ran the scan at half the generic loops'
 * speed on Zen 5 (the prefetchers seem not to follow them).
 */
AVX512 static inline __m512 load_live(__mmask16 live, const float *p) {
  return live == 0xffff ? _mm512_loadu_ps(p) : _mm512_maskz_loadu_ps(live, p);
}

/* step_task with N a multiple of 16: each channel's states a few zmm, the decay never stored. */
AVX512 static void step_tasks_avx512(void *ctx, size_t first, size_t last) {
  const struct tessera_scan *s = ctx;
  const size_t dim = (size_t)s->dim;
  const int nstate = s->nstate;
  for (size_t task = first; task < last; task++) {
    const size_t b = task / dim, d = task % dim;
    const float *bt = s->Bm + b * s->bc_stride, *ct = s->Cm + b * s->bc_stride, *a = s->A + d * nstate;
    float *h = s->h_out + task * nstate;
    const float dt = s->delta[task], u = s->u[task];
    const __m512 dt_v = _mm512_set1_ps(dt), dtu_v = _mm512_set1_ps(dt * u);
    __m512 acc = _mm512_setzero_ps();
    for (int n = 0; n < nstate; n += 16) {
      const __m512 input = _mm512_mul_ps(dtu_v, _mm512_loadu_ps(bt + n));
      /* No h0: the state starts at zero, whatever the decay. */
      const __m512 hn = s->h0 == NULL ? input
                                      : _mm512_fmadd_ps(exp16(_mm512_mul_ps(dt_v, _mm512_loadu_ps(a + n))),
                                                        _mm512_loadu_ps(s->h0 + task * nstate + n), input);
      _mm512_storeu_ps(h + n, hn);
      acc = _mm512_fmadd_ps(_mm512_loadu_ps(ct + n), hn, acc);
    }
    s->y[task] = _mm512_reduce_add_ps(acc) + s->D[d] * u;
  }
  gate_steps(s, first, last);
}

/*
 * scan_tasks' body for a state size N known at compile time (16, where the compiler keeps the
 * block's 16 state vectors in registers) or not (up to MAX_STATE, in memory).
 */
AVX512 static inline void scan_task_avx512(const struct tessera_scan *s, int task, const int nstate) {
  const int len = s->len, dim = s->dim, nblocks = (dim + BLOCK - 1) / BLOCK;
  const int b = task / nblocks, d0 = (task % nblocks) * BLOCK;
  const int nd = dim - d0 < BLOCK ? dim - d0 : BLOCK;
  const __mmask16 live = (__mmask16)((1u << nd) - 1);
  __m512 h[MAX_STATE], a[MAX_STATE];
  /* Lanes past the last channel hold zeros (delta = 0 keeps them inert) and are not stored. */
  for (int n = 0; n < nstate; n++) {
    float an[BLOCK] = {0}, hn[BLOCK] = {0};
    for (int j = 0; j < nd; j++) {
      an[j] = s->A[(size_t)(d0 + j) * nstate + n];
      if (s->h0 != NULL) hn[j] = s->h0[((size_t)b * dim + d0 + j) * nstate + n];
    }
    a[n] = _mm512_loadu_ps(an);
    h[n] = _mm512_loadu_ps(hn);
  }
  const __m512 dvec = _mm512_maskz_loadu_ps(live, s->D + d0);
  for (int t = 0; t < len; t++) {
    const size_t row = (size_t)b * len + t;
    const float *bt = s->Bm + row * s->bc_stride, *ct = s->Cm + row * s->bc_stride;
    const __m512 dt = load_live(live, s->delta + row * dim + d0);
    const __m512 ut = load_live(live, s->u + row * dim + d0);
    const __m512 dtu = _mm512_mul_ps(dt, ut);
    /* C.h in two running sums, as scan_tasks. */
    __m512 acc0 = _mm512_setzero_ps(), acc1 = _mm512_setzero_ps();
    int n = 0;
    for (; n + 1 < nstate; n += 2) {
      h[n] = _mm512_fmadd_ps(exp16(_mm512_mul_ps(dt, a[n])), h[n], _mm512_mul_ps(dtu, _mm512_set1_ps(bt[n])));
      h[n + 1] = _mm512_fmadd_ps(exp16(_mm512_mul_ps(dt, a[n + 1])), h[n + 1], _mm512_mul_ps(dtu, _mm512_set1_ps(bt[n + 1])));
      acc0 = _mm512_fmadd_ps(_mm512_set1_ps(ct[n]), h[n], acc0);
      acc1 = _mm512_fmadd_ps(_mm512_set1_ps(ct[n + 1]), h[n + 1], acc1);
    }
    if (n < nstate) {
      h[n] = _mm512_fmadd_ps(exp16(_mm512_mul_ps(dt, a[n])), h[n], _mm512_mul_ps(dtu, _mm512_set1_ps(bt[n])));
      acc0 = _mm512_fmadd_ps(_mm512_set1_ps(ct[n]), h[n], acc0);
    }
    __m512 yt = _mm512_fmadd_ps(dvec, ut, _mm512_add_ps(acc0, acc1));
    if (s->z != NULL) yt = _mm512_mul_ps(yt, silu16(load_live(live, s->z + row * s->z_stride + d0)));
    if (live == 0xffff) {
      _mm512_storeu_ps(s->y + row * dim + d0, yt);
    } else {
      _mm512_mask_storeu_ps(s->y + row * dim + d0, live, yt);
    }
  }
  for (int n = 0; n < nstate; n++) {
    float hn[BLOCK];
    _mm512_storeu_ps(hn, h[n]);
    for (int j = 0; j < nd; j++) s->h_out[((size_t)b * dim + d0 + j) * nstate + n] = hn[j];
  }
}

AVX512 static void scan_tasks_avx512(void *ctx, size_t first, size_t last) {
  const struct tessera_scan *s = ctx;
  for (size_t task = first; task < last; task++) {
    if (s->nstate == 16) {
      scan_task_avx512(s, (int)task, 16);
    } else {
      scan_task_avx512(s, (int)task, s->nstate);
    }
  }
}
#endif

/* The AVX-512 loops when the CPU has them (and tests have not forced them absent). */
static int use_avx512(void) {
#ifdef TESSERA_X86
  return tessera_cpu_avx512() && !avx512_force_absent;
#else
  return 0;
#endif
}

/* A one-token scan's loop over (batch, channel) tasks: the AVX-512 one for state sizes it takes. */
static tessera_range_fn step_loop(const struct tessera_scan *s) {
#ifdef TESSERA_X86
  if (use_avx512() && s->nstate % 16 == 0) return step_tasks_avx512;
#endif
  return step_tasks;
}

const char *tessera_scan_state_error(int nstate) { return nstate > MAX_STATE ? "state size above 256" : NULL; }

void tessera_scan_step_part(const struct tessera_scan *s, size_t first, size_t last) {
  step_loop(s)((void *)s, first, last);
}

const char *tessera_scan_run(const struct tessera_scan *s, int threads) {
  const char *error = tessera_scan_state_error(s->nstate);
  if (error != NULL) return error;
  if (s->len == 1) {
    /* (batch, channel) tasks, 512 a part at least: decode keeps the pool's workers polling, so
     * even one small model's channels (Mamba-130m: 1536) are worth splitting. */
    tessera_parallel_for((size_t)s->batch * s->dim, 512, threads, step_loop(s), (void *)s);
    return NULL;
  }
  const size_t tasks = (size_t)s->batch * ((s->dim + BLOCK - 1) / BLOCK);
  /* A thread pays off from ~64k state updates; each task is len * BLOCK * nstate of them. */
  const size_t per_task = (size_t)s->len * BLOCK * s->nstate;
  tessera_range_fn scan = scan_tasks;
#ifdef TESSERA_X86
  if (use_avx512()) scan = scan_tasks_avx512;
#endif
  tessera_parallel_for(tasks, per_task >= 65536 ? 1 : (65536 + per_task - 1) / per_task, threads, scan, (void *)s);
  return NULL;
}
