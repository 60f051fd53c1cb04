import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { runBench } from '../../bench/run.js';

describe('npm run bench -- --train-backend=wasm (quick)', () => {
  it('adds the train workloads on wasm as _wasm keys at their own batch, back on the backend it started on, with no tensor growth', async () => {
    const backend = tf.getBackend();
    const lines: string[] = [];
    const result = await runBench({ quick: true, only: ['train'], trainBatch: [1, 4], trainWasm: true, trainWasmBatch: [1, 6], log: (l) => lines.push(l) });
    for (const key of ['train_student_step_tok_s_wasm', 'train_distill_step_tok_s_wasm', 'train_mamba_distill_step_tok_s_wasm']) {
      expect(result[key], key).toBeGreaterThan(0);
    }
    expect([result.train_wasm_batch, result.train_wasm_length]).toEqual([1, 6]);
    expect([result.train_batch, result.train_length]).toEqual([1, 4]);
    expect(lines.some((l) => l.includes('llama student step 1x6 [wasm]'))).toBe(true);
    expect(tf.getBackend()).toBe(backend);
    expect(result.tensors_after).toBe(result.tensors_before);
  });

  it('leaves wasm out unless asked', async () => {
    const result = await runBench({ quick: true, only: ['train'], trainBatch: [1, 4], log: () => {} });
    expect(result.train_student_step_tok_s_wasm).toBeUndefined();
  });
});
