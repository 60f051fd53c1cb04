import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';

import { built, expectClose, randoms, runOn, selectNativeOrExpectClearError } from './helpers.js';

async function parity(fn: () => tf.Tensor, atol = 1e-6, rtol = 2e-6): Promise<void> {
  const native = await runOn('native', fn);
  const cpu = await runOn('cpu', fn);
  expect(native.shape).toEqual(cpu.shape);
  expectClose(native.values, cpu.values, atol, rtol);
  await tf.setBackend('native');
}

const tensor = (shape: number[], seed: number, scale = 1): tf.Tensor =>
  tf.tensor(randoms(tf.util.sizeFromShape(shape), seed).map((v) => v * scale), shape);

/** Values across the range, with the edge cases each op must treat as the cpu backend does. */
const SPECIAL = [0, -0, 1e-8, -1e-8, 0.3, -0.7, 5, -5, 30, -30, 90, -90, 100, -100, Infinity, -Infinity, NaN];

describe('native backend: elementwise, softmax, transpose, reductions', () => {
  it('is selectable, or fails with a build hint where the addon is not built', async () => {
    await selectNativeOrExpectClearError();
  });

  describe.runIf(built)('parity with the cpu backend', () => {
    beforeAll(async () => {
      await tf.setBackend('native');
    });

    const pairs: Array<[number[], number[]]> = [
      [[2, 3, 4], [2, 3, 4]],
      [[2, 3, 4], [4]],
      [[4], [2, 3, 4]],
      [[2, 1, 4], [1, 3, 1]],
      [[3, 1], [1, 4]],
      [[], [2, 3]],
      [[2, 3], []],
      [[1, 1, 5], [5]],
      [[0, 3], [3]],
      [[], []],
      [[1, 1], [1]],
      // Rank 9 with alternating broadcasts: too many dims for the native loop, cpu takes it.
      [[2, 1, 2, 1, 2, 1, 2, 1, 2], [1, 2, 1, 2, 1, 2, 1, 2, 1]],
    ];
    const binaries: Array<[string, (a: tf.Tensor, b: tf.Tensor) => tf.Tensor]> = [
      ['add', tf.add],
      ['sub', tf.sub],
      ['mul', tf.mul],
      ['div', tf.div],
      ['squaredDifference', tf.squaredDifference],
    ];
    for (const [name, op] of binaries) {
      it(`${name} with broadcasting`, async () => {
        for (const [sa, sb] of pairs) await parity(() => op(tensor(sa, 1, 3), tensor(sb, 2)));
      });
    }

    it('int32 binary ops stay on the cpu kernels', async () => {
      await parity(() => tf.add(tf.tensor1d([1, 2, 3], 'int32'), tf.tensor1d([4, 5, 6], 'int32')));
      await parity(() => tf.mul(tf.tensor2d([[1], [2]], undefined, 'int32'), tf.tensor1d([4, 5, 6], 'int32')));
    });

    const unaries: Array<[string, (x: tf.Tensor) => tf.Tensor]> = [
      ['exp', tf.exp],
      ['log', tf.log],
      ['sigmoid', tf.sigmoid],
      ['tanh', tf.tanh],
      ['erf', tf.erf],
      ['sqrt', tf.sqrt],
      ['rsqrt', tf.rsqrt],
      ['square', tf.square],
      ['neg', tf.neg],
      ['softplus', tf.softplus],
    ];
    for (const [name, op] of unaries) {
      it(`${name} over the range and at edge values`, async () => {
        await parity(() => op(tf.concat([tensor([500], 3, 12), tf.tensor(SPECIAL)])), 1e-6, 4e-6);
      });
    }

    it('softmax over the last dim, stable for large logits', async () => {
      await parity(() => tf.softmax(tensor([3, 5, 17], 4, 50)));
      await parity(() => tf.softmax(tf.tensor2d([[0, -Infinity, 1], [1000, 1000, -1000]])));
    });

    it('transpose for several permutations', async () => {
      const x = tensor([2, 3, 4, 5, 2], 5);
      for (const perm of [[1, 0, 2, 3, 4], [0, 2, 1, 3, 4], [4, 3, 2, 1, 0], [0, 1, 2, 4, 3], [2, 0, 4, 1, 3]]) {
        await parity(() => tf.transpose(x, perm));
      }
      await parity(() => tf.transpose(tensor([3, 7], 6)));
      await parity(() => tf.transpose(tf.tensor2d([[1, 2, 3]], undefined, 'int32')));
    });

    it('a transpose that moves only size-1 dims shares the data, and outlives its input', async () => {
      for (const [shape, perm] of [[[4, 3], [0, 1]], [[2, 1, 3], [1, 0, 2]], [[1, 5, 1, 2], [2, 1, 0, 3]]] as [number[], number[]][]) {
        await parity(() => tf.transpose(tensor(shape, 7), perm));
      }
      await tf.setBackend('native');
      const x = tensor([2, 1, 3], 8);
      const expected = Array.from(x.dataSync());
      const before = tf.memory().numTensors;
      const y = tf.transpose(x, [1, 0, 2]);
      expect(tf.memory().numTensors).toBe(before + 1);
      x.dispose();
      expect(y.shape).toEqual([1, 2, 3]);
      expect(Array.from(y.dataSync())).toEqual(expected);
      y.dispose();
      expect(tf.memory().numTensors).toBe(before - 1);
    });

    it('gather along each axis, with nd indices, and the cpu index check', async () => {
      const x = tensor([4, 5, 6], 8);
      const idx = tf.tensor2d([[3, 0], [1, 1]], undefined, 'int32');
      for (const axis of [0, 1, 2, -1]) await parity(() => tf.gather(x, idx, axis));
      await parity(() => tf.gather(tf.tensor2d([[1, 2], [3, 4]], undefined, 'int32'), [1, 0]));
      await parity(() => tf.gather(tensor([2, 3, 4], 9), tf.tensor2d([[0, 2], [1, 1]], undefined, 'int32'), 1, 1));
      expect(() => tf.gather(x, [4])).toThrow('GatherV2: the index value 4 is not in [0, 3]');
    });

    const reductions: Array<[string, (x: tf.Tensor, axis?: number | number[], keepDims?: boolean) => tf.Tensor]> = [
      ['sum', tf.sum],
      ['mean', tf.mean],
      ['max', tf.max],
      ['min', tf.min],
    ];
    for (const [name, op] of reductions) {
      it(`${name} over inner, outer, several and all axes`, async () => {
        const x = tensor([3, 4, 5], 7, 4);
        for (const axis of [-1, 0, 1, [0, 2], [1, 2], undefined]) {
          for (const keepDims of [false, true]) await parity(() => op(x, axis, keepDims), 1e-5, 1e-5);
        }
        await parity(() => op(tf.tensor2d([[1, NaN, 3], [4, 5, 6]]), 1));
        await parity(() => op(tf.tensor2d([[1, 2], [3, 4]], undefined, 'int32'), 1));
      });
    }
  });
});
