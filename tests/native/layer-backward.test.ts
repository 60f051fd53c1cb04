import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';

import { FUSED } from '../../src/kernels/contract.js';
import { activation, gatedActivation } from '../../src/ops/activation.js';
import { attention, type AttentionCall } from '../../src/ops/attention.js';
import { causalConv } from '../../src/ops/causal-conv.js';
import { norm, type NormKind } from '../../src/ops/norm.js';
import { applyRotary } from '../../src/ops/rotary.js';
import { registerGradients } from '../../src/training/gradients.js';
import { built, expectClose, randoms, runOn, selectNativeOrExpectClearError } from './helpers.js';

/**
 * The gradients of the fused rotary, attention, causal conv, activation and norm kernels (native/src/backward.c) against
 * the same ops' reference compositions differentiated by tfjs on the cpu backend, and against
 * finite differences.
 */

const tensor = (shape: number[], seed: number, scale = 1): tf.Tensor => tf.tensor(randoms(tf.util.sizeFromShape(shape), seed).map((v) => v * scale), shape);

/** A loss with non-uniform weights, so every output element's gradient differs. */
function weightedSum(y: tf.Tensor): tf.Scalar {
  const weights = tf.tensor(randoms(y.size, 99), y.shape);
  return y.mul(weights).sum().add(y.square().mul(0.25).sum()) as tf.Scalar;
}

interface Case {
  name: string;
  kernels: string[];
  inputs: () => tf.Tensor[];
  f: (...args: tf.Tensor[]) => tf.Tensor;
}

const rotaryTables = (batch: number, length: number, dim: number) => {
  const angles = tensor([batch, 1, length, dim / 2], 11, 3);
  const full = tf.concat([angles, angles], -1);
  return { cos: tf.cos(full), sin: tf.sin(full) };
};

