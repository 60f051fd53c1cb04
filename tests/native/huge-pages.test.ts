import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';

import { settleWeights } from '../../src/kernels/backend.js';
import { loadAddon } from '../../src/kernels/native/addon.js';
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
