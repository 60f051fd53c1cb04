/*
 * Tessera native kernels: plain C over float32 buffers, no Node types.
 * The N-API glue (binding.c) validates sizes before calling these, so they trust their inputs.
 */
#ifndef TESSERA_KERNELS_H
#define TESSERA_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Activations of tfjs' fused ops, numbered as ACTIVATIONS in src/native/addon.ts lists them. */
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
 * A linear layer with PyTorch's weight layout: out[m, n] = a[m, k] . w[n, k]^T (+ bias[n]), the
 * rows of a lda apart (so a may be a column slice of a wider matrix); gemv for one row.
 */
void tessera_linear(const float *a, int lda, const float *w, const float *bias, float *out, int m,
                    int n, int k);

/*
 * Mamba selective scan (no z gate), shapes [B,L,D] for u/delta/y, [D,N] for A, [B,L,N] for Bm/Cm,
 * [D] for Dvec, [B,D,N] for h0 (NULL: zeros) and h_out:
 *   h_t = exp(delta_t * A) * h_{t-1} + delta_t * B_t * u_t;   y_t = C_t . h_t + D * u_t
 * Channels are split across up to `threads` threads. Returns NULL, or what went wrong.
 */
const char *tessera_selective_scan(const float *u, const float *delta, const float *A, const float *Bm,
                                   const float *Cm, const float *Dvec, const float *h0, float *y,
                                   float *h_out, int batch, int len, int dim, int nstate, int threads);

/*
 * The scan behind both Mamba kernels (scan.c). u, delta and y are [B*L, dim] rows; B_t and C_t
 * are nstate values at Bm / Cm + row * bc_stride (so they may sit inside a wider x_proj row);
 * z (NULL: no gate) is read at z + row * z_stride, and then y_t = (C_t . h_t + D u_t) SiLU(z_t).
 * h0 [B, dim, nstate] may be NULL (zeros). Returns NULL, or what is wrong.
 */
struct tessera_scan {
  int batch, len, dim, nstate;
  const float *u, *delta, *A, *Bm, *Cm;
  int bc_stride;
  const float *D, *z;
  int z_stride;
  const float *h0;
  float *y, *h_out;
};
const char *tessera_scan_run(const struct tessera_scan *s, int threads);
/*
 * Channels [first, last) of a one-token scan (len 1, batch 1) on the calling thread: a part of a
 * pool task, for a state size tessera_scan_state_error accepts.
 */
void tessera_scan_step_part(const struct tessera_scan *s, size_t first, size_t last);
/* What is wrong with a state size for the scan (it takes up to 256), or NULL. */
const char *tessera_scan_state_error(int nstate);
/* Tests and benchmarks: run the scan's generic loops where its AVX-512 ones would run (absent != 0), or not. */
void tessera_scan_avx512_force_absent(int absent);

/*
 * The norms over rows of width h of s = x + residual (residual NULL: s = x), y may be x. With a
 * residual, each row's sum is written to y and normalised there while it is in cache: one pass
 * over memory for a post-norm block's norm(x + f(x)), the same values as adding first.
 */
/* y = s / sqrt(mean(s^2) + eps) * weight (weight may be NULL: ones). */
void tessera_rms_norm(const float *x, const float *residual, const float *weight, float *y, size_t rows,
                      int h, float eps);

/* y = (s - mean) / sqrt(var + eps) * gamma + beta (NULL gamma/beta: 1/0). */
void tessera_layer_norm(const float *x, const float *residual, const float *gamma, const float *beta,
                        float *y, size_t rows, int h, float eps);

/* The two norms with their rows split over the pool (a thread from ~64K values). */
void tessera_rms_norm_split(const float *x, const float *residual, const float *weight, float *y, size_t rows,
                            int h, float eps);
void tessera_layer_norm_split(const float *x, const float *residual, const float *gamma, const float *beta,
                              float *y, size_t rows, int h, float eps);

/* Binary operators of tessera_binary; numbered as src/native/elementwise.ts names them. */
enum tessera_binary_op {
  TESSERA_ADD = 0,
  TESSERA_SUB = 1,
  TESSERA_MUL = 2,
  TESSERA_DIV = 3,
  TESSERA_SQUARED_DIFFERENCE = 4,
  TESSERA_BINARY_COUNT = 5,
};

/* Unary operators of tessera_unary; numbered as src/native/elementwise.ts names them. */
enum tessera_unary_op {
  TESSERA_EXP = 0,
  TESSERA_LOG = 1,
  TESSERA_SIGMOID = 2,
  TESSERA_TANH = 3,
  TESSERA_ERF = 4,
  TESSERA_SQRT = 5,
  TESSERA_RSQRT = 6,
  TESSERA_SQUARE = 7,
  TESSERA_NEG = 8,
  TESSERA_SOFTPLUS = 9,
  TESSERA_UNARY_COUNT = 10,
};

