// Imports the loaders and free functions directly, not the package entry: the convenience
// methods must reach every model the Auto* loaders return, however they were imported.
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { generate } from '../../src/generation/generate.js';
import { addHook, hookPoints } from '../../src/hooks/run.js';
import { AutoCausalLM, AutoEncoder } from '../../src/loaders/auto.js';
import { CausalLM } from '../../src/models/causal-lm.js';
import { disposeOutput, TransformerModel } from '../../src/models/transformer.js';
import { fixture, ids } from '../helpers.js';

const METHODS = ['hookPoints', 'addHook', 'addPreHook', 'runWithCache', 'runWithHooks', 'save'] as const;

describe('convenience methods (src/model-methods.ts)', () => {
  it('every model from the Auto* loaders has them, as non-enumerable prototype methods', async () => {
    const lm = (await AutoCausalLM.fromDir(fixture('llama-tiny'))) as CausalLM;
    const encoder = await AutoEncoder.fromDir(fixture('bert-tiny'));
    try {
      for (const model of [lm, encoder]) {
        for (const name of METHODS) expect(typeof model[name], `${model.label}.${name}`).toBe('function');
      }
      expect(typeof lm.generate).toBe('function');
      expect(typeof lm.stream).toBe('function');
      // Like class methods: not own properties, not listed by for...in or Object.keys.
      const listed: string[] = [];
      for (const key in lm) listed.push(key);
      for (const name of [...METHODS, 'generate', 'stream']) {
        expect(Object.hasOwn(lm, name)).toBe(false);
        expect(listed).not.toContain(name);
      }
      expect(Object.hasOwn(TransformerModel.prototype, 'save')).toBe(true);
      expect(Object.hasOwn(CausalLM.prototype, 'generate')).toBe(true);
    } finally {
      lm.dispose();
      encoder.dispose();
    }
  });

  it('each method gives what its free function gives, and leaves no tensor behind', async () => {
    const lm = (await AutoCausalLM.fromDir(fixture('llama-tiny'))) as CausalLM;
    const dir = await mkdtemp(join(tmpdir(), 'tessera-methods-'));
    try {
      lm.generate([[1, 2]], { maxNewTokens: 1 }); // warm up: backends may cache kernels
      const start = tf.memory().numTensors;
      expect(lm.generate([[1, 2, 3], [4]], { maxNewTokens: 4 })).toEqual(generate(lm, [[1, 2, 3], [4]], { maxNewTokens: 4 }));
      const streamed: number[] = [];
      for await (const event of lm.stream([[1, 2, 3]], { maxNewTokens: 4 })) streamed.push(event.token);
      expect([streamed]).toEqual(generate(lm, [[1, 2, 3]], { maxNewTokens: 4 }));
      expect(lm.hookPoints()).toEqual(hookPoints(lm));
      expect(lm.hookPoints()).toContain('layers.0.mixer');

      // A hook added by the method and one added by the free function both fire.
      const seen: string[] = [];
      const handles = [lm.addHook('layers.0', () => void seen.push('method')), addHook(lm, 'layers.1', () => void seen.push('function'))];
      const input = ids([[1, 2, 3]]);
      disposeOutput(lm.forward(input));
      handles.forEach((h) => h.remove());
      expect(seen).toEqual(['method', 'function']);

      const { output, cache } = lm.runWithCache(input, { names: ['layers.0'] });
      expect(cache.names()).toEqual(['layers.0']);
      expect(output.logits.shape).toEqual([1, 3, lm.embeddings.word.count]);
      disposeOutput(output);
      cache.dispose();
      input.dispose();

      await lm.save(dir);
      expect((await readdir(dir)).sort()).toEqual(['config.json', 'model.safetensors']);
      expect(tf.memory().numTensors).toBe(start);
    } finally {
      lm.dispose();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
