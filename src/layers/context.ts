import * as tf from '@tensorflow/tfjs-core';
import type { Memo } from '../ops/memo.js';

/**
 * Per-call state shared by every layer of one forward pass. Layers read what they need and never
 * keep it beyond the call; only `cache` outlives it.
 */
export interface ForwardContext {
  /** [B, Ltotal] int32, 1 = real token, 0 = padding. Ltotal includes cached positions. */
  attentionMask?: tf.Tensor2D;
  /** [B, L] segment ids for encoders with token-type embeddings. */
  tokenTypeIds?: tf.Tensor2D;
  /** [B, L] int32 absolute positions; default `offset .. offset + L - 1` for every row. */
  positionIds?: tf.Tensor2D;
  /** Number of positions already in the cache (0 without one). */
  offset: number;
  /** Per-layer recurrent/KV state for incremental decoding; absent for a plain forward. */
  cache?: LayerStateStore;
  /** Values computed once per call and shared by layers (e.g. the attention bias). */
  memo: Map<string, tf.Tensor>;
}

/** Where mixers keep their state between calls: one slot per mixer instance. */
export interface LayerStateStore {
  get(owner: object): Record<string, tf.Tensor> | undefined;
  set(owner: object, state: Record<string, tf.Tensor>): void;
}

/** A fresh context for a call; `memo` tensors live in the caller's tidy scope. */
export function createContext(init: Partial<ForwardContext> = {}): ForwardContext {
  return { offset: 0, memo: new Map(), ...init };
}

/**
 * Memoise a per-call tensor under `key` (computed on first use). It is kept out of the tidy
 * scope it was made in, since later layers use it; {@link releaseContext} frees it.
 */
export function memoize<T extends tf.Tensor>(ctx: ForwardContext, key: string, make: () => T): T {
  const found = ctx.memo.get(key);
  if (found !== undefined) return found as T;
  const made = tf.keep(make());
  ctx.memo.set(key, made);
  return made;
}

/** The call's memo as the ops take it. */
export function memoOf(ctx: ForwardContext): Memo {
  return (key, make) => memoize(ctx, key, make);
}

/** Free what a call memoised. */
export function releaseContext(ctx: ForwardContext): void {
  tf.dispose([...ctx.memo.values()]);
  ctx.memo.clear();
}

/** Positions `[B, L]` for this call: the explicit ones or `offset + 0..L-1`. */
export function positionsOf(ctx: ForwardContext, batch: number, length: number): tf.Tensor2D {
  if (ctx.positionIds !== undefined) return ctx.positionIds;
  return memoize(ctx, `positions:${batch}x${length}`, () =>
    tf.tile(tf.range(ctx.offset, ctx.offset + length, 1, 'int32').reshape([1, length]), [batch, 1]) as tf.Tensor2D,
  );
}
