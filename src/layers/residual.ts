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

/** Apply `sublayer` to `x` with a residual connection and `norm` placed as asked. */
export function residual(
  x: tf.Tensor,
  sublayer: Layer,
  norm: Layer,
  placement: NormPlacement,
  ctx: ForwardContext,
): tf.Tensor {
  return tf.tidy(() =>
    placement === 'post' ? normOfSum(norm, x, sublayer.call(x, ctx), ctx) : sublayer.preNormResidual(x, norm, ctx),
  );
}
