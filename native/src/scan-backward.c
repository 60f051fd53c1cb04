/*
 * The selective scan's backward pass (see scan-backward.h), one channel (b, d) at a time: a
 * forward sweep recomputes that channel's states h_t (L × N floats, so nothing [B, L, D, N] is
 * ever held), then a reverse sweep carries g = dLoss/dh_t back through
 * h_t = a_t ⊙ h_{t−1} + δ_t B_t u_t, a_t = exp(δ_t A):
 *   g_t   = dy_t C_t + a_{t+1} ⊙ g_{t+1}      (g_L starts from dh, the final state's gradient)
 *   du_t  = dy_t D + δ_t Σ_n g_t B_t           dδ_t = Σ_n g_t (B_t u_t + A a_t h_{t−1})
 *   dA   += g_t δ_t a_t h_{t−1}                 dB_t += g_t δ_t u_t (summed over d)
 *   dC_t += dy_t h_t (summed over d)            dD += dy_t u_t,  dh0 = a_1 ⊙ g_1.
 * Channels split across threads in contiguous ranges of d: dA's rows and dD belong to one d, and
 * each thread sums dB and dC (shared by all d) into its own buffers, added up at the end.
 */
#include <stdlib.h>
#include <string.h>

#include "parallel.h"
#include "scan-backward.h"
#include "simd.h"

struct scan_backward_args {
  const struct tessera_scan_backward *s;
  size_t parts;
  float *partials; /* per part: dB then dC, B*L*N each */
};

TESSERA_CLONES static void scan_backward_part(void *ctx, size_t first, size_t last) {
  const struct scan_backward_args *a = ctx;
  const struct tessera_scan_backward *s = a->s;
  const int B = s->batch, L = s->len, Dm = s->dim, N = s->nstate;
  const size_t bln = (size_t)B * L * N;
  float *states = malloc(sizeof(float) * ((size_t)(L + 1) * N + (size_t)L * N + N));
  if (states == NULL) abort();
  float *decays = states + (size_t)(L + 1) * N, *g = decays + (size_t)L * N;
  for (size_t part = first; part < last; part++) {
    float *dB = a->partials + part * 2 * bln, *dC = dB + bln;
    memset(dB, 0, sizeof(float) * 2 * bln);
    const int d_first = (int)((size_t)Dm * part / a->parts), d_last = (int)((size_t)Dm * (part + 1) / a->parts);
    for (int d = d_first; d < d_last; d++) {
      const float *A = s->A + (size_t)d * N;
      float *dA = s->dA + (size_t)d * N;
      for (int n = 0; n < N; n++) dA[n] = 0.0f;
      float dD = 0.0f;
      for (int b = 0; b < B; b++) {
        const size_t channel = ((size_t)b * Dm + d) * N;
        for (int n = 0; n < N; n++) states[n] = s->h0 == NULL ? 0.0f : s->h0[channel + n];
        for (int t = 0; t < L; t++) {
          const size_t at = ((size_t)b * L + t) * Dm + d, bt = ((size_t)b * L + t) * N;
          const float dt = s->delta[at], dtu = dt * s->u[at];
          const float *h_prev = states + (size_t)t * N;
          float *h = states + (size_t)(t + 1) * N, *decay = decays + (size_t)t * N;
#pragma omp simd
          for (int n = 0; n < N; n++) {
            decay[n] = tessera_expf(dt * A[n]);
            h[n] = decay[n] * h_prev[n] + dtu * s->Bm[bt + n];
          }
        }
        for (int n = 0; n < N; n++) g[n] = s->dh == NULL ? 0.0f : s->dh[channel + n];
        for (int t = L - 1; t >= 0; t--) {
          const size_t at = ((size_t)b * L + t) * Dm + d, bt = ((size_t)b * L + t) * N;
          const float dt = s->delta[at], ut = s->u[at], dyt = s->dy == NULL ? 0.0f : s->dy[at];
          const float *h_prev = states + (size_t)t * N, *h = h_prev + N, *decay = decays + (size_t)t * N;
          const float *Bt = s->Bm + bt, *Ct = s->Cm + bt;
          float du_sum = 0.0f, dd_sum = 0.0f;
#pragma omp simd reduction(+ : du_sum, dd_sum)
          for (int n = 0; n < N; n++) {
            const float gn = g[n] + dyt * Ct[n];
            dC[bt + n] += dyt * h[n];
            du_sum += gn * Bt[n];
            dd_sum += gn * (Bt[n] * ut + A[n] * decay[n] * h_prev[n]);
            dA[n] += gn * dt * decay[n] * h_prev[n];
            dB[bt + n] += gn * dt * ut;
            g[n] = decay[n] * gn;
          }
          s->du[at] = dyt * s->D[d] + dt * du_sum;
          s->ddelta[at] = dd_sum;
          dD += dyt * ut;
        }
        for (int n = 0; n < N; n++) s->dh0[channel + n] = g[n];
      }
      s->dD[d] = dD;
    }
  }
  free(states);
}

int tessera_selective_scan_backward(const struct tessera_scan_backward *s, int threads) {
  const size_t bln = (size_t)s->batch * s->len * s->nstate;
  size_t parts = threads < 1 ? 1 : (size_t)threads;
  if (parts > (size_t)s->dim) parts = s->dim > 0 ? (size_t)s->dim : 1;
  float *partials = malloc(sizeof(float) * 2 * bln * parts + 1);
  if (partials == NULL) return 0;
  struct scan_backward_args args = {s, parts, partials};
  tessera_parallel_for(parts, 1, (int)parts, scan_backward_part, &args);
  for (size_t i = 0; i < bln; i++) {
    float db = 0.0f, dc = 0.0f;
    for (size_t p = 0; p < parts; p++) {
      db += partials[p * 2 * bln + i];
      dc += partials[p * 2 * bln + bln + i];
    }
    s->dB[i] = db;
    s->dC[i] = dc;
  }
  free(partials);
  return 1;
}
