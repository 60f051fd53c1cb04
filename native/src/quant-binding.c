/*
 * N-API glue for the packed-weight linear kernels (quant.c), registered onto the addon's exports
 * by binding.c's Init. Same conventions as binding.c: sizes are checked here and a TypeError says
 * which argument is wrong.
 */
#include <node_api.h>
#include <stdio.h>
#include <string.h>

#include "ffn.h"
#include "kernels.h"
#include "parallel.h"
#include "napi-args.h"
#include "quant.h"

/* A typed array (any element type); its type and length. NULL data with *ok = 1 for null. */
static int array_of(napi_env env, napi_value v, int allow_null, void **data, size_t *len, napi_typedarray_type *type) {
  napi_valuetype vt;
  *data = NULL;
  *len = 0;
  if (napi_typeof(env, v, &vt) != napi_ok) return 0;
  if (allow_null && (vt == napi_null || vt == napi_undefined)) return 1;
  bool is_ta = false;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta) return 0;
  if (napi_get_typedarray_info(env, v, type, len, data, NULL, NULL) != napi_ok) return 0;
  static float empty;
  if (*data == NULL) *data = &empty;
  return 1;
}

/*
 * A packed weight of `kind` holding exactly `count` values: a Uint16Array (bf16, f16) or an
 * Int8Array (int8, with `scales` of `rows` floats). Returns its data, or NULL after throwing.
 */
static const void *packed_arg(napi_env env, napi_value data_v, napi_value scales_v, int kind, size_t count,
                              size_t rows, const float **scales, const char *name) {
  void *data = NULL, *sc = NULL;
  size_t len = 0, sc_len = 0;
  napi_typedarray_type type = napi_float32_array, sc_type = napi_float32_array;
  const napi_typedarray_type want = kind == TESSERA_QUANT_INT8 ? napi_int8_array : napi_uint16_array;
  char msg[200] = "";
  if (!array_of(env, data_v, 0, &data, &len, &type) || type != want)
    snprintf(msg, sizeof msg, "tessera_native: %s must be a%s", name, kind == TESSERA_QUANT_INT8 ? "n Int8Array" : " Uint16Array");
  else if (len != count)
    snprintf(msg, sizeof msg, "tessera_native: %s must hold %zu values, not %zu", name, count, len);
  else if (!array_of(env, scales_v, 1, &sc, &sc_len, &sc_type) || (sc != NULL && sc_type != napi_float32_array))
    snprintf(msg, sizeof msg, "tessera_native: the scales of %s must be a Float32Array or null", name);
  else if (kind == TESSERA_QUANT_INT8 && (sc == NULL || sc_len != rows))
    snprintf(msg, sizeof msg, "tessera_native: int8 %s needs %zu scales", name, rows);
  if (msg[0] != '\0') {
    napi_throw_type_error(env, NULL, msg);
    return NULL;
  }
  *scales = sc;
  return data;
}

#define KIND(i, var)                                                                       \
  INT(i, "kind", var);                                                                     \
  if (var >= TESSERA_QUANT_COUNT) FAIL("tessera_native: unknown packed weight kind %d", var);

/* quantPack(kind, w, data, scales|null, rows, cols): pack w [rows, cols] into data (+ int8 scales). */
static napi_value QuantPack(napi_env env, napi_callback_info info) {
  ARGS(6);
  KIND(0, kind);
  F32(1, "w", 0, w, w_len);
  INT(4, "rows", rows);
  INT(5, "cols", cols);
  const size_t count = (size_t)rows * cols;
  if (w_len != count) FAIL("tessera_native: w must hold rows*cols = %zu values", count);
  const float *scales = NULL;
  const void *data = packed_arg(env, argv[2], argv[3], kind, count, (size_t)rows, &scales, "data");
  if (data == NULL) return NULL;
  tessera_quant_pack(kind, w, (size_t)rows, (size_t)cols, (void *)data, (float *)scales);
  return NULL;
}

