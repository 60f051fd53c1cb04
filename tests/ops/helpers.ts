import * as tf from '@tensorflow/tfjs-core';
import type { Memo } from '../../src/ops/memo.js';

/** A memo as a forward call keeps one (layers pass their ForwardContext's), and its release. */
export function callMemo(): { memo: Memo; release: () => void } {
  const kept = new Map<string, tf.Tensor>();
  const memo: Memo = (key, make) => {
    if (!kept.has(key)) kept.set(key, tf.keep(make()));
    return kept.get(key) as ReturnType<typeof make>;
  };
  return { memo, release: () => tf.dispose([...kept.values()]) };
}

/** The largest absolute difference between two tensors. */
export function maxDiff(a: tf.Tensor, b: tf.Tensor): number {
  return tf.tidy(() => tf.max(tf.abs(a.sub(b))).dataSync()[0]!);
}
