import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';

import { Attention, type AttentionOptions } from '../../src/layers/attention.js';
import { createContext, releaseContext, type ForwardContext } from '../../src/layers/context.js';
import { FUSED } from '../../src/kernels/contract.js';
import { fusedAttention, keyValueLength, type KeyValueCache } from '../../src/ops/attention.js';
import { linears } from '../../src/ops/linear.js';
import { canFuse } from '../../src/ops/dispatch.js';
import { disposeSnapshot, GenerationCache } from '../../src/generation/cache.js';
import { registerGradients } from '../../src/training/gradients.js';
import { getNumThreads, setNumThreads } from '../../src/kernels/native/index.js';
import { built, expectClose, randoms, useNativeBackend } from './helpers.js';

const HIDDEN = 48;

/** An attention layer with weights large enough that softmax rows are far from uniform. */
function layer(options: Partial<AttentionOptions> & Pick<AttentionOptions, 'numHeads' | 'numKvHeads' | 'causal'>, seed = 10): Attention {
  const attn = new Attention({ hiddenSize: HIDDEN, qkvBias: true, outputBias: true, ...options });
  let s = seed;
  for (const p of [attn.query, attn.key, attn.value, attn.output]) {
    p.weight.assign(tf.tensor(randoms(p.weight.size, s++), p.weight.shape).mul(0.6));
    p.bias?.assign(tf.tensor(randoms(p.bias.size, s++), p.bias.shape).mul(0.3));
  }
  return attn;
}

function input(batch: number, length: number, seed = 3): tf.Tensor3D {
  return tf.tensor3d(randoms(batch * length * HIDDEN, seed), [batch, length, HIDDEN]);
}

/** Left padding: row b starts with `pads[b]` padding positions, over `total` positions. */
function leftPadMask(pads: number[], total: number): tf.Tensor2D {
  return tf.tensor2d(
    pads.flatMap((p) => Array.from({ length: total }, (_, i) => (i < p ? 0 : 1))),
    [pads.length, total],
    'int32',
  );
}

/** Run `attn` once fused and once op-by-op (a no-op hook on its `probs` tap forces that path). */
function bothPaths(attn: Attention, run: () => tf.Tensor): { fused: Float32Array; reference: Float32Array } {
  const fused = tf.tidy(run);
  const handle = attn.attachHook('probs', 'post', () => undefined);
  const reference = tf.tidy(run);
  handle.remove();
  const out = { fused: Float32Array.from(fused.dataSync()), reference: Float32Array.from(reference.dataSync()) };
  tf.dispose([fused, reference]);
  return out;
}

function forward(attn: Attention, x: tf.Tensor, init: Partial<ForwardContext> = {}): tf.Tensor {
  const ctx = createContext(init);
  const y = attn.call(x, ctx);
  releaseContext(ctx);
  return y;
}

