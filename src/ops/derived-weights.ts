import * as tf from '@tensorflow/tfjs-core';
import { recordingGradients } from './dispatch.js';

/**
 * Tensors the ops derive from a weight and keep between calls: a linear weight in the layout the
 * active backend's matmul wants (see linear.ts), and values such as Mamba's A = -exp(A_log) that
 * would otherwise be recomputed on every token.
 *
 * A derived tensor is made when it is registered, so the tensor count is fixed from construction
 * on, and it is rebuilt when the variable's data changes (`assign`, loading, an optimizer step),
 * which tfjs signals by giving the variable a new `dataId`. While gradients are recorded it is
 * computed afresh, so that the gradient reaches the variable.
 */
interface Entry {
  dataId: object;
  value: tf.Tensor;
  make: (v: tf.Tensor) => tf.Tensor;
}

const derived = new WeakMap<tf.Variable, Map<string, Entry>>();

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

/** Dispose a weight together with every tensor derived from it. */
export function disposeWeight(variable: tf.Variable): void {
  const forVariable = derived.get(variable);
  if (forVariable !== undefined) {
    for (const entry of forVariable.values()) entry.value.dispose();
    derived.delete(variable);
  }
  variable.dispose();
}
