import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';

import { registerGradients } from '../../src/index.js';
import { activation, gatedActivation } from '../../src/ops/activation.js';
import { createContext } from '../../src/layers/context.js';
import { FeedForward, type FeedForwardOptions } from '../../src/layers/feed-forward.js';
import { FUSED } from '../../src/kernels/contract.js';
import { Linear } from '../../src/layers/linear.js';
import { linear } from '../../src/ops/linear.js';
import type { Module } from '../../src/layers/module.js';
import { LayerNorm, RMSNorm } from '../../src/layers/norm.js';
import { built, expectClose, randoms, runOn, selectNativeOrExpectClearError } from './helpers.js';

/** Random values in [-scale, scale): activations are checked over their whole curved range. */
const spread = (size: number, seed: number, scale = 6): Float32Array => randoms(size, seed).map((v) => v * scale);

/** Give every parameter of `m` deterministic random values (the same on every backend). */
function fill(m: Module, seed: number): void {
  m.namedParameters().forEach(([, p], i) => p.assign(tf.tensor(randoms(p.size, seed + i).map((v) => v * 0.5), p.shape)));
}

/** `fn(module)` on the native backend (fused) and on the cpu backend (the op-by-op reference). */
async function fusedAndReference<M extends Module>(
  make: () => M,
  fn: (m: M) => tf.Tensor,
): Promise<{ fused: Float32Array; reference: Float32Array; shape: number[] }> {
  const results = [];
  for (const backend of ['native', 'cpu']) {
    await tf.setBackend(backend);
    const m = make();
    fill(m, 11);
    results.push(await runOn(backend, () => fn(m)));
    m.dispose();
  }
  expect(results[0].shape).toEqual(results[1].shape);
  return { fused: results[0].values, reference: results[1].values, shape: results[0].shape };
}

/** Input x of `shape` as a tensor on the current backend. */
const input = (shape: number[], seed = 3, scale = 2): tf.Tensor => tf.tensor(spread(tf.util.sizeFromShape(shape), seed, scale), shape);