describe.skipIf(!built)('fused attention (native)', () => {
  useNativeBackend();

  it('registers the kernels the layers look for', () => {
    expect(canFuse(FUSED.attention)).toBe(true);
  });

  const shapes: Array<[string, Partial<AttentionOptions> & Pick<AttentionOptions, 'numHeads' | 'numKvHeads' | 'causal'>]> = [
    ['MHA bidirectional', { numHeads: 4, numKvHeads: 4, causal: false }],
    ['MHA causal with rotary', { numHeads: 4, numKvHeads: 4, causal: true, rotary: { dim: 12, base: 10000, scaling: { type: 'default' } } }],
    ['GQA causal with rotary', { numHeads: 6, numKvHeads: 2, causal: true, rotary: { dim: 8, base: 10000, scaling: { type: 'default' } } }],
    ['MQA causal, partial rotary', { numHeads: 4, numKvHeads: 1, causal: true, rotary: { dim: 6, base: 500, scaling: { type: 'linear', factor: 2 } } }],
    // Decode takes one GEMV per query head up to 4 heads per kv head, a GEMM beyond.
    ['MQA with 8 query heads per kv head, causal', { numHeads: 8, numKvHeads: 1, causal: true, headDim: 6 }],
    ['GQA bidirectional, headDim != hidden/heads', { numHeads: 4, numKvHeads: 2, causal: false, headDim: 10 }],
  ];

  for (const [name, options] of shapes) {
    it(`matches the op-by-op path: ${name}, batch 3, no mask`, () => {
      const attn = layer(options);
      const x = input(3, 7);
      const { fused, reference } = bothPaths(attn, () => forward(attn, x));
      expectClose(fused, reference, 1e-5, 1e-4);
      x.dispose();
      attn.dispose();
    });

    it(`matches the op-by-op path: ${name}, left padding (a fully padded query row too)`, () => {
      const attn = layer(options);
      const x = input(3, 6, 4);
      const mask = leftPadMask([0, 2, 5], 6);
      const positionIds = tf.tensor2d([0, 1, 2, 3, 4, 5, 0, 0, 0, 1, 2, 3, 0, 0, 0, 0, 0, 0], [3, 6], 'int32');
      const { fused, reference } = bothPaths(attn, () => forward(attn, x, { attentionMask: mask, positionIds }));
      expectClose(fused, reference, 1e-5, 1e-4);
      tf.dispose([x, mask, positionIds]);
      attn.dispose();
    });

    it(`matches the op-by-op path: ${name}, prefill then one-token steps over the cache`, () => {
      const attn = layer(options);
      const steps = [input(2, 5, 5), input(2, 1, 6), input(2, 1, 7), input(2, 2, 8)];
      const pads = [2, 0];
      const decode = (): tf.Tensor => {
        const cache = new GenerationCache();
        const outs: tf.Tensor[] = [];
        let offset = 0;
        for (const x of steps) {
          const length = x.shape[1];
          const mask = leftPadMask(pads, offset + length);
          const positionIds = tf.tensor2d(
            pads.flatMap((p) => Array.from({ length }, (_, i) => Math.max(0, offset + i - p))),
            [2, length],
            'int32',
          );
          outs.push(forward(attn, x, { attentionMask: mask, positionIds, cache, offset }));
          tf.dispose([mask, positionIds]);
          offset += length;
        }
        const all = tf.concat(outs, 1);
        // The cache holds the op-by-op path's layout, [B, kvHeads, S, headDim], as its snapshot shows
        // (the native cache's tensors may hold room past S).
        expect(keyValueLength(cache.get(attn) as unknown as KeyValueCache)).toBe(offset);
        const snapshot = cache.snapshot();
        const { key, value } = snapshot.slots.get(attn)!;
        expect(key!.shape).toEqual([2, options.numKvHeads, offset, attn.headDim]);
        expect(value!.shape).toEqual(key!.shape);
        const withCache = tf.concat([all.reshape([-1]), key!.reshape([-1]), value!.reshape([-1])]);
        disposeSnapshot(snapshot);
        cache.dispose();
        return withCache;
      };
      const { fused, reference } = bothPaths(attn, decode);
      expectClose(fused, reference, 1e-5, 1e-4);
      tf.dispose(steps);
      attn.dispose();
    });
  }

  it('matches the op-by-op path on long causal prompts (row blocks over the visible keys), left padding past a block', () => {
    const attn = layer({ numHeads: 6, numKvHeads: 2, causal: true, rotary: { dim: 8, base: 10000, scaling: { type: 'default' } } });
    const x = input(3, 150, 13);
    const pads = [0, 70, 149];
    const mask = leftPadMask(pads, 150);
    const positionIds = tf.tensor2d(
      pads.flatMap((p) => Array.from({ length: 150 }, (_, i) => Math.max(0, i - p))),
      [3, 150],
      'int32',
    );
    const { fused, reference } = bothPaths(attn, () => forward(attn, x, { attentionMask: mask, positionIds }));
    expectClose(fused, reference, 1e-5, 1e-4);
    const unmasked = bothPaths(attn, () => forward(attn, x));
    expectClose(unmasked.fused, unmasked.reference, 1e-5, 1e-4);
    tf.dispose([x, mask, positionIds]);
    attn.dispose();
  });

  it('splits (batch, head) pairs over threads with the same result as one thread', () => {
    // 2 x 4 heads x 128 x 128 keys x 12 dims is past the kernel's threading threshold. The kernel
    // is called on fixed projections: OpenBLAS's own GEMMs (the layer's projections) may sum in
    // another order with another thread count on some CPUs, the kernel's split must not.
    const [batch, length, headDim] = [2, 128, 12];
    const opts = { numHeads: 4, numKvHeads: 2, headDim, causal: true, scale: 1 / Math.sqrt(headDim) };
    const q = tf.tensor3d(randoms(batch * length * 4 * headDim, 5), [batch, length, 4 * headDim]).mul(2) as tf.Tensor3D;
    const k = tf.tensor3d(randoms(batch * length * 2 * headDim, 6), [batch, length, 2 * headDim]).mul(2) as tf.Tensor3D;
    const v = tf.tensor3d(randoms(batch * length * 2 * headDim, 7), [batch, length, 2 * headDim]);
    const mask = leftPadMask([0, 100], length);
    const run = (): Float32Array => {
      const y = fusedAttention({ q, k, v, mask }, opts).context;
      const out = Float32Array.from(y.dataSync());
      y.dispose();
      return out;
    };
    const threads = getNumThreads();
    const parallel = run();
    setNumThreads(1);
    const single = run();
    setNumThreads(threads);
    expect(threads).toBeGreaterThan(0);
    expect(parallel).toEqual(single);
    tf.dispose([q, k, v, mask]);

    const attn = layer({ numHeads: 4, numKvHeads: 2, causal: true, rotary: { dim: 12, base: 10000, scaling: { type: 'default' } } });
    const x = input(2, 128, 14);
    const layerMask = leftPadMask([0, 100], 128);
    const { fused, reference } = bothPaths(attn, () => forward(attn, x, { attentionMask: layerMask }));
    expectClose(fused, reference, 1e-5, 1e-4);
    tf.dispose([x, layerMask]);
    attn.dispose();
  });

  it('continues a generation the other path began (the cache format is shared)', () => {
    const attn = layer({ numHeads: 6, numKvHeads: 2, causal: true, rotary: { dim: 8, base: 10000, scaling: { type: 'default' } } });
    const prompt = input(1, 4, 11);
    const next = input(1, 1, 12);
    const run = (prefillFused: boolean, stepFused: boolean): Float32Array => {
      const cache = new GenerationCache();
      const hookOnce = (fused: boolean, fn: () => tf.Tensor): tf.Tensor => {
        const handle = fused ? undefined : attn.attachHook('scores', 'post', () => undefined);
        const y = fn();
        handle?.remove();
        return y;
      };
      tf.dispose(hookOnce(prefillFused, () => forward(attn, prompt, { cache })));
      const y = hookOnce(stepFused, () => forward(attn, next, { cache, offset: 4 }));
      const out = Float32Array.from(y.dataSync());
      y.dispose();
      cache.dispose();
      return out;
    };
    const reference = run(false, false);
    expectClose(run(true, false), reference, 1e-5, 1e-4);
    expectClose(run(false, true), reference, 1e-5, 1e-4);
    expectClose(run(true, true), reference, 1e-5, 1e-4);
    tf.dispose([prompt, next]);
    attn.dispose();
  });

  it('leaves no tensors behind, with and without a cache', () => {
    const attn = layer({ numHeads: 4, numKvHeads: 2, causal: true, rotary: { dim: 12, base: 10000, scaling: { type: 'default' } } });
    const x = input(2, 3);
    const cache = new GenerationCache();
    tf.dispose(forward(attn, x, { cache }));
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) {
      tf.dispose(tf.tidy(() => forward(attn, x.slice([0, 0, 0], [2, 1, HIDDEN]), { cache, offset: 3 + i })));
      tf.dispose(forward(attn, x));
    }
    expect(tf.memory().numTensors).toBe(before);
    cache.dispose();
    x.dispose();
    attn.dispose();
  });

  it('falls back to the op-by-op path while a tap is hooked, and hooks on the projections still fire', () => {
    const attn = layer({ numHeads: 4, numKvHeads: 4, causal: false });
    const x = input(2, 3);
    const seen: string[] = [];
    const probs = attn.attachHook('probs', 'post', (v) => void seen.push(`probs ${v.shape}`));
    tf.dispose(forward(attn, x));
    expect(seen).toEqual(['probs 2,4,3,3']);
    probs.remove();
    const query = attn.query.attachHook('', 'post', (v) => void seen.push(`query ${v.shape}`));
    const output = attn.attachHook('', 'post', (v) => void seen.push(`output ${v.shape}`));
    tf.dispose(forward(attn, x));
    expect(seen.slice(1)).toEqual(['query 2,3,48', 'output 2,3,48']);
    query.remove();
    output.remove();
    tf.dispose(x);
    attn.dispose();
  });

  it('runs fused while gradients are recorded, its gradient through the backward kernel', async () => {
    await registerGradients();
    const attn = layer({ numHeads: 4, numKvHeads: 4, causal: true });
    const x = input(1, 3);
    const profile = await tf.profile(() => tf.grads((a: tf.Tensor) => forward(attn, a).sum())([x]));
    expect(profile.kernels.map((k) => k.name)).toEqual(expect.arrayContaining([FUSED.attention, FUSED.attentionBackward]));
    const grads = tf.grads((a: tf.Tensor) => forward(attn, a).sum())([x]);
    expect(grads[0]!.shape).toEqual(x.shape);
    expect(Math.abs(grads[0]!.sum().dataSync()[0]!)).toBeGreaterThan(0);
    tf.dispose([x, ...grads]);
    attn.dispose();
  });

  it('rejects bad shapes with clear errors', () => {
    const q = tf.zeros([1, 2, 8]) as tf.Tensor3D;
    const k = tf.zeros([1, 2, 8]) as tf.Tensor3D;
    const opts = { numHeads: 2, numKvHeads: 2, headDim: 4, causal: false, scale: 0.5 };
    expect(() => fusedAttention({ q, k, v: tf.zeros([1, 3, 8]) as tf.Tensor3D }, opts)).toThrow(/TesseraAttention: input 'v' must have shape \[1,2,8\]/);
    expect(() => fusedAttention({ q, k, v: k, mask: tf.ones([1, 3]) as tf.Tensor2D }, opts)).toThrow(/TesseraAttention: input 'mask' must have shape \[1,2\]/);
    expect(() => fusedAttention({ q, k, v: k }, { ...opts, numKvHeads: 3 })).toThrow(/multiple of numKvHeads/);
    const past = { key: tf.zeros([1, 2, 5, 3]), value: tf.zeros([1, 2, 5, 3]) };
    expect(() => fusedAttention({ q, k, v: k, cache: { past } }, opts)).toThrow(/TesseraAttention: input 'pastKey' must have shape \[1,2,5,4\]/);
    const table = tf.zeros([1, 1, 2, 5]);
    expect(() => fusedAttention({ q, k, v: k, rotary: { cos: table, sin: table } }, opts)).toThrow(/rotary dim 5 must be even/);
    const attn = layer({ numHeads: 4, numKvHeads: 4, causal: false });
    const mask = tf.ones([2, 5], 'int32') as tf.Tensor2D;
    expect(() => forward(attn, input(2, 3), { attentionMask: mask })).toThrow(/attentionMask has shape \[2,5\], expected \[2, 3\]/);
    attn.dispose();
  });

  it('with the output projection: its shape errors name it, and the context and caches made before one are freed', () => {
    const q = tf.zeros([1, 2, 8]) as tf.Tensor3D;
    const opts = { numHeads: 2, numKvHeads: 2, headDim: 4, causal: true, scale: 0.5 };
    const weight = tf.zeros([6, 8]);
    const wrong = tf.zeros([1, 2, 8]);
    const dataIds = tf.engine().backend.numDataIds();
    const tensors = tf.memory().numTensors;
    expect(() => fusedAttention({ q, k: q, v: q, cache: {}, output: { weight, residual: wrong } }, opts)).toThrow(
      /TesseraLinear: input 'residual' must have shape \[1,2,6\], got \[1,2,8\]/,
    );
    expect(tf.engine().backend.numDataIds()).toBe(dataIds);
    expect(tf.memory().numTensors).toBe(tensors);
    expect(() => tf.engine().runKernel('TesseraAttentionProjected', { q, k: q, v: q }, { ...opts, returnCache: false })).toThrow(
      /TesseraAttentionProjected: input 'outWeight' is missing/,
    );
    const { context, cache } = fusedAttention({ q, k: q, v: q, cache: {}, output: { weight } }, opts);
    expect(context.shape).toEqual([1, 2, 6]);
    expect(cache!.key.shape[2]).toBeGreaterThanOrEqual(2);
    tf.dispose([q, weight, wrong, context, cache!.key, cache!.value]);
  });

  it('makes q, k and v inside its call from x and their weights (pre-norm too): the values of the projections run first, and nothing is left on errors', () => {
    const x = tf.tensor3d(randoms(2 * 3 * 8, 21), [2, 3, 8]);
    const [wq, wk, wv] = [22, 23, 24].map((seed) => tf.tensor2d(randoms(8 * 8, seed), [8, 8]));
    const [bq, bk, bv] = [25, 26, 27].map((seed) => tf.tensor1d(randoms(8, seed)));
    const norm = { weight: tf.tensor1d(randoms(8, 28)), eps: 1e-5 };
    const out = { weight: tf.tensor2d(randoms(6 * 8, 29), [6, 8]) };
    const maps = [
      { weight: wq!, bias: bq },
      { weight: wk!, bias: bk },
      { weight: wv!, bias: bv },
    ] as const;
    const opts = { numHeads: 2, numKvHeads: 2, headDim: 4, causal: true, scale: 0.5 };
    for (const preNorm of [undefined, norm]) {
      const [q, k, v] = linears(x, maps, preNorm) as tf.Tensor3D[];
      const expected = fusedAttention({ q: q!, k: k!, v: v!, output: out }, opts).context;
      const made = fusedAttention({ projections: { x, maps, preNorm }, output: out }, opts).context;
      expectClose(made.dataSync(), expected.dataSync(), 1e-6);
      tf.dispose([q!, k!, v!, expected, made]);
    }
    const dataIds = tf.engine().backend.numDataIds();
    const tensors = tf.memory().numTensors;
    const wrong = tf.zeros([2, 3, 5]);
    expect(() => fusedAttention({ projections: { x, maps }, output: { ...out, residual: wrong } }, opts)).toThrow(/TesseraLinear: input 'residual' must have shape \[2,3,6\]/);
    expect(() => fusedAttention({ projections: { x, maps }, mask: tf.ones([2, 4]) as tf.Tensor2D, output: out }, opts)).toThrow(/TesseraAttention: input 'mask' must have shape \[2,3\]/);
    const attrs = { ...opts, returnCache: false };
    expect(() => tf.engine().runKernel('TesseraAttentionProjected', { x, qWeight: wq!, kWeight: wk!, outWeight: out.weight }, attrs)).toThrow(
      /TesseraAttentionProjected: with input 'x', inputs 'qWeight', 'kWeight' and 'vWeight' are required/,
    );
    expect(() => tf.engine().runKernel('TesseraAttentionProjected', { x, q: x, qWeight: wq!, kWeight: wk!, vWeight: wv!, outWeight: out.weight }, attrs)).toThrow(
      /TesseraAttentionProjected: give q, k and v, or x and their weights, not both/,
    );
    expect(() => tf.engine().runKernel('TesseraAttentionProjected', { q: x, k: x, outWeight: out.weight }, attrs)).toThrow(
      /TesseraAttentionProjected: give q, k and v, or x and their weights$/,
    );
    expect(tf.engine().backend.numDataIds()).toBe(dataIds + 2); // the wrong residual and the mask
    expect(tf.memory().numTensors).toBe(tensors + 2);
    tf.dispose([x, wq!, wk!, wv!, bq!, bk!, bv!, norm.weight, out.weight, wrong]);
  });
});
