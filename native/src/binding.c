/*
 * N-API glue for tessera_native.node: checks argument types and buffer sizes, then calls the
 * plain C kernels in kernels.c on the typed arrays' memory (no copies). Everything is synchronous:
 * tfjs kernels are synchronous, and OpenBLAS parallelises the GEMMs itself.
 */
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>

#include "attention.h"
#include "attention-f32.h"
#include "backward.h"
#include "ffn.h"
#include "kernels.h"
#include "parallel.h"
#include "scan-backward.h"

/* The training kernels' glue (train-binding.c) adds its functions to the exports. */
napi_status tessera_register_train(napi_env env, napi_value exports);
/* The packed-weight (bf16/f16/int8) linear kernels' glue (quant-binding.c). */
napi_status tessera_register_quant(napi_env env, napi_value exports);
napi_status tessera_register_gemm(napi_env env, napi_value exports);

/* OpenBLAS extensions. Declared here rather than relying on which cblas.h the alternatives
 * system picked (netlib's lacks them); the link against -lopenblas provides them. */
extern void openblas_set_num_threads(int num_threads);
extern int openblas_get_num_threads(void);
extern char *openblas_get_corename(void);
extern char *openblas_get_config(void);

#include "napi-args.h"

/* matmul(a, b, out, aIdx, bIdx, m, n, k, transA, transB, bias|null, activation, alpha, prelu|null) */
static napi_value Matmul(napi_env env, napi_callback_info info) {
  ARGS(14);
  MATMUL_OPERANDS();
  INT(11, "activation", activation);
  double alpha = 0;
  CHECK(napi_get_value_double(env, argv[12], &alpha));
  F32(13, "prelu", 1, prelu, prelu_len);
  if (activation > TESSERA_ACT_SIGMOID) FAIL("tessera_native: unknown activation %d", activation);
  if (activation == TESSERA_ACT_PRELU &&
      (prelu == NULL || (prelu_len != 1 && prelu_len != (size_t)n)))
    FAIL("tessera_native: prelu weights must hold 1 or n = %d values", n);

  tessera_matmul(a, b, out, a_idx, b_idx, (int)batch, m, n, k, trans_a, trans_b, bias, bias_len,
                 activation, (float)alpha, prelu, prelu_len);
  return NULL;
}

/* selectiveScan(u, delta, A, Bm, Cm, Dvec, h0|null, y, hOut, batch, len, dim, nstate) */
static napi_value SelectiveScan(napi_env env, napi_callback_info info) {
  ARGS(13);
  F32(0, "u", 0, u, u_len);
  F32(1, "delta", 0, delta, delta_len);
  F32(2, "A", 0, A, A_len);
  F32(3, "Bm", 0, Bm, Bm_len);
  F32(4, "Cm", 0, Cm, Cm_len);
  F32(5, "Dvec", 0, Dvec, D_len);
  F32(6, "h0", 1, h0, h0_len);
  F32(7, "y", 0, y, y_len);
  F32(8, "hOut", 0, h_out, h_len);
  INT(9, "batch", batch);
  INT(10, "len", len);
  INT(11, "dim", dim);
  INT(12, "nstate", nstate);
  const size_t bld = (size_t)batch * len * dim, bln = (size_t)batch * len * nstate,
               bdn = (size_t)batch * dim * nstate;
  if (u_len != bld || delta_len != bld || y_len != bld)
    FAIL("tessera_native: u, delta and y must hold batch*len*dim = %zu values", bld);
  if (A_len != (size_t)dim * nstate) FAIL("tessera_native: A must hold dim*nstate values");
  if (Bm_len != bln || Cm_len != bln)
    FAIL("tessera_native: Bm and Cm must hold batch*len*nstate = %zu values", bln);
  if (D_len != (size_t)dim) FAIL("tessera_native: Dvec must hold dim values");
  if ((h0 != NULL && h0_len != bdn) || h_len != bdn)
    FAIL("tessera_native: h0 and hOut must hold batch*dim*nstate = %zu values", bdn);
  /* As many threads as BLAS is allowed (setNumThreads / TESSERA_NUM_THREADS). */
  const char *error = tessera_selective_scan(u, delta, A, Bm, Cm, Dvec, h0, y, h_out, batch, len,
                                             dim, nstate, openblas_get_num_threads());
  if (error != NULL) FAIL("tessera_native: selective scan: %s", error);
  return NULL;
}

/* Expected length of each mambaMixer operand; 0 marks an optional one that may be null. */
struct operand {
  const char *name;
  size_t len;
  int optional;
};

/*
 * mambaMixer(dims Int32Array [batch, len, hidden, inner, nstate, rank, kernel], operands[19],
 * outputs[3], eps, preNormEps, addResidual): operands are hidden, keep, convIn, ssmIn, inWeight,
 * inBias, convWeight, convBias, xWeight, dtWeight, dtBias, A, D, outWeight, outBias, dtNorm,
 * bNorm, cNorm, preNorm (Float32Array, or null where optional); outputs are out, convOut, ssmOut.
 */
