import * as tf from '@tensorflow/tfjs-core';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AutoCausalLM, AutoTokenizer, NoTokenizerError, UnknownKeyError, attachedTokenizer, type CausalLM, type HookFn } from '../../src/index.js';
import { expectThrowsFlat, fixture } from '../helpers.js';
import { llamaWithTokenizer } from './text-fixture.js';

const REPLACEMENT = '\uFFFD';

/** Collect a text stream's pieces and its return value. */
async function collect(stream: AsyncGenerator<string, string>): Promise<{ pieces: string[]; returned: string }> {
  const pieces: string[] = [];
  for (;;) {
    const next = await stream.next();
    if (next.done === true) return { pieces, returned: next.value };
    pieces.push(next.value);
  }
}

/**
 * A hook on the LM head that makes the model pick `script[step]` at each step (the prompt's
 * forward is step 0), so text tests can choose exactly which tokens come out.
 */
function scripted(script: readonly number[]): HookFn {
  let step = 0;
  return (logits) => {
    const id = script[Math.min(step++, script.length - 1)]!;
    const vocab = logits.shape[logits.shape.length - 1]!;
    return tf.tidy(() => tf.oneHot(tf.fill(logits.shape.slice(0, -1), id, 'int32'), vocab).mul(100).toFloat());
  };
}