const CASES: Case[] = [
  ...[
    { headDim: 8, dim: 8, tableBatch: 2 },
    { headDim: 10, dim: 6, tableBatch: 1 },
  ].map(({ headDim, dim, tableBatch }) => ({
    name: `rotary (headDim ${headDim}, rotary dim ${dim}, tables for batch ${tableBatch})`,
    kernels: [FUSED.rotary],
    inputs: () => [tensor([2, 3, 5, headDim], 1)],
    f: (x: tf.Tensor) => {
      const tables = rotaryTables(tableBatch, 5, dim);
      return applyRotary(x as tf.Tensor4D, tables);
    },
  })),
  ...[
    { heads: 2, kvHeads: 2, causal: true, rotary: 8, masked: false },
    { heads: 4, kvHeads: 2, causal: true, rotary: 4, masked: true },
    { heads: 2, kvHeads: 1, causal: false, rotary: 0, masked: true },
  ].map(({ heads, kvHeads, causal, rotary, masked }) => ({
    name: `attention (${heads} heads, ${kvHeads} kv heads, ${causal ? 'causal' : 'bidirectional'}, rotary dim ${rotary}, ${masked ? 'padding' : 'no mask'})`,
    kernels: [FUSED.attention, FUSED.attentionBackward, ...(rotary > 0 ? [FUSED.rotary] : [])],
    inputs: () => [tensor([2, 5, heads * 8], 21), tensor([2, 5, kvHeads * 8], 22), tensor([2, 5, kvHeads * 8], 23)],
    f: (q: tf.Tensor, k: tf.Tensor, v: tf.Tensor) => {
      const call: AttentionCall = { memo: (_key, make) => make() };
      if (rotary > 0) call.rotary = rotaryTables(2, 5, rotary);
      // Left padding in the second row, as batched generation makes it.
      if (masked) call.mask = tf.tensor2d([[1, 1, 1, 1, 1], [0, 0, 1, 1, 1]]);
      return attention(q as tf.Tensor3D, k as tf.Tensor3D, v as tf.Tensor3D, { numHeads: heads, numKvHeads: kvHeads, headDim: 8, causal }, call).context;
    },
  })),
  ...[
    { length: 9, bias: true, keep: false },
    { length: 3, bias: false, keep: true },
  ].map(({ length, bias, keep }) => ({
    name: `causal conv (length ${length} against 4 taps, ${bias ? 'bias' : 'no bias'}, ${keep ? 'padding' : 'no padding'})`,
    kernels: [FUSED.causalConv, FUSED.causalConvBackward],
    inputs: () => [tensor([2, length, 6], 31), tensor([6, 1, 4], 32), ...(bias ? [tensor([6], 33)] : [])],
    f: (x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor) => {
      // The second row's first token is left padding.
      const mask = keep ? tf.tensor3d(Array.from({ length: 2 * length }, (_, i) => (i === length ? 0 : 1)), [2, length, 1]) : undefined;
      const { y, window } = causalConv(x as tf.Tensor3D, w, b, { keep: mask, memo: (_key, make) => make() });
      window.dispose();
      return y;
    },
  })),
  ...['gelu', 'gelu_new', 'silu', 'relu', 'tanh'].flatMap((name) => [
    { name: `${name}`, kernels: [FUSED.activation, FUSED.activationBackward], inputs: () => [tensor([4, 33], 2, 3)], f: (x: tf.Tensor) => activation(name)(x) },
    {
      name: `${name} gated`,
      kernels: [FUSED.activation, FUSED.activationBackward],
      inputs: () => [tensor([4, 33], 3, 3), tensor([4, 33], 4)],
      f: (gate: tf.Tensor, up: tf.Tensor) => gatedActivation(name)(gate, up),
    },
  ]),
  ...(['rmsnorm', 'layernorm'] as NormKind[]).flatMap((kind) => {
    const backward = kind === 'rmsnorm' ? FUSED.rmsNormBackward : FUSED.layerNormBackward;
    const forward = kind === 'rmsnorm' ? FUSED.rmsNorm : FUSED.layerNorm;
    const bias = kind === 'layernorm';
    return [
      {
        name: `${kind}`,
        kernels: [forward, backward],
        inputs: () => [tensor([3, 4, 24], 5, 2), tensor([24], 6).add(1), ...(bias ? [tensor([24], 7)] : [])],
        f: (x: tf.Tensor, w: tf.Tensor, b?: tf.Tensor) => norm(kind, x, w, b, 1e-5),
      },
      {
        name: `${kind} with residual`,
        kernels: [forward, backward],
        inputs: () => [tensor([3, 4, 24], 8, 2), tensor([3, 4, 24], 9), tensor([24], 10).add(1), ...(bias ? [tensor([24], 12)] : [])],
        f: (x: tf.Tensor, r: tf.Tensor, w: tf.Tensor, b?: tf.Tensor) => norm(kind, x, w, b, 1e-5, r),
      },
    ];
  }),
];

async function gradsOn(backend: string, c: Case): Promise<Float32Array[]> {
  await tf.setBackend(backend);
  const inputs = c.inputs();
  const grads = tf.grads((...args: tf.Tensor[]) => weightedSum(c.f(...args)))(inputs);
  const out = grads.map((g) => Float32Array.from(g.dataSync()));
  tf.dispose([...inputs, ...grads]);
  return out;
}

