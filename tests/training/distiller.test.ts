import * as tf from '@tensorflow/tfjs-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AutoCausalLM, AutoDecoder, Distiller, registerGradients, type CausalLM, type DecoderModel, type DistillBatch, type DistillOptions } from '../../src/index.js';
import { fixture } from '../helpers.js';

/**
 * Deterministic pseudo-random token batches (a tiny LCG, so runs are reproducible) over a small
 * vocabulary, so that a few steps see every token several times.
 */
function batchMaker(seed: number, vocab = 64, batch = 4, length = 10): () => DistillBatch {
  let state = seed;
  const next = (): number => {
    state = (state * 1103515245 + 12345) % 2 ** 31;
    return state;
  };
  return () => {
    const rows = Array.from({ length: batch }, () => Array.from({ length }, () => 3 + (next() % (vocab - 3))));
    return { inputIds: tf.tensor2d(rows, undefined, 'int32') };
  };
}

const disposeBatch = (b: DistillBatch): void => tf.dispose([b.inputIds, b.attentionMask, b.tokenTypeIds].filter((t) => t !== undefined));

let llama: DecoderModel;
beforeAll(async () => {
  await registerGradients();
  llama = await AutoDecoder.fromDir(fixture('llama-tiny'));
});
afterAll(() => llama.dispose());

