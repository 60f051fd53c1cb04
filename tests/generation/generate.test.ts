import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AutoCausalLM, DEFAULT_MAX_NEW_TOKENS, GenerationCache, disposeSnapshot, type CausalLM } from '../../src/index.js';
import { fixture, loadExpected } from '../helpers.js';

/** The fixtures' reference loop: full forward of prompt + tokens so far, argmax of the last logits. */
function greedyNoCache(lm: CausalLM, prompt: number[], count: number): number[] {
  const tokens = [...prompt];
  for (let i = 0; i < count; i++) {
    const next = tf.tidy(() => {
      const out = lm.forward(tf.tensor2d([tokens], undefined, 'int32'));
      return out.logits.slice([0, tokens.length - 1, 0], [1, 1, -1]).reshape([-1]).argMax().dataSync()[0]!;
    });
    tokens.push(next);
  }
  return tokens.slice(prompt.length);
}

/** Deterministic pseudo-random prompts (no Math.random: failures must reproduce). */
function prompts(lengths: number[], vocab: number, seed: number): number[][] {
  let s = seed;
  const next = (): number => ((s = (s * 1103515245 + 12345) % 2147483648), s % vocab);
  return lengths.map((n) => Array.from({ length: n }, next));
}

for (const name of ['llama-tiny', 'mamba-tiny'] as const) {
  describe(`generate on ${name}`, () => {
    let lm: CausalLM;
    const expected = loadExpected(name);
    beforeAll(async () => {
      lm = (await AutoCausalLM.fromDir(fixture(name))) as CausalLM;
    });
    afterAll(() => lm.dispose());

    it("greedy output equals the fixture's greedy_ids, without leaking tensors", () => {
      const count = expected.greedy_ids!.length;
      lm.generate([expected.greedy_prompt_ids!], { maxNewTokens: count }); // warm up the weight layouts
      const before = tf.memory().numTensors;
      expect(lm.generate([expected.greedy_prompt_ids!], { maxNewTokens: count })).toEqual([expected.greedy_ids]);
      expect(tf.memory().numTensors).toBe(before);
    });

    it('equals a no-cache full-forward loop on random prompts, batched with left padding', () => {
      const ps = prompts([5, 9, 1], 512, name.length);
      const batched = lm.generate(ps, { maxNewTokens: 6 });
      ps.forEach((p, r) => {
        const alone = greedyNoCache(lm, p, 6);
        expect(batched[r], `row ${r}`).toEqual(alone);
        expect(lm.generate([p], { maxNewTokens: 6 })[0], `row ${r} alone`).toEqual(alone);
      });
    });

    it('stops rows at the end token or a stop sequence and keeps the others going', () => {
      const [p0, p1] = prompts([4, 6], 512, 7);
      const free = lm.generate([p0!, p1!], { maxNewTokens: 6 });
      const eos = free[0]![2]!;
      const ended = lm.generate([p0!, p1!], { maxNewTokens: 6, eosTokenId: eos });
      expect(ended[0]).toEqual(free[0]!.slice(0, free[0]!.indexOf(eos) + 1));
      // Row 1 is unaffected unless it emits the same token.
      const cut = free[1]!.indexOf(eos);
      expect(ended[1]).toEqual(cut < 0 ? free[1] : free[1]!.slice(0, cut + 1));
      const stopped = lm.generate([p1!], { maxNewTokens: 6, stop: [free[1]!.slice(1, 3)] });
      expect(stopped[0]).toEqual(free[1]!.slice(0, 3));
    });

    it('streams the same tokens as generate, in order', async () => {
      const ps = prompts([3, 7], 512, 11);
      const events: { row: number; token: number; step: number }[] = [];
      const seen: number[][] = [[], []];
      const viaCallback = lm.generate(ps, { maxNewTokens: 4, onToken: (e) => seen[e.row]!.push(e.token) });
      for await (const e of lm.stream(ps, { maxNewTokens: 4 })) events.push(e);
      const streamed: number[][] = [[], []];
      for (const e of events) streamed[e.row]!.push(e.token);
      expect(streamed).toEqual(viaCallback);
      expect(seen).toEqual(viaCallback);
      expect(events.map((e) => e.step)).toEqual([0, 0, 1, 1, 2, 2, 3, 3]);
    });

    it('samples reproducibly from a seed; top-k 1 is greedy', () => {
      const ps = prompts([6], 512, 3);
      const strategy = { kind: 'sample', temperature: 1.5, topK: 50, topP: 0.95, seed: 42 } as const;
      const a = lm.generate(ps, { maxNewTokens: 8, strategy });
      expect(lm.generate(ps, { maxNewTokens: 8, strategy })).toEqual(a);
      const others = [1, 2, 3].map((seed) => lm.generate(ps, { maxNewTokens: 8, strategy: { ...strategy, seed } })[0]);
      expect(others.some((o) => JSON.stringify(o) !== JSON.stringify(a[0]))).toBe(true);
      expect(lm.generate(ps, { maxNewTokens: 8, strategy: { kind: 'sample', topK: 1, seed: 5 } })).toEqual(
        lm.generate(ps, { maxNewTokens: 8 }),
      );
    });

    it('samples anew on every call without a seed', () => {
      const ps = prompts([6], 512, 3);
      const strategy = { kind: 'sample', temperature: 1.5 } as const;
      const runs = [1, 2, 3, 4].map(() => JSON.stringify(lm.generate(ps, { maxNewTokens: 8, strategy })));
      // Four runs of 8 tokens at temperature 1.5 over 512 tokens agreeing by chance is negligible.
      expect(new Set(runs).size).toBeGreaterThan(1);
      expect(() => lm.generate(ps, { strategy: { kind: 'sample', seed: 0.5 } })).toThrow(/strategy\.seed must be an integer, got 0\.5/);
    });

    it('adds DEFAULT_MAX_NEW_TOKENS tokens when maxNewTokens is not given', () => {
      const ps = prompts([4], 512, 9);
      expect(lm.generate(ps)[0]).toHaveLength(DEFAULT_MAX_NEW_TOKENS);
      expect(lm.generate(ps)).toEqual(lm.generate(ps, { maxNewTokens: DEFAULT_MAX_NEW_TOKENS }));
    });

    it('resumes from a kept cache, a clone and a restored snapshot exactly as one uninterrupted run', () => {
      const [p] = prompts([5], 512, 13);
      const whole = lm.generate([p!], { maxNewTokens: 8 })[0]!;
      const before = tf.memory().numTensors;
      const cache = new GenerationCache();
      const first = lm.generate([p!], { maxNewTokens: 4, cache })[0]!;
      expect(first).toEqual(whole.slice(0, 4));
      expect(cache.length).toBe(p!.length + 3); // every token but the last generated one
      const snapshot = cache.snapshot();
      const branch = cache.clone();
      const rest = lm.generate([[first[3]!]], { maxNewTokens: 4, cache })[0]!;
      expect([...first, ...rest]).toEqual(whole);
      expect(lm.generate([[first[3]!]], { maxNewTokens: 4, cache: branch })[0]).toEqual(rest);
      cache.restore(snapshot);
      expect(lm.generate([[first[3]!]], { maxNewTokens: 4, cache })[0]).toEqual(rest);
      disposeSnapshot(snapshot);
      branch.dispose();
      cache.dispose();
      expect(tf.memory().numTensors).toBe(before);
      expect(() => cache.get(lm)).toThrow(/disposed/);
    });

    it('rejects bad input with messages naming the problem', () => {
      expect(() => lm.generate([], { maxNewTokens: 2 })).toThrow(/non-empty array/);
      expect(() => lm.generate([[]], { maxNewTokens: 2 })).toThrow(/prompt 0 is empty/);
      expect(() => lm.generate([[1, 9999]], { maxNewTokens: 2 })).toThrow('promptIds[0, 1] is 9999, outside the vocabulary of 512');
      expect(() => lm.generate([[1]], { maxNewTokens: 0 })).toThrow(/maxNewTokens must be a positive integer/);
      expect(() => lm.generate([[1]], { maxNewTokens: 2, strategy: { kind: 'sample', temperature: 0 } })).toThrow(/temperature must be > 0/);
      expect(() => lm.generate([[1]], { maxNewTokens: 2, strategy: { kind: 'sample', topP: 1.5 } })).toThrow(/topP must be in \(0, 1\]/);
    });
  });
}

