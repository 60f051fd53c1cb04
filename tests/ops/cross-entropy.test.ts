import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { crossEntropy } from '../../src/ops/cross-entropy.js';
import { registerGradients } from '../../src/training/gradients.js';
import { maxDiff } from './helpers.js';

/** The textbook composition: −Σ log-softmax · one-hot over the vocabulary. */
function oneHotCrossEntropy(logits: tf.Tensor2D, targets: tf.Tensor1D): tf.Tensor1D {
  return tf.neg(tf.sum(tf.mul(tf.logSoftmax(logits), tf.oneHot(targets, logits.shape[1])), -1)) as tf.Tensor1D;
}

describe('crossEntropy', () => {
  beforeAll(async () => {
    await registerGradients();
  });

  const logits = (): tf.Tensor2D => tf.randomNormal([6, 11], 0, 3, 'float32', 4) as tf.Tensor2D;
  const targets = (): tf.Tensor1D => tf.tensor1d([0, 10, 3, 3, 7, 1], 'int32');
  // Per-row weights on the loss, so the gradient's dy is not uniform.
  const weights = (): tf.Tensor1D => tf.tensor1d([1, -0.5, 2, 0.25, 1.5, -1]);

  it('equals the one-hot composition, forward and gradient', () => {
    const [x, t, w] = [logits(), targets(), weights()];
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      expect(maxDiff(crossEntropy(x, t), oneHotCrossEntropy(x, t))).toBeLessThan(1e-5);
      const fused = tf.grad((l: tf.Tensor) => crossEntropy(l as tf.Tensor2D, t).mul(w).sum())(x);
      const reference = tf.grad((l: tf.Tensor) => oneHotCrossEntropy(l as tf.Tensor2D, t).mul(w).sum())(x);
      expect(maxDiff(fused, reference)).toBeLessThan(1e-6);
    });
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, t, w]);
  });

  it('has the gradient finite differences give', () => {
    const [x, t, w] = [logits(), targets(), weights()];
    const loss = (l: tf.Tensor): tf.Scalar => crossEntropy(l as tf.Tensor2D, t).mul(w).sum() as tf.Scalar;
    const analytic = tf.tidy(() => tf.grad(loss)(x).arraySync() as number[][]);
    const values = x.arraySync();
    const step = 1e-2;
    const at = (row: number, col: number, delta: number): number =>
      tf.tidy(() => {
        const shifted = values.map((r, i) => r.map((v, j) => (i === row && j === col ? v + delta : v)));
        return loss(tf.tensor2d(shifted)).dataSync()[0]!;
      });
    // Every target entry (where the one-hot part acts) and one other entry per row.
    const entries = [[0, 0], [1, 10], [2, 3], [3, 3], [4, 7], [5, 1], [0, 5], [2, 9], [4, 0]] as const;
    for (const [row, col] of entries) {
      const numeric = (at(row, col, step) - at(row, col, -step)) / (2 * step);
      expect(Math.abs(numeric - analytic[row]![col]!), `d loss / d logits[${row}, ${col}]`).toBeLessThan(2e-3);
    }
    tf.dispose([x, t, w]);
  });

  it('rejects targets that do not match the rows', () => {
    const x = logits();
    const t = tf.tensor1d([1, 2], 'int32');
    expect(() => crossEntropy(x, t)).toThrow(/targets have shape \[2\], expected \[6\]/);
    tf.dispose([x, t]);
  });
});
