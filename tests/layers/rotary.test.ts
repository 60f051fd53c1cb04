import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { createContext, inverseFrequencies, RotaryEmbedding, type RotaryOptions } from '../../src/index.js';

const base: RotaryOptions = { dim: 8, base: 10000, scaling: { type: 'default' } };

describe('rotary inverse frequencies', () => {
  it('default: 1 / base^(2i/dim)', () => {
    const f = inverseFrequencies(base, 10);
    expect(Array.from(f)).toEqual([1, 0.1, 0.01, 0.001].map(Math.fround));
  });

  it('linear: every frequency divided by the factor', () => {
    const f = inverseFrequencies({ ...base, scaling: { type: 'linear', factor: 4 } }, 10);
    expect(Array.from(f)).toEqual([0.25, 0.025, 0.0025, 0.00025].map(Math.fround));
  });

  it('dynamic: unchanged within the trained length, a larger base beyond it', () => {
    const scaling = { type: 'dynamic' as const, factor: 2, maxPositions: 16 };
    expect(inverseFrequencies({ ...base, scaling }, 16)).toEqual(inverseFrequencies(base, 16));
    const long = inverseFrequencies({ ...base, scaling }, 32);
    // base' = base * (factor * L / max - (factor - 1)) ^ (dim / (dim - 2)) = 10000 * 3^(4/3)
    const newBase = 10000 * 3 ** (8 / 6);
    expect(long[1]).toBeCloseTo(1 / newBase ** (2 / 8), 7);
    expect(long[0]).toBe(1);
  });

  it('llama3: short wavelengths kept, long ones slowed by factor, the band between interpolated', () => {
    const opts: RotaryOptions = {
      dim: 128,
      base: 500000,
      scaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 8192 },
    };
    const plain = inverseFrequencies({ ...opts, scaling: { type: 'default' } }, 1);
    const scaled = inverseFrequencies(opts, 1);
    let kept = 0;
    let slowed = 0;
    let between = 0;
    plain.forEach((f, i) => {
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < 8192 / 4) {
        expect(scaled[i]).toBe(f);
        kept++;
      } else if (wavelen > 8192) {
        expect(scaled[i]).toBeCloseTo(f / 8, 10);
        slowed++;
      } else {
        const smooth = (8192 / wavelen - 1) / (4 - 1);
        expect(scaled[i]).toBeCloseTo((1 - smooth) * (f / 8) + smooth * f, 10);
        between++;
      }
    });
    expect(kept > 0 && slowed > 0 && between > 0).toBe(true);
  });
});

describe('RotaryEmbedding.apply', () => {
  it('rotates pairs: norms are kept and q·k depends only on the position difference', () => {
    const rope = new RotaryEmbedding(base);
    const q = tf.randomNormal([1, 1, 1, 8]);
    const k = tf.randomNormal([1, 1, 1, 8]);
    const at = (x: tf.Tensor, pos: number) => {
      const ctx = createContext({ positionIds: tf.tensor2d([[pos]], undefined, 'int32') });
      return rope.apply(x as tf.Tensor4D, ctx);
    };
    const dot = (a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.mul(a, b)).dataSync()[0]!;
    expect(tf.norm(at(q, 7)).dataSync()[0]).toBeCloseTo(tf.norm(q).dataSync()[0]!, 5);
    expect(dot(at(q, 5), at(k, 2))).toBeCloseTo(dot(at(q, 13), at(k, 10)), 4);
    expect(Math.abs(dot(at(q, 5), at(k, 2)) - dot(at(q, 5), at(k, 4)))).toBeGreaterThan(1e-4);
  });

  it('partial rotary leaves the dimensions past `dim` untouched', () => {
    const rope = new RotaryEmbedding({ ...base, dim: 4 });
    const x = tf.randomNormal([1, 2, 3, 8]) as tf.Tensor4D;
    const y = rope.apply(x, createContext({ offset: 5 }));
    expect(y.slice([0, 0, 0, 4], [-1, -1, -1, 4]).arraySync()).toEqual(x.slice([0, 0, 0, 4], [-1, -1, -1, 4]).arraySync());
  });
});

describe('rotary tables', () => {
  // The ops' cos and sin are the backend's (wasm: C's cosf and sinf, off by a few ulps at angles of
  // thousands of radians); the direct tables round double-precision values. Both within 4 ulps of 1.
  it('consecutive positions (written directly) match the same positions given as ids (computed in ops)', () => {
    const rotary = new RotaryEmbedding({ dim: 64, base: 500000, scaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositions: 64 } });
    const before = tf.memory().numTensors;
    for (const [offset, length] of [[0, 5], [4093, 1]] as const) {
      const positionIds = tf.tensor2d([0, 1].flatMap(() => Array.from({ length }, (_, i) => offset + i)), [2, length], 'int32');
      const direct = createContext({ offset });
      const fromIds = createContext({ offset, positionIds });
      const a = rotary.tables(direct, 2, length);
      const b = rotary.tables(fromIds, 2, length);
      expect(a.cos.shape).toEqual([2, 1, length, 64]);
      for (const [x, y] of [[a.cos, b.cos], [a.sin, b.sin]] as const) {
        const got = x.dataSync(), want = y.dataSync();
        const worst = Math.max(...Array.from(got, (v, i) => Math.abs(v - want[i]!)));
        expect(worst).toBeLessThanOrEqual(2 ** -21);
      }
      for (const ctx of [direct, fromIds]) for (const t of ctx.memo.values()) t.dispose();
      positionIds.dispose();
    }
    expect(tf.memory().numTensors).toBe(before);
  });
});
