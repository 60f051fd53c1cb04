/*
 * Backward kernels for the fused forward kernels (backward.h): each reads what its forward
 * read (recomputing the cheap intermediates, e.g. a norm's row statistics, rather than keeping
 * them) and writes its gradients in one or two passes, where tfjs' gradients of the composed ops
 * run five to ten elementwise passes over tensors of the same size.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backward.h"
#include "ffn.h"
#include "parallel.h"
#include "simd.h"

#define SQRT1_2 0.70710678118654752f
#define SQRT_2_OVER_PI 0.79788456080286536f
#define INV_SQRT_2PI 0.39894228040143268f
#define GELU_CUBIC 0.044715f

/* act(x) and act'(x) together. */
TESSERA_INLINE void act_and_slope(int act, float x, float *value, float *slope) {
  switch (act) {
    case TESSERA_FFN_GELU: {
      const float cdf = 0.5f * (1.0f + tessera_erff(x * SQRT1_2));
      *value = x * cdf;
      *slope = cdf + x * INV_SQRT_2PI * tessera_expf(-0.5f * x * x);
      return;
    }
    case TESSERA_FFN_GELU_TANH: {
      const float t = tessera_tanhf(SQRT_2_OVER_PI * (x + GELU_CUBIC * x * x * x));
      *value = 0.5f * x * (1.0f + t);
      *slope = 0.5f * (1.0f + t) + 0.5f * x * (1.0f - t * t) * SQRT_2_OVER_PI * (1.0f + 3.0f * GELU_CUBIC * x * x);
      return;
    }
    case TESSERA_FFN_SILU: {
      const float s = 1.0f / (1.0f + tessera_expf(-x));
      *value = x * s;
      *slope = s * (1.0f + x * (1.0f - s));
      return;
    }
    case TESSERA_FFN_RELU:
      *value = x > 0.0f ? x : 0.0f;
      *slope = x > 0.0f ? 1.0f : 0.0f;
      return;
    case TESSERA_FFN_TANH: {
      const float t = tessera_tanhf(x);
      *value = t;
      *slope = 1.0f - t * t;
      return;
    }
    default:
      *value = x;
      *slope = 1.0f;
  }
}

/* One loop per activation (the switch hoisted out), so each vectorises. */
#define ACT_CASES(...)                                                                 \
  switch (act) {                                                                        \
    case TESSERA_FFN_GELU: { const int a_ = TESSERA_FFN_GELU; __VA_ARGS__; break; }            \
    case TESSERA_FFN_GELU_TANH: { const int a_ = TESSERA_FFN_GELU_TANH; __VA_ARGS__; break; }  \
    case TESSERA_FFN_SILU: { const int a_ = TESSERA_FFN_SILU; __VA_ARGS__; break; }            \
    case TESSERA_FFN_RELU: { const int a_ = TESSERA_FFN_RELU; __VA_ARGS__; break; }            \
    case TESSERA_FFN_TANH: { const int a_ = TESSERA_FFN_TANH; __VA_ARGS__; break; }            \
    default: { const int a_ = TESSERA_FFN_IDENTITY; __VA_ARGS__; break; }                      \
  }

TESSERA_CLONES static void activation_backward_range(int act, const float *x, const float *up, const float *dy,
                                                      float *dx, float *dup, size_t n) {
  if (up == NULL) {
    ACT_CASES(for (size_t i = 0; i < n; i++) {
      float v, d;
      act_and_slope(a_, x[i], &v, &d);
      dx[i] = dy[i] * d;
    })
  } else {
    ACT_CASES(for (size_t i = 0; i < n; i++) {
      float v, d;
      act_and_slope(a_, x[i], &v, &d);
      dx[i] = dy[i] * d * up[i];
      if (dup != NULL) dup[i] = dy[i] * v;
    })
  }
}

struct activation_backward_args {
  int act;
  const float *x, *up, *dy;
  float *dx, *dup;
};

static void activation_backward_part(void *ctx, size_t begin, size_t end) {
  const struct activation_backward_args *a = ctx;
  activation_backward_range(a->act, a->x + begin, a->up == NULL ? NULL : a->up + begin, a->dy + begin,
                            a->dx + begin, a->dup == NULL ? NULL : a->dup + begin, end - begin);
}

