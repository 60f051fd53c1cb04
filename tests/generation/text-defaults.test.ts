import * as tf from '@tensorflow/tfjs-core';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AutoCausalLM, AutoTokenizer, HF_DEFAULT_TOP_K, generationDefaults, textDefaults, type CausalLM } from '../../src/index.js';
import { expectThrowsFlat, fixture } from '../helpers.js';
import { llamaWithTokenizer } from './text-fixture.js';

const llamaConfig = JSON.parse(readFileSync(fixture('llama-tiny/config.json'), 'utf8')) as Record<string, unknown>;

describe('generationDefaults: generation_config.json / config.json as HF reads them', () => {
  it('reads token ids (eos may be a list), lengths, sampling and stop strings; null is unset; other keys are left alone', () => {
    const defaults = generationDefaults(
      {
        eos_token_id: [2, 7], bos_token_id: 1, pad_token_id: null, max_new_tokens: 9, max_length: 40, do_sample: true,
        temperature: 0.7, top_p: 0.9, repetition_penalty: 1.2, stop_strings: '\n\n', num_beams: 1, transformers_version: '4.43.4',
      },
      llamaConfig,
    );
    expect(defaults).toEqual({
      eosTokenId: [2, 7], bosTokenId: 1, maxNewTokens: 9, maxLength: 40, repetitionPenalty: 1.2, stop: ['\n\n'],
      strategy: { kind: 'sample', temperature: 0.7, topP: 0.9, topK: HF_DEFAULT_TOP_K }, // HF's top_k 50 when sampling names none
    });
    expect(generationDefaults({ do_sample: true, top_k: 0 }, undefined).strategy).toEqual({ kind: 'sample', temperature: 1, topP: 1 }); // 0: no cut
    expect(generationDefaults({ do_sample: false, temperature: 0.5, top_k: 3 }, undefined)).toEqual({ strategy: 'greedy' }); // unused, as HF
  });

  it('takes config.json only when there is no generation_config.json, as HF', () => {
    expect(generationDefaults(undefined, llamaConfig)).toEqual({ eosTokenId: 2, bosTokenId: 1 });
    expect(generationDefaults({ max_new_tokens: 4 }, llamaConfig)).toEqual({ maxNewTokens: 4 });
    expect(generationDefaults(undefined, undefined)).toEqual({});
  });

  it('malformed values are errors naming the file, the key and the value', () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ eos_token_id: '2' }, 'eos_token_id must be a token id (an integer ≥ 0), a non-empty list of token ids, or null, got "2"'],
      [{ eos_token_id: [2, 'x'] }, 'eos_token_id must be a token id (an integer ≥ 0), a non-empty list of token ids, or null, got [2,"x"]'],
      [{ pad_token_id: -1 }, 'pad_token_id must be a token id (an integer ≥ 0) or null, got -1'],
      [{ max_new_tokens: 0 }, 'max_new_tokens must be a positive integer or null, got 0'],
      [{ do_sample: 'yes' }, 'do_sample must be true, false or null, got "yes"'],
      [{ top_p: 2 }, 'top_p must be a number in (0, 1] or null, got 2'],
      [{ top_k: 2.5 }, 'top_k must be an integer ≥ 0 (0: no top-k cut) or null, got 2.5'],
      [{ repetition_penalty: 0 }, 'repetition_penalty must be a positive number or null, got 0'],
      [{ stop_strings: [''] }, 'stop_strings must be a non-empty string, a list of them, or null, got [""]'],
      [{ do_sample: true, temperature: 0 }, 'temperature is 0 with do_sample true; sampling needs temperature > 0 (set do_sample false for greedy)'],
    ];
    for (const [raw, message] of cases) expect(() => generationDefaults(raw, undefined, 'models/x')).toThrow(`models/x/generation_config.json: ${message}`);
    expect(() => generationDefaults(undefined, { eos_token_id: 2.5 }, 'models/x')).toThrow('models/x/config.json: eos_token_id must be');
    expect(() => generationDefaults([2] as never, undefined, 'models/x')).toThrow('models/x: generation_config.json must hold a JSON object');
  });
});

