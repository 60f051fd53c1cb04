import * as tf from '@tensorflow/tfjs-core';
import { afterEach, describe, expect, it } from 'vitest';

import { disposeSnapshot, GenerationCache, type CacheSnapshot } from '../../src/generation/cache.js';
import { AutoCausalLM } from '../../src/loaders/auto.js';
import type { CausalLM } from '../../src/models/causal-lm.js';
import { exactCopy, fusedAttention, keyValueLength, setGrowableKeyValueCaches, type KeyValueCache } from '../../src/ops/attention.js';
import { built, useNativeBackend } from './helpers.js';

const config = { model_type: 'llama', hidden_size: 64, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 96, vocab_size: 64 };
const storage = (t: tf.Tensor) => (tf.backend() as unknown as { data: { get(id: object): { values: Float32Array } } }).data.get(t.dataId).values;
const prompt = (n: number, seed = 7) => Array.from({ length: n }, (_, i) => (i * seed + 3) % 64);

/** Every KV slot of a snapshot, flattened: [layer][key, value] values. */
function contents(snapshot: CacheSnapshot): number[][] {
  return [...snapshot.slots.values()].flatMap((s) => [Array.from(s.key!.dataSync()), Array.from(s.value!.dataSync())]);
}

/** Greedy decode one token at a time (each step a generate call), then the cache's exact contents. */
function decode(lm: CausalLM, prompts: number[][], steps: number, cache = new GenerationCache()) {
  const tokens = lm.generate(prompts, { maxNewTokens: 1, cache });
  for (let s = 1; s < steps; s++) {
    const next = lm.generate(tokens.map((t) => [t.at(-1)!]), { maxNewTokens: 1, cache });
    next.forEach((t, r) => tokens[r]!.push(t[0]!));
  }
  return { tokens, kv: held(cache), cache };
}

/** The cache's exact contents, through a snapshot. */
function held(cache: GenerationCache): number[][] {
  const snapshot = cache.snapshot();
  const kv = contents(snapshot);
  disposeSnapshot(snapshot);
  return kv;
}

/** `run` with caches appended in place (the default) and with the copy every step. */
function bothLayouts<T>(run: () => T): { inPlace: T; copied: T } {
  const inPlace = run();
  setGrowableKeyValueCaches(false);
  try {
    return { inPlace, copied: run() };
  } finally {
    setGrowableKeyValueCaches(true);
  }
}

