import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';

import { Attention } from '../../src/layers/attention.js';
import { createContext, releaseContext } from '../../src/layers/context.js';
import { Linear } from '../../src/layers/linear.js';
import { packWeights } from '../../src/layers/packed-weights.js';
import { linear, linears } from '../../src/ops/linear.js';
import { built, randoms, useNativeBackend } from './helpers.js';

/** Linear layers of these output widths over `inF` inputs, random, each packed as its dtype. */
function maps(inF: number, widths: number[], dtypes: Array<'float32' | 'bfloat16' | 'int8'>, bias: boolean): Linear[] {
  return widths.map((n, j) => {
    const layer = new Linear(inF, n, { bias });
    layer.namedParameters().forEach(([, p], i) => p.assign(tf.tensor(randoms(p.size, 7 * j + i + 1), p.shape)));
    packWeights(layer, dtypes[j]!);
    return layer;
  });
}

describe.runIf(built)('several linear maps of one x in one kernel (native)', () => {
  useNativeBackend();

  for (const [label, dtypes, bias] of [
    ['float32 with biases', ['float32', 'float32', 'float32'], true],
    ['bfloat16', ['bfloat16', 'bfloat16', 'bfloat16'], false],
    ['int8, bfloat16 and float32 mixed, with biases', ['int8', 'bfloat16', 'float32'], true],
  ] as const) {
    it(`${label}: each output equals its own linear call, value for value, in one kernel`, async () => {
      // Odd widths and sizes large enough to split over the threads.
      const layers = maps(301, [517, 131, 131], [...dtypes], bias);
      const before = tf.memory().numTensors;
      for (const rows of [1, 5]) {
        const x = tf.tensor3d(randoms(rows * 301, 90 + rows), [1, rows, 301]);
        const profile = await tf.profile(() => linears(x, layers));
        const fused = profile.result as tf.Tensor[];
        expect(profile.kernels.map((k) => k.name)).toEqual(['TesseraLinears']);
        layers.forEach((layer, j) => {
          const own = linear(x, layer.weight, layer.bias);
          expect(fused[j]!.shape).toEqual([1, rows, layer.outFeatures]);
          expect(Array.from(fused[j]!.dataSync())).toEqual(Array.from(own.dataSync()));
          own.dispose();
        });
        tf.dispose([x, ...fused]);
      }
      expect(tf.memory().numTensors).toBe(before);
      layers.forEach((l) => l.dispose());
    });
  }

  it('attention projects q, k and v inside its one kernel call, and through each layer while a hook watches one', async () => {
    const attention = new Attention({ hiddenSize: 64, numHeads: 4, numKvHeads: 2, qkvBias: true, outputBias: false, causal: true });
    attention.namedParameters().forEach(([, p], i) => p.assign(tf.tensor(randoms(p.size, 60 + i), p.shape).mul(0.2)));
    const x = tf.tensor3d(randoms(3 * 64, 5), [1, 3, 64]);
    const run = async () => {
      const ctx = createContext();
      const profile = await tf.profile(() => attention.call(x, ctx));
      releaseContext(ctx);
      const y = (profile.result as tf.Tensor).dataSync().slice();
      (profile.result as tf.Tensor).dispose();
      return { y, kernels: profile.kernels.map((k) => k.name) };
    };
    const fused = await run();
    // The projections, the attention and the output projection: one engine dispatch.
    expect(fused.kernels).toEqual(['TesseraAttentionProjected']);
    let keys: number[] | undefined;
    const handle = attention.key.attachHook('', 'post', (k) => void (keys = k.shape));
    const hooked = await run();
    handle.remove();
    expect(keys).toEqual([1, 3, 32]);
    expect(hooked.kernels.filter((k) => k === 'TesseraLinear')).toHaveLength(3);
    expect(hooked.kernels).not.toContain('TesseraLinears');
    expect(Array.from(hooked.y)).toEqual(Array.from(fused.y));
    x.dispose();
    attention.dispose();
  });

  it('names what is wrong with its inputs', () => {
    const x = tf.zeros([2, 4]);
    const w = tf.zeros([3, 4]);
    const narrow = tf.zeros([3, 5]);
    const b = tf.zeros([3]);
    const before = tf.memory().numTensors;
    const run = (inputs: Record<string, tf.Tensor>) => () => tf.engine().runKernel('TesseraLinears', inputs, {});
    expect(run({ x, weight0: w, weight1: narrow })).toThrow(/TesseraLinears: weight1 must be \[out, 4\] for x \[2,4\], got \[3,5\]/);
    expect(run({ x, weight0: w, bias1: b })).toThrow(/TesseraLinears: unexpected input 'bias1'/);
    expect(run({ x })).toThrow(/TesseraLinears: give 1 to 8 weights/);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([x, w, narrow, b]);
  });
});
