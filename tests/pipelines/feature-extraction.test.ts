import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EncoderModel, pipeline, UnknownKeyError, type FeatureExtractionOptions, type FeatureExtractionPipeline, type Pooling } from '../../src/index.js';
import { fixture, loadExpected } from '../helpers.js';

const TOL = 1e-4;
const expected = loadExpected('bert-tiny');
// Row 1 of bert-tiny's batch is a single sentence (row 0 is a pair): its HF hidden states are the reference.
const sentence = expected.text![1]!;
const TEXTS = [sentence, 'a', 'the quick brown fox jumps over the lazy dog again and again'];

/** Mean of `rows` ([tokens][hidden]) over the rows whose mask is 1. */
function maskedMean(rows: number[][], mask: number[]): number[] {
  const kept = rows.filter((_, t) => mask[t] === 1);
  return kept[0]!.map((_, h) => kept.reduce((s, r) => s + r[h]!, 0) / kept.length);
}
const norm = (v: number[]): number => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
function maxDiff(a: unknown, b: unknown): number {
  if (typeof a === 'number') return Math.abs(a - (b as number));
  const xs = a as unknown[];
  const ys = b as unknown[];
  expect(ys).toHaveLength(xs.length);
  return Math.max(0, ...xs.map((x, i) => maxDiff(x, ys[i])));
}

let extract: FeatureExtractionPipeline;
let start: number;
beforeAll(async () => {
  start = tf.memory().numTensors;
  extract = await pipeline('feature-extraction', fixture('bert-tiny'));
});
afterAll(() => {
  extract.dispose();
  // Every pipeline here disposed its model: only what existed before the first load remains.
  expect(tf.memory().numTensors).toBe(start);
});

