import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AutoCausalLM, CacheModelMismatchError, GenerationCache, disposeSnapshot, disposeOutput, type CausalLM } from '../../src/index.js';
import { fixture } from '../helpers.js';

describe(`a GenerationCache belongs to the model that first ran with it (backend ${tf.getBackend()})`, () => {
  let llama: CausalLM;
  let mamba: CausalLM;
  let llama2: CausalLM; // a second instance of the same checkpoint is still another model
  beforeAll(async () => {
    llama = (await AutoCausalLM.fromDir(fixture('llama-tiny'))) as CausalLM;
    mamba = (await AutoCausalLM.fromDir(fixture('mamba-tiny'))) as CausalLM;
    llama2 = (await AutoCausalLM.fromDir(fixture('llama-tiny'))) as CausalLM;
    for (const lm of [llama, mamba, llama2]) lm.generate([[1, 2]], { maxNewTokens: 2 }); // warm-up
  });
  afterAll(() => [llama, mamba, llama2].forEach((lm) => lm.dispose()));

  it("refuses another model's cache before touching it; the owner then continues as if nothing happened", () => {
    const before = tf.memory().numTensors;
    const reference = new GenerationCache();
    const first = llama.generate([[1, 2, 3]], { maxNewTokens: 3, cache: reference })[0]!;
    const expected = llama.generate([[first[2]!]], { maxNewTokens: 3, cache: reference })[0]!;

    const cache = new GenerationCache();
    expect(llama.generate([[1, 2, 3]], { maxNewTokens: 3, cache })[0]).toEqual(first);
    const length = cache.length;
    const ids = tf.tensor2d([[4]], undefined, 'int32');
    for (const other of [mamba, llama2]) {
      expect(() => other.generate([[first[2]!]], { maxNewTokens: 3, cache })).toThrow(CacheModelMismatchError);
      expect(() => other.forward(ids, { cache, offset: cache.length })).toThrow(CacheModelMismatchError);
    }
    ids.dispose();
    expect(() => mamba.generate([[4]], { maxNewTokens: 1, cache })).toThrow(
      "this GenerationCache belongs to CausalLM 'llama' (the model that first ran with it) and cannot be used with CausalLM 'mamba'",
    );
    expect(() => llama2.generate([[4]], { maxNewTokens: 1, cache })).toThrow("cannot be used with another CausalLM 'llama' instance");
    expect(cache.length).toBe(length);
    expect(llama.generate([[first[2]!]], { maxNewTokens: 3, cache })[0]).toEqual(expected);
    cache.dispose();
    reference.dispose();
    expect(tf.memory().numTensors).toBe(before);
  });

  it('clones, snapshots and caches restored from them belong to the same model', () => {
    const cache = new GenerationCache();
    mamba.generate([[1, 2, 3]], { maxNewTokens: 2, cache });
    const clone = cache.clone();
    const snapshot = cache.snapshot();
    const restored = new GenerationCache();
    restored.restore(snapshot);
    for (const c of [clone, restored]) expect(() => llama.generate([[4]], { maxNewTokens: 1, cache: c })).toThrow(CacheModelMismatchError);

    // A snapshot of a mamba cache cannot be restored into a llama cache (which stays as it was).
    const llamaCache = new GenerationCache();
    llama.generate([[1, 2]], { maxNewTokens: 2, cache: llamaCache });
    const llamaLength = llamaCache.length;
    expect(() => llamaCache.restore(snapshot)).toThrow("cannot be used with a snapshot of CausalLM 'mamba''s cache");
    expect(llamaCache.length).toBe(llamaLength);
    expect(llamaCache.owners().length).toBeGreaterThan(0);

    // Clearing keeps the owner: an empty cache of one model is still not another's.
    cache.clear();
    expect(() => llama.generate([[4]], { maxNewTokens: 1, cache })).toThrow(CacheModelMismatchError);
    expect(mamba.generate([[4]], { maxNewTokens: 1, cache })).toHaveLength(1);
    disposeSnapshot(snapshot);
    [cache, clone, restored, llamaCache].forEach((c) => c.dispose());
  });

  it('a plain forward with a fresh cache binds it too', () => {
    const cache = new GenerationCache();
    const ids = tf.tensor2d([[1, 2]], undefined, 'int32');
    disposeOutput(mamba.forward(ids, { cache }));
    expect(() => llama.forward(ids, { cache })).toThrow(CacheModelMismatchError);
    ids.dispose();
    cache.dispose();
  });
});
