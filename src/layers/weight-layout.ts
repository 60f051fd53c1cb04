import * as tf from '@tensorflow/tfjs-core';

/**
 * Weights in the layout the matmul kernels want.
 *
 * Linear weights keep PyTorch's `[out, in]` layout (checkpoints load as they are, hooks and
 * training see the familiar shape), but `x · Wᵀ` through `tf.matMul(x, W, false, true)` is 5-13×
 * slower than a plain `x · W` on the wasm backend (tfjs 4.22; docs/performance.md). So each
 * registered weight owns a transposed `[in, out]` copy. The copy is made when the weight is
 * registered, so the tensor count is fixed from construction on, and it is rebuilt when the
 * variable's data changes (`assign`, loading, an optimizer step), which tfjs signals by giving
 * the variable a new `dataId`.
 */
interface Entry {
  dataId: object;
  transposed: tf.Tensor2D;
}

const copies = new Map<tf.Variable, Entry>();

/** Give `weight` ([out, in]) a cached transposed copy; call once, from the owner's constructor. */
export function registerTransposed(weight: tf.Variable): void {
  if (copies.has(weight)) return;
  copies.set(weight, { dataId: weight.dataId, transposed: tf.keep(tf.transpose(weight as tf.Tensor2D)) });
}

/** Free the copy of `weight` (from the owner's `dispose`). */
export function releaseTransposed(weight: tf.Variable): void {
  const entry = copies.get(weight);
  if (entry === undefined) return;
  entry.transposed.dispose();
  copies.delete(weight);
}

/** Whether gradients are being recorded: then the copy would cut the weight off from its gradient. */
function recordingGradients(): boolean {
  return (tf.engine().state as unknown as { gradientDepth: number }).gradientDepth > 0;
}

/**
 * `weight` ([out, in]) as `[in, out]`: the registered copy, refreshed if the weight changed, or a
 * transpose made for this call (unregistered weights, and while gradients are recorded).
 */
export function transposedWeight(weight: tf.Tensor2D): tf.Tensor2D {
  const entry = weight instanceof tf.Variable ? copies.get(weight) : undefined;
  if (entry === undefined || recordingGradients() || weight.isDisposed) return tf.transpose(weight);
  if (entry.dataId !== weight.dataId) {
    // Replace, not add: the tensor count stays what it was after construction.
    entry.transposed.dispose();
    entry.transposed = tf.keep(tf.tidy(() => tf.transpose(weight)));
    entry.dataId = weight.dataId;
  }
  return entry.transposed;
}