describe('native backward kernels of rotary, activations and norms', () => {
  it('is selectable, or fails with a build hint where the addon is not built', async () => {
    await selectNativeOrExpectClearError();
  });

  describe.runIf(built)('as the fused kernels\' gradients', () => {
    beforeAll(async () => {
      await registerGradients();
    });

    for (const c of CASES) {
      it(`${c.name}: runs the fused kernels while recording and matches the reference gradients`, async () => {
        await tf.setBackend('native');
        const inputs = c.inputs();
        const profile = await tf.profile(() => tf.grads((...args: tf.Tensor[]) => weightedSum(c.f(...args)))(inputs));
        for (const kernel of c.kernels) expect(profile.kernels.map((k) => k.name)).toContain(kernel);
        const before = tf.memory().numTensors;
        tf.dispose(tf.grads((...args: tf.Tensor[]) => weightedSum(c.f(...args)))(inputs));
        expect(tf.memory().numTensors).toBe(before);
        tf.dispose(inputs);
        const fused = await gradsOn('native', c);
        const reference = await gradsOn('cpu', c);
        await tf.setBackend('native');
        expect(fused.length).toBe(reference.length);
        fused.forEach((g, i) => expectClose(g, reference[i]!, 1e-5, 1e-4));
      });
    }

    it('every backward kernel agrees with central finite differences', async () => {
      await tf.setBackend('native');
      for (const c of CASES) {
        const inputs = c.inputs();
        const loss = (...args: tf.Tensor[]) => weightedSum(c.f(...args));
        const grads = tf.grads(loss)(inputs);
        for (let which = 0; which < inputs.length; which++) {
          const base = Float32Array.from(inputs[which]!.dataSync());
          const analytic = grads[which]!.dataSync();
          // A few elements per input: each costs two forward passes.
          for (const at of [0, Math.floor(base.length / 3), base.length - 1]) {
            const h = 1e-2;
            const lossAt = (delta: number): number => {
              const shifted = base.slice();
              shifted[at] += delta;
              const args = inputs.map((t, i) => (i === which ? tf.tensor(shifted, t.shape) : t));
              const value = tf.tidy(() => loss(...args).dataSync()[0]!);
              tf.dispose(args[which]);
              return value;
            };
            const numeric = (lossAt(h) - lossAt(-h)) / (2 * h);
            // relu's kink: skip points within h of it, where the difference straddles it.
            if (c.name.startsWith('relu') && which === 0 && Math.abs(base[at]!) < h) continue;
            expect(Math.abs(numeric - analytic[at]!), `${c.name}, input ${which}, element ${at}`).toBeLessThan(2e-2 * Math.max(1, Math.abs(numeric)));
          }
        }
        tf.dispose([...inputs, ...grads]);
      }
    });

    it('the conv kernel gives the reference conv\'s output and window for a prompt', async () => {
      for (const length of [2, 4, 7]) {
        const run = () => {
          const x = tensor([2, length, 5], 41);
          const { y, window } = causalConv(x as tf.Tensor3D, tensor([5, 1, 4], 42), tensor([5], 43), { memo: (_key, make) => make() });
          return tf.concat([y.reshape([-1]), window.reshape([-1])]);
        };
        const fused = await runOn('native', run);
        const reference = await runOn('cpu', run);
        expectClose(fused.values, reference.values, 1e-6, 1e-5);
      }
      await tf.setBackend('native');
    });

    it('the backward kernels name a wrong input, leaving no tensor behind', async () => {
      await tf.setBackend('native');
      const before = tf.memory().numTensors;
      tf.tidy(() => {
        const x = tf.zeros([2, 4]);
        expect(() => tf.engine().runKernel(FUSED.activationBackward, { x, dy: tf.zeros([2, 3]) }, { activation: 'silu' })).toThrow(/TesseraActivationBackward: input 'dy' must have shape \[2,4\]/);
        expect(() => tf.engine().runKernel(FUSED.rmsNormBackward, { x, dy: x, weight: tf.zeros([3]) }, {})).toThrow(/input 'weight' must have shape \[4\]/);
        const table = tf.zeros([1, 1, 2, 6]);
        expect(() => tf.engine().runKernel(FUSED.rotary, { x: tf.zeros([1, 1, 2, 4]), cos: table, sin: table }, {})).toThrow(/rotary dim 6 must be even and at most headDim 4/);
        const q = tf.zeros([1, 2, 8]);
        expect(() => tf.engine().runKernel(FUSED.attentionBackward, { q, k: q, v: q, dy: q }, { numHeads: 3, numKvHeads: 1, headDim: 8 })).toThrow(/TesseraAttentionBackward: input 'q' must have shape \[1,2,24\]/);
        expect(() => tf.engine().runKernel(FUSED.attentionBackward, { q, k: q, v: q, dy: q }, { numHeads: 0, numKvHeads: 1, headDim: 8 })).toThrow(/TesseraAttentionBackward: attr 'numHeads' must be a positive integer/);
      });
      expect(tf.memory().numTensors).toBe(before);
    });
  });
});