/* Below this many values per thread, a thread start costs more than it saves. */
#define ELEMENT_GRAIN 65536

void tessera_activation_backward(int act, const float *x, const float *up, const float *dy, float *dx,
                                 float *dup, size_t n) {
  struct activation_backward_args args = {act, x, up, dy, dx, dup};
  tessera_parallel_for(n, ELEMENT_GRAIN, tessera_threads(), activation_backward_part, &args);
}

/* A norm's backward: pass 1 over rows writes ds and each row's statistics; pass 2 over column
 * ranges sums the weight (and bias) gradients, so no two threads add into one value. */
struct norm_backward_args {
  const float *x, *residual, *weight, *dy;
  float *ds, *dweight, *dbias;
  float *mean, *rstd; /* per row; mean NULL for RMSNorm */
  int h;
  float eps;
};

TESSERA_INLINE float summed(const struct norm_backward_args *a, size_t at) {
  return a->residual == NULL ? a->x[at] : a->x[at] + a->residual[at];
}

TESSERA_CLONES static void norm_backward_rows(void *ctx, size_t first, size_t last) {
  const struct norm_backward_args *a = ctx;
  const int h = a->h;
  for (size_t r = first; r < last; r++) {
    const size_t row = r * h;
    double mean = 0.0;
    if (a->mean != NULL) {
#pragma omp simd reduction(+ : mean)
      for (int i = 0; i < h; i++) mean += summed(a, row + i);
      mean /= h;
    }
    double sq = 0.0;
#pragma omp simd reduction(+ : sq)
    for (int i = 0; i < h; i++) {
      const double d = summed(a, row + i) - mean;
      sq += d * d;
    }
    const float rstd = (float)(1.0 / sqrt(sq / h + a->eps));
    const float mf = (float)mean;
    /* g = dy * weight; ds = rstd * (g - mean(g) - n * mean(g * n)), mean(g) only for LayerNorm. */
    double g_sum = 0.0, gn_sum = 0.0;
#pragma omp simd reduction(+ : g_sum, gn_sum)
    for (int i = 0; i < h; i++) {
      const float g = a->weight == NULL ? a->dy[row + i] : a->dy[row + i] * a->weight[i];
      const float n = (summed(a, row + i) - mf) * rstd;
      g_sum += g;
      gn_sum += (double)g * n;
    }
    const float g_mean = a->mean == NULL ? 0.0f : (float)(g_sum / h);
    const float gn_mean = (float)(gn_sum / h);
    for (int i = 0; i < h; i++) {
      const float g = a->weight == NULL ? a->dy[row + i] : a->dy[row + i] * a->weight[i];
      const float n = (summed(a, row + i) - mf) * rstd;
      a->ds[row + i] = rstd * (g - g_mean - n * gn_mean);
    }
    if (a->mean != NULL) a->mean[r] = mf;
    a->rstd[r] = rstd;
  }
}

struct norm_columns_args {
  const struct norm_backward_args *norm;
  size_t rows;
};

TESSERA_CLONES static void norm_backward_columns(void *ctx, size_t first, size_t last) {
  const struct norm_columns_args *c = ctx;
  const struct norm_backward_args *a = c->norm;
  for (size_t i = first; i < last; i++) {
    if (a->dweight != NULL) a->dweight[i] = 0.0f;
    if (a->dbias != NULL) a->dbias[i] = 0.0f;
  }
  for (size_t r = 0; r < c->rows; r++) {
    const size_t row = r * a->h;
    const float mf = a->mean == NULL ? 0.0f : a->mean[r];
    const float rstd = a->rstd[r];
    if (a->dweight != NULL) {
      for (size_t i = first; i < last; i++) a->dweight[i] += a->dy[row + i] * ((summed(a, row + i) - mf) * rstd);
    }
    if (a->dbias != NULL) {
      for (size_t i = first; i < last; i++) a->dbias[i] += a->dy[row + i];
    }
  }
}

static void norm_backward(struct norm_backward_args *a, size_t rows) {
  const int threads = tessera_threads();
  tessera_parallel_for(rows, (size_t)(ELEMENT_GRAIN / a->h + 1), threads, norm_backward_rows, a);
  if (a->dweight == NULL && a->dbias == NULL) return;
  struct norm_columns_args columns = {a, rows};
  /* Columns per thread: enough rows that a thread repays its start. */
  const size_t grain = rows * 64 >= ELEMENT_GRAIN ? 64 : (size_t)a->h;
  tessera_parallel_for((size_t)a->h, grain, threads, norm_backward_columns, &columns);
}

