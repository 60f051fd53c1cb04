#include "kernels.h"

#include "gemm-bf16.h"
#include "parallel.h"
#include "quant.h"
#include "simd.h"

#include <cblas.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/*
 * Prepare the m x n output c of a product with inner dimension k, and return the BLAS beta to
 * accumulate onto it: with a bias, c starts as the broadcast bias row (or its single value) and
 * beta is 1; with k = 0 (BLAS would reject ld = 0 and the caller skips it) c is zeroed.
 */
static float start_output(float *c, int m, int n, int k, const float *bias, size_t bias_len) {
  if (bias != NULL) {
    for (int i = 0; i < m; i++) {
      float *row = c + (size_t)i * n;
      if (bias_len == 1) {
        for (int j = 0; j < n; j++) row[j] = bias[0];
      } else {
        memcpy(row, bias, sizeof(float) * (size_t)n);
      }
    }
    return 1.0f;
  }
  if (k == 0) memset(c, 0, sizeof(float) * (size_t)m * n);
  return 0.0f;
}

/* The tfjs definitions (tfjs-backend-cpu/src/utils/fused_utils.ts and the kernels it calls). */
TESSERA_CLONES static void apply_activation(float *c, int m, int n, int activation, float alpha,
                             const float *prelu, size_t prelu_len) {
  const size_t total = (size_t)m * n;
  switch (activation) {
    case TESSERA_ACT_LINEAR:
      return;
    case TESSERA_ACT_RELU:
      for (size_t i = 0; i < total; i++) c[i] = c[i] < 0.0f ? 0.0f : c[i];
      return;
    case TESSERA_ACT_ELU:
      for (size_t i = 0; i < total; i++) c[i] = c[i] >= 0.0f ? c[i] : tessera_expf(c[i]) - 1.0f;
      return;
    case TESSERA_ACT_RELU6:
      for (size_t i = 0; i < total; i++) c[i] = c[i] < 0.0f ? 0.0f : (c[i] > 6.0f ? 6.0f : c[i]);
      return;
    case TESSERA_ACT_LEAKYRELU:
      for (size_t i = 0; i < total; i++) c[i] = c[i] < 0.0f ? alpha * c[i] : c[i];
      return;
    case TESSERA_ACT_SIGMOID:
      for (size_t i = 0; i < total; i++) c[i] = 1.0f / (1.0f + tessera_expf(-c[i]));
      return;
    case TESSERA_ACT_PRELU:
      for (int i = 0; i < m; i++) {
        float *row = c + (size_t)i * n;
        for (int j = 0; j < n; j++) {
          const float w = prelu_len == 1 ? prelu[0] : prelu[j];
          row[j] = row[j] < 0.0f ? w * row[j] : row[j];
        }
      }
      return;
    default:
      return;
  }
}

static int max1(int v) { return v < 1 ? 1 : v; }

void tessera_matmul(const float *a, const float *b, float *out, const int32_t *a_idx,
                    const int32_t *b_idx, int batch, int m, int n, int k, int trans_a, int trans_b,
                    const float *bias, size_t bias_len, int activation, float alpha,
                    const float *prelu, size_t prelu_len) {
  if (m == 0 || n == 0) return;
  const size_t a_size = (size_t)m * k, b_size = (size_t)k * n, c_size = (size_t)m * n;
  for (int i = 0; i < batch; i++) {
    const float *A = a + (size_t)a_idx[i] * a_size;
    const float *B = b + (size_t)b_idx[i] * b_size;
    float *C = out + (size_t)i * c_size;
    /* A row vector times rows of B (a linear layer's weight), decode's GEMV, adds its own bias. */
    const int gemv_rows = m == 1 && trans_b;
    const float beta = gemv_rows ? 0.0f : start_output(C, m, n, k, bias, bias_len);
    if (gemv_rows) {
      tessera_gemv_f32(A, k, B, bias, bias_len, C, n);
    } else if (k == 0) {
      /* Empty inner dimension: the product is zero (the bias, if any). */
    } else if (m == 1) {
      /* A row vector times a matrix: gemv is several times faster than a 1-row sgemm. */
      tessera_pool_rest();
      cblas_sgemv(CblasRowMajor, trans_b ? CblasNoTrans : CblasTrans, trans_b ? n : k,
                  trans_b ? k : n, 1.0f, B, trans_b ? k : n, A, 1, beta, C, 1);
    } else if (n == 1) {
      tessera_pool_rest();
      cblas_sgemv(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans, trans_a ? k : m,
                  trans_a ? m : k, 1.0f, A, trans_a ? m : k, B, 1, beta, C, 1);
    } else if (tessera_matmul_precision() && (size_t)m * n * k >= TESSERA_BF16_MIN_PRODUCTS &&
               tessera_gemm_bf16(m, n, k, A, trans_a ? 1 : (size_t)k, trans_a ? (size_t)m : 1,
                                 TESSERA_BF16_B_F32, B, trans_b ? 1 : (size_t)n, trans_b ? (size_t)k : 1,
                                 NULL, bias, bias_len, C, (size_t)n)) {
      /* Opt-in bf16 compute (setMatmulPrecision), as in tessera_linear; the activation follows. */
    } else {
      /* Transposes are BLAS flags on the stored layout: no copy. */
      tessera_pool_rest();
      cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                  trans_b ? CblasTrans : CblasNoTrans, m, n, k, 1.0f, A, max1(trans_a ? m : k),
                  B, max1(trans_b ? k : n), beta, C, n);
    }
    apply_activation(C, m, n, activation, alpha, prelu, prelu_len);
  }
}

