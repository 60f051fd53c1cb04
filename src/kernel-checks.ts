import * as tf from '@tensorflow/tfjs-core';
import type { TensorInfo } from '@tensorflow/tfjs-core';

/**
 * Input checks for Tessera's own tfjs kernels (native/ and wasm/), so that a wrong dtype or shape
 * fails with the kernel's and the input's names rather than deep inside the computation.
 */

/** Every given input is float32. */
export function requireFloat32(kernel: string, inputs: Record<string, TensorInfo | undefined>): void {
  for (const [name, t] of Object.entries(inputs)) {
    if (t !== undefined && t.dtype !== 'float32') {
      throw new Error(`${kernel}: input '${name}' must be float32, got ${t.dtype}`);
    }
  }
}

/** `t`, if given, has exactly `shape`. */
export function requireShape(kernel: string, name: string, t: TensorInfo | undefined, shape: number[]): void {
  if (t !== undefined && !tf.util.arraysEqual(t.shape, shape)) {
    throw new Error(`${kernel}: input '${name}' must have shape [${shape}], got [${t.shape}]`);
  }
}
