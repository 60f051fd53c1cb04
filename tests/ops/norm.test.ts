import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { norm } from '../../src/ops/norm.js';
import { maxDiff } from './helpers.js';

describe('norm op', () => {
  it('a residual of another shape is added first, with nothing left behind', () => {
    const x = tf.tensor2d([[1, 2, 3, 4], [2, 0, -1, 5]]);
    const residual = tf.tensor1d([0.5, -1, 2, 0]); // broadcast: not summed inside a fused kernel
    const weight = tf.ones([4]);
    for (const kind of ['layernorm', 'rmsnorm'] as const) {
      const expected = tf.tidy(() => norm(kind, x.add(residual), weight, undefined, 1e-5));
      const before = tf.memory().numTensors;
      const y = norm(kind, x, weight, undefined, 1e-5, residual);
      expect(tf.memory().numTensors).toBe(before + 1);
      expect(maxDiff(y, expected)).toBeLessThan(1e-6);
      tf.dispose([y, expected]);
    }
    tf.dispose([x, residual, weight]);
  });
});
