import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';

import { disposeSnapshot, GenerationCache } from '../../src/generation/cache.js';
import { AutoCausalLM } from '../../src/loaders/auto.js';
import type { NativeBackend } from '../../src/kernels/native/backend.js';
import { built, useNativeBackend } from './helpers.js';

const backend = () => tf.backend() as unknown as NativeBackend;
/** A tensor over `values` as a kernel makes one (the backend's makeTensorInfo). */
const tensorOver = (values: Float32Array, shape = [values.length]): tf.Tensor =>
  tf.engine().makeTensorFromTensorInfo(backend().makeTensorInfo(shape, 'float32', values), backend());
const storage = (t: tf.Tensor) => (backend() as unknown as { data: { get(id: object): { values: Float32Array } } }).data.get(t.dataId).values;

/** `run` with the backend's buffer reuse, then with every output a new array. */
function withAndWithoutReuse<T>(run: () => T): { pooled: T; fresh: T } {
  const pooled = run();
  const allocate = backend().allocate;
  backend().allocate = (length: number) => new Float32Array(length);
  try {
    return { pooled, fresh: run() };
  } finally {
    backend().allocate = allocate;
  }
}

describe.runIf(built)('reuse of disposed kernel outputs (native)', () => {
  useNativeBackend();

  it('hands a disposed output buffer of the same length out again, and only of that length', () => {
    const first = backend().allocate(1000);
    tensorOver(first).dispose();
    expect(backend().allocate(999).buffer).not.toBe(first.buffer);
    expect(backend().allocate(1000).buffer).toBe(first.buffer);
    expect(backend().allocate(1000).buffer).not.toBe(first.buffer); // handed out once
  });

  it('gives growing outputs headroom, so the buffer of the step before last fits again', () => {
    const [positions, row] = [2000, 256]; // a KV cache of 2000 positions, 256 floats each
    const first = backend().allocate(positions * row, true);
    expect(first.length).toBe(positions * row);
    expect(first.buffer.byteLength).toBeGreaterThan(first.byteLength);
    expect(first.buffer.byteLength).toBeLessThanOrEqual(first.byteLength * 1.1);
    tensorOver(first).dispose();
    const later = backend().allocate((positions + 2) * row, true);
    expect(later.buffer).toBe(first.buffer);
    expect(later.length).toBe((positions + 2) * row);
    // A view of it other than the one handed out (a slice) makes it shared: not reused.
    const t = tensorOver(later);
    const view = tensorOver(new Float32Array(later.buffer, 0, row));
    t.dispose();
    expect(backend().allocate((positions + 2) * row, true).buffer).not.toBe(first.buffer);
    view.dispose();
  });

  it('holds disposed buffers only until releaseSpareBuffers', () => {
    const values = backend().allocate(4096);
    tensorOver(values).dispose();
    expect(backend().spareBufferBytes).toBeGreaterThanOrEqual(4096 * 4);
    backend().releaseSpareBuffers();
    expect(backend().spareBufferBytes).toBe(0);
    expect(backend().allocate(4096).buffer).not.toBe(values.buffer);
  });

  it('keeps a buffer while any tensor still holds it (clone, reshape)', () => {
    const values = backend().allocate(64);
    const t = tensorOver(values, [8, 8]);
    const [clone, reshaped] = [t.clone(), t.reshape([64])];
    t.dispose();
    clone.dispose();
    expect(backend().allocate(64).buffer).not.toBe(values.buffer);
    reshaped.dispose(); // the last holder
    expect(backend().allocate(64).buffer).toBe(values.buffer);
  });

  it('never reuses a buffer that was read out: the array dataSync returned stays as it was', () => {
    const values = backend().allocate(16);
    values.fill(3);
    const t = tensorOver(values);
    const read = t.dataSync();
    t.dispose();
    const next = backend().allocate(16);
    next.fill(7);
    expect(next.buffer).not.toBe(values.buffer);
    expect(Array.from(read)).toEqual(new Array(16).fill(3));
  });

  it('never reuses a buffer another tensor views (as the cpu kernels do for contiguous slices)', () => {
    const values = backend().allocate(32);
    values.fill(5);
    const whole = tensorOver(values);
    const view = tensorOver(values.subarray(8, 16));
    whole.dispose();
    expect(backend().allocate(32).buffer).not.toBe(values.buffer);
    expect(Array.from(view.dataSync())).toEqual(new Array(8).fill(5));
    view.dispose();
  });

  it('Mamba decode reuses its state buffers, with the same results and intact snapshots', () => {
    const config = { model_type: 'mamba', hidden_size: 32, num_hidden_layers: 2, state_size: 8, expand: 2, vocab_size: 64 };
    const lm = AutoCausalLM.fromConfig(config);
    /** Prompt, then 8 single-token steps; the last SSM state, the tokens, and the buffers it used. */
    const decode = () => {
      const cache = new GenerationCache();
      const tokens = lm.generate([[3, 1, 4, 1, 5]], { maxNewTokens: 1, cache })[0]!;
      // A snapshot shares its tensors' data with the cache (clone): read without marking it read.
      const snapshot = cache.snapshot();
      const owner = cache.owners()[0]!;
      const atSnapshot = Float32Array.from(storage(snapshot.slots.get(owner)!.ssm!));
      const buffers = new Set<ArrayBufferLike>();
      const before = tf.memory().numTensors;
      for (let step = 0; step < 8; step++) {
        tokens.push(lm.generate([[tokens.at(-1)!]], { maxNewTokens: 1, cache })[0]![0]!);
        buffers.add(storage(cache.get(owner)!.ssm!).buffer);
      }
      expect(tf.memory().numTensors).toBe(before);
      expect(Array.from(snapshot.slots.get(owner)!.ssm!.dataSync())).toEqual(Array.from(atSnapshot));
      const ssm = Float32Array.from(cache.get(owner)!.ssm!.dataSync());
      cache.dispose();
      disposeSnapshot(snapshot);
      return { tokens, ssm, buffers: buffers.size };
    };
    const { pooled, fresh } = withAndWithoutReuse(decode);
    expect(fresh.buffers).toBe(8);
    expect(pooled.buffers).toBeLessThan(8); // the states cycle through a few buffers
    expect(pooled.tokens).toEqual(fresh.tokens);
    expect(Array.from(pooled.ssm)).toEqual(Array.from(fresh.ssm));
    lm.dispose();
  });

  it('attention decode reuses its growing KV cache buffers, with the same results', () => {
    const config = { model_type: 'llama', hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 96, vocab_size: 64 };
    const lm = AutoCausalLM.fromConfig(config);
    const prompt = Array.from({ length: 40 }, (_, i) => (i * 7) % 64); // 40 positions x 32 floats: past the 1024 floats without headroom
    const decode = () => {
      const cache = new GenerationCache();
      const tokens = lm.generate([prompt], { maxNewTokens: 1, cache })[0]!;
      const owner = cache.owners()[0]!;
      const buffers = new Set<ArrayBufferLike>();
      for (let step = 0; step < 8; step++) {
        tokens.push(lm.generate([[tokens.at(-1)!]], { maxNewTokens: 1, cache })[0]![0]!);
        buffers.add(storage(cache.get(owner)!.key!).buffer);
      }
      const key = Float32Array.from(cache.get(owner)!.key!.dataSync());
      cache.dispose();
      return { tokens, key, buffers: buffers.size };
    };
    const { pooled, fresh } = withAndWithoutReuse(decode);
    expect(fresh.buffers).toBe(8);
    expect(pooled.buffers).toBeLessThan(8);
    expect(pooled.tokens).toEqual(fresh.tokens);
    expect(Array.from(pooled.key)).toEqual(Array.from(fresh.key));
    lm.dispose();
  });
});
