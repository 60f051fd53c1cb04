import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, expect } from 'vitest';

import { initBackend } from '../../src/kernels/backend.js';
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
