import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { activation } from '../../src/index.js';

const xs = [-3, -1, -0.5, 0, 0.5, 1, 3];
const erf = (x: number): number => {
  // Series to high precision, independent of tfjs's erf.
  let sum = 0;
  let term = x;
  for (let n = 0; n < 60; n++) {
    sum += term / (2 * n + 1);
    term *= (-x * x) / (n + 1);
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
};

describe('activations by HF name', () => {
  it('gelu is the exact erf form', () => {
    const y = activation('gelu')(tf.tensor1d(xs)).dataSync();
    xs.forEach((x, i) => expect(y[i]).toBeCloseTo(0.5 * x * (1 + erf(x / Math.SQRT2)), 5));
  });
  it('gelu_new and gelu_pytorch_tanh are the tanh approximation', () => {
    for (const name of ['gelu_new', 'gelu_pytorch_tanh']) {
      const y = activation(name)(tf.tensor1d(xs)).dataSync();
      xs.forEach((x, i) => expect(y[i]).toBeCloseTo(0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x ** 3))), 5));
    }
  });
  it('silu and relu', () => {
    const s = activation('silu')(tf.tensor1d(xs)).dataSync();
    const r = activation('relu')(tf.tensor1d(xs)).dataSync();
    xs.forEach((x, i) => {
      expect(s[i]).toBeCloseTo(x / (1 + Math.exp(-x)), 5);
      expect(r[i]).toBe(Math.max(0, x));
    });
  });
  it('an unknown name lists the supported ones', () => {
    expect(() => activation('mish')).toThrow(/unknown activation 'mish' \(hidden_act\); supported: gelu, gelu_new/);
  });
});
