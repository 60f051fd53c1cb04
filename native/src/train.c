/*
 * Training kernels. Each reads its inputs once (a logits row twice: the row is still in cache the
 * second time) and writes each output once, where tfjs composes the same math from five to ten
 * whole-tensor ops, each a pass over memory and a fresh [N, V] or weight-sized array.
 * Rows (losses) and ranges (Adam) are split over threads with tessera_parallel_for.
 */
#include <math.h>

#include "parallel.h"
#include "simd.h"
#include "train.h"

/* Below this many values per thread, a thread start costs more than it saves (as in ffn.c). */
#define GRAIN 65536

/* ---- Adam ---- */

struct adam_args {
  const float *w, *g, *m, *v;
  float *w_out, *m_out, *v_out;
  const struct tessera_adam *p;
};

/* The same operations, in the same order, as tfjs's AdamOptimizer, so results agree to rounding. */
TESSERA_CLONES static void adam_range(const struct adam_args *a, size_t begin, size_t end) {
  const struct tessera_adam p = *a->p;
  const float keep = 1.0f - p.lr * p.wd;
  /*
   * w, m and v may be their own outputs (in place), so only g is restrict. Each index is read
   * before it is written and no other index is touched, so exact aliasing is safe in vectors:
   * `omp simd` says so, which the compiler cannot prove for seven pointers.
   */
  const float *w = a->w, *restrict g = a->g, *m = a->m, *v = a->v;
  float *w_out = a->w_out, *m_out = a->m_out, *v_out = a->v_out;
#pragma omp simd
  for (size_t i = begin; i < end; i++) {
    const float gi = g[i];
    const float mi = p.beta1 * m[i] + (1.0f - p.beta1) * gi;
    const float vi = p.beta2 * v[i] + (1.0f - p.beta2) * (gi * gi);
    const float update = (mi / p.c1) / (sqrtf(vi / p.c2) + p.eps);
    const float wi = p.wd == 0.0f ? w[i] : w[i] * keep;
    m_out[i] = mi;
    v_out[i] = vi;
    w_out[i] = wi - p.lr * update;
  }
}

static void adam_part(void *ctx, size_t begin, size_t end) { adam_range(ctx, begin, end); }

void tessera_adam(const float *w, const float *g, const float *m, const float *v, float *w_out,
                  float *m_out, float *v_out, size_t n, const struct tessera_adam *p) {
  struct adam_args args = {w, g, m, v, w_out, m_out, v_out, p};
  tessera_parallel_for(n, GRAIN, tessera_threads(), adam_part, &args);
}

/* ---- Row helpers ---- */

TESSERA_INLINE float row_max(const float *x, int n) {
  float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
  for (int j = 0; j < n; j++) mx = x[j] > mx ? x[j] : mx;
  return mx;
}

/* Rows per thread part: enough rows that a part holds at least GRAIN values. */
static size_t row_grain(int vocab) {
  const size_t g = GRAIN / (size_t)(vocab > 0 ? vocab : 1);
  return g < 1 ? 1 : g;
}

/* ---- Cross-entropy ---- */

struct ce_args {
  const float *logits;
  const int32_t *targets;
  const float *lse_in, *dy;
  float *loss, *lse, *dx;
  int vocab;
};

TESSERA_CLONES static void ce_rows(const struct ce_args *a, size_t begin, size_t end) {
  const int n = a->vocab;
  for (size_t r = begin; r < end; r++) {
    const float *x = a->logits + r * (size_t)n;
    const float mx = row_max(x, n);
    float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < n; j++) sum += tessera_expf(x[j] - mx);
    const float lse = mx + logf(sum);
    a->lse[r] = lse;
    a->loss[r] = lse - x[a->targets[r]];
  }
}

static void ce_part(void *ctx, size_t begin, size_t end) { ce_rows(ctx, begin, end); }

void tessera_cross_entropy(const float *logits, const int32_t *targets, float *loss, float *lse,
                           size_t rows, int vocab) {
  struct ce_args args = {logits, targets, NULL, NULL, loss, lse, NULL, vocab};
  tessera_parallel_for(rows, row_grain(vocab), tessera_threads(), ce_part, &args);
}

TESSERA_CLONES static void ce_backward_rows(const struct ce_args *a, size_t begin, size_t end) {
  const int n = a->vocab;
  for (size_t r = begin; r < end; r++) {
    const float *x = a->logits + r * (size_t)n;
    float *dx = a->dx + r * (size_t)n;
    const float lse = a->lse_in[r], dy = a->dy[r];
    for (int j = 0; j < n; j++) dx[j] = dy * tessera_expf(x[j] - lse);
    dx[a->targets[r]] -= dy;
  }
}

