/*
 * Vectorisation helpers. The addon is built for baseline x86-64 (it may be copied between
 * machines), so hot loops are compiled three times with GCC's target_clones and the loader picks
 * the AVX-512, AVX2 or SSE2 version for the running CPU. Clones are named by ISA feature, not by
 * "arch=": GCC dispatches arch clones on the CPU model, and GCC 12 does not know recent ones.
 */
#ifndef TESSERA_SIMD_H
#define TESSERA_SIMD_H

#include <math.h>
#include <stdint.h>

#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define TESSERA_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define TESSERA_CLONES
#endif

#define TESSERA_INLINE static inline __attribute__((always_inline))

/* Whether this CPU runs AVX-512F and AVX-512BW, the ISA of the hand-written AVX-512 kernels (asked once per file). */
static inline int tessera_cpu_avx512(void) {
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
  static int probed, available;
  if (!probed) {
    __builtin_cpu_init();
    available = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw");
    probed = 1;
  }
  return available;
#else
  return 0;
#endif
}

/*
 * expf without a libm call, so loops around it vectorise: Cephes' degree-5 polynomial on the
 * reduced argument, scaled by 2^n through the exponent bits (about 1 ulp on [-87, 88]).
 */
TESSERA_INLINE float tessera_expf(float x) {
  const float hi = 88.3762626647949f, lo = -87.3365447505531f;
  const float xc = x > hi ? hi : (x < lo ? lo : x);
  /* Round x*log2(e) to nearest with the 1.5*2^23 trick (no floor call, no -ffast-math). */
  const float fx = (xc * 1.44269504088896341f + 12582912.0f) - 12582912.0f;
  float r = xc - fx * 0.693359375f;
  r -= fx * -2.12194440e-4f;
  const float z = r * r;
  const float p = ((((1.9875691500e-4f * r + 1.3981999507e-3f) * r + 8.3334519073e-3f) * r +
                    4.1665795894e-2f) * r + 1.6666665459e-1f) * r + 5.0000001201e-1f;
  const float y = p * z + r + 1.0f;
  union {
    int32_t i;
    float f;
  } scale;
  scale.i = ((int32_t)fx + 127) << 23;
  const float e = y * scale.f;
  /* Saturate like expf: 0 below the normal range, inf above; NaN passes through y. */
  return x < lo ? 0.0f : (x > hi ? INFINITY : e);
}

/*
 * logf for finite x > 0 (Cephes): x = m 2^e with m in [sqrt(1/2), sqrt(2)), a degree-8 polynomial
 * in m - 1, and log(2) split in two parts so e log(2) adds no rounding error.
 */
TESSERA_INLINE float tessera_logf(float x) {
  union {
    float f;
    int32_t i;
  } v = {x};
  float e = (float)(((v.i >> 23) & 0xff) - 127);
  v.i = (v.i & 0x007fffff) | 0x3f800000; /* the mantissa as a float in [1, 2) */
  const int above = v.f > 1.41421356f; /* selects, not a branch: the loops around vectorise */
  const float m = above ? 0.5f * v.f : v.f;
  e += above ? 1.0f : 0.0f;
  const float f = m - 1.0f, z = f * f;
  float p = 7.0376836292e-2f;
  p = p * f - 1.1514610310e-1f;
  p = p * f + 1.1676998740e-1f;
  p = p * f - 1.2420140846e-1f;
  p = p * f + 1.4249322787e-1f;
  p = p * f - 1.6668057665e-1f;
  p = p * f + 2.0000714765e-1f;
  p = p * f - 2.4999993993e-1f;
  p = p * f + 3.3333331174e-1f;
  const float y = f * z * p - 2.12194440e-4f * e - 0.5f * z;
  return f + y + 0.693359375f * e;
}

/* SiLU (swish): x sigmoid(x). */
TESSERA_INLINE float tessera_siluf(float x) { return x / (1.0f + tessera_expf(-x)); }

/* Softmax of a row in place, max-subtracted so exp never overflows (as tfjs does). */
TESSERA_INLINE void tessera_softmax_inplace(float *x, int n) {
  float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
  for (int j = 0; j < n; j++) mx = x[j] > mx ? x[j] : mx;
  for (int j = 0; j < n; j++) x[j] = tessera_expf(x[j] - mx);
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (int j = 0; j < n; j++) sum += x[j];
  const float inv = 1.0f / sum;
  for (int j = 0; j < n; j++) x[j] *= inv;
}

/* tanhf from exp (Cephes): a polynomial near 0, where 1 - 2/(e^2x + 1) would lose digits. */
TESSERA_INLINE float tessera_tanhf(float x) {
  const float ax = fabsf(x);
  const float z = x * x;
  const float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z +
                        1.33314422036e-1f) * z - 3.33332819422e-1f) * z * x + x;
  const float e = tessera_expf(2.0f * (ax > 9.0f ? 9.0f : ax));
  const float large = copysignf(1.0f - 2.0f / (e + 1.0f), x);
  return ax < 0.625f ? small : large;
}

/* erff as tfjs' cpu backend computes it (Abramowitz & Stegun 7.1.26, |error| < 1.5e-7). */
TESSERA_INLINE float tessera_erff(float x) {
  const float ax = fabsf(x);
  const float t = 1.0f / (1.0f + 0.3275911f * ax);
  const float poly = ((((1.061405429f * t - 1.453152027f) * t + 1.421413741f) * t - 0.284496736f) * t +
                      0.254829592f) * t;
  return copysignf(1.0f - poly * tessera_expf(-ax * ax), x);
}

#endif