describe('Mamba decoding state', () => {
  it('is the same size at every position: conv [B, D, d_conv] and ssm [B, D, N]', async () => {
    const lm = (await AutoCausalLM.fromDir(fixture('mamba-tiny'))) as CausalLM;
    const cache = new GenerationCache();
    lm.generate([[1, 2, 3]], { maxNewTokens: 2, cache });
    const shapes = () => cache.owners().map((o) => Object.entries(cache.get(o)!).map(([k, t]) => `${k}:${t.shape}`));
    const early = shapes();
    lm.generate([[4]], { maxNewTokens: 20, cache });
    expect(shapes()).toEqual(early);
    expect(early[0]).toEqual(['conv:1,128,4', 'ssm:1,128,16']);
    cache.dispose();
    lm.dispose();
  });
});

describe('generate on a hybrid (jamba-tiny: Mamba and attention layers in one cache)', () => {
  it("greedy output equals the fixture's greedy_ids; a left-padded row matches the prompt alone", async () => {
    const expected = loadExpected('jamba-tiny');
    const lm = (await AutoCausalLM.fromDir(fixture('jamba-tiny'))) as CausalLM;
    const prompt = expected.greedy_prompt_ids!;
    const count = expected.greedy_ids!.length;
    expect(lm.generate([prompt], { maxNewTokens: count })).toEqual([expected.greedy_ids]);
    const batched = lm.generate([prompt, prompt.slice(0, 3)], { maxNewTokens: count });
    expect(batched[0]).toEqual(expected.greedy_ids);
    expect(batched[1]).toEqual(greedyNoCache(lm, prompt.slice(0, 3), count));
    lm.dispose();
  });
});
