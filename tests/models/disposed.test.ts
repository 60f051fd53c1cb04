import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { AutoCausalLM, AutoEncoder, GenerationCache, ModelDisposedError, generateSteps, saveModel, stream, type CausalLM } from '../../src/index.js';
import { fixture } from '../helpers.js';

/** `fn` throws a ModelDisposedError naming `model` and `method`. */
function expectDisposed(fn: () => unknown, model: string, method: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, `${method} on a disposed model`).toBeInstanceOf(ModelDisposedError);
  const error = caught as ModelDisposedError;
  expect(error.method).toBe(method);
  expect(error.message).toContain(model);
  expect(error.message).toContain(`${method}()`);
}

describe(`a disposed model (backend ${tf.getBackend()})`, () => {
  for (const [name, arch] of [['llama-tiny', 'llama'], ['mamba-tiny', 'mamba']] as const) {
    it(`${name}: every public use throws ModelDisposedError naming the model and method, and leaks nothing`, async () => {
      const start = tf.memory().numTensors;
      const lm = (await AutoCausalLM.fromDir(fixture(name))) as CausalLM;
      lm.generate([[1, 2]], { maxNewTokens: 1 }); // warm up: backends may cache kernels
      lm.dispose();
      expect(lm.isDisposed).toBe(true);
      expect(tf.memory().numTensors).toBe(start);
      const ids = tf.tensor2d([[1, 2, 3]], undefined, 'int32');
      const label = `CausalLM '${arch}'`;
      expectDisposed(() => lm.forward(ids), label, 'forward');
      expectDisposed(() => lm.forwardHidden(ids), label, 'forwardHidden');
      expectDisposed(() => lm.project(tf.zeros([1, 1, 4]) as tf.Tensor3D), label, 'project');
      expectDisposed(() => lm.generate([[1, 2]], { maxNewTokens: 2 }), label, 'generate');
      expectDisposed(() => generateSteps(lm, [[1, 2]], { maxNewTokens: 2 }).next(), label, 'generateSteps');
      await expect(lm.stream([[1, 2]], { maxNewTokens: 2 }).next()).rejects.toThrow(ModelDisposedError);
      await expect(stream(lm, [[1, 2]], { maxNewTokens: 2 }).next()).rejects.toThrow(/stream\(\)/);
      expectDisposed(() => lm.hookPoints(), label, 'hookPoints');
      expectDisposed(() => lm.addHook('layers.0', () => undefined), label, 'addHook');
      expectDisposed(() => lm.addPreHook('layers.0', () => undefined), label, 'addPreHook');
      expectDisposed(() => lm.runWithCache(ids), label, 'runWithCache');
      expectDisposed(() => lm.runWithHooks(ids, {}), label, 'runWithHooks');
      expectDisposed(() => lm.parameterCount(), label, 'namedParameters');
      const dir = mkdtempSync(join(tmpdir(), 'tessera-disposed-'));
      try {
        await expect(lm.save(dir)).rejects.toThrow(ModelDisposedError);
        await expect(saveModel(lm, dir)).rejects.toThrow(/save\(\) cannot use it/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      // A cache passed along is neither bound nor touched by the refused call.
      const cache = new GenerationCache();
      expectDisposed(() => lm.generate([[1]], { maxNewTokens: 1, cache }), label, 'generate');
      expect(cache.batchSize).toBe(0);
      cache.dispose();
      // Disposing again is a no-op, and the refused calls left nothing behind: the only new
      // tensors are the test's own ids and the zeros given to project.
      expect(() => lm.dispose()).not.toThrow();
      expect(tf.memory().numTensors).toBe(start + 2);
      ids.dispose();
    });
  }

  it('bert-tiny (an encoder) too', async () => {
    const model = await AutoEncoder.fromDir(fixture('bert-tiny'));
    model.dispose();
    model.dispose();
    const ids = tf.tensor2d([[1, 2]], undefined, 'int32');
    expectDisposed(() => model.forward(ids), "EncoderModel 'bert'", 'forward');
    ids.dispose();
  });
});
