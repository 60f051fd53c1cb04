import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';

import { settleWeights } from '../../src/kernels/backend.js';
import { loadAddon } from '../../src/kernels/native/addon.js';
import { packedPlacements } from '../../src/kernels/native/quant.js';
import type { Backend } from '../../src/kernels/native/kernel-utils.js';
import { AutoCausalLM } from '../../src/loaders/auto.js';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { built, randoms, useNativeBackend } from './helpers.js';

/** Resident bytes a child process gains by building (and running) the model, after a full collection. */
function modelResidentBytes(dtype: string, config: Record<string, unknown>): number {
  const script = fileURLToPath(new URL('../../bench/precision-rss.ts', import.meta.url));
  const child = spawnSync(process.execPath, ['--import', 'tsx', '--expose-gc', script, dtype, JSON.stringify(config), 'native'], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    encoding: 'utf8',
    timeout: 120_000,
  });
  const { before, after } = JSON.parse(child.stdout.trim().split('\n').pop() ?? '') as { before: number; after: number };
  return after - before;
}

describe.runIf(built)('weights on 2 MiB pages (native)', () => {
  useNativeBackend();

  it('hugePageCopy returns an equal, separate copy', () => {
    const source = randoms(3 * 1024 * 1024, 7);
    const copy = loadAddon().hugePageCopy(source);
    expect(copy).not.toBeNull();
    expect(copy!.length).toBe(source.length);
    expect(copy!.buffer === source.buffer).toBe(false);
    expect(Buffer.from(copy!.buffer).equals(Buffer.from(source.buffer))).toBe(true);
  });

  it('a copy just over a whole number of 2 MiB pages is resident for about its size, not the next page up', () => {
    // 20 copies of 2 MiB + 64 KiB: with the last partial page on a huge page each would hold 4 MiB.
    const source = randoms((2 << 20) / 4 + 16384, 9);
    const rss = () => process.memoryUsage().rss;
    const before = rss();
    const copies = Array.from({ length: 20 }, () => loadAddon().hugePageCopy(source));
    const grown = rss() - before;
    expect(copies.every((c) => c !== null && c[c.length - 1] === source[source.length - 1])).toBe(true);
    expect(grown).toBeLessThan(1.5 * 20 * source.byteLength);
  });

  it('a bfloat16 model is resident at about half its float32 size once its float32 originals are collected', () => {
    // The float32 values a model is built with and then packed from must not stay resident.
    const config = { model_type: 'llama', hidden_size: 512, num_hidden_layers: 4, num_attention_heads: 8, num_key_value_heads: 8, intermediate_size: 1376, vocab_size: 32000 };
    const float32 = modelResidentBytes('float32', config);
    const bfloat16 = modelResidentBytes('bfloat16', config);
    expect(float32).toBeGreaterThan(150e6); // 45 M parameters
    expect(bfloat16 / float32).toBeLessThan(0.6);
  }, 120_000);

  it('releaseFreeMemory hands freed C memory back and says whether any was', () => {
    expect(typeof loadAddon().releaseFreeMemory()).toBe('boolean');
  });

  it('settleWeights moves large weights, keeps their values, and leaves small ones', () => {
    const big = tf.tidy(() => tf.variable(tf.tensor(randoms(1024 * 1024, 3), [1024, 1024]))); // 4 MiB
    const small = tf.tidy(() => tf.variable(tf.tensor(randoms(64, 4), [64])));
    const storage = (t: tf.Tensor) => (tf.backend() as unknown as { data: { get(id: object): { values: Float32Array } } }).data.get(t.dataId).values;
    const [bigBefore, smallBefore] = [storage(big), storage(small)];
    const expected = Float32Array.from(big.dataSync());
    settleWeights([big, small]);
    expect(storage(big) === bigBefore).toBe(false);
    expect(storage(small) === smallBefore).toBe(true);
    expect(Buffer.from(big.dataSync().buffer).equals(Buffer.from(expected.buffer))).toBe(true);
    // The moved data is used as any other: a product and an update.
    const product = tf.matMul(big, big);
    expect(Number.isFinite(product.sum().dataSync()[0]!)).toBe(true);
    big.assign(tf.zerosLike(big));
    expect(big.sum().dataSync()[0]).toBe(0);
    tf.dispose([big, small, product]);
  });

  it('settleWeights puts small weights that together fill a page into one shared block, each 64-byte aligned, values kept', () => {
    const start = tf.memory().numTensors;
    // 41 arrays of 250 KB (odd lengths): 10 MB together, none a page on its own.
    const weights = Array.from({ length: 41 }, (_, i) => tf.tidy(() => tf.variable(tf.tensor(randoms(64_000 + i, i + 20)))));
    const storage = (t: tf.Tensor) => (tf.backend() as unknown as { data: { get(id: object): { values: Float32Array } } }).data.get(t.dataId).values;
    const before = weights.map(storage);
    const expected = weights.map((w) => Float32Array.from(w.dataSync()));
    settleWeights(weights);
    const after = weights.map(storage);
    expect(after.every((v, i) => v !== before[i] && v.buffer === after[0]!.buffer && v.byteOffset % 64 === 0)).toBe(true);
    const same = (a: Float32Array, b: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
    expect(weights.every((w, i) => same(w.dataSync() as Float32Array, expected[i]!))).toBe(true);
    // Each view is used and updated as its own tensor: an update leaves its neighbours alone.
    tf.tidy(() => weights[3]!.assign(tf.zerosLike(weights[3]!)));
    expect(tf.tidy(() => weights[3]!.abs().sum().arraySync())).toBe(0);
    expect(same(weights[4]!.dataSync() as Float32Array, expected[4]!) && same(weights[2]!.dataSync() as Float32Array, expected[2]!)).toBe(true);
    tf.dispose(weights);
    expect(tf.memory().numTensors).toBe(start);
  });

  it("an int8 model's small packed weights share a block on 2 MiB pages, and its logits are those of the same bytes in ordinary memory", () => {
    const start = tf.memory().numTensors;
    const config = { model_type: 'llama', hidden_size: 256, num_hidden_layers: 4, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 512, vocab_size: 512 };
    const lm = AutoCausalLM.fromConfig(config, { seed: 5, dtype: 'int8' });
    const backend = tf.backend() as unknown as Backend;
    const placements = lm.namedParameters().flatMap(([, p]) => packedPlacements(backend, p.dataId));
    const codes = placements.filter((p) => p.values instanceof Int8Array);
    expect(codes.length).toBe(30); // 7 projections a layer, the embedding table and the LM head
    expect(codes.every((p) => p.values.buffer === codes[0]!.values.buffer && p.values.byteOffset % 64 === 0)).toBe(true);
    const logits = () => tf.tidy(() => Float32Array.from(lm.forward(tf.tensor2d([[1, 2, 3, 4, 5]], undefined, 'int32')).logits.dataSync()));
    const placed = logits();
    for (const p of placements) p.place(p.values.slice());
    const block = codes[0]!.values.buffer;
    expect(lm.namedParameters().flatMap(([, p]) => packedPlacements(backend, p.dataId)).some((p) => p.values.buffer === block)).toBe(false);
    expect(logits()).toEqual(placed);
    lm.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  it('a model built on native generates the same ids with its weights moved', () => {
    const config = { model_type: 'llama', hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 128, vocab_size: 8192 };
    const lm = AutoCausalLM.fromConfig(config); // the 2 MiB embedding was moved
    const ids = lm.generate([[1, 2, 3, 4]], { maxNewTokens: 5 });
    // The same weights in ordinary memory: copies made outside settleWeights.
    const plain = AutoCausalLM.fromConfig(config);
    for (const [[, from], [, to]] of lm.namedParameters().map((p, i) => [p, plain.namedParameters()[i]!] as const)) to.assign(from.clone());
    expect(plain.generate([[1, 2, 3, 4]], { maxNewTokens: 5 })).toEqual(ids);
    lm.dispose();
    plain.dispose();
  });
});
