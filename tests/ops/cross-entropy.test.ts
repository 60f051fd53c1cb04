import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FUSED } from '../../src/kernels/contract.js';
import { initBackend } from '../../src/kernels/backend.js';
import { isNativeBuilt } from '../../src/kernels/native/index.js';
import { crossEntropy, referenceCrossEntropy } from '../../src/ops/cross-entropy.js';
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

  it('rejects targets outside the vocabulary, leaving no tensors behind', () => {
    const x = logits();
    for (const bad of [11, -1]) {
      const t = tf.tensor1d([0, 1, 2, bad, 4, 5], 'int32');
      const before = tf.memory().numTensors;
      expect(() => crossEntropy(x, t)).toThrow(new RegExp(`target ${bad} of row 3 is outside the vocabulary \\[0, 11\\)`));
      expect(tf.memory().numTensors).toBe(before);
      t.dispose();
    }
    x.dispose();
  });
});

/** The kernel names a call ran (tf.profile records every kernel the engine dispatched). */
async function kernelsRun(fn: () => tf.Tensor): Promise<string[]> {
  const info = await tf.profile(() => {
    fn().dispose();
  });
  return info.kernelNames;
}

describe.runIf(isNativeBuilt())('crossEntropy: the native fused kernels', () => {
  const previous = tf.getBackend();
  beforeAll(async () => {
    await initBackend({ backend: 'native' });
    await registerGradients();
  });
  afterAll(async () => {
    await tf.setBackend(previous);
  });

  // 300 rows of 1000: several rows per thread part, so the rows are split over threads.
  const [rows, vocab] = [300, 1000];
  const logits = (): tf.Tensor2D => tf.randomNormal([rows, vocab], 0, 4, 'float32', 7) as tf.Tensor2D;
  const targets = (): tf.Tensor1D => tf.tensor1d(Array.from({ length: rows }, (_, i) => (i * 7919) % vocab), 'int32');
  const weights = (): tf.Tensor1D => tf.randomUniform([rows], -2, 2, 'float32', 8) as tf.Tensor1D;

  it('runs the fused kernels forward and, while recording, backward', async () => {
    const [x, t, w] = [logits(), targets(), weights()];
    expect(await kernelsRun(() => crossEntropy(x, t))).toContain(FUSED.crossEntropy);
    const backward = await kernelsRun(() => tf.grad((l: tf.Tensor) => crossEntropy(l as tf.Tensor2D, t).mul(w).sum())(x));
    expect(backward).toContain(FUSED.crossEntropy);
    expect(backward).toContain(FUSED.crossEntropyBackward);
    tf.dispose([x, t, w]);
  });

  it('equals the reference composition, forward and gradient', () => {
    const [x, t, w] = [logits(), targets(), weights()];
    const before = tf.memory().numTensors;
    tf.tidy(() => {
      const reference = referenceCrossEntropy(x, t);
      expect(maxDiff(crossEntropy(x, t), reference)).toBeLessThan(1e-5 * Math.max(1, tf.max(reference).dataSync()[0]!));
      const fused = tf.grad((l: tf.Tensor) => crossEntropy(l as tf.Tensor2D, t).mul(w).sum())(x);
      const expected = tf.grad((l: tf.Tensor) => referenceCrossEntropy(l as tf.Tensor2D, t).mul(w).sum())(x);
      // Entries are at most |dy| ≤ 2; the logsumexp's float32 sum runs in another order.
      expect(maxDiff(fused, expected)).toBeLessThan(1e-5);
    });
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, t, w]);
  });

  it('has the gradient finite differences give', () => {
    const x = tf.randomNormal([5, 9], 0, 3, 'float32', 11) as tf.Tensor2D;
    const t = tf.tensor1d([0, 8, 3, 3, 5], 'int32');
    const w = tf.tensor1d([1, -0.5, 2, 0.25, 1.5]);
    const loss = (l: tf.Tensor): tf.Scalar => crossEntropy(l as tf.Tensor2D, t).mul(w).sum() as tf.Scalar;
    const analytic = tf.tidy(() => tf.grad(loss)(x).arraySync() as number[][]);
    const values = x.arraySync();
    const step = 1e-2;
    const at = (row: number, col: number, delta: number): number =>
      tf.tidy(() => loss(tf.tensor2d(values.map((r, i) => r.map((v, j) => (i === row && j === col ? v + delta : v))))).dataSync()[0]!);
    for (let row = 0; row < 5; row++) {
      for (const col of [t.arraySync()[row]!, (row * 4 + 1) % 9]) {
        const numeric = (at(row, col, step) - at(row, col, -step)) / (2 * step);
        expect(Math.abs(numeric - analytic[row]![col]!), `d loss / d logits[${row}, ${col}]`).toBeLessThan(2e-3);
      }
    }
    tf.dispose([x, t, w]);
  });

  it('rejects targets outside the vocabulary while recording too, leaving no tensors behind', () => {
    const x = logits();
    const t = tf.tensor1d(Array.from({ length: rows }, (_, i) => (i === 17 ? vocab : i)), 'int32');
    const before = tf.memory().numTensors;
    expect(() => crossEntropy(x, t)).toThrow(/target 1000 of row 17 is outside the vocabulary \[0, 1000\)/);
    expect(() => tf.grad((l: tf.Tensor) => crossEntropy(l as tf.Tensor2D, t).sum())(x)).toThrow(/outside the vocabulary/);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, t]);
  });
});