static napi_value MambaMixer(napi_env env, napi_callback_info info) {
  ARGS(6);
  int32_t *dims = NULL;
  size_t ndims = 0;
  if (!typed_array(env, argv[0], napi_int32_array, 0, (void **)&dims, &ndims) || ndims != 7)
    FAIL("tessera_native: mambaMixer dims must be an Int32Array of 7");
  for (int i = 0; i < 7; i++) {
    if (dims[i] < 1) FAIL("tessera_native: mambaMixer dims[%d] = %d must be positive", i, dims[i]);
  }
  const size_t B = dims[0], L = dims[1], H = dims[2], E = dims[3], N = dims[4], R = dims[5], K = dims[6];
  const struct operand want[22] = {
      {"hidden", B * L * H, 0}, {"keep", B * L, 1}, {"convIn", B * E * K, 1}, {"ssmIn", B * E * N, 1},
      {"inWeight", 2 * E * H, 0}, {"inBias", 2 * E, 1}, {"convWeight", E * K, 0}, {"convBias", E, 1},
      {"xWeight", (R + 2 * N) * E, 0}, {"dtWeight", E * R, 0}, {"dtBias", E, 0}, {"A", E * N, 0},
      {"D", E, 0}, {"outWeight", H * E, 0}, {"outBias", H, 1}, {"dtNorm", R, 1}, {"bNorm", N, 1},
      {"cNorm", N, 1}, {"preNorm", H, 1}, {"out", B * L * H, 0}, {"convOut", B * E * K, 0},
      {"ssmOut", B * E * N, 0}};
  float *ptr[22];
  for (int i = 0; i < 22; i++) {
    napi_value v;
    CHECK(napi_get_element(env, argv[i < 19 ? 1 : 2], i < 19 ? i : i - 19, &v));
    size_t len = 0;
    if (!typed_array(env, v, napi_float32_array, want[i].optional, (void **)&ptr[i], &len))
      FAIL("tessera_native: mambaMixer %s must be a Float32Array%s", want[i].name,
           want[i].optional ? " or null" : "");
    if (ptr[i] != NULL && len != want[i].len)
      FAIL("tessera_native: mambaMixer %s holds %zu values, expected %zu", want[i].name, len, want[i].len);
  }
  if ((ptr[15] == NULL) != (ptr[16] == NULL) || (ptr[15] == NULL) != (ptr[17] == NULL))
    FAIL("tessera_native: mambaMixer takes all three inner norms (dtNorm, bNorm, cNorm) or none");
  double eps = 0, pre_norm_eps = 0;
  CHECK(napi_get_value_double(env, argv[3], &eps));
  CHECK(napi_get_value_double(env, argv[4], &pre_norm_eps));
  bool add_residual = false;
  CHECK(napi_get_value_bool(env, argv[5], &add_residual));
  const struct tessera_mamba m = {dims[0], dims[1], dims[2], dims[3], dims[4], dims[5], dims[6],
                                  ptr[4], ptr[5], ptr[6], ptr[7], ptr[8], ptr[9], ptr[10], ptr[11],
                                  ptr[12], ptr[13], ptr[14], ptr[15], ptr[16], ptr[17], (float)eps,
                                  ptr[18], (float)pre_norm_eps, add_residual, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, 0, 0};
  const char *error = tessera_mamba_mixer(&m, ptr[0], ptr[1], ptr[2], ptr[3], ptr[19], ptr[20],
                                          ptr[21], openblas_get_num_threads());
  if (error != NULL) FAIL("tessera_native: mambaMixer: %s", error);
  return NULL;
}

static void free_huge(napi_env env, void *data, void *hint) { tessera_huge_free(data); }

/* hugePageCopy(array: Float32Array) -> a Float32Array copy on 2 MiB pages, or null */
static napi_value HugePageCopy(napi_env env, napi_callback_info info) {
  ARGS(1);
  F32(0, "array", 0, data, len);
  napi_value result;
  void *copy = len == 0 ? NULL : tessera_huge_copy(data, len * sizeof(float));
  if (copy == NULL) {
    CHECK(napi_get_null(env, &result));
    return result;
  }
  napi_value buffer;
  if (napi_create_external_arraybuffer(env, copy, len * sizeof(float), free_huge, NULL, &buffer) != napi_ok) {
    tessera_huge_free(copy); /* e.g. a runtime that forbids external buffers */
    CHECK(napi_get_null(env, &result));
    return result;
  }
  CHECK(napi_create_typedarray(env, napi_float32_array, len, buffer, 0, &result));
  return result;
}

/* releaseFreeMemory() -> whether the allocator gave memory back to the system */
static napi_value ReleaseFreeMemory(napi_env env, napi_callback_info info) {
  napi_value result;
  CHECK(napi_get_boolean(env, tessera_release_free_memory() != 0, &result));
  return result;
}

/* rmsNorm(x, residual|null, weight|null, y, h, eps) */
static napi_value RmsNorm(napi_env env, napi_callback_info info) {
  ARGS(6);
  F32(0, "x", 0, x, x_len);
  F32(1, "residual", 1, res, res_len);
  F32(2, "weight", 1, w, w_len);
  F32(3, "y", 0, y, y_len);
  INT(4, "h", h);
  double eps = 0;
  CHECK(napi_get_value_double(env, argv[5], &eps));
  if (h == 0 || x_len % h != 0 || y_len != x_len)
    FAIL("tessera_native: x and y must hold whole rows of h = %d values", h);
  if (res != NULL && res_len != x_len) FAIL("tessera_native: residual must hold as many values as x");
  if (w != NULL && w_len != (size_t)h) FAIL("tessera_native: weight must hold h = %d values", h);
  tessera_rms_norm_split(x, res, w, y, x_len / h, h, (float)eps);
  return NULL;
}

/* layerNorm(x, residual|null, gamma|null, beta|null, y, h, eps) */
static napi_value LayerNorm(napi_env env, napi_callback_info info) {
  ARGS(7);
  F32(0, "x", 0, x, x_len);
  F32(1, "residual", 1, res, res_len);
  F32(2, "gamma", 1, g, g_len);
  F32(3, "beta", 1, bt, bt_len);
  F32(4, "y", 0, y, y_len);
  INT(5, "h", h);
  double eps = 0;
  CHECK(napi_get_value_double(env, argv[6], &eps));
  if (h == 0 || x_len % h != 0 || y_len != x_len)
    FAIL("tessera_native: x and y must hold whole rows of h = %d values", h);
  if (res != NULL && res_len != x_len) FAIL("tessera_native: residual must hold as many values as x");
  if ((g != NULL && g_len != (size_t)h) || (bt != NULL && bt_len != (size_t)h))
    FAIL("tessera_native: gamma and beta must hold h = %d values", h);
  tessera_layer_norm_split(x, res, g, bt, y, x_len / h, h, (float)eps);
  return NULL;
}

