import * as tf from '@tensorflow/tfjs-core';
import '@tensorflow/tfjs-core/dist/register_all_gradients.js';
import { beforeAll, describe, expect, it } from 'vitest';

import { built, expectClose, randoms, runOn, selectNativeOrExpectClearError } from './helpers.js';

/** The same op on the native and the cpu backend, from the same input data. */
async function parity(fn: () => tf.Tensor, atol = 1e-4): Promise<void> {
  const native = await runOn('native', fn);
  const cpu = await runOn('cpu', fn);
  expect(native.shape).toEqual(cpu.shape);
  expectClose(native.values, cpu.values, atol);
  await tf.setBackend('native');
}

const tensor = (shape: number[], seed: number): tf.Tensor => tf.tensor(randoms(tf.util.sizeFromShape(shape), seed), shape);

/** Plain-JS batched matmul with numpy batch broadcasting: the reference where cpu has none. */
function referenceMatMul(a: tf.Tensor, b: tf.Tensor): { shape: number[]; values: Float32Array } {
  const [m, k] = a.shape.slice(-2);
  const n = b.shape[b.shape.length - 1];
  const outer = tf.broadcast_util.assertAndGetBroadcastShape(a.shape.slice(0, -2), b.shape.slice(0, -2));
  const av = a.dataSync();
  const bv = b.dataSync();
  const batches = tf.util.sizeFromShape(outer);
  const values = new Float32Array(batches * m * n);
  const index = (shape: number[], flat: number): number => {
    // Map a flat index of `outer` to the flat batch index of an operand with batch dims `shape`.
    let at = 0;
    let stride = 1;
    for (let d = outer.length - 1, rest = flat; d >= 0; d--) {
      const coord = rest % outer[d];
      rest = Math.floor(rest / outer[d]);
      const sd = d - (outer.length - shape.length);
      if (sd >= 0) {
        if (shape[sd] !== 1) at += coord * stride;
        stride *= shape[sd];
      }
    }
    return at;
  };
  for (let i = 0; i < batches; i++) {
    const ai = index(a.shape.slice(0, -2), i) * m * k;
    const bi = index(b.shape.slice(0, -2), i) * k * n;
    for (let r = 0; r < m; r++) {
      for (let c = 0; c < n; c++) {
        let s = 0;
        for (let j = 0; j < k; j++) s += av[ai + r * k + j] * bv[bi + j * n + c];
        values[(i * m + r) * n + c] = s;
      }
    }
  }
  return { shape: [...outer, m, n], values };
}

