// A misspelt key in any loader, build, save or backend options object is an UnknownKeyError
// naming the key and the nearest valid one, raised before anything is read, fetched, written,
// built or switched, and leaving no tensor behind.
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AutoCausalLM,
  AutoEncoder,
  AutoTokenizer,
  assignWeights,
  buildFromConfig,
  initBackend,
  modelFromCheckpoint,
  readCheckpointDir,
  saveModel,
  snapshotModel,
  UnknownKeyError,
  type CausalLM,
} from '../../src/index.js';
import { expectThrowsFlat, fixture } from '../helpers.js';

const LLAMA = { model_type: 'llama', vocab_size: 16, hidden_size: 8, intermediate_size: 16, num_hidden_layers: 1, num_attention_heads: 2 };
const unknown = (where: string, key: string, suggestion: string): string => `${where}: unknown key '${key}'; did you mean '${suggestion}'?`;

let scratch = '';
/** A fetch that fails the test's expectations if any options check lets a request through. */
let requests = 0;
const countingFetch: typeof fetch = async () => {
  requests++;
  throw new Error('no request expected');
};

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'tessera-strict-options-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe('unknown option keys: loaders, build, save, backend', () => {
  it('fromConfig options (Auto* and buildFromConfig): nothing is built', async () => {
    const variables = Object.keys(tf.engine().registeredVariables).length;
    await expectThrowsFlat(() => AutoCausalLM.fromConfig(LLAMA, { sed: 1 } as never), UnknownKeyError, unknown('fromConfig options', 'sed', 'seed'));
    await expectThrowsFlat(
      () => buildFromConfig(LLAMA, 'causal-lm', 'config', { maxParamBytes: 1e9 } as never),
      UnknownKeyError,
      unknown('fromConfig options', 'maxParamBytes', 'maxParameterBytes'),
    );
    expect(Object.keys(tf.engine().registeredVariables).length).toBe(variables);
  });

  it('fromDir options: no weights read, nothing built', async () => {
    await expectThrowsFlat(
      () => AutoCausalLM.fromDir(fixture('llama-tiny'), { allowNonFinit: true } as never),
      UnknownKeyError,
      unknown('AutoCausalLM.fromDir options', 'allowNonFinit', 'allowNonFinite'),
    );
    await expectThrowsFlat(
      () => AutoEncoder.fromDir(fixture('bert-tiny'), { allownonfinite: true } as never),
      UnknownKeyError,
      unknown('AutoEncoder.fromDir options', 'allownonfinite', 'allowNonFinite'),
    );
  });

  it('fromHfHub and fromPretrained options: no request, no cache folder', async () => {
    const cacheDir = join(scratch, 'hub-cache');
    const base = { cacheDir, fetch: countingFetch };
    await expectThrowsFlat(
      () => AutoCausalLM.fromHfHub('org/model', { ...base, revison: 'main' } as never),
      UnknownKeyError,
      unknown('AutoCausalLM.fromHfHub options', 'revison', 'revision'),
    );
    await expectThrowsFlat(
      () => AutoCausalLM.fromPretrained('org/model', { ...base, ofline: true } as never),
      UnknownKeyError,
      unknown('AutoCausalLM.fromPretrained options', 'ofline', 'offline'),
    );
    // A load option misspelt in a hub load is caught too, not passed on to the snapshot.
    await expectThrowsFlat(
      () => AutoEncoder.fromHfHub('org/model', { ...base, allowNonFinit: true } as never),
      UnknownKeyError,
      unknown('AutoEncoder.fromHfHub options', 'allowNonFinit', 'allowNonFinite'),
    );
    expect(requests).toBe(0);
    expect(existsSync(cacheDir)).toBe(false);
  });

  it('snapshotModel options: no request, no cache folder', async () => {
    const cacheDir = join(scratch, 'snapshot-cache');
    await expectThrowsFlat(
      () => snapshotModel('org/model', { cacheDir, fetch: countingFetch, timeoutMS: 5 } as never),
      UnknownKeyError,
      unknown('snapshotModel options', 'timeoutMS', 'timeoutMs'),
    );
    expect(requests).toBe(0);
    expect(existsSync(cacheDir)).toBe(false);
  });

  it('AutoTokenizer.fromHfHub and fromPretrained options: no request', async () => {
    const cacheDir = join(scratch, 'tokenizer-cache');
    await expectThrowsFlat(
      () => AutoTokenizer.fromHfHub('org/model', { cacheDir, fetch: countingFetch, tokn: 'x' } as never),
      UnknownKeyError,
      unknown('AutoTokenizer.fromHfHub options', 'tokn', 'token'),
    );
    // Checked before the folder-or-name decision, so a folder does not skip the check.
    await expectThrowsFlat(
      () => AutoTokenizer.fromPretrained(fixture('bert-tiny'), { cachedir: cacheDir } as never),
      UnknownKeyError,
      unknown('AutoTokenizer.fromPretrained options', 'cachedir', 'cacheDir'),
    );
    expect(requests).toBe(0);
    expect(existsSync(cacheDir)).toBe(false);
  });

  it('AutoTokenizer.encode and decode options: no tensor created', async () => {
    const tokenizer = await AutoTokenizer.fromDir(fixture('bert-tiny'));
    await expectThrowsFlat(
      () => tokenizer.encode(['hello world'], { maxLenght: 8 } as never),
      UnknownKeyError,
      unknown('AutoTokenizer.encode options', 'maxLenght', 'maxLength'),
    );
    await expectThrowsFlat(
      () => tokenizer.decode([1, 2], { skipSpecialToken: true } as never),
      UnknownKeyError,
      unknown('AutoTokenizer.decode options', 'skipSpecialToken', 'skipSpecialTokens'),
    );
  });

  it('assignWeights and modelFromCheckpoint options: no weight changes', async () => {
    const checkpoint = await readCheckpointDir(fixture('llama-tiny'));
    const lm = AutoCausalLM.fromConfig(checkpoint.config, { seed: 3 });
    try {
      const [name, weight] = lm.namedParameters()[0]!;
      const before = weight.dataSync().slice();
      await expectThrowsFlat(
        () => assignWeights(lm, checkpoint.tensors, { rules: [], ignor: [] } as never),
        UnknownKeyError,
        unknown('assignWeights options', 'ignor', 'ignore'),
      );
      expect(Array.from(weight.dataSync()), name).toEqual(Array.from(before));
    } finally {
      lm.dispose();
    }
    await expectThrowsFlat(
      () => modelFromCheckpoint(checkpoint, 'causal-lm', { allowNonfinite: true } as never),
      UnknownKeyError,
      unknown('modelFromCheckpoint options', 'allowNonfinite', 'allowNonFinite'),
    );
  });

  it('saveModel options (and model.save): nothing written', async () => {
    const lm: CausalLM = AutoCausalLM.fromConfig(LLAMA, { seed: 1 });
    const dir = join(scratch, 'saved');
    try {
      await expectThrowsFlat(() => saveModel(lm, dir, { fromat: 'hf' } as never), UnknownKeyError, unknown('saveModel options', 'fromat', 'format'));
      await expectThrowsFlat(() => lm.save(dir, { overwrit: true } as never), UnknownKeyError, unknown('saveModel options', 'overwrit', 'overwrite'));
      expect(existsSync(dir)).toBe(false);
    } finally {
      lm.dispose();
    }
  });

  it('initBackend options: the backend stays as it was', async () => {
    const backend = tf.getBackend();
    await expectThrowsFlat(() => initBackend({ backnd: 'cpu' } as never), UnknownKeyError, unknown('initBackend options', 'backnd', 'backend'));
    expect(tf.getBackend()).toBe(backend);
  });

  it('a key far from every valid one lists the valid keys instead of guessing', async () => {
    await expectThrowsFlat(
      () => initBackend({ threads: 4 } as never),
      UnknownKeyError,
      "initBackend options: unknown key 'threads'; valid keys: backend, verbose",
    );
  });
});