/* Check a strided view: ranks agree, out holds prod(shape), and the furthest element read from
 * each operand lies inside it. Returns the element count, or -1 after throwing. */
static long long check_strided(napi_env env, const int32_t *shape, size_t rank, size_t out_len,
                               const int32_t *const *strides, const size_t *lens,
                               const size_t *stride_counts, int operands) {
  if (rank > 8) {
    napi_throw_type_error(env, NULL, "tessera_native: rank above 8 (collapse dimensions first)");
    return -1;
  }
  size_t total = 1;
  for (size_t d = 0; d < rank; d++) total *= (size_t)(shape[d] < 0 ? 0 : shape[d]);
  if (out_len != total) {
    napi_throw_type_error(env, NULL, "tessera_native: out must hold prod(shape) values");
    return -1;
  }
  for (int o = 0; o < operands; o++) {
    if (stride_counts[o] != rank) {
      napi_throw_type_error(env, NULL, "tessera_native: strides and shape must have equal rank");
      return -1;
    }
    size_t last = 0;
    for (size_t d = 0; d < rank; d++) {
      if (strides[o][d] < 0) {
        napi_throw_type_error(env, NULL, "tessera_native: strides must be non-negative");
        return -1;
      }
      if (shape[d] > 0) last += (size_t)(shape[d] - 1) * (size_t)strides[o][d];
    }
    if (total > 0 && last >= lens[o]) {
      napi_throw_type_error(env, NULL, "tessera_native: strides reach past the end of an input");
      return -1;
    }
  }
  return (long long)total;
}

/* binary(op, a, aStrides, b, bStrides, out, shape) */
static napi_value Binary(napi_env env, napi_callback_info info) {
  ARGS(7);
  INT(0, "op", op);
  F32(1, "a", 0, a, a_len);
  I32(2, "aStrides", a_str, a_rank);
  F32(3, "b", 0, b, b_len);
  I32(4, "bStrides", b_str, b_rank);
  F32(5, "out", 0, out, out_len);
  I32(6, "shape", shape, rank);
  if (op >= TESSERA_BINARY_COUNT) FAIL("tessera_native: unknown binary op %d", op);
  const int32_t *strides[2] = {a_str, b_str};
  const size_t lens[2] = {a_len, b_len}, ranks[2] = {a_rank, b_rank};
  const long long total = check_strided(env, shape, rank, out_len, strides, lens, ranks, 2);
  if (total < 0) return NULL;
  if (total > 0) tessera_binary(op, a, a_str, b, b_str, out, shape, (int)rank);
  return NULL;
}

/* stridedCopy(x, xStrides, out, shape) */
static napi_value StridedCopy(napi_env env, napi_callback_info info) {
  ARGS(4);
  F32(0, "x", 0, x, x_len);
  I32(1, "xStrides", x_str, x_rank);
  F32(2, "out", 0, out, out_len);
  I32(3, "shape", shape, rank);
  const int32_t *strides[1] = {x_str};
  const size_t lens[1] = {x_len}, ranks[1] = {x_rank};
  const long long total = check_strided(env, shape, rank, out_len, strides, lens, ranks, 1);
  if (total < 0) return NULL;
  if (total > 0) tessera_strided_copy(x, x_str, out, shape, (int)rank);
  return NULL;
}

/* unary(op, x, out) */
static napi_value Unary(napi_env env, napi_callback_info info) {
  ARGS(3);
  INT(0, "op", op);
  F32(1, "x", 0, x, x_len);
  F32(2, "out", 0, out, out_len);
  if (op >= TESSERA_UNARY_COUNT) FAIL("tessera_native: unknown unary op %d", op);
  if (out_len != x_len) FAIL("tessera_native: out must hold as many values as x");
  tessera_unary(op, x, out, x_len);
  return NULL;
}

/* softmax(x, out, cols) */
static napi_value Softmax(napi_env env, napi_callback_info info) {
  ARGS(3);
  F32(0, "x", 0, x, x_len);
  F32(1, "out", 0, out, out_len);
  INT(2, "cols", cols);
  if (cols == 0 || x_len % cols != 0 || out_len != x_len)
    FAIL("tessera_native: x and out must hold whole rows of cols = %d values", cols);
  tessera_softmax(x, out, x_len / cols, cols);
  return NULL;
}

/* reduce(op, x, out, cols): one value per row of width cols. */
static napi_value Reduce(napi_env env, napi_callback_info info) {
  ARGS(4);
  INT(0, "op", op);
  F32(1, "x", 0, x, x_len);
  F32(2, "out", 0, out, out_len);
  INT(3, "cols", cols);
  if (op >= TESSERA_REDUCE_COUNT) FAIL("tessera_native: unknown reduction %d", op);
  if (cols == 0 || x_len % cols != 0 || out_len != x_len / cols)
    FAIL("tessera_native: x must hold whole rows of cols = %d values and out one per row", cols);
  tessera_reduce(op, x, out, x_len / cols, cols);
  return NULL;
}

/* greedyPick(logits, out, cols): out (Int32Array) holds a [token, check] pair per row of width cols. */
static napi_value GreedyPick(napi_env env, napi_callback_info info) {
  ARGS(3);
  F32(0, "logits", 0, x, x_len);
  I32(1, "out", out, out_len);
  INT(2, "cols", cols);
  if (cols == 0 || x_len % cols != 0 || out_len != 2 * (x_len / cols))
    FAIL("tessera_native: logits must hold whole rows of cols = %d values and out two values per row", cols);
  tessera_greedy_pick(x, out, x_len / cols, cols);
  return NULL;
}

