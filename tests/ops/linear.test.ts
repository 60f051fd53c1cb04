import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { linear } from '../../src/index.js';

describe('linear', () => {
  it('computes x Wᵀ + b with PyTorch-layout weights, for any leading dims', () => {
    const x = [[[1, 2, 3], [4, 5, 6]]]; // [1, 2, 3]
    const w = [[1, 0, -1], [2, 1, 0]]; // [out 2, in 3]
    const b = [10, 20];
    const expected = x.map((rows) => rows.map((r) => w.map((wr, o) => wr.reduce((s, v, i) => s + v * r[i]!, b[o]!))));
    const y = linear(tf.tensor3d(x), tf.tensor2d(w), tf.tensor1d(b));
    expect(y.shape).toEqual([1, 2, 2]);
    expect(y.arraySync()).toEqual(expected);
  });

  it('names the mismatch when input and weight disagree', () => {
    expect(() => linear(tf.zeros([2, 4]), tf.zeros([3, 5]))).toThrow(/input has 4 features, weight expects 5/);
  });
});