/* quantUnpack(kind, data, scales|null, out, rows, cols): out = the float32 values of the packed weight. */
static napi_value QuantUnpack(napi_env env, napi_callback_info info) {
  ARGS(6);
  KIND(0, kind);
  F32(3, "out", 0, out, out_len);
  INT(4, "rows", rows);
  INT(5, "cols", cols);
  const size_t count = (size_t)rows * cols;
  if (out_len != count) FAIL("tessera_native: out must hold rows*cols = %zu values", count);
  const float *scales = NULL;
  const void *data = packed_arg(env, argv[1], argv[2], kind, count, (size_t)rows, &scales, "data");
  if (data == NULL) return NULL;
  tessera_quant_unpack(kind, data, scales, (size_t)rows, (size_t)cols, out);
  return NULL;
}

/* The row count of x [rows, in] with out [rows, n], or -1 after throwing. */
static int64_t rows_of(napi_env env, size_t x_len, int in, int n, size_t out_len, int act) {
  char msg[200] = "";
  const size_t rows = in == 0 ? 0 : x_len / in;
  if (act >= TESSERA_FFN_COUNT) snprintf(msg, sizeof msg, "tessera_native: unknown ffn activation %d", act);
  else if (in == 0 || x_len % in != 0) snprintf(msg, sizeof msg, "tessera_native: x must hold whole rows of in = %d values", in);
  else if (out_len != rows * n) snprintf(msg, sizeof msg, "tessera_native: out must hold rows*n = %zu values", rows * n);
  else if (rows > INT32_MAX) snprintf(msg, sizeof msg, "tessera_native: too many rows");
  if (msg[0] == '\0') return (int64_t)rows;
  napi_throw_type_error(env, NULL, msg);
  return -1;
}

/* quantLinear(x, kind, w, scales|null, bias|null, out, in, n, act): out = act(x . w^T + bias), w packed [n, in]. */
static napi_value QuantLinear(napi_env env, napi_callback_info info) {
  ARGS(9);
  F32(0, "x", 0, x, x_len);
  KIND(1, kind);
  F32(4, "bias", 1, bias, bias_len);
  F32(5, "out", 0, out, out_len);
  INT(6, "in", in);
  INT(7, "n", n);
  INT(8, "act", act);
  const int64_t rows = rows_of(env, x_len, in, n, out_len, act);
  if (rows < 0) return NULL;
  if (bias != NULL && bias_len != (size_t)n) FAIL("tessera_native: bias must hold n = %d values", n);
  const float *scales = NULL;
  const void *w = packed_arg(env, argv[2], argv[3], kind, (size_t)n * in, (size_t)n, &scales, "w");
  if (w == NULL) return NULL;
  if (!tessera_quant_linear(x, (int)rows, in, kind, w, scales, bias, out, n, act)) FAIL("tessera_native: out of memory");
  return NULL;
}

/* Element i of the JS array `list`, or NULL after throwing. */
static napi_value element(napi_env env, napi_value list, uint32_t i) {
  napi_value v;
  return napi_get_element(env, list, i, &v) == napi_ok ? v : NULL;
}

/*
 * linearMany(x, in, kinds: Int32Array, weights[], scales[], biases[], outs[]): for each map j,
 * outs[j] = x . weights[j]^T + biases[j], weights[j] [n_j, in] float32 (kind -1) or packed as
 * kinds[j] (int8 with scales[j]); n_j is outs[j]'s row width. See tessera_linear_many.
 */
