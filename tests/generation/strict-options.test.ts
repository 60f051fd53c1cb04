import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AutoCausalLM, GenerationCache, Layer, Linear, StatelessMixerError, UnknownKeyError, generateSteps, registerMixer,
  type CausalLM, type ForwardContext, type GenerateOptions,
} from '../../src/index.js';
import { expectThrowsFlat, fixture } from '../helpers.js';

/** A test mixer around one hidden → hidden projection. */
abstract class ProjectingMixer extends Layer {
  readonly proj: Linear;
  constructor(hiddenSize: number) {
    super();
    this.proj = this.addModule('proj', new Linear(hiddenSize, hiddenSize));
  }
}

/** A mixer that ignores the cache: right for full forwards, wrong token by token. */
class LastTwo extends ProjectingMixer {
  protected forward(x: tf.Tensor, ctx: ForwardContext): tf.Tensor {
    return tf.tidy(() => {
      const [batch, length, width] = x.shape as [number, number, number];
      const previous = tf.concat([tf.zeros([batch, 1, width]), x.slice([0, 0, 0], [batch, length - 1, width])], 1);
      return this.proj.call(tf.add(x, previous), ctx);
    });
  }
}
registerMixer('test-last-two', (_options, hiddenSize) => new LastTwo(hiddenSize));

/** A position-wise mixer: needs no state, and says so with an empty record. */
class PerPosition extends ProjectingMixer {
  protected forward(x: tf.Tensor, ctx: ForwardContext): tf.Tensor {
    ctx.cache?.set(this, {});
    return this.proj.call(x, ctx);
  }
}
registerMixer('test-per-position', (_options, hiddenSize) => new PerPosition(hiddenSize));

describe('generation options', () => {
  let lm: CausalLM;
  beforeAll(async () => {
    lm = (await AutoCausalLM.fromDir(fixture('mamba-tiny'))) as CausalLM;
    lm.generate([[1, 2]], { maxNewTokens: 2 }); // warm-up
  });
  afterAll(() => lm.dispose());

  it('generate, stream and generateSteps reject an unknown key, naming the nearest', async () => {
    const options = { maxNewTokens: 2, eosTokenID: 2 } as unknown as GenerateOptions;
    await expectThrowsFlat(() => lm.generate([[1, 2]], options), UnknownKeyError, "generate options: unknown key 'eosTokenID'; did you mean 'eosTokenId'?");
    await expectThrowsFlat(async () => {
      for await (const _ of lm.stream([[1, 2]], options)) break;
    }, UnknownKeyError, "stream options: unknown key 'eosTokenID'; did you mean 'eosTokenId'?");
    await expectThrowsFlat(() => generateSteps(lm, [[1, 2]], options).next(), UnknownKeyError, "generateSteps options: unknown key 'eosTokenID'; did you mean 'eosTokenId'?");
  });

  it('the sampling strategy too, per kind', async () => {
    const sample = { maxNewTokens: 2, strategy: { kind: 'sample', temprature: 0.5 } } as unknown as GenerateOptions;
    await expectThrowsFlat(() => lm.generate([[1, 2]], sample), UnknownKeyError, "generate options strategy (sample): unknown key 'temprature'; did you mean 'temperature'?");
    const greedy = { maxNewTokens: 2, strategy: { kind: 'greedy', topK: 4 } } as unknown as GenerateOptions;
    await expectThrowsFlat(() => lm.generate([[1, 2]], greedy), UnknownKeyError, "generate options strategy (greedy): unknown key 'topK'; valid keys: kind");
    const misspelt = { maxNewTokens: 2, strategy: 'greddy' } as unknown as GenerateOptions;
    await expectThrowsFlat(() => lm.generate([[1, 2]], misspelt), Error, `unknown strategy "greddy" (use 'greedy' or { kind: 'sample', temperature, topK, topP, seed })`);
  });

  it('a cache passed in is left as it was', async () => {
    const cache = new GenerationCache();
    const options = { maxNewTokens: 2, cahce: cache } as unknown as GenerateOptions;
    await expectThrowsFlat(() => lm.generate([[1, 2]], options), UnknownKeyError, "generate options: unknown key 'cahce'; did you mean 'cache'?");
    expect(cache.batchSize).toBe(0);
    cache.dispose();
  });
});

describe('a mixer without incremental state', () => {
  it('is refused by generate before any token, naming the layer; forward still runs it', async () => {
    const model = AutoCausalLM.fromConfig({
      model_type: 'tessera-hybrid', vocabSize: 32, hiddenSize: 8, norm: { type: 'rmsnorm' },
      layers: [{ mixer: { type: 'attention', numHeads: 2 } }, { mixer: { type: 'test-last-two' } }],
    }, { seed: 1 }) as CausalLM;
    const tokens: number[] = [];
    await expectThrowsFlat(
      () => model.generate([[1, 2, 3]], { maxNewTokens: 3, onToken: (e) => tokens.push(e.token) }),
      StatelessMixerError,
      'layers.1.mixer (LastTwo) stored no state in the generation cache, so decoding token by token would see only the newest token. ' +
        'A mixer used with generate must keep what it needs between calls with ctx.cache.get(this) / ctx.cache.set(this, {...}) ' +
        '(docs/hybrids.md); to score whole sequences without a cache, call forward instead.',
    );
    expect(tokens).toEqual([]);
    expect(model.hookPoints()).toContain('layers.1.mixer.proj'); // paths intact after the check
    const ids = tf.tensor2d([[1, 2, 3]], undefined, 'int32');
    const out = model.forward(ids);
    expect(out.logits.shape).toEqual([1, 3, 32]);
    tf.dispose([ids, out.logits, out.lastHiddenState, ...out.allOutputs]);
    model.dispose();
  });

  it('passes when the mixer stores a record, even an empty one, and decodes as full forwards do', () => {
    const model = AutoCausalLM.fromConfig({
      model_type: 'tessera-hybrid', vocabSize: 32, hiddenSize: 8, norm: { type: 'rmsnorm' },
      layers: [{ mixer: { type: 'attention', numHeads: 2 } }, { mixer: { type: 'test-per-position' } }],
    }, { seed: 1 }) as CausalLM;
    const prompt = [1, 2, 3];
    const [cached] = model.generate([prompt], { maxNewTokens: 3 });
    // The same tokens from full forwards over the growing sequence.
    const full = [...prompt];
    for (let i = 0; i < 3; i++) {
      const ids = tf.tensor2d([full], undefined, 'int32');
      const out = model.forward(ids);
      full.push(tf.tidy(() => out.logits.slice([0, full.length - 1, 0], [1, 1, 32]).argMax(-1).dataSync()[0]!));
      tf.dispose([ids, out.logits, out.lastHiddenState, ...out.allOutputs]);
    }
    expect(cached).toEqual(full.slice(prompt.length));
    model.dispose();
  });
});
