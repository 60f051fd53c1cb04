import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { attention, ATTENTION_TAPS, type AttentionCall, type AttentionHeads, type AttentionTap } from '../../src/ops/attention.js';
import { callMemo, maxDiff } from './helpers.js';

const HEADS: AttentionHeads = { numHeads: 4, numKvHeads: 2, headDim: 3, causal: true };
const [BATCH, LENGTH] = [2, 5];

describe('the attention op', () => {
  const q = tf.randomNormal([BATCH, LENGTH, 4 * 3], 0, 1, 'float32', 1) as tf.Tensor3D;
  const k = tf.randomNormal([BATCH, LENGTH, 2 * 3], 0, 1, 'float32', 2) as tf.Tensor3D;
  const v = tf.randomNormal([BATCH, LENGTH, 2 * 3], 0, 1, 'float32', 3) as tf.Tensor3D;
  const mask = tf.tensor2d([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]], undefined, 'int32');
  afterAll(() => tf.dispose([q, k, v, mask]));

  /** Run the op with a fresh memo; `tap`, when given, selects the op-by-op path. */
  function run(call: Partial<AttentionCall>, x = { q, k, v }, heads = HEADS) {
    const { memo, release } = callMemo();
    const out = attention(x.q, x.k, x.v, heads, { memo, mask, ...call });
    release();
    return out;
  }

  it('passes q, k, v, scores and probs through the tap, in that order and with their shapes', () => {
    const seen: string[] = [];
    const observed = tf.tidy(() => run({ tap: (name: AttentionTap, value) => (seen.push(`${name} ${value.shape}`), value) }).context);
    const plain = tf.tidy(() => run({}).context); // fused where the backend has the kernel
    expect(seen).toEqual(['q 2,4,5,3', 'k 2,2,5,3', 'v 2,2,5,3', 'scores 2,4,5,5', 'probs 2,4,5,5']);
    expect(Object.values(ATTENTION_TAPS)).toEqual(['q', 'k', 'v', 'scores', 'probs']);
    expect(maxDiff(observed, plain)).toBeLessThan(1e-5);
    tf.dispose([observed, plain]);
  });

  it('a tap may replace a value downstream (uniform probs give the mean of the visible values)', () => {
    tf.tidy(() => {
      const uniform = run({ tap: (name, value) => (name === ATTENTION_TAPS.probs ? tf.onesLike(value).div(LENGTH) : value) }).context;
      const meanOfValues = v.mean(1, true).reshape([BATCH, 1, 2, 1, 3]).tile([1, LENGTH, 1, 2, 1]).reshape([BATCH, LENGTH, 12]);
      expect(maxDiff(uniform, meanOfValues)).toBeLessThan(1e-5);
    });
  });

  it('GQA equals MHA over key/value heads repeated per query head', () => {
    tf.tidy(() => {
      const repeat = (t: tf.Tensor3D) => t.reshape([BATCH, LENGTH, 2, 1, 3]).tile([1, 1, 1, 2, 1]).reshape([BATCH, LENGTH, 12]) as tf.Tensor3D;
      const grouped = run({}).context;
      const full = run({}, { q, k: repeat(k), v: repeat(v) }, { ...HEADS, numKvHeads: 4 }).context;
      expect(maxDiff(grouped, full)).toBeLessThan(1e-5);
    });
  });

  it('with a cache, 3 tokens then 2 equal 5 at once, context (real tokens) and cache, on both paths', () => {
    for (const tap of [undefined, (_: AttentionTap, value: tf.Tensor) => value]) {
      tf.tidy(() => {
        const part = (t: tf.Tensor3D, start: number, length: number) => t.slice([0, start, 0], [BATCH, length, t.shape[2]]);
        const whole = run({ cache: {}, tap });
        const first = run({ cache: {}, tap, mask: mask.slice([0, 0], [BATCH, 3]) }, { q: part(q, 0, 3), k: part(k, 0, 3), v: part(v, 0, 3) });
        const second = run({ cache: { past: first.cache }, tap }, { q: part(q, 3, 2), k: part(k, 3, 2), v: part(v, 3, 2) });
        // Padding queries see no key, so their (uniform) outputs depend on the call: compare real tokens.
        const real = mask.toFloat().expandDims(2);
        expect(maxDiff(whole.context.mul(real), tf.concat([first.context, second.context], 1).mul(real))).toBeLessThan(1e-5);
        expect(second.cache!.key.shape).toEqual([BATCH, 2, LENGTH, 3]);
        expect(maxDiff(whole.cache!.key, second.cache!.key)).toBe(0);
        expect(maxDiff(whole.cache!.value, second.cache!.value)).toBe(0);
      });
    }
  });

  it('applies the output projection on both paths, and frees what it made when the projection throws', () => {
    const weight = tf.randomNormal([7, 12], 0, 1, 'float32', 4);
    const residual = tf.randomNormal([BATCH, LENGTH, 7], 0, 1, 'float32', 5);
    const identity = (_name: AttentionTap, value: tf.Tensor) => value;
    for (const tap of [undefined, identity]) {
      const projected = tf.tidy(() => run({ tap, output: { weight, residual } }).context);
      const expected = tf.tidy(() => tf.add(residual, tf.matMul(run({ tap }).context.reshape([-1, 12]), weight, false, true).reshape([BATCH, LENGTH, 7])));
      expect(projected.shape).toEqual([BATCH, LENGTH, 7]);
      expect(maxDiff(projected, expected)).toBeLessThan(1e-5);
      const before = tf.memory().numTensors;
      const { memo, release } = callMemo(); // the mask bias it keeps is the caller's to free
      const bad = { memo, mask, tap, cache: {}, output: { weight, residual: q } };
      expect(() => attention(q, k, v, HEADS, bad)).toThrow(/linear: residual is \[2,5,12\], the output \[2,5,7\]/);
      release();
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([projected, expected]);
    }
    tf.dispose([weight, residual]);
  });

  it('names a mask that does not cover every key', () => {
    expect(() => run({ mask: tf.ones([BATCH, 4], 'int32') as tf.Tensor2D })).toThrow(/attentionMask has shape \[2,4\], expected \[2, 5\]/);
  });
});
