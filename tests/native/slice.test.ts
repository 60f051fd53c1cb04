import * as tf from '@tensorflow/tfjs-core';
import { beforeAll, describe, expect, it } from 'vitest';

import { built, randoms, runOn, selectNativeOrExpectClearError } from './helpers.js';

/** Slice and SplitV copy boxes of the input: the native results must equal the cpu kernels' exactly. */
async function same(fn: () => tf.Tensor | tf.Tensor[]): Promise<void> {
  const pieces = (backend: string) => runOn(backend, () => tf.concat((([] as tf.Tensor[]).concat(fn())).map((t) => t.reshape([-1]))));
  const native = await pieces('native');
  const cpu = await pieces('cpu');
  expect(Array.from(native.values)).toEqual(Array.from(cpu.values));
  await tf.setBackend('native');
}

const tensor = (shape: number[], seed: number, dtype: 'float32' | 'int32' = 'float32'): tf.Tensor =>
  tf.tensor(randoms(tf.util.sizeFromShape(shape), seed).map((v) => (dtype === 'int32' ? Math.round(v * 100) : v)), shape, dtype);

describe('native backend: slice and split', () => {
  it('is selectable, or fails with a build hint where the addon is not built', async () => {
    await selectNativeOrExpectClearError();
  });

  describe.runIf(built)('equal to the cpu kernels', () => {
    beforeAll(async () => {
      await tf.setBackend('native');
    });
    it('slices boxes of every rank, including empty and whole ones', async () => {
      await same(() => tensor([7], 1).slice([2], [3]));
      await same(() => tensor([4, 6], 2).slice([1, 2], [2, 3]));
      await same(() => tensor([2, 5, 6], 3).slice([1, 0, 3], [1, -1, 3]));
      await same(() => tensor([2, 3, 4, 5], 4).slice([0, 1, 1, 0], [2, 2, 3, 5]));
      await same(() => tensor([3, 4], 5).slice([1, 0], [0, 4]));
      await same(() => tensor([3, 4], 6, 'int32').slice([1, 1], [2, 2]));
    });
    it('splits along any axis, evenly or by sizes', async () => {
      await same(() => tf.split(tensor([1, 5, 8], 7), 2, -1));
      await same(() => tf.split(tensor([1, 5, 12], 8), [4, 2, 6], 2));
      await same(() => tf.split(tensor([6, 3], 9), [1, 5], 0));
      await same(() => tf.split(tensor([2, 6, 3], 10, 'int32'), 3, 1));
    });
  });
});
