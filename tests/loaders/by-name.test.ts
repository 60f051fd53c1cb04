import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, readFileSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { AutoCausalLM, AutoEncoder, AutoTokenizer, disposeOutput, readSafetensors } from '../../src/index.js';
import { fixture, ids, loadExpected, maxAbsDiff } from '../helpers.js';
import { FakeHub, commitHash, folderFiles } from '../helpers/fake-hub.js';
import { PickleWriter } from '../helpers/pickle-writer.js';
import { writeStoredZip } from '../helpers/write-zip.js';

const TOL = 1e-4;
const hub = new FakeHub();

beforeAll(async () => {
  await hub.start();
  hub.addRepo('state-spaces/mamba-tiny', commitHash('ssm'), folderFiles(fixture('mamba-ssm-tiny')));
  hub.addRepo('tessera/bert-tiny', commitHash('bert'), folderFiles(fixture('bert-tiny')));
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
    const w = new PickleWriter().proto(2).global('collections', 'OrderedDict').emptyTuple().reduce().mark();
    const entries: Array<[string, Uint8Array]> = [];
    let key = 0;
    const add = (name: string, cls: string, data: Uint8Array, numel: number, shape: number[]) => {
      const stride = shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
      w.tensorItem(name, { cls, key: String(key), numel, offset: 0, size: shape, stride });
      entries.push([`pytorch_model/data/${key}`, data]);
      key++;
    };
    for (const [name, t] of tensors) {
      const legacy = `bert.${name}`.replace(/LayerNorm\.weight$/, 'LayerNorm.gamma').replace(/LayerNorm\.bias$/, 'LayerNorm.beta');
      add(legacy, 'FloatStorage', new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), t.data.length, t.shape);
    }
    add('cls.predictions.bias', 'FloatStorage', new Uint8Array(512 * 4), 512, [512]);
    add('cls.seq_relationship.weight', 'FloatStorage', new Uint8Array(2 * 64 * 4), 128, [2, 64]);
    add('bert.embeddings.position_ids', 'LongStorage', new Uint8Array(new BigInt64Array(64).map((_, i) => BigInt(i)).buffer), 64, [1, 64]);
    w.op(0x75).stop(); // SETITEMS
    writeFileSync(join(dir, 'pytorch_model.bin'), writeStoredZip([['pytorch_model/data.pkl', w.bytes()], ...entries, ['pytorch_model/version', Buffer.from('3\n')]]));

    const expected = loadExpected('bert-tiny');
    const model = await AutoEncoder.fromDir(dir);
    const out = model.forward(ids(expected.input_ids), { attentionMask: ids(expected.attention_mask!), tokenTypeIds: ids(expected.token_type_ids!) });
    expect(maxAbsDiff(out.lastHiddenState, expected.last_hidden_state, expected.attention_mask)).toBeLessThan(TOL);
    expect(maxAbsDiff(out.pooledOutput!, expected.pooler_output)).toBeLessThan(TOL);
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
