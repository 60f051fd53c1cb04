import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { runBench } from '../../bench/run.js';

describe('npm run bench -- --only=precision (quick smoke check)', () => {
  it('reports every precision key as a finite number, with no tensor growth', async () => {
    const result = await runBench({ quick: true, only: ['precision'], log: () => {} });
    const keys = [
      'llama_small_decode_fp32_tok_s', 'llama_small_decode_bf16_tok_s', 'llama_small_decode_f16_tok_s', 'llama_small_decode_int8_tok_s',
      'llama_small_prefill32_bf16_tok_s', 'llama_small_decode_bf16_vs_fp32', 'llama_small_decode_int8_vs_fp32',
      'mamba130m_decode_fp32_tok_s', 'mamba130m_decode_bf16_tok_s', 'mamba130m_decode_int8_tok_s',
      'decode_streaming_fraction_float32', 'decode_streaming_fraction_bfloat16', 'decode_streaming_fraction_float16', 'decode_streaming_fraction_int8',
      'llama_small_rss_mb_float32', 'llama_small_rss_mb_bfloat16', 'llama_small_rss_mb_float16', 'llama_small_rss_mb_int8',
    ];
    for (const key of keys) expect(Number.isFinite(result[key]), key).toBe(true);
    for (const key of keys) expect(result[key] as number, key).toBeGreaterThan(0);
    expect(result.backend).toBe(tf.getBackend());
    expect(result.tensors_after).toBe(result.tensors_before);
  }, 300_000);
});