/* attention(q, k, v, mask|null, out, [batch, qLen, kvLen, heads, kvHeads, headDim, kLayout,
 * vLayout, causal, kvCapacity?], scale): kvCapacity (default kvLen) = positions per head block
 * of a head-major k or v. */
static napi_value Attention(napi_env env, napi_callback_info info) {
  ARGS(7);
  F32(0, "q", 0, q, q_len);
  F32(1, "k", 0, k, k_len);
  F32(2, "v", 0, v, v_len);
  F32(3, "mask", 1, mask, mask_len);
  F32(4, "out", 0, out, out_len);
  I32(5, "dims", dims, ndims);
  double scale = 0;
  CHECK(napi_get_value_double(env, argv[6], &scale));
  if (ndims != 9 && ndims != 10) FAIL("tessera_native: attention dims must hold 9 or 10 values");
  for (size_t i = 0; i < ndims; i++)
    if (dims[i] < 0) FAIL("tessera_native: attention dims must be non-negative");
  const struct tessera_attention_dims d = {dims[0], dims[1], dims[2], dims[3], dims[4], dims[5], dims[6],
                                           dims[7], dims[8], (float)scale, ndims == 10 ? dims[9] : 0};
  if (d.kv_capacity != 0 && d.kv_capacity < d.kv_len)
    FAIL("tessera_native: attention kvCapacity (%d) must be at least kvLen (%d)", d.kv_capacity, d.kv_len);
  const size_t kv_cap = d.kv_capacity == 0 ? (size_t)d.kv_len : (size_t)d.kv_capacity;
  if (d.kv_heads == 0 || d.heads % d.kv_heads != 0)
    FAIL("tessera_native: heads (%d) must be a multiple of kvHeads (%d)", d.heads, d.kv_heads);
  if (d.k_layout > TESSERA_HEAD_MAJOR || d.v_layout > TESSERA_HEAD_MAJOR)
    FAIL("tessera_native: unknown attention layout");
  if (d.kv_len == 0 || d.head_dim == 0) FAIL("tessera_native: attention needs keys and headDim > 0");
  const size_t bd = (size_t)d.batch * d.head_dim;
  if (q_len != bd * d.q_len * d.heads || out_len != q_len)
    FAIL("tessera_native: q and out must hold batch*qLen*heads*headDim values");
  if (k_len != bd * (d.k_layout == TESSERA_HEAD_MAJOR ? kv_cap : (size_t)d.kv_len) * d.kv_heads ||
      v_len != bd * (d.v_layout == TESSERA_HEAD_MAJOR ? kv_cap : (size_t)d.kv_len) * d.kv_heads)
    FAIL("tessera_native: k and v must hold batch*(kvLen or kvCapacity)*kvHeads*headDim values");
  if (mask != NULL && mask_len != (size_t)d.batch * d.kv_len)
    FAIL("tessera_native: mask must hold batch*kvLen values");
  tessera_attention(q, k, v, mask, out, &d, openblas_get_num_threads());
  return NULL;
}

/* scanAvx512ForceAbsent(absent): tests and benchmarks run the selective scan's generic loops on an AVX-512 CPU. */
static napi_value ScanAvx512ForceAbsent(napi_env env, napi_callback_info info) {
  return set_switch(env, info, "scanAvx512ForceAbsent", tessera_scan_avx512_force_absent);
}

/* mambaFusedStepForceAbsent(absent): tests and benchmarks run a one-token Mamba mixer step on the
 * general path (five pool passes) instead of mamba.c's three-pass step. */
static napi_value MambaFusedStepForceAbsent(napi_env env, napi_callback_info info) {
  return set_switch(env, info, "mambaFusedStepForceAbsent", tessera_mamba_fused_step_force_absent);
}

/* attentionF32ForceAbsent(absent): tests and benchmarks take the BLAS path where a prefill's
 * attention would run on the float32 tiles (attention-f32.c). */
static napi_value AttentionF32ForceAbsent(napi_env env, napi_callback_info info) {
  return set_switch(env, info, "attentionF32ForceAbsent", tessera_attention_f32_force_absent);
}

/* attentionBackward(q, k, v, mask|null, dout, dq, dk, dv, [batch, qLen, kvLen, heads, kvHeads,
 * headDim, causal], scale): token-major operands, no cache. */
static napi_value AttentionBackward(napi_env env, napi_callback_info info) {
  ARGS(10);
  F32(0, "q", 0, q, q_len);
  F32(1, "k", 0, k, k_len);
  F32(2, "v", 0, v, v_len);
  F32(3, "mask", 1, mask, mask_len);
  F32(4, "dout", 0, dout, dout_len);
  F32(5, "dq", 0, dq, dq_len);
  F32(6, "dk", 0, dk, dk_len);
  F32(7, "dv", 0, dv, dv_len);
  I32(8, "dims", dims, ndims);
  double scale = 0;
  CHECK(napi_get_value_double(env, argv[9], &scale));
  if (ndims != 7) FAIL("tessera_native: attentionBackward dims must hold 7 values");
  for (int i = 0; i < 7; i++)
    if (dims[i] < 0) FAIL("tessera_native: attentionBackward dims must be non-negative");
  const struct tessera_attention_dims d = {dims[0], dims[1], dims[2], dims[3], dims[4], dims[5],
                                           TESSERA_TOKEN_MAJOR, TESSERA_TOKEN_MAJOR, dims[6], (float)scale, 0};
  if (d.kv_heads == 0 || d.heads % d.kv_heads != 0)
    FAIL("tessera_native: heads (%d) must be a multiple of kvHeads (%d)", d.heads, d.kv_heads);
  if (d.kv_len == 0 || d.head_dim == 0 || d.q_len > d.kv_len)
    FAIL("tessera_native: attentionBackward needs keys, headDim > 0 and qLen <= kvLen");
  const size_t bd = (size_t)d.batch * d.head_dim;
  if (q_len != bd * d.q_len * d.heads || dout_len != q_len || dq_len != q_len)
    FAIL("tessera_native: q, dout and dq must hold batch*qLen*heads*headDim values");
  if (k_len != bd * d.kv_len * d.kv_heads || v_len != k_len || dk_len != k_len || dv_len != k_len)
    FAIL("tessera_native: k, v, dk and dv must hold batch*kvLen*kvHeads*headDim values");
  if (mask != NULL && mask_len != (size_t)d.batch * d.kv_len)
    FAIL("tessera_native: mask must hold batch*kvLen values");
  tessera_attention_backward(q, k, v, mask, dout, dq, dk, dv, &d, openblas_get_num_threads());
  return NULL;
}

