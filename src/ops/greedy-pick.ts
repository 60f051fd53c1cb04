import * as tf from '@tensorflow/tfjs-core';
import { FUSED } from '../kernels/contract.js';
import { canFuse, runFused } from './dispatch.js';

/** The check of a row of logits a token can be chosen from ({@link greedyPicks}, {@link unusableLogit}). */
export const USABLE = -1;

/**
 * Greedy decoding's pick for every row of `logits` [..., V], in one call of the backend's
 * FUSED.greedyPick where it has one: a [token, check] pair per row, the token being the index of
 * the largest logit (the lowest among equal ones) and the check {@link unusableLogit}'s. Undefined
 * where the backend has no such kernel: the caller then reads the logits and picks in JS. A
 * vocabulary-sized row costs tens of microseconds in JS, a real share of a decode step.
 */
export function greedyPicks(logits: tf.Tensor): Int32Array | undefined {
  if (!canFuse(FUSED.greedyPick)) return undefined;
  const picks = runFused(FUSED.greedyPick, { logits });
  try {
    return picks.dataSync() as Int32Array;
  } finally {
    picks.dispose();
  }
}

/**
 * Whether a token can be chosen from `row`: {@link USABLE}, else the index of the first NaN or
 * +Infinity, or the row's length when every value is -Infinity. A -Infinity among finite values
 * only forbids that token.
 */
export function unusableLogit(row: Float32Array): number {
  let usable = false;
  for (let i = 0; i < row.length; i++) {
    const v = row[i]!;
    if (v - v === 0) usable = true; // finite: NaN and ±Infinity give NaN
    else if (v !== -Infinity) return i;
  }
  return usable ? USABLE : row.length;
}
