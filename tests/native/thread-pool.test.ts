// The native kernels' thread pool (native/src/parallel.c): workers started once and woken per
// call. Whatever threads run the parts, a kernel's result must be the one thread's, bit for bit.
import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';

import { FUSED } from '../../src/kernels/contract.js';
import { getNumThreads, setNumThreads } from '../../src/kernels/native/index.js';
import { AutoCausalLM } from '../../src/loaders/auto.js';
import { disposeOutput } from '../../src/models/transformer.js';
import { built, randoms, useNativeBackend } from './helpers.js';

/** `fn`'s values with the machine's thread count and with one thread (restored after). */
function withAndWithoutThreads(fn: () => Float32Array): { parallel: Float32Array; single: Float32Array; threads: number } {
  const threads = getNumThreads();
  const parallel = fn();
  setNumThreads(1);
  try {
    return { parallel, single: fn(), threads };
  } finally {
    setNumThreads(threads);
  }
}

describe.runIf(built)('the native thread pool', () => {
  useNativeBackend();

  it('gives one thread\'s results over thousands of back-to-back calls of mixed sizes', () => {
    const big = tf.tensor2d(randoms(2048 * 512, 1), [2048, 512]);
    const small = tf.tensor2d(randoms(4 * 512, 2), [4, 512]);
    const before = tf.memory().numTensors;
    const run = (): Float32Array => {
      // Big calls split over the pool, small ones stay on the calling thread, in quick succession.
      let last: Float32Array = new Float32Array();
      for (let i = 0; i < 600; i++) {
        const x = i % 3 === 2 ? small : big;
        const y = tf.engine().runKernel(FUSED.rmsNorm, { x }, { eps: 1e-6 }) as tf.Tensor;
        if (x === big) last = y.dataSync() as Float32Array;
        y.dispose();
      }
      return Float32Array.from(last);
    };
    const { parallel, single, threads } = withAndWithoutThreads(run);
    expect(threads).toBeGreaterThan(0);
    expect(parallel).toEqual(single);
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([big, small]);
  });

  it('splits decode\'s GEMVs over the pool with one thread\'s results (float32, bfloat16 and int8 weights)', () => {
    const config = { model_type: 'llama', hidden_size: 128, num_hidden_layers: 2, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 1024, vocab_size: 4096 };
    for (const dtype of ['float32', 'bfloat16', 'int8'] as const) {
      const lm = AutoCausalLM.fromConfig(config, { seed: 3, dtype });
      const ids = tf.tensor2d([[5]], [1, 1], 'int32');
      const run = (): Float32Array => {
        const out = lm.forward(ids);
        const logits = Float32Array.from(out.logits.dataSync());
        disposeOutput(out);
        return logits;
      };
      const { parallel, single } = withAndWithoutThreads(run);
      expect(parallel).toEqual(single);
      expect(parallel.some((v) => v !== 0)).toBe(true);
      ids.dispose();
      lm.dispose();
    }
  });
});
