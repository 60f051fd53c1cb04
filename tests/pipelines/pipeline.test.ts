import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { pipeline, PIPELINE_TASKS, UnknownKeyError, UnknownTaskError, type PipelineTask } from '../../src/index.js';
import { fixture } from '../helpers.js';
import { FakeHub, commitHash, folderFiles } from '../helpers/fake-hub.js';
import { llamaWithTokenizer } from '../generation/text-fixture.js';
import { loadTextGenerationPipeline } from '../../src/pipelines/text-generation.js';

const hub = new FakeHub();
const caches: string[] = [];
beforeAll(async () => {
  await hub.start();
  hub.addRepo('tessera/bert-mlm-tiny', commitHash('mlm'), folderFiles(fixture('bert-mlm-tiny')));
});
afterAll(async () => {
  await hub.stop();
  for (const dir of caches) rmSync(dir, { recursive: true, force: true });
});

describe('pipeline(task, nameOrDir, options)', () => {
  it('loads model and tokenizer by hub name through the cache, then again from the cache alone', async () => {
    const cacheDir = mkdtempSync(join(tmpdir(), 'tessera-pipeline-'));
    caches.push(cacheDir);
    const start = tf.memory().numTensors;
    const byName = await pipeline('fill-mask', 'tessera/bert-mlm-tiny', { endpoint: hub.endpoint, cacheDir, progress: false });
    const byDir = await pipeline('fill-mask', fixture('bert-mlm-tiny'));
    const text = `the ${byDir.maskToken} sat on the mat`;
    expect(await byName(text)).toEqual(await byDir(text));
    expect(hub.log.some((r) => r.url.endsWith('/tokenizer.json'))).toBe(true);
    // A second load of the same name needs no request: the hub options reach the snapshot.
    const requests = hub.log.length;
    const extract = await pipeline('feature-extraction', 'tessera/bert-mlm-tiny', { endpoint: hub.endpoint, cacheDir, offline: true });
    expect(hub.log.length).toBe(requests);
    expect(await extract('a b')).toHaveLength(64);
    for (const p of [byName, byDir, extract]) p.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  it("'text-generation' is the text-generation pipeline, and dispose frees its weights", async () => {
    const dir = llamaWithTokenizer({ generationConfig: { bos_token_id: 1, eos_token_id: 2, max_new_tokens: 5 } });
    caches.push(dir);
    const start = tf.memory().numTensors;
    const generator = await pipeline('text-generation', dir);
    const direct = await loadTextGenerationPipeline(dir);
    expect(generator.task).toBe('text-generation');
    const [result] = await generator('Once upon a', { returnFullText: false });
    expect(result!.generatedText).toBe((await direct('Once upon a', { returnFullText: false }))[0]!.generatedText);
    expect(result!.generatedText.length).toBeGreaterThan(0);
    generator.dispose();
    direct.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  it('an unknown task is an UnknownTaskError naming the nearest task', async () => {
    expect(PIPELINE_TASKS).toEqual(['feature-extraction', 'fill-mask', 'text-generation']);
    const error = await pipeline('fill_mask' as PipelineTask, fixture('bert-mlm-tiny')).then(() => new Error('resolved'), (e: unknown) => e as Error);
    expect(error).toBeInstanceOf(UnknownTaskError);
    expect(error.message).toBe('pipeline: unknown task "fill_mask"; did you mean \'fill-mask\'? tasks: feature-extraction, fill-mask, text-generation');
    await expect(pipeline('summarization' as PipelineTask, fixture('bert-mlm-tiny'))).rejects.toThrow(
      'pipeline: unknown task "summarization"; tasks: feature-extraction, fill-mask, text-generation',
    );
  });

  it('an unknown option key is an UnknownKeyError naming the nearest key; nothing is loaded', async () => {
    const before = tf.memory().numTensors;
    const requests = hub.log.length;
    const error = await pipeline('fill-mask', 'tessera/bert-mlm-tiny', { endpoint: hub.endpoint, revison: 'main' } as never).then(() => new Error('resolved'), (e: unknown) => e as Error);
    expect(error).toBeInstanceOf(UnknownKeyError);
    expect(error.message).toBe("pipeline('fill-mask') options: unknown key 'revison'; did you mean 'revision'?");
    expect(hub.log.length).toBe(requests);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('a path that does not exist is an error, not a hub request', async () => {
    await expect(pipeline('feature-extraction', './no/such/folder')).rejects.toThrow("'./no/such/folder' is neither an existing folder nor a Hugging Face model name");
  });
});
