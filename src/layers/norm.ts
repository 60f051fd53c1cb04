import * as tf from '@tensorflow/tfjs-core';
import type { PreNorm } from '../ops/linear.js';
import { norm as normOp, type NormKind } from '../ops/norm.js';
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
    return normOp('layernorm', x, this.weight, this.bias, this.eps);
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
    return normOp('rmsnorm', x, this.weight, undefined, this.eps);
  }

  /**
   * This norm as the pre-norm of the projections after it (one kernel computes both), or
   * undefined while a hook watches it: it then runs as a layer, so the hook sees it.
   */
  asPreNorm(): PreNorm | undefined {
    return this.hasHooks() ? undefined : { weight: this.weight, eps: this.eps };
  }
}

/** Which norm a config asks for, with its epsilon. */
export type NormSpec = { kind: NormKind; eps: number };

/** Build the norm a {@link NormSpec} names. */
export function createNorm(spec: NormSpec, size: number): LayerNorm | RMSNorm {
  return spec.kind === 'layernorm' ? new LayerNorm(size, spec.eps) : new RMSNorm(size, spec.eps);
}

/**
 * `norm(x + y)`, the post-norm residual (BERT). Where nothing hooks the norm, the sum is left to
 * the norm op (made inside the fused norm kernel where the backend has one); otherwise the norm is
 * called on the sum as usual, with its hooks.
 */
export function normOfSum(norm: Layer, x: tf.Tensor, y: tf.Tensor, ctx: ForwardContext): tf.Tensor {
  if (!norm.hasHooks()) {
    if (norm instanceof LayerNorm) return normOp('layernorm', x, norm.weight, norm.bias, norm.eps, y);
    if (norm instanceof RMSNorm) return normOp('rmsnorm', x, norm.weight, undefined, norm.eps, y);
  }
  return norm.call(x.add(y), ctx);
}