void tessera_rms_norm_backward(const float *x, const float *residual, const float *weight, const float *dy,
                               float *ds, float *dweight, size_t rows, int h, float eps) {
  float *rstd = malloc(sizeof(float) * (rows > 0 ? rows : 1));
  if (rstd == NULL) abort();
  struct norm_backward_args a = {x, residual, weight, dy, ds, dweight, NULL, NULL, rstd, h, eps};
  norm_backward(&a, rows);
  free(rstd);
}

void tessera_layer_norm_backward(const float *x, const float *residual, const float *gamma, const float *dy,
                                 float *ds, float *dgamma, float *dbeta, size_t rows, int h, float eps) {
  float *stats = malloc(sizeof(float) * 2 * (rows > 0 ? rows : 1));
  if (stats == NULL) abort();
  struct norm_backward_args a = {x, residual, gamma, dy, ds, dgamma, dbeta, stats, stats + rows, h, eps};
  norm_backward(&a, rows);
  free(stats);
}

struct rotary_args {
  const float *x, *cos_t, *sin_t;
  float *y;
  int heads, len, head_dim, rot_dim, table_batch, transpose, token_major;
};

/* (batch, head) pairs [first, last). */
TESSERA_CLONES static void rotary_heads_part(void *ctx, size_t first, size_t last) {
  const struct rotary_args *a = ctx;
  const int half = a->rot_dim / 2;
  for (size_t bh = first; bh < last; bh++) {
    const size_t b = bh / a->heads;
    const size_t table = (a->table_batch == 1 ? 0 : b) * (size_t)a->len * a->rot_dim;
    for (int t = 0; t < a->len; t++) {
      const size_t at = a->token_major ? ((b * a->len + t) * a->heads + bh % a->heads) * a->head_dim
                                       : (bh * a->len + t) * a->head_dim;
      const float *x = a->x + at, *c = a->cos_t + table + (size_t)t * a->rot_dim, *s = a->sin_t + table + (size_t)t * a->rot_dim;
      float *y = a->y + at;
      if (a->transpose) {
        /* Rᵀ: dx1 = dy1 c1 + dy2 s2, dx2 = dy2 c2 - dy1 s1. */
        for (int i = 0; i < half; i++) {
          const float x1 = x[i], x2 = x[i + half];
          y[i] = x1 * c[i] + x2 * s[i + half];
          y[i + half] = x2 * c[i + half] - x1 * s[i];
        }
      } else {
        /* rotate_half(x) = [-x2, x1]; y = x * cos + rotate_half(x) * sin. */
        for (int i = 0; i < half; i++) {
          const float x1 = x[i], x2 = x[i + half];
          y[i] = x1 * c[i] - x2 * s[i];
          y[i + half] = x2 * c[i + half] + x1 * s[i + half];
        }
      }
      for (int i = a->rot_dim; i < a->head_dim; i++) y[i] = x[i];
    }
  }
}

void tessera_rotary_heads(const float *x, const float *cos_t, const float *sin_t, float *y, int batch,
                          int heads, int len, int head_dim, int rot_dim, int table_batch, int transpose,
                          int token_major) {
  struct rotary_args a = {x, cos_t, sin_t, y, heads, len, head_dim, rot_dim, table_batch, transpose, token_major};
  const size_t per_head = (size_t)len * head_dim;
  tessera_parallel_for((size_t)batch * heads, ELEMENT_GRAIN / (per_head + 1) + 1, tessera_threads(), rotary_heads_part, &a);
}

struct causal_conv_args {
  const float *x, *w, *bias, *dy;
  float *y, *dx, *dw, *dbias;
  int batch, len, dim, kernel;
};