static napi_value LinearMany(napi_env env, napi_callback_info info) {
  ARGS(7);
  F32(0, "x", 0, x, x_len);
  INT(1, "in", in);
  I32(2, "kinds", kinds, count);
  if (count > TESSERA_LINEAR_MANY_MAX) FAIL("tessera_native: at most %d maps, not %zu", TESSERA_LINEAR_MANY_MAX, count);
  if (in <= 0 || x_len % (size_t)in != 0) FAIL("tessera_native: x must hold whole rows of in = %d values", in);
  const size_t rows = x_len / (size_t)in;
  if (rows > INT32_MAX) FAIL("tessera_native: too many rows");
  if (rows == 0) return NULL;
  struct tessera_linear_map maps[TESSERA_LINEAR_MANY_MAX];
  for (uint32_t j = 0; j < count; j++) {
    napi_value w_v = element(env, argv[3], j), s_v = element(env, argv[4], j), b_v = element(env, argv[5], j),
               o_v = element(env, argv[6], j);
    if (w_v == NULL || s_v == NULL || b_v == NULL || o_v == NULL) FAIL("tessera_native: weights, scales, biases and outs must be arrays of %zu", count);
    float *out = NULL, *bias = NULL;
    size_t out_len = 0, bias_len = 0;
    if (!typed_array(env, o_v, napi_float32_array, 0, (void **)&out, &out_len)) FAIL("tessera_native: outs[%u] must be a Float32Array", j);
    if (!typed_array(env, b_v, napi_float32_array, 1, (void **)&bias, &bias_len)) FAIL("tessera_native: biases[%u] must be a Float32Array or null", j);
    if (out_len % rows != 0) FAIL("tessera_native: outs[%u] must hold whole rows of x's %zu", j, rows);
    const int n = (int)(out_len / rows);
    if (bias != NULL && bias_len != (size_t)n) FAIL("tessera_native: biases[%u] must hold n = %d values", j, n);
    const int kind = kinds[j];
    const float *scales = NULL;
    const void *w;
    if (kind < 0) {
      float *wf = NULL;
      size_t w_len = 0;
      if (!typed_array(env, w_v, napi_float32_array, 0, (void **)&wf, &w_len) || w_len != (size_t)n * in)
        FAIL("tessera_native: weights[%u] must be a Float32Array of n*in = %zu values", j, (size_t)n * in);
      w = wf;
    } else {
      if (kind >= TESSERA_QUANT_COUNT) FAIL("tessera_native: unknown packed weight kind %d", kind);
      char name[24];
      snprintf(name, sizeof name, "weights[%u]", j);
      w = packed_arg(env, w_v, s_v, kind, (size_t)n * in, (size_t)n, &scales, name);
      if (w == NULL) return NULL;
    }
    maps[j] = (struct tessera_linear_map){kind, w, scales, bias, out, n};
  }
  if (!tessera_linear_many(x, (int)rows, in, maps, (int)count)) FAIL("tessera_native: out of memory");
  return NULL;
}

/*
 * quantGatedLinear(x, kind, wg, sg|null, wu, su|null, bg|null, bu|null, out, in, n, act):
 * out = act(x . wg^T + bg) * (x . wu^T + bu), both weights packed [n, in].
 */
static napi_value QuantGatedLinear(napi_env env, napi_callback_info info) {
  ARGS(12);
  F32(0, "x", 0, x, x_len);
  KIND(1, kind);
  F32(6, "bg", 1, bg, bg_len);
  F32(7, "bu", 1, bu, bu_len);
  F32(8, "out", 0, out, out_len);
  INT(9, "in", in);
  INT(10, "n", n);
  INT(11, "act", act);
  const int64_t rows = rows_of(env, x_len, in, n, out_len, act);
  if (rows < 0) return NULL;
  if ((bg != NULL && bg_len != (size_t)n) || (bu != NULL && bu_len != (size_t)n))
    FAIL("tessera_native: bg and bu must hold n = %d values", n);
  const float *sg = NULL, *su = NULL;
  const void *wg = packed_arg(env, argv[2], argv[3], kind, (size_t)n * in, (size_t)n, &sg, "wg");
  if (wg == NULL) return NULL;
  const void *wu = packed_arg(env, argv[4], argv[5], kind, (size_t)n * in, (size_t)n, &su, "wu");
  if (wu == NULL) return NULL;
  if (!tessera_quant_gated_linear(x, (int)rows, in, kind, wg, sg, wu, su, bg, bu, out, n, act))
    FAIL("tessera_native: out of memory");
  return NULL;
}

