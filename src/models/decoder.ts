import type * as tf from '@tensorflow/tfjs-core';
import type { Model } from './model.js';
import { TransformerModel, type ForwardOptions, type HiddenOutput } from './transformer.js';

/** A decoder without its LM head (HF's `LlamaModel`, `MambaModel`): hidden states only. */
export class DecoderModel<Config = unknown> extends TransformerModel<Config> implements Model<HiddenOutput> {
  /** Run int32 ids [B, L]; the caller owns the returned tensors. */
  forward(inputIds: tf.Tensor2D, options: ForwardOptions = {}): HiddenOutput {
    return this.forwardHidden(inputIds, options);
  }
}
