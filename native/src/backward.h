/*
 * Backward kernels (backward.c) for the fused forward kernels that training runs: activations
 * (alone and gated), RMSNorm and LayerNorm (with the residual sum they fuse), and rotary
 * embeddings. Plain C over float32 buffers like kernels.h; binding.c validates sizes.
 */
#ifndef TESSERA_BACKWARD_H
#define TESSERA_BACKWARD_H

#include <stddef.h>
#include <stdint.h>

/*
 * Gradients of out = act(x) (* up): dx = dy * act'(x) (* up), and, when dup is not NULL,
 * dup = dy * act(x). `act` numbers as in ffn.h.
 */
void tessera_activation_backward(int act, const float *x, const float *up, const float *dy, float *dx,
                                 float *dup, size_t n);

/*
 * Gradients of y = rmsnorm(s) * weight, s = x + residual (residual and weight may be NULL), rows
 * of h: ds (the gradient of x and of residual alike) and, when dweight is not NULL, dweight [h].
 */
void tessera_rms_norm_backward(const float *x, const float *residual, const float *weight, const float *dy,
                               float *ds, float *dweight, size_t rows, int h, float eps);

/* As tessera_rms_norm_backward for y = layernorm(s) * gamma + beta; dgamma and dbeta may be NULL. */
void tessera_layer_norm_backward(const float *x, const float *residual, const float *gamma, const float *dy,
                                 float *ds, float *dgamma, float *dbeta, size_t rows, int h, float eps);

/*
 * Rotary embedding of x in the head-major layout [batch, heads, len, headDim], or with
 * `token_major` in the projections' [batch, len, heads * headDim], with tables cos, sin
 * [batch or 1, len, rotDim] (`table_batch` 1 or batch), HF's rotate-half pairs (i, i + rotDim/2);
 * values past rotDim pass through. `transpose` applies the transposed rotation instead: the
 * gradient of the forward one (dx = Rᵀ dy), exact for any tables.
 */
void tessera_rotary_heads(const float *x, const float *cos_t, const float *sin_t, float *y, int batch,
                          int heads, int len, int head_dim, int rot_dim, int table_batch, int transpose,
                          int token_major);

/*
 * Mamba's causal depthwise conv with no cached window (the inputs before position 0 are zeros):
 * y [B, L, D] = bias + Σ_k w[d, k] x[b, t + k + 1 - K, d], w [D, K]; bias may be NULL.
 */
void tessera_causal_conv(const float *x, const float *w, const float *bias, float *y, int batch, int len,
                         int dim, int kernel);

/* Its gradients: dx [B, L, D], dw [D, K] and, when not NULL, dbias [D]. */
void tessera_causal_conv_backward(const float *x, const float *w, const float *dy, float *dx, float *dw,
                                  float *dbias, int batch, int len, int dim, int kernel);

/*
 * The gradient of a row gather (an embedding lookup): out [segments, inner] = Σ over input rows i
 * with ids[i] = s of x[i, :]; ids outside [0, segments) are dropped, as in TF's UnsortedSegmentSum.
 */
void tessera_segment_sum(const float *x, const int32_t *ids, size_t count, size_t inner, float *out, size_t segments);

#endif
