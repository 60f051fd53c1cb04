import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AutoCausalLM, UnknownKeyError, disposeOutput, type CausalLM, type HookSpec, type RunWithCacheOptions } from '../../src/index.js';
import { expectThrowsFlat, fixture } from '../helpers.js';

describe('hook runs reject unknown option keys', () => {
  let lm: CausalLM;
  let ids: tf.Tensor2D;
  beforeAll(async () => {
    lm = (await AutoCausalLM.fromDir(fixture('llama-tiny'))) as CausalLM;
    ids = tf.tensor2d([[1, 5, 9]], undefined, 'int32');
    disposeOutput(lm.forward(ids));
  });
  afterAll(() => {
    lm.dispose();
    ids.dispose();
  });

  it('runWithCache: a misspelt `names` does not capture everything', async () => {
    const options = { name: ['layers.0'] } as unknown as RunWithCacheOptions;
    await expectThrowsFlat(() => lm.runWithCache(ids, options), UnknownKeyError, "runWithCache options: unknown key 'name'; did you mean 'names'?");
    await expectThrowsFlat(() => lm.runWithCache(ids, { names: ['layers.0'], ofset: 0 } as unknown as RunWithCacheOptions), UnknownKeyError, "runWithCache options: unknown key 'ofset'; did you mean 'offset'?");
    expect(lm.layers.items[0]!.hasHooks()).toBe(false);
  });

  it('runWithHooks: its hook specs and its forward options', async () => {
    const specs = [{ name: 'layers.0', fn: () => undefined, pr: true }] as unknown as HookSpec[];
    await expectThrowsFlat(() => lm.runWithHooks(ids, specs), UnknownKeyError, "runWithHooks hooks[0]: unknown key 'pr'; did you mean 'pre'?");
    const options = { positionId: ids } as unknown as Parameters<typeof lm.runWithHooks>[2];
    await expectThrowsFlat(() => lm.runWithHooks(ids, { 'layers.0': () => undefined }, options), UnknownKeyError, "forward options: unknown key 'positionId'; did you mean 'positionIds'?");
    expect(lm.layers.items[0]!.hasHooks()).toBe(false);
  });
});
