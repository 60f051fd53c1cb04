import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { createContext, Linear } from '../../src/index.js';
import { batchedMatMul } from '../../src/ops/batched-matmul.js';
import { prefersInOutWeights } from '../../src/ops/linear.js';

describe('Linear keeps the weight layout its backend wants (an [in, out] copy on wasm and cpu, none on BLAS backends)', () => {
  it('matches x·Wᵀ, follows assign(), and keeps the tensor count fixed from construction', () => {
    const layer = new Linear(5, 3, { bias: true });
    const x = tf.randomNormal([2, 4, 5]);
    const reference = (): tf.Tensor => tf.tidy(() => tf.matMul(x.reshape([8, 5]), layer.weight, false, true).add(layer.bias!).reshape([2, 4, 3]));
    const check = (): void => {
      const diff = tf.tidy(() => tf.max(tf.abs(layer.call(x, createContext()).sub(reference()))).dataSync()[0]);
      expect(diff).toBeLessThan(1e-5);
    };
    const before = tf.memory().numTensors;
    check();
    const fresh = tf.randomNormal([3, 5]);
    layer.weight.assign(fresh);
    fresh.dispose();
    check(); // the copy was rebuilt, not reused
    expect(tf.memory().numTensors).toBe(before);
    layer.dispose();
    x.dispose();
    // x, weight, bias, and the [in, out] copy where the backend keeps one
    expect(tf.memory().numTensors).toBe(before - 3 - (prefersInOutWeights() ? 1 : 0));
  });
});

describe('batchedMatMul', () => {
  it('equals tf.matMul for small (one call) and large (one matrix at a time) batches', () => {
    for (const [lead, m, k, n] of [[[2, 3], 4, 5, 6], [[2, 2], 64, 32, 48]] as const) {
      const diff = tf.tidy(() => {
        const a = tf.randomNormal([...lead, m, k]);
        const b = tf.randomNormal([...lead, k, n]);
        const out = batchedMatMul(a, b);
        expect(out.shape).toEqual([...lead, m, n]);
        return tf.max(tf.abs(out.sub(tf.matMul(a, b)))).dataSync()[0]!;
      });
      expect(diff).toBeLessThan(1e-4);
    }
  });
});
