import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it } from 'vitest';
import { AutoEncoder, AutoMaskedLM, bert, disposeOutput, MaskedLM, readSafetensors, writeSafetensors, type TensorToSave } from '../../src/index.js';
import { fixture, ids, maxAbsDiff } from '../helpers.js';

const TOL = 1e-4;

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

/** The `k` ids with the largest values of `row`, largest first. */
function topK(row: number[], k: number): number[] {
  return row.map((v, i) => [v, i] as const).sort((a, b) => b[0] - a[0]).slice(0, k).map(([, i]) => i);
}

const scratch: string[] = [];
afterAll(async () => {
  for (const dir of scratch) await rm(dir, { recursive: true, force: true });
});

describe('BERT masked LM matches HF BertForMaskedLM', () => {
  it('logits at every unpadded position and the top 5 at each mask', async () => {
    const start = tf.memory().numTensors;
    const model = await AutoMaskedLM.fromDir(fixture('bert-mlm-tiny'));
    expect(model).toBeInstanceOf(MaskedLM);
    // The decoder is the word embedding matrix itself, not a copy.
    expect(model.namedParameters().map(([p]) => p).filter((p) => p.startsWith('maskedLmHead.')).sort()).toEqual([
      'maskedLmHead.bias', 'maskedLmHead.dense.bias', 'maskedLmHead.dense.weight', 'maskedLmHead.norm.bias', 'maskedLmHead.norm.weight',
    ]);
    const weights = tf.memory().numTensors;
    const [inputIds, mask, types] = [ids(expected.input_ids), ids(expected.attention_mask), ids(expected.token_type_ids)];
    const out = model.forward(inputIds, { attentionMask: mask, tokenTypeIds: types });
    expect(out.logits.shape).toEqual([2, 12, 512]);
    expect(maxAbsDiff(out.logits, expected.logits, expected.attention_mask)).toBeLessThan(TOL);
    const logits = out.logits.arraySync();
    expected.mask_positions.forEach((at, row) => expect(topK(logits[row]![at]!, 5), `row ${row}`).toEqual(expected.top5_at_mask[row]));
    disposeOutput(out);
    tf.dispose([inputIds, mask, types]);
    expect(tf.memory().numTensors).toBe(weights);
    model.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  it('builds from a config with the size its estimate announced, and no pooler', () => {
    const config = JSON.parse(readFileSync(join(fixture('bert-mlm-tiny'), 'config.json'), 'utf8')) as Record<string, unknown>;
    const start = tf.memory().numTensors;
    const model = AutoMaskedLM.fromConfig(config, { seed: 1 });
    expect(model.parameterCount()).toBe(bert.estimateSize!(bert.parseConfig(config), 'masked-lm').parameters);
    expect(model.hookPoints()).toContain('maskedLmHead.decoder');
    expect(model.hookPoints().some((p) => p.startsWith('pooler'))).toBe(false);
    model.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  it('loads a BertForPreTraining-style file too: pooler, next-sentence head and a stored decoder skipped, TF-era gamma/beta read', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tessera-mlm-'));
    scratch.push(dir);
    const tensors = new Map<string, TensorToSave>();
    for (const [name, t] of await readSafetensors(join(fixture('bert-mlm-tiny'), 'model.safetensors'))) tensors.set(name, { shape: t.shape, data: t.data as Float32Array });
    for (const [name, t] of await readSafetensors(join(fixture('bert-tiny'), 'model.safetensors'))) {
      if (name.startsWith('pooler.')) tensors.set(`bert.${name}`, { shape: t.shape, data: t.data as Float32Array });
    }
    tensors.set('cls.seq_relationship.weight', { shape: [2, 64], data: new Float32Array(128) });
    tensors.set('cls.predictions.decoder.weight', tensors.get('bert.embeddings.word_embeddings.weight')!);
    for (const [from, to] of [['weight', 'gamma'], ['bias', 'beta']]) {
      tensors.set(`cls.predictions.transform.LayerNorm.${to}`, tensors.get(`cls.predictions.transform.LayerNorm.${from}`)!);
      tensors.delete(`cls.predictions.transform.LayerNorm.${from}`);
    }
    await writeSafetensors(join(dir, 'model.safetensors'), tensors);
    await copyFile(join(fixture('bert-mlm-tiny'), 'config.json'), join(dir, 'config.json'));
    const start = tf.memory().numTensors;
    const model = await AutoMaskedLM.fromDir(dir);
    const [inputIds, types] = [ids(expected.input_ids.slice(0, 1)), ids(expected.token_type_ids.slice(0, 1))];
    const out = model.forward(inputIds, { tokenTypeIds: types });
    expect(maxAbsDiff(out.logits, expected.logits.slice(0, 1))).toBeLessThan(TOL);
    disposeOutput(out);
    tf.dispose([inputIds, types]);
    model.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  it('the masked-LM checkpoint still loads as an encoder once it has a pooler (the head is skipped)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'tessera-mlm-'));
    scratch.push(dir);
    const tensors = new Map<string, TensorToSave>();
    for (const [name, t] of await readSafetensors(join(fixture('bert-mlm-tiny'), 'model.safetensors'))) tensors.set(name, { shape: t.shape, data: t.data as Float32Array });
    for (const [name, t] of await readSafetensors(join(fixture('bert-tiny'), 'model.safetensors'))) {
      if (name.startsWith('pooler.')) tensors.set(`bert.${name}`, { shape: t.shape, data: t.data as Float32Array });
    }
    await writeSafetensors(join(dir, 'model.safetensors'), tensors);
    await writeFile(join(dir, 'config.json'), readFileSync(join(fixture('bert-mlm-tiny'), 'config.json')));
    const model = await AutoEncoder.fromDir(dir);
    expect(model.namedParameters().some(([p]) => p.startsWith('maskedLmHead'))).toBe(false);
    model.dispose();
  });
});

describe('AutoMaskedLM errors', () => {
  it('a base BertModel folder (no cls.* weights) fails naming the missing head weights, leaving no tensor', async () => {
    const start = tf.memory().numTensors;
    const error = await AutoMaskedLM.fromDir(fixture('bert-tiny')).then(
      () => undefined,
      (err: unknown) => err as Error,
    );
    expect(error).toBeInstanceOf(Error);
    expect(error!.message).toContain('has no masked-LM head weights');
    expect(error!.message).toContain('BertModel');
    for (const name of ['cls.predictions.transform.dense.weight', 'cls.predictions.transform.dense.bias', 'cls.predictions.transform.LayerNorm.weight', 'cls.predictions.transform.LayerNorm.bias', 'cls.predictions.bias']) {
      expect(error!.message).toContain(`'${name}'`);
    }
    expect(error!.message).toContain('AutoEncoder');
    expect(tf.memory().numTensors).toBe(start);
  });

  it('an architecture without a masked-LM head is refused by name', async () => {
    await expect(AutoMaskedLM.fromDir(fixture('llama-tiny'))).rejects.toThrow(/llama models cannot be loaded with AutoMaskedLM; use AutoDecoder or AutoCausalLM/);
  });
});
