import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, expect } from 'vitest';

import { initBackend } from '../../src/kernels/backend.js';
import { PACKED_DTYPES, type PackedDtype } from '../../src/kernels/contract.js';
import type { NativeAddon } from '../../src/kernels/native/addon.js';
import { isNativeBuilt } from '../../src/kernels/native/index.js';

/** Whether native/build/Release/tessera_native.node exists on this machine. */
export const built = isNativeBuilt();

/**
 * Select the native backend. Where the addon was built it must start; where it was not, selecting
 * it must fail with an error that says so and how to build it (never a silent fallback).
 */
export async function selectNativeOrExpectClearError(): Promise<void> {
  if (built) {
    await expect(initBackend({ backend: 'native' })).resolves.toBe('native');
    expect(tf.getBackend()).toBe('native');
  } else {
    await expect(initBackend({ backend: 'native' })).rejects.toThrow(
      /native backend is not built: .*tessera_native\.node is missing; .*npm run build:native/,
    );
  }
}

/** In a describe block: run its tests on the native backend, then give back the backend it found. */
export function useNativeBackend(): void {
  let previous = '';
  beforeAll(async () => {
    previous = tf.getBackend();
    await selectNativeOrExpectClearError();
  });
  afterAll(async () => {
    await tf.setBackend(previous);
  });
}

/** Deterministic pseudo-random floats in [-1, 1) (a fixed LCG, so failures reproduce). */
export function randoms(size: number, seed = 1): Float32Array {
  const out = new Float32Array(size);
  let s = seed >>> 0;
  for (let i = 0; i < size; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = (s / 2 ** 32) * 2 - 1;
  }
  return out;
}

/** Run `fn` on `backend` and return its result's shape and values, disposing the tensor. */
export async function runOn(
  backend: string,
  fn: () => tf.Tensor,
): Promise<{ shape: number[]; values: Float32Array }> {
  await tf.setBackend(backend);
  const t = tf.tidy(fn);
  const result = { shape: t.shape, values: Float32Array.from(t.dataSync()) };
  t.dispose();
  return result;
}

/** Elementwise |actual - expected| <= atol + rtol * |expected|, reporting the worst index. */
export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, atol = 1e-4, rtol = 1e-4): void {
  expect(actual.length).toBe(expected.length);
  let worst = -1;
  let worstExcess = 0;
  for (let i = 0; i < expected.length; i++) {
    // Equal values (infinities included) and NaN against NaN agree.
    if (actual[i] === expected[i] || (Number.isNaN(actual[i]) && Number.isNaN(expected[i]))) continue;
    const excess = Math.abs(actual[i] - expected[i]) - (atol + rtol * Math.abs(expected[i]));
    if (!(excess <= worstExcess)) {
      worst = i;
      worstExcess = Number.isNaN(excess) ? Infinity : excess;
    }
  }
  if (worst >= 0) {
    expect.fail(`index ${worst}: got ${actual[worst]}, expected ${expected[worst]} (atol ${atol}, rtol ${rtol})`);
  }
}

/**
 * C = op(A)·op(B) (+ bias: one value or n) in double over `round(a)` and `round(b)`, with Σ|a·b|
 * per entry for {@link expectSummationClose}. op transposes where `ta`/`tb`: A [m, k] is stored
 * [k, m], B [k, n] is stored [n, k].
 */
export function gemmReference(
  a: Float32Array,
  b: Float32Array,
  m: number,
  n: number,
  k: number,
  ta: boolean,
  tb: boolean,
  bias: Float32Array | null,
  round: (v: number) => number = (v) => v,
): { out: Float64Array; mag: Float64Array } {
  const out = new Float64Array(m * n);
  const mag = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      let t = 0;
      for (let p = 0; p < k; p++) {
        const v = round(ta ? a[p * m + i]! : a[i * k + p]!) * round(tb ? b[j * k + p]! : b[p * n + j]!);
        s += v;
        t += Math.abs(v);
      }
      out[i * n + j] = s + (bias === null ? 0 : bias[bias.length === 1 ? 0 : j]!);
      mag[i * n + j] = t;
    }
  }
  return { out, mag };
}

/**
 * A float32 GEMM's result against {@link gemmReference}: equal up to float32 summation order,
 * |Δ| <= (k + 2)·2^-23·Σ|a·b| + 2^-23·|C| (k sums, the bias addition, the final rounding).
 */
export function expectSummationClose(actual: Float32Array, ref: { out: Float64Array; mag: Float64Array }, k: number, what: string): void {
  for (let i = 0; i < actual.length; i++) {
    const bound = (k + 2) * 2 ** -23 * ref.mag[i]! + 2 ** -23 * Math.abs(ref.out[i]!) + 1e-30;
    if (!(Math.abs(actual[i]! - ref.out[i]!) <= bound)) expect.fail(`${what} [${i}]: ${actual[i]} vs ${ref.out[i]} (bound ${bound})`);
  }
}

/** One GEMM test case: operands as the matmul kernel passes them, two batches of `a` sharing one `b`. */
export interface GemmCase {
  m: number;
  n: number;
  k: number;
  ta: boolean;
  tb: boolean;
  a: Float32Array;
  b: Float32Array;
  /** n values or one. */
  bias: Float32Array;
}

/** The batch indices of a {@link GemmCase}: a's two matrices, b's one. */
export const GEMM_CASE_A = Int32Array.of(0, 1);
export const GEMM_CASE_B = Int32Array.of(0, 0);

/** A {@link GemmCase} for each [m, n, k] of `shapes` and each pair of transposes. */
export function* gemmCases(shapes: ReadonlyArray<readonly [number, number, number]>): Generator<GemmCase> {
  for (const [m, n, k] of shapes) {
    for (const [ta, tb] of [[false, false], [false, true], [true, false], [true, true]] as const) {
      const seed = m * 7 + n * 11 + k * 13 + (ta ? 1 : 0) + (tb ? 2 : 0);
      const a = randoms(2 * m * k, seed);
      const b = randoms(k * n, seed + 1).map((v) => v * 3);
      const bias = (m + n) % 2 === 0 ? randoms(n, seed + 2) : Float32Array.of(0.25);
      yield { m, n, k, ta, tb, a, b, bias };
    }
  }
}

/** Each batch of a {@link GemmCase}'s output against {@link gemmReference} (over `round`ed operands). */
export function expectGemmCase(out: Float32Array, c: GemmCase, what: string, round?: (v: number) => number): void {
  const { m, n, k, ta, tb, a, b, bias } = c;
  for (let batch = 0; batch < 2; batch++) {
    const ref = gemmReference(a.subarray(batch * m * k, (batch + 1) * m * k), b, m, n, k, ta, tb, bias, round);
    expectSummationClose(out.subarray(batch * m * n, (batch + 1) * m * n), ref, k, `${what} ${m}x${n}x${k} ta=${ta} tb=${tb} batch ${batch}`);
  }
}

/**
 * `w` [rows, cols] packed as `dtype` by the addon (`kind` its number; int8 with one scale per
 * row), and the packed values widened back to float32.
 */
export function packWeights(addon: NativeAddon, dtype: PackedDtype, w: Float32Array, rows: number, cols: number) {
  const kind = PACKED_DTYPES.indexOf(dtype);
  const data = dtype === 'int8' ? new Int8Array(rows * cols) : new Uint16Array(rows * cols);
  const scales = dtype === 'int8' ? new Float32Array(rows) : null;
  addon.quantPack(kind, w, data, scales, rows, cols);
  const widened = new Float32Array(rows * cols);
  addon.quantUnpack(kind, data, scales, widened, rows, cols);
  return { kind, data, scales, widened };
}