/* rotary(x, cos, sin, y, batch, len, heads, headDim, rotDim) */
static napi_value Rotary(napi_env env, napi_callback_info info) {
  ARGS(9);
  F32(0, "x", 0, x, x_len);
  F32(1, "cos", 0, c, c_len);
  F32(2, "sin", 0, s, s_len);
  F32(3, "y", 0, y, y_len);
  INT(4, "batch", batch);
  INT(5, "len", len);
  INT(6, "heads", heads);
  INT(7, "headDim", head_dim);
  INT(8, "rotDim", rot_dim);
  if (rot_dim % 2 != 0 || rot_dim > head_dim)
    FAIL("tessera_native: rotDim must be even and at most headDim");
  if (x_len != (size_t)batch * len * heads * head_dim || y_len != x_len)
    FAIL("tessera_native: x and y must hold batch*len*heads*headDim values");
  if (c_len != (size_t)batch * len * rot_dim || s_len != c_len)
    FAIL("tessera_native: cos and sin must hold batch*len*rotDim values");
  tessera_rotary(x, c, s, y, batch, len, heads, head_dim, rot_dim);
  return NULL;
}

/* kvAppend(past|null, x, out, batch, heads, pastLen, len, headDim, pastCap, outCap): past
 * [B, H, pastCap, D] (null: its rows are already in out), out [B, H, outCap, D]. */
static napi_value KvAppend(napi_env env, napi_callback_info info) {
  ARGS(10);
  F32(0, "past", 1, past, past_values);
  F32(1, "x", 0, x, x_len);
  F32(2, "out", 0, out, out_len);
  INT(3, "batch", batch);
  INT(4, "heads", heads);
  INT(5, "pastLen", past_len);
  INT(6, "len", len);
  INT(7, "headDim", head_dim);
  INT(8, "pastCap", past_cap);
  INT(9, "outCap", out_cap);
  if (past_len < 0 || len < 0 || past_cap < past_len || out_cap < past_len + len)
    FAIL("tessera_native: kvAppend needs pastLen <= pastCap and pastLen + len <= outCap");
  const size_t bhd = (size_t)batch * heads * head_dim;
  if (past != NULL && past_values != bhd * past_cap)
    FAIL("tessera_native: past must hold batch*heads*pastCap*headDim values");
  if (x_len != bhd * len || out_len != bhd * out_cap)
    FAIL("tessera_native: x and out must hold batch*heads*(len or outCap)*headDim values");
  tessera_kv_append(past, past_cap, x, out, out_cap, batch, heads, past_len, len, head_dim, tessera_threads());
  return NULL;
}

/* ffnActivation(act, x, up|null, out): out = act(x) (* up). */
static napi_value FfnActivation(napi_env env, napi_callback_info info) {
  ARGS(4);
  INT(0, "act", act);
  F32(1, "x", 0, x, x_len);
  F32(2, "up", 1, up, up_len);
  F32(3, "out", 0, out, out_len);
  if (act >= TESSERA_FFN_COUNT) FAIL("tessera_native: unknown ffn activation %d", act);
  if (out_len != x_len || (up != NULL && up_len != x_len))
    FAIL("tessera_native: x, up and out must hold as many values");
  tessera_ffn_activation(act, x, up, out, x_len);
  return NULL;
}

/*
 * The checks ffnLinear and ffnGatedLinear share: a known activation, x as whole rows of `in`,
 * out as rows*n. Returns the row count, or -1 after throwing.
 */
static int64_t linear_rows(napi_env env, int act, size_t x_len, int in, int n, size_t out_len) {
  char msg[256] = "";
  const size_t rows = in == 0 ? 0 : x_len / in;
  if (act >= TESSERA_FFN_COUNT) snprintf(msg, sizeof msg, "tessera_native: unknown ffn activation %d", act);
  else if (in == 0 || x_len % in != 0) snprintf(msg, sizeof msg, "tessera_native: x must hold whole rows of in = %d values", in);
  else if (out_len != rows * n) snprintf(msg, sizeof msg, "tessera_native: out must hold rows*n = %zu values", rows * n);
  else if (rows > INT32_MAX) snprintf(msg, sizeof msg, "tessera_native: too many rows");
  if (msg[0] == '\0') return (int64_t)rows;
  napi_throw_type_error(env, NULL, msg);
  return -1;
}

/* ffnLinear(x, w, bias|null, out, in, n, act): out = act(x . w^T + bias), w [n, in]. */
static napi_value FfnLinear(napi_env env, napi_callback_info info) {
  ARGS(7);
  F32(0, "x", 0, x, x_len);
  F32(1, "w", 0, w, w_len);
  F32(2, "bias", 1, bias, bias_len);
  F32(3, "out", 0, out, out_len);
  INT(4, "in", in);
  INT(5, "n", n);
  INT(6, "act", act);
  const int64_t rows = linear_rows(env, act, x_len, in, n, out_len);
  if (rows < 0) return NULL;
  if (w_len != (size_t)n * in) FAIL("tessera_native: w must hold n*in = %zu values", (size_t)n * in);
  if (bias != NULL && bias_len != (size_t)n) FAIL("tessera_native: bias must hold n = %d values", n);
  tessera_ffn_linear(x, w, bias, out, (int)rows, in, n, act);
  return NULL;
}

