import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { runBench } from '../../bench/run.js';
import { loadAddon } from '../../src/kernels/native/addon.js';
import { built, useNativeBackend } from '../native/helpers.js';

const describeNative = built ? describe : describe.skip;

describeNative('npm run bench -- --only=bf16compute (quick smoke check, native)', () => {
  useNativeBackend();

  it('reports the bf16-compute keys as finite positive numbers where the CPU has AVX512_BF16 (none elsewhere), leaves float32 compute on, no tensor growth', async () => {
    const result = await runBench({ quick: true, only: ['bf16compute'], log: () => {} });
    const keys = [
      'matmul_bf16_gflops', 'matmul_fp32_gflops', 'llama_small_prefill32_bf16compute_tok_s', 'llama_small_prefill32_fp32compute_tok_s',
      'llama_small_prefill32_int8_bf16compute_tok_s', 'llama_small_prefill32_bf16_bf16compute_tok_s', 'llama_small_logits_bf16compute_max_rel_err_int8',
      'train_student_loss_fp32compute', 'train_student_loss_bf16compute', 'train_student_step_bf16compute_ms',
      'mamba130m_prefill32_int8_bf16compute_tok_s', 'mamba130m_prefill32_bf16_fp32compute_tok_s',
      'bert_base_encode_bf16compute_tok_s', 'bert_base_encode_fp32compute_tok_s',
    ];
    const available = loadAddon().bf16Missing() === null;
    for (const key of keys) {
      if (available) expect(result[key] as number, key).toBeGreaterThan(0);
      else expect(result[key], key).toBeUndefined();
    }
    expect(Number.isFinite(result.matmul_bf16_gflops ?? 0)).toBe(true);
    if (available) expect(result.bf16compute_amx).toBe(loadAddon().amxAvailable() ? 1 : 0);
    // No peers were measured in this run, so no ratios to them.
    expect(Object.keys(result).filter((k) => k.endsWith('_vs_llama_cpp') || k.endsWith('_vs_onnxruntime'))).toEqual([]);
    expect(loadAddon().getMatmulPrecision()).toBe('float32');
    expect(result.backend).toBe(tf.getBackend());
    expect(result.tensors_after).toBe(result.tensors_before);
  }, 300_000);
});
