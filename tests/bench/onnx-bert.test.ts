import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { buildOnnxBert, loadOnnxRuntime, onnxBertSession } from '../../bench/onnx-bert.js';
import { AutoCausalLM, AutoEncoder } from '../../src/loaders/auto.js';
import type { EncoderModel } from '../../src/models/encoder.js';
import { disposeOutput } from '../../src/models/transformer.js';
import { fixture, ids, loadExpected } from '../helpers.js';

describe('bench/onnx-bert: Tessera BERT as an ONNX graph through onnxruntime-node', () => {
  it('resolves onnxruntime-node (installed with @huggingface/transformers)', async () => {
    const ort = await loadOnnxRuntime();
    expect(typeof ort?.InferenceSession.create).toBe('function');
  });

  for (const fused of [true, false]) {
    it(`reproduces Tessera's and HF's last hidden state on bert-tiny (${fused ? 'com.microsoft fused' : 'plain opset 17'} graph)`, async () => {
      const ort = (await loadOnnxRuntime())!;
      const expected = loadExpected('bert-tiny');
      const before = tf.memory().numTensors;
      const bert = (await AutoEncoder.fromDir(fixture('bert-tiny'))) as EncoderModel;
      const session = await onnxBertSession(ort, bert, { fused, threads: 1 });
      try {
        const theirs = await session.encode(expected.input_ids, expected.attention_mask, expected.token_type_ids);
        const [b, l, h] = [expected.input_ids.length, expected.input_ids[0]!.length, bert.embeddings.word.weight.shape[1]!];
        expect(theirs.dims).toEqual([b, l, h]);
        const [input, mask, types] = [ids(expected.input_ids), ids(expected.attention_mask!), ids(expected.token_type_ids!)];
        const out = bert.forward(input, { attentionMask: mask, tokenTypeIds: types });
        const mine = out.lastHiddenState.dataSync();
        disposeOutput(out);
        tf.dispose([input, mask, types]);
        const hf = expected.last_hidden_state.flat(2);
        let [vsTessera, vsHf] = [0, 0];
        for (let i = 0; i < mine.length; i++) {
          vsTessera = Math.max(vsTessera, Math.abs(mine[i]! - theirs.data[i]!));
          // Padded positions depend on the masking constant; HF's differs from Tessera's.
          const row = Math.floor(i / (l * h));
          const col = Math.floor(i / h) % l;
          if (expected.attention_mask![row]![col] === 1) vsHf = Math.max(vsHf, Math.abs(hf[i]! - theirs.data[i]!));
        }
        expect(vsTessera).toBeLessThan(1e-4);
        expect(vsHf).toBeLessThan(1e-4);
      } finally {
        await session.release();
        bert.dispose();
      }
      expect(tf.memory().numTensors).toBe(before);
    });
  }

  it('refuses a model without BERT embeddings, naming what it expected, and leaves no tensor', () => {
    const llama = AutoCausalLM.fromConfig({ model_type: 'llama', hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, num_key_value_heads: 1, intermediate_size: 32, vocab_size: 64 });
    const before = tf.memory().numTensors;
    expect(() => buildOnnxBert(llama as unknown as EncoderModel)).toThrow('buildOnnxBert: expected BERT embeddings (positions, token types and a LayerNorm)');
    expect(tf.memory().numTensors).toBe(before);
    llama.dispose();
  });

  it('refuses a BERT whose activation the graph does not have (only the erf GELU)', () => {
    const bert = AutoEncoder.fromConfig({ model_type: 'bert', hidden_size: 16, num_hidden_layers: 1, num_attention_heads: 2, intermediate_size: 32, vocab_size: 64, hidden_act: 'gelu_new' });
    const before = tf.memory().numTensors;
    expect(() => buildOnnxBert(bert as EncoderModel)).toThrow("buildOnnxBert: the graph has the exact (erf) GELU only, the model uses 'gelu_new'");
    expect(tf.memory().numTensors).toBe(before);
    bert.dispose();
  });
});