/* ffnGatedLinear(x, wg, wu, bg|null, bu|null, out, in, n, act): out = act(x.wg^T+bg) * (x.wu^T+bu). */
static napi_value FfnGatedLinear(napi_env env, napi_callback_info info) {
  ARGS(9);
  F32(0, "x", 0, x, x_len);
  F32(1, "wg", 0, wg, wg_len);
  F32(2, "wu", 0, wu, wu_len);
  F32(3, "bg", 1, bg, bg_len);
  F32(4, "bu", 1, bu, bu_len);
  F32(5, "out", 0, out, out_len);
  INT(6, "in", in);
  INT(7, "n", n);
  INT(8, "act", act);
  const int64_t rows = linear_rows(env, act, x_len, in, n, out_len);
  if (rows < 0) return NULL;
  if (wg_len != (size_t)n * in || wu_len != (size_t)n * in)
    FAIL("tessera_native: wg and wu must hold n*in = %zu values", (size_t)n * in);
  if ((bg != NULL && bg_len != (size_t)n) || (bu != NULL && bu_len != (size_t)n))
    FAIL("tessera_native: bg and bu must hold n = %d values", n);
  if (!tessera_ffn_gated_linear(x, wg, wu, bg, bu, out, (int)rows, in, n, act))
    FAIL("tessera_native: out of memory");
  return NULL;
}

/* activationBackward(act, x, up|null, dy, dx, dup|null): gradients of act(x) (* up). */
static napi_value ActivationBackward(napi_env env, napi_callback_info info) {
  ARGS(6);
  INT(0, "act", act);
  F32(1, "x", 0, x, x_len);
  F32(2, "up", 1, up, up_len);
  F32(3, "dy", 0, dy, dy_len);
  F32(4, "dx", 0, dx, dx_len);
  F32(5, "dup", 1, dup, dup_len);
  if (act >= TESSERA_FFN_COUNT) FAIL("tessera_native: unknown ffn activation %d", act);
  if (dy_len != x_len || dx_len != x_len || (up != NULL && up_len != x_len) || (dup != NULL && dup_len != x_len))
    FAIL("tessera_native: x, up, dy, dx and dup must hold as many values");
  if (dup != NULL && up == NULL) FAIL("tessera_native: dup needs up");
  tessera_activation_backward(act, x, up, dy, dx, dup, x_len);
  return NULL;
}

/* The checks both norm backwards share: rows of h; returns the row count, or -1 after throwing. */
static long long norm_backward_rows_checked(napi_env env, int h, size_t x_len, size_t residual_len, int has_residual,
                                            size_t dy_len, size_t ds_len) {
  if (h == 0 || x_len % h != 0 || dy_len != x_len || ds_len != x_len || (has_residual && residual_len != x_len)) {
    napi_throw_type_error(env, NULL, "tessera_native: x, residual, dy and ds must hold the same whole rows of h values");
    return -1;
  }
  return (long long)(x_len / h);
}

/* rmsNormBackward(x, residual|null, weight|null, dy, ds, dweight|null, h, eps) */
static napi_value RmsNormBackward(napi_env env, napi_callback_info info) {
  ARGS(8);
  F32(0, "x", 0, x, x_len);
  F32(1, "residual", 1, res, res_len);
  F32(2, "weight", 1, w, w_len);
  F32(3, "dy", 0, dy, dy_len);
  F32(4, "ds", 0, ds, ds_len);
  F32(5, "dweight", 1, dw, dw_len);
  INT(6, "h", h);
  double eps = 0;
  CHECK(napi_get_value_double(env, argv[7], &eps));
  const long long rows = norm_backward_rows_checked(env, h, x_len, res_len, res != NULL, dy_len, ds_len);
  if (rows < 0) return NULL;
  if ((w != NULL && w_len != (size_t)h) || (dw != NULL && dw_len != (size_t)h))
    FAIL("tessera_native: weight and dweight must hold h = %d values", h);
  tessera_rms_norm_backward(x, res, w, dy, ds, dw, (size_t)rows, h, (float)eps);
  return NULL;
}

/* layerNormBackward(x, residual|null, gamma|null, dy, ds, dgamma|null, dbeta|null, h, eps) */
static napi_value LayerNormBackward(napi_env env, napi_callback_info info) {
  ARGS(9);
  F32(0, "x", 0, x, x_len);
  F32(1, "residual", 1, res, res_len);
  F32(2, "gamma", 1, g, g_len);
  F32(3, "dy", 0, dy, dy_len);
  F32(4, "ds", 0, ds, ds_len);
  F32(5, "dgamma", 1, dg, dg_len);
  F32(6, "dbeta", 1, db, db_len);
  INT(7, "h", h);
  double eps = 0;
  CHECK(napi_get_value_double(env, argv[8], &eps));
  const long long rows = norm_backward_rows_checked(env, h, x_len, res_len, res != NULL, dy_len, ds_len);
  if (rows < 0) return NULL;
  if ((g != NULL && g_len != (size_t)h) || (dg != NULL && dg_len != (size_t)h) || (db != NULL && db_len != (size_t)h))
    FAIL("tessera_native: gamma, dgamma and dbeta must hold h = %d values", h);
  tessera_layer_norm_backward(x, res, g, dy, ds, dg, db, (size_t)rows, h, (float)eps);
  return NULL;
}

