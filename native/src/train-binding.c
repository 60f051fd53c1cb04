/*
 * N-API glue for the training kernels (train.c), registered onto the addon's exports by
 * binding.c's Init. Kept apart from binding.c so the training kernels' argument checks sit in one
 * file; same conventions: sizes are checked here and a TypeError names what is wrong.
 */
#include <node_api.h>
#include <stdio.h>

#include "napi-args.h"
#include "train.h"

/* The arguments, or a TypeError when fewer than n were given. */
static int get_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv) {
  size_t argc = n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < n) {
    napi_throw_type_error(env, NULL, "tessera_native: too few arguments");
    return 0;
  }
  return 1;
}

/* A typed array of type `want`, else NULL (a TypeError naming the argument is thrown). */
static void *array_arg(napi_env env, napi_value v, napi_typedarray_type want, const char *name, size_t *len) {
  bool is_ta = false;
  napi_typedarray_type type;
  void *data = NULL;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta ||
      napi_get_typedarray_info(env, v, &type, len, &data, NULL, NULL) != napi_ok || type != want) {
    char msg[160];
    snprintf(msg, sizeof msg, "tessera_native: %s must be a%s", name,
             want == napi_int32_array ? "n Int32Array" : " Float32Array");
    napi_throw_type_error(env, NULL, msg);
    return NULL;
  }
  /* An empty typed array may report a NULL data pointer: point it at something. */
  static float empty;
  return data == NULL ? (void *)&empty : data;
}

static int number_arg(napi_env env, napi_value v, const char *name, double *out) {
  if (napi_get_value_double(env, v, out) == napi_ok) return 1;
  char msg[160];
  snprintf(msg, sizeof msg, "tessera_native: %s must be a number", name);
  napi_throw_type_error(env, NULL, msg);
  return 0;
}

#define F32ARG(i, name, var, len)                                          \
  size_t len = 0;                                                         \
  float *var = array_arg(env, argv[i], napi_float32_array, name, &len);    \
  if (var == NULL) return NULL;

#define I32ARG(i, name, var, len)                                          \
  size_t len = 0;                                                         \
  int32_t *var = array_arg(env, argv[i], napi_int32_array, name, &len);    \
  if (var == NULL) return NULL;

#define NUMARG(i, name, var) \
  double var = 0;            \
  if (!number_arg(env, argv[i], name, &var)) return NULL;

/* A vocab size that divides `len` into rows; returns the row count or -1 (TypeError thrown). */
static long long rows_of(napi_env env, size_t len, double vocab) {
  if (!(vocab >= 1) || vocab > 2147483647.0 || vocab != (double)(long long)vocab || len % (size_t)vocab != 0) {
    char msg[160];
    snprintf(msg, sizeof msg, "tessera_native: vocab %g must be a positive integer dividing %zu logits", vocab, len);
    napi_throw_type_error(env, NULL, msg);
    return -1;
  }
  return (long long)(len / (size_t)vocab);
}

/* adam(w, g, m, v, wOut, mOut, vOut, lr, beta1, beta2, eps, c1, c2, weightDecay); outputs may be their inputs. */
static napi_value Adam(napi_env env, napi_callback_info info) {
  napi_value argv[14];
  if (!get_args(env, info, 14, argv)) return NULL;
  F32ARG(0, "w", w, n);
  F32ARG(1, "g", g, g_len);
  F32ARG(2, "m", m, m_len);
  F32ARG(3, "v", v, v_len);
  F32ARG(4, "wOut", w_out, wo_len);
  F32ARG(5, "mOut", m_out, mo_len);
  F32ARG(6, "vOut", v_out, vo_len);
  if (g_len != n || m_len != n || v_len != n || wo_len != n || mo_len != n || vo_len != n)
    FAIL("tessera_native: adam's seven arrays must all hold %zu values", n);
  double c[7];
  static const char *names[7] = {"learningRate", "beta1", "beta2", "epsilon", "correction1", "correction2", "weightDecay"};
  for (int i = 0; i < 7; i++)
    if (!number_arg(env, argv[7 + i], names[i], &c[i])) return NULL;
  const struct tessera_adam p = {(float)c[0], (float)c[1], (float)c[2], (float)c[3], (float)c[4], (float)c[5], (float)c[6]};
  tessera_adam(w, g, m, v, w_out, m_out, v_out, n, &p);
  return NULL;
}

/* crossEntropy(logits, targets, loss, lse, vocab); targets already checked to lie in [0, vocab). */
static napi_value CrossEntropy(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  if (!get_args(env, info, 5, argv)) return NULL;
  F32ARG(0, "logits", logits, len);
  I32ARG(1, "targets", targets, t_len);
  F32ARG(2, "loss", loss, loss_len);
  F32ARG(3, "lse", lse, lse_len);
  NUMARG(4, "vocab", vocab);
  const long long rows = rows_of(env, len, vocab);
  if (rows < 0) return NULL;
  if (t_len != (size_t)rows || loss_len != (size_t)rows || lse_len != (size_t)rows)
    FAIL("tessera_native: targets, loss and lse must hold one value per row (%lld)", rows);
  for (long long r = 0; r < rows; r++)
    if (targets[r] < 0 || targets[r] >= (int32_t)vocab) FAIL("tessera_native: target %d of row %lld is outside [0, %d)", targets[r], r, (int)vocab);
  tessera_cross_entropy(logits, targets, loss, lse, (size_t)rows, (int)vocab);
  return NULL;
}

