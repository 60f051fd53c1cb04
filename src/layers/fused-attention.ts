import * as tf from '@tensorflow/tfjs-core';
import { recordingGradients } from './weight-layout.js';

/** The fused kernels a backend may register (the native addon does; src/native/attention.ts). */
export const ATTENTION_KERNEL = 'TesseraAttention';
export const ROTARY_KERNEL = 'TesseraRotary';
export const KV_APPEND_KERNEL = 'TesseraKvAppend';

/**
 * Whether attention may run fused: the active backend has all three kernels and no gradients are
 * being recorded (the kernels have none). Callers also check that no hook observes what the fused
 * path never materialises.
 */
export function canFuseAttention(): boolean {
  const backend = tf.getBackend();
  return (
    !recordingGradients() &&
    tf.getKernel(ATTENTION_KERNEL, backend) !== undefined &&
    tf.getKernel(ROTARY_KERNEL, backend) !== undefined &&
    tf.getKernel(KV_APPEND_KERNEL, backend) !== undefined
  );
}

/** How keys or values are laid out: `tokens` [B, S, kvHeads·headDim] (a projection's output), `heads` [B, kvHeads, S, headDim] (the KV cache). */
export type KvLayout = 'tokens' | 'heads';

export interface FusedAttentionOptions {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** Query i sits at position S - Lq + i and sees keys up to it. */
  causal: boolean;
  scale: number;
  /** Layout of keys and values. */
  layout: KvLayout;
}

/**
 * softmax(q kᵀ · scale + bias) v for every head in one kernel, from token-major queries
 * `q` [B, Lq, numHeads·headDim]; the result is `[B, Lq, numHeads·headDim]`, ready for the output
 * projection. `mask` [B, S] (0 = padding) and causality add -1e9 to masked scores, as the op-by-op path does.
 */
export function fusedAttention(
  q: tf.Tensor3D,
  k: tf.Tensor,
  v: tf.Tensor,
  mask: tf.Tensor2D | undefined,
  options: FusedAttentionOptions,
): tf.Tensor3D {
  const { layout, ...rest } = options;
  const inputs: tf.NamedTensorMap = mask === undefined ? { q, k, v } : { q, k, v, mask };
  const attrs = { ...rest, kLayout: layout, vLayout: layout };
  return tf.engine().runKernel(ATTENTION_KERNEL, inputs, attrs as unknown as tf.NamedAttrMap) as tf.Tensor3D;
}

/** Rotate-half rotary on token-major `x` [B, L, heads·headDim] with angle tables [B, 1, L, rotDim]. */
export function fusedRotary(x: tf.Tensor3D, cos: tf.Tensor, sin: tf.Tensor, headDim: number): tf.Tensor3D {
  return tf.engine().runKernel(ROTARY_KERNEL, { x, cos, sin }, { headDim }) as tf.Tensor3D;
}

/** The head-major cache [B, heads, S0 + L, headDim]: `past` (absent: empty) with token-major `x` [B, L, heads·headDim] appended. */
export function kvAppend(past: tf.Tensor | undefined, x: tf.Tensor3D, numHeads: number): tf.Tensor4D {
  const inputs: tf.NamedTensorMap = past === undefined ? { x } : { x, past };
  return tf.engine().runKernel(KV_APPEND_KERNEL, inputs, { numHeads }) as tf.Tensor4D;
}
