import * as tf from '@tensorflow/tfjs-core';
import { FUSED } from '../kernels/contract.js';
import { canFuse, runFusedOutputs } from './dispatch.js';

/** Adam's constants for one step; `correction1`/`correction2` are 1 − β₁ᵗ and 1 − β₂ᵗ at step t. */
export interface AdamStep {
  learningRate: number;
  beta1: number;
  beta2: number;
  epsilon: number;
  correction1: number;
  correction2: number;
  /** AdamW's decoupled weight decay: the value shrinks by lr · weightDecay · value each step. Default 0 (Adam). */
  weightDecay?: number;
}

/**
 * One Adam update of one weight: m' = β₁m + (1 − β₁)g, v' = β₂v + (1 − β₂)g²,
 * value' = value · (1 − lr · wd) − lr · (m'/c₁) / (√(v'/c₂) + ε) (wd = 0: plain Adam). Returns
 * `[value', m', v']`. The backend's fused kernel makes one pass over the four arrays; the
 * reference is tfjs's own AdamOptimizer's ops (ten passes, each allocating a weight-sized tensor).
 *
 * `inPlace`: the caller assigns the three results back to `value`, `m` and `v` at once and never
 * uses those three tensors' values again, so the kernel may write into their buffers (it does so
 * only where the backend can tell no other tensor or reader shares them).
 */
export function adamUpdate(value: tf.Tensor, gradient: tf.Tensor, m: tf.Tensor, v: tf.Tensor, step: AdamStep, inPlace = false): [tf.Tensor, tf.Tensor, tf.Tensor] {
  const weightDecay = step.weightDecay ?? 0;
  if (canFuse(FUSED.adam) && value.dtype === 'float32' && gradient.dtype === 'float32') {
    const [newValue, newM, newV] = runFusedOutputs(FUSED.adam, { value, gradient, m, v }, { ...step, weightDecay, inPlace: inPlace ? 1 : 0 });
    return [newValue!, newM!, newV!];
  }
  return tf.tidy(() => {
    const { learningRate, beta1, beta2, epsilon, correction1, correction2 } = step;
    const newM = tf.add(tf.mul(m, beta1), tf.mul(gradient, 1 - beta1));
    const newV = tf.add(tf.mul(v, beta2), tf.mul(tf.square(gradient), 1 - beta2));
    const update = tf.div(tf.div(newM, correction1), tf.add(tf.sqrt(tf.div(newV, correction2)), epsilon));
    const decayed = weightDecay === 0 ? value : tf.mul(value, 1 - learningRate * weightDecay);
    return [tf.add(tf.mul(update, -learningRate), decayed), newM, newV];
  });
}
