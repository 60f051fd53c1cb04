import * as tf from '@tensorflow/tfjs-core';
import { recordingGradients } from '../ops/dispatch.js';

/**
 * Tensors derived from a parameter and kept between calls: weights in the layout the matmul
 * kernels want, and values such as Mamba's A = -exp(A_log) that would otherwise be recomputed on
 * every token.
 *
 * Linear weights keep PyTorch's `[out, in]` layout (checkpoints load as they are, hooks and
 * training see the familiar shape), but `x · Wᵀ` through `tf.matMul(x, W, false, true)` is 5-25×
 * slower than a plain `x · W` on the wasm backend (tfjs 4.22; docs/performance.md). So each
 * registered weight owns a transposed `[in, out]` copy. A derived tensor is made when it is
 * registered, so the tensor count is fixed from construction on, and it is rebuilt when the
 * variable's data changes (`assign`, loading, an optimizer step), which tfjs signals by giving
 * the variable a new `dataId`. While gradients are recorded it is computed afresh, so that the
 * gradient reaches the variable.
 */
interface Entry {
  dataId: object;
  value: tf.Tensor;
  make: (v: tf.Tensor) => tf.Tensor;
}

const derived = new Map<tf.Variable, Map<string, Entry>>();

/** Keep `make(variable)` under `key`; call once, from the owner's constructor. */
export function registerDerived(variable: tf.Variable, key: string, make: (v: tf.Tensor) => tf.Tensor): void {
  const forVariable = derived.get(variable) ?? new Map<string, Entry>();
  derived.set(variable, forVariable);
  if (forVariable.has(key)) return;
  forVariable.set(key, { dataId: variable.dataId, value: tf.keep(tf.tidy(() => make(variable))), make });
}

/** The tensor registered under `key`, refreshed if the variable changed (or `make` it now, unregistered). */
export function derivedOf(variable: tf.Tensor, key: string, make: (v: tf.Tensor) => tf.Tensor): tf.Tensor {
  const entry = variable instanceof tf.Variable ? derived.get(variable)?.get(key) : undefined;
  if (entry === undefined || recordingGradients()) return make(variable);
  if (entry.dataId !== variable.dataId) {
    // Replace, not add: the tensor count stays what it was after construction.
    entry.value.dispose();
    entry.value = tf.keep(tf.tidy(() => entry.make(variable)));
    entry.dataId = variable.dataId;
  }
  return entry.value;
}

/** Free what was derived from `variable` (Module.dispose does this for every parameter). */
export function releaseTransposed(variable: tf.Variable): void {
  const forVariable = derived.get(variable);
  if (forVariable === undefined) return;
  for (const entry of forVariable.values()) entry.value.dispose();
  derived.delete(variable);
}

const transpose = (w: tf.Tensor): tf.Tensor => tf.transpose(w);

/**
 * Backends whose matmul is many times slower with `transposeB` (measured on tfjs-wasm 4.22; the
 * pure-JS cpu backend is kept with it). BLAS-backed backends read `[out, in]` transposed for free,
 * so they get no copy and the linear weights are held once.
 */
const PREFER_IN_OUT = new Set(['wasm', 'cpu']);

/** Whether the active backend wants linear weights laid out `[in, out]`. */
export function prefersInOutWeights(): boolean {
  return PREFER_IN_OUT.has(tf.getBackend());
}

/**
 * Give `weight` ([out, in]) a cached transposed copy where the active backend wants one; call once,
 * from the owner's constructor.
 */
export function registerTransposed(weight: tf.Variable): void {
  if (prefersInOutWeights()) registerDerived(weight, 'transposed', transpose);
}

/** `weight` ([out, in]) as `[in, out]`: the registered copy, or a transpose made for this call. */
export function transposedWeight(weight: tf.Tensor2D): tf.Tensor2D {
  return derivedOf(weight, 'transposed', transpose) as tf.Tensor2D;
}
