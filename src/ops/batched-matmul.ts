import * as tf from '@tensorflow/tfjs-core';

/** Below this many multiply-adds per matrix, one batched call beats a call per matrix. */
const SPLIT_ABOVE = 1 << 16;

/**
 * `a [..., M, K] · b [..., K, N]` with equal leading dimensions. On the wasm backend a batched
 * matmul (leading size > 1) runs a slow generic loop, ~10× below the XNNPACK path that single
 * matrices take (docs/performance.md), so large products are done one matrix at a time there.
 * Other backends, and small products (decode steps), take one batched call.
 */
export function batchedMatMul(a: tf.Tensor, b: tf.Tensor): tf.Tensor {
  const [m, k] = a.shape.slice(-2) as [number, number];
  const n = b.shape[b.rank - 1]!;
  const lead = a.shape.slice(0, -2);
  const count = lead.reduce((x, y) => x * y, 1);
  if (count === 1 || m * k * n < SPLIT_ABOVE || tf.getBackend() !== 'wasm') return tf.matMul(a, b);
  return tf.tidy(() => {
    const a3 = a.reshape([count, m, k]);
    const b3 = b.reshape([count, k, n]);
    // gather, not unstack/slice: those copy the whole source tensor once per piece on wasm.
    const products: tf.Tensor[] = [];
    for (let i = 0; i < count; i++) {
      const index = tf.scalar(i, 'int32');
      products.push(tf.matMul(tf.gather(a3, index) as tf.Tensor2D, tf.gather(b3, index) as tf.Tensor2D));
    }
    return tf.stack(products).reshape([...lead, m, n]);
  });
}
