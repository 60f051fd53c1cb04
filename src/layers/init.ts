import * as tf from '@tensorflow/tfjs-core';

/** The seed of the next random initial value, while {@link withInitSeed} runs; else unseeded. */
let nextSeed: number | undefined;

/**
 * Run `build` with reproducible random initial values: the k-th random parameter it creates is
 * drawn with seed `seed + k`, so the same build order gives the same weights.
 */
export function withInitSeed<T>(seed: number | undefined, build: () => T): T {
  if (seed === undefined) return build();
  if (!Number.isSafeInteger(seed)) throw new Error(`seed must be an integer, got ${seed}`);
  const outer = nextSeed;
  nextSeed = seed;
  try {
    return build();
  } finally {
    nextSeed = outer;
  }
}

/** Initial values for freshly built (not loaded) parameters. Loading overwrites them. */
export const init = {
  /** N(0, std²), the initialiser HF uses for Linear and Embedding weights (std 0.02). */
  normal: (shape: number[], std = 0.02): tf.Tensor => tf.randomNormal(shape, 0, std, 'float32', nextSeed === undefined ? undefined : nextSeed++),
  zeros: (shape: number[]): tf.Tensor => tf.zeros(shape, 'float32'),
  ones: (shape: number[]): tf.Tensor => tf.ones(shape, 'float32'),
};
