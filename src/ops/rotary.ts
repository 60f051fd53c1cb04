import * as tf from '@tensorflow/tfjs-core';
import '../tf-chained.js';

/** Rotary angle tables for a call's positions, [B, 1, L, dim] each (HF's "rotate half" layout). */
export interface RotaryTables {
  cos: tf.Tensor;
  sin: tf.Tensor;
}

/**
 * Rotate `x` [B, H, L, headDim] by the tables: the first and second halves of the first `dim`
 * values of each head form the (x, y) pairs; values past `dim` pass through unrotated.
 */
export function applyRotary(x: tf.Tensor4D, { cos, sin }: RotaryTables): tf.Tensor4D {
  return tf.tidy(() => {
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
