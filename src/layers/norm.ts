import * as tf from '@tensorflow/tfjs-core';
import { FUSED } from '../kernels/contract.js';
import { canFuse, runFused } from '../ops/dispatch.js';
import { init } from './init.js';
import type { ForwardContext } from './context.js';
import { Layer } from './module.js';

/** LayerNorm over the last dimension: (x - mean) / sqrt(var + eps) * weight + bias. */
export class LayerNorm extends Layer {
  readonly weight: tf.Variable;
  readonly bias: tf.Variable;
  constructor(
    readonly size: number,
    readonly eps: number,
  ) {
    super();
    this.weight = this.addParameter('weight', init.ones([size]));
    this.bias = this.addParameter('bias', init.zeros([size]));
  }
  protected forward(x: tf.Tensor): tf.Tensor {
    if (canFuse(FUSED.layerNorm)) {
      return runFused(FUSED.layerNorm, { x, gamma: this.weight, beta: this.bias }, { epsilon: this.eps });
    }
    return tf.tidy(() => {
      const { mean, variance } = tf.moments(x, -1, true);
      return x.sub(mean).mul(tf.rsqrt(variance.add(this.eps))).mul(this.weight).add(this.bias);
    });
  }
}

/** RMSNorm (Llama, Mamba, Jamba): x / sqrt(mean(x²) + eps) * weight. */
export class RMSNorm extends Layer {
  readonly weight: tf.Variable;
  constructor(
    readonly size: number,
    readonly eps: number,
  ) {
    super();
    this.weight = this.addParameter('weight', init.ones([size]));
  }
  protected forward(x: tf.Tensor): tf.Tensor {
    if (canFuse(FUSED.rmsNorm)) return runFused(FUSED.rmsNorm, { x, weight: this.weight }, { epsilon: this.eps });
    return tf.tidy(() => x.mul(tf.rsqrt(x.square().mean(-1, true).add(this.eps))).mul(this.weight));
  }
}

/** Which norm a config asks for, with its epsilon. */
export type NormSpec = { kind: 'layernorm' | 'rmsnorm'; eps: number };

/** Build the norm a {@link NormSpec} names. */
export function createNorm(spec: NormSpec, size: number): LayerNorm | RMSNorm {
  return spec.kind === 'layernorm' ? new LayerNorm(size, spec.eps) : new RMSNorm(size, spec.eps);
}

/**
 * `norm(x + y)`, the post-norm residual (BERT). Where the backend fuses norms and nothing hooks
 * the norm, the sum is made inside the norm's kernel (one kernel instead of two); otherwise the
 * norm is called on the sum as usual, with its hooks.
 */
export function normOfSum(norm: Layer, x: tf.Tensor, y: tf.Tensor, ctx: ForwardContext): tf.Tensor {
  if (!norm.hasHooks() && tf.util.arraysEqual(x.shape, y.shape) && x.dtype === 'float32' && y.dtype === 'float32') {
    if (norm instanceof LayerNorm && canFuse(FUSED.layerNorm)) {
      return runFused(FUSED.layerNorm, { x, residual: y, gamma: norm.weight, beta: norm.bias }, { epsilon: norm.eps });
    }
    if (norm instanceof RMSNorm && canFuse(FUSED.rmsNorm)) {
      return runFused(FUSED.rmsNorm, { x, residual: y, weight: norm.weight }, { epsilon: norm.eps });
    }
  }
  return norm.call(x.add(y), ctx);
}
