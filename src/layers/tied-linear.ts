import type * as tf from '@tensorflow/tfjs-core';
import { linear } from './linear.js';
import { Layer } from './module.js';
import { registerTransposed } from './weight-layout.js';

/**
 * `y = x · Wᵀ` with a weight another module owns: the LM head of a model whose head is tied to its
 * token embeddings (`W` is the embedding matrix `[vocab, hidden]`). It is a layer, so the head is
 * a hook point (`lmHead`) whether or not it is tied; it owns no parameter, so the tied matrix
 * appears once in `namedParameters` (under the embeddings) and in saved checkpoints.
 */
export class TiedLinear extends Layer {
  constructor(readonly weight: tf.Variable) {
    super();
    registerTransposed(weight); // the layout the matmul reads on backends that want [in, out]
  }

  protected forward(x: tf.Tensor): tf.Tensor {
    return linear(x, this.weight);
  }
}
