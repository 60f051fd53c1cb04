/*
 * Feed-forward kernels: the activations transformer MLPs use (GELU in both HF forms, SiLU, ReLU,
 * tanh), on their own, gated (act(gate) * up), and as the epilogue of a linear layer's GEMM, so an
 * MLP's up-projection and activation are one call and one output buffer instead of a product, a
 * bias add and five elementwise passes (the activation runs on the GEMM's output in the same call).
 */
#include <stdlib.h>

#include "ffn.h"
#include "kernels.h"
#include "parallel.h"
#include "quant.h"
#include "simd.h"

#define SQRT1_2 0.70710678118654752f
#define SQRT_2_OVER_PI 0.79788456080286536f

TESSERA_INLINE float ffn_act(int act, float x) {
  switch (act) {
    case TESSERA_FFN_GELU: return 0.5f * x * (1.0f + tessera_erff(x * SQRT1_2));
    case TESSERA_FFN_GELU_TANH:
      return 0.5f * x * (1.0f + tessera_tanhf(SQRT_2_OVER_PI * (x + 0.044715f * x * x * x)));
    case TESSERA_FFN_SILU: return tessera_siluf(x);
    case TESSERA_FFN_RELU: return x < 0.0f ? 0.0f : x;
    case TESSERA_FFN_TANH: return tessera_tanhf(x);
    default: return x;
  }
}

/* One loop per activation (the switch hoisted out), so each vectorises. out may alias x. */
#define ACT_LOOPS(BODY)                                                                 \
  switch (act) {                                                                        \
    case TESSERA_FFN_GELU: { const int a_ = TESSERA_FFN_GELU; BODY; break; }            \
    case TESSERA_FFN_GELU_TANH: { const int a_ = TESSERA_FFN_GELU_TANH; BODY; break; }  \
    case TESSERA_FFN_SILU: { const int a_ = TESSERA_FFN_SILU; BODY; break; }            \
    case TESSERA_FFN_RELU: { const int a_ = TESSERA_FFN_RELU; BODY; break; }            \
    case TESSERA_FFN_TANH: { const int a_ = TESSERA_FFN_TANH; BODY; break; }            \
    default: { const int a_ = TESSERA_FFN_IDENTITY; BODY; break; }                      \
  }

TESSERA_CLONES static void activation_range(int act, const float *x, const float *up, float *out,
                                             size_t n) {
  if (up == NULL) {
    ACT_LOOPS(for (size_t i = 0; i < n; i++) out[i] = ffn_act(a_, x[i]))
  } else {
    ACT_LOOPS(for (size_t i = 0; i < n; i++) out[i] = ffn_act(a_, x[i]) * up[i])
  }
}

struct activation_args {
  int act;
  const float *x, *up;
  float *out;
};

static void activation_part(void *ctx, size_t begin, size_t end) {
  const struct activation_args *a = ctx;
  activation_range(a->act, a->x + begin, a->up == NULL ? NULL : a->up + begin, a->out + begin, end - begin);
}

/* Below this many values per thread, a thread start (~20-50 us) costs more than it saves. */
#define ACTIVATION_GRAIN 65536

void tessera_ffn_activation(int act, const float *x, const float *up, float *out, size_t n) {
  struct activation_args args = {act, x, up, out};
  tessera_parallel_for(n, ACTIVATION_GRAIN, tessera_threads(), activation_part, &args);
}

void tessera_ffn_linear(const float *x, const float *w, const float *bias, float *out, int rows,
                        int in, int n, int act) {
  tessera_linear(x, in, w, bias, out, rows, n, in);
  if (act != TESSERA_FFN_IDENTITY) tessera_ffn_activation(act, out, NULL, out, (size_t)rows * n);
}

int tessera_ffn_gated_linear(const float *x, const float *wg, const float *wu, const float *bg,
                             const float *bu, float *out, int rows, int in, int n, int act) {
  float *up = malloc(sizeof(float) * (size_t)rows * n);
  if (up == NULL) return 0;
  /* Both products in one call: for a decode step's row, one split of both GEMVs over the pool. */
  const struct tessera_linear_map maps[2] = {{-1, wg, NULL, bg, out, n}, {-1, wu, NULL, bu, up, n}};
  tessera_linear_many(x, rows, in, maps, 2);
  tessera_ffn_activation(act, out, up, out, (size_t)rows * n);
  free(up);
  return 1;
}
