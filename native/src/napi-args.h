/*
 * Argument checks for the addon's N-API glue (binding.c, quant-binding.c, train-binding.c,
 * gemm-binding.c): each
 * macro reads argument i of `argv` into a local, or throws a TypeError naming the argument and
 * returns from the calling function.
 */
#ifndef TESSERA_NAPI_ARGS_H
#define TESSERA_NAPI_ARGS_H

#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define CHECK(call)                                                        \
  do {                                                                     \
    if ((call) != napi_ok) {                                               \
      napi_throw_error(env, NULL, "tessera_native: N-API call failed: " #call); \
      return NULL;                                                         \
    }                                                                      \
  } while (0)

#define FAIL(...)                                     \
  do {                                                \
    char msg_[256];                                   \
    snprintf(msg_, sizeof msg_, __VA_ARGS__);         \
    napi_throw_type_error(env, NULL, msg_);           \
    return NULL;                                      \
  } while (0)

/* Read a typed array of the given type; *data = NULL when allow_null and the value is null. */
static inline int typed_array(napi_env env, napi_value v, napi_typedarray_type want, int allow_null,
                       void **data, size_t *len) {
  napi_valuetype vt;
  if (napi_typeof(env, v, &vt) != napi_ok) return 0;
  if (allow_null && (vt == napi_null || vt == napi_undefined)) {
    *data = NULL;
    *len = 0;
    return 1;
  }
  bool is_ta = false;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta) return 0;
  napi_typedarray_type type;
  if (napi_get_typedarray_info(env, v, &type, len, data, NULL, NULL) != napi_ok) return 0;
  return type == want;
}

#define F32(i, name, allow_null, ptr, len)                                                     \
  float *ptr = NULL;                                                                           \
  size_t len = 0;                                                                              \
  if (!typed_array(env, argv[i], napi_float32_array, allow_null, (void **)&ptr, &len))         \
    FAIL("tessera_native: argument %d (%s) must be a Float32Array%s", i, name,                \
         allow_null ? " or null" : "");

/* The tests' and benchmarks' switches, `name(absent)`: set(absent) with the one boolean argument. */
static inline napi_value set_switch(napi_env env, napi_callback_info info, const char *name, void (*set)(int)) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  bool on = false;
  if (argc < 1 || napi_get_value_bool(env, argv[0], &on) != napi_ok) FAIL("tessera_native: %s takes a boolean", name);
  set(on);
  return NULL;
}

static inline int get_int(napi_env env, napi_value v, int32_t *out) {
  return napi_get_value_int32(env, v, out) == napi_ok;
}

#define INT(i, name, var)                                                                  \
  int32_t var = 0;                                                                         \
  if (!get_int(env, argv[i], &var) || var < 0)                                             \
    FAIL("tessera_native: argument %d (%s) must be a non-negative integer", i, name);

#define ARGS(n)                                                                 \
  size_t argc = n;                                                              \
  napi_value argv[n];                                                           \
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));                  \
  if (argc < n) FAIL("tessera_native: expected %d arguments, got %zu", n, argc);

#define I32(i, name, ptr, len)                                                   \
  int32_t *ptr = NULL;                                                           \
  size_t len = 0;                                                                \
  if (!typed_array(env, argv[i], napi_int32_array, 0, (void **)&ptr, &len))      \
    FAIL("tessera_native: argument %d (%s) must be an Int32Array", i, name);

/*
 * The operands of a batched product, arguments 0-10 of matmul and gemmBf16: a, b, out, aIdx,
 * bIdx, m, n, k, transA, transB, bias|null. Matrix aIdx[i] of a ([m, k]) times matrix bIdx[i]
 * of b ([k, n]) into out's i-th [m, n]; every index must name a matrix inside its array.
 */
#define MATMUL_OPERANDS()                                                                     \
  F32(0, "a", 0, a, a_len);                                                                   \
  F32(1, "b", 0, b, b_len);                                                                   \
  F32(2, "out", 0, out, out_len);                                                             \
  int32_t *a_idx = NULL, *b_idx = NULL;                                                       \
  size_t batch = 0, b_batch = 0;                                                              \
  if (!typed_array(env, argv[3], napi_int32_array, 0, (void **)&a_idx, &batch) ||             \
      !typed_array(env, argv[4], napi_int32_array, 0, (void **)&b_idx, &b_batch) ||           \
      batch != b_batch)                                                                       \
    FAIL("tessera_native: aIdx and bIdx must be Int32Arrays of equal length");                \
  INT(5, "m", m);                                                                             \
  INT(6, "n", n);                                                                             \
  INT(7, "k", k);                                                                             \
  bool trans_a = false, trans_b = false;                                                      \
  CHECK(napi_get_value_bool(env, argv[8], &trans_a));                                         \
  CHECK(napi_get_value_bool(env, argv[9], &trans_b));                                         \
  F32(10, "bias", 1, bias, bias_len);                                                         \
  if (out_len < batch * (size_t)m * n) FAIL("tessera_native: out is too small");              \
  for (size_t i_ = 0; i_ < batch; i_++) {                                                     \
    if (a_idx[i_] < 0 || (size_t)(a_idx[i_] + 1) * ((size_t)m * k) > a_len)                   \
      FAIL("tessera_native: aIdx[%zu] = %d is out of range for a", i_, a_idx[i_]);           \
    if (b_idx[i_] < 0 || (size_t)(b_idx[i_] + 1) * ((size_t)k * n) > b_len)                   \
      FAIL("tessera_native: bIdx[%zu] = %d is out of range for b", i_, b_idx[i_]);           \
  }                                                                                           \
  if (bias != NULL && bias_len != 1 && bias_len != (size_t)n)                                 \
    FAIL("tessera_native: bias must hold 1 or n = %d values, not %zu", n, bias_len);

#endif