void tessera_linear(const float *a, int lda, const float *w, const float *bias, float *out, int m,
                    int n, int k) {
  if (m <= 0 || n <= 0) return;
  /* Opt-in bf16 compute (setMatmulPrecision) for products large enough to repay packing. */
  if (m > 1 && tessera_matmul_precision() && (size_t)m * n * k >= TESSERA_BF16_MIN_PRODUCTS &&
      tessera_gemm_bf16(m, n, k, a, (size_t)lda, 1, TESSERA_BF16_B_F32, w, 1, (size_t)k, NULL, bias,
                        bias != NULL ? (size_t)n : 0, out, (size_t)n))
    return;
  if (m == 1) {
    tessera_gemv_f32(a, k, w, bias, bias != NULL ? (size_t)n : 0, out, n);
    return;
  }
  const float beta = start_output(out, m, n, k, bias, (size_t)n);
  if (k == 0) {
    /* An empty inner dimension: the product is zero (the bias, if any). */
  } else {
    tessera_pool_rest();
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, m, n, k, 1.0f, a, lda, w, k, beta, out, n);
  }
}

/* A norm over rows, split across the threads: an encoder's norms cover ~1M values per call. */
struct norm_job {
  const float *x, *residual, *gamma, *beta;
  float *y;
  int h;
  float eps;
};

static void rms_norm_rows(void *ctx, size_t begin, size_t end) {
  const struct norm_job *j = ctx;
  const size_t at = begin * j->h;
  tessera_rms_norm(j->x + at, j->residual != NULL ? j->residual + at : NULL, j->gamma, j->y + at, end - begin, j->h,
                   j->eps);
}

static void layer_norm_rows(void *ctx, size_t begin, size_t end) {
  const struct norm_job *j = ctx;
  const size_t at = begin * j->h;
  tessera_layer_norm(j->x + at, j->residual != NULL ? j->residual + at : NULL, j->gamma, j->beta, j->y + at,
                     end - begin, j->h, j->eps);
}

/* Rows per thread at least: below ~64k values a thread costs more than it saves. */
static size_t norm_grain(int h) { return (size_t)(65536 / h + 1); }

void tessera_rms_norm_split(const float *x, const float *residual, const float *weight, float *y, size_t rows,
                            int h, float eps) {
  struct norm_job job = {x, residual, weight, NULL, y, h, eps};
  tessera_parallel_for(rows, norm_grain(h), tessera_threads(), rms_norm_rows, &job);
}

void tessera_layer_norm_split(const float *x, const float *residual, const float *gamma, const float *beta,
                              float *y, size_t rows, int h, float eps) {
  struct norm_job job = {x, residual, gamma, beta, y, h, eps};
  tessera_parallel_for(rows, norm_grain(h), tessera_threads(), layer_norm_rows, &job);
}

const char *tessera_selective_scan(const float *u, const float *delta, const float *A, const float *Bm,
                                   const float *Cm, const float *Dvec, const float *h0, float *y,
                                   float *h_out, int batch, int len, int dim, int nstate, int threads) {
  const struct tessera_scan s = {batch, len, dim, nstate, u, delta, A, Bm, Cm, nstate, Dvec,
                                 NULL, 0, h0, y, h_out};
  return tessera_scan_run(&s, threads);
}

/* Row r of the norms' input: x's, or its sum with the residual's written into y. */
TESSERA_INLINE const float *norm_row(const float *x, const float *residual, float *y, size_t r, int h) {
  const float *xr = x + r * h;
  if (residual == NULL) return xr;
  const float *rr = residual + r * h;
  float *yr = y + r * h;
#pragma omp simd
  for (int i = 0; i < h; i++) yr[i] = xr[i] + rr[i];
  return yr;
}

TESSERA_CLONES void tessera_rms_norm(const float *x, const float *residual, const float *weight, float *y,
                                     size_t rows, int h, float eps) {
  for (size_t r = 0; r < rows; r++) {
    const float *xr = norm_row(x, residual, y, r, h);
    float *yr = y + r * h;
    /* Double accumulation keeps long rows as accurate as the composed float32 reference. */
    double ss = 0.0;
#pragma omp simd reduction(+ : ss)
    for (int i = 0; i < h; i++) ss += (double)xr[i] * xr[i];
    const float inv = (float)(1.0 / sqrt(ss / h + eps));
    if (weight != NULL) {
      for (int i = 0; i < h; i++) yr[i] = xr[i] * inv * weight[i];
    } else {
      for (int i = 0; i < h; i++) yr[i] = xr[i] * inv;
    }
  }
}

TESSERA_CLONES void tessera_layer_norm(const float *x, const float *residual, const float *gamma,
                                       const float *beta, float *y, size_t rows, int h, float eps) {
  for (size_t r = 0; r < rows; r++) {
    const float *xr = norm_row(x, residual, y, r, h);
    float *yr = y + r * h;
    double sum = 0.0;
#pragma omp simd reduction(+ : sum)
    for (int i = 0; i < h; i++) sum += xr[i];
    const double mean = sum / h;
    /* Two passes (mean, then squared deviations) avoid E[x^2] - E[x]^2 cancellation. */
    double var = 0.0;
#pragma omp simd reduction(+ : var)
    for (int i = 0; i < h; i++) {
      const double dv = xr[i] - mean;
      var += dv * dv;
    }
    const float inv = (float)(1.0 / sqrt(var / h + eps));
    const float mf = (float)mean;
    for (int i = 0; i < h; i++) {
      float v = (xr[i] - mf) * inv;
      if (gamma != NULL) v *= gamma[i];
      if (beta != NULL) v += beta[i];
      yr[i] = v;
    }
  }
}
