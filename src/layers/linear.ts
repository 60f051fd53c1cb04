import * as tf from '@tensorflow/tfjs-core';
import type { ForwardContext } from './context.js';
import { linear, prepareLinearWeight } from '../ops/linear.js';
import { init } from './init.js';
import { Layer } from './module.js';

export interface LinearOptions {
  bias?: boolean;
}

/**
 * y = x Wᵀ + b over the last dimension. The weight keeps PyTorch's `[out, in]` layout so that
 * checkpoints load as they are; the op may keep a copy in the layout the backend's matmul wants.
 */
export class Linear extends Layer {
  readonly weight: tf.Variable;
  readonly bias?: tf.Variable;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    options: LinearOptions = {},
  ) {
    super();
    this.weight = this.addParameter('weight', init.normal([outFeatures, inFeatures]));
    if (options.bias ?? false) this.bias = this.addParameter('bias', init.zeros([outFeatures]));
    prepareLinearWeight(this.weight);
  }

  protected forward(x: tf.Tensor): tf.Tensor {
    return linear(x, this.weight, this.bias);
  }

  /**
   * `residual + this(x)`, as one kernel where the backend fuses it. With a hook on this layer the
   * layer runs through {@link call}, so the hook sees (and may replace) its output before the sum.
   */
  callAdding(residual: tf.Tensor, x: tf.Tensor, ctx: ForwardContext): tf.Tensor {
    if (this.hasHooks()) return tf.tidy(() => residual.add(this.call(x, ctx)));
    return linear(x, this.weight, this.bias, undefined, residual);
  }
}

/** A no-op layer for optional slots (a block without a norm here, a model without a head). */
export class Identity extends Layer {
  protected forward(x: tf.Tensor, _ctx?: ForwardContext): tf.Tensor {
    return x;
  }
}