/* rotaryHeads(x, cos, sin, y, batch, heads, len, headDim, rotDim, tableBatch, transpose, tokenMajor) */
static napi_value RotaryHeads(napi_env env, napi_callback_info info) {
  ARGS(12);
  F32(0, "x", 0, x, x_len);
  F32(1, "cos", 0, c, c_len);
  F32(2, "sin", 0, s, s_len);
  F32(3, "y", 0, y, y_len);
  INT(4, "batch", batch);
  INT(5, "heads", heads);
  INT(6, "len", len);
  INT(7, "headDim", head_dim);
  INT(8, "rotDim", rot_dim);
  INT(9, "tableBatch", table_batch);
  INT(10, "transpose", transpose);
  INT(11, "tokenMajor", token_major);
  if (rot_dim % 2 != 0 || rot_dim > head_dim) FAIL("tessera_native: rotDim must be even and at most headDim");
  if (table_batch != 1 && table_batch != batch) FAIL("tessera_native: tableBatch must be 1 or batch");
  if (x_len != (size_t)batch * heads * len * head_dim || y_len != x_len)
    FAIL("tessera_native: x and y must hold batch*heads*len*headDim values");
  if (c_len != (size_t)table_batch * len * rot_dim || s_len != c_len)
    FAIL("tessera_native: cos and sin must hold tableBatch*len*rotDim values");
  tessera_rotary_heads(x, c, s, y, batch, heads, len, head_dim, rot_dim, table_batch, transpose != 0, token_major != 0);
  return NULL;
}

/* selectiveScanBackward(u, delta, A, B, C, D, h0|null, dy|null, dh|null, du, ddelta, dA, dB, dC,
 * dD, dh0, batch, len, dim, nstate) */
static napi_value SelectiveScanBackward(napi_env env, napi_callback_info info) {
  ARGS(20);
  F32(0, "u", 0, u, u_len);
  F32(1, "delta", 0, delta, delta_len);
  F32(2, "A", 0, A, A_len);
  F32(3, "B", 0, Bm, B_len);
  F32(4, "C", 0, Cm, C_len);
  F32(5, "D", 0, Dv, D_len);
  F32(6, "h0", 1, h0, h0_len);
  F32(7, "dy", 1, dy, dy_len);
  F32(8, "dh", 1, dh, dh_len);
  F32(9, "du", 0, du, du_len);
  F32(10, "ddelta", 0, ddelta, ddelta_len);
  F32(11, "dA", 0, dA, dA_len);
  F32(12, "dB", 0, dB, dB_len);
  F32(13, "dC", 0, dC, dC_len);
  F32(14, "dD", 0, dD, dD_len);
  F32(15, "dh0", 0, dh0, dh0_len);
  INT(16, "batch", batch);
  INT(17, "len", len);
  INT(18, "dim", dim);
  INT(19, "nstate", nstate);
  const size_t bld = (size_t)batch * len * dim, bln = (size_t)batch * len * nstate, bdn = (size_t)batch * dim * nstate;
  if (u_len != bld || delta_len != bld || du_len != bld || ddelta_len != bld || (dy != NULL && dy_len != bld))
    FAIL("tessera_native: u, delta, dy, du and ddelta must hold batch*len*dim values");
  if (A_len != (size_t)dim * nstate || dA_len != A_len) FAIL("tessera_native: A and dA must hold dim*nstate values");
  if (B_len != bln || C_len != bln || dB_len != bln || dC_len != bln)
    FAIL("tessera_native: B, C, dB and dC must hold batch*len*nstate values");
  if (D_len != (size_t)dim || dD_len != (size_t)dim) FAIL("tessera_native: D and dD must hold dim values");
  if ((h0 != NULL && h0_len != bdn) || (dh != NULL && dh_len != bdn) || dh0_len != bdn)
    FAIL("tessera_native: h0, dh and dh0 must hold batch*dim*nstate values");
  const struct tessera_scan_backward s = {u, delta, A, Bm, Cm, Dv, h0, dy, dh, du, ddelta, dA, dB, dC, dD, dh0,
                                          batch, len, dim, nstate};
  if (!tessera_selective_scan_backward(&s, openblas_get_num_threads())) FAIL("tessera_native: out of memory");
  return NULL;
}

/* causalConv(x, w, bias|null, y, batch, len, dim, kernel) */
static napi_value CausalConv(napi_env env, napi_callback_info info) {
  ARGS(8);
  F32(0, "x", 0, x, x_len);
  F32(1, "w", 0, w, w_len);
  F32(2, "bias", 1, bias, bias_len);
  F32(3, "y", 0, y, y_len);
  INT(4, "batch", batch);
  INT(5, "len", len);
  INT(6, "dim", dim);
  INT(7, "kernel", kernel);
  if (x_len != (size_t)batch * len * dim || y_len != x_len) FAIL("tessera_native: x and y must hold batch*len*dim values");
  if (w_len != (size_t)dim * kernel || (bias != NULL && bias_len != (size_t)dim))
    FAIL("tessera_native: w must hold dim*kernel values and bias dim");
  tessera_causal_conv(x, w, bias, y, batch, len, dim, kernel);
  return NULL;
}

/* causalConvBackward(x, w, dy, dx, dw, dbias|null, batch, len, dim, kernel) */
static napi_value CausalConvBackward(napi_env env, napi_callback_info info) {
  ARGS(10);
  F32(0, "x", 0, x, x_len);
  F32(1, "w", 0, w, w_len);
  F32(2, "dy", 0, dy, dy_len);
  F32(3, "dx", 0, dx, dx_len);
  F32(4, "dw", 0, dw, dw_len);
  F32(5, "dbias", 1, dbias, dbias_len);
  INT(6, "batch", batch);
  INT(7, "len", len);
  INT(8, "dim", dim);
  INT(9, "kernel", kernel);
  if (x_len != (size_t)batch * len * dim || dy_len != x_len || dx_len != x_len)
    FAIL("tessera_native: x, dy and dx must hold batch*len*dim values");
  if (w_len != (size_t)dim * kernel || dw_len != w_len || (dbias != NULL && dbias_len != (size_t)dim))
    FAIL("tessera_native: w and dw must hold dim*kernel values and dbias dim");
  tessera_causal_conv_backward(x, w, dy, dx, dw, dbias, batch, len, dim, kernel);
  return NULL;
}

