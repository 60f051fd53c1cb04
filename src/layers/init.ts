import * as tf from '@tensorflow/tfjs-core';

/** Initial values for freshly built (not loaded) parameters. Loading overwrites them. */
export const init = {
  /** N(0, std²), the initialiser HF uses for Linear and Embedding weights (std 0.02). */
  normal: (shape: number[], std = 0.02): tf.Tensor => tf.randomNormal(shape, 0, std, 'float32'),
  zeros: (shape: number[]): tf.Tensor => tf.zeros(shape, 'float32'),
  ones: (shape: number[]): tf.Tensor => tf.ones(shape, 'float32'),
};
