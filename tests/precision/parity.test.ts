import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';

import { AutoCausalLM, AutoEncoder, AutoMaskedLM, disposeOutput, type CausalLM } from '../../src/index.js';
import { weightBytes } from '../../src/layers/packed-weights.js';
import { packedDtypeOf } from '../../src/ops/packed-weights.js';
import { fixture, loadExpected } from '../helpers.js';
import { built, useNativeBackend } from '../native/helpers.js';

/**
 * Models loaded with { dtype } against the same model in float32, on every fixture, on the native
 * backend (weights held packed). docs/precision.md explains the bounds:
 * - bfloat16 / float16: max |y − y_f32| <= 32 u · max |y_f32| over the fixture's outputs, u the
 *   format's unit roundoff (2^-9 for bfloat16's 8-bit significand, 2^-11 for float16's 11-bit);
 *   measured worst 19 u (jamba-tiny, bfloat16).
 * - int8: top-1 agreement with float32 along float32's greedy continuation (32 tokens, teacher
 *   forced), at least 27 of 32 per fixture and 90% over all; measured 28, 32, 32, 30 of 32.
 */
const describeNative = built ? describe : describe.skip;

type Loader = { fromDir(dir: string, options?: object): Promise<{ forward(ids: tf.Tensor2D, options?: object): object; dispose(): void }> };
const FIXTURES: [string, Loader][] = [
  ['bert-tiny', AutoEncoder],
  ['bert-mlm-tiny', AutoMaskedLM],
  ['llama-tiny', AutoCausalLM],
  ['mamba-tiny', AutoCausalLM],
  ['mamba-ssm-tiny', AutoCausalLM],
  ['jamba-tiny', AutoCausalLM],
];
const UNIT_ROUNDOFF = { bfloat16: 2 ** -9, float16: 2 ** -11 } as const;

/** The fixture's main output (logits, else the last hidden state) on its own inputs. */
function output(model: Awaited<ReturnType<Loader['fromDir']>>, name: string): Float32Array {
  const e = loadExpected(name) as ReturnType<typeof loadExpected> & { attention_mask?: number[][]; token_type_ids?: number[][] };
  return tf.tidy(() => {
    const options: Record<string, tf.Tensor> = {};
    if (e.attention_mask !== undefined) options.attentionMask = tf.tensor2d(e.attention_mask, undefined, 'int32');
    if (e.token_type_ids !== undefined) options.tokenTypeIds = tf.tensor2d(e.token_type_ids, undefined, 'int32');
    const out = model.forward(tf.tensor2d(e.input_ids, undefined, 'int32'), options) as { logits?: tf.Tensor; lastHiddenState: tf.Tensor };
    const y = (out.logits ?? out.lastHiddenState).dataSync() as Float32Array;
    // Padded positions' outputs are arbitrary: compare real tokens only.
    if (e.attention_mask === undefined) return Float32Array.from(y);
    const perToken = y.length / e.attention_mask.flat().length;
    return Float32Array.from(y.filter((_, i) => e.attention_mask!.flat()[Math.floor(i / perToken)] === 1));
  });
}

/** Argmax of each position's logits along float32's greedy continuation of the fixture's prompt. */
function greedyPathTop1(lm: CausalLM, path: number[], promptLength: number): number[] {
  return tf.tidy(() => {
    const logits = lm.forward(tf.tensor2d([path], undefined, 'int32')).logits;
    return Array.from(logits.argMax(-1).dataSync()).slice(promptLength - 1, path.length - 1);
  });
}

describeNative('dtype parity with float32 on every fixture (native, packed weights)', () => {
  useNativeBackend();

  for (const [name, loader] of FIXTURES) {
    it(`${name}: bfloat16 and float16 within 32 u of float32, fewer bytes held, nothing leaks`, async () => {
      const start = tf.memory().numTensors;
      const base = await loader.fromDir(fixture(name));
      const reference = output(base, name);
      const baseBytes = weightBytes(base as never);
      let scale = 0;
      for (const v of reference) scale = Math.max(scale, Math.abs(v));
      for (const dtype of ['bfloat16', 'float16'] as const) {
        const model = await loader.fromDir(fixture(name), { dtype });
        const packed = (model as unknown as { namedParameters(): [string, tf.Variable][] }).namedParameters().filter(([, p]) => packedDtypeOf(p) === dtype);
        expect(packed.length, 'packed weights').toBeGreaterThan(0);
        const y = output(model, name);
        let worst = 0;
        for (let i = 0; i < y.length; i++) worst = Math.max(worst, Math.abs(y[i]! - reference[i]!));
        expect(worst, `${dtype}: max |Δ| over max |y| = ${scale}`).toBeLessThanOrEqual(32 * UNIT_ROUNDOFF[dtype] * scale);
        expect(worst, `${dtype} differs from float32 at all`).toBeGreaterThan(0);
        expect(weightBytes(model as never)).toBeLessThan(baseBytes);
        model.dispose();
      }
      base.dispose();
      expect(tf.memory().numTensors).toBe(start);
    });
  }

  it('a packed Mamba or attention model observed by hooks (op-by-op path) computes what its fused kernels compute', async () => {
    const start = tf.memory().numTensors;
    for (const [name, tap] of [['mamba-tiny', /^layers\.0\.mixer\.delta$/], ['jamba-tiny', /^layers\.1\.mixer\.probs$/]] as const) {
      const lm = await AutoCausalLM.fromDir(fixture(name), { dtype: 'bfloat16' });
      const ids = tf.tensor2d([loadExpected(name).greedy_prompt_ids!], undefined, 'int32');
      const fused = tf.tidy(() => Float32Array.from(lm.forward(ids).logits.dataSync()));
      const { output, cache } = lm.runWithCache(ids, { names: tap });
      expect(cache.names().length).toBe(1);
      const hooked = Float32Array.from(output.logits.dataSync());
      let worst = 0;
      for (let i = 0; i < fused.length; i++) worst = Math.max(worst, Math.abs(fused[i]! - hooked[i]!));
      expect(worst, name).toBeLessThan(1e-4);
      disposeOutput(output);
      cache.dispose();
      ids.dispose();
      lm.dispose();
    }
    expect(tf.memory().numTensors).toBe(start);
  });

  it('int8: top-1 along float32 greedy continuations agrees at >= 27 of 32 steps per fixture and >= 90% overall', async () => {
    const start = tf.memory().numTensors;
    let agree = 0;
    let total = 0;
    for (const name of ['llama-tiny', 'mamba-tiny', 'mamba-ssm-tiny', 'jamba-tiny']) {
      const prompt = loadExpected(name).greedy_prompt_ids!;
      const base = await AutoCausalLM.fromDir(fixture(name));
      const path = [...prompt, ...base.generate([prompt], { maxNewTokens: 32 })[0]!];
      const reference = greedyPathTop1(base, path, prompt.length);
      expect(reference, 'float32 forward agrees with its own greedy generation').toEqual(path.slice(prompt.length));
      const int8 = await AutoCausalLM.fromDir(fixture(name), { dtype: 'int8' });
      const top1 = greedyPathTop1(int8, path, prompt.length);
      const same = top1.filter((t, i) => t === reference[i]).length;
      expect(same, `${name}: int8 top-1 agreement`).toBeGreaterThanOrEqual(27);
      agree += same;
      total += reference.length;
      expect(weightBytes(int8)).toBeLessThan(weightBytes(base));
      int8.dispose();
      base.dispose();
    }
    expect(agree / total).toBeGreaterThanOrEqual(0.9);
    expect(tf.memory().numTensors).toBe(start);
  });
});
