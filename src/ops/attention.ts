import * as tf from '@tensorflow/tfjs-core';
import '../tf-chained.js';
import { FUSED } from '../kernels/contract.js';
import { batchedMatMul } from './batched-matmul.js';
import { canFuse, recordingGradients, runFused, runFusedOutputs } from './dispatch.js';
import { linear, linears, type LinearWeights, type PreNorm } from './linear.js';
import type { Memo } from './memo.js';
import { applyRotary, fusedRotary, type RotaryTables } from './rotary.js';

/** A large negative bias instead of -inf, so a row with every key masked stays finite. */
const MASKED = -1e9;

/**
 * The intermediate values attention exposes as hook points, [B, heads, L or S, ·]: `q`, `k`, `v`
 * after rotary (k and v with the cached positions), `scores` (scaled and masked) and `probs`.
 */
export const ATTENTION_TAPS = { q: 'q', k: 'k', v: 'v', scores: 'scores', probs: 'probs' } as const;
export type AttentionTap = (typeof ATTENTION_TAPS)[keyof typeof ATTENTION_TAPS];

/** The heads of one attention call. */
export interface AttentionHeads {
  numHeads: number;
  /** Key/value heads: = numHeads for MHA, fewer for GQA, 1 for MQA. */
  numKvHeads: number;
  headDim: number;
  /** Query i sits at position S - L + i and sees keys up to it. */
  causal: boolean;
}

/**
 * The cached keys and values, [B, numKvHeads, S0, headDim] each, or, as the fused kernel returns
 * them, [B, numKvHeads, C, headDim] with spare room past the S0 cached positions
 * ({@link keyValueLength}) so the next tokens are appended in place.
 */
export interface KeyValueCache {
  key: tf.Tensor;
  value: tf.Tensor;
}

/**
 * Positions held by a cache tensor with spare room (its shape's S being the capacity). A tensor
 * is immutable to whoever holds it: the kernel writes the next positions into the room only when
 * no other tensor can see the buffer, and never touches the held positions.
 */
const heldPositions = new WeakMap<tf.Tensor, number>();
let growableCaches = true;

/**
 * Whether the fused kernel returns caches with room to grow (default true). Off, every step
 * copies the cache into an exact [B, kvH, S, D] tensor, as before; for A/B benchmarks and tests.
 * @internal
 */
export function setGrowableKeyValueCaches(on: boolean): void {
  growableCaches = on;
}

/** The positions a KV cache holds: S0 of its [B, kvH, S0 or capacity, D] tensors. */
export function keyValueLength(cache: KeyValueCache): number {
  return heldPositions.get(cache.key) ?? cache.key.shape[2]!;
}

/**
 * A new tensor with the positions `t` holds: `t` cut to [B, kvH, S0, D] when it is a cache tensor
 * with spare room, else a copy of it (for snapshots, which must not share a buffer the cache
 * appends into, nor carry its spare room).
 */
export function exactCopy(t: tf.Tensor): tf.Tensor {
  const held = heldPositions.get(t);
  if (held === undefined || held === t.shape[2]) return t.clone();
  const [b, h, , d] = t.shape as [number, number, number, number];
  return tf.slice(t, [0, 0, 0, 0], [b, h, held, d]);
}

export interface AttentionCall {
  /** [B, S0 + L], 1 = real token, 0 = padding (any dtype). */
  mask?: tf.Tensor2D;
  /** Rotary tables for this call's positions, applied to q and k. */
  rotary?: RotaryTables;
  /** Append this call's keys and values to a KV cache (`past` absent for an empty one) and return it. */
  cache?: { past?: KeyValueCache };
  /**
   * Set when a hook observes the intermediates: each passes through it, by name, and may be
   * replaced. The fused kernel never materialises them, so it does not run then.
   */
  tap?: (name: AttentionTap, value: tf.Tensor) => tf.Tensor;
  /** Where the mask bias is kept, shared by the call's attention layers. */
  memo: Memo;
  /**
   * The output projection to apply to the context, plus `residual` where given (a pre-norm
   * block's): in the attention kernel's call where the backend has FUSED.attentionProjected.
   */
  output?: { weight: tf.Tensor; bias?: tf.Tensor; residual?: tf.Tensor };
}

export interface AttentionResult {
  /** [B, L, numHeads·headDim], ready for the output projection; with `output`, its result [B, L, H] (plus the residual). */
  context: tf.Tensor3D;
  /** The cache after this call, holding S0 + L positions ({@link KeyValueCache}); present when `cache` was given. */
  cache?: KeyValueCache;
}