/* A packed projection given as (kind, data | null, scales | null) at packed[at..at+2], of `count` values in `rows` rows. */
static int packed_projection(napi_env env, napi_value packed, uint32_t at, size_t count, size_t rows, const void **data,
                             const float **scales, int *kind, const char *name) {
  napi_value kind_v, data_v, scales_v;
  napi_valuetype vt;
  if (napi_get_element(env, packed, at, &kind_v) != napi_ok || napi_get_element(env, packed, at + 1, &data_v) != napi_ok ||
      napi_get_element(env, packed, at + 2, &scales_v) != napi_ok || napi_typeof(env, data_v, &vt) != napi_ok) {
    napi_throw_type_error(env, NULL, "tessera_native: quantMambaMixer packed must be [kind, data, scales] for in, out, x and dt");
    return 0;
  }
  *data = NULL;
  if (vt == napi_null || vt == napi_undefined) return 1;
  int32_t k = -1;
  if (napi_get_value_int32(env, kind_v, &k) != napi_ok || k < 0 || k >= TESSERA_QUANT_COUNT) {
    napi_throw_type_error(env, NULL, "tessera_native: quantMambaMixer: unknown packed weight kind");
    return 0;
  }
  *kind = k;
  *data = packed_arg(env, data_v, scales_v, k, count, rows, scales, name);
  return *data != NULL;
}

/*
 * quantMambaMixer(dims, operands, outputs, eps, preNormEps, addResidual, packed): binding.c's
 * mambaMixer with any of its projections packed; packed = [kind, data|null, scales|null] for
 * in_proj, out_proj, x_proj and dt_proj in turn (12 entries), and those operands null where packed.
 */
