/*
 * Feed-forward kernels (ffn.c): MLP activations alone, gated, and fused into a linear layer.
 * Like kernels.h, plain C over float32 buffers; binding.c validates sizes before calling.
 */
#ifndef TESSERA_FFN_H
#define TESSERA_FFN_H

#include <stddef.h>

/* Activations of the ffn kernels, numbered as FFN_ACTIVATIONS in src/native/addon.ts lists them. */
enum tessera_ffn_activation {
  TESSERA_FFN_IDENTITY = 0,
  TESSERA_FFN_GELU = 1,      /* 0.5 x (1 + erf(x / sqrt 2)), HF `gelu` */
  TESSERA_FFN_GELU_TANH = 2, /* 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))), HF `gelu_new` */
  TESSERA_FFN_SILU = 3,      /* x sigmoid(x) */
  TESSERA_FFN_RELU = 4,
  TESSERA_FFN_TANH = 5,
  TESSERA_FFN_COUNT = 6,
};

/* out[i] = act(x[i]), times up[i] when up is not NULL (a gated MLP). out may alias x. */
void tessera_ffn_activation(int act, const float *x, const float *up, float *out, size_t n);

/* out [rows, n] = act(x [rows, in] . w^T + bias), w stored [n, in] (PyTorch layout); bias may be NULL. */
void tessera_ffn_linear(const float *x, const float *w, const float *bias, float *out, int rows,
                        int in, int n, int act);

/*
 * out [rows, n] = act(x . wg^T + bg) * (x . wu^T + bu), both weights [n, in]; biases may be NULL.
 * Returns 0 when its scratch buffer cannot be allocated.
 */
int tessera_ffn_gated_linear(const float *x, const float *wg, const float *wu, const float *bg,
                             const float *bu, float *out, int rows, int in, int n, int act);

#endif
