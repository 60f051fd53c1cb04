import * as tf from '@tensorflow/tfjs-core';
import { batchedMatMul } from '../ops/batched-matmul.js';
import { memoize, type ForwardContext } from './context.js';
import { canFuseAttention, fusedAttention } from './fused-attention.js';
import { Linear } from './linear.js';
import { Layer } from './module.js';
import { RotaryEmbedding, type RotaryOptions } from './rotary.js';

/** A large negative bias instead of -inf, so a row with every key masked stays finite. */
const MASKED = -1e9;

export interface AttentionOptions {
  hiddenSize: number;
  numHeads: number;
  /** Key/value heads: = numHeads for MHA, fewer for GQA, 1 for MQA. */
  numKvHeads: number;
  /** Per-head width; default hiddenSize / numHeads. */
  headDim?: number;
  /** Biases on the query/key/value projections (BERT: yes, Llama: no). */
  qkvBias: boolean;
  /** Bias on the output projection. */
  outputBias: boolean;
  /** Decoder (true) or bidirectional encoder (false). */
  causal: boolean;
  /** Rotary embeddings on queries and keys; omit for learned positions (BERT) or none (Jamba). */
  rotary?: RotaryOptions;
}

/**
 * Multi-head self-attention as a mixer: MHA, GQA and MQA by the head counts, causal or
 * bidirectional, padding masks from `ctx.attentionMask`, and a KV cache in `ctx.cache`.
 * Hook taps: `q`, `k`, `v` ([B, heads, L, headDim] after rotary; k and v include cached positions;
 * `query`, `key`, `value` are the projection modules' own points), `scores` (scaled and
 * masked, [B, heads, L, S]), `probs` (softmax of scores).
 *
 * Where the backend has the fused attention kernels (native), inference runs on them instead
 * (see {@link canFuseAttention}); the taps exist only on the op-by-op path, so hooking one selects it.
 */
export class Attention extends Layer {
  readonly query: Linear;
  readonly key: Linear;
  readonly value: Linear;
  readonly output: Linear;
  readonly headDim: number;
  private readonly rotary?: RotaryEmbedding;

  constructor(readonly options: AttentionOptions) {
    super();
    const { hiddenSize, numHeads, numKvHeads, qkvBias } = options;
    if (numHeads % numKvHeads !== 0) {
      throw new Error(`num_attention_heads (${numHeads}) must be a multiple of num_key_value_heads (${numKvHeads})`);
    }
    this.headDim = options.headDim ?? hiddenSize / numHeads;
    if (!Number.isInteger(this.headDim)) {
      throw new Error(`hidden_size ${hiddenSize} is not divisible by num_attention_heads ${numHeads}`);
    }
    this.query = this.addModule('query', new Linear(hiddenSize, numHeads * this.headDim, { bias: qkvBias }));
    this.key = this.addModule('key', new Linear(hiddenSize, numKvHeads * this.headDim, { bias: qkvBias }));
    this.value = this.addModule('value', new Linear(hiddenSize, numKvHeads * this.headDim, { bias: qkvBias }));
    this.output = this.addModule('output', new Linear(numHeads * this.headDim, hiddenSize, { bias: options.outputBias }));
    if (options.rotary !== undefined) this.rotary = new RotaryEmbedding(options.rotary);
    this.declareTaps('q', 'k', 'v', 'scores', 'probs');
  }

  protected forward(x: tf.Tensor, ctx: ForwardContext): tf.Tensor {
    if (!this.hasTapHooks() && canFuseAttention()) return this.fusedForward(x, ctx);
    return tf.tidy(() => {
      const [batch, length] = x.shape as [number, number, number];
      const { numHeads, numKvHeads } = this.options;
      let q = this.heads(this.query.call(x, ctx), numHeads);
      let k = this.heads(this.key.call(x, ctx), numKvHeads);
      let v = this.heads(this.value.call(x, ctx), numKvHeads);
      if (this.rotary !== undefined) {
        q = this.rotary.apply(q, ctx);
        k = this.rotary.apply(k, ctx);
      }
      const past = ctx.cache?.get(this);
      if (past !== undefined) {
        k = tf.concat([past.key as tf.Tensor4D, k], 2);
        v = tf.concat([past.value as tf.Tensor4D, v], 2);
      }
      if (ctx.cache !== undefined) ctx.cache.set(this, { key: k, value: v });
      q = this.tap('q', q, ctx);
      k = this.tap('k', k, ctx);
      v = this.tap('v', v, ctx);

      // GQA/MQA: each key/value head serves `groups` query heads. Fold those heads into the query
      // length ([B, kvHeads, groups·L, headDim]) instead of repeating keys and values per head:
      // no copy of the KV cache per token. Keys are transposed once: on wasm a plain matmul is
      // far faster than one with transposeB (docs/performance.md).
      const groups = numHeads / numKvHeads;
      const keyLength = k.shape[2];
      const qGrouped = q.reshape([batch, numKvHeads, groups * length, this.headDim]);
      const kT = k.transpose([0, 1, 3, 2]); // [B, kvHeads, headDim, S]
      let scores = batchedMatMul(qGrouped, kT)
        .mul(1 / Math.sqrt(this.headDim))
        .reshape([batch, numHeads, length, keyLength]) as tf.Tensor4D;
      const bias = this.maskBias(ctx, batch, length, keyLength);
      if (bias !== undefined) scores = scores.add(bias);
      scores = this.tap('scores', scores, ctx);
      const probs = this.tap('probs', tf.softmax(scores), ctx);
      const context = batchedMatMul(probs.reshape([batch, numKvHeads, groups * length, keyLength]), v) // [B, kvHeads, groups·L, headDim]
        .reshape([batch, numHeads, length, this.headDim])
        .transpose([0, 2, 1, 3])
        .reshape([batch, length, numHeads * this.headDim]);
      return this.output.call(context, ctx);
    });
  }

