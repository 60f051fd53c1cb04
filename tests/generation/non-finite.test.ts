import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AutoCausalLM, GenerationCache, NonFiniteLogitsError, type CausalLM, type TokenEvent } from '../../src/index.js';
import { fixture } from '../helpers.js';

/** The error `fn` throws (failing the test if it returns). */
function thrown(fn: () => unknown): NonFiniteLogitsError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(NonFiniteLogitsError);
    return e as NonFiniteLogitsError;
  }
  return expect.fail('expected a NonFiniteLogitsError');
}

/** A hook on the LM head that replaces row `row`'s logits with `bad(vocab)` from call `fromCall` on (call 0: the prefill). */
function poisonLogits(lm: CausalLM, row: number, fromCall: number, bad: (vocab: number) => Float32Array) {
  let calls = 0;
  return lm.addHook('lmHead', (logits) => {
    if (calls++ < fromCall) return;
    const [batch, length, vocab] = logits.shape as [number, number, number];
    const data = Float32Array.from(logits.dataSync());
    for (let t = 0; t < length; t++) data.set(bad(vocab), (row * length + t) * vocab);
    return tf.tensor3d(data, [batch, length, vocab]);
  });
}
const filled = (value: number) => (vocab: number) => new Float32Array(vocab).fill(value);

for (const name of ['llama-tiny', 'mamba-tiny'] as const) {
  describe(`generate with logits no token can be chosen from (${name}, backend ${tf.getBackend()})`, () => {
    let lm: CausalLM;
    beforeAll(async () => {
      lm = (await AutoCausalLM.fromDir(fixture(name))) as CausalLM;
      lm.generate([[1, 2]], { maxNewTokens: 2 }); // warm-up: backends may cache kernels
    });
    afterAll(() => lm.dispose());

    it('a model with NaN weights stops at step 0 (it used to return token 0 forever), leaking nothing', async () => {
      const broken = (await AutoCausalLM.fromDir(fixture(name))) as CausalLM;
      const [, norm] = broken.finalNorm!.namedParameters()[0]!;
      norm.assign(tf.fill(norm.shape, NaN));
      expect(() => broken.generate([[1, 2]], { maxNewTokens: 3 })).toThrow(NonFiniteLogitsError); // warm-up
      const before = tf.memory().numTensors;
      const error = thrown(() => broken.generate([[5, 6, 7]], { maxNewTokens: 3 }));
      expect([error.step, error.row, error.position]).toEqual([0, 0, 2]);
      expect(error.message).toContain('the logits of row 0 at step 0 (after position 2) are not usable: NaN at token 0');
      expect(tf.memory().numTensors).toBe(before);

      await expect(broken.stream([[5, 6, 7]], { maxNewTokens: 3 }).next()).rejects.toThrow(NonFiniteLogitsError);
      expect(tf.memory().numTensors).toBe(before);

      // With the caller's cache: its state stays the caller's to free, nothing else is left.
      const cache = new GenerationCache();
      expect(() => broken.generate([[5, 6, 7]], { maxNewTokens: 3, cache })).toThrow(NonFiniteLogitsError);
      cache.dispose();
      expect(tf.memory().numTensors).toBe(before);
      broken.dispose();
    });

    it('names the step and row; no token of the failing step is handed out', () => {
      const events: TokenEvent[] = [];
      const before = tf.memory().numTensors;
      const hook = poisonLogits(lm, 1, 2, filled(NaN)); // row 1, from the logits of step 2
      const error = thrown(() => lm.generate([[1, 2, 3], [4, 5, 6, 7, 8]], { maxNewTokens: 5, onToken: (e) => events.push(e) }));
      hook.remove();
      // Row 1 holds positions 0..4; step 2's logits follow its second generated token, position 6.
      expect([error.step, error.row, error.position]).toEqual([2, 1, 6]);
      expect(events.map((e) => `${e.step}:${e.row}`)).toEqual(['0:0', '0:1', '1:0', '1:1']);
      expect(tf.memory().numTensors).toBe(before);
    });

    it('+Infinity and an all -Infinity row are errors; -Infinity among finite logits only forbids tokens', () => {
      const before = tf.memory().numTensors;
      let hook = poisonLogits(lm, 0, 0, (vocab) => Object.assign(new Float32Array(vocab), { 3: Infinity }));
      expect(thrown(() => lm.generate([[1, 2]], { maxNewTokens: 2 })).message).toContain('+Infinity at token 3');
      hook.remove();
      hook = poisonLogits(lm, 0, 1, filled(-Infinity));
      const error = thrown(() => lm.generate([[1, 2]], { maxNewTokens: 3 }));
      expect(error.message).toContain(`every logit is -Infinity (${lm.embeddings.word.count} tokens)`);
      expect(error.step).toBe(1);
      hook.remove();
      // Everything forbidden but tokens 7 and 9: greedy picks 9, sampling only ever 7 or 9.
      hook = poisonLogits(lm, 0, 0, (vocab) => Object.assign(new Float32Array(vocab).fill(-Infinity), { 7: 1, 9: 2 }));
      expect(lm.generate([[1, 2]], { maxNewTokens: 4 })).toEqual([[9, 9, 9, 9]]);
      const sampled = lm.generate([[1, 2]], { maxNewTokens: 20, strategy: { kind: 'sample', seed: 3 } })[0]!;
      expect(new Set(sampled)).toEqual(new Set([7, 9]));
      hook.remove();
      expect(tf.memory().numTensors).toBe(before);
    });
  });
}
