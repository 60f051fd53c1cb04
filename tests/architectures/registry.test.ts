import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import {
  architectureRegistry,
  AutoCausalLM,
  Block,
  ConfigReader,
  disposeOutput,
  Embeddings,
  FeedForward,
  RMSNorm,
  type Architecture,
} from '../../src/index.js';
import { Layer } from '../../src/index.js';

/** A user's own mixer: each position averages itself with the previous one (causal). */
class PreviousTokenMixer extends Layer {
  protected forward(x: tf.Tensor): tf.Tensor {
    return tf.tidy(() => {
      const [b, l, h] = x.shape as [number, number, number];
      const shifted = tf.concat([tf.zeros([b, 1, h]), x.slice([0, 0, 0], [b, l - 1, h])], 1);
      return x.add(shifted).mul(0.5);
    });
  }
}

interface ToyConfig {
  vocab: number;
  width: number;
  depth: number;
}

const toy: Architecture<ToyConfig> = {
  name: 'toy',
  modelTypes: ['toy-lm'],
  kinds: ['causal-lm'],
  parseConfig(raw) {
    const c = new ConfigReader(raw, 'toy');
    return { vocab: c.integer('vocab_size'), width: c.integer('hidden_size'), depth: c.integer('num_hidden_layers') };
  },
  build(c) {
    return {
      embeddings: new Embeddings({ vocabSize: c.vocab, hiddenSize: c.width }),
      layers: Array.from({ length: c.depth }, () => new Block({
        placement: 'pre',
        mixerNorm: new RMSNorm(c.width, 1e-6),
        mixer: new PreviousTokenMixer(),
        ffnNorm: new RMSNorm(c.width, 1e-6),
        ffn: new FeedForward({ hiddenSize: c.width, intermediateSize: 2 * c.width, activation: 'silu', gated: true }),
      })),
      finalNorm: new RMSNorm(c.width, 1e-6),
      lmHead: 'tied',
    };
  },
  hfNames: [[/^(.*)$/, '$1']],
};

describe('architecture registry', () => {
  it('finds the built-in architectures by model_type', () => {
    const registry = architectureRegistry();
    expect(registry.forConfig({ model_type: 'llama' }).name).toBe('llama');
    expect(registry.forConfig({ model_type: 'bert' }).name).toBe('bert');
    expect(registry.forConfig({ d_model: 64, n_layer: 2, vocab_size: 512 }).name).toBe('mamba'); // state-spaces layout
    expect(() => registry.forConfig({})).toThrow(/has no 'model_type' and matches no registered architecture/);
  });

  it("a user's architecture registers without touching the loader", () => {
    architectureRegistry().register(toy);
    const model = AutoCausalLM.fromConfig({ model_type: 'toy-lm', vocab_size: 32, hidden_size: 8, num_hidden_layers: 2 });
    expect(model.architecture).toBe('toy');
    const out = model.forward(tf.tensor2d([[1, 2, 3]], undefined, 'int32'));
    expect(out.logits.shape).toEqual([1, 3, 32]);
    expect(model.layers.items[0]!.mixer).toBeInstanceOf(PreviousTokenMixer);
    disposeOutput(out);
    model.dispose();
  });
});

