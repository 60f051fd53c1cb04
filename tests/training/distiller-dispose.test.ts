// A Distiller between models of different widths owns a learned projection: disposing the
// distiller, its optimizer and the student returns tfjs to the tensor count it started from.
import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AutoDecoder, Distiller, registerGradients, type DecoderModel, type DistillBatch } from '../../src/index.js';
import { fixture } from '../helpers.js';

let teacher: DecoderModel;
beforeAll(async () => {
  await registerGradients();
  teacher = await AutoDecoder.fromDir(fixture('llama-tiny'));
});
afterAll(() => teacher.dispose());

const batch = (): DistillBatch => ({ inputIds: tf.tensor2d([[3, 9, 4, 17, 8, 5], [12, 6, 30, 2, 7, 11]], undefined, 'int32') });

describe('Distiller disposal', () => {
  it('with a projection (student 32 wide, teacher 64): nothing is left once everything is disposed', async () => {
    // Warm-up on a throw-away pair, so that backends' one-time caches do not count below.
    const warmStudent = AutoDecoder.fromConfig({ model_type: 'mamba', vocab_size: 512, hidden_size: 32, num_hidden_layers: 1, state_size: 8 }, { seed: 2 });
    const warmOptimizer = tf.train.adam(0.01);
    const warm = new Distiller({ teacher, student: warmStudent, optimizer: warmOptimizer, hidden: { loss: 'cosine' } });
    await warm.train(() => batch(), { steps: 1 });
    warm.dispose();
    warmOptimizer.dispose();
    warmStudent.dispose();

    const start = tf.memory().numTensors;
    const student = AutoDecoder.fromConfig({ model_type: 'mamba', vocab_size: 512, hidden_size: 32, num_hidden_layers: 1, state_size: 8 }, { seed: 1 });
    const optimizer = tf.train.adam(0.01);
    const distiller = new Distiller({ teacher, student, optimizer, hidden: { loss: 'cosine' } });
    const held = batch();
    distiller.evaluate(held);
    expect(distiller.projection?.weight.shape).toEqual([64, 32]);
    await distiller.train(() => batch(), { steps: 2 });
    tf.dispose(held.inputIds);
    distiller.dispose();
    optimizer.dispose();
    student.dispose();
    expect(tf.memory().numTensors).toBe(start);
  });
});