describe("pipeline('feature-extraction')", () => {
  it('mean pooling matches the mean of HF hidden states over the attention mask', async () => {
    const vector = await extract(sentence, { pooling: 'mean' });
    expect(vector).toHaveLength(64);
    expect(maxDiff(vector, maskedMean(expected.last_hidden_state[1]!, expected.attention_mask![1]!))).toBeLessThan(TOL);
    // The default pooling is the mean.
    expect(maxDiff(await extract(sentence), vector)).toBe(0);
  });

  it('mean pooling of a padded batch matches a reference from the model hidden states and mask', async () => {
    const vectors = await extract(TEXTS);
    const enc = extract.tokenizer.encode(TEXTS);
    const out = extract.model.forwardHidden(enc.inputIds, { attentionMask: enc.attentionMask, tokenTypeIds: enc.tokenTypeIds });
    const hidden = out.lastHiddenState.arraySync();
    const mask = enc.attentionMask.arraySync();
    tf.dispose([...out.allOutputs, out.lastHiddenState, enc.inputIds, enc.attentionMask, enc.tokenTypeIds]);
    expect(mask.some((row) => row.includes(0))).toBe(true); // the batch really is padded
    expect(maxDiff(vectors, hidden.map((rows, b) => maskedMean(rows, mask[b]!)))).toBeLessThan(1e-5);
  });

  it("'cls' pooling is the first token's hidden state", async () => {
    const [vector] = await extract([sentence], { pooling: 'cls' });
    expect(maxDiff(vector, expected.last_hidden_state[1]![0])).toBeLessThan(TOL);
  });

  it("'none' gives every token's vector, without padding", async () => {
    const rows = await extract(TEXTS, { pooling: 'none' });
    const enc = extract.tokenizer.encode(TEXTS);
    tf.dispose([enc.inputIds, enc.attentionMask, enc.tokenTypeIds]);
    const counts = enc.ids.map((r) => r.filter((id) => id !== 0).length);
    expect(rows.map((r) => r.length)).toEqual(counts);
    const realTokens = expected.attention_mask![1]!.filter((m) => m === 1).length;
    expect(maxDiff(rows[0], expected.last_hidden_state[1]!.slice(0, realTokens))).toBeLessThan(TOL);
    const single = await extract(sentence, { pooling: 'none' });
    expect(maxDiff(single, rows[0])).toBeLessThan(1e-5);
  });

  it('normalize gives unit vectors in the same direction', async () => {
    const plain = await extract(TEXTS);
    const unit = await extract(TEXTS, { normalize: true });
    unit.forEach((v, i) => {
      expect(Math.abs(norm(v) - 1)).toBeLessThan(1e-5);
      expect(maxDiff(v, plain[i]!.map((x) => x / norm(plain[i]!)))).toBeLessThan(1e-5);
    });
    for (const row of await extract(TEXTS, { pooling: 'none', normalize: true })) for (const v of row) expect(Math.abs(norm(v) - 1)).toBeLessThan(1e-5);
  });

  it('a padded batch gives the same vectors as the texts one by one, in any batch size', async () => {
    const batched = await extract(TEXTS, { pooling: 'mean' });
    const alone = await Promise.all(TEXTS.map((t) => extract(t)));
    expect(maxDiff(batched, alone)).toBeLessThan(1e-5);
    expect(maxDiff(await extract(TEXTS, { batchSize: 2 }), batched)).toBeLessThan(1e-5);
  });

  it('leaves no tensor behind, and errors name the problem', async () => {
    const before = tf.memory().numTensors;
    await extract(TEXTS, { pooling: 'none', normalize: true });
    expect(tf.memory().numTensors).toBe(before);
    await expect(extract(TEXTS, { pooling: 'mean', normalise: true } as never)).rejects.toThrow(UnknownKeyError);
    await expect(extract(TEXTS, { pooling: 'mean', normalise: true } as never)).rejects.toThrow("feature-extraction options: unknown key 'normalise'; did you mean 'normalize'?");
    await expect(extract(TEXTS, { pooling: 'max' } as never)).rejects.toThrow("pooling must be one of 'mean', 'cls', 'none', got \"max\"");
    await expect(extract([])).rejects.toThrow('expected a text or a non-empty array of texts');
    await expect(extract(TEXTS, { batchSize: 0 })).rejects.toThrow('batchSize must be a positive integer, got 0');
    expect(tf.memory().numTensors).toBe(before);
  });

  it('on a masked-LM checkpoint, uses its encoder (bert-mlm-tiny has bert-tiny’s encoder weights)', async () => {
    const fromMlm = await pipeline('feature-extraction', fixture('bert-mlm-tiny'));
    expect(maxDiff(await fromMlm(TEXTS), await extract(TEXTS))).toBeLessThan(1e-5);
    fromMlm.dispose();
  });

  it('dispose frees the weights: tensors return to where they were before loading', async () => {
    const before = tf.memory().numTensors;
    const other = await pipeline('feature-extraction', fixture('bert-tiny'));
    expect(tf.memory().numTensors).toBeGreaterThan(before);
    await other(TEXTS);
    other.dispose();
    expect(tf.memory().numTensors).toBe(before);
    await expect(other(TEXTS)).rejects.toThrow(/disposed/);
  });

  it('loads an encoder, and refuses a model that is not one, naming it, before loading anything', async () => {
    expect(extract.model).toBeInstanceOf(EncoderModel);
    const before = tf.memory().numTensors;
    await expect(pipeline('feature-extraction', fixture('llama-tiny'))).rejects.toThrow(
      `feature-extraction needs an encoder (BERT); ${fixture('llama-tiny')} holds a 'llama' model, which Tessera loads only as decoder or causal-lm`,
    );
    expect(tf.memory().numTensors).toBe(before);
  });
});

describe('feature-extraction call types', () => {
  it('a pooling chosen at run time picks the shape at run time', async () => {
    const pipe = await pipeline('feature-extraction', fixture('bert-tiny'));
    const choose = (p: string): FeatureExtractionOptions => ({ pooling: p as Pooling });
    const pooled = await pipe(['a b', 'c'], choose('cls'));
    const tokens = await pipe(['a b', 'c'], choose('none'));
    expect((pooled as number[][])[0]).toHaveLength(64);
    expect((tokens as number[][][])[0]!.length).toBe(4); // [CLS] a b [SEP]
    pipe.dispose();
  });
});
