/*
 * The Mamba selective scan, one implementation for the scan kernel and the whole-mixer kernel:
 *   h_t = exp(delta_t A) h_{t-1} + delta_t B_t u_t;   y_t = C_t . h_t + D u_t   (then y_t SiLU(z_t))
 * BLOCK channels at a time, vectorised across channels rather than state elements: each step's
 * exp, update and C.h accumulation are then plain vector ops with no horizontal sums, and the
 * block's state stays in L1. (batch, channel block) tasks split across threads.
 */
#include "kernels.h"
#include "simd.h"

#include <string.h>

#include "parallel.h"

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
  if (s->z == NULL) return;
  /* y *= SiLU(z), one batch row's run of channels at a time so the loop vectorises. */
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

const char *tessera_scan_run(const struct tessera_scan *s, int threads) {
  if (s->nstate > MAX_STATE) return "state size above 256";
  if (s->len == 1) {
    /* (batch, channel) tasks, 512 a part at least: decode keeps the pool's workers polling, so
     * even one small model's channels (Mamba-130m: 1536) are worth splitting. */
    tessera_parallel_for((size_t)s->batch * s->dim, 512, threads, step_tasks, (void *)s);
    return NULL;
  }
  const size_t tasks = (size_t)s->batch * ((s->dim + BLOCK - 1) / BLOCK);
  /* A thread pays off from ~64k state updates; each task is len * BLOCK * nstate of them. */
  const size_t per_task = (size_t)s->len * BLOCK * s->nstate;
  tessera_parallel_for(tasks, per_task >= 65536 ? 1 : (65536 + per_task - 1) / per_task, threads, scan_tasks, (void *)s);
  return NULL;
}
