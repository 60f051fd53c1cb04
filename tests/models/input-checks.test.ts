import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AutoCausalLM, AutoEncoder, IdOutOfRangeError, disposeOutput, type CausalLM, type EncoderModel } from '../../src/index.js';
import { fixture } from '../helpers.js';

// These run on every backend (wasm by default; TESSERA_BACKEND=native / cpu): the checks happen
// before any kernel, so the messages must be the same everywhere.
describe(`forward and generate input checks (backend ${tf.getBackend()})`, () => {
  const models: Record<string, CausalLM> = {};
  let bert: EncoderModel;
  beforeAll(async () => {
    for (const name of ['llama-tiny', 'mamba-tiny', 'jamba-tiny']) models[name] = (await AutoCausalLM.fromDir(fixture(name))) as CausalLM;
    bert = await AutoEncoder.fromDir(fixture('bert-tiny'));
    // Warm-up, so that backends' one-time caches do not count as leaks below.
    for (const lm of Object.values(models)) disposeOutput(lm.forward(tf.tensor2d([[1, 2]], undefined, 'int32')));
  });
  afterAll(() => {
    for (const lm of Object.values(models)) lm.dispose();
    bert.dispose();
  });

  for (const name of ['llama-tiny', 'mamba-tiny', 'jamba-tiny']) {
    it(`${name}: empty batches and sequences are refused with the shape, the same on every backend`, () => {
      const lm = models[name]!;
      for (const shape of [[1, 0], [3, 0], [0, 4], [0, 0]] as const) {
        const ids = tf.zeros([...shape], 'int32') as tf.Tensor2D;
        const before = tf.memory().numTensors;
        const expected = `inputIds has shape [${shape}]: forward needs at least one sequence of at least one token`;
        expect(() => lm.forward(ids)).toThrow(expected);
        expect(() => lm.forwardHidden(ids)).toThrow(`inputIds has shape [${shape}]: forwardHidden needs`);
        expect(() => lm.runWithCache(ids)).toThrow(expected);
        expect(tf.memory().numTensors).toBe(before);
        ids.dispose();
      }
      // generate: no prompts (batch 0), or an empty prompt (nothing to continue from).
      expect(() => lm.generate([], { maxNewTokens: 1 })).toThrow('promptIds must be a non-empty array');
      expect(() => lm.generate([[1, 2], []], { maxNewTokens: 1 })).toThrow('prompt 1 is empty; every prompt needs at least one token');
    });
  }

  it('the encoder refuses empty input the same way', () => {
    const ids = tf.zeros([2, 0], 'int32') as tf.Tensor2D;
    expect(() => bert.forward(ids)).toThrow('inputIds has shape [2,0]: forward needs at least one sequence of at least one token');
    ids.dispose();
  });

  it('position ids and token type ids must be int32; the message names the dtype', () => {
    const lm = models['llama-tiny']!;
    const ids = tf.tensor2d([[1, 2, 3]], undefined, 'int32');
    const floatPositions = tf.tensor2d([[0, 1.5, 2]]);
    const before = tf.memory().numTensors;
    expect(() => lm.forward(ids, { positionIds: floatPositions })).toThrow('positionIds must be int32, got float32');
    const floatTypes = tf.tensor2d([[0, 0, 1]]);
    expect(() => bert.forward(ids, { tokenTypeIds: floatTypes })).toThrow('tokenTypeIds must be int32, got float32');
    expect(tf.memory().numTensors).toBe(before + 1); // floatTypes only
    // int32 positions are fine.
    const positions = tf.tensor2d([[0, 1, 2]], undefined, 'int32');
    disposeOutput(lm.forward(ids, { positionIds: positions }));
    tf.dispose([ids, floatPositions, floatTypes, positions]);
  });

  it('input ids must be int32 and inside the vocabulary', () => {
    const lm = models['mamba-tiny']!;
    const vocab = lm.embeddings.word.count;
    const floats = tf.tensor2d([[1, 2]]);
    expect(() => lm.forward(floats as tf.Tensor2D)).toThrow('inputIds must be int32, got float32');
    for (const bad of [vocab, -1]) {
      const ids = tf.tensor2d([[1, bad]], undefined, 'int32');
      const before = tf.memory().numTensors;
      // Checked before the embedding lookup, so every backend says the same (GPUs would read zeros).
      expect(() => lm.forward(ids)).toThrow(new IdOutOfRangeError('inputIds', 0, 1, bad, vocab, 'vocabulary'));
      expect(() => lm.forward(ids)).toThrow(`inputIds[0, 1] is ${bad}, outside the vocabulary of ${vocab} (valid ids 0 to ${vocab - 1})`);
      expect(tf.memory().numTensors).toBe(before);
      ids.dispose();
      expect(() => lm.generate([[1, bad]], { maxNewTokens: 1 })).toThrow(`promptIds[0, 1] is ${bad}, outside the vocabulary of ${vocab} (valid ids 0 to ${vocab - 1})`);
    }
    floats.dispose();
  });
});
