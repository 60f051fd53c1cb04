import * as tf from '@tensorflow/tfjs-core';
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ModelDisposedError, UnknownKeyError } from '../../src/index.js';
import { loadTextGenerationPipeline, type TextGenerationPipeline } from '../../src/pipelines/text-generation.js';
import { expectThrowsFlat, fixture } from '../helpers.js';
import { llamaWithTokenizer } from '../generation/text-fixture.js';

describe('text-generation pipeline (llama-tiny with a byte-fallback tokenizer)', () => {
  let dir: string;
  let generator: TextGenerationPipeline;
  const generationConfig = { bos_token_id: 1, eos_token_id: 2, max_new_tokens: 7 };

  beforeAll(async () => {
    dir = llamaWithTokenizer({ generationConfig });
    generator = await loadTextGenerationPipeline(dir);
    await generator('warm up');
  });
  afterAll(() => {
    generator.dispose();
    rmSync(dir, { recursive: true, force: true });
  });

  it('returns the prompt and its continuation (returnFullText defaults to true), as lm.generate continues it', async () => {
    const before = tf.memory().numTensors;
    const [full] = await generator('Once upon a');
    const [continuation] = await generator('Once upon a', { returnFullText: false });
    expect(tf.memory().numTensors).toBe(before);
    const text = generator.model.generate('Once upon a', { maxNewTokens: 7, eosTokenId: 2 });
    expect(continuation!.generatedText).toBe(text);
    expect(full!.generatedText).toBe(`Once upon a${text}`);
  });

  it("uses the folder's generation_config.json (max_new_tokens 7) unless a call overrides it", async () => {
    const prompt = 'hello world';
    const ids = generator.tokenizer.inner.encode(prompt).map(Number);
    const sevenIds = generator.model.generate([ids], { maxNewTokens: 7, eosTokenId: 2 })[0]!;
    const decode = (row: number[]): string => generator.tokenizer.decode(row, { skipSpecialTokens: true });
    const after = (row: number[]): string => decode([...ids.slice(-4), ...row]).slice(decode(ids.slice(-4)).length);
    const [seven] = await generator(prompt, { returnFullText: false });
    expect(seven!.generatedText).toBe(after(sevenIds));
    const [two] = await generator(prompt, { returnFullText: false, maxNewTokens: 2 });
    expect(two!.generatedText).toBe(after(sevenIds.slice(0, 2)));
  });

  it('takes a batch: one result per text, each as the text alone', async () => {
    const prompts = ['Once upon a time', 'hello', 'the end'];
    const results = await generator(prompts);
    expect(results).toHaveLength(3);
    for (const [i, p] of prompts.entries()) expect(results[i]).toEqual((await generator(p))[0]);
  });

  it('streams the continuation: the pieces join to what a call returns', async () => {
    const before = tf.memory().numTensors;
    const pieces: string[] = [];
    for await (const piece of generator.stream('Once upon a', { maxNewTokens: 10 })) pieces.push(piece);
    expect(tf.memory().numTensors).toBe(before);
    const [result] = await generator('Once upon a', { maxNewTokens: 10, returnFullText: false });
    expect(pieces.join('')).toBe(result!.generatedText);
  });

  it('refuses bad calls with clear errors and no tensor left behind', async () => {
    await expectThrowsFlat(() => generator('hi', { returnFullTxt: false } as never), UnknownKeyError, "text-generation options: unknown key 'returnFullTxt'; did you mean 'returnFullText'?");
    await expectThrowsFlat(() => generator('hi', { returnFullText: 'no' } as never), Error, 'text-generation: returnFullText must be true or false, got "no"');
    await expectThrowsFlat(() => generator([]), Error, 'text-generation: expected a text or a non-empty array of texts, got an array of 0 ()');
    await expectThrowsFlat(() => generator('hi', { stop: 5 } as never), Error, 'generate: stop must be a non-empty string or an array of them, got 5');
  });
});

describe('text-generation pipeline errors', () => {
  it('a folder without tokenizer files is refused, naming the missing file', async () => {
    await expect(loadTextGenerationPipeline(fixture('llama-tiny'))).rejects.toThrow(/llama-tiny\/tokenizer\.json not found/);
  });

  it('after dispose, calls reject with ModelDisposedError', async () => {
    const dir = llamaWithTokenizer();
    try {
      const generator = await loadTextGenerationPipeline(dir);
      generator.dispose();
      await expect(generator('hello')).rejects.toBeInstanceOf(ModelDisposedError);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
