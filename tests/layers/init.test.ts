import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { AutoCausalLM } from '../../src/index.js';

const config = { model_type: 'llama', vocab_size: 64, hidden_size: 16, num_hidden_layers: 2, num_attention_heads: 2, intermediate_size: 32 };

function weights(seed?: number): Float32Array[] {
  const model = AutoCausalLM.fromConfig(config, { seed });
  const values = model.namedParameters().map(([, p]) => p.dataSync() as Float32Array);
  model.dispose();
  return values;
}

describe('seeded initialisation', () => {
  it('gives the same weights for one seed, others for another seed or none', () => {
    const before = tf.memory().numTensors;
    const a = weights(7);
    const b = weights(7);
    const c = weights(8);
    const d = weights();
    expect(a.map((w) => Array.from(w))).toEqual(b.map((w) => Array.from(w)));
    // the random matrices differ (norm weights are ones whatever the seed)
    const differs = (x: Float32Array[], y: Float32Array[]) => x.some((w, i) => w.some((v, j) => v !== y[i]![j]));
    expect(differs(a, c)).toBe(true);
    expect(differs(a, d)).toBe(true);
    // every random matrix got its own seed: no two equal
    const random = a.filter((w) => w.some((v) => v !== w[0]));
    expect(new Set(random.map((w) => w[0])).size).toBe(random.length);
    expect(tf.memory().numTensors).toBe(before);
  });

  it('refuses a seed that is not an integer', () => {
    expect(() => AutoCausalLM.fromConfig(config, { seed: 1.5 })).toThrow(/seed must be an integer, got 1\.5/);
  });
});