describe.skipIf(!built)('native feed-forward kernels', () => {
  beforeAll(async () => {
    await selectNativeOrExpectClearError();
  });

  it('registers the fused kernels under the names the layers use', () => {
    for (const name of Object.values(FUSED)) expect(tf.getKernel(name, 'native')).toBeDefined();
  });

  const names = ['gelu', 'gelu_new', 'gelu_pytorch_tanh', 'gelu_fast', 'silu', 'swish', 'relu', 'tanh'];

  it.each(names)('activation %s matches the composed ops', async (name) => {
    // 70_000 values: above the threshold where the pass splits across threads.
    const x = spread(70_001, 5);
    const fused = await runOn('native', () => activation(name)(tf.tensor(x)));
    const reference = await runOn('cpu', () => activation(name)(tf.tensor(x)));
    expectClose(fused.values, reference.values, 1e-5, 1e-5);
  });

  it.each(['gelu', 'silu'])('gated activation %s is act(gate) * up', async (name) => {
    const gate = spread(2 * 3 * 40, 6);
    const up = spread(2 * 3 * 40, 7);
    const run = () => gatedActivation(name)(tf.tensor(gate, [2, 3, 40]), tf.tensor(up, [2, 3, 40]));
    const fused = await runOn('native', run);
    const reference = await runOn('cpu', run);
    expect(fused.shape).toEqual([2, 3, 40]);
    expectClose(fused.values, reference.values, 1e-5, 1e-5);
  });

  it.each([
    { shape: [2, 5, 24], bias: true },
    { shape: [2, 5, 24], bias: false },
    { shape: [1, 1, 24], bias: true }, // a decode step: one row (gemv)
    { shape: [24], bias: true },
  ])('Linear $shape (bias $bias) matches matmul + add', async ({ shape, bias }) => {
    const { fused, reference, shape: out } = await fusedAndReference(
      () => new Linear(24, 17, { bias }),
      (m) => m.call(input(shape), createContext()),
    );
    expect(out).toEqual([...shape.slice(0, -1), 17]);
    expectClose(fused, reference);
  });

  const ffnCases: Array<FeedForwardOptions & { rows: number[] }> = [
    { hiddenSize: 32, intermediateSize: 48, activation: 'gelu', gated: false, bias: true, rows: [3, 7] },
    { hiddenSize: 32, intermediateSize: 48, activation: 'gelu_new', gated: false, bias: false, rows: [2, 4] },
    { hiddenSize: 32, intermediateSize: 48, activation: 'silu', gated: true, rows: [2, 5] },
    { hiddenSize: 32, intermediateSize: 48, activation: 'silu', gated: true, rows: [1, 1] },
    { hiddenSize: 32, intermediateSize: 48, activation: 'gelu', gated: true, bias: true, rows: [2, 3] },
  ];

  it.each(ffnCases)('FeedForward $activation gated=$gated bias=$bias $rows matches the op-by-op MLP', async (c) => {
    const { fused, reference } = await fusedAndReference(
      () => new FeedForward(c),
      (m) => m.call(input([...c.rows, c.hiddenSize]), createContext()),
    );
    expectClose(fused, reference);
  });

  it.each([
    { kind: 'layernorm', eps: 1e-12 },
    { kind: 'rmsnorm', eps: 1e-6 },
  ])('$kind layer uses the fused kernel and matches the composed ops', async ({ kind, eps }) => {
    const make = () => (kind === 'layernorm' ? new LayerNorm(48, eps) : new RMSNorm(48, eps));
    const { fused, reference } = await fusedAndReference(make, (m) => m.call(input([2, 6, 48], 4, 3), createContext()));
    expectClose(fused, reference);
    await tf.setBackend('native');
    const norm = make();
    const profile = await tf.profile(() => norm.call(input([2, 6, 48]), createContext()));
    expect(profile.kernels.map((k) => k.name)).toContain(kind === 'layernorm' ? FUSED.layerNorm : FUSED.rmsNorm);
    norm.dispose();
  });

  it('a plain and a gated MLP are two and one kernels plus the down projection', async () => {
    await tf.setBackend('native');
    for (const gated of [false, true]) {
      const ffn = new FeedForward({ hiddenSize: 16, intermediateSize: 24, activation: 'silu', gated, bias: true });
      const x = input([1, 1, 16]);
      const profile = await tf.profile(() => ffn.call(x, createContext()));
      expect(profile.kernels.map((k) => k.name)).toEqual([gated ? FUSED.gatedLinear : FUSED.linear, FUSED.linear]);
      x.dispose();
      ffn.dispose();
    }
  });

  it('hooks on the inner Linears still fire (and their edits count): the fusion steps aside', async () => {
    await tf.setBackend('native');
    const ffn = new FeedForward({ hiddenSize: 16, intermediateSize: 24, activation: 'silu', gated: true, bias: true });
    fill(ffn, 3);
    const x = input([2, 3, 16]);
    const seen: string[] = [];
    const handles = [
      ffn.gate!.attachHook('', 'post', (v) => void seen.push(`gate ${v.shape}`)),
      // Zeroing up makes act(gate) * up zero, so the output is the down projection's bias.
      ffn.up.attachHook('', 'post', (v) => {
        seen.push(`up ${v.shape}`);
        return tf.zerosLike(v);
      }),
    ];
    const y = tf.tidy(() => ffn.call(x, createContext()));
    expect(seen).toEqual(['up 2,3,24', 'gate 2,3,24']);
    const bias = ffn.down.bias!.dataSync();
    expectClose(y.dataSync(), Array.from({ length: 6 }, () => Array.from(bias)).flat(), 1e-6, 0);
    y.dispose();
    handles.forEach((h) => h.remove());
    // Without hooks the fused path is back, and agrees with the hooked composition run unedited.
    const hooked = ffn.up.attachHook('', 'post', () => undefined);
    const composed = tf.tidy(() => ffn.call(x, createContext()));
    hooked.remove();
    const fused = tf.tidy(() => ffn.call(x, createContext()));
    expectClose(fused.dataSync(), composed.dataSync());
    tf.dispose([composed, fused, x]);
    ffn.dispose();
  });

  it('keeps the tensor count fixed across forwards', async () => {
    await tf.setBackend('native');
    const ffn = new FeedForward({ hiddenSize: 16, intermediateSize: 24, activation: 'gelu', gated: false, bias: true });
    const norm = new LayerNorm(16, 1e-5);
    const x = input([2, 3, 16]);
    const step = () => tf.tidy(() => ffn.call(norm.call(x, createContext()), createContext())).dispose();
    step();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) step();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose(x);
    ffn.dispose();
    norm.dispose();
  });

  it('records gradients through the op-by-op path (fused kernels have none)', async () => {
    await registerGradients();
    const grads = [];
    for (const backend of ['native', 'cpu']) {
      await tf.setBackend(backend);
      const ffn = new FeedForward({ hiddenSize: 8, intermediateSize: 12, activation: 'gelu', gated: true, bias: true });
      const norm = new RMSNorm(8, 1e-6);
      fill(ffn, 5);
      const x = input([2, 8]);
      const { grads: g } = tf.variableGrads(() => ffn.call(norm.call(x, createContext()), createContext()).sum() as tf.Scalar);
      grads.push(Float32Array.from(g[ffn.gate!.weight.name].dataSync()));
      tf.dispose([x, ...Object.values(g)]);
      ffn.dispose();
      norm.dispose();
    }
    expectClose(grads[0], grads[1]);
  });

  it('rejects bad input with a clear error', async () => {
    await tf.setBackend('native');
    const x = tf.zeros([2, 8]);
    const run = (kernel: string, inputs: tf.NamedTensorMap, attrs = {}) => () => tf.engine().runKernel(kernel, inputs, attrs);
    expect(run(FUSED.linear, { x, weight: tf.zeros([4, 7]) })).toThrow(/TesseraLinear: weight must be \[out, 8\] for x \[2,8\], got \[4,7\]/);
    expect(run(FUSED.linear, { x, weight: tf.zeros([4, 8]), bias: tf.zeros([3]) })).toThrow(/TesseraLinear: input 'bias' must have shape \[4\]/);
    expect(run(FUSED.linear, { x, weight: tf.zeros([4, 8]) }, { activation: 'mish' })).toThrow(
      /TesseraLinear: unknown activation 'mish'; supported: linear, gelu, gelu_tanh, silu, relu, tanh/,
    );
    expect(run(FUSED.gatedLinear, { x, gateWeight: tf.zeros([4, 8]), upWeight: tf.zeros([5, 8]) }, { activation: 'silu' })).toThrow(
      /TesseraGatedLinear: input 'upWeight' must have shape \[4,8\]/,
    );
    expect(run(FUSED.activation, { x, up: tf.zeros([2, 7]) }, { activation: 'silu' })).toThrow(/TesseraActivation: input 'up' must have shape \[2,8\]/);
    expect(run(FUSED.activation, { x: tf.zeros([2], 'int32') }, { activation: 'silu' })).toThrow(/TesseraActivation: input 'x' must be float32/);
    expect(() => linear(x, tf.zeros([4, 7]))).toThrow(/linear: input has 8 features, weight expects 7/);
  });
});
