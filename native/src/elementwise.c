/*
 * Elementwise kernels the tfjs cpu backend runs slowly: its broadcasting binary ops and transpose
 * compute a multi-dimensional index per element in JS, and its softmax chains five such ops.
 * Here the shapes arrive already collapsed (see src/native/strided.ts): the innermost dimension
 * is a tight loop the compiler vectorises, the outer ones advance a small odometer.
 */
#include <math.h>
#include <string.h>

#include "kernels.h"
#include "simd.h"

#define MAX_RANK 8

TESSERA_INLINE float binary_op(int op, float a, float b) {
  switch (op) {
    case TESSERA_ADD: return a + b;
    case TESSERA_SUB: return a - b;
    case TESSERA_MUL: return a * b;
    case TESSERA_DIV: return a / b;
    case TESSERA_SQUARED_DIFFERENCE: { const float d = a - b; return d * d; }
    default: return NAN;
  }
}

/* One row: specialised on the operator and on unit/zero strides so each loop vectorises. */
#define ROW_LOOPS(EXPR)                                                              \
  if (sa == 1 && sb == 1) {                                                          \
    for (int i = 0; i < n; i++) { const float x = a[i], y = b[i]; out[i] = (EXPR); } \
  } else if (sa == 1 && sb == 0) {                                                   \
    const float y = b[0];                                                            \
    for (int i = 0; i < n; i++) { const float x = a[i]; out[i] = (EXPR); }           \
  } else if (sa == 0 && sb == 1) {                                                   \
    const float x = a[0];                                                            \
    for (int i = 0; i < n; i++) { const float y = b[i]; out[i] = (EXPR); }           \
  } else {                                                                           \
    for (int i = 0; i < n; i++) {                                                    \
      const float x = a[(size_t)i * sa], y = b[(size_t)i * sb];                      \
      out[i] = (EXPR);                                                               \
    }                                                                                \
  }

TESSERA_CLONES static void binary_row(int op, const float *a, int sa, const float *b, int sb, float *out, int n) {
  switch (op) {
    case TESSERA_ADD: ROW_LOOPS(x + y); break;
    case TESSERA_SUB: ROW_LOOPS(x - y); break;
    case TESSERA_MUL: ROW_LOOPS(x * y); break;
    case TESSERA_DIV: ROW_LOOPS(x / y); break;
    case TESSERA_SQUARED_DIFFERENCE: ROW_LOOPS((x - y) * (x - y)); break;
    default:
      for (int i = 0; i < n; i++) out[i] = binary_op(op, a[(size_t)i * sa], b[(size_t)i * sb]);
  }
}

void tessera_binary(int op, const float *a, const int32_t *a_strides, const float *b,
                    const int32_t *b_strides, float *out, const int32_t *shape, int rank) {
  if (rank == 0) {
    out[0] = binary_op(op, a[0], b[0]);
    return;
  }
  const int inner = shape[rank - 1];
  size_t outer = 1;
  for (int d = 0; d < rank - 1; d++) outer *= (size_t)shape[d];
  int idx[MAX_RANK] = {0};
  size_t a_off = 0, b_off = 0;
  for (size_t o = 0; o < outer; o++) {
    binary_row(op, a + a_off, a_strides[rank - 1], b + b_off, b_strides[rank - 1],
               out + o * inner, inner);
    /* Odometer over the outer dimensions, keeping both operands' offsets in step. */
    for (int d = rank - 2; d >= 0; d--) {
      a_off += a_strides[d];
      b_off += b_strides[d];
      if (++idx[d] < shape[d]) break;
      a_off -= (size_t)a_strides[d] * shape[d];
      b_off -= (size_t)b_strides[d] * shape[d];
      idx[d] = 0;
    }
  }
}

void tessera_strided_copy(const float *x, const int32_t *x_strides, float *out,
                          const int32_t *shape, int rank) {
  if (rank == 0) {
    out[0] = x[0];
    return;
  }
  const int inner = shape[rank - 1];
  const int s = x_strides[rank - 1];
  size_t outer = 1;
  for (int d = 0; d < rank - 1; d++) outer *= (size_t)shape[d];
  int idx[MAX_RANK] = {0};
  size_t off = 0;
  for (size_t o = 0; o < outer; o++) {
    float *row = out + o * inner;
    if (s == 1) {
      memcpy(row, x + off, sizeof(float) * (size_t)inner);
    } else {
      for (int i = 0; i < inner; i++) row[i] = x[off + (size_t)i * s];
    }
    for (int d = rank - 2; d >= 0; d--) {
      off += x_strides[d];
      if (++idx[d] < shape[d]) break;
      off -= (size_t)x_strides[d] * shape[d];
      idx[d] = 0;
    }
  }
}

