import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MaskedLM, pipeline, UnknownKeyError, type FillMaskPipeline } from '../../src/index.js';
import { fixture } from '../helpers.js';

/** bert-mlm-tiny's expected.json: HF BertForMaskedLM on bert-tiny's batch with one [MASK] per row. */
interface MlmExpected {
  input_ids: number[][];
  attention_mask: number[][];
  token_type_ids: number[][];
  logits: number[][][];
  mask_positions: number[];
  top5_at_mask: number[][];
}
const expected = JSON.parse(readFileSync(join(fixture('bert-mlm-tiny'), 'expected.json'), 'utf8')) as MlmExpected;
// Row 1 is a single sentence (row 0 is a pair, which the pipeline's text input cannot express).
const ROW = 1;
const rowIds = expected.input_ids[ROW]!.filter((_, t) => expected.attention_mask[ROW]![t] === 1);

/** Softmax of `logits` in float64. */
function softmax(logits: number[]): number[] {
  const max = Math.max(...logits);
  const exps = logits.map((x) => Math.exp(x - max));
  const sum = exps.reduce((a, b) => a + b, 0);
  return exps.map((e) => e / sum);
}

let unmask: FillMaskPipeline;
let text: string;
let start: number;
beforeAll(async () => {
  start = tf.memory().numTensors;
  unmask = await pipeline('fill-mask', fixture('bert-mlm-tiny'));
  // The row's text: its ids between [CLS] and [SEP], decoded with the [MASK] kept.
  text = unmask.tokenizer.decode(rowIds.slice(1, -1));
});
afterAll(() => {
  unmask.dispose();
  expect(tf.memory().numTensors).toBe(start);
});

describe("pipeline('fill-mask') matches HF BertForMaskedLM", () => {
  it('tokenizes the fixture row back to its ids', () => {
    expect(text).toContain(unmask.maskToken);
    const enc = unmask.tokenizer.encode([text]);
    tf.dispose([enc.inputIds, enc.attentionMask, enc.tokenTypeIds]);
    expect(enc.ids[0]).toEqual(rowIds);
  });

  it("top 5 at the mask are HF's, with HF's probabilities, token strings and sequences", async () => {
    expect(unmask.model).toBeInstanceOf(MaskedLM);
    const results = await unmask(text, { topK: 5 });
    expect(results.map((r) => r.token)).toEqual(expected.top5_at_mask[ROW]);
    const probs = softmax(expected.logits[ROW]![expected.mask_positions[ROW]!]!);
    const at = expected.mask_positions[ROW]!;
    for (const r of results) {
      expect(Math.abs(r.score - probs[r.token]!)).toBeLessThan(1e-5);
      expect(r.tokenStr).toBe(unmask.tokenizer.decode([r.token]));
      expect(r.sequence).toBe(unmask.tokenizer.decode(rowIds.map((id, t) => (t === at ? r.token : id)), { skipSpecialTokens: true }));
    }
    expect(results.map((r) => r.score)).toEqual([...results.map((r) => r.score)].sort((a, b) => b - a));
    // topK defaults to 5.
    expect(await unmask(text)).toEqual(results);
  });

  it('a batch of texts (padded) gives each text the candidates it gets alone', async () => {
    const other = `${unmask.maskToken} is here, with many more words after it than the other text`;
    const [first, second] = await unmask([text, other], { topK: 3 });
    expect(first).toHaveLength(3);
    const alone = await unmask(text, { topK: 3 });
    expect(first!.map((r) => r.token)).toEqual(alone.map((r) => r.token));
    first!.forEach((r, i) => expect(Math.abs(r.score - alone[i]!.score)).toBeLessThan(1e-5));
    expect(second!.map((r) => r.token)).toEqual((await unmask(other, { topK: 3 })).map((r) => r.token));
  });

  it('errors name the problem and leave no tensor behind', async () => {
    const before = tf.memory().numTensors;
    await expect(unmask('no blank here')).rejects.toThrow(`fill-mask: text 0 ("no blank here") has no mask token '[MASK]'`);
    await expect(unmask([text, `two ${unmask.maskToken} ${unmask.maskToken}`])).rejects.toThrow("text 1 (\"two [MASK] [MASK]\") has 2 mask tokens '[MASK]'; fill-mask fills exactly one per text");
    await expect(unmask(text, { topk: 3 } as never)).rejects.toThrow(UnknownKeyError);
    await expect(unmask(text, { topk: 3 } as never)).rejects.toThrow("fill-mask options: unknown key 'topk'; did you mean 'topK'?");
    await expect(unmask(text, { topK: 0 })).rejects.toThrow('topK must be a positive integer, got 0');
    await expect(unmask(text, { topK: 10_000 })).resolves.toHaveLength(512); // at most the vocabulary
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a folder without the masked-LM head is refused naming its missing weights; dispose frees the weights', async () => {
    const before = tf.memory().numTensors;
    await expect(pipeline('fill-mask', fixture('bert-tiny'))).rejects.toThrow(/has no masked-LM head weights.*'cls\.predictions\.bias'/s);
    expect(tf.memory().numTensors).toBe(before);
    const other = await pipeline('fill-mask', fixture('bert-mlm-tiny'));
    expect(tf.memory().numTensors).toBeGreaterThan(before);
    await other(text);
    other.dispose();
    expect(tf.memory().numTensors).toBe(before);
    await expect(other(text)).rejects.toThrow(/MaskedLM 'bert' was disposed/);
  });
});
