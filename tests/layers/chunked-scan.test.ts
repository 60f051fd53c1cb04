import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { chunkedScan, chunkedScanWith, sequentialScan, type ScanInputs } from '../../src/index.js';

/** Scan inputs with the shapes and ranges a Mamba mixer produces (delta > 0 by softplus, A < 0). */
function inputs(batch: number, length: number, dim: number, n: number, withState: boolean): ScanInputs {
  return tf.tidy(() => ({
    u: tf.randomNormal([batch, length, dim], 0, 1, 'float32', 1) as tf.Tensor3D,
    delta: tf.softplus(tf.randomNormal([batch, length, dim], -1, 1.5, 'float32', 2)) as tf.Tensor3D,
    A: tf.neg(tf.exp(tf.randomNormal([dim, n], 0.5, 1, 'float32', 3))) as tf.Tensor2D,
    B: tf.randomNormal([batch, length, n], 0, 1, 'float32', 4) as tf.Tensor3D,
    C: tf.randomNormal([batch, length, n], 0, 1, 'float32', 5) as tf.Tensor3D,
    D: tf.randomNormal([dim], 1, 0.2, 'float32', 6) as tf.Tensor1D,
    h0: withState ? (tf.randomNormal([batch, dim, n], 0, 1, 'float32', 7) as tf.Tensor3D) : undefined,
  }));
}

function maxDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(a.sub(b))).dataSync()[0]!);
}

describe('chunked selective scan', () => {
  it.each([
    [1, 1, false],
    [2, 7, true],
    [2, 33, false],
    [1, 100, true],
  ])('matches the sequential scan (batch %i, length %i, h0 %s) for several chunk lengths', (batch, length, withState) => {
    const x = inputs(batch, length, 6, 4, withState);
    const ref = sequentialScan(x);
    for (const chunk of [1, 3, 8, 16, 64]) {
      const out = chunkedScanWith(chunk)(x);
      expect(out.y.shape).toEqual(ref.y.shape);
      expect(maxDiff(out.y, ref.y), `y, chunk ${chunk}`).toBeLessThan(1e-4);
      expect(maxDiff(out.h, ref.h), `h, chunk ${chunk}`).toBeLessThan(1e-4);
      tf.dispose([out.y, out.h]);
    }
    tf.dispose([ref.y, ref.h, ...Object.values(x).filter((t) => t !== undefined)]);
  });

  it('stays within 1e-4 of the sequential scan on 4096 tokens, with strong and weak decays', () => {
    const x = inputs(1, 4096, 4, 4, true);
    const ref = sequentialScan(x);
    const out = chunkedScan(x);
    expect(maxDiff(out.y, ref.y)).toBeLessThan(1e-4);
    expect(maxDiff(out.h, ref.h)).toBeLessThan(1e-4);
    // The inputs span decays per token from ~1 (state kept for thousands of tokens) to ~0.
    const decays = tf.tidy(() => tf.exp(x.delta.expandDims(3).mul(x.A)));
    expect(decays.max().dataSync()[0]).toBeGreaterThan(0.999);
    expect(decays.min().dataSync()[0]).toBeLessThan(1e-10);
    tf.dispose([decays, ref.y, ref.h, out.y, out.h, ...Object.values(x).filter((t) => t !== undefined)]);
  });

  it('leaks no tensors and rejects a bad chunk length', () => {
    const x = inputs(1, 20, 3, 2, true);
    tf.dispose(Object.values(chunkedScan(x)));
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) tf.dispose(Object.values(chunkedScan(x)));
    expect(tf.memory().numTensors).toBe(before);
    expect(() => chunkedScanWith(0)).toThrow(/chunk length must be a positive integer, got 0/);
    tf.dispose(Object.values(x).filter((t) => t !== undefined));
  });
});