/* tfjs-backend-cpu's Softplus thresholds, so results agree where exp over/underflows. */
TESSERA_INLINE float softplus(float x) {
  const float threshold = -13.942385152878742f; /* log(2^-23) + 2 */
  if (x < threshold) return expf(x);
  if (x > -threshold) return x;
  return log1pf(expf(x));
}

TESSERA_CLONES void tessera_unary(int op, const float *x, float *out, size_t n) {
  switch (op) {
    case TESSERA_EXP: for (size_t i = 0; i < n; i++) out[i] = tessera_expf(x[i]); break;
    case TESSERA_LOG: for (size_t i = 0; i < n; i++) out[i] = logf(x[i]); break;
    case TESSERA_SIGMOID: for (size_t i = 0; i < n; i++) out[i] = 1.0f / (1.0f + tessera_expf(-x[i])); break;
    case TESSERA_TANH: for (size_t i = 0; i < n; i++) out[i] = tessera_tanhf(x[i]); break;
    case TESSERA_ERF: for (size_t i = 0; i < n; i++) out[i] = tessera_erff(x[i]); break;
    case TESSERA_SQRT: for (size_t i = 0; i < n; i++) out[i] = sqrtf(x[i]); break;
    case TESSERA_RSQRT: for (size_t i = 0; i < n; i++) out[i] = 1.0f / sqrtf(x[i]); break;
    case TESSERA_SQUARE: for (size_t i = 0; i < n; i++) out[i] = x[i] * x[i]; break;
    case TESSERA_NEG: for (size_t i = 0; i < n; i++) out[i] = -x[i]; break;
    case TESSERA_SOFTPLUS: for (size_t i = 0; i < n; i++) out[i] = softplus(x[i]); break;
    default: for (size_t i = 0; i < n; i++) out[i] = NAN;
  }
}

TESSERA_CLONES void tessera_softmax(const float *x, float *out, size_t rows, int cols) {
  if (out != x) memcpy(out, x, sizeof(float) * rows * (size_t)cols);
  for (size_t r = 0; r < rows; r++) tessera_softmax_inplace(out + r * cols, cols);
}

TESSERA_CLONES void tessera_reduce(int op, const float *x, float *out, size_t rows, int cols) {
  for (size_t r = 0; r < rows; r++) {
    const float *xr = x + r * cols;
    if (op == TESSERA_REDUCE_MAX || op == TESSERA_REDUCE_MIN) {
      /* NaN propagates, as in tfjs (a comparison with NaN keeps the NaN). */
      float m = xr[0];
      int nan = 0;
      for (int i = 0; i < cols; i++) nan |= xr[i] != xr[i];
      if (op == TESSERA_REDUCE_MAX) {
#pragma omp simd reduction(max : m)
        for (int i = 1; i < cols; i++) m = xr[i] > m ? xr[i] : m;
      } else {
#pragma omp simd reduction(min : m)
        for (int i = 1; i < cols; i++) m = xr[i] < m ? xr[i] : m;
      }
      out[r] = nan ? NAN : m;
    } else {
      /* Double accumulation, like the cpu backend's JS numbers. */
      double s = 0.0;
#pragma omp simd reduction(+ : s)
      for (int i = 0; i < cols; i++) s += xr[i];
      out[r] = (float)(op == TESSERA_REDUCE_MEAN ? s / cols : s);
    }
  }
}

/* The first index of a NaN or +Infinity in x[0..n), or -1. */
static int first_unusable(const float *x, int n) {
  for (int i = 0; i < n; i++)
    if (x[i] != x[i] || x[i] == INFINITY) return i;
  return -1;
}

TESSERA_CLONES void tessera_greedy_pick(const float *x, int32_t *out, size_t rows, int cols) {
  for (size_t r = 0; r < rows; r++) {
    const float *xr = x + r * cols;
    /* One vectorised pass for the max and whether anything is NaN or +Infinity; the rare bad row
     * and the index of the max take a second, short-circuiting one. */
    float m = -INFINITY;
    int bad = 0;
#pragma omp simd reduction(max : m) reduction(| : bad)
    for (int i = 0; i < cols; i++) {
      const float v = xr[i];
      bad |= (v != v) | (v == INFINITY);
      m = v > m ? v : m;
    }
    int32_t token = 0, check = -1;
    if (bad) {
      check = first_unusable(xr, cols);
    } else if (m == -INFINITY) {
      check = cols; /* every logit -Infinity: nothing can be chosen */
    } else {
      while (xr[token] != m) token++; /* the lowest id among equal maxima, as torch.argmax */
    }
    out[2 * r] = token;
    out[2 * r + 1] = check;
  }
}
