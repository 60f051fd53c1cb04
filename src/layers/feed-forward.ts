import * as tf from '@tensorflow/tfjs-core';
import { activation, type Activation } from './activations.js';
import type { ForwardContext } from './context.js';
import { Linear } from './linear.js';
import { Layer } from './module.js';

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

  constructor(readonly options: FeedForwardOptions) {
    super();
    const { hiddenSize, intermediateSize, bias } = options;
    if (options.gated) this.gate = this.addModule('gate', new Linear(hiddenSize, intermediateSize, { bias }));
    this.up = this.addModule('up', new Linear(hiddenSize, intermediateSize, { bias }));
    this.down = this.addModule('down', new Linear(intermediateSize, hiddenSize, { bias }));
    this.act = activation(options.activation);
  }

  protected forward(x: tf.Tensor, ctx: ForwardContext): tf.Tensor {
    return tf.tidy(() => {
      const up = this.up.call(x, ctx);
      const inner = this.gate !== undefined ? this.act(this.gate.call(x, ctx)).mul(up) : this.act(up);
      return this.down.call(inner, ctx);
    });
  }
}
