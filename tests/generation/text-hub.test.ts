import * as tf from '@tensorflow/tfjs-core';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AutoCausalLM, AutoTokenizer, generationDefaults, textDefaults } from '../../src/index.js';
import { sourceOf } from '../../src/loaders/model-source.js';
import { FakeHub, commitHash, folderFiles } from '../helpers/fake-hub.js';
import { llamaWithTokenizer } from './text-fixture.js';

describe('AutoCausalLM.fromHfHub(name, { tokenizer: true }) on a local hub', () => {
  const hub = new FakeHub();
  let repoDir: string;
  let cache: string;
  beforeAll(async () => {
    await hub.start();
    repoDir = llamaWithTokenizer({ generationConfig: { eos_token_id: 2, max_new_tokens: 5 } });
    hub.addRepo('tessera/llama-text', commitHash('llama-text'), folderFiles(repoDir));
    cache = mkdtempSync(join(tmpdir(), 'tessera-text-hub-'));
  });
  afterAll(async () => {
    await hub.stop();
    rmSync(repoDir, { recursive: true, force: true });
    rmSync(cache, { recursive: true, force: true });
  });

  it('fetches the tokenizer files through the same snapshot and generates text as the folder load does', async () => {
    const lm = await AutoCausalLM.fromHfHub('tessera/llama-text', { endpoint: hub.endpoint, cacheDir: cache, tokenizer: true });
    const local = await AutoCausalLM.fromDir(repoDir, { tokenizer: true });
    try {
      const snapshot = sourceOf(lm)!.dir;
      expect(existsSync(join(snapshot, 'tokenizer.json'))).toBe(true);
      // generation_config.json comes with the snapshot, and its defaults are the model's.
      const fetched = join(snapshot, 'generation_config.json');
      expect(existsSync(fetched)).toBe(true);
      const generationConfig = JSON.parse(readFileSync(fetched, 'utf8')) as Record<string, unknown>;
      expect(generationConfig).toMatchObject({ eos_token_id: 2, max_new_tokens: 5 });
      expect(textDefaults(lm)).toEqual(generationDefaults(generationConfig, sourceOf(lm)!.config));
      expect(textDefaults(lm)).toEqual(textDefaults(local));
      const before = tf.memory().numTensors;
      const text = lm.generate('Once upon a', { maxNewTokens: 5 });
      expect(tf.memory().numTensors).toBe(before);
      expect(text).toBe(local.generate('Once upon a', { maxNewTokens: 5 }));
      const tok = await AutoTokenizer.fromDir(snapshot);
      expect(tok.inner.encode('hello 😀')).toEqual((await AutoTokenizer.fromDir(repoDir)).inner.encode('hello 😀'));
    } finally {
      lm.dispose();
      local.dispose();
    }
  });
});