describe.runIf(built)('KV cache appended in place (native)', () => {
  useNativeBackend();
  afterEach(() => setGrowableKeyValueCaches(true));

  it('holds, after many in-place steps and growth past its capacity, what the copy path and the op-by-op path hold', () => {
    const lm = AutoCausalLM.fromConfig(config) as CausalLM;
    const run = () => {
      const cache = new GenerationCache();
      const out = decode(lm, [prompt(40)], 1, cache);
      const owner = cache.owners()[0]!;
      const first = cache.get(owner) as unknown as KeyValueCache;
      const capacity = first.key.shape[2]!;
      let buffer = storage(first.key).buffer;
      let moves = 0; // steps whose cache is in another buffer than the step before's
      // Past the first capacity (40 positions + room, 128): the cache grows once, geometrically.
      for (let s = 0; s < 120; s++) {
        out.tokens[0]!.push(lm.generate([[out.tokens[0]!.at(-1)!]], { maxNewTokens: 1, cache })[0]![0]!);
        const now = storage((cache.get(owner) as unknown as KeyValueCache).key).buffer;
        if (now !== buffer) moves++;
        buffer = now;
      }
      const kv = cache.get(owner) as unknown as KeyValueCache;
      const result = { tokens: out.tokens[0]!, capacity, held: keyValueLength(kv), grownTo: kv.key.shape[2]!, moves, kv: held(cache) };
      cache.dispose();
      return result;
    };
    const { inPlace, copied } = bothLayouts(run);
    expect(inPlace.capacity).toBeGreaterThan(40); // room past the prompt
    expect(inPlace.held).toBe(160); // the prompt, then a position per step
    expect(inPlace.capacity).toBeLessThan(160);
    expect(inPlace.grownTo).toBeGreaterThanOrEqual(inPlace.held);
    expect(inPlace.moves).toBe(1); // in place until full, then into the grown buffer
    expect(copied.moves).toBeGreaterThan(100);
    expect(copied.grownTo).toBe(copied.held); // exact tensors: a copy per step
    expect(inPlace.tokens).toEqual(copied.tokens);
    expect(inPlace.kv).toEqual(copied.kv);
    // The op-by-op path (a hook on an attention tap forces it) reads the same cache.
    const reference = (() => {
      const handle = lm.layers.items[0]!.mixer.attachHook('probs', 'post', () => undefined);
      try {
        return run();
      } finally {
        handle.remove();
      }
    })();
    expect(reference.tokens).toEqual(inPlace.tokens);
    lm.dispose();
  });

  it('keeps snapshots distinct and correct, before and after a step, and resumes from one', () => {
    const lm = AutoCausalLM.fromConfig(config) as CausalLM;
    const straight = decode(lm, [prompt(20)], 12);
    straight.cache.dispose();
    const cache = new GenerationCache();
    const half = decode(lm, [prompt(20)], 6, cache);
    const before = cache.snapshot();
    const atBefore = contents(before);
    const tokens = half.tokens[0]!;
    tokens.push(lm.generate([[tokens.at(-1)!]], { maxNewTokens: 1, cache })[0]![0]!);
    const after = cache.snapshot();
    expect(contents(before)).toEqual(atBefore); // the in-place append did not reach the earlier snapshot
    expect(after.length).toBe(before.length + 1);
    expect(contents(after)[0]!.length).toBeGreaterThan(atBefore[0]!.length);
    // Resume from the earlier snapshot in another cache: the same continuation as straight through.
    const resumed = new GenerationCache();
    resumed.restore(before);
    const rest = [...half.tokens[0]!.slice(0, 6)];
    for (let s = 0; s < 6; s++) rest.push(lm.generate([[rest.at(-1)!]], { maxNewTokens: 1, cache: resumed })[0]![0]!);
    expect(rest).toEqual(straight.tokens[0]);
    tf.dispose([...[before, after].flatMap((s) => [...s.slots.values()].flatMap((t) => Object.values(t)))]);
    [resumed, cache].forEach((c) => c.dispose());
    lm.dispose();
  });

  it('decodes a left-padded batch as the copy path does, each row as it decodes alone', () => {
    const lm = AutoCausalLM.fromConfig(config) as CausalLM;
    const prompts = [prompt(9, 5), prompt(30, 11)];
    const { inPlace, copied } = bothLayouts(() => {
      const out = decode(lm, prompts, 10);
      out.cache.dispose();
      return { tokens: out.tokens, kv: out.kv };
    });
    expect(inPlace).toEqual(copied);
    const alone = decode(lm, [prompts[0]!], 10);
    alone.cache.dispose();
    expect(inPlace.tokens[0]).toEqual(alone.tokens[0]);
    lm.dispose();
  });

  it('makes no tensors per token, including when a step throws', () => {
    const lm = AutoCausalLM.fromConfig(config) as CausalLM;
    const cache = new GenerationCache();
    const out = decode(lm, [prompt(10)], 2, cache);
    const counts: number[] = [];
    let last = out.tokens[0]!.at(-1)!;
    for (let s = 0; s < 6; s++) {
      last = lm.generate([[last]], { maxNewTokens: 1, cache })[0]![0]!;
      counts.push(tf.memory().numTensors);
      expect(() => lm.generate([[99]], { maxNewTokens: 1, cache })).toThrow(/outside the vocabulary of 64/);
      counts.push(tf.memory().numTensors);
    }
    expect(new Set(counts).size).toBe(1);
    cache.dispose();
    lm.dispose();
  });

  it('leaves what an earlier cache tensor holds intact when a caller keeps it and drops the later one', () => {
    const opts = { numHeads: 4, numKvHeads: 2, headDim: 8, causal: true, scale: 0.25 };
    const proj = (len: number, heads: number, seed: number) => tf.randomNormal([1, len, heads * 8], 0, 1, 'float32', seed) as tf.Tensor3D;
    const step = (len: number, seed: number, past?: KeyValueCache) => {
      const out = fusedAttention({ q: proj(len, 4, seed), k: proj(len, 2, seed + 1), v: proj(len, 2, seed + 2), cache: { past } }, opts);
      out.context.dispose();
      return out.cache!;
    };
    tf.tidy(() => {
      const first = step(5, 1);
      const held = Array.from(exactCopy(first.key).dataSync());
      const second = step(1, 4, first);
      expect(storage(second.key).buffer).toBe(storage(first.key).buffer); // appended in place
      expect(keyValueLength(second)).toBe(6);
      tf.dispose([second.key, second.value]);
      // Outputs of the same size now: none may land in the buffer `first` still views.
      const others = [step(5, 7), step(5, 10)];
      expect(Array.from(exactCopy(first.key).dataSync())).toEqual(held);
      // Appending to `first` again copies: its buffer's room was handed to `second`.
      const third = step(1, 13, first);
      expect(storage(third.key).buffer).not.toBe(storage(first.key).buffer);
      expect(Array.from(exactCopy(third.key).slice([0, 0, 0, 0], [1, 2, 5, 8]).dataSync())).toEqual(held);
      tf.dispose(others.flatMap((c) => [c.key, c.value]));
    });
  });
});
