import type * as tf from '@tensorflow/tfjs-core';
import { linear, prepareLinearWeight } from '../ops/linear.js';
import { Layer } from './module.js';

/**
 * `y = x · Wᵀ` with a weight another module owns: the LM head of a model whose head is tied to its
 * token embeddings (`W` is the embedding matrix `[vocab, hidden]`). It is a layer, so the head is
 * a hook point (`lmHead`) whether or not it is tied; it owns no parameter, so the tied matrix
 * appears once in `namedParameters` (under the embeddings) and in saved checkpoints.
 */
export class TiedLinear extends Layer {
  constructor(readonly weight: tf.Variable) {
    super();
    prepareLinearWeight(weight);
  }

  protected forward(x: tf.Tensor): tf.Tensor {
    return linear(x, this.weight);
  }
}
