import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, describe, expect, it, vi } from 'vitest';

import { initBackend } from '../../src/kernels/backend.js';
import { AutoCausalLM, AutoEncoder, packWeights, pipeline, saveModel, weightBytes } from '../../src/index.js';
import { packedDtypeOf, roundToDtype } from '../../src/ops/packed-weights.js';
import { fixture } from '../helpers.js';
import { built } from '../native/helpers.js';

const LLAMA = fixture('llama-tiny');
const ids = [[5, 17, 99, 3, 250, 41]];

/** Logits of `ids` on the active backend. */
function logits(lm: { forward(x: tf.Tensor2D): { logits: tf.Tensor } }): Float32Array {
  return tf.tidy(() => Float32Array.from(lm.forward(tf.tensor2d(ids, undefined, 'int32')).logits.dataSync()));
}

describe('the dtype load option', () => {
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  it('an unknown dtype fails before any file is read, naming the valid ones; an unknown key suggests dtype', async () => {
    const start = tf.memory().numTensors;
    await expect(AutoCausalLM.fromDir('/nonexistent', { dtype: 'bf16' as never })).rejects.toThrow(
      `AutoCausalLM options: unknown dtype "bf16"; use one of 'float32', 'bfloat16', 'float16', 'int8'`,
    );
    await expect(AutoEncoder.fromDir(fixture('bert-tiny'), { dtpye: 'int8' } as never)).rejects.toThrow(/dtpye.*did you mean 'dtype'/);
    expect(tf.memory().numTensors).toBe(start);
  });

  it('fromConfig takes dtype too: the same weights as building float32 and converting with packWeights', () => {
    const start = tf.memory().numTensors;
    const config = { model_type: 'llama', vocab_size: 64, hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 24 };
    expect(() => AutoCausalLM.fromConfig(config, { dtype: 'fp8' as never })).toThrow(`AutoCausalLM.fromConfig options: unknown dtype "fp8"`);
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const direct = AutoCausalLM.fromConfig(config, { seed: 3, dtype: 'int8' });
    const converted = AutoCausalLM.fromConfig(config, { seed: 3 });
    packWeights(converted, 'int8');
    warn.mockRestore();
    const byName = new Map(converted.namedParameters());
    for (const [name, p] of direct.namedParameters()) {
      expect(packedDtypeOf(p), name).toBe(packedDtypeOf(byName.get(name)!));
      expect(p.dataSync(), name).toEqual(byName.get(name)!.dataSync());
    }
    expect(weightBytes(direct)).toBe(weightBytes(converted));
    direct.dispose();
    converted.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  it(`on '${tf.getBackend()}' (no packed storage): weights rounded to the dtype in float32 with a one-line warning; outputs as with those rounded weights`, async () => {
    if (tf.getBackend() === 'native') return; // the native backend packs: parity.test.ts
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const start = tf.memory().numTensors;
    const base = await AutoCausalLM.fromDir(LLAMA);
    const bf16 = await AutoCausalLM.fromDir(LLAMA, { dtype: 'bfloat16' });
    expect(warn.mock.calls.flat().join('\n')).toMatch(/dtype 'bfloat16' is held packed only on the native backend.*rounded to bfloat16 and kept as float32/);
    warn.mockRestore();
    const byName = new Map(bf16.namedParameters());
    const summary = packWeights(base, 'bfloat16');
    expect(summary.packed).toBe(false);
    expect(summary.weights).toContain('layers.0.mixer.query.weight');
    expect(summary.weights).toContain('lmHead.weight');
    for (const [name, p] of base.namedParameters()) {
      expect(packedDtypeOf(p)).toBeUndefined();
      expect(byName.get(name)!.dataSync(), name).toEqual(p.dataSync());
    }
    expect(weightBytes(bf16)).toBe(4 * bf16.parameterCount());
    bf16.dispose();
    base.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  it('pipelines pass dtype to the model: bfloat16 feature vectors within 32 u of float32', async () => {
    const start = tf.memory().numTensors;
    const texts = ['the cat sat on the mat', 'a dog'];
    const warn = vi.spyOn(console, 'warn').mockImplementation(() => {});
    const f32 = await pipeline('feature-extraction', fixture('bert-tiny'));
    const bf16 = await pipeline('feature-extraction', fixture('bert-tiny'), { dtype: 'bfloat16' });
    warn.mockRestore();
    await expect(pipeline('feature-extraction', fixture('bert-tiny'), { dtype: 'int4' as never })).rejects.toThrow(/unknown dtype "int4"/);
    const [a, b] = [await f32(texts, { pooling: 'none' }), await bf16(texts, { pooling: 'none' })];
    const flatA = a.flat(2);
    const flatB = b.flat(2);
    const scale = Math.max(...flatA.map(Math.abs));
    const worst = Math.max(...flatA.map((v, i) => Math.abs(v - flatB[i]!)));
    expect(worst).toBeGreaterThan(0);
    expect(worst).toBeLessThanOrEqual(32 * 2 ** -9 * scale);
    f32.dispose();
    bf16.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  it('saving a packed (or rounded) model writes float32 values that reload to the same outputs', async () => {
    const start = tf.memory().numTensors;
    const int8 = await AutoCausalLM.fromDir(LLAMA, { dtype: 'int8' });
    const dir = mkdtempSync(join(tmpdir(), 'tessera-precision-'));
    dirs.push(dir);
    await saveModel(int8, dir, { format: 'hf' });
    const reloaded = await AutoCausalLM.fromDir(dir);
    const query = reloaded.namedParameters().find(([n]) => n === 'layers.0.mixer.query.weight')![1];
    expect(packedDtypeOf(query)).toBeUndefined();
    const values = query.dataSync() as Float32Array;
    // The saved values are already int8 steps: quantising them again changes nothing.
    expect(roundToDtype(values, query.shape[0]!, query.shape[1]!, 'int8')).toEqual(values);
    const a = logits(int8);
    const b = logits(reloaded);
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThan(1e-4);
    int8.dispose();
    reloaded.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });

  it.runIf(built)('on native: weights held packed, bytes reported, training through them fails clearly', async () => {
    const previous = tf.getBackend();
    await initBackend({ backend: 'native' });
    try {
      const base = await AutoCausalLM.fromDir(LLAMA);
      const bf16 = await AutoCausalLM.fromDir(LLAMA, { dtype: 'bfloat16' });
      const params = bf16.namedParameters();
      const packed = params.filter(([, p]) => packedDtypeOf(p) === 'bfloat16').map(([n]) => n);
      expect(packed).toContain('layers.1.ffn.gate.weight');
      expect(packed).toContain('embeddings.word.weight');
      expect(packed).not.toContain('layers.0.mixerNorm.weight');
      const packedSize = params.filter(([n]) => packed.includes(n)).reduce((s, [, p]) => s + p.size, 0);
      expect(weightBytes(bf16)).toBe(weightBytes(base) - 2 * packedSize);
      const trainable = bf16.namedParameters().map(([, p]) => p);
      const loss = (): tf.Scalar => tf.tidy(() => bf16.forward(tf.tensor2d(ids, undefined, 'int32')).logits.mean() as tf.Scalar);
      // The count is not compared right after this throw: tfjs keeps the tensors that tf.customGrad
      // saved for the backward pass (the fused norm before the first projection) when the recorded
      // function throws, whatever the error. kernels.test.ts checks the op's own throw leaks nothing.
      expect(() => tf.variableGrads(loss, trainable)).toThrow(/held as bfloat16 \(loaded with \{ dtype: 'bfloat16' \}\) and cannot be trained/);
      bf16.dispose();
      base.dispose();
    } finally {
      await tf.setBackend(previous);
    }
  });
});