/* segmentSum(x, ids, out, inner, segments) */
static napi_value SegmentSum(napi_env env, napi_callback_info info) {
  ARGS(5);
  F32(0, "x", 0, x, x_len);
  I32(1, "ids", ids, ids_len);
  F32(2, "out", 0, out, out_len);
  INT(3, "inner", inner);
  INT(4, "segments", segments);
  if (x_len != ids_len * (size_t)inner || out_len != (size_t)segments * inner)
    FAIL("tessera_native: x must hold ids*inner values and out segments*inner");
  tessera_segment_sum(x, ids, ids_len, (size_t)inner, out, (size_t)segments);
  return NULL;
}

static napi_value SetNumThreads(napi_env env, napi_callback_info info) {
  ARGS(1);
  INT(0, "threads", threads);
  if (threads < 1) FAIL("tessera_native: threads must be at least 1");
  openblas_set_num_threads(threads);
  return NULL;
}

static napi_value GetNumThreads(napi_env env, napi_callback_info info) {
  napi_value result;
  CHECK(napi_create_int32(env, openblas_get_num_threads(), &result));
  return result;
}

/* info() -> { coreName, config, numThreads }: which OpenBLAS kernel set is running, for reports. */
static napi_value Info(napi_env env, napi_callback_info info) {
  napi_value obj, v;
  CHECK(napi_create_object(env, &obj));
  CHECK(napi_create_string_utf8(env, openblas_get_corename(), NAPI_AUTO_LENGTH, &v));
  CHECK(napi_set_named_property(env, obj, "coreName", v));
  CHECK(napi_create_string_utf8(env, openblas_get_config(), NAPI_AUTO_LENGTH, &v));
  CHECK(napi_set_named_property(env, obj, "config", v));
  CHECK(napi_create_int32(env, openblas_get_num_threads(), &v));
  CHECK(napi_set_named_property(env, obj, "numThreads", v));
  return obj;
}

static napi_value Init(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
      {"matmul", NULL, Matmul, NULL, NULL, NULL, napi_enumerable, NULL},
      {"selectiveScan", NULL, SelectiveScan, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mambaMixer", NULL, MambaMixer, NULL, NULL, NULL, napi_enumerable, NULL},
      {"hugePageCopy", NULL, HugePageCopy, NULL, NULL, NULL, napi_enumerable, NULL},
      {"releaseFreeMemory", NULL, ReleaseFreeMemory, NULL, NULL, NULL, napi_enumerable, NULL},
      {"rmsNorm", NULL, RmsNorm, NULL, NULL, NULL, napi_enumerable, NULL},
      {"layerNorm", NULL, LayerNorm, NULL, NULL, NULL, napi_enumerable, NULL},
      {"binary", NULL, Binary, NULL, NULL, NULL, napi_enumerable, NULL},
      {"stridedCopy", NULL, StridedCopy, NULL, NULL, NULL, napi_enumerable, NULL},
      {"unary", NULL, Unary, NULL, NULL, NULL, napi_enumerable, NULL},
      {"softmax", NULL, Softmax, NULL, NULL, NULL, napi_enumerable, NULL},
      {"reduce", NULL, Reduce, NULL, NULL, NULL, napi_enumerable, NULL},
      {"attention", NULL, Attention, NULL, NULL, NULL, napi_enumerable, NULL},
      {"greedyPick", NULL, GreedyPick, NULL, NULL, NULL, napi_enumerable, NULL},
      {"scanAvx512ForceAbsent", NULL, ScanAvx512ForceAbsent, NULL, NULL, NULL, napi_enumerable, NULL},
      {"mambaFusedStepForceAbsent", NULL, MambaFusedStepForceAbsent, NULL, NULL, NULL, napi_enumerable, NULL},
      {"attentionF32ForceAbsent", NULL, AttentionF32ForceAbsent, NULL, NULL, NULL, napi_enumerable, NULL},
      {"rotary", NULL, Rotary, NULL, NULL, NULL, napi_enumerable, NULL},
      {"kvAppend", NULL, KvAppend, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setNumThreads", NULL, SetNumThreads, NULL, NULL, NULL, napi_enumerable, NULL},
      {"getNumThreads", NULL, GetNumThreads, NULL, NULL, NULL, napi_enumerable, NULL},
      {"info", NULL, Info, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ffnActivation", NULL, FfnActivation, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ffnLinear", NULL, FfnLinear, NULL, NULL, NULL, napi_enumerable, NULL},
      {"ffnGatedLinear", NULL, FfnGatedLinear, NULL, NULL, NULL, napi_enumerable, NULL},
      {"activationBackward", NULL, ActivationBackward, NULL, NULL, NULL, napi_enumerable, NULL},
      {"rmsNormBackward", NULL, RmsNormBackward, NULL, NULL, NULL, napi_enumerable, NULL},
      {"layerNormBackward", NULL, LayerNormBackward, NULL, NULL, NULL, napi_enumerable, NULL},
      {"rotaryHeads", NULL, RotaryHeads, NULL, NULL, NULL, napi_enumerable, NULL},
      {"attentionBackward", NULL, AttentionBackward, NULL, NULL, NULL, napi_enumerable, NULL},
      {"selectiveScanBackward", NULL, SelectiveScanBackward, NULL, NULL, NULL, napi_enumerable, NULL},
      {"causalConv", NULL, CausalConv, NULL, NULL, NULL, napi_enumerable, NULL},
      {"causalConvBackward", NULL, CausalConvBackward, NULL, NULL, NULL, napi_enumerable, NULL},
      {"segmentSum", NULL, SegmentSum, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  CHECK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  CHECK(tessera_register_train(env, exports));
  CHECK(tessera_register_quant(env, exports));
  CHECK(tessera_register_gemm(env, exports));
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
