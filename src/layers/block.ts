import * as tf from '@tensorflow/tfjs-core';
import type { ForwardContext } from './context.js';
import { Layer } from './module.js';
import { residual, type NormPlacement } from './residual.js';

export interface BlockParts {
  /** The token mixer: attention, Mamba, or any registered mixer (a Layer [B, L, H] -> [B, L, H]). */
  mixer: Layer;
  /** The norm paired with the mixer's residual connection. */
  mixerNorm: Layer;
  /** The feed-forward (dense, gated, MoE); Mamba blocks have none. */
  ffn?: Layer;
  ffnNorm?: Layer;
  placement: NormPlacement;
}

/**
 * One layer of every architecture: residual(mixer) then, if present, residual(ffn). The mixer is
 * whatever the config chose; the block neither knows nor cares which.
 */
export class Block extends Layer {
  readonly mixerNorm: Layer;
  readonly mixer: Layer;
  readonly ffnNorm?: Layer;
  readonly ffn?: Layer;
  readonly placement: NormPlacement;

  constructor(parts: BlockParts) {
    super();
    if ((parts.ffn === undefined) !== (parts.ffnNorm === undefined)) {
      throw new Error('a block needs both ffn and ffnNorm, or neither');
    }
    this.placement = parts.placement;
    // Registration order = hook/parameter listing order: norm before the sublayer it feeds.
    this.mixerNorm = this.addModule('mixerNorm', parts.mixerNorm);
    this.mixer = this.addModule('mixer', parts.mixer);
    if (parts.ffn !== undefined && parts.ffnNorm !== undefined) {
      this.ffnNorm = this.addModule('ffnNorm', parts.ffnNorm);
      this.ffn = this.addModule('ffn', parts.ffn);
    }
  }

  protected forward(x: tf.Tensor, ctx: ForwardContext): tf.Tensor {
    return tf.tidy(() => {
      const h = residual(x, this.mixer, this.mixerNorm, this.placement, ctx);
      return this.ffn !== undefined && this.ffnNorm !== undefined
        ? residual(h, this.ffn, this.ffnNorm, this.placement, ctx)
        : h;
    });
  }
}
