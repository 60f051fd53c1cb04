import * as tf from '@tensorflow/tfjs-core';
import { FUSED, requireFloat32, requirePresent, requireShape } from '../contract.js';

/** The slice of the wasm backend's API this kernel needs. */
interface WasmBackendLike {
  makeOutput(shape: number[], dtype: tf.DataType): tf.TensorInfo;
  typedArrayFromHeap(t: tf.TensorInfo): Float32Array;
}

/**
 * `TesseraAdam` for the wasm backend: one JS pass over the wasm heap. tfjs-wasm has no Adam, so
 * the reference update is ten weight-sized kernels, each allocating and writing a new tensor; for
 * the 32000 × 512 embedding and LM head those passes, not the math, are the cost. Writes three
 * new outputs (`inPlace` is a permission, not a promise: wasm cannot tell who else holds a buffer).
 */
function adam({ inputs, attrs, backend }: { inputs: tf.NamedTensorInfoMap; attrs: tf.NamedAttrMap; backend: unknown }): tf.TensorInfo[] {
  const wasm = backend as WasmBackendLike;
  requirePresent(FUSED.adam, inputs, ['value', 'gradient', 'm', 'v']);
  requireFloat32(FUSED.adam, inputs);
  const { value, gradient, m, v } = inputs as Record<'value' | 'gradient' | 'm' | 'v', tf.TensorInfo>;
  for (const [name, t] of Object.entries({ gradient, m, v })) requireShape(FUSED.adam, name, t, value.shape);
  const { learningRate, beta1, beta2, epsilon, correction1, correction2, weightDecay = 0 } = attrs as Record<string, number>;
  const outputs = [value, m, v].map(() => wasm.makeOutput(value.shape, 'float32'));
  // Views after every allocation: growing the heap detaches earlier ones.
  const [w, g, m0, v0, w1, m1, v1] = [value, gradient, m, v, ...outputs].map((t) => wasm.typedArrayFromHeap(t)) as Float32Array[];
  const [lr, b1, b2, eps, c1, c2] = [learningRate!, beta1!, beta2!, epsilon!, correction1!, correction2!];
  const keep = 1 - lr * weightDecay;
  for (let i = 0; i < w!.length; i++) {
    const gi = g![i]!;
    const mi = b1 * m0![i]! + (1 - b1) * gi;
    const vi = b2 * v0![i]! + (1 - b2) * gi * gi;
    m1![i] = mi;
    v1![i] = vi;
    w1![i] = w![i]! * keep - (lr * (mi / c1)) / (Math.sqrt(vi / c2) + eps);
  }
  return outputs;
}

/** Register the one-pass Adam on the wasm backend (idempotent). */
export function registerWasmAdamKernel(): void {
  if (tf.getKernel(FUSED.adam, 'wasm') === undefined) {
    tf.registerKernel({ kernelName: FUSED.adam, backendName: 'wasm', kernelFunc: adam as unknown as tf.KernelFunc });
  }
}
