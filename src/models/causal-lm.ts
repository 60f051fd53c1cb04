import * as tf from '@tensorflow/tfjs-core';
import { Linear } from '../layers/linear.js';
import { TiedLinear } from '../layers/tied-linear.js';
import type { Model } from './model.js';
import { TransformerModel, type ForwardOptions, type HiddenOutput, type ModelParts } from './transformer.js';

/** Output of a causal LM: hidden states and next-token logits for every position. */
export interface CausalLMOutput extends HiddenOutput {
  /** [B, L, vocab]. */
  logits: tf.Tensor3D;
}

/** A decoder with its vocabulary projection (HF's `*ForCausalLM`). */
export class CausalLM<Config = unknown> extends TransformerModel<Config> implements Model<CausalLMOutput> {
  /**
   * The LM head, hook point `lmHead`: its own matrix, or (tied) a {@link TiedLinear} over the
   * token embedding matrix.
   */
  readonly lmHead: Linear | TiedLinear;

  constructor(parts: ModelParts, config: Config, architecture: string) {
    super(parts, config, architecture);
    if (parts.lmHead === undefined) throw new Error(`architecture '${architecture}' built no LM head`);
    const head = parts.lmHead instanceof Linear ? parts.lmHead : new TiedLinear(this.embeddings.word.weight);
    this.lmHead = this.addModule('lmHead', head);
    this.namedModules();
  }

  /** Whether the LM head reuses the token embedding matrix. */
  get tiedEmbeddings(): boolean {
    return this.lmHead instanceof TiedLinear;
  }

  /** Run int32 ids [B, L]; the caller owns the returned tensors. */
  forward(inputIds: tf.Tensor2D, options: ForwardOptions = {}): CausalLMOutput {
    return this.withContext(inputIds, options, (ctx) => {
      const hidden = this.runStack(inputIds, ctx);
      return { ...hidden, logits: this.project(hidden.lastHiddenState) };
    });
  }

  /** Vocabulary logits for hidden states [B, L, H]. */
  project(hidden: tf.Tensor3D): tf.Tensor3D {
    this.assertNotDisposed('project');
    return this.lmHead.call(hidden, { offset: 0, memo: new Map() }) as tf.Tensor3D;
  }
}
