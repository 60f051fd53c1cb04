import * as tf from '@tensorflow/tfjs-core';
import '../tf-chained.js';
import { FUSED } from '../kernels/contract.js';
import { canFuse, recordingGradients, runFused } from './dispatch.js';

/** Rotary angle tables for a call's positions, [B, 1, L, dim] each (HF's "rotate half" layout). */
export interface RotaryTables {
  cos: tf.Tensor;
  sin: tf.Tensor;
}

/**
 * Rotate `x` [B, H, L, headDim] by the tables: the first and second halves of the first `dim`
 * values of each head form the (x, y) pairs; values past `dim` pass through unrotated. One
 * kernel where the backend has it (also while gradients are recorded: the gradient is the
 * transposed rotation, the same kernel); the composition below elsewhere.
 */
export function applyRotary(x: tf.Tensor4D, tables: RotaryTables): tf.Tensor4D {
  if (x.dtype === 'float32' && canFuse(FUSED.rotary)) return fusedRotary(x, tables);
  return tf.tidy(() => {
    const { cos, sin } = tables;
    const headDim = x.shape[3];
    const dim = cos.shape[3]!;
    const rot = dim === headDim ? x : x.slice([0, 0, 0, 0], [-1, -1, -1, dim]);
    const [x1, x2] = tf.split(rot, 2, -1);
    const rotated = tf.concat([x2!.neg(), x1!], -1);
    const out = rot.mul(cos).add(rotated.mul(sin));
    if (dim === headDim) return out as tf.Tensor4D;
    return tf.concat([out, x.slice([0, 0, 0, dim], [-1, -1, -1, -1])], -1) as tf.Tensor4D;
  });
}

/**
 * The backend's rotary kernel (dispatch decided) on head-major `x` [B, H, L, headDim], or, given
 * `heads`, token-major `x` [B, L, heads·headDim] as the projections return it; differentiable.
 */
export function fusedRotary<T extends tf.Tensor>(x: T, { cos, sin }: RotaryTables, heads?: number): T {
  const attrs = (transpose: boolean): Record<string, number> => ({ transpose: transpose ? 1 : 0, ...(heads === undefined ? {} : { heads }) });
  const rotate = (input: tf.Tensor, tables: tf.Tensor[], transpose: boolean) =>
    runFused(FUSED.rotary, { x: input, cos: tables[0], sin: tables[1] }, attrs(transpose)) as T;
  if (!recordingGradients()) return rotate(x, [cos, sin], false);
  // The gradient flows to x only: the tables are constants made from positions (RotaryEmbedding),
  // never trained. Saved, because the backward pass runs after the forward's scopes dispose them.
  // tfjs types the forward as taking (...tensors, save) in one rest parameter.
  const withGradient = tf.customGrad(((input: tf.Tensor, save: tf.GradSaveFunc) => {
    save([cos, sin]);
    return { value: rotate(input, [cos, sin], false), gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => rotate(dy, saved, true) };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return withGradient(x) as T;
}