  /**
   * The same computation in the backend's fused kernel, on the projections' token-major output
   * (no head transposes, no mask tensors): rotary, the cache append and attention in one kernel
   * call. The projections still run through `call`, so their hooks fire; the cache keeps the
   * layout and format of the op-by-op path, so either path can continue a generation the other began.
   */
  private fusedForward(x: tf.Tensor, ctx: ForwardContext): tf.Tensor {
    return tf.tidy(() => {
      const [batch, length] = x.shape as [number, number, number];
      const { numHeads, numKvHeads, causal } = this.options;
      const q = this.query.call(x, ctx) as tf.Tensor3D;
      const k = this.key.call(x, ctx) as tf.Tensor3D;
      const v = this.value.call(x, ctx) as tf.Tensor3D;
      const past = ctx.cache?.get(this);
      const keyLength = (past?.key.shape[2] ?? 0) + length;
      if (ctx.attentionMask !== undefined) checkMask(ctx.attentionMask, batch, keyLength);
      const result = fusedAttention(
        {
          q,
          k,
          v,
          rotary: this.rotary?.tables(ctx, batch, length),
          cache: ctx.cache === undefined ? undefined : { past: past as { key: tf.Tensor; value: tf.Tensor } | undefined },
          mask: ctx.attentionMask,
        },
        { numHeads, numKvHeads, headDim: this.headDim, causal, scale: 1 / Math.sqrt(this.headDim) },
      );
      if (ctx.cache !== undefined) ctx.cache.set(this, { key: result.key!, value: result.value! });
      return this.output.call(result.context, ctx);
    });
  }

  /** [B, L, heads·headDim] -> [B, heads, L, headDim]. */
  private heads(x: tf.Tensor, heads: number): tf.Tensor4D {
    const [batch, length] = x.shape as [number, number];
    return x.reshape([batch, length, heads, this.headDim]).transpose([0, 2, 1, 3]);
  }

  /**
   * Additive bias [B or 1, 1, L, S] combining the causal mask (query i sees keys up to offset + i)
   * and the padding mask; shared by all attention layers of the call.
   */
  private maskBias(ctx: ForwardContext, batch: number, length: number, keyLength: number): tf.Tensor | undefined {
    const causal = this.options.causal;
    if ((!causal || length === 1) && ctx.attentionMask === undefined) return undefined;
    return memoize(ctx, `attention.bias:${causal}:${length}:${keyLength}`, () =>
      tf.tidy(() => {
        // Only the masks that apply are built: a single query sits at the last position and sees
        // every key, so decoding needs at most the padding mask ([B, 1, 1, S], broadcast).
        let allowed: tf.Tensor | undefined;
        if (causal && length > 1) {
          const queryPos = tf.range(keyLength - length, keyLength, 1, 'int32').reshape([length, 1]);
          const keyPos = tf.range(0, keyLength, 1, 'int32').reshape([1, keyLength]);
          allowed = tf.lessEqual(keyPos, queryPos).reshape([1, 1, length, keyLength]);
        }
        if (ctx.attentionMask !== undefined) {
          const mask = ctx.attentionMask;
          checkMask(mask, batch, keyLength);
          const padding = mask.toBool().reshape([batch, 1, 1, keyLength]);
          allowed = allowed === undefined ? padding : tf.logicalAnd(allowed, padding);
        }
        if (allowed === undefined) throw new Error('unreachable: no mask applies');
        return tf.where(allowed, tf.scalar(0), tf.scalar(MASKED));
      }),
    );
  }
}

/** The padding mask must cover every key: [B, cached + new tokens]. */
function checkMask(mask: tf.Tensor2D, batch: number, keyLength: number): void {
  if (mask.shape[0] !== batch || mask.shape[1] !== keyLength) {
    throw new Error(
      `attentionMask has shape [${mask.shape}], expected [${batch}, ${keyLength}] (batch, cached + new tokens)`,
    );
  }
}
