import * as tf from '@tensorflow/tfjs-core';
import { FUSED } from '../kernels/contract.js';
import { canFuse, runFused } from './dispatch.js';

/** The norms over the last dimension: LayerNorm (BERT) and RMSNorm (Llama, Mamba, Jamba). */
export type NormKind = 'layernorm' | 'rmsnorm';

/**
 * `norm(x + residual)` (just `norm(x)` without `residual`) over the last dimension:
 * - `layernorm`: `(s - mean) / sqrt(var + eps) * weight + bias`
 * - `rmsnorm`: `s / sqrt(mean(s²) + eps) * weight` (`bias` is ignored)
 *
 * In one fused kernel where the backend has it; the residual sum is made inside the kernel when
 * both are float32 tensors of one shape.
 */
export function norm(
  kind: NormKind,
  x: tf.Tensor,
  weight: tf.Tensor,
  bias: tf.Tensor | undefined,
  eps: number,
  residual?: tf.Tensor,
): tf.Tensor {
  if (residual !== undefined && !fusableSum(x, residual)) return tf.tidy(() => norm(kind, x.add(residual), weight, bias, eps));
  if (kind === 'layernorm') {
    if (canFuse(FUSED.layerNorm)) return runFused(FUSED.layerNorm, { x, residual, gamma: weight, beta: bias }, { epsilon: eps });
    return tf.tidy(() => {
      const sum = residual === undefined ? x : x.add(residual);
      const { mean, variance } = tf.moments(sum, -1, true);
      const normed = sum.sub(mean).mul(tf.rsqrt(variance.add(eps))).mul(weight);
      return bias === undefined ? normed : normed.add(bias);
    });
  }
  if (canFuse(FUSED.rmsNorm)) return runFused(FUSED.rmsNorm, { x, residual, weight }, { epsilon: eps });
  return tf.tidy(() => {
    const sum = residual === undefined ? x : x.add(residual);
    return sum.mul(tf.rsqrt(sum.square().mean(-1, true).add(eps))).mul(weight);
  });
}

/** Whether a fused norm kernel can add `residual` to `x` itself (it takes float32 of one shape). */
function fusableSum(x: tf.Tensor, residual: tf.Tensor): boolean {
  return tf.util.arraysEqual(x.shape, residual.shape) && x.dtype === 'float32' && residual.dtype === 'float32';
}
