/*
 * Tessera native kernels: plain C over float32 buffers, no Node types.
 * The N-API glue (binding.c) validates sizes before calling these, so they trust their inputs.
 */
#ifndef TESSERA_KERNELS_H
#define TESSERA_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Activations of tfjs' fused ops, numbered as binding.c maps the tfjs names. */
enum tessera_activation {
  TESSERA_ACT_LINEAR = 0,
  TESSERA_ACT_RELU = 1,
  TESSERA_ACT_ELU = 2,
  TESSERA_ACT_RELU6 = 3,
  TESSERA_ACT_PRELU = 4,
  TESSERA_ACT_LEAKYRELU = 5,
  TESSERA_ACT_SIGMOID = 6,
};

/*
 * out[i] = act(op(A[a_idx[i]]) @ op(B[b_idx[i]]) + bias) for i < batch.
 * A matrices are m x k (stored k x m when trans_a), B matrices k x n (stored n x k when trans_b),
 * all row-major and packed; out is batch x m x n. bias and prelu hold n values (a row broadcast
 * over the m rows) or 1 value; either may be NULL.
 */
void tessera_matmul(const float *a, const float *b, float *out, const int32_t *a_idx,
                    const int32_t *b_idx, int batch, int m, int n, int k, int trans_a, int trans_b,
                    const float *bias, size_t bias_len, int activation, float alpha,
                    const float *prelu, size_t prelu_len);

/*
 * Mamba selective scan (no z gate), shapes [B,L,D] for u/delta/y, [D,N] for A, [B,L,N] for Bm/Cm,
 * [D] for Dvec, [B,D,N] for h0 (NULL: zeros) and h_out:
 *   h_t = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t;   y_t = C_t . h_t + D * u_t
 */
void tessera_selective_scan(const float *u, const float *delta, const float *A, const float *Bm,
                            const float *Cm, const float *Dvec, const float *h0, float *y,
                            float *h_out, int batch, int len, int dim, int nstate);

/* y = x / sqrt(mean(x^2) + eps) * weight over rows of width h (weight may be NULL: ones). */
void tessera_rms_norm(const float *x, const float *weight, float *y, size_t rows, int h,
                      float eps);

/* y = (x - mean) / sqrt(var + eps) * gamma + beta over rows of width h (NULL gamma/beta: 1/0). */
void tessera_layer_norm(const float *x, const float *gamma, const float *beta, float *y,
                        size_t rows, int h, float eps);

#endif