describe('text generation uses the defaults of the model folder', () => {
  const dirs: string[] = [];
  let plain: CausalLM;
  let tok: AutoTokenizer;
  const folder = (options: Parameters<typeof llamaWithTokenizer>[0] = {}): string => {
    const dir = llamaWithTokenizer(options);
    dirs.push(dir);
    return dir;
  };
  const decodeAfter = (prompt: number[], row: number[]): string => {
    const context = prompt.slice(-4);
    const d = (ids: number[]): string => tok.decode(ids, { skipSpecialTokens: true });
    return d([...context, ...row]).slice(d(context).length);
  };

  beforeAll(async () => {
    plain = await AutoCausalLM.fromDir(fixture('llama-tiny'));
    tok = await AutoTokenizer.fromDir(folder());
  });
  afterAll(() => {
    plain.dispose();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it("generation_config.json's eos, length, sampling and repetition penalty are honoured; call options override each", async () => {
    const prompt = tok.inner.encode('Once upon a').map(Number);
    const generationConfig = { eos_token_id: [2, 9], max_new_tokens: 6, do_sample: true, temperature: 0.9, top_k: 20, repetition_penalty: 1.3 };
    const lm = await AutoCausalLM.fromDir(folder({ generationConfig }), { tokenizer: true });
    try {
      expect(textDefaults(lm)).toEqual(generationDefaults(generationConfig, llamaConfig));
      const sampled = { maxNewTokens: 6, eosTokenId: [2, 9], repetitionPenalty: 1.3, strategy: { kind: 'sample', temperature: 0.9, topK: 20, topP: 1, seed: 5 } } as const;
      expect(lm.generate('Once upon a', { seed: 5 })).toBe(decodeAfter(prompt, plain.generate([prompt], sampled)[0]!));
      // Each call option wins over its default.
      const greedy = plain.generate([prompt], { maxNewTokens: 3 })[0]!;
      expect(lm.generate('Once upon a', { strategy: 'greedy', maxNewTokens: 3, repetitionPenalty: 1 })).toBe(decodeAfter(prompt, greedy));
    } finally {
      lm.dispose();
    }
  });

  it("a row ends at the default eos token, which is kept in the text unless it is special", async () => {
    const prompt = tok.inner.encode('hello world').map(Number);
    const free = plain.generate([prompt], { maxNewTokens: 8 })[0]!;
    const end = free[2]!;
    const lm = await AutoCausalLM.fromDir(folder({ generationConfig: { eos_token_id: [end, 2], max_new_tokens: 8 } }), { tokenizer: true });
    try {
      const expected = plain.generate([prompt], { maxNewTokens: 8, eosTokenId: [end, 2] })[0]!;
      expect(expected.length).toBeLessThanOrEqual(3);
      expect(lm.generate('hello world')).toBe(decodeAfter(prompt, expected));
      expect(lm.generate('hello world', { eosTokenId: 2 })).toBe(decodeAfter(prompt, free)); // overridden
    } finally {
      lm.dispose();
    }
  });

  it("without generation_config.json, config.json's eos and bos are the defaults", async () => {
    const lm = await AutoCausalLM.fromDir(folder(), { tokenizer: true });
    try {
      expect(textDefaults(lm)).toEqual({ eosTokenId: 2, bosTokenId: 1 });
    } finally {
      lm.dispose();
    }
    const withFile = await AutoCausalLM.fromDir(folder({ generationConfig: { max_new_tokens: 4 } }), { tokenizer: true });
    try {
      expect(textDefaults(withFile)).toEqual({ maxNewTokens: 4 }); // the file is the whole story, as in HF
    } finally {
      withFile.dispose();
    }
  });

  it('a malformed or unparsable generation_config.json fails the load, freeing the model', async () => {
    const bad = folder({ generationConfig: { eos_token_id: '2' } });
    await expectThrowsFlat(
      () => AutoCausalLM.fromDir(bad, { tokenizer: true }),
      Error,
      `${bad}/generation_config.json: eos_token_id must be a token id (an integer ≥ 0), a non-empty list of token ids, or null, got "2"`,
    );
    const broken = folder();
    writeFileSync(join(broken, 'generation_config.json'), '{ "eos_token_id": 2,');
    const before = tf.memory().numTensors;
    await expect(AutoCausalLM.fromDir(broken, { tokenizer: true })).rejects.toThrow(`${broken}/generation_config.json: invalid JSON`);
    expect(tf.memory().numTensors).toBe(before);
    // A model loaded without the option ignores the file.
    const lm = await AutoCausalLM.fromDir(bad);
    lm.dispose();
  });

  it('attachTokenizer options: unknown keys are errors with the nearest key; defaults of your own win over the files', async () => {
    const lm = await AutoCausalLM.fromDir(fixture('llama-tiny'));
    try {
      await expectThrowsFlat(() => lm.attachTokenizer(tok, { generationConfg: {} } as never), Error, "attachTokenizer options: unknown key 'generationConfg'; did you mean 'generationConfig'?");
      await expectThrowsFlat(
        () => lm.attachTokenizer(tok, { defaults: { maxNewToken: 2 } as never }),
        Error,
        "text generation defaults: unknown key 'maxNewToken'; did you mean 'maxNewTokens'?",
      );
      lm.attachTokenizer(tok, { generationConfig: { max_new_tokens: 4, eos_token_id: 2 }, defaults: { maxNewTokens: 2 } });
      expect(textDefaults(lm)).toEqual({ maxNewTokens: 2, eosTokenId: 2 });
      // A length of your own replaces the file's, whichever of the two keys either uses.
      lm.attachTokenizer(tok, { generationConfig: { max_new_tokens: 4 }, defaults: { maxLength: 12 } });
      expect(textDefaults(lm)).toEqual({ maxLength: 12 });
    } finally {
      lm.dispose();
    }
  });
});

describe('repetitionPenalty (HF repetition_penalty)', () => {
  let lm: CausalLM;
  beforeAll(async () => {
    lm = await AutoCausalLM.fromDir(fixture('llama-tiny'));
  });
  afterAll(() => lm.dispose());

  /** The reference: full forward of the sequence so far, HF's penalty over every id in it, argmax. */
  function penalizedGreedy(prompt: number[], count: number, penalty: number): number[] {
    const tokens = [...prompt];
    for (let i = 0; i < count; i++) {
      const logits = tf.tidy(() => lm.forward(tf.tensor2d([tokens], undefined, 'int32')).logits.slice([0, tokens.length - 1, 0], [1, 1, -1]).reshape([-1]).arraySync() as number[]);
      for (const id of new Set(tokens)) logits[id] = logits[id]! > 0 ? logits[id]! / penalty : logits[id]! * penalty;
      tokens.push(logits.indexOf(Math.max(...logits)));
    }
    return tokens.slice(prompt.length);
  }

  it('gives the tokens of the reference loop, batched too, without leaking tensors', () => {
    const prompts = [[1, 17, 42, 17, 99], [5, 6]];
    lm.generate(prompts, { maxNewTokens: 6, repetitionPenalty: 1.8 });
    const before = tf.memory().numTensors;
    const out = lm.generate(prompts, { maxNewTokens: 6, repetitionPenalty: 1.8 });
    expect(tf.memory().numTensors).toBe(before);
    prompts.forEach((p, r) => expect(out[r], `row ${r}`).toEqual(penalizedGreedy(p, 6, 1.8)));
    expect(out).not.toEqual(lm.generate(prompts, { maxNewTokens: 6 })); // the penalty changed something here
  });

  it('must be a positive number', async () => {
    await expectThrowsFlat(() => lm.generate([[1]], { repetitionPenalty: 0 }), Error, 'repetitionPenalty must be a positive number (1 for none), got 0');
  });
});