/**
 * softmax(q kᵀ / √headDim + bias) v for every head, on the projections as they come,
 * token-major: q [B, L, numHeads·headDim], k and v [B, L, numKvHeads·headDim]. The bias is -1e9
 * on padding and, when causal, on future keys. Runs as the backend's fused kernel (rotary, cache
 * append and attention in one call) where it may: registered, no gradients recorded, no tap.
 */
export function attention(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, heads: AttentionHeads, call: AttentionCall): AttentionResult {
  checkCallMask(call, q);
  const { output } = call;
  if (output === undefined) return attentionContext(q, k, v, heads, call);
  if (sublayerFuses(call)) return fusedAttention({ ...call, q, k, v }, { ...heads, scale: 1 / Math.sqrt(heads.headDim) });
  const result = attentionContext(q, k, v, heads, call);
  try {
    return { ...result, context: linear(result.context, output.weight, output.bias, undefined, output.residual) as tf.Tensor3D };
  } catch (error) {
    if (result.cache !== undefined) tf.dispose([result.cache.key, result.cache.value]);
    throw error;
  } finally {
    result.context.dispose();
  }
}

/**
 * {@link attention} of `x`'s query, key and value projections (`maps`, in that order; of
 * RMSNorm(x) with `preNorm`). Where the backend fuses the whole sublayer (an output projection
 * given, no tap, no gradients recorded), the projections run inside the attention kernel's call
 * (FUSED.attentionProjected with `x`), so a decode step makes one engine dispatch per attention
 * sublayer instead of two; otherwise {@link linears}, then {@link attention}.
 */
export function attentionOf(x: tf.Tensor3D, maps: readonly LinearWeights[], preNorm: PreNorm | undefined, heads: AttentionHeads, call: AttentionCall): AttentionResult {
  if (maps.length === 3 && sublayerFuses(call) && canFuse(FUSED.linears)) {
    checkCallMask(call, x);
    const projections = { x, maps: maps as [LinearWeights, LinearWeights, LinearWeights], preNorm };
    return fusedAttention({ ...call, projections }, { ...heads, scale: 1 / Math.sqrt(heads.headDim) });
  }
  const [q, k, v] = linears(x, maps, preNorm) as tf.Tensor3D[];
  try {
    return attention(q!, k!, v!, heads, call);
  } finally {
    tf.dispose([q!, k!, v!]);
  }
}

/** Whether the whole sublayer (attention and the output projection) may run as FUSED.attentionProjected. */
function sublayerFuses(call: AttentionCall): boolean {
  return call.output !== undefined && call.tap === undefined && !recordingGradients() && canFuse(FUSED.attention) && canFuse(FUSED.attentionProjected);
}

/** The call's mask must cover the cached keys and the `length` new ones of `x` [B, length, ·]. */
function checkCallMask(call: AttentionCall, x: tf.Tensor3D): void {
  if (call.mask === undefined) return;
  const past = call.cache?.past;
  checkMask(call.mask, x.shape[0], (past === undefined ? 0 : keyValueLength(past)) + x.shape[1]);
}

/** {@link attention} without an output projection (its mask already checked). */
function attentionContext(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, heads: AttentionHeads, call: AttentionCall): AttentionResult {
  if (call.tap === undefined && canFuse(FUSED.attention)) {
    const options = { ...heads, scale: 1 / Math.sqrt(heads.headDim) };
    if (!recordingGradients()) return fusedAttention({ q, k, v, rotary: call.rotary, cache: call.cache, mask: call.mask }, options);
    // Training: rotary as its own kernel, then the kernel whose gradient exists (no cache).
    if (call.cache === undefined && (call.rotary === undefined || canFuse(FUSED.rotary))) {
      const rotate = (x: tf.Tensor3D, n: number) => (call.rotary === undefined ? x : fusedRotary(x, call.rotary, n));
      // The kernel's saved mask is float32: converted once per forward call, shared by its layers.
      const mask = call.mask === undefined ? undefined : call.memo('attention.floatMask', () => call.mask!.toFloat());
      return { context: differentiableAttention(rotate(q, heads.numHeads), rotate(k, heads.numKvHeads), v, mask, options) };
    }
  }
  return referenceAttention(q, k, v, heads, call);
}

/**
 * The attention kernel on rotated q and k, with a gradient that runs the backend's backward
 * kernel (all three inputs at once).
 */
