import * as tf from '@tensorflow/tfjs-core';
import { activation, type Activation } from '../ops/activation.js';
import type { ForwardContext } from './context.js';
import { init } from './init.js';
import { Linear } from './linear.js';
import { Layer } from './module.js';
import { LayerNorm } from './norm.js';
import { TiedLinear } from './tied-linear.js';

export interface MaskedLMHeadOptions {
  hiddenSize: number;
  vocabSize: number;
  /** HF activation name of the transform (`hidden_act`). */
  activation: string;
  /** Epsilon of the transform's LayerNorm. */
  layerNormEps: number;
  /** The token embedding matrix `[vocab, hidden]` the decoder projects with (tied, as in HF). */
  tiedWeight: tf.Variable;
}

/**
 * A masked-LM head (HF `BertOnlyMLMHead`): `decoder(norm(act(dense(h)))) + bias`, [B, L, H] ->
 * [B, L, vocab]. The decoder is a {@link TiedLinear} over the word embeddings, so the matrix
 * appears once in `namedParameters`; the vocabulary bias is the head's own parameter.
 */
export class MaskedLMHead extends Layer {
  readonly dense: Linear;
  readonly norm: LayerNorm;
  readonly decoder: TiedLinear;
  readonly bias: tf.Variable;
  private readonly act: Activation;

  constructor(options: MaskedLMHeadOptions) {
    super();
    const { hiddenSize, vocabSize, tiedWeight } = options;
    if (tiedWeight.shape[0] !== vocabSize || tiedWeight.shape[1] !== hiddenSize) {
      throw new Error(`masked-LM head: the tied weight has shape [${tiedWeight.shape}], expected [${vocabSize}, ${hiddenSize}] (vocab, hidden)`);
    }
    this.dense = this.addModule('dense', new Linear(hiddenSize, hiddenSize, { bias: true }));
    this.norm = this.addModule('norm', new LayerNorm(hiddenSize, options.layerNormEps));
    this.decoder = this.addModule('decoder', new TiedLinear(tiedWeight));
    this.bias = this.addParameter('bias', init.zeros([vocabSize]));
    this.act = activation(options.activation);
  }

  protected forward(hidden: tf.Tensor, ctx: ForwardContext): tf.Tensor {
    return tf.tidy(() => {
      const transformed = this.norm.call(this.act(this.dense.call(hidden, ctx)), ctx);
      return tf.add(this.decoder.call(transformed, ctx), this.bias);
    });
  }
}