/* crossEntropyBackward(logits, targets, lse, dy, dx, vocab) */
static napi_value CrossEntropyBackward(napi_env env, napi_callback_info info) {
  napi_value argv[6];
  if (!get_args(env, info, 6, argv)) return NULL;
  F32ARG(0, "logits", logits, len);
  I32ARG(1, "targets", targets, t_len);
  F32ARG(2, "lse", lse, lse_len);
  F32ARG(3, "dy", dy, dy_len);
  F32ARG(4, "dx", dx, dx_len);
  NUMARG(5, "vocab", vocab);
  const long long rows = rows_of(env, len, vocab);
  if (rows < 0) return NULL;
  if (t_len != (size_t)rows || lse_len != (size_t)rows || dy_len != (size_t)rows || dx_len != len)
    FAIL("tessera_native: targets, lse and dy must hold one value per row (%lld), dx as many as logits", rows);
  for (long long r = 0; r < rows; r++)
    if (targets[r] < 0 || targets[r] >= (int32_t)vocab) FAIL("tessera_native: target %d of row %lld is outside [0, %d)", targets[r], r, (int)vocab);
  tessera_cross_entropy_backward(logits, targets, lse, dy, dx, (size_t)rows, (int)vocab);
  return NULL;
}

/* klDivergence(student, teacher, kl, lseStudent, lseTeacher, vocab, temperature) */
static napi_value KlDivergence(napi_env env, napi_callback_info info) {
  napi_value argv[7];
  if (!get_args(env, info, 7, argv)) return NULL;
  F32ARG(0, "student", s, len);
  F32ARG(1, "teacher", t, t_len);
  F32ARG(2, "kl", kl, kl_len);
  F32ARG(3, "lseStudent", lse_s, ls_len);
  F32ARG(4, "lseTeacher", lse_t, lt_len);
  NUMARG(5, "vocab", vocab);
  NUMARG(6, "temperature", temperature);
  const long long rows = rows_of(env, len, vocab);
  if (rows < 0) return NULL;
  if (t_len != len) FAIL("tessera_native: teacher must hold as many values as student (%zu)", len);
  if (kl_len != (size_t)rows || ls_len != (size_t)rows || lt_len != (size_t)rows)
    FAIL("tessera_native: kl, lseStudent and lseTeacher must hold one value per row (%lld)", rows);
  if (!(temperature > 0)) FAIL("tessera_native: temperature must be > 0, got %g", temperature);
  tessera_kl_divergence(s, t, kl, lse_s, lse_t, (size_t)rows, (int)vocab, (float)(1.0 / temperature));
  return NULL;
}

/* klDivergenceBackward(student, teacher, lseStudent, lseTeacher, kl, dy, out, vocab, temperature, wrtTeacher) */
static napi_value KlDivergenceBackward(napi_env env, napi_callback_info info) {
  napi_value argv[10];
  if (!get_args(env, info, 10, argv)) return NULL;
  F32ARG(0, "student", s, len);
  F32ARG(1, "teacher", t, t_len);
  F32ARG(2, "lseStudent", lse_s, ls_len);
  F32ARG(3, "lseTeacher", lse_t, lt_len);
  F32ARG(4, "kl", kl, kl_len);
  F32ARG(5, "dy", dy, dy_len);
  F32ARG(6, "out", out, out_len);
  NUMARG(7, "vocab", vocab);
  NUMARG(8, "temperature", temperature);
  bool wrt_teacher = false;
  if (napi_get_value_bool(env, argv[9], &wrt_teacher) != napi_ok) FAIL("tessera_native: wrtTeacher must be a boolean");
  const long long rows = rows_of(env, len, vocab);
  if (rows < 0) return NULL;
  if (t_len != len || out_len != len) FAIL("tessera_native: teacher and out must hold as many values as student (%zu)", len);
  if (ls_len != (size_t)rows || lt_len != (size_t)rows || kl_len != (size_t)rows || dy_len != (size_t)rows)
    FAIL("tessera_native: lseStudent, lseTeacher, kl and dy must hold one value per row (%lld)", rows);
  if (!(temperature > 0)) FAIL("tessera_native: temperature must be > 0, got %g", temperature);
  tessera_kl_divergence_backward(s, t, lse_s, lse_t, kl, dy, out, (size_t)rows, (int)vocab, (float)(1.0 / temperature), wrt_teacher);
  return NULL;
}

napi_status tessera_register_train(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
      {"adam", NULL, Adam, NULL, NULL, NULL, napi_enumerable, NULL},
      {"crossEntropy", NULL, CrossEntropy, NULL, NULL, NULL, napi_enumerable, NULL},
      {"crossEntropyBackward", NULL, CrossEntropyBackward, NULL, NULL, NULL, napi_enumerable, NULL},
      {"klDivergence", NULL, KlDivergence, NULL, NULL, NULL, napi_enumerable, NULL},
      {"klDivergenceBackward", NULL, KlDivergenceBackward, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
