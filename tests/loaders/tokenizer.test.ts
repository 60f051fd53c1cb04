import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { AutoTokenizer } from '../../src/loaders/tokenizer.js';
import { FakeHub, commitHash, folderFiles } from '../helpers/fake-hub.js';

const FIX = join(import.meta.dirname, '..', 'fixtures');
const expected = JSON.parse(readFileSync(join(FIX, 'bert-tiny/expected.json'), 'utf8')) as {
  text: string[];
  text_pair: (string | null)[];
  input_ids: number[][];
  attention_mask: number[][];
  token_type_ids: number[][];
};
const batch = expected.text.map((t, i) => [t, expected.text_pair[i]] as const);

describe('AutoTokenizer.fromDir (bert-tiny)', () => {
  it('reproduces the Python tokenizer ids, mask and segment ids for a mixed pair/single batch', async () => {
    const tok = await AutoTokenizer.fromDir(join(FIX, 'bert-tiny'));
    expect(tok.inner.constructor.name).toBe('BertTokenizer');
    const before = tf.memory().numTensors;
    const enc = tok.encode(batch, { padding: true });
    expect(tf.memory().numTensors).toBe(before + 3);
    expect(enc.ids).toEqual(expected.input_ids);
    expect(enc.inputIds.dtype).toBe('int32');
    expect(enc.inputIds.shape).toEqual([2, 12]);
    expect(enc.inputIds.arraySync()).toEqual(expected.input_ids);
    expect(enc.attentionMask.arraySync()).toEqual(expected.attention_mask);
    expect(enc.tokenTypeIds.arraySync()).toEqual(expected.token_type_ids);
    tf.dispose([enc.inputIds, enc.attentionMask, enc.tokenTypeIds]);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('decodes with and without special tokens', async () => {
    const tok = await AutoTokenizer.fromDir(join(FIX, 'bert-tiny'));
    expect(tok.decode(expected.input_ids[1], { skipSpecialTokens: true })).toBe('hello, worlds!');
    expect(tok.decode(expected.input_ids[1])).toMatch(/^\[CLS\] hello, worlds! \[SEP\]( \[PAD\])+$/);
    expect(tok.decode(expected.input_ids, { skipSpecialTokens: true })).toEqual(['the quick brown fox jumps over the lazy dog', 'hello, worlds!']);
  });

  it('truncates to maxLength and refuses ragged rows without padding', async () => {
    const tok = await AutoTokenizer.fromDir(join(FIX, 'bert-tiny'));
    const enc = tok.encode(['the quick brown fox jumps over the lazy dog'], { truncation: true, maxLength: 5 });
    expect(enc.ids[0]).toHaveLength(5);
    expect(enc.ids[0][0]).toBe(2);
    tf.dispose([enc.inputIds, enc.attentionMask, enc.tokenTypeIds]);
    expect(() => tok.encode(['a', 'the quick brown fox'], { padding: false })).toThrow(/different lengths.*padding: true/);
  });

  it('builds the same tokenizer from vocab.txt alone (older BERT repos)', async () => {
    for (const keep of [['vocab.txt', 'tokenizer_config.json', 'special_tokens_map.json', 'config.json'], ['vocab.txt', 'config.json']]) {
      const dir = mkdtempSync(join(tmpdir(), 'tessera-vocab-'));
      for (const f of keep) copyFileSync(join(FIX, 'bert-tiny', f), join(dir, f));
      const tok = await AutoTokenizer.fromDir(dir);
      expect(tok.inner.constructor.name, keep.join()).toBe('BertTokenizer');
      const enc = tok.encode(batch);
      expect(enc.ids, keep.join()).toEqual(expected.input_ids);
      expect(enc.tokenTypeIds.arraySync()).toEqual(expected.token_type_ids);
      expect(tok.decode(enc.ids[1], { skipSpecialTokens: true })).toBe('hello, worlds!');
      tf.dispose([enc.inputIds, enc.attentionMask, enc.tokenTypeIds]);
    }
  });

  it('explains a folder without tokenizer.json', async () => {
    await expect(AutoTokenizer.fromDir(join(FIX, 'mamba-tiny'))).rejects.toThrow(/tokenizer\.json not found/);
  });
});

describe('AutoTokenizer.fromHfHub', () => {
  const hub = new FakeHub();
  beforeAll(async () => {
    await hub.start();
    hub.addRepo('tessera/bert-tiny', commitHash('bert-tok'), folderFiles(join(FIX, 'bert-tiny')));
  });
  afterAll(() => hub.stop());

  it('loads from the shared cache without fetching weights or creating another cache', async () => {
    const cache = mkdtempSync(join(tmpdir(), 'tessera-tok-'));
    const tok = await AutoTokenizer.fromHfHub('tessera/bert-tiny', { endpoint: hub.endpoint, cacheDir: cache });
    expect(tok.dir).toBe(join(cache, 'models--tessera--bert-tiny', 'snapshots', commitHash('bert-tok')));
    expect(readdirSync(tok.dir)).not.toContain('model.safetensors');
    expect(hub.log.some((r) => r.url.includes('model.safetensors'))).toBe(false);
    const enc = tok.encode(batch);
    expect(enc.ids).toEqual(expected.input_ids);
    tf.dispose([enc.inputIds, enc.attentionMask, enc.tokenTypeIds]);
    // the repo folder and huggingface_hub's lock folder, nothing else
    expect(readdirSync(cache).sort()).toEqual(['.locks', 'models--tessera--bert-tiny']);
    expect(existsSync(join(import.meta.dirname, '..', '..', 'node_modules', '@huggingface', 'transformers', '.cache'))).toBe(false);
  });
});
