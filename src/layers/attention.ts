import * as tf from '@tensorflow/tfjs-core';
import { attention, attentionOf, ATTENTION_TAPS, type AttentionCall, type KeyValueCache } from '../ops/attention.js';
import type { PreNorm } from '../ops/linear.js';
import { memoOf, type ForwardContext } from './context.js';
import { Linear } from './linear.js';
import { Layer } from './module.js';
import { RMSNorm } from './norm.js';
import { RotaryEmbedding, type RotaryOptions } from './rotary.js';

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
 * Hook taps ({@link ATTENTION_TAPS}): `q`, `k`, `v` ([B, heads, L, headDim] after rotary; k and v
 * include cached positions; `query`, `key`, `value` are the projection modules' own points),
 * `scores` (scaled and masked, [B, heads, L, S]), `probs` (softmax of scores).
 *
 * The attention itself is the `attention` op (src/ops/attention.ts), which runs the backend's
 * fused kernel where it may; the taps exist only on its op-by-op path, so hooking one selects it.
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
    this.declareTaps(...Object.values(ATTENTION_TAPS));
  }

  protected forward(x: tf.Tensor, ctx: ForwardContext): tf.Tensor {
    return this.attend(x, ctx);
  }

  /**
   * `hidden + this(norm(hidden))` with the residual added by the output projection's kernel. With
   * a hook on this layer it runs through {@link call}, so the hook sees the output before the sum.
   */
  override preNormResidual(hidden: tf.Tensor, norm: Layer, ctx: ForwardContext): tf.Tensor {
    if (this.hasHooks()) return super.preNormResidual(hidden, norm, ctx);
    // An RMSNorm nothing watches is applied by the projections' kernel.
    const preNorm = norm instanceof RMSNorm && !this.projectionsHooked() ? norm.asPreNorm() : undefined;
    return preNorm !== undefined ? this.attend(hidden, ctx, hidden, preNorm) : this.attend(norm.call(hidden, ctx), ctx, hidden);
  }

  private projectionsHooked(): boolean {
    return this.query.hasHooks() || this.key.hasHooks() || this.value.hasHooks();
  }

  /** Attention over `x` (over `preNorm(x)` where given: only when no projection is hooked), plus `residual` where given. */
  private attend(x: tf.Tensor, ctx: ForwardContext, residual?: tf.Tensor, preNorm?: PreNorm): tf.Tensor {
    return tf.tidy(() => {
      const [batch, length] = x.shape as [number, number, number];
      const { numHeads, numKvHeads, causal } = this.options;
      const projections = [this.query, this.key, this.value];
      const heads = { numHeads, numKvHeads, headDim: this.headDim, causal };
      const call: AttentionCall = {
        mask: ctx.attentionMask,
        rotary: this.rotary?.tables(ctx, batch, length),
        cache: ctx.cache === undefined ? undefined : { past: ctx.cache.get(this) as KeyValueCache | undefined },
        tap: this.hasTapHooks() ? (name, value) => this.tap(name, value, ctx) : undefined,
        memo: memoOf(ctx),
        // Nothing watches the output projection: the op applies it (in the attention kernel where it can).
        output: this.output.hasHooks() ? undefined : { weight: this.output.weight, bias: this.output.bias, residual },
      };
      // q [B, L, heads·headDim], k and v [B, L, kvHeads·headDim]: made inside the attention's own
      // kernel call where the backend fuses it, each by its module where a hook watches one.
      const { context, cache } = this.projectionsHooked()
        ? attention(...(projections.map((p) => p.call(x, ctx)) as [tf.Tensor3D, tf.Tensor3D, tf.Tensor3D]), heads, call)
        : attentionOf(x as tf.Tensor3D, projections, preNorm, heads, call);
      if (cache !== undefined) ctx.cache!.set(this, { key: cache.key, value: cache.value });
      if (!this.output.hasHooks()) return context; // [B, L, H]
      return residual === undefined ? this.output.call(context, ctx) : this.output.callAdding(residual, context, ctx);
    });
  }
}