static napi_value QuantMambaMixer(napi_env env, napi_callback_info info) {
  ARGS(7);
  void *dims_p = NULL;
  size_t ndims = 0;
  napi_typedarray_type type = napi_float32_array;
  if (!array_of(env, argv[0], 0, &dims_p, &ndims, &type) || type != napi_int32_array || ndims != 7)
    FAIL("tessera_native: quantMambaMixer dims must be an Int32Array of 7");
  const int32_t *dims = dims_p;
  for (int i = 0; i < 7; i++) {
    if (dims[i] < 1) FAIL("tessera_native: quantMambaMixer dims[%d] = %d must be positive", i, dims[i]);
  }
  const size_t B = dims[0], L = dims[1], H = dims[2], E = dims[3], N = dims[4], R = dims[5], K = dims[6];
  struct tessera_mamba m = {.batch = dims[0], .len = dims[1], .hidden = dims[2], .inner = dims[3], .nstate = dims[4], .rank = dims[5], .kernel = dims[6]};
  if (!packed_projection(env, argv[6], 0, 2 * E * H, 2 * E, &m.in_packed, &m.in_scales, &m.in_kind, "inWeight") ||
      !packed_projection(env, argv[6], 3, H * E, H, &m.out_packed, &m.out_scales, &m.out_kind, "outWeight") ||
      !packed_projection(env, argv[6], 6, (R + 2 * N) * E, R + 2 * N, &m.x_packed, &m.x_scales, &m.x_kind, "xWeight") ||
      !packed_projection(env, argv[6], 9, E * R, E, &m.dt_packed, &m.dt_scales, &m.dt_kind, "dtWeight"))
    return NULL;
  const struct {
    const char *name;
    size_t len;
    int optional;
  } want[22] = {
      {"hidden", B * L * H, 0}, {"keep", B * L, 1}, {"convIn", B * E * K, 1}, {"ssmIn", B * E * N, 1},
      {"inWeight", 2 * E * H, m.in_packed != NULL}, {"inBias", 2 * E, 1}, {"convWeight", E * K, 0}, {"convBias", E, 1},
      {"xWeight", (R + 2 * N) * E, m.x_packed != NULL}, {"dtWeight", E * R, m.dt_packed != NULL}, {"dtBias", E, 0}, {"A", E * N, 0},
      {"D", E, 0}, {"outWeight", H * E, m.out_packed != NULL}, {"outBias", H, 1}, {"dtNorm", R, 1}, {"bNorm", N, 1},
      {"cNorm", N, 1}, {"preNorm", H, 1}, {"out", B * L * H, 0}, {"convOut", B * E * K, 0},
      {"ssmOut", B * E * N, 0}};
  float *ptr[22];
  for (int i = 0; i < 22; i++) {
    napi_value v;
    if (napi_get_element(env, argv[i < 19 ? 1 : 2], i < 19 ? i : i - 19, &v) != napi_ok) FAIL("tessera_native: quantMambaMixer operands");
    size_t len = 0;
    napi_typedarray_type t = napi_float32_array;
    if (!array_of(env, v, want[i].optional, (void **)&ptr[i], &len, &t) || (ptr[i] != NULL && t != napi_float32_array))
      FAIL("tessera_native: quantMambaMixer %s must be a Float32Array%s", want[i].name, want[i].optional ? " or null" : "");
    if (ptr[i] != NULL && len != want[i].len)
      FAIL("tessera_native: quantMambaMixer %s holds %zu values, expected %zu", want[i].name, len, want[i].len);
  }
  if ((ptr[15] == NULL) != (ptr[16] == NULL) || (ptr[15] == NULL) != (ptr[17] == NULL))
    FAIL("tessera_native: quantMambaMixer takes all three inner norms (dtNorm, bNorm, cNorm) or none");
  double eps = 0, pre_norm_eps = 0;
  bool add_residual = false;
  if (napi_get_value_double(env, argv[3], &eps) != napi_ok || napi_get_value_double(env, argv[4], &pre_norm_eps) != napi_ok ||
      napi_get_value_bool(env, argv[5], &add_residual) != napi_ok)
    FAIL("tessera_native: quantMambaMixer eps, preNormEps and addResidual must be numbers and a boolean");
  m.in_weight = ptr[4], m.in_bias = ptr[5], m.conv_weight = ptr[6], m.conv_bias = ptr[7], m.x_weight = ptr[8];
  m.dt_weight = ptr[9], m.dt_bias = ptr[10], m.A = ptr[11], m.D = ptr[12], m.out_weight = ptr[13], m.out_bias = ptr[14];
  m.dt_norm = ptr[15], m.b_norm = ptr[16], m.c_norm = ptr[17], m.norm_eps = (float)eps;
  m.pre_norm = ptr[18], m.pre_norm_eps = (float)pre_norm_eps, m.add_residual = add_residual;
  const char *error = tessera_mamba_mixer(&m, ptr[0], ptr[1], ptr[2], ptr[3], ptr[19], ptr[20], ptr[21], tessera_threads());
  if (error != NULL) FAIL("tessera_native: quantMambaMixer: %s", error);
  return NULL;
}

/* quantIsa(name?): the vector path in use ("avx512", "avx2", "portable"); with a name, switch to it first. */
static napi_value QuantIsa(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], result;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) FAIL("tessera_native: quantIsa");
  napi_valuetype vt = napi_undefined;
  if (argc >= 1 && napi_typeof(env, argv[0], &vt) == napi_ok && vt == napi_string) {
    char name[32];
    size_t len = 0;
    napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len);
    if (!tessera_quant_use_isa(name)) FAIL("tessera_native: this CPU cannot run the '%s' path", name);
  }
  const char *isa = tessera_quant_isa();
  if (napi_create_string_utf8(env, isa, strlen(isa), &result) != napi_ok) return NULL;
  return result;
}

/* ---- a probe of the thread pool for the tests (parallel.c) ---- */

struct probe {
  int32_t *begins, *visits, *inner;
  int inner_n, threads;
};

static void probe_inner(void *ctx, size_t begin, size_t end) {
  int32_t *count = ctx;
  __atomic_fetch_add(count, (int32_t)(end - begin), __ATOMIC_RELAXED);
}

static void probe_part(void *ctx, size_t begin, size_t end) {
  const struct probe *p = ctx;
  for (size_t i = begin; i < end; i++) {
    p->begins[i] = (int32_t)begin;
    p->visits[i]++;
  }
  /* A call from inside a part: its parts run on this thread; each index must still be covered once. */
  if (p->inner_n > 0) tessera_parallel_for((size_t)p->inner_n, 1, p->threads, probe_inner, &p->inner[begin]);
}

