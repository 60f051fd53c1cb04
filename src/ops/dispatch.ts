import * as tf from '@tensorflow/tfjs-core';
import { BACKWARD_KERNEL, isSequencesOnly, maxStateSize } from '../kernels/contract.js';

/**
 * The one decision every op makes before running a backend's fused kernel (names in
 * src/kernels/contract.ts) instead of its reference composition in tfjs ops.
 */

/** Sizes of a call that a backend's kernel may not support (declared by the backend with `declareMaxStateSize`). */
export interface FusedCallSizes {
  /** The Mamba state size N. */
  stateSize?: number;
  /** Tokens in the call (a kernel declared for sequences only does not take 1). */
  length?: number;
}

/**
 * Whether `kernel` may run now: the active backend registers it, `sizes` are within what the
 * backend's implementation declared it takes, and, while gradients are recorded, a gradient is
 * registered for it and the backend has that gradient's backward kernel (otherwise the op-by-op
 * path keeps training exact).
 */
export function canFuse(kernel: string, sizes: FusedCallSizes = {}): boolean {
  return fusedKernelFits(kernel, sizes) && (!recordingGradients() || differentiable(kernel));
}

/**
 * The backward kernel that `kernel`'s gradient runs is registered on the active backend, or, for
 * a kernel without one, a gradient is registered for it.
 */
function differentiable(kernel: string): boolean {
  const backward = BACKWARD_KERNEL[kernel];
  if (backward !== undefined) return tf.getKernel(backward, tf.getBackend()) !== undefined;
  return tf.getGradient(kernel) !== undefined;
}

/** Whether the active backend registers `kernel` and its implementation takes `sizes`. */
function fusedKernelFits(kernel: string, { stateSize, length }: FusedCallSizes = {}): boolean {
  const backend = tf.getBackend();
  if (tf.getKernel(kernel, backend) === undefined) return false;
  if (length === 1 && isSequencesOnly(kernel, backend)) return false;
  const max = stateSize === undefined ? undefined : maxStateSize(kernel, backend);
  return max === undefined || stateSize! <= max;
}

/** Run a fused kernel with the inputs that are defined (optional ones may be left out). */
export function runFused(kernel: string, inputs: Record<string, tf.Tensor | undefined>, attrs: Record<string, string | number> = {}): tf.Tensor {
  const present: tf.NamedTensorMap = {};
  for (const [name, t] of Object.entries(inputs)) if (t !== undefined) present[name] = t;
  return tf.engine().runKernel(kernel, present, attrs) as tf.Tensor;
}

/** {@link runFused} for a kernel with several outputs (the engine returns them as an array). */
export function runFusedOutputs(kernel: string, inputs: Record<string, tf.Tensor | undefined>, attrs: Record<string, string | number> = {}): tf.Tensor[] {
  return runFused(kernel, inputs, attrs) as unknown as tf.Tensor[];
}

/** Whether gradients are being recorded (a kept copy of a weight would then cut the variable off from its gradient). */
export function recordingGradients(): boolean {
  return (tf.engine().state as unknown as { gradientDepth: number }).gradientDepth > 0;
}