static void ce_backward_part(void *ctx, size_t begin, size_t end) { ce_backward_rows(ctx, begin, end); }

void tessera_cross_entropy_backward(const float *logits, const int32_t *targets, const float *lse,
                                    const float *dy, float *dx, size_t rows, int vocab) {
  struct ce_args args = {logits, targets, lse, dy, NULL, NULL, dx, vocab};
  tessera_parallel_for(rows, row_grain(vocab), tessera_threads(), ce_backward_part, &args);
}

/* ---- KL divergence at a temperature ---- */

struct kl_args {
  const float *s, *t, *lse_s_in, *lse_t_in, *kl_in, *dy;
  float *kl, *lse_s, *lse_t, *out;
  int vocab, wrt_teacher;
  float inv_t;
};

/*
 * With p_t = e_t / Σe_t, e_t = exp((t - max t) / T): KL = Σ p_t (t - s) / T - lse_t + lse_s,
 * since log p_t - log p_s = (t - s) / T - lse_t + lse_s and Σ p_t = 1. So one pass after the
 * maxima gives both normalisers and the weighted difference.
 */
TESSERA_CLONES static void kl_rows(const struct kl_args *a, size_t begin, size_t end) {
  const int n = a->vocab;
  const float k = a->inv_t;
  for (size_t r = begin; r < end; r++) {
    const float *s = a->s + r * (size_t)n, *t = a->t + r * (size_t)n;
    const float ms = row_max(s, n), mt = row_max(t, n);
    float sum_s = 0.0f, sum_t = 0.0f, weighted = 0.0f;
#pragma omp simd reduction(+ : sum_s, sum_t, weighted)
    for (int j = 0; j < n; j++) {
      const float et = tessera_expf((t[j] - mt) * k);
      sum_s += tessera_expf((s[j] - ms) * k);
      sum_t += et;
      weighted += et * (t[j] - s[j]);
    }
    const float lse_s = ms * k + logf(sum_s), lse_t = mt * k + logf(sum_t);
    a->lse_s[r] = lse_s;
    a->lse_t[r] = lse_t;
    a->kl[r] = weighted / sum_t * k - lse_t + lse_s;
  }
}

static void kl_part(void *ctx, size_t begin, size_t end) { kl_rows(ctx, begin, end); }

void tessera_kl_divergence(const float *student, const float *teacher, float *kl, float *lse_s,
                           float *lse_t, size_t rows, int vocab, float inv_t) {
  struct kl_args args = {student, teacher, NULL, NULL, NULL, NULL, kl, lse_s, lse_t, NULL, vocab, 0, inv_t};
  tessera_parallel_for(rows, row_grain(vocab), tessera_threads(), kl_part, &args);
}

TESSERA_CLONES static void kl_backward_rows(const struct kl_args *a, size_t begin, size_t end) {
  const int n = a->vocab;
  const float k = a->inv_t;
  for (size_t r = begin; r < end; r++) {
    const float *s = a->s + r * (size_t)n, *t = a->t + r * (size_t)n;
    float *out = a->out + r * (size_t)n;
    const float ls = a->lse_s_in[r], lt = a->lse_t_in[r], scale = a->dy[r] * k;
    if (a->wrt_teacher) {
      /* d KL / d t_j = p_t,j (log p_t,j - log p_s,j - KL) / T */
      const float shift = a->kl_in[r] + lt - ls;
      for (int j = 0; j < n; j++) {
        const float log_ratio = (t[j] - s[j]) * k;
        out[j] = scale * tessera_expf(t[j] * k - lt) * (log_ratio - shift);
      }
    } else {
      for (int j = 0; j < n; j++) out[j] = scale * (tessera_expf(s[j] * k - ls) - tessera_expf(t[j] * k - lt));
    }
  }
}

static void kl_backward_part(void *ctx, size_t begin, size_t end) { kl_backward_rows(ctx, begin, end); }

void tessera_kl_divergence_backward(const float *student, const float *teacher, const float *lse_s,
                                    const float *lse_t, const float *kl, const float *dy, float *out,
                                    size_t rows, int vocab, float inv_t, int wrt_teacher) {
  struct kl_args args = {student, teacher, lse_s, lse_t, kl, dy, NULL, NULL, NULL, out, vocab, wrt_teacher, inv_t};
  tessera_parallel_for(rows, row_grain(vocab), tessera_threads(), kl_backward_part, &args);
}