function differentiableAttention(q: tf.Tensor3D, k: tf.Tensor3D, v: tf.Tensor3D, mask: tf.Tensor2D | undefined, options: AttentionHeads & { scale: number }): tf.Tensor3D {
  const attrs = options as unknown as tf.NamedAttrMap;
  // The float32 mask rides along as a saved tensor (customGrad takes tensors only; it gets no gradient).
  const withGradient = tf.customGrad(((...args: unknown[]) => {
    const save = args.pop() as tf.GradSaveFunc;
    const [qi, ki, vi] = args as tf.Tensor[];
    // Saved: the backward pass runs after the forward's scopes have disposed what they made.
    save(mask === undefined ? [qi!, ki!, vi!] : [qi!, ki!, vi!, mask]);
    return {
      value: runFused(FUSED.attention, { q: qi, k: ki, v: vi, mask }, attrs as unknown as Record<string, number>),
      gradFunc: (dy: tf.Tensor, saved: tf.Tensor[]) => {
        const [qs, ks, vs, ms] = saved;
        return runFusedOutputs(FUSED.attentionBackward, { q: qs, k: ks, v: vs, mask: ms, dy }, attrs as unknown as Record<string, number>);
      },
    };
  }) as unknown as Parameters<typeof tf.customGrad>[0]);
  return withGradient(q, k, v) as tf.Tensor3D;
}

/** The op-by-op composition: the reference the kernel is tested against, and what gradients flow through. */
function referenceAttention(q3: tf.Tensor3D, k3: tf.Tensor3D, v3: tf.Tensor3D, heads: AttentionHeads, call: AttentionCall): AttentionResult {
  return tf.tidy(() => {
    const { numHeads, numKvHeads, headDim } = heads;
    const [batch, length] = q3.shape;
    const tap = call.tap ?? ((_name: AttentionTap, value: tf.Tensor) => value);
    let q = headMajor(q3, numHeads, headDim);
    let k = headMajor(k3, numKvHeads, headDim);
    let v = headMajor(v3, numKvHeads, headDim);
    if (call.rotary !== undefined) {
      q = applyRotary(q, call.rotary);
      k = applyRotary(k, call.rotary);
    }
    const past = call.cache?.past;
    if (past !== undefined) {
      const held = keyValueLength(past);
      const exact = (t: tf.Tensor) => (held === t.shape[2] ? t : tf.slice(t, [0, 0, 0, 0], [batch, numKvHeads, held, headDim])) as tf.Tensor4D;
      k = tf.concat([exact(past.key), k], 2);
      v = tf.concat([exact(past.value), v], 2);
    }
    const cache = call.cache === undefined ? undefined : { key: k, value: v };
    q = tap(ATTENTION_TAPS.q, q) as tf.Tensor4D;
    k = tap(ATTENTION_TAPS.k, k) as tf.Tensor4D;
    v = tap(ATTENTION_TAPS.v, v) as tf.Tensor4D;

    // GQA/MQA: each key/value head serves `groups` query heads. Fold those heads into the query
    // length ([B, kvHeads, groups·L, headDim]) instead of repeating keys and values per head:
    // no copy of the KV cache per token. Keys are transposed once: on wasm a plain matmul is
    // far faster than one with transposeB (docs/performance.md).
    const groups = numHeads / numKvHeads;
    const keyLength = k.shape[2];
    const qGrouped = q.reshape([batch, numKvHeads, groups * length, headDim]);
    const kT = k.transpose([0, 1, 3, 2]); // [B, kvHeads, headDim, S]
    let scores = batchedMatMul(qGrouped, kT)
      .mul(1 / Math.sqrt(headDim))
      .reshape([batch, numHeads, length, keyLength]);
    const bias = maskBias(heads.causal, call, batch, length, keyLength);
    if (bias !== undefined) scores = scores.add(bias);
    scores = tap(ATTENTION_TAPS.scores, scores);
    const probs = tap(ATTENTION_TAPS.probs, tf.softmax(scores));
    const context = batchedMatMul(probs.reshape([batch, numKvHeads, groups * length, keyLength]), v) // [B, kvHeads, groups·L, headDim]
      .reshape([batch, numHeads, length, headDim])
      .transpose([0, 2, 1, 3])
      .reshape([batch, length, numHeads * headDim]) as tf.Tensor3D;
    return { context, cache };
  });
}

/** [B, L, heads·headDim] -> [B, heads, L, headDim]. */
function headMajor(x: tf.Tensor3D, heads: number, headDim: number): tf.Tensor4D {
  const [batch, length] = x.shape;
  return x.reshape([batch, length, heads, headDim]).transpose([0, 2, 1, 3]);
}

/**
 * Additive bias [B or 1, 1, L, S] combining the causal mask (query i sees keys up to S - L + i)
 * and the padding mask; made once per call and shared by its attention layers.
 */
