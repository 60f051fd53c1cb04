import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { AutoCausalLM, AutoEncoder, AutoTokenizer, disposeOutput, readSafetensors } from '../../src/index.js';
import { fixture, ids, loadExpected, maxAbsDiff } from '../helpers.js';
import { FakeHub, commitHash, folderFiles } from '../helpers/fake-hub.js';
import { torchZipBytes } from '../helpers/pickle-writer.js';
import { writeStoredZip } from '../helpers/write-zip.js';

const TOL = 1e-4;
const hub = new FakeHub();

beforeAll(async () => {
  await hub.start();
  hub.addRepo('state-spaces/mamba-tiny', commitHash('ssm'), folderFiles(fixture('mamba-ssm-tiny')));
  hub.addRepo('tessera/bert-tiny', commitHash('bert'), folderFiles(fixture('bert-tiny')));
  hub.addRepo('ai21labs/jamba-tiny', commitHash('jamba'), folderFiles(fixture('jamba-tiny')));
});
afterAll(() => hub.stop());

describe('loading by Hugging Face model name', () => {
  it('loads a .bin-only state-spaces Mamba repo and matches HF logits', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'tessera-byname-'));
    const expected = loadExpected('mamba-ssm-tiny');
    const model = await AutoCausalLM.fromHfHub('state-spaces/mamba-tiny', { endpoint: hub.endpoint, cacheDir: cache, revision: 'main' });
    const out = model.forward(ids(expected.input_ids));
    expect(maxAbsDiff(out.logits, expected.logits)).toBeLessThan(TOL);
    disposeOutput(out);
    model.dispose();
  });

  it('loads the Jamba hybrid by name and generates the HF greedy ids with both caches', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'tessera-byname-'));
    const expected = loadExpected('jamba-tiny');
    const model = await AutoCausalLM.fromHfHub('ai21labs/jamba-tiny', { endpoint: hub.endpoint, cacheDir: cache });
    expect(model.architecture).toBe('jamba');
    const out = model.forward(ids(expected.input_ids));
    expect(maxAbsDiff(out.logits, expected.logits)).toBeLessThan(TOL);
    disposeOutput(out);
    const [generated] = await model.generate([expected.greedy_prompt_ids!], { maxNewTokens: expected.greedy_ids!.length });
    expect(generated).toEqual(expected.greedy_ids);
    model.dispose();
  });

  it('loads bert-tiny by name and its tokenizer from the same cache with no further request', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'tessera-byname-'));
    const expected = loadExpected('bert-tiny');
    const model = await AutoEncoder.fromPretrained('tessera/bert-tiny', { endpoint: hub.endpoint, cacheDir: cache });
    const before = hub.log.length;
    const tok = await AutoTokenizer.fromHfHub('tessera/bert-tiny', { endpoint: hub.endpoint, cacheDir: cache });
    expect(hub.log.length).toBe(before);
    const enc = tok.encode(expected.text!.map((t, i) => [t, expected.text_pair![i]] as const));
    expect(enc.ids).toEqual(expected.input_ids);
    const out = model.forward(enc.inputIds, { attentionMask: enc.attentionMask, tokenTypeIds: enc.tokenTypeIds });
    expect(maxAbsDiff(out.lastHiddenState, expected.last_hidden_state, expected.attention_mask)).toBeLessThan(TOL);
    disposeOutput(out);
    tf.dispose([enc.inputIds, enc.attentionMask, enc.tokenTypeIds]);
    model.dispose();
  });

  it('fromPretrained takes an existing folder without touching the hub, and rejects a missing path', async () => {
    const before = hub.log.length;
    const model = await AutoCausalLM.fromPretrained(fixture('mamba-ssm-tiny'));
    expect(model.tiedEmbeddings).toBe(true);
    model.dispose();
    expect(hub.log.length).toBe(before);
    await expect(AutoEncoder.fromPretrained('./no/such/folder')).rejects.toThrow(/neither an existing folder nor a Hugging Face model name/);
  });
});