/*
 * out = a (op) b over `shape` (rank <= 8, out contiguous); a_strides / b_strides give each
 * operand's element stride per output dimension, 0 where it broadcasts.
 */
void tessera_binary(int op, const float *a, const int32_t *a_strides, const float *b,
                    const int32_t *b_strides, float *out, const int32_t *shape, int rank);

/* out (contiguous, `shape`) = x read with `x_strides`: transpose and other strided views. */
void tessera_strided_copy(const float *x, const int32_t *x_strides, float *out,
                          const int32_t *shape, int rank);

/* out[i] = op(x[i]). */
void tessera_unary(int op, const float *x, float *out, size_t n);

/* Numerically stable softmax over rows of width cols. */
void tessera_softmax(const float *x, float *out, size_t rows, int cols);

/* Reductions of tessera_reduce. */
enum tessera_reduce_op {
  TESSERA_REDUCE_SUM = 0,
  TESSERA_REDUCE_MEAN = 1,
  TESSERA_REDUCE_MAX = 2,
  TESSERA_REDUCE_MIN = 3,
  TESSERA_REDUCE_COUNT = 4,
};

/* out[r] = op over row r (width cols >= 1) of x. */
void tessera_reduce(int op, const float *x, float *out, size_t rows, int cols);

/*
 * Greedy decoding's pick per row r of logits x (width cols >= 1): out[2r] = the index of the
 * largest value (the lowest among equal ones), out[2r + 1] = -1 when a token can be chosen, else
 * the index of the first NaN or +Infinity, or cols when every value is -Infinity (out[2r] is then 0).
 */
void tessera_greedy_pick(const float *x, int32_t *out, size_t rows, int cols);

/* One Mamba mixer's weights and sizes (PyTorch layouts; optional pointers may be NULL). */
struct tessera_mamba {
  int batch, len, hidden, inner, nstate, rank, kernel;
  const float *in_weight, *in_bias;     /* [2E, H], [2E] */
  const float *conv_weight, *conv_bias; /* [E, K], [E] */
  const float *x_weight;                /* [R + 2N, E] */
  const float *dt_weight, *dt_bias;     /* [E, R], [E] */
  const float *A, *D;                   /* [E, N] = -exp(A_log), [E] */
  const float *out_weight, *out_bias;   /* [H, E], [H] */
  const float *dt_norm, *b_norm, *c_norm; /* Jamba's inner RMSNorm weights [R], [N], [N], or NULL */
  float norm_eps;
  /* The block around the mixer, when fused in: hidden -> hidden + mixer(RMSNorm(hidden)). */
  const float *pre_norm; /* [H], or NULL: hidden goes to in_proj as it is */
  float pre_norm_eps;
  int add_residual; /* add hidden to the output */
  /* Projections held packed (quant.h: kind, values, int8's scales), read instead of in_weight,
   * out_weight, x_weight, dt_weight where not NULL. */
  const void *in_packed, *out_packed, *x_packed, *dt_packed;
  const float *in_scales, *out_scales, *x_scales, *dt_scales;
  int in_kind, out_kind, x_kind, dt_kind;
};

/*
 * The Mamba mixer over hidden [B, L, H] into out [B, L, H] (with pre_norm and add_residual, the
 * whole pre-norm residual block around it), continuing from the conv window
 * conv_in [B, E, K] and SSM state ssm_in [B, E, N] (NULL: zeros) and writing the new ones.
 * keep [B, L] (NULL: all 1) marks real tokens; padding leaves the state untouched.
 * Returns NULL, or what went wrong.
 */
const char *tessera_mamba_mixer(const struct tessera_mamba *m, const float *hidden,
                                const float *keep, const float *conv_in, const float *ssm_in,
                                float *out, float *conv_out, float *ssm_out, int threads);
/* Tests and benchmarks: run a one-token step (B = L = 1, no keep) on the general path (absent != 0), or not. */
void tessera_mamba_fused_step_force_absent(int absent);

/*
 * A copy of `bytes` at `data` in fresh memory aligned to, and advised for, 2 MiB pages (memory.c);
 * NULL when it cannot be allocated. Free with tessera_huge_free.
 */
void *tessera_huge_copy(const void *data, size_t bytes);
void tessera_huge_free(void *data);

/*
 * Hand memory the allocator holds free back to the system (glibc's malloc_trim): a model loaded
 * as float32 and then packed leaves hundreds of MB freed but still resident. 1 if any was released.
 */
int tessera_release_free_memory(void);

/*
 * A 64-byte aligned scratch buffer of at least `bytes`, kept between calls: up to 64 callers at a
 * time get one each (their slot in *slot), others a fresh allocation. NULL when out of memory.
 * Give it back with tessera_release_buffer(data, *slot).
 */
void *tessera_claim_buffer(size_t bytes, int *slot);
void tessera_release_buffer(void *data, int slot);

#endif
