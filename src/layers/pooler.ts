import * as tf from '@tensorflow/tfjs-core';
import type { ForwardContext } from './context.js';
import { Linear } from './linear.js';
import { Layer } from './module.js';

/** BERT's pooler: tanh(dense(hidden state of the first token)). [B, L, H] -> [B, H]. */
export class Pooler extends Layer {
  readonly dense: Linear;
  constructor(hiddenSize: number) {
    super();
    this.dense = this.addModule('dense', new Linear(hiddenSize, hiddenSize, { bias: true }));
  }
  protected forward(hidden: tf.Tensor, ctx: ForwardContext): tf.Tensor {
    return tf.tidy(() => {
      const [batch, , size] = hidden.shape as [number, number, number];
      const first = hidden.slice([0, 0, 0], [batch, 1, size]).reshape([batch, size]);
      return tf.tanh(this.dense.call(first, ctx));
    });
  }
}