function maskBias(causal: boolean, { mask, memo }: AttentionCall, batch: number, length: number, keyLength: number): tf.Tensor | undefined {
  if ((!causal || length === 1) && mask === undefined) return undefined;
  return memo(`attention.bias:${causal}:${length}:${keyLength}`, () =>
    tf.tidy(() => {
      // Only the masks that apply are built: a single query sits at the last position and sees
      // every key, so decoding needs at most the padding mask ([B, 1, 1, S], broadcast).
      let allowed: tf.Tensor | undefined;
      if (causal && length > 1) {
        const queryPos = tf.range(keyLength - length, keyLength, 1, 'int32').reshape([length, 1]);
        const keyPos = tf.range(0, keyLength, 1, 'int32').reshape([1, keyLength]);
        allowed = tf.lessEqual(keyPos, queryPos).reshape([1, 1, length, keyLength]);
      }
      if (mask !== undefined) {
        const padding = mask.toBool().reshape([batch, 1, 1, keyLength]);
        allowed = allowed === undefined ? padding : tf.logicalAnd(allowed, padding);
      }
      if (allowed === undefined) throw new Error('unreachable: no mask applies');
      return tf.where(allowed, tf.scalar(0), tf.scalar(MASKED));
    }),
  );
}

/** The padding mask must cover every key: [B, cached + new tokens]. */
function checkMask(mask: tf.Tensor2D, batch: number, keyLength: number): void {
  if (mask.shape[0] !== batch || mask.shape[1] !== keyLength) {
    throw new Error(
      `attentionMask has shape [${mask.shape}], expected [${batch}, ${keyLength}] (batch, cached + new tokens)`,
    );
  }
}

/**
 * The fused kernel's inputs: the projections q, k and v, or (with an output projection) the
 * `projections` to make them of, and what {@link AttentionCall} gives it.
 */
export type FusedAttentionInputs = Pick<AttentionCall, 'mask' | 'rotary' | 'cache' | 'output'> &
  (
    | { q: tf.Tensor3D; k: tf.Tensor3D; v: tf.Tensor3D; projections?: undefined }
    | { projections: { x: tf.Tensor3D; maps: readonly [LinearWeights, LinearWeights, LinearWeights]; preNorm?: PreNorm }; q?: undefined }
  );

/**
 * One call of the backend's attention kernel, with no decision: {@link attention} decides when it
 * may run; tests call this to reach the kernel's own input checks.
 */
export function fusedAttention(inputs: FusedAttentionInputs, options: AttentionHeads & { scale: number }): AttentionResult {
  const { rotary, cache, mask, output } = inputs;
  const tensors: tf.NamedTensorMap = {};
  let normEpsilon: number | undefined;
  if (inputs.projections === undefined) {
    Object.assign(tensors, { q: inputs.q, k: inputs.k, v: inputs.v });
  } else {
    const { x, maps, preNorm } = inputs.projections;
    tensors.x = x;
    (['q', 'k', 'v'] as const).forEach((name, j) => {
      tensors[`${name}Weight`] = maps[j]!.weight;
      if (maps[j]!.bias !== undefined) tensors[`${name}Bias`] = maps[j]!.bias!;
    });
    if (preNorm !== undefined) {
      tensors.normWeight = preNorm.weight;
      normEpsilon = preNorm.eps;
    }
  }
  if (output !== undefined) {
    tensors.outWeight = output.weight;
    if (output.bias !== undefined) tensors.outBias = output.bias;
    if (output.residual !== undefined) tensors.residual = output.residual;
  }
  if (rotary !== undefined) Object.assign(tensors, rotary);
  const past = cache?.past;
  const pastLength = past === undefined ? 0 : keyValueLength(past);
  if (past !== undefined) Object.assign(tensors, { pastKey: past.key, pastValue: past.value });
  if (mask !== undefined) tensors.mask = mask;
  const attrs = { ...options, returnCache: cache !== undefined, pastLength, growable: growableCaches, ...(normEpsilon !== undefined && { normEpsilon }) };
  const kernel = output === undefined ? FUSED.attention : FUSED.attentionProjected;
  const out = tf.engine().runKernel(kernel, tensors, attrs as unknown as tf.NamedAttrMap);
  if (cache === undefined) return { context: (Array.isArray(out) ? out[0] : out) as tf.Tensor3D };
  const [context, key, value] = out as tf.Tensor[];
  const held = pastLength + (inputs.q ?? inputs.projections.x).shape[1];
  if (key!.shape[2] !== held) {
    heldPositions.set(key!, held);
    heldPositions.set(value!, held);
  }
  return { context: context as tf.Tensor3D, cache: { key: key!, value: value! } };
}