describe('text generation on llama-tiny with a byte-fallback tokenizer', () => {
  let dir: string;
  let lm: CausalLM;
  let tok: AutoTokenizer;
  const ids = (text: string): number[] => tok.inner.encode(text).map(Number);
  const decode = (row: number[]): string => tok.decode(row, { skipSpecialTokens: true });

  beforeAll(async () => {
    dir = llamaWithTokenizer();
    lm = await AutoCausalLM.fromDir(dir, { tokenizer: true });
    tok = await AutoTokenizer.fromDir(dir);
    lm.generate('warm up', { maxNewTokens: 2 }); // the weights' derived layouts, built once
  });
  afterAll(() => {
    lm.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('returns the decoding of what generate gives for the encoded prompt, without leaking tensors', () => {
    const prompt = 'Once upon a';
    const before = tf.memory().numTensors;
    const text = lm.generate(prompt, { maxNewTokens: 8 });
    expect(tf.memory().numTensors).toBe(before);
    const promptIds = ids(prompt);
    const newIds = lm.generate([promptIds], { maxNewTokens: 8 })[0]!;
    // The new text read after the prompt's own text: decoding the whole sequence and cutting the prompt off.
    expect(text).toBe(decode([...promptIds, ...newIds]).slice(decode(promptIds).length));
    expect(text.length).toBeGreaterThan(0);
  });

  it('keeps the space a new first word starts with (the tokenizer strips it at the start of a sequence)', () => {
    const prompt = 'Once upon a';
    const promptIds = ids(prompt);
    const time = ids('a time').slice(-1)[0]!; // '▁time'
    const hook = lm.addHook('lmHead', scripted([time, 2]));
    try {
      expect(lm.generate(prompt, { maxNewTokens: 4, eosTokenId: 2 })).toBe(' time');
    } finally {
      hook.remove();
    }
    expect(decode([time])).toBe('time'); // alone, the decoder drops the space
    expect(decode([...promptIds, time])).toBe('Once upon a time');
  });

  it('batches texts as one left-padded batch: each row gets the text it gets alone', () => {
    const prompts = ['Once upon a time', 'hello', 'the end of the world is'];
    const batch = lm.generate(prompts, { maxNewTokens: 6 });
    expect(batch).toHaveLength(3);
    prompts.forEach((p, r) => expect(batch[r], `row ${r}`).toBe(lm.generate(p, { maxNewTokens: 6 })));
  });

  it('stops at a stop string: the text ends just before it and no further token is generated', () => {
    const prompt = 'hello world';
    const free = lm.generate(prompt, { maxNewTokens: 24 });
    const freeIds = lm.generate([ids(prompt)], { maxNewTokens: 24 })[0]!;
    // A stop string from the middle of the free text: two characters that first appear past its start.
    const at = Math.max(3, Math.floor(free.length / 2));
    const stop = free.slice(at, at + 2);
    expect(stop.length).toBe(2);
    const expected = free.slice(0, free.indexOf(stop));
    let steps = 0;
    const count = lm.addHook('lmHead', () => void steps++);
    try {
      expect(lm.generate(prompt, { maxNewTokens: 24, stop: [stop] })).toBe(expected);
    } finally {
      count.remove();
    }
    // The tokens decoded up to the step that completed the stop string, no more.
    const needed = freeIds.findIndex((_, n) => decode([...ids(prompt).slice(-4), ...freeIds.slice(0, n + 1)]).includes(stop)) + 1;
    expect(needed).toBeGreaterThan(0);
    expect(steps).toBe(needed);
    expect(steps).toBeLessThan(freeIds.length);
  });

  it('stop strings end each row of a batch on its own; a string stop works like a one-element list', () => {
    const prompts = ['Once upon a time', 'hello'];
    const free = lm.generate(prompts, { maxNewTokens: 16 });
    const stop = free[0]!.slice(4, 6);
    const cut = lm.generate(prompts, { maxNewTokens: 16, stop });
    free.forEach((text, r) => {
      const i = text.indexOf(stop);
      expect(cut[r], `row ${r}`).toBe(i >= 0 ? text.slice(0, i) : text);
    });
  });

  it('streams multibyte characters whole: no piece holds U+FFFD, the pieces join to the full text', async () => {
    const words = 'hello 😀 世界! the end';
    const script = [...ids(words).slice(1), 2]; // without <s>, then </s>
    const target = ` ${words}`; // after 'Once', '▁hello' reads ' hello'
    expect(script.some((id) => id >= 3 && id < 259)).toBe(true); // the emoji and CJK come as byte tokens
    const hook = lm.addHook('lmHead', scripted(script));
    try {
      const before = tf.memory().numTensors;
      const { pieces, returned } = await collect(lm.streamText('Once', { maxNewTokens: 40, eosTokenId: 2 }));
      expect(tf.memory().numTensors).toBe(before);
      expect(pieces.join('')).toBe(target);
      expect(returned).toBe(target);
      for (const piece of pieces) expect(piece).not.toContain(REPLACEMENT);
      expect(pieces).toContain('😀'); // four byte tokens, one piece
      expect(pieces).toContain('世'); // three
      expect(pieces.length).toBeGreaterThan(5);
      // The same tokens decoded one prefix at a time would have shown partial characters.
      const prefixes = script.map((_, n) => decode(script.slice(0, n + 1)));
      expect(prefixes.some((p) => p.endsWith(REPLACEMENT))).toBe(true);
    } finally {
      hook.remove();
    }
  });

  it('streams the same text generate returns, holding back what may start a stop string', async () => {
    const target = ' the end\n\nstop';
    const script = [...ids(target.trim()).slice(1), 2];
    const run = async (stop: string[]): Promise<{ pieces: string[]; returned: string; text: string }> => {
      const hook = lm.addHook('lmHead', scripted(script));
      try {
        const streamed = await collect(lm.streamText('Once', { maxNewTokens: 40, eosTokenId: 2, stop }));
        hook.remove();
        const again = lm.addHook('lmHead', scripted(script));
        try {
          return { ...streamed, text: lm.generate('Once', { maxNewTokens: 40, eosTokenId: 2, stop }) };
        } finally {
          again.remove();
        }
      } finally {
        hook.remove();
      }
    };
    const stopped = await run(['\n\n']);
    expect(stopped.text).toBe(' the end');
    expect(stopped.returned).toBe(' the end');
    expect(stopped.pieces.join('')).toBe(' the end');
    // A newline was held back while it could have begun '\n\n', so none was handed out.
    expect(stopped.pieces.some((p) => p.includes('\n'))).toBe(false);

    const single = await run(['\n\n\n']); // never completed: everything comes out, held text included
    expect(single.pieces.join('')).toBe(target);
    expect(single.text).toBe(target);
  });

  it('leaving a text stream early frees every tensor', async () => {
    const before = tf.memory().numTensors;
    for await (const piece of lm.streamText('Once upon a time', { maxNewTokens: 30 })) {
      if (piece.length > 0) break;
    }
    expect(tf.memory().numTensors).toBe(before);
  });

  it('sampling at the text level: a seed reproduces the text, no seed gives varying texts', () => {
    const sample = { kind: 'sample', temperature: 1.5 } as const;
    const a = lm.generate('Once upon a', { maxNewTokens: 12, strategy: sample, seed: 11 });
    const b = lm.generate('Once upon a', { maxNewTokens: 12, strategy: sample, seed: 11 });
    expect(a).toBe(b);
    expect(lm.generate('Once upon a', { maxNewTokens: 12, strategy: { ...sample, seed: 11 } })).toBe(a); // the same seed, given in the strategy
    const unseeded = new Set(Array.from({ length: 4 }, () => lm.generate('Once upon a', { maxNewTokens: 12, strategy: sample })));
    expect(unseeded.size).toBeGreaterThan(1);
  });

  it('text options are checked: unknown keys, bad stop strings, a maxLength with no room, a batch to streamText', async () => {
    await expectThrowsFlat(() => lm.generate('hi', { maxNewToken: 3 } as never), UnknownKeyError, "generate options: unknown key 'maxNewToken'; did you mean 'maxNewTokens'?");
    await expectThrowsFlat(() => lm.generate('hi', { stop: [''] }), Error, 'generate: stop must be a non-empty string or an array of them, got [""]');
    await expectThrowsFlat(
      () => lm.generate('Once upon a time', { maxLength: 3 }),
      Error,
      `generate: maxLength 3 leaves no room for new tokens after a prompt of ${ids('Once upon a time').length} tokens; pass maxNewTokens or a larger maxLength`,
    );
    await expectThrowsFlat(
      () => lm.streamText(['a', 'b'] as never),
      Error,
      'streamText takes one prompt string; for a batch call generate with an array of texts, or stream each prompt',
    );
    await expectThrowsFlat(() => lm.generate([] as string[]), Error, 'promptIds must be a non-empty array of token id arrays, one per prompt ([[1, 2, 3], ...])');
    expect(lm.generate('hi', null as never)).toBe(lm.generate('hi')); // null options: none, as undefined
    // An empty text starts from the bos id (llama-tiny's config.json has bos_token_id 1), as in HF.
    expect(lm.generate('', { addSpecialTokens: false, maxNewTokens: 3 })).toBe(decode(lm.generate([[1]], { maxNewTokens: 3 })[0]!));
  });

  it('maxLength counts the longest prompt, as HF counts the padded batch', () => {
    const prompts = ['Once upon a time', 'hello'];
    const longest = Math.max(...prompts.map((p) => ids(p).length));
    expect(lm.generate(prompts, { maxLength: longest + 3 })).toEqual(lm.generate(prompts, { maxNewTokens: 3 }));
    // maxNewTokens wins over maxLength.
    expect(lm.generate(prompts, { maxLength: longest + 3, maxNewTokens: 1 })).toEqual(lm.generate(prompts, { maxNewTokens: 1 }));
  });
});

describe('text generation without a tokenizer', () => {
  let lm: CausalLM;
  beforeAll(async () => {
    lm = await AutoCausalLM.fromDir(fixture('llama-tiny'));
  });
  afterAll(() => lm.dispose());

  it('is a NoTokenizerError that says how to attach one; ids still work', async () => {
    const message =
      "CausalLM 'llama' has no tokenizer attached, so generate() cannot take text. Load the model with AutoCausalLM.fromDir(dir, { tokenizer: true }) " +
      '(or fromHfHub/fromPretrained), or call lm.attachTokenizer(await AutoTokenizer.fromDir(dir)); token ids work without one: lm.generate([[1, 2, 3]]).';
    expect(attachedTokenizer(lm)).toBeUndefined();
    await expectThrowsFlat(() => lm.generate('hello'), NoTokenizerError, message);
    await expectThrowsFlat(() => lm.generate(['a', 'b']), NoTokenizerError, message);
    await expectThrowsFlat(() => lm.streamText('hello'), NoTokenizerError, message.replace('generate()', 'streamText()'));
    expect(lm.generate([[1, 5]], { maxNewTokens: 2 })[0]).toHaveLength(2);
  });

  it('a tokenizer attached by hand (any object with encodeText and decode) makes text work', async () => {
    const chars = {
      encodeText: (text: string) => [...text].map((c) => c.charCodeAt(0) % 512),
      decode: (row: number[]) => row.map((id) => String.fromCharCode(97 + (id % 26))).join(''),
    };
    expect(lm.attachTokenizer(chars, { config: {} })).toBe(lm); // no defaults from the loaded config.json
    const text = lm.generate('abc', { maxNewTokens: 5 });
    expect(text).toBe(chars.decode(lm.generate([chars.encodeText('abc')], { maxNewTokens: 5 })[0]!));
    await expectThrowsFlat(() => lm.generate(''), Error, 'generate: prompt 0 ("") encodes to no tokens and the model has no bosTokenId to start from');
    expect(() => lm.attachTokenizer({} as never)).toThrow(
      'attachTokenizer: the tokenizer must be an AutoTokenizer or have encodeText(text, { addSpecialTokens }) and decode(ids, { skipSpecialTokens })',
    );
  });

  it('the tokenizer option belongs to AutoCausalLM: other loaders refuse it', async () => {
    const { AutoEncoder } = await import('../../src/index.js');
    await expect(AutoEncoder.fromDir(fixture('bert-tiny'), { tokenizer: true })).rejects.toThrow(
      'AutoEncoder: the tokenizer option is for AutoCausalLM (text generation); load a tokenizer with AutoTokenizer.fromDir(dir)',
    );
  });
});
