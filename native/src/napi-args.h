/*
 * Argument checks for the addon's N-API glue (binding.c, quant-binding.c, train-binding.c): each
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

#endif
