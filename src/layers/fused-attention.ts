import * as tf from '@tensorflow/tfjs-core';
import { FUSED } from '../kernels/contract.js';
import { canFuse } from '../ops/dispatch.js';

/** The fused attention kernel a backend may register (the native addon does; src/native/attention.ts). */
export const ATTENTION_KERNEL = FUSED.attention;

/**
 * Whether attention may run fused: the active backend has the kernel and no gradients are being
 * recorded (it has none). Callers also check that no hook observes what the fused path never
 * materialises.
 */
export function canFuseAttention(): boolean {
  return canFuse(ATTENTION_KERNEL);
}

export interface FusedAttentionOptions {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** Query i sits at position S - Lq + i and sees keys up to it. */
  causal: boolean;
  scale: number;
}

export interface FusedAttentionInputs {
  /** This call's projections, token-major: q [B, L, numHeads·headDim], k and v [B, L, numKvHeads·headDim]. */
  q: tf.Tensor3D;
  k: tf.Tensor3D;
  v: tf.Tensor3D;
  /** Rotary angle tables [B, 1, L, rotDim] (rotate half), applied to q and k. */
  rotary?: { cos: tf.Tensor; sin: tf.Tensor };
  /**
   * Append k and v to a KV cache and return it: `past` holds the cached keys and values
   * [B, numKvHeads, S0, headDim] (absent for an empty cache).
   */
  cache?: { past?: { key: tf.Tensor; value: tf.Tensor } };
  /** [B, S0 + L], 0 = padding (any dtype). */
  mask?: tf.Tensor2D;
}

export interface FusedAttentionResult {
  /** [B, L, numHeads·headDim], ready for the output projection. */
  context: tf.Tensor3D;
  /** The cache after this call, [B, numKvHeads, S0 + L, headDim]; present when `cache` was given. */
  key?: tf.Tensor4D;
  value?: tf.Tensor4D;
}

/**
 * softmax(q kᵀ · scale + bias) v for every head in one kernel, rotary and the cache append
 * included. Masked keys (padding, and the future when causal) get the op-by-op path's -1e9 bias.
 */
export function fusedAttention(inputs: FusedAttentionInputs, options: FusedAttentionOptions): FusedAttentionResult {
  const { q, k, v, rotary, cache, mask } = inputs;
  const tensors: tf.NamedTensorMap = { q, k, v };
  if (rotary !== undefined) Object.assign(tensors, rotary);
  if (cache?.past !== undefined) Object.assign(tensors, { pastKey: cache.past.key, pastValue: cache.past.value });
  if (mask !== undefined) tensors.mask = mask;
  const attrs = { ...options, returnCache: cache !== undefined };
  const out = tf.engine().runKernel(ATTENTION_KERNEL, tensors, attrs as unknown as tf.NamedAttrMap);
  if (cache === undefined) return { context: (Array.isArray(out) ? out[0] : out) as tf.Tensor3D };
  const [context, key, value] = out as tf.Tensor[];
  return { context: context as tf.Tensor3D, key: key as tf.Tensor4D, value: value as tf.Tensor4D };
}