describe('legacy BERT checkpoint names', () => {
  it('loads bert.-prefixed, LayerNorm.gamma/beta names from a .bin and ignores BertForPreTraining heads', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-legacy-bert-'));
    const config = JSON.parse(readFileSync(fixture('bert-tiny/config.json'), 'utf8'));
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, architectures: ['BertForPreTraining'] }));
    const tensors = await readSafetensors(fixture('bert-tiny/model.safetensors'));
    const renamed: Parameters<typeof torchZipBytes>[0] = [...tensors].map(([name, t]) => [
      `bert.${name}`.replace(/LayerNorm\.weight$/, 'LayerNorm.gamma').replace(/LayerNorm\.bias$/, 'LayerNorm.beta'),
      { shape: t.shape, data: t.data },
    ]);
    // BertForPreTraining's heads and the position_ids buffer, which a base model ignores.
    renamed.push(['cls.predictions.bias', { shape: [512], data: new Float32Array(512) }]);
    renamed.push(['cls.seq_relationship.weight', { shape: [2, 64], data: new Float32Array(128) }]);
    renamed.push(['bert.embeddings.position_ids', { shape: [1, 64], data: new BigInt64Array(64).map((_, i) => BigInt(i)) }]);
    writeFileSync(join(dir, 'pytorch_model.bin'), torchZipBytes(renamed, writeStoredZip, 'pytorch_model'));

    const expected = loadExpected('bert-tiny');
    const model = await AutoEncoder.fromDir(dir);
    const out = model.forward(ids(expected.input_ids), { attentionMask: ids(expected.attention_mask!), tokenTypeIds: ids(expected.token_type_ids!) });
    expect(maxAbsDiff(out.lastHiddenState, expected.last_hidden_state, expected.attention_mask)).toBeLessThan(TOL);
    expect(maxAbsDiff(out.pooledOutput!, expected.pooler_output)).toBeLessThan(TOL);
    disposeOutput(out);
    model.dispose();
  });

  it('reads sharded .bin checkpoints through pytorch_model.bin.index.json', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-bin-shards-'));
    copyFileSync(fixture('llama-tiny/config.json'), join(dir, 'config.json'));
    const all = [...(await readSafetensors(fixture('llama-tiny/model.safetensors')))].map(
      ([name, t]): Parameters<typeof torchZipBytes>[0][number] => [name, { shape: t.shape, data: t.data }],
    );
    const half = Math.ceil(all.length / 2);
    const shards = [all.slice(0, half), all.slice(half)];
    const weightMap: Record<string, string> = {};
    shards.forEach((group, i) => {
      const file = `pytorch_model-0000${i + 1}-of-00002.bin`;
      writeFileSync(join(dir, file), torchZipBytes(group, writeStoredZip));
      for (const [name] of group) weightMap[name] = file;
    });
    writeFileSync(join(dir, 'pytorch_model.bin.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    const expected = loadExpected('llama-tiny');
    const model = await AutoCausalLM.fromDir(dir);
    const out = model.forward(ids(expected.input_ids), { attentionMask: ids(expected.attention_mask!) });
    expect(maxAbsDiff(out.logits, expected.logits)).toBeLessThan(TOL);
    disposeOutput(out);
    model.dispose();
  });

  it('a .bin checkpoint loads through readCheckpointDir when a folder has no safetensors', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'tessera-bin-dir-'));
    copyFileSync(fixture('mamba-ssm-tiny/config.json'), join(dir, 'config.json'));
    copyFileSync(fixture('mamba-ssm-tiny/pytorch_model.bin'), join(dir, 'pytorch_model.bin'));
    const expected = loadExpected('mamba-ssm-tiny');
    const model = await AutoCausalLM.fromDir(dir);
    const out = model.forward(ids(expected.input_ids));
    expect(maxAbsDiff(out.logits, expected.logits)).toBeLessThan(TOL);
    disposeOutput(out);
    model.dispose();
  });
});
