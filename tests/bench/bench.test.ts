import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { runBench } from '../../bench/run.js';

describe('npm run bench (quick smoke check)', () => {
  it('reports every key as a finite number, on the active backend, with no tensor growth', async () => {
    const lines: string[] = [];
    const result = await runBench({ quick: true, log: (l) => lines.push(l) });
    expect(result.backend).toBe(tf.getBackend());
    for (const key of [
      'bert_base_encode_tok_s',
      'mamba130m_prefill512_tok_s',
      'mamba130m_decode_tok_s',
      'llama_small_prefill512_tok_s',
      'llama_small_decode_tok_s',
      'mamba_decode_ratio_4096_vs_64',
      'matmul_gflops',
      'matvec_gbps',
      'matvec_streaming_gbps',
      'encode_engine_fraction',
      'bert_onnxruntime_tok_s',
      'bert_vs_onnxruntime',
      'llama_small_prefill_engine_fraction',
      'mamba130m_prefill_engine_fraction',
      'decode_engine_fraction',
      'decode_streaming_fraction',
      'train_student_step_tok_s',
      'train_distill_step_tok_s',
      'train_mamba_distill_step_tok_s',
      'train_engine_fraction',
      'train_peak_rss_mb',
      'tensors_before',
      'tensors_after',
    ]) {
      expect(Number.isFinite(result[key]), key).toBe(true);
    }
    expect(result.tensors_after).toBe(result.tensors_before);
    expect(lines.some((l) => l.includes('mamba decode'))).toBe(true);
  });

  it('runs a subset', async () => {
    const result = await runBench({ quick: true, only: ['engine', 'llama'], log: () => {} });
    expect(result.llama_small_decode_tok_s).toBeGreaterThan(0);
    expect(result.bert_base_encode_tok_s).toBeUndefined();
    expect(result.mamba130m_decode_tok_s).toBeUndefined();
    expect(result.train_student_step_tok_s).toBeUndefined();
  });

  it('runs the train part alone, at a chosen batch, with no tensor growth', async () => {
    const result = await runBench({ quick: true, only: ['train'], trainBatch: [1, 4], log: () => {} });
    expect([result.train_batch, result.train_length]).toEqual([1, 4]);
    expect(result.train_distill_step_tok_s).toBeGreaterThan(0);
    expect(result.tensors_after).toBe(result.tensors_before);
  });
});
