import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';

import { createContext, releaseContext } from '../../src/layers/context.js';
import { LayerNorm, RMSNorm, normOfSum } from '../../src/layers/norm.js';
import { built, expectClose, randoms, useNativeBackend } from './helpers.js';

/** norm(x + y) by its definition, in tfjs ops. */
function reference(norm: LayerNorm | RMSNorm, x: tf.Tensor, y: tf.Tensor): Float32Array {
  const out = tf.tidy(() => {
    const s = x.add(y);
    if (norm instanceof RMSNorm) return s.mul(tf.rsqrt(s.square().mean(-1, true).add(norm.eps))).mul(norm.weight);
    const { mean, variance } = tf.moments(s, -1, true);
    return s.sub(mean).mul(tf.rsqrt(variance.add(norm.eps))).mul(norm.weight).add(norm.bias);
  });
  const values = out.dataSync() as Float32Array;
  out.dispose();
  return values;
}

describe.runIf(built)('post-norm residual in one norm kernel (native)', () => {
  useNativeBackend();

  for (const make of [() => new LayerNorm(48, 1e-12), () => new RMSNorm(48, 1e-6)]) {
    it(`${make().constructor.name}: norm(x + y) matches the definition, in one kernel, and falls back for hooks`, async () => {
      const norm = make();
      norm.namedParameters().forEach(([, p], i) => p.assign(tf.tensor(randoms(p.size, 20 + i), p.shape)));
      const x = tf.tensor3d(randoms(3 * 5 * 48, 1), [3, 5, 48]);
      const y = tf.tensor3d(randoms(3 * 5 * 48, 2), [3, 5, 48]).mul(3) as tf.Tensor3D;
      const ctx = createContext();
      const profile = await tf.profile(() => normOfSum(norm, x, y, ctx));
      expect(profile.kernels.map((k) => k.name)).toEqual([norm instanceof LayerNorm ? 'TesseraLayerNorm' : 'TesseraRMSNorm']);
      const fused = normOfSum(norm, x, y, ctx);
      expectClose(fused.dataSync(), reference(norm, x, y), 1e-5, 1e-5);
      // A hook on the norm sees the sum as its input: the sum is then made outside the kernel.
      let seen: number[] | undefined;
      const handle = norm.attachHook('', 'post', (out) => void (seen = out.shape));
      const hooked = normOfSum(norm, x, y, ctx);
      handle.remove();
      expect(seen).toEqual([3, 5, 48]);
      expectClose(hooked.dataSync(), fused.dataSync(), 1e-6, 1e-6);
      tf.dispose([x, y, fused, hooked, profile.result as tf.Tensor]);
      norm.dispose();
    });
  }

  for (const make of [() => new LayerNorm(48, 1e-12), () => new RMSNorm(48, 1e-6)]) {
    it(`${make().constructor.name}: norm(x + y) over rows split across the threads (each part its own rows of y)`, () => {
      const norm = make();
      norm.namedParameters().forEach(([, p], i) => p.assign(tf.tensor(randoms(p.size, 30 + i), p.shape)));
      // 2800 rows of 48: more than one part of the addon's row split (~64K values a part).
      const x = tf.tensor3d(randoms(4 * 700 * 48, 3), [4, 700, 48]);
      const y = tf.tensor3d(randoms(4 * 700 * 48, 4), [4, 700, 48]);
      const before = tf.memory().numTensors;
      const ctx = createContext();
      const fused = normOfSum(norm, x, y, ctx);
      expectClose(fused.dataSync(), reference(norm, x, y), 1e-5, 1e-5);
      releaseContext(ctx);
      fused.dispose();
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([x, y]);
      norm.dispose();
    });
  }

  it('rejects a residual of another shape', () => {
    const x = tf.zeros([2, 4]);
    const r = tf.zeros([2, 3]);
    expect(() => tf.engine().runKernel('TesseraLayerNorm', { x, residual: r }, { epsilon: 1e-5 })).toThrow(/input 'residual' must have shape \[2,4\], got \[2,3\]/);
    tf.dispose([x, r]);
  });
});