/*
 * parallelForProbe(n, grain, threads, innerN, begins, visits, inner): tessera_parallel_for over
 * [0, n); each index records its part's first index in begins and counts its visits in visits;
 * each part, when innerN > 0, runs a nested call over innerN indices and adds how many it covered
 * to inner[its first index].
 */
static napi_value ParallelForProbe(napi_env env, napi_callback_info info) {
  ARGS(7);
  INT(0, "n", n);
  INT(1, "grain", grain);
  INT(2, "threads", threads);
  INT(3, "innerN", inner_n);
  I32(4, "begins", begins, begins_len);
  I32(5, "visits", visits, visits_len);
  I32(6, "inner", inner, inner_len);
  if (begins_len < (size_t)n || visits_len < (size_t)n || inner_len < (size_t)n) FAIL("tessera_native: parallelForProbe: arrays must hold n = %d values", n);
  struct probe p = {begins, visits, inner, inner_n, threads > 0 ? threads : 1};
  tessera_parallel_for((size_t)n, (size_t)grain, p.threads, probe_part, &p);
  return NULL;
}

/* setReadAhead(on): the pool's read-ahead between streaming calls on or off (parallel.c). */
static napi_value SetReadAhead(napi_env env, napi_callback_info info) {
  ARGS(1);
  bool on = true;
  if (napi_get_value_bool(env, argv[0], &on) != napi_ok) FAIL("tessera_native: setReadAhead: on must be a boolean");
  tessera_pool_set_read_ahead(on);
  return NULL;
}

/* readAheadPublished() -> { seq, bytes }: how many read-aheads were published, and the last one's region sizes. */
static napi_value ReadAheadPublished(napi_env env, napi_callback_info info) {
  (void)info;
  size_t bytes[TESSERA_REGIONS_MAX];
  unsigned seq = 0;
  const int count = tessera_pool_read_ahead_published(bytes, &seq);
  napi_value result, list, value;
  CHECK(napi_create_object(env, &result));
  CHECK(napi_create_uint32(env, seq, &value));
  CHECK(napi_set_named_property(env, result, "seq", value));
  CHECK(napi_create_array_with_length(env, (size_t)count, &list));
  for (int i = 0; i < count; i++) {
    CHECK(napi_create_double(env, (double)bytes[i], &value));
    CHECK(napi_set_element(env, list, (uint32_t)i, value));
  }
  CHECK(napi_set_named_property(env, result, "bytes", list));
  return result;
}

napi_status tessera_register_quant(napi_env env, napi_value exports) {
  /* Pick the vector path now, on the main thread, before any worker thread asks for it. */
  (void)tessera_quant_isa();
  const napi_property_descriptor props[] = {
      {"quantPack", NULL, QuantPack, NULL, NULL, NULL, napi_enumerable, NULL},
      {"quantUnpack", NULL, QuantUnpack, NULL, NULL, NULL, napi_enumerable, NULL},
      {"quantLinear", NULL, QuantLinear, NULL, NULL, NULL, napi_enumerable, NULL},
      {"linearMany", NULL, LinearMany, NULL, NULL, NULL, napi_enumerable, NULL},
      {"quantGatedLinear", NULL, QuantGatedLinear, NULL, NULL, NULL, napi_enumerable, NULL},
      {"quantMambaMixer", NULL, QuantMambaMixer, NULL, NULL, NULL, napi_enumerable, NULL},
      {"quantIsa", NULL, QuantIsa, NULL, NULL, NULL, napi_enumerable, NULL},
      {"parallelForProbe", NULL, ParallelForProbe, NULL, NULL, NULL, napi_enumerable, NULL},
      {"setReadAhead", NULL, SetReadAhead, NULL, NULL, NULL, napi_enumerable, NULL},
      {"readAheadPublished", NULL, ReadAheadPublished, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
