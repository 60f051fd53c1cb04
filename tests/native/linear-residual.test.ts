import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';

import { Attention } from '../../src/layers/attention.js';
import { createContext, releaseContext } from '../../src/layers/context.js';
import { FeedForward } from '../../src/layers/feed-forward.js';
import type { Layer } from '../../src/layers/module.js';
import { RMSNorm } from '../../src/layers/norm.js';
import { packWeights } from '../../src/layers/packed-weights.js';
import { linear } from '../../src/ops/linear.js';
import type { WeightDtype } from '../../src/ops/packed-weights.js';
import { built, randoms, useNativeBackend } from './helpers.js';

const hidden = 48;

/**
 * Each sublayer, and the kernel that applies its last projection with the residual: attention's
 * kernel with the output projection, and the whole feed-forward (its gated products, then the
 * down projection) in one.
 */
function sublayers(): Array<[string, () => Layer, string]> {
  return [
    ['attention', () => new Attention({ hiddenSize: hidden, numHeads: 4, numKvHeads: 2, qkvBias: false, outputBias: true, causal: true, rotary: { dim: 12, base: 10000, scaling: { type: 'default' } } }), 'TesseraAttentionProjected'],
    ['gated feed-forward', () => new FeedForward({ hiddenSize: hidden, intermediateSize: 80, activation: 'silu', gated: true, bias: true }), 'TesseraGatedFeedForward'],
  ];
}

function randomize(layer: Layer): void {
  layer.namedParameters().forEach(([, p], i) => p.assign(tf.tensor(randoms(p.size, 40 + i), p.shape).mul(0.3)));
}

/** The block `x + sublayer(norm(x))` through `preNormResidual`, and the kernels it dispatched. */
async function block(sublayer: Layer, norm: RMSNorm, x: tf.Tensor): Promise<{ y: Float32Array; kernels: string[] }> {
  const ctx = createContext();
  // In a tidy scope, as residual() calls it.
  const profile = await tf.profile(() => tf.tidy(() => sublayer.preNormResidual(x, norm, ctx)));
  const y = (profile.result as tf.Tensor).dataSync() as Float32Array;
  (profile.result as tf.Tensor).dispose();
  releaseContext(ctx);
  return { y, kernels: profile.kernels.map((k) => k.name) };
}

describe.runIf(built)('a pre-norm block in its projections\' kernels: the norm in the first, the residual in the last (native)', () => {
  useNativeBackend();

  for (const [name, make, last] of sublayers()) {
    for (const dtype of ['float32', 'bfloat16', 'int8'] as WeightDtype[]) {
      it(`${name}, ${dtype} weights: x + sublayer(norm(x)) with no norm or Add kernel, equal to the op-by-op block, hooks seeing the parts`, async () => {
        const sublayer = make();
        const norm = new RMSNorm(hidden, 1e-6);
        randomize(sublayer);
        randomize(norm);
        packWeights(sublayer, dtype);
        const before = tf.memory().numTensors;
        for (const length of [1, 7]) {
          const x = tf.tensor3d(randoms(2 * length * hidden, length), [2, length, hidden]);
          const fused = await block(sublayer, norm, x);
          expect(fused.kernels).toContain(last);
          expect(fused.kernels).not.toContain('Add');
          expect(fused.kernels).not.toContain('TesseraRMSNorm');

          // A hook on the norm: the norm runs as a layer (its own kernel), the rest stays fused.
          let normed: number[] | undefined;
          const onNorm = norm.attachHook('', 'post', (out) => void (normed = out.shape));
          const normHooked = await block(sublayer, norm, x);
          onNorm.remove();
          expect(normed).toEqual([2, length, hidden]);
          expect(normHooked.kernels).toContain('TesseraRMSNorm');
          expect(normHooked.kernels).not.toContain('Add');
          expect(Array.from(normHooked.y)).toEqual(Array.from(fused.y));

          // A hook on the sublayer runs it through call(): its output, then the sum as a separate Add.
          let seen: Float32Array | undefined;
          const handle = sublayer.attachHook('', 'post', (out) => void (seen = out.dataSync() as Float32Array));
          const separate = await block(sublayer, norm, x);
          handle.remove();
          expect(separate.kernels).toContain('Add');
          expect(Array.from(fused.y)).toEqual(Array.from(separate.y));
          const ctx = createContext();
          const plain = tf.tidy(() => sublayer.call(norm.call(x, ctx), ctx).dataSync());
          releaseContext(ctx);
          expect(Array.from(seen!)).toEqual(Array.from(plain));
          x.dispose();
        }
        expect(tf.memory().numTensors).toBe(before);
        sublayer.dispose();
        norm.dispose();
      });
    }
  }

  for (const [name, make] of sublayers()) {
    it(`${name}: a hook on the last projection sees its output before the residual, and may replace it`, async () => {
      const sublayer = make();
      const last = sublayer instanceof Attention ? sublayer.output : (sublayer as FeedForward).down;
      const norm = new RMSNorm(hidden, 1e-6);
      randomize(sublayer);
      const x = tf.tensor3d(randoms(3 * hidden, 9), [1, 3, hidden]);
      const handle = last.attachHook('', 'post', (out) => tf.zerosLike(out));
      const { y, kernels } = await block(sublayer, norm, x);
      handle.remove();
      expect(kernels).toContain('TesseraLinear');
      expect(Array.from(y)).toEqual(Array.from(x.dataSync()));
      tf.dispose(x);
      sublayer.dispose();
      norm.dispose();
    });
  }

  it('the whole gated feed-forward kernel names a missing weight, and leaves nothing behind when the down projection is refused', () => {
    const x = tf.zeros([2, 4]);
    const [wg, wu, wd] = [tf.zeros([6, 4]), tf.zeros([6, 4]), tf.zeros([3, 6])];
    const wrong = tf.zeros([2, 4]);
    const run = (inputs: tf.NamedTensorMap) => () => tf.engine().runKernel('TesseraGatedFeedForward', inputs, { activation: 'silu' });
    expect(run({ x, gateWeight: wg, upWeight: wu })).toThrow(/TesseraGatedFeedForward: input 'downWeight' is missing/);
    const dataIds = tf.engine().backend.numDataIds();
    expect(run({ x, gateWeight: wg, upWeight: wu, downWeight: wd, residual: wrong })).toThrow(/input 'residual' must have shape \[2,3\], got \[2,4\]/);
    expect(tf.engine().backend.numDataIds()).toBe(dataIds);
    tf.dispose([x, wg, wu, wd, wrong]);
  });

  it('rejects a residual of another shape or dtype, naming it', () => {
    const x = tf.zeros([2, 4]);
    const w = tf.zeros([3, 4]);
    const wrong = tf.zeros([2, 4]);
    const ints = tf.zeros([2, 3], 'int32');
    expect(() => tf.engine().runKernel('TesseraLinear', { x, weight: w, residual: wrong }, { activation: 'linear' })).toThrow(
      /TesseraLinear: input 'residual' must have shape \[2,3\], got \[2,4\]/,
    );
    expect(() => tf.engine().runKernel('TesseraLinear', { x, weight: w, residual: ints }, { activation: 'linear' })).toThrow(/residual.*float32/);
    expect(() => linear(x, w, undefined, undefined, wrong)).toThrow(/linear: residual is \[2,4\], the output \[2,3\]/);
    tf.dispose([x, w, wrong, ints]);
  });
});
