import * as tf from '@tensorflow/tfjs-core';
import { describe, expect, it } from 'vitest';
import { AutoCausalLM, AutoEncoder, disposeOutput } from '../../src/index.js';
import { fixture, ids, loadExpected } from '../helpers.js';

describe('repeated forward calls do not leak tensors', () => {
  for (const name of ['llama-tiny', 'mamba-tiny'] as const) {
    it(name, async () => {
      const expected = loadExpected(name);
      const model = await AutoCausalLM.fromDir(fixture(name));
      const input = ids(expected.input_ids);
      disposeOutput(model.forward(input)); // warm-up: backends may cache kernels
      const before = tf.memory().numTensors;
      for (let i = 0; i < 3; i++) disposeOutput(model.forward(input));
      expect(tf.memory().numTensors).toBe(before);
      input.dispose();
      model.dispose();
    });
  }

  it('bert-tiny with masks and the pooler', async () => {
    const expected = loadExpected('bert-tiny');
    const model = await AutoEncoder.fromDir(fixture('bert-tiny'));
    const [input, mask, types] = [ids(expected.input_ids), ids(expected.attention_mask!), ids(expected.token_type_ids!)];
    const run = () => disposeOutput(model.forward(input, { attentionMask: mask, tokenTypeIds: types }));
    run();
    const before = tf.memory().numTensors;
    for (let i = 0; i < 3; i++) run();
    expect(tf.memory().numTensors).toBe(before);
    tf.dispose([input, mask, types]);
    const params = model.namedParameters().length;
    const withModel = tf.memory().numTensors;
    model.dispose();
    expect(tf.memory().numTensors).toBe(withModel - params);
  });
});
