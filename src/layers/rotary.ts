import * as tf from '@tensorflow/tfjs-core';
import { applyRotary, type RotaryTables } from '../ops/rotary.js';
import { memoize, type ForwardContext } from './context.js';

/** HF `rope_scaling` variants; `default` is plain RoPE. */
export type RopeScaling =
  | { type: 'default' }
  | { type: 'linear'; factor: number }
  | { type: 'dynamic'; factor: number; maxPositions: number }
  | {
      type: 'llama3';
      factor: number;
      lowFreqFactor: number;
      highFreqFactor: number;
      originalMaxPositions: number;
    };

export interface RotaryOptions {
  /** Rotated dimensions per head (head_dim × partial_rotary_factor). */
  dim: number;
  /** rope_theta. */
  base: number;
  scaling: RopeScaling;
}

/** Inverse frequencies 1 / base^(2i/dim), rescaled as the scaling asks; `seqLen` matters for `dynamic` only. */
export function inverseFrequencies(options: RotaryOptions, seqLen: number): Float32Array {
  const { dim, scaling } = options;
  let base = options.base;
  if (scaling.type === 'dynamic' && seqLen > scaling.maxPositions) {
    // NTK-aware: grow the base with the sequence once it passes the trained length.
    base *= ((scaling.factor * seqLen) / scaling.maxPositions - (scaling.factor - 1)) ** (dim / (dim - 2));
  }
  const freqs = new Float32Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) freqs[i] = 1 / base ** ((2 * i) / dim);
  if (scaling.type === 'linear') for (let i = 0; i < freqs.length; i++) freqs[i]! /= scaling.factor;
  if (scaling.type === 'llama3') {
    // Long wavelengths are slowed by `factor`, short ones kept, the band between interpolated.
    const lowWavelen = scaling.originalMaxPositions / scaling.lowFreqFactor;
    const highWavelen = scaling.originalMaxPositions / scaling.highFreqFactor;
    for (let i = 0; i < freqs.length; i++) {
      const f = freqs[i]!;
      const wavelen = (2 * Math.PI) / f;
      if (wavelen < highWavelen) continue;
      if (wavelen > lowWavelen) {
        freqs[i] = f / scaling.factor;
      } else {
        const smooth =
          (scaling.originalMaxPositions / wavelen - scaling.lowFreqFactor) /
          (scaling.highFreqFactor - scaling.lowFreqFactor);
        freqs[i] = (1 - smooth) * (f / scaling.factor) + smooth * f;
      }
    }
  }
  return freqs;
}

/**
 * cos and sin [B, 1, L, dim] of positions offset..offset+L-1 in every row, written directly: the
 * same float32 values as the ops (angle = fround(position · inverse frequency), then fround of its
 * cos and sin), without the half-dozen small kernels a decode step would otherwise dispatch.
 */
function consecutiveTables(inv: Float32Array, offset: number, batch: number, length: number): [tf.Tensor4D, tf.Tensor4D] {
  const half = inv.length, dim = 2 * half;
  const cos = new Float32Array(batch * length * dim), sin = new Float32Array(batch * length * dim);
  for (let l = 0; l < length; l++) {
    for (let i = 0; i < half; i++) {
      const angle = Math.fround((offset + l) * inv[i]!);
      const c = Math.cos(angle), s = Math.sin(angle);
      for (let b = 0; b < batch; b++) {
        const row = (b * length + l) * dim;
        cos[row + i] = cos[row + half + i] = c;
        sin[row + i] = sin[row + half + i] = s;
      }
    }
  }
  return [tf.tensor4d(cos, [batch, 1, length, dim]), tf.tensor4d(sin, [batch, 1, length, dim])];
}

/**
 * Rotary position embedding in HF's "rotate half" layout: the first and second halves of the
 * rotated dimensions form the (x, y) pairs.
 */
export class RotaryEmbedding {
  constructor(readonly options: RotaryOptions) {}

  /** cos and sin, each [B, 1, L, dim], for this call's positions (computed once per call). */
  private cosSin(ctx: ForwardContext, batch: number, length: number): [tf.Tensor4D, tf.Tensor4D] {
    const cos = memoize(ctx, `rope.cos:${this.options.dim}`, () => {
      const seqLen = ctx.offset + length;
      const [c, s] = ctx.positionIds === undefined
        ? consecutiveTables(inverseFrequencies(this.options, seqLen), ctx.offset, batch, length)
        : tf.tidy(() => {
            const positions = ctx.positionIds!.toFloat(); // [B, L]
            const inv = tf.tensor1d(inverseFrequencies(this.options, seqLen));
            const angles = positions.expandDims(2).mul(inv.reshape([1, 1, -1])); // [B, L, dim/2]
            const full = tf.concat([angles, angles], -1).expandDims(1); // [B, 1, L, dim]
            return [tf.cos(full), tf.sin(full)];
          });
      ctx.memo.set(`rope.sin:${this.options.dim}`, tf.keep(s));
      return c;
    });
    return [cos as tf.Tensor4D, ctx.memo.get(`rope.sin:${this.options.dim}`) as tf.Tensor4D];
  }

  /** The cos and sin tables [B, 1, L, dim] of this call's positions (made once per call), as the attention op takes them. */
  tables(ctx: ForwardContext, batch: number, length: number): RotaryTables {
    const [cos, sin] = this.cosSin(ctx, batch, length);
    return { cos, sin };
  }

  /** Rotate `x` [B, H, L, headDim]; dimensions past `dim` pass through unrotated. */
  apply(x: tf.Tensor4D, ctx: ForwardContext): tf.Tensor4D {
    const [batch, , length] = x.shape;
    return applyRotary(x, this.tables(ctx, batch, length));
  }
}