describe('native backend: matmul', () => {
  it('is selectable, or fails with a build hint where the addon is not built', async () => {
    await selectNativeOrExpectClearError();
  });

  describe.runIf(built)('parity with the cpu backend', () => {
    beforeAll(async () => {
      await tf.setBackend('native');
    });

    for (const transposeA of [false, true]) {
      for (const transposeB of [false, true]) {
        it(`2-D, transposeA=${transposeA} transposeB=${transposeB}`, async () => {
          const [m, k, n] = [7, 13, 5];
          await parity(() =>
            tf.matMul(tensor(transposeA ? [k, m] : [m, k], 1), tensor(transposeB ? [n, k] : [k, n], 2), transposeA, transposeB),
          );
        });
        it(`row and column vectors (gemv), transposeA=${transposeA} transposeB=${transposeB}`, async () => {
          const k = 33;
          const a = (m: number): tf.Tensor => tensor(transposeA ? [k, m] : [m, k], 3);
          const b = (n: number): tf.Tensor => tensor(transposeB ? [n, k] : [k, n], 4);
          await parity(() => tf.matMul(a(1), b(9), transposeA, transposeB));
          await parity(() => tf.matMul(a(9), b(1), transposeA, transposeB));
          await parity(() => tf.matMul(a(1), b(1), transposeA, transposeB));
        });
        it(`batched with transposes, transposeA=${transposeA} transposeB=${transposeB}`, async () => {
          const [m, k, n] = [4, 6, 3];
          await parity(() =>
            tf.matMul(
              tensor(transposeA ? [2, 3, k, m] : [2, 3, m, k], 5),
              tensor(transposeB ? [2, 3, n, k] : [2, 3, k, n], 6),
              transposeA,
              transposeB,
            ),
          );
          // Only one side batched, in either order (the [batch*m, k] GEMM fold for the first).
          await parity(() => tf.matMul(tensor(transposeA ? [5, k, m] : [5, m, k], 7), tensor(transposeB ? [n, k] : [k, n], 8), transposeA, transposeB));
          await parity(() => tf.matMul(tensor(transposeA ? [k, m] : [m, k], 9), tensor(transposeB ? [5, n, k] : [5, k, n], 10), transposeA, transposeB));
        });
      }
    }

    it('broadcasts batch dims of different ranks like the cpu backend', async () => {
      await parity(() => tf.matMul(tensor([2, 3, 4, 5], 11), tensor([3, 5, 2], 12)));
      await parity(() => tf.matMul(tensor([1, 4, 5], 13), tensor([2, 3, 5, 2], 14)));
    });

    it('broadcasts [2,1] against [1,3] batch dims to [2,3] (numpy rules)', async () => {
      await tf.setBackend('native');
      const a = tensor([2, 1, 4, 5], 15);
      const b = tensor([1, 3, 5, 2], 16);
      const out = tf.matMul(a, b);
      const ref = referenceMatMul(a, b);
      expect(out.shape).toEqual(ref.shape);
      expectClose(out.dataSync(), ref.values);
      tf.dispose([a, b, out]);
    });

    it('handles an empty inner dimension and empty outputs', async () => {
      await parity(() => tf.matMul(tf.zeros([3, 0]), tf.zeros([0, 4])));
      await parity(() => tf.matMul(tf.zeros([0, 5]), tensor([5, 4], 17)));
    });

    it('keeps int32 matmul on the cpu kernel', async () => {
      await parity(() => tf.matMul(tf.tensor2d([[1, 2], [3, 4]], undefined, 'int32'), tf.tensor2d([[5], [6]], undefined, 'int32')));
    });

    it('rejects mismatched inner dimensions with the tfjs message', async () => {
      await tf.setBackend('native');
      expect(() => tf.matMul(tf.zeros([2, 3]), tf.zeros([4, 2]))).toThrow(/inner shapes \(3\) and \(4\)/);
    });

    it('matches cpu gradients', async () => {
      const grads = (): tf.Tensor => {
        const [ga, gb] = tf.grads((a: tf.Tensor, b: tf.Tensor) => tf.sum(tf.square(tf.matMul(a, b, false, true))))([
          tensor([3, 4], 18),
          tensor([5, 4], 19),
        ]);
        return tf.concat([tf.reshape(ga, [-1]), tf.reshape(gb, [-1])]);
      };
      await parity(grads);
    });
  });

  describe.runIf(built)('fused matmul (bias + activation) parity with the cpu backend', () => {
    const activations = ['linear', 'relu', 'elu', 'relu6', 'leakyrelu', 'sigmoid', 'prelu'] as const;
    for (const activation of activations) {
      it(`bias per column, ${activation}`, async () => {
        for (const [transposeA, transposeB] of [[false, false], [true, true]]) {
          await parity(() =>
            tf.fused.matMul({
              a: tf.mul(tensor(transposeA ? [2, 6, 4] : [2, 4, 6], 20), 3),
              b: tensor(transposeB ? [5, 6] : [6, 5], 21),
              transposeA,
              transposeB,
              bias: tensor([5], 22),
              activation,
              leakyreluAlpha: 0.3,
              preluActivationWeights: activation === 'prelu' ? tensor([5], 23) : undefined,
            }),
          );
        }
      });
    }

    it('scalar bias and prelu weights, and a row-vector (m = 1) product', async () => {
      await parity(() =>
        tf.fused.matMul({ a: tensor([1, 6], 24), b: tensor([6, 5], 25), bias: tf.scalar(0.5), activation: 'prelu', preluActivationWeights: tf.scalar(0.1) }),
      );
    });

    it('a row times a transposed weight big enough to split over the thread pool (decode\'s GEMV), with bias', async () => {
      // Odd sizes: rows left over from the four-row loop and a tail past the last full vector.
      const [k, n] = [777, 3001];
      await parity(() => tf.fused.matMul({ a: tensor([1, k], 30), b: tensor([n, k], 31), transposeB: true, bias: tensor([n], 32) }));
      await parity(() => tf.fused.matMul({ a: tensor([1, k], 33), b: tensor([n, k], 34), transposeB: true, bias: tf.scalar(-0.25), activation: 'relu' }));
      await parity(() => tf.matMul(tensor([1, k], 35), tensor([n, k], 36), false, true));
    });

    it('bias and prelu weights that broadcast along rows take the general epilogue', async () => {
      await parity(() =>
        tf.fused.matMul({ a: tensor([4, 6], 26), b: tensor([6, 5], 27), bias: tensor([4, 1], 28), activation: 'relu' }),
      );
      await parity(() =>
        tf.fused.matMul({
          a: tensor([3, 4, 6], 29),
          b: tensor([6, 5], 30),
          bias: tensor([3, 4, 5], 31),
          activation: 'prelu',
          preluActivationWeights: tensor([4, 5], 32),
        }),
      );
    });

    it('matches cpu gradients through bias and activation', async () => {
      const grads = (): tf.Tensor => {
        const f = (a: tf.Tensor, b: tf.Tensor, bias: tf.Tensor): tf.Tensor =>
          tf.sum(tf.square(tf.fused.matMul({ a, b, bias, activation: 'relu' })));
        const g = tf.grads(f)([tensor([3, 4], 33), tensor([4, 5], 34), tensor([5], 35)]);
        return tf.concat(g.map((t) => tf.reshape(t, [-1])));
      };
      await parity(grads);
    });
  });
});
