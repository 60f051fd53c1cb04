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

/** The selective scan's inputs: u, delta [B, L, D], A [D, N], B, C [B, L, N], D [D], h0? [B, D, N]. */
export interface ScanKernelInputs {
  u: TensorInfo;
  delta: TensorInfo;
  A: TensorInfo;
  B: TensorInfo;
  C: TensorInfo;
  D: TensorInfo;
  h0?: TensorInfo;
}

/**
 * Check a `TesseraSelectiveScan` call (each backend's implementation takes the same inputs) and
 * return them with their sizes.
 */
export function scanKernelInputs(
  kernel: string,
  inputs: Record<string, TensorInfo | undefined>,
): ScanKernelInputs & { batch: number; len: number; dim: number; nstate: number } {
  requireFloat32(kernel, inputs);
  const { u, delta, A, B, C, D, h0 } = inputs;
  for (const [name, t] of Object.entries({ u, delta, A, B, C, D })) {
    if (t === undefined) throw new Error(`${kernel}: input '${name}' is missing`);
  }
  if (u!.shape.length !== 3 || A!.shape.length !== 2) {
    throw new Error(`${kernel}: u must be [B, L, D] and A [D, N], got [${u!.shape}] and [${A!.shape}]`);
  }
  const [batch, len, dim] = u!.shape as [number, number, number];
  const nstate = A!.shape[1]!;
  requireShape(kernel, 'delta', delta, [batch, len, dim]);
  requireShape(kernel, 'A', A, [dim, nstate]);
  requireShape(kernel, 'B', B, [batch, len, nstate]);
  requireShape(kernel, 'C', C, [batch, len, nstate]);
  requireShape(kernel, 'D', D, [dim]);
  requireShape(kernel, 'h0', h0, [batch, dim, nstate]);
  return { u: u!, delta: delta!, A: A!, B: B!, C: C!, D: D!, h0, batch, len, dim, nstate };
}
