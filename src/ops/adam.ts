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
}

/**
 * One Adam update of one weight: m' = β₁m + (1 − β₁)g, v' = β₂v + (1 − β₂)g²,
 * value' = value − lr · (m'/c₁) / (√(v'/c₂) + ε). Returns `[value', m', v']`. The backend's fused
 * kernel makes one pass over the four arrays; the reference is tfjs's own AdamOptimizer's ops
 * (ten passes, each allocating a weight-sized tensor).
 */
export function adamUpdate(value: tf.Tensor, gradient: tf.Tensor, m: tf.Tensor, v: tf.Tensor, step: AdamStep): [tf.Tensor, tf.Tensor, tf.Tensor] {
  if (canFuse(FUSED.adam) && value.dtype === 'float32' && gradient.dtype === 'float32') {
    const [newValue, newM, newV] = runFusedOutputs(FUSED.adam, { value, gradient, m, v }, { ...step });
    return [newValue!, newM!, newV!];
  }
  return tf.tidy(() => {
    const { learningRate, beta1, beta2, epsilon, correction1, correction2 } = step;
    const newM = tf.add(tf.mul(m, beta1), tf.mul(gradient, 1 - beta1));
    const newV = tf.add(tf.mul(v, beta2), tf.mul(tf.square(gradient), 1 - beta2));
    const update = tf.div(tf.div(newM, correction1), tf.add(tf.sqrt(tf.div(newV, correction2)), epsilon));
    return [tf.add(tf.mul(update, -learningRate), value), newM, newV];
  });
}
