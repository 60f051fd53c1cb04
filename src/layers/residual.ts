import * as tf from '@tensorflow/tfjs-core';
import type { ForwardContext } from './context.js';
import type { Layer } from './module.js';
import { normOfSum } from './norm.js';

/**
 * Where a block's norm sits around a residual connection:
 * - `pre` (Llama, Mamba, Jamba): x + sublayer(norm(x))
 * - `post` (BERT): norm(x + sublayer(x))
 */
export type NormPlacement = 'pre' | 'post';

/** A sublayer that can compute `x + itself(norm(x))` in one step (or say it cannot: undefined). */
export interface FusesResidual {
  residualForward(x: tf.Tensor, norm: Layer, ctx: ForwardContext): tf.Tensor | undefined;
}

/** Apply `sublayer` to `x` with a residual connection and `norm` placed as asked. */
export function residual(
  x: tf.Tensor,
  sublayer: Layer,
  norm: Layer,
  placement: NormPlacement,
  ctx: ForwardContext,
): tf.Tensor {
  return tf.tidy(() => {
    if (placement === 'post') return normOfSum(norm, x, sublayer.call(x, ctx), ctx);
    // A sublayer may run the whole block in one kernel (the Mamba mixer on the native backend).
    const fused = (sublayer as Partial<FusesResidual>).residualForward?.(x, norm, ctx);
    return fused ?? x.add(sublayer.call(norm.call(x, ctx), ctx));
  });
}
