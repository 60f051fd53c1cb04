import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { causalConv } from '../../src/ops/causal-conv.js';
import { callMemo, maxDiff } from './helpers.js';

const [BATCH, LENGTH, DIM, K] = [2, 6, 5, 4];

describe('causalConv', () => {
  const x = tf.randomNormal([BATCH, LENGTH, DIM], 0, 1, 'float32', 1) as tf.Tensor3D;
  const weight = tf.randomNormal([DIM, 1, K], 0, 0.5, 'float32', 2);
  const bias = tf.randomNormal([DIM], 0, 0.1, 'float32', 3);
  const window = tf.randomNormal([BATCH, DIM, K], 0, 1, 'float32', 4);
  afterAll(() => tf.dispose([x, weight, bias, window]));

  it('token by token (the one-token window shift) equals one call over the sequence, outputs and window', () => {
    const { memo, release } = callMemo();
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const whole = causalConv(x, weight, bias, { window, memo });
      let state = window;
      const steps: tf.Tensor[] = [];
      for (let t = 0; t < LENGTH; t++) {
        const step = causalConv(x.slice([0, t, 0], [BATCH, 1, DIM]), weight, bias, { window: state, memo });
        steps.push(step.y);
        state = step.window;
      }
      expect(maxDiff(whole.y, tf.concat(steps, 1))).toBeLessThan(1e-6);
      expect(maxDiff(whole.window, state)).toBe(0);
    });
    release();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('y_t = bias + sum_k weight_k x_{t+k+1-K}, with zeros before the first token when there is no window', () => {
    const { memo, release } = callMemo();
    tf.tidy(() => {
      const { y } = causalConv(x, weight, bias, { memo });
      const xs = x.arraySync();
      const w = weight.reshape([DIM, K]).arraySync() as number[][];
      const b = bias.arraySync() as number[];
      const t = 2;
      const expected = Array.from({ length: DIM }, (_, d) => {
        let sum = b[d]!;
        for (let k = 0; k < K; k++) {
          const s = t + k + 1 - K;
          if (s >= 0) sum += w[d]![k]! * xs[1]![s]![d]!;
        }
        return sum;
      });
      expect(maxDiff(y.slice([1, t, 0], [1, 1, DIM]).reshape([DIM]), tf.tensor1d(expected))).toBeLessThan(1e-5);
    });
    release();
  });

  it('padding enters as zeros, and a padded single step keeps its window', () => {
    const { memo, release } = callMemo();
    tf.tidy(() => {
      const keep = tf.tensor3d([[[1]], [[0]]]); // row 1 is padding
      const step = causalConv(x.slice([0, 0, 0], [BATCH, 1, DIM]), weight, bias, { window, keep, memo });
      expect(maxDiff(step.window.slice([1, 0, 0], [1, DIM, K]), window.slice([1, 0, 0], [1, DIM, K]))).toBe(0);
      const unpadded = causalConv(x.slice([0, 0, 0], [BATCH, 1, DIM]), weight, bias, { window, memo });
      // history + (shifted - history) · 1: the real row's window up to rounding.
      expect(maxDiff(step.window.slice([0, 0, 0], [1, DIM, K]), unpadded.window.slice([0, 0, 0], [1, DIM, K]))).toBeLessThan(1e-6);
      const zeroed = causalConv(tf.zeros([BATCH, 1, DIM]) as tf.Tensor3D, weight, bias, { window, memo });
      expect(maxDiff(step.y.slice([1, 0, 0], [1, 1, DIM]), zeroed.y.slice([1, 0, 0], [1, 1, DIM]))).toBe(0);
    });
    release();
  });
});
