import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';

import { FUSED } from '../../src/kernels/contract.js';
import { adamUpdate, type AdamStep } from '../../src/ops/adam.js';
import { registerGradients } from '../../src/training/gradients.js';

/** Σ of x's rows per segment, in plain JS: TF's UnsortedSegmentSum, ids out of range dropped. */
function referenceSegmentSum(x: number[][], ids: number[], segments: number): number[][] {
  const out = Array.from({ length: segments }, () => x[0]!.map(() => 0));
  ids.forEach((id, i) => {
    if (id >= 0 && id < segments) x[i]!.forEach((value, j) => (out[id]![j]! += value));
  });
  return out;
}

describe.runIf(tf.getBackend() === 'wasm')('training kernels on wasm', () => {
  // Registers the wasm training kernels, and the gradients the gather test takes.
  beforeAll(() => registerGradients());

  describe('UnsortedSegmentSum (the gradient of gather)', () => {
    for (const [label, ids] of [
      ['ids in range, repeated (tfjs-wasm ScatterNd)', [3, 0, 3, 7, 3, 1, 0, 6]],
      ['ids out of range dropped (the JS loop)', [3, -1, 3, 8, 11, 1, 0, 6]],
    ] as const) {
      it(`sums each segment's rows: ${label}`, () => {
        const rows = Array.from({ length: ids.length }, (_, i) => Array.from({ length: 5 }, (_, j) => Math.sin(3 * i + j)));
        const x = tf.tensor2d(rows);
        const segmentIds = tf.tensor1d([...ids], 'int32');
        const before = tf.memory().numTensors;
        const out = tf.unsortedSegmentSum(x, segmentIds, 8);
        expect(tf.memory().numTensors).toBe(before + 1);
        expect(out.shape).toEqual([8, 5]);
        const expected = referenceSegmentSum(rows, [...ids], 8);
        (out.arraySync() as number[][]).flat().forEach((value, i) => expect(value).toBeCloseTo(expected.flat()[i]!, 5));
        tf.dispose([x, segmentIds, out]);
      });
    }

    it('keeps the trailing dimensions of x and sums int32 values', () => {
      const x = tf.tensor3d([[[1, 2]], [[3, 4]], [[5, 6]]], undefined, 'int32');
      const ids = tf.tensor1d([1, 1, 0], 'int32');
      const out = tf.unsortedSegmentSum(x, ids, 3);
      expect(out.dtype).toBe('int32');
      expect(out.arraySync()).toEqual([[[5, 6]], [[4, 6]], [[0, 0]]]);
      tf.dispose([x, ids, out]);
    });

    it("is the embedding lookup's gradient: each id's row gets the sum of its positions' upstream gradients", () => {
      const table = tf.randomNormal([10, 4], 0, 1, 'float32', 1);
      const ids = tf.tensor1d([2, 5, 2, 9], 'int32');
      const upstream = tf.randomNormal([4, 4], 0, 1, 'float32', 2);
      const grad = tf.grad((t: tf.Tensor) => tf.sum(tf.mul(tf.gather(t, ids), upstream)))(table);
      const expected = referenceSegmentSum(upstream.arraySync() as number[][], [2, 5, 2, 9], 10);
      (grad.arraySync() as number[][]).flat().forEach((value, i) => expect(value).toBeCloseTo(expected.flat()[i]!, 5));
      tf.dispose([table, ids, upstream, grad]);
    });
  });

  describe('TesseraAdam (one pass over the heap)', () => {
    it('is registered, so adam() takes it on wasm', () => {
      expect(tf.getKernel(FUSED.adam, 'wasm')).toBeDefined();
    });

    for (const weightDecay of [0, 0.1]) {
      it(`matches Adam computed in doubles${weightDecay ? ' with AdamW decay' : ''}, leaving only its three outputs`, () => {
        const size = 1000;
        const [w, g, m, v] = [1, 2, 3, 4].map((seed) => tf.randomUniform([20, size / 20], seed === 4 ? 0 : -1, 1, 'float32', seed));
        const step: AdamStep = { learningRate: 0.01, beta1: 0.9, beta2: 0.99, epsilon: 1e-7, correction1: 1 - 0.9 ** 3, correction2: 1 - 0.99 ** 3, weightDecay };
        const before = tf.memory().numTensors;
        const out = adamUpdate(w!, g!, m!, v!, step);
        expect(tf.memory().numTensors).toBe(before + 3);
        const [ws, gs, ms, vs] = [w, g, m, v].map((t) => t!.dataSync());
        const [w1, m1, v1] = out.map((t) => t.dataSync());
        for (let i = 0; i < size; i++) {
          const mi = 0.9 * ms![i]! + 0.1 * gs![i]!;
          const vi = 0.99 * vs![i]! + 0.01 * gs![i]! ** 2;
          const wi = ws![i]! * (1 - 0.01 * weightDecay) - (0.01 * (mi / step.correction1)) / (Math.sqrt(vi / step.correction2) + 1e-7);
          expect(m1![i]).toBeCloseTo(mi, 6);
          expect(v1![i]).toBeCloseTo(vi, 6);
          expect(w1![i]).toBeCloseTo(wi, 6);
        }
        tf.dispose([w!, g!, m!, v!, ...out]);
      });
    }

    it('names the input whose shape differs, and leaves no tensor behind', () => {
      const [w, m, v] = [0, 1, 2].map(() => tf.zeros([4, 3]));
      const g = tf.zeros([3, 4]);
      const before = tf.memory().numTensors;
      const step: AdamStep = { learningRate: 0.1, beta1: 0.9, beta2: 0.999, epsilon: 1e-8, correction1: 0.1, correction2: 0.001 };
      expect(() => adamUpdate(w!, g, m!, v!, step)).toThrow(/TesseraAdam: input 'gradient' must have shape \[4,3\], got \[3,4\]/);
      expect(tf.memory().numTensors).toBe(before);
      tf.dispose([w!, g, m!, v!]);
    });
  });
});
