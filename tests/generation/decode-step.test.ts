import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it, vi } from 'vitest';

import { GenerationCache } from '../../src/generation/cache.js';
import { AutoCausalLM } from '../../src/loaders/auto.js';
import type { CausalLM } from '../../src/models/causal-lm.js';
import { IdOutOfRangeError } from '../../src/models/errors.js';

const config = { model_type: 'llama', hidden_size: 32, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 48, vocab_size: 64 };

describe('a decode step', () => {
  it('reads back only the logits (or the greedy picks where the backend makes them), not the ids it checked itself; ids from elsewhere still get the clear error', () => {
    const lm = AutoCausalLM.fromConfig(config) as CausalLM;
    const cache = new GenerationCache();
    lm.generate([[1, 2, 3]], { maxNewTokens: 1, cache });
    const reads = vi.spyOn(tf.Tensor.prototype, 'dataSync');
    try {
      lm.generate([[4]], { maxNewTokens: 3, cache });
      expect(reads).toHaveBeenCalledTimes(3); // the logits, or the greedy picks, of each step
    } finally {
      reads.mockRestore();
    }
    const ids = tf.tensor2d([[1, 64]], [1, 2], 'int32');
    expect(() => lm.forward(ids)).toThrow(IdOutOfRangeError);
    ids.dispose();
    cache.dispose();
    lm.dispose();
  });

  it('leaves the cache as it was (positions, mask, length, tensors) when the forward throws', () => {
    const lm = AutoCausalLM.fromConfig(config) as CausalLM;
    const cache = new GenerationCache();
    lm.generate([[1, 2, 3], [4, 5]], { maxNewTokens: 2, cache });
    const before = { length: cache.length, mask: cache.mask.map((r) => [...r]), next: [...cache.nextPosition], tensors: tf.memory().numTensors };
    // A hook on the first block's output throws after its attention stored the step (mid-forward).
    const handle = lm.layers.items[0]!.attachHook('', 'post', () => {
      throw new Error('hook failed');
    });
    expect(() => lm.generate([[6], [7]], { maxNewTokens: 1, cache })).toThrow('hook failed');
    handle.remove();
    expect({ length: cache.length, mask: cache.mask, next: cache.nextPosition, tensors: tf.memory().numTensors }).toEqual(before);
    // Every layer holds the positions from before the failed step: decoding goes on as if it never ran.
    const resumed = lm.generate([[6], [7]], { maxNewTokens: 3, cache });
    const fresh = new GenerationCache();
    lm.generate([[1, 2, 3], [4, 5]], { maxNewTokens: 2, cache: fresh });
    expect(lm.generate([[6], [7]], { maxNewTokens: 3, cache: fresh })).toEqual(resumed);
    fresh.dispose();
    cache.dispose();
    lm.dispose();
  });
});