describe('Distiller', () => {
  it('distils llama-tiny hidden states into a small Mamba student (cross-architecture)', async () => {
    const student = AutoDecoder.fromConfig({ model_type: 'mamba', vocab_size: 512, hidden_size: 32, num_hidden_layers: 1, state_size: 8 });
    const optimizer = tf.train.adam(0.01);
    // Cosine: the residual streams differ in scale (teacher variance ~2, fresh student ~1e-3), which
    // MSE would spend its first hundreds of steps on.
    const distiller = new Distiller({ teacher: llama, student, optimizer, hidden: { loss: 'cosine' } });
    expect(distiller.layerMap).toEqual([[0, 1]]);
    const heldOut = batchMaker(7)();
    const teacherWeight = llama.layers.items[1]!.mixer.namedParameters()[0]![1];
    const teacherBefore = Array.from(teacherWeight.dataSync());

    const before = distiller.evaluate(heldOut);
    // Hidden sizes differ (32 vs 64): a learned projection was created and is trained too.
    expect(distiller.projection?.weight.shape).toEqual([64, 32]);
    expect(distiller.trainableVariables()).toContain(distiller.projection!.weight);

    const makeBatch = batchMaker(1);
    const history = await distiller.train(makeBatch, { steps: 2 });
    const tensorsAfterWarmup = tf.memory().numTensors; // Adam's slots now exist
    history.push(...(await distiller.train(makeBatch, { steps: 38 })));
    expect(tf.memory().numTensors).toBe(tensorsAfterWarmup);
    const after = distiller.evaluate(heldOut);

    expect(history).toHaveLength(40);
    expect(history.every((h) => Number.isFinite(h.loss) && h.hidden === h.loss)).toBe(true);
    expect(after.hidden!).toBeLessThan(0.7 * before.hidden!);
    // The teacher is frozen.
    expect(Array.from(teacherWeight.dataSync())).toEqual(teacherBefore);

    disposeBatch(heldOut);
    distiller.dispose();
    optimizer.dispose();
    student.dispose();
  });

  it('distils logits (KL, T²) between two Llamas', async () => {
    const teacher: CausalLM = await AutoCausalLM.fromDir(fixture('llama-tiny'));
    const config = { model_type: 'llama', vocab_size: 512, hidden_size: 64, num_hidden_layers: 1, num_attention_heads: 4, num_key_value_heads: 2, intermediate_size: 64 };
    // Seeded, so that the drop asserted below is the same on every run.
    const student = AutoCausalLM.fromConfig(config, { seed: 1 });
    const optimizer = tf.train.adam(0.01);
    const distiller = new Distiller({
      teacher,
      student,
      optimizer,
      hidden: false,
      logits: { temperature: 2 },
    });
    const heldOut = batchMaker(3)();
    const before = distiller.evaluate(heldOut);
    expect(distiller.projection).toBeUndefined();
    await distiller.train(batchMaker(5), { steps: 40 });
    const after = distiller.evaluate(heldOut);
    expect(before.hidden).toBeUndefined();
    expect(before.attention).toBeUndefined();
    expect(before.loss).toBe(before.logits);
    // A 512-way distribution from scratch learns slowly; 40 steps give a clear, deterministic drop.
    expect(after.logits!).toBeLessThan(0.95 * before.logits!);
    disposeBatch(heldOut);
    optimizer.dispose();
    [teacher, student].forEach((m) => m.dispose());
  });

  it('a seed makes the projection between different widths start the same; without one it differs', async () => {
    const student = AutoDecoder.fromConfig({ model_type: 'mamba', vocab_size: 512, hidden_size: 32, num_hidden_layers: 1, state_size: 8 }, { seed: 1 });
    const batch = batchMaker(3)();
    const start = (seed?: number): number[] => {
      const optimizer = tf.train.sgd(0.1);
      const distiller = new Distiller({ teacher: llama, student, optimizer, seed });
      distiller.evaluate(batch); // creates the projection
      const values = Array.from(distiller.projection!.weight.dataSync());
      distiller.dispose();
      optimizer.dispose();
      return values;
    };
    const before = tf.memory().numTensors;
    expect(start(5)).toEqual(start(5));
    expect(start(5)).not.toEqual(start(6));
    expect(start()).not.toEqual(start());
    expect(tf.memory().numTensors).toBe(before);
    disposeBatch(batch);
    student.dispose();
  });

  it('rejects impossible setups with clear errors', async () => {
    const mambaStudent = AutoDecoder.fromConfig({ model_type: 'mamba', vocab_size: 512, hidden_size: 32, num_hidden_layers: 1 });
    const optimizer = tf.train.sgd(0.1);
    expect(() => new Distiller({ teacher: llama, student: mambaStudent, optimizer, attention: {} })).toThrow(
      /the student has no point layers\.0\.mixer\.scores \(is its mixer attention\?\)/,
    );
    expect(() => new Distiller({ teacher: llama, student: mambaStudent, optimizer, layerMap: [[0, 5]] })).toThrow(/teacher layer 5 does not exist/);
    expect(() => new Distiller({ teacher: llama, student: mambaStudent, optimizer, hidden: false })).toThrow(/every loss term is off/);
    const misspelt = (extra: Record<string, unknown>) => new Distiller({ teacher: llama, student: mambaStudent, optimizer, ...extra } as unknown as DistillOptions);
    expect(() => misspelt({ layermap: [[0, 0]] })).toThrow("Distiller options: unknown key 'layermap'; did you mean 'layerMap'?");
    expect(() => misspelt({ logits: { temprature: 2 } })).toThrow("Distiller options logits: unknown key 'temprature'; did you mean 'temperature'?");
    expect(() => misspelt({ hidden: { weigth: 1 } })).toThrow("Distiller options hidden: unknown key 'weigth'; did you mean 'weight'?");
    expect(() => misspelt({ attention: { pont: 'scores' } })).toThrow("Distiller options attention: unknown key 'pont'; did you mean 'point'?");
    const logits = new Distiller({ teacher: llama, student: mambaStudent, optimizer, hidden: false, logits: {} });
    const batch = batchMaker(2)();
    const count = tf.memory().numTensors;
    expect(() => logits.step(batch)).toThrow(/teacher produces no logits/);
    expect(tf.memory().numTensors).toBe(count);
    await expect(logits.train([batch], { step: 1 } as never)).rejects.toThrow("Distiller.train options: unknown key 'step'; did you mean 'steps'?");
    // Mismatches only a forward reveals are caught before the first step, without leaking.
    const lmTeacher = await AutoCausalLM.fromDir(fixture('llama-tiny'));
    const noLogits = new Distiller({ teacher: lmTeacher, student: mambaStudent, optimizer, logits: {} });
    const before = tf.memory().numTensors;
    expect(() => noLogits.step(batch)).toThrow(/the student produces no logits/);
    expect(noLogits.projection).toBeUndefined();
    expect(tf.memory().numTensors).toBe(before);
    disposeBatch(batch);
    lmTeacher.dispose();
    mambaStudent.dispose();
  });
});