/* Mamba's causal depthwise conv over channels [first, last): contiguous in d, so it vectorises. */
TESSERA_CLONES static void causal_conv_part(void *ctx, size_t first, size_t last) {
  const struct causal_conv_args *a = ctx;
  const int L = a->len, Dm = a->dim, K = a->kernel;
  for (int b = 0; b < a->batch; b++) {
    for (int t = 0; t < L; t++) {
      float *y = a->y + ((size_t)b * L + t) * Dm;
      for (size_t d = first; d < last; d++) y[d] = a->bias == NULL ? 0.0f : a->bias[d];
      for (int k = 0; k < K; k++) {
        const int s = t + k + 1 - K; /* input position tap k reads */
        if (s < 0) continue;
        const float *x = a->x + ((size_t)b * L + s) * Dm;
#pragma omp simd
        for (size_t d = first; d < last; d++) y[d] += a->w[d * K + k] * x[d];
      }
    }
  }
}

TESSERA_CLONES static void causal_conv_backward_part(void *ctx, size_t first, size_t last) {
  const struct causal_conv_args *a = ctx;
  const int L = a->len, Dm = a->dim, K = a->kernel;
  for (size_t d = first; d < last; d++) {
    for (int k = 0; k < K; k++) a->dw[d * K + k] = 0.0f;
    if (a->dbias != NULL) a->dbias[d] = 0.0f;
  }
  for (int b = 0; b < a->batch; b++) {
    for (int s = 0; s < L; s++) {
      /* x_s feeds y_t for t = s + K - 1 - k, k = 0..K-1 (those t below L). */
      float *dx = a->dx + ((size_t)b * L + s) * Dm;
      const float *x = a->x + ((size_t)b * L + s) * Dm;
      for (size_t d = first; d < last; d++) dx[d] = 0.0f;
      for (int k = 0; k < K; k++) {
        const int t = s + K - 1 - k;
        if (t >= L) continue;
        const float *dy = a->dy + ((size_t)b * L + t) * Dm;
#pragma omp simd
        for (size_t d = first; d < last; d++) {
          dx[d] += a->w[d * K + k] * dy[d];
          a->dw[d * K + k] += dy[d] * x[d];
        }
      }
      if (a->dbias != NULL) {
        const float *dy = a->dy + ((size_t)b * L + s) * Dm;
        for (size_t d = first; d < last; d++) a->dbias[d] += dy[d];
      }
    }
  }
}

/* Channels per thread at least, so that a thread repays its start on short sequences. */
static size_t conv_grain(int batch, int len, int kernel) {
  const size_t per_channel = (size_t)batch * len * kernel;
  return ELEMENT_GRAIN / (per_channel + 1) + 1;
}

void tessera_causal_conv(const float *x, const float *w, const float *bias, float *y, int batch, int len,
                         int dim, int kernel) {
  struct causal_conv_args a = {x, w, bias, NULL, y, NULL, NULL, NULL, batch, len, dim, kernel};
  tessera_parallel_for((size_t)dim, conv_grain(batch, len, kernel), tessera_threads(), causal_conv_part, &a);
}

void tessera_causal_conv_backward(const float *x, const float *w, const float *dy, float *dx, float *dw,
                                  float *dbias, int batch, int len, int dim, int kernel) {
  struct causal_conv_args a = {x, w, NULL, dy, NULL, dx, dw, dbias, batch, len, dim, kernel};
  tessera_parallel_for((size_t)dim, conv_grain(batch, len, kernel), tessera_threads(), causal_conv_backward_part, &a);
}

struct segment_sum_args {
  const float *x;
  const int32_t *ids;
  size_t count, inner, segments;
  float *out;
};

/* Output rows [first, last): zeroed, then every input row whose segment falls among them added. */
TESSERA_CLONES static void segment_sum_part(void *ctx, size_t first, size_t last) {
  const struct segment_sum_args *a = ctx;
  memset(a->out + first * a->inner, 0, sizeof(float) * (last - first) * a->inner);
  for (size_t i = 0; i < a->count; i++) {
    const int32_t s = a->ids[i];
    if (s < 0 || (size_t)s < first || (size_t)s >= last) continue;
    const float *x = a->x + i * a->inner;
    float *out = a->out + (size_t)s * a->inner;
#pragma omp simd
    for (size_t j = 0; j < a->inner; j++) out[j] += x[j];
  }
}

void tessera_segment_sum(const float *x, const int32_t *ids, size_t count, size_t inner, float *out, size_t segments) {
  struct segment_sum_args a = {x, ids, count, inner, segments, out};
  tessera_parallel_for(segments, ELEMENT_GRAIN / (inner + 1) + 1, tessera_threads(), segment_sum_part, &a);
}
