import * as tf from '@tensorflow/tfjs-core';
import { positionsOf, type ForwardContext } from './context.js';
import { init } from './init.js';
import { Layer } from './module.js';
import { createNorm, type NormSpec } from './norm.js';

/** A lookup table `[vocab, dim]` (also the tied LM head's weight). */
export class Embedding extends Layer {
  readonly weight: tf.Variable;
  constructor(
    readonly count: number,
    readonly dim: number,
  ) {
    super();
    this.weight = this.addParameter('weight', init.normal([count, dim]));
  }
  protected forward(ids: tf.Tensor): tf.Tensor {
    return tf.gather(this.weight, ids.toInt());
  }
  /** Look up ids without running this module's hooks. */
  lookup(ids: tf.Tensor): tf.Tensor {
    return this.forward(ids);
  }
}

export interface EmbeddingsOptions {
  vocabSize: number;
  hiddenSize: number;
  /** Learned absolute positions (BERT); omit for rotary or position-free models. */
  maxPositions?: number;
  /** Segment embeddings (BERT's token types). */
  typeVocabSize?: number;
  /** A norm applied to the sum (BERT's embedding LayerNorm). */
  norm?: NormSpec;
}

/**
 * Token embeddings plus, where the architecture has them, learned positions and token types,
 * then an optional norm. Input: int32 ids [B, L]; output [B, L, H].
 */
export class Embeddings extends Layer {
  readonly word: Embedding;
  readonly position?: Embedding;
  readonly tokenType?: Embedding;
  readonly norm?: Layer;

  constructor(options: EmbeddingsOptions) {
    super();
    this.word = this.addModule('word', new Embedding(options.vocabSize, options.hiddenSize));
    if (options.maxPositions !== undefined) {
      this.position = this.addModule('position', new Embedding(options.maxPositions, options.hiddenSize));
    }
    if (options.typeVocabSize !== undefined) {
      this.tokenType = this.addModule('tokenType', new Embedding(options.typeVocabSize, options.hiddenSize));
    }
    if (options.norm !== undefined) this.norm = this.addModule('norm', createNorm(options.norm, options.hiddenSize));
  }

  protected forward(ids: tf.Tensor, ctx: ForwardContext): tf.Tensor {
    return tf.tidy(() => {
      const [batch, length] = ids.shape as [number, number];
      let h = this.word.call(ids, ctx);
      if (this.position !== undefined) {
        const positions = positionsOf(ctx, batch, length);
        const maxPos = this.position.count;
        if (ctx.offset + length > maxPos) {
          throw new Error(`sequence of ${ctx.offset + length} tokens exceeds max_position_embeddings ${maxPos}`);
        }
        h = h.add(this.position.call(positions, ctx));
      }
      if (this.tokenType !== undefined) {
        const types = ctx.tokenTypeIds ?? tf.zerosLike(ids);
        h = h.add(this.tokenType.call(types, ctx));
      }
      return this.norm !== undefined ? this.norm.call(h, ctx) : h;
    });
  }
}
