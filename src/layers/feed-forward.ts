import * as tf from '@tensorflow/tfjs-core';
import { activation, gatedActivation, type Activation, type GatedActivation } from '../ops/activation.js';
import { gatedFeedForward, gatedLinear, linear, type PreNorm } from '../ops/linear.js';
import type { ForwardContext } from './context.js';
import { Linear } from './linear.js';
import { Layer } from './module.js';
import { RMSNorm } from './norm.js';

export interface FeedForwardOptions {
  hiddenSize: number;
  intermediateSize: number;
  /** HF activation name (`gelu`, `silu`, ...). */
  activation: string;
  /** Gated (SwiGLU-style): down(act(gate(x)) * up(x)); plain: down(act(up(x))). */
  gated: boolean;
  bias?: boolean;
}

/** The position-wise MLP of a block, plain (BERT) or gated (Llama, Jamba). */
export class FeedForward extends Layer {
  readonly gate?: Linear;
  readonly up: Linear;
  readonly down: Linear;
  private readonly act: Activation;
  private readonly gatedAct: GatedActivation;

  constructor(readonly options: FeedForwardOptions) {
    super();
    const { hiddenSize, intermediateSize, bias } = options;
    if (options.gated) this.gate = this.addModule('gate', new Linear(hiddenSize, intermediateSize, { bias }));
    this.up = this.addModule('up', new Linear(hiddenSize, intermediateSize, { bias }));
    this.down = this.addModule('down', new Linear(intermediateSize, hiddenSize, { bias }));
    this.act = activation(options.activation);
    this.gatedAct = gatedActivation(options.activation);
  }

  protected forward(x: tf.Tensor, ctx: ForwardContext): tf.Tensor {
    return this.feed(x, ctx);
  }

  /**
   * `hidden + this(norm(hidden))` with the residual added by the down projection's kernel. With a
   * hook on this layer it runs through {@link call}, so the hook sees the output before the sum.
   */
  override preNormResidual(hidden: tf.Tensor, norm: Layer, ctx: ForwardContext): tf.Tensor {
    if (this.hasHooks()) return super.preNormResidual(hidden, norm, ctx);
    // An RMSNorm nothing watches is applied by the gated products' kernel.
    const preNorm = norm instanceof RMSNorm && this.gate !== undefined && !this.innerHooked() ? norm.asPreNorm() : undefined;
    return preNorm !== undefined ? this.feed(hidden, ctx, hidden, preNorm) : this.feed(norm.call(hidden, ctx), ctx, hidden);
  }

  private innerHooked(): boolean {
    return this.up.hasHooks() || this.gate?.hasHooks() === true;
  }

  /** The feed-forward of `x` (of `preNorm(x)` where given: gated, nothing hooked), plus `residual` where given. */
  private feed(x: tf.Tensor, ctx: ForwardContext, residual?: tf.Tensor, preNorm?: PreNorm): tf.Tensor {
    if (residual !== undefined && this.gate !== undefined && !this.innerHooked() && !this.down.hasHooks()) {
      // Nothing watches the inner products or the down projection: the whole sublayer in one op.
      const weights = { gate: this.gate, up: this.up, down: this.down };
      return gatedFeedForward(x, weights, this.options.activation, preNorm, residual);
    }
    return tf.tidy(() => {
      const inner = this.innerHooked() ? this.innerThroughLayers(x, ctx) : this.inner(x, preNorm);
      return residual === undefined ? this.down.call(inner, ctx) : this.down.callAdding(residual, inner, ctx);
    });
  }

  /** `act(gate(x)) * up(x)` (of `preNorm(x)` where given) or `act(up(x))` as ops: the backend may fuse each whole. */
  private inner(x: tf.Tensor, preNorm?: PreNorm): tf.Tensor {
    const up = { weight: this.up.weight, bias: this.up.bias };
    if (this.gate === undefined) return linear(x, up.weight, up.bias, this.options.activation);
    return gatedLinear(x, { weight: this.gate.weight, bias: this.gate.bias }, up, this.options.activation, preNorm);
  }

  /** The same through each Linear's call, so that the hooks on `gate` and `up` see their outputs. */
  private innerThroughLayers(x: tf.Tensor, ctx: ForwardContext): tf.Tensor {
    const up = this.up.call(x, ctx);
    return this.gate !== undefined ? this.gatedAct(this.gate.call(x, ctx), up) : this.act(up);
  }
}
