import type * as tf from '@tensorflow/tfjs-core';
import { backendPacksWeights, packedDtypeOf, packWeight, tensorBytes, warnRoundedOnce, type WeightDtype } from '../ops/packed-weights.js';
import { Embeddings } from './embeddings.js';
import { Linear } from './linear.js';
import type { Module } from './module.js';

/** What {@link packWeights} did. */
export interface PackSummary {
  dtype: WeightDtype;
  /** Paths of the weights now held as `dtype` (packed, or rounded in float32: see `packed`). */
  weights: string[];
  /** Whether the backend holds them packed (native); false: rounded to `dtype` and kept as float32. */
  packed: boolean;
}

/**
 * Hold the model's matrix weights as `dtype` ('bfloat16', 'float16' or 'int8' with one scale per
 * output row; 'float32' does nothing): the attention and feed-forward projections, the LM head
 * (tied or not: the token embedding table is packed too), and Mamba mixers' in, out, x and dt
 * projections. Position and token-type tables, norms, biases and convolutions stay float32.
 *
 * On the native backend the weights stay packed in memory and the linear kernels read them
 * directly; on other backends they are rounded to `dtype` and held as float32 (a one-line warning
 * says so), so results agree across backends. A packed weight cannot be trained: recording
 * gradients through it throws. Reading it out (saving, `dataSync`) gives its float32 values.
 */
export function packWeights(model: Module, dtype: WeightDtype): PackSummary {
  const summary: PackSummary = { dtype, weights: [], packed: backendPacksWeights() };
  if (dtype === 'float32') return summary;
  if (!summary.packed) warnRoundedOnce(dtype);
  for (const [path, module] of model.namedModules()) {
    // The token embedding table: read a row per token by the lookup, and whole by a tied LM head.
    if (module instanceof Embeddings) {
      if (packedDtypeOf(module.word.weight) === undefined) packWeight(module.word.weight, dtype);
      summary.weights.push(`${path === '' ? '' : `${path}.`}word.weight`);
      continue;
    }
    if (!(module instanceof Linear)) continue;
    const name = `${path}.weight`;
    if (packedDtypeOf(module.weight) === undefined) packWeight(module.weight, dtype);
    summary.weights.push(name);
  }
  return summary;
}

/**
 * Bytes the model's weights hold in memory: packed weights at their packed size (int8 with its
 * scales), everything else at 4 bytes a value. Shared (tied) weights count once.
 */
export function weightBytes(model: Module): number {
  const seen = new Set<tf.Variable>();
  let bytes = 0;
  for (const [, p] of model.namedParameters()) {
    if (seen.has(p)) continue;
    seen.add(p);
    bytes += tensorBytes(p);
  }
  return bytes;
}
