import * as tf from '@tensorflow/tfjs-core';
import type { Layer } from '../layers/module.js';
import type { Model } from './model.js';
import { TransformerModel, type ForwardOptions, type HiddenOutput, type ModelParts } from './transformer.js';

/** Output of a masked LM: hidden states and vocabulary logits for every position. */
export interface MaskedLMOutput extends HiddenOutput {
  /** [B, L, vocab]. */
  logits: tf.Tensor3D;
}

/** A bidirectional encoder with its masked-LM head (HF's `BertForMaskedLM`); no pooler. */
export class MaskedLM<Config = unknown> extends TransformerModel<Config> implements Model<MaskedLMOutput> {
  /** The head, hook point `maskedLmHead` (BERT: transform, then the decoder tied to the word embeddings). */
  readonly maskedLmHead: Layer;

  constructor(parts: ModelParts, config: Config, architecture: string) {
    super(parts, config, architecture);
    if (parts.maskedLmHead === undefined) throw new Error(`architecture '${architecture}' built no masked-LM head`);
    this.maskedLmHead = this.addModule('maskedLmHead', parts.maskedLmHead);
    this.namedModules();
  }

  /** Run int32 ids [B, L]; the caller owns the returned tensors. */
  forward(inputIds: tf.Tensor2D, options: ForwardOptions = {}): MaskedLMOutput {
    return this.withContext(inputIds, options, (ctx) => {
      const hidden = this.runStack(inputIds, ctx);
      return { ...hidden, logits: this.maskedLmHead.call(hidden.lastHiddenState, ctx) as tf.Tensor3D };
    });
  }
}
