/*
 * N-API glue for the GEMMs: the bf16-compute one and the matmul precision switch (gemm-bf16.c),
 * and the float32 one (gemm-f32.c), registered onto the addon's exports by binding.c's Init.
 */
#include <node_api.h>
#include <stdio.h>
#include <string.h>

#include "gemm-bf16.h"
#include "gemm-f32.h"
#include "gemm-tiles.h"
#include "napi-args.h"

/* setMatmulPrecision('float32' | 'bfloat16'): throws (naming the missing CPU feature) when bf16 can't run. */
static napi_value SetMatmulPrecision(napi_env env, napi_callback_info info) {
  ARGS(1);
  char name[32] = "";
  size_t len = 0;
  if (napi_get_value_string_utf8(env, argv[0], name, sizeof name, &len) != napi_ok)
    FAIL("tessera_native: the matmul precision must be a string");
  const int bf16 = strcmp(name, "bfloat16") == 0;
  if (!bf16 && strcmp(name, "float32") != 0)
    FAIL("tessera_native: unknown matmul precision '%s' (expected 'float32' or 'bfloat16')", name);
  if (!tessera_set_matmul_precision(bf16)) {
    char msg[256];
    snprintf(msg, sizeof msg,
             "bfloat16 matmul precision needs a CPU with AVX512_BF16; this one lacks %s", tessera_bf16_missing());
    napi_throw_error(env, "ERR_TESSERA_CPU_FEATURE", msg);
    return NULL;
  }
  return NULL;
}

static napi_value GetMatmulPrecision(napi_env env, napi_callback_info info) {
  napi_value result;
  CHECK(napi_create_string_utf8(env, tessera_matmul_precision() ? "bfloat16" : "float32", NAPI_AUTO_LENGTH, &result));
  return result;
}

/* bf16Missing() -> null, or the name of what this CPU/OS lacks for the bf16 GEMM. */
static napi_value Bf16Missing(napi_env env, napi_callback_info info) {
  napi_value result;
  const char *missing = tessera_bf16_missing();
  if (missing == NULL) CHECK(napi_get_null(env, &result));
  else CHECK(napi_create_string_utf8(env, missing, NAPI_AUTO_LENGTH, &result));
  return result;
}

/* bf16ForceAbsent(absent): tests take the "CPU lacks it" path on any machine (absent also resets to float32). */
static napi_value Bf16ForceAbsent(napi_env env, napi_callback_info info) {
  return set_switch(env, info, "bf16ForceAbsent", tessera_bf16_force_absent);
}

static napi_value boolean(napi_env env, int value) {
  napi_value result;
  CHECK(napi_get_boolean(env, value != 0, &result));
  return result;
}

/* amxAvailable() -> whether the bf16 GEMM runs on AMX tiles (else on vdpbf16ps). */
static napi_value AmxAvailable(napi_env env, napi_callback_info info) { return boolean(env, tessera_amx_available()); }

/* amxForceAbsent(absent): tests take the vdpbf16ps path on an AMX machine. */
static napi_value AmxForceAbsent(napi_env env, napi_callback_info info) {
  return set_switch(env, info, "amxForceAbsent", tessera_amx_force_absent);
}

/* One GEMM over matmul's operands (no activation); its name for the errors. */
static napi_value run_gemm(napi_env env, napi_callback_info info, tessera_gemm_fn gemm, const char *name) {
  ARGS(11);
  MATMUL_OPERANDS();
  const size_t a_size = (size_t)m * k, b_size = (size_t)k * n, c_size = (size_t)m * n;
  for (size_t i = 0; i < batch; i++) {
    const float *A = a + (size_t)a_idx[i] * a_size;
    const float *B = b + (size_t)b_idx[i] * b_size;
    /* A [m, k] is stored [k, m] when transposed; B [k, n] is stored [n, k] when transposed. */
    const size_t a_rs = trans_a ? 1 : (size_t)k, a_cs = trans_a ? (size_t)m : 1;
    const size_t b_ks = trans_b ? 1 : (size_t)n, b_ns = trans_b ? (size_t)k : 1;
    if (!gemm(m, n, k, A, a_rs, a_cs, TESSERA_BF16_B_F32, B, b_ks, b_ns, NULL, bias, bias_len, out + i * c_size,
              (size_t)n)) {
      napi_throw_error(env, NULL, name);
      return NULL;
    }
  }
  return NULL;
}

/* gemmBf16(a, b, out, aIdx, bIdx, m, n, k, transA, transB, bias|null): matmul's product (no activation) in bf16. */
static napi_value GemmBf16(napi_env env, napi_callback_info info) {
  const char *missing = tessera_bf16_missing();
  if (missing != NULL) FAIL("tessera_native: the bf16 GEMM needs AVX512_BF16; this CPU lacks %s", missing);
  return run_gemm(env, info, tessera_gemm_bf16, "tessera_native: out of memory for the bf16 GEMM's packed panels");
}

/* gemmF32(...): the same product by the float32 GEMM; throws where it cannot run (no AVX-512). */
static napi_value GemmF32(napi_env env, napi_callback_info info) {
  if (!tessera_gemm_f32_available()) FAIL("tessera_native: the float32 GEMM needs AVX-512F and AVX-512BW, which this CPU lacks");
  return run_gemm(env, info, tessera_gemm_f32, "tessera_native: out of memory for the float32 GEMM's packed panels");
}

/* gemmF32Available() -> whether packed weights' prefill runs on gemm-f32.c (else widen-then-sgemm). */
static napi_value GemmF32Available(napi_env env, napi_callback_info info) {
  return boolean(env, tessera_gemm_f32_available());
}

/* gemmF32ForceAbsent(absent): tests and benchmarks take widen-then-sgemm where packed prefill would use gemm-f32.c. */
static napi_value GemmF32ForceAbsent(napi_env env, napi_callback_info info) {
  return set_switch(env, info, "gemmF32ForceAbsent", tessera_gemm_f32_force_absent);
}

napi_status tessera_register_gemm(napi_env env, napi_value exports) {
  const napi_property_descriptor props[] = {
      {"setMatmulPrecision", NULL, SetMatmulPrecision, NULL, NULL, NULL, napi_enumerable, NULL},
      {"getMatmulPrecision", NULL, GetMatmulPrecision, NULL, NULL, NULL, napi_enumerable, NULL},
      {"bf16Missing", NULL, Bf16Missing, NULL, NULL, NULL, napi_enumerable, NULL},
      {"bf16ForceAbsent", NULL, Bf16ForceAbsent, NULL, NULL, NULL, napi_enumerable, NULL},
      {"amxAvailable", NULL, AmxAvailable, NULL, NULL, NULL, napi_enumerable, NULL},
      {"amxForceAbsent", NULL, AmxForceAbsent, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gemmBf16", NULL, GemmBf16, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gemmF32", NULL, GemmF32, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gemmF32Available", NULL, GemmF32Available, NULL, NULL, NULL, napi_enumerable, NULL},
      {"gemmF32ForceAbsent", NULL, GemmF32ForceAbsent, NULL, NULL, NULL, napi_enumerable, NULL},
  };
  return napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
}
