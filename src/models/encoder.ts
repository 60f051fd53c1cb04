import * as tf from '@tensorflow/tfjs-core';
import type { Pooler } from '../layers/pooler.js';
import type { Model } from './model.js';
import { TransformerModel, type ForwardOptions, type HiddenOutput, type ModelParts } from './transformer.js';

/** Output of an encoder: hidden states and, where the architecture has a pooler, the pooled vector. */
export interface EncoderOutput extends HiddenOutput {
  /** [B, H] (BERT: tanh(dense(h[:, 0]))). */
  pooledOutput?: tf.Tensor2D;
}

/** A bidirectional encoder (BERT). */
export class EncoderModel<Config = unknown> extends TransformerModel<Config> implements Model<EncoderOutput> {
  readonly pooler?: Pooler;

  constructor(parts: ModelParts, config: Config, architecture: string) {
    super(parts, config, architecture);
    if (parts.pooler !== undefined) this.pooler = this.addModule('pooler', parts.pooler);
    this.namedModules();
  }

  /** Encode int32 ids [B, L]; the caller owns (and disposes) the returned tensors. */
  forward(inputIds: tf.Tensor2D, options: ForwardOptions = {}): EncoderOutput {
    return this.withContext(inputIds, options, (ctx) => {
      const out: EncoderOutput = this.runStack(inputIds, ctx);
      if (this.pooler !== undefined) out.pooledOutput = this.pooler.call(out.lastHiddenState, ctx) as tf.Tensor2D;
      return out;
    });
  }
}
